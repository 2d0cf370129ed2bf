//! Trapped guest MMIO: the access a guest made, as emulated devices see it.
//!
//! A stage-2 fault on an emulated window becomes an [`MmioAccess`] (offset into the device's
//! window, size, and the value for writes); the device model answers with an [`MmioResult`].
//! Device models never see raw guest registers or addresses outside their window.

/// One decoded guest load or store to an emulated device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioAccess {
    /// Byte offset from the start of the device's window.
    pub offset: u64,
    /// Access size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// `Some(value)` for a store (zero-extended to 64 bits), `None` for a load.
    pub write: Option<u64>,
}

impl MmioAccess {
    /// A load of `size` bytes at `offset`.
    pub const fn read(offset: u64, size: u8) -> Self {
        Self {
            offset,
            size,
            write: None,
        }
    }

    /// A store of `size` bytes of `value` at `offset`.
    pub const fn write(offset: u64, size: u8, value: u64) -> Self {
        Self {
            offset,
            size,
            write: Some(value),
        }
    }

    /// Whether the access is naturally aligned.
    pub const fn is_aligned(&self) -> bool {
        self.size.is_power_of_two() && self.offset.is_multiple_of(self.size as u64)
    }
}

/// What an emulated device did with an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioResult {
    /// A load completed with this value (the caller truncates it to the access size).
    Read(u64),
    /// A store completed (or was ignored, for RAZ/WI registers).
    Written,
    /// The access is not allowed (bad size or alignment for the register): the guest gets a
    /// synchronous external abort.
    Fault,
}

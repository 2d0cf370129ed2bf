//! Physical address types shared by the platform description and the memory managers.
//!
//! The hypervisor runs identity-mapped at EL2 (VA = PA), but addresses that name physical memory
//! still travel as [`Pa`] and [`PhysRange`] so that guest addresses (IPAs, added later) can never be
//! mixed up with them.

use core::fmt;

/// Size of a translation granule and of an allocator frame.
pub const PAGE_SIZE: u64 = 4096;

/// A physical address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pa(pub u64);

impl Pa {
    /// The raw address value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// Whether the address is aligned to `align` (a power of two).
    pub const fn is_aligned(self, align: u64) -> bool {
        self.0 & (align - 1) == 0
    }
}

impl fmt::Debug for Pa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pa({:#x})", self.0)
    }
}

impl fmt::Display for Pa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A half-open range `[start, end)` of physical addresses. `end` is exclusive and never below
/// `start`; the constructors enforce it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PhysRange {
    start: u64,
    end: u64,
}

impl PhysRange {
    /// The range `[start, end)`; `None` if `end < start`.
    pub const fn new(start: u64, end: u64) -> Option<Self> {
        if end < start {
            None
        } else {
            Some(Self { start, end })
        }
    }

    /// The range starting at `base` of `size` bytes; `None` if it wraps past the address space.
    pub const fn from_base_size(base: u64, size: u64) -> Option<Self> {
        match base.checked_add(size) {
            Some(end) => Some(Self { start: base, end }),
            None => None,
        }
    }

    /// First address in the range.
    pub const fn start(&self) -> u64 {
        self.start
    }

    /// First address after the range.
    pub const fn end(&self) -> u64 {
        self.end
    }

    /// Length in bytes.
    pub const fn size(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the range holds no bytes.
    pub const fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether `addr` lies inside the range.
    pub const fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// Whether the two ranges share at least one byte.
    pub const fn overlaps(&self, other: &PhysRange) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// The range widened outwards to `align` (a power of two) on both ends, saturating at the top
    /// of the address space.
    pub const fn align_out(&self, align: u64) -> PhysRange {
        let start = self.start & !(align - 1);
        let end = match self.end.checked_add(align - 1) {
            Some(e) => e & !(align - 1),
            None => !(align - 1),
        };
        PhysRange { start, end }
    }

    /// The range narrowed inwards to `align` (a power of two); empty if nothing aligned is left.
    pub const fn align_in(&self, align: u64) -> PhysRange {
        let start = match self.start.checked_add(align - 1) {
            Some(s) => s & !(align - 1),
            None => !(align - 1),
        };
        let end = self.end & !(align - 1);
        if end <= start {
            PhysRange { start, end: start }
        } else {
            PhysRange { start, end }
        }
    }
}

impl fmt::Debug for PhysRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:#x}..{:#x})", self.start, self.end)
    }
}

impl fmt::Display for PhysRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_rejects_backwards_and_wrapping() {
        assert!(PhysRange::new(10, 5).is_none());
        assert!(PhysRange::from_base_size(u64::MAX - 1, 4).is_none());
        assert_eq!(
            PhysRange::from_base_size(0x1000, 0x1000).map(|r| r.end()),
            Some(0x2000)
        );
    }

    #[test]
    fn alignment_helpers() {
        let r = PhysRange::new(0x1001, 0x2fff).unwrap();
        assert_eq!(r.align_out(0x1000), PhysRange::new(0x1000, 0x3000).unwrap());
        assert_eq!(r.align_in(0x1000), PhysRange::new(0x2000, 0x2000).unwrap());
        assert!(r.align_in(0x1000).is_empty());
    }

    #[test]
    fn overlap_is_half_open() {
        let a = PhysRange::new(0, 0x1000).unwrap();
        let b = PhysRange::new(0x1000, 0x2000).unwrap();
        assert!(!a.overlaps(&b));
        assert!(a.overlaps(&PhysRange::new(0xfff, 0x1001).unwrap()));
    }
}

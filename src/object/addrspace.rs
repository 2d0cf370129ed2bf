//! Address-space objects: what a capability to another VM's guest-physical address space
//! names. Wurley's stage-2 tables are built at launch, so the only thing such a cap does is
//! `addrspace_configure_vmmio`: the ranges whose accesses fault to the VM's proxy scheduler as
//! VMMIO run states instead of being answered by the hypervisor.
//!
//! The ranges are plain data ([`VmmioRanges`], host-tested); `vm::exit` asks
//! [`AddrSpaceObject::vmmio_contains`] when a proxy-scheduled vCPU touches an address that is
//! neither RAM nor an emulated device.

use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;
use wurley_abi::Error;
use wurley_abi::vcpu_run::VmmioOp;

/// Most VMMIO ranges one address space holds.
pub const MAX_VMMIO_RANGES: usize = 16;

/// Range granule: a page.
const GRANULE: u64 = 4096;

/// The VMMIO ranges of one address space: disjoint, page-aligned `[base, base + size)`.
#[derive(Debug, Default)]
pub struct VmmioRanges {
    ranges: Vec<(u64, u64)>,
}

impl VmmioRanges {
    /// `addrspace_configure_vmmio` on these ranges, with addresses below `ipa_limit`.
    ///
    /// Errors, in order: `ArgumentAlignment` if `base` or `size` is not page aligned;
    /// `ArgumentSize` if `size` is 0; `AddrOverflow` if the range wraps or ends above
    /// `ipa_limit`; for ADD, `AddrInvalid` if it overlaps a range already added and `Nomem`
    /// past [`MAX_VMMIO_RANGES`]; for REMOVE, `AddrInvalid` unless exactly that range was
    /// added.
    pub fn configure(
        &mut self,
        base: u64,
        size: u64,
        op: VmmioOp,
        ipa_limit: u64,
    ) -> Result<(), Error> {
        if !base.is_multiple_of(GRANULE) || !size.is_multiple_of(GRANULE) {
            return Err(Error::ArgumentAlignment);
        }
        if size == 0 {
            return Err(Error::ArgumentSize);
        }
        let end = base
            .checked_add(size)
            .filter(|&e| e <= ipa_limit)
            .ok_or(Error::AddrOverflow)?;
        match op {
            VmmioOp::Add => {
                if self.ranges.iter().any(|&(b, s)| base < b + s && b < end) {
                    return Err(Error::AddrInvalid);
                }
                if self.ranges.len() >= MAX_VMMIO_RANGES {
                    return Err(Error::Nomem);
                }
                self.ranges.try_reserve(1).map_err(|_| Error::Nomem)?;
                self.ranges.push((base, size));
                Ok(())
            }
            VmmioOp::Remove => {
                let at = self
                    .ranges
                    .iter()
                    .position(|&r| r == (base, size))
                    .ok_or(Error::AddrInvalid)?;
                self.ranges.swap_remove(at);
                Ok(())
            }
        }
    }

    /// Whether `ipa` is inside a range.
    pub fn contains(&self, ipa: u64) -> bool {
        self.ranges.iter().any(|&(b, s)| ipa >= b && ipa - b < s)
    }
}

/// An address-space object.
pub struct AddrSpaceObject {
    /// Lifecycle.
    pub header: super::Header,
    ipa_limit: u64,
    vmmio: Mutex<VmmioRanges>,
}

impl AddrSpaceObject {
    /// The address space of a VM whose guest addresses end at `ipa_limit`.
    pub fn new(ipa_limit: u64) -> Arc<Self> {
        Arc::new(Self {
            header: super::Header::new_active(),
            ipa_limit,
            vmmio: Mutex::new(VmmioRanges::default()),
        })
    }

    /// `addrspace_configure_vmmio` (see [`VmmioRanges::configure`]).
    pub fn configure_vmmio(&self, base: u64, size: u64, op: VmmioOp) -> Result<(), Error> {
        self.vmmio.lock().configure(base, size, op, self.ipa_limit)
    }

    /// MERGE-PLACEHOLDER: replaced by the memory branch's address space.
    pub fn vttbr(&self) -> Option<u64> {
        None
    }

    /// MERGE-PLACEHOLDER: replaced by the memory branch's address space.
    pub fn vmid(&self) -> Option<u16> {
        None
    }

    /// Whether `ipa` is inside a VMMIO range.
    pub fn vmmio_contains(&self, ipa: u64) -> bool {
        self.vmmio.lock().contains(ipa)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u64 = 1 << 40;

    #[test]
    fn add_remove_and_lookup() {
        let mut r = VmmioRanges::default();
        assert_eq!(
            r.configure(0x1000_0000, 0x2000, VmmioOp::Add, LIMIT),
            Ok(())
        );
        assert!(r.contains(0x1000_0000) && r.contains(0x1000_1fff));
        assert!(!r.contains(0x1000_2000) && !r.contains(0x0fff_ffff));
        assert_eq!(
            r.configure(0x1000_1000, 0x1000, VmmioOp::Add, LIMIT),
            Err(Error::AddrInvalid)
        );
        assert_eq!(
            r.configure(0x1000_2000, 0x1000, VmmioOp::Add, LIMIT),
            Ok(())
        );
        assert_eq!(
            r.configure(0x1000_0000, 0x1000, VmmioOp::Remove, LIMIT),
            Err(Error::AddrInvalid)
        );
        assert_eq!(
            r.configure(0x1000_0000, 0x2000, VmmioOp::Remove, LIMIT),
            Ok(())
        );
        assert!(!r.contains(0x1000_0000) && r.contains(0x1000_2000));
    }

    #[test]
    fn bad_ranges() {
        let mut r = VmmioRanges::default();
        assert_eq!(
            r.configure(0x1000_0800, 0x1000, VmmioOp::Add, LIMIT),
            Err(Error::ArgumentAlignment)
        );
        assert_eq!(
            r.configure(0x1000_0000, 0x10, VmmioOp::Add, LIMIT),
            Err(Error::ArgumentAlignment)
        );
        assert_eq!(
            r.configure(0x1000_0000, 0, VmmioOp::Add, LIMIT),
            Err(Error::ArgumentSize)
        );
        assert_eq!(
            r.configure(!0xfff, 0x2000, VmmioOp::Add, LIMIT),
            Err(Error::AddrOverflow)
        );
        assert_eq!(
            r.configure(LIMIT - 0x1000, 0x2000, VmmioOp::Add, LIMIT),
            Err(Error::AddrOverflow)
        );
        for i in 0..MAX_VMMIO_RANGES as u64 {
            assert_eq!(r.configure(i * 0x1000, 0x1000, VmmioOp::Add, LIMIT), Ok(()));
        }
        assert_eq!(
            r.configure(0x10_0000, 0x1000, VmmioOp::Add, LIMIT),
            Err(Error::Nomem)
        );
    }
}

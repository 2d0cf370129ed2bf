//! Guest RAM as the hypervisor sees it: a physically contiguous block of frames that belongs to
//! one VM, reachable at EL2 through the identity map.
//!
//! This is the one place that turns a guest memory block into bytes; every access is bounds
//! checked against the block, so no offset can reach memory the VM does not own.

use crate::mm::addr::PhysRange;

/// One VM's RAM: `range` (host physical) appears at `ipa` in the guest.
#[derive(Debug)]
pub struct GuestMemory {
    range: PhysRange,
    ipa: u64,
}

/// An access outside the VM's RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfBounds;

impl GuestMemory {
    /// Take ownership of `range` (just allocated from the frame allocator) for a VM that sees it
    /// at `ipa`.
    pub fn new(range: PhysRange, ipa: u64) -> Self {
        Self { range, ipa }
    }

    /// Host physical range.
    pub fn range(&self) -> PhysRange {
        self.range
    }

    /// First guest physical address.
    pub fn ipa(&self) -> u64 {
        self.ipa
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.range.size()
    }

    /// Copy `bytes` into the guest at guest physical address `ipa`, and clean them to the point
    /// of coherency (the guest starts with its MMU and caches off).
    pub fn write(&mut self, ipa: u64, bytes: &[u8]) -> Result<(), OutOfBounds> {
        let offset = ipa.checked_sub(self.ipa).ok_or(OutOfBounds)?;
        let end = offset.checked_add(bytes.len() as u64).ok_or(OutOfBounds)?;
        if end > self.range.size() {
            return Err(OutOfBounds);
        }
        let dst = self.range.start() + offset;
        // SAFETY: [dst, dst + len) lies inside this VM's block (checked above), which the frame
        // allocator gave to this `GuestMemory` alone and which is mapped read-write at EL2;
        // `bytes` is hypervisor memory that cannot overlap a block handed out by the allocator.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst as *mut u8, bytes.len()) };
        crate::arch::aarch64::cpu::clean_dcache_range(dst, bytes.len() as u64);
        Ok(())
    }

    /// Zero the whole block (and clean it), so a VM never sees another's data.
    pub fn clear(&mut self) {
        let start = self.range.start();
        // SAFETY: the block belongs to this `GuestMemory` and is mapped read-write at EL2.
        unsafe { crate::arch::aarch64::cpu::zero_range(start, self.range.size()) };
        crate::arch::aarch64::cpu::clean_dcache_range(start, self.range.size());
    }

    /// Whether host physical `[pa, pa + len)` lies inside this VM's RAM.
    pub fn contains_pa(&self, pa: u64, len: u64) -> bool {
        pa >= self.range.start()
            && pa
                .checked_add(len)
                .is_some_and(|end| end <= self.range.start() + self.range.size())
    }

    /// Copy host physical `[pa, pa + buf.len())`, which must lie inside this VM's RAM, into
    /// `buf` (a hypercall reading a guest buffer after translating its address).
    pub fn read_pa(&self, pa: u64, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        if !self.contains_pa(pa, buf.len() as u64) {
            return Err(OutOfBounds);
        }
        // SAFETY: [pa, pa + len) lies inside this VM's block (checked above), mapped read-write
        // at EL2 by the identity map; `buf` is hypervisor memory, disjoint from every block the
        // frame allocator hands out.
        unsafe { core::ptr::copy_nonoverlapping(pa as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }
}

/// Copy host physical `[pa, pa + buf.len())` into `buf` if it is RAM of an extent mapped in
/// `space` (a hypercall reading a caller's buffer after the MMU translated its address).
pub fn read_mapped(
    space: &crate::object::addrspace::AddrSpaceObject,
    pa: u64,
    buf: &mut [u8],
) -> Result<(), OutOfBounds> {
    let len = buf.len();
    space
        .with_ram_pa(pa, len as u64, || {
            // SAFETY: `with_ram_pa` checked that the range is RAM (identity mapped read-write at
            // EL2) of an extent mapped in the caller's address space, so the memory database
            // gives it to that extent, not to the hypervisor; the address space's lock, held
            // during the copy, keeps it from going back to the frame allocator meanwhile. `buf`
            // is hypervisor memory, disjoint from it.
            unsafe { core::ptr::copy_nonoverlapping(pa as *const u8, buf.as_mut_ptr(), len) };
        })
        .ok_or(OutOfBounds)
}

/// Copy `data` to host physical `pa` if it is RAM of an extent mapped in `space`.
pub fn write_mapped(
    space: &crate::object::addrspace::AddrSpaceObject,
    pa: u64,
    data: &[u8],
) -> Result<(), OutOfBounds> {
    space
        .with_ram_pa(pa, data.len() as u64, || {
            // SAFETY: as in `read_mapped`: guest RAM of an extent, held while copying, disjoint
            // from the hypervisor buffer `data`.
            unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), pa as *mut u8, data.len()) };
        })
        .ok_or(OutOfBounds)
}

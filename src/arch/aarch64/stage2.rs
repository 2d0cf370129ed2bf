//! Stage-2 translation: a guest's IPA space, built with `aarch64-paging` over frames from the
//! global frame allocator, plus the VTCR/VTTBR programming and TLB maintenance by VMID.
//!
//! The IPA size follows the CPU (ID_AA64MMFR0_EL1.PARange): with at least 44 physical address
//! bits guests get up to 48 bits and the walk starts at level 0; otherwise up to 39 bits with the
//! walk starting at level 1 (40-43 bits would need concatenated root tables, so such CPUs get
//! 39). Every guest has its own VMID.

use aarch64_paging::Mapping;
use aarch64_paging::descriptor::{PhysicalAddress, Stage2Attributes};
use aarch64_paging::paging::{
    Constraints, MemoryRegion, PageTable, Stage2 as Stage2Regime, Translation,
};
use core::arch::asm;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, Ordering};

use crate::mm::FRAMES;
use crate::mm::addr::PAGE_SIZE;

/// Bits of guest physical address space on this machine.
pub fn ipa_bits() -> u32 {
    let pa = super::cpu::pa_bits();
    if pa >= 44 { pa.min(48) } else { pa.min(39) }
}

/// The level the stage-2 walk starts at for [`ipa_bits`] (one root table, no concatenation).
fn root_level() -> usize {
    if ipa_bits() > 39 { 0 } else { 1 }
}

/// Allocates stage-2 tables from [`FRAMES`]; all RAM is identity mapped at EL2, so a table's
/// physical address is also where EL2 writes it.
pub struct FrameTranslation;

impl Translation<Stage2Attributes> for FrameTranslation {
    fn allocate_table(&mut self) -> (NonNull<PageTable<Stage2Attributes>>, PhysicalAddress) {
        let frame = match FRAMES.lock().alloc(1) {
            Ok(f) => f,
            Err(e) => panic!("no memory for a stage-2 table: {e}"),
        };
        let ptr = frame.start() as *mut PageTable<Stage2Attributes>;
        // SAFETY: the frame was just allocated, so nothing else uses it, and all RAM is mapped
        // read-write at EL2; zeroes are an empty table.
        unsafe { core::ptr::write_bytes(ptr.cast::<u8>(), 0, PAGE_SIZE as usize) };
        (
            NonNull::new(ptr).unwrap_or(NonNull::dangling()),
            PhysicalAddress(frame.start() as usize),
        )
    }

    unsafe fn deallocate_table(&mut self, table: NonNull<PageTable<Stage2Attributes>>) {
        let start = table.as_ptr() as u64;
        if let Some(range) = crate::mm::addr::PhysRange::from_base_size(start, PAGE_SIZE) {
            let _ = FRAMES.lock().free(range);
        }
    }

    fn physical_to_virtual(&self, pa: PhysicalAddress) -> NonNull<PageTable<Stage2Attributes>> {
        NonNull::new(pa.0 as *mut PageTable<Stage2Attributes>).unwrap_or(NonNull::dangling())
    }
}

static NEXT_VMID: AtomicU16 = AtomicU16::new(1);

/// A guest's stage-2 tables.
pub struct Stage2 {
    mapping: Mapping<FrameTranslation, Stage2Regime>,
    vmid: u16,
}

/// Errors from changing a stage-2 mapping.
pub type MapError = aarch64_paging::MapError;

impl Stage2 {
    /// Empty tables with a fresh VMID.
    pub fn new() -> Self {
        let vmid = NEXT_VMID.fetch_add(1, Ordering::Relaxed);
        Self {
            mapping: Mapping::new(FrameTranslation, root_level(), Stage2Regime),
            vmid,
        }
    }

    /// The VMID.
    pub fn vmid(&self) -> u16 {
        self.vmid
    }

    /// Map `size` bytes of normal memory at `ipa` to `pa`, read-write-execute, using block
    /// mappings where aligned. Only for ranges not yet mapped (no break-before-make needed).
    pub fn map_ram(&mut self, ipa: u64, pa: u64, size: u64) -> Result<(), MapError> {
        let attrs = Stage2Attributes::VALID
            | Stage2Attributes::MEMATTR_NORMAL_INNER_WB
            | Stage2Attributes::MEMATTR_NORMAL_OUTER_WB
            | Stage2Attributes::S2AP_ACCESS_RW
            | Stage2Attributes::SH_INNER
            | Stage2Attributes::ACCESS_FLAG;
        let region = MemoryRegion::new(ipa as usize, (ipa + size) as usize);
        self.mapping.map_range(
            &region,
            PhysicalAddress(pa as usize),
            attrs,
            Constraints::empty(),
        )
    }

    /// Map `[pa, pa + size)` read-only and not executable at `ipa` (normal write-back memory):
    /// data the guest may read but never change, such as the boot bundle for the resource
    /// manager.
    pub fn map_read_only(&mut self, ipa: u64, pa: u64, size: u64) -> Result<(), MapError> {
        let attrs = Stage2Attributes::VALID
            | Stage2Attributes::MEMATTR_NORMAL_INNER_WB
            | Stage2Attributes::MEMATTR_NORMAL_OUTER_WB
            | Stage2Attributes::S2AP_ACCESS_RO
            | Stage2Attributes::XN
            | Stage2Attributes::SH_INNER
            | Stage2Attributes::ACCESS_FLAG;
        let region = MemoryRegion::new(ipa as usize, (ipa + size) as usize);
        self.mapping.map_range(
            &region,
            PhysicalAddress(pa as usize),
            attrs,
            Constraints::empty(),
        )
    }

    /// Map device MMIO `[pa, pa + size)` at `ipa`: Device-nGnRE, read-write, never executable
    /// (a device passed through to the guest).
    pub fn map_device(&mut self, ipa: u64, pa: u64, size: u64) -> Result<(), MapError> {
        let attrs = Stage2Attributes::VALID
            | Stage2Attributes::MEMATTR_DEVICE_nGnRE
            | Stage2Attributes::S2AP_ACCESS_RW
            | Stage2Attributes::XN
            | Stage2Attributes::ACCESS_FLAG;
        let region = MemoryRegion::new(ipa as usize, (ipa + size) as usize);
        self.mapping.map_range(
            &region,
            PhysicalAddress(pa as usize),
            attrs,
            Constraints::empty(),
        )
    }

    /// VTTBR_EL2 for this guest: root table and VMID.
    pub fn vttbr(&self) -> u64 {
        self.mapping.root_address().0 as u64 | (u64::from(self.vmid) << 48)
    }
}

impl Default for Stage2 {
    fn default() -> Self {
        Self::new()
    }
}

/// VTCR_EL2 for every guest: 4 KiB granule, [`ipa_bits`] of IPA, inner-shareable write-back
/// walks, 16-bit VMIDs where implemented, output size from the CPU (at most 48 bits).
pub fn vtcr() -> u64 {
    const RES1: u64 = 1 << 31;
    const WBWA: u64 = 1;
    const INNER: u64 = 3;
    let t0sz = 64 - u64::from(ipa_bits());
    // SL0 for a 4 KiB granule: 1 starts the walk at level 1, 2 at level 0.
    let sl0: u64 = if root_level() == 0 { 2 } else { 1 };
    let ps = super::cpu::pa_range().min(5);
    let vs = if super::cpu::vmid_bits() == 16 {
        1 << 19
    } else {
        0
    };
    RES1 | vs | (ps << 16) | (INNER << 12) | (WBWA << 10) | (WBWA << 8) | (sl0 << 6) | t0sz
}

/// Make `vttbr` the current stage-2 translation on this CPU (VTCR_EL2 already set).
pub fn load(vttbr: u64) {
    // SAFETY: VTTBR_EL2 only affects EL1/EL0 translations, and no guest runs on this CPU while
    // it changes.
    unsafe { asm!("msr vttbr_el2, {}", "isb", in(reg) vttbr, options(nostack)) };
}

/// Program VTCR_EL2 on this CPU and drop every stage-1+2 TLB entry for EL1 (once per CPU,
/// before the first guest runs).
pub fn init_this_cpu() {
    // SAFETY: no guest runs yet; invalidating TLB entries is always safe.
    unsafe {
        asm!(
            "msr vtcr_el2, {}",
            "isb",
            "tlbi alle1",
            "dsb nsh",
            "isb",
            in(reg) vtcr(),
            options(nostack)
        )
    };
}

//! Stage-2 translation: a guest's IPA space, built with `aarch64-paging` over frames from the
//! global frame allocator, plus the VTCR/VTTBR programming and TLB maintenance by VMID.
//!
//! The IPA size follows the CPU (ID_AA64MMFR0_EL1.PARange): with at least 44 physical address
//! bits guests get up to 48 bits and the walk starts at level 0; otherwise up to 39 bits with the
//! walk starting at level 1 (40-43 bits would need concatenated root tables, so such CPUs get
//! 39). Every guest has its own hardware VMID, reused after its tables go.
//!
//! Changes to live tables keep break-before-make: a leaf that changes is made invalid first, its
//! TLB entries are invalidated for the guest's VMID on every CPU (`TLBI IPAS2E1IS` per leaf, or
//! `VMALLS12E1IS`, then `VMALLE1IS` for combined stage-1 entries), and only then is the new
//! mapping written. A vCPU that touches the page in between takes a stage-2 fault, which
//! `vm::exit` retries once the change is complete.

use aarch64_paging::Mapping;
use aarch64_paging::descriptor::{PhysicalAddress, Stage2Attributes};
use aarch64_paging::paging::{
    Constraints, MemoryRegion, PageTable, Stage2 as Stage2Regime, Translation,
};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::arch::asm;
use core::ptr::NonNull;
use spin::Mutex;
use wurley_abi::Error;

use crate::mm::FRAMES;
use crate::mm::addr::{PAGE_SIZE, PhysRange};
use crate::object::memextent::{MapAttrs, MemCtx, PhysOps, Stage2Tables, access, memtype};

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
/// physical address is also where EL2 writes it. Counts the tables it holds (one frame each),
/// now and at most, for what a VM costs the hypervisor.
#[derive(Default)]
pub struct FrameTranslation {
    tables: usize,
    peak: usize,
}

impl Translation<Stage2Attributes> for FrameTranslation {
    fn allocate_table(&mut self) -> (NonNull<PageTable<Stage2Attributes>>, PhysicalAddress) {
        let frame = match FRAMES.lock().alloc(1) {
            Ok(f) => f,
            Err(e) => panic!("no memory for a stage-2 table: {e}"),
        };
        self.tables += 1;
        self.peak = self.peak.max(self.tables);
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
        self.tables = self.tables.saturating_sub(1);
    }

    fn physical_to_virtual(&self, pa: PhysicalAddress) -> NonNull<PageTable<Stage2Attributes>> {
        NonNull::new(pa.0 as *mut PageTable<Stage2Attributes>).unwrap_or(NonNull::dangling())
    }
}

/// Hardware VMIDs in use (bit n: VMID n); VMID 0 is never handed out.
static VMIDS: Mutex<[u64; 1024]> = Mutex::new([0; 1024]);

fn alloc_vmid() -> Option<u16> {
    let limit = 1usize << super::cpu::vmid_bits();
    let mut used = VMIDS.lock();
    let n = (1..limit).find(|&n| used[n / 64] & (1 << (n % 64)) == 0)?;
    used[n / 64] |= 1 << (n % 64);
    u16::try_from(n).ok()
}

fn free_vmid(vmid: u16) {
    let n = usize::from(vmid);
    VMIDS.lock()[n / 64] &= !(1 << (n % 64));
}

/// Frames a change of `size` bytes may need for tables, with a margin: refused (`Nomem`)
/// rather than run the frame allocator dry, which `FrameTranslation` cannot report.
fn enough_frames(size: u64) -> bool {
    let need = (8 + size / (2 << 20)) * PAGE_SIZE;
    FRAMES.lock().free_bytes() >= need
}

/// More leaves than this in one change: invalidate the whole VMID instead of each.
const TLBI_BY_IPA_MAX: usize = 64;

/// A guest's stage-2 tables, with a hardware VMID of their own (freed, with its TLB entries,
/// when the tables go).
pub struct Stage2 {
    mapping: Mapping<FrameTranslation, Stage2Regime>,
    vmid: u16,
}

/// Errors from changing a stage-2 mapping.
pub type MapError = aarch64_paging::MapError;

/// The stage-2 descriptor attributes for `a`: memory type, access from the union of user and
/// kernel access, never executable for devices.
pub fn attributes(a: MapAttrs) -> Stage2Attributes {
    let device = memtype::is_device(a.memtype);
    let acc = a.access();
    let mut f = Stage2Attributes::VALID
        | Stage2Attributes::ACCESS_FLAG
        | Stage2Attributes::from_bits_retain(usize::from(a.memtype & 0xf) << 2);
    if !device {
        f |= Stage2Attributes::SH_INNER;
    }
    if acc & access::R != 0 {
        f |= Stage2Attributes::S2AP_ACCESS_RO;
    }
    if acc & access::W != 0 {
        f |= Stage2Attributes::S2AP_ACCESS_WO;
    }
    if device || acc & access::X == 0 {
        f |= Stage2Attributes::XN;
    }
    f
}

fn region(ipa: u64, size: u64) -> MemoryRegion {
    MemoryRegion::new(ipa as usize, ipa.saturating_add(size) as usize)
}

impl Stage2 {
    /// Empty tables with a fresh VMID; `Nomem` if every VMID is in use.
    pub fn new() -> Result<Self, Error> {
        let vmid = alloc_vmid().ok_or(Error::Nomem)?;
        Ok(Self {
            mapping: Mapping::new(FrameTranslation::default(), root_level(), Stage2Regime),
            vmid,
        })
    }

    /// The hardware VMID.
    pub fn vmid(&self) -> u16 {
        self.vmid
    }

    /// VTTBR_EL2 for this guest: root table and VMID.
    pub fn vttbr(&self) -> u64 {
        self.mapping.root_address().0 as u64 | (u64::from(self.vmid) << 48)
    }

    /// Map `[pa, pa + size)` at `ipa` with `flags` where nothing is mapped (no break needed),
    /// using block mappings where aligned.
    fn make(&mut self, ipa: u64, pa: u64, size: u64, flags: Stage2Attributes) -> Result<(), Error> {
        if !enough_frames(size) {
            return Err(Error::Nomem);
        }
        self.mapping
            .map_range(
                &region(ipa, size),
                PhysicalAddress(pa as usize),
                flags,
                Constraints::empty(),
            )
            .map_err(|e| {
                log::debug!("stage 2: map {ipa:#x}+{size:#x}: {e}");
                Error::AddrInvalid
            })
    }

    /// Break-before-make over `[ipa, ipa + size)`: every valid leaf that overlaps it is made
    /// invalid whole and its TLB entries for this VMID are invalidated; then the parts of those
    /// leaves outside the range are mapped again as they were. Returns the physical address
    /// each page of the range had (as `(ipa, pa, size, flags)` pieces).
    fn break_range(
        &mut self,
        ipa: u64,
        size: u64,
    ) -> Result<Vec<(u64, u64, u64, Stage2Attributes)>, Error> {
        let end = ipa.saturating_add(size);
        let mut leaves: Vec<(u64, u64, u64, Stage2Attributes)> = Vec::new();
        let mut oom = false;
        self.mapping
            .walk_range(&region(ipa, size), &mut |mr, d, _level| {
                if d.is_valid() {
                    if leaves.try_reserve(1).is_err() {
                        oom = true;
                        return Err(());
                    }
                    let s = mr.start().0 as u64;
                    let flags = d.flags() - Stage2Attributes::TABLE_OR_PAGE;
                    leaves.push((s, d.output_address().0 as u64, mr.len() as u64, flags));
                }
                Ok(())
            })
            .map_err(|_| {
                if oom {
                    Error::Nomem
                } else {
                    Error::AddrInvalid
                }
            })?;
        if !enough_frames(size) {
            return Err(Error::Nomem);
        }
        for &(s, _, len, _) in &leaves {
            let _ = self.mapping.map_range(
                &region(s, len),
                PhysicalAddress(0),
                Stage2Attributes::empty(),
                Constraints::empty(),
            );
        }
        invalidate_ipas(self.vmid, leaves.iter().map(|l| l.0), leaves.len());
        let mut inside = Vec::new();
        for (s, pa, len, flags) in leaves {
            let e = s + len;
            if s < ipa {
                self.make(s, pa, ipa - s, flags)?;
            }
            if e > end {
                self.make(end, pa + (end - s), e - end, flags)?;
            }
            let (a, b) = (s.max(ipa), e.min(end));
            if a < b && inside.try_reserve(1).is_ok() {
                inside.push((a, pa + (a - s), b - a, flags));
            }
        }
        Ok(inside)
    }
}

impl Stage2Tables for Stage2 {
    fn map(&mut self, ipa: u64, pa: u64, size: u64, attrs: MapAttrs) -> Result<(), Error> {
        self.make(ipa, pa, size, attributes(attrs))
    }

    fn unmap(&mut self, ipa: u64, size: u64) -> Result<(), Error> {
        self.break_range(ipa, size).map(|_| ())
    }

    fn protect(&mut self, ipa: u64, pa: u64, size: u64, attrs: MapAttrs) -> Result<(), Error> {
        self.break_range(ipa, size)?;
        self.make(ipa, pa, size, attributes(attrs))
    }

    fn vttbr(&self) -> u64 {
        Stage2::vttbr(self)
    }

    fn table_frames(&self) -> (usize, usize) {
        let t = self.mapping.translation();
        (t.tables, t.peak)
    }
}

impl Drop for Stage2 {
    fn drop(&mut self) {
        // The tables themselves are freed by `Mapping`; no CPU runs this VMID any more.
        invalidate_vmid(self.vmid);
        free_vmid(self.vmid);
    }
}

/// Run `f` with VTTBR_EL2 holding `vmid` (TLB maintenance by VMID uses the current one), and
/// put the previous value back.
fn with_vmid(vmid: u16, f: impl FnOnce()) {
    let saved: u64;
    // SAFETY: only VTTBR_EL2.VMID matters here: no stage-2 walk happens at EL2 between the two
    // writes (no guest runs on this CPU while it traps, and nothing does AT meanwhile); the
    // old value is restored before anything else uses it.
    unsafe {
        asm!("mrs {}, vttbr_el2", out(reg) saved, options(nomem, nostack));
        asm!("msr vttbr_el2, {}", "isb", in(reg) u64::from(vmid) << 48, options(nostack));
    }
    f();
    // SAFETY: as above: the value read at the start.
    unsafe { asm!("msr vttbr_el2, {}", "isb", in(reg) saved, options(nostack)) };
}

/// Invalidate the stage-2 TLB entries of `vmid` for the leaves starting at `ipas` (`count`
/// of them), and every combined stage-1+2 entry of the VMID, on all CPUs.
fn invalidate_ipas(vmid: u16, ipas: impl Iterator<Item = u64>, count: usize) {
    if count > TLBI_BY_IPA_MAX {
        invalidate_vmid(vmid);
        return;
    }
    with_vmid(vmid, || {
        // SAFETY: TLB maintenance and barriers have no effect on memory contents.
        unsafe { asm!("dsb ishst", options(nostack)) };
        for ipa in ipas {
            // SAFETY: as above.
            unsafe { asm!("tlbi ipas2e1is, {}", in(reg) ipa >> 12, options(nostack)) };
        }
        // SAFETY: as above. Stage-1 entries cached with the old stage-2 translation go too.
        unsafe {
            asm!(
                "dsb ish",
                "tlbi vmalle1is",
                "dsb ish",
                "isb",
                options(nostack)
            )
        };
    });
}

/// Invalidate every TLB entry (stage 1 and 2) of `vmid` on all CPUs.
fn invalidate_vmid(vmid: u16) {
    with_vmid(vmid, || {
        // SAFETY: TLB maintenance and barriers have no effect on memory contents.
        unsafe {
            asm!(
                "dsb ishst",
                "tlbi vmalls12e1is",
                "dsb ish",
                "isb",
                options(nostack)
            )
        };
    });
}

/// The machine as extents and address spaces see it: the frame allocator, cache maintenance
/// and zeroing through the identity map, and these tables.
pub struct El2Phys;

impl PhysOps for El2Phys {
    fn ipa_limit(&self) -> u64 {
        1u64 << ipa_bits()
    }

    fn free_bytes(&self) -> u64 {
        crate::mm::FRAMES.lock().free_bytes()
    }

    fn claim(&self, start: u64, size: u64) -> Result<bool, Error> {
        let range = PhysRange::from_base_size(start, size).ok_or(Error::AddrOverflow)?;
        let mut frames = FRAMES.lock();
        if !frames.manages_any(range) {
            return Ok(false);
        }
        frames
            .alloc_at(range)
            .map(|_| true)
            .map_err(|_| Error::MemdbNotOwner)
    }

    fn release(&self, start: u64, size: u64) {
        if let Some(range) = PhysRange::from_base_size(start, size)
            && let Err(e) = FRAMES.lock().free(range)
        {
            log::error!("frames: {range} not given back: {e}");
        }
    }

    fn zero(&self, pa: u64, size: u64) {
        // SAFETY: extents call this only for RAM (identity mapped read-write at EL2) that the
        // extent owns in the memory database: never the hypervisor's own memory.
        unsafe { super::cpu::zero_range(pa, size) };
        super::cpu::clean_dcache_range(pa, size);
    }

    fn clean(&self, pa: u64, size: u64) {
        super::cpu::clean_dcache_range(pa, size);
    }

    fn flush(&self, pa: u64, size: u64) {
        super::cpu::clean_invalidate_dcache_range(pa, size);
    }

    fn new_tables(&self) -> Result<Box<dyn Stage2Tables>, Error> {
        if !enough_frames(0) {
            return Err(Error::Nomem);
        }
        Ok(Box::new(Stage2::new()?))
    }
}

static EL2_PHYS: El2Phys = El2Phys;

/// The hypervisor's extents and address spaces: over the memory database and this machine.
pub static MEM: MemCtx = MemCtx::new(&crate::mm::MEMDB, &EL2_PHYS);

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

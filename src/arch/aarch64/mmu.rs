//! The EL2 stage-1 MMU: identity-mapped tables built with `aarch64-paging`, W^X permissions from
//! [`crate::arch::stage1`], and turning the MMU on for the boot CPU and the secondaries.
//!
//! Table pages come from a fixed pool in BSS, so the first tables can be built before the MMU
//! (and with it atomics and the heap) is usable. The pool is only ever touched by the CPU that
//! holds the [`Tables`] value: first the boot CPU alone, later whoever holds the lock around it.

use aarch64_paging::Mapping;
use aarch64_paging::descriptor::{El23Attributes, PhysicalAddress};
use aarch64_paging::paging::{Constraints, El2, MemoryRegion, PageTable, Translation};
use core::ptr::NonNull;

use crate::arch::stage1::{self, MAIR_EL2, MapRequest};

/// Table pages available to the EL2 tables.
const POOL_PAGES: usize = 64;

static mut POOL: [PageTable<El23Attributes>; POOL_PAGES] = [PageTable::EMPTY; POOL_PAGES];

/// Hands out pages of [`POOL`]; pages are never reused (Wurley never unmaps its own memory).
pub struct PoolTranslation {
    next: usize,
}

impl Translation<El23Attributes> for PoolTranslation {
    fn allocate_table(&mut self) -> (NonNull<PageTable<El23Attributes>>, PhysicalAddress) {
        let index = self.next;
        assert!(
            index < POOL_PAGES,
            "EL2 page-table pool exhausted ({POOL_PAGES} pages)"
        );
        self.next += 1;
        // SAFETY: each index is handed out once, so no other reference to this page exists;
        // only the address is taken, no reference to the static is formed.
        let page = unsafe { &raw mut POOL[index] };
        let ptr = NonNull::new(page).unwrap_or(NonNull::dangling());
        (ptr, PhysicalAddress(page as usize))
    }

    unsafe fn deallocate_table(&mut self, _table: NonNull<PageTable<El23Attributes>>) {
        // Tables are never freed: the hypervisor's own mappings only grow.
    }

    fn physical_to_virtual(&self, pa: PhysicalAddress) -> NonNull<PageTable<El23Attributes>> {
        NonNull::new(pa.0 as *mut PageTable<El23Attributes>).unwrap_or(NonNull::dangling())
    }
}

/// The register values that turn the MMU on with these tables, shared with the secondaries.
#[derive(Clone, Copy, Debug)]
pub struct MmuRegs {
    /// MAIR_EL2.
    pub mair: u64,
    /// TCR_EL2.
    pub tcr: u64,
    /// TTBR0_EL2.
    pub ttbr0: u64,
    /// SCTLR_EL2 with M, C, I, SA and WXN set.
    pub sctlr: u64,
}

/// The hypervisor's EL2 address space.
pub struct Tables {
    mapping: Mapping<PoolTranslation, El2>,
}

/// Errors from building the tables.
pub type MapError = aarch64_paging::MapError;

impl Tables {
    /// Empty tables covering a 48-bit address space (root at level 0).
    ///
    /// # Safety
    /// At most one `Tables` may exist: it owns the page pool.
    pub unsafe fn new() -> Self {
        Self {
            mapping: Mapping::new(PoolTranslation { next: 0 }, 0, El2),
        }
    }

    /// Map one request identity. Mapping unmapped ranges is allowed while the tables are live.
    pub fn map(&mut self, req: &MapRequest) -> Result<(), MapError> {
        let start = req.range.start() as usize;
        let end = req.range.end() as usize;
        self.mapping.map_range(
            &MemoryRegion::new(start, end),
            PhysicalAddress(start),
            stage1::attributes(req.perm),
            Constraints::empty(),
        )
    }

    /// Register values for these tables on this CPU.
    pub fn regs(&self) -> MmuRegs {
        const TCR_RES1: u64 = (1 << 31) | (1 << 23);
        const T0SZ_48BIT: u64 = 16;
        const WBWA: u64 = 1;
        const INNER_SHAREABLE: u64 = 3;
        let ps = super::cpu::pa_range().min(5); // 48-bit VA: cap the output size at 48 bits
        let tcr = TCR_RES1
            | (ps << 16)
            | (INNER_SHAREABLE << 12)
            | (WBWA << 10)
            | (WBWA << 8)
            | T0SZ_48BIT;
        const SCTLR_RES1: u64 = 0x30c5_0830;
        const M: u64 = 1 << 0;
        const C: u64 = 1 << 2;
        const SA: u64 = 1 << 3;
        const I: u64 = 1 << 12;
        const WXN: u64 = 1 << 19;
        MmuRegs {
            mair: MAIR_EL2,
            tcr,
            ttbr0: self.mapping.root_address().0 as u64,
            sctlr: SCTLR_RES1 | M | C | SA | I | WXN,
        }
    }

    /// Turn the MMU on, on the calling CPU, with these tables.
    ///
    /// # Safety
    /// The tables map, with the right permissions, everything the caller will touch: the whole
    /// image (code, data, stack) and every device in use.
    pub unsafe fn enable(&self) {
        let regs = self.regs();
        // SAFETY: the caller promised the tables cover everything in use; identity mapping keeps
        // the PC and SP valid across the switch.
        unsafe { wurley_enable_mmu(regs.mair, regs.tcr, regs.ttbr0, regs.sctlr) };
        self.mapping.mark_active();
    }
}

unsafe extern "C" {
    /// boot/entry.S: program MAIR/TCR/TTBR0 and SCTLR_EL2.
    fn wurley_enable_mmu(mair: u64, tcr: u64, ttbr0: u64, sctlr: u64);
}

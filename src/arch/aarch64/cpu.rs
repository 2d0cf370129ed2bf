//! CPU-wide EL2 controls: identification, interrupt masking, sleeping, cache maintenance and the
//! hypervisor configuration (HCR_EL2, CPTR_EL2) that holds while no guest runs.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    CNTFRQ_EL0, CNTPCT_EL0, HCR_EL2, ID_AA64MMFR0_EL1, MIDR_EL1, MPIDR_EL1, Readable, Writeable,
};
use core::arch::asm;

/// MPIDR affinity fields (Aff3..Aff0) without the flag bits.
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// This CPU's affinity (MPIDR_EL1 with the flag bits cleared).
pub fn mpidr() -> u64 {
    MPIDR_EL1.get() & MPIDR_AFFINITY_MASK
}

/// The main ID register.
pub fn midr() -> u64 {
    MIDR_EL1.get()
}

/// Physical address size in bits, from ID_AA64MMFR0_EL1.PARange.
pub fn pa_bits() -> u32 {
    match ID_AA64MMFR0_EL1.get() & 0xf {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        5 => 48,
        _ => 52,
    }
}

/// The raw PARange field, for TCR_EL2.PS / VTCR_EL2.PS.
pub fn pa_range() -> u64 {
    ID_AA64MMFR0_EL1.get() & 0xf
}

/// Counter frequency in Hz.
pub fn counter_frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// The physical counter.
pub fn counter() -> u64 {
    barrier::isb(barrier::SY);
    CNTPCT_EL0.get()
}

/// Unmask IRQs at EL2.
pub fn enable_irqs() {
    // SAFETY: changes only PSTATE.I; the vectors are installed before any caller runs.
    unsafe { asm!("msr daifclr, #2", options(nomem, nostack)) };
}

/// Mask IRQs and return the previous DAIF, for [`restore_irqs`].
pub fn save_and_disable_irqs() -> u64 {
    let daif: u64;
    // SAFETY: reads DAIF and masks IRQs; no memory effects.
    unsafe { asm!("mrs {}, daif", "msr daifset, #2", out(reg) daif, options(nomem, nostack)) };
    daif
}

/// Restore the DAIF saved by [`save_and_disable_irqs`].
pub fn restore_irqs(daif: u64) {
    // SAFETY: restores a value read from DAIF on this CPU.
    unsafe { asm!("msr daif, {}", in(reg) daif, options(nomem, nostack)) };
}

/// Mask IRQs, FIQs, SErrors and debug exceptions at EL2.
pub fn disable_all_exceptions() {
    // SAFETY: masking exceptions cannot break memory safety.
    unsafe { asm!("msr daifset, #0xf", options(nomem, nostack)) };
}

/// Wait for an interrupt. With IRQs unmasked the handler runs before this returns.
pub fn wfi() {
    aarch64_cpu::asm::wfi();
}

/// Route physical IRQs, FIQs and SErrors to EL2 and make EL1 AArch64. Without IMO the GIC's
/// interrupts are not taken at EL2 at all.
pub fn route_interrupts_to_el2() {
    HCR_EL2.write(
        HCR_EL2::RW::EL1IsAarch64 + HCR_EL2::IMO::SET + HCR_EL2::FMO::SET + HCR_EL2::AMO::SET,
    );
    barrier::isb(barrier::SY);
}

/// Trap FP/SIMD, SVE and SME at EL2 (CPTR_EL2.TFP/TZ/TSM; nVHE layout, RES1 bits 0x22ff).
/// Wurley is built soft-float, so this turns any stray FP instruction in the hypervisor into an
/// exception dump instead of silent corruption of a guest's registers.
pub fn trap_fp_at_el2() {
    const CPTR_EL2_RES1: u64 = 0x22ff;
    const TZ: u64 = 1 << 8;
    const TFP: u64 = 1 << 10;
    const TSM: u64 = 1 << 12;
    // SAFETY: CPTR_EL2 only controls traps; the hypervisor itself never uses FP/SIMD.
    unsafe {
        asm!("msr cptr_el2, {}", "isb", in(reg) CPTR_EL2_RES1 | TZ | TFP | TSM, options(nostack))
    };
}

/// Run `op` on the address of every data cache line covering `[start, start + len)`, then a
/// DSB.
fn for_each_dcache_line(start: u64, len: u64, op: impl Fn(u64)) {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    let line = 4u64 << ((ctr >> 16) & 0xf);
    let mut addr = start & !(line - 1);
    let end = start.saturating_add(len);
    while addr < end {
        op(addr);
        addr += line;
    }
    barrier::dsb(barrier::SY);
}

/// Clean the data cache lines covering `[start, start + len)` to the point of coherency, so a CPU
/// running with its MMU off (a secondary at entry) reads what this CPU wrote.
pub fn clean_dcache_range(start: u64, len: u64) {
    for_each_dcache_line(start, len, |addr| {
        // SAFETY: cleaning a line has no architectural effect on memory contents.
        unsafe { asm!("dc cvac, {}", in(reg) addr, options(nostack)) };
    });
}

/// Clean and invalidate the data cache lines covering `[start, start + len)` to the point of
/// coherency (`memextent_modify` cache_flush_range): written back, then dropped.
pub fn clean_invalidate_dcache_range(start: u64, len: u64) {
    for_each_dcache_line(start, len, |addr| {
        // SAFETY: a clean and invalidate writes dirty data back first: memory contents do not
        // change.
        unsafe { asm!("dc civac, {}", in(reg) addr, options(nostack)) };
    });
}

/// Invalidate the data cache lines covering `[start, start + len)` (to the point of
/// coherency), discarding anything a cache may hold for memory written with the MMU off.
///
/// # Safety
/// Any dirty data in those lines is lost: only call it for memory whose current contents are in
/// RAM (written with the caches off) and that nobody writes through the cache meanwhile.
pub unsafe fn invalidate_dcache_range(start: u64, len: u64) {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    let line = 4u64 << ((ctr >> 16) & 0xf);
    let mut addr = start & !(line - 1);
    let end = start.saturating_add(len);
    while addr < end {
        // SAFETY: the caller promised these lines hold nothing newer than RAM.
        unsafe { asm!("dc ivac, {}", in(reg) addr, options(nostack)) };
        addr += line;
    }
    barrier::dsb(barrier::SY);
}

/// Whether the CPU implements pointer authentication (address or generic, any algorithm), from
/// ID_AA64ISAR1_EL1 APA/API/GPA/GPI and ID_AA64ISAR2_EL1 APA3/GPA3.
pub fn has_pauth() -> bool {
    let isar1: u64;
    let isar2: u64;
    // SAFETY: ID registers are read-only and side-effect free.
    unsafe {
        asm!("mrs {}, id_aa64isar1_el1", out(reg) isar1, options(nomem, nostack));
        asm!("mrs {}, s3_0_c0_c6_2", out(reg) isar2, options(nomem, nostack));
    }
    let isar1_fields = (isar1 >> 4) & 0xff | (isar1 >> 24) & 0xff;
    let isar2_fields = (isar2 >> 8) & 0xff;
    isar1_fields != 0 || isar2_fields != 0
}

/// VMID width in bits (ID_AA64MMFR1_EL1.VMIDBits: 2 means 16).
pub fn vmid_bits() -> u32 {
    let mmfr1: u64;
    // SAFETY: ID registers are read-only and side-effect free.
    unsafe { asm!("mrs {}, id_aa64mmfr1_el1", out(reg) mmfr1, options(nomem, nostack)) };
    if (mmfr1 >> 4) & 0xf == 2 { 16 } else { 8 }
}

/// Invalidate all instruction caches to the point of unification (inner shareable), after
/// writing code a guest will run.
pub fn invalidate_icache() {
    // SAFETY: cache maintenance without architectural effect on memory.
    unsafe { asm!("dsb ish", "ic ialluis", "dsb ish", "isb", options(nostack)) };
}

/// Zero `[start, start + len)` with `DC ZVA` where the CPU allows it (whole blocks, the ends by
/// plain stores), which is much faster than byte stores for large ranges.
///
/// # Safety
/// The range is mapped read-write Normal memory that nothing else is using.
pub unsafe fn zero_range(start: u64, len: u64) {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effects.
    unsafe { asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack)) };
    let end = start.saturating_add(len);
    let block = 4u64 << (dczid & 0xf);
    if dczid & (1 << 4) != 0 || len < 2 * block {
        // SAFETY: the caller owns the range.
        unsafe { core::ptr::write_bytes(start as *mut u8, 0, len as usize) };
        return;
    }
    let first = start.next_multiple_of(block);
    let last = end & !(block - 1);
    // SAFETY: the caller owns the range; head and tail are inside it.
    unsafe {
        core::ptr::write_bytes(start as *mut u8, 0, (first - start) as usize);
        core::ptr::write_bytes(last as *mut u8, 0, (end - last) as usize);
    }
    let mut addr = first;
    while addr < last {
        // SAFETY: zeroes one naturally aligned block inside the caller's range.
        unsafe { asm!("dc zva, {}", in(reg) addr, options(nostack)) };
        addr += block;
    }
    barrier::dsb(barrier::SY);
}

/// 64 bits from the CPU's random number generator (FEAT_RNG `RNDR`), or `None` if the CPU has
/// none or it could not deliver.
pub fn hardware_random() -> Option<u64> {
    // ID_AA64ISAR0_EL1.RNDR, bits 63:60.
    if read_sysreg!("id_aa64isar0_el1") >> 60 == 0 {
        return None;
    }
    let value: u64;
    let failed: u64;
    // SAFETY: RNDR (s3_3_c2_c4_0) only reads the generator and sets NZCV; it exists because the
    // ID register says so.
    unsafe {
        asm!("mrs {v}, s3_3_c2_c4_0", "cset {f}, eq", v = out(reg) value, f = out(reg) failed, options(nomem, nostack))
    };
    (failed == 0).then_some(value)
}

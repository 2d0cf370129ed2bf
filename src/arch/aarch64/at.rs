//! Guest address translation by the MMU itself: `AT S12E1R` / `AT S12E1W` walk the current
//! guest's stage-1 tables (its TTBRs, TCR and SCTLR) and then its stage-2 tables, exactly as the
//! guest's own access would. Used to reach hypercall buffers given as guest virtual addresses.
//!
//! Only valid while the calling vCPU's EL1 context and VTTBR are loaded, which is the case
//! while its trap is handled.

use core::arch::asm;

/// PAR_EL1.PA (bits 51:12).
const PAR_PA_MASK: u64 = 0x000f_ffff_ffff_f000;

/// The host physical address that guest virtual address `va` reaches for a read (or a write,
/// with `write`), or `None` if the stage-1 or stage-2 walk faults.
pub fn translate(va: u64, write: bool) -> Option<u64> {
    // PAR_EL1 is guest state: keep the guest's value.
    let saved = read_sysreg!("par_el1");
    let par: u64;
    if write {
        // SAFETY: AT only writes PAR_EL1 (restored below); it reads the guest's translation
        // tables through the MMU and cannot fault at EL2.
        unsafe {
            asm!("at s12e1w, {va}", "isb", "mrs {par}, par_el1", va = in(reg) va, par = out(reg) par, options(nostack))
        };
    } else {
        // SAFETY: as above.
        unsafe {
            asm!("at s12e1r, {va}", "isb", "mrs {par}, par_el1", va = in(reg) va, par = out(reg) par, options(nostack))
        };
    }
    write_sysreg!("par_el1", saved);
    if par & 1 != 0 {
        None
    } else {
        Some((par & PAR_PA_MASK) | (va & 0xfff))
    }
}

//! The EL2 physical timer (CNTHP): the hypervisor's own tick on every CPU.

use aarch64_cpu::registers::{CNTHP_CTL_EL2, Writeable};
use core::arch::asm;

/// Arm the timer to fire `ticks` counter ticks from now, interrupt unmasked.
pub fn arm(ticks: u64) {
    // SAFETY: CNTHP_TVAL_EL2 only programs this CPU's hypervisor timer.
    unsafe { asm!("msr cnthp_tval_el2, {}", in(reg) ticks, options(nomem, nostack)) };
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
}

/// Stop the timer on this CPU.
pub fn stop() {
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::CLEAR + CNTHP_CTL_EL2::IMASK::SET);
}

/// Disable the EL1 virtual timer of the vCPU just taken off this CPU, so it cannot interrupt
/// the hypervisor (its saved context keeps the guest's setting).
pub fn stop_virtual() {
    // SAFETY: CNTV_CTL_EL0 belongs to the guest context that has just been saved.
    unsafe { asm!("msr cntv_ctl_el0, xzr", "isb", options(nomem, nostack)) };
}

/// Arm the timer to fire when the physical counter reaches `cval`, interrupt unmasked.
pub fn arm_at(cval: u64) {
    // SAFETY: CNTHP_CVAL_EL2 only programs this CPU's hypervisor timer.
    unsafe { asm!("msr cnthp_cval_el2, {}", in(reg) cval, options(nomem, nostack)) };
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
}

/// When the timer fires next (CNTHP_CVAL_EL2).
pub fn deadline() -> u64 {
    let v: u64;
    // SAFETY: reading CNTHP_CVAL_EL2 has no side effects.
    unsafe { asm!("mrs {}, cnthp_cval_el2", out(reg) v, options(nomem, nostack)) };
    v
}

/// The loaded guest's virtual timer: when it fires (CNTV_CVAL_EL0, in counter ticks; CNTVOFF
/// is 0), if it is enabled and not masked.
pub fn virtual_deadline() -> Option<u64> {
    let ctl = read_sysreg!("cntv_ctl_el0");
    // ENABLE (bit 0) set, IMASK (bit 1) clear.
    (ctl & 0b11 == 0b01).then(|| read_sysreg!("cntv_cval_el0"))
}

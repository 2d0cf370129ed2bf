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

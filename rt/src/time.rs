//! The virtual counter (`CNTVCT_EL0`), the EL1 virtual timer as a wake-up source, and
//! [`wait_until`], the block-until-an-interrupt-says-so loop every test uses.

use core::arch::asm;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::fdt::Fdt;
use crate::gic;

/// The virtual timer's PPI INTID when the device tree does not say (PPI 11).
pub const DEFAULT_VTIMER_INTID: u32 = 27;

static FREQ: AtomicU64 = AtomicU64::new(0);
static VTIMER_INTID: AtomicU32 = AtomicU32::new(DEFAULT_VTIMER_INTID);

/// Read the counter frequency and enable the virtual timer's interrupt (the timer itself stays
/// off until a wait arms it).
pub fn init(fdt: Option<&Fdt<'_>>) {
    let f: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effects.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) f, options(nomem, nostack)) };
    FREQ.store(if f == 0 { 62_500_000 } else { f }, Ordering::Relaxed);
    // `interrupts` of arm,armv8-timer: secure phys, non-secure phys, virtual, hyp.
    let intid = fdt
        .and_then(|f| f.find_compatible("arm,armv8-timer"))
        .and_then(|t| crate::hypdt::Irq::of(&t, 2))
        .map_or(DEFAULT_VTIMER_INTID, |irq| irq.intid);
    VTIMER_INTID.store(intid, Ordering::Relaxed);
    disarm();
    gic::enable(intid, false, timer_irq);
}

/// Enable the virtual timer's interrupt on a secondary vCPU (its own PPI; [`init`] did the
/// boot vCPU's and read the frequency).
pub fn init_cpu() {
    disarm();
    gic::enable(vtimer_intid(), false, timer_irq);
}

/// The virtual timer's INTID (from the device tree's `arm,armv8-timer` node).
pub fn vtimer_intid() -> u32 {
    VTIMER_INTID.load(Ordering::Relaxed)
}

/// The virtual timer fired: turn it off (its level drops); the waiter re-checks the time.
fn timer_irq(_intid: u32) {
    disarm();
}

/// Counter ticks per second.
pub fn frequency() -> u64 {
    FREQ.load(Ordering::Relaxed)
}

/// The virtual counter.
pub fn ticks() -> u64 {
    let t: u64;
    // SAFETY: reading CNTVCT_EL0 (after an ISB so it is not read early) has no side effects.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) t, options(nomem, nostack)) };
    t
}

/// `ticks` as microseconds.
pub fn ticks_to_us(ticks: u64) -> u64 {
    (u128::from(ticks) * 1_000_000 / u128::from(frequency().max(1))) as u64
}

/// Microseconds as counter ticks.
pub fn us_to_ticks(us: u64) -> u64 {
    (u128::from(us) * u128::from(frequency()) / 1_000_000).min(u128::from(u64::MAX)) as u64
}

/// Microseconds since `start` (a [`ticks`] value).
pub fn elapsed_us(start: u64) -> u64 {
    ticks_to_us(ticks().wrapping_sub(start))
}

/// Fire the virtual timer's interrupt at counter value `deadline`.
pub fn arm(deadline: u64) {
    // SAFETY: programming this vCPU's EL1 virtual timer (CVAL, then CTL.ENABLE, IMASK clear).
    unsafe {
        asm!(
            "msr cntv_cval_el0, {d}",
            "msr cntv_ctl_el0, {one}",
            "isb",
            d = in(reg) deadline,
            one = in(reg) 1u64,
            options(nomem, nostack)
        )
    };
}

/// Turn the virtual timer off.
pub fn disarm() {
    // SAFETY: disabling this vCPU's EL1 virtual timer.
    unsafe { asm!("msr cntv_ctl_el0, xzr", "isb", options(nomem, nostack)) };
}

/// Block until `ready()` holds or `timeout_us` passed; returns whether it held.
///
/// `ready` runs with IRQs masked: an interrupt that arrives after it said "not yet" stays
/// pending and wakes the `WFI` that follows, so no wake-up is lost. Between checks the vCPU
/// sleeps in `WFI` (briefly unmasking IRQs to take what woke it); the virtual timer bounds
/// the wait. Spurious wake-ups only cost another check.
pub fn wait_until(timeout_us: u64, mut ready: impl FnMut() -> bool) -> bool {
    let was_masked = crate::irqs_masked();
    let deadline = ticks().saturating_add(us_to_ticks(timeout_us));
    crate::mask_irqs();
    let ok = loop {
        if ready() {
            break true;
        }
        if ticks() >= deadline {
            break false;
        }
        arm(deadline);
        crate::wait_for_interrupt();
        crate::enable_irqs();
        crate::mask_irqs();
    };
    disarm();
    if !was_masked {
        crate::enable_irqs();
    }
    ok
}

/// Sleep for `us` microseconds (on the virtual timer).
pub fn sleep_us(us: u64) {
    wait_until(us, || false);
}

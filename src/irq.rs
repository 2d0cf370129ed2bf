//! Physical interrupts taken at EL2, and the hypervisor tick.
//!
//! The tick is the EL2 physical timer (CNTHP) on every CPU at [`TICK_HZ`]; its PPI comes from the
//! device tree. Other interrupts are not expected yet and are logged.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::arch::aarch64::{gic, percpu, timer};

/// Hypervisor tick rate.
pub const TICK_HZ: u64 = 100;

static HYP_TIMER_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
static TICK_PERIOD: AtomicU64 = AtomicU64::new(0);

/// Counter ticks per hypervisor tick for a counter of `freq` Hz (at least 1).
pub const fn tick_period(freq: u64) -> u64 {
    let p = freq / TICK_HZ;
    if p == 0 { 1 } else { p }
}

/// Record the hypervisor timer's INTID and the counter frequency, before any CPU starts ticking.
pub fn configure_tick(intid: u32, counter_freq: u64) {
    HYP_TIMER_INTID.store(intid, Ordering::Relaxed);
    TICK_PERIOD.store(tick_period(counter_freq), Ordering::Relaxed);
}

/// Start the tick on the calling CPU (its redistributor index given).
pub fn start_tick(redistributor: usize) -> Result<(), gic::Error> {
    gic::enable_ppi(
        HYP_TIMER_INTID.load(Ordering::Relaxed),
        redistributor,
        0x80,
        true,
    )?;
    timer::arm(TICK_PERIOD.load(Ordering::Relaxed));
    Ok(())
}

/// Handle every pending interrupt on this CPU.
pub fn handle() {
    while let Some(id) = gic::acknowledge() {
        let intid = u32::from(id);
        if intid == HYP_TIMER_INTID.load(Ordering::Relaxed) {
            // Re-arming moves the compare value ahead, which drops the level-triggered line.
            timer::arm(TICK_PERIOD.load(Ordering::Relaxed));
            if let Some(cpu) = percpu::current() {
                cpu.ticks.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            log::warn!("unexpected interrupt {intid}");
        }
        gic::end_of_interrupt(id);
    }
}

//! Physical interrupts taken at EL2, and the hypervisor tick.
//!
//! Every CPU splits priority drop from deactivation (ICC_CTLR_EL1.EOImode = 1). Interrupts the
//! hypervisor consumes are dropped and deactivated here; the virtual timer's interrupt is only
//! dropped, then forwarded to the guest through a list register with the HW bit, so the guest's
//! own EOI deactivates it.
//!
//! Sources: the hypervisor tick (CNTHP, [`TICK_HZ`] on every CPU), the kick SGI, the GIC
//! maintenance interrupt, the virtual timer (EL1 CNTV) and the console UART's receive
//! interrupt. Anything else is logged.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::arch::aarch64::{gic, percpu, timer};
use crate::vm::machine::{KICK_SGI, Vm};

/// Hypervisor tick rate.
pub const TICK_HZ: u64 = 100;

static HYP_TIMER_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
static VTIMER_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
static MAINTENANCE_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
static UART_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
static TICK_PERIOD: AtomicU64 = AtomicU64::new(0);

/// Counter ticks per hypervisor tick for a counter of `freq` Hz (at least 1).
pub const fn tick_period(freq: u64) -> u64 {
    let p = freq / TICK_HZ;
    if p == 0 { 1 } else { p }
}

/// The platform's interrupt numbers, recorded before any CPU enables them.
#[derive(Clone, Copy, Debug)]
pub struct Sources {
    /// CNTHP PPI.
    pub hyp_timer: u32,
    /// CNTV PPI.
    pub virt_timer: u32,
    /// GIC maintenance PPI, if the platform has one.
    pub maintenance: Option<u32>,
    /// The console UART's SPI, if known.
    pub uart: Option<u32>,
}

/// Record the interrupt numbers and the counter frequency.
pub fn configure(sources: Sources, counter_freq: u64) {
    HYP_TIMER_INTID.store(sources.hyp_timer, Ordering::Relaxed);
    VTIMER_INTID.store(sources.virt_timer, Ordering::Relaxed);
    MAINTENANCE_INTID.store(sources.maintenance.unwrap_or(u32::MAX), Ordering::Relaxed);
    UART_INTID.store(sources.uart.unwrap_or(u32::MAX), Ordering::Relaxed);
    TICK_PERIOD.store(tick_period(counter_freq), Ordering::Relaxed);
}

/// Enable this CPU's interrupt sources (its redistributor index given) and start the tick.
pub fn start_this_cpu(redistributor: usize) -> Result<(), gic::Error> {
    gic::split_eoi_this_cpu();
    gic::enable_sgi(KICK_SGI, redistributor)?;
    gic::enable_ppi(
        VTIMER_INTID.load(Ordering::Relaxed),
        redistributor,
        0xa0,
        true,
    )?;
    let maintenance = MAINTENANCE_INTID.load(Ordering::Relaxed);
    if maintenance != u32::MAX {
        gic::enable_ppi(maintenance, redistributor, 0x90, true)?;
    }
    gic::enable_ppi(
        HYP_TIMER_INTID.load(Ordering::Relaxed),
        redistributor,
        0x80,
        true,
    )?;
    timer::arm(TICK_PERIOD.load(Ordering::Relaxed));
    Ok(())
}

/// Route the console's receive interrupt to the CPU with affinity `mpidr`.
pub fn enable_console_input(mpidr: u64) -> Result<(), gic::Error> {
    let intid = UART_INTID.load(Ordering::Relaxed);
    if intid == u32::MAX {
        return Ok(());
    }
    gic::enable_spi(intid, mpidr, 0xc0, true)?;
    crate::console::enable_input_interrupt();
    Ok(())
}

/// Deactivate the virtual timer's physical interrupt, left active for a guest that leaves the
/// CPU before deactivating it itself.
pub fn deactivate_virtual_timer() {
    let intid = VTIMER_INTID.load(Ordering::Relaxed);
    if let Ok(id) = arm_gic::IntId::try_from(intid) {
        gic::deactivate(id);
    }
}

/// Make the hypervisor timer fire by `deadline` (counter ticks) at the latest: a vCPU blocked
/// on this CPU must be woken when its virtual timer is due.
pub fn wake_by(deadline: u64) {
    if deadline < timer::deadline() {
        timer::arm_at(deadline);
    }
}

/// Handle every pending interrupt on this CPU while it idles (no vCPU loaded).
pub fn handle() {
    handle_with_guest(None);
}

/// Handle every pending interrupt on this CPU; `guest` is the vCPU loaded here, if any.
pub fn handle_with_guest(guest: Option<(&Vm, usize)>) {
    while let Some(id) = gic::acknowledge() {
        let intid = u32::from(id);
        gic::end_of_interrupt(id);
        if intid == VTIMER_INTID.load(Ordering::Relaxed) {
            match guest {
                // Left active: the guest's EOI of the HW-linked virtual interrupt deactivates it.
                Some((vm, vcpu)) => crate::vm::irqs::virtual_timer_fired(vm, vcpu),
                None => {
                    timer::stop_virtual();
                    gic::deactivate(id);
                }
            }
            continue;
        }
        if intid == HYP_TIMER_INTID.load(Ordering::Relaxed) {
            // Re-arming moves the compare value ahead, which drops the level-triggered line: at
            // the next tick, or sooner if a blocked vCPU's virtual timer falls due before it.
            let next_tick = crate::arch::aarch64::cpu::counter()
                .saturating_add(TICK_PERIOD.load(Ordering::Relaxed));
            if let Some(cpu) = percpu::current() {
                cpu.ticks.fetch_add(1, Ordering::Relaxed);
                let wake = crate::vm::sched::tick(cpu.index);
                timer::arm_at(wake.map_or(next_tick, |w| w.min(next_tick)));
                if cpu.index == 0 {
                    crate::vm::console::flush_quiet_lines();
                }
            } else {
                timer::arm_at(next_tick);
            }
        } else if intid == KICK_SGI {
            if let Some(cpu) = percpu::current() {
                crate::vm::sched::check_preempt(cpu.index);
            }
        } else if intid == UART_INTID.load(Ordering::Relaxed) {
            let mut buf = [0u8; 64];
            loop {
                let n = crate::console::read_input(&mut buf);
                if n == 0 {
                    break;
                }
                crate::vm::console::input(buf.get(..n).unwrap_or(&[]));
            }
        } else if crate::vm::passthrough::fired(intid) {
            // Left active: the guest's deactivation of the HW-linked virtual interrupt ends it.
            continue;
        } else if intid != MAINTENANCE_INTID.load(Ordering::Relaxed) {
            log::warn!("unexpected interrupt {intid}");
        }
        gic::deactivate(id);
    }
}

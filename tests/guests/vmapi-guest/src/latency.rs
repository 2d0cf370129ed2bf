//! Role `latency`: how late the virtual timer's interrupt reaches a vCPU that waits for it.
//!
//! `samples=K` times (default 100, at most [`MAX_SAMPLES`]) the vCPU arms its virtual timer
//! `period-us=P` (default 1000) µs ahead (`CNTV_CVAL_EL0` = now + P), sleeps in WFI until the
//! timer's interrupt, and records how long after the programmed expiry its handler ran. When
//! its CPU is shared the WFI blocks the vCPU and the hypervisor's timer wakes it at the
//! deadline, so the lateness includes the wake-up and any wait behind other vCPUs. Then it
//! prints `VMAPI latency max_us=.. median_us=.. samples=K` and powers off.
//!
//! `warmup-us=W` (default 0) sleeps W µs first, so that the samples do not include the start-up
//! of the machine (VMs booting, printing, the resource manager setting up its links).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use wurley_rt::{args, gic, println, time};

use crate::report::Report;

/// Most samples kept.
pub const MAX_SAMPLES: usize = 2048;

/// The programmed expiry (counter ticks) of the current wait.
static EXPIRY: AtomicU64 = AtomicU64::new(0);
/// The counter when the handler ran.
static HANDLED: AtomicU64 = AtomicU64::new(0);
static FIRED: AtomicBool = AtomicBool::new(false);

/// The virtual timer's interrupt: note the time, turn the timer off (its level drops).
fn timer_irq(_intid: u32) {
    HANDLED.store(time::ticks(), Ordering::Release);
    time::disarm();
    FIRED.store(true, Ordering::Release);
}

pub fn run(r: &mut Report, bootargs: &str) {
    let period_us = args::get_u64(bootargs, "period-us").unwrap_or(1000).max(1);
    let want = args::get_u64(bootargs, "samples").unwrap_or(100) as usize;
    let name = args::get(bootargs, "name").unwrap_or("latency");
    if want == 0 || want > MAX_SAMPLES {
        r.check(
            "setup",
            false,
            format_args!("samples={want} (want 1..={MAX_SAMPLES})"),
        );
        return;
    }
    let warmup_us = args::get_u64(bootargs, "warmup-us").unwrap_or(0);
    if warmup_us > 0 {
        time::sleep_us(warmup_us);
    }
    let period = time::us_to_ticks(period_us);
    gic::set_handler(time::vtimer_intid(), timer_irq);

    let mut samples = [0u32; MAX_SAMPLES];
    let mut early = 0u32;
    let start = time::ticks();
    for s in samples.iter_mut().take(want) {
        FIRED.store(false, Ordering::Release);
        wurley_rt::mask_irqs();
        let expiry = time::ticks().saturating_add(period);
        EXPIRY.store(expiry, Ordering::Release);
        time::arm(expiry);
        // IRQs masked: an interrupt that arrives between the check and the WFI stays pending
        // and ends the WFI; it is taken once they are unmasked.
        while !FIRED.load(Ordering::Acquire) {
            wurley_rt::wait_for_interrupt();
            wurley_rt::enable_irqs();
            wurley_rt::mask_irqs();
        }
        wurley_rt::enable_irqs();
        let handled = HANDLED.load(Ordering::Acquire);
        if handled < expiry {
            early += 1;
        }
        *s = time::ticks_to_us(handled.saturating_sub(expiry)).min(u64::from(u32::MAX)) as u32;
    }
    let total_us = time::elapsed_us(start);
    let taken = samples.get(..want).unwrap_or(&[]);
    // The first sample of the largest lateness: when it happened says what it collided with.
    let max_at = taken
        .iter()
        .enumerate()
        .max_by_key(|&(i, &v)| (v, core::cmp::Reverse(i)))
        .map_or(0, |(i, _)| i);
    let over_1ms = taken.iter().filter(|&&v| v >= 1000).count();

    let taken = samples.get_mut(..want).unwrap_or(&mut []);
    taken.sort_unstable();
    let n = taken.len();
    let at = |i: usize| taken.get(i).copied().unwrap_or(0);
    let median = if n % 2 == 1 {
        at(n / 2)
    } else {
        (at(n / 2 - 1) + at(n / 2)) / 2
    };
    let max = at(n - 1);
    let p90 = at((n * 9 / 10).min(n - 1));
    let mean = taken.iter().map(|&v| u64::from(v)).sum::<u64>() / n as u64;
    println!("VMAPI latency max_us={max} median_us={median} samples={n}");
    r.check(
        "timer",
        early == 0,
        format_args!(
            "name={name} period_us={period_us} min_us={} mean_us={mean} p90_us={p90} max_us={max} max_at={max_at} over_1ms={over_1ms} early={early} total_us={total_us}",
            at(0)
        ),
    );
}

//! Samples of guest-visible time (virtual counter ticks) and the `BENCH` lines that summarise
//! them, plus the error tally every role keeps.

use core::fmt;

use wurley_rt::{println, time};

/// Most samples one measurement keeps (`reps=` is clamped to it).
pub const MAX_SAMPLES: usize = 4096;

/// Samples of one measurement, in counter ticks.
pub struct Samples {
    v: [u32; MAX_SAMPLES],
    n: usize,
    /// Index of the first largest sample (sorting loses it).
    max_at: usize,
}

impl Samples {
    pub const fn new() -> Self {
        Self {
            v: [0; MAX_SAMPLES],
            n: 0,
            max_at: 0,
        }
    }

    /// Forget every sample.
    pub fn clear(&mut self) {
        self.n = 0;
        self.max_at = 0;
    }

    /// Add one sample (dropped once [`MAX_SAMPLES`] are kept).
    pub fn push(&mut self, ticks: u64) {
        let v = ticks.min(u64::from(u32::MAX)) as u32;
        if self.n > 0 && self.v.get(self.max_at).is_some_and(|&m| v > m) {
            self.max_at = self.n;
        }
        if let Some(slot) = self.v.get_mut(self.n) {
            *slot = v;
            self.n += 1;
        }
    }

    /// Print `BENCH <name> n=.. per=.. median_ticks=.. min_ticks=.. max_ticks=.. mean_ticks=..
    /// total_ticks=.. max_at=..` (`max_at`: the sample, counted from 0, of the maximum), each
    /// value being one sample divided by `per` (the operations one sample covers: a batch of
    /// calls, or 2 for half a round trip), with two decimals when `per` > 1.
    pub fn report(&mut self, name: &str, per: u32) {
        let n = self.n;
        let max_at = self.max_at;
        let Some(taken) = self.v.get_mut(..n).filter(|t| !t.is_empty()) else {
            println!("BENCH {name} n=0");
            return;
        };
        taken.sort_unstable();
        let per = u64::from(per.max(1));
        let at = |i: usize| u64::from(taken.get(i).copied().unwrap_or(0));
        // Hundredths of a tick per operation.
        let centi = |sum: u64, count: u64| (sum * 100 + count * per / 2) / (count * per);
        let median = if n % 2 == 1 {
            centi(at(n / 2), 1)
        } else {
            centi(at(n / 2 - 1) + at(n / 2), 2)
        };
        let total: u64 = taken.iter().map(|&v| u64::from(v)).sum();
        println!(
            "BENCH {name} n={n} per={per} median_ticks={} min_ticks={} max_ticks={} mean_ticks={} total_ticks={total} max_at={max_at}",
            Fixed(median, per > 1),
            Fixed(centi(at(0), 1), per > 1),
            Fixed(centi(at(n - 1), 1), per > 1),
            Fixed(centi(total, n as u64), true),
        );
    }
}

/// Hundredths printed as `12.34` (or `12` when `decimals` is false and the value is whole).
struct Fixed(u64, bool);

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1 || !self.0.is_multiple_of(100) {
            write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
        } else {
            write!(f, "{}", self.0 / 100)
        }
    }
}

/// The role's error tally: `BENCH-ERROR` lines, and the final `BENCH-DONE`.
pub struct Report {
    pub role: &'static str,
    errors: u32,
}

impl Report {
    pub const fn new(role: &'static str) -> Self {
        Self { role, errors: 0 }
    }

    /// Print `BENCH-ERROR <role> <details>` and count it.
    pub fn error(&mut self, details: fmt::Arguments<'_>) {
        println!("BENCH-ERROR {} {details}", self.role);
        self.errors += 1;
    }

    /// Print `BENCH-INFO <role> <details>`.
    pub fn info(&self, details: fmt::Arguments<'_>) {
        println!("BENCH-INFO {} {details}", self.role);
    }

    /// Print `BENCH-DONE <role> errors=<n>` and power the VM off.
    pub fn done(&self) -> ! {
        println!("BENCH-DONE {} errors={}", self.role, self.errors);
        wurley_rt::power_off()
    }
}

/// Wait with interrupts masked between checks and `WFI` in between, as long as `cond()` is
/// false, with no timer armed (so the hypervisor's blocking path is the plain one). Only for
/// waits whose wake-up is certain: a lost wake-up hangs the vCPU.
pub fn wait_irq(mut cond: impl FnMut() -> bool) {
    wurley_rt::mask_irqs();
    while !cond() {
        wurley_rt::wait_for_interrupt();
        wurley_rt::enable_irqs();
        wurley_rt::mask_irqs();
    }
    wurley_rt::enable_irqs();
}

/// Busy-wait (IRQs unmasked) until `cond()` or `timeout_ticks` pass; whether `cond()` held.
pub fn spin_until(timeout_ticks: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = time::ticks().saturating_add(timeout_ticks);
    loop {
        if cond() {
            return true;
        }
        if time::ticks() >= deadline {
            return false;
        }
        core::hint::spin_loop();
    }
}

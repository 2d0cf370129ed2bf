//! Role `spin`: every vCPU busy-loops, counting, for a fixed stretch of virtual time, so each
//! count measures the CPU share that vCPU got from the scheduler.
//!
//! `cpus=N` (default 1) vCPUs take part: the boot vCPU starts the first N of `/cpus` with PSCI
//! `CPU_ON` ([`wurley_rt::smp`]). Each counts for `seconds=S` (default 3) of `CNTVCT_EL0` from
//! its own start, never waiting in WFI; the virtual counter is the physical one, so it advances
//! whether the vCPU runs or not. A vCPU that has finished keeps spinning (without counting) until
//! the VM powers off, so the load on the physical CPUs stays the same while the others finish.
//! The boot vCPU then prints `VMAPI spin counts <name> c0 c1 ...` (`name=`, default the role;
//! counts in `/cpus` order) and powers the VM off.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use wurley_rt::fdt::Fdt;
use wurley_rt::smp::{self, MAX_CPUS};
use wurley_rt::{args, println, time};

use crate::report::Report;

/// Counter increments between two reads of the virtual counter.
const CHUNK: u64 = 256;
/// How long past its own end the boot vCPU waits for the others, in seconds.
const GRACE_SECONDS: u64 = 30;

/// Each vCPU's count, by position in `/cpus`.
static COUNTS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Secondaries that have stored their count.
static FINISHED: AtomicU32 = AtomicU32::new(0);
/// The counting stretch in counter ticks.
static DURATION: AtomicU64 = AtomicU64::new(0);

/// Count for `ticks` counter ticks from now; returns the count.
fn spin(ticks: u64) -> u64 {
    let end = time::ticks().saturating_add(ticks);
    let mut n: u64 = 0;
    loop {
        for _ in 0..CHUNK {
            n = core::hint::black_box(n + 1);
        }
        if time::ticks() >= end {
            return n;
        }
    }
}

/// A secondary vCPU: count, publish, keep the CPU busy.
fn secondary(index: usize) -> ! {
    let n = spin(DURATION.load(Ordering::Acquire));
    if let Some(c) = COUNTS.get(index) {
        c.store(n, Ordering::Release);
    }
    FINISHED.fetch_add(1, Ordering::AcqRel);
    loop {
        core::hint::black_box(spin(time::frequency()));
    }
}

pub fn run(r: &mut Report, fdt: &Fdt<'_>, bootargs: &str) {
    let want = args::get_u64(bootargs, "cpus").unwrap_or(1) as usize;
    let seconds = args::get_u64(bootargs, "seconds").unwrap_or(3);
    let name = args::get(bootargs, "name").unwrap_or("spin");
    let cpus = smp::cpus(fdt);
    let me = wurley_rt::mpidr_affinity();
    if want == 0 || want > cpus.len() {
        r.check(
            "setup",
            false,
            format_args!(
                "cpus={want} but the device tree has {} vCPU(s) (at most {MAX_CPUS})",
                cpus.len()
            ),
        );
        return;
    }
    let list = cpus.as_slice().get(..want).unwrap_or(&[]);
    let Some(my_index) = list.iter().position(|&m| m == me) else {
        r.check(
            "setup",
            false,
            format_args!("the boot vCPU (MPIDR {me:#x}) is not among the first {want} of /cpus"),
        );
        return;
    };
    let duration = seconds.saturating_mul(time::frequency());
    DURATION.store(duration, Ordering::Release);

    let mut started = 0u32;
    for (index, &mpidr) in list.iter().enumerate() {
        if index == my_index {
            continue;
        }
        match smp::start_cpu(mpidr, secondary, index) {
            Ok(()) => started += 1,
            Err(code) => {
                r.check(
                    "start-cpu",
                    false,
                    format_args!("CPU_ON of MPIDR {mpidr:#x} failed: {code}"),
                );
                return;
            }
        }
    }

    let mine = spin(duration);
    if let Some(c) = COUNTS.get(my_index) {
        c.store(mine, Ordering::Release);
    }
    // Wait for the others without WFI: this vCPU keeps its share of the CPU meanwhile.
    let deadline = time::ticks().saturating_add(GRACE_SECONDS.saturating_mul(time::frequency()));
    while FINISHED.load(Ordering::Acquire) < started && time::ticks() < deadline {
        core::hint::black_box(spin(time::frequency() / 1000));
    }
    let finished = FINISHED.load(Ordering::Acquire);

    let mut line = Line::new();
    for c in COUNTS.iter().take(want) {
        line.push(c.load(Ordering::Acquire));
    }
    println!("VMAPI spin counts {name}{line}");
    r.check(
        "finished",
        finished == started,
        format_args!(
            "vcpus={want} finished={} seconds={seconds} secondaries_started={}",
            finished + 1,
            smp::started()
        ),
    );
}

/// ` c0 c1 ...` without an allocator.
struct Line {
    counts: [u64; MAX_CPUS],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Self {
            counts: [0; MAX_CPUS],
            len: 0,
        }
    }

    fn push(&mut self, c: u64) {
        if let Some(slot) = self.counts.get_mut(self.len) {
            *slot = c;
            self.len += 1;
        }
    }
}

impl core::fmt::Display for Line {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for c in self.counts.iter().take(self.len) {
            write!(f, " {c}")?;
        }
        Ok(())
    }
}

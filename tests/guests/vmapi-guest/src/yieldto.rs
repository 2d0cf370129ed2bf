//! Role `yield-to`: directed yields (`scheduler_yield` hint 1) between a VM's own vCPUs, with
//! the caps `capabilities = "vcpus"` gives it. Meant for three vCPUs sharing one physical CPU
//! at equal priority.
//!
//! vCPUs 1 and 2 spin, watching a round number. `rounds=` (default 20) times, vCPU 0 starts a
//! new round and yields to vCPU 1 or 2 in turn; the first spinner to see the new round (the
//! first to get the CPU after the yield) claims it. The target must claim every round: a
//! directed yield to a vCPU waiting on the caller's CPU makes it run next. (Plain round robin
//! would give the CPU to the spinners in a fixed order, so half of the rounds would fail.)
//! Also: a yield to an unknown cap (`CSPACE_CAP_NULL`) and to vCPU 0 itself, the caller,
//! which is not waiting: a plain yield, `OK`.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use wurley_abi::{CapId, Error, HypCall};
use wurley_rt::fdt::Fdt;
use wurley_rt::{args, hyp, hypdt, smp};

use crate::report::Report;

/// The current round (vCPU 0 starts each).
static ROUND: AtomicU64 = AtomicU64::new(0);
/// The spinner that saw the current round first (0: none yet).
static FIRST: AtomicUsize = AtomicUsize::new(0);
/// Spinners that have run.
static STARTED: AtomicUsize = AtomicUsize::new(0);

fn spinner(index: usize) -> ! {
    STARTED.fetch_add(1, Ordering::AcqRel);
    let mut seen = 0;
    loop {
        let round = ROUND.load(Ordering::Acquire);
        if round != seen {
            seen = round;
            let _ = FIRST.compare_exchange(0, index, Ordering::AcqRel, Ordering::Acquire);
        }
        core::hint::spin_loop();
    }
}

/// `scheduler_yield` hint 1 (yield to thread) to `cap`.
fn yield_to(cap: CapId) -> Result<(), Error> {
    hyp::result(hyp::smccc(HypCall::SchedulerYield, &[1, cap.0, 0])[0])
}

pub fn run(r: &mut Report, fdt: &Fdt<'_>, bootargs: &str) {
    let rounds = args::get_u64(bootargs, "rounds").unwrap_or(20);
    let caps = hypdt::capabilities(fdt).unwrap_or_default();
    let cpus = smp::cpus(fdt);
    let (Some(v0), Some(v1), Some(v2)) = (caps.vcpus[0], caps.vcpus[1], caps.vcpus[2]) else {
        r.check(
            "setup",
            false,
            format_args!("want caps to 3 own vCPUs, got {}", caps.vcpu_count()),
        );
        return;
    };
    for (index, &mpidr) in cpus.as_slice().iter().enumerate().skip(1).take(2) {
        if let Err(code) = smp::start_cpu(mpidr, spinner, index) {
            r.check("setup", false, format_args!("CPU_ON failed: {code}"));
            return;
        }
    }
    // Let both spinners start.
    while STARTED.load(Ordering::Acquire) < 2 {
        let _ = hyp::smccc(HypCall::SchedulerYield, &[0, 0, 0]);
    }
    r.expect_err(
        "unknown-cap",
        &yield_to(CapId(0x1234_5678)),
        Error::CspaceCapNull,
    );
    r.expect_ok("to-self", &yield_to(v0));
    let mut first = 0;
    for round in 0..rounds {
        let (target, cap) = if round % 2 == 0 { (1, v1) } else { (2, v2) };
        FIRST.store(0, Ordering::Release);
        ROUND.store(round + 1, Ordering::Release);
        if yield_to(cap).is_err() {
            break;
        }
        if FIRST.load(Ordering::Acquire) == target {
            first += 1;
        }
    }
    r.check(
        "target-runs-next",
        first == rounds,
        format_args!("the target ran first after {first} of {rounds} directed yields"),
    );
}

//! Role `affinity`: a VM moves its own vCPUs between physical CPUs with `vcpu_set_affinity`,
//! using the caps `capabilities = "vcpus"` gives it (`/hypervisor/capabilities`, `vcpus`).
//!
//! Needs two vCPUs. The boot vCPU starts vCPU 1, which counts without ever waiting; then:
//! * hostile calls: an unknown cap (`CSPACE_CAP_NULL`), a CPU index the hypervisor does not
//!   run (`cpu=` of a CPU that does not exist, `ARGUMENT_INVALID`), CPU_INDEX_INVALID 0xFFFF
//!   (`ARGUMENT_INVALID`); `vcpu_set_priority` / `vcpu_set_timeslice` on a running vCPU
//!   (`OBJECT_STATE`: INIT-only);
//! * each step moves a vCPU and checks that vCPU 1 still makes progress within
//!   `window-ms=` (default 200) of virtual time: vCPU 1 to CPU 0 (both vCPUs share it), vCPU 0
//!   itself to CPU 1 (the call returns on the new CPU), vCPU 1 back to CPU 1 and vCPU 0 to
//!   CPU 0 (where they started).
//!
//! The hypervisor logs each move (`VM <name>: vCPU <i> now on CPU <c>`), which the host test
//! checks; the guest only sees that every call succeeds and vCPU 1 keeps running.

use core::sync::atomic::{AtomicU64, Ordering};

use wurley_abi::{CapId, Error};
use wurley_rt::fdt::Fdt;
use wurley_rt::{args, hyp, hypdt, smp, time};

use crate::report::Report;

/// vCPU 1's progress.
static COUNT: AtomicU64 = AtomicU64::new(0);

fn counter(_: usize) -> ! {
    loop {
        COUNT.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether vCPU 1's count grows within `window` counter ticks.
fn progresses(window: u64) -> bool {
    let start = COUNT.load(Ordering::Relaxed);
    let end = time::ticks().saturating_add(window);
    while time::ticks() < end {
        if COUNT.load(Ordering::Relaxed) > start.saturating_add(1000) {
            return true;
        }
        core::hint::spin_loop();
    }
    false
}

pub fn run(r: &mut Report, fdt: &Fdt<'_>, bootargs: &str) {
    let window = time::us_to_ticks(args::get_u64(bootargs, "window-ms").unwrap_or(200) * 1000);
    let cpus = smp::cpus(fdt);
    let caps = hypdt::capabilities(fdt).unwrap_or_default();
    let (Some(v0), Some(v1)) = (caps.vcpus[0], caps.vcpus[1]) else {
        r.check(
            "setup",
            false,
            format_args!("want caps to 2 own vCPUs, got {}", caps.vcpu_count()),
        );
        return;
    };
    let Some(&second) = cpus.as_slice().get(1) else {
        r.check("setup", false, format_args!("want 2 vCPUs"));
        return;
    };
    if let Err(code) = smp::start_cpu(second, counter, 1) {
        r.check("setup", false, format_args!("CPU_ON failed: {code}"));
        return;
    }
    r.check(
        "counting",
        progresses(window),
        format_args!("vCPU 1 counts before any move"),
    );

    r.expect_err(
        "unknown-cap",
        &hyp::vcpu_set_affinity(CapId(0x1234_5678), 0),
        Error::CspaceCapNull,
    );
    r.expect_err(
        "no-such-cpu",
        &hyp::vcpu_set_affinity(v1, 4096),
        Error::ArgumentInvalid,
    );
    r.expect_err(
        "cpu-index-invalid",
        &hyp::vcpu_set_affinity(v1, 0xffff),
        Error::ArgumentInvalid,
    );

    // Priority and timeslice are set before a vCPU is activated, never on a running one.
    r.expect_err(
        "priority-init-only",
        &hyp::vcpu_set_priority(v1, 40),
        Error::ObjectState,
    );
    r.expect_err(
        "timeslice-init-only",
        &hyp::vcpu_set_timeslice(v1, 1_000_000),
        Error::ObjectState,
    );

    let moves: [(&str, CapId, u64); 4] = [
        ("v1-to-cpu0", v1, 0),
        ("v0-to-cpu1", v0, 1),
        ("v1-to-cpu1", v1, 1),
        ("v0-to-cpu0", v0, 0),
    ];
    for (name, cap, cpu) in moves {
        if r.expect_ok(name, &hyp::vcpu_set_affinity(cap, cpu)) {
            r.check(
                name,
                progresses(window),
                format_args!("vCPU 1 still counts after the move"),
            );
        }
    }
}

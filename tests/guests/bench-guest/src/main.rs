//! bench-guest: one EL1 guest image that measures Wurley's hot paths in guest-visible time (the
//! virtual counter, `CNTVCT_EL0`); `/chosen/bootargs` picks the role. `bench/bench.py` runs it
//! under QEMU with `-icount shift=0` (one instruction per nanosecond of virtual time, so results
//! repeat exactly) and `tests/bench.rs` runs every role once, briefly, without icount.
//!
//! * `role=solo` ([`solo`]): alone on its CPU, with caps to its own partition, cspace and VIC.
//!   A calibration loop, null hypercalls, message-queue and doorbell send/receive within the VM
//!   (hypercalls only, and to the VM's own vIRQ handler), the virtual timer's interrupt
//!   latency (spinning and blocked in WFI).
//! * `role=ping` / `role=pong` ([`pair`]): two VMs linked by a message-queue pair `chat` and
//!   doorbells `ab` (ping rings pong) and `ba`: ping-pong round trips of 1 B and 240 B messages
//!   and of doorbells, each handled in the receiver's vIRQ handler; with `yield=1` also
//!   `scheduler_yield` ping-pong (both VMs on one CPU at equal priority). `where=` names the
//!   placement in the result names (`same` or `cross` CPU).
//! * `role=ipi` ([`ipi`]): a VM with two vCPUs sends SGIs (`ICC_SGI1R_EL1`) back and forth.
//! * `role=profile` ([`profile`]): prints a marker, then issues unimplemented hypercalls for
//!   `count=` iterations, for instruction traces of the null-hypercall path.
//! * `role=owner` / `role=proxied` ([`proxy`]): proxy scheduling. The proxied VM
//!   (`scheduled-by = "owner"`) times loads from a VMMIO register at `dev=` that the owner
//!   emulates while running it with `vcpu_run`: the stage-2 fault round trip (`stage2_fault`).
//!
//! `reps=N` (default 1000, at most [`stats::MAX_SAMPLES`]) samples per measurement. Output:
//! `BENCH-INFO <role> ...`, one `BENCH <name> n=.. per=.. median_ticks=.. min_ticks=..
//! max_ticks=.. mean_ticks=.. total_ticks=..` line per measurement (values per operation),
//! `BENCH-ERROR <role> ...` for anything that went wrong, and finally
//! `BENCH-DONE <role> errors=<n>`; then the guest powers off. Built for the host it is an empty
//! program, so that `cargo test --workspace` works.

#![cfg_attr(target_os = "none", no_std, no_main)]
// Raw GIC redistributor registers (SGI setup), ICC_SGI1R_EL1, the calibration loop and loads
// from an emulated (VMMIO) register.
#![cfg_attr(target_os = "none", allow(unsafe_code))]

#[cfg(target_os = "none")]
mod ipi;
#[cfg(target_os = "none")]
mod pair;
#[cfg(target_os = "none")]
mod profile;
#[cfg(target_os = "none")]
mod proxy;
#[cfg(target_os = "none")]
mod solo;
#[cfg(target_os = "none")]
mod stats;

#[cfg(target_os = "none")]
wurley_rt::entry!(guest_main);

#[cfg(target_os = "none")]
fn guest_main(_dtb: usize) -> ! {
    use wurley_rt::{args, time};

    let fdt = wurley_rt::fdt();
    let bootargs = fdt
        .as_ref()
        .and_then(|f| f.find_node("/chosen"))
        .and_then(|c| c.prop_str("bootargs"))
        .unwrap_or("");
    let role: &'static str = match args::get(bootargs, "role") {
        Some("solo") => "solo",
        Some("ping") => "ping",
        Some("pong") => "pong",
        Some("ipi") => "ipi",
        Some("profile") => "profile",
        Some("owner") => "owner",
        Some("proxied") => "proxied",
        _ => "unknown",
    };
    let mut r = stats::Report::new(role);
    let reps = args::get_u64(bootargs, "reps")
        .unwrap_or(1000)
        .clamp(1, stats::MAX_SAMPLES as u64) as usize;
    r.info(format_args!(
        "cntfrq={} reps={reps} bootargs=\"{bootargs}\"",
        time::frequency()
    ));
    let Some(fdt) = fdt else {
        r.error(format_args!("no valid device tree"));
        r.done();
    };
    match role {
        "solo" => solo::run(&mut r, &fdt, reps),
        "ping" | "pong" => pair::run(&mut r, &fdt, bootargs, reps, role == "ping"),
        "ipi" => ipi::run(&mut r, &fdt, bootargs, reps),
        "profile" => profile::run(&mut r, bootargs),
        "owner" => proxy::run_owner(&mut r, &fdt, bootargs),
        "proxied" => proxy::run_proxied(&mut r, bootargs, reps),
        _ => r.error(format_args!(
            "unknown role (want role=solo|ping|pong|ipi|profile|owner|proxied)"
        )),
    }
    r.done()
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("bench-guest is a guest: build it for aarch64-unknown-none-softfloat");
}

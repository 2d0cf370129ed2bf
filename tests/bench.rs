//! The benchmark guest (`tests/guests/bench-guest`) still works: each role runs once, briefly
//! (few samples, no icount), in the bundles `bench/bench.py` uses. Timings are never checked
//! here (`make bench` reports them); a run fails on a `BENCH-ERROR` line, a role without
//! `BENCH-DONE <role> errors=0`, or a hypervisor panic.

#![allow(clippy::unwrap_used)]

mod common;

use common::guest::{build_guest, compile};
use common::{Qemu, Run, scratch};
use std::path::{Path, PathBuf};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);
/// Samples per measurement: enough to exercise every loop, few enough to be quick.
const REPS: u32 = 20;

/// A VM node of 16 MiB running the guest at `kernel` with `bootargs`.
fn vm(name: &str, kernel: &Path, bootargs: &str, vcpus: u32, extra: &str) -> String {
    format!(
        r#"{name} {{
            kernel = /incbin/("{}");
            memory-size = <0x0 0x1000000>;
            bootargs = "{bootargs}";
            vcpus = <{vcpus}>;
            {extra}
        }};"#,
        kernel.display()
    )
}

/// The links between `ping` and `pong`: the message-queue pair `chat` and doorbells both ways.
const PAIR_LINKS: &str = r#"links {
        chat { compatible = "wurley,msgqueue-pair"; vms = "ping", "pong"; };
        ab { compatible = "wurley,doorbell"; sender = "ping"; receiver = "pong"; };
        ba { compatible = "wurley,doorbell"; sender = "pong"; receiver = "ping"; };
    };"#;

/// Compile a bundle of `vms` (and `links`) in `dir`.
fn bundle(dir: &Path, vms: &[String], links: &str) -> PathBuf {
    let text = format!(
        "/dts-v1/;\n/ {{\n    compatible = \"wurley,bundle-v1\";\n    vms {{\n{}\n    }};\n    {links}\n}};\n",
        vms.join("\n")
    );
    compile(dir, &text)
}

/// Boot the bundle on `cpus` CPUs until the machine powers off, and check every role.
fn run(dir: &Path, cpus: u32, bundle: PathBuf, roles: &[&str]) -> Run {
    let q = Qemu {
        initrd: Some(bundle),
        ..Qemu::smp(cpus)
    };
    let run = q.run_until(TIMEOUT, |_| false);
    std::fs::write(dir.join("console.log"), &run.log).unwrap();
    if run.timed_out {
        run.fail(&format!("the benchmark did not finish within {TIMEOUT:?}"));
    }
    run.reject("*** EL2 EXCEPTION")
        .reject("*** PANIC")
        .reject("guest exception")
        .reject("BENCH-ERROR");
    for line in run.log.lines().filter(|l| l.contains("BENCH")) {
        eprintln!("{line}");
    }
    for role in roles {
        run.expect(&format!("BENCH-DONE {role} errors=0"));
    }
    run
}

#[test]
fn solo_role() {
    let dir = scratch("bench-solo");
    let k = build_guest("bench-guest", &dir);
    let caps = r#"capabilities = "partition", "cspace", "vic";
            object-memory = <0x100000>;
            console;"#;
    let b = bundle(
        &dir,
        &[vm("solo", &k, &format!("role=solo reps={REPS}"), 1, caps)],
        "",
    );
    let run = run(&dir, 1, b, &["solo"]);
    for name in [
        "null_unimplemented",
        "null_identify",
        "msgq_local_240B",
        "doorbell_local",
        "timer_wfi",
    ] {
        run.expect(&format!("BENCH {name} n={REPS} "));
    }
}

fn pair(cpus: u32, place: &str, yields: bool) {
    let dir = scratch(&format!("bench-pair-{place}"));
    let k = build_guest("bench-guest", &dir);
    let y = if yields { " yield=1" } else { "" };
    let b = bundle(
        &dir,
        &[
            vm(
                "ping",
                &k,
                &format!("role=ping reps={REPS} where={place}{y}"),
                1,
                "console;",
            ),
            vm("pong", &k, "role=pong", 1, ""),
        ],
        PAIR_LINKS,
    );
    let run = run(&dir, cpus, b, &["ping", "pong"]);
    for name in ["msgq_1B", "msgq_240B", "doorbell"] {
        run.expect(&format!("BENCH {name}_{place} n={REPS} "));
    }
    if yields {
        run.expect(&format!("BENCH yield_switch n={REPS} "));
    }
}

#[test]
fn ping_pong_roles_on_one_cpu() {
    pair(1, "same_cpu", true);
}

#[test]
fn ping_pong_roles_across_cpus() {
    pair(2, "cross_cpu", false);
}

#[test]
fn ipi_role_across_cpus() {
    let dir = scratch("bench-ipi");
    let k = build_guest("bench-guest", &dir);
    let b = bundle(
        &dir,
        &[vm(
            "ipi",
            &k,
            &format!("role=ipi reps={REPS} where=cross_cpu"),
            2,
            "console;",
        )],
        "",
    );
    run(&dir, 2, b, &["ipi"]).expect(&format!("BENCH vipi_cross_cpu n={REPS} "));
}

#[test]
fn profile_role() {
    let dir = scratch("bench-profile");
    let k = build_guest("bench-guest", &dir);
    let b = bundle(
        &dir,
        &[vm("profile", &k, "role=profile count=200", 1, "console;")],
        "",
    );
    run(&dir, 1, b, &["profile"])
        .expect("BENCH-PROFILE-START count=200")
        .expect("BENCH-PROFILE-END");
}

#[test]
fn owner_and_proxied_roles() {
    let dir = scratch("bench-proxy");
    let k = build_guest("bench-guest", &dir);
    let b = bundle(
        &dir,
        &[
            vm(
                "owner",
                &k,
                "role=owner guest=proxied dev=0xa000000",
                1,
                "console;",
            ),
            vm(
                "proxied",
                &k,
                &format!("role=proxied reps={REPS} dev=0xa000000"),
                1,
                r#"scheduled-by = "owner";"#,
            ),
        ],
        "",
    );
    run(&dir, 1, b, &["owner", "proxied"])
        .expect(&format!("BENCH stage2_fault n={REPS} "))
        .expect("BENCH-INFO owner reads=");
}

//! VM lifecycle on the whole machine: when the machine ends. The last VM of the manifest to end
//! powers it off; a VM marked `critical` ends it at once, whatever the other VMs are doing; a
//! bundle with nothing to run ends it at once.
//! Guests: `tests/guests/vmapi-guest` in role `spin` (count for `seconds=`, then power off).

#![allow(clippy::unwrap_used)]

mod common;

use common::guest::{build_guest, compile};
use common::{Qemu, scratch};
use std::path::Path;
use std::time::{Duration, Instant};

/// A bundle of 16 MiB, 1-vCPU VMs of `kernel`: (name, bootargs, extra properties).
fn bundle(dir: &Path, kernel: &Path, vms: &[(&str, &str, &str)]) -> std::path::PathBuf {
    let nodes: String = vms
        .iter()
        .map(|(name, args, extra)| {
            format!(
                "        {name} {{\n            kernel = /incbin/(\"{}\");\n            \
                 memory-size = <0x0 0x1000000>;\n            bootargs = \"{args}\";\n            \
                 {extra}\n        }};\n",
                kernel.display()
            )
        })
        .collect();
    let text = format!(
        "/dts-v1/;\n/ {{\n    compatible = \"wurley,bundle-v1\";\n    vms {{\n{nodes}    }};\n}};\n"
    );
    compile(dir, &text)
}

/// A critical VM that powers off after 1 s ends the machine while another VM would spin for a
/// minute more: the run ends long before that, with the critical VM named as the reason.
#[test]
fn a_critical_vm_ending_powers_the_machine_off() {
    let dir = scratch("lifecycle-critical");
    let kernel = build_guest("vmapi-guest", &dir);
    let initrd = bundle(
        &dir,
        &kernel,
        &[
            ("long", "role=spin cpus=1 seconds=60 name=long", ""),
            (
                "brief",
                "role=spin cpus=1 seconds=1 name=brief",
                "critical;",
            ),
        ],
    );
    let q = Qemu {
        initrd: Some(initrd),
        ..Qemu::smp(2)
    };
    let start = Instant::now();
    let run = q.run_until(Duration::from_secs(40), |_| false);
    if run.timed_out {
        run.fail("the critical VM's end did not end the machine");
    }
    run.reject("*** EL2 EXCEPTION").reject("*** PANIC");
    run.expect("VM brief ended: PowerOff")
        .expect("critical VM ended: powering off")
        .reject("VM long ended");
    assert!(
        start.elapsed() < Duration::from_secs(40),
        "took {:?}",
        start.elapsed()
    );
}

/// Without `critical`, the machine waits for every VM: the brief one ends first, the machine
/// stays up until the other ends too. The resource manager hears of the first end (the VM's
/// HALT vIRQ) and reports the VM exited.
#[test]
fn the_machine_ends_with_its_last_vm() {
    let dir = scratch("lifecycle-last");
    let kernel = build_guest("vmapi-guest", &dir);
    let initrd = bundle(
        &dir,
        &kernel,
        &[
            ("slow", "role=spin cpus=1 seconds=3 name=slow", ""),
            ("brief", "role=spin cpus=1 seconds=1 name=brief", ""),
        ],
    );
    let q = Qemu {
        initrd: Some(initrd),
        ..Qemu::smp(2)
    };
    let run = q.run_until(Duration::from_secs(40), |_| false);
    if run.timed_out {
        run.fail("the VMs did not both end");
    }
    run.reject("*** EL2 EXCEPTION")
        .reject("*** PANIC")
        .reject("critical VM ended");
    let at = |needle: &str| {
        run.log
            .find(needle)
            .unwrap_or_else(|| run.fail(&format!("expected {needle:?} in the log")))
    };
    let brief = at("VM brief ended: PowerOff");
    // The resource manager watches both: `slow` is the primary VM (VMID 3), `brief` 0x80.
    let rm_saw = at("[rm] RM: VM brief (vmid 0x80) exited: powered off");
    let slow = at("VM slow ended: PowerOff");
    let off = at("last VM ended: powering off");
    assert!(
        brief < rm_saw && rm_saw < slow && slow < off,
        "wrong order of endings"
    );
}

/// A bundle the resource manager cannot use (a device tree with no `/vms`) starts nothing, so
/// nothing would ever end the machine: the RM reports the error and powers it off at once.
#[test]
fn an_unusable_bundle_powers_the_machine_off() {
    let dir = scratch("lifecycle-unusable");
    let initrd = compile(
        &dir,
        "/dts-v1/;\n/ {\n    compatible = \"wurley,bundle-v1\";\n    other { };\n};\n",
    );
    let q = Qemu {
        initrd: Some(initrd),
        ..Qemu::smp(1)
    };
    let run = q.run_until(Duration::from_secs(20), |_| false);
    if run.timed_out {
        run.fail("the machine stayed up with nothing to run");
    }
    run.reject("*** EL2 EXCEPTION")
        .reject("*** PANIC")
        .expect("[rm] RM: error: bundle: ")
        .expect("[rm] RM: no VM of the manifest runs: powering off");
}

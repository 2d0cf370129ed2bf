//! Linux tests: Debian's arm64 cloud kernel with the busybox initramfs (`qemu/guest/`) booted as
//! a guest under Wurley. Each test builds a boot bundle, boots, and checks the guest's markers;
//! any kernel WARNING, BUG, Oops, call trace or RCU stall in the guest fails it.

#![allow(clippy::unwrap_used)]

mod common;

use common::guest::compile;
use common::{Qemu, scratch};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LINUX_TIMEOUT: Duration = Duration::from_secs(90);

fn guest_dir() -> PathBuf {
    std::env::var_os("WURLEY_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/guest"))
}

/// A bundle with one Linux VM of `vcpus` vCPUs running `wurley.test=<test>`.
fn bundle(name: &str, vcpus: u32, test: &str) -> PathBuf {
    bundle_of(name, vcpus, test, 1)
}

/// A bundle with `vms` identical Linux VMs (named linux1, linux2, ... when more than one).
fn bundle_of(name: &str, vcpus: u32, test: &str, vms: u32) -> PathBuf {
    let dir = scratch(name);
    let out = dir.join("bundle.dtb");
    let guest = guest_dir();
    let kernel = guest.join("Image");
    let initrd = guest.join("initramfs.cpio.gz");
    assert!(
        kernel.exists() && initrd.exists(),
        "no guest kernel in {}: run `make guest` (or `make test`)",
        guest.display()
    );
    let bootargs = format!("console=ttyAMA0 rdinit=/init wurley.test={test}");
    let status = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("qemu/mkbundle.sh"))
        .arg(&out)
        .arg(&kernel)
        .arg(&initrd)
        .arg(&bootargs)
        .arg(vcpus.to_string())
        .arg(if vms > 1 { "256M" } else { "512M" })
        .arg(vms.to_string())
        .status()
        .expect("run qemu/mkbundle.sh");
    assert!(status.success(), "mkbundle failed");
    out
}

/// Boot `test` on `vcpus` vCPUs (on as many physical CPUs) until QEMU exits.
fn boot_linux(name: &str, vcpus: u32, test: &str) -> common::Run {
    boot_linux_on(name, vcpus, test, vcpus)
}

/// Boot one Linux VM with `vcpus` vCPUs on `cpus` physical CPUs and run `wurley.test=test`.
fn boot_linux_on(name: &str, vcpus: u32, test: &str, cpus: u32) -> common::Run {
    let q = Qemu {
        initrd: Some(bundle(name, vcpus, test)),
        ..Qemu::smp(cpus)
    };
    let run = q.run_until(LINUX_TIMEOUT, |_| false);
    if run.timed_out {
        run.fail(&format!(
            "the guest did not finish wurley.test={test} within {LINUX_TIMEOUT:?}"
        ));
    }
    run.reject("*** EL2 EXCEPTION").reject("*** PANIC");
    run.expect(&format!("WURLEY-GUEST-UP cpus={vcpus} "));
    check_dmesg(&run);
    run
}

fn check_dmesg(run: &common::Run) {
    let Some(start) = run.log.find("WURLEY-DMESG-BEGIN") else {
        run.fail("the guest printed no dmesg check")
    };
    let Some(len) = run.log[start..].find("WURLEY-DMESG-END") else {
        run.fail("unterminated dmesg check")
    };
    let body: Vec<&str> = run.log[start..start + len]
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    if !body.is_empty() {
        run.fail(&format!(
            "the guest kernel logged problems:\n{}",
            body.join("\n")
        ));
    }
}

fn expect_pass(run: &common::Run, test: &str) {
    run.expect(&format!("WURLEY-TEST {test} PASS"));
}

fn powered_off_cleanly(run: &common::Run) {
    run.expect("called SYSTEM_OFF")
        .expect("last VM ended: powering off");
    if run.exit != Some(Some(0)) {
        run.fail("QEMU should exit with status 0 after the guest powers off");
    }
}

/// The primary VM (no `memory-base` in its manifest) is identity mapped by the RM: it says at
/// which PA, and Linux finds its RAM there (its device tree's memory node, `/proc/iomem`).
fn identity_mapped(run: &common::Run) {
    const SAID: &str = "RM: VM linux: primary VM, identity mapped at PA 0x";
    let Some(at) = run.log.find(SAID) else {
        run.fail("the RM did not say where it identity mapped the primary VM")
    };
    let hex: String = run.log[at + SAID.len()..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    let pa = u64::from_str_radix(&hex, 16).unwrap();
    run.expect(&format!("WURLEY-MEMORY memory@{pa:x} iomem={pa:08x}-"));
}

#[test]
fn linux_boots_and_powers_off_1_vcpu() {
    let run = boot_linux("boot1", 1, "boot");
    expect_pass(&run, "boot");
    identity_mapped(&run);
    powered_off_cleanly(&run);
}

#[test]
fn linux_boots_and_powers_off_2_vcpus() {
    let run = boot_linux("boot2", 2, "boot");
    expect_pass(&run, "boot");
    powered_off_cleanly(&run);
}

#[test]
fn linux_clock_advances_correctly() {
    for vcpus in [1, 2] {
        let run = boot_linux(&format!("clock{vcpus}"), vcpus, "clock");
        expect_pass(&run, "clock");
        powered_off_cleanly(&run);
    }
}

#[test]
fn linux_ipis_reach_every_vcpu() {
    let run = boot_linux("ipi2", 2, "ipi");
    expect_pass(&run, "ipi");
    powered_off_cleanly(&run);
}

/// Four vCPUs on two physical CPUs: the scheduler shares the CPUs, guests' WFI blocks their
/// vCPU, and IPIs between vCPUs on one CPU and across CPUs all arrive.
#[test]
fn four_vcpus_share_two_cpus() {
    let run = boot_linux_on("ipi4on2", 4, "ipi", 2);
    expect_pass(&run, "ipi");
    run.expect("4 vCPUs on CPUs 0,1,0,1");
    powered_off_cleanly(&run);
}

/// Two Linux VMs on one physical CPU both boot, keep time and power off.
#[test]
fn two_vms_share_one_cpu() {
    let q = Qemu {
        initrd: Some(bundle_of("two-vms-one-cpu", 1, "clock", 2)),
        ..Qemu::smp(1)
    };
    let run = q.run_until(LINUX_TIMEOUT, |_| false);
    if run.timed_out {
        run.fail("two VMs on one CPU did not both finish");
    }
    run.reject("*** EL2 EXCEPTION").reject("*** PANIC");
    run.expect("[linux1] WURLEY-TEST clock PASS")
        .expect("[linux2] WURLEY-TEST clock PASS")
        .expect("last VM ended: powering off");
    for vm in ["linux1", "linux2"] {
        check_dmesg_of(&run, vm);
    }
}

/// The dmesg check of VM `vm` when several VMs share the console: only its own lines count.
fn check_dmesg_of(run: &common::Run, vm: &str) {
    let prefix = format!("[{vm}] ");
    let mut inside = false;
    let mut problems = Vec::new();
    for line in run.log.lines().filter_map(|l| l.strip_prefix(&prefix)) {
        if line.starts_with("WURLEY-DMESG-BEGIN") {
            inside = true;
        } else if line.starts_with("WURLEY-DMESG-END") {
            if !problems.is_empty() {
                run.fail(&format!(
                    "{vm}'s kernel logged problems:\n{}",
                    problems.join("\n")
                ));
            }
            return;
        } else if inside && !line.trim().is_empty() {
            problems.push(line.to_string());
        }
    }
    run.fail(&format!("{vm} printed no complete dmesg check"));
}

#[test]
fn linux_reboot_takes_the_reset_path() {
    for vcpus in [1, 2] {
        let run = boot_linux(&format!("reboot{vcpus}"), vcpus, "reboot");
        run.expect("called SYSTEM_RESET")
            .expect("resetting the machine");
    }
}

#[test]
fn two_vms_run_side_by_side_with_named_output() {
    let q = Qemu {
        initrd: Some(bundle_of("two-vms", 1, "boot", 2)),
        ..Qemu::smp(2)
    };
    let run = q.run_until(LINUX_TIMEOUT, |_| false);
    if run.timed_out {
        run.fail("two VMs did not both finish");
    }
    run.expect("[linux1] WURLEY-GUEST-UP cpus=1 ")
        .expect("[linux2] WURLEY-GUEST-UP cpus=1 ")
        .expect("[linux1] WURLEY-TEST boot PASS")
        .expect("[linux2] WURLEY-TEST boot PASS")
        .expect("link chat: ready")
        .expect("VM linux1 ended: PowerOff")
        .expect("VM linux2 ended: PowerOff")
        .expect("last VM ended: powering off");
    // The bundle links the two VMs with a message-queue pair: each kernel sees it under
    // /hypervisor (Gunyah's binding) and boots cleanly with it.
    for vm in ["linux1", "linux2"] {
        let prefix = format!("[{vm}] WURLEY-HYPERVISOR-NODE ");
        let found = run
            .log
            .lines()
            .any(|l| l.starts_with(&prefix) && l.contains(" message-queue-pair@"));
        if !found {
            run.fail(&format!(
                "{vm} did not list a message-queue-pair under /hypervisor"
            ));
        }
    }
}

#[test]
fn manifest_errors_are_reported_and_good_vms_still_start() {
    let dir = scratch("bad-manifest");
    let guest = guest_dir();
    let kernel = guest.join("Image");
    let initrd = guest.join("initramfs.cpio.gz");
    // A VM whose objects do not fit its object-memory (the RM makes them in its partition).
    let cramped = format!(
        r#"cramped {{
            kernel = /incbin/("{}");
            memory-size = <0x0 0x4000000>;
            object-memory = <0x1000>;
        }};"#,
        kernel.display()
    );
    let text = format!(
        r#"/dts-v1/;
/ {{
    compatible = "wurley,bundle-v1";
    vms {{
        greedy {{
            kernel = /incbin/("{k}");
            memory-size = <0x0 0x10000000>;
            vcpus = <64>;
        }};
        noimage {{
            memory-size = <0x0 0x10000000>;
        }};
        good {{
            kernel = /incbin/("{k}");
            initrd = /incbin/("{i}");
            bootargs = "console=ttyAMA0 rdinit=/init wurley.test=boot";
            memory-size = <0x0 0x10000000>;
            vcpus = <1>;
        }};
        {cramped}
    }};
}};
"#,
        k = kernel.display(),
        i = initrd.display()
    );
    let out = compile(&dir, &text);
    let run = Qemu {
        initrd: Some(out),
        ..Qemu::smp(1)
    }
    .run_until(LINUX_TIMEOUT, |_| false);
    run.expect("vm 'greedy'")
        .expect("vm 'noimage'")
        .expect("'kernel'");
    run.expect("WURLEY-TEST boot PASS")
        .expect("VM good ended: PowerOff");
    run.expect("RM: error: VM cramped: not started: ")
        .expect("needs more than its object-memory (4096 bytes)");
}

#[test]
fn interactive_shell_takes_console_input() {
    let dir = scratch("shell");
    let out = dir.join("bundle.dtb");
    let guest = guest_dir();
    let status = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("qemu/mkbundle.sh"))
        .arg(&out)
        .arg(guest.join("Image"))
        .arg(guest.join("initramfs.cpio.gz"))
        .arg("console=ttyAMA0 rdinit=/init")
        .arg("1")
        .arg("256M")
        .status()
        .unwrap();
    assert!(status.success());
    let q = Qemu {
        initrd: Some(out),
        ..Qemu::smp(1)
    };
    let run = q.run_interactive(
        LINUX_TIMEOUT,
        &[
            ("built-in shell", "echo typed-$((6 * 7))\n"),
            ("typed-42", "poweroff -f\n"),
        ],
    );
    if run.timed_out {
        run.fail("the shell did not answer typed input and power off");
    }
    run.expect("typed-42").expect("called SYSTEM_OFF");
}

/// Where QEMU `virt` puts the first `-device virtio-blk-device`: its virtio-mmio transports are
/// 32 slots of 0x200 bytes from 0x0a00_0000, slot n with SPI 16 + n (edge, rising), and a
/// virtio device plugs into the free transport with the highest number. Found empirically with
/// QEMU 7.2: `info qtree` shows the disk on `virtio-mmio-bus.31` at `mmio 0a003e00/200` (a second
/// disk would take slot 30 at 0x0a003c00); QEMU's own device tree describes that slot as
/// `virtio_mmio@a003e00 { interrupts = <0 0x2f 1>; dma-coherent; }`; and Linux booted directly on
/// QEMU (`qemu/guest/run-bare.sh wurley.test=disk -- -device ... -drive ...`) finds the disk on
/// transport `a003e00.virtio_mmio`, its interrupt `GICv3 79 Edge` (INTID 79 = SPI 47).
const VIRTIO_DISK_SLOT: u64 = 31;
const VIRTIO_DISK_BASE: u64 = 0x0a00_0000 + VIRTIO_DISK_SLOT * 0x200; // 0x0a00_3e00
const VIRTIO_DISK_SPI: u64 = 16 + VIRTIO_DISK_SLOT; // 47, INTID 79

/// A QEMU virtio-mmio disk passed through to a Linux VM: the hypervisor maps the transport's
/// MMIO window at the same address, forwards its SPI and describes it in the guest's device
/// tree; the guest loads the virtio modules from its initramfs, reads the disk (marker in the
/// first sector, then the whole 1 MiB) and counts the transport's interrupts (`wurley.test=disk`
/// in `qemu/guest/init`).
///
/// The device does DMA to the addresses the guest gives it, which it takes as physical: the VM's
/// RAM is placed with an explicit `memory-base` so that it can be identity mapped (IPA = PA,
/// no SMMU), at 0x8000_0000, inside QEMU's 2 GiB of RAM (0x4000_0000..0xc000_0000) and clear
/// of the hypervisor image and the boot bundle QEMU loads near 0x4000_0000.
#[test]
fn linux_uses_a_passthrough_virtio_disk() {
    let dir = scratch("virtio-disk");
    let guest = guest_dir();
    let kernel = guest.join("Image");
    let initrd = guest.join("initramfs.cpio.gz");
    assert!(
        kernel.exists() && initrd.exists(),
        "no guest kernel in {}: run `make guest` (or `make test`)",
        guest.display()
    );
    let disk = dir.join("disk.img");
    let mut image = vec![0u8; 1 << 20];
    image[..18].copy_from_slice(b"WURLEY-DISK-MARKER");
    std::fs::write(&disk, &image).unwrap();
    let text = format!(
        r#"/dts-v1/;
/ {{
    compatible = "wurley,bundle-v1";
    vms {{
        linux {{
            kernel = /incbin/("{k}");
            initrd = /incbin/("{i}");
            bootargs = "console=ttyAMA0 rdinit=/init wurley.test=disk";
            memory-base = /bits/ 64 <0x80000000>;
            memory-size = /bits/ 64 <0x20000000>;
            vcpus = <2>;
            console;
            devices {{
                disk {{
                    compatible = "virtio,mmio";
                    reg = /bits/ 64 <{base:#x} 0x200>;
                    interrupts = <0 {spi} 1>;
                    dma-coherent;
                }};
            }};
        }};
    }};
}};
"#,
        k = kernel.display(),
        i = initrd.display(),
        base = VIRTIO_DISK_BASE,
        spi = VIRTIO_DISK_SPI,
    );
    let out = compile(&dir, &text);
    // QEMU's -drive takes a comma as a separator: a comma in the path is written twice.
    let drive = format!(
        "if=none,id=d0,format=raw,file={}",
        disk.display().to_string().replace(',', ",,")
    );
    let q = Qemu {
        mem: "2G".into(),
        initrd: Some(out),
        extra: vec![
            "-device".into(),
            "virtio-blk-device,drive=d0".into(),
            "-drive".into(),
            drive,
        ],
        ..Qemu::smp(2)
    };
    let run = q.run_until(LINUX_TIMEOUT, |_| false);
    if run.timed_out {
        run.fail("the guest did not finish wurley.test=disk");
    }
    run.reject("*** EL2 EXCEPTION").reject("*** PANIC");
    run.expect("WURLEY-GUEST-UP cpus=2 ");
    expect_pass(&run, "disk");
    // The guest found the disk on the transport at the address the bundle gave.
    run.expect(&format!("transport={VIRTIO_DISK_BASE:x}."));
    check_dmesg(&run);
    powered_off_cleanly(&run);
}

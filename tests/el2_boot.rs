//! EL2 tests: the hypervisor booted alone in QEMU for several CPU counts and memory sizes, its
//! boot log, its error paths (a broken device tree, deliberate faults) and its idle behaviour.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Qemu, dump_dtb, scratch};
use std::process::Command;
use std::time::Duration;

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
const IDLE: &str = "no guests to run: idling";

fn boot(q: &Qemu) -> common::Run {
    let run = q.run_until(BOOT_TIMEOUT, |log| {
        log.contains(IDLE) || log.contains("***")
    });
    run.reject("***").expect(IDLE);
    run
}

fn boots_with_all_cpus(smp: u32) {
    let run = boot(&Qemu::smp(smp));
    run.expect(&format!("{smp} CPUs in the device tree"))
        .expect(&format!("{smp} of {smp} CPUs online"))
        .expect(&format!(
            "hypervisor timer ticking on all {smp} online CPUs"
        ))
        .expect("memory: [0x40000000..0x80000000) (1024 MiB)")
        .expect("GIC: distributor [0x8000000..0x8010000)")
        .expect("console: /pl011@9000000 at [0x9000000..0x9001000)")
        .expect("timer PPIs: secure 29, non-secure 30, virtual 27, hypervisor 26")
        .expect("PSCI 1.1 via Smc")
        .reject("ERROR");
    for cpu in 1..smp {
        run.expect(&format!("[cpu{cpu}] INFO  CPU {cpu} online"));
    }
}

#[test]
fn boots_smp1() {
    boots_with_all_cpus(1);
}

#[test]
fn boots_smp2() {
    boots_with_all_cpus(2);
}

#[test]
fn boots_smp4() {
    boots_with_all_cpus(4);
}

#[test]
fn boots_smp8() {
    boots_with_all_cpus(8);
}

#[test]
fn memory_map_follows_the_ram_size() {
    let run = boot(&Qemu {
        mem: "512M".into(),
        ..Qemu::smp(1)
    });
    run.expect("memory: [0x40000000..0x60000000) (512 MiB)");
    let run = boot(&Qemu {
        mem: "2G".into(),
        ..Qemu::smp(1)
    });
    run.expect("memory: [0x40000000..0xc0000000) (2048 MiB)");
    // The memory database has every page of RAM: the hypervisor's and the root partition's.
    let line = run
        .log
        .lines()
        .find(|l| l.contains("memory database: "))
        .unwrap_or_else(|| run.fail("no memory database line"));
    let number_after = |key: &str| -> u64 {
        let rest = &line[line.find(key).unwrap_or_else(|| run.fail(line)) + key.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| run.fail(line))
    };
    let root_mib = number_after("root partition ");
    let hyp_kib = number_after("hypervisor ");
    assert!(
        (2000..2048).contains(&root_mib)
            && hyp_kib > 100
            && root_mib * 1024 + hyp_kib <= 2048 * 1024,
        "{line}"
    );
}

#[test]
fn initrd_and_bootargs_are_reported_and_kept_out_of_free_memory() {
    let dir = scratch("initrd");
    let initrd = dir.join("initrd.bin");
    std::fs::write(&initrd, vec![0x5au8; 300 * 1024]).unwrap();
    let run = boot(&Qemu {
        initrd: Some(initrd),
        append: Some("console=ttyAMA0 loglevel=info".into()),
        ..Qemu::smp(1)
    });
    // The command line as given, with what the test run appends to every one.
    let want = common::append_with_test_args(Some("console=ttyAMA0 loglevel=info"));
    run.expect(&format!("bootargs: \"{}\"", want.unwrap_or_default()));
    let line = run
        .log
        .lines()
        .find(|l| l.contains("initrd: ["))
        .unwrap_or_else(|| run.fail("no initrd line"));
    let (start, end) = logged_range(line);
    assert_eq!(end - start, 300 * 1024, "initrd size");
    for free in run.log.lines().filter(|l| l.contains(" free: [")) {
        let (fs, fe) = logged_range(free);
        assert!(
            fe <= start || fs >= end,
            "free range {free} overlaps the initrd"
        );
    }
}

/// The `[start..end)` range printed on a log line.
fn logged_range(line: &str) -> (u64, u64) {
    let inner = line
        .rsplit('[')
        .next()
        .and_then(|r| r.split(')').next())
        .expect("a [start..end) range");
    let (start, end) = inner.split_once("..").expect("a [start..end) range");
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex address");
    (hex(start), hex(end))
}

#[test]
fn loglevel_in_bootargs_overrides_the_default() {
    let run = Qemu {
        append: Some("loglevel=warn wurley.fault=panic".into()),
        ..Qemu::smp(1)
    }
    .run_until(BOOT_TIMEOUT, |log| log.contains("powering off"));
    run.expect("*** PANIC").reject(" INFO ");
}

#[test]
fn missing_gic_node_is_a_clear_boot_error() {
    let dir = scratch("no-gic");
    let dtb = dir.join("virt-no-gic.dtb");
    dump_dtb(1, "1G", &dtb);
    let status = Command::new("fdtput")
        .arg("-r")
        .arg(&dtb)
        .arg("/intc@8000000")
        .status()
        .expect("run fdtput");
    assert!(status.success(), "fdtput could not delete the GIC node");
    let run = Qemu {
        dtb: Some(dtb),
        ..Qemu::smp(1)
    }
    .run_until(BOOT_TIMEOUT, |_| false);
    if run.timed_out {
        run.fail("a broken device tree must power the machine off, not hang");
    }
    run.expect("wurley: boot error: ")
        .expect("gic")
        .expect("powering off")
        .reject("***");
}

#[test]
fn data_abort_at_el2_prints_a_full_dump_and_stops_the_cpu() {
    let run = Qemu {
        append: Some("wurley.fault=data-abort".into()),
        ..Qemu::smp(2)
    }
    .run_until(BOOT_TIMEOUT, |log| log.contains("*** CPU stopped"));
    run.expect("*** EL2 EXCEPTION on CPU 0: Sync from CurrentElSpx")
        .expect("EC 0x25 Data abort from the same EL")
        .expect("fault: translation fault on read")
        .expect("FAR_EL2 0x0000dead00000000")
        .expect("ELR_EL2 0x")
        .expect(" x30 0x")
        .expect("*** CPU stopped");
}

#[test]
fn undefined_instruction_at_el2_is_reported() {
    let run = Qemu {
        append: Some("wurley.fault=undefined".into()),
        ..Qemu::smp(1)
    }
    .run_until(BOOT_TIMEOUT, |log| log.contains("*** CPU stopped"));
    run.expect("EC 0x00 Unknown reason")
        .expect("*** CPU stopped");
}

#[test]
fn panic_prints_location_and_powers_off() {
    let run = Qemu {
        append: Some("wurley.fault=panic".into()),
        ..Qemu::smp(2)
    }
    .run_until(BOOT_TIMEOUT, |_| false);
    if run.exit.is_none() {
        run.fail("QEMU should have powered off after the panic");
    }
    run.expect("*** PANIC on CPU 0 at src/boot/primary.rs:")
        .expect("deliberate panic requested with wurley.fault=panic")
        .expect("*** powering off");
}

#[test]
fn idle_system_does_not_burn_host_cpu() {
    let mut run = Qemu::smp(4).start_until(BOOT_TIMEOUT, IDLE);
    let hz = 100; // USER_HZ on Linux
    let before = run.cpu_ticks();
    std::thread::sleep(Duration::from_secs(3));
    let used = run.cpu_ticks() - before;
    run.stop();
    // 3 s of wall time is 300 ticks of one host core; an idle machine should use a small part.
    assert!(
        used < 3 * hz / 4,
        "QEMU used {used} ticks of CPU in 3 s of idling (limit {})\n{}",
        3 * hz / 4,
        run.tail()
    );
}

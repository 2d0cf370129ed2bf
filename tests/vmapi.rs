//! VM-API tests: small EL1 guests (`tests/guests/`) that call the Gunyah hypercall ABI directly
//! and report `HYPCALL <name> PASS|FAIL` lines. Each test builds its guest for
//! aarch64-unknown-none-softfloat, turns it into a raw arm64 Image, boots it in a one-VM bundle
//! and checks the lines.

#![allow(clippy::unwrap_used)]

mod common;

use common::guest::{build_guest, build_guest_bin, compile, compile_dts, elf_entry, guest_elf};
use common::{Qemu, Run, scratch};
use std::path::{Path, PathBuf};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Show the lines holding `marker` (the guests' check lines) and fail on any that says FAIL.
fn fail_on_failed_checks(run: &common::Run, marker: &str) {
    for line in run.log.lines().filter(|l| l.contains(marker)) {
        eprintln!("{line}");
        if line.contains(" FAIL") {
            run.fail(&format!("failed check: {line}"));
        }
    }
}

/// A bundle with one 16 MiB, 1-vCPU VM whose kernel is `kernel`.
fn bundle(dir: &Path, name: &str, kernel: &Path) -> PathBuf {
    let text = format!(
        r#"/dts-v1/;
/ {{
    compatible = "wurley,bundle-v1";
    vms {{
        {name} {{
            kernel = /incbin/("{}");
            memory-size = <0x0 0x1000000>;
            vcpus = <1>;
            console;
        }};
    }};
}};
"#,
        kernel.display()
    );
    compile(dir, &text)
}

#[test]
fn hypcall_probe() {
    let dir = scratch("vmapi-hypcall-probe");
    let kernel = build_guest("hypcall-probe", &dir);
    let q = Qemu {
        initrd: Some(bundle(&dir, "probe", &kernel)),
        ..Qemu::smp(1)
    };
    let run = q.run_until(TIMEOUT, |_| false);
    if run.timed_out {
        run.fail(&format!("the probe did not finish within {TIMEOUT:?}"));
    }
    run.reject("*** EL2 EXCEPTION")
        .reject("*** PANIC")
        .reject("HYPCALL panic");
    let checks = [
        "smccc-version",
        "call-uid",
        "revision",
        "call-count",
        "identify-smccc",
        "identify-native",
        "unimplemented-smccc",
        "unimplemented-native",
        "unknown-smccc",
        "hypercall-smc32",
    ];
    for name in checks {
        run.expect(&format!("HYPCALL {name} PASS"));
    }
    fail_on_failed_checks(&run, "HYPCALL");
    run.expect(&format!("HYPCALL-DONE pass={} fail=0", checks.len()));
    run.expect("called SYSTEM_OFF");
    if run.exit != Some(Some(0)) {
        run.fail("QEMU should exit with status 0 after the probe powers off");
    }
    check_footprint(&run, "probe", 16);
}

/// The numbers after `prefix` in the first log line holding it and `also` (digit runs, in
/// order).
fn numbers_after(run: &common::Run, prefix: &str, also: &str) -> Vec<u64> {
    let line = run
        .log
        .lines()
        .find(|l| l.contains(prefix) && l.contains(also))
        .unwrap_or_else(|| run.fail(&format!("expected {prefix:?} ... {also:?} in the log")));
    eprintln!("{line}");
    let rest = &line[line.find(prefix).unwrap() + prefix.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect()
}

/// The hypervisor's footprint lines for VM `name`, which the resource manager built with
/// `ram_mib` MiB of RAM: at assembly (first power-on)
/// `VM <name>: <N> MiB of RAM; hypervisor memory for it: <F> KiB of frames, <H> KiB of heap
/// (frames for its translation tables; heap: <O> KiB charged for its objects, <R> KiB for the VM
/// record)`, the form
/// `make bench` reads, and at retirement
/// `VM <name>: retired; its translation tables: <T> KiB of frames, at most <P> KiB`. Its RAM at
/// least `ram_mib` (the RM may map more, e.g. shared buffers), tables of a few frames (at least
/// a root and a table per level below it, well under 1 MiB for this much RAM), the heap the
/// sum of its parts with both parts non-zero, and the peak at least the figure at start.
fn check_footprint(run: &common::Run, name: &str, ram_mib: u64) {
    let n = numbers_after(run, &format!("VM {name}: "), "hypervisor memory for it");
    let [ram, frames, heap, objects, record, ..] = n[..] else {
        run.fail(&format!("footprint line of {name}: numbers {n:?}"))
    };
    let ok = ram >= ram_mib
        && frames >= 8
        && frames.is_multiple_of(4)
        && frames < 1024
        && objects > 0
        && record > 0
        && heap == objects + record
        && heap < 1024;
    if !ok {
        run.fail(&format!("implausible footprint of {name}: {n:?}"));
    }
    let t = numbers_after(run, &format!("VM {name}: retired; "), "");
    let [now, peak, ..] = t[..] else {
        run.fail(&format!("retirement line of {name}: numbers {t:?}"))
    };
    if peak < frames || peak < now || now == 0 {
        run.fail(&format!(
            "implausible stage-2 tables of {name} at retirement: {t:?}"
        ));
    }
}

/// Three EL1 guests (`tests/guests/vmapi-guest`): `ping` and `pong` linked by a message-queue
/// pair and a doorbell exchange thousands of 240-byte messages and ring the doorbell with
/// masks, all driven by their vIRQs; `hostile`, which holds caps to its own partition, cspace
/// and VIC, walks every error path of the ABI meanwhile. Each prints `VMAPI <role> ...` lines
/// and powers off; the machine stops when all three have.
#[test]
fn msgqueue_doorbell_and_hostile_guests() {
    ipc_guests(4);
}

/// The same three guests sharing one physical CPU: every wait is a blocked vCPU woken by its
/// vIRQ, and the scheduler switches between the VMs.
#[test]
fn msgqueue_doorbell_and_hostile_guests_on_one_cpu() {
    ipc_guests(1);
}

fn ipc_guests(cpus: u32) {
    let dir = scratch(&format!("vmapi-ipc-{cpus}"));
    let kernel = build_guest("vmapi-guest", &dir);
    let k = kernel.display();
    let text = format!(
        r#"/dts-v1/;
/ {{
    compatible = "wurley,bundle-v1";
    vms {{
        ping {{
            kernel = /incbin/("{k}");
            memory-size = <0x0 0x1000000>;
            bootargs = "role=ping count=2000";
            console;
        }};
        pong {{
            kernel = /incbin/("{k}");
            memory-size = <0x0 0x1000000>;
            bootargs = "role=pong count=2000";
        }};
        hostile {{
            kernel = /incbin/("{k}");
            memory-size = <0x0 0x1000000>;
            bootargs = "role=hostile";
            capabilities = "partition", "cspace", "vic";
            object-memory = <0x100000>;
        }};
    }};
    links {{
        chat {{
            compatible = "wurley,msgqueue-pair";
            vms = "ping", "pong";
            queue-depth = <8>;
            message-size = <240>;
        }};
        bell {{
            compatible = "wurley,doorbell";
            sender = "ping";
            receiver = "pong";
        }};
    }};
}};
"#
    );
    let q = Qemu {
        initrd: Some(compile(&dir, &text)),
        ..Qemu::smp(cpus)
    };
    let timeout = Duration::from_secs(120);
    let run = q.run_until(timeout, |_| false);
    if run.timed_out {
        run.fail(&format!("the guests did not all finish within {timeout:?}"));
    }
    run.reject("*** EL2 EXCEPTION")
        .reject("*** PANIC")
        .reject("guest exception");
    fail_on_failed_checks(&run, "VMAPI ");
    for role in ["ping", "pong", "hostile"] {
        let done = run
            .log
            .lines()
            .find(|l| l.contains(&format!("VMAPI {role} DONE")))
            .unwrap_or_else(|| run.fail(&format!("{role} did not report DONE")));
        if !done.contains("fail=0") {
            run.fail(&format!("{role}: {done}"));
        }
    }
    run.expect("link chat: ready").expect("link bell: ready");
    if run.exit != Some(Some(0)) {
        run.fail("QEMU should exit with status 0 once every guest powered off");
    }
}

/// Console line `k` (1-based) the `rmclient` role writes through the RM (without its newline):
/// the same bytes as `tests/guests/vmapi-guest/src/rmclient.rs` generates.
fn rmclient_console_line(k: usize) -> String {
    let prefix = format!("rmclient console line {k} of 5: ");
    let mut line = prefix.clone();
    for i in prefix.len()..119 {
        line.push((b'a' + ((i * 7 + k) % 26) as u8) as char);
    }
    line
}

/// The Resource Manager (`rm/`, package wurley-rm), the root VM the hypervisor starts with the
/// bundle, and a client VM (`vmapi-guest`, role `rmclient`) linked to it by the message-queue
/// pair the hypervisor gives every VM (`gunyah-resource-mgr`, label `rm-client`). The
/// client checks the RM's RPC answers (framing up to 62 continuations, dropped packets,
/// unknown IDs, malformed payloads, status, console, VM_ALLOCATE as the primary VM, VM_EXIT)
/// and powers off; the RM never exits, so the run ends at the client's DONE line.
#[test]
fn rm_rpc_server_answers_a_client() {
    let dir = scratch("vmapi-rm");
    let client = build_guest("vmapi-guest", &dir);
    // The resource manager is the root VM the hypervisor starts with every bundle; the client
    // finds its queues in the `gunyah-resource-mgr` node of its device tree.
    let text = format!(
        r#"/dts-v1/;
/ {{
    compatible = "wurley,bundle-v1";
    vms {{
        client {{
            kernel = /incbin/("{}");
            memory-size = <0x0 0x1000000>;
            bootargs = "role=rmclient";
        }};
    }};
}};
"#,
        client.display()
    );
    let q = Qemu {
        initrd: Some(compile(&dir, &text)),
        ..Qemu::smp(2)
    };
    let timeout = Duration::from_secs(60);
    let run = q.run_until(timeout, |log| log.contains("VMAPI rmclient DONE"));
    for line in run
        .log
        .lines()
        .filter(|l| l.contains("VMAPI ") || l.contains("[rm] "))
    {
        eprintln!("{line}");
    }
    run.reject("*** EL2 EXCEPTION")
        .reject("*** PANIC")
        .reject("guest exception");
    run.expect("[rm] RM: Wurley resource manager ")
        .expect("[rm] RM: client client vmid 0x3 link rm-client")
        .expect("resource manager: ")
        .expect("[rm] RM: serving 1 client(s)");
    let done = run
        .log
        .lines()
        .find(|l| l.contains("VMAPI rmclient DONE"))
        .unwrap_or_else(|| run.fail("the client did not report DONE"));
    fail_on_failed_checks(&run, "VMAPI rmclient ");
    let checks = [
        "get-vmid",
        "get-vmid-value",
        "get-state",
        "get-state-running",
        "set-status",
        "get-state-after-set",
        "set-status-shown",
        "set-status-invalid",
        "get-state-unknown",
        "console-write-closed",
        "console-open",
        "console-write-600",
        "console-flush",
        "console-close",
        "unknown-id",
        "malformed-get-state",
        "stray-continuation-ignored",
        "hyp-resources",
        "hyp-resources-list",
        "hyp-resources-of-rm",
        "max-message-62-continuations",
        "63-continuations-dropped",
        "vm-allocate",
        "vm-allocate-vmid",
        "new-vm-state",
        "new-vm-load",
        "vm-start-not-ready",
        "vm-init-unconfigured",
        "vm-deallocate",
        "deallocated-vm-gone",
        "vm-exit",
        "get-state-after-exit",
        "exited",
    ];
    for name in checks {
        run.expect(&format!("VMAPI rmclient {name} PASS"));
    }
    if !done.contains(&format!("pass={} fail=0", checks.len())) {
        run.fail(&format!("unexpected tally: {done}"));
    }
    // The 600-byte console write, reassembled from three packets and printed by the RM.
    for k in 1..=5 {
        run.expect(&format!("[rm] client: {}", rmclient_console_line(k)));
    }
    // The RM logged the packets it dropped (once each run).
    run.expect("[rm] RM: error: client: dropped 1 packet(s), the first: stray continuation")
        .expect("[rm] RM: error: client: dropped 64 packet(s), the first: 63 continuations");
}

/// Rounds of [`rm_client_drives_a_vm_life_20_times`].
const VMLIFE_ROUNDS: usize = 20;

/// The secondary VM's device tree for role `vmlife`: RAM = the 2 MiB parcel at `base` (where
/// `vmapi-child` is linked), one CPU, the GICv3, timer, PL011 and PSCI every Wurley VM has, and
/// `role=<role>` in `/chosen/bootargs`. The RM adds `/hypervisor` (its RM link and the pair to
/// its owner) in place: the blob has 8 KiB of free space and VM_CONFIG_IMAGE reserves 64 KiB
/// for it.
fn vmchild_dts(base: u64, role: &str) -> String {
    vmchild_dts_with(base, role, "")
}

/// [`vmchild_dts`] with `extra` (nodes) at the end of the root node.
fn vmchild_dts_with(base: u64, role: &str, extra: &str) -> String {
    format!(
        r#"/dts-v1/;
/ {{
    compatible = "linux,dummy-virt";
    #address-cells = <2>;
    #size-cells = <2>;
    interrupt-parent = <&gic>;

    chosen {{
        bootargs = "role={role}";
        stdout-path = "/pl011@9000000";
    }};
    memory@{base:x} {{
        device_type = "memory";
        reg = <0x0 {base:#x} 0x0 0x200000>;
    }};
    cpus {{
        #address-cells = <1>;
        #size-cells = <0>;
        cpu@0 {{
            device_type = "cpu";
            compatible = "arm,armv8";
            reg = <0>;
            enable-method = "psci";
        }};
    }};
    psci {{
        compatible = "arm,psci-1.0", "arm,psci-0.2";
        method = "hvc";
    }};
    gic: intc@8000000 {{
        compatible = "arm,gic-v3";
        #interrupt-cells = <3>;
        interrupt-controller;
        reg = <0x0 0x8000000 0x0 0x10000>, <0x0 0x80a0000 0x0 0x20000>;
    }};
    timer {{
        compatible = "arm,armv8-timer";
        interrupts = <1 13 4>, <1 14 4>, <1 11 4>, <1 10 4>;
    }};
    pl011@9000000 {{
        compatible = "arm,pl011", "arm,primecell";
        reg = <0x0 0x9000000 0x0 0x1000>;
        interrupts = <0 1 4>;
    }};
{extra}}};
"#
    )
}

/// The `vmlife` payload (`tests/guests/vmapi-guest/src/vmlife.rs`): magic, link address, image
/// and DTB lengths (u64 LE each), the image, then the DTB at an 8-byte boundary.
fn vmlife_payload(dir: &Path, base: u64, image: &Path, dtb: &Path) -> PathBuf {
    let image = std::fs::read(image).unwrap();
    let dtb = std::fs::read(dtb).unwrap();
    let mut p = Vec::new();
    p.extend_from_slice(b"WRLYVMLF");
    for v in [base, image.len() as u64, dtb.len() as u64] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p.extend_from_slice(&image);
    p.resize(p.len().next_multiple_of(8), 0);
    p.extend_from_slice(&dtb);
    let path = dir.join("vmlife-payload.bin");
    std::fs::write(&path, p).unwrap();
    path
}

/// The free RAM the hypervisor reports each time it destroys a VM, in log order. Expected line
/// (info level, printed once the VM's last object is gone and its stage-2 tables are freed):
/// `VM <vmid> destroyed: <n> bytes of RAM free`, `<n>` being the frame allocator's free bytes
/// (`FRAMES.free_bytes()`) in decimal; only ` destroyed: <n> bytes of RAM free` is matched.
fn ram_free_reports(log: &str) -> Vec<u64> {
    const KEY: &str = " destroyed: ";
    const UNIT: &str = " bytes of RAM free";
    log.lines()
        .filter_map(|line| {
            let rest = &line[line.find(KEY)? + KEY.len()..];
            rest[..rest.find(UNIT)?].trim().parse().ok()
        })
        .collect()
}

/// Boot a `vmlife` client (role `vmlife rounds=<rounds> <args>`) with its payload: the
/// `vmapi-child` image and a child device tree with `child_config` (nodes) at its root. Waits
/// until the client reports DONE and `rounds` VMs were destroyed (or a check failed), and
/// fails on an exception or a failed check.
fn vmlife_run(test: &str, rounds: usize, args: &str, child_config: &str, timeout: Duration) -> Run {
    let dir = scratch(test);
    let client = build_guest("vmapi-guest", &dir);
    let child = build_guest_bin("vmapi-guest", "vmapi-child", &dir);
    let base = elf_entry(&guest_elf("vmapi-child"));
    let child_dtb = compile_dts(
        &dir,
        "vmchild",
        &vmchild_dts_with(base, "vmchild", child_config),
        &["-p", "8192"],
    );
    let payload = vmlife_payload(&dir, base, &child, &child_dtb);
    let text = format!(
        r#"/dts-v1/;
/ {{
    compatible = "wurley,bundle-v1";
    vms {{
        client {{
            kernel = /incbin/("{}");
            initrd = /incbin/("{}");
            memory-size = <0x0 0x4000000>;
            vcpus = <1>;
            bootargs = "role=vmlife rounds={rounds}{args}";
        }};
    }};
}};
"#,
        client.display(),
        payload.display()
    );
    let q = Qemu {
        initrd: Some(compile(&dir, &text)),
        ..Qemu::smp(2)
    };
    // The last VM may be destroyed (its last vCPU off the CPU) just after the client is done.
    let run = q.run_until(timeout, |log| {
        let failed = log
            .lines()
            .any(|l| l.contains("VMAPI vmlife DONE") && !l.contains(" fail=0"));
        log.contains("VMAPI vmlife DONE")
            && (failed || log.matches(" destroyed: ").count() >= rounds)
    });
    run.reject("*** EL2 EXCEPTION")
        .reject("*** PANIC")
        .reject("guest exception");
    if !run.log.contains("VMAPI vmlife DONE") {
        run.fail(&format!(
            "the client did not report DONE within {timeout:?}"
        ));
    }
    fail_on_failed_checks(&run, "VMAPI ");
    run
}

/// Fail unless the hypervisor reported at least `rounds` VM destructions and the same free RAM
/// after the last as after the first (no page lost).
fn expect_ram_back(run: &Run, rounds: usize) {
    let reports = ram_free_reports(&run.log);
    eprintln!("RAM free after each destruction: {reports:?}");
    let (Some(&first), Some(&last)) = (reports.first(), reports.last()) else {
        run.fail("no `VM <vmid> destroyed: <n> bytes of RAM free` line from the hypervisor");
    };
    if reports.len() < rounds {
        run.fail(&format!(
            "{} `destroyed: <n> bytes of RAM free` lines, want one per round ({rounds})",
            reports.len()
        ));
    }
    if first != last {
        run.fail(&format!(
            "RAM free after the first VM's destruction: {first} bytes, after the last: {last} bytes ({} pages lost)",
            first.abs_diff(last) / 4096
        ));
    }
}

/// The Resource Manager's VM lifecycle driven by an EL1 client (`vmapi-guest`, role `vmlife`,
/// the primary VM, 64 MiB): 20 times in a row it allocates a VM, lends it 2 MiB of its own RAM
/// holding a small image (`vmapi-child`, role `vmchild`) and a device tree from its initrd,
/// configures, initialises and starts it, exchanges a message with it over the message-queue
/// pair the RM made between them, stops it, reclaims the memory, resets and deallocates it,
/// and checks the memory is its own again; on the way, error answers (a second start, a reclaim
/// while the VM runs, VM_INIT before VM_CONFIG_IMAGE, VMIDs it does not own). The hypervisor
/// reports its free RAM each time it destroys a VM ([`ram_free_reports`]): the last report must
/// equal the first.
#[test]
fn rm_client_drives_a_vm_life_20_times() {
    let run = vmlife_run(
        "vmapi-vmlife",
        VMLIFE_ROUNDS,
        "",
        "",
        Duration::from_secs(110),
    );
    run.expect("[rm] RM: client client vmid 0x3 link rm-client");
    let done = run
        .log
        .lines()
        .find(|l| l.contains("VMAPI vmlife DONE"))
        .unwrap_or_default();
    // Before round 1, and every step of round 1 (later rounds print only failures).
    let setup = ["payload", "parcel", "primary"];
    let not_mine = [
        "start-rm",
        "init-self",
        "config-image-self",
        "stop-self",
        "reset-rm",
        "deallocate-unknown",
        "hyp-resources-unknown",
        "lend-to-unknown",
        "early-allocate",
        "init-before-config-image",
        "early-state",
        "early-deallocate",
    ];
    let round_one = [
        "allocate",
        "allocate-vmid",
        "lend",
        "lend-handle",
        "config-image",
        "init",
        "state-ready",
        "hyp-resources",
        "child-vcpus",
        "child-link",
        "start",
        "state-running",
        "start-again",
        "reclaim-in-use",
        "hello",
        "stop",
        "exited",
        "reclaim",
        "reset",
        "reset-status",
        "deallocate",
        "gone",
        "memory-back",
    ];
    for name in setup.iter().chain(&not_mine).chain(&round_one) {
        run.expect(&format!("VMAPI vmlife {name} PASS"));
    }
    // VM_INIT before VM_CONFIG_IMAGE may leave the VM in INIT_FAILED, which then takes a reset.
    let early_reset = run.log.contains("VMAPI vmlife early-reset PASS");
    if early_reset {
        run.expect("VMAPI vmlife early-reset-status PASS");
    }
    for n in 1..=VMLIFE_ROUNDS {
        run.expect(&format!("VMAPI vmlife round PASS n={n} "));
    }
    run.expect(&format!(
        "VMAPI vmlife rounds PASS {VMLIFE_ROUNDS} of {VMLIFE_ROUNDS} lives"
    ));
    let checks = setup.len()
        + not_mine.len()
        + if early_reset { 2 } else { 0 }
        + round_one.len()
        + VMLIFE_ROUNDS
        + 1;
    if !done.contains(&format!("pass={checks} fail=0")) {
        run.fail(&format!(
            "unexpected tally (want pass={checks} fail=0): {done}"
        ));
    }
    // The secondary VMs' own lines, if the hypervisor shows their consoles.
    let echoes = run
        .log
        .lines()
        .filter(|l| l.contains("VMAPI vmchild echo PASS"))
        .count();
    eprintln!("{echoes} vmchild echo lines on the console");

    // No page lost: the free RAM the hypervisor reports after the last VM's destruction is
    // what it reported after the first's (whichever order the lines and the client's round
    // lines reach the console in).
    expect_ram_back(&run, VMLIFE_ROUNDS);
}

/// Every check of role `irqlend` (the owner), in the order it runs them.
const IRQLEND_CHECKS: [&str; 32] = [
    "payload",
    "primary",
    "own-irq",
    "allocate",
    "lend",
    "config-image",
    "init",
    "hyp-resources",
    "child-vcpus",
    "child-link",
    "start",
    "child-ready",
    "child-vmid",
    "lend-not-mine",
    "lend-to-self",
    "irq-lend",
    "lend-again",
    "accept-not-borrower",
    "notify-lent",
    "child-accepted",
    "accepted-notification",
    "reclaim-accepted",
    "child-irq",
    "line-high",
    "cleared",
    "child-released",
    "released-notification",
    "irq-reclaim",
    "reclaim-again",
    "own-irq-back",
    "stop",
    "exited",
];

/// Checks of role `irqlend` after [`IRQLEND_CHECKS`]: the child's teardown.
const IRQLEND_TEARDOWN: [&str; 5] = [
    "reclaim",
    "reset",
    "reset-status",
    "deallocate",
    "memory-back",
];

/// Every check of role `irqchild` (the borrower).
const IRQCHILD_CHECKS: [&str; 14] = [
    "rm-link",
    "lent-notification",
    "accept-unknown",
    "release-unaccepted",
    "accept",
    "accept-virq",
    "accept-again",
    "notify-accepted",
    "irq",
    "owner-cleared",
    "irq-once",
    "release",
    "release-again",
    "notify-released",
];

/// IRQ lending through the Resource Manager on a real interrupt (`vmapi-guest`, roles
/// `irqlend` and `irqchild`, `src/irqlend.rs`): the primary VM has QEMU virt's PL031 RTC
/// (window 0x0901_0000, SPI 2 = INTID 34, level) as a passthrough device, so it is identity
/// mapped at `memory-base` 0x6000_0000. It takes the RTC's interrupt, creates a child VM as
/// `vmlife` does (the same image, `role=irqchild`, in a 2 MiB parcel at 0x6200_0000), lends
/// it the interrupt (VM_IRQ_LEND, VM_IRQ_NOTIFY LENT); the child accepts it (VM_IRQ_ACCEPT),
/// takes the RTC's interrupt at its vIRQ, releases it (VM_IRQ_RELEASE, VM_IRQ_NOTIFY
/// RELEASED); the owner reclaims it (VM_IRQ_RECLAIM), takes the interrupt again and tears the
/// child down. On the way, the documented refusals (IRQ_INVALID, ARGUMENT_INVALID, IRQ_INUSE,
/// DENIED, HANDLE_INVALID, IRQ_RELEASED).
#[test]
fn rm_client_lends_an_irq_to_its_child() {
    let dir = scratch("vmapi-irqlend");
    let client = build_guest("vmapi-guest", &dir);
    let base = 0x6200_0000;
    let child_dtb = compile_dts(
        &dir,
        "irqchild",
        &vmchild_dts(base, "irqchild"),
        &["-p", "8192"],
    );
    let payload = vmlife_payload(&dir, base, &client, &child_dtb);
    let text = format!(
        r#"/dts-v1/;
/ {{
    compatible = "wurley,bundle-v1";
    vms {{
        client {{
            kernel = /incbin/("{}");
            initrd = /incbin/("{}");
            memory-base = /bits/ 64 <0x60000000>;
            memory-size = <0x0 0x4000000>;
            vcpus = <1>;
            bootargs = "role=irqlend rtc=0x9010000 virq=34";
            devices {{
                rtc {{
                    compatible = "arm,pl031", "arm,primecell";
                    reg = /bits/ 64 <0x9010000 0x1000>;
                    interrupts = <0 2 4>;
                }};
            }};
        }};
    }};
}};
"#,
        client.display(),
        payload.display()
    );
    let q = Qemu {
        initrd: Some(compile(&dir, &text)),
        ..Qemu::smp(2)
    };
    let timeout = Duration::from_secs(40);
    let run = q.run_until(timeout, |log| {
        log.contains("VMAPI irqlend DONE") && log.contains("VMAPI irqchild DONE")
    });
    run.reject("*** EL2 EXCEPTION")
        .reject("*** PANIC")
        .reject("guest exception");
    fail_on_failed_checks(&run, "VMAPI ");
    for name in IRQLEND_CHECKS.iter().chain(&IRQLEND_TEARDOWN) {
        run.expect(&format!("VMAPI irqlend {name} PASS"));
    }
    for name in IRQCHILD_CHECKS {
        run.expect(&format!("VMAPI irqchild {name} PASS"));
    }
    run.expect(&format!(
        "VMAPI irqlend DONE pass={} fail=0",
        IRQLEND_CHECKS.len() + IRQLEND_TEARDOWN.len()
    ))
    .expect(&format!(
        "VMAPI irqchild DONE pass={} fail=0",
        IRQCHILD_CHECKS.len()
    ));
}

/// Rounds of [`rm_client_demand_pages_a_vm`].
const DEMAND_ROUNDS: usize = 3;

/// Demand paging through the Resource Manager (role `vmlife` with `demand=1`): each round the
/// client also declares the 2 MiB of its RAM after the parcel demand-paged
/// (VM_SET_DEMAND_PAGING), finds the VM's address space and the guest-private and host-private
/// extents over that range in VM_GET_HYP_RESOURCES (types 10 and 9), donates the range to the
/// VM before VM_START, and the child reads the client's pattern at the end of its RAM (the
/// device tree's memory covers the parcel and the range). After the VM stops the client takes
/// half back itself and VM_RESET returns the rest: the range is the client's again, and no
/// page is lost.
#[test]
fn rm_client_demand_pages_a_vm() {
    let run = vmlife_run(
        "vmapi-demand",
        DEMAND_ROUNDS,
        " demand=1",
        "",
        Duration::from_secs(60),
    );
    for name in [
        "demand-paging-not-mine",
        "demand-paging",
        "demand-resources",
        "provide",
        "hello",
        "demand-seen",
        "take-back",
        "reclaim",
        "demand-memory-back",
        "memory-back",
    ] {
        run.expect(&format!("VMAPI vmlife {name} PASS"));
    }
    run.expect(&format!(
        "VMAPI vmlife rounds PASS {DEMAND_ROUNDS} of {DEMAND_ROUNDS} lives"
    ));
    expect_ram_back(&run, DEMAND_ROUNDS);
}

/// Rounds of [`rm_client_runs_its_child_with_vcpu_run`].
const PROXY_ROUNDS: usize = 3;

/// A VM created through the RM whose configuration says `gunyah-vm-config { vcpus { affinity =
/// "proxy"; }; }` (role `vmlife` with `proxy=1`, Linux's way): the RM makes its vCPU
/// proxy-scheduled and reports the VIRTUAL_CPU entry with a wakeup vIRQ of the owner's; the
/// owner starts the VM, runs the child with `vcpu_run` (waiting for the wakeup vIRQ when it
/// expects a wakeup) until it says hello over their link and powers off, then resets and
/// deallocates it. Each round the owner's vIRQs and the parcel come back.
#[test]
fn rm_client_runs_its_child_with_vcpu_run() {
    let config = "    gunyah-vm-config {\n        image-name = \"vmchild\";\n        vcpus {\n            affinity = \"proxy\";\n        };\n    };\n";
    let run = vmlife_run(
        "vmapi-proxy-rm",
        PROXY_ROUNDS,
        " proxy=1",
        config,
        Duration::from_secs(40),
    );
    for name in [
        "proxy-resources",
        "start",
        "proxy-run",
        "hello",
        "run-check",
        "exited",
        "state-exited",
        "reset",
        "reclaim-after-reset",
        "deallocate",
        "memory-back",
    ] {
        run.expect(&format!("VMAPI vmlife {name} PASS"));
    }
    // The child ran only through vcpu_run: at least one run, and the hypervisor counted none
    // of its vCPUs for its scheduler.
    run.expect("proxy-scheduled (run with vcpu_run)");
    run.expect(&format!(
        "VMAPI vmlife rounds PASS {PROXY_ROUNDS} of {PROXY_ROUNDS} lives"
    ));
    expect_ram_back(&run, PROXY_ROUNDS);
}

/// Proxy scheduling (`tests/guests/vmapi-guest`, roles `proxy-owner` and `proxied`): VM
/// `guest` says `scheduled-by = "owner"`, so it only runs inside `owner`'s `vcpu_run`. The owner
/// finds its caps in its device tree and checks that the resource manager reports the vCPU to
/// it (VM_GET_HYP_RESOURCES), walks the error paths, registers a VMMIO range and runs
/// the guest, emulating a small device through the VMMIO run states; it gets READY back when
/// its own timer is due while the guest spins (the guest runs on the owner's time), sees EXPECTS_WAKEUP
/// when the guest idles with its timer armed, takes the wake-up vIRQ, and POWERED_OFF when
/// the guest calls SYSTEM_OFF. A second proxy-scheduled VM, `idler`, is never run: it never
/// prints, and it ends when its owner does.
#[test]
fn proxy_scheduled_guest_on_one_cpu() {
    proxy_guests(1);
}

/// The same on two physical CPUs.
#[test]
fn proxy_scheduled_guest_on_two_cpus() {
    proxy_guests(2);
}

fn proxy_guests(cpus: u32) {
    let dir = scratch(&format!("vmapi-proxy-{cpus}"));
    let kernel = build_guest("vmapi-guest", &dir);
    let k = kernel.display();
    let text = format!(
        r#"/dts-v1/;
/ {{
    compatible = "wurley,bundle-v1";
    vms {{
        owner {{
            kernel = /incbin/("{k}");
            memory-size = <0x0 0x1000000>;
            bootargs = "role=proxy-owner guest=guest guest-vmid=0x80 dev=0xa000000";
            capabilities = "cspace", "vic";
            console;
        }};
        guest {{
            kernel = /incbin/("{k}");
            memory-size = <0x0 0x1000000>;
            bootargs = "role=proxied dev=0xa000000";
            scheduled-by = "owner";
        }};
        idler {{
            kernel = /incbin/("{k}");
            memory-size = <0x0 0x1000000>;
            bootargs = "role=proxied dev=0xa000000";
            scheduled-by = "owner";
        }};
    }};
}};
"#
    );
    let q = Qemu {
        initrd: Some(compile(&dir, &text)),
        ..Qemu::smp(cpus)
    };
    let timeout = Duration::from_secs(60);
    let run = q.run_until(timeout, |_| false);
    if run.timed_out {
        run.fail(&format!(
            "the guests did not both finish within {timeout:?}"
        ));
    }
    run.reject("*** EL2 EXCEPTION")
        .reject("*** PANIC")
        .reject("guest exception");
    fail_on_failed_checks(&run, "VMAPI ");
    run.expect("VM guest: proxy-scheduled by VM owner");
    // The resource manager numbers the bundle's VMs in manifest order: the first (`owner`) is
    // the primary VM, 3, the next gets the first dynamic VMID, 0x80.
    run.expect("[rm] RM: vCPU 0 of guest (vmid 0x80) proxy-scheduled by owner (vmid 0x3)");
    let owner_checks = [
        "setup",
        "rm-hyp-resources",
        "run-not-a-vcpu",
        "run-check-not-halted",
        "copy-weak-cap",
        "run-without-rights",
        "vmmio-not-an-addrspace",
        "unbind-halt-not-bound",
        "bind-bad-type",
        "bind-wakeup-twice",
        "unbind-wakeup",
        "run-without-wakeup-virq",
        "rebind-wakeup",
        "vmmio-unaligned",
        "vmmio-bad-op",
        "vmmio-remove-unknown",
        "vmmio-add",
        "vmmio-overlap",
        "run-loop",
        "ready-on-caller-timer",
        "vmmio-device",
        "expects-wakeup",
        "powered-off",
        "run-after-exit",
        "run-check-halted",
    ];
    for name in owner_checks {
        run.expect(&format!("VMAPI proxy-owner {name} PASS"));
    }
    for name in ["device-id", "questions", "spin", "idle"] {
        run.expect(&format!("VMAPI proxied {name} PASS"));
    }
    run.expect(&format!(
        "VMAPI proxy-owner DONE pass={} fail=0",
        owner_checks.len()
    ))
    .expect("VMAPI proxied DONE pass=4 fail=0");
    // The owner never runs `idler`: it ends with its owner, and the machine does not wait.
    run.reject("[idler] ")
        .expect("VM idler: its scheduler VM owner ended");
    if run.exit != Some(Some(0)) {
        run.fail("QEMU should exit with status 0 once the owner and its guest powered off");
    }
}

/// Boot one VM `name` of `vcpus` vCPUs running vmapi-guest with `bootargs` and caps to its own
/// vCPUs (`capabilities = "vcpus"`) on `smp` CPUs until it powers off; fail on a timeout, a
/// hypervisor fault or a FAIL line.
fn own_vcpus_guest(name: &str, vcpus: u32, bootargs: &str, smp: u32) -> common::Run {
    own_vcpus_guest_at(name, vcpus, bootargs, smp, None)
}

/// [`own_vcpus_guest`] with the VM's RAM at IPA `memory_base` (`memory-base`) if given, else
/// at the default 0x4000_0000.
fn own_vcpus_guest_at(
    name: &str,
    vcpus: u32,
    bootargs: &str,
    smp: u32,
    memory_base: Option<u64>,
) -> common::Run {
    let dir = scratch(&format!("vmapi-{name}"));
    let kernel = build_guest("vmapi-guest", &dir);
    let base = memory_base
        .map(|b| format!("memory-base = /bits/ 64 <{b:#x}>;"))
        .unwrap_or_default();
    let text = format!(
        r#"/dts-v1/;
/ {{
    compatible = "wurley,bundle-v1";
    vms {{
        {name} {{
            kernel = /incbin/("{}");
            memory-size = <0x0 0x1000000>;
            {base}
            vcpus = <{vcpus}>;
            bootargs = "{bootargs}";
            capabilities = "vcpus";
        }};
    }};
}};
"#,
        kernel.display()
    );
    let q = Qemu {
        initrd: Some(compile(&dir, &text)),
        ..Qemu::smp(smp)
    };
    let run = q.run_until(TIMEOUT, |_| false);
    if run.timed_out {
        run.fail(&format!("VM {name} did not finish"));
    }
    run.reject("*** EL2 EXCEPTION").reject("*** PANIC");
    fail_on_failed_checks(&run, "VMAPI ");
    run
}

/// A VM with caps to its own vCPUs (`capabilities = "vcpus"`) moves them between the two
/// physical CPUs with `vcpu_set_affinity` (role `affinity`): hostile calls get their error
/// codes, each move succeeds, the hypervisor logs it, and the counting vCPU keeps running
/// through every move, including the calling vCPU moving itself.
#[test]
fn vcpus_move_between_cpus_with_set_affinity() {
    let run = own_vcpus_guest("mover", 2, "role=affinity", 2);
    let placed = run
        .log
        .lines()
        .any(|l| l.contains("VM mover: ") && l.contains("2 vCPUs on CPUs 0,1,"));
    if !placed {
        run.fail("VM mover's vCPUs should start on CPUs 0 and 1");
    }
    for check in [
        "counting",
        "unknown-cap",
        "no-such-cpu",
        "cpu-index-invalid",
        "priority-init-only",
        "timeslice-init-only",
        "v1-to-cpu0",
        "v0-to-cpu1",
        "v1-to-cpu1",
        "v0-to-cpu0",
    ] {
        run.expect(&format!("VMAPI affinity {check} PASS"));
    }
    // In order: each move as the hypervisor saw it.
    let mut at = 0;
    for (vcpu, cpu) in [(1, 0), (0, 1), (1, 1), (0, 0)] {
        let needle = format!("VM mover: vCPU {vcpu} now on CPU {cpu}");
        match run.log[at..].find(&needle) {
            Some(i) => at += i + needle.len(),
            None => run.fail(&format!("expected {needle:?} after the earlier moves")),
        }
    }
    run.expect("VMAPI affinity DONE pass=14 fail=0");
}

/// Directed yields (`scheduler_yield` hint 1) between a VM's own vCPUs, three of them on one
/// physical CPU (role `yield-to`): the target runs next every time; an unknown cap gets
/// `CSPACE_CAP_NULL`.
#[test]
fn directed_yield_runs_its_target_next() {
    let run = own_vcpus_guest("yielder", 3, "role=yield-to rounds=20", 1);
    for check in ["unknown-cap", "to-self", "target-runs-next"] {
        run.expect(&format!("VMAPI yield-to {check} PASS"));
    }
    run.expect("VMAPI yield-to DONE pass=3 fail=0");
}

/// wurley-rt guests are position independent: `vmapi-guest` (linked at 0x4000_0000) booted
/// with its RAM at IPA 0x8000_0000 (`memory-base`; the RM maps it there from wherever it put
/// it) relocates itself, maps that RAM (another level-1 block than the default's) and reads its
/// device tree there, starts its secondary vCPUs there, and runs role `yield-to` to the end.
#[test]
fn vmapi_guest_runs_at_another_ram_base() {
    let run = own_vcpus_guest_at("moved", 3, "role=yield-to rounds=20", 1, Some(0x8000_0000));
    run.expect("VMAPI yield-to ram INFO base=0x80000000 size=0x1000000 image=0x80000000");
    for check in ["unknown-cap", "to-self", "target-runs-next"] {
        run.expect(&format!("VMAPI yield-to {check} PASS"));
    }
    run.expect("VMAPI yield-to DONE pass=3 fail=0");
    if run.exit != Some(Some(0)) {
        run.fail("QEMU should exit with status 0 once the VM powered off");
    }
}

/// A hostile VM (`vmapi-guest`, role `objects-hostile`) with caps to its own partition (a
/// child that owns no memory), cspace and VIC abuses the VM-building and memory calls: extents
/// over memory it does not own, bad ranges, attributes, rights, VMIDs; a VM without memory
/// built in every wrong order, then powered on (its vCPU faults forever), killed, replaced by
/// another one in the hypervisor (the killed thread must not reach the newcomer), and freed
/// by deleting its caps; a thread killed before its first power-on; 200 random calls. Every
/// answer must be the documented code, the hypervisor must not fault or panic, must log the
/// VM retired and destroyed, and a bystander VM (role `heartbeat`) must still run afterwards.
#[test]
fn objects_hostile_guest_cannot_break_the_hypervisor() {
    let dir = scratch("vmapi-objects-hostile");
    let kernel = build_guest("vmapi-guest", &dir);
    let k = kernel.display();
    let text = format!(
        r#"/dts-v1/;
/ {{
    compatible = "wurley,bundle-v1";
    vms {{
        attacker {{
            kernel = /incbin/("{k}");
            memory-size = <0x0 0x1000000>;
            bootargs = "role=objects-hostile";
            capabilities = "partition", "cspace", "vic";
            object-memory = <0x100000>;
            console;
        }};
        bystander {{
            kernel = /incbin/("{k}");
            memory-size = <0x0 0x1000000>;
            bootargs = "role=heartbeat";
        }};
    }};
}};
"#
    );
    let q = Qemu {
        initrd: Some(compile(&dir, &text)),
        // Hypervisor options for a closer look, as for `make run` (e.g. loglevel=debug).
        append: std::env::var("WURLEY_ARGS").ok().filter(|a| !a.is_empty()),
        ..Qemu::smp(2)
    };
    // Done when the bystander has beaten three times after the attacker's tally.
    let beats_after_done = |log: &str| {
        log.find("VMAPI objects-hostile DONE").map_or(0, |at| {
            log[at..].matches("VMAPI heartbeat beat INFO").count()
        })
    };
    let timeout = Duration::from_secs(50);
    let run = q.run_until(timeout, |log| beats_after_done(log) >= 3);
    for line in run
        .log
        .lines()
        .filter(|l| !l.contains("fuzz-call") && !l.contains("heartbeat beat"))
    {
        eprintln!("{line}");
    }
    run.reject("*** EL2 EXCEPTION")
        .reject("*** PANIC")
        .reject("guest exception");
    fail_on_failed_checks(&run, "VMAPI objects-hostile ");
    let done = run
        .log
        .lines()
        .find(|l| l.contains("VMAPI objects-hostile DONE"))
        .unwrap_or_else(|| run.fail("the attacker did not report DONE"));
    if beats_after_done(&run.log) < 3 {
        run.fail("the bystander VM stopped beating after the attack");
    }
    for name in OBJECTS_HOSTILE_CHECKS {
        run.expect(&format!("VMAPI objects-hostile {name} PASS"));
    }
    if !done.contains(&format!("pass={} fail=0", OBJECTS_HOSTILE_CHECKS.len())) {
        run.fail(&format!("unexpected tally: {done}"));
    }
    let fuzz = run
        .log
        .lines()
        .filter(|l| l.contains("VMAPI objects-hostile fuzz-call INFO"))
        .count();
    if fuzz != 200 {
        run.fail(&format!("{fuzz} random calls logged, want 200"));
    }
    // The memoryless VM (VMID 0x4242), its successor (0x4244): built, retired, destroyed.
    for (vmid, hex) in [(0x4242, "0x4242"), (0x4244, "0x4244")] {
        run.expect(&format!("VM vm{vmid}: made by hypercalls, 1 vCPU(s)"))
            .expect(&format!("VM vm{vmid}: retired"))
            .expect(&format!("VM {hex} destroyed: "));
    }
}

/// Every check of role `objects-hostile`, in the order it runs them.
const OBJECTS_HOSTILE_CHECKS: &[&str] = &[
    "extent-activate-unconfigured",
    "extent-hypervisor-image",
    "extent-ram-start",
    "extent-own-ram-ipa-as-pa",
    "extent-all-of-ram",
    "extent-uart-window",
    "extent-beyond-ram",
    "extent-huge",
    "extent-unaligned-base",
    "extent-unaligned-size",
    "extent-size-0",
    "extent-wraps",
    "extent-huge-wraps",
    "extent-sparse-type",
    "extent-unknown-attr-bit",
    "extent-append-bit",
    "extent-reconfigure-after-failures",
    "derive-from-vic",
    "derive-from-partition",
    "derive-from-init-extent",
    "derive-from-itself",
    "derive-from-made-up-cap",
    "derive-without-right",
    "extent-configure-without-activate-right",
    "modify-init-extent",
    "modify-unknown-flags",
    "donate-init-extents",
    "donate-unknown-options",
    "addrspace-activate-no-vmid",
    "addrspace-vmid-0",
    "addrspace-vmid-17-bits",
    "addrspace-vmid-of-rm",
    "addrspace-vmid-of-manifest-vm",
    "addrspace-vmid",
    "addrspace-vmid-replaced",
    "addrspace-vmid-duplicate",
    "addrspace-replaced-vmid-free",
    "addrspace-activate",
    "addrspace-activate-twice",
    "addrspace-configure-active",
    "map-init-extent",
    "map-partial-flag",
    "map-unknown-flag",
    "map-undefined-memtype",
    "map-unknown-attr-bit",
    "map-vic-as-extent",
    "map-into-extent",
    "map-extent-without-map-right",
    "map-space-without-map-right",
    "unmap-space-without-map-right",
    "unmap-init-extent",
    "unmap-unknown-flag",
    "update-access-init-extent",
    "update-access-bad-attrs",
    "lookup-init-extent",
    "lookup-without-right",
    "map-into-init-space",
    "configure-vic-as-thread",
    "poweron-partition-as-thread",
    "kill-cspace-as-thread",
    "register-write-vic-as-thread",
    "poweroff-vic-as-thread",
    "priority-vic-as-thread",
    "cspace-attach-thread-vic",
    "cspace-attach-to-thread",
    "vic-attach-cspace-as-thread",
    "vpm-state-thread-as-group",
    "hwirq-bind-vic-as-hwirq",
    "hwirq-unbind-thread-as-hwirq",
    "configure-without-activate-right",
    "poweron-without-power-right",
    "kill-without-lifecycle-right",
    "register-write-without-right",
    "priority-without-right",
    "timeslice-without-right",
    "attach-thread-without-activate-right",
    "addrspace-attach-without-right",
    "attach-to-own-vic",
    "thread-activate-unattached",
    "attach-to-init-cspace",
    "attach-to-init-addrspace",
    "attach-to-init-vic",
    "attach-to-init-vpm-group",
    "cspace-activate-unconfigured",
    "vic-activate-unconfigured",
    "poweron-init-thread",
    "kill-init-thread",
    "vcpu-configure-run-scheduled",
    "vcpu-configure-unknown-bit",
    "vcpu-configure",
    "priority-64",
    "priority-huge",
    "priority-init",
    "timeslice-too-short",
    "timeslice-too-long",
    "timeslice-init",
    "affinity-invalid-cpu",
    "affinity-absent-cpu",
    "affinity-init",
    "vic-0-vcpus",
    "vic-9-vcpus",
    "vic-989-virqs",
    "vic-msis",
    "vic-unknown-option",
    "vic-configure",
    "cspace-configure",
    "vpm-configure-unknown-flag",
    "vpm-configure",
    "vic-activate",
    "cspace-activate",
    "vpm-activate",
    "vic-configure-active",
    "cspace-attach",
    "vic-attach-index-beyond",
    "vic-attach",
    "vic-attach-twice",
    "vpm-attach-index-8",
    "vpm-state-empty",
    "vpm-state-without-query-right",
    "vpm-attach-vic-as-thread",
    "vpm-attach",
    "vpm-attach-twice",
    "thread-activate-no-addrspace",
    "addrspace-ready",
    "addrspace-attach",
    "register-write-bad-set",
    "register-write-x31",
    "register-write-sp-el2",
    "register-write-init",
    "thread-activate",
    "thread-activate-twice",
    "vcpu-configure-active",
    "priority-active",
    "timeslice-active",
    "cspace-attach-active-thread",
    "register-write-pc-before-poweron",
    "poweroff-other-vcpu-before-poweron",
    "vpm-state-before-poweron",
    "vpm-bind-uart-virq",
    "vpm-bind",
    "vpm-bind-twice",
    "poweron-unknown-flag",
    "poweron-no-memory",
    "poweron-twice",
    "register-write-while-on",
    "poweroff-other-vcpu",
    "poweroff-unknown-flag",
    "vpm-state-running",
    "priority-running",
    "kill",
    "poweron-after-kill",
    "vpm-state-after-kill",
    "register-write-after-kill",
    "vpm-unbind",
    "vpm-unbind-twice",
    "successor-poweron",
    "stale-thread-poweron",
    "stale-thread-kill",
    "stale-vpm-state",
    "stale-thread-affinity",
    "successor-untouched",
    "successor-kill",
    "delete-every-cap",
    "poweron-deleted-thread",
    "early-kill-activate",
    "early-kill",
    "poweron-after-early-kill",
    "fuzz-200-calls",
    "after-fuzz-create",
];

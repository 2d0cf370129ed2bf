//! Whole-bundle tests against the fixtures of `tests/data/bundle/` (each `.dts` says what it
//! holds).

#![allow(clippy::unwrap_used)]

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::fixtures::*;
use super::manifest::Size;
use super::*;

const MIB: u64 = 1 << 20;

/// Plenty of CPUs, 8 per VM.
const ROOMY: Limits = Limits::new(64);

fn names(b: &Bundle<'_>) -> Vec<String> {
    b.vms.iter().map(|v| v.name.clone()).collect()
}

/// Every error as its display text.
fn messages(b: &Bundle<'_>) -> Vec<String> {
    b.errors.iter().map(ToString::to_string).collect()
}

fn within(part: &[u8], whole: &[u8]) -> bool {
    let (p, w) = (part.as_ptr_range(), whole.as_ptr_range());
    w.start <= p.start && p.end <= w.end
}

#[test]
fn two_vms_in_full() {
    let b = parse(TWO_VMS, &Limits::new(4)).unwrap();
    assert_eq!(b.errors, []);
    assert_eq!(names(&b), ["linux", "rtos"]);

    let linux = &b.vms[0];
    assert_eq!(linux.kernel.bytes, FAKE_IMAGE);
    assert_eq!(
        (linux.kernel.text_offset, linux.kernel.image_size),
        (0, 0x1_8000)
    );
    assert_eq!(linux.initrd, Some(FAKE_INITRD));
    assert_eq!(linux.bootargs, "console=ttyAMA0 earlycon");
    assert_eq!(
        (linux.memory_base, linux.memory_size),
        (0x4000_0000, 256 * MIB)
    );
    assert_eq!(
        (linux.vcpus, linux.priority, linux.timeslice_us),
        (2, 40, 2000)
    );
    assert!(linux.console);
    assert!(within(linux.kernel.bytes, TWO_VMS));

    // Defaults, an explicit base, and a pre-3.17 header (image_size 0: the file counts).
    let rtos = &b.vms[1];
    assert_eq!(rtos.kernel.bytes.len(), FAKE_IMAGE.len());
    assert_eq!(rtos.kernel.bytes[0x40..], FAKE_IMAGE[0x40..]);
    assert_eq!(
        (rtos.kernel.text_offset, rtos.kernel.image_size),
        (0x8_0000, 0x1_0000)
    );
    assert_eq!(rtos.initrd, None);
    assert_eq!(rtos.bootargs, "");
    assert_eq!(
        (rtos.memory_base, rtos.memory_size),
        (0x8000_0000, 16 * MIB)
    );
    assert_eq!(
        (rtos.vcpus, rtos.priority, rtos.timeslice_us),
        (1, DEFAULT_PRIORITY, DEFAULT_TIMESLICE_US)
    );
    assert!(!rtos.console);
    assert_eq!(rtos.capabilities, Capabilities::default());
    assert_eq!(rtos.object_memory, DEFAULT_OBJECT_MEMORY);
    assert_eq!(b.links, []);
}

#[test]
fn small_bundle_and_template() {
    let b = parse(SMALL, &Limits::new(3)).unwrap();
    assert_eq!(b.errors, []);
    assert_eq!(names(&b), ["one", "two"]);
    assert_eq!(b.vms[0].kernel.bytes, &FAKE_IMAGE[..64]);
    assert_eq!(
        (
            b.vms[1].priority,
            b.vms[1].timeslice_us,
            b.vms[1].memory_size
        ),
        (10, 1000, 32 * MIB)
    );

    // qemu/bundle.dts.in, filled in as tests/data/bundle/README.md shows.
    let b = parse(FROM_TEMPLATE, &Limits::new(2)).unwrap();
    assert_eq!(b.errors, []);
    let linux = &b.vms[0];
    assert_eq!(names(&b), ["linux"]);
    assert_eq!(linux.kernel.bytes, FAKE_IMAGE);
    assert_eq!(linux.initrd, Some(FAKE_INITRD));
    assert_eq!(linux.bootargs, "console=ttyAMA0 rdinit=/init");
    assert_eq!((linux.memory_size, linux.vcpus), (512 * MIB, 2));
    assert!(linux.console);
}

#[test]
fn unaligned_and_padded_bundles_still_borrow_the_input() {
    let expect = parse(TWO_VMS, &ROOMY).unwrap();
    for shift in 0..4 {
        let mut buf = vec![0u8; shift];
        buf.extend_from_slice(TWO_VMS);
        buf.resize(buf.len() + 4096, 0xa5); // the initrd region may be longer than the blob
        let input = &buf[shift..];
        let b = parse(input, &ROOMY).unwrap();
        assert_eq!(b, expect, "shift {shift}");
        for vm in &b.vms {
            assert!(within(vm.kernel.bytes, input));
            assert!(vm.initrd.is_none_or(|i| within(i, input)));
        }
    }
}

#[test]
fn each_problem_of_a_vm_is_named() {
    let b = parse(PER_VM_ERRORS, &ROOMY).unwrap();
    assert_eq!(names(&b), ["good", "name-of-exactly-29-characters"]);
    let got: Vec<(&str, &str)> = b
        .errors
        .iter()
        .map(|e| (e.vm.as_deref().unwrap(), e.problem.as_str()))
        .collect();
    let known = "kernel, initrd, bootargs, memory-size, memory-base, vcpus, priority, timeslice-us, \
                 console, critical, capabilities, object-memory, scheduled-by, status, description";
    let typo = format!("property 'bootarg': unknown; a VM node takes {known}");
    let typo2 = format!("property 'initrd-file': unknown; a VM node takes {known}");
    let expect: Vec<(&str, &str)> = vec![
        ("no-kernel", "property 'kernel': missing"),
        (
            "bad-magic",
            "property 'kernel': no arm64 Image magic \"ARM\\x64\" at offset 0x38: not an arm64 Linux Image",
        ),
        (
            "big-endian",
            "property 'kernel': big-endian Image (header flags bit 0): only little-endian kernels run",
        ),
        (
            "gzip-kernel",
            "property 'kernel': gzip-compressed: the bundle needs the uncompressed arm64 Image (gunzip the vmlinuz)",
        ),
        (
            "short-kernel",
            "property 'kernel': 56 bytes, too short for an arm64 Image header (64 bytes)",
        ),
        (
            "odd-text-offset",
            "property 'kernel': text_offset 0x1234 is not a multiple of 4 KiB below 2 MiB",
        ),
        (
            "small-image-size",
            "property 'kernel': image_size 0x20 is smaller than the file (0x40 bytes)",
        ),
        ("no-memory", "property 'memory-size': missing"),
        (
            "tiny-memory",
            "property 'memory-size': 8 MiB is below the minimum of 16 MiB",
        ),
        (
            "odd-memory",
            "property 'memory-size': 0x1100000 is not a multiple of 2 MiB",
        ),
        (
            "one-cell-memory",
            "property 'memory-size': must be 64 bits: <high low> or /bits/ 64 <value>",
        ),
        (
            "huge-memory",
            "property 'memory-size': RAM of 512 GiB at 0x40000000 ends past the 512 GiB guest address space",
        ),
        (
            "odd-base",
            "property 'memory-base': 0x40100000 is not a multiple of 2 MiB",
        ),
        (
            "base-on-devices",
            "property 'memory-base': RAM [0x0, 0x10000000) overlaps the emulated devices at [0x8000000, 0x9001000)",
        ),
        (
            "no-room",
            "property 'memory-size': 16 MiB is too small: the kernel (16 MiB from the 2 MiB-aligned base) and 2 MiB for the device tree need 18 MiB",
        ),
        (
            "no-room-initrd",
            "property 'memory-size': 16 MiB is too small: the kernel (0xdff001 bytes from the 2 MiB-aligned base), the initrd (26 bytes) and 2 MiB for the device tree need 18 MiB",
        ),
        (
            "empty-initrd",
            "property 'initrd': empty (leave the property out for no initrd)",
        ),
        ("zero-vcpus", "property 'vcpus': 0; a VM needs at least 1"),
        (
            "nine-vcpus",
            "property 'vcpus': 9 is above the limit of 8 per VM",
        ),
        ("wide-vcpus", "property 'vcpus': not a single cell"),
        ("bad-priority", "property 'priority': 64 is outside 0..=63"),
        (
            "short-timeslice",
            "property 'timeslice-us': 50 is outside 100..=100000 microseconds",
        ),
        (
            "bootargs-list",
            "property 'bootargs': must be one string, not a list",
        ),
        (
            "console-value",
            "property 'console': must be empty: write `console;`",
        ),
        (
            "critical-value",
            "property 'critical': must be empty: write `critical;`",
        ),
        (
            "bad-status",
            "property 'status': \"off\" is neither \"okay\" nor \"disabled\"",
        ),
        ("typo", &typo),
        (
            "vm@1",
            "node name: has a unit address; name the node after the VM, e.g. 'linux'",
        ),
        (
            "with-child",
            "node 'gadgets': unknown; a VM node's only child node is 'devices'",
        ),
        ("many", &typo2),
        ("many", "property 'kernel': missing"),
        ("many", "property 'vcpus': 0; a VM needs at least 1"),
    ];
    assert_eq!(got, expect);
}

#[test]
fn errors_display_vm_and_property() {
    let b = parse(PER_VM_ERRORS, &ROOMY).unwrap();
    assert_eq!(
        b.errors[0].to_string(),
        "bundle: vm 'no-kernel': property 'kernel': missing"
    );
    let e = parse(NO_VMS, &ROOMY).unwrap_err();
    assert_eq!(e.vm, None);
    assert_eq!(e.to_string(), "bundle: node '/vms': missing");
}

#[test]
fn vcpus_are_handed_out_in_manifest_order() {
    let b = parse(VCPU_BUDGET, &Limits::new(4)).unwrap();
    assert_eq!(names(&b), ["a", "c"]);
    assert_eq!(
        messages(&b),
        [
            "bundle: vm 'b': property 'vcpus': 3 vCPUs do not fit: 2 of the 4 physical CPUs are left after the VMs before it",
            "bundle: vm 'd': property 'vcpus': 1 vCPU does not fit: 0 of the 4 physical CPUs are left after the VMs before it",
        ]
    );
    // With more CPUs all fit; with a lower per-VM limit the per-VM check speaks first.
    assert_eq!(
        names(&parse(VCPU_BUDGET, &Limits::new(8)).unwrap()),
        ["a", "b", "c", "d"]
    );
    let strict = Limits {
        max_vcpus_total: 8,
        max_vcpus_per_vm: 2,
    };
    let b = parse(VCPU_BUDGET, &strict).unwrap();
    assert_eq!(names(&b), ["a", "c", "d"]);
    assert_eq!(
        messages(&b),
        ["bundle: vm 'b': property 'vcpus': 3 is above the limit of 2 per VM"]
    );
    // The two-VM bundle on one CPU: linux (2 vCPUs) cannot start, rtos still does.
    let b = parse(TWO_VMS, &Limits::new(1)).unwrap();
    assert_eq!(names(&b), ["rtos"]);
    assert_eq!(
        messages(&b),
        [
            "bundle: vm 'linux': property 'vcpus': 2 vCPUs do not fit: 1 of the 1 physical CPUs are left after the VMs before it",
        ]
    );
}

#[test]
fn one_console_owner() {
    let b = parse(CONSOLES, &ROOMY).unwrap();
    assert_eq!(names(&b), ["first", "plain"]);
    assert!(b.vms[0].console && !b.vms[1].console);
    assert!(!b.vms[0].critical && b.vms[1].critical);
    assert_eq!(
        messages(&b),
        [
            "bundle: vm 'broken': property 'vcpus': 0; a VM needs at least 1",
            "bundle: vm 'second': property 'console': VM 'first' before it already has the console",
        ]
    );
}

#[test]
fn only_explicit_memory_bases_may_conflict() {
    let b = parse(OVERLAP, &ROOMY).unwrap();
    assert_eq!(names(&b), ["a", "c", "d"]);
    assert_eq!(b.vms[1].memory_base, DEFAULT_MEMORY_BASE);
    let explicit: Vec<bool> = b.vms.iter().map(|v| v.memory_base_explicit).collect();
    assert_eq!(explicit, [true, false, true]);
    assert_eq!(
        messages(&b),
        [
            "bundle: vm 'b': property 'memory-base': RAM [0x4fe00000, 0x50e00000) overlaps VM 'a' at [0x40000000, 0x50000000)",
        ]
    );
}

#[test]
fn duplicate_names_keep_the_first() {
    let b = parse(DUPLICATE_NAMES, &ROOMY).unwrap();
    assert_eq!(names(&b), ["twin"]);
    assert_eq!(b.vms[0].memory_size, 16 * MIB);
    assert_eq!(
        messages(&b),
        ["bundle: vm 'twin': node name: another VM node before it has the same name"]
    );
}

#[test]
fn outside_the_vms_unknowns_are_ignored_and_reported() {
    let b = parse(ROOT_EXTRAS, &ROOMY).unwrap();
    assert_eq!(names(&b), ["solo"]);
    assert!(b.errors.iter().all(|e| e.vm.is_none()));
    assert_eq!(
        messages(&b),
        [
            "bundle: root property 'model': unknown, ignored",
            "bundle: node '/images': unknown, ignored",
            "bundle: node '/vms' property 'vm-count': unknown, ignored",
        ]
    );
    let b = parse(EMPTY_VMS, &ROOMY).unwrap();
    assert_eq!(b.vms, []);
    assert_eq!(messages(&b), ["bundle: node '/vms': no enabled VM"]);
}

#[test]
fn unusable_files_are_refused_whole() {
    let err = |bytes: &[u8]| parse(bytes, &ROOMY).unwrap_err().to_string();
    assert_eq!(
        err(WRONG_COMPATIBLE),
        "bundle: root property 'compatible': [\"wurley,bundle-v2\"], not \"wurley,bundle-v1\" (not a Wurley boot bundle, or another version)"
    );
    assert_eq!(err(NO_VMS), "bundle: node '/vms': missing");
    assert_eq!(
        err(QEMU_VIRT),
        "bundle: root property 'compatible': [\"linux,dummy-virt\"], not \"wurley,bundle-v1\" (not a Wurley boot bundle, or another version)"
    );
    assert_eq!(
        err(LONG_NAME),
        "bundle: not a usable device tree: malformed structure block (a node name longer than 29 characters, or a corrupt file?)"
    );
    assert_eq!(
        err(&TWO_VMS[..1000]),
        "bundle: not a usable device tree: blob shorter than the header's totalsize"
    );
    let hint = ": build one with dtc, see docs/configuration.md";
    for (bytes, what) in [
        (FAKE_IMAGE, "an arm64 kernel Image"),
        (FAKE_INITRD, "no device tree magic 0xd00dfeed"),
        (&[0x1f, 0x8b, 8, 0][..], "gzip data"),
        (b"070701000000", "a cpio archive (a plain initramfs?)"),
        (b"", "empty"),
    ] {
        assert_eq!(
            err(bytes),
            format!("bundle: not a boot bundle ({what}){hint}")
        );
    }
}

#[test]
fn truncating_or_corrupting_never_panics() {
    for cut in 0..SMALL.len() {
        let mut buf = SMALL[..cut].to_vec();
        if let Some(total) = buf.get_mut(4..8) {
            total.copy_from_slice(&(cut as u32).to_be_bytes());
        }
        assert!(parse(&buf, &ROOMY).is_err(), "cut at {cut}");
    }
    let mut buf = SMALL.to_vec();
    for i in 0..buf.len() {
        for v in [0x00, 0xff, 0x01, 0x40] {
            let old = core::mem::replace(&mut buf[i], v);
            if let Ok(b) = parse(&buf, &ROOMY) {
                for vm in &b.vms {
                    assert!(within(vm.kernel.bytes, &buf));
                    assert!(vm.kernel.bytes.len() >= 64 && vm.vcpus >= 1);
                }
            }
            buf[i] = old;
        }
    }
}

#[test]
fn sizes_read_well() {
    let s = |n| Size(n).to_string();
    assert_eq!(s(0), "0 bytes");
    assert_eq!(s(26), "26 bytes");
    assert_eq!(s(96 << 10), "96 KiB");
    assert_eq!(s(3 << 20), "3 MiB");
    assert_eq!(s(2 << 30), "2 GiB");
    assert_eq!(s((1 << 20) + 1), "0x100001 bytes");
}

fn pair(name: &str, vms: [usize; 2], depth: u32, message_size: u32) -> LinkSpec {
    LinkSpec {
        name: name.to_string(),
        kind: LinkKind::MsgQueuePair {
            vms,
            depth,
            message_size,
        },
    }
}

fn doorbell(name: &str, sender: usize, receiver: usize) -> LinkSpec {
    LinkSpec {
        name: name.to_string(),
        kind: LinkKind::Doorbell { sender, receiver },
    }
}

/// How many links VM `vm` is in.
fn links_of(b: &Bundle<'_>, vm: usize) -> usize {
    b.links
        .iter()
        .filter(|l| match l.kind {
            LinkKind::MsgQueuePair { vms, .. } => vms.contains(&vm),
            LinkKind::Doorbell { sender, receiver } => sender == vm || receiver == vm,
        })
        .count()
}

fn link_names<'b>(b: &'b Bundle<'_>) -> Vec<&'b str> {
    b.links.iter().map(|l| l.name.as_str()).collect()
}

#[test]
fn links_in_full() {
    let b = parse(LINKS, &ROOMY).unwrap();
    assert_eq!(b.errors, []);
    assert_eq!(names(&b), ["ping", "pong"]);
    assert_eq!(
        b.links,
        [
            pair("chat", [0, 1], DEFAULT_QUEUE_DEPTH, DEFAULT_MESSAGE_SIZE),
            doorbell("bell", 1, 0),
            pair("bulk", [1, 0], 255, 1023),
            pair("tiny", [0, 1], 1, 1),
        ]
    );
    assert_eq!((DEFAULT_QUEUE_DEPTH, DEFAULT_MESSAGE_SIZE), (8, 240));

    let (ping, pong) = (&b.vms[0], &b.vms[1]);
    let all = Capabilities {
        partition: true,
        cspace: true,
        vic: true,
        vcpus: true,
    };
    assert_eq!(ping.capabilities, all);
    assert_eq!(ping.object_memory, 1 << 20);
    assert_eq!(
        pong.capabilities,
        Capabilities {
            vic: true,
            ..Capabilities::default()
        }
    );
    assert_eq!(pong.object_memory, 256 << 10);
}

#[test]
fn links_to_a_vm_dropped_in_round_two_are_refused() {
    // ping takes both CPUs: pong is refused across VMs, every link with it.
    let b = parse(LINKS, &Limits::new(2)).unwrap();
    assert_eq!(names(&b), ["ping"]);
    assert_eq!(b.links, []);
    assert_eq!(
        messages(&b),
        [
            "bundle: vm 'pong': property 'vcpus': 1 vCPU does not fit: 0 of the 2 physical CPUs are left after the VMs before it",
            "bundle: link 'chat': property 'vms': VM 'pong' is not started (refused above)",
            "bundle: link 'bell': property 'sender': VM 'pong' is not started (refused above)",
            "bundle: link 'bulk': property 'vms': VM 'pong' is not started (refused above)",
            "bundle: link 'tiny': property 'vms': VM 'pong' is not started (refused above)",
        ]
    );
    let e = &b.errors[1];
    assert_eq!((e.vm.as_deref(), e.link.as_deref()), (None, Some("chat")));
    assert_eq!(
        e.problem,
        "property 'vms': VM 'pong' is not started (refused above)"
    );
}

#[test]
fn each_problem_of_a_link_is_named() {
    let b = parse(LINK_ERRORS, &ROOMY).unwrap();
    // "second" refused in round 2 and "broken" in round 1 do not shift the indices.
    assert_eq!(names(&b), ["first", "third"]);
    assert_eq!(
        b.links,
        [
            pair("ok", [1, 0], DEFAULT_QUEUE_DEPTH, DEFAULT_MESSAGE_SIZE),
            doorbell("last", 0, 1),
        ]
    );
    let kinds = "\"wurley,msgqueue-pair\" or \"wurley,doorbell\"";
    let pair_takes = "unknown; a wurley,msgqueue-pair link takes compatible, vms, queue-depth, \
                      message-size, status, description";
    let expect: Vec<String> = [
        "bundle: node '/links' property 'count': unknown, ignored",
        "bundle: vm 'broken': property 'vcpus': 0; a VM needs at least 1",
        "bundle: vm 'second': property 'console': VM 'first' before it already has the console",
        &format!("bundle: link 'no-compatible': property 'compatible': missing; {kinds}"),
        &format!(
            "bundle: link 'bad-compatible': property 'compatible': \"wurley,msgqueue\" is unknown; {kinds}"
        ),
        &format!(
            "bundle: link 'two-compatibles': property 'compatible': must be one string, {kinds}"
        ),
        "bundle: link 'no-vms': property 'vms': missing",
        "bundle: link 'one-vm': property 'vms': must be two VM names, e.g. vms = \"ping\", \"pong\";",
        "bundle: link 'three-vms': property 'vms': must be two VM names, e.g. vms = \"ping\", \"pong\";",
        "bundle: link 'same-vm': property 'vms': names VM 'first' twice; a link joins two VMs",
        "bundle: link 'depth-0': property 'queue-depth': 0 is outside 1..=255",
        "bundle: link 'depth-256': property 'queue-depth': 256 is outside 1..=255",
        "bundle: link 'wide-depth': property 'queue-depth': not a single cell",
        "bundle: link 'size-0': property 'message-size': 0 is outside 1..=1023 bytes",
        "bundle: link 'size-1024': property 'message-size': 1024 is outside 1..=1023 bytes",
        "bundle: link 'self-bell': property 'receiver': VM 'third' is also the sender; a link joins two VMs",
        "bundle: link 'no-receiver': property 'receiver': missing",
        "bundle: link 'no-sender': property 'sender': missing",
        "bundle: link 'receivers': property 'receiver': must be one VM name, not a list",
        "bundle: link 'ghost': property 'vms': no VM 'ghost' in /vms",
        "bundle: link 'to-disabled': property 'vms': VM 'asleep' is not started (disabled)",
        "bundle: link 'to-broken': property 'vms': VM 'broken' is not started (refused above)",
        "bundle: link 'to-second': property 'sender': VM 'second' is not started (refused above)",
        "bundle: link 'ghost-bell': property 'sender': no VM 'ghost' in /vms",
        "bundle: link 'ghost-bell': property 'receiver': VM 'asleep' is not started (disabled)",
        &format!("bundle: link 'typo': property 'queue_depth': {pair_takes}"),
        "bundle: link 'wrong-kind': property 'vms': unknown; a wurley,doorbell link takes compatible, sender, receiver, status, description",
        "bundle: link 'unknown-kind': property 'compatible': \"wurley,pipe\" is unknown; \"wurley,msgqueue-pair\" or \"wurley,doorbell\"",
        "bundle: link 'unknown-kind': property 'bogus': unknown; a link node takes compatible, vms, queue-depth, message-size, sender, receiver, status, description",
        "bundle: link 'with-child': node 'queue': link nodes have no child nodes in wurley,bundle-v1",
        "bundle: link 'link@1': node name: has a unit address; name the node after the link, e.g. 'chat'",
        "bundle: link 'bad-status': property 'status': \"off\" is neither \"okay\" nor \"disabled\"",
        &format!("bundle: link 'many': property 'depth': {pair_takes}"),
        "bundle: link 'many': property 'queue-depth': 0 is outside 1..=255",
        "bundle: link 'many': property 'vms': no VM 'ghost' in /vms",
        "bundle: link 'many': property 'vms': VM 'second' is not started (refused above)",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(messages(&b), expect);
}

#[test]
fn duplicate_link_names_keep_the_first() {
    let b = parse(DUPLICATE_LINKS, &ROOMY).unwrap();
    assert_eq!(names(&b), ["a", "b"]);
    assert_eq!(
        b.links,
        [
            pair("twin", [0, 1], DEFAULT_QUEUE_DEPTH, DEFAULT_MESSAGE_SIZE),
            doorbell("other", 1, 0),
        ]
    );
    assert_eq!(
        messages(&b),
        ["bundle: link 'twin': node name: another link node before it has the same name"]
    );
}

#[test]
fn at_most_sixteen_links_per_vm() {
    let b = parse(LINK_LIMIT, &ROOMY).unwrap();
    assert_eq!(names(&b), ["hub", "a", "b", "c"]);
    let made = link_names(&b);
    assert_eq!(made.len(), 8 + 8 + 1 + 7 + 1);
    assert!(!made.contains(&"seventeenth") && !made.contains(&"a-full"));
    assert_eq!(made.last(), Some(&"b-c"));
    assert_eq!(
        messages(&b),
        [
            "bundle: link 'broken': property 'vms': no VM 'ghost' in /vms",
            "bundle: link 'seventeenth': property 'vms': VM 'hub' is already in 16 links, the most one VM can be in",
            "bundle: link 'too-many': property 'sender': VM 'hub' is already in 16 links, the most one VM can be in",
            "bundle: link 'a-full': property 'receiver': VM 'a' is already in 16 links, the most one VM can be in",
        ]
    );
    // hub, a, b, c
    assert_eq!([0, 1, 2, 3].map(|vm| links_of(&b, vm)), [16, 16, 10, 8]);
}

#[test]
fn capabilities_and_object_memory() {
    let b = parse(CAPABILITIES, &ROOMY).unwrap();
    assert_eq!(names(&b), ["none", "all", "least", "memory-only"]);
    let caps = |vm: &VmSpec<'_>| {
        let c = vm.capabilities;
        (c.partition, c.cspace, c.vic, vm.object_memory)
    };
    assert_eq!(
        b.vms.iter().map(caps).collect::<Vec<_>>(),
        [
            (false, false, false, 256 << 10),
            (true, true, true, 16 << 20),
            (false, true, false, 4096),
            (false, false, false, 8192),
        ]
    );
    let known = "is not one of \"partition\", \"cspace\", \"vic\", \"vcpus\"";
    assert_eq!(
        messages(&b),
        [
            format!("bundle: vm 'unknown-cap': property 'capabilities': \"irq\" {known}"),
            "bundle: vm 'repeated-cap': property 'capabilities': \"vic\" is listed twice".into(),
            format!("bundle: vm 'empty-cap': property 'capabilities': \"\" {known}"),
            "bundle: vm 'flag-cap': property 'capabilities': not a NUL-terminated UTF-8 string list"
                .into(),
            "bundle: vm 'small-objects': property 'object-memory': 4095 is outside 4096..=16777216 bytes"
                .into(),
            "bundle: vm 'big-objects': property 'object-memory': 16777217 is outside 4096..=16777216 bytes"
                .into(),
            "bundle: vm 'wide-objects': property 'object-memory': not a single cell".into(),
        ]
    );
}

#[test]
fn corrupting_links_never_panics() {
    let mut buf = LINKS.to_vec();
    for i in 0..buf.len() {
        for v in [0x00, 0xff, 0x01, 0x40] {
            let old = core::mem::replace(&mut buf[i], v);
            if let Ok(b) = parse(&buf, &ROOMY) {
                let n = b.vms.len();
                for l in &b.links {
                    let ends = match l.kind {
                        LinkKind::MsgQueuePair {
                            vms,
                            depth,
                            message_size,
                        } => {
                            assert!(QUEUE_DEPTHS.contains(&depth));
                            assert!(MESSAGE_SIZES.contains(&message_size));
                            vms
                        }
                        LinkKind::Doorbell { sender, receiver } => [sender, receiver],
                    };
                    assert!(ends[0] != ends[1] && ends[0] < n && ends[1] < n, "{l:?}");
                }
                for vm in &b.vms {
                    assert!(OBJECT_MEMORY.contains(&vm.object_memory));
                }
            }
            buf[i] = old;
        }
    }
}

#[test]
fn passed_through_devices() {
    let b = parse(DEVICES, &ROOMY).unwrap();
    assert_eq!(names(&b), ["good"]);
    let devs = &b.vms[0].devices;
    assert_eq!(devs.len(), 2);
    assert_eq!(devs[0].name, "disk");
    assert_eq!(devs[0].compatible, ["virtio,mmio"]);
    assert_eq!(devs[0].regs, [(0xa003e00, 0x200)]);
    assert_eq!(devs[0].interrupts, [(47, 1)]);
    assert_eq!(devs[0].intids().collect::<Vec<_>>(), [79]);
    assert!(devs[0].dma_coherent);
    assert_eq!(devs[1].regs, [(0x1000_0000, 0x1000), (0x1000_2000, 0x1000)]);
    assert_eq!(devs[1].interrupts, [(3, 4), (4, 1)]);
    assert!(!devs[1].dma_coherent);
    let m = messages(&b);
    let has = |needle: &str| m.iter().any(|l| l.contains(needle));
    assert!(
        has("vm 'no-compatible': node 'devices/d': property 'compatible': missing"),
        "{m:?}"
    );
    assert!(
        has("vm 'bad-reg': node 'devices/d': property 'reg': must be 64-bit"),
        "{m:?}"
    );
    assert!(
        has("vm 'ppi': node 'devices/d': property 'interrupts': type 1: only SPIs"),
        "{m:?}"
    );
    assert!(
        has("vm 'extra-prop': node 'devices/d': property 'clocks': unknown"),
        "{m:?}"
    );
}

#[test]
fn scheduled_by_names_a_started_scheduler() {
    let b = parse(SCHEDULED_BY, &ROOMY).unwrap();
    assert_eq!(names(&b), ["host", "guest"]);
    assert_eq!(b.vms[0].scheduled_by, None);
    assert_eq!(b.vms[1].scheduled_by.as_deref(), Some("host"));
    assert_eq!(
        messages(&b),
        [
            "bundle: vm 'nested': property 'scheduled-by': VM 'guest' is proxy-scheduled itself",
            "bundle: vm 'selfish': property 'scheduled-by': names the VM itself",
            "bundle: vm 'orphan': property 'scheduled-by': VM 'nobody' is not started (missing or refused above)",
            "bundle: vm 'two-owners': property 'scheduled-by': must be one VM name, not a list",
            "bundle: vm 'broken': property 'kernel': missing",
            "bundle: vm 'of-broken': property 'scheduled-by': VM 'broken' is not started (missing or refused above)",
        ]
    );
}

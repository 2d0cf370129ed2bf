//! Host tests of [`crate::launch`]: the hypercall sequence that launches the manifest's VMs
//! (against the recording fake of `gunyah::tests`), their device trees, vIRQs and
//! placement, and what happens to VMs and files the manifest gets wrong.

#![allow(clippy::unwrap_used)]

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use wurley_abi::{CapId, Error};
use wurley_rt::fdt::Fdt;

use crate::gunyah::tests::Fake;
use crate::gunyah::{Gunyah, RmCaps};
use crate::launch::{FreeRam, Launcher, Placement, Started, Step, placement};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
const WINDOW: u64 = 0x60_0000_0000;

macro_rules! fixture {
    ($file:literal) => {
        include_bytes!(concat!("../../tests/data/bundle/", $file))
    };
}

const TWO_VMS: &[u8] = fixture!("two-vms.dtb");
const LINKS: &[u8] = fixture!("links.dtb");
const DEVICES: &[u8] = fixture!("devices.dtb");
const SCHEDULED_BY: &[u8] = fixture!("scheduled-by.dtb");
const CONSOLES: &[u8] = fixture!("consoles.dtb");
const PER_VM_ERRORS: &[u8] = fixture!("per-vm-errors.dtb");
const FAKE_IMAGE: &[u8] = fixture!("fake-Image");
const FAKE_INITRD: &[u8] = fixture!("fake-initrd");

fn rm(window: u64) -> RmCaps {
    RmCaps {
        partition: CapId(1),
        cspace: CapId(2),
        vic: CapId(3),
        addrspace: CapId(4),
        window: (WINDOW, window),
        cpus: 2,
    }
}

/// A launcher over `bundle` with 1 GiB of free RAM at 1 GiB (and 1 GiB at 3 GiB), the RM's
/// free vIRQs 40.., and hardware IRQs for SPIs 0..64 (caps 0x9000 + INTID).
fn setup(bundle: &'static [u8], window: u64) -> (Gunyah<Fake>, Launcher<'static>) {
    let fake = Fake {
        window: vec![0; 4 << 20],
        ..Fake::default()
    };
    let g = Gunyah::new(fake, rm(window), (40..96).collect());
    let hwirqs = (32..96)
        .map(|i| (i, CapId(0x9000 + u64::from(i))))
        .collect();
    let free = FreeRam::new([(GIB, GIB), (3 * GIB, GIB)]);
    let l = Launcher::new(bundle, free, hwirqs, 2).unwrap();
    (g, l)
}

/// Step until every VM is built; the VMs and the number of steps.
fn run(g: &mut Gunyah<Fake>, l: &mut Launcher<'_>) -> (Vec<Started>, usize) {
    for n in 1..10_000 {
        match l.step(g) {
            Step::More => {}
            Step::Ready => return (l.started(), n),
            Step::Done => panic!("done before ready"),
        }
    }
    panic!("the launch does not end");
}

fn log_from<'a>(g: &'a Gunyah<Fake>, prefix: &str) -> Vec<&'a str> {
    g.calls()
        .log
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with(prefix))
        .collect()
}

#[test]
fn one_vm_is_built_in_the_contract_order() {
    let (mut g, mut l) = setup(TWO_VMS, GIB);
    assert!(l.take_lines().is_empty());
    let (started, _) = run(&mut g, &mut l);
    assert_eq!(started.len(), 2);
    let names = g.calls().names();
    // The first VM's objects, up to its vCPUs.
    assert_eq!(
        names[..23],
        [
            "create", // partition
            "partition_configure",
            "activate",
            "create", // cspace
            "cspace_configure",
            "activate",
            "create", // address space
            "addrspace_configure",
            "activate",
            "create", // RAM
            "memextent_configure",
            "activate",
            "addrspace_map",
            "create", // VIC
            "vic_configure",
            "activate",
            "create", // VPM group
            "activate",
            "create", // vCPU 0
            "vcpu_configure",
            "vcpu_set_affinity",
            "vcpu_set_priority",
            "vcpu_set_timeslice",
        ]
    );
    let log = &g.calls().log;
    // Its partition from the RM's, with the default object-memory (256 KiB) as quota; its
    // objects from it, but the RAM extent from the RM's (a child partition owns no memory).
    assert_eq!(log[0], "create(Partition, 0x1, 0x2)");
    assert_eq!(log[1], "partition_configure(0x101, 0x40000)");
    assert_eq!(log[3], "create(Cspace, 0x101, 0x2)");
    assert_eq!(log[4], "cspace_configure(0x102, 256)");
    assert_eq!(log[6], "create(Addrspace, 0x101, 0x2)");
    assert_eq!(log[7], "addrspace_configure(0x103, 0x8000)");
    assert_eq!(log[9], "create(Memextent, 0x1, 0x2)");
    // 256 MiB, first fit at 1 GiB, RWX cached; the primary VM: mapped at its PA, RWX normal WB.
    assert_eq!(
        log[10],
        "memextent_configure(0x104, 0x40000000, 0x10000000, 0x307)"
    );
    assert_eq!(
        log[12],
        "addrspace_map(0x103, 0x104, 0x40000000, 0xf0077, 0x10000000)"
    );
    assert_eq!(log[13], "create(Vic, 0x101, 0x2)");
    assert_eq!(log[14], "vic_configure(0x105, 2, 64)");
    assert_eq!(log[16], "create(VpmGroup, 0x101, 0x2)");
    assert_eq!(log[18], "create(Thread, 0x101, 0x2)");
    assert_eq!(log[21], "vcpu_set_priority(0x107, 40)");
    assert_eq!(log[22], "vcpu_set_timeslice(0x107, 2000000)");
    // The RM links' queues come from each VM's partition.
    assert!(log.contains(&String::from("create(Msgqueue, 0x101, 0x2)")));
    assert!(log.contains(&String::from("create(Msgqueue, 0x109, 0x2)")));
    // The second VM: the next VMID, its RAM after the first's, its vCPU on the next CPU.
    assert!(log.contains(&String::from("addrspace_configure(0x10b, 0x8001)")));
    assert!(log.contains(&String::from(
        "memextent_configure(0x10c, 0x50000000, 0x1000000, 0x307)"
    )));
    let affinities = log_from(&g, "vcpu_set_affinity");
    assert_eq!(
        affinities,
        [
            "vcpu_set_affinity(0x107, 0)",
            "vcpu_set_affinity(0x108, 1)",
            "vcpu_set_affinity(0x10f, 0)"
        ]
    );
    // RM links: each VM's first two link vIRQs (64, 65), the RM's from its pool; then the
    // watches.
    assert!(log.contains(&String::from("msgqueue_bind_send(0x110, 0x105, 64)")));
    assert!(log.contains(&String::from("msgqueue_bind_receive(0x110, 0x3, 41)")));
    assert_eq!(
        log_from(&g, "vcpu_bind_virq"),
        [
            "vcpu_bind_virq(0x107, 0x3, 44, 0)",
            "vcpu_bind_virq(0x10f, 0x3, 45, 0)"
        ]
    );
    assert_eq!(started[0].watch, Some((CapId(0x107), 44)));
    let link = started[0].rm_link.unwrap();
    assert_eq!((link.tx_virq, link.rx_virq), (40, 41));
    assert_eq!(started[0].vmid, 0x8000);
    assert_eq!(started[0].known.virqs, (66, 96));
    assert_eq!(started[0].known.ram.unwrap().ipa, 0x4000_0000);

    // Loading: RAM zeroed in 32 MiB steps, each piece through a temporary extent.
    assert_eq!(g.calls().count("memextent_modify(0x104, Zero"), 8);
    let loads: Vec<&str> = log_from(&g, "memextent_derive");
    assert_eq!(loads.len(), 3 + 2, "{loads:?}");

    // Power on: named (linux has the console), at the kernel with the DTB.
    let n = g.calls().log.len();
    let on = l.power_on(&mut g);
    assert_eq!(on, [true, true]);
    let log = &g.calls().log[n..];
    assert_eq!(log[0], "vm_set_name(0x103, linux, 3)");
    let text_offset = u64::from_le_bytes(FAKE_IMAGE[8..16].try_into().unwrap());
    assert_eq!(
        log[1],
        format!(
            "vcpu_poweron(0x107, {:#x}, 0x4fe00000, 0)",
            0x4000_0000 + text_offset
        )
    );
    assert_eq!(log[2], "vm_set_name(0x10b, rtos, 2)");
    assert!(l.done());
    assert_eq!(l.step(&mut g), Step::Done);
}

#[test]
fn the_device_tree_is_the_one_the_hypervisor_writes() {
    let (mut g, mut l) = setup(TWO_VMS, GIB);
    run(&mut g, &mut l);
    // The window's last contents: the second VM's tree, at offset 0 (its top 2 MiB).
    let fdt = Fdt::new(&g.calls().window).unwrap();
    let rm_node = fdt
        .find_node("/hypervisor")
        .unwrap()
        .children()
        .find(|c| c.name().starts_with("gunyah-resource-mgr@"))
        .unwrap();
    let interrupts: Vec<u32> = (0..6)
        .map(|i| rm_node.cell("interrupts", i).unwrap())
        .collect();
    assert_eq!(interrupts, [0, 32, 1, 0, 33, 1]);
    assert!(rm_node.is_compatible("gunyah-resource-manager"));
    // rtos: 16 MiB at its memory-base (not identity mapped: its PA is elsewhere), one vCPU.
    let memory = fdt.find_node("/memory@80000000").unwrap();
    assert_eq!(memory.prop_cells("reg", 1, 2), Some(16 * MIB));
    assert_eq!(
        fdt.find_node("/cpus")
            .unwrap()
            .children()
            .filter(|c| c.name().starts_with("cpu@"))
            .count(),
        1
    );
    assert!(
        fdt.find_node("/chosen")
            .unwrap()
            .property("linux,initrd-start")
            .is_none()
    );
    assert_eq!(FAKE_INITRD.len(), 26);
}

#[test]
fn links_take_the_vm_virqs_the_hypervisor_gives() {
    let (mut g, mut l) = setup(LINKS, GIB);
    let (started, _) = run(&mut g, &mut l);
    assert_eq!(started.len(), 2);
    // ping: chat 64/65, bell (it receives) 66, bulk 67/68, tiny 69/70, RM 71/72.
    // pong: chat 64/65, bulk 66/67, tiny 68/69, RM 70/71.
    assert_eq!(started[0].known.virqs.0, 73);
    assert_eq!(started[1].known.virqs.0, 72);
    let log = &g.calls().log;
    assert!(
        log.iter()
            .any(|c| c.starts_with("doorbell_bind(") && c.ends_with(", 66)"))
    );
    assert_eq!(g.calls().count("msgqueue_configure"), 2 * 3 + 2 * 2);
    // Each VM's partition (ping's with its object-memory, 1 MiB): the doorbell is its
    // receiver's (ping), a pair's queues its first VM's (chat, tiny: ping; bulk: pong), the RM
    // link's queues the VM's.
    let parts: Vec<&str> = log
        .iter()
        .filter_map(|c| c.strip_prefix("partition_configure("))
        .collect();
    assert_eq!(parts, ["0x101, 0x100000)", "0x10e, 0x40000)"]);
    assert_eq!(
        log_from(&g, "create(Doorbell"),
        ["create(Doorbell, 0x101, 0x2)"]
    );
    assert_eq!(g.calls().count("create(Msgqueue, 0x101, 0x2)"), 2 * 2 + 2);
    assert_eq!(g.calls().count("create(Msgqueue, 0x10e, 0x2)"), 2 + 2);
    assert!(
        log.iter()
            .any(|c| c.starts_with("msgqueue_configure(") && c.ends_with(", 255, 1023)"))
    );
    // ping has every capability: partition, cspace, VIC and its two vCPUs.
    let copies_into_ping_cspace = log
        .iter()
        .filter(|c| c.starts_with("cspace_copy(0x2, ") && c.contains(", 0x102, "))
        .count();
    assert!(copies_into_ping_cspace >= 5);
    // pong's tree (the last written) has its links, labelled.
    let fdt = Fdt::new(&g.calls().window).unwrap();
    let labels: Vec<&str> = fdt
        .find_node("/hypervisor")
        .unwrap()
        .children()
        .filter_map(|c| c.prop_str("label"))
        .collect();
    assert_eq!(labels, ["chat", "bell", "bulk", "tiny"]);
}

#[test]
fn devices_are_identity_mapped_and_their_irqs_bound() {
    let (mut g, mut l) = setup(DEVICES, GIB);
    let lines = l.take_lines();
    let (started, _) = run(&mut g, &mut l);
    assert!(!started.is_empty(), "{lines:?}");
    let good = &started[0];
    assert_eq!(good.name, "good");
    let log = &g.calls().log;
    // RAM at PA = IPA (the default base).
    assert!(
        log.iter().any(|c| c.starts_with("memextent_configure(")
            && c.contains(", 0x40000000, 0x1000000, 0x307)"))
    );
    // The windows, whole pages, device memory, at their own addresses.
    assert!(log.iter().any(
        |c| c.starts_with("memextent_configure(") && c.ends_with(", 0xa003000, 0x1000, 0x106)")
    ));
    assert!(
        log.iter().any(
            |c| c.starts_with("addrspace_map(") && c.ends_with(", 0xa003000, 0x10066, 0x1000)")
        )
    );
    // SPIs 47, 3, 4 at INTIDs 79, 35, 36.
    assert_eq!(
        good.hwirqs,
        [
            (79, CapId(0x9000 + 79)),
            (35, CapId(0x9000 + 35)),
            (36, CapId(0x9000 + 36))
        ]
    );
    // Its link vIRQs skip none of 64.. (no device there).
    assert_eq!(good.known.virqs.0, 66);
}

#[test]
fn a_device_irq_the_hypervisor_keeps_stops_the_vm() {
    let fake = Fake {
        window: vec![0; 4 << 20],
        ..Fake::default()
    };
    let mut g = Gunyah::new(fake, rm(GIB), (40..96).collect());
    let mut l = Launcher::new(DEVICES, FreeRam::new([(GIB, GIB)]), Vec::new(), 2).unwrap();
    let _ = l.take_lines();
    let (started, _) = run(&mut g, &mut l);
    assert!(started.iter().all(|s| s.name != "good"));
    let lines = l.take_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("VM good: not started: device ") && l.contains("SPI 47")),
        "{lines:?}"
    );
}

#[test]
fn proxy_scheduled_vms_run_only_by_their_owner() {
    let (mut g, mut l) = setup(SCHEDULED_BY, GIB);
    let (started, _) = run(&mut g, &mut l);
    let host = started.iter().position(|s| s.name == "host").unwrap();
    let guest = started.iter().find(|s| s.name == "guest").unwrap();
    assert!(guest.watch.is_none());
    assert_eq!(guest.proxy.len(), 2);
    assert!(guest.proxy.iter().all(|p| p.owner == host));
    // The owner's wakeup vIRQs come after its links (none): 64, 65; then its RM link.
    assert_eq!(
        guest.proxy.iter().map(|p| p.virq).collect::<Vec<_>>(),
        [64, 65]
    );
    assert_eq!(started[host].known.virqs.0, 68);
    let log = &g.calls().log;
    assert_eq!(
        log.iter()
            .filter(|c| c.starts_with("vcpu_configure(") && c.ends_with(", 512)"))
            .count(),
        2
    );
    assert_eq!(
        log.iter()
            .filter(|c| c.starts_with("vcpu_bind_virq(") && c.ends_with(", 1)"))
            .count(),
        2
    );
}

#[test]
fn critical_vms_have_critical_vcpus() {
    let (mut g, mut l) = setup(CONSOLES, GIB);
    run(&mut g, &mut l);
    assert!(
        g.calls()
            .log
            .iter()
            .any(|c| c.starts_with("vcpu_configure(") && c.ends_with(", 256)"))
    );
}

#[test]
fn manifest_errors_are_reported_and_the_rest_starts() {
    let (mut g, mut l) = setup(PER_VM_ERRORS, GIB);
    let lines = l.take_lines();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| l.starts_with("bundle: ")), "{lines:?}");
    let specs = l.specs().len();
    let (started, _) = run(&mut g, &mut l);
    assert_eq!(started.len(), specs);
    // A file that is not a bundle is refused whole.
    let e = Launcher::new(FAKE_IMAGE, FreeRam::default(), Vec::new(), 1).err();
    assert!(e.unwrap().starts_with("bundle: not a boot bundle"));
}

#[test]
fn a_vm_without_ram_is_not_started_and_leaves_nothing() {
    let fake = Fake {
        window: vec![0; 4 << 20],
        ..Fake::default()
    };
    let mut g = Gunyah::new(fake, rm(GIB), (40..96).collect());
    // 64 MiB: room for rtos (16 MiB), not for linux (256 MiB).
    let mut l = Launcher::new(TWO_VMS, FreeRam::new([(GIB, 64 * MIB)]), Vec::new(), 2).unwrap();
    let (started, _) = run(&mut g, &mut l);
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].name, "rtos");
    // rtos took the first CPU: linux claimed none.
    assert_eq!(
        log_from(&g, "vcpu_set_affinity"),
        ["vcpu_set_affinity(0x107, 0)"]
    );
    let lines = l.take_lines();
    assert_eq!(
        lines[0],
        "VM linux: not started: 256 MiB of RAM: no free block that large"
    );
    // Nothing was made for it: rtos's objects are the first.
    assert_eq!(g.calls().log[0], "create(Partition, 0x1, 0x2)");
    assert_eq!(g.calls().log[4], "cspace_configure(0x102, 256)");
}

#[test]
fn a_failure_half_way_deletes_what_was_made() {
    let (mut g, mut l) = setup(TWO_VMS, GIB);
    g.calls_mut().fail = Some((String::from("vic_configure"), Error::Nomem));
    let (started, _) = run(&mut g, &mut l);
    assert_eq!(started.len(), 1);
    let lines = l.take_lines();
    assert_eq!(
        lines[..2],
        [
            "VM linux: primary VM, identity mapped at PA 0x40000000",
            "VM linux: not started: VIC: Nomem"
        ]
    );
    // Newest first: VIC, RAM, address space, cspace, partition.
    assert_eq!(
        log_from(&g, "cspace_delete(0x2, ")[..5],
        [
            "cspace_delete(0x2, 0x105)",
            "cspace_delete(0x2, 0x104)",
            "cspace_delete(0x2, 0x103)",
            "cspace_delete(0x2, 0x102)",
            "cspace_delete(0x2, 0x101)"
        ]
    );
    // Its RAM is free again: rtos took the lowest block.
    assert!(
        g.calls()
            .log
            .iter()
            .any(|c| c.ends_with(", 0x40000000, 0x1000000, 0x307)"))
    );
}

#[test]
fn a_small_window_loads_in_more_pieces() {
    let (mut g, mut l) = setup(TWO_VMS, 16 << 10);
    let (_, steps) = run(&mut g, &mut l);
    // The 64 KiB kernel in 16 KiB chunks (it starts on a page), twice; the initrd once; each
    // device tree in one chunk or more.
    assert!(g.calls().count("memextent_derive") >= 2 * 4 + 1 + 2);
    assert!(steps > 2 * 4);
}

#[test]
fn free_ram_is_taken_in_aligned_blocks() {
    let mut f = FreeRam::new([(0x4010_0000, 0x1000_0000), (0x8000_0000, 0x4000_0000)]);
    // First fit, 2 MiB aligned: the hole below the aligned start stays free.
    assert_eq!(f.take(0x20_0000, None), Ok(0x4020_0000));
    assert_eq!(f.ranges()[0], (0x4010_0000, 0x10_0000));
    // At a given address, inside a range.
    assert_eq!(f.take(0x1000_0000, Some(0x9000_0000)), Ok(0x9000_0000));
    assert_eq!(f.take(0x1000_0000, Some(0x9000_0000)), Err("not free RAM"));
    assert_eq!(f.take(0x8000_0000, None), Err("no free block that large"));
    // Given back, merged with its neighbours.
    f.give(0x9000_0000, 0x1000_0000);
    assert!(f.ranges().contains(&(0x8000_0000, 0x4000_0000)));
    f.give(0x4020_0000, 0x20_0000);
    assert_eq!(f.ranges()[0], (0x4010_0000, 0x1000_0000));
}

/// A launcher over `bundle` with the free RAM `free` (otherwise as [`setup`]).
fn setup_free(bundle: &'static [u8], free: FreeRam) -> (Gunyah<Fake>, Launcher<'static>) {
    let fake = Fake {
        window: vec![0; 4 << 20],
        ..Fake::default()
    };
    let g = Gunyah::new(fake, rm(GIB), (40..96).collect());
    let hwirqs = (32..96)
        .map(|i| (i, CapId(0x9000 + u64::from(i))))
        .collect();
    (g, Launcher::new(bundle, free, hwirqs, 2).unwrap())
}

#[test]
fn the_primary_vm_is_identity_mapped_at_its_pa() {
    // Free RAM from 0x4810_0000: the first 2 MiB aligned block is at 0x4820_0000.
    let (mut g, mut l) = setup_free(TWO_VMS, FreeRam::new([(0x4810_0000, GIB)]));
    let _ = l.take_lines();
    let (started, _) = run(&mut g, &mut l);
    let lines = l.take_lines();
    assert_eq!(
        lines[0],
        "VM linux: primary VM, identity mapped at PA 0x48200000"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("VM linux: 256 MiB at IPA 0x48200000 (PA 0x48200000)")),
        "{lines:?}"
    );
    let log = &g.calls().log;
    // linux (no memory-base): PA = IPA.
    assert!(log.contains(&String::from(
        "memextent_configure(0x104, 0x48200000, 0x10000000, 0x307)"
    )));
    assert!(log.contains(&String::from(
        "addrspace_map(0x103, 0x104, 0x48200000, 0xf0077, 0x10000000)"
    )));
    assert_eq!(started[0].known.ram.unwrap().ipa, 0x4820_0000);
    // rtos (memory-base 0x8000_0000, not the primary): its block after linux's, at its base.
    assert!(log.contains(&String::from(
        "memextent_configure(0x10c, 0x58200000, 0x1000000, 0x307)"
    )));
    assert!(log.contains(&String::from(
        "addrspace_map(0x10b, 0x10c, 0x80000000, 0xf0077, 0x1000000)"
    )));
    assert_eq!(started[1].known.ram.unwrap().ipa, 0x8000_0000);
    // linux's tree (written first) says where its RAM is; it boots there.
    let n = g.calls().log.len();
    l.power_on(&mut g);
    let text_offset = u64::from_le_bytes(FAKE_IMAGE[8..16].try_into().unwrap());
    assert_eq!(
        g.calls().log[n + 1],
        format!(
            "vcpu_poweron(0x107, {:#x}, {:#x}, 0)",
            0x4820_0000 + text_offset,
            0x4820_0000 + 256 * MIB - 2 * MIB
        )
    );
}

#[test]
fn the_memory_node_of_the_identity_mapped_vm_is_at_its_pa() {
    // 16 MiB each, room for one: ping (primary) at 0x4800_0000, pong finds no RAM, so the
    // window holds ping's tree last.
    let free = FreeRam::new([(0x4800_0000, 0x100_0000)]);
    let (mut g, mut l) = setup_free(LINKS, free);
    let (started, _) = run(&mut g, &mut l);
    assert_eq!(started.len(), 1, "{:?}", l.take_lines());
    let fdt = Fdt::new(&g.calls().window).unwrap();
    let memory = fdt.find_node("/memory@48000000").unwrap();
    assert_eq!(memory.prop_cells("reg", 0, 2), Some(0x4800_0000));
    assert_eq!(memory.prop_cells("reg", 1, 2), Some(16 * MIB));
}

#[test]
fn the_next_vm_is_primary_when_the_first_fails() {
    let (mut g, mut l) = setup_free(LINKS, FreeRam::new([(0x4810_0000, GIB)]));
    g.calls_mut().fail = Some((String::from("vic_configure"), Error::Nomem));
    let _ = l.take_lines();
    let (started, _) = run(&mut g, &mut l);
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].name, "pong");
    // ping's block was given back: pong is identity mapped at it.
    assert_eq!(started[0].known.ram.unwrap().ipa, 0x4820_0000);
    let lines = l.take_lines();
    assert!(lines.contains(&String::from(
        "VM pong: primary VM, identity mapped at PA 0x48200000"
    )));
}

#[test]
fn only_the_primary_without_memory_base_or_devices_is_identity_mapped() {
    let l = Launcher::new(TWO_VMS, FreeRam::default(), Vec::new(), 1).unwrap();
    let (linux, rtos) = (&l.specs()[0], &l.specs()[1]);
    assert!(!linux.memory_base_explicit && rtos.memory_base_explicit);
    assert_eq!(placement(linux, true), Placement::Identity);
    assert_eq!(placement(linux, false), Placement::Anywhere);
    assert_eq!(placement(rtos, true), Placement::Anywhere);
    let l = Launcher::new(DEVICES, FreeRam::default(), Vec::new(), 1).unwrap();
    let good = &l.specs()[0];
    assert!(!good.devices.is_empty());
    assert_eq!(placement(good, true), Placement::AtBase);
}

#[test]
fn ram_that_cannot_be_identity_mapped_stops_the_primary() {
    // The only free RAM is above the guest IPA limit (2^39).
    let (mut g, mut l) = setup_free(LINKS, FreeRam::new([(1 << 39, GIB)]));
    let _ = l.take_lines();
    let (started, _) = run(&mut g, &mut l);
    // ping cannot be identity mapped there; pong (then the first built) neither.
    assert!(started.is_empty());
    let lines = l.take_lines();
    assert!(
        lines[0].starts_with(
            "VM ping: not started: 16 MiB of RAM at PA 0x8000000000: cannot be identity mapped"
        ),
        "{lines:?}"
    );
    assert_eq!(l.free_ram().ranges(), [(1 << 39, GIB)]);
}

#[test]
fn a_vm_over_its_object_memory_is_not_started_and_the_others_are() {
    let (mut g, mut l) = setup(LINKS, GIB);
    let _ = l.take_lines();
    // ping's cspace table does not fit its quota.
    g.calls_mut().fail = Some((String::from("cspace_configure(0x102"), Error::Nomem));
    let (started, _) = run(&mut g, &mut l);
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].name, "pong");
    let lines = l.take_lines();
    assert!(
        lines.contains(&String::from(
            "VM ping: not started: cspace: Nomem: needs more than its object-memory (1048576 bytes)"
        )),
        "{lines:?}"
    );
    // What was made for it is deleted, its partition last.
    assert!(
        g.calls()
            .log
            .contains(&String::from("cspace_delete(0x2, 0x101)"))
    );
    // Its links are not made; pong has the default quota.
    let log = &g.calls().log;
    assert!(!log.iter().any(|c| c.starts_with("create(Doorbell")));
    assert!(log.contains(&String::from("partition_configure(0x103, 0x40000)")));
}

//! VM creation: the exact hypercalls of VM_INIT, stop, reclaim and reset giving everything
//! back, and a failure half-way undoing what was made.

use super::*;

/// The exact hypercalls of VM_INIT for a 2-vCPU VM lent 64 MiB of the host's RAM.
#[test]
fn vm_creation_sequence() {
    let mut g = gunyah();
    let h = lend_image(&mut g);
    g.calls_mut().log.clear();
    let resources = g.vm_create(GUEST, HOST).unwrap();
    let expected = [
        // The owner's DTB pages, into the RM's window.
        "create(Memextent, 0x1, 0x2)",
        "memextent_derive(0x102, 0x101, 0x200000, 0x11000, 774)",
        "activate(0x102)",
        "addrspace_map(0x4, 0x102, 0x6000000000, 0xf0066, 0x11000)",
        // cspace, address space, VIC.
        "create(Cspace, 0x1, 0x2)",
        "cspace_configure(0x103, 64)",
        "activate(0x103)",
        "create(Addrspace, 0x1, 0x2)",
        "addrspace_configure(0x104, 0x80)",
        "activate(0x104)",
        "create(Vic, 0x1, 0x2)",
        "vic_configure(0x105, 2, 64)",
        "activate(0x105)",
        // Two vCPUs (the owner's /cpus).
        "create(Thread, 0x1, 0x2)",
        "vcpu_configure(0x106, 0)",
        "vcpu_set_affinity(0x106, 0)",
        "cspace_attach_thread(0x103, 0x106)",
        "addrspace_attach_thread(0x104, 0x106)",
        "vic_attach_vcpu(0x105, 0x106, 0)",
        "activate(0x106)",
        "create(Thread, 0x1, 0x2)",
        "vcpu_configure(0x107, 0)",
        "vcpu_set_affinity(0x107, 1)",
        "cspace_attach_thread(0x103, 0x107)",
        "addrspace_attach_thread(0x104, 0x107)",
        "vic_attach_vcpu(0x105, 0x107, 1)",
        "activate(0x107)",
        // vCPU 0's HALT to the RM.
        "vcpu_bind_virq(0x106, 0x3, 40, 0)",
        // RM link.
        "create(Msgqueue, 0x1, 0x2)",
        "msgqueue_configure(0x108, 8, 240)",
        "activate(0x108)",
        "create(Msgqueue, 0x1, 0x2)",
        "msgqueue_configure(0x109, 8, 240)",
        "activate(0x109)",
        "msgqueue_bind_send(0x108, 0x105, 64)",
        "msgqueue_bind_receive(0x108, 0x3, 41)",
        "msgqueue_bind_send(0x109, 0x3, 42)",
        "msgqueue_bind_receive(0x109, 0x105, 65)",
        "cspace_copy(0x2, 0x108, 0x103, 0x5)",
        "cspace_copy(0x2, 0x109, 0x103, 0xa)",
        // Owner link.
        "create(Msgqueue, 0x1, 0x2)",
        "msgqueue_configure(0x10c, 8, 240)",
        "activate(0x10c)",
        "create(Msgqueue, 0x1, 0x2)",
        "msgqueue_configure(0x10d, 8, 240)",
        "activate(0x10d)",
        "msgqueue_bind_send(0x10c, 0x105, 66)",
        "msgqueue_bind_receive(0x10c, 0x12, 70)",
        "msgqueue_bind_send(0x10d, 0x12, 71)",
        "msgqueue_bind_receive(0x10d, 0x105, 67)",
        "cspace_copy(0x2, 0x10c, 0x103, 0x5)",
        "cspace_copy(0x2, 0x10d, 0x103, 0xa)",
        "cspace_copy(0x2, 0x10d, 0x11, 0x5)",
        "cspace_copy(0x2, 0x10c, 0x11, 0xa)",
        "cspace_copy(0x2, 0x106, 0x11, 0x72)",
        "cspace_copy(0x2, 0x107, 0x11, 0x72)",
        // The device tree written, cleaned, the window emptied.
        "memextent_modify(0x102, Clean, 0x11000)",
        "addrspace_unmap(0x4, 0x102, 0x6000000000, 0x11000)",
        "cspace_delete(0x2, 0x102)",
        // The image parcel, into the VM at the owner's IPA.
        "memextent_modify(0x101, Clean, 0x4000000)",
        "addrspace_map(0x104, 0x101, 0x41000000, 0xf0077, 0x4000000)",
    ];
    assert_eq!(g.calls().log, expected);

    // What the owner and the VM are told.
    let for_owner: Vec<_> = resources.iter().filter(|r| r.holder == HOST).collect();
    let kinds: Vec<_> = for_owner.iter().map(|r| r.entry.resource_type).collect();
    assert_eq!(
        kinds,
        [
            ResourceType::VirtualCpu,
            ResourceType::VirtualCpu,
            ResourceType::MsgQueueSend,
            ResourceType::MsgQueueRecv
        ]
    );
    assert!(for_owner.iter().all(|r| r.entry.partner_vmid == GUEST));
    assert_eq!(
        (for_owner[2].entry.cap_id, for_owner[2].entry.virq),
        (0x110, 71)
    );
    assert_eq!(
        (for_owner[3].entry.cap_id, for_owner[3].entry.virq),
        (0x111, 70)
    );
    assert_eq!(resources.iter().filter(|r| r.holder == GUEST).count(), 2);
    assert_eq!(
        g.take_events(),
        [
            Event::Link {
                vmid: GUEST,
                tx: CapId(0x109),
                rx: CapId(0x108),
                tx_virq: 42,
                rx_virq: 41
            },
            Event::Watch {
                vmid: GUEST,
                vcpu: CapId(0x106),
                virq: 40
            },
        ]
    );

    // The device tree in the parcel: the owner's bootargs and initrd, two CPUs, the RAM, the
    // RM link and the owner link.
    let window = &g.calls().window;
    let dt = Fdt::new(&window[0x800..]).unwrap();
    let chosen = dt.find_node("/chosen").unwrap();
    assert_eq!(chosen.prop_str("bootargs"), Some("console=hvc0 quiet"));
    assert_eq!(chosen.prop_u64("linux,initrd-start"), Some(0x4100_0000));
    assert_eq!(dt.find_node("/cpus").unwrap().children().count(), 2);
    let mem = dt.find_node("/memory@41000000").unwrap();
    assert_eq!(mem.prop_cells("reg", 1, 2), Some(IMAGE_SIZE));
    let rm = wurley_rt::hypdt::resource_manager(&dt).unwrap();
    assert_eq!((rm.tx.0, rm.rx.0), (0x10a, 0x10b));
    let owner = wurley_rt::hypdt::msgqueue_pair(&dt, "owner").unwrap();
    assert_eq!((owner.tx.0, owner.rx.0), (0x10e, 0x10f));
    assert_eq!(owner.tx_irq.map(|i| i.intid), Some(66));

    // The parcel counts as accepted by the VM.
    assert_eq!(g.parcels().accepted_by(GUEST), vec![h]);

    // VM_SET_BOOT_CONTEXT and VM_START.
    g.calls_mut().log.clear();
    g.vm_set_boot_context(GUEST, BootRegSet::X, 0, 0x4300_0000)
        .unwrap();
    g.vm_power_on(GUEST).unwrap();
    assert_eq!(
        g.calls().log,
        [
            "vcpu_register_write(0x106, 0, 0, 0x43000000)",
            "vcpu_poweron(0x106, 0x41000000, 0x41200800, 2)",
        ]
    );
}

/// VM_STOP, MEM_RECLAIM, VM_RESET, VM_DEALLOCATE: every cap deleted, the pages back with the
/// owner, the vIRQs free again.
#[test]
fn vm_stop_reclaim_reset() {
    let mut g = gunyah();
    let h = lend_image(&mut g);
    g.vm_create(GUEST, HOST).unwrap();
    g.take_events();
    // The owner cannot take the memory back while the VM runs.
    let reclaim = MemReleaseRequest {
        handle: h,
        flags: 0,
    };
    assert_eq!(g.mem_release(HOST, &reclaim, true), Err(RmError::MemInUse));
    g.calls_mut().log.clear();
    g.vm_kill(GUEST).unwrap();
    assert_eq!(
        g.calls().log,
        [
            "vcpu_kill(0x106)",
            "vcpu_kill(0x107)",
            "addrspace_unmap(0x104, 0x101, 0x41000000, 0x4000000)",
        ]
    );
    g.calls_mut().log.clear();
    g.mem_release(HOST, &reclaim, true).unwrap();
    assert_eq!(g.calls().log, ["cspace_delete(0x2, 0x101)"]);

    g.calls_mut().log.clear();
    g.vm_destroy(GUEST).unwrap();
    // The RM's HALT vIRQ is unbound first, then every cap goes.
    let log = &g.calls().log[1..];
    assert_eq!(g.calls().log[0], "vcpu_unbind_virq(0x106, 0)");
    assert!(
        log.iter().all(|l| l.starts_with("cspace_delete(")),
        "{log:?}"
    );
    // 8 copies (4 in the owner's cspace, 4 in the VM's), then 9 master caps (4 queues, 2
    // vCPUs, VIC, addrspace, cspace; the window extent was deleted at init): newest first.
    assert_eq!(log.len(), 8 + 9);
    assert_eq!(log[0], "cspace_delete(0x11, 0x113)");
    assert_eq!(
        log.last().map(String::as_str),
        Some("cspace_delete(0x2, 0x103)")
    );
    assert_eq!(
        g.take_events(),
        [
            Event::Unwatch {
                vmid: GUEST,
                virq: 40
            },
            Event::Unlink {
                vmid: GUEST,
                virqs: [42, 41]
            },
        ]
    );
    // The vIRQs are free again: the next VM gets the same ones.
    g.vm_deallocate(GUEST);
    g.calls_mut().log.clear();
    let _ = lend_image(&mut g);
    g.vm_create(GUEST, HOST).unwrap();
    let bound = |l: &String| l.starts_with("vcpu_bind_virq(") && l.ends_with(", 0x3, 40, 0)");
    assert!(g.calls().log.iter().any(bound));
    assert!(g.calls().log.iter().any(|l| l.ends_with(", 0x12, 70)")));
}

/// A VM reset without MEM_RECLAIM first gives the lent image back by itself.
#[test]
fn reset_returns_lent_memory() {
    let mut g = gunyah();
    let h = lend_image(&mut g);
    g.vm_create(GUEST, HOST).unwrap();
    g.calls_mut().log.clear();
    g.vm_destroy(GUEST).unwrap();
    let log = &g.calls().log;
    assert_eq!(
        log[0],
        "addrspace_unmap(0x104, 0x101, 0x41000000, 0x4000000)"
    );
    assert_eq!(log[1], "cspace_delete(0x2, 0x101)");
    assert!(g.parcels().get(h).is_err());
}

/// A failure half-way through VM_INIT deletes everything it made, in reverse.
#[test]
fn failed_creation_is_undone() {
    for fail in [
        "create(Vic",
        "vic_attach_vcpu(0x105, 0x107",
        "msgqueue_bind_receive(0x10c",
        "cspace_copy(0x2, 0x107",
        "addrspace_map(0x104",
    ] {
        let mut g = gunyah();
        let h = lend_image(&mut g);
        g.calls_mut().log.clear();
        g.calls_mut().fail = Some((String::from(fail), Error::Nomem));
        assert_eq!(g.vm_create(GUEST, HOST), Err(RmError::NoMem), "{fail}");
        let calls = g.calls();
        // The failed call made nothing.
        let failed = usize::from(fail.starts_with("create(") || fail.starts_with("cspace_copy("));
        let created = calls.count("create(") + calls.count("cspace_copy(") - failed;
        assert_eq!(
            calls.count("cspace_delete("),
            created,
            "{fail}: {:?}",
            calls.log
        );
        let maps = calls.count("addrspace_map(") - usize::from(fail.starts_with("addrspace_map("));
        assert_eq!(
            calls.count("addrspace_unmap("),
            maps,
            "{fail}: {:?}",
            calls.log
        );
        assert!(g.take_events().is_empty());
        assert!(g.parcels().accepted_by(GUEST).is_empty());
        // And it can be tried again, with the same vIRQs.
        g.calls_mut().log.clear();
        g.vm_create(GUEST, HOST).unwrap();
        let bound = |l: &String| l.starts_with("vcpu_bind_virq(") && l.ends_with(", 0x3, 40, 0)");
        assert!(g.calls().log.iter().any(bound));
        assert_eq!(g.parcels().accepted_by(GUEST), vec![h]);
    }
}

#[test]
fn creation_needs_a_configured_image() {
    let mut g = gunyah();
    assert_eq!(g.vm_init_check(GUEST, HOST), Err(RmError::ArgumentInvalid));
    assert_eq!(g.vm_create(GUEST, HOST), Err(RmError::ArgumentInvalid));
    let h = lend_image(&mut g);
    assert_eq!(g.vm_init_check(GUEST, HOST), Ok(()));
    assert_eq!(g.vm_init_check(GUEST, OTHER), Err(RmError::ArgumentInvalid));
    // Another owner's parcel, or a DTB outside it.
    let bad = VmConfigImageRequest {
        vmid: GUEST,
        auth_mech: 0,
        mem_handle: h,
        image_offset: 0,
        image_size: 0,
        dtb_offset: IMAGE_SIZE - 0x100,
        dtb_size: 0x1000,
    };
    assert_eq!(g.vm_config_image(OTHER, GUEST, &bad), Err(RmError::Denied));
    assert_eq!(
        g.vm_config_image(HOST, GUEST, &bad),
        Err(RmError::ArgumentInvalid)
    );
    assert_eq!(
        g.vm_config_image(HOST, OTHER, &bad),
        Err(RmError::ArgumentInvalid)
    );
    // A VM the RM did not create is not killed by it.
    assert_eq!(g.vm_kill(OTHER), Err(RmError::Unimplemented));
    assert_eq!(g.vm_destroy(OTHER), Ok(()));
    assert!(g.calls().names().iter().all(|n| *n != "vcpu_kill"));
}

//! Memparcel bookkeeping: ACL and range checks, lending, accepting, releasing and
//! reclaiming between VMs, sharing, donating.

use super::*;

#[test]
fn parcel_acl_and_range_checks() {
    let rwx = MEM_RIGHTS_RWX;
    let lend = TransType::Lend;
    assert_eq!(
        Parcels::check_acl(HOST, lend, &[]),
        Err(RmError::ArgumentInvalid)
    );
    assert_eq!(
        Parcels::check_acl(HOST, lend, &[(HOST, rwx)]),
        Err(RmError::ArgumentInvalid)
    );
    assert_eq!(
        Parcels::check_acl(HOST, TransType::Share, &[(HOST, rwx), (GUEST, 4)]),
        Ok(())
    );
    assert_eq!(
        Parcels::check_acl(HOST, lend, &[(GUEST, rwx), (GUEST, rwx)]),
        Err(RmError::ArgumentInvalid)
    );
    assert_eq!(
        Parcels::check_acl(HOST, lend, &[(GUEST, 8)]),
        Err(RmError::ArgumentInvalid)
    );
    assert_eq!(
        Parcels::check_acl(HOST, TransType::Donate, &[(GUEST, rwx), (OTHER, rwx)]),
        Err(RmError::ArgumentInvalid)
    );

    let mut p = Parcels::new();
    let h = p
        .create(
            HOST,
            lend,
            MemType::Normal,
            7,
            false,
            true,
            &[(GUEST, rwx)],
            &[],
        )
        .unwrap();
    let r = Range {
        ipa: 0x1000,
        size: 0x2000,
        extent: CapId(9),
    };
    p.add_ranges(h, &[r]).unwrap();
    assert_eq!(
        p.check_ranges(HOST, &[(0x2000, 0x1000)]),
        Err(RmError::MemInUse)
    );
    assert_eq!(p.check_ranges(OTHER, &[(0x2000, 0x1000)]), Ok(()));
    assert_eq!(
        p.check_ranges(HOST, &[(0x8000, 0x1000), (0x8000, 0x1000)]),
        Err(RmError::MemInUse)
    );
    assert_eq!(
        p.check_ranges(HOST, &[(0x8001, 0x1000)]),
        Err(RmError::ArgumentInvalid)
    );
    assert_eq!(p.get(h).unwrap().locate(0x1800), Some((0, 0x1800)));
    assert_eq!(p.get(h).unwrap().locate(0x2000), None);

    // Accept, release, reclaim.
    let normal = MemType::Normal;
    assert_eq!(
        p.check_accept(h, OTHER, lend, normal, None).err(),
        Some(RmError::Denied)
    );
    assert_eq!(
        p.check_accept(h, GUEST, TransType::Share, normal, None)
            .err(),
        Some(RmError::ArgumentInvalid)
    );
    assert_eq!(
        p.check_accept(h, GUEST, lend, normal, Some(8)).err(),
        Some(RmError::ValidateFailed)
    );
    assert!(p.check_accept(h, GUEST, lend, normal, Some(7)).is_ok());
    assert_eq!(p.check_release(h, GUEST).err(), Some(RmError::MemReleased));
    p.set_accepted(h, GUEST, vec![0x5000]).unwrap();
    assert_eq!(
        p.check_accept(h, GUEST, lend, normal, None).err(),
        Some(RmError::MemInUse)
    );
    assert_eq!(p.check_reclaim(h, HOST).err(), Some(RmError::MemInUse));
    assert_eq!(p.check_reclaim(h, GUEST).err(), Some(RmError::Denied));
    assert_eq!(p.accepted_by(GUEST), vec![h]);
    assert_eq!(p.lent_to(GUEST), vec![h]);
    assert_eq!(p.owned_by(HOST), vec![h]);
    assert_eq!(p.check_release(h, GUEST).ok(), Some(&[0x5000u64][..]));
    p.set_released(h, GUEST).unwrap();
    assert!(p.check_reclaim(h, HOST).is_ok());
    assert!(p.remove(h).is_some());
    assert_eq!(p.get(h).err(), Some(RmError::HandleInvalid));

    // APPEND: not acceptable until the last range came.
    let h2 = p
        .create(
            HOST,
            lend,
            MemType::Normal,
            0,
            false,
            false,
            &[(GUEST, rwx)],
            &[],
        )
        .unwrap();
    assert_ne!(h2, h);
    p.add_ranges(h2, &[r]).unwrap();
    assert_eq!(
        p.check_accept(h2, GUEST, lend, normal, None).err(),
        Some(RmError::MemInvalid)
    );
    assert_eq!(p.check_append(h2, GUEST).err(), Some(RmError::Denied));
    assert!(p.check_append(h2, HOST).is_ok());
    p.complete(h2).unwrap();
    assert_eq!(
        p.check_append(h2, HOST).err(),
        Some(RmError::ArgumentInvalid)
    );
    assert!(p.check_accept(h2, GUEST, lend, normal, None).is_ok());
}

#[test]
fn lend_accept_release_reclaim_between_vms() {
    let mut g = gunyah();
    let acl = [AclEntry {
        vmid: OTHER,
        rights: MEM_RIGHTS_RW,
    }];
    let sgl = [SglEntry {
        ipa: RAM + 0x20_0000,
        size: 0x10_0000,
    }];
    // Memory the owner does not have.
    let bad = [SglEntry {
        ipa: 0x1000,
        size: 0x1000,
    }];
    assert_eq!(
        g.mem_create(HOST, TransType::Lend, &create_req(&acl, &bad, 0)),
        Err(RmError::MemInvalid)
    );
    assert!(g.calls().log.is_empty(), "checked before any call");

    g.calls_mut().log.clear();
    let h = g
        .mem_create(HOST, TransType::Lend, &create_req(&acl, &sgl, 0))
        .unwrap();
    assert_eq!(
        g.calls().log,
        [
            "create(Memextent, 0x1, 0x2)",
            "memextent_derive(0x101, 0x10, 0x200000, 0x100000, 775)",
            "activate(0x101)",
            "addrspace_unmap(0x13, 0x101, 0x40200000, 0x100000)",
        ]
    );
    // The same pages again: in use.
    assert_eq!(
        g.mem_create(HOST, TransType::Share, &create_req(&acl, &sgl, 0)),
        Err(RmError::MemInUse)
    );
    // Accepted by the borrower at a base of its choosing.
    g.calls_mut().log.clear();
    let at = [SglEntry {
        ipa: 0x9000_0000,
        size: 0x10_0000,
    }];
    assert_eq!(
        g.mem_accept(HOST, &accept_req(h, TransType::Lend, &[])),
        Err(RmError::Denied)
    );
    let reply = g
        .mem_accept(OTHER, &accept_req(h, TransType::Lend, &at))
        .unwrap();
    let r = MemAcceptReply::decode(&reply).unwrap();
    assert_eq!(r.sgl.iter().collect::<Vec<_>>(), at);
    assert_eq!(
        g.calls().log,
        ["addrspace_map(0x23, 0x101, 0x90000000, 0xf0066, 0x100000)"]
    );
    let release = MemReleaseRequest {
        handle: h,
        flags: 0,
    };
    assert_eq!(g.mem_release(HOST, &release, true), Err(RmError::MemInUse));
    g.calls_mut().log.clear();
    g.mem_release(OTHER, &release, false).unwrap();
    assert_eq!(
        g.calls().log,
        ["addrspace_unmap(0x23, 0x101, 0x90000000, 0x100000)"]
    );
    assert_eq!(
        g.mem_release(OTHER, &release, false),
        Err(RmError::MemReleased)
    );
    g.calls_mut().log.clear();
    let sanitize = MemReleaseRequest {
        handle: h,
        flags: 1,
    };
    g.mem_release(HOST, &sanitize, true).unwrap();
    assert_eq!(
        g.calls().log,
        [
            "memextent_modify(0x101, Zero, 0x100000)",
            "cspace_delete(0x2, 0x101)",
        ]
    );
    assert_eq!(
        g.mem_release(HOST, &release, true),
        Err(RmError::HandleInvalid)
    );
}

#[test]
fn share_keeps_the_owner_mapping_and_notifies() {
    let mut g = gunyah();
    let acl = [
        AclEntry {
            vmid: HOST,
            rights: MEM_RIGHTS_RWX,
        },
        AclEntry {
            vmid: OTHER,
            rights: MEM_RIGHTS_R,
        },
    ];
    let sgl = [SglEntry {
        ipa: RAM,
        size: 0x1000,
    }];
    let h = g
        .mem_create(HOST, TransType::Share, &create_req(&acl, &sgl, 0))
        .unwrap();
    assert_eq!(g.calls().count("addrspace_unmap"), 0);
    let vmids = [VmidEntry { vmid: OTHER }];
    let req = MemNotifyRequest {
        handle: h,
        flags: MEM_NOTIFY_FLAG_SHARED,
        mem_info_tag: 5,
        vmids: List::from_slice(&vmids),
    };
    assert_eq!(g.mem_notify(OTHER, &req), Err(RmError::Denied));
    let notes = g.mem_notify(HOST, &req).unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].target, OTHER);
    assert_eq!(notes[0].id, ids::NOTIFY_MEM_SHARED);
    // Read-only for the borrower: access 4 user and kernel.
    g.mem_accept(OTHER, &accept_req(h, TransType::Share, &[]))
        .unwrap();
    assert_eq!(
        g.calls().log.last().map(String::as_str),
        Some("addrspace_map(0x23, 0x101, 0x40000000, 0xf0044, 0x1000)")
    );
    let accepted = MemNotifyRequest {
        handle: h,
        flags: 4,
        mem_info_tag: 5,
        vmids: List::empty(),
    };
    let notes = g.mem_notify(OTHER, &accepted).unwrap();
    assert_eq!(
        (notes[0].target, notes[0].id),
        (HOST, ids::NOTIFY_MEM_ACCEPTED)
    );
}

#[test]
fn donation_moves_the_memory_to_the_recipient() {
    let mut g = gunyah();
    let acl = [AclEntry {
        vmid: OTHER,
        rights: MEM_RIGHTS_RWX,
    }];
    let sgl = [SglEntry {
        ipa: RAM + 0x4000,
        size: 0x2000,
    }];
    let h = g
        .mem_create(HOST, TransType::Donate, &create_req(&acl, &sgl, 0))
        .unwrap();
    g.mem_accept(OTHER, &accept_req(h, TransType::Donate, &[]))
        .unwrap();
    assert!(g.parcels().get(h).is_err(), "the parcel is gone");
    // The recipient may lend it on: its new region is an extent the RM derives from.
    g.calls_mut().log.clear();
    let acl2 = [AclEntry {
        vmid: HOST,
        rights: MEM_RIGHTS_RW,
    }];
    g.mem_create(OTHER, TransType::Lend, &create_req(&acl2, &sgl, 0))
        .unwrap();
    assert_eq!(
        g.calls().log[1],
        "memextent_derive(0x102, 0x101, 0x0, 0x2000, 775)"
    );
}

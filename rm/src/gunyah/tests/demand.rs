//! Demand paging: VM_SET_DEMAND_PAGING's checks, VM_INIT of a demand-paged VM and its
//! reset, and failures of the demand-paging step.

use super::*;

fn sgl(ranges: &[(u64, u64)]) -> Vec<SglEntry> {
    ranges
        .iter()
        .map(|&(ipa, size)| SglEntry { ipa, size })
        .collect()
}

#[test]
fn demand_paging_ranges_are_checked() {
    let mut g = gunyah();
    let page = 0x1000;
    for (ranges, e) in [
        // Unaligned, empty, wrapping.
        (vec![(DEMAND_IPA + 1, page)], RmError::ArgumentInvalid),
        (vec![(DEMAND_IPA, 0x800)], RmError::ArgumentInvalid),
        (vec![(DEMAND_IPA, 0)], RmError::ArgumentInvalid),
        (vec![(!0xfff, 2 * page)], RmError::ArgumentInvalid),
        // Overlapping.
        (
            vec![(DEMAND_IPA + page, page), (DEMAND_IPA, 2 * page)],
            RmError::ArgumentInvalid,
        ),
        // Too many.
        (
            (0..5).map(|i| (DEMAND_IPA + i * page, page)).collect(),
            RmError::ArgumentInvalid,
        ),
        // Not the owner's RAM: beyond its end, another VM's.
        (
            vec![(RAM + 0x1000_0000 - page, 2 * page)],
            RmError::MemInvalid,
        ),
        (vec![(0x8000_0000, page)], RmError::MemInvalid),
    ] {
        assert_eq!(
            g.vm_set_demand_paging(HOST, GUEST, &sgl(&ranges)),
            Err(e),
            "{ranges:x?}"
        );
    }
    let four: Vec<_> = (0..4).map(|i| (DEMAND_IPA + 2 * i * page, page)).collect();
    assert_eq!(g.vm_set_demand_paging(HOST, GUEST, &sgl(&four)), Ok(()));
    // The other VM's RAM is its own to page.
    assert_eq!(
        g.vm_set_demand_paging(OTHER, GUEST, &sgl(&[(0x8000_0000, page)])),
        Ok(())
    );
    // An empty list is no demand paging.
    assert_eq!(g.vm_set_demand_paging(HOST, GUEST, &[]), Ok(()));
    assert!(g.calls().log.is_empty());
}

/// VM_INIT of a demand-paged VM: the owner gets the address space (type 10) and, per range,
/// the guest-private and host-private extents (type 9); the VM's RAM in its device tree
/// covers the parcel and the range; VM_RESET deletes it all.
#[test]
fn demand_paged_vm_creation_and_reset() {
    let mut g = gunyah();
    let _ = lend_image(&mut g);
    g.vm_set_demand_paging(HOST, GUEST, &sgl(&[(DEMAND_IPA, DEMAND_SIZE)]))
        .unwrap();
    g.calls_mut().log.clear();
    let resources = g.vm_create(GUEST, HOST).unwrap();
    let log = &g.calls().log;
    let from = log
        .iter()
        .position(|l| l == "cspace_copy(0x2, 0x107, 0x11, 0x72)")
        .unwrap();
    assert_eq!(
        log[from + 1..from + 12],
        [
            // The owner's cap to the VM's address space: MAP, LOOKUP.
            "cspace_copy(0x2, 0x104, 0x11, 0x6)",
            // guest: the owner's pages at the range.
            "create(Memextent, 0x1, 0x2)",
            "memextent_derive(0x115, 0x10, 0x5000000, 0x4000000, 775)",
            "activate(0x115)",
            // host: all of guest's pages, mapped in the owner.
            "create(Memextent, 0x1, 0x2)",
            "memextent_derive(0x116, 0x115, 0x0, 0x4000000, 775)",
            "activate(0x116)",
            // guest leaves the owner and goes into the VM, empty.
            "addrspace_unmap(0x13, 0x115, 0x45000000, 0x4000000)",
            "addrspace_map(0x104, 0x115, 0x45000000, 0xf0077, 0x4000000)",
            // The owner's caps to both: DONATE.
            "cspace_copy(0x2, 0x115, 0x11, 0x10)",
            "cspace_copy(0x2, 0x116, 0x11, 0x10)",
        ]
    );
    assert_eq!(log[from + 12], "memextent_modify(0x102, Clean, 0x11000)");

    let entries: Vec<_> = resources
        .iter()
        .filter(|r| r.holder == HOST)
        .map(|r| r.entry)
        .filter(|e| e.resource_type as u8 >= 9)
        .map(|e| {
            (
                e.resource_type,
                e.label,
                e.cap_id,
                e.partner_vmid,
                e.base,
                e.size,
            )
        })
        .collect();
    use ResourceType::{AddrSpace, MemExtent};
    assert_eq!(
        entries,
        [
            (AddrSpace, 0, 0x114, GUEST, 0, 0),
            (MemExtent, 0, 0x117, GUEST, DEMAND_IPA, DEMAND_SIZE),
            (MemExtent, 2, 0x118, GUEST, DEMAND_IPA, DEMAND_SIZE),
        ]
    );
    assert!(
        resources
            .iter()
            .filter(|r| r.holder == GUEST)
            .all(|r| (r.entry.resource_type as u8) < 9)
    );
    // The VM's RAM: the parcel and the range.
    let dt = Fdt::new(&g.calls().window[0x800..]).unwrap();
    let mem = dt.find_node("/memory@41000000").unwrap();
    assert_eq!(mem.prop_cells("reg", 1, 2), Some(IMAGE_SIZE + DEMAND_SIZE));

    // VM_RESET: the extent leaves the VM, the owner's copies go, then the extents (host
    // first: its pages go back to guest, then guest's to the owner's RAM extent).
    g.calls_mut().log.clear();
    g.vm_destroy(GUEST).unwrap();
    let log = &g.calls().log;
    let at = |call: &str| log.iter().position(|l| l == call).unwrap();
    let unmap = at("addrspace_unmap(0x104, 0x115, 0x45000000, 0x4000000)");
    let copies = [
        at("cspace_delete(0x11, 0x114)"),
        at("cspace_delete(0x11, 0x117)"),
        at("cspace_delete(0x11, 0x118)"),
    ];
    let host = at("cspace_delete(0x2, 0x116)");
    let guest = at("cspace_delete(0x2, 0x115)");
    let asp = at("cspace_delete(0x2, 0x104)");
    assert!(copies.iter().all(|&c| unmap < c && c < host), "{log:?}");
    assert!(host < guest && guest < asp, "{log:?}");
    // A second life gets the same.
    g.vm_deallocate(GUEST);
    let _ = lend_image(&mut g);
    g.vm_set_demand_paging(HOST, GUEST, &sgl(&[(DEMAND_IPA, DEMAND_SIZE)]))
        .unwrap();
    let again = g.vm_create(GUEST, HOST).unwrap();
    assert_eq!(again.len(), resources.len());
}

/// A demand-paged range may not overlap the image in the VM; a failure in the demand-paging
/// step undoes everything, the owner's mapping of the range included.
#[test]
fn demand_paging_failures_at_init() {
    let mut g = gunyah();
    let _ = lend_image(&mut g);
    // The image parcel's IPAs, mapped into the VM where VM_SET_ADDRESS_LAYOUT put them.
    g.vm_set_address_layout(
        GUEST,
        wurley_abi::rm::vm::AddressRangeId::Image,
        DEMAND_IPA,
        0,
    )
    .unwrap();
    g.vm_set_demand_paging(HOST, GUEST, &sgl(&[(DEMAND_IPA, DEMAND_SIZE)]))
        .unwrap();
    g.calls_mut().log.clear();
    assert_eq!(g.vm_create(GUEST, HOST), Err(RmError::ArgumentInvalid));
    let calls = g.calls();
    assert_eq!(calls.count("create("), calls.count("cspace_delete(0x2, "));

    for fail in [
        "activate(0x116)",
        "addrspace_map(0x104, 0x115",
        "cspace_copy(0x2, 0x116",
    ] {
        let mut g = gunyah();
        let _ = lend_image(&mut g);
        g.vm_set_demand_paging(HOST, GUEST, &sgl(&[(DEMAND_IPA, DEMAND_SIZE)]))
            .unwrap();
        g.calls_mut().log.clear();
        g.calls_mut().fail = Some((String::from(fail), Error::MemdbNotOwner));
        assert_eq!(g.vm_create(GUEST, HOST), Err(RmError::MemInvalid), "{fail}");
        let calls = g.calls();
        let failed = usize::from(fail.starts_with("cspace_copy("));
        let created = calls.count("create(") + calls.count("cspace_copy(") - failed;
        assert_eq!(calls.count("cspace_delete("), created, "{fail}");
        // Both extents deleted, host before guest.
        let log = &calls.log;
        let del = |c: &str| log.iter().position(|l| l == c);
        if fail != "activate(0x116)" {
            assert!(del("cspace_delete(0x2, 0x116)") < del("cspace_delete(0x2, 0x115)"));
        }
        assert!(
            del("cspace_delete(0x2, 0x115)").is_some(),
            "{fail}: {log:?}"
        );
        assert!(g.take_events().is_empty());
    }
}

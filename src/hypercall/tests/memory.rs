//! Memory extents and address spaces through the hypercall layer, on the shared fake machine
//! of `object::memextent::tests` (RAM at 0x8000_0000, owned by the root partition).

use super::*;
use crate::object::handle::PartitionObject;
use wurley_abi::rights::MemextentRights;

const RAM: u64 = 0x8000_0000;
/// Pages of the fake RAM this test uses (no other test takes them from the shared machine).
const MINE: u64 = RAM + 0x80_000;
const P: u64 = 0x1000;
const NORMAL_RWX: u64 = 0xf << 16 | 0x77;

/// A VM holding the root partition (memory-database owner of the fake RAM).
fn root_vm() -> (Vm, u64) {
    let vm = Vm::new(1 << 20);
    let root = PartitionObject::new(Header::new_active(), Partition::new_root(1 << 20), None);
    let cap = vm
        .cspace
        .insert_master(Object::Partition(root), PartitionRights::ALL.bits())
        .unwrap()
        .raw();
    (vm, cap)
}

fn create(vm: &mut Vm, call: HypCall, partition: u64) -> u64 {
    let r = vm.call(call, &[partition, vm.own_cspace, 0]);
    assert_eq!(r[0], 0, "{call:?}");
    r[1]
}

#[test]
fn extent_and_addrspace_calls() {
    let (mut vm, root) = root_vm();
    let me = create(&mut vm, HypCall::PartitionCreateMemextent, root);
    let space = create(&mut vm, HypCall::PartitionCreateAddrspace, root);
    // Configure errors, then a good configuration and activation.
    assert_eq!(
        vm.err(HypCall::MemextentConfigure, &[me, MINE + 1, P, 7]),
        Some(Error::ArgumentAlignment)
    );
    assert_eq!(
        vm.err(HypCall::MemextentConfigure, &[me, MINE, 0, 7]),
        Some(Error::ArgumentSize)
    );
    assert_eq!(
        vm.err(HypCall::MemextentConfigure, &[me, MINE, P, 1 << 16]),
        Some(Error::ArgumentInvalid)
    );
    // Native path: res0 checked.
    assert_eq!(
        vm.native(HypCall::MemextentConfigure, &[me, MINE, 4 * P, 7, 1])[0],
        code(Error::ArgumentInvalid)
    );
    assert_eq!(
        vm.native(HypCall::MemextentConfigure, &[me, MINE, 4 * P, 0x307, 0])[0],
        0
    );
    assert_eq!(vm.err(HypCall::ObjectActivate, &[me, 0]), None);
    // The address space: VMID first.
    assert_eq!(
        vm.err(HypCall::ObjectActivate, &[space, 0]),
        Some(Error::ObjectConfig)
    );
    assert_eq!(
        vm.err(HypCall::AddrspaceConfigure, &[space, 0]),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(vm.err(HypCall::AddrspaceConfigure, &[space, 0x42]), None);
    assert_eq!(vm.err(HypCall::ObjectActivate, &[space, 0]), None);
    // Map, flags checked.
    let map = |vm: &mut Vm, vbase: u64, attrs: u64, flags: u64| {
        vm.err(
            HypCall::AddrspaceMap,
            &[space, me, vbase, attrs, flags, 0, 0],
        )
    };
    assert_eq!(
        map(&mut vm, 0x4000_0000, NORMAL_RWX, 1),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(
        map(&mut vm, 0x4000_0000, NORMAL_RWX, 2),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(
        map(&mut vm, 0x4000_0000, 1 << 24, 0),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(
        map(&mut vm, 0x4000_0010, NORMAL_RWX, 0),
        Some(Error::ArgumentAlignment)
    );
    assert_eq!(map(&mut vm, 0x4000_0000, NORMAL_RWX, 1 << 31), None);
    // Lookup.
    let r = vm.call(HypCall::AddrspaceLookup, &[space, me, 0x4000_1000, P, 0]);
    assert_eq!(r, [0, P, P, NORMAL_RWX]);
    let r = vm.call(HypCall::AddrspaceLookup, &[space, me, 0x5000_0000, P, 0]);
    assert_eq!(r[0], code(Error::AddrInvalid));
    // Access updates.
    assert_eq!(
        vm.err(
            HypCall::AddrspaceUpdateAccess,
            &[space, me, 0x4000_0000, 0x44, 0, 0, 0]
        ),
        None
    );
    let r = vm.call(HypCall::AddrspaceLookup, &[space, me, 0x4000_0000, P, 0]);
    assert_eq!(r[3], 0xf << 16 | 0x44);
    // Derive a child over page 1, donate it back and forth, then unmap.
    let child = create(&mut vm, HypCall::PartitionCreateMemextent, root);
    assert_eq!(
        vm.err(
            HypCall::MemextentConfigureDerive,
            &[child, me, P, P, 0x304, 0]
        ),
        None
    );
    assert_eq!(vm.err(HypCall::ObjectActivate, &[child, 0]), None);
    assert_eq!(
        vm.err(HypCall::MemextentDonate, &[1, child, me, 0, P, 0]),
        None
    );
    assert_eq!(
        vm.err(HypCall::MemextentDonate, &[1, child, me, 0, P, 0]),
        Some(Error::MemdbNotOwner)
    );
    assert_eq!(
        vm.err(HypCall::MemextentDonate, &[0, me, child, 0, P, 0]),
        None
    );
    assert_eq!(vm.err(HypCall::MemextentModify, &[me, 1, 0, P]), None);
    assert_eq!(
        vm.err(HypCall::MemextentModify, &[me, 1, P, P]),
        Some(Error::MemdbNotOwner)
    );
    assert_eq!(
        vm.err(HypCall::AddrspaceUnmap, &[space, me, 0x4000_1000, 0, 0, 0]),
        Some(Error::AddrInvalid)
    );
    assert_eq!(
        vm.err(HypCall::AddrspaceUnmap, &[space, me, 0x4000_0000, 0, 0, 0]),
        None
    );
    assert_eq!(vm.err(HypCall::MemextentModify, &[me, 0, 0, 0]), None);
    // Rights: a copy without MAP cannot map; wrong cap types are refused.
    let weak = vm.call(
        HypCall::CspaceCopyCapFrom,
        &[
            vm.own_cspace,
            me,
            vm.own_cspace,
            u64::from(MemextentRights::LOOKUP.bits()),
            0,
        ],
    )[1];
    // The child still has the mapping it inherited at 0x4000_1000.
    assert_eq!(
        map(&mut vm, 0x4000_0000, NORMAL_RWX, 0),
        Some(Error::AddrInvalid)
    );
    assert_eq!(map(&mut vm, 0x6000_0000, NORMAL_RWX, 0), None);
    assert_eq!(
        vm.err(
            HypCall::AddrspaceMap,
            &[space, weak, 0x5000_0000, NORMAL_RWX, 0, 0, 0]
        ),
        Some(Error::CspaceInsufficientRights)
    );
    assert_eq!(
        vm.err(HypCall::AddrspaceMap, &[me, space, 0, NORMAL_RWX, 0, 0, 0]),
        Some(Error::CspaceWrongObjectType)
    );
    // Deleting the caps gives the memory back to the root partition.
    assert_eq!(
        vm.err(HypCall::CspaceDeleteCapFrom, &[vm.own_cspace, child, 0]),
        None
    );
    assert_eq!(
        vm.err(HypCall::CspaceDeleteCapFrom, &[vm.own_cspace, weak, 0]),
        None
    );
    assert_eq!(
        vm.err(HypCall::CspaceDeleteCapFrom, &[vm.own_cspace, me, 0]),
        None
    );
    let db = crate::object::memextent::ctx().unwrap().db();
    assert!(
        db.lock()
            .is_owned_by(MINE, 4 * P, crate::mm::memdb::Owner::Partition(0))
    );
}

#[test]
fn a_child_partition_owns_no_memory() {
    let mut vm = Vm::new(1 << 20);
    let p = vm.partition;
    let me = create(&mut vm, HypCall::PartitionCreateMemextent, p);
    assert_eq!(vm.err(HypCall::MemextentConfigure, &[me, RAM, P, 7]), None);
    assert_eq!(
        vm.err(HypCall::ObjectActivate, &[me, 0]),
        Some(Error::MemdbNotOwner)
    );
}

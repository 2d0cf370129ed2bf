//! Memory calls (Gunyah §2.8, §2.9): `partition_create_memextent`,
//! `partition_create_addrspace`, `memextent_configure`, `memextent_configure_derive`,
//! `memextent_modify`, `memextent_donate`, `addrspace_configure`, `addrspace_map`,
//! `addrspace_unmap`, `addrspace_update_access` and `addrspace_lookup`.
//!
//! Arguments are the call's inputs in `.hvc` order (`a[0]` is the first). The checks and the
//! state changes are in `object::memextent` and `object::addrspace`; here the caps are looked up
//! with the rights each call needs and the flag words are checked.

use alloc::sync::Arc;
use wurley_abi::rights::{
    AddrspaceRights, CspaceRights, MemextentRights, OBJECT_ACTIVATE, PartitionRights,
};
use wurley_abi::{CapId, Error};

use super::context::Caller;
use super::dispatch::Reply;
use crate::object::Object;
use crate::object::addrspace::AddrSpaceObject;
use crate::object::memextent::{self, MapAttrs, MemExtent};

/// `addrspace_map_flags`: bit 0 PARTIAL (sparse extents only: `ArgumentInvalid` here), bit 31
/// NO_SYNC (accepted: every change is complete when the call returns); the rest must be 0.
fn check_map_flags(flags: u64) -> Result<(), Error> {
    if flags & !(1 << 31) != 0 {
        return Err(Error::ArgumentInvalid);
    }
    Ok(())
}

fn new_cap(r: Result<CapId, Error>) -> Reply {
    match r {
        Ok(cap) => Reply::new(&[0, cap.raw()]),
        Err(e) => Reply::new(&[e.to_register(), CapId::INVALID.raw()]),
    }
}

/// `partition_create_memextent`: X0 partition (OBJECT_CREATE), X1 cspace (CAP_CREATE) → X1
/// master cap to a memory extent in INIT.
pub fn create_memextent(c: &Caller, a: &[u64]) -> Reply {
    new_cap((|| {
        let p = c.partition(a[0], PartitionRights::OBJECT_CREATE.bits())?;
        let dest = c.cspace_obj(a[1], CspaceRights::CAP_CREATE.bits(), false)?;
        let me = MemExtent::create(memextent::ctx()?, &p.partition)?;
        dest.space
            .insert_master(Object::MemExtent(me), MemextentRights::ALL.bits())
    })())
}

/// `partition_create_addrspace`: X0 partition (OBJECT_CREATE), X1 cspace (CAP_CREATE) → X1
/// master cap to an address space in INIT.
pub fn create_addrspace(c: &Caller, a: &[u64]) -> Reply {
    new_cap((|| {
        let p = c.partition(a[0], PartitionRights::OBJECT_CREATE.bits())?;
        let dest = c.cspace_obj(a[1], CspaceRights::CAP_CREATE.bits(), false)?;
        let space = AddrSpaceObject::create(memextent::ctx()?, &p.partition)?;
        dest.space
            .insert_master(Object::AddrSpace(space), AddrspaceRights::ALL.bits())
    })())
}

/// `memextent_configure`: X0 extent (OBJECT_ACTIVATE), X1 phys_base, X2 size, X3 attrs.
pub fn memextent_configure(c: &Caller, a: &[u64]) -> Reply {
    Reply::result(
        c.memextent(a[0], OBJECT_ACTIVATE)
            .and_then(|me| me.configure(a[1], a[2], a[3])),
    )
}

/// `memextent_configure_derive`: X0 extent (OBJECT_ACTIVATE), X1 parent (DERIVE), X2 offset,
/// X3 size, X4 attrs.
pub fn memextent_configure_derive(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let me = c.memextent(a[0], OBJECT_ACTIVATE)?;
        let parent = c.memextent(a[1], MemextentRights::DERIVE.bits())?;
        me.configure_derive(&parent, a[2], a[3], a[4])
    })())
}

/// `memextent_modify`: X0 extent (any rights), X1 flags, X2 offset, X3 size.
pub fn memextent_modify(c: &Caller, a: &[u64]) -> Reply {
    Reply::result(
        c.memextent(a[0], 0)
            .and_then(|me| memextent::modify(&me, a[1], a[2], a[3])),
    )
}

/// `memextent_donate`: X0 options, X1 from (DONATE), X2 to (DONATE), X3 offset, X4 size.
pub fn memextent_donate(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let from = c.memextent(a[1], MemextentRights::DONATE.bits())?;
        let to = c.memextent(a[2], MemextentRights::DONATE.bits())?;
        memextent::donate(a[0], &from, &to, a[3], a[4])
    })())
}

/// `addrspace_configure`: X0 address space (OBJECT_ACTIVATE), X1 VMID.
pub fn addrspace_configure(c: &Caller, a: &[u64]) -> Reply {
    Reply::result(
        c.addrspace(a[0], OBJECT_ACTIVATE)
            .and_then(|s| s.configure(a[1])),
    )
}

fn space_and_extent(
    c: &Caller,
    a: &[u64],
    space_rights: AddrspaceRights,
    extent_rights: u32,
) -> Result<(Arc<AddrSpaceObject>, Arc<MemExtent>), Error> {
    let space = c.addrspace(a[0], space_rights.bits())?;
    let me = c.memextent(a[1], extent_rights)?;
    Ok((space, me))
}

/// `addrspace_map`: X0 address space (MAP), X1 extent (MAP), X2 vbase, X3 map_attrs, X4
/// map_flags, X5 offset, X6 size (offset and size only matter with PARTIAL, which is refused).
pub fn addrspace_map(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let (space, me) =
            space_and_extent(c, a, AddrspaceRights::MAP, MemextentRights::MAP.bits())?;
        check_map_flags(a[4])?;
        let attrs = MapAttrs::decode(a[3])?;
        space.map(&me, a[2], attrs)
    })())
}

/// `addrspace_unmap`: X0 address space (MAP), X1 extent (MAP), X2 vbase, X3 map_flags, X4
/// offset, X5 size.
pub fn addrspace_unmap(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let (space, me) =
            space_and_extent(c, a, AddrspaceRights::MAP, MemextentRights::MAP.bits())?;
        check_map_flags(a[3])?;
        space.unmap(&me, a[2])
    })())
}

/// `addrspace_update_access`: X0 address space (MAP), X1 extent (MAP), X2 vbase, X3
/// access_attrs, X4 map_flags, X5 offset, X6 size.
pub fn addrspace_update_access(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let (space, me) =
            space_and_extent(c, a, AddrspaceRights::MAP, MemextentRights::MAP.bits())?;
        check_map_flags(a[4])?;
        let (user, kernel) = memextent::decode_access_attrs(a[3])?;
        space.update_access(&me, a[2], user, kernel)
    })())
}

/// `addrspace_lookup`: X0 address space (LOOKUP), X1 extent (any rights), X2 vbase, X3 size →
/// X1 offset in the extent, X2 size mapped, X3 map_attrs.
pub fn addrspace_lookup(c: &Caller, a: &[u64]) -> Reply {
    let r = (|| {
        let (space, me) = space_and_extent(c, a, AddrspaceRights::LOOKUP, 0)?;
        space.lookup(&me, a[2], a[3])
    })();
    match r {
        Ok((offset, size, attrs)) => Reply::new(&[0, offset, size, attrs.encode()]),
        Err(e) => Reply::new(&[e.to_register(), 0, 0, 0]),
    }
}

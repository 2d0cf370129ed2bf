//! Object creation and management calls: `partition_create_*`, `object_activate(_from)`,
//! `object_reset(_from)` and the `cspace_*` calls.
//!
//! Arguments are the call's inputs in `.hvc` order (`a[0]` is the first); each handler returns
//! its result registers. Every failure is a Gunyah error code, logged at debug level by the
//! dispatcher.

use alloc::sync::Arc;
use wurley_abi::rights::{
    CspaceRights, DoorbellRights, MsgqueueRights, OBJECT_ACTIVATE, PartitionRights, ThreadRights,
    VicRights, VpmGroupRights,
};
use wurley_abi::{CapId, Error};

use super::context::Caller;
use super::dispatch::Reply;
use crate::object::cspace::CSpace;
use crate::object::handle::{CSpaceObject, Header, PartitionObject};
use crate::object::ipc::{DoorbellObject, MsgQueueObject};
use crate::object::partition::Partition;
use crate::object::vcpu::VcpuObject;
use crate::object::vic::Vic;
use crate::object::vpm::VpmGroup;
use crate::object::{Object, ObjectType, entropy};

/// What a vCPU costs besides its object once its VM exists: its saved register context and
/// scheduling slot, charged at creation so a partition cannot make vCPUs it could not run.
const THREAD_STATE_BYTES: usize = 2048;

/// Capacity a new guest-created cspace has until `cspace_configure`.
const INITIAL_CSPACE_CAPACITY: usize = 1;

/// The object types `partition_create_*` can make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `partition_create_partition`.
    Partition,
    /// `partition_create_cspace`.
    CSpace,
    /// `partition_create_doorbell`.
    Doorbell,
    /// `partition_create_msgqueue`.
    MsgQueue,
    /// `partition_create_thread`.
    Thread,
    /// `partition_create_vic`.
    Vic,
    /// `partition_create_vpm_group`.
    VpmGroup,
}

/// `partition_create_*`: X0 partition, X1 cspace → X0 error, X1 new master cap.
pub fn create(c: &Caller, kind: Kind, a: &[u64]) -> Reply {
    match try_create(c, kind, a) {
        Ok(cap) => Reply::new(&[0, cap.raw()]),
        Err(e) => Reply::new(&[e.to_register(), CapId::INVALID.raw()]),
    }
}

fn try_create(c: &Caller, kind: Kind, a: &[u64]) -> Result<CapId, Error> {
    let parent = c.partition(a[0], PartitionRights::OBJECT_CREATE.bits())?;
    let dest = c.cspace_obj(a[1], CspaceRights::CAP_CREATE.bits(), false)?;
    let p = &parent.partition;
    let (object, rights) = match kind {
        Kind::Partition => {
            let charge = p.charge(core::mem::size_of::<PartitionObject>())?;
            let child = Partition::new_child(p, usize::MAX);
            (
                Object::Partition(PartitionObject::new(
                    Header::new_init(),
                    child,
                    Some(charge),
                )),
                PartitionRights::ALL.bits(),
            )
        }
        Kind::CSpace => {
            let charge = p.charge(core::mem::size_of::<CSpaceObject>())?;
            let space = CSpace::new(INITIAL_CSPACE_CAPACITY, entropy::seed())?;
            crate::object::registry().register(&space);
            (
                Object::CSpace(CSpaceObject::new(
                    Header::new_init(),
                    space,
                    Some(p.clone()),
                    Some(charge),
                )),
                CspaceRights::ALL.bits(),
            )
        }
        Kind::Doorbell => (
            Object::Doorbell(DoorbellObject::create(p)?),
            DoorbellRights::ALL.bits(),
        ),
        Kind::MsgQueue => (
            Object::MsgQueue(MsgQueueObject::create(p)?),
            MsgqueueRights::ALL.bits(),
        ),
        Kind::Thread => (
            Object::Vcpu(VcpuObject::new_init(
                p.charge(core::mem::size_of::<VcpuObject>() + THREAD_STATE_BYTES)?,
            )),
            ThreadRights::ALL.bits(),
        ),
        Kind::VpmGroup => (
            Object::VpmGroup(VpmGroup::new(p.charge(core::mem::size_of::<VpmGroup>())?)),
            VpmGroupRights::ALL.bits(),
        ),
        Kind::Vic => (
            Object::Vic(Vic::new_init(p.charge(core::mem::size_of::<Vic>())?)),
            VicRights::ALL.bits(),
        ),
    };
    dest.space.insert_master(object, rights)
}

/// `object_activate`: X0 cap.
pub fn activate(c: &Caller, a: &[u64]) -> Reply {
    Reply::result(
        c.lookup_any(a[0], OBJECT_ACTIVATE)
            .and_then(|o| o.activate()),
    )
}

/// `object_activate_from`: X0 cspace, X1 cap in that cspace.
pub fn activate_from(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let cs = c.cspace_obj(a[0], 0, false)?;
        let (obj, _) = cs.space.lookup_any(CapId(a[1]), OBJECT_ACTIVATE)?;
        obj.activate()
    })())
}

/// `cspace_delete_cap_from`: X0 cspace (CAP_DELETE), X1 cap.
pub fn delete(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let cs = c.cspace_obj(a[0], CspaceRights::CAP_DELETE.bits(), false)?;
        cs.space.delete(CapId(a[1]))
    })())
}

/// `cspace_copy_cap_from`: X0 source cspace (CAP_COPY), X1 cap, X2 destination cspace
/// (CAP_CREATE), X3 rights mask → X1 new cap.
pub fn copy(c: &Caller, a: &[u64]) -> Reply {
    let r = (|| {
        let src = c.cspace_obj(a[0], CspaceRights::CAP_COPY.bits(), false)?;
        let dest = c.cspace_obj(a[2], CspaceRights::CAP_CREATE.bits(), false)?;
        // cap_rights_t is 32 bits: the upper half of the register is not part of the mask.
        let mask = a[3] as u32;
        crate::object::registry().copy(&src.space, CapId(a[1]), &dest.space, mask)
    })();
    match r {
        Ok(cap) => Reply::new(&[0, cap.raw()]),
        Err(e) => Reply::new(&[e.to_register(), CapId::INVALID.raw()]),
    }
}

/// `cspace_revoke_caps_from`: X0 cspace (CAP_REVOKE), X1 master cap: every cap copied from it,
/// in any cspace, becomes revoked.
pub fn revoke_caps(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let cs = c.cspace_obj(a[0], CspaceRights::CAP_REVOKE.bits(), false)?;
        crate::object::registry()
            .revoke_derived(&cs.space, CapId(a[1]))
            .map(|_| ())
    })())
}

/// `WURLEY_PARTITION_CONFIGURE`: X1 partition (OBJECT_ACTIVATE, INIT), X2 quota in bytes (the
/// arguments as `a[0]`, `a[1]`).
pub fn configure_partition(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let p = match c.lookup(a[0], ObjectType::Partition, OBJECT_ACTIVATE)? {
            Object::Partition(p) => p,
            _ => return Err(Error::CspaceWrongObjectType),
        };
        p.configure(a[1])
    })())
}

/// `cspace_configure`: X0 cspace (OBJECT_ACTIVATE, INIT), X1 max caps.
pub fn configure_cspace(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let cs = c.cspace_obj(a[0], OBJECT_ACTIVATE, true)?;
        cs.configure(a[1])
    })())
}

/// The partition of a VM: a child of the root partition limited to `quota` bytes of objects.
pub fn vm_partition(root: &Arc<Partition>, quota: usize) -> Arc<PartitionObject> {
    PartitionObject::new(
        Header::new_active(),
        Partition::new_child(root, quota),
        None,
    )
}

//! The hypercall layer end to end on the host: calls go through `smccc`/`native` exactly as
//! `vm::exit` makes them, against real objects, a recording VIC and a fake guest memory.

#![allow(clippy::unwrap_used)]

mod memory;
mod thread;
mod vcpu;

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use wurley_abi::hypcall::{native_hvc_imm, smccc_function_id};
use wurley_abi::rights::{CspaceRights, MsgqueueRights, PartitionRights, VicRights};
use wurley_abi::{CapId, Error, HypCall};

use super::context::{Caller, GuestAccess};
use super::{native, smccc};
use crate::object::cspace::CSpace;
use crate::object::handle::{CSpaceObject, Header};
use crate::object::partition::Partition;
use crate::object::vic::Vic;
use crate::object::vic::tests::Recorder;
use crate::object::{Object, entropy, registry};

/// Guest memory: `bytes` at VA `BASE`; anything else faults.
struct FakeMem {
    bytes: Vec<u8>,
}

const BASE: u64 = 0x10_0000;

impl FakeMem {
    fn range(&self, va: u64, len: usize) -> Result<core::ops::Range<usize>, Error> {
        let end = va.checked_add(len as u64).ok_or(Error::AddrOverflow)?;
        if va < BASE || end > BASE + self.bytes.len() as u64 {
            return Err(Error::AddrInvalid);
        }
        Ok((va - BASE) as usize..(end - BASE) as usize)
    }
}

impl GuestAccess for FakeMem {
    fn read(&mut self, va: u64, buf: &mut [u8]) -> Result<(), Error> {
        let r = self.range(va, buf.len())?;
        buf.copy_from_slice(&self.bytes[r]);
        Ok(())
    }
    fn write(&mut self, va: u64, data: &[u8]) -> Result<(), Error> {
        let r = self.range(va, data.len())?;
        self.bytes[r].copy_from_slice(data);
        Ok(())
    }
}

/// One VM's view: its cspace with caps to its partition, cspace and VIC.
struct Vm {
    cspace: Arc<CSpace<Object>>,
    mem: FakeMem,
    rec: Arc<Recorder>,
    partition: u64,
    own_cspace: u64,
    vic: u64,
}

impl Vm {
    fn new(quota: usize) -> Vm {
        let root = Partition::new_root(usize::MAX / 2);
        let part = super::objects::vm_partition(&root, quota);
        let cspace = CSpace::new(64, entropy::seed()).unwrap();
        registry().register(&cspace);
        let cs_obj = CSpaceObject::new(Header::new_active(), cspace.clone(), None, None);
        let rec = Arc::new(Recorder::default());
        let vic = Vic::new(rec.clone());
        let partition = cspace
            .insert_master(
                Object::Partition(part),
                PartitionRights::OBJECT_CREATE.bits(),
            )
            .unwrap()
            .raw();
        let own_cspace = cspace
            .insert_master(Object::CSpace(cs_obj), CspaceRights::ALL.bits())
            .unwrap()
            .raw();
        let vic = cspace
            .insert_master(Object::Vic(vic), VicRights::BIND_SOURCE.bits())
            .unwrap()
            .raw();
        Vm {
            cspace,
            mem: FakeMem {
                bytes: vec![0; 8192],
            },
            rec,
            partition,
            own_cspace,
            vic,
        }
    }

    /// SMCCC call `call` with inputs `args`; the result registers.
    fn call(&mut self, call: HypCall, args: &[u64]) -> Vec<u64> {
        let mut x = vec![u64::from(smccc_function_id(call.number()))];
        x.extend_from_slice(args);
        x.resize(8, 0);
        let mut c = Caller {
            cspace: Some(&self.cspace),
            mem: &mut self.mem,
            yield_cpu: false,
            proxy: None,
        };
        smccc(&x, &mut c).unwrap().values().to_vec()
    }

    /// Native call with `X0..X7` = `args`.
    fn native(&mut self, call: HypCall, args: &[u64]) -> Vec<u64> {
        let mut x = args.to_vec();
        x.resize(8, 0);
        let mut c = Caller {
            cspace: Some(&self.cspace),
            mem: &mut self.mem,
            yield_cpu: false,
            proxy: None,
        };
        native(native_hvc_imm(call.number()), &x, &mut c)
            .unwrap()
            .values()
            .to_vec()
    }

    fn err(&mut self, call: HypCall, args: &[u64]) -> Option<Error> {
        let x0 = self.call(call, args)[0];
        (x0 != 0).then(|| Error::from_code(x0 as i64).unwrap())
    }

    /// An active queue of `depth` × `size`, its cap.
    fn queue(&mut self, depth: u64, size: u64) -> u64 {
        let r = self.call(
            HypCall::PartitionCreateMsgqueue,
            &[self.partition, self.own_cspace, 0],
        );
        assert_eq!(r[0], 0, "create");
        let q = r[1];
        assert_eq!(
            self.err(HypCall::MsgqueueConfigure, &[q, depth | size << 16, 0]),
            None
        );
        assert_eq!(self.err(HypCall::ObjectActivate, &[q, 0]), None);
        q
    }
}

fn code(e: Error) -> u64 {
    e.to_register()
}

#[test]
fn queue_round_trip_with_virq() {
    let mut vm = Vm::new(1 << 20);
    let q = vm.queue(4, 240);
    assert_eq!(
        vm.err(HypCall::MsgqueueBindReceiveVirq, &[q, vm.vic, 70, 0]),
        None
    );
    for (i, b) in vm.mem.bytes[..240].iter_mut().enumerate() {
        *b = i as u8;
    }
    let r = vm.call(HypCall::MsgqueueSend, &[q, 240, BASE, 0, 0]);
    assert_eq!(r, vec![0, 1]);
    assert!(
        vm.rec
            .events
            .lock()
            .iter()
            .any(|&(v, e)| v == 70 && e.starts_with("assert"))
    );
    let r = vm.call(HypCall::MsgqueueReceive, &[q, BASE + 4096, 1023, 0]);
    assert_eq!(r, vec![0, 240, 0]);
    assert_eq!(vm.mem.bytes[4096..4096 + 240], vm.mem.bytes[..240]);
    let r = vm.call(HypCall::MsgqueueReceive, &[q, BASE + 4096, 1023, 0]);
    assert_eq!(r[0], code(Error::MsgqueueEmpty));
    assert_eq!(r[2], 0);
}

#[test]
fn queue_errors() {
    let mut vm = Vm::new(1 << 20);
    let q = vm.queue(2, 16);
    // Sizes and pointers.
    assert_eq!(
        vm.call(HypCall::MsgqueueSend, &[q, 0, BASE, 0, 0])[0],
        code(Error::ArgumentSize)
    );
    assert_eq!(
        vm.call(HypCall::MsgqueueSend, &[q, 17, BASE, 0, 0])[0],
        code(Error::ArgumentSize)
    );
    assert_eq!(
        vm.call(HypCall::MsgqueueSend, &[q, 8, 0x10, 0, 0])[0],
        code(Error::AddrInvalid)
    );
    assert_eq!(
        vm.call(HypCall::MsgqueueSend, &[q, 8, u64::MAX - 3, 0, 0])[0],
        code(Error::AddrOverflow)
    );
    // Full.
    assert_eq!(
        vm.call(HypCall::MsgqueueSend, &[q, 8, BASE, 0, 0]),
        vec![0, 1]
    );
    assert_eq!(
        vm.call(HypCall::MsgqueueSend, &[q, 8, BASE, 0, 0]),
        vec![0, 0]
    );
    assert_eq!(
        vm.call(HypCall::MsgqueueSend, &[q, 8, BASE, 0, 0]),
        vec![code(Error::MsgqueueFull), 0]
    );
    // A receive into a faulting buffer keeps the message.
    assert_eq!(
        vm.call(HypCall::MsgqueueReceive, &[q, 0x10, 16, 0])[0],
        code(Error::AddrInvalid)
    );
    assert_eq!(
        vm.call(HypCall::MsgqueueReceive, &[q, BASE, 16, 0]),
        vec![0, 8, 1]
    );
    // Configuration after activation.
    assert_eq!(
        vm.err(HypCall::MsgqueueConfigure, &[q, 2 | 16 << 16, 0]),
        Some(Error::ObjectState)
    );
    assert_eq!(
        vm.err(HypCall::ObjectActivate, &[q, 0]),
        Some(Error::ObjectState)
    );
    // Unconfigured queue.
    let r = vm.call(
        HypCall::PartitionCreateMsgqueue,
        &[vm.partition, vm.own_cspace, 0],
    );
    assert_eq!(
        vm.err(HypCall::ObjectActivate, &[r[1], 0]),
        Some(Error::ObjectConfig)
    );
    assert_eq!(
        vm.call(HypCall::MsgqueueSend, &[r[1], 8, BASE, 0, 0])[0],
        code(Error::ObjectState)
    );
    // Bad create info.
    for info in [0u64, 256 | 16 << 16, 1, 1 | 1024 << 16] {
        assert_eq!(
            vm.err(HypCall::MsgqueueConfigure, &[r[1], info, 0]),
            Some(Error::ArgumentInvalid),
            "{info:#x}"
        );
    }
}

#[test]
fn caps_wrong_type_rights_deleted_revoked() {
    let mut vm = Vm::new(1 << 20);
    let q = vm.queue(2, 16);
    let r = vm.call(
        HypCall::PartitionCreateDoorbell,
        &[vm.partition, vm.own_cspace, 0],
    );
    let db = r[1];
    assert_eq!(
        vm.call(HypCall::MsgqueueSend, &[db, 8, BASE, 0, 0])[0],
        code(Error::CspaceWrongObjectType)
    );
    for bad in [u64::MAX, 0, 1, 0x1234_5678_9abc_def0] {
        assert_eq!(
            vm.call(HypCall::MsgqueueSend, &[bad, 8, BASE, 0, 0])[0],
            code(Error::CspaceCapNull)
        );
    }
    // A copy without SEND.
    let mask = u64::from(MsgqueueRights::RECEIVE.bits());
    let r = vm.call(
        HypCall::CspaceCopyCapFrom,
        &[vm.own_cspace, q, vm.own_cspace, mask, 0],
    );
    assert_eq!(r[0], 0);
    let weak = r[1];
    assert_eq!(
        vm.call(HypCall::MsgqueueSend, &[weak, 8, BASE, 0, 0])[0],
        code(Error::CspaceInsufficientRights)
    );
    assert_eq!(
        vm.call(HypCall::MsgqueueReceive, &[weak, BASE, 16, 0])[0],
        code(Error::MsgqueueEmpty)
    );
    // Revoke every copy of the master: the copy is revoked, the master works.
    assert_eq!(
        vm.err(HypCall::CspaceRevokeCapsFrom, &[vm.own_cspace, q, 0]),
        None
    );
    assert_eq!(
        vm.call(HypCall::MsgqueueReceive, &[weak, BASE, 16, 0])[0],
        code(Error::CspaceCapRevoked)
    );
    assert_eq!(vm.call(HypCall::MsgqueueSend, &[q, 8, BASE, 0, 0])[0], 0);
    // Delete: the ID is dead.
    assert_eq!(
        vm.err(HypCall::CspaceDeleteCapFrom, &[vm.own_cspace, weak, 0]),
        None
    );
    assert_eq!(
        vm.call(HypCall::MsgqueueReceive, &[weak, BASE, 16, 0])[0],
        code(Error::CspaceCapNull)
    );
    assert_eq!(
        vm.err(HypCall::CspaceDeleteCapFrom, &[vm.own_cspace, q, 0]),
        None
    );
    assert_eq!(
        vm.call(HypCall::MsgqueueSend, &[q, 8, BASE, 0, 0])[0],
        code(Error::CspaceCapNull)
    );
    // The CapID of one VM means nothing in another.
    let mut other = Vm::new(1 << 20);
    assert_eq!(
        other.call(HypCall::MsgqueueSend, &[db, 8, BASE, 0, 0])[0],
        code(Error::CspaceCapNull)
    );
}

#[test]
fn virq_binding_rules() {
    let mut vm = Vm::new(1 << 20);
    let q = vm.queue(2, 16);
    assert_eq!(
        vm.err(HypCall::MsgqueueUnbindSendVirq, &[q, 0]),
        Some(Error::VirqNotBound)
    );
    assert_eq!(
        vm.err(HypCall::MsgqueueBindSendVirq, &[q, vm.vic, 33, 0]),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(
        vm.err(
            HypCall::MsgqueueBindSendVirq,
            &[q, vm.vic, 1u64 << 32 | 64, 0]
        ),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(
        vm.err(HypCall::MsgqueueBindSendVirq, &[q, vm.vic, 64, 0]),
        None
    );
    assert_eq!(
        vm.err(HypCall::MsgqueueBindReceiveVirq, &[q, vm.vic, 64, 0]),
        Some(Error::VirqBound)
    );
    assert_eq!(
        vm.err(HypCall::MsgqueueBindSendVirq, &[q, vm.vic, 65, 0]),
        Some(Error::VirqBound)
    );
    assert_eq!(vm.err(HypCall::MsgqueueUnbindSendVirq, &[q, 0]), None);
    assert_eq!(
        vm.err(HypCall::MsgqueueBindReceiveVirq, &[q, vm.vic, 64, 0]),
        None
    );
    // A vic cap is needed to bind.
    assert_eq!(
        vm.err(HypCall::MsgqueueBindSendVirq, &[q, q, 66, 0]),
        Some(Error::CspaceWrongObjectType)
    );
}

#[test]
fn doorbell_flow() {
    let mut vm = Vm::new(1 << 20);
    let r = vm.call(
        HypCall::PartitionCreateDoorbell,
        &[vm.partition, vm.own_cspace, 0],
    );
    let db = r[1];
    assert_eq!(
        vm.call(HypCall::DoorbellSend, &[db, 1, 0])[0],
        code(Error::ObjectState)
    );
    assert_eq!(vm.err(HypCall::ObjectActivate, &[db, 0]), None);
    assert_eq!(
        vm.err(HypCall::DoorbellBindVirq, &[db, vm.vic, 80, 0]),
        None
    );
    assert_eq!(vm.err(HypCall::DoorbellMask, &[db, 0b01, 0, 0]), None);
    assert_eq!(vm.call(HypCall::DoorbellSend, &[db, 0b10, 0]), vec![0, 0]);
    assert!(
        !vm.rec
            .events
            .lock()
            .iter()
            .any(|&(v, e)| v == 80 && e.starts_with("assert"))
    );
    assert_eq!(
        vm.call(HypCall::DoorbellSend, &[db, 0b01, 0]),
        vec![0, 0b10]
    );
    assert!(
        vm.rec
            .events
            .lock()
            .iter()
            .any(|&(v, e)| v == 80 && e.starts_with("assert"))
    );
    assert_eq!(
        vm.call(HypCall::DoorbellReceive, &[db, 0, 0])[0],
        code(Error::ArgumentInvalid)
    );
    assert_eq!(
        vm.call(HypCall::DoorbellReceive, &[db, u64::MAX, 0]),
        vec![0, 0b11]
    );
    assert_eq!(vm.err(HypCall::DoorbellReset, &[db, 0]), None);
    assert_eq!(vm.err(HypCall::DoorbellUnbindVirq, &[db, 0]), None);
    assert_eq!(
        vm.err(HypCall::DoorbellUnbindVirq, &[db, 0]),
        Some(Error::VirqNotBound)
    );
}

#[test]
fn partition_quota_is_nomem_and_refunded() {
    let mut vm = Vm::new(64 << 10);
    let mut queues = Vec::new();
    let mut nomem = false;
    for _ in 0..8 {
        let r = vm.call(
            HypCall::PartitionCreateMsgqueue,
            &[vm.partition, vm.own_cspace, 0],
        );
        if r[0] == code(Error::Nomem) {
            nomem = true;
            break;
        }
        let q = r[1];
        assert_eq!(
            vm.err(HypCall::MsgqueueConfigure, &[q, 255 | 1023 << 16, 0]),
            None
        );
        match vm.err(HypCall::ObjectActivate, &[q, 0]) {
            None => queues.push(q),
            Some(Error::Nomem) => {
                nomem = true;
                queues.push(q);
                break;
            }
            Some(e) => panic!("{e:?}"),
        }
    }
    assert!(nomem, "a 64 KiB partition cannot hold 8 queues of 255 KiB");
    for q in queues {
        assert_eq!(
            vm.err(HypCall::CspaceDeleteCapFrom, &[vm.own_cspace, q, 0]),
            None
        );
    }
    let q = vm.queue(8, 240);
    assert_ne!(q, CapId::INVALID.raw());
}

#[test]
fn cspace_create_configure_full() {
    let mut vm = Vm::new(1 << 20);
    let r = vm.call(
        HypCall::PartitionCreateCspace,
        &[vm.partition, vm.own_cspace, 0],
    );
    assert_eq!(r[0], 0);
    let cs = r[1];
    assert_eq!(
        vm.err(HypCall::ObjectActivate, &[cs, 0]),
        Some(Error::ObjectConfig)
    );
    assert_eq!(
        vm.err(HypCall::CspaceConfigure, &[cs, 0, 0]),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(vm.err(HypCall::CspaceConfigure, &[cs, 2, 0]), None);
    assert_eq!(vm.err(HypCall::ObjectActivate, &[cs, 0]), None);
    assert_eq!(
        vm.err(HypCall::CspaceConfigure, &[cs, 4, 0]),
        Some(Error::ObjectState)
    );
    for i in 0..3 {
        let r = vm.call(
            HypCall::CspaceCopyCapFrom,
            &[vm.own_cspace, vm.vic, cs, u64::MAX, 0],
        );
        let want = if i < 2 { 0 } else { code(Error::CspaceFull) };
        assert_eq!(r[0], want, "copy {i}");
    }
}

#[test]
fn native_reserved_arguments() {
    let mut vm = Vm::new(1 << 20);
    let q = vm.queue(2, 16);
    assert_eq!(
        vm.native(HypCall::MsgqueueSend, &[q, 8, BASE, 0, 1])[0],
        code(Error::ArgumentInvalid)
    );
    assert_eq!(vm.native(HypCall::MsgqueueSend, &[q, 8, BASE, 0, 0])[0], 0);
    // The SMCCC path ignores reserved inputs.
    assert_eq!(vm.call(HypCall::MsgqueueSend, &[q, 8, BASE, 0, 1])[0], 0);
    assert_eq!(
        vm.native(HypCall::MsgqueueConfigureSend, &[q, u64::MAX, u64::MAX, 0])[0],
        code(Error::ArgumentInvalid)
    );
    assert_eq!(
        vm.native(
            HypCall::MsgqueueConfigureSend,
            &[q, u64::MAX, u64::MAX, u64::MAX]
        )[0],
        0
    );
    assert_eq!(
        vm.native(HypCall::MsgqueueConfigureSend, &[q, 1, 0, u64::MAX])[0],
        code(Error::Unimplemented)
    );
}

#[test]
fn unknown_and_unimplemented_numbers() {
    let mut vm = Vm::new(1 << 20);
    let mut c = Caller {
        cspace: Some(&vm.cspace),
        mem: &mut vm.mem,
        yield_cpu: false,
        proxy: None,
    };
    for n in [0x08u16, 0x16, 0x1E, 0x35, 0x36, 0x37, 0x69, 0x7F, 0x1FF] {
        let fid = u64::from(smccc_function_id(n));
        assert_eq!(
            smccc(&[fid], &mut c).unwrap().values(),
            &[u64::MAX],
            "{n:#x}"
        );
        // Native immediates past the table are not hypercalls at all (plain HVC traps).
        if n <= HypCall::MAX_NUMBER {
            let r = native(native_hvc_imm(n), &[0; 8], &mut c).unwrap();
            assert_eq!(r.values(), &[u64::MAX]);
        }
    }
    for call in [
        HypCall::AddrspaceAttachVdma,
        HypCall::VicBindMsiSource,
        HypCall::ObjectReset,
    ] {
        assert_eq!(vm.call(call, &[0; 7])[0], u64::MAX, "{call:?}");
    }
}

#[test]
fn scheduler_yield_hints() {
    let mut vm = Vm::new(1 << 20);
    let mut c = Caller {
        cspace: Some(&vm.cspace),
        mem: &mut vm.mem,
        yield_cpu: false,
        proxy: None,
    };
    let fid = u64::from(smccc_function_id(HypCall::SchedulerYield.number()));
    assert_eq!(smccc(&[fid, 0, 0], &mut c).unwrap().values(), &[0]);
    assert!(c.yield_cpu);
    c.yield_cpu = false;
    // Hint 2 (yield to lower priority) and the implementation-defined flag: not in FPRR.
    for control in [2u64, 1 << 31, 7] {
        assert_eq!(
            smccc(&[fid, control, 0], &mut c).unwrap().values(),
            &[code(Error::ArgumentInvalid)],
            "{control:#x}"
        );
    }
    // Hint 1 needs a vCPU cap: a bogus one is null, any other object the wrong type.
    assert_eq!(
        smccc(&[fid, 1, 12345], &mut c).unwrap().values(),
        &[code(Error::CspaceCapNull)]
    );
    assert!(!c.yield_cpu);
}

#[test]
fn a_vm_without_objects_gets_cap_null() {
    let mut mem = FakeMem { bytes: vec![0; 16] };
    let mut c = Caller {
        cspace: None,
        mem: &mut mem,
        yield_cpu: false,
        proxy: None,
    };
    let fid = u64::from(smccc_function_id(HypCall::MsgqueueSend.number()));
    assert_eq!(
        smccc(&[fid, 1, 1, BASE], &mut c).unwrap().values()[0],
        code(Error::CspaceCapNull)
    );
}

/// `WURLEY_PARTITION_CONFIGURE` with `x1`, `x2`: the error, if any.
fn configure_partition(vm: &mut Vm, partition: u64, quota: u64) -> Option<Error> {
    let mut x = vec![
        u64::from(wurley_abi::vendor::PARTITION_CONFIGURE),
        partition,
        quota,
    ];
    x.resize(8, 0);
    let mut c = Caller {
        cspace: Some(&vm.cspace),
        mem: &mut vm.mem,
        yield_cpu: false,
        proxy: None,
    };
    let x0 = smccc(&x, &mut c).unwrap().values()[0];
    (x0 != 0).then(|| Error::from_code(x0 as i64).unwrap())
}

#[test]
fn a_child_partition_gets_its_quota_before_activation() {
    let mut vm = Vm::new(1 << 20);
    let (p, cs, vic) = (vm.partition, vm.own_cspace, vm.vic);
    let r = vm.call(HypCall::PartitionCreatePartition, &[p, cs, 0]);
    assert_eq!(r[0], 0);
    let child = r[1];
    // Room for one doorbell.
    let one = core::mem::size_of::<crate::object::ipc::DoorbellObject>() as u64;
    assert_eq!(
        configure_partition(&mut vm, vic, one),
        Some(Error::CspaceWrongObjectType)
    );
    assert_eq!(configure_partition(&mut vm, child, one), None);
    // Not usable before activation; not configurable after.
    assert_eq!(
        vm.err(HypCall::PartitionCreateDoorbell, &[child, cs, 0]),
        Some(Error::ObjectState)
    );
    assert_eq!(vm.err(HypCall::ObjectActivate, &[child, 0]), None);
    assert_eq!(
        configure_partition(&mut vm, child, 1 << 20),
        Some(Error::ObjectState)
    );
    let r = vm.call(HypCall::PartitionCreateDoorbell, &[child, cs, 0]);
    assert_eq!(r[0], 0);
    assert_eq!(
        vm.err(HypCall::PartitionCreateDoorbell, &[child, cs, 0]),
        Some(Error::Nomem)
    );
    // Deleting the doorbell gives its memory back.
    assert_eq!(vm.err(HypCall::CspaceDeleteCapFrom, &[cs, r[1], 0]), None);
    assert_eq!(
        vm.err(HypCall::PartitionCreateDoorbell, &[child, cs, 0]),
        None
    );
}

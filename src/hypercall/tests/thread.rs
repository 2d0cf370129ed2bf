//! Building a VM from objects on the host: `partition_create_thread` / `_vic`, configuring and
//! attaching threads and VICs, activation rules, the INIT-only scheduling parameters, register
//! writes kept for power-on, and the checked requests `vcpu_poweron` / `vcpu_poweroff` /
//! `vcpu_kill` leave for `vm::lifecycle`.

use alloc::sync::Arc;
use wurley_abi::rights::AddrspaceRights;
use wurley_abi::{Error, HypCall};

use super::super::context::ProxyRequest;
use super::vcpu::call_with_flags;
use super::{Vm, code};
use crate::object::Object;
use crate::object::addrspace::AddrSpaceObject;
use crate::object::vcpu::BootReg;

/// A VM with a new thread and a new VIC (both INIT) and an active address space: the caps.
fn builder() -> (Vm, u64, u64, u64) {
    let mut vm = Vm::new(1 << 20);
    let r = vm.call(
        HypCall::PartitionCreateThread,
        &[vm.partition, vm.own_cspace, 0],
    );
    assert_eq!(r[0], 0, "create thread");
    let t = r[1];
    let r = vm.call(
        HypCall::PartitionCreateVic,
        &[vm.partition, vm.own_cspace, 0],
    );
    assert_eq!(r[0], 0, "create vic");
    let vic = r[1];
    let space = vm
        .cspace
        .insert_master(
            Object::AddrSpace(
                AddrSpaceObject::new_for_vm(crate::object::memextent::tests::fake_ctx(), 1)
                    .unwrap(),
            ),
            AddrspaceRights::ATTACH.bits(),
        )
        .unwrap()
        .raw();
    (vm, t, vic, space)
}

#[test]
fn thread_activation_needs_cspace_addrspace_and_vic() {
    let (mut vm, t, vic, space) = builder();
    let own = vm.own_cspace;
    assert_eq!(
        vm.err(HypCall::ObjectActivate, &[t, 0]),
        Some(Error::ObjectConfig)
    );
    // The VIC must be configured, then active, before a vCPU attaches.
    assert_eq!(
        vm.err(HypCall::ObjectActivate, &[vic, 0]),
        Some(Error::ObjectConfig)
    );
    assert_eq!(
        vm.err(HypCall::VicAttachVcpu, &[vic, t, 0]),
        Some(Error::ObjectState)
    );
    for bad in [
        [0, 64, 0, 0],
        [9, 64, 0, 0],
        [1, 989, 0, 0],
        [1, 64, 4, 0],
        [1, 64, 1, 2],
    ] {
        assert_eq!(
            vm.err(
                HypCall::VicConfigure,
                &[vic, bad[0], bad[1], bad[2], bad[3]]
            ),
            Some(Error::ArgumentInvalid),
            "{bad:?}"
        );
    }
    assert_eq!(vm.err(HypCall::VicConfigure, &[vic, 2, 64, 1, 0]), None);
    assert_eq!(vm.err(HypCall::ObjectActivate, &[vic, 0]), None);
    assert_eq!(
        vm.err(HypCall::VicConfigure, &[vic, 2, 64, 0, 0]),
        Some(Error::ObjectState)
    );
    assert_eq!(
        vm.err(HypCall::VicAttachVcpu, &[vic, t, 2]),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(vm.err(HypCall::VicAttachVcpu, &[vic, t, 1]), None);
    assert_eq!(
        vm.err(HypCall::VicAttachVcpu, &[vic, t, 0]),
        Some(Error::ArgumentInvalid),
        "already attached to a VIC"
    );
    assert_eq!(
        vm.err(HypCall::ObjectActivate, &[t, 0]),
        Some(Error::ObjectConfig)
    );
    assert_eq!(vm.err(HypCall::CspaceAttachThread, &[own, t, 0]), None);
    assert_eq!(
        vm.err(HypCall::ObjectActivate, &[t, 0]),
        Some(Error::ObjectConfig)
    );
    // Wrong types and rights.
    assert_eq!(
        vm.err(HypCall::AddrspaceAttachThread, &[t, t, 0]),
        Some(Error::CspaceWrongObjectType)
    );
    assert_eq!(vm.err(HypCall::AddrspaceAttachThread, &[space, t, 0]), None);
    assert_eq!(vm.err(HypCall::ObjectActivate, &[t, 0]), None);
    // Active: no more configuration.
    assert_eq!(
        vm.err(HypCall::VcpuConfigure, &[t, 0, 0]),
        Some(Error::ObjectState)
    );
    assert_eq!(
        vm.err(HypCall::CspaceAttachThread, &[own, t, 0]),
        Some(Error::ObjectState)
    );
    assert_eq!(
        vm.err(HypCall::VcpuSetPriority, &[t, 10]),
        Some(Error::ObjectState)
    );
}

#[test]
fn configuration_values_are_checked_and_kept() {
    let (mut vm, t, _, _) = builder();
    // vcpu_run_scheduled (bit 9) is accepted, and kept.
    assert_eq!(vm.err(HypCall::VcpuConfigure, &[t, 1 << 9, 0]), None);
    assert_eq!(
        vm.err(HypCall::VcpuConfigure, &[t, 1 << 10, 0]),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(
        vm.err(HypCall::VcpuConfigure, &[t, 1 << 6, 0]),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(vm.err(HypCall::VcpuConfigure, &[t, 1 << 8 | 1, 0]), None);
    assert_eq!(
        vm.err(HypCall::VcpuSetPriority, &[t, 64]),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(
        vm.err(HypCall::VcpuSetPriority, &[t, 1 << 32]),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(vm.err(HypCall::VcpuSetPriority, &[t, 40]), None);
    assert_eq!(
        vm.err(HypCall::VcpuSetTimeslice, &[t, 99_999]),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(vm.err(HypCall::VcpuSetTimeslice, &[t, 2_000_000]), None);
    for (set, index) in [(0, 31), (1, 1), (2, 2), (3, 0)] {
        assert_eq!(
            vm.err(HypCall::VcpuRegisterWrite, &[t, set, index, 5, 0]),
            Some(Error::ArgumentInvalid),
            "set {set} index {index}"
        );
    }
    assert_eq!(
        vm.err(HypCall::VcpuRegisterWrite, &[t, 0, 3, 0x33, 0]),
        None
    );
    assert_eq!(
        vm.err(HypCall::VcpuRegisterWrite, &[t, 1, 0, 0x8000, 0]),
        None
    );
    assert_eq!(
        vm.err(HypCall::VcpuRegisterWrite, &[t, 2, 1, 0x9000, 0]),
        None
    );
    let Object::Vcpu(obj) = vm.cspace.lookup_any(wurley_abi::CapId(t), 0).unwrap().0 else {
        panic!("not a vCPU");
    };
    let cfg = obj.config.lock();
    assert_eq!(cfg.options, 1 << 8 | 1);
    assert_eq!(
        (cfg.priority, cfg.timeslice_ns),
        (Some(40), Some(2_000_000))
    );
    assert_eq!(
        (cfg.regs.x[3], cfg.regs.pc, cfg.regs.sp),
        (0x33, Some(0x8000), [0, 0x9000])
    );
    assert_eq!(BootReg::decode(2, 0), Ok(BootReg::Sp(0)));
}

#[test]
fn lifecycle_calls_leave_checked_requests() {
    let (mut vm, t, vic, space) = builder();
    let own = vm.own_cspace;
    // Not active yet: power-on and kill refuse before anything else happens.
    let (r, req, _) = call_with_flags(&mut vm, HypCall::VcpuPoweron, &[t, 0x4008_0000, 7, 0]);
    assert_eq!((r[0], req.is_none()), (code(Error::ObjectState), true));
    let (r, req, _) = call_with_flags(&mut vm, HypCall::VcpuKill, &[t, 0]);
    assert_eq!((r[0], req.is_none()), (code(Error::ObjectState), true));
    assert_eq!(vm.err(HypCall::VicConfigure, &[vic, 1, 32, 0, 0]), None);
    assert_eq!(vm.err(HypCall::ObjectActivate, &[vic, 0]), None);
    assert_eq!(vm.err(HypCall::VicAttachVcpu, &[vic, t, 0]), None);
    assert_eq!(vm.err(HypCall::CspaceAttachThread, &[own, t, 0]), None);
    assert_eq!(vm.err(HypCall::AddrspaceAttachThread, &[space, t, 0]), None);
    assert_eq!(vm.err(HypCall::ObjectActivate, &[t, 0]), None);
    let (r, req, _) = call_with_flags(&mut vm, HypCall::VcpuPoweron, &[t, 0x4008_0000, 7, 4]);
    assert_eq!((r[0], req.is_none()), (code(Error::ArgumentInvalid), true));
    let (r, req, _) = call_with_flags(&mut vm, HypCall::VcpuPoweron, &[t, 0x4008_0000, 7, 3]);
    assert_eq!(r[0], 0);
    assert!(matches!(
        req,
        Some(ProxyRequest::PowerOn {
            entry: 0x4008_0000,
            context: 7,
            flags: 3,
            ..
        })
    ));
    let (r, req, _) = call_with_flags(&mut vm, HypCall::VcpuPoweroff, &[t, 2]);
    assert_eq!((r[0], req.is_none()), (code(Error::ArgumentInvalid), true));
    let (r, req, _) = call_with_flags(&mut vm, HypCall::VcpuPoweroff, &[t, 1]);
    assert_eq!(r[0], 0);
    assert!(matches!(req, Some(ProxyRequest::PowerOff { flags: 1, .. })));
    let (r, req, _) = call_with_flags(&mut vm, HypCall::VcpuKill, &[t, 0]);
    assert_eq!(r[0], 0);
    assert!(matches!(req, Some(ProxyRequest::Kill { .. })));
    // The native path checks the reserved inputs.
    assert_eq!(
        vm.native(HypCall::VcpuKill, &[t, 1])[0],
        code(Error::ArgumentInvalid)
    );
}

#[test]
fn vic_holds_its_vcpus_weakly_and_sources_wait_for_the_vm() {
    let (mut vm, t, vic, _) = builder();
    assert_eq!(vm.err(HypCall::VicConfigure, &[vic, 2, 32, 0, 0]), None);
    assert_eq!(vm.err(HypCall::ObjectActivate, &[vic, 0]), None);
    assert_eq!(vm.err(HypCall::VicAttachVcpu, &[vic, t, 0]), None);
    let Object::Vic(v) = vm.cspace.lookup_any(wurley_abi::CapId(vic), 0).unwrap().0 else {
        panic!("not a VIC");
    };
    assert_eq!(v.attached().iter().filter(|a| a.is_some()).count(), 1);
    // A source bound and asserted before the VM exists is replayed once it does.
    let src = v.bind(40).unwrap();
    assert_eq!(
        v.bind(72).err(),
        Some(Error::ArgumentInvalid),
        "beyond max_virqs"
    );
    src.apply(crate::object::VirqLine::Assert { level: true });
    let rec = Arc::new(crate::object::vic::tests::Recorder::default());
    v.set_controller(rec.clone());
    assert_eq!(*rec.events.lock(), alloc::vec![(40, "assert-level")]);
    // Deleting the thread's only cap frees it: the VIC does not keep it alive.
    assert_eq!(
        vm.err(HypCall::CspaceDeleteCapFrom, &[vm.own_cspace, t, 0]),
        None
    );
    assert!(v.attached().iter().all(Option::is_none));
}

#[test]
fn vpm_group_calls() {
    let (mut vm, t, _, _) = builder();
    let r = vm.call(
        HypCall::PartitionCreateVpmGroup,
        &[vm.partition, vm.own_cspace, 0],
    );
    assert_eq!(r[0], 0);
    let g = r[1];
    assert_eq!(
        vm.err(HypCall::VpmGroupAttachVcpu, &[g, t, 0]),
        Some(Error::ObjectState)
    );
    assert_eq!(
        vm.err(HypCall::VpmGroupConfigure, &[g, 2, 0]),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(vm.err(HypCall::VpmGroupConfigure, &[g, 1, 0]), None);
    assert_eq!(vm.err(HypCall::ObjectActivate, &[g, 0]), None);
    assert_eq!(
        vm.err(HypCall::VpmGroupAttachVcpu, &[g, t, 8]),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(vm.err(HypCall::VpmGroupAttachVcpu, &[g, t, 0]), None);
    assert_eq!(
        vm.err(HypCall::VpmGroupAttachVcpu, &[g, t, 1]),
        Some(Error::ArgumentInvalid),
        "a thread is in one group"
    );
    let vic = vm.vic;
    assert_eq!(
        vm.err(HypCall::VpmGroupUnbindVirq, &[g, 0]),
        Some(Error::VirqNotBound)
    );
    assert_eq!(vm.err(HypCall::VpmGroupBindVirq, &[g, vic, 60, 0]), None);
    assert_eq!(
        vm.err(HypCall::VpmGroupBindVirq, &[g, vic, 61, 0]),
        Some(Error::VirqBound)
    );
    let (r, req, _) = call_with_flags(&mut vm, HypCall::VpmGroupGetState, &[g, 0]);
    assert_eq!(r[0], 0);
    assert!(matches!(req, Some(ProxyRequest::VpmState { .. })));
    let (r, req, _) = call_with_flags(&mut vm, HypCall::VpmGroupGetState, &[t, 0]);
    assert_eq!(
        (r[0], req.is_none()),
        (code(Error::CspaceWrongObjectType), true)
    );
    assert_eq!(vm.err(HypCall::VpmGroupUnbindVirq, &[g, 0]), None);
}

#[test]
fn hwirq_bind_and_unbind() {
    let mut vm = Vm::new(1 << 20);
    let h = crate::object::hwirq::HwirqObject::new(47, false);
    let cap = vm
        .cspace
        .insert_master(
            Object::Hwirq(h.clone()),
            wurley_abi::rights::HwirqRights::BIND_VIC.bits(),
        )
        .unwrap()
        .raw();
    let vic = vm.vic;
    assert_eq!(
        vm.err(HypCall::HwirqUnbindVirq, &[cap, 0]),
        Some(Error::VirqNotBound)
    );
    assert_eq!(
        vm.err(HypCall::HwirqBindVirq, &[cap, vic, 33, 0]),
        Some(Error::ArgumentInvalid),
        "not bindable there"
    );
    assert_eq!(
        vm.err(HypCall::HwirqBindVirq, &[vic, vic, 40, 0]),
        Some(Error::CspaceWrongObjectType)
    );
    assert_eq!(vm.err(HypCall::HwirqBindVirq, &[cap, vic, 40, 0]), None);
    assert_eq!(
        vm.err(HypCall::HwirqBindVirq, &[cap, vic, 41, 0]),
        Some(Error::VirqBound)
    );
    assert_eq!(h.bound_to().map(|(_, v)| v), Some(40));
    assert_eq!(vm.err(HypCall::HwirqUnbindVirq, &[cap, 0]), None);
    assert_eq!(
        *vm.rec.events.lock(),
        alloc::vec![(40, "hw-bind"), (40, "hw-unbind")]
    );
    assert_eq!(
        vm.native(HypCall::HwirqBindVirq, &[cap, vic, 40, 1])[0],
        code(Error::ArgumentInvalid)
    );
}

/// `WURLEY_VM_SET_NAME` with `x1..x4`: the reply and the request it left.
fn set_name(vm: &mut Vm, args: [u64; 4]) -> (u64, Option<ProxyRequest>) {
    let mut x = alloc::vec![u64::from(wurley_abi::vendor::VM_SET_NAME)];
    x.extend_from_slice(&args);
    x.resize(8, 0);
    let mut c = super::super::context::Caller {
        cspace: Some(&vm.cspace),
        mem: &mut vm.mem,
        yield_cpu: false,
        proxy: None,
    };
    let r = super::super::smccc(&x, &mut c).unwrap().values().to_vec();
    (r[0], c.proxy)
}

#[test]
fn vm_set_name_checks_and_keeps_the_name_on_the_address_space() {
    let mut vm = Vm::new(1 << 20);
    let object =
        AddrSpaceObject::new_for_vm(crate::object::memextent::tests::fake_ctx(), 1).unwrap();
    let map = vm
        .cspace
        .insert_master(
            Object::AddrSpace(object.clone()),
            AddrspaceRights::MAP.bits(),
        )
        .unwrap()
        .raw();
    let lookup_only = vm
        .cspace
        .insert_master(
            Object::AddrSpace(object.clone()),
            AddrspaceRights::LOOKUP.bits(),
        )
        .unwrap()
        .raw();
    let va = super::BASE + 0x100;
    vm.mem.bytes[0x100..0x100 + 10].copy_from_slice(b"linux_1.0+");
    vm.mem.bytes[0x200..0x200 + 3].copy_from_slice(b"a b");
    let bad_chars = super::BASE + 0x200;

    // Cap first, then flags, length, buffer, characters.
    assert_eq!(
        set_name(&mut vm, [!0, va, 5, 0]).0,
        code(Error::CspaceCapNull)
    );
    assert_eq!(
        set_name(&mut vm, [lookup_only, va, 5, 0]).0,
        code(Error::CspaceInsufficientRights)
    );
    let vic = vm.vic;
    assert_eq!(
        set_name(&mut vm, [vic, va, 5, 0]).0,
        code(Error::CspaceWrongObjectType)
    );
    assert_eq!(
        set_name(&mut vm, [map, va, 5, 4]).0,
        code(Error::ArgumentInvalid)
    );
    assert_eq!(
        set_name(&mut vm, [map, va, 0, 0]).0,
        code(Error::ArgumentSize)
    );
    assert_eq!(
        set_name(&mut vm, [map, va, 30, 0]).0,
        code(Error::ArgumentSize)
    );
    assert_eq!(
        set_name(&mut vm, [map, 0x10, 5, 0]).0,
        code(Error::AddrInvalid)
    );
    assert_eq!(
        set_name(&mut vm, [map, bad_chars, 3, 0]).0,
        code(Error::ArgumentInvalid)
    );
    assert_eq!(object.vm_name(), None);

    let (r, req) = set_name(&mut vm, [map, va, 5, 0]);
    assert_eq!(r, 0);
    assert!(
        matches!(req, Some(ProxyRequest::SetName { space, shared: false }) if Arc::ptr_eq(&space, &object))
    );
    assert_eq!(object.vm_name(), Some(("linux".into(), false)));
    // Named again, with the console focus.
    assert_eq!(set_name(&mut vm, [map, va, 10, 1]).0, 0);
    assert_eq!(object.vm_name(), Some(("linux_1.0+".into(), true)));
    // The native range has no such call.
    assert_eq!(crate::hypercall::decode::native(0x0100), None);
}

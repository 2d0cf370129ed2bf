//! The proxy-scheduling calls on the host: `vcpu_run` and `vcpu_run_check` (cap, rights, the
//! wake-up binding, the request they leave for `vm::proxy`), `vcpu_bind_virq` /
//! `vcpu_unbind_virq`, `addrspace_configure_vmmio` and `vcpu_set_affinity` (checks only).

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use wurley_abi::hypcall::smccc_function_id;
use wurley_abi::rights::{AddrspaceRights, ThreadRights};
use wurley_abi::vcpu_run::{VcpuVirqType, VmmioOp};
use wurley_abi::{Error, HypCall};

use super::super::context::{Caller, ProxyRequest};
use super::super::smccc;
use super::{Vm, code};
use crate::object::Object;
use crate::object::addrspace::AddrSpaceObject;
use crate::object::vcpu::VcpuObject;

/// A VM holding a cap to a proxy-scheduled vCPU (`rights`) and one to an address space.
fn proxy_vm(rights: u32) -> (Vm, Arc<VcpuObject>, u64, u64) {
    let vm = Vm::new(1 << 20);
    let vcpu = VcpuObject::new();
    let v = vm
        .cspace
        .insert_master(Object::Vcpu(vcpu.clone()), rights)
        .unwrap()
        .raw();
    let space = vm
        .cspace
        .insert_master(
            Object::AddrSpace(
                AddrSpaceObject::new_for_vm(crate::object::memextent::tests::fake_ctx(), 1)
                    .unwrap(),
            ),
            AddrspaceRights::ADD_VMMIO_RANGE.bits(),
        )
        .unwrap()
        .raw();
    (vm, vcpu, v, space)
}

/// `vcpu_run` or `vcpu_run_check` through `smccc`: the reply and the request it left.
fn proxy_call(vm: &mut Vm, call: HypCall, args: &[u64]) -> (Vec<u64>, Option<ProxyRequest>) {
    let (r, req, _) = call_with_flags(vm, call, args);
    (r, req)
}

/// `call` through `smccc`: the reply, the request it left, whether the caller yields.
pub(super) fn call_with_flags(
    vm: &mut Vm,
    call: HypCall,
    args: &[u64],
) -> (Vec<u64>, Option<ProxyRequest>, bool) {
    let mut x = vec![u64::from(smccc_function_id(call.number()))];
    x.extend_from_slice(args);
    x.resize(8, 0);
    let mut c = Caller {
        cspace: Some(&vm.cspace),
        mem: &mut vm.mem,
        yield_cpu: false,
        proxy: None,
    };
    let r = smccc(&x, &mut c).unwrap().values().to_vec();
    (r, c.proxy, c.yield_cpu)
}

#[test]
fn vcpu_run_checks_cap_rights_and_wakeup_binding() {
    let all = ThreadRights::ALL.bits();
    let (mut vm, vcpu, v, space) = proxy_vm(all);
    let wake = VcpuVirqType::VcpuRunWakeup as u64;
    // Not a vCPU, no cap at all.
    let (r, req) = proxy_call(&mut vm, HypCall::VcpuRun, &[space, 0, 0, 0, 0]);
    assert_eq!(r, [code(Error::CspaceWrongObjectType)]);
    assert!(req.is_none());
    let (r, _) = proxy_call(&mut vm, HypCall::VcpuRun, &[12345, 0, 0, 0, 0]);
    assert_eq!(r, [code(Error::CspaceCapNull)]);
    // No VCPU_RUN_WAKEUP vIRQ bound yet.
    let (r, req) = proxy_call(&mut vm, HypCall::VcpuRun, &[v, 0, 0, 0, 0]);
    assert_eq!(r, [code(Error::Busy)]);
    assert!(req.is_none());
    assert_eq!(
        vm.err(HypCall::VcpuBindVirq, &[v, vm.vic, 70, wake, 0]),
        None
    );
    let (r, req) = proxy_call(&mut vm, HypCall::VcpuRun, &[v, 7, 8, 9, 0]);
    assert_eq!(r, [0]);
    match req {
        Some(ProxyRequest::Run { vcpu: got, resume }) => {
            assert!(Arc::ptr_eq(&got, &vcpu));
            assert_eq!(resume, [7, 8, 9]);
        }
        _ => panic!("no run request"),
    }
    let (r, req) = proxy_call(&mut vm, HypCall::VcpuRunCheck, &[v, 0]);
    assert_eq!(r, [0]);
    assert!(matches!(req, Some(ProxyRequest::Check { .. })));
    // Native path: reserved inputs.
    assert_eq!(
        vm.native(HypCall::VcpuRun, &[v, 0, 0, 0, 1])[0],
        code(Error::ArgumentInvalid)
    );
    assert_eq!(
        vm.native(HypCall::VcpuRunCheck, &[v, 1])[0],
        code(Error::ArgumentInvalid)
    );
}

#[test]
fn vcpu_calls_need_their_rights() {
    let run_only = (ThreadRights::AFFINITY | ThreadRights::YIELD_TO).bits();
    let (mut vm, vcpu, v, _) = proxy_vm(run_only);
    let wake = VcpuVirqType::VcpuRunWakeup as u64;
    let vic = vm.vic;
    assert_eq!(
        vm.err(HypCall::VcpuBindVirq, &[v, vic, 70, wake, 0]),
        Some(Error::CspaceInsufficientRights)
    );
    let (r, _) = proxy_call(&mut vm, HypCall::VcpuRunCheck, &[v, 0]);
    assert_eq!(r, [code(Error::CspaceInsufficientRights)]);
    let (mut vm, _, v, _) = proxy_vm((ThreadRights::BIND_VIRQ | ThreadRights::STATE).bits());
    let (r, _) = proxy_call(&mut vm, HypCall::VcpuRun, &[v, 0, 0, 0, 0]);
    assert_eq!(r, [code(Error::CspaceInsufficientRights)]);
    drop(vcpu);
}

#[test]
fn vcpu_bind_and_unbind_virq() {
    let (mut vm, vcpu, v, _) = proxy_vm(ThreadRights::ALL.bits());
    let vic = vm.vic;
    let (halt, wake) = (
        VcpuVirqType::Halt as u64,
        VcpuVirqType::VcpuRunWakeup as u64,
    );
    assert_eq!(
        vm.err(HypCall::VcpuBindVirq, &[v, vic, 70, 2, 0]),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(
        vm.err(HypCall::VcpuBindVirq, &[v, vic, 1 << 32, wake, 0]),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(vm.err(HypCall::VcpuBindVirq, &[v, vic, 70, wake, 0]), None);
    assert_eq!(
        vm.err(HypCall::VcpuBindVirq, &[v, vic, 71, wake, 0]),
        Some(Error::VirqBound)
    );
    assert_eq!(
        vm.err(HypCall::VcpuBindVirq, &[v, vic, 70, halt, 0]),
        Some(Error::VirqBound)
    );
    assert_eq!(vm.err(HypCall::VcpuBindVirq, &[v, vic, 71, halt, 0]), None);
    vcpu.raise(VcpuVirqType::Halt);
    assert_eq!(
        vm.err(HypCall::VcpuUnbindVirq, &[v, 9, 0]),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(vm.err(HypCall::VcpuUnbindVirq, &[v, halt, 0]), None);
    assert_eq!(
        vm.err(HypCall::VcpuUnbindVirq, &[v, halt, 0]),
        Some(Error::VirqNotBound)
    );
    assert_eq!(
        *vm.rec.events.lock(),
        vec![(71, "assert"), (71, "deassert")]
    );
    assert_eq!(
        vm.native(HypCall::VcpuUnbindVirq, &[v, wake, 1])[0],
        code(Error::ArgumentInvalid)
    );
}

#[test]
fn addrspace_configure_vmmio_ranges() {
    let (mut vm, _, v, space) = proxy_vm(ThreadRights::ALL.bits());
    let (add, remove) = (VmmioOp::Add as u64, VmmioOp::Remove as u64);
    assert_eq!(
        vm.err(
            HypCall::AddrspaceConfigureVmmio,
            &[v, 0x1000, 0x1000, add, 0]
        ),
        Some(Error::CspaceWrongObjectType)
    );
    assert_eq!(
        vm.err(
            HypCall::AddrspaceConfigureVmmio,
            &[space, 0x1000, 0x1000, 3, 0]
        ),
        Some(Error::ArgumentInvalid)
    );
    assert_eq!(
        vm.err(
            HypCall::AddrspaceConfigureVmmio,
            &[space, 0x1000, 0x1000, add, 0]
        ),
        None
    );
    assert_eq!(
        vm.err(
            HypCall::AddrspaceConfigureVmmio,
            &[space, 0x1000, 0x1000, add, 0]
        ),
        Some(Error::AddrInvalid)
    );
    assert_eq!(
        vm.err(
            HypCall::AddrspaceConfigureVmmio,
            &[space, 0x1000, 0x1000, remove, 0]
        ),
        None
    );
    assert_eq!(
        vm.native(
            HypCall::AddrspaceConfigureVmmio,
            &[space, 0x1000, 0x1000, add, 5]
        )[0],
        code(Error::ArgumentInvalid)
    );
    // A cap without ADD_VMMIO_RANGE.
    let weak = vm
        .cspace
        .insert_master(
            Object::AddrSpace(
                AddrSpaceObject::new_for_vm(crate::object::memextent::tests::fake_ctx(), 1)
                    .unwrap(),
            ),
            AddrspaceRights::MAP.bits(),
        )
        .unwrap()
        .raw();
    assert_eq!(
        vm.err(
            HypCall::AddrspaceConfigureVmmio,
            &[weak, 0x1000, 0x1000, add, 0]
        ),
        Some(Error::CspaceInsufficientRights)
    );
}

#[test]
fn vcpu_set_affinity_checks_cap_rights_and_index() {
    let (mut vm, vcpu, v, space) = proxy_vm(ThreadRights::AFFINITY.bits());
    let (r, req) = proxy_call(&mut vm, HypCall::VcpuSetAffinity, &[space, 1, u64::MAX]);
    assert_eq!(r, [code(Error::CspaceWrongObjectType)]);
    assert!(req.is_none());
    // Beyond a 16-bit cpu_index_t, and CPU_INDEX_INVALID ("no affinity"): refused here.
    for bad in [u64::from(u16::MAX), 1 << 16, u64::MAX] {
        let (r, req) = proxy_call(&mut vm, HypCall::VcpuSetAffinity, &[v, bad, u64::MAX]);
        assert_eq!(r, [code(Error::ArgumentInvalid)], "cpu {bad:#x}");
        assert!(req.is_none());
    }
    let (r, req) = proxy_call(&mut vm, HypCall::VcpuSetAffinity, &[v, 3, u64::MAX]);
    assert_eq!(r, [0]);
    match req {
        Some(ProxyRequest::SetAffinity { vcpu: got, cpu }) => {
            assert!(Arc::ptr_eq(&got, &vcpu));
            assert_eq!(cpu, 3);
        }
        _ => panic!("no affinity request"),
    }
    // X2 is res1 on the native path: all ones.
    assert_eq!(
        vm.native(HypCall::VcpuSetAffinity, &[v, 3, 0])[0],
        code(Error::ArgumentInvalid)
    );
    // Without AFFINITY.
    let (mut vm, _, v, _) = proxy_vm(ThreadRights::STATE.bits());
    let (r, _) = proxy_call(&mut vm, HypCall::VcpuSetAffinity, &[v, 0, u64::MAX]);
    assert_eq!(r, [code(Error::CspaceInsufficientRights)]);
}

#[test]
fn directed_yield_needs_a_vcpu_cap_with_yield_to() {
    let fid = |vm: &mut Vm, cap: u64| {
        let (r, req, yielded) = call_with_flags(vm, HypCall::SchedulerYield, &[1, cap, 0]);
        (r, yielded, req)
    };
    let (mut vm, vcpu, v, space) = proxy_vm(ThreadRights::YIELD_TO.bits());
    let (r, yielded, req) = fid(&mut vm, space);
    assert_eq!(r, [code(Error::CspaceWrongObjectType)]);
    assert!(!yielded && req.is_none());
    let (r, yielded, req) = fid(&mut vm, v);
    assert_eq!(r, [0]);
    assert!(yielded);
    match req {
        Some(ProxyRequest::YieldTo { vcpu: got }) => assert!(Arc::ptr_eq(&got, &vcpu)),
        _ => panic!("no yield request"),
    }
    let (mut vm, _, v, _) = proxy_vm(ThreadRights::AFFINITY.bits());
    let (r, yielded, _) = fid(&mut vm, v);
    assert_eq!(r, [code(Error::CspaceInsufficientRights)]);
    assert!(!yielded);
}

//! vCPU calls (Gunyah §2.8, §2.10): the proxy-scheduling ones (`vcpu_bind_virq`,
//! `vcpu_unbind_virq`, `vcpu_run`, `vcpu_run_check`, `addrspace_configure_vmmio`) and
//! `vcpu_set_affinity`.
//!
//! The binding calls and the VMMIO ranges are answered here. `vcpu_run`, `vcpu_run_check` and
//! `vcpu_set_affinity` are only checked here (cap, rights); the run itself needs the machine, so the checked
//! request goes back to `vm::exit` in [`Caller::proxy`] and `vm::proxy` writes the reply.

use wurley_abi::Error;
use wurley_abi::rights::{AddrspaceRights, ThreadRights, VicRights};
use wurley_abi::vcpu_run::{VcpuVirqType, VmmioOp};

use super::context::{Caller, ProxyRequest};
use super::dispatch::Reply;

/// Rights `vcpu_run` needs (Linux's driver holds AFFINITY | YIELD_TO).
pub const RUN_RIGHTS: ThreadRights = ThreadRights::AFFINITY.union(ThreadRights::YIELD_TO);
/// Rights `vcpu_run_check` needs.
pub const CHECK_RIGHTS: ThreadRights = ThreadRights::BIND_VIRQ.union(ThreadRights::STATE);

fn virq_type(raw: u64) -> Result<VcpuVirqType, Error> {
    VcpuVirqType::from_raw(raw).ok_or(Error::ArgumentInvalid)
}

/// `vcpu_bind_virq`: X0 vCPU (BIND_VIRQ), X1 vic (BIND_SOURCE), X2 vIRQ, X3 type.
/// Errors: cap lookup errors; `ArgumentInvalid` for an unknown type or a vIRQ the VIC cannot
/// bind; `VirqBound` if the vCPU's source of that type is bound or the vIRQ has a source.
pub fn bind(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let v = c.vcpu(a[0], ThreadRights::BIND_VIRQ.bits())?;
        let vic = c.vic(a[1], VicRights::BIND_SOURCE.bits())?;
        let virq = u32::try_from(a[2]).map_err(|_| Error::ArgumentInvalid)?;
        v.bind(virq_type(a[3])?, &vic, virq)
    })())
}

/// `vcpu_unbind_virq`: X0 vCPU (BIND_VIRQ), X1 type. Errors: cap lookup errors;
/// `ArgumentInvalid` for an unknown type; `VirqNotBound`.
pub fn unbind(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let v = c.vcpu(a[0], ThreadRights::BIND_VIRQ.bits())?;
        v.unbind(virq_type(a[1])?)
    })())
}

/// `vcpu_run`: X0 vCPU (AFFINITY | YIELD_TO), X1..X3 resume data. Errors here: cap lookup
/// errors (`CspaceWrongObjectType` for a cap that is not a vCPU); then in `vm::proxy`:
/// `Busy` if no VCPU_RUN_WAKEUP vIRQ is bound, the vCPU is not proxy-scheduled by the
/// caller's VM, or it runs elsewhere.
pub fn run(c: &mut Caller, a: &[u64]) -> Reply {
    match c.vcpu(a[0], RUN_RIGHTS.bits()) {
        Ok(vcpu) if !vcpu.is_bound(VcpuVirqType::VcpuRunWakeup) => Reply::error(Error::Busy),
        Ok(vcpu) => {
            c.proxy = Some(ProxyRequest::Run {
                vcpu,
                resume: [a[1], a[2], a[3]],
            });
            Reply::new(&[0])
        }
        Err(e) => Reply::error(e),
    }
}

/// `vcpu_run_check`: X0 vCPU (BIND_VIRQ | STATE). Errors here: cap lookup errors; then in
/// `vm::proxy`: `Busy` while the vCPU has not halted.
pub fn run_check(c: &mut Caller, a: &[u64]) -> Reply {
    match c.vcpu(a[0], CHECK_RIGHTS.bits()) {
        Ok(vcpu) => {
            c.proxy = Some(ProxyRequest::Check { vcpu });
            Reply::new(&[0])
        }
        Err(e) => Reply::error(e),
    }
}

/// `vcpu_set_affinity`: X0 vCPU (AFFINITY), X1 physical CPU index, X2 res1. Errors here: cap
/// lookup errors; `ArgumentInvalid` for an index that does not fit Gunyah's 16-bit
/// `cpu_index_t` (CPU_INDEX_INVALID, 0xFFFF, would need the DISABLE right and means "no
/// affinity", which Wurley does not have: also `ArgumentInvalid`); then in `vm::sched`:
/// `ArgumentInvalid` for a CPU it does not run, `Denied` for a proxy-scheduled vCPU.
pub fn set_affinity(c: &mut Caller, a: &[u64]) -> Reply {
    match c.vcpu(a[0], ThreadRights::AFFINITY.bits()) {
        Ok(vcpu) => match u16::try_from(a[1]) {
            Ok(cpu) if cpu != u16::MAX => {
                c.proxy = Some(ProxyRequest::SetAffinity {
                    vcpu,
                    cpu: usize::from(cpu),
                });
                Reply::new(&[0])
            }
            _ => Reply::error(Error::ArgumentInvalid),
        },
        Err(e) => Reply::error(e),
    }
}

/// `addrspace_configure_vmmio`: X0 addrspace (ADD_VMMIO_RANGE), X1 base, X2 size, X3 op.
/// Errors: cap lookup errors; `ArgumentInvalid` for an unknown op; then as
/// `object::addrspace::VmmioRanges::configure` says.
pub fn configure_vmmio(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let space = c.addrspace(a[0], AddrspaceRights::ADD_VMMIO_RANGE.bits())?;
        let op = VmmioOp::from_raw(a[3]).ok_or(Error::ArgumentInvalid)?;
        space.configure_vmmio(a[1], a[2], op)
    })())
}

//! Building a VM out of objects (Gunyah §2.7, §2.10): configuring threads (vCPUs) and VICs,
//! attaching threads to their cspace, address space and VIC, and the vCPU lifecycle calls.
//!
//! Configuration calls are answered here over the objects' INIT state. The calls that touch a
//! running machine (`vcpu_poweron`, `vcpu_poweroff`, `vcpu_kill`, `vcpu_register_write` of a
//! vCPU whose VM exists) are only checked here (cap, rights, arguments); the checked request
//! goes back to `vm::exit` in [`Caller::proxy`] and `vm::lifecycle` carries it out.
//!
//! Rights: configuring and attaching a thread needs OBJECT_ACTIVATE on it (as Gunyah's
//! `*_configure` calls do), the attach target its ATTACH right (ATTACH_VCPU for a VIC).

use alloc::sync::Arc;
use wurley_abi::Error;
use wurley_abi::rights::{
    AddrspaceRights, CspaceRights, HwirqRights, OBJECT_ACTIVATE, ThreadRights, VicRights,
    VpmGroupRights,
};

use super::context::{Caller, ProxyRequest};
use super::dispatch::Reply;
use crate::object::ObjectState;
use crate::object::vcpu::{BootReg, VcpuObject};

/// `vcpu_poweron_flags` bits: preserve_entry_point (0), preserve_context (1).
pub const POWERON_FLAGS: u64 = 0b11;
/// `vcpu_poweroff_flags` bit 0: last_vcpu.
pub const POWEROFF_FLAGS: u64 = 0b1;

fn thread(c: &Caller, cap: u64) -> Result<Arc<VcpuObject>, Error> {
    c.vcpu(cap, OBJECT_ACTIVATE)
}

/// `vcpu_configure`: X0 thread (OBJECT_ACTIVATE, INIT), X1 option flags.
pub fn configure(c: &Caller, a: &[u64]) -> Reply {
    Reply::result(thread(c, a[0]).and_then(|t| t.configure(a[1])))
}

/// `cspace_attach_thread`: X0 cspace (ATTACH, active), X1 thread (INIT): the cspace its
/// hypercalls will use.
pub fn attach_cspace(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let cs = c.cspace_obj(a[0], CspaceRights::ATTACH.bits(), false)?;
        let t = thread(c, a[1])?;
        t.configure_with(|cfg| {
            cfg.cspace = Some(cs);
            Ok(())
        })
    })())
}

/// `addrspace_attach_thread`: X0 address space (ATTACH, active), X1 thread (INIT).
pub fn attach_addrspace(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let space = c.addrspace(a[0], AddrspaceRights::ATTACH.bits())?;
        space.header.require_active()?;
        let t = thread(c, a[1])?;
        t.configure_with(|cfg| {
            cfg.addrspace = Some(space);
            Ok(())
        })
    })())
}

/// `vic_configure`: X0 VIC (OBJECT_ACTIVATE, INIT), X1 max vCPUs, X2 max shared vIRQs, X3
/// options, X4 max MSIs.
pub fn vic_configure(c: &Caller, a: &[u64]) -> Reply {
    Reply::result(
        c.vic(a[0], OBJECT_ACTIVATE)
            .and_then(|v| v.configure(a[1], a[2], a[3], a[4])),
    )
}

/// `vic_attach_vcpu`: X0 VIC (ATTACH_VCPU, active), X1 thread (INIT, not attached to a VIC
/// yet: `ArgumentInvalid` otherwise), X2 index (below max vCPUs, free: `ArgumentInvalid`).
pub fn vic_attach_vcpu(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let vic = c.vic(a[0], VicRights::ATTACH_VCPU.bits())?;
        let t = thread(c, a[1])?;
        let index = usize::try_from(a[2]).map_err(|_| Error::ArgumentInvalid)?;
        t.configure_with(|cfg| {
            if cfg.vic.is_some() {
                return Err(Error::ArgumentInvalid);
            }
            vic.attach_vcpu(&t, a[2])?;
            cfg.vic = Some((vic.clone(), index));
            Ok(())
        })
    })())
}

/// `vcpu_set_priority` (X0 thread with PRIORITY, X1 priority 0..=63) and `vcpu_set_timeslice`
/// (X0 thread with TIMESLICE, X1 ns, 100 µs to 100 ms): INIT only (`ObjectState` once active,
/// as in Gunyah), `ArgumentInvalid` out of range (`crate::sched`'s limits).
pub fn set_sched_param(c: &Caller, a: &[u64], right: ThreadRights) -> Reply {
    Reply::result((|| {
        let t = c.vcpu(a[0], right.bits())?;
        t.configure_with(|cfg| {
            if right == ThreadRights::PRIORITY {
                let p = u8::try_from(a[1]).map_err(|_| Error::ArgumentInvalid)?;
                cfg.priority = Some(crate::sched::check_priority(p)?);
            } else {
                cfg.timeslice_ns = Some(crate::sched::check_timeslice_ns(a[1])?);
            }
            Ok(())
        })
    })())
}

/// `vcpu_register_write`: X0 thread (WRITE_CONTEXT), X1 register set, X2 index, X3 value.
/// Before the VM exists the value is kept for the vCPU's power-on; after, `vm::lifecycle`
/// writes it (`Busy` while the vCPU is on).
pub fn register_write(c: &mut Caller, a: &[u64]) -> Reply {
    let r = (|| {
        let t = c.vcpu(a[0], ThreadRights::WRITE_CONTEXT.bits())?;
        let reg = BootReg::decode(a[1], a[2])?;
        if t.target().is_none() {
            t.config.lock().regs.set(reg, a[3]);
            return Ok(());
        }
        c.proxy = Some(ProxyRequest::RegisterWrite {
            vcpu: t,
            reg,
            value: a[3],
        });
        Ok(())
    })();
    Reply::result(r)
}

/// `vcpu_poweron`: X0 thread (POWER, active), X1 entry point, X2 context (the vCPU's X0), X3
/// flags ([`POWERON_FLAGS`]; others `ArgumentInvalid`).
pub fn poweron(c: &mut Caller, a: &[u64]) -> Reply {
    let r = (|| {
        let t = c.vcpu(a[0], ThreadRights::POWER.bits())?;
        if a[3] & !POWERON_FLAGS != 0 {
            return Err(Error::ArgumentInvalid);
        }
        if t.header.state() != ObjectState::Active {
            return Err(Error::ObjectState);
        }
        c.proxy = Some(ProxyRequest::PowerOn {
            vcpu: t,
            entry: a[1],
            context: a[2],
            flags: a[3],
        });
        Ok(())
    })();
    Reply::result(r)
}

/// `vcpu_poweroff`: X0 thread (POWER): only the calling vCPU itself (`vm::lifecycle` checks);
/// X1 flags ([`POWEROFF_FLAGS`]; others `ArgumentInvalid`). No return on success.
pub fn poweroff(c: &mut Caller, a: &[u64]) -> Reply {
    let r = (|| {
        let t = c.vcpu(a[0], ThreadRights::POWER.bits())?;
        if a[1] & !POWEROFF_FLAGS != 0 {
            return Err(Error::ArgumentInvalid);
        }
        c.proxy = Some(ProxyRequest::PowerOff {
            vcpu: t,
            flags: a[1],
        });
        Ok(())
    })();
    Reply::result(r)
}

/// `vcpu_kill`: X0 thread (LIFECYCLE, active).
pub fn kill(c: &mut Caller, a: &[u64]) -> Reply {
    let r = (|| {
        let t = c.vcpu(a[0], ThreadRights::LIFECYCLE.bits())?;
        if t.header.state() != ObjectState::Active {
            return Err(Error::ObjectState);
        }
        c.proxy = Some(ProxyRequest::Kill { vcpu: t });
        Ok(())
    })();
    Reply::result(r)
}

/// `vpm_group_configure`: X0 group (OBJECT_ACTIVATE, INIT), X1 flags.
pub fn vpm_configure(c: &Caller, a: &[u64]) -> Reply {
    Reply::result(
        c.vpm_group(a[0], OBJECT_ACTIVATE)
            .and_then(|g| g.configure(a[1])),
    )
}

/// `vpm_group_attach_vcpu`: X0 group (ATTACH_VCPU, active), X1 thread (INIT, in no group
/// yet: `ArgumentInvalid` otherwise), X2 index.
pub fn vpm_attach(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let g = c.vpm_group(a[0], VpmGroupRights::ATTACH_VCPU.bits())?;
        let t = thread(c, a[1])?;
        t.configure_with(|cfg| {
            if cfg.vpm.is_some() {
                return Err(Error::ArgumentInvalid);
            }
            g.attach(&t, a[2])?;
            cfg.vpm = Some(g.clone());
            Ok(())
        })
    })())
}

/// `vpm_group_bind_virq`: X0 group (BIND_VIRQ), X1 VIC (BIND_SOURCE), X2 vIRQ.
pub fn vpm_bind(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let g = c.vpm_group(a[0], VpmGroupRights::BIND_VIRQ.bits())?;
        let vic = c.vic(a[1], VicRights::BIND_SOURCE.bits())?;
        let virq = u32::try_from(a[2]).map_err(|_| Error::ArgumentInvalid)?;
        g.bind(&vic, virq)
    })())
}

/// `vpm_group_unbind_virq`: X0 group (BIND_VIRQ).
pub fn vpm_unbind(c: &Caller, a: &[u64]) -> Reply {
    Reply::result(
        c.vpm_group(a[0], VpmGroupRights::BIND_VIRQ.bits())
            .and_then(|g| g.unbind()),
    )
}

/// `vpm_group_get_state`: X0 group (QUERY) → X1 the state, computed by `vm::vpm` from its
/// members' power.
pub fn vpm_get_state(c: &mut Caller, a: &[u64]) -> Reply {
    match c.vpm_group(a[0], VpmGroupRights::QUERY.bits()) {
        Ok(group) => {
            c.proxy = Some(ProxyRequest::VpmState { group });
            Reply::new(&[0, 0])
        }
        Err(e) => Reply::new(&[e.to_register(), 0]),
    }
}

/// `hwirq_bind_virq`: X0 hwirq (BIND_VIC), X1 VIC (BIND_SOURCE), X2 vIRQ, X3 res0.
pub fn hwirq_bind(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let h = c.hwirq(a[0], HwirqRights::BIND_VIC.bits())?;
        let vic = c.vic(a[1], VicRights::BIND_SOURCE.bits())?;
        let virq = u32::try_from(a[2]).map_err(|_| Error::ArgumentInvalid)?;
        h.bind(&vic, virq)
    })())
}

/// `hwirq_unbind_virq`: X0 hwirq (BIND_VIC), X1 res0.
pub fn hwirq_unbind(c: &Caller, a: &[u64]) -> Reply {
    Reply::result(
        c.hwirq(a[0], HwirqRights::BIND_VIC.bits())
            .and_then(|h| h.unbind()),
    )
}

/// `WURLEY_VM_SET_NAME` (SMCCC `0xC600_0100`): X1 address space (MAP), X2 guest VA of the name,
/// X3 its length, X4 flags (bit 0: the VM takes console input first; bit 1: several VMs share
/// the console from now on). Checked in this order: the cap; other flags `ArgumentInvalid`; a length outside 1..=29 `ArgumentSize`;
/// a buffer that cannot be read `AddrInvalid` (`AddrOverflow` if it wraps); a byte outside
/// `A-Z a-z 0-9 , . _ + -` `ArgumentInvalid`. The name is kept on the address space for the VM
/// built on it; `vm::proxy` renames a VM that runs on it already ([`ProxyRequest::SetName`]).
pub fn vm_set_name(c: &mut Caller, a: &[u64; 4]) -> Reply {
    use wurley_abi::vendor::{
        VM_NAME_CONSOLE_FOCUS, VM_NAME_CONSOLE_SHARED, VM_NAME_MAX, is_valid_vm_name,
    };
    let r = (|| {
        let space = c.addrspace(a[0], AddrspaceRights::MAP.bits())?;
        if a[3] & !(VM_NAME_CONSOLE_FOCUS | VM_NAME_CONSOLE_SHARED) != 0 {
            return Err(Error::ArgumentInvalid);
        }
        let len = usize::try_from(a[2]).map_err(|_| Error::ArgumentSize)?;
        if !(1..=VM_NAME_MAX).contains(&len) {
            return Err(Error::ArgumentSize);
        }
        let mut buf = [0u8; VM_NAME_MAX];
        let name = buf.get_mut(..len).ok_or(Error::ArgumentSize)?;
        c.mem.read(a[1], name)?;
        if !is_valid_vm_name(name) {
            return Err(Error::ArgumentInvalid);
        }
        // Only the characters checked above: always UTF-8.
        let name = core::str::from_utf8(name).map_err(|_| Error::ArgumentInvalid)?;
        let focus = a[3] & VM_NAME_CONSOLE_FOCUS != 0;
        space.set_vm_name(name, focus)?;
        c.proxy = Some(ProxyRequest::SetName {
            space,
            shared: a[3] & VM_NAME_CONSOLE_SHARED != 0,
        });
        Ok(())
    })();
    Reply::result(r)
}

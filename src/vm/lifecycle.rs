//! The vCPU lifecycle calls once checked by `hypercall::thread`: `vcpu_poweron`,
//! `vcpu_poweroff`, `vcpu_kill` and `vcpu_register_write` of a vCPU whose VM exists.
//!
//! - power-on builds the VM at the first power-on of any of its vCPUs (`vm::assemble`), then
//!   starts the vCPU at the entry point with X0 = the context, EL1h, MMU off, with the
//!   registers written before (`vcpu_register_write`); `Busy` if it is on already, `ObjectState`
//!   if it was killed or its VM ended;
//! - power-off is only for the calling vCPU itself (`ArgumentInvalid` for another one): it
//!   stops as after PSCI CPU_OFF and does not return;
//! - kill stops a vCPU for good, wherever it is: it leaves its CPU at its next exit, its HALT
//!   vIRQ is raised, and once every vCPU of a VM made by hypercalls is killed the VM ends (and
//!   is retired, freeing its hold on its objects, when none of its vCPUs is on a CPU);
//! - a register write needs the vCPU off (`Busy` otherwise).

use core::sync::atomic::Ordering;
use wurley_abi::Error;
use wurley_abi::vcpu_run::VcpuVirqType;

use crate::arch::aarch64::guest::GuestRegs;
use crate::hypercall::ProxyRequest;
use crate::object::vcpu::{BootReg, VcpuObject};

use super::machine::{self, BootState, EndReason, Power, Vm};

/// `vcpu_poweron_flags` bit 0: keep the entry point written before.
const PRESERVE_ENTRY: u64 = 1 << 0;
/// `vcpu_poweron_flags` bit 1: keep the X0 written before.
const PRESERVE_CONTEXT: u64 = 1 << 1;

/// `vcpu_poweroff_flags` bit 0: the caller is the last vCPU of its VPM group that is on.
const LAST_VCPU: u64 = 1 << 0;

/// What the calling vCPU does after a lifecycle call.
pub enum After {
    /// Return to it with `X0` = the result.
    Return(Result<(), Error>),
    /// It powered itself off.
    PoweredOff,
}

/// Carry out a checked lifecycle `request` of vCPU `caller` of `vm`.
pub fn call(vm: &Vm, caller: usize, request: ProxyRequest) -> After {
    match request {
        ProxyRequest::PowerOn {
            vcpu,
            entry,
            context,
            flags,
        } => After::Return(power_on(&vcpu, entry, context, flags)),
        ProxyRequest::PowerOff { vcpu, flags } => power_off(vm, caller, &vcpu, flags),
        ProxyRequest::Kill { vcpu } => After::Return(kill(&vcpu)),
        ProxyRequest::RegisterWrite { vcpu, reg, value } => {
            After::Return(register_write(&vcpu, reg, value))
        }
        _ => After::Return(Err(Error::Unimplemented)),
    }
}

/// Write the reply of a lifecycle call into `regs`; whether the caller powered itself off.
pub fn finish(after: After, regs: &mut GuestRegs) -> bool {
    match after {
        After::Return(r) => {
            regs.x[0] = wurley_abi::error::to_register(&r);
            false
        }
        After::PoweredOff => true,
    }
}

fn power_on(
    object: &alloc::sync::Arc<VcpuObject>,
    entry: u64,
    ctx: u64,
    flags: u64,
) -> Result<(), Error> {
    let (vm, index) = super::assemble::vm_of(object)?;
    let slot = vm.vcpus.get(index).ok_or(Error::ObjectState)?;
    if vm.has_ended() || slot.killed.load(Ordering::Acquire) {
        return Err(Error::ObjectState);
    }
    if slot.power() != Power::Off {
        return Err(Error::Busy);
    }
    let regs = object.config.lock().regs;
    let pc = if flags & PRESERVE_ENTRY != 0 {
        regs.pc.unwrap_or(entry)
    } else {
        entry
    };
    let x0 = if flags & PRESERVE_CONTEXT != 0 {
        regs.x[0]
    } else {
        ctx
    };
    *slot.boot.lock() = BootState {
        pc,
        x0,
        regs: Some(regs),
    };
    if !slot.transition(Power::Off, Power::OnPending) {
        return Err(Error::Busy);
    }
    log::debug!("VM {}: vCPU {index} powered on at {pc:#x}", vm.name);
    super::sched::make_runnable(slot);
    Ok(())
}

fn power_off(vm: &Vm, caller: usize, object: &VcpuObject, flags: u64) -> After {
    let Some(slot) = vm.vcpus.get(caller) else {
        return After::Return(Err(Error::ArgumentInvalid));
    };
    let target = machine::vcpu_of(object);
    if !target.is_some_and(|(v, i)| core::ptr::eq(v, vm) && i == slot.index) {
        return After::Return(Err(Error::ArgumentInvalid));
    }
    // last_vcpu must say whether it is the last vCPU of its VPM group that is on.
    if slot.vpm.get().is_some() && (flags & LAST_VCPU != 0) != super::vpm::is_last_on(slot) {
        return After::Return(Err(Error::Denied));
    }
    After::PoweredOff
}

fn kill(object: &VcpuObject) -> Result<(), Error> {
    if object.target().is_none() {
        // Never powered on: it can never run now.
        object.config.lock().killed = true;
        object.raise(VcpuVirqType::Halt);
        return Ok(());
    }
    // Its VM retired: nothing left to kill (and another VM may have its slot).
    let (vm, slot) = machine::vcpu_slot_of(object).ok_or(Error::ObjectState)?;
    if slot.killed.swap(true, Ordering::AcqRel) {
        return Ok(());
    }
    slot.set_power(Power::Off);
    // Blocked in WFI: it stays off its CPU for good (waking it would only queue it to stop).
    // Queued or running: it stops when it is next picked or at its next exit.
    if !slot.blocked.swap(false, Ordering::AcqRel) {
        super::machine::kick(slot);
    }
    object.raise(VcpuVirqType::Halt);
    log::debug!("VM {}: vCPU {} killed", vm.name, slot.index);
    if vm.vcpus.iter().all(|s| s.killed.load(Ordering::Acquire)) {
        vm.end(EndReason::Killed);
    }
    Ok(())
}

fn register_write(object: &VcpuObject, reg: BootReg, value: u64) -> Result<(), Error> {
    let (vm, slot) = machine::vcpu_slot_of(object).ok_or(Error::ObjectState)?;
    if vm.has_ended() || slot.killed.load(Ordering::Acquire) {
        // It can never run again.
        return Err(Error::ObjectState);
    }
    if slot.power() != Power::Off {
        return Err(Error::Busy);
    }
    object.config.lock().regs.set(reg, value);
    Ok(())
}

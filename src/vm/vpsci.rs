//! PSCI 1.1 and the SMCCC architecture calls, as a guest sees them (conduit HVC, or SMC trapped
//! by HCR_EL2.TSC). Nothing is forwarded to firmware: CPU_ON starts one of the VM's own vCPUs,
//! SYSTEM_OFF/RESET end the VM.

use wurley_abi::psci::{self, AffinityState, PsciCall, PsciReturn};
use wurley_abi::smccc;

use super::machine::{BootState, EndReason, Power, Vm};

/// What the calling vCPU does after the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Return to the guest with these values in x0 (and x1..x3 unchanged unless given).
    Return(u64),
    /// The calling vCPU powers off (CPU_OFF).
    CpuOff,
    /// The VM has ended (SYSTEM_OFF / SYSTEM_RESET).
    VmEnded,
    /// CPU_SUSPEND: x0 = SUCCESS, then wait like WFI (every power state is treated as standby,
    /// which PSCI allows: a wake-up returns from the call).
    Suspend,
}

fn ret(r: PsciReturn) -> Outcome {
    Outcome::Return(r.to_register())
}

/// Handle function `fid` with arguments `args` (x1..x3) from vCPU `caller` of `vm`, or `None`
/// if `fid` is neither PSCI nor an SMCCC architecture call.
pub fn call(vm: &Vm, caller: usize, fid: u32, args: [u64; 3]) -> Option<Outcome> {
    match fid {
        smccc::SMCCC_VERSION => return Some(Outcome::Return(u64::from(smccc::SMCCC_VERSION_1_3))),
        smccc::ARCH_FEATURES => {
            let supported = matches!(args[0] as u32, smccc::SMCCC_VERSION | smccc::ARCH_FEATURES);
            let r = if supported {
                smccc::SUCCESS
            } else {
                smccc::NOT_SUPPORTED
            };
            return Some(Outcome::Return(r as i64 as u64));
        }
        _ => {}
    }
    let call = PsciCall::from_function_id(fid);
    if let PsciCall::Unknown(_) = call {
        return None;
    }
    Some(match call {
        PsciCall::Version => Outcome::Return(u64::from(psci::PSCI_VERSION_1_1)),
        PsciCall::Features => features(args[0] as u32),
        PsciCall::CpuOn(_) => cpu_on(vm, args[0], args[1], args[2]),
        PsciCall::CpuOff => Outcome::CpuOff,
        // Any suspend state is honoured as a standby: return at once, the guest then waits for
        // its wake-up interrupt (PSCI allows returning from a power-down request early).
        PsciCall::CpuSuspend(_) | PsciCall::CpuDefaultSuspend(_) => Outcome::Suspend,
        PsciCall::AffinityInfo(_) => affinity_info(vm, args[0], args[1]),
        PsciCall::MigrateInfoType => Outcome::Return(2), // no trusted OS needing migration
        PsciCall::SystemOff => {
            log::info!("VM {}: vCPU {caller} called SYSTEM_OFF", vm.name);
            vm.end(EndReason::PowerOff);
            Outcome::VmEnded
        }
        PsciCall::SystemReset | PsciCall::SystemReset2(_) => {
            log::info!("VM {}: vCPU {caller} called SYSTEM_RESET", vm.name);
            vm.end(EndReason::Reset);
            Outcome::VmEnded
        }
        _ => ret(PsciReturn::NotSupported),
    })
}

fn features(fid: u32) -> Outcome {
    match PsciCall::from_function_id(fid) {
        PsciCall::Version
        | PsciCall::Features
        | PsciCall::CpuOn(_)
        | PsciCall::CpuOff
        | PsciCall::CpuSuspend(_)
        | PsciCall::CpuDefaultSuspend(_)
        | PsciCall::AffinityInfo(_)
        | PsciCall::MigrateInfoType
        | PsciCall::SystemOff
        | PsciCall::SystemReset
        | PsciCall::SystemReset2(_) => ret(PsciReturn::Success),
        _ if fid == smccc::SMCCC_VERSION => ret(PsciReturn::Success),
        _ => ret(PsciReturn::NotSupported),
    }
}

fn cpu_on(vm: &Vm, target: u64, entry: u64, context: u64) -> Outcome {
    let Some(vcpu) = vm.vcpu_by_mpidr(target) else {
        log::debug!("VM {}: CPU_ON for unknown MPIDR {target:#x}", vm.name);
        return ret(PsciReturn::InvalidParameters);
    };
    if !entry.is_multiple_of(4) {
        return ret(PsciReturn::InvalidAddress);
    }
    if vcpu.killed.load(core::sync::atomic::Ordering::Acquire) {
        return ret(PsciReturn::Denied);
    }
    *vcpu.boot.lock() = BootState {
        pc: entry,
        x0: context,
        regs: None,
    };
    if vcpu.transition(Power::Off, Power::OnPending) {
        super::sched::make_runnable(vcpu);
        return ret(PsciReturn::Success);
    }
    match vcpu.power() {
        Power::OnPending => ret(PsciReturn::OnPending),
        _ => ret(PsciReturn::AlreadyOn),
    }
}

fn affinity_info(vm: &Vm, target: u64, level: u64) -> Outcome {
    if level != 0 {
        return ret(PsciReturn::InvalidParameters);
    }
    let Some(vcpu) = vm.vcpu_by_mpidr(target) else {
        return ret(PsciReturn::InvalidParameters);
    };
    let state = match vcpu.power() {
        Power::On => AffinityState::On,
        Power::OnPending => AffinityState::OnPending,
        Power::Off => AffinityState::Off,
    };
    Outcome::Return(state.to_register())
}

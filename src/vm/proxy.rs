//! Proxy scheduling: a vCPU the scheduler never queues, run by its owner VM with `vcpu_run`
//! on the owner's physical CPU and time (Gunyah's `vcpu_run`, §2.10 of the reference).
//!
//! [`call`] does what `hypercall::vcpu` checked: it takes the vCPU (`Busy` if it is not the
//! caller's to run or runs already), completes the VMMIO access it stopped on with the resume
//! data, saves the caller's vCPU off the CPU, loads the proxied one, runs it with the ordinary
//! trap loop (`vcpu::trap_loop`) until it cannot go on or the caller's vCPU needs the CPU,
//! and puts the caller back with the run state in X1..X4.
//!
//! The vCPU's state between runs: its context in its slot as for any vCPU, a pending VMMIO
//! access here, `blocked` (in WFI: EXPECTS_WAKEUP until woken) and its power state. Waking a
//! blocked or powered-on vCPU asserts its VCPU_RUN_WAKEUP vIRQ in the owner's VIC
//! ([`ProxySlot::runnable`]); halting (power off, VM ended) asserts its HALT vIRQ if bound.
//!
//! Locks: `pending` and `reset` are leaves; the slot's `context` lock is only held to take
//! or put the context, as in `vm::vcpu`.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};
use spin::Mutex;
use wurley_abi::Error;
use wurley_abi::psci::PsciCall;
use wurley_abi::vcpu_run::{
    POWERED_OFF_EXITED, RESET_PLAIN, RESET2_SMC64, RunState, VcpuVirqType, WakeupFrom,
};

use crate::arch::aarch64::guest::GuestRegs;
use crate::arch::aarch64::percpu;
use crate::hypercall::ProxyRequest;
use crate::object::vcpu::{ANY_OWNER, VcpuObject};

use super::exit::{Next, VmmioAccess};
use super::machine::{self, EndReason, Power, Vm};
use super::sched;
use super::vcpu::{self, HwContext};

const NO_CPU: usize = usize::MAX;

/// The proxy-scheduling state of one vCPU.
pub struct ProxySlot {
    /// The object its owner's cap names (holds its vIRQ sources).
    pub object: Arc<VcpuObject>,
    /// The CPU running it inside a `vcpu_run`, [`NO_CPU`] otherwise.
    cpu: AtomicUsize,
    /// The VMMIO access it stopped on, waiting for the owner's resume data.
    pending: Mutex<Option<VmmioAccess>>,
    /// PSCI_SYSTEM_RESET data 0 and 1 when it reset its VM.
    reset: Mutex<(u64, u64)>,
}

impl core::fmt::Debug for ProxySlot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ProxySlot(cpu {:?})", self.cpu())
    }
}

impl ProxySlot {
    /// The state of a vCPU named by `object`.
    pub fn new(object: Arc<VcpuObject>) -> Self {
        Self {
            object,
            cpu: AtomicUsize::new(NO_CPU),
            pending: Mutex::new(None),
            reset: Mutex::new((RESET_PLAIN, 0)),
        }
    }

    /// The CPU running it now, if any.
    pub fn cpu(&self) -> Option<usize> {
        let c = self.cpu.load(Ordering::Acquire);
        (c != NO_CPU).then_some(c)
    }

    /// The vCPU can run (woken from WFI, powered on): tell its owner.
    pub fn runnable(&self) {
        self.object.raise(VcpuVirqType::VcpuRunWakeup);
    }
}

/// Whether an access of vCPU `vcpu` of `vm` to `ipa` (neither RAM nor an emulated device) goes
/// to its owner: the vCPU is proxy-scheduled and `ipa` is in one of the VM's VMMIO ranges.
pub fn is_vmmio(vm: &Vm, vcpu: usize, ipa: u64) -> bool {
    vm.vcpus.get(vcpu).is_some_and(|s| s.proxy.get().is_some())
        && vm.space().is_some_and(|a| a.vmmio_contains(ipa))
}

/// Whether a stage-2 fault of vCPU `vcpu` of `vm` at `ipa` goes to its owner as
/// ADDRSPACE_PAGE_FAULT: the vCPU is proxy-scheduled and `ipa` is a hole of its address space
/// (inside an extent's mapping of RAM, a page the extent does not own: demand paging).
pub fn is_page_fault(vm: &Vm, vcpu: usize, ipa: u64) -> bool {
    vm.vcpus.get(vcpu).is_some_and(|s| s.proxy.get().is_some())
        && vm.space().is_some_and(|a| a.is_hole(ipa))
}

/// Vcpu `vcpu` of `vm` called PSCI `fid` (`x1`, `x2` its first arguments) and its VM ended:
/// if that was a reset of a proxy-scheduled vCPU, keep its PSCI_SYSTEM_RESET data.
pub fn note_reset(vm: &Vm, vcpu: usize, fid: u32, x1: u64, x2: u64) {
    let Some(p) = vm.vcpus.get(vcpu).and_then(|s| s.proxy.get()) else {
        return;
    };
    let data = match PsciCall::from_function_id(fid) {
        PsciCall::SystemReset => (RESET_PLAIN, 0),
        PsciCall::SystemReset2(c) => {
            let smc64 = if c == wurley_abi::CallingConvention::Smc64 {
                RESET2_SMC64
            } else {
                0
            };
            ((x1 & 0xffff_ffff) | smc64, x2)
        }
        _ => return,
    };
    *p.reset.lock() = data;
}

/// What `vcpu_run` / `vcpu_run_check` return: state and its three data words.
type Outcome = (RunState, [u64; 3]);

/// Do a checked request of vCPU `caller` of `vm`, writing the reply into `regs`; whether the
/// vCPU powered itself off (else it resumes). The lifecycle requests go to `vm::lifecycle`.
/// (A `bool`, not a [`Next`]: a large return value costs a byte-wise copy on every hypercall.)
pub fn call(vm: &Vm, caller: usize, regs: &mut GuestRegs, request: ProxyRequest) -> bool {
    let r = match request {
        ProxyRequest::Run { vcpu, resume } => run(vm, caller, &vcpu, resume),
        ProxyRequest::Check { vcpu } => check(&vcpu),
        ProxyRequest::YieldTo { vcpu } => {
            // X0 is already OK; the yield itself follows the call (`vm::exit`).
            if let Some((_, slot)) = machine::vcpu_slot_of(&vcpu) {
                super::sched::yield_to(slot);
            }
            return false;
        }
        request @ (ProxyRequest::PowerOn { .. }
        | ProxyRequest::PowerOff { .. }
        | ProxyRequest::Kill { .. }
        | ProxyRequest::RegisterWrite { .. }) => {
            let after = super::lifecycle::call(vm, caller, request);
            return super::lifecycle::finish(after, regs);
        }
        ProxyRequest::VpmState { group } => {
            regs.x[1] = super::vpm::state(&group) as u64;
            return false;
        }
        ProxyRequest::SetName { space, shared } => {
            if shared {
                machine::share_console();
            }
            rename(&space);
            return false;
        }
        ProxyRequest::SetAffinity { vcpu, cpu } => {
            // One output: X0.
            let r = set_affinity(&vcpu, cpu);
            regs.x[0] = r.err().map_or(0, Error::to_register);
            return false;
        }
    };
    let values = match r {
        Ok((state, [d0, d1, d2])) => [0, state.raw(), d0, d1, d2],
        Err(e) => [e.to_register(), 0, 0, 0, 0],
    };
    for (dst, src) in regs.x.iter_mut().zip(values) {
        *dst = src;
    }
    false
}

/// `WURLEY_VM_SET_NAME` named the VM on `space`: if that VM runs already, it takes the name
/// (and the console focus, if asked); otherwise `vm::assemble` applies it when it builds the VM.
fn rename(space: &Arc<crate::object::addrspace::AddrSpaceObject>) {
    let Some((name, focus)) = space.vm_name() else {
        return;
    };
    let live = (0..machine::slots()).find_map(|i| {
        let vm = machine::get(i)?;
        let on = vm.space().is_some_and(|s| Arc::ptr_eq(&s, space));
        (on && !vm.has_ended()).then_some((i, vm))
    });
    let Some((slot, vm)) = live else { return };
    log::info!("VM {}: now named {name}", vm.name);
    vm.name.set(name);
    if focus {
        super::console::set_focus(slot);
    }
}

/// `vcpu_set_affinity`: move the vCPU `object` names to physical CPU `cpu`; a thread still in
/// INIT just records it (`ArgumentInvalid` for a CPU the machine does not have).
fn set_affinity(object: &VcpuObject, cpu: usize) -> Result<(), Error> {
    if object.header.state() == crate::object::ObjectState::Init {
        if cpu >= super::sched::cpu_count() {
            return Err(Error::ArgumentInvalid);
        }
        return object.configure_with(|c| {
            c.affinity = Some(cpu);
            Ok(())
        });
    }
    let (vm, slot) = machine::vcpu_slot_of(object).ok_or(Error::ObjectState)?;
    if vm.has_ended() {
        return Err(Error::ObjectState);
    }
    super::sched::set_affinity(slot, cpu)?;
    log::info!("VM {}: vCPU {} now on CPU {cpu}", vm.name, slot.index);
    Ok(())
}

/// Where the proxied vCPU `object` names lives, if `vm` may run it: a proxy-scheduled vCPU
/// ([`ANY_OWNER`]: the cap's rights are the authority), not one the scheduler runs (`Busy`).
/// `ObjectState` once its VM was retired.
fn target(vm: &Vm, object: &VcpuObject) -> Result<(&'static Vm, usize), Error> {
    let t = object.target().ok_or(Error::ObjectState)?;
    let mine = vm.vcpus.first().map(|s| s.vm_index());
    if t.owner != ANY_OWNER && mine != Some(t.owner) {
        return Err(Error::Busy);
    }
    machine::vcpu_of(object).ok_or(Error::ObjectState)
}

/// The state a retired VM left the vCPU `object` names in, if its VM was retired.
fn retired_state(object: &VcpuObject) -> Option<Outcome> {
    if machine::vcpu_of(object).is_some() {
        return None;
    }
    object
        .final_state()
        .and_then(|(s, d)| RunState::from_raw(s).map(|s| (s, d)))
}

/// The state of a vCPU that will not run again until something changes, if it is in one.
pub(super) fn halted_state(vm: &Vm, index: usize) -> Option<Outcome> {
    let slot = vm.vcpus.get(index)?;
    if vm.has_ended() {
        return Some(match vm.end_reason() {
            Some(EndReason::Reset) => {
                let (kind, cookie) = slot
                    .proxy
                    .get()
                    .map_or((RESET_PLAIN, 0), |p| *p.reset.lock());
                (RunState::PsciSystemReset, [kind, cookie, 0])
            }
            Some(EndReason::Crashed) => (RunState::Fault, [0; 3]),
            _ => (RunState::PoweredOff, [POWERED_OFF_EXITED, 0, 0]),
        });
    }
    (slot.power() == Power::Off).then_some((RunState::PoweredOff, [0; 3]))
}

/// `vcpu_run_check`: the state of a halted vCPU; `Busy` while it has not halted. The cap's
/// rights are the authority: any holder may ask.
fn check(object: &VcpuObject) -> Result<Outcome, Error> {
    match machine::vcpu_of(object) {
        Some((vm, index)) => halted_state(vm, index).ok_or(Error::Busy),
        // Its VM was retired: the state it ended in.
        None => retired_state(object).ok_or(Error::ObjectState),
    }
}

/// Holds a proxied vCPU's `place` at RUNNING; gives it back when dropped.
struct Claim<'a>(&'a super::machine::VcpuSlot);

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.0.place.store(sched::IDLE, Ordering::Release);
    }
}

/// `vcpu_run` of `object` by vCPU `caller` of `vm`.
fn run(vm: &Vm, caller: usize, object: &VcpuObject, resume: [u64; 3]) -> Result<Outcome, Error> {
    let owner = vm.vcpus.get(caller).ok_or(Error::Busy)?;
    // A proxy-scheduled vCPU never runs another.
    if owner.proxy.get().is_some() {
        return Err(Error::Busy);
    }
    // Its VM ended and was retired: it stays in the state it ended in.
    if let Some(state) = retired_state(object) {
        return Ok(state);
    }
    let (tvm, index) = target(vm, object)?;
    let slot = tvm.vcpus.get(index).ok_or(Error::ObjectState)?;
    let proxy = slot.proxy.get().ok_or(Error::Busy)?;
    let me = percpu::current().map(|c| c.index).ok_or(Error::Busy)?;
    if slot
        .place
        .compare_exchange(
            sched::IDLE,
            sched::RUNNING,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_err()
    {
        return Err(Error::Busy);
    }
    let claim = Claim(slot);
    let outcome = run_claimed(vm, caller, owner, tvm, index, proxy, me, resume);
    drop(claim);
    // A VM that ended while this ran is retired now that its vCPU is off the CPU.
    if tvm.has_ended() {
        machine::retire(tvm);
    }
    Ok(outcome)
}

/// The body of [`run`] once the vCPU is claimed (its `place` is RUNNING).
#[allow(clippy::too_many_arguments)]
fn run_claimed(
    vm: &Vm,
    caller: usize,
    owner: &super::machine::VcpuSlot,
    tvm: &'static Vm,
    index: usize,
    proxy: &ProxySlot,
    me: usize,
    resume: [u64; 3],
) -> Outcome {
    let Some(slot) = tvm.vcpus.get(index) else {
        return (RunState::Fault, [0; 3]);
    };
    if let Some(state) = halted_state(tvm, index) {
        return state;
    }
    if slot.blocked.load(Ordering::Acquire) {
        return expects_wakeup();
    }
    let mut v = vcpu::take_context(tvm, slot);
    if let Some(access) = proxy.pending.lock().take() {
        access.complete(&mut v.regs, resume[0]);
    }

    // The caller leaves the CPU for the time of the run; its timer still counts.
    let mut saved = HwContext::empty();
    saved.unload(vm, caller);
    let deadline = saved.timer_deadline();
    if let Some(d) = deadline {
        crate::irq::wake_by(d);
    }
    proxy.cpu.store(me, Ordering::Release);
    v.hw.load(tvm, slot, true);
    let next = vcpu::trap_loop(tvm, index, &mut v, &mut || {
        caller_wants_cpu(vm, caller, me, deadline)
    });
    v.hw.unload(tvm, index);
    proxy.cpu.store(NO_CPU, Ordering::Release);
    saved.load(vm, owner, sched::shared(me));

    let outcome = match next {
        Next::Resume | Next::Preempted | Next::Yielded => (RunState::Ready, [0; 3]),
        Next::Blocked => expects_wakeup(),
        Next::Vmmio(access) => {
            *proxy.pending.lock() = Some(access);
            let size = u64::from(access.abort.size);
            if access.abort.write {
                (RunState::VmmioWrite, [access.ipa, size, access.value])
            } else {
                (RunState::VmmioRead, [access.ipa, size, 0])
            }
        }
        Next::PageFault { ipa, write } => (RunState::PageFault, [ipa, u64::from(write), 0]),
        Next::CpuOff => {
            slot.set_power(Power::Off);
            log::debug!("VM {}: vCPU {index} powered off", tvm.name);
            (RunState::PoweredOff, [0; 3])
        }
        Next::Ended => halted_state(tvm, index).unwrap_or((RunState::Fault, [0; 3])),
    };
    match next {
        Next::CpuOff | Next::Ended => proxy.object.raise(VcpuVirqType::Halt),
        _ => *slot.context.lock() = Some(v),
    }
    outcome
}

fn expects_wakeup() -> Outcome {
    (RunState::ExpectsWakeup, [0, WakeupFrom::Wfi as u64, 0])
}

/// Whether the calling vCPU (`caller` of `vm`, on CPU `me`, its virtual timer due at
/// `deadline`) needs its CPU back: its VM stopped, an interrupt is pending for it, its timer
/// is due, or the scheduler wants the CPU for another vCPU.
fn caller_wants_cpu(vm: &Vm, caller: usize, me: usize, deadline: Option<u64>) -> bool {
    vm.has_ended()
        || deadline.is_some_and(|d| d <= crate::arch::aarch64::cpu::counter())
        || vm.vgic.lock().pending_for(caller)
        || sched::switch_pending(me)
}

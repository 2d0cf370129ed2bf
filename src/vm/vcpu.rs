//! Running vCPUs: each physical CPU runs the vCPUs its run queue gives it (`vm::sched`), and
//! sleeps when there are none.
//!
//! A vCPU's general registers live in [`GuestRegs`] on the stack of the physical CPU that runs
//! it; its EL1 system registers, FP/SIMD state, pointer-authentication keys and vGIC CPU
//! interface state are loaded when it starts running and saved into its slot's
//! [`VcpuContext`] when it leaves the CPU (blocked, preempted, powered off). Between exits they
//! stay in the hardware.

use crate::arch::aarch64::context::{El1Context, FpState, PauthKeys};
use crate::arch::aarch64::guest::{self, GuestRegs};
use crate::arch::aarch64::percpu::PerCpu;
use crate::arch::aarch64::vectors::VectorKind;
use crate::arch::aarch64::{cpu, ich, stage2, vcpu_hw};
use crate::vm::vgic::lr;

use alloc::boxed::Box;

use super::exit::{self, Next};
use super::machine::{self, EndReason, Power, VcpuSlot, Vm};
use super::sched::{self, Leave};

/// Guest PSTATE at power-on: EL1h with D, A, I and F masked.
const PSTATE_EL1H_MASKED: u64 = 0x3c5;

/// The physical CPU's loop: run what its run queue gives, sleep when it is empty.
pub fn cpu_loop(me: &'static PerCpu) -> ! {
    loop {
        cpu::disable_all_exceptions();
        if let Some((vm, index)) = sched::pick(me.index) {
            run(vm, index, me.index);
            continue;
        }
        // Sleep with interrupts masked (a pending interrupt still wakes WFI), then take them:
        // a kick or a timer may have queued a vCPU.
        cpu::wfi();
        cpu::enable_irqs();
    }
}

/// The part of a vCPU's context the hardware holds while it runs, besides its general
/// registers: EL1 system registers (with its virtual timer), FP/SIMD, pointer-authentication
/// keys and the vGIC CPU interface state.
pub struct HwContext {
    el1: El1Context,
    fp: FpState,
    pauth: PauthKeys,
    vmcr: u64,
    aprs: ([u64; 4], [u64; 4]),
}

impl HwContext {
    fn reset() -> Self {
        HwContext {
            el1: El1Context::reset(),
            fp: FpState::default(),
            pauth: PauthKeys::default(),
            vmcr: 0,
            aprs: ([0; 4], [0; 4]),
        }
    }

    /// Set SP_EL0 and SP_EL1 (a vCPU powered on with registers written before).
    fn set_stack_pointers(&mut self, sp: [u64; 2]) {
        self.el1.sp_el0 = sp[0];
        self.el1.sp_el1 = sp[1];
    }

    /// Load into the CPU for vCPU `slot` of `vm` (trapping WFI if `trap_wait`).
    pub fn load(&self, vm: &Vm, slot: &VcpuSlot, trap_wait: bool) {
        vcpu_hw::load_guest_controls(slot.mpidr, trap_wait);
        stage2::load(vm.vttbr);
        self.el1.restore();
        self.fp.restore();
        self.pauth.restore();
        ich::write_vmcr(self.vmcr);
        ich::write_aprs(&self.aprs.0, &self.aprs.1);
    }

    /// Save vCPU `index` of `vm` off the CPU: its state into `self`, its list registers
    /// cleared (the vGIC model holds their state since the last exit), its virtual timer
    /// stopped.
    pub fn unload(&mut self, vm: &Vm, index: usize) {
        self.vmcr = ich::read_vmcr();
        self.aprs = ich::read_aprs();
        ich::write_hcr(0);
        for n in 0..list_registers() {
            ich::write_lr(n, 0);
        }
        self.el1.save();
        self.fp.save();
        self.pauth.save();
        crate::arch::aarch64::timer::stop_virtual();
        release_virtual_timer(vm, index);
    }

    /// A vCPU being saved: the state of the one loaded now, to be filled by [`Self::unload`].
    pub fn empty() -> Self {
        Self::reset()
    }

    /// When its virtual timer fires (counter ticks), if armed and unmasked.
    pub fn timer_deadline(&self) -> Option<u64> {
        (self.el1.cntv_ctl_el0 & 0b11 == 0b01).then_some(self.el1.cntv_cval_el0)
    }
}

/// Everything of a vCPU that is not shared, kept in its slot while it does not run.
pub struct VcpuContext {
    /// General registers, PC and PSTATE.
    pub regs: GuestRegs,
    /// The rest.
    pub hw: HwContext,
}

impl core::fmt::Debug for VcpuContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "VcpuContext(pc {:#x})", self.regs.pc)
    }
}

impl VcpuContext {
    /// A vCPU at power-on: `pc`, `x0`, EL1h with interrupts masked, everything else reset.
    fn power_on(pc: u64, x0: u64) -> Box<Self> {
        let mut c = Box::new(VcpuContext {
            regs: GuestRegs {
                pc,
                pstate: PSTATE_EL1H_MASKED,
                ..GuestRegs::default()
            },
            hw: HwContext::reset(),
        });
        c.regs.x[0] = x0;
        c
    }
}

/// The context vCPU `slot` of `vm` runs with now: its saved one, or a fresh one at its boot
/// entry if it is being powered on. Marks it on.
pub fn take_context(vm: &Vm, slot: &VcpuSlot) -> Box<VcpuContext> {
    let saved = slot.context.lock().take();
    let v = match saved {
        Some(c) if slot.power() == Power::On => c,
        _ => {
            let boot = *slot.boot.lock();
            log::debug!(
                "VM {}: vCPU {} starting at {:#x}",
                vm.name,
                slot.index,
                boot.pc
            );
            let mut c = VcpuContext::power_on(boot.pc, boot.x0);
            if let Some(r) = boot.regs {
                c.regs.x[1..].copy_from_slice(&r.x[1..]);
                c.hw.set_stack_pointers(r.sp);
            }
            c
        }
    };
    slot.set_power(Power::On);
    v
}

fn list_registers() -> usize {
    ich::list_registers().min(16)
}

fn run(vm: &'static Vm, index: usize, me: usize) {
    let Some(slot) = vm.vcpus.get(index) else {
        return;
    };
    if vm.has_ended() || slot.power() == Power::Off {
        sched::put(me, slot, Leave::Stopped);
        machine::retire(vm);
        return;
    }
    let mut v = take_context(vm, slot);
    let shared = sched::shared(me);
    v.hw.load(vm, slot, shared);
    // Leave when the scheduler says so, when the vCPU was moved to another CPU, or when the
    // CPU became shared while it ran with WFI untrapped (a VM was made or a vCPU moved here):
    // it comes back with WFI trapped, or a lower priority vCPU would wait forever behind a
    // guest idling in WFI (and a killed one would never leave the queue to be retired).
    let next = trap_loop(vm, index, &mut v, &mut || {
        sched::should_switch(me) || slot.pcpu() != me || (!shared && sched::shared(me))
    });
    v.hw.unload(vm, index);
    vcpu_hw::load_host_controls();
    let leave = match next {
        Next::CpuOff => {
            slot.set_power(Power::Off);
            log::debug!("VM {}: vCPU {index} powered off", vm.name);
            Leave::Stopped
        }
        Next::Ended => Leave::Stopped,
        Next::Blocked => Leave::Blocked,
        // A VMMIO access only stops a proxy-scheduled vCPU, which never runs here.
        Next::Resume | Next::Preempted | Next::Vmmio(_) | Next::PageFault { .. } => {
            Leave::Preempted
        }
        Next::Yielded => Leave::Yielded,
    };
    if leave != Leave::Stopped {
        *slot.context.lock() = Some(v);
    }
    sched::put(me, slot, leave);
    if leave == Leave::Stopped && vm.has_ended() {
        machine::retire(vm);
    }
}

/// Run vCPU `index` of `vm`, loaded on this CPU, until it cannot go on or `give_way` (asked
/// after each exit the vCPU could resume from) says its CPU is wanted: then
/// [`Next::Preempted`]. The caller saves it.
pub fn trap_loop(
    vm: &Vm,
    index: usize,
    v: &mut VcpuContext,
    give_way: &mut dyn FnMut() -> bool,
) -> Next {
    let Some(slot) = vm.vcpus.get(index) else {
        return Next::Ended;
    };
    let nlr = list_registers();
    // Every flush rewrites lrs[..nlr] whole: zeroed once here, not at every entry.
    let mut lrs = [0u64; 16];
    // List registers that may hold something: all on the first entry (another vCPU ran
    // here), then those the last flush filled. Only they are written and read back.
    let mut live = nlr;
    loop {
        if vm.has_ended() {
            break Next::Ended;
        }
        if slot.power() == Power::Off {
            break Next::CpuOff;
        }
        let info = vm.vgic.lock().flush(index, &mut lrs[..nlr]);
        // The slots in use, and zeros over those the previous entry used beyond them.
        for (n, value) in lrs.iter().take(info.used.max(live)).enumerate() {
            ich::write_lr(n, *value);
        }
        live = info.used;
        let more = info.more_pending;
        ich::write_hcr(lr::ICH_HCR_EN | if more { lr::ICH_HCR_UIE } else { 0 });

        let exit = guest::enter(&mut v.regs);

        // The guest cannot make an empty list register valid: the others stay zero.
        for (n, value) in lrs.iter_mut().take(live).enumerate() {
            *value = ich::read_lr(n);
        }
        // With the virtual interface off, a list register the guest completed no longer holds
        // the maintenance interrupt asserted while the exit is handled; the next flush rewrites
        // everything.
        ich::write_hcr(0);
        vm.vgic.lock().sync(index, &lrs[..nlr]);

        let next = match exit.kind {
            VectorKind::Irq | VectorKind::Fiq => {
                crate::irq::handle_with_guest(Some((vm, index)));
                Next::Resume
            }
            VectorKind::Sync if !exit.aarch32 => exit::handle_sync(vm, index, &mut v.regs),
            VectorKind::Sync => {
                log::warn!(
                    "VM {}: vCPU {index} trapped from AArch32, which it cannot enter: stopping the VM",
                    vm.name
                );
                vm.end(EndReason::Crashed);
                Next::Ended
            }
            VectorKind::SError => {
                let (esr, _, _) = vcpu_hw::exit_syndrome();
                log::warn!(
                    "VM {}: SError from vCPU {index} (ESR {esr:#x}) at {:#x}: stopping the VM",
                    vm.name,
                    v.regs.pc
                );
                vm.end(EndReason::Crashed);
                Next::Ended
            }
        };
        if next != Next::Resume {
            break next;
        }
        if give_way() {
            break Next::Preempted;
        }
    }
}

/// The virtual timer's physical interrupt is left active while the guest handles the virtual
/// one (the list register's HW link deactivates it). If the vCPU leaves the CPU before that,
/// deactivate it here so the next vCPU's timer can fire; the guest's later deactivation of an
/// inactive interrupt has no effect.
fn release_virtual_timer(vm: &Vm, index: usize) {
    let busy = vm
        .vgic
        .lock()
        .irq(super::layout::VTIMER_INTID, index)
        .is_some_and(|irq| irq.active || irq.pending);
    if busy {
        crate::irq::deactivate_virtual_timer();
    }
}

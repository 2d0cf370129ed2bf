//! What happens when a guest traps to EL2 synchronously: hypercalls (Gunyah, PSCI/SMCCC), system
//! registers, MMIO to the emulated devices, and everything the guest may not do.
//!
//! The handlers decide; `vcpu::run` acts on the [`Next`] they return. Bad guest input gets the
//! architectural answer (an exception injected into the guest, or an error code), never a
//! hypervisor panic.

use core::sync::atomic::Ordering;

use crate::arch::aarch64::guest::GuestRegs;
use crate::arch::aarch64::{idregs, vcpu_hw};
use crate::arch::esr::Esr;
use crate::arch::trap::{
    self, DataAbort, ICC_ASGI1R_EL1, ICC_SGI0R_EL1, ICC_SGI1R_EL1, SysRegAccess, Trap,
};

use super::layout::{
    GICD_BASE, GICD_SIZE, GICR_BASE, GICR_STRIDE, UART_BASE, UART_SIZE, gicr_size,
};
use super::machine::{Vm, kick};
use super::mmio::{MmioAccess, MmioResult};
use super::vpsci::{self, Outcome};

/// Run a Gunyah hypercall for `vm` with `f` (the SMCCC or native entry), giving it the VM's
/// cspace and memory; writes the result registers. `None` if the call is not a Gunyah one.
fn gunyah_call(
    vm: &Vm,
    vcpu: usize,
    regs: &mut GuestRegs,
    f: impl FnOnce(&[u64], &mut crate::hypercall::Caller) -> Option<crate::hypercall::Reply>,
) -> Option<Next> {
    let mut mem = super::guest_access::CallerMemory::new(vm);
    let mut caller = crate::hypercall::Caller {
        cspace: vm.objects.get().map(|o| &o.cspace),
        mem: &mut mem,
        yield_cpu: false,
        proxy: None,
    };
    let reply = f(&regs.x, &mut caller)?;
    reply.apply(&mut regs.x);
    if let Some(request) = caller.proxy.take()
        && super::proxy::call(vm, vcpu, regs, request)
    {
        return Some(Next::CpuOff);
    }
    let yielded = caller.yield_cpu;
    Some(match vm.vcpus.get(vcpu) {
        Some(slot) if yielded && super::sched::others_waiting(slot) => Next::Yielded,
        _ => Next::Resume,
    })
}

/// What the vCPU does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Go back into the guest.
    Resume,
    /// The vCPU powered itself off.
    CpuOff,
    /// The VM ended.
    Ended,
    /// The vCPU blocked in WFI.
    Blocked,
    /// The scheduler takes the CPU from the vCPU (a higher priority waits, its slice ran out,
    /// it moved to another CPU).
    Preempted,
    /// The vCPU gives its CPU to another of its priority (WFE, `scheduler_yield`).
    Yielded,
    /// A proxy-scheduled vCPU accessed a VMMIO range: its proxy scheduler emulates the access
    /// (the PC stays on the instruction until it does).
    Vmmio(VmmioAccess),
    /// A proxy-scheduled vCPU touched a page of an extent's mapping that the extent does not
    /// own (demand paging): its proxy scheduler provides it; the instruction runs again.
    PageFault {
        /// The faulting guest-physical address.
        ipa: u64,
        /// A write (not for instruction fetches and stage-1 table walks).
        write: bool,
    },
}

/// A trapped access to a VMMIO range, waiting for its proxy scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmmioAccess {
    /// The guest-physical address.
    pub ipa: u64,
    /// The syndrome: size, register, direction, sign extension.
    pub abort: DataAbort,
    /// The value of a store.
    pub value: u64,
}

impl VmmioAccess {
    /// Complete the access in the vCPU's registers: a load gets `value` (extended as the
    /// instruction wants); both step past the instruction.
    pub fn complete(&self, regs: &mut GuestRegs, value: u64) {
        if !self.abort.write {
            set_reg(regs, self.abort.rt, trap::extend_load(value, &self.abort));
        }
        regs.pc += 4;
    }
}

/// Handle a synchronous exit of vCPU `vcpu`.
pub fn handle_sync(vm: &Vm, vcpu: usize, regs: &mut GuestRegs) -> Next {
    let (esr, far, hpfar) = vcpu_hw::exit_syndrome();
    match trap::decode(Esr(esr)) {
        // HVC leaves ELR after the instruction; a trapped SMC leaves it on the instruction.
        Trap::Hvc(imm) => {
            match gunyah_call(vm, vcpu, regs, |x, c| crate::hypercall::native(imm, x, c)) {
                Some(next) => next,
                None => smccc(vm, vcpu, regs, imm),
            }
        }
        Trap::Smc(imm) => {
            regs.pc += 4;
            smccc(vm, vcpu, regs, imm)
        }
        Trap::SysReg(access) => sysreg(vm, vcpu, regs, access),
        Trap::DataAbort(abort) => mmio(vm, vcpu, regs, abort, trap::fault_ipa(hpfar, far), far),
        Trap::InstructionAbort { .. }
            if super::proxy::is_page_fault(vm, vcpu, trap::fault_ipa(hpfar, far)) =>
        {
            Next::PageFault {
                ipa: trap::fault_ipa(hpfar, far),
                write: false,
            }
        }
        Trap::InstructionAbort { .. }
            if vm
                .space()
                .is_some_and(|s| s.allows(trap::fault_ipa(hpfar, far), false, true)) =>
        {
            // A mapping was being changed (break-before-make): it is back, retry.
            Next::Resume
        }
        Trap::InstructionAbort { fsc } => {
            log::debug!(
                "VM {}: instruction abort at {:#x} (FSC {fsc:#x})",
                vm.name,
                regs.pc
            );
            let esr = vcpu_hw::esr_instruction_abort(vcpu_hw::from_el0(regs.pstate));
            vcpu_hw::inject_sync(regs, esr, Some(far));
            Next::Resume
        }
        Trap::Wfx { wfe } => {
            regs.pc += 4;
            wait(vm, vcpu, wfe)
        }
        Trap::FeatureTrap { ec } | Trap::Other { ec } => {
            unknown_trap(vm, regs, ec);
            Next::Resume
        }
    }
}

/// A trapped WFI blocks the vCPU until an interrupt is pending for it or its virtual timer is
/// due; a trapped WFE gives the CPU to another vCPU of its priority, if one waits.
fn wait(vm: &Vm, vcpu: usize, wfe: bool) -> Next {
    let Some(slot) = vm.vcpus.get(vcpu) else {
        return Next::Resume;
    };
    if wfe {
        return if super::sched::others_waiting(slot) {
            Next::Yielded
        } else {
            Next::Resume
        };
    }
    let deadline = crate::arch::aarch64::timer::virtual_deadline();
    if super::sched::block(vm, slot, deadline) {
        if let Some(d) = deadline {
            crate::irq::wake_by(d);
        }
        Next::Blocked
    } else {
        Next::Resume
    }
}

fn unknown_trap(vm: &Vm, regs: &mut GuestRegs, ec: u8) {
    if !vm.reported_unknown_trap.swap(true, Ordering::Relaxed) {
        log::warn!(
            "VM {}: unhandled trap EC {ec:#04x} ({}) at {:#x}: injecting an undefined instruction (reported once per VM)",
            vm.name,
            crate::arch::esr::ec_name(ec),
            regs.pc
        );
    }
    vcpu_hw::inject_sync(regs, vcpu_hw::ESR_UNDEFINED, None);
}

fn smccc(vm: &Vm, vcpu: usize, regs: &mut GuestRegs, imm: u16) -> Next {
    if imm != 0 {
        // Only HVC #0 / SMC #0 are SMCCC calls; other immediates are not supported here.
        regs.x[0] = wurley_abi::smccc::UNKNOWN_FUNCTION64;
        return Next::Resume;
    }
    if let Some(next) = gunyah_call(vm, vcpu, regs, crate::hypercall::smccc) {
        return next;
    }
    let fid = regs.x[0] as u32;
    match vpsci::call(vm, vcpu, fid, [regs.x[1], regs.x[2], regs.x[3]]) {
        Some(Outcome::Return(x0)) => {
            regs.x[0] = x0;
            Next::Resume
        }
        Some(Outcome::CpuOff) => Next::CpuOff,
        Some(Outcome::Suspend) => {
            regs.x[0] = wurley_abi::psci::PsciReturn::Success.to_register();
            wait(vm, vcpu, false)
        }
        Some(Outcome::VmEnded) => {
            super::proxy::note_reset(vm, vcpu, fid, regs.x[1], regs.x[2]);
            Next::Ended
        }
        None => {
            log::debug!("VM {}: unknown SMCCC function {fid:#x}", vm.name);
            regs.x[0] = wurley_abi::smccc::UNKNOWN_FUNCTION64;
            Next::Resume
        }
    }
}

fn reg(regs: &GuestRegs, rt: u8) -> u64 {
    regs.x.get(usize::from(rt)).copied().unwrap_or(0)
}

fn set_reg(regs: &mut GuestRegs, rt: u8, value: u64) {
    if let Some(r) = regs.x.get_mut(usize::from(rt)) {
        *r = value;
    }
}

fn sysreg(vm: &Vm, vcpu: usize, regs: &mut GuestRegs, access: SysRegAccess) -> Next {
    let r = access.reg;
    if r.is_id_group3() && access.read {
        let value = super::features::sanitize(r, idregs::read(r.crm, r.op2));
        set_reg(regs, access.rt, value);
    } else if r == ICC_SGI1R_EL1 && !access.read {
        let targets = vm.vgic.lock().send_sgi(vcpu, reg(regs, access.rt));
        for t in targets {
            if let Some(v) = vm.vcpus.get(t) {
                kick(v);
            }
        }
    } else if (r == ICC_SGI0R_EL1 || r == ICC_ASGI1R_EL1) && !access.read {
        // Group 0 and other-security-state SGIs do not exist for a non-secure guest: ignored.
    } else {
        log::debug!(
            "VM {}: trapped {:?} {:?} at {:#x}",
            vm.name,
            if access.read { "read" } else { "write" },
            r,
            regs.pc
        );
        vcpu_hw::inject_sync(regs, vcpu_hw::ESR_UNDEFINED, None);
        return Next::Resume;
    }
    regs.pc += 4;
    Next::Resume
}

fn mmio(vm: &Vm, vcpu: usize, regs: &mut GuestRegs, abort: DataAbort, ipa: u64, far: u64) -> Next {
    let from_el0 = vcpu_hw::from_el0(regs.pstate);
    if (!abort.isv || abort.s1ptw)
        && vm
            .space()
            .is_some_and(|s| s.allows(ipa, abort.write, false))
    {
        // A mapping was being changed (break-before-make): it is back, retry.
        return Next::Resume;
    }
    if super::proxy::is_page_fault(vm, vcpu, ipa) {
        return Next::PageFault {
            ipa,
            write: abort.write && !abort.s1ptw,
        };
    }
    if !abort.isv || abort.s1ptw {
        log::debug!(
            "VM {}: data abort at IPA {ipa:#x} without a usable syndrome (pc {:#x})",
            vm.name,
            regs.pc
        );
        vcpu_hw::inject_sync(
            regs,
            vcpu_hw::esr_data_abort(from_el0, abort.write),
            Some(far),
        );
        return Next::Resume;
    }
    let value = if abort.write { reg(regs, abort.rt) } else { 0 };
    let access = |offset: u64| MmioAccess {
        offset,
        size: abort.size,
        write: abort.write.then_some(value),
    };
    let vcpus = vm.vcpus.len();
    let result = if (GICD_BASE..GICD_BASE + GICD_SIZE).contains(&ipa) {
        vm.vgic.lock().dist_access(access(ipa - GICD_BASE))
    } else if (GICR_BASE..GICR_BASE + gicr_size(vcpus)).contains(&ipa) {
        let off = ipa - GICR_BASE;
        vm.vgic
            .lock()
            .redist_access((off / GICR_STRIDE) as usize, access(off % GICR_STRIDE))
    } else if (UART_BASE..UART_BASE + UART_SIZE).contains(&ipa) {
        let (result, level) = {
            let mut uart = vm.uart.lock();
            let result = uart.access(access(ipa - UART_BASE), &mut |b| {
                super::console::output(vm, b)
            });
            (result, uart.irq_level())
        };
        super::irqs::set_uart_level(vm, level);
        result
    } else if super::proxy::is_vmmio(vm, vcpu, ipa) {
        return Next::Vmmio(VmmioAccess { ipa, abort, value });
    } else if vm
        .space()
        .is_some_and(|s| s.allows(ipa, abort.write, false))
    {
        // A mapping was being changed (break-before-make): it is back, retry.
        return Next::Resume;
    } else {
        log::debug!(
            "VM {}: access to unmapped IPA {ipa:#x} at pc {:#x}",
            vm.name,
            regs.pc
        );
        MmioResult::Fault
    };
    match result {
        MmioResult::Read(v) => set_reg(regs, abort.rt, trap::extend_load(v, &abort)),
        MmioResult::Written => {}
        MmioResult::Fault => {
            vcpu_hw::inject_sync(
                regs,
                vcpu_hw::esr_data_abort(from_el0, abort.write),
                Some(far),
            );
            return Next::Resume;
        }
    }
    regs.pc += 4;
    Next::Resume
}

//! The EL2 controls that hold while a vCPU is loaded on this CPU, the exit syndrome registers,
//! and exception injection into EL1.

use aarch64_cpu::registers::{ESR_EL2, FAR_EL2, HPFAR_EL2, MIDR_EL1, Readable};
use core::arch::asm;

use super::guest::GuestRegs;

/// HCR_EL2 while a guest runs: stage 2 on (VM), set/way invalidation upgraded (SWIO), FIQ, IRQ
/// and SError to EL2 (FMO/IMO/AMO), TLB and barrier broadcasts inner shareable (FB, BSU=IS),
/// ID registers trapped (TID3), SMC trapped (TSC), EL1 is AArch64 (RW), pointer-authentication
/// instructions and keys not trapped (APK/API). WFI/WFE are not trapped here: a vCPU alone on
/// its CPU sleeps the CPU with its own WFI until its next (physical or virtual) interrupt;
/// [`HCR_TWI`] and [`HCR_TWE`] are added when the CPU has other vCPUs to run.
pub const HCR_GUEST: u64 = (1 << 0)
    | (1 << 1)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 9)
    | (1 << 10)
    | (1 << 18)
    | (1 << 19)
    | (1 << 31)
    | (1 << 40)
    | (1 << 41);

/// HCR_EL2.TWI: trap WFI (the vCPU blocks and the CPU runs another).
pub const HCR_TWI: u64 = 1 << 13;
/// HCR_EL2.TWE: trap WFE (the vCPU yields).
pub const HCR_TWE: u64 = 1 << 14;

/// CPTR_EL2 while a guest runs: FP/SIMD allowed (TFP clear), SVE (TZ) and SME (TSM) trapped
/// because their state is not switched (and the ID registers hide them).
const CPTR_GUEST: u64 = 0x22ff | (1 << 8) | (1 << 12);

/// MDCR_EL2 while a guest runs: PMU (TPM, TPMCR) and statistical profiling (TPMS) trapped; the
/// guest sees no PMU. HPMN = 0.
const MDCR_GUEST: u64 = (1 << 5) | (1 << 6) | (1 << 14);

/// CNTHCTL_EL2 (nVHE): EL1 may read the physical counter (EL1PCTEN) but not use the physical
/// timer (EL1PCEN clear); the guest's timer is the virtual one.
const CNTHCTL_GUEST: u64 = 1 << 0;

/// Configure this CPU to run a guest vCPU whose MPIDR is `vmpidr` (affinity fields only);
/// `trap_wait` traps its WFI and WFE (the CPU has other vCPUs to run).
pub fn load_guest_controls(vmpidr: u64, trap_wait: bool) {
    let midr = MIDR_EL1.get();
    let hcr = if trap_wait {
        HCR_GUEST | HCR_TWI | HCR_TWE
    } else {
        HCR_GUEST
    };
    let vmpidr = vmpidr | (1 << 31);
    // SAFETY: these EL2 controls only take effect for EL1/EL0, where the guest runs next; they
    // confine it (stage 2, traps), they cannot give it access to EL2 state.
    unsafe {
        asm!(
            "msr vpidr_el2, {midr}",
            "msr vmpidr_el2, {vmpidr}",
            "msr cptr_el2, {cptr}",
            "msr mdcr_el2, {mdcr}",
            "msr cnthctl_el2, {cnthctl}",
            "msr cntvoff_el2, xzr",
            "msr hstr_el2, xzr",
            "msr hcr_el2, {hcr}",
            "isb",
            midr = in(reg) midr,
            vmpidr = in(reg) vmpidr,
            cptr = in(reg) CPTR_GUEST,
            mdcr = in(reg) MDCR_GUEST,
            cnthctl = in(reg) CNTHCTL_GUEST,
            hcr = in(reg) hcr,
            options(nostack)
        )
    };
}

/// Back to the hypervisor-only configuration (no stage 2, FP trapped at EL2).
pub fn load_host_controls() {
    super::cpu::route_interrupts_to_el2();
    super::cpu::trap_fp_at_el2();
}

/// ESR_EL2, FAR_EL2 and HPFAR_EL2 of the last exit.
pub fn exit_syndrome() -> (u64, u64, u64) {
    (ESR_EL2.get(), FAR_EL2.get(), HPFAR_EL2.get())
}

/// ESR value of an undefined-instruction exception (EC 0, IL 1).
pub const ESR_UNDEFINED: u64 = 1 << 25;

/// ESR value of a synchronous external abort on a data access taken from the guest's current
/// EL (EC 0x25 from EL1, 0x24 from EL0), IL 1, DFSC 0x10.
pub const fn esr_data_abort(from_el0: bool, write: bool) -> u64 {
    let ec: u64 = if from_el0 { 0x24 } else { 0x25 };
    (ec << 26) | (1 << 25) | ((write as u64) << 6) | 0x10
}

/// ESR value of a synchronous external abort on an instruction fetch.
pub const fn esr_instruction_abort(from_el0: bool) -> u64 {
    let ec: u64 = if from_el0 { 0x20 } else { 0x21 };
    (ec << 26) | (1 << 25) | 0x10
}

/// Whether the guest was at EL0 when it trapped.
pub const fn from_el0(pstate: u64) -> bool {
    pstate & 0xc == 0
}

/// Deliver a synchronous exception to the guest's EL1, as the hardware would: save PC and
/// PSTATE in ELR_EL1/SPSR_EL1, set ESR_EL1 (and FAR_EL1), and continue at the right offset from
/// VBAR_EL1 in EL1h with all interrupts masked. The vCPU's EL1 state is live on this CPU.
pub fn inject_sync(regs: &mut GuestRegs, esr: u64, far: Option<u64>) {
    let offset = match regs.pstate & 0x1f {
        0b00101 => 0x200,            // EL1h: current EL with SP_ELx
        0b00100 => 0x000,            // EL1t: current EL with SP_EL0
        m if m & 0x10 != 0 => 0x600, // AArch32 (EL0): lower EL, AArch32
        _ => 0x400,                  // EL0: lower EL, AArch64
    };
    let vbar: u64;
    // SAFETY: EL1 registers of the loaded vCPU; writing them is the architectural effect of
    // taking an exception to EL1.
    unsafe {
        asm!(
            "mrs {vbar}, vbar_el1",
            "msr elr_el1, {pc}",
            "msr spsr_el1, {pstate}",
            "msr esr_el1, {esr}",
            vbar = out(reg) vbar,
            pc = in(reg) regs.pc,
            pstate = in(reg) regs.pstate,
            esr = in(reg) esr,
            options(nostack)
        );
        if let Some(far) = far {
            asm!("msr far_el1, {}", in(reg) far, options(nostack));
        }
    }
    regs.pc = vbar.wrapping_add(offset);
    regs.pstate = 0x3c5; // EL1h, D, A, I and F masked
}

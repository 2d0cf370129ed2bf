//! A vCPU's EL1 context: the system registers an EL1 guest owns, the virtual timer, the
//! pointer-authentication keys and the FP/SIMD registers, saved and restored when a vCPU is put
//! on or taken off a physical CPU.
//!
//! The hypervisor is built soft-float and never touches FP/SIMD itself, so the guest's FP state
//! is switched here only (CPTR_EL2.TFP is clear while a vCPU is loaded and set while the CPU
//! idles, so a stray FP instruction in the hypervisor would trap).

use core::arch::asm;

/// SCTLR_EL1 at reset as a guest expects it: MMU and caches off, RES1 bits set.
pub const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

/// The EL1 system registers of a vCPU.
#[derive(Clone, Debug, Default)]
pub struct El1Context {
    /// SCTLR_EL1.
    pub sctlr_el1: u64,
    /// TCR_EL1.
    pub tcr_el1: u64,
    /// TTBR0_EL1.
    pub ttbr0_el1: u64,
    /// TTBR1_EL1.
    pub ttbr1_el1: u64,
    /// MAIR_EL1.
    pub mair_el1: u64,
    /// AMAIR_EL1.
    pub amair_el1: u64,
    /// VBAR_EL1.
    pub vbar_el1: u64,
    /// CONTEXTIDR_EL1.
    pub contextidr_el1: u64,
    /// TPIDR_EL0.
    pub tpidr_el0: u64,
    /// TPIDRRO_EL0.
    pub tpidrro_el0: u64,
    /// TPIDR_EL1.
    pub tpidr_el1: u64,
    /// CPACR_EL1.
    pub cpacr_el1: u64,
    /// ESR_EL1.
    pub esr_el1: u64,
    /// FAR_EL1.
    pub far_el1: u64,
    /// AFSR0_EL1.
    pub afsr0_el1: u64,
    /// AFSR1_EL1.
    pub afsr1_el1: u64,
    /// PAR_EL1.
    pub par_el1: u64,
    /// CNTKCTL_EL1.
    pub cntkctl_el1: u64,
    /// MDSCR_EL1.
    pub mdscr_el1: u64,
    /// SP_EL0.
    pub sp_el0: u64,
    /// SP_EL1.
    pub sp_el1: u64,
    /// ELR_EL1.
    pub elr_el1: u64,
    /// SPSR_EL1.
    pub spsr_el1: u64,
    /// CSSELR_EL1.
    pub csselr_el1: u64,
    /// CNTV_CTL_EL0.
    pub cntv_ctl_el0: u64,
    /// CNTV_CVAL_EL0.
    pub cntv_cval_el0: u64,
}

impl El1Context {
    /// The state of a vCPU coming out of reset.
    pub fn reset() -> Self {
        Self {
            sctlr_el1: SCTLR_EL1_RESET,
            ..Self::default()
        }
    }

    /// Save this CPU's EL1 registers.
    pub fn save(&mut self) {
        self.sctlr_el1 = read_sysreg!("sctlr_el1");
        self.tcr_el1 = read_sysreg!("tcr_el1");
        self.ttbr0_el1 = read_sysreg!("ttbr0_el1");
        self.ttbr1_el1 = read_sysreg!("ttbr1_el1");
        self.mair_el1 = read_sysreg!("mair_el1");
        self.amair_el1 = read_sysreg!("amair_el1");
        self.vbar_el1 = read_sysreg!("vbar_el1");
        self.contextidr_el1 = read_sysreg!("contextidr_el1");
        self.tpidr_el0 = read_sysreg!("tpidr_el0");
        self.tpidrro_el0 = read_sysreg!("tpidrro_el0");
        self.tpidr_el1 = read_sysreg!("tpidr_el1");
        self.cpacr_el1 = read_sysreg!("cpacr_el1");
        self.esr_el1 = read_sysreg!("esr_el1");
        self.far_el1 = read_sysreg!("far_el1");
        self.afsr0_el1 = read_sysreg!("afsr0_el1");
        self.afsr1_el1 = read_sysreg!("afsr1_el1");
        self.par_el1 = read_sysreg!("par_el1");
        self.cntkctl_el1 = read_sysreg!("cntkctl_el1");
        self.mdscr_el1 = read_sysreg!("mdscr_el1");
        self.sp_el0 = read_sysreg!("sp_el0");
        self.sp_el1 = read_sysreg!("sp_el1");
        self.elr_el1 = read_sysreg!("elr_el1");
        self.spsr_el1 = read_sysreg!("spsr_el1");
        self.csselr_el1 = read_sysreg!("csselr_el1");
        self.cntv_ctl_el0 = read_sysreg!("cntv_ctl_el0");
        self.cntv_cval_el0 = read_sysreg!("cntv_cval_el0");
    }

    /// Load these values into this CPU's EL1 registers.
    pub fn restore(&self) {
        write_sysreg!("sctlr_el1", self.sctlr_el1);
        write_sysreg!("tcr_el1", self.tcr_el1);
        write_sysreg!("ttbr0_el1", self.ttbr0_el1);
        write_sysreg!("ttbr1_el1", self.ttbr1_el1);
        write_sysreg!("mair_el1", self.mair_el1);
        write_sysreg!("amair_el1", self.amair_el1);
        write_sysreg!("vbar_el1", self.vbar_el1);
        write_sysreg!("contextidr_el1", self.contextidr_el1);
        write_sysreg!("tpidr_el0", self.tpidr_el0);
        write_sysreg!("tpidrro_el0", self.tpidrro_el0);
        write_sysreg!("tpidr_el1", self.tpidr_el1);
        write_sysreg!("cpacr_el1", self.cpacr_el1);
        write_sysreg!("esr_el1", self.esr_el1);
        write_sysreg!("far_el1", self.far_el1);
        write_sysreg!("afsr0_el1", self.afsr0_el1);
        write_sysreg!("afsr1_el1", self.afsr1_el1);
        write_sysreg!("par_el1", self.par_el1);
        write_sysreg!("cntkctl_el1", self.cntkctl_el1);
        write_sysreg!("mdscr_el1", self.mdscr_el1);
        write_sysreg!("sp_el0", self.sp_el0);
        write_sysreg!("sp_el1", self.sp_el1);
        write_sysreg!("elr_el1", self.elr_el1);
        write_sysreg!("spsr_el1", self.spsr_el1);
        write_sysreg!("csselr_el1", self.csselr_el1);
        write_sysreg!("cntv_ctl_el0", self.cntv_ctl_el0);
        write_sysreg!("cntv_cval_el0", self.cntv_cval_el0);
        // SAFETY: a context synchronisation event only.
        unsafe { asm!("isb", options(nomem, nostack)) };
    }
}

/// Pointer-authentication keys (only switched when the CPU implements pointer authentication).
#[derive(Clone, Debug, Default)]
pub struct PauthKeys {
    /// APIAKEYLO_EL1.
    pub apiakeylo_el1: u64,
    /// APIAKEYHI_EL1.
    pub apiakeyhi_el1: u64,
    /// APIBKEYLO_EL1.
    pub apibkeylo_el1: u64,
    /// APIBKEYHI_EL1.
    pub apibkeyhi_el1: u64,
    /// APDAKEYLO_EL1.
    pub apdakeylo_el1: u64,
    /// APDAKEYHI_EL1.
    pub apdakeyhi_el1: u64,
    /// APDBKEYLO_EL1.
    pub apdbkeylo_el1: u64,
    /// APDBKEYHI_EL1.
    pub apdbkeyhi_el1: u64,
    /// APGAKEYLO_EL1.
    pub apgakeylo_el1: u64,
    /// APGAKEYHI_EL1.
    pub apgakeyhi_el1: u64,
}

impl PauthKeys {
    /// Save this CPU's keys.
    pub fn save(&mut self) {
        if !super::cpu::has_pauth() {
            return;
        }
        self.apiakeylo_el1 = read_sysreg!("s3_0_c2_c1_0");
        self.apiakeyhi_el1 = read_sysreg!("s3_0_c2_c1_1");
        self.apibkeylo_el1 = read_sysreg!("s3_0_c2_c1_2");
        self.apibkeyhi_el1 = read_sysreg!("s3_0_c2_c1_3");
        self.apdakeylo_el1 = read_sysreg!("s3_0_c2_c2_0");
        self.apdakeyhi_el1 = read_sysreg!("s3_0_c2_c2_1");
        self.apdbkeylo_el1 = read_sysreg!("s3_0_c2_c2_2");
        self.apdbkeyhi_el1 = read_sysreg!("s3_0_c2_c2_3");
        self.apgakeylo_el1 = read_sysreg!("s3_0_c2_c3_0");
        self.apgakeyhi_el1 = read_sysreg!("s3_0_c2_c3_1");
    }

    /// Load these keys.
    pub fn restore(&self) {
        if !super::cpu::has_pauth() {
            return;
        }
        write_sysreg!("s3_0_c2_c1_0", self.apiakeylo_el1);
        write_sysreg!("s3_0_c2_c1_1", self.apiakeyhi_el1);
        write_sysreg!("s3_0_c2_c1_2", self.apibkeylo_el1);
        write_sysreg!("s3_0_c2_c1_3", self.apibkeyhi_el1);
        write_sysreg!("s3_0_c2_c2_0", self.apdakeylo_el1);
        write_sysreg!("s3_0_c2_c2_1", self.apdakeyhi_el1);
        write_sysreg!("s3_0_c2_c2_2", self.apdbkeylo_el1);
        write_sysreg!("s3_0_c2_c2_3", self.apdbkeyhi_el1);
        write_sysreg!("s3_0_c2_c3_0", self.apgakeylo_el1);
        write_sysreg!("s3_0_c2_c3_1", self.apgakeyhi_el1);
    }
}

/// FP/SIMD registers: V0-V31, FPSR and FPCR.
#[derive(Clone, Debug, Default)]
#[repr(C, align(16))]
pub struct FpState {
    /// V0..V31, two u64 halves each.
    pub v: [[u64; 2]; 32],
    /// FPSR.
    pub fpsr: u64,
    /// FPCR.
    pub fpcr: u64,
}

impl FpState {
    /// Save this CPU's FP/SIMD registers. CPTR_EL2.TFP must be clear.
    pub fn save(&mut self) {
        let base = self as *mut FpState;
        // SAFETY: writes exactly the 528 bytes of `*self`; FP access is enabled at EL2 while a
        // vCPU is loaded.
        unsafe {
            asm!(
                ".arch_extension fp",
                ".arch_extension simd",
                "stp q0, q1, [{b}, #0]", "stp q2, q3, [{b}, #32]", "stp q4, q5, [{b}, #64]",
                "stp q6, q7, [{b}, #96]", "stp q8, q9, [{b}, #128]", "stp q10, q11, [{b}, #160]",
                "stp q12, q13, [{b}, #192]", "stp q14, q15, [{b}, #224]", "stp q16, q17, [{b}, #256]",
                "stp q18, q19, [{b}, #288]", "stp q20, q21, [{b}, #320]", "stp q22, q23, [{b}, #352]",
                "stp q24, q25, [{b}, #384]", "stp q26, q27, [{b}, #416]", "stp q28, q29, [{b}, #448]",
                "stp q30, q31, [{b}, #480]",
                "mrs {t}, fpsr", "str {t}, [{b}, #512]",
                "mrs {t}, fpcr", "str {t}, [{b}, #520]",
                b = in(reg) base, t = out(reg) _, options(nostack),
            )
        };
    }

    /// Load these FP/SIMD registers. CPTR_EL2.TFP must be clear.
    pub fn restore(&self) {
        let base = self as *const FpState;
        // SAFETY: reads exactly the 528 bytes of `*self`; FP access is enabled at EL2 while a
        // vCPU is loaded, and the hypervisor (soft-float) does not use these registers.
        unsafe {
            asm!(
                ".arch_extension fp",
                ".arch_extension simd",
                "ldp q0, q1, [{b}, #0]", "ldp q2, q3, [{b}, #32]", "ldp q4, q5, [{b}, #64]",
                "ldp q6, q7, [{b}, #96]", "ldp q8, q9, [{b}, #128]", "ldp q10, q11, [{b}, #160]",
                "ldp q12, q13, [{b}, #192]", "ldp q14, q15, [{b}, #224]", "ldp q16, q17, [{b}, #256]",
                "ldp q18, q19, [{b}, #288]", "ldp q20, q21, [{b}, #320]", "ldp q22, q23, [{b}, #352]",
                "ldp q24, q25, [{b}, #384]", "ldp q26, q27, [{b}, #416]", "ldp q28, q29, [{b}, #448]",
                "ldp q30, q31, [{b}, #480]",
                "ldr {t}, [{b}, #512]", "msr fpsr, {t}",
                "ldr {t}, [{b}, #520]", "msr fpcr, {t}",
                b = in(reg) base, t = out(reg) _, options(nostack),
            )
        };
    }
}

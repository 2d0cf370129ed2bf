//! The CPU feature set a guest sees: ID register values with everything Wurley does not
//! virtualise hidden.
//!
//! Guests run with HCR_EL2.TID3, so every read of an ID register (op0 3, op1 0, CRn 0, CRm 1..7)
//! traps and is answered by [`sanitize`] applied to the hardware value. Hidden: EL2 and EL3 (the
//! guest is an EL1 guest), AArch32 at EL0/EL1, SVE and SME (their state is not switched), the PMU, statistical
//! profiling, trace, the activity monitors, MPAM, RAS and MTE. FP/SIMD, pointer authentication,
//! the GIC system-register interface and the ISA extensions stay visible.

use crate::arch::trap::SysReg;

/// Clear the 4-bit field at `shift`.
const fn clear(value: u64, shift: u32) -> u64 {
    value & !(0xf << shift)
}

/// Set the 4-bit field at `shift` to `field`.
const fn set(value: u64, shift: u32, field: u64) -> u64 {
    clear(value, shift) | (field << shift)
}

/// The value a guest reads for ID register `reg` when the hardware has `hw`.
pub const fn sanitize(reg: SysReg, hw: u64) -> u64 {
    if !reg.is_id_group3() {
        return hw;
    }
    match (reg.crm, reg.op2) {
        // ID_AA64PFR0_EL1: EL2 (11:8) and EL3 (15:12) absent, RAS (31:28), SVE (35:32),
        // MPAM (43:40), AMU (47:44) hidden. EL1 and EL0 stay AArch64.
        (4, 0) => {
            // EL0 and EL1: AArch64 only (an AArch32 guest state is never entered).
            let v = set(set(hw, 0, 1), 4, 1);
            let v = clear(clear(v, 8), 12);
            let v = clear(clear(v, 28), 32);
            clear(clear(v, 40), 44)
        }
        // ID_AA64PFR1_EL1: MTE (11:8), RAS_frac (15:12), MPAM_frac (19:16), SME (27:24),
        // NMI (39:36) hidden.
        (4, 1) => {
            let v = clear(clear(hw, 8), 12);
            let v = clear(clear(v, 16), 24);
            clear(v, 36)
        }
        // ID_AA64ZFR0_EL1 (SVE) and ID_AA64SMFR0_EL1 (SME): nothing.
        (4, 4) | (4, 5) => 0,
        // ID_AA64DFR0_EL1: keep DebugVer (3:0, at least v8.0 = 6), BRPs, WRPs, CTX_CMPs;
        // PMUVer (11:8), PMSVer (35:32), TraceVer (7:4), TraceFilt (43:40), TraceBuffer
        // (47:44), BRBE (55:52) hidden.
        (5, 0) => {
            let v = set(hw, 0, if hw & 0xf < 6 { 6 } else { hw & 0xf });
            let v = clear(clear(v, 4), 8);
            let v = clear(clear(v, 32), 40);
            clear(clear(v, 44), 52)
        }
        // ID_AA64DFR1_EL1 and the AArch32 debug/PMU views: nothing extra.
        (5, 1) => 0,
        // ID_DFR0_EL1 (AArch32 view): PerfMon (27:24) hidden.
        (1, 2) => clear(hw, 24),
        _ => hw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PFR0: SysReg = SysReg::new(3, 0, 0, 4, 0);
    const ZFR0: SysReg = SysReg::new(3, 0, 0, 4, 4);
    const DFR0: SysReg = SysReg::new(3, 0, 0, 5, 0);

    #[test]
    fn qemu_max_pfr0_loses_el2_el3_sve_ras() {
        // QEMU -cpu max: ID_AA64PFR0_EL1 = 0x1201001121110222.
        let v = sanitize(PFR0, 0x1201_0011_2111_0222);
        assert_eq!((v >> 8) & 0xf, 0, "EL2 hidden");
        assert_eq!((v >> 32) & 0xf, 0, "SVE hidden");
        assert_eq!((v >> 28) & 0xf, 0, "RAS hidden");
        assert_eq!(v & 0xff, 0x11, "EL0/EL1 AArch64 only");
        assert_eq!((v >> 24) & 0xf, 1, "GIC system registers kept");
        assert_eq!((v >> 16) & 0xff, 0x11, "FP and AdvSIMD kept");
    }

    #[test]
    fn sve_and_pmu_are_gone() {
        assert_eq!(sanitize(ZFR0, 0x1234), 0);
        let dfr0 = sanitize(DFR0, 0x0000_0010_f021_0f06 | (1 << 32));
        assert_eq!((dfr0 >> 8) & 0xf, 0, "PMU hidden");
        assert_eq!((dfr0 >> 32) & 0xf, 0, "SPE hidden");
        assert_eq!(dfr0 & 0xf, 6, "debug architecture kept");
    }

    #[test]
    fn other_registers_pass_through() {
        let mmfr0 = SysReg::new(3, 0, 0, 7, 0);
        assert_eq!(sanitize(mmfr0, 0x1122), 0x1122);
        let not_id = SysReg::new(3, 0, 1, 0, 0);
        assert_eq!(sanitize(not_id, 7), 7);
    }
}

//! Guest exits decoded: the ESR_EL2 syndrome of a trap from EL1/EL0 turned into a [`Trap`].
//!
//! Pure decoding of saved register values, so it is host-tested with real syndromes. The vCPU
//! exit handler (`vm::exit`) matches on the result; nothing else looks at raw ESR bits.

use super::esr::Esr;

/// Why a guest stopped running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// WFI (`wfe == false`) or WFE.
    Wfx {
        /// True for WFE.
        wfe: bool,
    },
    /// HVC with its 16-bit immediate.
    Hvc(u16),
    /// SMC with its 16-bit immediate (trapped by HCR_EL2.TSC; the PC has not advanced).
    Smc(u16),
    /// MSR/MRS/system instruction (EC 0x18).
    SysReg(SysRegAccess),
    /// A stage-2 data abort (EC 0x24).
    DataAbort(DataAbort),
    /// A stage-2 instruction abort (EC 0x20).
    InstructionAbort {
        /// ISS fault status code.
        fsc: u8,
    },
    /// SVE, SME or FP/SIMD access trapped by CPTR_EL2 (the guest was told it has none).
    FeatureTrap {
        /// The exception class.
        ec: u8,
    },
    /// Anything else.
    Other {
        /// The exception class.
        ec: u8,
    },
}

/// A trapped system-register access (ESR ISS for EC 0x18).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegAccess {
    /// The register, as (op0, op1, CRn, CRm, op2).
    pub reg: SysReg,
    /// Transfer register (31 = XZR).
    pub rt: u8,
    /// True for MRS (read), false for MSR (write).
    pub read: bool,
}

/// A system-register encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SysReg {
    /// op0.
    pub op0: u8,
    /// op1.
    pub op1: u8,
    /// CRn.
    pub crn: u8,
    /// CRm.
    pub crm: u8,
    /// op2.
    pub op2: u8,
}

impl SysReg {
    /// The encoding `S<op0>_<op1>_C<crn>_C<crm>_<op2>`.
    pub const fn new(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Self {
        Self {
            op0,
            op1,
            crn,
            crm,
            op2,
        }
    }

    /// Whether this is one of the ID registers HCR_EL2.TID3 traps (op0 3, op1 0, CRn 0,
    /// CRm 1..7).
    pub const fn is_id_group3(&self) -> bool {
        self.op0 == 3 && self.op1 == 0 && self.crn == 0 && self.crm >= 1 && self.crm <= 7
    }
}

/// ICC_SGI1R_EL1: generate a Group 1 SGI.
pub const ICC_SGI1R_EL1: SysReg = SysReg::new(3, 0, 12, 11, 5);
/// ICC_ASGI1R_EL1: generate an SGI for the other security state.
pub const ICC_ASGI1R_EL1: SysReg = SysReg::new(3, 0, 12, 11, 6);
/// ICC_SGI0R_EL1: generate a Group 0 SGI.
pub const ICC_SGI0R_EL1: SysReg = SysReg::new(3, 0, 12, 11, 7);

/// A decoded stage-2 data abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataAbort {
    /// The syndrome is valid (ISV): size, register and direction below can be trusted.
    pub isv: bool,
    /// Access size in bytes (1, 2, 4, 8).
    pub size: u8,
    /// Sign-extend a load (SSE).
    pub sign_extend: bool,
    /// Transfer register (31 = XZR).
    pub rt: u8,
    /// 64-bit register (SF); otherwise the load writes a W register.
    pub sixty_four: bool,
    /// A store.
    pub write: bool,
    /// The fault happened on the stage-1 table walk (S1PTW).
    pub s1ptw: bool,
    /// Fault status code.
    pub fsc: u8,
}

impl DataAbort {
    /// Whether the fault is a translation fault (the IPA has no stage-2 mapping).
    pub const fn is_translation_fault(&self) -> bool {
        self.fsc >= 0x04 && self.fsc <= 0x07
    }
}

/// Decode a guest exit's ESR_EL2.
pub const fn decode(esr: Esr) -> Trap {
    let iss = esr.iss();
    match esr.ec() {
        0x01 => Trap::Wfx { wfe: iss & 1 != 0 },
        0x16 => Trap::Hvc((iss & 0xffff) as u16),
        0x17 => Trap::Smc((iss & 0xffff) as u16),
        0x18 => Trap::SysReg(SysRegAccess {
            reg: SysReg {
                op0: ((iss >> 20) & 3) as u8,
                op2: ((iss >> 17) & 7) as u8,
                op1: ((iss >> 14) & 7) as u8,
                crn: ((iss >> 10) & 0xf) as u8,
                crm: ((iss >> 1) & 0xf) as u8,
            },
            rt: ((iss >> 5) & 0x1f) as u8,
            read: iss & 1 != 0,
        }),
        0x24 => Trap::DataAbort(DataAbort {
            isv: iss & (1 << 24) != 0,
            size: 1 << ((iss >> 22) & 3),
            sign_extend: iss & (1 << 21) != 0,
            rt: ((iss >> 16) & 0x1f) as u8,
            sixty_four: iss & (1 << 15) != 0,
            write: iss & (1 << 6) != 0,
            s1ptw: iss & (1 << 7) != 0,
            fsc: (iss & 0x3f) as u8,
        }),
        0x20 => Trap::InstructionAbort {
            fsc: (iss & 0x3f) as u8,
        },
        0x07 | 0x19 | 0x1d => Trap::FeatureTrap { ec: esr.ec() },
        ec => Trap::Other { ec },
    }
}

/// The faulting IPA of a stage-2 abort: HPFAR_EL2.FIPA gives bits 51:12, FAR_EL2 the page offset.
pub const fn fault_ipa(hpfar: u64, far: u64) -> u64 {
    ((hpfar >> 4) & 0xff_ffff_ffff) << 12 | (far & 0xfff)
}

/// Sign- or zero-extend a loaded value the way the trapped load would have.
pub const fn extend_load(value: u64, abort: &DataAbort) -> u64 {
    let bits = abort.size as u32 * 8;
    let value = if bits >= 64 {
        value
    } else {
        value & ((1u64 << bits) - 1)
    };
    let value = if abort.sign_extend && bits < 64 {
        let shift = 64 - bits;
        (((value << shift) as i64) >> shift) as u64
    } else {
        value
    };
    if abort.sixty_four {
        value
    } else {
        value & 0xffff_ffff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_mmio_store() {
        // str w1, [x0] to an unmapped IPA: EC 0x24, ISV, SAS=2 (4 bytes), SRT=1, WnR, DFSC 0x06.
        let esr =
            Esr((0x24 << 26) | (1 << 25) | (1 << 24) | (2 << 22) | (1 << 16) | (1 << 6) | 0x06);
        let Trap::DataAbort(a) = decode(esr) else {
            panic!("not a data abort")
        };
        assert!(a.isv && a.write && a.is_translation_fault());
        assert_eq!((a.size, a.rt, a.sixty_four), (4, 1, false));
    }

    #[test]
    fn decodes_sgi1r_write() {
        // msr ICC_SGI1R_EL1, x3
        let iss = (3 << 20) | (5 << 17) | (12 << 10) | (3 << 5) | (11 << 1);
        let Trap::SysReg(s) = decode(Esr((0x18 << 26) | (1 << 25) | iss)) else {
            panic!()
        };
        assert_eq!(s.reg, ICC_SGI1R_EL1);
        assert_eq!((s.rt, s.read), (3, false));
    }

    #[test]
    fn id_register_read_is_group3() {
        // mrs x0, ID_AA64PFR0_EL1 = S3_0_C0_C4_0
        let iss = (3 << 20) | (4 << 1) | 1;
        let Trap::SysReg(s) = decode(Esr((0x18 << 26) | iss)) else {
            panic!()
        };
        assert!(s.read && s.reg.is_id_group3());
        assert!(!ICC_SGI1R_EL1.is_id_group3());
    }

    #[test]
    fn hvc_smc_wfx() {
        assert_eq!(decode(Esr((0x16 << 26) | 0x6001)), Trap::Hvc(0x6001));
        assert_eq!(decode(Esr(0x17 << 26)), Trap::Smc(0));
        assert_eq!(decode(Esr((0x01 << 26) | 1)), Trap::Wfx { wfe: true });
        assert_eq!(decode(Esr(0x19 << 26)), Trap::FeatureTrap { ec: 0x19 });
    }

    #[test]
    fn ipa_and_load_extension() {
        assert_eq!(
            fault_ipa(0x0900_0000 >> 8, 0xffff_0000_0000_0018),
            0x0900_0018
        );
        let mut a = DataAbort {
            isv: true,
            size: 1,
            sign_extend: true,
            rt: 0,
            sixty_four: true,
            write: false,
            s1ptw: false,
            fsc: 6,
        };
        assert_eq!(extend_load(0x80, &a), u64::MAX - 0x7f);
        a.sixty_four = false;
        assert_eq!(extend_load(0x80, &a), 0xffff_ff80);
        a.sign_extend = false;
        assert_eq!(extend_load(0x1_2380, &a), 0x80);
    }
}

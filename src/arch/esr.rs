//! Exception Syndrome Register decoding: exception classes and their names.
//!
//! Pure logic over the raw ESR value, so it is host-tested; the exception handlers in
//! `arch::aarch64::exception` use it to describe what went wrong.

/// The fields of an ESR_ELx value that every exception has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Esr(pub u64);

impl Esr {
    /// Exception class, ESR[31:26].
    pub const fn ec(self) -> u8 {
        ((self.0 >> 26) & 0x3f) as u8
    }

    /// Instruction length bit: 1 for a 32-bit instruction.
    pub const fn il(self) -> bool {
        self.0 & (1 << 25) != 0
    }

    /// Instruction-specific syndrome, ESR[24:0].
    pub const fn iss(self) -> u32 {
        (self.0 & 0x1ff_ffff) as u32
    }

    /// Name of the exception class, as the Arm ARM spells it.
    pub const fn class_name(self) -> &'static str {
        ec_name(self.ec())
    }

    /// For data and instruction aborts: the fault status code, ISS[5:0], described.
    pub const fn fault_status(self) -> Option<&'static str> {
        match self.ec() {
            0x20 | 0x21 | 0x24 | 0x25 => Some(fsc_name((self.0 & 0x3f) as u8)),
            _ => None,
        }
    }

    /// For data aborts: whether the access was a write (ISS.WnR).
    pub const fn is_write(self) -> bool {
        self.0 & (1 << 6) != 0
    }
}

/// Name of an exception class (ESR_ELx.EC).
pub const fn ec_name(ec: u8) -> &'static str {
    match ec {
        0x00 => "Unknown reason",
        0x01 => "Trapped WFI/WFE",
        0x03 => "Trapped MCR/MRC (CP15)",
        0x04 => "Trapped MCRR/MRRC (CP15)",
        0x05 => "Trapped MCR/MRC (CP14)",
        0x06 => "Trapped LDC/STC",
        0x07 => "Trapped SVE/SIMD/FP access",
        0x0a => "Trapped LD64B/ST64B",
        0x0c => "Trapped MRRC (CP14)",
        0x0d => "Branch target exception",
        0x0e => "Illegal execution state",
        0x11 => "SVC (AArch32)",
        0x12 => "HVC (AArch32)",
        0x13 => "SMC (AArch32)",
        0x15 => "SVC (AArch64)",
        0x16 => "HVC (AArch64)",
        0x17 => "SMC (AArch64)",
        0x18 => "Trapped MSR/MRS/system instruction",
        0x19 => "Trapped SVE access",
        0x1a => "Trapped ERET",
        0x1b => "TSTART access",
        0x1c => "Pointer authentication failure",
        0x1d => "Trapped SME access",
        0x20 => "Instruction abort from a lower EL",
        0x21 => "Instruction abort from the same EL",
        0x22 => "PC alignment fault",
        0x24 => "Data abort from a lower EL",
        0x25 => "Data abort from the same EL",
        0x26 => "SP alignment fault",
        0x27 => "Memory operation exception",
        0x28 => "Trapped floating-point exception (AArch32)",
        0x2c => "Trapped floating-point exception (AArch64)",
        0x2f => "SError interrupt",
        0x30 => "Breakpoint from a lower EL",
        0x31 => "Breakpoint from the same EL",
        0x32 => "Software step from a lower EL",
        0x33 => "Software step from the same EL",
        0x34 => "Watchpoint from a lower EL",
        0x35 => "Watchpoint from the same EL",
        0x38 => "BKPT (AArch32)",
        0x3c => "BRK (AArch64)",
        _ => "Reserved exception class",
    }
}

/// Name of a data/instruction fault status code (ISS.DFSC / IFSC).
pub const fn fsc_name(fsc: u8) -> &'static str {
    match fsc {
        0x00..=0x03 => "address size fault",
        0x04..=0x07 => "translation fault",
        0x08..=0x0b => "access flag fault",
        0x0c..=0x0f => "permission fault",
        0x10 => "synchronous external abort",
        0x11 => "synchronous tag check fault",
        0x14..=0x17 => "synchronous external abort on table walk",
        0x18 => "synchronous parity/ECC error",
        0x21 => "alignment fault",
        0x30 => "TLB conflict abort",
        _ => "other fault",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_same_el_data_abort() {
        // EC 0x25, IL, DFSC translation fault level 0, write.
        let esr = Esr((0x25 << 26) | (1 << 25) | (1 << 6) | 0x04);
        assert_eq!(esr.ec(), 0x25);
        assert!(esr.il());
        assert!(esr.is_write());
        assert_eq!(esr.class_name(), "Data abort from the same EL");
        assert_eq!(esr.fault_status(), Some("translation fault"));
    }

    #[test]
    fn non_abort_has_no_fault_status() {
        let esr = Esr(0x16 << 26 | 0x6000);
        assert_eq!(esr.class_name(), "HVC (AArch64)");
        assert_eq!(esr.iss(), 0x6000);
        assert_eq!(esr.fault_status(), None);
    }

    #[test]
    fn every_class_has_a_name() {
        for ec in 0..64u8 {
            assert!(!ec_name(ec).is_empty());
        }
        assert_eq!(ec_name(0x3f), "Reserved exception class");
    }
}

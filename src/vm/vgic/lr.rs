//! The GICv3 virtual CPU interface's register formats: `ICH_LR<n>_EL2` encoding and decoding,
//! the `ICH_HCR_EL2` bits the hypervisor uses, and `ICH_VTR_EL2` decoding.
//!
//! List register layout: vINTID 31:0, pINTID 44:32 (HW = 1) or EOI 41 (HW = 0: request a
//! maintenance interrupt when the guest deactivates it), Priority 55:48, Group 60, HW 61,
//! State 63:62.

/// ICH_HCR_EL2.En: enable the virtual CPU interface.
pub const ICH_HCR_EN: u64 = 1 << 0;
/// ICH_HCR_EL2.UIE: maintenance interrupt when at most one list register is valid.
pub const ICH_HCR_UIE: u64 = 1 << 1;
/// ICH_HCR_EL2.LRENPIE: maintenance interrupt while EOIcount is non-zero.
pub const ICH_HCR_LRENPIE: u64 = 1 << 2;
/// ICH_HCR_EL2.NPIE: maintenance interrupt when no list register is pending.
pub const ICH_HCR_NPIE: u64 = 1 << 3;
/// ICH_HCR_EL2.EOIcount (31:27): deactivations of interrupts not in a list register.
pub const ICH_HCR_EOICOUNT_SHIFT: u32 = 27;

const VINTID_MASK: u64 = 0xffff_ffff;
const PINTID_SHIFT: u32 = 32;
const PINTID_MASK: u64 = 0x1fff;
const EOI: u64 = 1 << 41;
const PRIORITY_SHIFT: u32 = 48;
const GROUP1: u64 = 1 << 60;
const HW: u64 = 1 << 61;
const STATE_SHIFT: u32 = 62;

/// A list register's State field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LrState {
    /// Empty, or the guest has completed the interrupt.
    #[default]
    Invalid,
    /// Pending, not yet acknowledged.
    Pending,
    /// Acknowledged, not yet deactivated.
    Active,
    /// Active and pending again.
    PendingActive,
}

impl LrState {
    /// From the two State bits.
    pub const fn from_bits(bits: u64) -> Self {
        match bits & 3 {
            0 => Self::Invalid,
            1 => Self::Pending,
            2 => Self::Active,
            _ => Self::PendingActive,
        }
    }

    /// The two State bits.
    pub const fn bits(self) -> u64 {
        match self {
            Self::Invalid => 0,
            Self::Pending => 1,
            Self::Active => 2,
            Self::PendingActive => 3,
        }
    }

    /// The state with the given pending and active parts.
    pub const fn new(pending: bool, active: bool) -> Self {
        Self::from_bits(pending as u64 | (active as u64) << 1)
    }

    /// Whether the pending part is set.
    pub const fn pending(self) -> bool {
        self.bits() & 1 != 0
    }

    /// Whether the active part is set.
    pub const fn active(self) -> bool {
        self.bits() & 2 != 0
    }
}

/// The fields of one `ICH_LR<n>_EL2`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListReg {
    /// The virtual INTID the guest sees.
    pub vintid: u32,
    /// `Some(pINTID)` for a hardware interrupt (HW = 1): deactivating the virtual interrupt
    /// deactivates this physical one. Only 13 bits are encoded.
    pub pintid: Option<u32>,
    /// With HW = 0: raise a maintenance interrupt when the guest deactivates it.
    pub eoi: bool,
    /// Priority (only the implemented high bits, ICH_VTR_EL2.PRIbits, are used).
    pub priority: u8,
    /// Group 1 (a virtual IRQ); group 0 is a virtual FIQ.
    pub group1: bool,
    /// Pending / active state.
    pub state: LrState,
}

impl ListReg {
    /// The register value. `eoi` is not encoded for a hardware interrupt (the bit is part of
    /// the pINTID field there).
    pub const fn encode(&self) -> u64 {
        let mut v = self.vintid as u64 & VINTID_MASK;
        match self.pintid {
            Some(p) => v |= HW | (p as u64 & PINTID_MASK) << PINTID_SHIFT,
            None if self.eoi => v |= EOI,
            None => {}
        }
        v |= (self.priority as u64) << PRIORITY_SHIFT;
        if self.group1 {
            v |= GROUP1;
        }
        v | self.state.bits() << STATE_SHIFT
    }

    /// Decode a register value.
    pub const fn decode(v: u64) -> Self {
        let hw = v & HW != 0;
        Self {
            vintid: (v & VINTID_MASK) as u32,
            pintid: if hw {
                Some(((v >> PINTID_SHIFT) & PINTID_MASK) as u32)
            } else {
                None
            },
            eoi: !hw && v & EOI != 0,
            priority: (v >> PRIORITY_SHIFT) as u8,
            group1: v & GROUP1 != 0,
            state: LrState::from_bits(v >> STATE_SHIFT),
        }
    }
}

/// The virtual INTID of a list register value.
pub const fn lr_vintid(v: u64) -> u32 {
    (v & VINTID_MASK) as u32
}

/// The state of a list register value.
pub const fn lr_state(v: u64) -> LrState {
    LrState::from_bits(v >> STATE_SHIFT)
}

/// The parts of `ICH_VTR_EL2` the hypervisor needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vtr {
    /// Number of list registers (ListRegs + 1; the architecture has at most 16).
    pub list_regs: usize,
    /// Virtual priority bits implemented (PRIbits + 1).
    pub pri_bits: u8,
    /// Virtual preemption bits implemented (PREbits + 1).
    pub pre_bits: u8,
    /// Virtual INTID bits: 16 (IDbits = 0) or 24 (IDbits = 1).
    pub id_bits: u8,
}

impl Vtr {
    /// Decode: ListRegs 4:0, IDbits 25:23, PREbits 28:26, PRIbits 31:29 (each "n - 1").
    pub const fn decode(v: u64) -> Self {
        Self {
            list_regs: if v & 0x1f < 16 {
                (v & 0x1f) as usize + 1
            } else {
                16
            },
            pri_bits: ((v >> 29) & 7) as u8 + 1,
            pre_bits: ((v >> 26) & 7) as u8 + 1,
            id_bits: if (v >> 23) & 7 == 1 { 24 } else { 16 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_software_level_irq() {
        let lr = ListReg {
            vintid: 33,
            pintid: None,
            eoi: true,
            priority: 0xa0,
            group1: true,
            state: LrState::Pending,
        };
        let v = lr.encode();
        assert_eq!(v, 33 | 1 << 41 | 0xa0 << 48 | 1 << 60 | 1 << 62);
        assert_eq!(ListReg::decode(v), lr);
        assert_eq!(lr_vintid(v), 33);
        assert_eq!(lr_state(v), LrState::Pending);
    }

    #[test]
    fn encode_hw_irq_has_pintid_and_no_eoi() {
        let lr = ListReg {
            vintid: 27,
            pintid: Some(27),
            eoi: true,
            priority: 0,
            group1: true,
            state: LrState::Active,
        };
        let v = lr.encode();
        assert_eq!(v, 27 | 27 << 32 | 1 << 60 | 1 << 61 | 2 << 62);
        let d = ListReg::decode(v);
        assert_eq!(d.pintid, Some(27));
        assert!(!d.eoi);
        // pINTID is 13 bits wide.
        let v = ListReg {
            pintid: Some(0x1fff),
            ..lr
        }
        .encode();
        assert_eq!(ListReg::decode(v).pintid, Some(0x1fff));
        assert_eq!(v & (0x7 << 45), 0);
    }

    #[test]
    fn states_roundtrip() {
        for bits in 0..4 {
            let s = LrState::from_bits(bits);
            assert_eq!(s.bits(), bits);
            assert_eq!(LrState::new(s.pending(), s.active()), s);
        }
        assert_eq!(lr_state(u64::MAX), LrState::PendingActive);
        assert_eq!(ListReg::decode(0), ListReg::default());
    }

    #[test]
    fn vtr_decode() {
        // 4 list registers, 5 priority bits, 5 preemption bits, 16-bit IDs (a Cortex-A57's).
        let v = 3 | 4 << 26 | 4 << 29;
        assert_eq!(
            Vtr::decode(v),
            Vtr {
                list_regs: 4,
                pri_bits: 5,
                pre_bits: 5,
                id_bits: 16
            }
        );
        assert_eq!(Vtr::decode(0xffff_ffff).list_regs, 16);
        assert_eq!(Vtr::decode(1 << 23).id_bits, 24);
    }
}

//! The virtual GICv3 distributor (GICD_*): global control, the SPIs' state and routing, and
//! the ID registers.
//!
//! The model implements one security state (GICD_CTLR.DS reads 1) with affinity routing always
//! on (ARE reads 1, writes ignored), no LPIs and no message-based SPIs. Under affinity routing
//! the distributor's words for INTIDs 0-31 are RAZ/WI (the redistributors own them), and so
//! are ITARGETSR, SGIR and the SGI pending registers. Reserved offsets are RAZ/WI; a
//! misaligned access, or a size a register does not allow (32-bit everywhere, also 8-bit for
//! IPRIORITYR/ITARGETSR, also 64-bit for IROUTER), is a [`MmioResult::Fault`].

use alloc::vec::Vec;

use super::bank;
use super::irq::{IROUTER_MASK, Irq, MAX_SPIS, PRIVATE};
use crate::vm::mmio::{MmioAccess, MmioResult};

/// Size of the distributor's MMIO window.
pub const DIST_SIZE: u64 = 0x1_0000;

/// GICD_CTLR.EnableGrp0 (with DS = 1; Linux sets it as "ENABLE_G1").
pub const CTLR_ENABLE_GRP0: u32 = 1 << 0;
/// GICD_CTLR.EnableGrp1 (EnableGrp1A / EnableGrp1NS).
pub const CTLR_ENABLE_GRP1: u32 = 1 << 1;
/// GICD_CTLR.ARE (affinity routing enable): RAO/WI here.
pub const CTLR_ARE: u32 = 1 << 4;
/// GICD_CTLR.DS (disable security): RAO/WI here.
pub const CTLR_DS: u32 = 1 << 6;
/// GICD_CTLR.RWP (register write pending): always 0, writes take effect at once.
pub const CTLR_RWP: u32 = 1 << 31;

/// GICD_IIDR / GICR_IIDR: Implementer 0x43B (the JEP106 code of Arm, as KVM also reports for
/// its virtual GIC), ProductID 0x57 ('W' for Wurley), Variant 0, Revision 0. No Linux erratum
/// workaround matches this value.
pub const IIDR: u32 = 0x5700_043b;

/// GICD_TYPER.IDbits: 10 INTID bits (field value 9), so INTIDs up to 1023.
const TYPER_IDBITS: u32 = 9 << 19;
/// GICD_TYPER.A3V: Aff3 routing is supported.
const TYPER_A3V: u32 = 1 << 24;

/// GICD_PIDR2 (and GICR_PIDR2): ArchRev 3 (bits 7:4) = GICv3, JEDEC, Arm's JEP106 code.
pub const PIDR2: u32 = 0x3b;
/// Offset of PIDR2 in the distributor frame and in the redistributor RD frame.
pub const PIDR2_OFFSET: u64 = 0xffe8;

/// The CoreSight ID registers at 0xFFD0-0xFFFC (PIDR4-7, PIDR0-3, CIDR0-3), with the values
/// QEMU's GICv3 reports; `part0` is PIDR0 (0x92 for a distributor, 0x93 for a redistributor).
/// Linux only checks PIDR2.ArchRev.
pub fn id_register(offset: u64, part0: u32) -> Option<u32> {
    let value = match offset {
        0xffd0 => 0x44,
        0xffd4..=0xffdc => 0,
        0xffe0 => part0,
        0xffe4 => 0xb4,
        PIDR2_OFFSET => PIDR2,
        0xffec => 0,
        0xfff0 => 0x0d,
        0xfff4 => 0xf0,
        0xfff8 => 0x05,
        0xfffc => 0xb1,
        _ => return None,
    };
    Some(value)
}

/// The load/store result of a register with value `read` whose writes `write` handles.
pub fn reg(access: &MmioAccess, read: u64, write: impl FnOnce(u64)) -> MmioResult {
    match access.write {
        None => MmioResult::Read(read),
        Some(v) => {
            write(v);
            MmioResult::Written
        }
    }
}

/// A RAZ/WI register.
pub fn raz_wi(access: &MmioAccess) -> MmioResult {
    reg(access, 0, |_| {})
}

/// The distributor: GICD_CTLR and the SPIs (INTIDs 32..32 + spis).
#[derive(Clone, Debug)]
pub struct Dist {
    ctlr: u32,
    spis: Vec<Irq>,
}

impl Dist {
    /// A distributor in its reset state with `spis` SPIs (clamped to [`MAX_SPIS`]).
    pub fn new(spis: u32) -> Self {
        let spis = spis.min(MAX_SPIS);
        Self {
            ctlr: 0,
            spis: (PRIVATE..PRIVATE + spis).map(Irq::reset).collect(),
        }
    }

    /// Number of SPIs.
    pub fn spi_count(&self) -> u32 {
        self.spis.len() as u32
    }

    /// Whether GICD_CTLR enables the interrupt group (group 1 if `group1`, else group 0).
    pub fn group_enabled(&self, group1: bool) -> bool {
        self.ctlr
            & if group1 {
                CTLR_ENABLE_GRP1
            } else {
                CTLR_ENABLE_GRP0
            }
            != 0
    }

    /// SPI `intid` (32 or more), if implemented.
    pub fn spi(&self, intid: u32) -> Option<&Irq> {
        self.spis
            .get(usize::try_from(intid.checked_sub(PRIVATE)?).ok()?)
    }

    /// SPI `intid` (32 or more), if implemented.
    pub fn spi_mut(&mut self, intid: u32) -> Option<&mut Irq> {
        self.spis
            .get_mut(usize::try_from(intid.checked_sub(PRIVATE)?).ok()?)
    }

    /// All SPIs, in INTID order from 32.
    pub fn spis(&self) -> &[Irq] {
        &self.spis
    }

    /// GICD_TYPER: ITLinesNumber covers the SPIs, IDbits 10 bits, A3V; no LPIs, no MBIS, no
    /// security extension, CPUNumber 0 (meaningless with affinity routing).
    pub fn typer(&self) -> u32 {
        let lines = self.spi_count().div_ceil(32);
        lines | TYPER_IDBITS | TYPER_A3V
    }

    /// Emulate a guest access to the distributor window.
    pub fn access(&mut self, access: MmioAccess) -> MmioResult {
        if !matches!(access.size, 1 | 2 | 4 | 8) || !access.is_aligned() {
            return MmioResult::Fault;
        }
        let off = access.offset;
        let word = access.size == 4;
        match off {
            0x0000 if word => reg(&access, u64::from(self.ctlr | CTLR_ARE | CTLR_DS), |v| {
                self.ctlr = v as u32 & (CTLR_ENABLE_GRP0 | CTLR_ENABLE_GRP1);
            }),
            0x0004 if word => reg(&access, u64::from(self.typer()), |_| {}),
            0x0008 if word => reg(&access, u64::from(IIDR), |_| {}),
            // TYPER2 (no vPEs), STATUSR, SGIR (SGIs come through ICC_SGI1R_EL1).
            0x000c | 0x0010 | 0x0f00 if word => raz_wi(&access),
            0x0000..0x0014 | 0x0f00 => MmioResult::Fault,
            bank::START..bank::END => {
                let first = PRIVATE;
                bank::access(&mut self.spis, first, off, &access).unwrap_or_else(|| raz_wi(&access))
            }
            // CPENDSGIR / SPENDSGIR: RAZ/WI under affinity routing, byte-accessible.
            0x0f10..0x0f30 if access.size == 1 || word => raz_wi(&access),
            0x0f10..0x0f30 => MmioResult::Fault,
            0x6000..0x8000 => self.irouter(&access),
            0xffd0..=0xffff if word => {
                reg(&access, id_register(off, 0x92).map_or(0, u64::from), |_| {})
            }
            0xffd0..=0xffff => MmioResult::Fault,
            _ => raz_wi(&access),
        }
    }

    /// GICD_IROUTER<n> at 0x6000 + 8n: 64-bit, or either 32-bit half.
    fn irouter(&mut self, access: &MmioAccess) -> MmioResult {
        let n = (access.offset - 0x6000) / 8;
        let high = access.offset % 8 == 4;
        if !(access.size == 8 || access.size == 4) {
            return MmioResult::Fault;
        }
        // IROUTER<0-31> are reserved; unimplemented SPIs are RAZ/WI.
        let Some(irq) = u32::try_from(n).ok().and_then(|intid| self.spi_mut(intid)) else {
            return raz_wi(access);
        };
        let (shift, mask) = match (access.size, high) {
            (8, _) => (0, u64::MAX),
            (_, false) => (0, 0xffff_ffff),
            (_, true) => (32, 0xffff_ffff_0000_0000),
        };
        match access.write {
            None => MmioResult::Read((irq.route & mask) >> shift),
            Some(v) => {
                irq.route = ((irq.route & !mask) | ((v << shift) & mask)) & IROUTER_MASK;
                MmioResult::Written
            }
        }
    }
}

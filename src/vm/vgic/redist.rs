//! One vCPU's virtual GICv3 redistributor (GICR_*): the RD_base frame (control, TYPER, WAKER,
//! ID registers) and the SGI_base frame (state of the vCPU's SGIs and PPIs).
//!
//! Each vCPU has two 64 KiB frames, RD_base at 0 and SGI_base at 0x10000, so its window is
//! [`REDIST_STRIDE`] bytes and the vCPUs' windows follow each other in vCPU order. There are no
//! LPIs: GICR_CTLR, PROPBASER and PENDBASER are RAZ/WI and GICR_TYPER advertises none. WAKER's
//! ProcessorSleep is kept for the guest's handshake but does not gate delivery. Reserved
//! offsets are RAZ/WI; misaligned accesses or sizes a register does not allow are faults.

use alloc::vec::Vec;

use super::bank;
use super::dist::{IIDR, id_register, raz_wi, reg};
use super::irq::{Irq, PRIVATE};
use crate::vm::mmio::{MmioAccess, MmioResult};

/// Size of one vCPU's redistributor window (RD_base and SGI_base frames).
pub const REDIST_STRIDE: u64 = 0x2_0000;
/// Offset of the SGI_base frame in a vCPU's window.
pub const SGI_BASE: u64 = 0x1_0000;

/// GICR_WAKER.ProcessorSleep.
pub const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
/// GICR_WAKER.ChildrenAsleep (read-only, mirrors ProcessorSleep).
pub const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// GICR_TYPER.Last: the last redistributor of the region.
pub const TYPER_LAST: u64 = 1 << 4;

/// Split an offset from the start of the whole redistributor region into the vCPU index whose
/// window holds it and the offset within that window.
pub fn split_region_offset(offset: u64) -> (usize, u64) {
    (
        usize::try_from(offset / REDIST_STRIDE).unwrap_or(usize::MAX),
        offset % REDIST_STRIDE,
    )
}

/// The GICR_TYPER.Affinity_Value (bits 63:32) of a PE with `mpidr`: Aff3.Aff2.Aff1.Aff0.
pub const fn typer_affinity(mpidr: u64) -> u64 {
    let aff3 = (mpidr >> 32) & 0xff;
    let aff210 = mpidr & 0xff_ffff;
    ((aff3 << 24) | aff210) << 32
}

/// A redistributor: one vCPU's private interrupts and identity.
#[derive(Clone, Debug)]
pub struct Redist {
    /// The vCPU's index (GICR_TYPER.Processor_Number).
    index: usize,
    /// The vCPU's MPIDR_EL1.
    mpidr: u64,
    /// Whether this is the last redistributor of the region.
    last: bool,
    /// GICR_WAKER.ProcessorSleep.
    sleep: bool,
    /// SGIs and PPIs, INTIDs 0-31.
    pub(super) private: [Irq; PRIVATE as usize],
    /// What the last flush put in the list registers, slot by slot: (INTID, LR value written).
    pub(super) loaded: Vec<(u32, u64)>,
}

impl Redist {
    /// The reset redistributor of vCPU `index` with `mpidr`; `last` for the final vCPU.
    pub fn new(index: usize, mpidr: u64, last: bool) -> Self {
        let mut private = [Irq::reset(0); PRIVATE as usize];
        for (intid, irq) in (0u32..).zip(private.iter_mut()) {
            *irq = Irq::reset(intid);
        }
        Self {
            index,
            mpidr,
            last,
            sleep: true,
            private,
            loaded: Vec::new(),
        }
    }

    /// The vCPU's MPIDR_EL1.
    pub fn mpidr(&self) -> u64 {
        self.mpidr
    }

    /// Private interrupt `intid` (0-31).
    pub fn irq(&self, intid: u32) -> Option<&Irq> {
        self.private.get(usize::try_from(intid).ok()?)
    }

    /// Private interrupt `intid` (0-31).
    pub fn irq_mut(&mut self, intid: u32) -> Option<&mut Irq> {
        self.private.get_mut(usize::try_from(intid).ok()?)
    }

    /// GICR_TYPER: affinity, Processor_Number, Last; no (direct/virtual) LPIs, 16 PPIs.
    pub fn typer(&self) -> u64 {
        let number = (self.index as u64 & 0xffff) << 8;
        typer_affinity(self.mpidr) | number | if self.last { TYPER_LAST } else { 0 }
    }

    /// GICR_WAKER as read.
    pub fn waker(&self) -> u32 {
        if self.sleep {
            WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP
        } else {
            0
        }
    }

    /// Emulate a guest access at `access.offset` within this vCPU's window.
    pub fn access(&mut self, access: MmioAccess) -> MmioResult {
        if !matches!(access.size, 1 | 2 | 4 | 8) || !access.is_aligned() {
            return MmioResult::Fault;
        }
        match access.offset {
            off @ 0..SGI_BASE => self.rd_access(off, &access),
            off @ SGI_BASE..REDIST_STRIDE => self.sgi_access(off - SGI_BASE, &access),
            _ => raz_wi(&access),
        }
    }

    fn rd_access(&mut self, off: u64, access: &MmioAccess) -> MmioResult {
        let word = access.size == 4;
        let dword = access.size == 8;
        match off {
            // CTLR (EnableLPIs RAZ/WI, RWP 0), STATUSR.
            0x0000 | 0x0010 if word => raz_wi(access),
            0x0004 if word => reg(access, u64::from(IIDR), |_| {}),
            0x0008 if dword => reg(access, self.typer(), |_| {}),
            0x0008 if word => reg(access, self.typer() & 0xffff_ffff, |_| {}),
            0x000c if word => reg(access, self.typer() >> 32, |_| {}),
            0x0014 if word => reg(access, u64::from(self.waker()), |v| {
                self.sleep = v as u32 & WAKER_PROCESSOR_SLEEP != 0;
            }),
            0x0000..0x0018 => MmioResult::Fault,
            // PROPBASER, PENDBASER: no LPIs.
            0x0070..0x0080 if word || dword => raz_wi(access),
            0x0070..0x0080 => MmioResult::Fault,
            0xffd0..=0xffff if word => {
                reg(access, id_register(off, 0x93).map_or(0, u64::from), |_| {})
            }
            0xffd0..=0xffff => MmioResult::Fault,
            _ => raz_wi(access),
        }
    }

    fn sgi_access(&mut self, off: u64, access: &MmioAccess) -> MmioResult {
        match off {
            bank::START..bank::END => {
                bank::access(&mut self.private, 0, off, access).unwrap_or_else(|| raz_wi(access))
            }
            _ => raz_wi(access),
        }
    }
}

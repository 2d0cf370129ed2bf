//! The per-interrupt register banks shared by the distributor and the redistributor SGI frame.
//!
//! GICD and GICR_SGI_base lay out IGROUPR, IS/ICENABLER, IS/ICPENDR, IS/ICACTIVER,
//! IPRIORITYR, ICFGR, IGRPMODR and NSACR at the same offsets (0x080-0xEFF); the distributor
//! covers the SPIs, a redistributor the SGIs and PPIs of its vCPU. This module decodes an
//! offset in that range and applies the access to a slice of [`Irq`]s that starts at a given
//! INTID: bits for INTIDs outside the slice are RAZ/WI, which is how the distributor's banked
//! (INTID 0-31) words read as zero under affinity routing.

use super::irq::{Irq, SGIS, Trigger};
use crate::vm::mmio::{MmioAccess, MmioResult};

/// Start of the per-interrupt register banks.
pub const START: u64 = 0x080;
/// End (exclusive) of the per-interrupt register banks.
pub const END: u64 = 0xf00;

/// Which per-interrupt register an offset falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reg {
    Group,
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
    Priority,
    Targets,
    Config,
    GroupMod,
    Nsacr,
}

/// Decode `offset` (within [`START`]..[`END`]) into the register and the first INTID the
/// byte at that offset describes. `None` for holes in the layout.
fn decode(offset: u64) -> Option<(Reg, u32)> {
    let bits1 = |base: u64| ((offset - base) * 8) as u32;
    let r = match offset {
        0x080..0x100 => (Reg::Group, bits1(0x080)),
        0x100..0x180 => (Reg::SetEnable, bits1(0x100)),
        0x180..0x200 => (Reg::ClearEnable, bits1(0x180)),
        0x200..0x280 => (Reg::SetPending, bits1(0x200)),
        0x280..0x300 => (Reg::ClearPending, bits1(0x280)),
        0x300..0x380 => (Reg::SetActive, bits1(0x300)),
        0x380..0x400 => (Reg::ClearActive, bits1(0x380)),
        0x400..0x800 => (Reg::Priority, (offset - 0x400) as u32),
        0x800..0xc00 => (Reg::Targets, (offset - 0x800) as u32),
        0xc00..0xd00 => (Reg::Config, ((offset - 0xc00) * 4) as u32),
        0xd00..0xd80 => (Reg::GroupMod, bits1(0xd00)),
        0xe00..0xf00 => (Reg::Nsacr, ((offset - 0xe00) * 4) as u32),
        _ => return None,
    };
    Some(r)
}

fn get(irqs: &mut [Irq], first: u32, intid: u32) -> Option<&mut Irq> {
    let index = intid.checked_sub(first)?;
    irqs.get_mut(usize::try_from(index).ok()?)
}

/// Read a one-bit-per-interrupt word: bit n describes INTID `base + n`.
fn read_bits(irqs: &mut [Irq], first: u32, base: u32, f: fn(&Irq) -> bool) -> u32 {
    (0..32u32).fold(0, |acc, n| match get(irqs, first, base + n) {
        Some(irq) if f(irq) => acc | 1 << n,
        _ => acc,
    })
}

/// Apply `f` to every interrupt whose bit is set in `value`.
fn write_bits(irqs: &mut [Irq], first: u32, base: u32, value: u32, f: fn(&mut Irq, bool)) {
    for n in 0..32u32 {
        if let Some(irq) = get(irqs, first, base + n) {
            f(irq, value & (1 << n) != 0);
        }
    }
}

/// Set-only semantics: writing 1 applies `f`, writing 0 has no effect.
fn write_ones(irqs: &mut [Irq], first: u32, base: u32, value: u32, f: fn(&mut Irq)) {
    for n in 0..32u32 {
        if value & (1 << n) != 0
            && let Some(irq) = get(irqs, first, base + n)
        {
            f(irq);
        }
    }
}

/// Emulate an access at `offset` (in [`START`]..[`END`], already checked aligned) against
/// `irqs`, which hold INTIDs `first..first + irqs.len()`. Returns `None` if the offset is a
/// hole in the layout, so the caller treats it as reserved.
pub fn access(
    irqs: &mut [Irq],
    first: u32,
    offset: u64,
    access: &MmioAccess,
) -> Option<MmioResult> {
    let (reg, base) = decode(offset)?;
    let byte_ok = matches!(reg, Reg::Priority | Reg::Targets);
    if !(access.size == 4 || (byte_ok && access.size == 1)) {
        return Some(MmioResult::Fault);
    }
    let Some(value) = access.write else {
        return Some(MmioResult::Read(u64::from(read(
            irqs,
            first,
            reg,
            base,
            access.size,
        ))));
    };
    let value = value as u32;
    match reg {
        Reg::Group => write_bits(irqs, first, base, value, |irq, b| irq.group1 = b),
        Reg::SetEnable => write_ones(irqs, first, base, value, |irq| irq.enabled = true),
        Reg::ClearEnable => write_ones(irqs, first, base, value, |irq| irq.enabled = false),
        Reg::SetPending => write_ones(irqs, first, base, value, |irq| irq.pending = true),
        Reg::ClearPending => write_ones(irqs, first, base, value, |irq| irq.pending = false),
        Reg::SetActive => write_ones(irqs, first, base, value, |irq| irq.active = true),
        Reg::ClearActive => write_ones(irqs, first, base, value, |irq| irq.active = false),
        Reg::Priority => {
            for n in 0..u32::from(access.size) {
                if let Some(irq) = get(irqs, first, base + n) {
                    irq.priority = (value >> (8 * n)) as u8;
                }
            }
        }
        Reg::Config => {
            for n in 0..16u32 {
                let intid = base + n;
                // SGIs are always edge-triggered: their ICFGR0 field is read-only.
                if intid >= SGIS
                    && let Some(irq) = get(irqs, first, intid)
                {
                    irq.trigger = if value & (2 << (2 * n)) != 0 {
                        Trigger::Edge
                    } else {
                        Trigger::Level
                    };
                }
            }
        }
        // Affinity routing makes ITARGETSR RAZ/WI; with one security state IGRPMODR and NSACR
        // are RAZ/WI.
        Reg::Targets | Reg::GroupMod | Reg::Nsacr => {}
    }
    Some(MmioResult::Written)
}

fn read(irqs: &mut [Irq], first: u32, reg: Reg, base: u32, size: u8) -> u32 {
    match reg {
        Reg::Group => read_bits(irqs, first, base, |irq| irq.group1),
        Reg::SetEnable | Reg::ClearEnable => read_bits(irqs, first, base, |irq| irq.enabled),
        Reg::SetPending | Reg::ClearPending => read_bits(irqs, first, base, Irq::is_pending),
        Reg::SetActive | Reg::ClearActive => read_bits(irqs, first, base, |irq| irq.active),
        Reg::Priority => (0..u32::from(size)).fold(0, |acc, n| match get(irqs, first, base + n) {
            Some(irq) => acc | u32::from(irq.priority) << (8 * n),
            None => acc,
        }),
        Reg::Config => (0..16u32).fold(0, |acc, n| match get(irqs, first, base + n) {
            Some(irq) if irq.trigger == Trigger::Edge => acc | 2 << (2 * n),
            _ => acc,
        }),
        Reg::Targets | Reg::GroupMod | Reg::Nsacr => 0,
    }
}

//! The platform as the device tree describes it: [`Platform::parse`] turns a flattened device
//! tree blob into one [`Platform`] value, or a [`DtError`] naming the node and property at fault.
//!
//! The blob is read by the shared `wurley-manifest` crate's device-tree reader (`fdt`, `node`,
//! `tree` and `error` re-export it), which indexes the nodes into a `Tree` that the other
//! modules, one per kind of information, read.

mod chosen;
mod cpus;
mod error;
mod fdt;
mod gic;
mod memory;
mod node;
mod psci;
mod reg;
mod reserved;
mod timer;
mod tree;
mod uart;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

use alloc::string::String;
use alloc::vec::Vec;

use crate::mm::addr::PhysRange;

pub use cpus::CpuInfo;
pub use error::DtError;
pub use gic::{GicInfo, IrqSpec};
pub use psci::{Conduit, PsciInfo};
pub use reserved::{Reserved, ReservedKind};
pub use timer::TimerInfo;
pub use uart::{UartInfo, stdout_uart};

// The shared reader, for the tests that read the trees the hypervisor writes.
#[cfg(test)]
pub(crate) use fdt::with_tree;

/// Everything the hypervisor needs from the device tree. Where the blob itself lives is the
/// caller's to track: `parse` sees only its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// RAM: every `device_type = "memory"` node's non-empty `reg` entries, sorted.
    pub memory: Vec<PhysRange>,
    /// Header `/memreserve/` entries, then `/reserved-memory` children with a `reg`.
    pub reserved: Vec<Reserved>,
    /// `/chosen` `linux,initrd-start`..`linux,initrd-end`, if given and non-empty.
    pub initrd: Option<PhysRange>,
    /// `/chosen` `bootargs`, empty if absent.
    pub bootargs: String,
    /// The GICv3.
    pub gic: GicInfo,
    /// The console named by `/chosen` `stdout-path`.
    pub uart: UartInfo,
    /// The generic timer's interrupts.
    pub timer: TimerInfo,
    /// Usable CPUs under `/cpus`, in tree order.
    pub cpus: Vec<CpuInfo>,
    /// How to call PSCI firmware.
    pub psci: PsciInfo,
}

impl Platform {
    /// Parses a flattened device tree blob. `dtb` may extend past the header's `totalsize` and
    /// need not be aligned (an unaligned blob is copied).
    pub fn parse(dtb: &[u8]) -> Result<Platform, DtError> {
        fdt::with_tree(dtb, |tree| {
            let gic = gic::Gic::find(tree)?;
            Ok(Platform {
                memory: memory::banks(tree)?,
                reserved: reserved::regions(tree)?,
                initrd: chosen::initrd(tree)?,
                bootargs: chosen::bootargs(tree)?,
                gic: gic.info()?,
                uart: uart::console(tree, Some(&gic))?,
                timer: timer::find(tree, &gic)?,
                cpus: cpus::enumerate(tree)?,
                psci: psci::find(tree)?,
            })
        })
    }
}

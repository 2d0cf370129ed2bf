//! The platform as the device tree describes it: [`Platform::parse`] turns a flattened device
//! tree blob into one [`Platform`] value, or a [`DtError`] naming the node and property at fault.
//!
//! The blob is read by the shared `wurley-manifest` crate's device-tree reader (`fdt`, `node`,
//! `tree` and `error` re-export it), which indexes the nodes into a `Tree` that the other
//! modules, one per kind of information, read.

mod chosen;
mod cpus;
mod devices;
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
pub use devices::DeviceNode;
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
    /// Every device node with MMIO windows, in tree order (the GIC and the console included).
    pub devices: Vec<DeviceNode>,
}

impl Platform {
    /// The MMIO windows of the platform's devices that the hypervisor does not use, as whole
    /// pages, sorted and merged: every device node's `reg` except the GIC's (and its
    /// children's, such as an ITS), the console UART's, and any page overlapping RAM, reserved
    /// memory, the GIC's frames or the console.
    pub fn free_device_windows(&self) -> Vec<PhysRange> {
        let gic_children = alloc::format!("{}/", self.gic.node);
        let used: Vec<PhysRange> = [self.uart.base, self.gic.dist]
            .iter()
            .chain(self.gic.redists.iter())
            .map(devices::pages)
            .collect();
        let windows = self
            .devices
            .iter()
            .filter(|d| {
                d.path != self.gic.node
                    && !d.path.starts_with(&gic_children)
                    && d.path != self.uart.path
            })
            .flat_map(|d| d.regs.iter().map(devices::pages))
            .filter(|w| {
                !self.memory.iter().any(|m| m.overlaps(w))
                    && !self.reserved.iter().any(|r| r.range.overlaps(w))
                    && !used.iter().any(|u| u.overlaps(w))
            })
            .collect();
        devices::merge(windows)
    }

    /// Whether SPI `intid` is level-sensitive, as the first device node that has it says;
    /// `None` if no node of the tree names it.
    pub fn spi_level(&self, intid: u32) -> Option<bool> {
        self.devices
            .iter()
            .flat_map(|d| d.irqs.iter())
            .find(|i| i.intid == intid)
            .map(|i| i.level)
    }

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
                devices: devices::enumerate(tree, &gic),
            })
        })
    }
}

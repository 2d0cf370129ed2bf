//! A VM's passed-through devices: the `devices` child of a VM node.
//!
//! ```dts
//! devices {
//!     disk {
//!         compatible = "virtio,mmio";
//!         reg = /bits/ 64 <0xa003e00 0x200>;
//!         interrupts = <0 47 1>;
//!         dma-coherent;
//!     };
//! };
//! ```
//!
//! Each child is one device the VM gets: its MMIO windows (`reg`, 64-bit address and size
//! pairs; the VM sees them at the same addresses) and its interrupts (`interrupts`, GIC
//! specifiers: type 0 = SPI, the SPI number, flags 1 edge / 4 level; the VM sees the same
//! numbers). `compatible` and `dma-coherent` are copied into the VM's device tree. What the
//! hypervisor checks against the platform (RAM, its own devices, other VMs) happens at launch.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::manifest::{dt_problem, name_problem};
use crate::dt::NodeRef;

/// Properties a device node takes.
const DEVICE_PROPS: &[&str] = &["compatible", "reg", "interrupts", "dma-coherent", "status"];
/// Devices one VM may have.
pub const MAX_DEVICES: usize = 8;
/// SPI numbers a device interrupt may use (INTIDs 32..1020).
pub const MAX_SPI: u32 = 987;

/// One passed-through device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSpec {
    /// The node name, used for the VM's device-tree node.
    pub name: String,
    /// `compatible`, copied to the VM's device tree.
    pub compatible: Vec<String>,
    /// MMIO windows: (address, size), at least one, sizes non-zero.
    pub regs: Vec<(u64, u64)>,
    /// Interrupts: (SPI number, flags) from `<0 spi flags>` specifiers.
    pub interrupts: Vec<(u32, u32)>,
    /// `dma-coherent`, copied.
    pub dma_coherent: bool,
}

impl DeviceSpec {
    /// The INTIDs of its interrupts.
    pub fn intids(&self) -> impl Iterator<Item = u32> + '_ {
        self.interrupts.iter().map(|&(spi, _)| spi + 32)
    }
}

/// The devices' nodes in the VM's device tree (root `#address-cells`/`#size-cells` are 2):
/// `<name>@<first address>` with `compatible`, `reg`, `interrupts` and `dma-coherent` as given.
/// The hypervisor and the resource manager write them the same way.
pub fn write_nodes(w: &mut vm_fdt::FdtWriter, devices: &[DeviceSpec]) -> Result<(), vm_fdt::Error> {
    for d in devices {
        let base = d.regs.first().map_or(0, |r| r.0);
        let node = w.begin_node(&format!("{}@{base:x}", d.name))?;
        w.property_string_list("compatible", d.compatible.clone())?;
        let reg: Vec<u64> = d.regs.iter().flat_map(|&(a, s)| [a, s]).collect();
        w.property_array_u64("reg", &reg)?;
        if !d.interrupts.is_empty() {
            let cells: Vec<u32> = d
                .interrupts
                .iter()
                .flat_map(|&(spi, flags)| [0, spi, flags])
                .collect();
            w.property_array_u32("interrupts", &cells)?;
        }
        if d.dma_coherent {
            w.property_null("dma-coherent")?;
        }
        w.end_node(node)?;
    }
    Ok(())
}

/// Read the `devices` child of a VM node: the devices, and every problem found (prefixed with
/// the device node's path under the VM).
pub(super) fn read(node: NodeRef<'_, '_>) -> (Vec<DeviceSpec>, Vec<String>) {
    let mut devices = Vec::new();
    let mut problems = Vec::new();
    for dev in node.children() {
        let (enabled, status) = super::manifest::status(dev);
        let at = format!("node 'devices/{}'", dev.name());
        if let Some(p) = status {
            problems.push(format!("{at}: {p}"));
        }
        if !enabled {
            continue;
        }
        match device(dev) {
            Ok(d) => devices.push(d),
            Err(list) => problems.extend(list.into_iter().map(|p| format!("{at}: {p}"))),
        }
    }
    for extra in node
        .prop_names()
        .filter(|p| !matches!(*p, "phandle" | "name"))
    {
        problems.push(format!(
            "node 'devices': property '{extra}': unknown, it takes only child nodes"
        ));
    }
    if devices.len() > MAX_DEVICES {
        problems.push(format!(
            "node 'devices': {} devices, at most {MAX_DEVICES}",
            devices.len()
        ));
    }
    let mut seen: Vec<&str> = Vec::new();
    for d in &devices {
        if seen.contains(&d.name.as_str()) {
            problems.push(format!("node 'devices/{}': named twice", d.name));
        }
        seen.push(&d.name);
    }
    (devices, problems)
}

fn device(dev: NodeRef<'_, '_>) -> Result<DeviceSpec, Vec<String>> {
    let mut problems = Vec::new();
    if let Some(p) = name_problem(dev.name(), "device", "disk") {
        problems.push(p);
    }
    for p in dev.prop_names() {
        if !DEVICE_PROPS.contains(&p) && !matches!(p, "phandle" | "linux,phandle" | "name") {
            problems.push(format!(
                "property '{p}': unknown; a device takes {}",
                DEVICE_PROPS.join(", ")
            ));
        }
    }
    if dev.children().next().is_some() {
        problems.push(String::from("device nodes have no child nodes"));
    }
    let compatible = match dev.strings("compatible") {
        Ok(list) if list.is_empty() => {
            problems.push(String::from("property 'compatible': missing"));
            Vec::new()
        }
        Ok(list) => list.iter().map(|s| s.to_string()).collect(),
        Err(e) => {
            problems.push(dt_problem(&e));
            Vec::new()
        }
    };
    let regs = match dev.cells("reg") {
        Ok(Some(cells)) if !cells.is_empty() && cells.len() % 4 == 0 => cells
            .chunks_exact(4)
            .map(|c| {
                (
                    u64::from(c[0]) << 32 | u64::from(c[1]),
                    u64::from(c[2]) << 32 | u64::from(c[3]),
                )
            })
            .collect::<Vec<_>>(),
        Ok(Some(_)) => {
            problems.push(String::from(
                "property 'reg': must be 64-bit <address size> pairs (/bits/ 64 <a s>)",
            ));
            Vec::new()
        }
        Ok(None) => {
            problems.push(String::from("property 'reg': missing"));
            Vec::new()
        }
        Err(e) => {
            problems.push(dt_problem(&e));
            Vec::new()
        }
    };
    for &(addr, size) in &regs {
        if size == 0 || addr.checked_add(size).is_none() {
            problems.push(format!(
                "property 'reg': window {addr:#x}+{size:#x} is empty or wraps"
            ));
        }
    }
    let interrupts = match dev.cells("interrupts") {
        Ok(None) => Vec::new(),
        Ok(Some(cells)) if cells.len() % 3 == 0 => {
            let mut list = Vec::new();
            for c in cells.chunks_exact(3) {
                let (kind, spi, flags) = (c[0], c[1], c[2]);
                if kind != 0 {
                    problems.push(format!(
                        "property 'interrupts': type {kind}: only SPIs (type 0) can be passed through"
                    ));
                } else if spi > MAX_SPI {
                    problems.push(format!(
                        "property 'interrupts': SPI {spi} is above {MAX_SPI}"
                    ));
                } else if !matches!(flags & 0xf, 1 | 4) {
                    problems.push(format!(
                        "property 'interrupts': flags {flags:#x}: 1 (edge rising) or 4 (level high)"
                    ));
                } else if list.iter().any(|&(s, _)| s == spi) {
                    problems.push(format!("property 'interrupts': SPI {spi} listed twice"));
                } else {
                    list.push((spi, flags & 0xf));
                }
            }
            list
        }
        Ok(Some(_)) => {
            problems.push(String::from(
                "property 'interrupts': must be <0 spi flags> triplets",
            ));
            Vec::new()
        }
        Err(e) => {
            problems.push(dt_problem(&e));
            Vec::new()
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(DeviceSpec {
        name: dev.name().to_string(),
        compatible,
        regs,
        interrupts,
        dma_coherent: dev.prop("dma-coherent").is_some(),
    })
}

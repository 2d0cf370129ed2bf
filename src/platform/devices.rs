//! The platform's devices: every enabled node with a `reg` that translates to CPU physical
//! addresses ([`DeviceNode`]), and from them the MMIO windows the hypervisor leaves to the
//! resource manager ([`super::Platform::free_device_windows`]).
//!
//! Nodes that are not devices are skipped: the root, `device_type = "memory"` nodes and
//! `/reserved-memory` (RAM), nodes whose addresses do not translate to the root (`/cpus`, whose
//! `reg` is an MPIDR; a bus without `ranges`), and nodes with a `reg` that does not decode. A
//! device tree the hypervisor boots from is never refused for a device node it cannot read: such
//! a node just has no windows.

use alloc::string::String;
use alloc::vec::Vec;

use super::gic::{Gic, IrqSpec};
use super::reg;
use super::tree::Tree;
use crate::mm::addr::{PAGE_SIZE, PhysRange};

/// A device node: its MMIO windows and the interrupts it has on the GIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    /// Full path of the node.
    pub path: String,
    /// Its `reg` entries as CPU physical ranges (non-empty ones only).
    pub regs: Vec<PhysRange>,
    /// Its `interrupts` when the GIC is its interrupt parent (empty otherwise).
    pub irqs: Vec<IrqSpec>,
}

/// Every device node of `tree`, in tree order.
pub(super) fn enumerate(tree: &Tree<'_>, gic: &Gic<'_, '_>) -> Vec<DeviceNode> {
    let mut out = Vec::new();
    for node in tree.nodes() {
        let Some(parent) = node.parent() else {
            continue;
        };
        if node.prop("reg").is_none() || node.is_disabled() || node.device_type() == Some("memory")
        {
            continue;
        }
        let path = node.path();
        if path == "/reserved-memory" || path.starts_with("/reserved-memory/") {
            continue;
        }
        if reg::size_cells(parent).unwrap_or(0) == 0 {
            continue;
        }
        let Ok(regs) = reg::reg(node) else {
            continue;
        };
        let regs: Vec<PhysRange> = regs.into_iter().filter(|r| !r.is_empty()).collect();
        if regs.is_empty() {
            continue;
        }
        let irqs = if gic.is_parent_of(node) {
            gic.irqs(node, "interrupts").unwrap_or_default()
        } else {
            Vec::new()
        };
        out.push(DeviceNode { path, regs, irqs });
    }
    out
}

/// Sort `ranges` and merge those that overlap or touch.
pub(super) fn merge(mut ranges: Vec<PhysRange>) -> Vec<PhysRange> {
    ranges.sort_by_key(|r| r.start());
    let mut out: Vec<PhysRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        if let Some(last) = out.last_mut()
            && r.start() <= last.end()
        {
            if r.end() > last.end()
                && let Some(m) = PhysRange::new(last.start(), r.end())
            {
                *last = m;
            }
            continue;
        }
        out.push(r);
    }
    out
}

/// Whole pages around `r`.
pub(super) fn pages(r: &PhysRange) -> PhysRange {
    r.align_out(PAGE_SIZE)
}

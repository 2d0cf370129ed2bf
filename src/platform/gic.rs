//! The GICv3 node (`compatible = "arm,gic-v3"`): [`GicInfo`], and decoding of interrupt
//! specifiers that have it as interrupt parent into [`IrqSpec`]s.

use alloc::string::String;
use alloc::vec::Vec;

use super::error::DtError;
use super::node::NodeRef;
use super::reg;
use super::tree::Tree;
use crate::mm::addr::PhysRange;

/// One interrupt as the GIC sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqSpec {
    /// GIC INTID: 16..32 for PPIs, 32.. for SPIs.
    pub intid: u32,
    /// `true` for level-sensitive, `false` for edge-triggered.
    pub level: bool,
}

/// Where the GICv3 lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GicInfo {
    /// The distributor (GICD) frame.
    pub dist: PhysRange,
    /// The redistributor (GICR) regions, `#redistributor-regions` of them (default 1).
    pub redists: Vec<PhysRange>,
    /// The virtual-interface maintenance interrupt (a PPI), from the node's `interrupts`.
    pub maintenance: Option<IrqSpec>,
    /// Full path of the GIC node.
    pub node: String,
}

/// The GICv3 node and its `#interrupt-cells` (3, or 4 with a PPI-partition phandle).
pub(super) struct Gic<'t, 'a> {
    node: NodeRef<'t, 'a>,
    cells: usize,
}

impl<'t, 'a> Gic<'t, 'a> {
    /// Finds the first enabled `arm,gic-v3` node.
    pub(super) fn find(tree: &'t Tree<'a>) -> Result<Self, DtError> {
        let node = tree
            .find_compatible("arm,gic-v3")
            .ok_or(DtError::tree("no GICv3 node (compatible \"arm,gic-v3\")"))?;
        let cells = match node.u32_prop("#interrupt-cells")? {
            Some(n @ (3 | 4)) => n as usize,
            Some(_) => return Err(node.err(Some("#interrupt-cells"), "must be 3 or 4")),
            None => return Err(node.err(Some("#interrupt-cells"), "missing")),
        };
        Ok(Self { node, cells })
    }

    /// Decodes the GIC node itself.
    pub(super) fn info(&self) -> Result<GicInfo, DtError> {
        let regs = reg::reg(self.node)?;
        let count = self.node.u32_prop("#redistributor-regions")?.unwrap_or(1) as usize;
        if count == 0 {
            return Err(self.node.err(Some("#redistributor-regions"), "zero"));
        }
        let Some((dist, rest)) = regs.split_first() else {
            return Err(self.node.err(Some("reg"), "empty"));
        };
        let redists = rest.get(..count).ok_or_else(|| {
            self.node
                .err(Some("reg"), "fewer entries than 1 + #redistributor-regions")
        })?;
        let maintenance = self.irqs(self.node, "interrupts")?.first().copied();
        Ok(GicInfo {
            dist: *dist,
            redists: redists.to_vec(),
            maintenance,
            node: self.node.path(),
        })
    }

    /// Whether `dev`'s interrupt parent is this GIC. As in Linux, the parent is found through
    /// `interrupt-parent` (here or inherited) or else the tree parent, up to an interrupt
    /// controller (a node with `#interrupt-cells`).
    pub(super) fn is_parent_of(&self, dev: NodeRef<'_, '_>) -> bool {
        let tree_size = self.node_count();
        let mut cur = dev;
        for _ in 0..tree_size {
            let next = match cur.u32_prop("interrupt-parent") {
                Ok(Some(ph)) => self.by_phandle(ph),
                Ok(None) => cur.parent(),
                Err(_) => None,
            };
            let Some(next) = next else { return false };
            if next.prop("#interrupt-cells").is_some() {
                return next.same(self.node);
            }
            cur = next;
        }
        false
    }

    fn node_count(&self) -> usize {
        self.node.tree().nodes().count()
    }

    fn by_phandle(&self, ph: u32) -> Option<NodeRef<'t, 'a>> {
        self.node.tree().by_phandle(ph)
    }

    /// Decodes every specifier of property `name` of `dev` (empty if absent), assuming this GIC
    /// is its interrupt parent.
    pub(super) fn irqs(
        &self,
        dev: NodeRef<'_, '_>,
        name: &'static str,
    ) -> Result<Vec<IrqSpec>, DtError> {
        let cells = dev.cells(name)?.unwrap_or_default();
        if cells.len() % self.cells != 0 {
            return Err(dev.err(Some(name), "not a whole number of GIC interrupt specifiers"));
        }
        cells
            .chunks_exact(self.cells)
            .map(|spec| decode(spec).map_err(|problem| dev.err(Some(name), problem)))
            .collect()
    }
}

/// Decodes one `<type number flags [ppi-partition]>` GICv3 specifier.
fn decode(spec: &[u32]) -> Result<IrqSpec, &'static str> {
    let (&kind, &num, &flags) = match spec {
        [k, n, f, ..] => (k, n, f),
        _ => return Err("interrupt specifier shorter than 3 cells"),
    };
    let intid = match kind {
        0 if num < 988 => 32 + num,
        1 if num < 16 => 16 + num,
        0 | 1 => return Err("interrupt number out of range"),
        _ => return Err("interrupt type is neither SPI (0) nor PPI (1)"),
    };
    // Bits 3:0: 1 rising / 2 falling edge, 4 high / 8 low level; 0 (none) keeps the GIC default,
    // level. Bits 15:8 (GICv2 CPU mask) are ignored.
    let level = match flags & 0xf {
        1 | 2 => false,
        0 | 4 | 8 => true,
        _ => return Err("interrupt flags mix trigger types"),
    };
    Ok(IrqSpec { intid, level })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fdt::with_tree;
    use super::super::fixtures::*;
    use super::*;
    use alloc::string::ToString;

    fn info(dtb: &[u8]) -> Result<GicInfo, DtError> {
        with_tree(dtb, |t| Gic::find(t)?.info())
    }

    fn r(base: u64, size: u64) -> PhysRange {
        PhysRange::from_base_size(base, size).unwrap()
    }

    #[test]
    fn qemu_virt_gic() {
        let gic = info(VIRT_SMP2).unwrap();
        assert_eq!(gic.dist, r(0x0800_0000, 0x1_0000));
        assert_eq!(gic.redists, [r(0x080A_0000, 0xF6_0000)]);
        assert_eq!(
            gic.maintenance,
            Some(IrqSpec {
                intid: 25,
                level: true
            })
        );
        assert_eq!(gic.node, "/intc@8000000");
    }

    #[test]
    fn soc_gic_two_redistributor_regions_four_cells() {
        let gic = info(SOC).unwrap();
        assert_eq!(gic.dist, r(0x2100_0000, 0x1_0000));
        assert_eq!(
            gic.redists,
            [r(0x2110_0000, 0x4_0000), r(0x2120_0000, 0x4_0000)]
        );
        assert_eq!(
            gic.maintenance,
            Some(IrqSpec {
                intid: 25,
                level: true
            })
        );
        assert_eq!(gic.node, "/soc/interrupt-controller@1000000");
    }

    #[test]
    fn gic_errors_name_node_and_property() {
        let e = info(NEG_NO_GIC).unwrap_err();
        assert_eq!(
            e.to_string(),
            "device tree: no GICv3 node (compatible \"arm,gic-v3\")"
        );
        let e = info(NEG_GIC_REG_TRUNCATED).unwrap_err();
        assert_eq!(
            (e.node.as_str(), e.property),
            ("/intc@8000000", Some("reg"))
        );
    }

    #[test]
    fn interrupt_parent_is_resolved() {
        with_tree(SOC, |t| {
            let gic = Gic::find(t)?;
            assert!(gic.is_parent_of(t.find_path("/timer").unwrap()));
            assert!(gic.is_parent_of(t.find_path("/soc/bus/serial").unwrap()));
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn specifier_decoding() {
        assert_eq!(
            decode(&[0, 1, 4]),
            Ok(IrqSpec {
                intid: 33,
                level: true
            })
        );
        assert_eq!(
            decode(&[1, 14, 0xf08]),
            Ok(IrqSpec {
                intid: 30,
                level: true
            })
        );
        assert_eq!(
            decode(&[0, 16, 1]),
            Ok(IrqSpec {
                intid: 48,
                level: false
            })
        );
        assert_eq!(
            decode(&[1, 9, 4, 0]),
            Ok(IrqSpec {
                intid: 25,
                level: true
            })
        );
        assert!(decode(&[1, 16, 4]).is_err());
        assert!(decode(&[0, 988, 4]).is_err());
        assert!(decode(&[2, 0, 4]).is_err());
        assert!(decode(&[0, 1, 5]).is_err());
        assert!(decode(&[0, 1]).is_err());
    }
}

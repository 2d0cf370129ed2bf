//! Memory the hypervisor must not hand out: header `/memreserve/` entries and the children of
//! `/reserved-memory` that have a `reg` ([`Reserved`]).

use alloc::string::String;
use alloc::vec::Vec;

use super::error::DtError;
use super::reg;
use super::tree::Tree;
use crate::mm::addr::PhysRange;

/// Where a reservation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservedKind {
    /// A `/memreserve/` entry of the blob header.
    MemReserve,
    /// A child of `/reserved-memory` with a static `reg`.
    ReservedMemoryNode,
}

/// One reserved physical range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    /// The node's full path, or `/memreserve/` for header entries.
    pub name: String,
    /// The reserved bytes.
    pub range: PhysRange,
    /// `no-map`: the range must not even be mapped (e.g. secure firmware).
    pub no_map: bool,
    /// Where the entry came from.
    pub kind: ReservedKind,
}

/// Header entries first, then `/reserved-memory` children in tree order; empty ranges and
/// disabled nodes are skipped, children without `reg` (dynamic pools) ignored.
pub(super) fn regions(tree: &Tree<'_>) -> Result<Vec<Reserved>, DtError> {
    let mut out = Vec::new();
    for &(base, size) in &tree.memreserve {
        let range = PhysRange::from_base_size(base, size).ok_or(DtError::tree(
            "/memreserve/ entry wraps past the address space",
        ))?;
        if !range.is_empty() {
            let name = String::from("/memreserve/");
            out.push(Reserved {
                name,
                range,
                no_map: false,
                kind: ReservedKind::MemReserve,
            });
        }
    }
    let Some(parent) = tree.find_path("/reserved-memory") else {
        return Ok(out);
    };
    for node in parent
        .children()
        .filter(|n| n.prop("reg").is_some() && !n.is_disabled())
    {
        let no_map = node.prop("no-map").is_some();
        for range in reg::reg(node)?.into_iter().filter(|r| !r.is_empty()) {
            let kind = ReservedKind::ReservedMemoryNode;
            out.push(Reserved {
                name: node.path(),
                range,
                no_map,
                kind,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fdt::with_tree;
    use super::super::fixtures::*;
    use super::*;

    fn r(base: u64, size: u64) -> PhysRange {
        PhysRange::from_base_size(base, size).unwrap()
    }

    #[test]
    fn soc_memreserve_and_reserved_memory() {
        let got = with_tree(SOC, regions).unwrap();
        let want = [
            (
                "/memreserve/",
                r(0x8000_0000, 0x1_0000),
                false,
                ReservedKind::MemReserve,
            ),
            (
                "/reserved-memory/secmon@81000000",
                r(0x8100_0000, 0x20_0000),
                true,
                ReservedKind::ReservedMemoryNode,
            ),
            (
                "/reserved-memory/ramoops@8f000000",
                r(0x8f00_0000, 0x10_0000),
                false,
                ReservedKind::ReservedMemoryNode,
            ),
        ];
        let got: Vec<_> = got
            .iter()
            .map(|x| (x.name.as_str(), x.range, x.no_map, x.kind))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn qemu_virt_reserves_nothing() {
        assert!(with_tree(VIRT_SMP2, regions).unwrap().is_empty());
    }
}

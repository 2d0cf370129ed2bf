//! `reg` decoding: `#address-cells`/`#size-cells` of the parent bus and translation of bus
//! addresses to CPU physical addresses through the ancestors' `ranges`.

use alloc::vec::Vec;

use super::error::DtError;
use super::node::NodeRef;
use crate::mm::addr::PhysRange;

/// Largest cell count accepted for an address or size.
const MAX_CELLS: usize = 4;

/// `#address-cells` of `bus` (what its children use), 2 if absent as the DT spec says.
pub(super) fn address_cells(bus: NodeRef<'_, '_>) -> Result<usize, DtError> {
    count(bus, "#address-cells", 2)
}

/// `#size-cells` of `bus` (what its children use), 1 if absent as the DT spec says.
pub(super) fn size_cells(bus: NodeRef<'_, '_>) -> Result<usize, DtError> {
    count(bus, "#size-cells", 1)
}

fn count(bus: NodeRef<'_, '_>, name: &'static str, default: usize) -> Result<usize, DtError> {
    let n = bus.u32_prop(name)?.map_or(default, |n| n as usize);
    if n > MAX_CELLS {
        return Err(bus.err(Some(name), "more than 4 cells are not supported"));
    }
    Ok(n)
}

/// Big-endian cells folded into one number, `None` if it does not fit 64 bits.
pub(super) fn fold(cells: &[u32]) -> Option<u64> {
    let wide = cells
        .iter()
        .fold(0u128, |acc, c| (acc << 32) | u128::from(*c));
    u64::try_from(wide).ok()
}

/// Splits property `name` of `node` into `(address, size)` pairs of `ac` and `sc` cells.
pub(super) fn pairs(
    node: NodeRef<'_, '_>,
    name: &'static str,
    ac: usize,
    sc: usize,
) -> Result<Option<Vec<(u64, u64)>>, DtError> {
    let Some(cells) = node.cells(name)? else {
        return Ok(None);
    };
    let entry = ac + sc;
    if entry == 0 || cells.len() % entry != 0 {
        return Err(node.err(Some(name), "not a whole number of (address, size) entries"));
    }
    let wide = || node.err(Some(name), "value does not fit in 64 bits");
    let mut out = Vec::with_capacity(cells.len() / entry);
    for e in cells.chunks_exact(entry) {
        let (a, s) = e.split_at(ac);
        out.push((fold(a).ok_or_else(wide)?, fold(s).ok_or_else(wide)?));
    }
    Ok(Some(out))
}

/// Every `reg` entry of `node` as a CPU physical range. Missing `reg` is an error.
pub(super) fn reg(node: NodeRef<'_, '_>) -> Result<Vec<PhysRange>, DtError> {
    let parent = node
        .parent()
        .ok_or_else(|| node.err(Some("reg"), "root node has no address"))?;
    let (ac, sc) = (address_cells(parent)?, size_cells(parent)?);
    if ac == 0 {
        return Err(parent.err(Some("#address-cells"), "zero, so children have no address"));
    }
    let entries = pairs(node, "reg", ac, sc)?.ok_or_else(|| node.err(Some("reg"), "missing"))?;
    let mut out = Vec::with_capacity(entries.len());
    for (addr, size) in entries {
        let base = translate(parent, addr)?;
        let range = PhysRange::from_base_size(base, size);
        out.push(range.ok_or_else(|| node.err(Some("reg"), "range wraps past the address space"))?);
    }
    Ok(out)
}

/// The first `reg` entry of `node`; an error if there is none.
pub(super) fn first_reg(node: NodeRef<'_, '_>) -> Result<PhysRange, DtError> {
    reg(node)?
        .first()
        .copied()
        .ok_or_else(|| node.err(Some("reg"), "empty"))
}

/// Translates `addr`, in the address space of `bus`'s children, up to the root.
fn translate(mut bus: NodeRef<'_, '_>, mut addr: u64) -> Result<u64, DtError> {
    while let Some(up) = bus.parent() {
        let (ac, sc, pac) = (address_cells(bus)?, size_cells(bus)?, address_cells(up)?);
        let Some(cells) = bus.cells("ranges")? else {
            return Err(bus.err(
                Some("ranges"),
                "missing, so child addresses are not translatable",
            ));
        };
        if !cells.is_empty() {
            let entry = ac + pac + sc;
            if entry == 0 || cells.len() % entry != 0 {
                return Err(bus.err(Some("ranges"), "not a whole number of entries"));
            }
            let wide = || bus.err(Some("ranges"), "value does not fit in 64 bits");
            let mut hit = None;
            for e in cells.chunks_exact(entry) {
                let (child, rest) = e.split_at(ac);
                let (parent, size) = rest.split_at(pac);
                let (child, parent) = (
                    fold(child).ok_or_else(wide)?,
                    fold(parent).ok_or_else(wide)?,
                );
                let size = fold(size).ok_or_else(wide)?;
                if addr >= child && addr - child < size {
                    hit = Some(parent.checked_add(addr - child).ok_or_else(wide)?);
                    break;
                }
            }
            addr = hit.ok_or_else(|| bus.err(Some("ranges"), "no entry covers a child address"))?;
        }
        bus = up;
    }
    Ok(addr)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fdt::with_tree;
    use super::super::fixtures::*;
    use super::*;
    use alloc::string::ToString;

    fn reg_at(dtb: &[u8], path: &str) -> Result<Vec<PhysRange>, DtError> {
        with_tree(dtb, |t| reg(t.find_path(path).unwrap()))
    }

    fn r(base: u64, size: u64) -> PhysRange {
        PhysRange::from_base_size(base, size).unwrap()
    }

    #[test]
    fn root_devices_are_untranslated() {
        let flash = reg_at(VIRT_SMP2, "/flash@0").unwrap();
        assert_eq!(flash, [r(0, 0x400_0000), r(0x400_0000, 0x400_0000)]);
        let its = reg_at(VIRT_SMP2, "/intc@8000000/its@8080000").unwrap();
        assert_eq!(its, [r(0x808_0000, 0x2_0000)]);
    }

    #[test]
    fn soc_ranges_translate_through_two_buses() {
        let uart = reg_at(SOC, "/soc/bus@100000/serial@c0000").unwrap();
        assert_eq!(uart, [r(0x201c_0000, 0x1000)]);
        let ns16550 = reg_at(SOC, "/soc/serial@1b0000").unwrap();
        assert_eq!(ns16550, [r(0x201b_0000, 0x100)]);
    }

    #[test]
    fn missing_ranges_and_bad_reg_are_named() {
        let e = reg_at(NEG_SOC_NO_RANGES, "/soc/serial@1b0000").unwrap_err();
        assert_eq!(
            e.to_string(),
            "device tree node '/soc' property 'ranges': missing, so child addresses are not translatable"
        );
        let e = reg_at(NEG_GIC_REG_TRUNCATED, "/intc@8000000").unwrap_err();
        assert_eq!(
            e.to_string(),
            "device tree node '/intc@8000000' property 'reg': not a whole number of (address, size) entries"
        );
        let e = reg_at(VIRT_SMP2, "/psci").unwrap_err();
        assert_eq!(
            e.to_string(),
            "device tree node '/psci' property 'reg': missing"
        );
    }

    #[test]
    fn fold_rejects_wide_values() {
        assert_eq!(fold(&[]), Some(0));
        assert_eq!(fold(&[1, 2]), Some(0x1_0000_0002));
        assert_eq!(fold(&[0, 1, 2]), Some(0x1_0000_0002));
        assert_eq!(fold(&[1, 0, 0]), None);
    }
}

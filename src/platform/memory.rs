//! RAM: the `reg` of every `device_type = "memory"` node, as sorted [`PhysRange`]s.

use alloc::vec::Vec;

use super::error::DtError;
use super::reg;
use super::tree::Tree;
use crate::mm::addr::PhysRange;

/// Every non-empty `reg` entry of every enabled memory node (whatever its name), sorted.
pub(super) fn banks(tree: &Tree<'_>) -> Result<Vec<PhysRange>, DtError> {
    let mut banks = Vec::new();
    for node in tree
        .nodes()
        .filter(|n| n.device_type() == Some("memory") && !n.is_disabled())
    {
        banks.extend(reg::reg(node)?.into_iter().filter(|r| !r.is_empty()));
    }
    if banks.is_empty() {
        return Err(DtError::tree(
            "no memory node (device_type \"memory\") with a non-empty reg",
        ));
    }
    banks.sort();
    Ok(banks)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fdt::with_tree;
    use super::super::fixtures::*;
    use super::*;

    fn banks_of(dtb: &[u8]) -> Result<Vec<PhysRange>, DtError> {
        with_tree(dtb, banks)
    }

    fn r(base: u64, size: u64) -> PhysRange {
        PhysRange::from_base_size(base, size).unwrap()
    }

    #[test]
    fn qemu_virt_ram_sizes() {
        assert_eq!(banks_of(VIRT_SMP1).unwrap(), [r(0x4000_0000, 512 << 20)]);
        assert_eq!(banks_of(VIRT_SMP2).unwrap(), [r(0x4000_0000, 1 << 30)]);
        assert_eq!(banks_of(VIRT_SMP4).unwrap(), [r(0x4000_0000, 2 << 30)]);
        assert_eq!(banks_of(VIRT_SMP8).unwrap(), [r(0x4000_0000, 1 << 30)]);
    }

    #[test]
    fn soc_banks_sorted_empty_and_disabled_dropped() {
        let banks = banks_of(SOC).unwrap();
        assert_eq!(
            banks,
            [r(0x8000_0000, 0x4000_0000), r(0x8_8000_0000, 0x8000_0000)]
        );
    }

    #[test]
    fn no_memory_is_an_error() {
        let e = banks_of(NEG_NO_MEMORY).unwrap_err();
        assert_eq!(
            e.problem,
            "no memory node (device_type \"memory\") with a non-empty reg"
        );
    }
}

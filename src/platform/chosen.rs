//! What the boot loader passes in `/chosen`: the command line (`bootargs`) and the initial
//! ramdisk (`linux,initrd-start`/`-end`). The console (`stdout-path`) is in `uart.rs`.

use alloc::string::{String, ToString};

use super::error::DtError;
use super::node::NodeRef;
use super::reg::fold;
use super::tree::Tree;
use crate::mm::addr::PhysRange;

/// `/chosen` `bootargs`, empty if there is none.
pub(super) fn bootargs(tree: &Tree<'_>) -> Result<String, DtError> {
    let Some(chosen) = tree.find_path("/chosen") else {
        return Ok(String::new());
    };
    Ok(chosen.str_prop("bootargs")?.unwrap_or_default().to_string())
}

/// The initrd, if `/chosen` names one. Each bound is one or two cells, told apart by the
/// property's length; an empty initrd counts as none.
pub(super) fn initrd(tree: &Tree<'_>) -> Result<Option<PhysRange>, DtError> {
    let Some(chosen) = tree.find_path("/chosen") else {
        return Ok(None);
    };
    let start = bound(chosen, "linux,initrd-start")?;
    let end = bound(chosen, "linux,initrd-end")?;
    match (start, end) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(chosen.err(Some("linux,initrd-end"), "missing")),
        (None, Some(_)) => Err(chosen.err(Some("linux,initrd-start"), "missing")),
        (Some(start), Some(end)) => {
            let range = PhysRange::new(start, end)
                .ok_or_else(|| chosen.err(Some("linux,initrd-end"), "below linux,initrd-start"))?;
            Ok(Some(range).filter(|r| !r.is_empty()))
        }
    }
}

fn bound(chosen: NodeRef<'_, '_>, name: &'static str) -> Result<Option<u64>, DtError> {
    match chosen.cells(name)? {
        None => Ok(None),
        Some(cells) if (1..=2).contains(&cells.len()) => Ok(fold(&cells)),
        Some(_) => Err(chosen.err(Some(name), "must be 1 or 2 cells")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fdt::with_tree;
    use super::super::fixtures::*;
    use super::*;

    fn chosen(dtb: &[u8]) -> (String, Option<PhysRange>) {
        with_tree(dtb, |t| Ok((bootargs(t)?, initrd(t)?))).unwrap()
    }

    #[test]
    fn qemu_kernel_boot_has_one_cell_initrd_and_bootargs() {
        let (args, initrd) = chosen(VIRT_INITRD);
        assert_eq!(args, "loglevel=debug foo");
        // QEMU places the initrd 128 MiB into RAM; `end` is exact (the file is 19 bytes).
        assert_eq!(initrd, PhysRange::new(0x4800_0000, 0x4800_0013));
    }

    #[test]
    fn plain_qemu_has_neither() {
        assert_eq!(chosen(VIRT_SMP2), (String::new(), None));
    }

    #[test]
    fn soc_two_cell_initrd() {
        let (args, initrd) = chosen(SOC);
        assert_eq!(args, "console=ttyAMA0 earlycon");
        assert_eq!(initrd, PhysRange::new(0x8800_0000, 0x8820_0000));
    }
}

//! The console UART named by `/chosen` `stdout-path`: [`UartInfo`], also available on its own
//! through [`stdout_uart`] for reporting a failed parse.

use alloc::string::{String, ToString};

use super::error::DtError;
use super::fdt::with_tree;
use super::gic::{Gic, IrqSpec};
use super::node::NodeRef;
use super::reg;
use super::tree::Tree;
use crate::mm::addr::PhysRange;

/// The console UART.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UartInfo {
    /// Full path of the UART node.
    pub path: String,
    /// Its first `reg` entry, translated to a CPU physical address.
    pub base: PhysRange,
    /// Its first interrupt, if it has one routed to the GICv3.
    pub irq: Option<IrqSpec>,
    /// Whether `compatible` lists `"arm,pl011"`.
    pub compatible_pl011: bool,
}

/// Best-effort lookup of only the console, for printing a [`DtError`] when
/// [`super::Platform::parse`] fails. `irq` is `None` unless the GIC decodes too.
pub fn stdout_uart(dtb: &[u8]) -> Option<UartInfo> {
    with_tree(dtb, |t| console(t, Gic::find(t).ok().as_ref())).ok()
}

/// The node `stdout-path` (or `linux,stdout-path`) names, directly or through `/aliases`,
/// with any `:options` suffix dropped.
fn stdout_node<'t, 'a>(tree: &'t Tree<'a>) -> Result<NodeRef<'t, 'a>, DtError> {
    let missing = DtError::new("/chosen".to_string(), Some("stdout-path"), "missing");
    let chosen = tree.find_path("/chosen").ok_or_else(|| missing.clone())?;
    let (prop, value) = match chosen.str_prop("stdout-path")? {
        Some(v) => ("stdout-path", v),
        None => (
            "linux,stdout-path",
            chosen.str_prop("linux,stdout-path")?.ok_or(missing)?,
        ),
    };
    let name = value.split(':').next().unwrap_or(value);
    let path = if name.starts_with('/') {
        name
    } else {
        let alias = tree.find_path("/aliases").and_then(|a| a.prop(name));
        let alias = alias.ok_or_else(|| chosen.err(Some(prop), "alias not found in /aliases"))?;
        let text = alias
            .strip_suffix(&[0])
            .and_then(|t| core::str::from_utf8(t).ok());
        text.ok_or_else(|| chosen.err(Some(prop), "alias in /aliases is not a string"))?
    };
    tree.find_path(path)
        .ok_or_else(|| chosen.err(Some(prop), "names no node in the tree"))
}

/// Decodes the console; `gic`, if given, decodes its interrupt.
pub(super) fn console(tree: &Tree<'_>, gic: Option<&Gic<'_, '_>>) -> Result<UartInfo, DtError> {
    let node = stdout_node(tree)?;
    if node.is_disabled() {
        return Err(node.err(Some("status"), "console UART is disabled"));
    }
    let irq = match gic {
        Some(gic) if gic.is_parent_of(node) => gic.irqs(node, "interrupts")?.first().copied(),
        _ => None,
    };
    Ok(UartInfo {
        path: node.path(),
        base: reg::first_reg(node)?,
        irq,
        compatible_pl011: node.is_compatible("arm,pl011"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    fn uart(dtb: &[u8]) -> Result<UartInfo, DtError> {
        with_tree(dtb, |t| console(t, Some(&Gic::find(t)?)))
    }

    #[test]
    fn qemu_virt_pl011() {
        let u = uart(VIRT_SMP2).unwrap();
        assert_eq!(u.path, "/pl011@9000000");
        assert_eq!(
            u.base,
            PhysRange::from_base_size(0x0900_0000, 0x1000).unwrap()
        );
        assert_eq!(
            u.irq,
            Some(IrqSpec {
                intid: 33,
                level: true
            })
        );
        assert!(u.compatible_pl011);
    }

    #[test]
    fn soc_alias_with_options_behind_two_buses() {
        let u = uart(SOC).unwrap();
        assert_eq!(u.path, "/soc/bus@100000/serial@c0000");
        assert_eq!(
            u.base,
            PhysRange::from_base_size(0x201c_0000, 0x1000).unwrap()
        );
        assert_eq!(
            u.irq,
            Some(IrqSpec {
                intid: 33,
                level: true
            })
        );
    }

    #[test]
    fn legacy_property_with_options() {
        assert_eq!(uart(VIRT_LEGACY_STDOUT).unwrap(), uart(VIRT_SMP2).unwrap());
    }

    #[test]
    fn console_survives_a_broken_tree() {
        let u = stdout_uart(NEG_NO_GIC).unwrap();
        assert_eq!((u.path.as_str(), u.irq), ("/pl011@9000000", None));
        assert_eq!(
            stdout_uart(NEG_PSCI_NO_METHOD)
                .unwrap()
                .irq
                .map(|i| i.intid),
            Some(33)
        );
        assert!(stdout_uart(NEG_NO_STDOUT_PATH).is_none());
        assert!(stdout_uart(b"not a dtb").is_none());
    }

    #[test]
    fn missing_or_disabled_console_is_named() {
        let e = uart(NEG_NO_STDOUT_PATH).unwrap_err();
        assert_eq!(
            e.to_string(),
            "device tree node '/chosen' property 'stdout-path': missing"
        );
        let e = uart(NEG_UART_DISABLED).unwrap_err();
        assert_eq!(
            (e.node.as_str(), e.property),
            ("/pl011@9000000", Some("status"))
        );
    }
}

//! The PSCI firmware node (`compatible = "arm,psci-1.0"`, `"arm,psci-0.2"` or `"arm,psci"`):
//! [`PsciInfo`] and its [`Conduit`].

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::error::DtError;
use super::tree::Tree;

const COMPATIBLES: [&str; 3] = ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"];

/// The instruction that calls PSCI firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conduit {
    /// `SMC #0`, to EL3 firmware.
    Smc,
    /// `HVC #0`, to a hypervisor beneath us (nested virtualisation).
    Hvc,
}

/// How to reach PSCI firmware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsciInfo {
    /// From the node's `method`.
    pub conduit: Conduit,
    /// The node's whole `compatible` list, most specific first.
    pub compatible: Vec<String>,
}

/// Decodes the first enabled PSCI node.
pub(super) fn find(tree: &Tree<'_>) -> Result<PsciInfo, DtError> {
    let node = tree
        .nodes()
        .find(|n| COMPATIBLES.iter().any(|c| n.is_compatible(c)) && !n.is_disabled())
        .ok_or(DtError::tree(
            "no PSCI node (compatible \"arm,psci-1.0\", \"arm,psci-0.2\" or \"arm,psci\")",
        ))?;
    let conduit = match node.str_prop("method")? {
        Some("smc") => Conduit::Smc,
        Some("hvc") => Conduit::Hvc,
        Some(_) => return Err(node.err(Some("method"), "neither \"smc\" nor \"hvc\"")),
        None => return Err(node.err(Some("method"), "missing")),
    };
    let compatible = node
        .strings("compatible")?
        .iter()
        .map(|s| s.to_string())
        .collect();
    Ok(PsciInfo {
        conduit,
        compatible,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fdt::with_tree;
    use super::super::fixtures::*;
    use super::*;

    fn psci(dtb: &[u8]) -> Result<PsciInfo, DtError> {
        with_tree(dtb, find)
    }

    #[test]
    fn qemu_virt_uses_smc() {
        let p = psci(VIRT_SMP2).unwrap();
        assert_eq!(p.conduit, Conduit::Smc);
        assert_eq!(p.compatible, ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]);
    }

    #[test]
    fn soc_uses_hvc() {
        let p = psci(SOC).unwrap();
        assert_eq!(
            (p.conduit, p.compatible),
            (Conduit::Hvc, alloc::vec!["arm,psci-0.2".into()])
        );
    }

    #[test]
    fn bad_or_missing_method_is_named() {
        let e = psci(NEG_PSCI_NO_METHOD).unwrap_err();
        assert_eq!(
            e.to_string(),
            "device tree node '/psci' property 'method': missing"
        );
        let e = psci(NEG_PSCI_BAD_METHOD).unwrap_err();
        assert_eq!((e.node.as_str(), e.property), ("/psci", Some("method")));
    }
}

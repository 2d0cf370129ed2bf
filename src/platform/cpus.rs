//! The CPUs under `/cpus`: [`CpuInfo`] for each usable `device_type = "cpu"` node.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::error::DtError;
use super::reg;
use super::tree::Tree;

/// One CPU the device tree offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuInfo {
    /// The affinity fields of MPIDR_EL1 (Aff3 in bits 39:32), from `reg`.
    pub mpidr: u64,
    /// Full path of the CPU node.
    pub node: String,
    /// `enable-method` (`"psci"`, `"spin-table"`), if given.
    pub enable_method: Option<String>,
}

/// The `device_type = "cpu"` children of `/cpus` in tree order, skipping `status` "disabled"
/// or "fail". At least one is required.
pub(super) fn enumerate(tree: &Tree<'_>) -> Result<Vec<CpuInfo>, DtError> {
    let cpus = tree
        .find_path("/cpus")
        .ok_or(DtError::tree("no /cpus node"))?;
    let ac = reg::address_cells(cpus)?;
    if !(1..=2).contains(&ac) {
        return Err(cpus.err(Some("#address-cells"), "must be 1 or 2"));
    }
    let mut out: Vec<CpuInfo> = Vec::new();
    for cpu in cpus
        .children()
        .filter(|c| c.device_type() == Some("cpu") && !c.is_disabled())
    {
        let entries = reg::pairs(cpu, "reg", ac, 0)?;
        let mpidr = entries
            .and_then(|e| e.first().map(|(a, _)| *a))
            .ok_or_else(|| cpu.err(Some("reg"), "missing"))?;
        if out.iter().any(|c| c.mpidr == mpidr) {
            return Err(cpu.err(Some("reg"), "MPIDR repeats an earlier CPU's"));
        }
        let enable_method = cpu.str_prop("enable-method")?.map(|s| s.to_string());
        out.push(CpuInfo {
            mpidr,
            node: cpu.path(),
            enable_method,
        });
    }
    if out.is_empty() {
        return Err(cpus.err(None, "no usable CPU (device_type \"cpu\") child"));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fdt::with_tree;
    use super::super::fixtures::*;
    use super::*;
    use alloc::string::ToString;

    fn cpus(dtb: &[u8]) -> Result<Vec<CpuInfo>, DtError> {
        with_tree(dtb, enumerate)
    }

    #[test]
    fn qemu_virt_cpu_counts_and_mpidrs() {
        for (dtb, n) in [
            (VIRT_SMP1, 1u64),
            (VIRT_SMP2, 2),
            (VIRT_SMP4, 4),
            (VIRT_SMP8, 8),
        ] {
            let cpus = cpus(dtb).unwrap();
            assert_eq!(
                cpus.iter().map(|c| c.mpidr).collect::<Vec<_>>(),
                (0..n).collect::<Vec<_>>()
            );
            // QEMU gives `enable-method = "psci"` only with more than one CPU.
            let method = if n == 1 { None } else { Some("psci") };
            assert!(cpus.iter().all(|c| c.enable_method.as_deref() == method));
        }
        assert_eq!(cpus(VIRT_SMP2).unwrap()[1].node, "/cpus/cpu@1");
    }

    #[test]
    fn soc_two_cell_mpidrs_skip_failed_cpus() {
        let cpus = cpus(SOC).unwrap();
        let ids: Vec<_> = cpus.iter().map(|c| c.mpidr).collect();
        assert_eq!(ids, [0, 0x100, 0x1_0000_0000]);
        assert_eq!(cpus[2].enable_method.as_deref(), Some("spin-table"));
        assert_eq!(cpus[2].node, "/cpus/cpu@100000000");
    }

    #[test]
    fn no_cpu_nodes_is_an_error() {
        let e = cpus(NEG_NO_CPUS).unwrap_err();
        assert_eq!(
            e.to_string(),
            "device tree node '/cpus': no usable CPU (device_type \"cpu\") child"
        );
    }
}

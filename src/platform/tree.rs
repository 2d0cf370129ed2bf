//! [`Tree`]: from the shared `wurley-manifest` crate; the hypervisor's tests of its lookups.

pub(crate) use wurley_manifest::dt::Tree;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fdt::with_tree;
    use super::super::fixtures::*;

    #[test]
    fn paths_resolve_with_and_without_unit_address() {
        with_tree(SOC, |t| {
            let uart = t.find_path("/soc/bus@100000/serial@c0000").unwrap();
            assert_eq!(uart.path(), "/soc/bus@100000/serial@c0000");
            assert!(t.find_path("/soc/bus/serial").unwrap().same(uart));
            assert!(t.find_path("/soc/bus@100001").is_none());
            assert_eq!(t.find_path("/").unwrap().path(), "/");
            assert_eq!(uart.strings("compatible")?, ["arm,pl011", "arm,primecell"]);
            assert_eq!(uart.parent().unwrap().base_name(), "bus");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn children_in_order_and_phandles() {
        with_tree(VIRT_SMP2, |t| {
            let cpus = t.find_path("/cpus").unwrap();
            let names: alloc::vec::Vec<_> = cpus.children().map(|c| c.name()).collect();
            assert_eq!(names, ["cpu-map", "cpu@0", "cpu@1"]);
            assert_eq!(t.by_phandle(0x8003).unwrap().path(), "/intc@8000000");
            assert!(t.by_phandle(0xdead).is_none());
            let psci = t.find_path("/psci").unwrap();
            assert_eq!(psci.u32_prop("cpu_on")?, Some(0xc400_0003));
            assert!(psci.u32_prop("compatible").is_err());
            Ok(())
        })
        .unwrap();
    }
}

//! Tests of the shared `/hypervisor` writer against the kernel's own device-tree reader.

#![allow(clippy::unwrap_used)]
use crate::platform::with_tree;
use alloc::vec;
use guestdt::hypervisor::*;
use vm_fdt::FdtWriter;

#[test]
fn proxy_nodes_follow_the_capability_node_shape() {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    let nodes = [
        HypNode::ProxyVcpu {
            cap: 0x1234_5678_9abc_def0,
            virq: 66,
            index: 1,
            peer: String::from("guest"),
        },
        HypNode::AddrSpace {
            cap: 0xfeed,
            peer: String::from("guest"),
        },
    ];
    write(&mut w, &nodes).unwrap();
    w.end_node(root).unwrap();
    let dtb = w.finish().unwrap();
    with_tree(&dtb, |t| {
        let v = t.find_path("/hypervisor/vcpu@123456789abcdef0").unwrap();
        assert_eq!(
            v.strings("compatible")?,
            ["wurley,proxy-vcpu", "qcom,gunyah-capability"]
        );
        assert_eq!(v.cells("reg")?, Some(vec![0x1234_5678, 0x9abc_def0]));
        assert_eq!(v.cells("interrupts")?, Some(vec![0, 34, 1]));
        assert_eq!(v.cells("wurley,vcpu-index")?, Some(vec![1]));
        assert_eq!(v.strings("peer-name")?, ["guest"]);
        let a = t.find_path("/hypervisor/addrspace@feed").unwrap();
        assert_eq!(a.cells("reg")?, Some(vec![0, 0xfeed]));
        assert_eq!(
            a.strings("compatible")?,
            ["wurley,addrspace", "qcom,gunyah-capability"]
        );
        Ok(())
    })
    .unwrap();
}

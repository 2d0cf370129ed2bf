//! The guest's `/hypervisor` node: the Gunyah binding's description of the capabilities and
//! virtual interrupts a VM was given.
//!
//! Shape (Gunyah's Linux binding, `gunyah-hypervisor.yaml`, and what Gunyah's resource manager
//! writes): `/hypervisor` with `#address-cells = <2>` and `#size-cells = <0>` (a capability ID
//! is 64 bits), compatible `"gunyah-hypervisor"`, `"qcom,gunyah-hypervisor-1.0"`,
//! `"qcom,gunyah-hypervisor"`, `"simple-bus"`; one child per resource, whose `reg` holds the
//! CapIDs and whose `interrupts` hold the vIRQs as edge-rising GIC SPI specifiers.

use alloc::format;
use alloc::string::String;
use vm_fdt::FdtWriter;

/// GIC specifier type of an SPI.
const SPI: u32 = 0;
/// GIC specifier flags: edge, rising.
const EDGE_RISING: u32 = 1;
/// First SPI INTID.
const SPI_BASE: u32 = 32;
/// Message size of the resource-manager queues (Gunyah's RM RPC transport).
pub const RM_MESSAGE_SIZE: u32 = 240;
/// Depth of the resource-manager queues.
pub const RM_QUEUE_DEPTH: u32 = 8;

/// One resource under `/hypervisor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HypNode {
    /// A message-queue pair: this VM sends on `tx`, receives on `rx`.
    MsgQueuePair {
        /// Link name (`label`).
        label: String,
        /// Cap of the queue this VM sends on (SEND, BIND_SEND).
        tx_cap: u64,
        /// Cap of the queue this VM receives from (RECEIVE, BIND_RECEIVE).
        rx_cap: u64,
        /// INTID of the "not full" vIRQ of the TX queue.
        tx_virq: u32,
        /// INTID of the "not empty" vIRQ of the RX queue.
        rx_virq: u32,
        /// Queue depth (both directions).
        depth: u32,
        /// Largest message in bytes (both directions).
        message_size: u32,
        /// The VM at the other end.
        peer: String,
    },
    /// The receiving end of a doorbell.
    Doorbell {
        /// Link name.
        label: String,
        /// Cap (RECEIVE, BIND).
        cap: u64,
        /// INTID of its vIRQ.
        virq: u32,
        /// The VM that rings it.
        peer: String,
    },
    /// The ringing end of a doorbell.
    DoorbellSource {
        /// Link name.
        label: String,
        /// Cap (SEND).
        cap: u64,
        /// The VM it rings.
        peer: String,
    },
    /// The link to the resource manager (Gunyah's binding, which Linux's driver probes).
    ResourceManager {
        /// Cap of the queue this VM sends requests on.
        tx_cap: u64,
        /// Cap of the queue this VM receives replies and notifications from.
        rx_cap: u64,
        /// INTID of the TX queue's "not full" vIRQ.
        tx_virq: u32,
        /// INTID of the RX queue's "not empty" vIRQ.
        rx_virq: u32,
    },
    /// A vCPU of another VM this VM runs with `vcpu_run` (it is that VM's proxy scheduler).
    ProxyVcpu {
        /// Cap (AFFINITY, YIELD_TO, BIND_VIRQ, STATE).
        cap: u64,
        /// INTID of its VCPU_RUN_WAKEUP vIRQ.
        virq: u32,
        /// The vCPU's index in its VM.
        index: u32,
        /// The VM it belongs to.
        peer: String,
    },
    /// The address space of a VM this VM runs, for its VMMIO ranges.
    AddrSpace {
        /// Cap (ADD_VMMIO_RANGE).
        cap: u64,
        /// The VM it belongs to.
        peer: String,
    },
    /// Caps to the VM's own partition, cspace and VIC, when the manifest grants them.
    Capabilities {
        /// Partition cap (OBJECT_CREATE).
        partition: Option<u64>,
        /// The VM's own cspace, all rights.
        cspace: Option<u64>,
        /// The VM's VIC (BIND_SOURCE).
        vic: Option<u64>,
        /// Its own vCPUs, in vCPU order (AFFINITY, PRIORITY, TIMESLICE, YIELD_TO, STATE);
        /// empty if not asked for.
        vcpus: alloc::vec::Vec<u64>,
    },
}

fn cap_cells(caps: &[u64]) -> alloc::vec::Vec<u32> {
    caps.iter()
        .flat_map(|&c| [(c >> 32) as u32, c as u32])
        .collect()
}

fn spi_cells(virqs: &[u32]) -> alloc::vec::Vec<u32> {
    virqs
        .iter()
        .flat_map(|&v| [SPI, v.saturating_sub(SPI_BASE), EDGE_RISING])
        .collect()
}

/// Write `/hypervisor` with `nodes` (nothing if `nodes` is empty).
pub fn write(w: &mut FdtWriter, nodes: &[HypNode]) -> Result<(), vm_fdt::Error> {
    if nodes.is_empty() {
        return Ok(());
    }
    let hyp = w.begin_node("hypervisor")?;
    w.property_string_list(
        "compatible",
        alloc::vec![
            String::from("gunyah-hypervisor"),
            String::from("qcom,gunyah-hypervisor-1.0"),
            String::from("qcom,gunyah-hypervisor"),
            String::from("simple-bus"),
        ],
    )?;
    w.property_u32("#address-cells", 2)?;
    w.property_u32("#size-cells", 0)?;
    for node in nodes {
        match node {
            HypNode::MsgQueuePair {
                label,
                tx_cap,
                rx_cap,
                tx_virq,
                rx_virq,
                depth,
                message_size,
                peer,
            } => {
                let n = w.begin_node(&format!("message-queue-pair@{tx_cap:x}"))?;
                w.property_string_list(
                    "compatible",
                    alloc::vec![
                        String::from("qcom,message-queue-pair"),
                        String::from("qcom,gunyah-message-queue"),
                        String::from("qcom,gunyah-capability"),
                    ],
                )?;
                w.property_array_u32("reg", &cap_cells(&[*tx_cap, *rx_cap]))?;
                w.property_array_u32("interrupts", &spi_cells(&[*tx_virq, *rx_virq]))?;
                w.property_string("label", label)?;
                w.property_string("peer-name", peer)?;
                w.property_null("qcom,is-full-duplex")?;
                w.property_u32("qcom,tx-message-size", *message_size)?;
                w.property_u32("qcom,rx-message-size", *message_size)?;
                w.property_u32("qcom,tx-queue-depth", *depth)?;
                w.property_u32("qcom,rx-queue-depth", *depth)?;
                w.end_node(n)?;
            }
            HypNode::Doorbell {
                label,
                cap,
                virq,
                peer,
            } => {
                let n = w.begin_node(&format!("doorbell@{cap:x}"))?;
                w.property_string_list(
                    "compatible",
                    alloc::vec![
                        String::from("qcom,gunyah-doorbell"),
                        String::from("qcom,gunyah-capability"),
                    ],
                )?;
                w.property_array_u32("reg", &cap_cells(&[*cap]))?;
                w.property_array_u32("interrupts", &spi_cells(&[*virq]))?;
                w.property_string("label", label)?;
                w.property_string("peer-name", peer)?;
                w.end_node(n)?;
            }
            HypNode::DoorbellSource { label, cap, peer } => {
                let n = w.begin_node(&format!("doorbell-source@{cap:x}"))?;
                w.property_string_list(
                    "compatible",
                    alloc::vec![
                        String::from("qcom,gunyah-doorbell-source"),
                        String::from("qcom,gunyah-capability"),
                    ],
                )?;
                w.property_array_u32("reg", &cap_cells(&[*cap]))?;
                w.property_string("label", label)?;
                w.property_string("peer-name", peer)?;
                w.end_node(n)?;
            }
            HypNode::ResourceManager {
                tx_cap,
                rx_cap,
                tx_virq,
                rx_virq,
            } => {
                let n = w.begin_node(&format!("gunyah-resource-mgr@{tx_cap:x}"))?;
                w.property_string_list(
                    "compatible",
                    alloc::vec![
                        String::from("gunyah-resource-manager"),
                        String::from("qcom,resource-manager-1-0"),
                        String::from("qcom,resource-manager"),
                        String::from("qcom,gunyah-message-queue"),
                        String::from("qcom,gunyah-capability"),
                    ],
                )?;
                w.property_array_u32("reg", &cap_cells(&[*tx_cap, *rx_cap]))?;
                w.property_array_u32("interrupts", &spi_cells(&[*tx_virq, *rx_virq]))?;
                w.property_null("qcom,is-full-duplex")?;
                w.property_u32("qcom,tx-message-size", RM_MESSAGE_SIZE)?;
                w.property_u32("qcom,rx-message-size", RM_MESSAGE_SIZE)?;
                w.property_u32("qcom,tx-queue-depth", RM_QUEUE_DEPTH)?;
                w.property_u32("qcom,rx-queue-depth", RM_QUEUE_DEPTH)?;
                w.property_u32("qcom,free-irq-start", 0)?;
                w.end_node(n)?;
            }
            HypNode::ProxyVcpu {
                cap,
                virq,
                index,
                peer,
            } => {
                let n = w.begin_node(&format!("vcpu@{cap:x}"))?;
                w.property_string_list(
                    "compatible",
                    alloc::vec![
                        String::from("wurley,proxy-vcpu"),
                        String::from("qcom,gunyah-capability"),
                    ],
                )?;
                w.property_array_u32("reg", &cap_cells(&[*cap]))?;
                w.property_array_u32("interrupts", &spi_cells(&[*virq]))?;
                w.property_u32("wurley,vcpu-index", *index)?;
                w.property_string("peer-name", peer)?;
                w.end_node(n)?;
            }
            HypNode::AddrSpace { cap, peer } => {
                let n = w.begin_node(&format!("addrspace@{cap:x}"))?;
                w.property_string_list(
                    "compatible",
                    alloc::vec![
                        String::from("wurley,addrspace"),
                        String::from("qcom,gunyah-capability"),
                    ],
                )?;
                w.property_array_u32("reg", &cap_cells(&[*cap]))?;
                w.property_string("peer-name", peer)?;
                w.end_node(n)?;
            }
            HypNode::Capabilities {
                partition,
                cspace,
                vic,
                vcpus,
            } => {
                let n = w.begin_node("capabilities")?;
                w.property_string("compatible", "wurley,capabilities")?;
                for (name, cap) in [("partition", partition), ("cspace", cspace), ("vic", vic)] {
                    if let Some(c) = cap {
                        w.property_u64(name, *c)?;
                    }
                }
                if !vcpus.is_empty() {
                    w.property_array_u32("vcpus", &cap_cells(vcpus))?;
                }
                w.end_node(n)?;
            }
        }
    }
    w.end_node(hyp)
}

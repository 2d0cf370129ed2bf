//! The resources Wurley describes under `/hypervisor` (Gunyah's binding): message-queue pairs,
//! doorbells (receiving and sending ends) and the caps a VM was granted to its own partition,
//! cspace and VIC.
//!
//! * `message-queue-pair@..`: compatible `"qcom,message-queue-pair"`; `reg` = TX cap, RX cap
//!   (two `u64`s); `interrupts` = TX ("not full") then RX ("not empty") vIRQ; `label`;
//!   `qcom,{tx,rx}-message-size`, `qcom,{tx,rx}-queue-depth`.
//! * `doorbell@..`: compatible `"qcom,gunyah-doorbell"`; `reg` = cap (RECEIVE, BIND);
//!   `interrupts` = its vIRQ; `label`.
//! * `doorbell-source@..`: compatible `"qcom,gunyah-doorbell-source"`; `reg` = cap (SEND);
//!   `label`.
//! * `vcpu@..`: compatible `"wurley,proxy-vcpu"`; `reg` = cap to a vCPU this VM runs with
//!   `vcpu_run`; `interrupts` = its VCPU_RUN_WAKEUP vIRQ; `wurley,vcpu-index`; `peer-name`.
//! * `addrspace@..`: compatible `"wurley,addrspace"`; `reg` = cap (ADD_VMMIO_RANGE) to the
//!   address space of a VM this VM runs; `peer-name`.
//! * `capabilities`: compatible `"wurley,capabilities"`; `u64` properties `partition`,
//!   `cspace`, `vic`; `vcpus`, one `u64` cap per own vCPU.
//!
//! Caps and vIRQs are always read from here: CapIDs are randomised.

use wurley_abi::CapId;

use crate::fdt::{Fdt, Node};

/// Compatible string of a message-queue pair node.
pub const COMPAT_MSGQ_PAIR: &str = "qcom,message-queue-pair";
/// Compatible string of the resource-manager link (Gunyah's Linux binding).
pub const COMPAT_RESOURCE_MANAGER: &str = "gunyah-resource-manager";
/// Compatible string of a doorbell's receiving end.
pub const COMPAT_DOORBELL: &str = "qcom,gunyah-doorbell";
/// Compatible string of a doorbell's sending end.
pub const COMPAT_DOORBELL_SOURCE: &str = "qcom,gunyah-doorbell-source";
/// Compatible string of the granted-capabilities node.
pub const COMPAT_CAPABILITIES: &str = "wurley,capabilities";
/// Compatible string of a proxy-scheduled vCPU this VM runs.
pub const COMPAT_PROXY_VCPU: &str = "wurley,proxy-vcpu";
/// Compatible string of another VM's address space.
pub const COMPAT_ADDRSPACE: &str = "wurley,addrspace";
/// Compatible string of `/hypervisor`.
pub const COMPAT_HYPERVISOR: &str = "gunyah-hypervisor";

/// An interrupt from a 3-cell GIC specifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irq {
    /// The INTID (SPI n is n + 32, PPI n is n + 16).
    pub intid: u32,
    /// Edge-triggered (specifier flags 1 or 2); level otherwise.
    pub edge: bool,
}

impl Irq {
    /// Decode a GIC specifier `<type number flags>`.
    pub fn from_specifier(kind: u32, number: u32, flags: u32) -> Option<Irq> {
        let base = match kind {
            0 => 32,
            1 => 16,
            2 => 4096,
            3 => 1056,
            _ => return None,
        };
        Some(Irq {
            intid: number.checked_add(base)?,
            edge: flags & 0x3 != 0,
        })
    }

    /// Specifier `index` of `node`'s `interrupts`.
    pub fn of(node: &Node<'_>, index: usize) -> Option<Irq> {
        let i = index.checked_mul(3)?;
        Irq::from_specifier(
            node.cell("interrupts", i)?,
            node.cell("interrupts", i + 1)?,
            node.cell("interrupts", i + 2)?,
        )
    }
}

/// A message-queue pair: this VM sends on `tx` and receives from `rx`.
#[derive(Clone, Copy, Debug)]
pub struct MsgQueuePair<'a> {
    /// The link's name.
    pub label: &'a str,
    /// Cap of the queue this VM sends on.
    pub tx: CapId,
    /// Cap of the queue this VM receives from.
    pub rx: CapId,
    /// The TX queue's "not full" vIRQ.
    pub tx_irq: Option<Irq>,
    /// The RX queue's "not empty" vIRQ.
    pub rx_irq: Option<Irq>,
    /// Largest message this VM may send.
    pub tx_message_size: u32,
    /// Largest message this VM may receive.
    pub rx_message_size: u32,
    /// Depth of the TX queue.
    pub tx_depth: u32,
    /// Depth of the RX queue.
    pub rx_depth: u32,
}

/// The receiving end of a doorbell.
#[derive(Clone, Copy, Debug)]
pub struct Doorbell<'a> {
    /// The link's name.
    pub label: &'a str,
    /// The cap (receive, mask, reset, bind).
    pub cap: CapId,
    /// Its vIRQ.
    pub irq: Option<Irq>,
}

/// The sending end of a doorbell.
#[derive(Clone, Copy, Debug)]
pub struct DoorbellSource<'a> {
    /// The link's name.
    pub label: &'a str,
    /// The cap (send).
    pub cap: CapId,
}

/// Caps to the VM's own objects, when the manifest grants them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Capabilities {
    /// The VM's partition (OBJECT_CREATE).
    pub partition: Option<CapId>,
    /// The VM's cspace (all rights).
    pub cspace: Option<CapId>,
    /// The VM's virtual GIC (BIND_SOURCE).
    pub vic: Option<CapId>,
    /// Its own vCPUs (AFFINITY, PRIORITY, TIMESLICE, YIELD_TO, STATE), in vCPU order
    /// (property `vcpus`, one `u64` each);
    /// [`Capabilities::vcpu_count`] of them.
    pub vcpus: [Option<CapId>; MAX_OWN_VCPUS],
}

/// Most own-vCPU caps [`Capabilities`] holds.
pub const MAX_OWN_VCPUS: usize = 8;

impl Capabilities {
    /// How many own-vCPU caps there are.
    pub fn vcpu_count(&self) -> usize {
        self.vcpus.iter().filter(|c| c.is_some()).count()
    }
}

/// The `/hypervisor` node.
pub fn hypervisor<'a>(fdt: &Fdt<'a>) -> Option<Node<'a>> {
    fdt.find_node("/hypervisor")
        .or_else(|| fdt.find_compatible(COMPAT_HYPERVISOR))
}

fn label<'a>(node: &Node<'a>) -> &'a str {
    node.prop_str("label")
        .or_else(|| node.prop_str("qcom,label"))
        .unwrap_or("")
}

/// `/hypervisor`'s children compatible with `compatible`, with the parent (for `reg`).
fn children<'a>(
    fdt: &Fdt<'a>,
    compatible: &'a str,
) -> impl Iterator<Item = (Node<'a>, Node<'a>)> + 'a {
    let hyp = hypervisor(fdt);
    hyp.into_iter().flat_map(move |h| {
        h.children()
            .filter(move |c| c.is_compatible(compatible))
            .map(move |c| (h, c))
    })
}

fn cap(parent: &Node<'_>, node: &Node<'_>, index: usize) -> Option<CapId> {
    parent.reg(node, index).map(|(a, _)| CapId(a))
}

/// Every message-queue pair.
pub fn msgqueue_pairs<'a>(fdt: &Fdt<'a>) -> impl Iterator<Item = MsgQueuePair<'a>> + 'a {
    children(fdt, COMPAT_MSGQ_PAIR).filter_map(|(h, n)| {
        Some(MsgQueuePair {
            label: label(&n),
            tx: cap(&h, &n, 0)?,
            rx: cap(&h, &n, 1)?,
            tx_irq: Irq::of(&n, 0),
            rx_irq: Irq::of(&n, 1),
            tx_message_size: n.prop_u32("qcom,tx-message-size").unwrap_or(0),
            rx_message_size: n.prop_u32("qcom,rx-message-size").unwrap_or(0),
            tx_depth: n.prop_u32("qcom,tx-queue-depth").unwrap_or(0),
            rx_depth: n.prop_u32("qcom,rx-queue-depth").unwrap_or(0),
        })
    })
}

/// The link to the resource manager (Gunyah's binding: a `gunyah-resource-mgr@..` child
/// compatible with `"gunyah-resource-manager"`, `reg` = TX cap, RX cap, `interrupts` = TX, RX),
/// described like a message-queue pair labelled `resource-manager`.
pub fn resource_manager<'a>(fdt: &Fdt<'a>) -> Option<MsgQueuePair<'a>> {
    children(fdt, COMPAT_RESOURCE_MANAGER)
        .filter_map(|(h, n)| {
            Some(MsgQueuePair {
                label: "resource-manager",
                tx: cap(&h, &n, 0)?,
                rx: cap(&h, &n, 1)?,
                tx_irq: Irq::of(&n, 0),
                rx_irq: Irq::of(&n, 1),
                tx_message_size: n.prop_u32("qcom,tx-message-size").unwrap_or(240),
                rx_message_size: n.prop_u32("qcom,rx-message-size").unwrap_or(240),
                tx_depth: n.prop_u32("qcom,tx-queue-depth").unwrap_or(8),
                rx_depth: n.prop_u32("qcom,rx-queue-depth").unwrap_or(8),
            })
        })
        .next()
}

/// The message-queue pair labelled `name`.
pub fn msgqueue_pair<'a>(fdt: &Fdt<'a>, name: &str) -> Option<MsgQueuePair<'a>> {
    msgqueue_pairs(fdt).find(|p| p.label == name)
}

/// Every doorbell this VM receives.
pub fn doorbells<'a>(fdt: &Fdt<'a>) -> impl Iterator<Item = Doorbell<'a>> + 'a {
    children(fdt, COMPAT_DOORBELL).filter_map(|(h, n)| {
        Some(Doorbell {
            label: label(&n),
            cap: cap(&h, &n, 0)?,
            irq: Irq::of(&n, 0),
        })
    })
}

/// The received doorbell labelled `name`.
pub fn doorbell<'a>(fdt: &Fdt<'a>, name: &str) -> Option<Doorbell<'a>> {
    doorbells(fdt).find(|d| d.label == name)
}

/// Every doorbell this VM rings.
pub fn doorbell_sources<'a>(fdt: &Fdt<'a>) -> impl Iterator<Item = DoorbellSource<'a>> + 'a {
    children(fdt, COMPAT_DOORBELL_SOURCE).filter_map(|(h, n)| {
        Some(DoorbellSource {
            label: label(&n),
            cap: cap(&h, &n, 0)?,
        })
    })
}

/// The rung doorbell labelled `name`.
pub fn doorbell_source<'a>(fdt: &Fdt<'a>, name: &str) -> Option<DoorbellSource<'a>> {
    doorbell_sources(fdt).find(|d| d.label == name)
}

/// The granted capabilities, if the VM has any.
pub fn capabilities(fdt: &Fdt<'_>) -> Option<Capabilities> {
    let (_, n) = children(fdt, COMPAT_CAPABILITIES).next()?;
    let mut vcpus = [None; MAX_OWN_VCPUS];
    if let Some(cells) = n.property("vcpus") {
        for (slot, cap) in vcpus.iter_mut().zip(cells.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(cap);
            *slot = Some(CapId(u64::from_be_bytes(b)));
        }
    }
    Some(Capabilities {
        partition: n.prop_u64("partition").map(CapId),
        cspace: n.prop_u64("cspace").map(CapId),
        vic: n.prop_u64("vic").map(CapId),
        vcpus,
    })
}

/// A vCPU of another VM that this VM runs with `vcpu_run`.
#[derive(Clone, Copy, Debug)]
pub struct ProxyVcpu<'a> {
    /// The VM it belongs to.
    pub peer: &'a str,
    /// Its index in that VM.
    pub index: u32,
    /// The cap.
    pub cap: CapId,
    /// Its VCPU_RUN_WAKEUP vIRQ.
    pub irq: Option<Irq>,
}

/// Every vCPU this VM runs.
pub fn proxy_vcpus<'a>(fdt: &Fdt<'a>) -> impl Iterator<Item = ProxyVcpu<'a>> + 'a {
    children(fdt, COMPAT_PROXY_VCPU).filter_map(|(h, n)| {
        Some(ProxyVcpu {
            peer: n.prop_str("peer-name").unwrap_or(""),
            index: n.prop_u32("wurley,vcpu-index")?,
            cap: cap(&h, &n, 0)?,
            irq: Irq::of(&n, 0),
        })
    })
}

/// The cap to the address space of VM `peer`, if this VM runs it.
pub fn addrspace(fdt: &Fdt<'_>, peer: &str) -> Option<CapId> {
    children(fdt, COMPAT_ADDRSPACE)
        .find(|(_, n)| n.prop_str("peer-name") == Some(peer))
        .and_then(|(h, n)| cap(&h, &n, 0))
}

/// Bitmap of the INTIDs below 128 that `/hypervisor`'s children use.
pub fn used_intids(fdt: &Fdt<'_>) -> u128 {
    let mut used = 0u128;
    if let Some(h) = hypervisor(fdt) {
        for c in h.children() {
            for i in 0.. {
                let Some(irq) = Irq::of(&c, i) else { break };
                if irq.intid < 128 {
                    used |= 1 << irq.intid;
                }
            }
        }
    }
    used
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdt::tests::Builder;

    #[test]
    fn resources() {
        let mut b = Builder::new();
        b.begin("")
            .begin("hypervisor")
            .prop_strs("compatible", &["gunyah-hypervisor", "simple-bus"])
            .prop_u32s("#address-cells", &[2])
            .prop_u32s("#size-cells", &[0])
            .begin("message-queue-pair@1")
            .prop_strs(
                "compatible",
                &["qcom,message-queue-pair", "qcom,gunyah-message-queue"],
            )
            .prop_u32s("reg", &[0, 1, 0xaaaa_bbbb, 2])
            .prop_u32s("interrupts", &[0, 32, 1, 0, 33, 4])
            .prop_strs("label", &["chat"])
            .prop_u32s("qcom,tx-message-size", &[240])
            .prop_u32s("qcom,rx-message-size", &[240])
            .prop_u32s("qcom,tx-queue-depth", &[8])
            .prop_u32s("qcom,rx-queue-depth", &[8])
            .end()
            .begin("doorbell@3")
            .prop_strs("compatible", &["qcom,gunyah-doorbell"])
            .prop_u32s("reg", &[0, 3])
            .prop_u32s("interrupts", &[0, 34, 1])
            .prop_strs("label", &["bell"])
            .end()
            .begin("doorbell-source@4")
            .prop_strs("compatible", &["qcom,gunyah-doorbell-source"])
            .prop_u32s("reg", &[0, 4])
            .prop_strs("label", &["bell"])
            .end()
            .begin("capabilities")
            .prop_strs("compatible", &["wurley,capabilities"])
            .prop("partition", &7u64.to_be_bytes())
            .prop("vic", &9u64.to_be_bytes())
            .end()
            .end()
            .end();
        let blob = b.finish();
        let fdt = Fdt::new(&blob).unwrap();
        let p = msgqueue_pair(&fdt, "chat").unwrap();
        assert_eq!((p.tx, p.rx), (CapId(1), CapId(0xaaaa_bbbb_0000_0002)));
        assert_eq!(
            p.tx_irq,
            Some(Irq {
                intid: 64,
                edge: true
            })
        );
        assert_eq!(
            p.rx_irq,
            Some(Irq {
                intid: 65,
                edge: false
            })
        );
        assert_eq!((p.tx_message_size, p.rx_depth), (240, 8));
        assert!(msgqueue_pair(&fdt, "other").is_none());
        let d = doorbell(&fdt, "bell").unwrap();
        assert_eq!((d.cap, d.irq.map(|i| i.intid)), (CapId(3), Some(66)));
        assert_eq!(doorbell_source(&fdt, "bell").unwrap().cap, CapId(4));
        assert_eq!(doorbells(&fdt).count(), 1);
        let c = capabilities(&fdt).unwrap();
        assert_eq!(
            (c.partition, c.cspace, c.vic),
            (Some(CapId(7)), None, Some(CapId(9)))
        );
        assert_eq!(used_intids(&fdt), (1 << 64) | (1 << 65) | (1 << 66));
    }
}

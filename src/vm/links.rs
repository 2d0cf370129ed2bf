//! Wiring VMs together from the manifest's `/links`: message-queue pairs and doorbells made by
//! the hypervisor, their caps put in each side's cspace, their interrupt sources bound to each
//! side's VIC, and the `/hypervisor` device-tree nodes that tell each VM what it got.
//!
//! Also the manifest's `capabilities` grants (caps to a VM's own partition, cspace and VIC).

use alloc::string::String;
use alloc::vec::Vec;
use wurley_abi::Error;
use wurley_abi::rights::{
    CspaceRights, DoorbellRights, MsgqueueRights, PartitionRights, ThreadRights, VicRights,
};

use crate::bundle::{LinkKind, LinkSpec, VmSpec};
use crate::object::Object;
use crate::object::ipc::{DoorbellObject, MsgQueueObject, QueueEnd};
use crate::object::msgqueue::CreateInfo;

use super::devicetree::hypervisor::HypNode;
use super::objects::{VmObjects, root_partition};

/// First INTID handed out for link vIRQs; guests binding their own sources use lower SPIs.
pub const LINK_VIRQ_BASE: u32 = 64;

/// Rights of a VM's caps to its own vCPUs (`capabilities = "vcpus"`): move them
/// (`vcpu_set_affinity`), yield to them (`scheduler_yield` hint 1), read their state, and
/// PRIORITY / TIMESLICE (whose calls, INIT-only in Gunyah, answer `OBJECT_STATE` for these
/// running vCPUs). Not
/// BIND_VIRQ: a VM does not run its own vCPUs through `vcpu_run` (which also finds no wake-up
/// vIRQ bound and answers `BUSY`).
pub const OWN_VCPU_RIGHTS: ThreadRights = ThreadRights::AFFINITY
    .union(ThreadRights::PRIORITY)
    .union(ThreadRights::TIMESLICE)
    .union(ThreadRights::YIELD_TO)
    .union(ThreadRights::STATE);

/// Per-VM state while wiring: its objects (if it has them), the next free link vIRQ, and the
/// nodes for its `/hypervisor`.
pub struct Endpoint<'a> {
    /// The VM's name.
    pub name: &'a str,
    /// Its objects; `None` if they could not be made (the VM gets no links).
    pub objects: Option<VmObjects>,
    /// Next link vIRQ.
    pub next_virq: u32,
    /// Its `/hypervisor` children.
    pub nodes: Vec<HypNode>,
    /// INTIDs of its passed-through devices, never handed out for links.
    reserved: Vec<u32>,
}

impl<'a> Endpoint<'a> {
    /// The endpoint of `spec`.
    pub fn new(spec: &'a VmSpec<'_>) -> Self {
        let objects = VmObjects::new(spec.object_memory as usize)
            .inspect_err(|e| log::error!("VM {}: objects: {e:?}", spec.name))
            .ok();
        let mut ep = Self {
            name: &spec.name,
            objects,
            next_virq: LINK_VIRQ_BASE,
            nodes: Vec::new(),
            reserved: spec.devices.iter().flat_map(|d| d.intids()).collect(),
        };
        if let Err(e) = ep.grant(spec) {
            log::error!("VM {}: capabilities: {e:?}", spec.name);
        }
        ep
    }

    /// The endpoint of a VM the hypervisor makes itself (the resource manager), with `objects`.
    pub fn root(name: &'a str, objects: VmObjects) -> Self {
        Self {
            name,
            objects: Some(objects),
            next_virq: LINK_VIRQ_BASE,
            nodes: Vec::new(),
            reserved: Vec::new(),
        }
    }

    fn grant(&mut self, spec: &VmSpec<'_>) -> Result<(), Error> {
        let caps = &spec.capabilities;
        if !(caps.partition || caps.cspace || caps.vic || caps.vcpus) {
            return Ok(());
        }
        let o = self.objects.as_ref().ok_or(Error::Nomem)?;
        let partition = caps
            .partition
            .then(|| {
                o.grant(
                    Object::Partition(o.partition.clone()),
                    PartitionRights::OBJECT_CREATE.bits(),
                )
            })
            .transpose()?;
        let cspace = caps
            .cspace
            .then(|| {
                o.grant(
                    Object::CSpace(o.cspace_object.clone()),
                    CspaceRights::ALL.bits(),
                )
            })
            .transpose()?;
        let vic = caps
            .vic
            .then(|| o.grant(Object::Vic(o.vic.clone()), VicRights::BIND_SOURCE.bits()))
            .transpose()?;
        let mut vcpus = Vec::new();
        if caps.vcpus {
            for object in o.vcpu_objects(spec.vcpus as usize) {
                vcpus.push(o.grant(Object::Vcpu(object.clone()), OWN_VCPU_RIGHTS.bits())?);
            }
        }
        self.nodes.push(HypNode::Capabilities {
            partition,
            cspace,
            vic,
            vcpus,
        });
        Ok(())
    }

    /// The next free link vIRQ.
    pub fn virq(&mut self) -> Result<u32, Error> {
        while self.reserved.contains(&self.next_virq) {
            self.next_virq += 1;
        }
        let v = self.next_virq;
        if v >= 32 + super::layout::SPIS {
            return Err(Error::Noresources);
        }
        self.next_virq += 1;
        Ok(v)
    }

    /// Its objects, if it has them.
    pub fn objects(&self) -> Result<&VmObjects, Error> {
        self.objects.as_ref().ok_or(Error::Nomem)
    }
}

/// Make every link of the manifest (indices in `LinkSpec` refer to `eps`). A link that cannot
/// be made is reported and skipped.
pub fn wire(links: &[LinkSpec], eps: &mut [Endpoint<'_>]) {
    for link in links {
        let r = match link.kind {
            LinkKind::MsgQueuePair {
                vms: [a, b],
                depth,
                message_size,
            } => msgqueue_pair(eps, &link.name, a, b, depth, message_size),
            LinkKind::Doorbell { sender, receiver } => doorbell(eps, &link.name, sender, receiver),
        };
        match r {
            Ok(()) => log::info!("link {}: ready", link.name),
            Err(e) => log::error!("link {}: not made: {e:?}", link.name),
        }
    }
}

/// One side of a message-queue pair: what it sends on and receives from.
#[derive(Clone, Copy, Debug)]
pub struct PairEnd {
    /// Cap of the queue it sends on (SEND).
    pub tx_cap: u64,
    /// Cap of the queue it receives from (RECEIVE).
    pub rx_cap: u64,
    /// Its "not full" vIRQ.
    pub tx_virq: u32,
    /// Its "not empty" vIRQ.
    pub rx_virq: u32,
}

/// Two queues, `a`→`b` and `b`→`a`, of `depth` messages of up to `message_size` bytes, with
/// caps in each side's cspace and vIRQs bound in each side's VIC.
pub fn queue_pair(
    eps: &mut [Endpoint<'_>],
    a: usize,
    b: usize,
    depth: u32,
    message_size: u32,
) -> Result<(PairEnd, PairEnd), Error> {
    if a == b || a >= eps.len() || b >= eps.len() {
        return Err(Error::ArgumentInvalid);
    }
    let info = CreateInfo {
        depth,
        max_msg_size: message_size as usize,
    };
    let queue = || -> Result<_, Error> {
        let q = MsgQueueObject::create(root_partition())?;
        q.configure(info)?;
        q.activate()?;
        Ok(q)
    };
    let (ab, ba) = (queue()?, queue()?);
    // vIRQs: each side's TX "not full" and RX "not empty".
    let (a_tx, a_rx) = (eps[a].virq()?, eps[a].virq()?);
    let (b_tx, b_rx) = (eps[b].virq()?, eps[b].virq()?);
    {
        let (oa, ob) = (eps[a].objects()?, eps[b].objects()?);
        ab.bind(QueueEnd::Send, &oa.vic, a_tx)?;
        ab.bind(QueueEnd::Receive, &ob.vic, b_rx)?;
        ba.bind(QueueEnd::Send, &ob.vic, b_tx)?;
        ba.bind(QueueEnd::Receive, &oa.vic, a_rx)?;
    }
    let send = MsgqueueRights::SEND.bits();
    let recv = MsgqueueRights::RECEIVE.bits();
    let oa = eps[a].objects()?;
    let a_end = PairEnd {
        tx_cap: oa.grant(Object::MsgQueue(ab.clone()), send)?,
        rx_cap: oa.grant(Object::MsgQueue(ba.clone()), recv)?,
        tx_virq: a_tx,
        rx_virq: a_rx,
    };
    let ob = eps[b].objects()?;
    let b_end = PairEnd {
        tx_cap: ob.grant(Object::MsgQueue(ba), send)?,
        rx_cap: ob.grant(Object::MsgQueue(ab), recv)?,
        tx_virq: b_tx,
        rx_virq: b_rx,
    };
    Ok((a_end, b_end))
}

/// A manifest message-queue pair between `a` and `b`.
fn msgqueue_pair(
    eps: &mut [Endpoint<'_>],
    name: &str,
    a: usize,
    b: usize,
    depth: u32,
    message_size: u32,
) -> Result<(), Error> {
    let (a_end, b_end) = queue_pair(eps, a, b, depth, message_size)?;
    let peer_b = String::from(eps[b].name);
    let peer_a = String::from(eps[a].name);
    for (ep, end, peer) in [(a, a_end, peer_b), (b, b_end, peer_a)] {
        eps[ep]
            .nodes
            .push(pair_node(name, end, depth, message_size, peer));
    }
    Ok(())
}

/// The `/hypervisor` node describing one end of a pair.
pub fn pair_node(name: &str, end: PairEnd, depth: u32, message_size: u32, peer: String) -> HypNode {
    HypNode::MsgQueuePair {
        label: String::from(name),
        tx_cap: end.tx_cap,
        rx_cap: end.rx_cap,
        tx_virq: end.tx_virq,
        rx_virq: end.rx_virq,
        depth,
        message_size,
        peer,
    }
}

/// A doorbell rung by `sender`, received by `receiver`.
fn doorbell(
    eps: &mut [Endpoint<'_>],
    name: &str,
    sender: usize,
    receiver: usize,
) -> Result<(), Error> {
    if sender == receiver || sender >= eps.len() || receiver >= eps.len() {
        return Err(Error::ArgumentInvalid);
    }
    let db = DoorbellObject::create(root_partition())?;
    db.header.activate()?;
    let virq = eps[receiver].virq()?;
    db.bind(&eps[receiver].objects()?.vic, virq)?;
    let rx_cap = eps[receiver].objects()?.grant(
        Object::Doorbell(db.clone()),
        (DoorbellRights::RECEIVE | DoorbellRights::BIND).bits(),
    )?;
    let tx_cap = eps[sender]
        .objects()?
        .grant(Object::Doorbell(db), DoorbellRights::SEND.bits())?;
    let (s_name, r_name) = (
        String::from(eps[sender].name),
        String::from(eps[receiver].name),
    );
    eps[receiver].nodes.push(HypNode::Doorbell {
        label: String::from(name),
        cap: rx_cap,
        virq,
        peer: s_name,
    });
    eps[sender].nodes.push(HypNode::DoorbellSource {
        label: String::from(name),
        cap: tx_cap,
        peer: r_name,
    });
    Ok(())
}

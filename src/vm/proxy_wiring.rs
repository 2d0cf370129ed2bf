//! Giving proxy schedulers their caps: for each VM whose manifest node says
//! `scheduled-by = "<owner>"`, a vCPU object per vCPU and an address-space object, caps to
//! them in the owner's cspace, each vCPU's VCPU_RUN_WAKEUP source bound to a fresh vIRQ of the
//! owner's VIC, and the `/hypervisor` nodes that tell the owner what it got
//! ([`HypNode::ProxyVcpu`], [`HypNode::AddrSpace`]), and the same facts for the resource
//! manager ([`HypNode::ProxyGrant`]), which reports them to the owner through
//! VM_GET_HYP_RESOURCES. Once the VMs exist, [`attach`] ties the objects to the vCPUs they
//! name.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use wurley_abi::Error;
use wurley_abi::rights::{AddrspaceRights, ThreadRights};
use wurley_abi::vcpu_run::VcpuVirqType;

use crate::bundle::VmSpec;
use crate::object::Object;
use crate::object::vcpu::{VcpuObject, VcpuTarget};

use super::devicetree::hypervisor::HypNode;
use super::links::Endpoint;
use super::machine::Vm;
use super::proxy::ProxySlot;

/// Rights of the owner's vCPU caps: run (AFFINITY, YIELD_TO), check and bind vIRQs
/// (BIND_VIRQ, STATE).
pub const VCPU_RIGHTS: ThreadRights = ThreadRights::AFFINITY
    .union(ThreadRights::YIELD_TO)
    .union(ThreadRights::BIND_VIRQ)
    .union(ThreadRights::STATE);

/// [`VcpuTarget::owner`] of a vCPU no VM runs by proxy.
pub const NO_OWNER: usize = usize::MAX;

/// Give every proxy-scheduled VM of `specs` (whose endpoints are `eps`, same order) to its
/// owner. A VM that cannot be wired is reported and keeps no objects (it never runs). Returns
/// what the resource manager reports to the owners ([`HypNode::ProxyGrant`] nodes).
pub fn wire(specs: &[VmSpec<'_>], eps: &mut [Endpoint<'_>]) -> Vec<HypNode> {
    let mut grants = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let Some(owner) = spec.scheduled_by.as_deref() else {
            continue;
        };
        let Some(o) = specs.iter().position(|s| s.name == owner) else {
            log::error!("VM {}: scheduler '{owner}' not started", spec.name);
            continue;
        };
        match give(eps, i, o, spec.vcpus as usize) {
            Ok(nodes) => {
                log::info!("VM {}: proxy-scheduled by VM {owner}", spec.name);
                grants.extend(nodes.iter().filter_map(|n| match n {
                    HypNode::ProxyVcpu {
                        cap, virq, index, ..
                    } => Some(HypNode::ProxyGrant {
                        owner: String::from(owner),
                        vm: spec.name.clone(),
                        index: *index,
                        cap: *cap,
                        virq: *virq,
                    }),
                    _ => None,
                }));
                eps[o].nodes.extend(nodes);
            }
            Err(e) => log::error!("VM {}: not given to VM {owner}: {e:?}", spec.name),
        }
    }
    grants
}

/// Make VM `vm`'s objects and the owner's caps; returns the owner's new `/hypervisor` nodes.
fn give(
    eps: &mut [Endpoint<'_>],
    vm: usize,
    owner: usize,
    vcpus: usize,
) -> Result<Vec<HypNode>, Error> {
    if vm == owner || vm >= eps.len() || owner >= eps.len() {
        return Err(Error::ArgumentInvalid);
    }
    let space = eps[vm]
        .objects()?
        .addrspace
        .get()
        .cloned()
        .ok_or(Error::ObjectState)?;
    let objects: Vec<Arc<VcpuObject>> = eps[vm].objects()?.vcpu_objects(vcpus).to_vec();
    let peer = String::from(eps[vm].name);
    let mut nodes = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        let virq = eps[owner].virq()?;
        let o = eps[owner].objects()?;
        object.bind(VcpuVirqType::VcpuRunWakeup, &o.vic, virq)?;
        let cap = o.grant(Object::Vcpu(object.clone()), VCPU_RIGHTS.bits())?;
        nodes.push(HypNode::ProxyVcpu {
            cap,
            virq,
            index: index as u32,
            peer: peer.clone(),
        });
    }
    let cap = eps[owner].objects()?.grant(
        Object::AddrSpace(space.clone()),
        AddrspaceRights::ADD_VMMIO_RANGE.bits(),
    )?;
    nodes.push(HypNode::AddrSpace { cap, peer });
    Ok(nodes)
}

/// Tie the vCPU objects of every proxy-scheduled VM of `vms` (the VMs to publish, in order) to
/// their vCPUs, and mark those vCPUs proxy-scheduled. `owners[i]` is VM `i`'s scheduler's
/// name. A VM whose scheduler did not start is ended.
pub fn attach(vms: &[&'static Vm], owners: &[Option<String>]) -> Vec<&'static Vm> {
    let mut orphans = Vec::new();
    for (vi, (vm, owner)) in vms.iter().zip(owners).enumerate() {
        let Some(owner) = owner else {
            // Its own vCPU caps, if it has any: no VM runs these vCPUs by proxy.
            let objects = vm.objects.get().and_then(|o| o.vcpus.get());
            for (slot, object) in vm.vcpus.iter().zip(objects.into_iter().flatten()) {
                object.attach(VcpuTarget {
                    vm: vi,
                    index: slot.index,
                    owner: NO_OWNER,
                });
            }
            continue;
        };
        let objects = vm.objects.get().and_then(|o| o.vcpus.get());
        let o = vms.iter().position(|v| v.name == *owner);
        let (Some(objects), Some(o)) = (objects, o) else {
            log::error!(
                "VM {}: its scheduler VM {owner} did not start: stopping it",
                vm.name
            );
            orphans.push(*vm);
            continue;
        };
        for (slot, object) in vm.vcpus.iter().zip(objects) {
            object.attach(VcpuTarget {
                vm: vi,
                index: slot.index,
                owner: o,
            });
            slot.proxy.call_once(|| ProxySlot::new(object.clone()));
        }
    }
    orphans
}

//! [`Gunyah`]: the [`Hyp`] the RM runs with. It creates and destroys VMs, lends, shares and
//! donates memory and lends IRQs with Gunyah's object hypercalls ([`Hypercalls`]), keeping
//! what it made per VM so that a VM's destruction gives every cap, page and vIRQ back.
//!
//! What it knows of each VM: its address space, cspace and VIC (caps in the RM's cspace; made
//! by the launch for the manifest's VMs, here for the VMs it creates), the memory
//! it owns (extents and where they are mapped), and the free vIRQs of its VIC.
//!
//! This module owns [`Gunyah`], its per-VM state, the building blocks the others share
//! (creating objects, copying caps, undoing what was made) and the one `impl Hyp`, which hands
//! each operation to the module that owns it:
//! * `create`: VM_CONFIG_IMAGE and VM_INIT (the objects, vCPUs, links, device tree);
//! * `demand`: demand paging (VM_SET_DEMAND_PAGING and its VM_INIT step);
//! * `lifecycle`: boot context, power-on, stop (kill) and reset (destroy);
//! * `memory`: memparcels (create, append, accept, release, reclaim, notify);
//! * `irq`: IRQ lending;
//! * `virqs`: the pools of free vIRQs.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use guestdt::hypervisor::{RM_MESSAGE_SIZE, RM_QUEUE_DEPTH};
use wurley_abi::rm::irq::{IrqAcceptRequest, IrqLendRequest, IrqNotifyRequest};
use wurley_abi::rm::memparcel::{
    MEM_RIGHTS_RWX, MemAcceptRequest, MemAppendRequest, MemCreateRequest, MemNotifyRequest,
    MemReleaseRequest, MemType, SglEntry, TransType,
};
use wurley_abi::rm::vm::{AddressRangeId, BootRegSet, VmConfigImageRequest};
use wurley_abi::rm::{Encode, RmError};
use wurley_abi::{CapId, Error, VmId};

use crate::calls::{Hypercalls, Kind};
use crate::hyp::{Event, Hyp, Notice};
use crate::memparcel::Parcels;
use crate::vms::Resource;

mod create;
mod demand;
mod irq;
mod lifecycle;
mod memory;
#[cfg(test)]
pub(crate) mod tests;
mod virqs;

use irq::LentIrq;
use virqs::VirqPool;

/// Most vCPUs of a VM the RM creates (the VIC's limit).
pub const MAX_VCPUS: u32 = 8;
/// Caps in the cspace of a VM the RM creates.
pub const VM_CSPACE_CAPS: u32 = 64;
/// The vIRQs of a VM the RM creates: its RM link's TX and RX, then its owner link's.
pub const VM_RM_TX_VIRQ: u32 = 64;
/// RX vIRQ of its RM link.
pub const VM_RM_RX_VIRQ: u32 = 65;
/// TX vIRQ of its link to its owner.
pub const VM_OWNER_TX_VIRQ: u32 = 66;
/// RX vIRQ of its link to its owner.
pub const VM_OWNER_RX_VIRQ: u32 = 67;
/// `gunyah-vm-config/vcpus/affinity` of a VM whose owner runs its vCPUs (`vcpu_run`).
pub const PROXY_AFFINITY: &str = "proxy";
/// Label of the owner link in the new VM's device tree.
pub const OWNER_LINK_LABEL: &str = "owner";
/// Most demand-paged ranges of a VM (VM_SET_DEMAND_PAGING).
pub const MAX_DEMAND_RANGES: usize = 4;

/// Stage-2 memory type of normal memory (write-back).
const MEMTYPE_NORMAL_WB: u32 = 0xF;
/// Stage-2 memory type of I/O memory (Device-nGnRE).
const MEMTYPE_DEVICE: u32 = 0x1;

/// The RM's own caps and limits (its boot information).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RmCaps {
    /// The root partition (OBJECT_CREATE).
    pub partition: CapId,
    /// The RM's cspace.
    pub cspace: CapId,
    /// The RM's VIC.
    pub vic: CapId,
    /// The RM's address space (MAP).
    pub addrspace: CapId,
    /// The RM's mapping window: IPA and size.
    pub window: (u64, u64),
    /// Physical CPUs (vCPU affinities go round them).
    pub cpus: u32,
}

/// A range of memory a VM owns: where it is mapped in the VM and the extent over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// IPA in the VM.
    pub ipa: u64,
    /// Size.
    pub size: u64,
    /// The extent (MAP, DERIVE), in the RM's cspace.
    pub extent: CapId,
}

/// What the RM knows of a VM the launch built (`crate::launch`), not VM_INIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownVm {
    /// Its name (console, the peer of links).
    pub name: String,
    /// Its address space (`CapId::INVALID` if not given).
    pub addrspace: CapId,
    /// Its cspace (`CapId::INVALID` if not given).
    pub cspace: CapId,
    /// Its VIC (`CapId::INVALID` if not given).
    pub vic: CapId,
    /// Its RAM, if an extent over it was given.
    pub ram: Option<Region>,
    /// Free vIRQs of its VIC: `[first, limit)`.
    pub virqs: (u32, u32),
}

/// Where a VM's image and DTB are in its image parcel (VM_CONFIG_IMAGE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Image {
    handle: u32,
    image_offset: u64,
    dtb_offset: u64,
    dtb_size: u64,
}

/// What VM_INIT made for a VM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Made {
    /// Master caps in the RM's cspace, in creation order.
    caps: Vec<CapId>,
    /// Caps copied into other VMs' cspaces: (cspace, cap).
    copies: Vec<(CapId, CapId)>,
    /// vIRQs of the RM's VIC it took.
    rm_virqs: Vec<u32>,
    /// vIRQs of the owner's VIC it took.
    owner_virqs: Vec<u32>,
    /// Mappings it made: (address space, extent, IPA, size).
    maps: Vec<(CapId, CapId, u64, u64)>,
    /// vCPU vIRQ sources it bound into another VM's VIC: (vCPU, source). Unbound first, as
    /// the vCPU object may outlive its caps here.
    bound: Vec<(CapId, u64)>,
}

/// The objects of a VM the RM created.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Objects {
    made: Made,
    owner: VmId,
    vcpus: Vec<CapId>,
    entry: u64,
    dtb_ipa: u64,
    boot_flags: u64,
    link_virqs: [u32; 2],
    halt_virq: u32,
}

/// What the RM knows of one VM.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VmState {
    vmid: VmId,
    name: String,
    addrspace: CapId,
    cspace: CapId,
    vic: CapId,
    regions: Vec<Region>,
    virqs: VirqPool,
    image: Option<Image>,
    layout_base: Option<u64>,
    /// VM_SET_DEMAND_PAGING's ranges: (IPA, size), sorted.
    demand: Vec<(u64, u64)>,
    objects: Option<Objects>,
}

impl VmState {
    fn new(vmid: VmId) -> VmState {
        VmState {
            vmid,
            name: format!("vm{:x}", vmid.0),
            addrspace: CapId::INVALID,
            cspace: CapId::INVALID,
            vic: CapId::INVALID,
            regions: Vec::new(),
            virqs: VirqPool::default(),
            image: None,
            layout_base: None,
            demand: Vec::new(),
            objects: None,
        }
    }
}

/// The RM's hypervisor operations over Gunyah's object hypercalls.
pub struct Gunyah<C> {
    calls: C,
    rm: RmCaps,
    rm_virqs: VirqPool,
    vms: Vec<VmState>,
    parcels: Parcels,
    hwirqs: Vec<(VmId, u32, CapId)>,
    irqs: Vec<LentIrq>,
    next_irq: u32,
    events: Vec<Event>,
}

/// The RM error for a hypervisor error.
pub fn rm_error(e: Error) -> RmError {
    match e {
        Error::Unimplemented => RmError::Unimplemented,
        Error::Nomem => RmError::NoMem,
        Error::Noresources | Error::CspaceFull => RmError::NoResource,
        Error::Denied | Error::CspaceInsufficientRights => RmError::Denied,
        Error::Busy | Error::Retry => RmError::Busy,
        Error::AddrInvalid
        | Error::AddrOverflow
        | Error::AddrUnderflow
        | Error::ExistingMapping
        | Error::MemextentMappingsFull => RmError::MapFailed,
        Error::Memdb | Error::MemdbEmpty | Error::MemdbNotOwner => RmError::MemInvalid,
        Error::VirqBound => RmError::IrqInUse,
        Error::VirqNotBound => RmError::IrqNotMapped,
        _ => RmError::ArgumentInvalid,
    }
}

fn map_attrs(rights: u8, mem_type: MemType) -> u32 {
    let access = u32::from(rights & MEM_RIGHTS_RWX);
    let memtype = match mem_type {
        MemType::Io => MEMTYPE_DEVICE,
        _ => MEMTYPE_NORMAL_WB,
    };
    access | (access << 4) | (memtype << 16)
}

/// `memextent_configure_derive` attributes: `rights` as access, memtype CACHED (every extent
/// the RM derives from is a VM's RAM, and a child may not be broader than its parent), type
/// BASIC.
fn extent_attrs(rights: u8) -> u32 {
    u32::from(rights & MEM_RIGHTS_RWX) | EXTENT_MEMTYPE_CACHED
}

/// `memextent_attrs` memtype CACHED (bits 9:8 = 3).
const EXTENT_MEMTYPE_CACHED: u32 = 3 << 8;

impl<C: Hypercalls> Gunyah<C> {
    /// The RM with its caps; `rm_virqs` are the vIRQs of its VIC no link uses yet.
    pub fn new(calls: C, rm: RmCaps, rm_virqs: Vec<u32>) -> Self {
        Gunyah {
            calls,
            rm,
            rm_virqs: VirqPool { free: rm_virqs },
            vms: Vec::new(),
            parcels: Parcels::new(),
            hwirqs: Vec::new(),
            irqs: Vec::new(),
            next_irq: 0,
            events: Vec::new(),
        }
    }

    /// The calls (host tests read the fake's record).
    pub fn calls(&self) -> &C {
        &self.calls
    }

    /// The calls, mutably.
    pub fn calls_mut(&mut self) -> &mut C {
        &mut self.calls
    }

    /// The RM's own caps and limits.
    pub fn rm_caps(&self) -> RmCaps {
        self.rm
    }

    /// A free vIRQ of the RM's VIC, taken for good (the links and watches of the manifest's
    /// VMs, which live as long as the RM).
    pub fn take_rm_virq(&mut self) -> Result<u32, RmError> {
        self.rm_virqs.alloc()
    }

    /// The memparcels.
    pub fn parcels(&self) -> &Parcels {
        &self.parcels
    }

    /// Tell it about VM `vmid`, which the launch built (not VM_INIT).
    pub fn add_vm(&mut self, vmid: VmId, vm: KnownVm) {
        let mut st = VmState::new(vmid);
        st.name = vm.name;
        st.addrspace = vm.addrspace;
        st.cspace = vm.cspace;
        st.vic = vm.vic;
        st.regions.extend(vm.ram);
        st.virqs = VirqPool::range(vm.virqs.0, vm.virqs.1);
        self.vms.retain(|v| v.vmid != vmid);
        self.vms.push(st);
    }

    /// A hardware IRQ bound at `virq` in `vmid`'s VIC, which that VM may lend.
    pub fn add_hwirq(&mut self, vmid: VmId, virq: u32, cap: CapId) {
        if !self.hwirqs.contains(&(vmid, virq, cap)) {
            self.hwirqs.push((vmid, virq, cap));
        }
    }

    fn vm(&self, vmid: VmId) -> Option<&VmState> {
        self.vms.iter().find(|v| v.vmid == vmid)
    }

    fn vm_mut(&mut self, vmid: VmId) -> &mut VmState {
        if let Some(i) = self.vms.iter().position(|v| v.vmid == vmid) {
            return &mut self.vms[i];
        }
        self.vms.push(VmState::new(vmid));
        let last = self.vms.len() - 1;
        &mut self.vms[last]
    }

    fn name(&self, vmid: VmId) -> String {
        self.vm(vmid)
            .map_or_else(|| format!("vm{:x}", vmid.0), |v| v.name.clone())
    }

    // ----- Building blocks -----

    fn create(&mut self, kind: Kind, made: &mut Made) -> Result<CapId, RmError> {
        let cap = self
            .calls
            .create(kind, self.rm.partition, self.rm.cspace)
            .map_err(rm_error)?;
        made.caps.push(cap);
        Ok(cap)
    }

    fn activate(&mut self, cap: CapId) -> Result<(), RmError> {
        self.calls.activate(cap).map_err(rm_error)
    }

    /// A message queue of the RM protocol's shape (depth 8, 240-byte messages), active.
    fn queue(&mut self, made: &mut Made) -> Result<CapId, RmError> {
        let q = self.create(Kind::Msgqueue, made)?;
        self.calls
            .msgqueue_configure(q, RM_QUEUE_DEPTH, RM_MESSAGE_SIZE)
            .map_err(rm_error)?;
        self.activate(q)?;
        Ok(q)
    }

    fn copy(
        &mut self,
        cap: CapId,
        dest: CapId,
        rights: u32,
        made: &mut Made,
    ) -> Result<CapId, RmError> {
        let c = self
            .calls
            .cspace_copy(self.rm.cspace, cap, dest, rights)
            .map_err(rm_error)?;
        made.copies.push((dest, c));
        Ok(c)
    }

    fn rm_virq(&mut self, made: &mut Made) -> Result<u32, RmError> {
        let v = self.rm_virqs.alloc()?;
        made.rm_virqs.push(v);
        Ok(v)
    }

    /// Undo `made`: vIRQ bindings, mappings, copies, then caps (newest first), and free its
    /// vIRQs.
    fn undo(&mut self, made: Made, owner: VmId) {
        for &(vcpu, source) in made.bound.iter().rev() {
            let _ = self.calls.vcpu_unbind_virq(vcpu, source);
        }
        for &(asp, extent, ipa, size) in made.maps.iter().rev() {
            let _ = self.calls.addrspace_unmap(asp, extent, ipa, size);
        }
        for &(cspace, cap) in made.copies.iter().rev() {
            let _ = self.calls.cspace_delete(cspace, cap);
        }
        for &cap in made.caps.iter().rev() {
            let _ = self.calls.cspace_delete(self.rm.cspace, cap);
        }
        for v in made.rm_virqs {
            self.rm_virqs.give(v);
        }
        let pool = &mut self.vm_mut(owner).virqs;
        for v in made.owner_virqs {
            pool.give(v);
        }
    }
}

impl<C: Hypercalls> Hyp for Gunyah<C> {
    fn vm_config_image(
        &mut self,
        owner: VmId,
        vmid: VmId,
        req: &VmConfigImageRequest,
    ) -> Result<(), RmError> {
        self.config_image(owner, vmid, req)
    }

    fn vm_set_demand_paging(
        &mut self,
        owner: VmId,
        vmid: VmId,
        ranges: &[SglEntry],
    ) -> Result<(), RmError> {
        self.set_demand_paging(owner, vmid, ranges)
    }

    fn vm_set_address_layout(
        &mut self,
        vmid: VmId,
        range: AddressRangeId,
        base: u64,
        _size: u64,
    ) -> Result<(), RmError> {
        match range {
            AddressRangeId::Image => {
                self.vm_mut(vmid).layout_base = Some(base);
                Ok(())
            }
            _ => Err(RmError::Unimplemented),
        }
    }

    fn vm_init_check(&self, vmid: VmId, owner: VmId) -> Result<(), RmError> {
        self.init_check(vmid, owner)
    }

    fn vm_create(&mut self, vmid: VmId, owner: VmId) -> Result<Vec<Resource>, RmError> {
        self.init_vm(vmid, owner)
    }

    fn vm_set_boot_context(
        &mut self,
        vmid: VmId,
        reg_set: BootRegSet,
        index: u8,
        value: u64,
    ) -> Result<(), RmError> {
        self.set_boot_context(vmid, reg_set, index, value)
    }

    fn vm_power_on(&mut self, vmid: VmId) -> Result<(), RmError> {
        self.power_on(vmid)
    }

    fn vm_kill(&mut self, vmid: VmId) -> Result<(), RmError> {
        self.kill(vmid)
    }

    fn vm_destroy(&mut self, vmid: VmId) -> Result<(), RmError> {
        self.destroy(vmid)
    }

    fn mem_create(
        &mut self,
        owner: VmId,
        trans: TransType,
        req: &MemCreateRequest<'_>,
    ) -> Result<u32, RmError> {
        self.create_parcel(owner, trans, req)
    }

    fn mem_append(&mut self, caller: VmId, req: &MemAppendRequest<'_>) -> Result<(), RmError> {
        self.append_parcel(caller, req)
    }

    fn mem_accept(&mut self, caller: VmId, req: &MemAcceptRequest<'_>) -> Result<Vec<u8>, RmError> {
        self.accept_parcel(caller, req)
    }

    fn mem_release(
        &mut self,
        caller: VmId,
        req: &MemReleaseRequest,
        reclaim: bool,
    ) -> Result<(), RmError> {
        self.release_parcel(caller, req, reclaim)
    }

    fn mem_notify(
        &mut self,
        caller: VmId,
        req: &MemNotifyRequest<'_>,
    ) -> Result<Vec<Notice>, RmError> {
        self.parcel_notices(caller, req)
    }

    fn irq_lend(&mut self, owner: VmId, req: &IrqLendRequest) -> Result<u32, RmError> {
        self.lend_irq(owner, req)
    }

    fn irq_accept(&mut self, caller: VmId, req: &IrqAcceptRequest) -> Result<u32, RmError> {
        self.accept_irq(caller, req)
    }

    fn irq_release(&mut self, caller: VmId, handle: u32, reclaim: bool) -> Result<(), RmError> {
        self.release_irq(caller, handle, reclaim)
    }

    fn irq_notify(
        &mut self,
        caller: VmId,
        req: &IrqNotifyRequest<'_>,
    ) -> Result<Vec<Notice>, RmError> {
        self.irq_notices(caller, req)
    }

    fn vm_deallocate(&mut self, vmid: VmId) {
        let st = self.vm_mut(vmid);
        st.image = None;
        st.layout_base = None;
        st.demand.clear();
        if st.objects.is_none() && st.regions.is_empty() {
            self.vms.retain(|v| v.vmid != vmid);
        }
    }

    fn take_events(&mut self) -> Vec<Event> {
        core::mem::take(&mut self.events)
    }
}

fn encode<T: Encode>(value: &T) -> Result<Vec<u8>, RmError> {
    let mut buf = vec![0u8; value.encoded_len()];
    let n = value.encode(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

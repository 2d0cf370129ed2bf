//! [`Gunyah`]: the [`Hyp`] the RM runs with. It creates and destroys VMs, lends, shares and
//! donates memory and lends IRQs with Gunyah's object hypercalls ([`Hypercalls`]), keeping
//! what it made per VM so that a VM's destruction gives every cap, page and vIRQ back.
//!
//! What it knows of each VM: its address space, cspace and VIC (caps in the RM's cspace; made
//! by the launch for the manifest's VMs, here for the VMs it creates), the memory
//! it owns (extents and where they are mapped), and the free vIRQs of its VIC.
//!
//! VM_INIT (see docs/rm.md for the sequence): cspace, address space (the VMID), VIC, the vCPUs
//! (from the owner's device tree `/cpus`, 1 if absent, at most [`MAX_VCPUS`]; proxy-scheduled
//! if its `gunyah-vm-config/vcpus/affinity` is "proxy": the owner gets each vCPU's wakeup vIRQ
//! and runs it with `vcpu_run`), vCPU 0's HALT bound to a vIRQ of the RM, a message-queue pair
//! VM<->RM (the VM becomes an RM client) and one VM<->owner, the VM's device tree written over the DTB the owner put in the image parcel,
//! and the parcel mapped into the VM at the IPAs it had in the owner (or at the base
//! VM_SET_ADDRESS_LAYOUT gave). For a VM with demand-paged ranges (VM_SET_DEMAND_PAGING) the
//! owner also gets the VM's address space and, per range, a guest-private and a host-private
//! extent over its own pages there, which it donates between (see
//! `Gunyah::demand_paging` and docs/rm.md). Any failure undoes what was made.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use guestdt::hypervisor::{self, HypNode, RM_MESSAGE_SIZE, RM_QUEUE_DEPTH};
use guestdt::{GuestDt, layout};
use wurley_abi::rights::{AddrspaceRights, MemextentRights, MsgqueueRights, ThreadRights};
use wurley_abi::rm::irq::{
    IRQ_ACCEPT_ANY_VIRQ, IRQ_NOTIFY_FLAG_ACCEPTED, IRQ_NOTIFY_FLAG_LENT, IRQ_NOTIFY_FLAG_RELEASED,
    IrqAcceptRequest, IrqHandle, IrqLendRequest, IrqLentNotification, IrqNotifyRequest,
};
use wurley_abi::rm::memparcel::{
    AclEntry, MEM_ACCEPT_FLAG_VALIDATE_LABEL, MEM_APPEND_FLAG_END, MEM_CREATE_FLAG_APPEND,
    MEM_CREATE_FLAG_SANITIZE, MEM_NOTIFY_FLAG_ACCEPTED, MEM_NOTIFY_FLAG_RECALL,
    MEM_NOTIFY_FLAG_RELEASED, MEM_NOTIFY_FLAG_SHARED, MEM_RELEASE_FLAG_SANITIZE, MEM_RIGHTS_RW,
    MEM_RIGHTS_RWX, MemAcceptReply, MemAcceptRequest, MemAppendRequest, MemCreateRequest,
    MemNotifyRequest, MemOwnerNotification, MemRecallNotification, MemReleaseRequest,
    MemSharedNotification, MemType, SglEntry, TransType,
};
use wurley_abi::rm::resource::{
    ADDRSPACE_LABEL, HypResource, MEM_EXTENT_LABEL_GUEST_PRIVATE, MEM_EXTENT_LABEL_HOST_PRIVATE,
    ResourceType,
};
use wurley_abi::rm::vm::{AddressRangeId, BootRegSet, VmConfigImageRequest};
use wurley_abi::rm::{Encode, List, RmError, ids};
use wurley_abi::{CapId, Error, VmId};
use wurley_rt::fdt::Fdt;

use crate::calls::{Hypercalls, Kind, Modify, VCPU_VIRQ_HALT, VCPU_VIRQ_RUN_WAKEUP};
use crate::hyp::{Event, Hyp, Notice};
use crate::launch::VCPU_OPTION_RUN_SCHEDULED;
use crate::memparcel::{PAGE, Parcel, Parcels, Range};
use crate::vms::Resource;

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
/// The owner's rights on the VM's address space when the VM is demand paged (type 10):
/// Linux's `addrspace_map`/`unmap` need MAP; LOOKUP lets it ask what the VM has mapped.
const OWNER_ADDRSPACE_RIGHTS: AddrspaceRights = AddrspaceRights::MAP.union(AddrspaceRights::LOOKUP);
/// The owner's rights on a demand-paging extent (type 9): donating pages to and from it.
const OWNER_EXTENT_RIGHTS: MemextentRights = MemextentRights::DONATE;

/// Stage-2 memory type of normal memory (write-back).
const MEMTYPE_NORMAL_WB: u32 = 0xF;
/// Stage-2 memory type of I/O memory (Device-nGnRE).
const MEMTYPE_DEVICE: u32 = 0x1;
/// `vcpu_poweron` flags: keep the entry point / context written with `vcpu_register_write`.
const POWERON_PRESERVE_ENTRY: u64 = 1;
const POWERON_PRESERVE_CONTEXT: u64 = 2;
/// The rights a VM's owner gets on the VM's vCPUs (to run them with `vcpu_run`, query them).
const OWNER_VCPU_RIGHTS: ThreadRights = ThreadRights::AFFINITY
    .union(ThreadRights::YIELD_TO)
    .union(ThreadRights::BIND_VIRQ)
    .union(ThreadRights::STATE);
/// Rights on the queue a VM sends on / receives from.
const SEND_RIGHTS: MsgqueueRights = MsgqueueRights::SEND.union(MsgqueueRights::BIND_SEND);
const RECEIVE_RIGHTS: MsgqueueRights = MsgqueueRights::RECEIVE.union(MsgqueueRights::BIND_RECEIVE);

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

/// A pool of free vIRQs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct VirqPool {
    free: Vec<u32>,
}

impl VirqPool {
    fn range(first: u32, limit: u32) -> VirqPool {
        VirqPool {
            free: (first..limit).collect(),
        }
    }

    fn alloc(&mut self) -> Result<u32, RmError> {
        if self.free.is_empty() {
            return Err(RmError::NoResource);
        }
        Ok(self.free.remove(0))
    }

    fn take(&mut self, virq: u32) -> bool {
        match self.free.iter().position(|&v| v == virq) {
            Some(i) => {
                self.free.remove(i);
                true
            }
            None => false,
        }
    }

    fn give(&mut self, virq: u32) {
        if !self.free.contains(&virq) {
            let i = self.free.partition_point(|&v| v < virq);
            self.free.insert(i, virq);
        }
    }
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

/// A hardware IRQ lent by its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LentIrq {
    handle: u32,
    owner: VmId,
    owner_virq: u32,
    borrower: VmId,
    label: u32,
    hwirq: CapId,
    accepted: Option<u32>,
}

/// What the owner's device tree in the image parcel says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DtInput {
    pub(crate) vcpus: u32,
    pub(crate) bootargs: String,
    pub(crate) initrd: Option<(u64, u64)>,
    /// `gunyah-vm-config/vcpus/affinity = "proxy"`: the owner runs the vCPUs with `vcpu_run`.
    pub(crate) proxy: bool,
}

impl DtInput {
    pub(crate) fn parse(blob: &[u8]) -> DtInput {
        let mut out = DtInput {
            vcpus: 1,
            bootargs: String::new(),
            initrd: None,
            proxy: false,
        };
        let Ok(fdt) = Fdt::new(blob) else {
            return out;
        };
        if let Some(cpus) = fdt.find_node("/cpus") {
            let n = cpus
                .children()
                .filter(|c| c.name().starts_with("cpu@") || c.name() == "cpu")
                .count() as u32;
            out.vcpus = n.clamp(1, MAX_VCPUS);
        }
        if let Some(chosen) = fdt.find_node("/chosen") {
            out.bootargs = String::from(chosen.prop_str("bootargs").unwrap_or(""));
            let start = chosen.prop_u64("linux,initrd-start");
            let end = chosen.prop_u64("linux,initrd-end");
            if let (Some(s), Some(e)) = (start, end)
                && e >= s
            {
                out.initrd = Some((s, e));
            }
        }
        // Linux's VM configuration (`gunyah-vm-config`, a child of the root): `vcpus`
        // `affinity` is "proxy" when the host runs the vCPUs itself; any other value (Gunyah's
        // "static", "sticky") or none leaves them to the hypervisor's scheduler.
        out.proxy = fdt
            .find_node("/gunyah-vm-config/vcpus")
            .and_then(|v| v.prop_str("affinity"))
            .is_some_and(|a| a == PROXY_AFFINITY);
        out
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

/// An entry for `holder` (no vIRQ, base or size).
fn owner_entry(holder: VmId, t: ResourceType, partner: VmId, cap: CapId, label: u32) -> Resource {
    Resource {
        holder,
        entry: HypResource {
            resource_type: t,
            partner_vmid: partner,
            handle: 0,
            label,
            cap_id: cap.raw(),
            virq_handle: 0,
            virq: 0,
            base: 0,
            size: 0,
        },
    }
}

/// The VM's RAM for its device tree: the image parcel at `memory` and the demand-paged
/// ranges, if together they are one contiguous range; the parcel alone otherwise.
fn memory_with(memory: (u64, u64), demand: &[(u64, u64)]) -> (u64, u64) {
    let mut all: Vec<(u64, u64)> = demand.to_vec();
    all.push(memory);
    all.sort_unstable();
    let Some((&first, rest)) = all.split_first() else {
        return memory;
    };
    let mut hull = first;
    for &(ipa, size) in rest {
        if ipa != hull.0.saturating_add(hull.1) {
            return memory;
        }
        hull.1 = hull.1.saturating_add(size);
    }
    hull
}

fn align_down(v: u64) -> u64 {
    v & !(PAGE - 1)
}

fn align_up(v: u64) -> Option<u64> {
    Some(v.checked_add(PAGE - 1)? & !(PAGE - 1))
}

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

    /// Derive an extent per SGL range of `owner`'s memory; for a lend or donation, unmap it
    /// from the owner. On failure what was made is undone.
    fn derive(
        &mut self,
        owner: VmId,
        trans: TransType,
        sgl: &[(u64, u64)],
    ) -> Result<Vec<Range>, RmError> {
        let (regions, owner_as) = match self.vm(owner) {
            Some(v) => (v.regions.clone(), v.addrspace),
            None => (Vec::new(), CapId::INVALID),
        };
        let mut made = Made::default();
        let mut out = Vec::new();
        for &(ipa, size) in sgl {
            let r = self.derive_one(&regions, owner_as, trans, ipa, size, &mut made);
            match r {
                Ok(range) => out.push(range),
                Err(e) => {
                    self.undo(made, owner);
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    fn derive_one(
        &mut self,
        regions: &[Region],
        owner_as: CapId,
        trans: TransType,
        ipa: u64,
        size: u64,
        made: &mut Made,
    ) -> Result<Range, RmError> {
        let region = regions
            .iter()
            .find(|r| ipa >= r.ipa && ipa + size <= r.ipa.saturating_add(r.size))
            .ok_or(RmError::MemInvalid)?;
        let e = self.create(Kind::Memextent, made)?;
        self.calls
            .memextent_derive(
                e,
                region.extent,
                ipa - region.ipa,
                size,
                extent_attrs(MEM_RIGHTS_RWX),
            )
            .map_err(rm_error)?;
        self.activate(e)?;
        if trans != TransType::Share {
            // The child has the owner's mapping of the range (inherited at derivation);
            // removing it takes the pages away from the owner.
            self.calls
                .addrspace_unmap(owner_as, e, ipa, size)
                .map_err(rm_error)?;
        }
        Ok(Range {
            ipa,
            size,
            extent: e,
        })
    }

    /// Unmap parcel `handle` from `vmid` (which accepted it) and mark it released.
    fn unmap_accepted(&mut self, handle: u32, vmid: VmId) {
        let Ok(ipas) = self
            .parcels
            .check_release(handle, vmid)
            .map(<[u64]>::to_vec)
        else {
            return;
        };
        let ranges = self
            .parcels
            .get(handle)
            .map(|p| p.ranges.clone())
            .unwrap_or_default();
        let asp = self.vm(vmid).map_or(CapId::INVALID, |v| v.addrspace);
        for (r, ipa) in ranges.iter().zip(ipas) {
            let _ = self.calls.addrspace_unmap(asp, r.extent, ipa, r.size);
        }
        let _ = self.parcels.set_released(handle, vmid);
    }

    /// Give parcel `handle`'s pages back to its owner: zero them if asked, then delete the
    /// extents (their pages return to the extent they were derived from, and the owner's
    /// mapping of that covers them again).
    fn return_parcel(&mut self, handle: u32, sanitize: bool) {
        let Some(p) = self.parcels.remove(handle) else {
            return;
        };
        for r in &p.ranges {
            if sanitize || p.sanitize {
                let _ = self.calls.memextent_modify(r.extent, Modify::Zero, r.size);
            }
            let _ = self.calls.cspace_delete(self.rm.cspace, r.extent);
        }
    }

    /// Where the ranges of `p` go in VM `vmid`: at `base` one after the other, or at the
    /// owner's IPAs.
    fn image_ipas(p: &Parcel, base: Option<u64>) -> Result<Vec<u64>, RmError> {
        match base {
            None => Ok(p.ranges.iter().map(|r| r.ipa).collect()),
            Some(mut at) => {
                let mut out = Vec::new();
                for r in &p.ranges {
                    out.push(at);
                    at = at.checked_add(r.size).ok_or(RmError::ArgumentInvalid)?;
                }
                Ok(out)
            }
        }
    }

    /// The IPA in the VM of byte `offset` of parcel `p` mapped at `ipas`.
    fn ipa_of(p: &Parcel, ipas: &[u64], offset: u64) -> Result<u64, RmError> {
        let (i, off) = p.locate(offset).ok_or(RmError::ArgumentInvalid)?;
        let base = ipas.get(i).ok_or(RmError::ArgumentInvalid)?;
        base.checked_add(off).ok_or(RmError::ArgumentInvalid)
    }

    // ----- VM creation -----

    /// Map the pages of `p` holding the DTB into the RM's window through a temporary extent
    /// derived from the parcel's; returns it, the bytes mapped, and the DTB's offset in the
    /// window.
    fn map_dtb(
        &mut self,
        p: &Parcel,
        image: &Image,
        made: &mut Made,
    ) -> Result<(CapId, u64, u64), RmError> {
        let (i, off) = p.locate(image.dtb_offset).ok_or(RmError::ArgumentInvalid)?;
        let range = p.ranges.get(i).copied().ok_or(RmError::ArgumentInvalid)?;
        let start = align_down(off);
        let end = off
            .checked_add(image.dtb_size)
            .and_then(align_up)
            .ok_or(RmError::ArgumentInvalid)?;
        let len = end - start;
        if end > range.size || len > self.rm.window.1 {
            return Err(RmError::ArgumentInvalid);
        }
        let tmp = self.create(Kind::Memextent, made)?;
        self.calls
            .memextent_derive(tmp, range.extent, start, len, extent_attrs(MEM_RIGHTS_RW))
            .map_err(rm_error)?;
        self.activate(tmp)?;
        self.calls
            .addrspace_map(
                self.rm.addrspace,
                tmp,
                self.rm.window.0,
                map_attrs(MEM_RIGHTS_RW, MemType::Normal),
                len,
            )
            .map_err(rm_error)?;
        made.maps
            .push((self.rm.addrspace, tmp, self.rm.window.0, len));
        Ok((tmp, len, off - start))
    }

    /// VM_INIT's work; `made` records everything for [`Gunyah::undo`].
    fn build(
        &mut self,
        vmid: VmId,
        owner: VmId,
        p: &Parcel,
        image: &Image,
        ipas: &[u64],
        made: &mut Made,
    ) -> Result<(Objects, Vec<Resource>), RmError> {
        // The VM's RAM: the parcel, contiguous in the VM.
        let mut memory = (ipas.first().copied().unwrap_or(0), 0u64);
        for (r, &ipa) in p.ranges.iter().zip(ipas) {
            if ipa != memory.0 + memory.1 {
                return Err(RmError::ArgumentInvalid);
            }
            memory.1 += r.size;
        }
        let entry = Self::ipa_of(p, ipas, image.image_offset)?;
        let dtb_ipa = Self::ipa_of(p, ipas, image.dtb_offset)?;

        // The owner's device tree: vCPUs, bootargs, initrd.
        let (tmp, tmp_len, dtb_at) = self.map_dtb(p, image, made)?;
        let mut blob = vec![0u8; image.dtb_size as usize];
        if !self.calls.window_read(dtb_at, &mut blob) {
            return Err(RmError::MapFailed);
        }
        let input = DtInput::parse(&blob);

        let rm_cs = self.rm.cspace;
        let cs = self.create(Kind::Cspace, made)?;
        self.calls
            .cspace_configure(cs, VM_CSPACE_CAPS)
            .map_err(rm_error)?;
        self.activate(cs)?;
        let asp = self.create(Kind::Addrspace, made)?;
        self.calls
            .addrspace_configure(asp, vmid.0)
            .map_err(rm_error)?;
        self.activate(asp)?;
        let vic = self.create(Kind::Vic, made)?;
        self.calls
            .vic_configure(vic, input.vcpus, layout::SPIS)
            .map_err(rm_error)?;
        self.activate(vic)?;
        let (owner_cs, owner_vic) = self
            .vm(owner)
            .map_or((CapId::INVALID, CapId::INVALID), |v| (v.cspace, v.vic));
        // A proxy-scheduled VM needs an owner the RM can give vCPU caps and wakeup vIRQs.
        if input.proxy && !(owner_cs.is_valid() && owner_vic.is_valid()) {
            return Err(RmError::ArgumentInvalid);
        }
        let options = if input.proxy {
            VCPU_OPTION_RUN_SCHEDULED
        } else {
            0
        };
        let mut vcpus = Vec::new();
        for i in 0..input.vcpus {
            let t = self.create(Kind::Thread, made)?;
            self.calls.vcpu_configure(t, options).map_err(rm_error)?;
            let cpu = u64::from(i % self.rm.cpus.max(1));
            self.calls.vcpu_set_affinity(t, cpu).map_err(rm_error)?;
            self.calls.cspace_attach_thread(cs, t).map_err(rm_error)?;
            self.calls
                .addrspace_attach_thread(asp, t)
                .map_err(rm_error)?;
            self.calls.vic_attach_vcpu(vic, t, i).map_err(rm_error)?;
            self.activate(t)?;
            vcpus.push(t);
        }
        let v0 = vcpus.first().copied().ok_or(RmError::ArgumentInvalid)?;
        let halt_virq = self.rm_virq(made)?;
        self.calls
            .vcpu_bind_virq(v0, self.rm.vic, halt_virq, VCPU_VIRQ_HALT)
            .map_err(rm_error)?;

        // The VM's RM link: it sends on `to_rm`, the RM on `from_rm`.
        let to_rm = self.queue(made)?;
        let from_rm = self.queue(made)?;
        let rm_rx = self.rm_virq(made)?;
        let rm_tx = self.rm_virq(made)?;
        let c = &mut self.calls;
        c.msgqueue_bind_send(to_rm, vic, VM_RM_TX_VIRQ)
            .map_err(rm_error)?;
        c.msgqueue_bind_receive(to_rm, self.rm.vic, rm_rx)
            .map_err(rm_error)?;
        c.msgqueue_bind_send(from_rm, self.rm.vic, rm_tx)
            .map_err(rm_error)?;
        c.msgqueue_bind_receive(from_rm, vic, VM_RM_RX_VIRQ)
            .map_err(rm_error)?;
        let vm_rm_tx = self.copy(to_rm, cs, SEND_RIGHTS.bits(), made)?;
        let vm_rm_rx = self.copy(from_rm, cs, RECEIVE_RIGHTS.bits(), made)?;
        let mut nodes = vec![HypNode::ResourceManager {
            tx_cap: vm_rm_tx.raw(),
            rx_cap: vm_rm_rx.raw(),
            tx_virq: VM_RM_TX_VIRQ,
            rx_virq: VM_RM_RX_VIRQ,
        }];

        // The link to the owner, and the owner's caps to the vCPUs, if the RM may give the
        // owner caps and bind its vIRQs.
        let mut resources = Vec::new();
        if owner_cs.is_valid() && owner_vic.is_valid() {
            let to_owner = self.queue(made)?;
            let from_owner = self.queue(made)?;
            let o_rx = self.vm_mut(owner).virqs.alloc()?;
            made.owner_virqs.push(o_rx);
            let o_tx = self.vm_mut(owner).virqs.alloc()?;
            made.owner_virqs.push(o_tx);
            let c = &mut self.calls;
            c.msgqueue_bind_send(to_owner, vic, VM_OWNER_TX_VIRQ)
                .map_err(rm_error)?;
            c.msgqueue_bind_receive(to_owner, owner_vic, o_rx)
                .map_err(rm_error)?;
            c.msgqueue_bind_send(from_owner, owner_vic, o_tx)
                .map_err(rm_error)?;
            c.msgqueue_bind_receive(from_owner, vic, VM_OWNER_RX_VIRQ)
                .map_err(rm_error)?;
            let vm_tx = self.copy(to_owner, cs, SEND_RIGHTS.bits(), made)?;
            let vm_rx = self.copy(from_owner, cs, RECEIVE_RIGHTS.bits(), made)?;
            let own_tx = self.copy(from_owner, owner_cs, SEND_RIGHTS.bits(), made)?;
            let own_rx = self.copy(to_owner, owner_cs, RECEIVE_RIGHTS.bits(), made)?;
            nodes.push(HypNode::MsgQueuePair {
                label: String::from(OWNER_LINK_LABEL),
                tx_cap: vm_tx.raw(),
                rx_cap: vm_rx.raw(),
                tx_virq: VM_OWNER_TX_VIRQ,
                rx_virq: VM_OWNER_RX_VIRQ,
                depth: RM_QUEUE_DEPTH,
                message_size: RM_MESSAGE_SIZE,
                peer: self.name(owner),
            });
            let entry = |holder, t, partner, cap: CapId, virq, label| Resource {
                holder,
                entry: HypResource {
                    resource_type: t,
                    partner_vmid: partner,
                    handle: 0,
                    label,
                    cap_id: cap.raw(),
                    virq_handle: 0,
                    virq,
                    base: 0,
                    size: 0,
                },
            };
            use ResourceType::{MsgQueueRecv, MsgQueueSend, VirtualCpu};
            for (i, &t) in vcpus.iter().enumerate() {
                let cap = self.copy(t, owner_cs, OWNER_VCPU_RIGHTS.bits(), made)?;
                // A proxy-scheduled vCPU's VCPU_RUN_WAKEUP source raises a vIRQ of the owner's.
                let wakeup = if input.proxy {
                    let v = self.vm_mut(owner).virqs.alloc()?;
                    made.owner_virqs.push(v);
                    self.calls
                        .vcpu_bind_virq(t, owner_vic, v, VCPU_VIRQ_RUN_WAKEUP)
                        .map_err(rm_error)?;
                    made.bound.push((t, VCPU_VIRQ_RUN_WAKEUP));
                    v
                } else {
                    0
                };
                resources.push(entry(owner, VirtualCpu, vmid, cap, wakeup, i as u32));
            }
            resources.push(entry(owner, MsgQueueSend, vmid, own_tx, o_tx, 0));
            resources.push(entry(owner, MsgQueueRecv, vmid, own_rx, o_rx, 0));
            resources.push(entry(vmid, MsgQueueSend, owner, vm_tx, VM_OWNER_TX_VIRQ, 0));
            resources.push(entry(vmid, MsgQueueRecv, owner, vm_rx, VM_OWNER_RX_VIRQ, 0));
        }

        // Demand paging: the owner's caps to the address space and the extents.
        resources.extend(self.demand_paging(vmid, owner, asp, memory, made)?);
        let demand = self.vm(vmid).map(|v| v.demand.clone()).unwrap_or_default();
        let memory = memory_with(memory, &demand);

        // The VM's device tree, over the owner's.
        let mpidrs: Vec<u64> = (0..input.vcpus as usize).map(layout::vcpu_mpidr).collect();
        let dt = guestdt::write(&GuestDt {
            model: "wurley,virt",
            memory,
            vcpu_mpidrs: &mpidrs,
            gic_dist: (layout::GICD_BASE, layout::GICD_SIZE),
            gic_redist: (layout::GICR_BASE, layout::gicr_size(mpidrs.len())),
            gic_maintenance_ppi: Some(layout::MAINTENANCE_PPI),
            timer_ppis: layout::TIMER_PPIS,
            uart: (layout::UART_BASE, layout::UART_SIZE, layout::UART_SPI),
            bootargs: &input.bootargs,
            initrd: input.initrd,
            psci_method: "hvc",
            rng_seed: None,
            extra: Some(&|w| hypervisor::write(w, &nodes)),
        })
        .map_err(|_| RmError::ArgumentInvalid)?;
        if dt.len() as u64 > image.dtb_size {
            return Err(RmError::NoMem);
        }
        if !self.calls.window_write(dtb_at, &dt) {
            return Err(RmError::MapFailed);
        }
        // The VM starts with its MMU off: what the RM (and the owner) wrote through cacheable
        // mappings must reach memory.
        let c = &mut self.calls;
        c.memextent_modify(tmp, Modify::Clean, tmp_len)
            .map_err(rm_error)?;
        c.addrspace_unmap(self.rm.addrspace, tmp, self.rm.window.0, tmp_len)
            .map_err(rm_error)?;
        made.maps.retain(|m| m.1 != tmp);
        c.cspace_delete(rm_cs, tmp).map_err(rm_error)?;
        made.caps.retain(|&x| x != tmp);

        // The image parcel, mapped into the VM.
        let rights = p.access(vmid).map_or(MEM_RIGHTS_RWX, |a| a.rights);
        for (r, &ipa) in p.ranges.iter().zip(ipas) {
            self.calls
                .memextent_modify(r.extent, Modify::Clean, r.size)
                .map_err(rm_error)?;
            self.calls
                .addrspace_map(asp, r.extent, ipa, map_attrs(rights, p.mem_type), r.size)
                .map_err(rm_error)?;
            made.maps.push((asp, r.extent, ipa, r.size));
        }

        let objects = Objects {
            made: Made::default(),
            owner,
            vcpus,
            entry,
            dtb_ipa,
            boot_flags: 0,
            link_virqs: [rm_tx, rm_rx],
            halt_virq,
        };
        self.events.push(Event::Link {
            vmid,
            tx: from_rm,
            rx: to_rm,
            tx_virq: rm_tx,
            rx_virq: rm_rx,
        });
        self.events.push(Event::Watch {
            vmid,
            vcpu: v0,
            virq: halt_virq,
        });
        let st = self.vm_mut(vmid);
        st.addrspace = asp;
        st.cspace = cs;
        st.vic = vic;
        st.virqs = VirqPool::range(VM_OWNER_RX_VIRQ + 1, 32 + layout::SPIS);
        Ok((objects, resources))
    }

    /// VM_INIT's demand-paging step for VM `vmid` (address space `asp`, the image parcel at
    /// `memory` in it): nothing if VM_SET_DEMAND_PAGING gave no range. Otherwise the owner
    /// gets a cap to `asp` (type 10) and, per range, the RM makes two extents over the owner's
    /// pages at those IPAs: `guest`, derived from the owner's RAM extent, and `host`, derived
    /// from `guest` over all of it, which takes every page (and keeps the owner's mapping).
    /// `guest` loses its owner mapping and is mapped in the VM at the range's IPAs: it owns no
    /// page yet, so the VM sees nothing there. The owner gets both with DONATE (type 9,
    /// labels guest-private and host-private, base and size the range): a donation
    /// `host` -> `guest` (to_parent) moves pages from the owner to the VM, `guest` -> `host`
    /// (to_child) moves them back.
    fn demand_paging(
        &mut self,
        vmid: VmId,
        owner: VmId,
        asp: CapId,
        memory: (u64, u64),
        made: &mut Made,
    ) -> Result<Vec<Resource>, RmError> {
        let demand = self.vm(vmid).map(|v| v.demand.clone()).unwrap_or_default();
        if demand.is_empty() {
            return Ok(Vec::new());
        }
        let (owner_cs, owner_as, regions) = self
            .vm(owner)
            .map_or((CapId::INVALID, CapId::INVALID, Vec::new()), |v| {
                (v.cspace, v.addrspace, v.regions.clone())
            });
        if !owner_cs.is_valid() || !owner_as.is_valid() {
            return Err(RmError::ArgumentInvalid);
        }
        let parcel_end = memory.0.saturating_add(memory.1);
        if demand
            .iter()
            .any(|&(ipa, size)| ipa < parcel_end && memory.0 < ipa.saturating_add(size))
        {
            return Err(RmError::ArgumentInvalid);
        }
        let mut out = Vec::new();
        let a = self.copy(asp, owner_cs, OWNER_ADDRSPACE_RIGHTS.bits(), made)?;
        out.push(owner_entry(
            owner,
            ResourceType::AddrSpace,
            vmid,
            a,
            ADDRSPACE_LABEL,
        ));
        let attrs = extent_attrs(MEM_RIGHTS_RWX);
        for (i, &(ipa, size)) in demand.iter().enumerate() {
            let region = regions
                .iter()
                .find(|r| ipa >= r.ipa && ipa.saturating_add(size) <= r.ipa.saturating_add(r.size))
                .copied()
                .ok_or(RmError::MemInvalid)?;
            let guest = self.create(Kind::Memextent, made)?;
            self.calls
                .memextent_derive(guest, region.extent, ipa - region.ipa, size, attrs)
                .map_err(rm_error)?;
            self.activate(guest)?;
            let host = self.create(Kind::Memextent, made)?;
            self.calls
                .memextent_derive(host, guest, 0, size, attrs)
                .map_err(rm_error)?;
            self.activate(host)?;
            self.calls
                .addrspace_unmap(owner_as, guest, ipa, size)
                .map_err(rm_error)?;
            self.calls
                .addrspace_map(
                    asp,
                    guest,
                    ipa,
                    map_attrs(MEM_RIGHTS_RWX, MemType::Normal),
                    size,
                )
                .map_err(rm_error)?;
            made.maps.push((asp, guest, ipa, size));
            let g = self.copy(guest, owner_cs, OWNER_EXTENT_RIGHTS.bits(), made)?;
            let h = self.copy(host, owner_cs, OWNER_EXTENT_RIGHTS.bits(), made)?;
            for (cap, label) in [
                (g, MEM_EXTENT_LABEL_GUEST_PRIVATE),
                (h, MEM_EXTENT_LABEL_HOST_PRIVATE),
            ] {
                let mut r = owner_entry(owner, ResourceType::MemExtent, vmid, cap, label);
                r.entry.handle = i as u32;
                r.entry.base = ipa;
                r.entry.size = size;
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Release what `vmid` accepted (its address space is going away or it stopped).
    fn release_all(&mut self, vmid: VmId) {
        for h in self.parcels.accepted_by(vmid) {
            self.unmap_accepted(h, vmid);
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
        let p = self.parcels.get(req.mem_handle)?;
        if p.owner != owner {
            return Err(RmError::Denied);
        }
        if p.access(vmid).is_none() || p.trans == TransType::Donate {
            return Err(RmError::ArgumentInvalid);
        }
        let size = p.size();
        let inside = |off: u64, len: u64| off.checked_add(len).is_some_and(|end| end <= size);
        if !inside(req.image_offset, req.image_size) || !inside(req.dtb_offset, req.dtb_size) {
            return Err(RmError::ArgumentInvalid);
        }
        if req.image_offset >= size || req.dtb_size as usize > (1 << 20) {
            return Err(RmError::ArgumentInvalid);
        }
        self.vm_mut(vmid).image = Some(Image {
            handle: req.mem_handle,
            image_offset: req.image_offset,
            dtb_offset: req.dtb_offset,
            dtb_size: req.dtb_size,
        });
        Ok(())
    }

    /// At most [`MAX_DEMAND_RANGES`], page aligned, non-empty, not overlapping
    /// (`ARGUMENT_INVALID`), each inside one region of the owner's RAM (`MEM_INVALID`): the
    /// owner's pages at those IPAs are what it will provide.
    fn vm_set_demand_paging(
        &mut self,
        owner: VmId,
        vmid: VmId,
        ranges: &[SglEntry],
    ) -> Result<(), RmError> {
        if ranges.len() > MAX_DEMAND_RANGES {
            return Err(RmError::ArgumentInvalid);
        }
        let mut list: Vec<(u64, u64)> = ranges.iter().map(|r| (r.ipa, r.size)).collect();
        list.sort_unstable();
        let regions = self
            .vm(owner)
            .map(|v| v.regions.clone())
            .unwrap_or_default();
        for (i, &(ipa, size)) in list.iter().enumerate() {
            let end = ipa.checked_add(size).ok_or(RmError::ArgumentInvalid)?;
            if size == 0 || ipa % PAGE != 0 || size % PAGE != 0 {
                return Err(RmError::ArgumentInvalid);
            }
            if list.get(i + 1).is_some_and(|&(next, _)| next < end) {
                return Err(RmError::ArgumentInvalid);
            }
            if !regions
                .iter()
                .any(|r| ipa >= r.ipa && end <= r.ipa.saturating_add(r.size))
            {
                return Err(RmError::MemInvalid);
            }
        }
        self.vm_mut(vmid).demand = list;
        Ok(())
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

    /// VM_CONFIG_IMAGE must have named a parcel of the owner's that is still lent to the VM
    /// and not accepted (`ARGUMENT_INVALID` otherwise).
    fn vm_init_check(&self, vmid: VmId, owner: VmId) -> Result<(), RmError> {
        let image = self
            .vm(vmid)
            .and_then(|v| v.image)
            .ok_or(RmError::ArgumentInvalid)?;
        let p = self
            .parcels
            .get(image.handle)
            .map_err(|_| RmError::ArgumentInvalid)?;
        if p.owner != owner {
            return Err(RmError::ArgumentInvalid);
        }
        self.parcels
            .check_accept(image.handle, vmid, p.trans, p.mem_type, None)
            .map(|_| ())
            .map_err(|_| RmError::ArgumentInvalid)
    }

    fn vm_create(&mut self, vmid: VmId, owner: VmId) -> Result<Vec<Resource>, RmError> {
        let st = self.vm_mut(vmid);
        if st.objects.is_some() {
            return Err(RmError::VmState);
        }
        let image = st.image.ok_or(RmError::ArgumentInvalid)?;
        let layout_base = st.layout_base;
        let p = self.parcels.get(image.handle)?.clone();
        if p.owner != owner {
            return Err(RmError::Denied);
        }
        self.parcels
            .check_accept(image.handle, vmid, p.trans, p.mem_type, None)?;
        let ipas = Self::image_ipas(&p, layout_base)?;
        let mut made = Made::default();
        match self.build(vmid, owner, &p, &image, &ipas, &mut made) {
            Ok((mut objects, resources)) => {
                // The image's mappings belong to the parcel now (released by VM_STOP or
                // VM_RESET); the rest (the demand-paging extents' mappings in the VM) is undone
                // by VM_RESET.
                made.maps
                    .retain(|m| !p.ranges.iter().any(|r| r.extent == m.1));
                objects.made = made;
                self.parcels.set_accepted(image.handle, vmid, ipas)?;
                self.vm_mut(vmid).objects = Some(objects);
                Ok(resources)
            }
            Err(e) => {
                self.undo(made, owner);
                let st = self.vm_mut(vmid);
                st.addrspace = CapId::INVALID;
                st.cspace = CapId::INVALID;
                st.vic = CapId::INVALID;
                st.virqs = VirqPool::default();
                Err(e)
            }
        }
    }

    fn vm_set_boot_context(
        &mut self,
        vmid: VmId,
        reg_set: BootRegSet,
        index: u8,
        value: u64,
    ) -> Result<(), RmError> {
        let o = self
            .vm(vmid)
            .and_then(|v| v.objects.as_ref())
            .ok_or(RmError::VmState)?;
        let v0 = o.vcpus.first().copied().ok_or(RmError::VmState)?;
        let (set, flag) = match reg_set {
            BootRegSet::X => (
                0,
                if index == 0 {
                    POWERON_PRESERVE_CONTEXT
                } else {
                    0
                },
            ),
            BootRegSet::Pc => (1, POWERON_PRESERVE_ENTRY),
            BootRegSet::Sp => (2, 0),
        };
        self.calls
            .vcpu_register_write(v0, set, u64::from(index), value)
            .map_err(rm_error)?;
        if let Some(o) = self.vm_mut(vmid).objects.as_mut() {
            o.boot_flags |= flag;
        }
        Ok(())
    }

    fn vm_power_on(&mut self, vmid: VmId) -> Result<(), RmError> {
        let o = self
            .vm(vmid)
            .and_then(|v| v.objects.as_ref())
            .ok_or(RmError::VmState)?;
        let v0 = o.vcpus.first().copied().ok_or(RmError::VmState)?;
        let (entry, ctx, flags) = (o.entry, o.dtb_ipa, o.boot_flags);
        self.calls
            .vcpu_poweron(v0, entry, ctx, flags)
            .map_err(rm_error)
    }

    fn vm_kill(&mut self, vmid: VmId) -> Result<(), RmError> {
        let vcpus = match self.vm(vmid).and_then(|v| v.objects.as_ref()) {
            Some(o) => o.vcpus.clone(),
            // A VM of the manifest (the launch built it, not VM_INIT): it stops itself after
            // the reply (VM_EXIT is its own doing).
            None => return Err(RmError::Unimplemented),
        };
        let mut first_error = None;
        for t in vcpus {
            match self.calls.vcpu_kill(t) {
                // Already killed (the VM ended by itself).
                Ok(()) | Err(Error::ObjectState) => {}
                Err(e) => {
                    first_error.get_or_insert(rm_error(e));
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        // A stopped VM touches no memory: what it accepted counts as released, so its owner
        // can reclaim it (Linux reclaims between VM_STOP and VM_RESET).
        self.release_all(vmid);
        Ok(())
    }

    fn vm_destroy(&mut self, vmid: VmId) -> Result<(), RmError> {
        let Some(objects) = self.vm_mut(vmid).objects.take() else {
            // Never created (LOAD, or VM_INIT failed and was undone).
            return Ok(());
        };
        self.release_all(vmid);
        // Parcels of its own memory (donated to it): taken back from every borrower.
        for h in self.parcels.owned_by(vmid) {
            let borrowers: Vec<VmId> = self
                .parcels
                .get(h)
                .map(|p| p.borrowers().collect())
                .unwrap_or_default();
            for b in borrowers {
                self.unmap_accepted(h, b);
            }
            self.return_parcel(h, false);
        }
        // What was lent to it alone goes back to the lenders.
        for h in self.parcels.lent_to(vmid) {
            self.return_parcel(h, false);
        }
        let st = self.vm_mut(vmid);
        let regions = core::mem::take(&mut st.regions);
        st.addrspace = CapId::INVALID;
        st.cspace = CapId::INVALID;
        st.vic = CapId::INVALID;
        st.virqs = VirqPool::default();
        for r in regions {
            let _ = self.calls.cspace_delete(self.rm.cspace, r.extent);
        }
        let [tx, rx] = objects.link_virqs;
        // The RM's HALT vIRQ for it is free again (the vCPU object may outlive the VM).
        if let Some(&v0) = objects.vcpus.first() {
            let _ = self
                .calls
                .vcpu_unbind_virq(v0, wurley_abi::vcpu_run::VcpuVirqType::Halt as u64);
        }
        self.events.push(Event::Unwatch {
            vmid,
            virq: objects.halt_virq,
        });
        self.events.push(Event::Unlink {
            vmid,
            virqs: [tx, rx],
        });
        self.undo(objects.made, objects.owner);
        Ok(())
    }

    fn mem_create(
        &mut self,
        owner: VmId,
        trans: TransType,
        req: &MemCreateRequest<'_>,
    ) -> Result<u32, RmError> {
        let mem_type = MemType::from_raw(req.mem_type).ok_or(RmError::ArgumentInvalid)?;
        let acl: Vec<(VmId, u8)> = req.acl.iter().map(|a| (a.vmid, a.rights)).collect();
        Parcels::check_acl(owner, trans, &acl)?;
        let sgl: Vec<(u64, u64)> = req.sgl.iter().map(|e| (e.ipa, e.size)).collect();
        self.parcels.check_ranges(owner, &sgl)?;
        let ranges = self.derive(owner, trans, &sgl)?;
        let attrs: Vec<_> = req.attrs.iter().collect();
        let complete = req.flags & MEM_CREATE_FLAG_APPEND == 0;
        let sanitize = req.flags & MEM_CREATE_FLAG_SANITIZE != 0;
        let handle = self.parcels.create(
            owner, trans, mem_type, req.label, sanitize, complete, &acl, &attrs,
        )?;
        self.parcels.add_ranges(handle, &ranges)?;
        Ok(handle)
    }

    fn mem_append(&mut self, caller: VmId, req: &MemAppendRequest<'_>) -> Result<(), RmError> {
        let trans = self.parcels.check_append(req.handle, caller)?.trans;
        let sgl: Vec<(u64, u64)> = req.sgl.iter().map(|e| (e.ipa, e.size)).collect();
        self.parcels.check_ranges(caller, &sgl)?;
        let ranges = self.derive(caller, trans, &sgl)?;
        self.parcels.add_ranges(req.handle, &ranges)?;
        if req.flags & MEM_APPEND_FLAG_END != 0 {
            self.parcels.complete(req.handle)?;
        }
        Ok(())
    }

    fn mem_accept(&mut self, caller: VmId, req: &MemAcceptRequest<'_>) -> Result<Vec<u8>, RmError> {
        let trans = TransType::from_raw(req.trans_type).ok_or(RmError::ArgumentInvalid)?;
        let mem_type = MemType::from_raw(req.mem_type).ok_or(RmError::ArgumentInvalid)?;
        let label = (req.flags & MEM_ACCEPT_FLAG_VALIDATE_LABEL != 0).then_some(req.label);
        let p = self
            .parcels
            .check_accept(req.handle, caller, trans, mem_type, label)?
            .clone();
        let asp = self.vm(caller).map_or(CapId::INVALID, |v| v.addrspace);
        if !asp.is_valid() {
            return Err(RmError::MapFailed);
        }
        // Where: the owner's IPAs, one range at the base the caller gives (total size), or
        // the caller's SGL range by range (the parcel's sizes).
        let wanted: Vec<SglEntry> = req.sgl.iter().collect();
        let ipas: Vec<u64> = match wanted.as_slice() {
            [] => p.ranges.iter().map(|r| r.ipa).collect(),
            [one] if one.size == p.size() => Self::image_ipas(&p, Some(one.ipa))?,
            many if many.len() == p.ranges.len()
                && many.iter().zip(&p.ranges).all(|(w, r)| w.size == r.size) =>
            {
                many.iter().map(|w| w.ipa).collect()
            }
            _ => return Err(RmError::ArgumentInvalid),
        };
        if ipas.iter().any(|i| i % PAGE != 0) {
            return Err(RmError::ArgumentInvalid);
        }
        let rights = p.access(caller).map_or(0, |a| a.rights);
        let mut done = Vec::new();
        for (r, &ipa) in p.ranges.iter().zip(&ipas) {
            let res =
                self.calls
                    .addrspace_map(asp, r.extent, ipa, map_attrs(rights, p.mem_type), r.size);
            if let Err(e) = res {
                for &(extent, at, size) in &done {
                    let _ = self.calls.addrspace_unmap(asp, extent, at, size);
                }
                return Err(rm_error(e));
            }
            done.push((r.extent, ipa, r.size));
        }
        if trans == TransType::Donate {
            // The memory is the caller's now: it may lend it on; its end deletes the extents.
            if let Some(p) = self.parcels.remove(req.handle) {
                let st = self.vm_mut(caller);
                for (r, &ipa) in p.ranges.iter().zip(&ipas) {
                    st.regions.push(Region {
                        ipa,
                        size: r.size,
                        extent: r.extent,
                    });
                }
            }
        } else {
            self.parcels
                .set_accepted(req.handle, caller, ipas.clone())?;
        }
        let sgl: Vec<SglEntry> = p
            .ranges
            .iter()
            .zip(&ipas)
            .map(|(r, &ipa)| SglEntry { ipa, size: r.size })
            .collect();
        encode(&MemAcceptReply {
            flags: 0,
            sgl: List::from_slice(&sgl),
        })
    }

    fn mem_release(
        &mut self,
        caller: VmId,
        req: &MemReleaseRequest,
        reclaim: bool,
    ) -> Result<(), RmError> {
        let sanitize = req.flags & MEM_RELEASE_FLAG_SANITIZE != 0;
        if reclaim {
            self.parcels.check_reclaim(req.handle, caller)?;
            self.return_parcel(req.handle, sanitize);
            return Ok(());
        }
        self.parcels.check_release(req.handle, caller)?;
        self.unmap_accepted(req.handle, caller);
        if sanitize && let Ok(p) = self.parcels.get(req.handle) {
            for r in p.ranges.clone() {
                let _ = self.calls.memextent_modify(r.extent, Modify::Zero, r.size);
            }
        }
        Ok(())
    }

    fn mem_notify(
        &mut self,
        caller: VmId,
        req: &MemNotifyRequest<'_>,
    ) -> Result<Vec<Notice>, RmError> {
        let p = self.parcels.get(req.handle)?;
        let mut out = Vec::new();
        let mut push = |target, id, payload: Result<Vec<u8>, RmError>| -> Result<(), RmError> {
            out.push(Notice {
                target,
                id,
                payload: payload?,
            });
            Ok(())
        };
        match req.flags {
            MEM_NOTIFY_FLAG_SHARED => {
                if p.owner != caller {
                    return Err(RmError::Denied);
                }
                let acl: Vec<AclEntry> = p
                    .acl
                    .iter()
                    .map(|a| AclEntry {
                        vmid: a.vmid,
                        rights: a.rights,
                    })
                    .collect();
                let sizes: Vec<u64> = p.ranges.iter().map(|r| r.size).collect();
                let note = MemSharedNotification {
                    handle: p.handle,
                    mem_type: p.mem_type as u8,
                    trans_type: p.trans as u8,
                    flags: 0,
                    owner: p.owner,
                    label: p.label,
                    mem_info_tag: req.mem_info_tag,
                    acl: List::from_slice(&acl),
                    sizes: List::from_slice(&sizes),
                    attrs: List::from_slice(&p.attrs),
                };
                for v in req.vmids.iter() {
                    if p.access(v.vmid).is_none() {
                        return Err(RmError::ArgumentInvalid);
                    }
                    push(v.vmid, ids::NOTIFY_MEM_SHARED, encode(&note))?;
                }
            }
            MEM_NOTIFY_FLAG_RELEASED | MEM_NOTIFY_FLAG_ACCEPTED => {
                if p.access(caller).is_none() {
                    return Err(RmError::Denied);
                }
                let id = if req.flags == MEM_NOTIFY_FLAG_RELEASED {
                    ids::NOTIFY_MEM_RELEASED
                } else {
                    ids::NOTIFY_MEM_ACCEPTED
                };
                let note = MemOwnerNotification {
                    handle: p.handle,
                    vmid: caller,
                    mem_info_tag: req.mem_info_tag,
                };
                push(p.owner, id, encode(&note))?;
            }
            MEM_NOTIFY_FLAG_RECALL => {
                if p.owner != caller {
                    return Err(RmError::Denied);
                }
                let note = MemRecallNotification {
                    handle: p.handle,
                    mem_info_tag: req.mem_info_tag,
                };
                for b in p.borrowers() {
                    push(b, ids::NOTIFY_MEM_RECALL, encode(&note))?;
                }
            }
            _ => return Err(RmError::ArgumentInvalid),
        }
        Ok(out)
    }

    fn irq_lend(&mut self, owner: VmId, req: &IrqLendRequest) -> Result<u32, RmError> {
        let &(_, _, hwirq) = self
            .hwirqs
            .iter()
            .find(|&&(v, virq, _)| v == owner && virq == req.virq)
            .ok_or(RmError::IrqInvalid)?;
        if self.irqs.iter().any(|i| i.hwirq == hwirq) {
            return Err(RmError::IrqInUse);
        }
        self.calls.hwirq_unbind(hwirq).map_err(rm_error)?;
        self.next_irq = self.next_irq.wrapping_add(1).max(1);
        let handle = self.next_irq;
        self.irqs.push(LentIrq {
            handle,
            owner,
            owner_virq: req.virq,
            borrower: req.borrower,
            label: req.label,
            hwirq,
            accepted: None,
        });
        Ok(handle)
    }

    fn irq_accept(&mut self, caller: VmId, req: &IrqAcceptRequest) -> Result<u32, RmError> {
        let irq = *self
            .irqs
            .iter()
            .find(|i| i.handle == req.handle)
            .ok_or(RmError::HandleInvalid)?;
        if irq.borrower != caller {
            return Err(RmError::Denied);
        }
        if irq.accepted.is_some() {
            return Err(RmError::IrqInUse);
        }
        let st = self.vm_mut(caller);
        let vic = st.vic;
        if !vic.is_valid() {
            return Err(RmError::IrqInvalid);
        }
        let virq = if req.virq == IRQ_ACCEPT_ANY_VIRQ {
            st.virqs.alloc()?
        } else if st.virqs.take(req.virq) {
            req.virq
        } else {
            return Err(RmError::IrqInUse);
        };
        if let Err(e) = self.calls.hwirq_bind(irq.hwirq, vic, virq) {
            self.vm_mut(caller).virqs.give(virq);
            return Err(rm_error(e));
        }
        if let Some(i) = self.irqs.iter_mut().find(|i| i.handle == req.handle) {
            i.accepted = Some(virq);
        }
        Ok(virq)
    }

    fn irq_release(&mut self, caller: VmId, handle: u32, reclaim: bool) -> Result<(), RmError> {
        let pos = self
            .irqs
            .iter()
            .position(|i| i.handle == handle)
            .ok_or(RmError::HandleInvalid)?;
        let irq = self.irqs[pos];
        if reclaim {
            if irq.owner != caller {
                return Err(RmError::Denied);
            }
            if irq.accepted.is_some() {
                return Err(RmError::IrqInUse);
            }
            let vic = self.vm(irq.owner).map_or(CapId::INVALID, |v| v.vic);
            self.calls
                .hwirq_bind(irq.hwirq, vic, irq.owner_virq)
                .map_err(rm_error)?;
            self.irqs.remove(pos);
            return Ok(());
        }
        if irq.borrower != caller {
            return Err(RmError::Denied);
        }
        let virq = irq.accepted.ok_or(RmError::IrqReleased)?;
        self.calls.hwirq_unbind(irq.hwirq).map_err(rm_error)?;
        self.vm_mut(caller).virqs.give(virq);
        self.irqs[pos].accepted = None;
        Ok(())
    }

    fn irq_notify(
        &mut self,
        caller: VmId,
        req: &IrqNotifyRequest<'_>,
    ) -> Result<Vec<Notice>, RmError> {
        let irq = *self
            .irqs
            .iter()
            .find(|i| i.handle == req.handle)
            .ok_or(RmError::HandleInvalid)?;
        let mut out = Vec::new();
        match req.flags {
            IRQ_NOTIFY_FLAG_LENT => {
                if irq.owner != caller {
                    return Err(RmError::Denied);
                }
                let note = IrqLentNotification {
                    owner: irq.owner,
                    handle: irq.handle,
                    label: irq.label,
                };
                for v in req.vmids.iter() {
                    if v.vmid != irq.borrower {
                        return Err(RmError::ArgumentInvalid);
                    }
                    out.push(Notice {
                        target: v.vmid,
                        id: ids::NOTIFY_VM_IRQ_LENT,
                        payload: encode(&note)?,
                    });
                }
            }
            IRQ_NOTIFY_FLAG_RELEASED | IRQ_NOTIFY_FLAG_ACCEPTED => {
                if irq.borrower != caller {
                    return Err(RmError::Denied);
                }
                let id = if req.flags == IRQ_NOTIFY_FLAG_RELEASED {
                    ids::NOTIFY_VM_IRQ_RELEASED
                } else {
                    ids::NOTIFY_VM_IRQ_ACCEPTED
                };
                out.push(Notice {
                    target: irq.owner,
                    id,
                    payload: encode(&IrqHandle { handle: irq.handle })?,
                });
            }
            _ => return Err(RmError::ArgumentInvalid),
        }
        Ok(out)
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

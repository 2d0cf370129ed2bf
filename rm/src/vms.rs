//! The VM table: one record per VM the RM knows, with the RM's state machine
//! ([`VmStatus::can_become`], the public RM's transition table) and the VMID allocator.
//!
//! VMIDs: the RM itself is `0xFF` ([`VMID_RM`]), the primary VM (HLOS) `3` ([`VMID_HLOS`]),
//! VMs created with VM_ALLOCATE get a dynamic VMID from `0x80..=0xBF`. Fixed VMIDs below 64
//! are reserved for "secondary" VMs of a platform; Wurley defines none yet, so VM_ALLOCATE of
//! a fixed VMID answers `NORESOURCE` (the public RM's answer for one that is not free).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use wurley_abi::VmId;
use wurley_abi::rm::resource::{HypResource, ResourceType};
use wurley_abi::rm::status::{OsStatus, VmStateReply, VmStatus};
use wurley_abi::rm::{RmError, VMID_DYNAMIC_FIRST, VMID_DYNAMIC_LAST, VMID_HLOS, VMID_RM};

/// The RM's name for itself in the table.
pub const RM_NAME: &str = "rm";

/// Whether `vmid` is in the dynamic range.
pub const fn is_dynamic(vmid: VmId) -> bool {
    vmid.0 >= VMID_DYNAMIC_FIRST.0 && vmid.0 <= VMID_DYNAMIC_LAST.0
}

/// A hypervisor resource of a VM, as VM_GET_HYP_RESOURCES reports it to `holder`: the cap
/// in `entry` lives in the holder's cspace and the vIRQ in the holder's VIC (the VM itself
/// for its own doorbells and queues, its owner for the vCPUs it proxy-schedules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// The VM the entry is meant for.
    pub holder: VmId,
    /// The entry.
    pub entry: HypResource,
}

/// A VM's RM console (VM_CONSOLE_*), as in the public RM's `vm_console_simple.c`: the VM
/// opens its own console (target 0), its owner may open the VM's console from the other side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleState {
    /// The VM opened its console.
    pub self_open: bool,
    /// The VM's owner opened the VM's console.
    pub owner_open: bool,
    /// Characters the VM wrote since its last complete line.
    pub line: Vec<u8>,
}

/// Everything the RM knows about one VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmRecord {
    /// Its VMID.
    pub vmid: VmId,
    /// Its name (console prefix, logs).
    pub name: String,
    /// The VM that created it ([`VMID_RM`] for VMs the RM started itself).
    pub owner: VmId,
    /// RM state.
    pub status: VmStatus,
    /// What the VM reported of its OS (VM_SET_STATUS).
    pub os_status: OsStatus,
    /// What the VM reported of its application (VM_SET_STATUS).
    pub app_status: u16,
    /// Other VMs told of its status changes (besides the owner) and allowed to query it.
    pub peers: Vec<VmId>,
    /// Its hyp resources, per holder.
    pub resources: Vec<Resource>,
    /// Its console.
    pub console: ConsoleState,
}

impl VmRecord {
    /// A record with no OS/app status, peers or resources.
    pub fn new(vmid: VmId, name: &str, owner: VmId, status: VmStatus) -> VmRecord {
        VmRecord {
            vmid,
            name: name.to_string(),
            owner,
            status,
            os_status: OsStatus::None,
            app_status: 0,
            peers: Vec::new(),
            resources: Vec::new(),
            console: ConsoleState::default(),
        }
    }

    /// The VM_GET_STATE word's fields.
    pub fn state(&self) -> VmStateReply {
        VmStateReply {
            vm_status: self.status,
            os_status: self.os_status,
            app_status: self.app_status,
        }
    }

    /// Whether `caller` may query this VM (the public RM's `is_vm_query_allowed`): the VM
    /// itself, its owner, its peers.
    pub fn may_query(&self, caller: VmId) -> bool {
        caller == self.vmid || caller == self.owner || self.peers.contains(&caller)
    }

    /// The resources reported to `holder`.
    pub fn resources_for(&self, holder: VmId) -> impl Iterator<Item = HypResource> + '_ {
        self.resources
            .iter()
            .filter(move |r| r.holder == holder)
            .map(|r| r.entry)
    }
}

/// All VMs the RM knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmTable {
    vms: Vec<VmRecord>,
}

impl Default for VmTable {
    fn default() -> Self {
        Self::new()
    }
}

impl VmTable {
    /// A table holding the RM itself (running, its own owner).
    pub fn new() -> VmTable {
        VmTable {
            vms: alloc::vec![VmRecord::new(VMID_RM, RM_NAME, VMID_RM, VmStatus::Running)],
        }
    }

    /// The record of `vmid`.
    pub fn get(&self, vmid: VmId) -> Option<&VmRecord> {
        self.vms.iter().find(|v| v.vmid == vmid)
    }

    /// The record of `vmid`, mutably.
    pub fn get_mut(&mut self, vmid: VmId) -> Option<&mut VmRecord> {
        self.vms.iter_mut().find(|v| v.vmid == vmid)
    }

    /// Whether `vmid` is known.
    pub fn contains(&self, vmid: VmId) -> bool {
        self.get(vmid).is_some()
    }

    /// Every record, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &VmRecord> {
        self.vms.iter()
    }

    /// Number of records (the RM included).
    pub fn len(&self) -> usize {
        self.vms.len()
    }

    /// Always false: the RM is in its own table.
    pub fn is_empty(&self) -> bool {
        self.vms.is_empty()
    }

    /// Add `record`; `IN_USE` if its VMID is taken, `VMID_INVALID` for VMID 0 (the
    /// hypervisor) or the "any"/"peer default" values.
    pub fn insert(&mut self, record: VmRecord) -> Result<(), RmError> {
        if record.vmid.0 == 0 || record.vmid.0 >= 0xFFFE {
            return Err(RmError::VmidInvalid);
        }
        if self.contains(record.vmid) {
            return Err(RmError::InUse);
        }
        self.vms.push(record);
        Ok(())
    }

    /// Remove and return the record of `vmid` (the RM's own cannot be removed).
    pub fn remove(&mut self, vmid: VmId) -> Option<VmRecord> {
        if vmid == VMID_RM {
            return None;
        }
        let i = self.vms.iter().position(|v| v.vmid == vmid)?;
        Some(self.vms.remove(i))
    }

    /// The lowest free dynamic VMID; `NORESOURCE` when all 64 are taken.
    pub fn free_dynamic(&self) -> Result<VmId, RmError> {
        (VMID_DYNAMIC_FIRST.0..=VMID_DYNAMIC_LAST.0)
            .map(VmId)
            .find(|&v| !self.contains(v))
            .ok_or(RmError::NoResource)
    }

    /// Create a VM for VM_ALLOCATE: `requested` 0 picks a dynamic VMID, anything else must be
    /// a free fixed VMID of the platform (there are none yet: `NORESOURCE`). The VM starts in
    /// [`VmStatus::Load`], named `vm<hex vmid>`.
    pub fn allocate(&mut self, owner: VmId, requested: VmId) -> Result<VmId, RmError> {
        if requested.0 != 0 {
            return Err(RmError::NoResource);
        }
        let vmid = self.free_dynamic()?;
        let name = alloc::format!("vm{:x}", vmid.0);
        self.insert(VmRecord::new(vmid, &name, owner, VmStatus::Load))?;
        Ok(vmid)
    }

    /// Move `vmid` to `to` if the state machine allows it (`VM_STATE` otherwise,
    /// `VMID_INVALID` if unknown); returns the previous status.
    pub fn set_status(&mut self, vmid: VmId, to: VmStatus) -> Result<VmStatus, RmError> {
        let vm = self.get_mut(vmid).ok_or(RmError::VmidInvalid)?;
        if !vm.status.can_become(to) {
            return Err(RmError::VmState);
        }
        let old = vm.status;
        vm.status = to;
        Ok(old)
    }

    /// Who hears of `vmid`'s status changes (VM_STATUS): its owner (unless the RM) and its
    /// peers, each once, if they are running.
    pub fn status_listeners(&self, vmid: VmId) -> Vec<VmId> {
        let Some(vm) = self.get(vmid) else {
            return Vec::new();
        };
        let mut out: Vec<VmId> = Vec::new();
        for v in core::iter::once(vm.owner).chain(vm.peers.iter().copied()) {
            if v == VMID_RM || v == vmid || out.contains(&v) {
                continue;
            }
            if self.get(v).is_some_and(|p| p.status == VmStatus::Running) {
                out.push(v);
            }
        }
        out
    }

    /// Record that `owner` runs vCPU `index` of `vm` with `vcpu_run` (the boot bundle's
    /// `scheduled-by`): `owner` becomes `vm`'s owner (it may query it and hears of its status
    /// changes), and VM_GET_HYP_RESOURCES of `vm` reports the vCPU to `owner` as a
    /// VIRTUAL_CPU entry (label = `index`; `cap` in the owner's cspace, `virq` its
    /// VCPU_RUN_WAKEUP vIRQ in the owner's VIC). `VMID_INVALID` if either VM is unknown, the
    /// RM, or the same; `IN_USE` if `vm` already has another owner.
    pub fn grant_proxy_vcpu(
        &mut self,
        vm: VmId,
        owner: VmId,
        index: u32,
        cap: u64,
        virq: u32,
    ) -> Result<(), RmError> {
        if vm == owner || vm == VMID_RM || owner == VMID_RM || !self.contains(owner) {
            return Err(RmError::VmidInvalid);
        }
        let record = self.get_mut(vm).ok_or(RmError::VmidInvalid)?;
        if record.owner != VMID_RM && record.owner != owner {
            return Err(RmError::InUse);
        }
        record.owner = owner;
        record.resources.push(Resource {
            holder: owner,
            entry: HypResource {
                resource_type: ResourceType::VirtualCpu,
                partner_vmid: vm,
                handle: 0,
                label: index,
                cap_id: cap,
                virq_handle: 0,
                virq,
                base: 0,
                size: 0,
            },
        });
        Ok(())
    }

    /// Whether `vmid` is the primary VM (the only one allowed to VM_ALLOCATE).
    pub fn is_primary(vmid: VmId) -> bool {
        vmid == VMID_HLOS
    }
}

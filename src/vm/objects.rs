//! A VM's hypervisor objects: its partition, its cspace, its VIC (the virtual GIC seen as an
//! object), its address space, its vCPU objects, and how a bound interrupt source reaches the
//! VM's vGIC.
//!
//! The objects are made before the VM itself (the root VM's boot information lists their
//! CapIDs; a VM made by hypercalls is assembled from objects that exist already), so the VIC's
//! controller is attached to the VM once the VM exists; a source asserted before that has
//! nowhere to go and is dropped (nothing runs yet to assert one).

use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::LazyLock;
use spin::Once;
use wurley_abi::Error;

use crate::object::addrspace::AddrSpaceObject;
use crate::object::cspace::CSpace;
use crate::object::handle::{CSpaceObject, Header, PartitionObject};
use crate::object::partition::Partition;
use crate::object::vcpu::VcpuObject;
use crate::object::vic::{Vic, VirqController};
use crate::object::{Object, entropy};

use super::layout::{SPIS, UART_SPI};
use super::machine::{Vm, kick};

/// Object memory the hypervisor allows all VMs' objects together (the root VM's and every
/// object the resource manager and the guests create).
const ROOT_OBJECT_MEMORY: usize = 16 << 20;

/// Capacity of each VM's cspace.
pub const VM_CSPACE_CAPACITY: usize = 256;

/// First INTID of a shared vIRQ.
const SPI_BASE: u32 = 32;

static ROOT: LazyLock<Arc<Partition>> = LazyLock::new(|| Partition::new_root(ROOT_OBJECT_MEMORY));

/// The root partition: owns the objects the hypervisor makes (links) and every VM's partition.
pub fn root_partition() -> &'static Arc<Partition> {
    &ROOT
}

/// The VIC controller of one VM.
pub struct VmVirqs {
    vm: Once<&'static Vm>,
}

impl VmVirqs {
    /// A controller not yet attached to its VM.
    pub fn new() -> Arc<Self> {
        Arc::new(Self { vm: Once::new() })
    }

    /// Attach the VM (once it exists).
    pub fn attach(&self, vm: &'static Vm) {
        self.vm.call_once(|| vm);
    }
}

impl VirqController for VmVirqs {
    fn bindable(&self, virq: u32) -> bool {
        let spi = (SPI_BASE..SPI_BASE + SPIS).contains(&virq) && virq != SPI_BASE + UART_SPI;
        // A passed-through device's SPI is the device's.
        let device = self
            .vm
            .get()
            .is_some_and(|vm| vm.vgic.lock().irq(virq, 0).is_some_and(|i| i.hw.is_some()));
        spi && !device
    }

    fn assert(&self, virq: u32, level: bool) {
        let Some(vm) = self.vm.get() else { return };
        let target = vm.vgic.lock().assert_source(virq, level);
        if let Some(v) = target.and_then(|t| vm.vcpus.get(t)) {
            kick(v);
        }
    }

    fn deassert(&self, virq: u32) {
        if let Some(vm) = self.vm.get() {
            vm.vgic.lock().deassert_source(virq);
        }
    }

    fn bind_hw(&self, virq: u32, pintid: u32, level: bool) -> Result<(), Error> {
        let vm = self.vm.get().ok_or(Error::ObjectState)?;
        super::passthrough::route(vm, virq, pintid, level)
    }

    fn unbind_hw(&self, virq: u32, pintid: u32) {
        if let Some(vm) = self.vm.get() {
            super::passthrough::unroute(vm, virq, pintid);
        }
    }
}

/// A VM's objects.
pub struct VmObjects {
    /// The VM's partition (objects it creates are charged here).
    pub partition: Arc<PartitionObject>,
    /// The VM's cspace: every cap the VM holds.
    pub cspace: Arc<CSpace<Object>>,
    /// The cspace as an object (for a cap to it).
    pub cspace_object: Arc<CSpaceObject>,
    /// The VM's VIC.
    pub vic: Arc<Vic>,
    /// The VIC's controller, to attach once the VM exists.
    pub virqs: Arc<VmVirqs>,
    /// The root VM's address space, made before the VM ([`VmObjects::space`]); not kept here
    /// for a VM made by hypercalls.
    pub addrspace: Once<Arc<AddrSpaceObject>>,
    /// One object per vCPU: the root VM's made with [`VmObjects::vcpu_objects`] (for the cap
    /// to its own vCPU), a VM made by hypercalls' the threads it was assembled from.
    pub vcpus: Once<Vec<Arc<VcpuObject>>>,
}

impl VmObjects {
    /// Fresh objects for a VM whose partition may hold `quota` bytes of objects and whose
    /// cspace `caps` caps (the resource manager holds many).
    pub fn with_capacity(quota: usize, caps: usize) -> Result<Self, Error> {
        let partition = crate::hypercall::objects::vm_partition(root_partition(), quota);
        let cspace = CSpace::new(caps, entropy::seed())?;
        crate::object::registry().register(&cspace);
        let cspace_object = CSpaceObject::new(Header::new_active(), cspace.clone(), None, None);
        let virqs = VmVirqs::new();
        let vic = Vic::new(virqs.clone());
        Ok(Self {
            partition,
            cspace,
            cspace_object,
            vic,
            virqs,
            addrspace: Once::new(),
            vcpus: Once::new(),
        })
    }

    /// The VM's address space, made at the first call (active, with VMID `vmid`).
    pub fn space(&self, vmid: u16) -> Result<&Arc<AddrSpaceObject>, Error> {
        if let Some(s) = self.addrspace.get() {
            return Ok(s);
        }
        let s = AddrSpaceObject::new_for_vm(&crate::arch::aarch64::stage2::MEM, vmid)?;
        Ok(self.addrspace.call_once(|| s))
    }

    /// The objects of a VM made by hypercalls: its cspace (the one its vCPUs were attached
    /// to), its VIC, its vCPU objects. Its partition is an empty child of the root (objects
    /// the VM makes are charged to the partitions its caps name).
    pub fn assembled(
        cspace: Arc<CSpaceObject>,
        vic: Arc<Vic>,
        threads: Vec<Arc<VcpuObject>>,
    ) -> Self {
        let vcpus = Once::new();
        vcpus.call_once(|| threads);
        Self {
            partition: crate::hypercall::objects::vm_partition(root_partition(), 0),
            cspace: cspace.space.clone(),
            cspace_object: cspace,
            vic,
            virqs: VmVirqs::new(),
            // Not kept here: the VM lets go of its address space when retired (`Vm::space`).
            addrspace: Once::new(),
            vcpus,
        }
    }

    /// The VM's `count` vCPU objects, made at the first call.
    pub fn vcpu_objects(&self, count: usize) -> &[Arc<VcpuObject>] {
        self.vcpus
            .call_once(|| (0..count).map(|_| VcpuObject::new()).collect())
    }

    /// Put a master-derived cap to `object` with `rights` in the VM's cspace.
    pub fn grant(&self, object: Object, rights: u32) -> Result<u64, Error> {
        self.cspace.insert_master(object, rights).map(|c| c.raw())
    }
}

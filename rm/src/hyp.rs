//! The hypervisor-object half of the RM's requests.
//!
//! Every VM-management handler in [`crate::server`] first parses the request and does the
//! checks that need only the RM's own records (known VMID, caller owns the VM, the state
//! machine allows the transition, arguments in range), and only then calls the [`Hyp`]
//! operation that would create, start, stop or destroy hypervisor objects (partitions,
//! cspaces, address spaces, vCPUs, memory extents, IRQ bindings). The RM's records change
//! only when that operation succeeds.
//!
//! The RM runs with [`crate::gunyah::Gunyah`], which does these operations with Gunyah's object
//! hypercalls. [`NoHyp`] answers [`RmError::Unimplemented`] for every operation (host tests of
//! the checks use it; so would an RM on a hypervisor without the object calls).

use alloc::vec::Vec;

use wurley_abi::VmId;
use wurley_abi::rm::RmError;
use wurley_abi::rm::irq::{IrqAcceptRequest, IrqLendRequest, IrqNotifyRequest};
use wurley_abi::rm::memparcel::{
    MemAcceptRequest, MemAppendRequest, MemCreateRequest, MemNotifyRequest, MemReleaseRequest,
    SglEntry, TransType,
};
use wurley_abi::rm::vm::{AddressRangeId, BootRegSet, VmConfigImageRequest};

use crate::vms::Resource;

/// A notification an operation asks the server to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The VM it goes to.
    pub target: VmId,
    /// Its message ID (`ids::NOTIFY_*`).
    pub id: u32,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// Something the RM's binary must do after an operation: connect to or disconnect from the
/// RM link of a VM it created, or watch its HALT vIRQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// VM `vmid` has an RM link: the RM sends on `tx`, receives on `rx`; `tx_virq` is `tx`'s
    /// "not full" and `rx_virq` `rx`'s "not empty" vIRQ in the RM's VIC.
    Link {
        /// The VM.
        vmid: VmId,
        /// The queue the RM sends on.
        tx: wurley_abi::CapId,
        /// The queue the RM receives from.
        rx: wurley_abi::CapId,
        /// `tx`'s vIRQ in the RM.
        tx_virq: u32,
        /// `rx`'s vIRQ in the RM.
        rx_virq: u32,
    },
    /// VM `vmid`'s RM link is gone (its queues were destroyed); its vIRQs are free again.
    Unlink {
        /// The VM.
        vmid: VmId,
        /// The vIRQs the link used.
        virqs: [u32; 2],
    },
    /// VM `vmid` ends when vCPU `vcpu`'s HALT vIRQ `virq` fires (then `vcpu_run_check`).
    Watch {
        /// The VM.
        vmid: VmId,
        /// Its vCPU 0.
        vcpu: wurley_abi::CapId,
        /// The HALT vIRQ in the RM's VIC.
        virq: u32,
    },
    /// VM `vmid` is no longer watched.
    Unwatch {
        /// The VM.
        vmid: VmId,
        /// The vIRQ the watch used.
        virq: u32,
    },
}

/// The hypervisor operations behind the RM's requests. Each returns the RM error to answer
/// with when it fails.
pub trait Hyp {
    /// VM_CONFIG_IMAGE: look up memparcel `req.mem_handle` (owned by `owner`, lent to the VM)
    /// and record where the image and DTB are in it.
    fn vm_config_image(
        &mut self,
        owner: VmId,
        vmid: VmId,
        req: &VmConfigImageRequest,
    ) -> Result<(), RmError>;

    /// VM_SET_DEMAND_PAGING by `owner`: the ranges of the VM's memory (IPAs) its owner will
    /// provide on demand; they replace any given before.
    fn vm_set_demand_paging(
        &mut self,
        owner: VmId,
        vmid: VmId,
        ranges: &[SglEntry],
    ) -> Result<(), RmError>;

    /// VM_SET_ADDRESS_LAYOUT: where a range of the VM's memory goes in its IPA space.
    fn vm_set_address_layout(
        &mut self,
        vmid: VmId,
        range: AddressRangeId,
        base: u64,
        size: u64,
    ) -> Result<(), RmError>;

    /// Whether VM_INIT of `vmid` by `owner` can start: what it needs was configured (the image
    /// parcel, still lent to the VM). An error here is answered with no state change; an
    /// error of [`Hyp::vm_create`] makes the VM INIT_FAILED.
    fn vm_init_check(&self, vmid: VmId, owner: VmId) -> Result<(), RmError> {
        let _ = (vmid, owner);
        Ok(())
    }

    /// VM_INIT: create the VM's partition objects (cspace, address space, VIC, vCPUs, its RM
    /// message-queue pair), map its image parcel, write its device tree. Returns the hyp
    /// resources to report to the VM and its owner (VM_GET_HYP_RESOURCES).
    fn vm_create(&mut self, vmid: VmId, owner: VmId) -> Result<Vec<Resource>, RmError>;

    /// VM_SET_BOOT_CONTEXT: set a boot register of the VM's primary vCPU (`vcpu_register_write`).
    fn vm_set_boot_context(
        &mut self,
        vmid: VmId,
        reg_set: BootRegSet,
        index: u8,
        value: u64,
    ) -> Result<(), RmError>;

    /// VM_START: power on the VM's primary vCPU (`vcpu_poweron`).
    fn vm_power_on(&mut self, vmid: VmId) -> Result<(), RmError>;

    /// VM_STOP (force) and VM_EXIT: stop every vCPU of the VM (`vcpu_kill`).
    fn vm_kill(&mut self, vmid: VmId) -> Result<(), RmError>;

    /// VM_RESET: destroy the VM's objects and give its memory back to the lenders.
    fn vm_destroy(&mut self, vmid: VmId) -> Result<(), RmError>;

    /// MEM_LEND / MEM_SHARE / MEM_DONATE: create a memparcel of `owner`'s memory; returns its
    /// handle.
    fn mem_create(
        &mut self,
        owner: VmId,
        trans: TransType,
        req: &MemCreateRequest<'_>,
    ) -> Result<u32, RmError>;

    /// MEM_APPEND: more SGL entries for a memparcel created with the APPEND flag.
    fn mem_append(&mut self, caller: VmId, req: &MemAppendRequest<'_>) -> Result<(), RmError>;

    /// MEM_ACCEPT: map a memparcel into the caller; returns the encoded reply payload.
    fn mem_accept(&mut self, caller: VmId, req: &MemAcceptRequest<'_>) -> Result<Vec<u8>, RmError>;

    /// MEM_RELEASE (`reclaim` false, by a borrower) / MEM_RECLAIM (by the owner).
    fn mem_release(
        &mut self,
        caller: VmId,
        req: &MemReleaseRequest,
        reclaim: bool,
    ) -> Result<(), RmError>;

    /// MEM_NOTIFY: tell the VMs of a memparcel about it; returns the notifications to send.
    fn mem_notify(
        &mut self,
        caller: VmId,
        req: &MemNotifyRequest<'_>,
    ) -> Result<Vec<Notice>, RmError>;

    /// VM_IRQ_LEND: let `req.borrower` take the caller's vIRQ; returns the IRQ handle.
    fn irq_lend(&mut self, owner: VmId, req: &IrqLendRequest) -> Result<u32, RmError>;

    /// VM_IRQ_ACCEPT: bind a lent IRQ in the caller's VIC; returns its vIRQ number.
    fn irq_accept(&mut self, caller: VmId, req: &IrqAcceptRequest) -> Result<u32, RmError>;

    /// VM_IRQ_RELEASE (`reclaim` false, by the borrower) / VM_IRQ_RECLAIM (by the owner).
    fn irq_release(&mut self, caller: VmId, handle: u32, reclaim: bool) -> Result<(), RmError>;

    /// VM_IRQ_NOTIFY: tell the VMs of a lent IRQ about it; returns the notifications to send.
    fn irq_notify(
        &mut self,
        caller: VmId,
        req: &IrqNotifyRequest<'_>,
    ) -> Result<Vec<Notice>, RmError>;

    /// VM_DEALLOCATE: forget what was recorded for `vmid` (its image configuration).
    fn vm_deallocate(&mut self, vmid: VmId) {
        let _ = vmid;
    }

    /// What the binary must do after the operations so far (links, watches); drained.
    fn take_events(&mut self) -> Vec<Event> {
        Vec::new()
    }
}

/// The hypervisor as it is today for the RM: no object calls, so every operation is
/// [`RmError::Unimplemented`]. (Documented stub, to be replaced operation by operation.)
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHyp;

impl Hyp for NoHyp {
    fn vm_config_image(
        &mut self,
        _: VmId,
        _: VmId,
        _: &VmConfigImageRequest,
    ) -> Result<(), RmError> {
        Err(RmError::Unimplemented)
    }

    fn vm_set_demand_paging(&mut self, _: VmId, _: VmId, _: &[SglEntry]) -> Result<(), RmError> {
        Err(RmError::Unimplemented)
    }

    fn vm_set_address_layout(
        &mut self,
        _: VmId,
        _: AddressRangeId,
        _: u64,
        _: u64,
    ) -> Result<(), RmError> {
        Err(RmError::Unimplemented)
    }

    fn vm_create(&mut self, _: VmId, _: VmId) -> Result<Vec<Resource>, RmError> {
        Err(RmError::Unimplemented)
    }

    fn vm_set_boot_context(
        &mut self,
        _: VmId,
        _: BootRegSet,
        _: u8,
        _: u64,
    ) -> Result<(), RmError> {
        Err(RmError::Unimplemented)
    }

    fn vm_power_on(&mut self, _: VmId) -> Result<(), RmError> {
        Err(RmError::Unimplemented)
    }

    fn vm_kill(&mut self, _: VmId) -> Result<(), RmError> {
        Err(RmError::Unimplemented)
    }

    fn vm_destroy(&mut self, _: VmId) -> Result<(), RmError> {
        Err(RmError::Unimplemented)
    }

    fn mem_create(
        &mut self,
        _: VmId,
        _: TransType,
        _: &MemCreateRequest<'_>,
    ) -> Result<u32, RmError> {
        Err(RmError::Unimplemented)
    }

    fn mem_append(&mut self, _: VmId, _: &MemAppendRequest<'_>) -> Result<(), RmError> {
        Err(RmError::Unimplemented)
    }

    fn mem_accept(&mut self, _: VmId, _: &MemAcceptRequest<'_>) -> Result<Vec<u8>, RmError> {
        Err(RmError::Unimplemented)
    }

    fn mem_release(&mut self, _: VmId, _: &MemReleaseRequest, _: bool) -> Result<(), RmError> {
        Err(RmError::Unimplemented)
    }

    fn mem_notify(&mut self, _: VmId, _: &MemNotifyRequest<'_>) -> Result<Vec<Notice>, RmError> {
        Err(RmError::Unimplemented)
    }

    fn irq_lend(&mut self, _: VmId, _: &IrqLendRequest) -> Result<u32, RmError> {
        Err(RmError::Unimplemented)
    }

    fn irq_accept(&mut self, _: VmId, _: &IrqAcceptRequest) -> Result<u32, RmError> {
        Err(RmError::Unimplemented)
    }

    fn irq_release(&mut self, _: VmId, _: u32, _: bool) -> Result<(), RmError> {
        Err(RmError::Unimplemented)
    }

    fn irq_notify(&mut self, _: VmId, _: &IrqNotifyRequest<'_>) -> Result<Vec<Notice>, RmError> {
        Err(RmError::Unimplemented)
    }
}

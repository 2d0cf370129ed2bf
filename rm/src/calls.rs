//! The hypervisor calls the RM makes, as a trait: the EL1 binary implements it with
//! `wurley_rt::hyp` (one hypercall each), host tests with a fake that records every call.
//! [`crate::gunyah::Gunyah`] does all its work through it.
//!
//! Arguments and semantics are Gunyah's (reference §2), as Wurley's kernel implements them
//! (docs/abi.md): `create` is `partition_create_*` (X0 partition, X1 the cspace the master cap
//! goes into), everything else takes caps in the RM's cspace unless it names another cspace.

use wurley_abi::{CapId, Error};

/// The kind of object [`Hypercalls::create`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `partition_create_cspace`.
    Cspace,
    /// `partition_create_addrspace`.
    Addrspace,
    /// `partition_create_memextent`.
    Memextent,
    /// `partition_create_thread`.
    Thread,
    /// `partition_create_msgqueue`.
    Msgqueue,
    /// `partition_create_vic`.
    Vic,
    /// `partition_create_vpm_group`.
    VpmGroup,
    /// `partition_create_partition`.
    Partition,
    /// `partition_create_doorbell`.
    Doorbell,
}

/// `memextent_modify` operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modify {
    /// 0: unmap the extent everywhere.
    UnmapAll = 0,
    /// 1: zero a range.
    Zero = 1,
    /// 2: clean a range from the caches (to the point of coherency).
    Clean = 2,
}

/// `vcpu_bind_virq` sources.
pub const VCPU_VIRQ_HALT: u64 = 0;
/// `vcpu_bind_virq` source: a proxy-scheduled vCPU became runnable.
pub const VCPU_VIRQ_RUN_WAKEUP: u64 = 1;

/// The calls. Each returns the hypervisor's error as is.
pub trait Hypercalls {
    /// `partition_create_*`: a new object in INIT, its master cap in `cspace`.
    fn create(&mut self, kind: Kind, partition: CapId, cspace: CapId) -> Result<CapId, Error>;
    /// `object_activate`.
    fn activate(&mut self, cap: CapId) -> Result<(), Error>;
    /// The vendor call WURLEY_PARTITION_CONFIGURE: a partition in INIT may have at most
    /// `quota` bytes of objects charged to it.
    fn partition_configure(&mut self, partition: CapId, quota: u64) -> Result<(), Error>;
    /// `cspace_configure`.
    fn cspace_configure(&mut self, cspace: CapId, max_caps: u32) -> Result<(), Error>;
    /// `cspace_copy_cap_from`: a copy of `cap` (in `src`) in `dest`, rights masked.
    fn cspace_copy(
        &mut self,
        src: CapId,
        cap: CapId,
        dest: CapId,
        rights: u32,
    ) -> Result<CapId, Error>;
    /// `cspace_delete_cap_from`.
    fn cspace_delete(&mut self, cspace: CapId, cap: CapId) -> Result<(), Error>;
    /// `cspace_attach_thread`.
    fn cspace_attach_thread(&mut self, cspace: CapId, thread: CapId) -> Result<(), Error>;
    /// `addrspace_configure`.
    fn addrspace_configure(&mut self, addrspace: CapId, vmid: u16) -> Result<(), Error>;
    /// `addrspace_attach_thread`.
    fn addrspace_attach_thread(&mut self, addrspace: CapId, thread: CapId) -> Result<(), Error>;
    /// `addrspace_map` of the whole extent (`size` bytes) at `vbase`.
    fn addrspace_map(
        &mut self,
        addrspace: CapId,
        extent: CapId,
        vbase: u64,
        map_attrs: u32,
        size: u64,
    ) -> Result<(), Error>;
    /// `addrspace_unmap` of the extent's mapping at `vbase`.
    fn addrspace_unmap(
        &mut self,
        addrspace: CapId,
        extent: CapId,
        vbase: u64,
        size: u64,
    ) -> Result<(), Error>;
    /// `memextent_configure_derive`.
    fn memextent_derive(
        &mut self,
        extent: CapId,
        parent: CapId,
        offset: u64,
        size: u64,
        attrs: u32,
    ) -> Result<(), Error>;
    /// `memextent_modify` over `[0, size)`.
    fn memextent_modify(&mut self, extent: CapId, op: Modify, size: u64) -> Result<(), Error>;
    /// `vic_configure` (no MSIs).
    fn vic_configure(&mut self, vic: CapId, max_vcpus: u32, max_virqs: u32) -> Result<(), Error>;
    /// `vic_attach_vcpu`.
    fn vic_attach_vcpu(&mut self, vic: CapId, thread: CapId, index: u32) -> Result<(), Error>;
    /// `vcpu_configure`.
    fn vcpu_configure(&mut self, thread: CapId, flags: u64) -> Result<(), Error>;
    /// `vcpu_set_affinity`.
    fn vcpu_set_affinity(&mut self, thread: CapId, cpu: u64) -> Result<(), Error>;
    /// `vcpu_poweron`.
    fn vcpu_poweron(
        &mut self,
        thread: CapId,
        entry: u64,
        context: u64,
        flags: u64,
    ) -> Result<(), Error>;
    /// `vcpu_kill`.
    fn vcpu_kill(&mut self, thread: CapId) -> Result<(), Error>;
    /// `vcpu_register_write`.
    fn vcpu_register_write(
        &mut self,
        thread: CapId,
        set: u64,
        index: u64,
        value: u64,
    ) -> Result<(), Error>;
    /// `vcpu_bind_virq`.
    fn vcpu_bind_virq(
        &mut self,
        thread: CapId,
        vic: CapId,
        virq: u32,
        kind: u64,
    ) -> Result<(), Error>;
    /// `vcpu_unbind_virq`.
    fn vcpu_unbind_virq(&mut self, thread: CapId, kind: u64) -> Result<(), Error>;
    /// `msgqueue_configure`.
    fn msgqueue_configure(&mut self, mq: CapId, depth: u32, msg_size: u32) -> Result<(), Error>;
    /// `msgqueue_bind_send_virq` (the sender's "not full").
    fn msgqueue_bind_send(&mut self, mq: CapId, vic: CapId, virq: u32) -> Result<(), Error>;
    /// `msgqueue_bind_receive_virq` (the receiver's "not empty").
    fn msgqueue_bind_receive(&mut self, mq: CapId, vic: CapId, virq: u32) -> Result<(), Error>;
    /// `hwirq_bind_virq`.
    fn hwirq_bind(&mut self, hwirq: CapId, vic: CapId, virq: u32) -> Result<(), Error>;
    /// `hwirq_unbind_virq`.
    fn hwirq_unbind(&mut self, hwirq: CapId) -> Result<(), Error>;
    /// `memextent_configure`: `[phys, phys + size)` with `attrs`.
    fn memextent_configure(
        &mut self,
        extent: CapId,
        phys: u64,
        size: u64,
        attrs: u32,
    ) -> Result<(), Error>;
    /// `memextent_modify` over `[offset, offset + size)`.
    fn memextent_modify_range(
        &mut self,
        extent: CapId,
        op: Modify,
        offset: u64,
        size: u64,
    ) -> Result<(), Error>;
    /// `vcpu_set_priority`.
    fn vcpu_set_priority(&mut self, thread: CapId, priority: u64) -> Result<(), Error>;
    /// `vcpu_set_timeslice` (nanoseconds).
    fn vcpu_set_timeslice(&mut self, thread: CapId, ns: u64) -> Result<(), Error>;
    /// `vpm_group_attach_vcpu`.
    fn vpm_group_attach(&mut self, group: CapId, thread: CapId, index: u32) -> Result<(), Error>;
    /// `doorbell_bind_virq`.
    fn doorbell_bind(&mut self, doorbell: CapId, vic: CapId, virq: u32) -> Result<(), Error>;
    /// The vendor call WURLEY_VM_SET_NAME: names the VM built on `addrspace`; `flags` bit 0:
    /// it takes console input first.
    fn vm_set_name(&mut self, addrspace: CapId, name: &str, flags: u64) -> Result<(), Error>;
    /// Read from the RM's mapping window (boot info v2) at `offset`; false if it cannot.
    fn window_read(&mut self, offset: u64, buf: &mut [u8]) -> bool;
    /// Write to the RM's mapping window at `offset`; false if it cannot.
    fn window_write(&mut self, offset: u64, data: &[u8]) -> bool;
}

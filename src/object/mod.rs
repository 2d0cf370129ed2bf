//! Hypervisor objects and the capabilities that name them.
//!
//! Everything a VM may touch through a hypercall is an object reached through a capability in
//! the VM's own capability space (cspace). This module owns the object model:
//!
//! - [`partition`]: partitions, which own objects and are charged for their memory;
//! - [`cspace`]: capability spaces: opaque per-cspace CapIDs, rights, copy, delete, revoke;
//! - [`msgqueue`]: the message-queue state machine (pure);
//! - [`doorbell`]: the doorbell state machine (pure);
//! - [`vic`]: virtual interrupt controllers as objects, and vIRQ bindings;
//! - [`vcpu`]: threads (vCPUs) as objects: configuration, HALT and wakeup vIRQ sources;
//! - [`addrspace`]: a VM's address space as an object: its stage 2, mappings, VMMIO ranges;
//! - [`memextent`]: memory extents, their mappings and donation, over the memory database;
//! - [`vpm`]: virtual power-management groups;
//! - [`hwirq`]: physical interrupts a VM may be given;
//! - [`handle`]: the [`Object`] handle a capability holds, and the lifecycle [`Header`];
//! - [`ipc`]: message-queue and doorbell objects (state machine + lock + bindings);
//! - [`entropy`]: seeds for CapID randomisation.
//!
//! The pure state machines report what their interrupt lines must do as [`VirqLine`] values; the
//! object wrappers that hold them apply those to the bound virtual interrupt.

pub mod addrspace;
pub mod cspace;
pub mod doorbell;
pub mod entropy;
pub mod handle;
pub mod hwirq;
pub mod ipc;
pub mod memextent;
pub mod msgqueue;
pub mod partition;
pub mod vcpu;
pub mod vic;
pub mod vpm;

pub use handle::{Header, Object};

/// The type of an object, as a capability records it. The numbering is internal (Gunyah does
/// not expose object type numbers in its ABI).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectType {
    /// A partition: owns objects and the memory they are charged for.
    Partition,
    /// A capability space.
    CSpace,
    /// A message queue.
    MsgQueue,
    /// A doorbell.
    Doorbell,
    /// A virtual interrupt controller (a VM's virtual GIC).
    Vic,
    /// A thread: a vCPU.
    Thread,
    /// An address space (a VM's stage 2).
    AddrSpace,
    /// A memory extent.
    MemExtent,
    /// A virtual power-management group.
    VpmGroup,
    /// A hardware IRQ.
    Hwirq,
}

/// Lifecycle of an object: created in `Init` (configurable), `Active` after `object_activate`.
/// Destruction is not a state: an object is freed when the last capability or binding holding
/// it goes away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectState {
    /// Created, configurable, not yet usable.
    Init,
    /// Activated: usable, no longer configurable.
    Active,
}

/// What can be stored in a capability: an object handle that knows its type.
pub trait CapObject: Clone {
    /// The object's type.
    fn object_type(&self) -> ObjectType;
}

/// What a state-machine operation asks of the virtual interrupt bound to one of its sources.
///
/// Gunyah's sources are level sources with a pending re-check: an assertion makes the vIRQ
/// pending, and while the source says "still pending" the line stays asserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirqLine {
    /// Nothing changes.
    Unchanged,
    /// Assert: make the vIRQ pending. `level` is the source's re-check result right after the
    /// operation (whether the line stays high once the guest has taken the interrupt).
    Assert {
        /// The source's pending re-check after the operation.
        level: bool,
    },
    /// The source is no longer pending: drop the line (a level vIRQ not yet taken by the guest
    /// stops being pending).
    Deassert,
}

static REGISTRY: cspace::Registry<Object> = cspace::Registry::new();

/// Every live cspace, for revoking derived caps wherever they were copied.
pub fn registry() -> &'static cspace::Registry<Object> {
    &REGISTRY
}

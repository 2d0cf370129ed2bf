//! The handle a capability holds ([`Object`]), the lifecycle every object shares
//! ([`Header`]), and the partition and cspace objects.
//!
//! Objects are reference counted (`Arc`): an object lives while a capability or a binding holds
//! it, and its memory charge goes back to its partition when the last holder lets go.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use spin::Mutex;
use wurley_abi::Error;

use super::addrspace::AddrSpaceObject;
use super::cspace::CSpace;
use super::hwirq::HwirqObject;
use super::ipc::{DoorbellObject, MsgQueueObject};
use super::memextent::MemExtent;
use super::partition::{Charge, Partition};
use super::vcpu::VcpuObject;
use super::vic::Vic;
use super::vpm::VpmGroup;
use super::{CapObject, ObjectState, ObjectType};

/// The lifecycle state every object carries.
#[derive(Debug)]
pub struct Header {
    state: AtomicU8,
}

const INIT: u8 = 0;
const ACTIVE: u8 = 1;

impl Header {
    /// A new object, configurable.
    pub const fn new_init() -> Header {
        Header {
            state: AtomicU8::new(INIT),
        }
    }

    /// An object the hypervisor creates ready to use.
    pub const fn new_active() -> Header {
        Header {
            state: AtomicU8::new(ACTIVE),
        }
    }

    /// Current state.
    pub fn state(&self) -> ObjectState {
        if self.state.load(Ordering::Acquire) == ACTIVE {
            ObjectState::Active
        } else {
            ObjectState::Init
        }
    }

    /// `Ok` if the object is still configurable, else `ObjectState`.
    pub fn require_init(&self) -> Result<(), Error> {
        match self.state() {
            ObjectState::Init => Ok(()),
            ObjectState::Active => Err(Error::ObjectState),
        }
    }

    /// `Ok` if the object is active, else `ObjectState`.
    pub fn require_active(&self) -> Result<(), Error> {
        match self.state() {
            ObjectState::Active => Ok(()),
            ObjectState::Init => Err(Error::ObjectState),
        }
    }

    /// INIT → ACTIVE; `ObjectState` if the object was not in INIT.
    pub fn activate(&self) -> Result<(), Error> {
        self.state
            .compare_exchange(INIT, ACTIVE, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(|_| Error::ObjectState)
    }
}

/// A partition object.
pub struct PartitionObject {
    /// Lifecycle.
    pub header: Header,
    /// The accounting node.
    pub partition: Arc<Partition>,
    /// Held by configuration and activation, so a quota is never set on an active partition.
    config: Mutex<()>,
    _charge: Option<Charge>,
}

impl PartitionObject {
    /// Wrap `partition`; `charge` is what the object itself costs its parent (none for roots).
    pub fn new(header: Header, partition: Arc<Partition>, charge: Option<Charge>) -> Arc<Self> {
        Arc::new(Self {
            header,
            partition,
            config: Mutex::new(()),
            _charge: charge,
        })
    }

    /// `WURLEY_PARTITION_CONFIGURE` (INIT only): at most `quota` bytes of objects may be
    /// charged to the partition and its descendants at once.
    pub fn configure(&self, quota: u64) -> Result<(), Error> {
        let _config = self.config.lock();
        self.header.require_init()?;
        let quota = usize::try_from(quota).map_err(|_| Error::ArgumentInvalid)?;
        self.partition.set_limit(quota);
        Ok(())
    }

    /// `object_activate`.
    pub fn activate(&self) -> Result<(), Error> {
        let _config = self.config.lock();
        self.header.activate()
    }
}

/// A cspace object.
pub struct CSpaceObject {
    /// Lifecycle.
    pub header: Header,
    /// The capability table.
    pub space: Arc<CSpace<Object>>,
    partition: Option<Arc<Partition>>,
    table: Mutex<Option<Charge>>,
    configured: AtomicBool,
    charge: Option<Charge>,
}

impl CSpaceObject {
    /// Wrap `space`. A cspace created by a guest (`partition` given) must be configured before
    /// activation and its table is charged to the partition; one the hypervisor builds
    /// (`partition` none) comes configured.
    pub fn new(
        header: Header,
        space: Arc<CSpace<Object>>,
        partition: Option<Arc<Partition>>,
        charge: Option<Charge>,
    ) -> Arc<Self> {
        let configured = partition.is_none();
        Arc::new(Self {
            header,
            space,
            partition,
            table: Mutex::new(None),
            configured: AtomicBool::new(configured),
            charge,
        })
    }

    /// What the object and its table cost its partition (0 for one the hypervisor built).
    pub fn charged(&self) -> usize {
        self.charge.as_ref().map_or(0, Charge::bytes)
            + self.table.lock().as_ref().map_or(0, Charge::bytes)
    }

    /// `cspace_configure` (INIT only): the table's capacity, charged to the partition.
    pub fn configure(&self, max_caps: u64) -> Result<(), Error> {
        let mut table = self.table.lock();
        self.header.require_init()?;
        let capacity = usize::try_from(max_caps).map_err(|_| Error::ArgumentInvalid)?;
        if capacity == 0 || capacity > super::cspace::MAX_CAPACITY {
            return Err(Error::ArgumentInvalid);
        }
        let charge = match &self.partition {
            Some(p) => {
                // Give the old table's charge back first, so reconfiguring never needs both.
                *table = None;
                Some(p.charge(CSpace::<Object>::bytes_for(capacity))?)
            }
            None => None,
        };
        self.space.configure(max_caps)?;
        *table = charge;
        self.configured.store(true, Ordering::Release);
        Ok(())
    }

    /// `object_activate`: `ObjectConfig` until configured.
    pub fn activate(&self) -> Result<(), Error> {
        let _table = self.table.lock();
        self.header.require_init()?;
        if !self.configured.load(Ordering::Acquire) {
            return Err(Error::ObjectConfig);
        }
        self.header.activate()
    }
}

/// What a capability names.
#[derive(Clone)]
pub enum Object {
    /// A partition.
    Partition(Arc<PartitionObject>),
    /// A capability space.
    CSpace(Arc<CSpaceObject>),
    /// A message queue.
    MsgQueue(Arc<MsgQueueObject>),
    /// A doorbell.
    Doorbell(Arc<DoorbellObject>),
    /// A virtual interrupt controller.
    Vic(Arc<Vic>),
    /// A proxy-scheduled vCPU.
    Vcpu(Arc<VcpuObject>),
    /// A VM's address space.
    AddrSpace(Arc<AddrSpaceObject>),
    /// A memory extent.
    MemExtent(Arc<MemExtent>),
    /// A virtual power-management group.
    VpmGroup(Arc<VpmGroup>),
    /// A hardware IRQ.
    Hwirq(Arc<HwirqObject>),
}

impl CapObject for Object {
    fn object_type(&self) -> ObjectType {
        match self {
            Object::Partition(_) => ObjectType::Partition,
            Object::CSpace(_) => ObjectType::CSpace,
            Object::MsgQueue(_) => ObjectType::MsgQueue,
            Object::Doorbell(_) => ObjectType::Doorbell,
            Object::Vic(_) => ObjectType::Vic,
            Object::Vcpu(_) => ObjectType::Thread,
            Object::AddrSpace(_) => ObjectType::AddrSpace,
            Object::MemExtent(_) => ObjectType::MemExtent,
            Object::VpmGroup(_) => ObjectType::VpmGroup,
            Object::Hwirq(_) => ObjectType::Hwirq,
        }
    }
}

impl Object {
    /// The object's lifecycle header (a hardware IRQ, made by the hypervisor ready to use,
    /// has none).
    pub fn header(&self) -> Option<&Header> {
        match self {
            Object::Partition(o) => Some(&o.header),
            Object::CSpace(o) => Some(&o.header),
            Object::MsgQueue(o) => Some(&o.header),
            Object::Doorbell(o) => Some(&o.header),
            Object::AddrSpace(o) => Some(&o.header),
            Object::MemExtent(o) => Some(&o.header),
            Object::Vic(o) => Some(&o.header),
            Object::Vcpu(o) => Some(&o.header),
            Object::VpmGroup(o) => Some(&o.header),
            Object::Hwirq(_) => None,
        }
    }

    /// `object_activate`: INIT → ACTIVE after the type's own checks (a message queue must be
    /// configured and gets its storage here).
    pub fn activate(&self) -> Result<(), Error> {
        match self {
            Object::Partition(p) => p.activate(),
            Object::MsgQueue(q) => q.activate(),
            Object::CSpace(c) => c.activate(),
            Object::AddrSpace(a) => a.activate(),
            Object::MemExtent(m) => m.activate(),
            Object::Vic(v) => v.activate(),
            Object::Vcpu(v) => v.activate(),
            other => other
                .header()
                .map_or(Err(Error::ObjectState), Header::activate),
        }
    }

    /// Whether two handles name the same object.
    pub fn same(&self, other: &Object) -> bool {
        match (self, other) {
            (Object::Partition(a), Object::Partition(b)) => Arc::ptr_eq(a, b),
            (Object::CSpace(a), Object::CSpace(b)) => Arc::ptr_eq(a, b),
            (Object::MsgQueue(a), Object::MsgQueue(b)) => Arc::ptr_eq(a, b),
            (Object::Doorbell(a), Object::Doorbell(b)) => Arc::ptr_eq(a, b),
            (Object::Vic(a), Object::Vic(b)) => Arc::ptr_eq(a, b),
            (Object::Vcpu(a), Object::Vcpu(b)) => Arc::ptr_eq(a, b),
            (Object::AddrSpace(a), Object::AddrSpace(b)) => Arc::ptr_eq(a, b),
            (Object::MemExtent(a), Object::MemExtent(b)) => Arc::ptr_eq(a, b),
            (Object::VpmGroup(a), Object::VpmGroup(b)) => Arc::ptr_eq(a, b),
            (Object::Hwirq(a), Object::Hwirq(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lifecycle() {
        let h = Header::new_init();
        assert_eq!(h.require_active(), Err(Error::ObjectState));
        assert_eq!(h.require_init(), Ok(()));
        assert_eq!(h.activate(), Ok(()));
        assert_eq!(h.activate(), Err(Error::ObjectState));
        assert_eq!(h.require_init(), Err(Error::ObjectState));
        assert_eq!(Header::new_active().state(), ObjectState::Active);
    }
}

//! Who is calling: the caller's capability space and a way to reach its memory.
//!
//! Hypercall handlers see the calling VM only through a [`Caller`], so they run unchanged in
//! host tests (with a fake memory) and at EL2 (where [`GuestAccess`] walks the guest's stage-1
//! and stage-2 tables).

use alloc::sync::Arc;
use wurley_abi::{CapId, Error};

use crate::object::addrspace::AddrSpaceObject;
use crate::object::cspace::CSpace;
use crate::object::handle::{CSpaceObject, PartitionObject};
use crate::object::ipc::{DoorbellObject, MsgQueueObject};
use crate::object::memextent::MemExtent;
use crate::object::vcpu::VcpuObject;
use crate::object::vic::Vic;
use crate::object::{Object, ObjectType};

/// Copies between hypervisor buffers and the calling vCPU's virtual address space.
///
/// Addresses are guest *virtual* addresses of the caller (Gunyah's `user_ptr_t`). Any
/// translation fault, or a translation that leaves the caller's own RAM, is `AddrInvalid`; a
/// range that wraps around is `AddrOverflow`.
pub trait GuestAccess {
    /// Fill `buf` from guest VA `va`.
    fn read(&mut self, va: u64, buf: &mut [u8]) -> Result<(), Error>;
    /// Write `data` to guest VA `va`.
    fn write(&mut self, va: u64, data: &[u8]) -> Result<(), Error>;
}

/// The calling VM as the hypercall handlers see it.
pub struct Caller<'a> {
    /// The caller's cspace; `None` for a VM without one (every lookup fails).
    pub cspace: Option<&'a Arc<CSpace<Object>>>,
    /// The caller's memory.
    pub mem: &'a mut dyn GuestAccess,
    /// Set by `scheduler_yield`: the calling vCPU gives up its CPU after the call returns.
    pub yield_cpu: bool,
    /// Set by `vcpu_run` / `vcpu_run_check` / `vcpu_set_affinity` once their arguments and cap
    /// passed: what must be done with the vCPU the cap names (`vm::proxy` does it and writes
    /// the reply).
    pub proxy: Option<ProxyRequest>,
}

/// A proxy-scheduling request whose cap and arguments are checked.
#[derive(Clone)]
pub enum ProxyRequest {
    /// `vcpu_run` with the resume data of X1..X3.
    Run {
        /// The vCPU.
        vcpu: Arc<VcpuObject>,
        /// resume_data_0..2.
        resume: [u64; 3],
    },
    /// `vcpu_run_check`.
    Check {
        /// The vCPU.
        vcpu: Arc<VcpuObject>,
    },
    /// `scheduler_yield` to a vCPU (hint 1): it runs next on the caller's CPU, if it waits
    /// there.
    YieldTo {
        /// The vCPU.
        vcpu: Arc<VcpuObject>,
    },
    /// `vcpu_register_write` of a vCPU whose VM exists.
    RegisterWrite {
        /// The vCPU.
        vcpu: Arc<VcpuObject>,
        /// Which register.
        reg: crate::object::vcpu::BootReg,
        /// The value.
        value: u64,
    },
    /// `vcpu_poweron`.
    PowerOn {
        /// The vCPU.
        vcpu: Arc<VcpuObject>,
        /// Entry point (IPA).
        entry: u64,
        /// Its X0.
        context: u64,
        /// `vcpu_poweron_flags`.
        flags: u64,
    },
    /// `vcpu_poweroff` (of the caller itself).
    PowerOff {
        /// The vCPU the cap names.
        vcpu: Arc<VcpuObject>,
        /// `vcpu_poweroff_flags`.
        flags: u64,
    },
    /// `vcpu_kill`.
    Kill {
        /// The vCPU.
        vcpu: Arc<VcpuObject>,
    },
    /// `vpm_group_get_state`.
    VpmState {
        /// The group.
        group: Arc<crate::object::vpm::VpmGroup>,
    },
    /// `WURLEY_VM_SET_NAME`: the name is on the address space; a VM running on it takes it.
    SetName {
        /// The address space.
        space: Arc<AddrSpaceObject>,
        /// Several VMs share the console from now on.
        shared: bool,
    },
    /// `vcpu_set_affinity`.
    SetAffinity {
        /// The vCPU.
        vcpu: Arc<VcpuObject>,
        /// The physical CPU index.
        cpu: usize,
    },
}

impl Caller<'_> {
    fn space(&self) -> Result<&Arc<CSpace<Object>>, Error> {
        self.cspace.ok_or(Error::CspaceCapNull)
    }

    /// Look `cap` up in the caller's cspace as a `ty` with `rights`.
    pub fn lookup(&self, cap: u64, ty: ObjectType, rights: u32) -> Result<Object, Error> {
        self.space()?.lookup(CapId(cap), ty, rights)
    }

    /// Look `cap` up whatever its type, needing `rights`.
    pub fn lookup_any(&self, cap: u64, rights: u32) -> Result<Object, Error> {
        self.space()?.lookup_any(CapId(cap), rights).map(|(o, _)| o)
    }

    /// An active partition with `rights`.
    pub fn partition(&self, cap: u64, rights: u32) -> Result<Arc<PartitionObject>, Error> {
        match self.lookup(cap, ObjectType::Partition, rights)? {
            Object::Partition(p) => {
                p.header.require_active()?;
                Ok(p)
            }
            _ => Err(Error::CspaceWrongObjectType),
        }
    }

    /// A cspace with `rights` (active unless `any_state`).
    pub fn cspace_obj(
        &self,
        cap: u64,
        rights: u32,
        any_state: bool,
    ) -> Result<Arc<CSpaceObject>, Error> {
        match self.lookup(cap, ObjectType::CSpace, rights)? {
            Object::CSpace(c) => {
                if !any_state {
                    c.header.require_active()?;
                }
                Ok(c)
            }
            _ => Err(Error::CspaceWrongObjectType),
        }
    }

    /// A message queue with `rights`.
    pub fn msgqueue(&self, cap: u64, rights: u32) -> Result<Arc<MsgQueueObject>, Error> {
        match self.lookup(cap, ObjectType::MsgQueue, rights)? {
            Object::MsgQueue(q) => Ok(q),
            _ => Err(Error::CspaceWrongObjectType),
        }
    }

    /// A doorbell with `rights`.
    pub fn doorbell(&self, cap: u64, rights: u32) -> Result<Arc<DoorbellObject>, Error> {
        match self.lookup(cap, ObjectType::Doorbell, rights)? {
            Object::Doorbell(d) => Ok(d),
            _ => Err(Error::CspaceWrongObjectType),
        }
    }

    /// A virtual interrupt controller with `rights`.
    pub fn vic(&self, cap: u64, rights: u32) -> Result<Arc<Vic>, Error> {
        match self.lookup(cap, ObjectType::Vic, rights)? {
            Object::Vic(v) => Ok(v),
            _ => Err(Error::CspaceWrongObjectType),
        }
    }
}

impl Caller<'_> {
    /// A hardware IRQ with `rights`.
    pub fn hwirq(
        &self,
        cap: u64,
        rights: u32,
    ) -> Result<Arc<crate::object::hwirq::HwirqObject>, Error> {
        match self.lookup(cap, ObjectType::Hwirq, rights)? {
            Object::Hwirq(h) => Ok(h),
            _ => Err(Error::CspaceWrongObjectType),
        }
    }

    /// A VPM group with `rights`.
    pub fn vpm_group(
        &self,
        cap: u64,
        rights: u32,
    ) -> Result<Arc<crate::object::vpm::VpmGroup>, Error> {
        match self.lookup(cap, ObjectType::VpmGroup, rights)? {
            Object::VpmGroup(g) => Ok(g),
            _ => Err(Error::CspaceWrongObjectType),
        }
    }

    /// A vCPU with `rights`.
    pub fn vcpu(&self, cap: u64, rights: u32) -> Result<Arc<VcpuObject>, Error> {
        match self.lookup(cap, ObjectType::Thread, rights)? {
            Object::Vcpu(v) => Ok(v),
            _ => Err(Error::CspaceWrongObjectType),
        }
    }

    /// A memory extent with `rights`.
    pub fn memextent(&self, cap: u64, rights: u32) -> Result<Arc<MemExtent>, Error> {
        match self.lookup(cap, ObjectType::MemExtent, rights)? {
            Object::MemExtent(m) => Ok(m),
            _ => Err(Error::CspaceWrongObjectType),
        }
    }

    /// An address space with `rights`.
    pub fn addrspace(&self, cap: u64, rights: u32) -> Result<Arc<AddrSpaceObject>, Error> {
        match self.lookup(cap, ObjectType::AddrSpace, rights)? {
            Object::AddrSpace(a) => Ok(a),
            _ => Err(Error::CspaceWrongObjectType),
        }
    }
}

//! Virtual power-management groups (Gunyah's `vpm_group`): a set of vCPUs whose power states
//! aggregate into one state the group's owner can query (`vpm_group_get_state`) and be told of
//! (a vIRQ bound with `vpm_group_bind_virq`, asserted whenever the aggregate state changes).
//!
//! The group is pure: it holds its vCPU objects weakly, by index, and the bound source. What
//! a vCPU's power state is lives in `vm::` (`vm::vpm` computes the state and calls
//! [`VpmGroup::update`] when a member's power changes).

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;
use wurley_abi::Error;

use super::VirqLine;
use super::handle::Header;
use super::partition::Charge;
use super::vcpu::VcpuObject;
use super::vic::{Vic, VirqSource};

/// Most vCPUs a group may hold.
pub const MAX_MEMBERS: usize = 8;

/// `vpm_group_configure` flag bit 0: no aggregation (the group reports, but does not act on,
/// its vCPUs' states; Wurley never acts on them, so it only records the flag).
pub const NO_AGGREGATION: u64 = 1;

/// `vpm_state` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum VpmState {
    /// No vCPU attached.
    NoState = 0,
    /// At least one vCPU is on.
    Running = 1,
    /// Every vCPU is off (suspended, never started, or powered off).
    CpusSuspended = 2,
    /// The whole VM is suspended (PSCI SYSTEM_SUSPEND; Wurley does not offer it).
    SystemSuspended = 3,
}

impl core::fmt::Debug for VpmGroup {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "VpmGroup(state {})", self.last.load(Ordering::Relaxed))
    }
}

/// A VPM group.
pub struct VpmGroup {
    /// Lifecycle.
    pub header: Header,
    flags: AtomicU64,
    members: Mutex<Vec<Option<Weak<VcpuObject>>>>,
    virq: Mutex<Option<VirqSource>>,
    last: AtomicU64,
    _charge: Charge,
}

impl VpmGroup {
    /// A new group (INIT), its memory charged by `charge`.
    pub fn new(charge: Charge) -> Arc<Self> {
        Arc::new(Self {
            header: Header::new_init(),
            flags: AtomicU64::new(0),
            members: Mutex::new(Vec::new()),
            virq: Mutex::new(None),
            last: AtomicU64::new(VpmState::NoState as u64),
            _charge: charge,
        })
    }

    /// `vpm_group_configure` (INIT only): flags ([`NO_AGGREGATION`]; other bits
    /// `ArgumentInvalid`).
    pub fn configure(&self, flags: u64) -> Result<(), Error> {
        self.header.require_init()?;
        if flags & !NO_AGGREGATION != 0 {
            return Err(Error::ArgumentInvalid);
        }
        self.flags.store(flags, Ordering::Release);
        Ok(())
    }

    /// `vpm_group_attach_vcpu`: the group active, `index` below [`MAX_MEMBERS`] and free
    /// (`ArgumentInvalid`); the vCPU side (INIT) is checked by the caller.
    pub fn attach(&self, vcpu: &Arc<VcpuObject>, index: u64) -> Result<(), Error> {
        self.header.require_active()?;
        let i = usize::try_from(index)
            .ok()
            .filter(|&i| i < MAX_MEMBERS)
            .ok_or(Error::ArgumentInvalid)?;
        let mut m = self.members.lock();
        if m.len() <= i {
            let more = i + 1 - m.len();
            m.try_reserve(more).map_err(|_| Error::Nomem)?;
            m.resize(i + 1, None);
        }
        if m[i].as_ref().is_some_and(|w| w.strong_count() > 0) {
            return Err(Error::ArgumentInvalid);
        }
        m[i] = Some(Arc::downgrade(vcpu));
        Ok(())
    }

    /// The members that still exist.
    pub fn members(&self) -> Vec<Arc<VcpuObject>> {
        self.members
            .lock()
            .iter()
            .filter_map(|w| w.as_ref().and_then(Weak::upgrade))
            .collect()
    }

    /// `vpm_group_bind_virq`: `VirqBound` if bound already; the VIC's errors.
    pub fn bind(&self, vic: &Arc<Vic>, virq: u32) -> Result<(), Error> {
        let mut slot = self.virq.lock();
        if slot.is_some() {
            return Err(Error::VirqBound);
        }
        *slot = Some(vic.bind(virq)?);
        Ok(())
    }

    /// `vpm_group_unbind_virq`: `VirqNotBound` if not bound.
    pub fn unbind(&self) -> Result<(), Error> {
        let src = self.virq.lock().take();
        src.map(drop).ok_or(Error::VirqNotBound)
    }

    /// The aggregate of member power states (`on[i]`: member `i` is on).
    pub fn aggregate(on: impl IntoIterator<Item = bool>) -> VpmState {
        let mut any = false;
        for o in on {
            if o {
                return VpmState::Running;
            }
            any = true;
        }
        if any {
            VpmState::CpusSuspended
        } else {
            VpmState::NoState
        }
    }

    /// Record the group's state now; if it changed, assert the bound vIRQ (an edge).
    pub fn update(&self, state: VpmState) {
        if self.last.swap(state as u64, Ordering::AcqRel) != state as u64 {
            super::vic::apply(&self.virq.lock(), VirqLine::Assert { level: false });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::partition::Partition;
    use crate::object::vic::tests::Recorder;

    fn group() -> Arc<VpmGroup> {
        let p = Partition::new_root(1 << 20);
        VpmGroup::new(p.charge(64).unwrap())
    }

    #[test]
    fn configure_attach_bind_and_report_changes() {
        let g = group();
        assert_eq!(g.configure(2), Err(Error::ArgumentInvalid));
        assert_eq!(g.configure(NO_AGGREGATION), Ok(()));
        let v = VcpuObject::new();
        assert_eq!(g.attach(&v, 0), Err(Error::ObjectState));
        g.header.activate().unwrap();
        assert_eq!(g.configure(0), Err(Error::ObjectState));
        assert_eq!(g.attach(&v, 8), Err(Error::ArgumentInvalid));
        assert_eq!(g.attach(&v, 3), Ok(()));
        assert_eq!(g.attach(&v, 3), Err(Error::ArgumentInvalid));
        assert_eq!(g.members().len(), 1);
        let rec = Arc::new(Recorder::default());
        let vic = Vic::new(rec.clone());
        assert_eq!(g.unbind(), Err(Error::VirqNotBound));
        assert_eq!(g.bind(&vic, 50), Ok(()));
        assert_eq!(g.bind(&vic, 51), Err(Error::VirqBound));
        g.update(VpmState::Running);
        g.update(VpmState::Running);
        g.update(VpmState::CpusSuspended);
        assert_eq!(rec.events.lock().len(), 2, "one edge per change");
        assert_eq!(g.unbind(), Ok(()));
        drop(v);
        assert!(g.members().is_empty());
    }

    #[test]
    fn aggregate_state() {
        assert_eq!(VpmGroup::aggregate([]), VpmState::NoState);
        assert_eq!(VpmGroup::aggregate([false, false]), VpmState::CpusSuspended);
        assert_eq!(VpmGroup::aggregate([false, true]), VpmState::Running);
    }
}

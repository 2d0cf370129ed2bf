//! vCPU objects: what a capability to a proxy-scheduled vCPU names (Gunyah's `thread`
//! object, only as far as proxy scheduling needs it), and its two vIRQ sources, HALT and
//! VCPU_RUN_WAKEUP.
//!
//! The object is pure: it knows the vCPU by the index of its VM among the published VMs and its
//! index in that VM (set once the VMs exist), and who may run it (the owner VM's index). The
//! vCPU's state and the run itself are in `vm::proxy`, which finds the vCPU through these
//! indices.

use alloc::sync::Arc;
use spin::{Mutex, Once};
use wurley_abi::Error;
use wurley_abi::vcpu_run::VcpuVirqType;

use super::VirqLine;
use super::vic::{Vic, VirqSource};

/// Where the vCPU lives: (its VM, its index there, the VM that runs it), as indices of the
/// published VMs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuTarget {
    /// Index of the vCPU's VM.
    pub vm: usize,
    /// The vCPU's index in its VM.
    pub index: usize,
    /// Index of the VM allowed to run it (its proxy scheduler).
    pub owner: usize,
}

/// A vCPU object.
pub struct VcpuObject {
    target: Once<VcpuTarget>,
    halt: Mutex<Option<VirqSource>>,
    wakeup: Mutex<Option<VirqSource>>,
}

impl VcpuObject {
    /// A vCPU object not yet attached to its vCPU.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            target: Once::new(),
            halt: Mutex::new(None),
            wakeup: Mutex::new(None),
        })
    }

    /// Attach the vCPU (once, when the VMs are published).
    pub fn attach(&self, target: VcpuTarget) {
        self.target.call_once(|| target);
    }

    /// The vCPU, once attached.
    pub fn target(&self) -> Option<VcpuTarget> {
        self.target.get().copied()
    }

    fn source(&self, ty: VcpuVirqType) -> &Mutex<Option<VirqSource>> {
        match ty {
            VcpuVirqType::Halt => &self.halt,
            VcpuVirqType::VcpuRunWakeup => &self.wakeup,
        }
    }

    /// `vcpu_bind_virq`: bind source `ty` to `virq` of `vic`. `VirqBound` if the source is
    /// bound already; the VIC's own errors otherwise.
    pub fn bind(&self, ty: VcpuVirqType, vic: &Arc<Vic>, virq: u32) -> Result<(), Error> {
        let mut slot = self.source(ty).lock();
        if slot.is_some() {
            return Err(Error::VirqBound);
        }
        *slot = Some(vic.bind(virq)?);
        Ok(())
    }

    /// `vcpu_unbind_virq`: `VirqNotBound` if source `ty` is not bound.
    pub fn unbind(&self, ty: VcpuVirqType) -> Result<(), Error> {
        let src = self.source(ty).lock().take();
        src.map(drop).ok_or(Error::VirqNotBound)
    }

    /// Whether source `ty` is bound.
    pub fn is_bound(&self, ty: VcpuVirqType) -> bool {
        self.source(ty).lock().is_some()
    }

    /// Assert source `ty` (an edge: the vIRQ becomes pending once), if bound.
    pub fn raise(&self, ty: VcpuVirqType) {
        super::vic::apply(&self.source(ty).lock(), VirqLine::Assert { level: false });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::vic::tests::Recorder;
    use alloc::vec;

    #[test]
    fn bind_raise_unbind() {
        let rec = Arc::new(Recorder::default());
        let vic = Vic::new(rec.clone());
        let v = VcpuObject::new();
        assert_eq!(v.target(), None);
        v.raise(VcpuVirqType::VcpuRunWakeup); // unbound: nothing happens
        assert_eq!(
            v.unbind(VcpuVirqType::VcpuRunWakeup),
            Err(Error::VirqNotBound)
        );
        assert_eq!(
            v.bind(VcpuVirqType::VcpuRunWakeup, &vic, 33),
            Err(Error::ArgumentInvalid)
        );
        assert_eq!(v.bind(VcpuVirqType::VcpuRunWakeup, &vic, 40), Ok(()));
        assert_eq!(
            v.bind(VcpuVirqType::VcpuRunWakeup, &vic, 41),
            Err(Error::VirqBound)
        );
        // The other type cannot take a vIRQ another source holds.
        assert_eq!(v.bind(VcpuVirqType::Halt, &vic, 40), Err(Error::VirqBound));
        assert!(v.is_bound(VcpuVirqType::VcpuRunWakeup) && !v.is_bound(VcpuVirqType::Halt));
        v.raise(VcpuVirqType::VcpuRunWakeup);
        assert_eq!(v.unbind(VcpuVirqType::VcpuRunWakeup), Ok(()));
        assert!(!vic.is_bound(40));
        assert_eq!(*rec.events.lock(), vec![(40, "assert"), (40, "deassert")]);
        v.attach(VcpuTarget {
            vm: 1,
            index: 0,
            owner: 0,
        });
        assert_eq!(v.target().map(|t| t.vm), Some(1));
    }
}

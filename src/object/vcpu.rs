//! vCPU objects: Gunyah's `thread` object. It has two lives:
//!
//! - created by `partition_create_thread` in INIT, it collects its configuration
//!   ([`ThreadConfig`]: option flags, priority, timeslice, affinity, the cspace, address space
//!   and VIC (with its index) it is attached to, boot registers written before power-on) and
//!   becomes ACTIVE with `object_activate` once attached to all three; its first power-on
//!   makes the VM it belongs to (`vm::assemble`);
//! - for the root VM (the resource manager, the only VM the hypervisor makes itself) the
//!   hypervisor makes it ACTIVE, already standing for its vCPU.
//!
//! Either way, once the VM exists the object knows its vCPU by [`VcpuTarget`] (the VM's index
//! among the live VMs, the vCPU's index in it) and carries the vCPU's two vIRQ sources, HALT
//! and VCPU_RUN_WAKEUP. The vCPU's state and running it are in `vm::`, which finds the vCPU
//! through the target.

use alloc::sync::Arc;
use spin::{Mutex, Once};
use wurley_abi::Error;
use wurley_abi::vcpu_run::VcpuVirqType;

use super::ObjectState;
use super::VirqLine;
use super::addrspace::AddrSpaceObject;
use super::handle::{CSpaceObject, Header};
use super::partition::Charge;
use super::vic::{Vic, VirqSource};

/// `vcpu_option_flags` bits Wurley accepts: pinned (0), ras_error_handler (1),
/// amu_counting_disabled (2), sve_allowed (3), debug_allowed (4), trace_allowed (5),
/// critical (8), vcpu_run_scheduled (9), hlos_vm (63). Bits 0-5 and 63 change nothing here
/// (every vCPU keeps the affinity it is given; the features bits 1-5 allow are hidden from
/// every guest); critical makes the VM's end end the machine; vcpu_run_scheduled makes the
/// vCPU proxy-scheduled: never queued, run by a holder of its cap with `vcpu_run`.
pub const VCPU_OPTIONS: u64 = 0b11_1111 | OPTION_CRITICAL | OPTION_RUN_SCHEDULED | 1 << 63;
/// `vcpu_option_flags` bit 8: the VM ends the machine when this vCPU's VM ends.
pub const OPTION_CRITICAL: u64 = 1 << 8;
/// `vcpu_option_flags` bit 9 (vcpu_run_scheduled): the vCPU runs only inside `vcpu_run`.
pub const OPTION_RUN_SCHEDULED: u64 = 1 << 9;

/// Boot registers written by `vcpu_register_write` before power-on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootRegs {
    /// X0..X30 (`None`: 0).
    pub x: [u64; 31],
    /// PC, if written (else the power-on entry point).
    pub pc: Option<u64>,
    /// SP_EL0 and SP_EL1.
    pub sp: [u64; 2],
}

/// What a thread created by a guest is configured with while in INIT.
#[derive(Default)]
pub struct ThreadConfig {
    /// `vcpu_configure` option flags.
    pub options: u64,
    /// Scheduler priority (`None`: the default).
    pub priority: Option<u8>,
    /// Timeslice in ns (`None`: the default).
    pub timeslice_ns: Option<u64>,
    /// Physical CPU index (`None`: the hypervisor picks).
    pub affinity: Option<usize>,
    /// The cspace its hypercalls use.
    pub cspace: Option<Arc<CSpaceObject>>,
    /// Its address space.
    pub addrspace: Option<Arc<AddrSpaceObject>>,
    /// Its VIC and its index there.
    pub vic: Option<(Arc<Vic>, usize)>,
    /// Its VPM group.
    pub vpm: Option<Arc<super::vpm::VpmGroup>>,
    /// Registers written before power-on.
    pub regs: BootRegs,
    /// Killed before its VM existed: it can never be powered on.
    pub killed: bool,
}

/// A register a `vcpu_register_write` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootReg {
    /// X0..X30.
    X(usize),
    /// The PC.
    Pc,
    /// SP_EL0 (0) or SP_EL1 (1).
    Sp(usize),
}

impl BootReg {
    /// Decode `vcpu_register_set` `set` and `index`: set 0 X (0..=30), 1 PC (0), 2 SP_EL (0, 1).
    pub fn decode(set: u64, index: u64) -> Result<BootReg, Error> {
        match (set, index) {
            (0, i @ 0..=30) => Ok(BootReg::X(i as usize)),
            (1, 0) => Ok(BootReg::Pc),
            (2, i @ 0..=1) => Ok(BootReg::Sp(i as usize)),
            _ => Err(Error::ArgumentInvalid),
        }
    }
}

impl BootRegs {
    /// Record `value` for `reg`.
    pub fn set(&mut self, reg: BootReg, value: u64) {
        match reg {
            BootReg::X(i) => {
                if let Some(x) = self.x.get_mut(i) {
                    *x = value;
                }
            }
            BootReg::Pc => self.pc = Some(value),
            BootReg::Sp(i) => {
                if let Some(sp) = self.sp.get_mut(i) {
                    *sp = value;
                }
            }
        }
    }
}

/// Where the vCPU lives: (its VM, its index there, the VM that runs it), as indices of the
/// published VMs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuTarget {
    /// Index of the vCPU's VM.
    pub vm: usize,
    /// The vCPU's index in its VM.
    pub index: usize,
    /// Index of the VM allowed to run it (its proxy scheduler), [`ANY_OWNER`] if any holder
    /// of a cap with the run rights may, `usize::MAX` if it is not proxy-scheduled.
    pub owner: usize,
}

/// [`VcpuTarget::owner`] of a proxy-scheduled vCPU of a VM built from objects: whoever holds a
/// cap to it with the run rights (and is not proxy-scheduled itself) may run it.
pub const ANY_OWNER: usize = usize::MAX - 1;

/// [`VcpuTarget::owner`] of a vCPU the scheduler runs (no VM runs it by proxy).
pub const NO_OWNER: usize = usize::MAX;

/// A vCPU object.
pub struct VcpuObject {
    /// Lifecycle: INIT while a guest configures it, ACTIVE after activation (or from the start
    /// for the root VM's vCPU).
    pub header: Header,
    /// Configuration of a guest-created thread (empty for the root VM's vCPU).
    pub config: Mutex<ThreadConfig>,
    target: Once<VcpuTarget>,
    /// What `vcpu_run_check` answers once its VM is retired: the run state and its data.
    final_state: Once<(u64, [u64; 3])>,
    halt: Mutex<Option<VirqSource>>,
    wakeup: Mutex<Option<VirqSource>>,
    /// What it costs its partition; given back when its VM is retired (the retired VM's
    /// record keeps the object itself).
    charge: Mutex<Option<Charge>>,
}

impl VcpuObject {
    /// The object of the root VM's vCPU (active), not yet attached to its vCPU.
    pub fn new() -> Arc<Self> {
        Self::with(Header::new_active(), None)
    }

    /// A thread created by `partition_create_thread`: INIT, its memory charged by `charge`.
    pub fn new_init(charge: Charge) -> Arc<Self> {
        Self::with(Header::new_init(), Some(charge))
    }

    fn with(header: Header, charge: Option<Charge>) -> Arc<Self> {
        Arc::new(Self {
            header,
            config: Mutex::new(ThreadConfig::default()),
            target: Once::new(),
            final_state: Once::new(),
            halt: Mutex::new(None),
            wakeup: Mutex::new(None),
            charge: Mutex::new(charge),
        })
    }

    /// What it costs its partition now (0 once its VM is retired, or for the root VM's).
    pub fn charged(&self) -> usize {
        self.charge.lock().as_ref().map_or(0, |c| c.bytes())
    }

    /// Run `f` on the configuration if the thread is still in INIT (`ObjectState` otherwise).
    pub fn configure_with<R>(
        &self,
        f: impl FnOnce(&mut ThreadConfig) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut cfg = self.config.lock();
        self.header.require_init()?;
        f(&mut cfg)
    }

    /// `vcpu_configure`: the option flags (INIT only; `ArgumentInvalid` for unknown bits).
    pub fn configure(&self, options: u64) -> Result<(), Error> {
        if options & !VCPU_OPTIONS != 0 {
            return Err(Error::ArgumentInvalid);
        }
        self.configure_with(|c| {
            c.options = options;
            Ok(())
        })
    }

    /// `object_activate`: needs a cspace, an address space (active) and a VIC attached
    /// (`ObjectConfig` otherwise).
    pub fn activate(&self) -> Result<(), Error> {
        let cfg = self.config.lock();
        self.header.require_init()?;
        let ready = cfg.cspace.is_some()
            && cfg.vic.is_some()
            && cfg
                .addrspace
                .as_ref()
                .is_some_and(|a| a.header.state() == ObjectState::Active);
        if !ready {
            return Err(Error::ObjectConfig);
        }
        self.header.activate()
    }

    /// Record the state its VM left it in (raw `vcpu_run_state` and its three data words), for
    /// `vcpu_run_check` after the VM is retired.
    pub fn set_final_state(&self, state: u64, data: [u64; 3]) {
        self.final_state.call_once(|| (state, data));
    }

    /// The state recorded by [`set_final_state`](Self::set_final_state).
    pub fn final_state(&self) -> Option<(u64, [u64; 3])> {
        self.final_state.get().copied()
    }

    /// Let go of the cspace, address space and VIC it was attached to (its VM was retired), and
    /// give its memory charge back to its partition: the retired VM's record keeps this object
    /// (small) alive, and a partition must not lose quota to VMs that are gone. Its vIRQ
    /// sources stay bound until their holders unbind them, as for any object.
    pub fn release(&self) {
        drop(self.charge.lock().take());
        let held = {
            let mut cfg = self.config.lock();
            (
                cfg.cspace.take(),
                cfg.addrspace.take(),
                cfg.vic.take(),
                cfg.vpm.take(),
            )
        };
        drop(held);
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

    #[test]
    fn release_refunds_the_partition() {
        let p = crate::object::partition::Partition::new_root(1 << 20);
        let t = VcpuObject::new_init(p.charge(4096).unwrap());
        assert_eq!(p.used(), 4096);
        t.release();
        assert_eq!(p.used(), 0, "the charge went back when its VM was retired");
    }
}

//! Virtual interrupt controllers as objects, and the bindings of interrupt sources to them.
//!
//! A VM's virtual GIC is reachable as a `vic` object: message queues and doorbells bind their
//! interrupt sources to one of its shared vIRQs (SPIs), and each source then drives that vIRQ.
//! The controller behind the object is a [`VirqController`], implemented by the VM (its vGIC,
//! plus the kick of the vCPU the interrupt targets); tests implement it with a recorder.
//!
//! A vIRQ has at most one bound source. A binding is a [`VirqSource`] value: dropping it
//! (unbind, or the object dying) frees the vIRQ and drops its line.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use spin::{Mutex, Once};
use wurley_abi::Error;

use super::VirqLine;
use super::handle::Header;
use super::partition::Charge;
use super::vcpu::VcpuObject;

fn drive_now(c: &dyn VirqController, virq: u32, line: VirqLine) {
    match line {
        VirqLine::Unchanged => {}
        VirqLine::Assert { level } => c.assert(virq, level),
        VirqLine::Deassert => c.deassert(virq),
    }
}

/// Most vCPUs a VIC (a VM) may have.
pub const MAX_VCPUS: u64 = 8;
/// Most shared vIRQs (SPIs 32..1019) a VIC may have.
pub const MAX_SHARED_VIRQS: u64 = 988;

/// `vic_configure` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VicConfig {
    /// vCPUs (1..=[`MAX_VCPUS`]).
    pub max_vcpus: usize,
    /// Shared vIRQs (SPIs from INTID 32).
    pub max_virqs: u32,
}

/// What a source needs from the interrupt controller it is bound to.
pub trait VirqController: Send + Sync {
    /// Whether `virq` may carry a bound source: a shared interrupt the controller implements
    /// and no emulated device of the VM uses.
    fn bindable(&self, virq: u32) -> bool;
    /// Make `virq` pending. `level` is the source's line after the assertion (see
    /// [`VirqLine::Assert`]).
    fn assert(&self, virq: u32, level: bool);
    /// The source no longer asserts `virq`.
    fn deassert(&self, virq: u32);

    /// Deliver physical SPI `pintid` (level-triggered if `level`) as `virq`, hardware linked.
    fn bind_hw(&self, virq: u32, pintid: u32, level: bool) -> Result<(), Error> {
        let _ = (virq, pintid, level);
        Err(Error::Unimplemented)
    }

    /// Stop delivering the physical SPI linked to `virq`, and disable it.
    fn unbind_hw(&self, virq: u32, pintid: u32) {
        let _ = (virq, pintid);
    }
}

/// A virtual interrupt controller object.
pub struct Vic {
    /// Lifecycle: INIT while a guest configures it, ACTIVE after activation (or from the start
    /// for the root VM's VIC).
    pub header: Header,
    controller: Once<Arc<dyn VirqController>>,
    bound: Mutex<Vec<u32>>,
    config: Mutex<Option<VicConfig>>,
    /// vCPUs attached by `vic_attach_vcpu`, by index (weak: a vCPU holds its VIC).
    vcpus: Mutex<Vec<Option<Weak<VcpuObject>>>>,
    /// Sources asserted before the VM existed (vIRQ, level), replayed by
    /// [`Vic::set_controller`].
    early: Mutex<Vec<(u32, bool)>>,
    /// Hardware IRQs bound before the VM existed (vIRQ, physical INTID, level), connected by
    /// [`Vic::set_controller`].
    early_hw: Mutex<Vec<(u32, u32, bool)>>,
    charge: Option<Charge>,
}

impl Vic {
    /// The object for `controller` (a VM's vGIC).
    pub fn new(controller: Arc<dyn VirqController>) -> Arc<Vic> {
        let once = Once::new();
        once.call_once(|| controller);
        Arc::new(Vic {
            header: Header::new_active(),
            controller: once,
            bound: Mutex::new(Vec::new()),
            config: Mutex::new(None),
            vcpus: Mutex::new(Vec::new()),
            early: Mutex::new(Vec::new()),
            early_hw: Mutex::new(Vec::new()),
            charge: None,
        })
    }

    /// A VIC made by `partition_create_vic`: INIT, no controller until its VM exists.
    pub fn new_init(charge: Charge) -> Arc<Vic> {
        Arc::new(Vic {
            header: Header::new_init(),
            controller: Once::new(),
            bound: Mutex::new(Vec::new()),
            config: Mutex::new(None),
            vcpus: Mutex::new(Vec::new()),
            early: Mutex::new(Vec::new()),
            early_hw: Mutex::new(Vec::new()),
            charge: Some(charge),
        })
    }

    /// What the object costs its partition (0 for the root VM's).
    pub fn charged(&self) -> usize {
        self.charge.as_ref().map_or(0, Charge::bytes)
    }

    /// `vic_configure` (INIT only): `max_vcpus` 1..=[`MAX_VCPUS`], `max_virqs` at most
    /// [`MAX_SHARED_VIRQS`] (`ArgumentInvalid` otherwise). `options` bit 0 (max_msis valid)
    /// and bit 1 (disable_default_addr) are accepted; `max_msis` must be 0 when valid, as
    /// Wurley has no ITS (`ArgumentInvalid`); other option bits are `ArgumentInvalid`.
    pub fn configure(
        &self,
        max_vcpus: u64,
        max_virqs: u64,
        options: u64,
        max_msis: u64,
    ) -> Result<(), Error> {
        let mut cfg = self.config.lock();
        self.header.require_init()?;
        let msis_valid = options & 1 != 0;
        if options & !0b11 != 0
            || (msis_valid && max_msis != 0)
            || !(1..=MAX_VCPUS).contains(&max_vcpus)
            || max_virqs > MAX_SHARED_VIRQS
        {
            return Err(Error::ArgumentInvalid);
        }
        *cfg = Some(VicConfig {
            max_vcpus: max_vcpus as usize,
            max_virqs: max_virqs as u32,
        });
        Ok(())
    }

    /// `object_activate`: `ObjectConfig` until configured.
    pub fn activate(&self) -> Result<(), Error> {
        let cfg = self.config.lock();
        self.header.require_init()?;
        let Some(c) = *cfg else {
            return Err(Error::ObjectConfig);
        };
        let mut vcpus = self.vcpus.lock();
        vcpus.clear();
        vcpus.try_reserve(c.max_vcpus).map_err(|_| Error::Nomem)?;
        vcpus.resize(c.max_vcpus, None);
        self.header.activate()
    }

    /// The configuration (a guest-created VIC, once configured).
    pub fn config(&self) -> Option<VicConfig> {
        *self.config.lock()
    }

    /// `vic_attach_vcpu`: the VIC active, `index` below its `max_vcpus` and free
    /// (`ArgumentInvalid` otherwise). The vCPU side (INIT, not attached elsewhere) is checked
    /// by the caller, which records the VIC in the vCPU's configuration.
    pub fn attach_vcpu(&self, vcpu: &Arc<VcpuObject>, index: u64) -> Result<(), Error> {
        self.header.require_active()?;
        let mut vcpus = self.vcpus.lock();
        let slot = usize::try_from(index)
            .ok()
            .and_then(|i| vcpus.get_mut(i))
            .ok_or(Error::ArgumentInvalid)?;
        if slot.as_ref().is_some_and(|w| w.strong_count() > 0) {
            return Err(Error::ArgumentInvalid);
        }
        *slot = Some(Arc::downgrade(vcpu));
        Ok(())
    }

    /// The attached vCPUs that still exist, by index.
    pub fn attached(&self) -> Vec<Option<Arc<VcpuObject>>> {
        self.vcpus
            .lock()
            .iter()
            .map(|w| w.as_ref().and_then(Weak::upgrade))
            .collect()
    }

    /// Give a guest-created VIC its controller (its VM now exists); once.
    pub fn set_controller(&self, controller: Arc<dyn VirqController>) {
        let mut early = self.early.lock();
        let mut early_hw = self.early_hw.lock();
        let c = self.controller.call_once(|| controller);
        for (virq, pintid, level) in early_hw.drain(..) {
            if let Err(e) = c.bind_hw(virq, pintid, level) {
                log::warn!("hwirq {pintid} -> vIRQ {virq}: not connected: {e:?}");
            }
        }
        for (virq, level) in early.drain(..) {
            c.assert(virq, level);
        }
    }

    /// Drive `virq` as `line` says: through the controller, or, before the VM exists, into
    /// the list [`Vic::set_controller`] replays.
    fn drive(&self, virq: u32, line: VirqLine) {
        if let Some(c) = self.controller.get() {
            return drive_now(c.as_ref(), virq, line);
        }
        let mut early = self.early.lock();
        // The controller may have arrived while this waited for the lock.
        if let Some(c) = self.controller.get() {
            drop(early);
            return drive_now(c.as_ref(), virq, line);
        }
        early.retain(|&(v, _)| v != virq);
        if let VirqLine::Assert { level } = line {
            // Only a failed allocation could lose it; nothing runs yet to notice.
            if early.try_reserve(1).is_ok() {
                early.push((virq, level));
            }
        }
    }

    /// Whether the VIC already drives a VM.
    pub fn has_controller(&self) -> bool {
        self.controller.get().is_some()
    }

    /// Bind a new source to `virq`: `ArgumentInvalid` if the vIRQ cannot carry one,
    /// `VirqBound` if another source has it.
    pub fn bind(self: &Arc<Self>, virq: u32) -> Result<VirqSource, Error> {
        if !self.bindable(virq) {
            return Err(Error::ArgumentInvalid);
        }
        let mut bound = self.bound.lock();
        if bound.contains(&virq) {
            return Err(Error::VirqBound);
        }
        bound.try_reserve(1).map_err(|_| Error::Nomem)?;
        bound.push(virq);
        Ok(VirqSource {
            vic: self.clone(),
            virq,
        })
    }

    /// Whether `virq` has a bound source.
    /// Whether a source may be bound to `virq`: the controller says so, or, before the VM
    /// exists, the vIRQ is one of the configured shared vIRQs.
    fn bindable(&self, virq: u32) -> bool {
        match self.controller.get() {
            Some(c) => c.bindable(virq),
            None => self
                .config()
                .is_some_and(|c| (32..32 + c.max_virqs).contains(&virq)),
        }
    }

    /// Bind physical SPI `pintid` to `virq` (see [`VirqController::bind_hw`]); before the VM
    /// exists, the link is made when it does. The vIRQ is then taken as if a source held it.
    pub fn bind_hw(
        self: &Arc<Self>,
        virq: u32,
        pintid: u32,
        level: bool,
    ) -> Result<HwBinding, Error> {
        if !self.bindable(virq) {
            return Err(Error::ArgumentInvalid);
        }
        let mut bound = self.bound.lock();
        if bound.contains(&virq) {
            return Err(Error::VirqBound);
        }
        bound.try_reserve(1).map_err(|_| Error::Nomem)?;
        match self.controller.get() {
            Some(c) => c.bind_hw(virq, pintid, level)?,
            None => {
                let mut early = self.early_hw.lock();
                if let Some(c) = self.controller.get() {
                    drop(early);
                    c.bind_hw(virq, pintid, level)?;
                } else {
                    early.try_reserve(1).map_err(|_| Error::Nomem)?;
                    early.push((virq, pintid, level));
                }
            }
        }
        bound.push(virq);
        Ok(HwBinding {
            vic: self.clone(),
            virq,
            pintid,
        })
    }

    pub fn is_bound(&self, virq: u32) -> bool {
        self.bound.lock().contains(&virq)
    }
}

/// One source bound to one vIRQ of a [`Vic`].
pub struct VirqSource {
    vic: Arc<Vic>,
    virq: u32,
}

impl VirqSource {
    /// The vIRQ number.
    pub fn virq(&self) -> u32 {
        self.virq
    }

    /// Apply a state machine's verdict to the line.
    pub fn apply(&self, line: VirqLine) {
        self.vic.drive(self.virq, line);
    }
}

impl Drop for VirqSource {
    fn drop(&mut self) {
        self.vic.drive(self.virq, VirqLine::Deassert);
        self.vic.bound.lock().retain(|&v| v != self.virq);
    }
}

/// A hardware IRQ's link to a vIRQ; dropping it unlinks and disables the physical interrupt.
pub struct HwBinding {
    vic: Arc<Vic>,
    virq: u32,
    pintid: u32,
}

impl HwBinding {
    /// The VIC.
    pub fn vic(&self) -> &Arc<Vic> {
        &self.vic
    }

    /// The vIRQ.
    pub fn virq(&self) -> u32 {
        self.virq
    }
}

impl Drop for HwBinding {
    fn drop(&mut self) {
        match self.vic.controller.get() {
            Some(c) => c.unbind_hw(self.virq, self.pintid),
            None => self.vic.early_hw.lock().retain(|&(v, _, _)| v != self.virq),
        }
        self.vic.bound.lock().retain(|&v| v != self.virq);
    }
}

impl core::fmt::Debug for VirqSource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "VirqSource({})", self.virq)
    }
}

/// Apply `line` to the source in `slot`, if one is bound.
pub fn apply(slot: &Option<VirqSource>, line: VirqLine) {
    if let Some(src) = slot {
        src.apply(line);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::vec;

    /// A controller that records what it was asked to do.
    #[derive(Default)]
    pub struct Recorder {
        /// (virq, event) in order: "assert", "assert-level", "deassert".
        pub events: Mutex<Vec<(u32, &'static str)>>,
    }

    impl VirqController for Recorder {
        fn bindable(&self, virq: u32) -> bool {
            (32..96).contains(&virq) && virq != 33
        }
        fn assert(&self, virq: u32, level: bool) {
            let e = if level { "assert-level" } else { "assert" };
            self.events.lock().push((virq, e));
        }
        fn deassert(&self, virq: u32) {
            self.events.lock().push((virq, "deassert"));
        }
        fn bind_hw(&self, virq: u32, _: u32, _: bool) -> Result<(), Error> {
            self.events.lock().push((virq, "hw-bind"));
            Ok(())
        }
        fn unbind_hw(&self, virq: u32, _: u32) {
            self.events.lock().push((virq, "hw-unbind"));
        }
    }

    #[test]
    fn binding_is_exclusive_and_freed_on_drop() {
        let rec = Arc::new(Recorder::default());
        let vic = Vic::new(rec.clone());
        assert_eq!(vic.bind(33).err(), Some(Error::ArgumentInvalid));
        assert_eq!(vic.bind(1020).err(), Some(Error::ArgumentInvalid));
        let a = vic.bind(64).unwrap();
        assert_eq!(vic.bind(64).err(), Some(Error::VirqBound));
        a.apply(VirqLine::Assert { level: true });
        a.apply(VirqLine::Unchanged);
        drop(a);
        assert!(!vic.is_bound(64));
        let _b = vic.bind(64).unwrap();
        assert_eq!(
            *rec.events.lock(),
            vec![(64, "assert-level"), (64, "deassert")]
        );
    }
}

//! Virtual interrupt controllers as objects, and the bindings of interrupt sources to them.
//!
//! A VM's virtual GIC is reachable as a `vic` object: message queues and doorbells bind their
//! interrupt sources to one of its shared vIRQs (SPIs), and each source then drives that vIRQ.
//! The controller behind the object is a [`VirqController`], implemented by the VM (its vGIC,
//! plus the kick of the vCPU the interrupt targets); tests implement it with a recorder.
//!
//! A vIRQ has at most one bound source. A binding is a [`VirqSource`] value: dropping it
//! (unbind, or the object dying) frees the vIRQ and drops its line.

use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;
use wurley_abi::Error;

use super::VirqLine;

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
}

/// A virtual interrupt controller object.
pub struct Vic {
    controller: Arc<dyn VirqController>,
    bound: Mutex<Vec<u32>>,
}

impl Vic {
    /// The object for `controller` (a VM's vGIC).
    pub fn new(controller: Arc<dyn VirqController>) -> Arc<Vic> {
        Arc::new(Vic {
            controller,
            bound: Mutex::new(Vec::new()),
        })
    }

    /// Bind a new source to `virq`: `ArgumentInvalid` if the vIRQ cannot carry one,
    /// `VirqBound` if another source has it.
    pub fn bind(self: &Arc<Self>, virq: u32) -> Result<VirqSource, Error> {
        if !self.controller.bindable(virq) {
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
        let c = &self.vic.controller;
        match line {
            VirqLine::Unchanged => {}
            VirqLine::Assert { level } => c.assert(self.virq, level),
            VirqLine::Deassert => c.deassert(self.virq),
        }
    }
}

impl Drop for VirqSource {
    fn drop(&mut self) {
        self.vic.controller.deassert(self.virq);
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

//! Hardware IRQ objects (Gunyah's `hwirq`): one physical shared interrupt (SPI) the hypervisor
//! lets a VM have. `hwirq_bind_virq` links it to a vIRQ of a VIC: the physical interrupt is
//! routed to that VM and delivered as the vIRQ with a hardware-linked list register (the
//! guest's EOI deactivates the physical interrupt); `hwirq_unbind_virq` (or the object's end)
//! takes it back, physically disabled.
//!
//! There is no create call: the hypervisor makes one per SPI of the GIC except the console's,
//! unbound, and gives the resource manager a cap to each; the RM decides which VM gets it.

use alloc::sync::Arc;
use spin::Mutex;
use wurley_abi::Error;

use super::vic::{HwBinding, Vic};

/// A hardware IRQ.
pub struct HwirqObject {
    intid: u32,
    level: bool,
    binding: Mutex<Option<HwBinding>>,
}

impl HwirqObject {
    /// The object for physical SPI `intid` (level-triggered if `level`), unbound.
    pub fn new(intid: u32, level: bool) -> Arc<Self> {
        Arc::new(Self {
            intid,
            level,
            binding: Mutex::new(None),
        })
    }

    /// The physical INTID.
    pub fn intid(&self) -> u32 {
        self.intid
    }

    /// `hwirq_bind_virq`: `VirqBound` if it is bound already; the VIC's errors
    /// (`ArgumentInvalid` for a vIRQ it cannot bind, `VirqBound` if the vIRQ has a source).
    pub fn bind(&self, vic: &Arc<Vic>, virq: u32) -> Result<(), Error> {
        let mut b = self.binding.lock();
        if b.is_some() {
            return Err(Error::VirqBound);
        }
        *b = Some(vic.bind_hw(virq, self.intid, self.level)?);
        Ok(())
    }

    /// `hwirq_unbind_virq`: `VirqNotBound` if not bound.
    pub fn unbind(&self) -> Result<(), Error> {
        let old = self.binding.lock().take();
        old.map(drop).ok_or(Error::VirqNotBound)
    }

    /// Where it is bound: (VIC, vIRQ).
    pub fn bound_to(&self) -> Option<(Arc<Vic>, u32)> {
        self.binding
            .lock()
            .as_ref()
            .map(|b| (b.vic().clone(), b.virq()))
    }
}

//! IRQ lending: a VM lends a hardware IRQ bound in its VIC (VM_IRQ_LEND), the borrower binds
//! it at a vIRQ of its own (VM_IRQ_ACCEPT) and releases it, the owner reclaims it, and
//! VM_IRQ_NOTIFY makes the notifications.

use alloc::vec::Vec;

use wurley_abi::rm::irq::{
    IRQ_ACCEPT_ANY_VIRQ, IRQ_NOTIFY_FLAG_ACCEPTED, IRQ_NOTIFY_FLAG_LENT, IRQ_NOTIFY_FLAG_RELEASED,
    IrqAcceptRequest, IrqHandle, IrqLendRequest, IrqLentNotification, IrqNotifyRequest,
};
use wurley_abi::rm::{RmError, ids};
use wurley_abi::{CapId, VmId};

use super::{Gunyah, encode, rm_error};
use crate::calls::Hypercalls;
use crate::hyp::Notice;

/// A hardware IRQ lent by its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LentIrq {
    handle: u32,
    owner: VmId,
    owner_virq: u32,
    borrower: VmId,
    label: u32,
    hwirq: CapId,
    accepted: Option<u32>,
}

impl<C: Hypercalls> Gunyah<C> {
    /// VM_IRQ_LEND: unbind the hardware IRQ `owner` has at `req.virq`, lent to the borrower.
    pub(super) fn lend_irq(&mut self, owner: VmId, req: &IrqLendRequest) -> Result<u32, RmError> {
        let &(_, _, hwirq) = self
            .hwirqs
            .iter()
            .find(|&&(v, virq, _)| v == owner && virq == req.virq)
            .ok_or(RmError::IrqInvalid)?;
        if self.irqs.iter().any(|i| i.hwirq == hwirq) {
            return Err(RmError::IrqInUse);
        }
        self.calls.hwirq_unbind(hwirq).map_err(rm_error)?;
        self.next_irq = self.next_irq.wrapping_add(1).max(1);
        let handle = self.next_irq;
        self.irqs.push(LentIrq {
            handle,
            owner,
            owner_virq: req.virq,
            borrower: req.borrower,
            label: req.label,
            hwirq,
            accepted: None,
        });
        Ok(handle)
    }

    /// VM_IRQ_ACCEPT: bind a lent IRQ at a vIRQ of the borrower's VIC.
    pub(super) fn accept_irq(
        &mut self,
        caller: VmId,
        req: &IrqAcceptRequest,
    ) -> Result<u32, RmError> {
        let irq = *self
            .irqs
            .iter()
            .find(|i| i.handle == req.handle)
            .ok_or(RmError::HandleInvalid)?;
        if irq.borrower != caller {
            return Err(RmError::Denied);
        }
        if irq.accepted.is_some() {
            return Err(RmError::IrqInUse);
        }
        let st = self.vm_mut(caller);
        let vic = st.vic;
        if !vic.is_valid() {
            return Err(RmError::IrqInvalid);
        }
        let virq = if req.virq == IRQ_ACCEPT_ANY_VIRQ {
            st.virqs.alloc()?
        } else if st.virqs.take(req.virq) {
            req.virq
        } else {
            return Err(RmError::IrqInUse);
        };
        if let Err(e) = self.calls.hwirq_bind(irq.hwirq, vic, virq) {
            self.vm_mut(caller).virqs.give(virq);
            return Err(rm_error(e));
        }
        if let Some(i) = self.irqs.iter_mut().find(|i| i.handle == req.handle) {
            i.accepted = Some(virq);
        }
        Ok(virq)
    }

    /// VM_IRQ_RELEASE (the borrower unbinds it) or VM_IRQ_RECLAIM (the owner binds it back).
    pub(super) fn release_irq(
        &mut self,
        caller: VmId,
        handle: u32,
        reclaim: bool,
    ) -> Result<(), RmError> {
        let pos = self
            .irqs
            .iter()
            .position(|i| i.handle == handle)
            .ok_or(RmError::HandleInvalid)?;
        let irq = self.irqs[pos];
        if reclaim {
            if irq.owner != caller {
                return Err(RmError::Denied);
            }
            if irq.accepted.is_some() {
                return Err(RmError::IrqInUse);
            }
            let vic = self.vm(irq.owner).map_or(CapId::INVALID, |v| v.vic);
            self.calls
                .hwirq_bind(irq.hwirq, vic, irq.owner_virq)
                .map_err(rm_error)?;
            self.irqs.remove(pos);
            return Ok(());
        }
        if irq.borrower != caller {
            return Err(RmError::Denied);
        }
        let virq = irq.accepted.ok_or(RmError::IrqReleased)?;
        self.calls.hwirq_unbind(irq.hwirq).map_err(rm_error)?;
        self.vm_mut(caller).virqs.give(virq);
        self.irqs[pos].accepted = None;
        Ok(())
    }

    /// VM_IRQ_NOTIFY: the notifications of a lent IRQ's owner or borrower.
    pub(super) fn irq_notices(
        &mut self,
        caller: VmId,
        req: &IrqNotifyRequest<'_>,
    ) -> Result<Vec<Notice>, RmError> {
        let irq = *self
            .irqs
            .iter()
            .find(|i| i.handle == req.handle)
            .ok_or(RmError::HandleInvalid)?;
        let mut out = Vec::new();
        match req.flags {
            IRQ_NOTIFY_FLAG_LENT => {
                if irq.owner != caller {
                    return Err(RmError::Denied);
                }
                let note = IrqLentNotification {
                    owner: irq.owner,
                    handle: irq.handle,
                    label: irq.label,
                };
                for v in req.vmids.iter() {
                    if v.vmid != irq.borrower {
                        return Err(RmError::ArgumentInvalid);
                    }
                    out.push(Notice {
                        target: v.vmid,
                        id: ids::NOTIFY_VM_IRQ_LENT,
                        payload: encode(&note)?,
                    });
                }
            }
            IRQ_NOTIFY_FLAG_RELEASED | IRQ_NOTIFY_FLAG_ACCEPTED => {
                if irq.borrower != caller {
                    return Err(RmError::Denied);
                }
                let id = if req.flags == IRQ_NOTIFY_FLAG_RELEASED {
                    ids::NOTIFY_VM_IRQ_RELEASED
                } else {
                    ids::NOTIFY_VM_IRQ_ACCEPTED
                };
                out.push(Notice {
                    target: irq.owner,
                    id,
                    payload: encode(&IrqHandle { handle: irq.handle })?,
                });
            }
            _ => return Err(RmError::ArgumentInvalid),
        }
        Ok(out)
    }
}

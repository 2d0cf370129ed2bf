//! IRQ lending payloads (§7.6): VM_IRQ_LEND, VM_IRQ_ACCEPT, VM_IRQ_RELEASE/RECLAIM,
//! VM_IRQ_NOTIFY and the VM_IRQ_LENT/RELEASED/ACCEPTED notifications. All lengths are exact,
//! as in the public RM. (VM_IRQ_UNMAP is left out: its wire layout is unconfirmed.)

use super::error::RmError;
use super::memparcel::VmidEntry;
use super::wire::{Decode, Encode, List, decode_exact, encode_with, list_u16_len};
use crate::types::VmId;

/// VM_IRQ_ACCEPT `virq` meaning "map it at the lender's number" (`VIRQ_INVALID`).
pub const IRQ_ACCEPT_ANY_VIRQ: u32 = 0xFFFF_FFFF;

/// VM_IRQ_NOTIFY flag: tell borrowers an IRQ was lent (carries a VMID list).
pub const IRQ_NOTIFY_FLAG_LENT: u32 = 1;
/// VM_IRQ_NOTIFY flag: tell the owner the caller released it.
pub const IRQ_NOTIFY_FLAG_RELEASED: u32 = 2;
/// VM_IRQ_NOTIFY flag: tell the owner the caller accepted it.
pub const IRQ_NOTIFY_FLAG_ACCEPTED: u32 = 4;

/// VM_IRQ_LEND: `u16 borrower_vmid, 2 pad, u32 virq, u32 label`, exactly 12 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqLendRequest {
    /// The VM allowed to accept the IRQ.
    pub borrower: VmId,
    /// The lender's VIRQ (INTID).
    pub virq: u32,
    /// Label reported to the borrower.
    pub label: u32,
}

impl Encode for IrqLendRequest {
    fn encoded_len(&self) -> usize {
        12
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 12, |w| {
            w.u16(self.borrower.0)?;
            w.zeros(2)?;
            w.u32(self.virq)?;
            w.u32(self.label)
        })
    }
}

impl Decode<'_> for IrqLendRequest {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let borrower = VmId(r.u16()?);
            r.skip(2)?;
            Ok(IrqLendRequest {
                borrower,
                virq: r.u32()?,
                label: r.u32()?,
            })
        })
    }
}

/// A payload that is one `u32` IRQ handle: the VM_IRQ_LEND reply, the VM_IRQ_RELEASE and
/// VM_IRQ_RECLAIM requests, and the VM_IRQ_RELEASED/ACCEPTED notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqHandle {
    /// The IRQ handle.
    pub handle: u32,
}

/// VM_IRQ_LEND reply: the new IRQ handle.
pub type IrqLendReply = IrqHandle;
/// VM_IRQ_RELEASE request.
pub type IrqReleaseRequest = IrqHandle;
/// VM_IRQ_RECLAIM request.
pub type IrqReclaimRequest = IrqHandle;
/// NOTIFY_VM_IRQ_RELEASED / NOTIFY_VM_IRQ_ACCEPTED (to the owner).
pub type IrqOwnerNotification = IrqHandle;

impl Encode for IrqHandle {
    fn encoded_len(&self) -> usize {
        4
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 4, |w| w.u32(self.handle))
    }
}

impl Decode<'_> for IrqHandle {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| Ok(IrqHandle { handle: r.u32()? }))
    }
}

/// VM_IRQ_ACCEPT: `u32 handle, u32 virq`, exactly 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqAcceptRequest {
    /// The IRQ handle from VM_IRQ_LENT.
    pub handle: u32,
    /// Desired VIRQ in the borrower, or [`IRQ_ACCEPT_ANY_VIRQ`].
    pub virq: u32,
}

impl Encode for IrqAcceptRequest {
    fn encoded_len(&self) -> usize {
        8
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 8, |w| {
            w.u32(self.handle)?;
            w.u32(self.virq)
        })
    }
}

impl Decode<'_> for IrqAcceptRequest {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            Ok(IrqAcceptRequest {
                handle: r.u32()?,
                virq: r.u32()?,
            })
        })
    }
}

/// VM_IRQ_ACCEPT reply: the `u32` VIRQ the IRQ was mapped at (the RM also sends it with
/// `IRQ_INUSE` when the IRQ was already accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqAcceptReply {
    /// The VIRQ in the borrower's VIC.
    pub virq: u32,
}

impl Encode for IrqAcceptReply {
    fn encoded_len(&self) -> usize {
        4
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 4, |w| w.u32(self.virq))
    }
}

impl Decode<'_> for IrqAcceptReply {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| Ok(IrqAcceptReply { virq: r.u32()? }))
    }
}

/// VM_IRQ_NOTIFY: `u32 handle, u32 flags`; when the LENT bit is set a VMID section follows
/// (`u16 n, 2 pad, n × {u16 vmid, 2 pad}`), otherwise nothing: exactly 8 or `12 + 4n` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqNotifyRequest<'a> {
    /// The IRQ handle.
    pub handle: u32,
    /// `IRQ_NOTIFY_FLAG_*`.
    pub flags: u32,
    /// Borrowers to notify (LENT only; empty otherwise).
    pub vmids: List<'a, VmidEntry>,
}

impl IrqNotifyRequest<'_> {
    const fn has_vmids(flags: u32) -> bool {
        flags & IRQ_NOTIFY_FLAG_LENT != 0
    }
}

impl Encode for IrqNotifyRequest<'_> {
    fn encoded_len(&self) -> usize {
        if Self::has_vmids(self.flags) {
            8usize.saturating_add(list_u16_len(&self.vmids))
        } else {
            8
        }
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        if !Self::has_vmids(self.flags) && !self.vmids.is_empty() {
            return Err(RmError::MsgInvalid);
        }
        encode_with(out, self.encoded_len(), |w| {
            w.u32(self.handle)?;
            w.u32(self.flags)?;
            if Self::has_vmids(self.flags) {
                w.list_u16(&self.vmids)?;
            }
            Ok(())
        })
    }
}

impl<'a> Decode<'a> for IrqNotifyRequest<'a> {
    fn decode(payload: &'a [u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let handle = r.u32()?;
            let flags = r.u32()?;
            let vmids = if Self::has_vmids(flags) {
                r.list_u16()?
            } else {
                List::empty()
            };
            Ok(IrqNotifyRequest {
                handle,
                flags,
                vmids,
            })
        })
    }
}

/// NOTIFY_VM_IRQ_LENT (to the borrower): `u16 owner_vmid, 2 pad, u32 handle, u32 label`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqLentNotification {
    /// The lender.
    pub owner: VmId,
    /// The IRQ handle to accept.
    pub handle: u32,
    /// The lender's label.
    pub label: u32,
}

impl Encode for IrqLentNotification {
    fn encoded_len(&self) -> usize {
        12
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 12, |w| {
            w.u16(self.owner.0)?;
            w.zeros(2)?;
            w.u32(self.handle)?;
            w.u32(self.label)
        })
    }
}

impl Decode<'_> for IrqLentNotification {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let owner = VmId(r.u16()?);
            r.skip(2)?;
            Ok(IrqLentNotification {
                owner,
                handle: r.u32()?,
                label: r.u32()?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rm::wire::test_util::{round_trip, round_trip_borrowed};

    #[test]
    fn fixed_payloads() {
        let lend = IrqLendRequest {
            borrower: VmId(0x80),
            virq: 40,
            label: 7,
        };
        assert_eq!(round_trip(&lend), 12);
        let mut buf = [0u8; 12];
        assert_eq!(lend.encode(&mut buf), Ok(12));
        assert_eq!(buf, [0x80, 0, 0, 0, 40, 0, 0, 0, 7, 0, 0, 0]);
        assert_eq!(round_trip(&IrqHandle { handle: 3 }), 4);
        assert_eq!(
            round_trip(&IrqAcceptRequest {
                handle: 3,
                virq: IRQ_ACCEPT_ANY_VIRQ
            }),
            8
        );
        assert_eq!(round_trip(&IrqAcceptReply { virq: 41 }), 4);
        assert_eq!(
            round_trip(&IrqLentNotification {
                owner: VmId(3),
                handle: 3,
                label: 7
            }),
            12
        );
    }

    #[test]
    fn notify_request() {
        let vmids = [VmidEntry { vmid: VmId(0x80) }];
        let lent = IrqNotifyRequest {
            handle: 3,
            flags: IRQ_NOTIFY_FLAG_LENT,
            vmids: List::from_slice(&vmids),
        };
        let mut buf = [0u8; 32];
        assert_eq!(round_trip_borrowed(&lent, &mut buf), 16);
        let mut bad = buf;
        bad[8] = 2;
        assert_eq!(
            IrqNotifyRequest::decode(&bad[..16]),
            Err(RmError::MsgInvalid)
        );
        // Without the LENT bit the request is exactly 8 bytes.
        for flags in [IRQ_NOTIFY_FLAG_RELEASED, IRQ_NOTIFY_FLAG_ACCEPTED] {
            let req = IrqNotifyRequest {
                handle: 3,
                flags,
                vmids: List::empty(),
            };
            let mut buf = [0u8; 32];
            assert_eq!(round_trip_borrowed(&req, &mut buf), 8);
            let with_list = IrqNotifyRequest {
                vmids: List::from_slice(&vmids),
                ..req
            };
            assert_eq!(with_list.encode(&mut buf), Err(RmError::MsgInvalid));
        }
    }
}

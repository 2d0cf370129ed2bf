//! Memory-parcel payloads (§7.6): the list elements (ACL, SGL, attribute and VMID entries),
//! MEM_LEND/SHARE/DONATE, MEM_APPEND, MEM_RELEASE/RECLAIM, MEM_ACCEPT (request and reply),
//! MEM_NOTIFY, and the MEM_SHARED, MEM_RELEASED/ACCEPTED and MEM_RECALL notifications.
//!
//! Every list section is `u16 count, u16 reserved, count × entry`; every count is checked
//! against the payload length, and parsed lists borrow the payload ([`List`]). Type, flag and
//! rights bytes are kept raw: judging them is the server's job (`ARGUMENT_INVALID`).

use super::error::RmError;
use super::wire::{
    Decode, Encode, List, WireEntry, count_u16, decode_exact, encode_with, list_u16_len, wire_enum,
};
use crate::types::VmId;

/// The invalid memparcel handle (`MEMPARCEL_INVALID_HANDLE`).
pub const MEM_HANDLE_INVALID: u32 = 0xFFFF_FFFF;

/// Most SGL entries Linux puts in one MEM_LEND/SHARE/APPEND message.
pub const LINUX_MAX_MEM_ENTRIES: usize = 512;

wire_enum! {
    /// Memparcel memory type.
    MemType: u8 {
        /// Normal memory.
        Normal = 0,
        /// Device (IO) memory.
        Io = 1,
    }
}

wire_enum! {
    /// How a memparcel was created (MEM_ACCEPT and MEM_SHARED `trans_type`).
    TransType: u8 {
        /// MEM_DONATE.
        Donate = 0,
        /// MEM_LEND.
        Lend = 1,
        /// MEM_SHARE.
        Share = 2,
    }
}

wire_enum! {
    /// Per-VM memory attribute (attribute entries).
    MemAttr: u16 {
        /// Normal (default for normal memory).
        Normal = 0,
        /// Device (default for IO memory).
        Device = 1,
        /// Normal non-cacheable.
        Uncached = 2,
        /// Normal write-back cacheable.
        Cached = 3,
    }
}

/// ACL right: execute.
pub const MEM_RIGHTS_X: u8 = 1;
/// ACL right: write.
pub const MEM_RIGHTS_W: u8 = 2;
/// ACL right: read.
pub const MEM_RIGHTS_R: u8 = 4;
/// ACL rights: read + execute.
pub const MEM_RIGHTS_RX: u8 = MEM_RIGHTS_R | MEM_RIGHTS_X;
/// ACL rights: read + write.
pub const MEM_RIGHTS_RW: u8 = MEM_RIGHTS_R | MEM_RIGHTS_W;
/// ACL rights: read + write + execute.
pub const MEM_RIGHTS_RWX: u8 = MEM_RIGHTS_RW | MEM_RIGHTS_X;

/// MEM_LEND/SHARE/DONATE flag: zero the memory when creating the parcel.
pub const MEM_CREATE_FLAG_SANITIZE: u8 = 1;
/// MEM_LEND/SHARE/DONATE flag: more SGL entries follow in MEM_APPEND messages.
pub const MEM_CREATE_FLAG_APPEND: u8 = 2;
/// MEM_APPEND flag: this is the last chunk (RM "DONE", Linux "END").
pub const MEM_APPEND_FLAG_END: u8 = 1;
/// MEM_RELEASE / MEM_RECLAIM flag: zero the memory.
pub const MEM_RELEASE_FLAG_SANITIZE: u8 = 1;
/// MEM_ACCEPT flag: fail unless the parcel was sanitized at creation.
pub const MEM_ACCEPT_FLAG_VALIDATE_SANITIZED: u8 = 1;
/// MEM_ACCEPT flag: fail unless the ACL and attributes match the request's.
pub const MEM_ACCEPT_FLAG_VALIDATE_ACL_ATTR: u8 = 2;
/// MEM_ACCEPT flag: fail unless the label matches.
pub const MEM_ACCEPT_FLAG_VALIDATE_LABEL: u8 = 4;
/// MEM_ACCEPT flag: map into `map_vmid` rather than the caller (the public RM denies it).
pub const MEM_ACCEPT_FLAG_MAP_OTHER: u8 = 8;
/// MEM_ACCEPT flag: map all regions contiguously.
pub const MEM_ACCEPT_FLAG_MAP_CONTIGUOUS: u8 = 16;
/// MEM_ACCEPT flag: zero the memory on release.
pub const MEM_ACCEPT_FLAG_SANITIZE: u8 = 32;
/// MEM_ACCEPT flag: last (only) accept message; required by the public RM.
pub const MEM_ACCEPT_FLAG_DONE: u8 = 128;
/// MEM_ACCEPT reply flag: the SGL was truncated.
pub const MEM_ACCEPT_REPLY_FLAG_INCOMPLETE: u8 = 1;
/// MEM_NOTIFY flag: notify borrowers the parcel is shared (carries a VMID list).
pub const MEM_NOTIFY_FLAG_SHARED: u8 = 1;
/// MEM_NOTIFY flag: tell the owner the caller released it.
pub const MEM_NOTIFY_FLAG_RELEASED: u8 = 2;
/// MEM_NOTIFY flag: tell the owner the caller accepted it.
pub const MEM_NOTIFY_FLAG_ACCEPTED: u8 = 4;
/// MEM_NOTIFY flag: ask borrowers to give it back (carries a VMID list).
pub const MEM_NOTIFY_FLAG_RECALL: u8 = 8;

/// ACL entry: `u16 vmid, u8 rights, u8 res`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclEntry {
    /// The VM granted access.
    pub vmid: VmId,
    /// `MEM_RIGHTS_*` bits.
    pub rights: u8,
}

impl WireEntry for AclEntry {
    const SIZE: usize = 4;

    fn read(bytes: &[u8]) -> Result<Self, RmError> {
        decode_exact(bytes, |r| {
            let vmid = VmId(r.u16()?);
            let rights = r.u8()?;
            r.skip(1)?;
            Ok(AclEntry { vmid, rights })
        })
    }

    fn write(&self, out: &mut [u8]) -> Result<(), RmError> {
        encode_with(out, Self::SIZE, |w| {
            w.u16(self.vmid.0)?;
            w.u8(self.rights)?;
            w.u8(0)
        })
        .map(|_| ())
    }
}

/// SGL (memory) entry: `u64 ipa, u64 size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SglEntry {
    /// Start address in the owner's (or, in replies, the acceptor's) IPA space.
    pub ipa: u64,
    /// Size in bytes.
    pub size: u64,
}

impl WireEntry for SglEntry {
    const SIZE: usize = 16;

    fn read(bytes: &[u8]) -> Result<Self, RmError> {
        decode_exact(bytes, |r| {
            Ok(SglEntry {
                ipa: r.u64()?,
                size: r.u64()?,
            })
        })
    }

    fn write(&self, out: &mut [u8]) -> Result<(), RmError> {
        encode_with(out, Self::SIZE, |w| {
            w.u64(self.ipa)?;
            w.u64(self.size)
        })
        .map(|_| ())
    }
}

/// Attribute entry: `u16 attr, u16 vmid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttrEntry {
    /// Raw [`MemAttr`].
    pub attr: u16,
    /// The VM it applies to.
    pub vmid: VmId,
}

impl WireEntry for AttrEntry {
    const SIZE: usize = 4;

    fn read(bytes: &[u8]) -> Result<Self, RmError> {
        decode_exact(bytes, |r| {
            Ok(AttrEntry {
                attr: r.u16()?,
                vmid: VmId(r.u16()?),
            })
        })
    }

    fn write(&self, out: &mut [u8]) -> Result<(), RmError> {
        encode_with(out, Self::SIZE, |w| {
            w.u16(self.attr)?;
            w.u16(self.vmid.0)
        })
        .map(|_| ())
    }
}

/// VMID entry (MEM_NOTIFY, VM_IRQ_NOTIFY): `u16 vmid, u16 res`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmidEntry {
    /// The VM.
    pub vmid: VmId,
}

impl WireEntry for VmidEntry {
    const SIZE: usize = 4;

    fn read(bytes: &[u8]) -> Result<Self, RmError> {
        decode_exact(bytes, |r| {
            let vmid = VmId(r.u16()?);
            r.skip(2)?;
            Ok(VmidEntry { vmid })
        })
    }

    fn write(&self, out: &mut [u8]) -> Result<(), RmError> {
        encode_with(out, Self::SIZE, |w| {
            w.u16(self.vmid.0)?;
            w.zeros(2)
        })
        .map(|_| ())
    }
}

/// The three list sections that end MEM_LEND/SHARE/DONATE, MEM_ACCEPT and MEM_SHARED.
fn lists_len<S: WireEntry>(
    acl: &List<'_, AclEntry>,
    sgl: &List<'_, S>,
    attrs: &List<'_, AttrEntry>,
) -> usize {
    list_u16_len(acl)
        .saturating_add(list_u16_len(sgl))
        .saturating_add(list_u16_len(attrs))
}

/// MEM_LEND / MEM_SHARE / MEM_DONATE request: `u8 mem_type, u8 res, u8 flags, u8 res,
/// u32 label`, then the ACL, SGL and attribute sections (the attribute section is required;
/// Linux sends it empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemCreateRequest<'a> {
    /// Raw [`MemType`].
    pub mem_type: u8,
    /// `MEM_CREATE_FLAG_*`.
    pub flags: u8,
    /// Label the borrower can validate.
    pub label: u32,
    /// Who gets which rights.
    pub acl: List<'a, AclEntry>,
    /// The owner's memory ranges.
    pub sgl: List<'a, SglEntry>,
    /// Per-VM attributes.
    pub attrs: List<'a, AttrEntry>,
}

impl Encode for MemCreateRequest<'_> {
    fn encoded_len(&self) -> usize {
        8usize.saturating_add(lists_len(&self.acl, &self.sgl, &self.attrs))
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, self.encoded_len(), |w| {
            w.u8(self.mem_type)?;
            w.u8(0)?;
            w.u8(self.flags)?;
            w.u8(0)?;
            w.u32(self.label)?;
            w.list_u16(&self.acl)?;
            w.list_u16(&self.sgl)?;
            w.list_u16(&self.attrs)
        })
    }
}

impl<'a> Decode<'a> for MemCreateRequest<'a> {
    fn decode(payload: &'a [u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let mem_type = r.u8()?;
            r.skip(1)?;
            let flags = r.u8()?;
            r.skip(1)?;
            Ok(MemCreateRequest {
                mem_type,
                flags,
                label: r.u32()?,
                acl: r.list_u16()?,
                sgl: r.list_u16()?,
                attrs: r.list_u16()?,
            })
        })
    }
}

/// Reply to MEM_LEND/SHARE/DONATE (and MEM_QCOM_LOOKUP_SGL): the `u32` memparcel handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemHandleReply {
    /// The new memparcel's handle.
    pub handle: u32,
}

impl Encode for MemHandleReply {
    fn encoded_len(&self) -> usize {
        4
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 4, |w| w.u32(self.handle))
    }
}

impl Decode<'_> for MemHandleReply {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| Ok(MemHandleReply { handle: r.u32()? }))
    }
}

/// MEM_APPEND: `u32 handle, u8 flags, 3 res`, then an SGL section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemAppendRequest<'a> {
    /// The memparcel (created with [`MEM_CREATE_FLAG_APPEND`]).
    pub handle: u32,
    /// [`MEM_APPEND_FLAG_END`] on the last chunk.
    pub flags: u8,
    /// More ranges.
    pub sgl: List<'a, SglEntry>,
}

impl Encode for MemAppendRequest<'_> {
    fn encoded_len(&self) -> usize {
        8usize.saturating_add(list_u16_len(&self.sgl))
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, self.encoded_len(), |w| {
            w.u32(self.handle)?;
            w.u8(self.flags)?;
            w.zeros(3)?;
            w.list_u16(&self.sgl)
        })
    }
}

impl<'a> Decode<'a> for MemAppendRequest<'a> {
    fn decode(payload: &'a [u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let handle = r.u32()?;
            let flags = r.u8()?;
            r.skip(3)?;
            Ok(MemAppendRequest {
                handle,
                flags,
                sgl: r.list_u16()?,
            })
        })
    }
}

/// MEM_RELEASE and MEM_RECLAIM: `u32 handle, u8 flags, 3 res`, exactly 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemReleaseRequest {
    /// The memparcel.
    pub handle: u32,
    /// [`MEM_RELEASE_FLAG_SANITIZE`].
    pub flags: u8,
}

/// MEM_RECLAIM has the MEM_RELEASE layout.
pub type MemReclaimRequest = MemReleaseRequest;

impl Encode for MemReleaseRequest {
    fn encoded_len(&self) -> usize {
        8
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 8, |w| {
            w.u32(self.handle)?;
            w.u8(self.flags)?;
            w.zeros(3)
        })
    }
}

impl Decode<'_> for MemReleaseRequest {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let handle = r.u32()?;
            let flags = r.u8()?;
            r.skip(3)?;
            Ok(MemReleaseRequest { handle, flags })
        })
    }
}

/// MEM_ACCEPT: `u32 handle, u8 mem_type, u8 trans_type, u8 flags, u8 res, u32 label`, an ACL
/// section, an SGL section whose reserved half-word is `map_vmid`, and an attribute section.
/// An empty SGL asks the RM to choose the IPAs (returned in [`MemAcceptReply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemAcceptRequest<'a> {
    /// The memparcel.
    pub handle: u32,
    /// Raw [`MemType`] (must match the parcel's).
    pub mem_type: u8,
    /// Raw [`TransType`] (must match the parcel's).
    pub trans_type: u8,
    /// `MEM_ACCEPT_FLAG_*`.
    pub flags: u8,
    /// Label to validate with [`MEM_ACCEPT_FLAG_VALIDATE_LABEL`].
    pub label: u32,
    /// ACL to validate with [`MEM_ACCEPT_FLAG_VALIDATE_ACL_ATTR`].
    pub acl: List<'a, AclEntry>,
    /// Where to map each region (empty: RM's choice).
    pub sgl: List<'a, SglEntry>,
    /// VM to map into with [`MEM_ACCEPT_FLAG_MAP_OTHER`]; otherwise 0.
    pub map_vmid: VmId,
    /// Attributes to validate with [`MEM_ACCEPT_FLAG_VALIDATE_ACL_ATTR`].
    pub attrs: List<'a, AttrEntry>,
}

impl Encode for MemAcceptRequest<'_> {
    fn encoded_len(&self) -> usize {
        12usize.saturating_add(lists_len(&self.acl, &self.sgl, &self.attrs))
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, self.encoded_len(), |w| {
            w.u32(self.handle)?;
            w.u8(self.mem_type)?;
            w.u8(self.trans_type)?;
            w.u8(self.flags)?;
            w.u8(0)?;
            w.u32(self.label)?;
            w.list_u16(&self.acl)?;
            w.u16(count_u16(self.sgl.len())?)?;
            w.u16(self.map_vmid.0)?;
            w.list(&self.sgl)?;
            w.list_u16(&self.attrs)
        })
    }
}

impl<'a> Decode<'a> for MemAcceptRequest<'a> {
    fn decode(payload: &'a [u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let handle = r.u32()?;
            let mem_type = r.u8()?;
            let trans_type = r.u8()?;
            let flags = r.u8()?;
            r.skip(1)?;
            let label = r.u32()?;
            let acl = r.list_u16()?;
            let n_sgl = r.u16()?;
            let map_vmid = VmId(r.u16()?);
            let sgl = r.list(usize::from(n_sgl))?;
            Ok(MemAcceptRequest {
                handle,
                mem_type,
                trans_type,
                flags,
                label,
                acl,
                sgl,
                map_vmid,
                attrs: r.list_u16()?,
            })
        })
    }
}

/// MEM_ACCEPT reply when the RM chose the IPAs: `u16 n_sgl, u8 flags, u8 res`, then the SGL
/// of where each region was mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemAcceptReply<'a> {
    /// [`MEM_ACCEPT_REPLY_FLAG_INCOMPLETE`].
    pub flags: u8,
    /// The mappings.
    pub sgl: List<'a, SglEntry>,
}

impl Encode for MemAcceptReply<'_> {
    fn encoded_len(&self) -> usize {
        list_u16_len(&self.sgl)
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, self.encoded_len(), |w| {
            w.u16(count_u16(self.sgl.len())?)?;
            w.u8(self.flags)?;
            w.u8(0)?;
            w.list(&self.sgl)
        })
    }
}

impl<'a> Decode<'a> for MemAcceptReply<'a> {
    fn decode(payload: &'a [u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let n = r.u16()?;
            let flags = r.u8()?;
            r.skip(1)?;
            Ok(MemAcceptReply {
                flags,
                sgl: r.list(usize::from(n))?,
            })
        })
    }
}

/// `true` for the MEM_NOTIFY flag values that carry a VMID list (SHARED, RECALL).
const fn notify_has_vmids(flags: u8) -> bool {
    flags == MEM_NOTIFY_FLAG_SHARED || flags == MEM_NOTIFY_FLAG_RECALL
}

/// MEM_NOTIFY: `u32 handle, u8 flags, 3 res, u32 mem_info_tag`; when `flags` is exactly
/// SHARED or RECALL a VMID section follows (the VMs to notify), otherwise nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemNotifyRequest<'a> {
    /// The memparcel.
    pub handle: u32,
    /// One `MEM_NOTIFY_FLAG_*` value.
    pub flags: u8,
    /// Tag forwarded in the notifications.
    pub mem_info_tag: u32,
    /// The VMs to notify (SHARED/RECALL only; empty otherwise).
    pub vmids: List<'a, VmidEntry>,
}

impl Encode for MemNotifyRequest<'_> {
    fn encoded_len(&self) -> usize {
        if notify_has_vmids(self.flags) {
            12usize.saturating_add(list_u16_len(&self.vmids))
        } else {
            12
        }
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        if !notify_has_vmids(self.flags) && !self.vmids.is_empty() {
            return Err(RmError::MsgInvalid);
        }
        encode_with(out, self.encoded_len(), |w| {
            w.u32(self.handle)?;
            w.u8(self.flags)?;
            w.zeros(3)?;
            w.u32(self.mem_info_tag)?;
            if notify_has_vmids(self.flags) {
                w.list_u16(&self.vmids)?;
            }
            Ok(())
        })
    }
}

impl<'a> Decode<'a> for MemNotifyRequest<'a> {
    fn decode(payload: &'a [u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let handle = r.u32()?;
            let flags = r.u8()?;
            r.skip(3)?;
            let mem_info_tag = r.u32()?;
            let vmids = if notify_has_vmids(flags) {
                r.list_u16()?
            } else {
                List::empty()
            };
            Ok(MemNotifyRequest {
                handle,
                flags,
                mem_info_tag,
                vmids,
            })
        })
    }
}

/// NOTIFY_MEM_SHARED: `u32 handle, u8 mem_type, u8 trans_type, u8 flags, u8 res,
/// u16 owner_vmid, 2 res, u32 label, u32 mem_info_tag`, an ACL section, a section of region
/// **sizes** (`u16 n, u16 res, n × u64` — the public RM does not reveal the owner's IPAs; the
/// acceptor picks or is given them in MEM_ACCEPT), and an attribute section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemSharedNotification<'a> {
    /// The memparcel.
    pub handle: u32,
    /// Raw [`MemType`].
    pub mem_type: u8,
    /// Raw [`TransType`].
    pub trans_type: u8,
    /// Bit 0: sanitized at creation.
    pub flags: u8,
    /// The parcel's owner.
    pub owner: VmId,
    /// The parcel's label.
    pub label: u32,
    /// The tag from MEM_NOTIFY.
    pub mem_info_tag: u32,
    /// The parcel's ACL.
    pub acl: List<'a, AclEntry>,
    /// Size of each region.
    pub sizes: List<'a, u64>,
    /// The parcel's attributes.
    pub attrs: List<'a, AttrEntry>,
}

impl Encode for MemSharedNotification<'_> {
    fn encoded_len(&self) -> usize {
        20usize.saturating_add(lists_len(&self.acl, &self.sizes, &self.attrs))
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, self.encoded_len(), |w| {
            w.u32(self.handle)?;
            w.u8(self.mem_type)?;
            w.u8(self.trans_type)?;
            w.u8(self.flags)?;
            w.u8(0)?;
            w.u16(self.owner.0)?;
            w.zeros(2)?;
            w.u32(self.label)?;
            w.u32(self.mem_info_tag)?;
            w.list_u16(&self.acl)?;
            w.list_u16(&self.sizes)?;
            w.list_u16(&self.attrs)
        })
    }
}

impl<'a> Decode<'a> for MemSharedNotification<'a> {
    fn decode(payload: &'a [u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let handle = r.u32()?;
            let mem_type = r.u8()?;
            let trans_type = r.u8()?;
            let flags = r.u8()?;
            r.skip(1)?;
            let owner = VmId(r.u16()?);
            r.skip(2)?;
            Ok(MemSharedNotification {
                handle,
                mem_type,
                trans_type,
                flags,
                owner,
                label: r.u32()?,
                mem_info_tag: r.u32()?,
                acl: r.list_u16()?,
                sizes: r.list_u16()?,
                attrs: r.list_u16()?,
            })
        })
    }
}

/// NOTIFY_MEM_RELEASED and NOTIFY_MEM_ACCEPTED (to the owner): `u32 handle, u16 vmid, 2 res,
/// u32 mem_info_tag`, 12 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemOwnerNotification {
    /// The memparcel.
    pub handle: u32,
    /// The borrower that released or accepted it.
    pub vmid: VmId,
    /// The parcel's tag.
    pub mem_info_tag: u32,
}

impl Encode for MemOwnerNotification {
    fn encoded_len(&self) -> usize {
        12
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 12, |w| {
            w.u32(self.handle)?;
            w.u16(self.vmid.0)?;
            w.zeros(2)?;
            w.u32(self.mem_info_tag)
        })
    }
}

impl Decode<'_> for MemOwnerNotification {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let handle = r.u32()?;
            let vmid = VmId(r.u16()?);
            r.skip(2)?;
            Ok(MemOwnerNotification {
                handle,
                vmid,
                mem_info_tag: r.u32()?,
            })
        })
    }
}

/// NOTIFY_MEM_RECALL (to borrowers): `u32 handle, u32 mem_info_tag`, 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemRecallNotification {
    /// The memparcel.
    pub handle: u32,
    /// The parcel's tag.
    pub mem_info_tag: u32,
}

impl Encode for MemRecallNotification {
    fn encoded_len(&self) -> usize {
        8
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 8, |w| {
            w.u32(self.handle)?;
            w.u32(self.mem_info_tag)
        })
    }
}

impl Decode<'_> for MemRecallNotification {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            Ok(MemRecallNotification {
                handle: r.u32()?,
                mem_info_tag: r.u32()?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rm::wire::test_util::{round_trip, round_trip_borrowed};

    const ACL: [AclEntry; 2] = [
        AclEntry {
            vmid: VmId(3),
            rights: MEM_RIGHTS_RW,
        },
        AclEntry {
            vmid: VmId(0x80),
            rights: MEM_RIGHTS_RWX,
        },
    ];
    const SGL: [SglEntry; 3] = [
        SglEntry {
            ipa: 0x8000_0000,
            size: 0x1000,
        },
        SglEntry {
            ipa: 0x9000_0000,
            size: 0x20_0000,
        },
        SglEntry {
            ipa: 0xFFFF_FFFF_F000,
            size: 0x1000,
        },
    ];
    const ATTRS: [AttrEntry; 1] = [AttrEntry {
        attr: 3,
        vmid: VmId(0x80),
    }];

    #[test]
    fn create_request_layout() {
        // Linux's MEM_LEND for the VM config parcel: one ACL entry, no attributes.
        let req = MemCreateRequest {
            mem_type: MemType::Normal.raw(),
            flags: 0,
            label: 0x10,
            acl: List::from_slice(&ACL[1..]),
            sgl: List::from_slice(&SGL[..1]),
            attrs: List::empty(),
        };
        let mut buf = [0u8; 128];
        let n = round_trip_borrowed(&req, &mut buf);
        assert_eq!(n, 8 + 4 + 4 + 4 + 16 + 4);
        assert_eq!(
            buf[..n],
            [
                0, 0, 0, 0, 0x10, 0, 0, 0, // header
                1, 0, 0, 0, 0x80, 0, 7, 0, // ACL
                1, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, // SGL
                0, 0, 0, 0, // attributes
            ]
        );

        let full = MemCreateRequest {
            mem_type: MemType::Io.raw(),
            flags: MEM_CREATE_FLAG_SANITIZE | MEM_CREATE_FLAG_APPEND,
            label: u32::MAX,
            acl: List::from_slice(&ACL),
            sgl: List::from_slice(&SGL),
            attrs: List::from_slice(&ATTRS),
        };
        let mut buf = [0u8; 256];
        let n = round_trip_borrowed(&full, &mut buf);
        assert_eq!(n, 8 + 4 + 8 + 4 + 48 + 4 + 4);
        let parsed = MemCreateRequest::decode(&buf[..n]).expect("parse");
        assert_eq!(parsed.sgl.get(2), Some(SGL[2]));
        assert_eq!(parsed.acl.iter().map(|a| a.rights).sum::<u8>(), 13);
    }

    #[test]
    fn create_request_counts_are_checked() {
        let req = MemCreateRequest {
            mem_type: 0,
            flags: 0,
            label: 0,
            acl: List::from_slice(&ACL),
            sgl: List::from_slice(&SGL),
            attrs: List::from_slice(&ATTRS),
        };
        let mut buf = [0u8; 256];
        let n = req.encode(&mut buf).expect("encode");
        // ACL count at 8, SGL count at 8+4+8=20, attr count at 20+4+48=72.
        for (at, delta) in [(8, 1i16), (8, -1), (20, 1), (20, -1), (72, 1), (72, -1)] {
            let mut bad = buf;
            bad[at] = (i16::from(bad[at]) + delta) as u8;
            assert_eq!(
                MemCreateRequest::decode(&bad[..n]),
                Err(RmError::MsgInvalid),
                "count at {at} {delta:+}"
            );
        }
        let mut bad = buf;
        bad[8] = 0xFF;
        bad[9] = 0xFF;
        assert_eq!(
            MemCreateRequest::decode(&bad[..n]),
            Err(RmError::MsgInvalid)
        );
        // The attribute section is required.
        assert_eq!(
            MemCreateRequest::decode(&buf[..72]),
            Err(RmError::MsgInvalid)
        );
        for len in 0..n {
            assert_eq!(
                MemCreateRequest::decode(&buf[..len]),
                Err(RmError::MsgInvalid)
            );
        }
    }

    #[test]
    fn handle_release_append() {
        assert_eq!(round_trip(&MemHandleReply { handle: 42 }), 4);
        let rel = MemReleaseRequest {
            handle: 42,
            flags: MEM_RELEASE_FLAG_SANITIZE,
        };
        assert_eq!(round_trip(&rel), 8);
        let rec: MemReclaimRequest = MemReleaseRequest {
            handle: 1,
            flags: 0,
        };
        assert_eq!(round_trip(&rec), 8);

        let app = MemAppendRequest {
            handle: 42,
            flags: MEM_APPEND_FLAG_END,
            sgl: List::from_slice(&SGL),
        };
        let mut buf = [0u8; 128];
        assert_eq!(round_trip_borrowed(&app, &mut buf), 8 + 4 + 48);
        assert_eq!(buf[4..12], [1, 0, 0, 0, 3, 0, 0, 0]);
        let mut bad = buf;
        bad[8] = 4;
        assert_eq!(
            MemAppendRequest::decode(&bad[..60]),
            Err(RmError::MsgInvalid)
        );
    }

    #[test]
    fn accept_request_and_reply() {
        let req = MemAcceptRequest {
            handle: 5,
            mem_type: MemType::Normal.raw(),
            trans_type: TransType::Lend.raw(),
            flags: MEM_ACCEPT_FLAG_DONE | MEM_ACCEPT_FLAG_VALIDATE_LABEL,
            label: 0x10,
            acl: List::from_slice(&ACL[1..]),
            sgl: List::from_slice(&SGL[..2]),
            map_vmid: VmId(0x1234),
            attrs: List::from_slice(&ATTRS),
        };
        let mut buf = [0u8; 128];
        let n = round_trip_borrowed(&req, &mut buf);
        assert_eq!(n, 12 + 8 + 36 + 8);
        // SGL count and map_vmid share the SGL section header.
        assert_eq!(buf[20..24], [2, 0, 0x34, 0x12]);

        let empty = MemAcceptRequest {
            acl: List::empty(),
            sgl: List::empty(),
            attrs: List::empty(),
            map_vmid: VmId(0),
            ..req
        };
        let mut buf = [0u8; 128];
        assert_eq!(round_trip_borrowed(&empty, &mut buf), 24);

        let reply = MemAcceptReply {
            flags: MEM_ACCEPT_REPLY_FLAG_INCOMPLETE,
            sgl: List::from_slice(&SGL),
        };
        let mut buf = [0u8; 128];
        assert_eq!(round_trip_borrowed(&reply, &mut buf), 4 + 48);
        assert_eq!(buf[..4], [3, 0, 1, 0]);
    }

    #[test]
    fn notify_request() {
        let vmids = [
            VmidEntry { vmid: VmId(0x80) },
            VmidEntry { vmid: VmId(0x81) },
        ];
        for flags in [MEM_NOTIFY_FLAG_SHARED, MEM_NOTIFY_FLAG_RECALL] {
            let req = MemNotifyRequest {
                handle: 9,
                flags,
                mem_info_tag: 0xAB,
                vmids: List::from_slice(&vmids),
            };
            let mut buf = [0u8; 64];
            assert_eq!(round_trip_borrowed(&req, &mut buf), 12 + 4 + 8);
            let mut bad = buf;
            bad[12] = 3;
            assert_eq!(
                MemNotifyRequest::decode(&bad[..24]),
                Err(RmError::MsgInvalid)
            );
        }
        for flags in [MEM_NOTIFY_FLAG_RELEASED, MEM_NOTIFY_FLAG_ACCEPTED, 0, 3] {
            let req = MemNotifyRequest {
                handle: 9,
                flags,
                mem_info_tag: 0xAB,
                vmids: List::empty(),
            };
            let mut buf = [0u8; 64];
            assert_eq!(round_trip_borrowed(&req, &mut buf), 12);
            let with_list = MemNotifyRequest {
                vmids: List::from_slice(&vmids),
                ..req
            };
            assert_eq!(with_list.encode(&mut buf), Err(RmError::MsgInvalid));
        }
    }

    #[test]
    fn notifications() {
        let sizes = [0x1000u64, 0x20_0000];
        let n = MemSharedNotification {
            handle: 1,
            mem_type: MemType::Normal.raw(),
            trans_type: TransType::Share.raw(),
            flags: 1,
            owner: VmId(3),
            label: 0x10,
            mem_info_tag: 0x20,
            acl: List::from_slice(&ACL),
            sizes: List::from_slice(&sizes),
            attrs: List::empty(),
        };
        let mut buf = [0u8; 128];
        assert_eq!(round_trip_borrowed(&n, &mut buf), 20 + 12 + 20 + 4);
        assert_eq!(buf[8..12], [3, 0, 0, 0]);

        let o = MemOwnerNotification {
            handle: 1,
            vmid: VmId(0x80),
            mem_info_tag: 0x20,
        };
        assert_eq!(round_trip(&o), 12);
        assert_eq!(
            round_trip(&MemRecallNotification {
                handle: 1,
                mem_info_tag: 2
            }),
            8
        );
    }

    #[test]
    fn enums() {
        assert_eq!(MemType::from_raw(1), Some(MemType::Io));
        assert_eq!(MemType::from_raw(2), None);
        assert_eq!(TransType::from_raw(2), Some(TransType::Share));
        assert_eq!(MemAttr::from_raw(3), Some(MemAttr::Cached));
        assert_eq!(MemAttr::from_raw(4), None);
        assert_eq!(MEM_RIGHTS_RWX, 7);
    }
}

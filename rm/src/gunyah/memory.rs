//! Memparcels: lending, sharing and donating memory between VMs. MEM_LEND/SHARE/DONATE derive
//! an extent per range of the owner's memory (unmapped from the owner unless shared),
//! MEM_ACCEPT maps them into the borrower, MEM_RELEASE unmaps them, MEM_RECLAIM gives the
//! pages back to the owner, and MEM_NOTIFY makes the notifications.

use alloc::vec::Vec;

use wurley_abi::rm::memparcel::{
    AclEntry, MEM_ACCEPT_FLAG_VALIDATE_LABEL, MEM_APPEND_FLAG_END, MEM_CREATE_FLAG_APPEND,
    MEM_CREATE_FLAG_SANITIZE, MEM_NOTIFY_FLAG_ACCEPTED, MEM_NOTIFY_FLAG_RECALL,
    MEM_NOTIFY_FLAG_RELEASED, MEM_NOTIFY_FLAG_SHARED, MEM_RELEASE_FLAG_SANITIZE, MEM_RIGHTS_RWX,
    MemAcceptReply, MemAcceptRequest, MemAppendRequest, MemCreateRequest, MemNotifyRequest,
    MemOwnerNotification, MemRecallNotification, MemReleaseRequest, MemSharedNotification, MemType,
    SglEntry, TransType,
};
use wurley_abi::rm::{List, RmError, ids};
use wurley_abi::{CapId, VmId};

use super::{Gunyah, Made, Region, encode, extent_attrs, map_attrs, rm_error};
use crate::calls::{Hypercalls, Kind, Modify};
use crate::hyp::Notice;
use crate::memparcel::{PAGE, Parcels, Range};

impl<C: Hypercalls> Gunyah<C> {
    /// MEM_LEND/SHARE/DONATE: a parcel of `owner`'s memory.
    pub(super) fn create_parcel(
        &mut self,
        owner: VmId,
        trans: TransType,
        req: &MemCreateRequest<'_>,
    ) -> Result<u32, RmError> {
        let mem_type = MemType::from_raw(req.mem_type).ok_or(RmError::ArgumentInvalid)?;
        let acl: Vec<(VmId, u8)> = req.acl.iter().map(|a| (a.vmid, a.rights)).collect();
        Parcels::check_acl(owner, trans, &acl)?;
        let sgl: Vec<(u64, u64)> = req.sgl.iter().map(|e| (e.ipa, e.size)).collect();
        self.parcels.check_ranges(owner, &sgl)?;
        let ranges = self.derive(owner, trans, &sgl)?;
        let attrs: Vec<_> = req.attrs.iter().collect();
        let complete = req.flags & MEM_CREATE_FLAG_APPEND == 0;
        let sanitize = req.flags & MEM_CREATE_FLAG_SANITIZE != 0;
        let handle = self.parcels.create(
            owner, trans, mem_type, req.label, sanitize, complete, &acl, &attrs,
        )?;
        self.parcels.add_ranges(handle, &ranges)?;
        Ok(handle)
    }

    /// MEM_APPEND: more ranges for a parcel created with the APPEND flag.
    pub(super) fn append_parcel(
        &mut self,
        caller: VmId,
        req: &MemAppendRequest<'_>,
    ) -> Result<(), RmError> {
        let trans = self.parcels.check_append(req.handle, caller)?.trans;
        let sgl: Vec<(u64, u64)> = req.sgl.iter().map(|e| (e.ipa, e.size)).collect();
        self.parcels.check_ranges(caller, &sgl)?;
        let ranges = self.derive(caller, trans, &sgl)?;
        self.parcels.add_ranges(req.handle, &ranges)?;
        if req.flags & MEM_APPEND_FLAG_END != 0 {
            self.parcels.complete(req.handle)?;
        }
        Ok(())
    }

    /// MEM_ACCEPT: map the parcel into `caller`; a donation becomes its memory.
    pub(super) fn accept_parcel(
        &mut self,
        caller: VmId,
        req: &MemAcceptRequest<'_>,
    ) -> Result<Vec<u8>, RmError> {
        let trans = TransType::from_raw(req.trans_type).ok_or(RmError::ArgumentInvalid)?;
        let mem_type = MemType::from_raw(req.mem_type).ok_or(RmError::ArgumentInvalid)?;
        let label = (req.flags & MEM_ACCEPT_FLAG_VALIDATE_LABEL != 0).then_some(req.label);
        let p = self
            .parcels
            .check_accept(req.handle, caller, trans, mem_type, label)?
            .clone();
        let asp = self.vm(caller).map_or(CapId::INVALID, |v| v.addrspace);
        if !asp.is_valid() {
            return Err(RmError::MapFailed);
        }
        // Where: the owner's IPAs, one range at the base the caller gives (total size), or
        // the caller's SGL range by range (the parcel's sizes).
        let wanted: Vec<SglEntry> = req.sgl.iter().collect();
        let ipas: Vec<u64> = match wanted.as_slice() {
            [] => p.ranges.iter().map(|r| r.ipa).collect(),
            [one] if one.size == p.size() => Self::image_ipas(&p, Some(one.ipa))?,
            many if many.len() == p.ranges.len()
                && many.iter().zip(&p.ranges).all(|(w, r)| w.size == r.size) =>
            {
                many.iter().map(|w| w.ipa).collect()
            }
            _ => return Err(RmError::ArgumentInvalid),
        };
        if ipas.iter().any(|i| i % PAGE != 0) {
            return Err(RmError::ArgumentInvalid);
        }
        let rights = p.access(caller).map_or(0, |a| a.rights);
        let mut done = Vec::new();
        for (r, &ipa) in p.ranges.iter().zip(&ipas) {
            let res =
                self.calls
                    .addrspace_map(asp, r.extent, ipa, map_attrs(rights, p.mem_type), r.size);
            if let Err(e) = res {
                for &(extent, at, size) in &done {
                    let _ = self.calls.addrspace_unmap(asp, extent, at, size);
                }
                return Err(rm_error(e));
            }
            done.push((r.extent, ipa, r.size));
        }
        if trans == TransType::Donate {
            // The memory is the caller's now: it may lend it on; its end deletes the extents.
            if let Some(p) = self.parcels.remove(req.handle) {
                let st = self.vm_mut(caller);
                for (r, &ipa) in p.ranges.iter().zip(&ipas) {
                    st.regions.push(Region {
                        ipa,
                        size: r.size,
                        extent: r.extent,
                    });
                }
            }
        } else {
            self.parcels
                .set_accepted(req.handle, caller, ipas.clone())?;
        }
        let sgl: Vec<SglEntry> = p
            .ranges
            .iter()
            .zip(&ipas)
            .map(|(r, &ipa)| SglEntry { ipa, size: r.size })
            .collect();
        encode(&MemAcceptReply {
            flags: 0,
            sgl: List::from_slice(&sgl),
        })
    }

    /// MEM_RELEASE (the borrower unmaps it) or MEM_RECLAIM (the owner takes it back).
    pub(super) fn release_parcel(
        &mut self,
        caller: VmId,
        req: &MemReleaseRequest,
        reclaim: bool,
    ) -> Result<(), RmError> {
        let sanitize = req.flags & MEM_RELEASE_FLAG_SANITIZE != 0;
        if reclaim {
            self.parcels.check_reclaim(req.handle, caller)?;
            self.return_parcel(req.handle, sanitize);
            return Ok(());
        }
        self.parcels.check_release(req.handle, caller)?;
        self.unmap_accepted(req.handle, caller);
        if sanitize && let Ok(p) = self.parcels.get(req.handle) {
            for r in p.ranges.clone() {
                let _ = self.calls.memextent_modify(r.extent, Modify::Zero, r.size);
            }
        }
        Ok(())
    }

    /// MEM_NOTIFY: the notifications of a parcel's owner or borrower.
    pub(super) fn parcel_notices(
        &mut self,
        caller: VmId,
        req: &MemNotifyRequest<'_>,
    ) -> Result<Vec<Notice>, RmError> {
        let p = self.parcels.get(req.handle)?;
        let mut out = Vec::new();
        let mut push = |target, id, payload: Result<Vec<u8>, RmError>| -> Result<(), RmError> {
            out.push(Notice {
                target,
                id,
                payload: payload?,
            });
            Ok(())
        };
        match req.flags {
            MEM_NOTIFY_FLAG_SHARED => {
                if p.owner != caller {
                    return Err(RmError::Denied);
                }
                let acl: Vec<AclEntry> = p
                    .acl
                    .iter()
                    .map(|a| AclEntry {
                        vmid: a.vmid,
                        rights: a.rights,
                    })
                    .collect();
                let sizes: Vec<u64> = p.ranges.iter().map(|r| r.size).collect();
                let note = MemSharedNotification {
                    handle: p.handle,
                    mem_type: p.mem_type as u8,
                    trans_type: p.trans as u8,
                    flags: 0,
                    owner: p.owner,
                    label: p.label,
                    mem_info_tag: req.mem_info_tag,
                    acl: List::from_slice(&acl),
                    sizes: List::from_slice(&sizes),
                    attrs: List::from_slice(&p.attrs),
                };
                for v in req.vmids.iter() {
                    if p.access(v.vmid).is_none() {
                        return Err(RmError::ArgumentInvalid);
                    }
                    push(v.vmid, ids::NOTIFY_MEM_SHARED, encode(&note))?;
                }
            }
            MEM_NOTIFY_FLAG_RELEASED | MEM_NOTIFY_FLAG_ACCEPTED => {
                if p.access(caller).is_none() {
                    return Err(RmError::Denied);
                }
                let id = if req.flags == MEM_NOTIFY_FLAG_RELEASED {
                    ids::NOTIFY_MEM_RELEASED
                } else {
                    ids::NOTIFY_MEM_ACCEPTED
                };
                let note = MemOwnerNotification {
                    handle: p.handle,
                    vmid: caller,
                    mem_info_tag: req.mem_info_tag,
                };
                push(p.owner, id, encode(&note))?;
            }
            MEM_NOTIFY_FLAG_RECALL => {
                if p.owner != caller {
                    return Err(RmError::Denied);
                }
                let note = MemRecallNotification {
                    handle: p.handle,
                    mem_info_tag: req.mem_info_tag,
                };
                for b in p.borrowers() {
                    push(b, ids::NOTIFY_MEM_RECALL, encode(&note))?;
                }
            }
            _ => return Err(RmError::ArgumentInvalid),
        }
        Ok(out)
    }

    /// Derive an extent per SGL range of `owner`'s memory; for a lend or donation, unmap it
    /// from the owner. On failure what was made is undone.
    fn derive(
        &mut self,
        owner: VmId,
        trans: TransType,
        sgl: &[(u64, u64)],
    ) -> Result<Vec<Range>, RmError> {
        let (regions, owner_as) = match self.vm(owner) {
            Some(v) => (v.regions.clone(), v.addrspace),
            None => (Vec::new(), CapId::INVALID),
        };
        let mut made = Made::default();
        let mut out = Vec::new();
        for &(ipa, size) in sgl {
            let r = self.derive_one(&regions, owner_as, trans, ipa, size, &mut made);
            match r {
                Ok(range) => out.push(range),
                Err(e) => {
                    self.undo(made, owner);
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    fn derive_one(
        &mut self,
        regions: &[Region],
        owner_as: CapId,
        trans: TransType,
        ipa: u64,
        size: u64,
        made: &mut Made,
    ) -> Result<Range, RmError> {
        let region = regions
            .iter()
            .find(|r| ipa >= r.ipa && ipa + size <= r.ipa.saturating_add(r.size))
            .ok_or(RmError::MemInvalid)?;
        let e = self.create(Kind::Memextent, made)?;
        self.calls
            .memextent_derive(
                e,
                region.extent,
                ipa - region.ipa,
                size,
                extent_attrs(MEM_RIGHTS_RWX),
            )
            .map_err(rm_error)?;
        self.activate(e)?;
        if trans != TransType::Share {
            // The child has the owner's mapping of the range (inherited at derivation);
            // removing it takes the pages away from the owner.
            self.calls
                .addrspace_unmap(owner_as, e, ipa, size)
                .map_err(rm_error)?;
        }
        Ok(Range {
            ipa,
            size,
            extent: e,
        })
    }

    /// Unmap parcel `handle` from `vmid` (which accepted it) and mark it released.
    pub(super) fn unmap_accepted(&mut self, handle: u32, vmid: VmId) {
        let Ok(ipas) = self
            .parcels
            .check_release(handle, vmid)
            .map(<[u64]>::to_vec)
        else {
            return;
        };
        let ranges = self
            .parcels
            .get(handle)
            .map(|p| p.ranges.clone())
            .unwrap_or_default();
        let asp = self.vm(vmid).map_or(CapId::INVALID, |v| v.addrspace);
        for (r, ipa) in ranges.iter().zip(ipas) {
            let _ = self.calls.addrspace_unmap(asp, r.extent, ipa, r.size);
        }
        let _ = self.parcels.set_released(handle, vmid);
    }

    /// Give parcel `handle`'s pages back to its owner: zero them if asked, then delete the
    /// extents (their pages return to the extent they were derived from, and the owner's
    /// mapping of that covers them again).
    pub(super) fn return_parcel(&mut self, handle: u32, sanitize: bool) {
        let Some(p) = self.parcels.remove(handle) else {
            return;
        };
        for r in &p.ranges {
            if sanitize || p.sanitize {
                let _ = self.calls.memextent_modify(r.extent, Modify::Zero, r.size);
            }
            let _ = self.calls.cspace_delete(self.rm.cspace, r.extent);
        }
    }

    /// Release what `vmid` accepted (its address space is going away or it stopped).
    pub(super) fn release_all(&mut self, vmid: VmId) {
        for h in self.parcels.accepted_by(vmid) {
            self.unmap_accepted(h, vmid);
        }
    }
}

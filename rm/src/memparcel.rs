//! Memparcel bookkeeping: what the RM knows of every parcel of memory a VM lent, shared or
//! donated (MEM_LEND / MEM_SHARE / MEM_DONATE), with no hypervisor calls: the checks every
//! MEM_* request needs and the state changes once the hypervisor did its part
//! ([`crate::gunyah`] does the calls).
//!
//! A parcel has an owner, an ACL (the VMs that may accept it, with rights), a label, a memory
//! type, and an SGL: ranges of the owner's IPAs, each backed by a memory extent the RM derived
//! from the owner's memory (the extent's cap is in the RM's cspace). Per ACL VM the parcel is
//! either not accepted (lent, shared or donated to it, or released again) or accepted, with the
//! IPA where each range is mapped in that VM.
//!
//! Rules (errors are RM error codes):
//! * LEND and DONATE: the owner is not in the ACL; DONATE has exactly one VM. SHARE may list
//!   the owner (it keeps its mapping anyway). An ACL VM appears once, with rights in RWX.
//! * The SGL's ranges are page aligned, do not overlap each other or a range of another parcel
//!   of the same owner (`MEM_INUSE`).
//! * A parcel created with the APPEND flag takes more ranges (MEM_APPEND, owner only) until one
//!   with the END flag; it cannot be accepted before (`MEM_INVALID`).
//! * MEM_ACCEPT: an ACL VM (`DENIED` otherwise), not accepted yet (`MEM_INUSE`), matching
//!   transaction and memory type (`ARGUMENT_INVALID`) and, if asked, label (`VALIDATE_FAILED`).
//! * MEM_RELEASE: a VM that accepted it (`MEM_RELEASED` otherwise).
//! * MEM_RECLAIM: the owner only (`DENIED`), and only when no VM has it accepted (`MEM_INUSE`).
//! * An unknown handle is `HANDLE_INVALID`.

use alloc::vec::Vec;

use wurley_abi::rm::RmError;
use wurley_abi::rm::memparcel::{
    AttrEntry, MEM_HANDLE_INVALID, MEM_RIGHTS_RWX, MemType, TransType,
};
use wurley_abi::{CapId, VmId};

/// Page size of every range.
pub const PAGE: u64 = 4096;

/// One range of a parcel: the owner's IPAs and the extent over them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// IPA in the owner.
    pub ipa: u64,
    /// Size in bytes.
    pub size: u64,
    /// The extent derived for it (in the RM's cspace).
    pub extent: CapId,
}

/// An ACL entry and the VM's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The VM.
    pub vmid: VmId,
    /// Its rights (`MEM_RIGHTS_*`).
    pub rights: u8,
    /// Where it mapped each range, once it accepted the parcel; `None` while it has not (or
    /// released it).
    pub accepted: Option<Vec<u64>>,
}

/// One parcel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parcel {
    /// Its handle.
    pub handle: u32,
    /// The VM whose memory it is.
    pub owner: VmId,
    /// Lent, shared or donated.
    pub trans: TransType,
    /// Normal memory or I/O.
    pub mem_type: MemType,
    /// The owner's label.
    pub label: u32,
    /// Zero it before it goes back to the owner.
    pub sanitize: bool,
    /// False while MEM_APPEND may still add ranges.
    pub complete: bool,
    /// Who may accept it.
    pub acl: Vec<Access>,
    /// Memory attributes per VM, as given.
    pub attrs: Vec<AttrEntry>,
    /// Its ranges, in SGL order.
    pub ranges: Vec<Range>,
}

impl Parcel {
    /// Total size.
    pub fn size(&self) -> u64 {
        self.ranges.iter().map(|r| r.size).sum()
    }

    /// `vmid`'s ACL entry.
    pub fn access(&self, vmid: VmId) -> Option<&Access> {
        self.acl.iter().find(|a| a.vmid == vmid)
    }

    /// The VMs that have it accepted.
    pub fn borrowers(&self) -> impl Iterator<Item = VmId> + '_ {
        self.acl
            .iter()
            .filter(|a| a.accepted.is_some())
            .map(|a| a.vmid)
    }

    /// The range holding byte `offset` of the parcel (ranges in SGL order) and the offset in
    /// it.
    pub fn locate(&self, offset: u64) -> Option<(usize, u64)> {
        let mut start = 0u64;
        for (i, r) in self.ranges.iter().enumerate() {
            if offset >= start && offset - start < r.size {
                return Some((i, offset - start));
            }
            start = start.checked_add(r.size)?;
        }
        None
    }
}

/// Every parcel.
#[derive(Debug, Clone, Default)]
pub struct Parcels {
    parcels: Vec<Parcel>,
    next: u32,
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
}

impl Parcels {
    /// No parcels.
    pub fn new() -> Parcels {
        Parcels::default()
    }

    /// Every parcel.
    pub fn iter(&self) -> impl Iterator<Item = &Parcel> {
        self.parcels.iter()
    }

    /// Parcel `handle`.
    pub fn get(&self, handle: u32) -> Result<&Parcel, RmError> {
        self.parcels
            .iter()
            .find(|p| p.handle == handle)
            .ok_or(RmError::HandleInvalid)
    }

    fn get_mut(&mut self, handle: u32) -> Result<&mut Parcel, RmError> {
        self.parcels
            .iter_mut()
            .find(|p| p.handle == handle)
            .ok_or(RmError::HandleInvalid)
    }

    /// Check a new parcel's ACL for `trans` by `owner`: `ARGUMENT_INVALID` for an empty ACL, a
    /// VM twice, rights outside RWX or none, the owner in a LEND or DONATE, a DONATE to more
    /// than one VM.
    pub fn check_acl(owner: VmId, trans: TransType, acl: &[(VmId, u8)]) -> Result<(), RmError> {
        if acl.is_empty() {
            return Err(RmError::ArgumentInvalid);
        }
        for (i, &(vmid, rights)) in acl.iter().enumerate() {
            if rights == 0 || rights & !MEM_RIGHTS_RWX != 0 {
                return Err(RmError::ArgumentInvalid);
            }
            if acl.iter().take(i).any(|&(v, _)| v == vmid) {
                return Err(RmError::ArgumentInvalid);
            }
            if vmid == owner && trans != TransType::Share {
                return Err(RmError::ArgumentInvalid);
            }
        }
        if trans == TransType::Donate && acl.len() != 1 {
            return Err(RmError::ArgumentInvalid);
        }
        Ok(())
    }

    /// Check ranges `sgl` (IPA, size) that `owner` wants to add to a parcel: page aligned,
    /// non-empty, not wrapping (`ARGUMENT_INVALID`); not overlapping each other or any range of
    /// another parcel `owner` has (`MEM_INUSE`).
    pub fn check_ranges(&self, owner: VmId, sgl: &[(u64, u64)]) -> Result<(), RmError> {
        for (i, &(ipa, size)) in sgl.iter().enumerate() {
            if size == 0 || ipa % PAGE != 0 || size % PAGE != 0 || ipa.checked_add(size).is_none() {
                return Err(RmError::ArgumentInvalid);
            }
            if sgl.iter().take(i).any(|&o| overlaps(o, (ipa, size))) {
                return Err(RmError::MemInUse);
            }
            let taken = self
                .parcels
                .iter()
                .filter(|p| p.owner == owner)
                .flat_map(|p| p.ranges.iter())
                .any(|r| overlaps((r.ipa, r.size), (ipa, size)));
            if taken {
                return Err(RmError::MemInUse);
            }
        }
        Ok(())
    }

    /// Record a new parcel (its ranges added with [`Parcels::add_ranges`]); returns its handle.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        owner: VmId,
        trans: TransType,
        mem_type: MemType,
        label: u32,
        sanitize: bool,
        complete: bool,
        acl: &[(VmId, u8)],
        attrs: &[AttrEntry],
    ) -> Result<u32, RmError> {
        Self::check_acl(owner, trans, acl)?;
        let handle = self.free_handle()?;
        self.parcels.push(Parcel {
            handle,
            owner,
            trans,
            mem_type,
            label,
            sanitize,
            complete,
            acl: acl
                .iter()
                .map(|&(vmid, rights)| Access {
                    vmid,
                    rights,
                    accepted: None,
                })
                .collect(),
            attrs: attrs.to_vec(),
            ranges: Vec::new(),
        });
        Ok(handle)
    }

    fn free_handle(&mut self) -> Result<u32, RmError> {
        for _ in 0..=self.parcels.len() {
            self.next = self.next.wrapping_add(1);
            if self.next == 0 || self.next == MEM_HANDLE_INVALID {
                self.next = 1;
            }
            let h = self.next;
            if !self.parcels.iter().any(|p| p.handle == h) {
                return Ok(h);
            }
        }
        Err(RmError::NoResource)
    }

    /// Add ranges to parcel `handle` (checked with [`Parcels::check_ranges`]).
    pub fn add_ranges(&mut self, handle: u32, ranges: &[Range]) -> Result<(), RmError> {
        self.get_mut(handle)?.ranges.extend_from_slice(ranges);
        Ok(())
    }

    /// MEM_APPEND by `caller`: the owner's (`DENIED`), still taking ranges
    /// (`ARGUMENT_INVALID`).
    pub fn check_append(&self, handle: u32, caller: VmId) -> Result<&Parcel, RmError> {
        let p = self.get(handle)?;
        if p.owner != caller {
            return Err(RmError::Denied);
        }
        if p.complete {
            return Err(RmError::ArgumentInvalid);
        }
        Ok(p)
    }

    /// The last MEM_APPEND came.
    pub fn complete(&mut self, handle: u32) -> Result<(), RmError> {
        self.get_mut(handle)?.complete = true;
        Ok(())
    }

    /// MEM_ACCEPT by `caller` of a parcel it believes is `trans` of `mem_type`, with `label`
    /// if it asks for the label to be checked.
    pub fn check_accept(
        &self,
        handle: u32,
        caller: VmId,
        trans: TransType,
        mem_type: MemType,
        label: Option<u32>,
    ) -> Result<&Parcel, RmError> {
        let p = self.get(handle)?;
        let a = p.access(caller).ok_or(RmError::Denied)?;
        if a.accepted.is_some() {
            return Err(RmError::MemInUse);
        }
        if !p.complete || p.ranges.is_empty() {
            return Err(RmError::MemInvalid);
        }
        if p.trans != trans || p.mem_type != mem_type {
            return Err(RmError::ArgumentInvalid);
        }
        if label.is_some_and(|l| l != p.label) {
            return Err(RmError::ValidateFailed);
        }
        Ok(p)
    }

    /// `vmid` mapped the parcel's ranges at `ipas`.
    pub fn set_accepted(&mut self, handle: u32, vmid: VmId, ipas: Vec<u64>) -> Result<(), RmError> {
        let p = self.get_mut(handle)?;
        let a = p
            .acl
            .iter_mut()
            .find(|a| a.vmid == vmid)
            .ok_or(RmError::Denied)?;
        a.accepted = Some(ipas);
        Ok(())
    }

    /// MEM_RELEASE by `caller`: it must have the parcel accepted (`MEM_RELEASED`); returns the
    /// IPAs where it mapped each range.
    pub fn check_release(&self, handle: u32, caller: VmId) -> Result<&[u64], RmError> {
        let p = self.get(handle)?;
        let a = p.access(caller).ok_or(RmError::Denied)?;
        a.accepted.as_deref().ok_or(RmError::MemReleased)
    }

    /// `vmid` no longer has the parcel mapped.
    pub fn set_released(&mut self, handle: u32, vmid: VmId) -> Result<(), RmError> {
        let p = self.get_mut(handle)?;
        if let Some(a) = p.acl.iter_mut().find(|a| a.vmid == vmid) {
            a.accepted = None;
        }
        Ok(())
    }

    /// MEM_RECLAIM by `caller`: the owner's (`DENIED`), accepted by nobody (`MEM_INUSE`).
    pub fn check_reclaim(&self, handle: u32, caller: VmId) -> Result<&Parcel, RmError> {
        let p = self.get(handle)?;
        if p.owner != caller {
            return Err(RmError::Denied);
        }
        if p.borrowers().next().is_some() {
            return Err(RmError::MemInUse);
        }
        Ok(p)
    }

    /// Forget parcel `handle`.
    pub fn remove(&mut self, handle: u32) -> Option<Parcel> {
        let i = self.parcels.iter().position(|p| p.handle == handle)?;
        Some(self.parcels.remove(i))
    }

    /// Handles of the parcels `vmid` has accepted.
    pub fn accepted_by(&self, vmid: VmId) -> Vec<u32> {
        self.parcels
            .iter()
            .filter(|p| p.borrowers().any(|b| b == vmid))
            .map(|p| p.handle)
            .collect()
    }

    /// Handles of the parcels of `vmid`'s memory.
    pub fn owned_by(&self, vmid: VmId) -> Vec<u32> {
        self.parcels
            .iter()
            .filter(|p| p.owner == vmid)
            .map(|p| p.handle)
            .collect()
    }

    /// Handles of the parcels lent to `vmid` alone (what its destruction gives back to their
    /// owners).
    pub fn lent_to(&self, vmid: VmId) -> Vec<u32> {
        self.parcels
            .iter()
            .filter(|p| p.trans == TransType::Lend && p.acl.len() == 1)
            .filter(|p| p.acl.iter().all(|a| a.vmid == vmid))
            .map(|p| p.handle)
            .collect()
    }
}

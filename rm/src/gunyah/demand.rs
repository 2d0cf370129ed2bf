//! Demand paging: VM_SET_DEMAND_PAGING's ranges and VM_INIT's demand-paging step, which gives
//! the owner the VM's address space and, per range, a guest-private and a host-private extent
//! over its own pages there, which it donates between (see `Gunyah::demand_paging` and
//! docs/rm.md).

use alloc::vec::Vec;

use wurley_abi::rights::{AddrspaceRights, MemextentRights};
use wurley_abi::rm::RmError;
use wurley_abi::rm::memparcel::{MEM_RIGHTS_RWX, MemType, SglEntry};
use wurley_abi::rm::resource::{
    ADDRSPACE_LABEL, HypResource, MEM_EXTENT_LABEL_GUEST_PRIVATE, MEM_EXTENT_LABEL_HOST_PRIVATE,
    ResourceType,
};
use wurley_abi::{CapId, VmId};

use super::{Gunyah, MAX_DEMAND_RANGES, Made, extent_attrs, map_attrs, rm_error};
use crate::calls::{Hypercalls, Kind};
use crate::memparcel::PAGE;
use crate::vms::Resource;

/// The owner's rights on the VM's address space when the VM is demand paged (type 10):
/// Linux's `addrspace_map`/`unmap` need MAP; LOOKUP lets it ask what the VM has mapped.
const OWNER_ADDRSPACE_RIGHTS: AddrspaceRights = AddrspaceRights::MAP.union(AddrspaceRights::LOOKUP);
/// The owner's rights on a demand-paging extent (type 9): donating pages to and from it.
const OWNER_EXTENT_RIGHTS: MemextentRights = MemextentRights::DONATE;

/// An entry for `holder` (no vIRQ, base or size).
fn owner_entry(holder: VmId, t: ResourceType, partner: VmId, cap: CapId, label: u32) -> Resource {
    Resource {
        holder,
        entry: HypResource {
            resource_type: t,
            partner_vmid: partner,
            handle: 0,
            label,
            cap_id: cap.raw(),
            virq_handle: 0,
            virq: 0,
            base: 0,
            size: 0,
        },
    }
}

/// The VM's RAM for its device tree: the image parcel at `memory` and the demand-paged
/// ranges, if together they are one contiguous range; the parcel alone otherwise.
pub(super) fn memory_with(memory: (u64, u64), demand: &[(u64, u64)]) -> (u64, u64) {
    let mut all: Vec<(u64, u64)> = demand.to_vec();
    all.push(memory);
    all.sort_unstable();
    let Some((&first, rest)) = all.split_first() else {
        return memory;
    };
    let mut hull = first;
    for &(ipa, size) in rest {
        if ipa != hull.0.saturating_add(hull.1) {
            return memory;
        }
        hull.1 = hull.1.saturating_add(size);
    }
    hull
}

impl<C: Hypercalls> Gunyah<C> {
    /// At most [`MAX_DEMAND_RANGES`], page aligned, non-empty, not overlapping
    /// (`ARGUMENT_INVALID`), each inside one region of the owner's RAM (`MEM_INVALID`): the
    /// owner's pages at those IPAs are what it will provide.
    pub(super) fn set_demand_paging(
        &mut self,
        owner: VmId,
        vmid: VmId,
        ranges: &[SglEntry],
    ) -> Result<(), RmError> {
        if ranges.len() > MAX_DEMAND_RANGES {
            return Err(RmError::ArgumentInvalid);
        }
        let mut list: Vec<(u64, u64)> = ranges.iter().map(|r| (r.ipa, r.size)).collect();
        list.sort_unstable();
        let regions = self
            .vm(owner)
            .map(|v| v.regions.clone())
            .unwrap_or_default();
        for (i, &(ipa, size)) in list.iter().enumerate() {
            let end = ipa.checked_add(size).ok_or(RmError::ArgumentInvalid)?;
            if size == 0 || ipa % PAGE != 0 || size % PAGE != 0 {
                return Err(RmError::ArgumentInvalid);
            }
            if list.get(i + 1).is_some_and(|&(next, _)| next < end) {
                return Err(RmError::ArgumentInvalid);
            }
            if !regions
                .iter()
                .any(|r| ipa >= r.ipa && end <= r.ipa.saturating_add(r.size))
            {
                return Err(RmError::MemInvalid);
            }
        }
        self.vm_mut(vmid).demand = list;
        Ok(())
    }

    /// VM_INIT's demand-paging step for VM `vmid` (address space `asp`, the image parcel at
    /// `memory` in it): nothing if VM_SET_DEMAND_PAGING gave no range. Otherwise the owner
    /// gets a cap to `asp` (type 10) and, per range, the RM makes two extents over the owner's
    /// pages at those IPAs: `guest`, derived from the owner's RAM extent, and `host`, derived
    /// from `guest` over all of it, which takes every page (and keeps the owner's mapping).
    /// `guest` loses its owner mapping and is mapped in the VM at the range's IPAs: it owns no
    /// page yet, so the VM sees nothing there. The owner gets both with DONATE (type 9,
    /// labels guest-private and host-private, base and size the range): a donation
    /// `host` -> `guest` (to_parent) moves pages from the owner to the VM, `guest` -> `host`
    /// (to_child) moves them back.
    pub(super) fn demand_paging(
        &mut self,
        vmid: VmId,
        owner: VmId,
        asp: CapId,
        memory: (u64, u64),
        made: &mut Made,
    ) -> Result<Vec<Resource>, RmError> {
        let demand = self.vm(vmid).map(|v| v.demand.clone()).unwrap_or_default();
        if demand.is_empty() {
            return Ok(Vec::new());
        }
        let (owner_cs, owner_as, regions) = self
            .vm(owner)
            .map_or((CapId::INVALID, CapId::INVALID, Vec::new()), |v| {
                (v.cspace, v.addrspace, v.regions.clone())
            });
        if !owner_cs.is_valid() || !owner_as.is_valid() {
            return Err(RmError::ArgumentInvalid);
        }
        let parcel_end = memory.0.saturating_add(memory.1);
        if demand
            .iter()
            .any(|&(ipa, size)| ipa < parcel_end && memory.0 < ipa.saturating_add(size))
        {
            return Err(RmError::ArgumentInvalid);
        }
        let mut out = Vec::new();
        let a = self.copy(asp, owner_cs, OWNER_ADDRSPACE_RIGHTS.bits(), made)?;
        out.push(owner_entry(
            owner,
            ResourceType::AddrSpace,
            vmid,
            a,
            ADDRSPACE_LABEL,
        ));
        let attrs = extent_attrs(MEM_RIGHTS_RWX);
        for (i, &(ipa, size)) in demand.iter().enumerate() {
            let region = regions
                .iter()
                .find(|r| ipa >= r.ipa && ipa.saturating_add(size) <= r.ipa.saturating_add(r.size))
                .copied()
                .ok_or(RmError::MemInvalid)?;
            let guest = self.create(Kind::Memextent, made)?;
            self.calls
                .memextent_derive(guest, region.extent, ipa - region.ipa, size, attrs)
                .map_err(rm_error)?;
            self.activate(guest)?;
            let host = self.create(Kind::Memextent, made)?;
            self.calls
                .memextent_derive(host, guest, 0, size, attrs)
                .map_err(rm_error)?;
            self.activate(host)?;
            self.calls
                .addrspace_unmap(owner_as, guest, ipa, size)
                .map_err(rm_error)?;
            self.calls
                .addrspace_map(
                    asp,
                    guest,
                    ipa,
                    map_attrs(MEM_RIGHTS_RWX, MemType::Normal),
                    size,
                )
                .map_err(rm_error)?;
            made.maps.push((asp, guest, ipa, size));
            let g = self.copy(guest, owner_cs, OWNER_EXTENT_RIGHTS.bits(), made)?;
            let h = self.copy(host, owner_cs, OWNER_EXTENT_RIGHTS.bits(), made)?;
            for (cap, label) in [
                (g, MEM_EXTENT_LABEL_GUEST_PRIVATE),
                (h, MEM_EXTENT_LABEL_HOST_PRIVATE),
            ] {
                let mut r = owner_entry(owner, ResourceType::MemExtent, vmid, cap, label);
                r.entry.handle = i as u32;
                r.entry.base = ipa;
                r.entry.size = size;
                out.push(r);
            }
        }
        Ok(out)
    }
}

//! Who owns the physical memory a VM's stage 2 maps outside its extents. A VM's RAM is a memory
//! extent (`object::memextent`, checked against the memory database there); what the
//! hypervisor maps directly is checked here against the memory database
//! ([`crate::mm::MEMDB`]): a passed-through device window is recorded as the VM's (and refused
//! if anyone owns it), and read-only views of the hypervisor's own data (the bundle for the
//! resource manager) are checked to be the hypervisor's. So no VM, the resource manager
//! included, is ever given a page that another VM owns.

use alloc::string::String;

use crate::mm::MEMDB;
use crate::mm::addr::PhysRange;
use crate::mm::memdb::Owner;
use crate::object::addrspace::{AddrSpaceObject, Direct};

/// The memory-database owner of the direct mappings of address space `space` (by its VMID).
pub fn owner(space: &AddrSpaceObject) -> Owner {
    Owner::Vm(space.vmid().unwrap_or(0))
}

/// Record device window `window` (page aligned) as the VM's and map it at the same address.
/// `MEMDB_NOT_OWNER` if anyone owns any page of it: RAM, the hypervisor, another VM's device,
/// the root partition (a window the resource manager may make extents of).
pub fn give_device(space: &AddrSpaceObject, window: PhysRange) -> Result<(), String> {
    let vm = owner(space);
    MEMDB
        .lock()
        .insert(window.start(), window.size(), vm)
        .map_err(|e| alloc::format!("window {window} is owned already: {e:?}"))?;
    space
        .map_direct(
            window.start(),
            window.start(),
            window.size(),
            Direct::Device,
        )
        .map_err(|e| {
            let _ = MEMDB.lock().remove(window.start(), window.size(), vm);
            alloc::format!("stage-2 mapping of {window}: {e:?}")
        })
}

/// Map the hypervisor's own pages `pages` read-only at `ipa` (the boot bundle, shown to the
/// resource manager): they must be the hypervisor's.
pub fn show_hypervisor_pages(
    space: &AddrSpaceObject,
    ipa: u64,
    pages: PhysRange,
) -> Result<(), String> {
    if !MEMDB
        .lock()
        .is_owned_by(pages.start(), pages.size(), Owner::Hypervisor)
    {
        return Err(alloc::format!("{pages} is not the hypervisor's"));
    }
    space
        .map_direct(ipa, pages.start(), pages.size(), Direct::ReadOnly)
        .map_err(|e| alloc::format!("stage-2 mapping: {e:?}"))
}

/// Whether every page of `range` is owned by `owner` (for checks and tests).
pub fn owned_by(range: PhysRange, owner: Owner) -> bool {
    MEMDB.lock().is_owned_by(range.start(), range.size(), owner)
}

//! Who owns the physical memory a VM's stage 2 maps outside its extents. A VM's RAM is a memory
//! extent (`object::memextent`, checked against the memory database there); what the
//! hypervisor maps directly is checked here against the memory database
//! ([`crate::mm::MEMDB`]): a passed-through device window is recorded as the VM's (and refused
//! if anyone owns it), and read-only views of the hypervisor's own data (the bundle for the
//! resource manager) are checked to be the hypervisor's. So no VM, the resource manager
//! included, is ever given a page that another VM owns.

use alloc::string::String;

use crate::mm::addr::PhysRange;
use crate::mm::memdb::Owner;
use crate::mm::{MEMDB, ROOT_PARTITION};
use crate::object::addrspace::{AddrSpaceObject, Direct};

/// The memory-database owner of the direct mappings of address space `space` (by its VMID).
pub fn owner(space: &AddrSpaceObject) -> Owner {
    Owner::Vm(space.vmid().unwrap_or(0))
}

/// Record device window `window` (page aligned) as the VM's and map it at the same address.
/// The window is taken from the root partition (which owns the platform's device windows the
/// hypervisor does not use) or, if nobody owns it (a window the platform's device tree does not
/// list), recorded afresh. `MEMDB_NOT_OWNER` if anyone else owns a page of it: RAM, the
/// hypervisor, another VM's device, an extent the resource manager made of it.
pub fn give_device(space: &AddrSpaceObject, window: PhysRange) -> Result<(), String> {
    let vm = owner(space);
    let (start, size) = (window.start(), window.size());
    let from_root = {
        let mut db = MEMDB.lock();
        let from_root = db.is_owned_by(start, size, ROOT_PARTITION);
        if from_root {
            db.update(start, size, ROOT_PARTITION, vm)
        } else {
            db.insert(start, size, vm)
        }
        .map_err(|e| alloc::format!("window {window} is owned already: {e:?}"))?;
        from_root
    };
    space
        .map_direct(start, start, size, Direct::Device)
        .map_err(|e| {
            let mut db = MEMDB.lock();
            let _ = if from_root {
                db.update(start, size, vm, ROOT_PARTITION)
            } else {
                db.remove(start, size, vm)
            };
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

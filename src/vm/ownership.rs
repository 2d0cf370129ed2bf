//! Who owns the physical memory a VM's stage 2 maps outside its extents. A VM's RAM and devices
//! are memory extents (`object::memextent`, checked against the memory database there); the
//! one thing the hypervisor maps directly, a read-only view of its own data (the boot bundle
//! for the resource manager), is checked here against the memory database
//! ([`crate::mm::MEMDB`]) to be the hypervisor's. So no VM, the resource manager included, is
//! ever given a page that another VM owns.

use alloc::string::String;

use crate::mm::MEMDB;
use crate::mm::addr::PhysRange;
use crate::mm::memdb::Owner;
use crate::object::addrspace::{AddrSpaceObject, Direct};

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

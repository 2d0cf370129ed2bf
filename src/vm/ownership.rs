//! Who owns the physical memory a VM's stage 2 maps. Every mapping the hypervisor makes for a VM
//! goes through here and is checked against the memory database ([`crate::mm::MEMDB`]): a VM's
//! RAM is moved from the root partition to the VM before it is mapped, a device window is
//! recorded as the VM's (and refused if anyone owns it), and read-only views of the
//! hypervisor's own data (the bundle for the resource manager) are checked to be the
//! hypervisor's. So no VM, the resource manager included, is ever given a page that another VM
//! owns.

use alloc::string::String;

use crate::arch::aarch64::stage2::Stage2;
use crate::mm::addr::PhysRange;
use crate::mm::memdb::Owner;
use crate::mm::{MEMDB, ROOT_PARTITION};

/// The memory-database owner of the VM whose stage 2 is `stage2`.
pub fn owner(stage2: &Stage2) -> Owner {
    Owner::Vm(stage2.vmid())
}

/// Move RAM `block` from the root partition to the VM of `stage2` and map it at `ipa`.
/// On failure the block is back with the root partition.
pub fn give_ram(stage2: &mut Stage2, ipa: u64, block: PhysRange) -> Result<(), String> {
    let vm = owner(stage2);
    MEMDB
        .lock()
        .update(block.start(), block.size(), ROOT_PARTITION, vm)
        .map_err(|e| alloc::format!("RAM {block} is not the root partition's: {e:?}"))?;
    stage2
        .map_ram(ipa, block.start(), block.size())
        .map_err(|e| {
            take_back_ram(vm, block);
            alloc::format!("stage-2 mapping: {e}")
        })
}

/// Give `block`, owned by `vm`, back to the root partition (a VM that failed to start).
pub fn take_back_ram(vm: Owner, block: PhysRange) {
    if let Err(e) = MEMDB
        .lock()
        .update(block.start(), block.size(), vm, ROOT_PARTITION)
    {
        log::error!("memory database: RAM {block} of {vm:?} not given back: {e:?}");
    }
}

/// Before `block` goes back to the frame allocator: if a VM got it ([`give_ram`]), return it to
/// the root partition.
pub fn release_ram(block: PhysRange) {
    let owner = MEMDB.lock().lookup(block.start()).map(|(o, _, _)| o);
    if let Some(vm @ Owner::Vm(_)) = owner {
        take_back_ram(vm, block);
    }
}

/// Record device window `window` (page aligned) as the VM's and map it at the same address.
/// `MEMDB_NOT_OWNER` if anyone owns any page of it: RAM, the hypervisor, another VM's device.
pub fn give_device(stage2: &mut Stage2, window: PhysRange) -> Result<(), String> {
    let vm = owner(stage2);
    MEMDB
        .lock()
        .insert(window.start(), window.size(), vm)
        .map_err(|e| alloc::format!("window {window} is owned already: {e:?}"))?;
    stage2
        .map_device(window.start(), window.start(), window.size())
        .map_err(|e| {
            let _ = MEMDB.lock().remove(window.start(), window.size(), vm);
            alloc::format!("stage-2 mapping of {window}: {e}")
        })
}

/// Map the hypervisor's own pages `pages` read-only at `ipa` (the boot bundle, shown to the
/// resource manager): they must be the hypervisor's.
pub fn show_hypervisor_pages(
    stage2: &mut Stage2,
    ipa: u64,
    pages: PhysRange,
) -> Result<(), String> {
    if !MEMDB
        .lock()
        .is_owned_by(pages.start(), pages.size(), Owner::Hypervisor)
    {
        return Err(alloc::format!("{pages} is not the hypervisor's"));
    }
    stage2
        .map_read_only(ipa, pages.start(), pages.size())
        .map_err(|e| alloc::format!("stage-2 mapping: {e}"))
}

/// Whether every page of `range` is owned by `owner` (for checks and tests).
pub fn owned_by(range: PhysRange, owner: Owner) -> bool {
    MEMDB.lock().is_owned_by(range.start(), range.size(), owner)
}

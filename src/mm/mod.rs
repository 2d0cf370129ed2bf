//! Physical memory: address types, the frame allocator and the kernel heap.
//!
//! - [`memdb`]: the memory database, recording the one owner of every managed physical page.

pub mod addr;
pub mod frames;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[allow(unsafe_code)]
pub mod guestmem;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[allow(unsafe_code)]
pub mod heap;
pub mod memdb;

/// The machine's free physical memory, filled once at boot from the device tree. Lock order:
/// taken after any VM lock, never while holding the console lock.
pub static FRAMES: spin::Mutex<frames::FrameAllocator> =
    spin::Mutex::new(frames::FrameAllocator::new());

/// Who owns each page of RAM and of passed-through device windows ([`memdb`]), filled at boot
/// ([`record_boot_memory`]) and kept by `vm::ownership` as VMs get memory. Lock order: innermost
/// (nothing is locked while holding it).
pub static MEMDB: spin::Mutex<memdb::MemDb> = spin::Mutex::new(memdb::MemDb::new());

/// The root partition in the memory database: RAM no VM has, whether free in [`FRAMES`] or
/// allocated from it for the hypervisor's page tables and stacks (as Gunyah's partition
/// allocator owns what it hands out).
pub const ROOT_PARTITION: memdb::Owner = memdb::Owner::Partition(0);

/// Fill the database at boot: the frame allocator's free RAM is the root partition's, the
/// hypervisor's image, device tree and initrd (the bundle) are the hypervisor's. Firmware's
/// reserved memory stays unowned: nobody may map it.
pub fn record_boot_memory(
    free: &[addr::PhysRange],
    hypervisor: &[addr::PhysRange],
) -> Result<(), wurley_abi::Error> {
    // Whole pages; the hypervisor's ranges may share a page, so merge them first.
    let mut mine: alloc::vec::Vec<addr::PhysRange> = hypervisor
        .iter()
        .filter(|r| !r.is_empty())
        .map(|r| r.align_out(addr::PAGE_SIZE))
        .collect();
    mine.sort_by_key(|r| r.start());
    let mut merged: alloc::vec::Vec<addr::PhysRange> = alloc::vec::Vec::new();
    for r in mine {
        match merged.last_mut() {
            Some(last) if r.start() <= last.end() => {
                *last =
                    addr::PhysRange::new(last.start(), last.end().max(r.end())).unwrap_or(*last);
            }
            _ => merged.push(r),
        }
    }
    let mut db = MEMDB.lock();
    for r in free {
        db.insert(r.start(), r.size(), ROOT_PARTITION)?;
    }
    for r in merged {
        db.insert(r.start(), r.size(), memdb::Owner::Hypervisor)?;
    }
    Ok(())
}

/// Record the platform's device windows the hypervisor does not use (`windows`: page aligned,
/// disjoint) as the root partition's, so the resource manager can make memory extents of them.
/// Returns how many were recorded and their bytes; a window someone owns already is skipped
/// and logged.
pub fn record_device_windows(windows: &[addr::PhysRange]) -> (usize, u64) {
    let mut db = MEMDB.lock();
    let mut done = (0, 0);
    for w in windows {
        match db.insert(w.start(), w.size(), ROOT_PARTITION) {
            Ok(()) => done = (done.0 + 1, done.1 + w.size()),
            Err(e) => log::warn!("memory database: device window {w} not recorded: {e:?}"),
        }
    }
    done
}

/// Move `range`, allocated from the root partition for the hypervisor's own use before any VM
/// exists (the heap), to the hypervisor.
pub fn keep_for_hypervisor(range: addr::PhysRange) -> Result<(), wurley_abi::Error> {
    MEMDB.lock().update(
        range.start(),
        range.size(),
        ROOT_PARTITION,
        memdb::Owner::Hypervisor,
    )
}

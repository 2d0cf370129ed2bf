//! The kernel heap: `buddy_system_allocator` as the global allocator.
//!
//! It starts with a fixed region in BSS so the device tree can be parsed before the frame
//! allocator exists, and grows with frames once it does ([`grow`]).

use buddy_system_allocator::LockedHeap;

/// Size of the initial heap in BSS.
const INITIAL_HEAP: usize = 512 * 1024;

#[repr(C, align(4096))]
struct InitialHeap([u8; INITIAL_HEAP]);

static mut INITIAL: InitialHeap = InitialHeap([0; INITIAL_HEAP]);

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Hand the BSS region to the allocator. Call once, with the MMU on (the allocator's lock uses
/// exclusive accesses, which need Normal memory).
pub fn init() {
    let start = &raw mut INITIAL as usize;
    // SAFETY: INITIAL is used for nothing else and `init` runs once, on the boot CPU.
    unsafe { HEAP.lock().init(start, INITIAL_HEAP) };
}

/// Add `[start, start + size)` to the heap.
///
/// # Safety
/// The range is mapped read-write in the EL2 tables and owned by nobody else, forever.
pub unsafe fn grow(start: u64, size: u64) {
    // SAFETY: the caller promised exclusive, mapped memory.
    unsafe {
        HEAP.lock()
            .add_to_heap(start as usize, (start + size) as usize)
    };
}

/// Bytes the heap manages, and bytes in use.
pub fn stats() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.stats_total_bytes(), heap.stats_alloc_actual())
}

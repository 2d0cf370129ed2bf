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

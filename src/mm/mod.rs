//! Physical memory: address types, the frame allocator and the kernel heap.

pub mod addr;
pub mod frames;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[allow(unsafe_code)]
pub mod heap;

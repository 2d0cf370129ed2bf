//! The Wurley EL2 firmware image: the boot stub plus the kernel library.
//!
//! `boot/entry.S` is the image's first code (it carries the arm64 Image header); it calls into
//! the kernel (`wurley::boot`). Building for the host produces an empty program, so that
//! `cargo test` for the whole workspace works on x86_64.

#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
use wurley as _;

// The boot stub: audited with the rest of the EL2 entry code (docs/unsafe.md).
#[cfg(target_os = "none")]
#[allow(unsafe_code)]
mod entry {
    core::arch::global_asm!(include_str!("../boot/entry.S"));
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "wurley is firmware: build it for aarch64-unknown-none-softfloat and boot it with QEMU"
    );
}

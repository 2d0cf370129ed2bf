//! The architecture layer: everything that knows AArch64 registers and devices.
//!
//! Pure decoding and policy ([`esr`], [`stage1`]) build everywhere and are host-tested. The
//! `aarch64` submodule touches the hardware and is the only place in the kernel where `unsafe`
//! appears outside the audited list in `docs/unsafe.md`; it exists only when building the EL2
//! image.

pub mod esr;
pub mod stage1;
pub mod trap;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[allow(unsafe_code)]
pub mod aarch64;

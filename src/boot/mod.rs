//! The init order: what runs between the EL2 entry stub and the idle loop.
//!
//! - [`primary`]: the boot CPU. MMU, heap, device tree, console, memory, GIC, timer, every other
//!   CPU through PSCI `CPU_ON`, then the VMs of the boot bundle.
//! - [`secondary`]: each other CPU, entered from `boot/entry.S` with the MMU already on.
//!
//! This module turns raw boot-time facts (the DTB pointer, linker symbols, device addresses the
//! DT names) into the safe handles the rest of the kernel uses; its `unsafe` is listed in
//! `docs/unsafe.md`.

pub mod image;
pub mod primary;
pub mod secondary;

//! The init order: what runs between the EL2 entry stub and the idle loop.
//!
//! - [`primary`]: the boot CPU. MMU, heap, device tree, console, memory, GIC, timer, then every
//!   other CPU through PSCI `CPU_ON`.
//! - [`secondary`]: each other CPU, entered from `boot/entry.S` with the MMU already on.
//!
//! This module turns raw boot-time facts (the DTB pointer, linker symbols, device addresses the
//! DT names) into the safe handles the rest of the kernel uses; its `unsafe` is listed in
//! `docs/unsafe.md`.

pub mod image;
pub mod primary;
pub mod secondary;

use crate::arch::aarch64::cpu;

/// Sleep forever, handling interrupts. Never a busy loop: under emulation that burns a host core.
pub fn idle() -> ! {
    cpu::enable_irqs();
    loop {
        cpu::wfi();
    }
}

//! AArch64 at EL2: system registers, exception vectors, the EL2 MMU, the physical GICv3, the
//! hypervisor timer, the console UART, PSCI calls to firmware and per-CPU data.
//!
//! Knows registers, not objects. Each file owns one concept and documents its `unsafe`.

pub mod cpu;
pub mod exception;
pub mod gic;
pub mod mmu;
pub mod percpu;
pub mod pl011;
pub mod psci;
pub mod timer;
pub mod vectors;

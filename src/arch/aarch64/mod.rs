//! AArch64 at EL2: system registers, exception vectors, the EL2 MMU, the physical GICv3, the
//! hypervisor timer, the console UART, PSCI calls to firmware and per-CPU data.
//!
//! Knows registers, not objects. Each file owns one concept and documents its `unsafe`.

pub mod context;
pub mod cpu;
pub mod exception;
pub mod gic;
pub mod guest;
pub mod ich;
pub mod idregs;
pub mod mmu;
pub mod percpu;
pub mod pl011;
pub mod psci;
pub mod stage2;
pub mod timer;
pub mod vcpu_hw;
pub mod vectors;

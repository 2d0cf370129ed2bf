//! Wurley: a bare-metal Type-1 hypervisor for AArch64 in the design of Gunyah.
//!
//! This crate is the EL2 kernel. The stub in `boot/entry.S` enters `boot::primary` with the MMU
//! off; everything after that is here. Modules, from the hardware up:
//!
//! - [`arch`]: registers and devices; the hardware half (`arch::aarch64`) is where `unsafe` lives;
//! - [`platform`]: the device tree turned into one [`platform::Platform`] value;
//! - [`mm`]: physical addresses, the frame allocator and the kernel heap;
//! - [`cmdline`]: the hypervisor's boot options;
//! - [`object`]: hypervisor objects (partitions, cspaces, message queues, doorbells, VICs) and
//!   the capabilities that name them;
//! - [`hypercall`]: the Gunyah hypercall ABI (vendor-hyp services, the hypercall table);
//! - [`sched`]: the vCPU scheduling policy (fixed-priority round-robin run queues, timeslices,
//!   yields) as pure per-CPU data;
//! - [`vm`]: virtual machines: stage 2, vCPUs, the virtual GIC, timer, PSCI and PL011;
//! - `console`, `logger`, `irq`, `panic`: output, the `log` backend, interrupts at EL2, panics;
//! - `boot`: the init order for the boot CPU and the secondaries.
//!
//! Pure logic (DT parsing, allocators, descriptor building, ESR decoding) builds on the host too,
//! so `cargo test --target x86_64-unknown-linux-gnu` exercises it without QEMU.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod arch;
pub mod cmdline;
pub mod hypercall;
pub mod mm;
pub mod object;
pub mod platform;
pub mod sched;
pub mod vm;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[allow(unsafe_code)]
mod boot;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod console;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod irq;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod logger;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod panic;

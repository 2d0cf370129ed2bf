//! wurley-rt: the EL1 runtime the Resource Manager and Wurley's test guests link.
//!
//! A guest is an arm64 Image, a static position-independent executable linked at 0x4000_0000
//! (`linker.ld`; each binary's build script passes it with `-T$DEP_WURLEY_RT_LINKER_SCRIPT`,
//! plus `$DEP_WURLEY_RT_LINK_ARGS`). Wurley boots it like Linux, at any 2 MiB-aligned RAM base
//! of at least 1 GiB: MMU off, EL1h, interrupts masked, `X0` = the device tree's address. The
//! entry code (`entry.S`) turns on an identity-mapped MMU ([`mmu`]), applies the image's
//! `R_AARCH64_RELATIVE` relocations for the address it was loaded at, clears BSS; the runtime
//! maps the rest of RAM from the device tree, then [`entry!`]'s function runs with the
//! console, the GIC and the exception vectors ready and IRQs unmasked.
//!
//! * [`console`]: PL011 output, [`println!`] / [`print!`].
//! * [`fdt`](mod@fdt): a small flattened-device-tree reader; [`hypdt`]: the `/hypervisor` node's
//!   resources (message-queue pairs, doorbells, granted capabilities).
//! * [`gic`]: GICv3 CPU interface, distributor and redistributor setup, the IRQ dispatcher.
//! * [`hyp`]: raw `HVC` and typed wrappers for the Gunyah calls the tests use.
//! * [`mmu`]: stage-1 block mappings tests can add, and VAs with no stage-1 translation.
//! * [`smp`]: secondary vCPUs (PSCI `CPU_ON`), each with its own stack, GIC interface and
//!   timer; the device tree's CPU list.
//! * [`time`]: the virtual counter, the virtual timer and [`time::wait_until`].
//!
//! The portable modules ([`args`], [`fdt`](mod@fdt), [`hypdt`]) build on the host too, for unit tests.

#![cfg_attr(not(test), no_std)]
// Entry, system registers, MMIO and hypercalls need `unsafe`; each block says why it is sound.
#![allow(unsafe_code)]

pub mod args;
pub mod fdt;
pub mod hypdt;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod console;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod gic;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod hyp;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod mmu;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod rt;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod smp;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod time;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub use rt::{
    boot_info, boot_info_bytes, dtb, enable_irqs, fdt, irqs_masked, mask_irqs, mpidr_affinity,
    power_off, ram, reset, wait_for_interrupt,
};

/// Names the guest's main function, `fn(dtb: usize) -> !`, which the runtime calls once the
/// MMU, console, GIC and vectors are set up (IRQs unmasked).
///
/// ```ignore
/// wurley_rt::entry!(guest_main);
/// fn guest_main(dtb: usize) -> ! { wurley_rt::power_off() }
/// ```
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        // The runtime's `rt_start` calls this symbol.
        #[unsafe(export_name = "__wurley_rt_main")]
        extern "Rust" fn __wurley_rt_main(dtb: usize) -> ! {
            let main: fn(usize) -> ! = $main;
            main(dtb)
        }
    };
}

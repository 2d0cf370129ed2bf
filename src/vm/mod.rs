//! Virtual machines: guest address spaces, vCPUs, and the virtual platform devices.
//!
//! Pure models, host-tested: [`mmio`] (the access type), [`features`] (ID registers a guest
//! sees), [`layout`] (the guest's IPA map), [`vgic`], [`vpl011`], [`devicetree`]. The rest runs
//! only at EL2: `machine` (a VM and its vCPUs), `sched` (run queues, blocking and waking),
//! `vcpu` (the run loop), `exit` (trap handling), `vpsci` (PSCI for guests), `irqs` (raising
//! virtual interrupts), `console` (shared console), `objects` (a VM's partition, cspace and
//! VIC), `passthrough` (hardware IRQs bound to a VM), `proxy` (running a proxy-scheduled vCPU
//! for its owner's `vcpu_run`), `guest_access` (hypercall buffers), `rm` (the root VM, the
//! resource manager), `launch` (starting it at boot), `assemble` (a VM out of objects at its
//! first `vcpu_poweron`) and `lifecycle` (power-on, power-off, kill of vCPUs), `vpm` (VPM group
//! states).

pub mod devicetree;
pub mod elf;
pub mod features;
pub mod layout;
pub mod mmio;
pub mod vgic;
pub mod vpl011;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod assemble;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod console;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod exit;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod guest_access;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod irqs;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod launch;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod lifecycle;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod machine;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod objects;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod ownership;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod passthrough;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod proxy;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod rm;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod sched;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod vcpu;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod vpm;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod vpsci;

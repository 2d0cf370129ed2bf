//! The guest's device tree: the shared `guestdt` crate (also used by the resource manager for
//! the VMs it creates), with the tests that read its output back with the kernel's own
//! device-tree parser.

pub use guestdt::*;

#[cfg(test)]
mod hypervisor_tests;
#[cfg(test)]
mod tests;

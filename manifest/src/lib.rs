//! The boot bundle's VM manifest ([`bundle`]) and the device-tree reader it is built on
//! ([`dt`]): pure, `no_std` + `alloc` code shared by the hypervisor (which reads its platform
//! with [`dt`]) and the resource manager (which reads the manifest and launches the bundle's
//! VMs).

#![no_std]

extern crate alloc;

pub mod bundle;
pub mod dt;

//! The boot bundle's VM manifest ([`bundle`]) and the device-tree reader it is built on
//! ([`dt`]): pure, `no_std` + `alloc` code shared by the hypervisor (which reads its platform
//! with [`dt`] and launches the bundle's VMs itself by default) and the resource manager (which
//! launches them with `launch=rm`).

#![no_std]

extern crate alloc;

pub mod bundle;
pub mod dt;

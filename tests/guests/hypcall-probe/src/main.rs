//! hypcall-probe: an EL1 bare-metal guest that exercises Wurley's Gunyah hypercall ABI.
//!
//! Booted as a VM's kernel (a position-independent arm64 Image, MMU off), it makes each call,
//! prints `HYPCALL <name> PASS|FAIL <values>` per check on the PL011, then
//! `HYPCALL-DONE pass=<n> fail=<m>`, and powers the VM off with PSCI SYSTEM_OFF. The host test
//! `tests/vmapi.rs` builds it, boots it and checks the lines.
//!
//! Every constant comes from `wurley_abi`. Built for the host it is an empty program, so that
//! `cargo test --workspace` on x86_64 works.

#![cfg_attr(target_os = "none", no_std, no_main)]
// The guest's entry stub, the hypercall instructions and the UART registers need `unsafe`.
#![allow(unsafe_code)]

#[cfg(target_os = "none")]
mod probe;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("hypcall-probe is a guest: build it for aarch64-unknown-none-softfloat");
}

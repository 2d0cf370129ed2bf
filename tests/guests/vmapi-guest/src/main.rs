//! The `vmapi-guest` image: [`vmapi_guest::guest_main`] on wurley-rt, a position-independent
//! arm64 Image (linked at 0x4000_0000) that runs at whatever RAM base its VM has.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
wurley_rt::entry!(vmapi_guest::guest_main);

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("vmapi-guest is a guest: build it for aarch64-unknown-none-softfloat");
}

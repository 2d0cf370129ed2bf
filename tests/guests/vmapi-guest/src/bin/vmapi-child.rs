//! The `vmapi-child` image: the same program as `vmapi-guest` ([`vmapi_guest::guest_main`]),
//! linked at `vmapi_guest::vmlife::CHILD_BASE` (0x4200_0000) instead of 0x4000_0000, because
//! the `vmlife` client lends the secondary VM a region of its own RAM there and the RM maps it
//! at the same IPA in the new VM (see `build.rs`): it runs where it is linked (position
//! independent like every wurley-rt program, it relocates itself by 0).

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
wurley_rt::entry!(vmapi_guest::guest_main);

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("vmapi-child is a guest: build it for aarch64-unknown-none-softfloat");
}

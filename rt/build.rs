//! Publishes the guest linker script to the binaries that link this runtime.
//!
//! A library cannot pass link arguments for its dependents, so each guest binary's own build
//! script adds `-T$DEP_WURLEY_RT_LINKER_SCRIPT` (see `tests/guests/vmapi-guest/build.rs`).

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo::metadata=linker_script={dir}/linker.ld");
    println!("cargo::rerun-if-changed=linker.ld");
    println!("cargo::rerun-if-changed=src/entry.S");
    println!("cargo::rerun-if-changed=build.rs");
}

//! Publishes the guest linker script and link arguments to the binaries that link this runtime.
//!
//! A library cannot pass link arguments for its dependents, so each guest binary's own build
//! script adds `-T$DEP_WURLEY_RT_LINKER_SCRIPT` and the arguments of
//! `$DEP_WURLEY_RT_LINK_ARGS` (space separated; see `tests/guests/vmapi-guest/build.rs`): a
//! static position-independent executable whose `R_AARCH64_RELATIVE` relocations `entry.S`
//! applies itself, so it has no dynamic linker, allows relocations in read-only sections
//! (`.got` and relocated pointers sit with the read-only data) and keeps them unpacked (plain
//! `Elf64_Rela` entries, the only format `entry.S` reads).

/// The link arguments every wurley-rt program needs besides the script.
const LINK_ARGS: &str = "-pie --no-dynamic-linker -znotext --pack-dyn-relocs=none";

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo::metadata=linker_script={dir}/linker.ld");
    println!("cargo::metadata=link_args={LINK_ARGS}");
    println!("cargo::rerun-if-changed=linker.ld");
    println!("cargo::rerun-if-changed=src/entry.S");
    println!("cargo::rerun-if-changed=build.rs");
}

//! Links the probe with `linker.ld` as a static position-independent executable (linked at
//! 0x4000_0000, `entry.S` relocates it to wherever it is loaded): no dynamic linker,
//! relocations allowed in read-only sections, plain `Elf64_Rela` entries (the only format
//! `entry.S` reads).

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("aarch64-") && target.contains("-none") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/linker.ld");
        for arg in [
            "-pie",
            "--no-dynamic-linker",
            "-znotext",
            "--pack-dyn-relocs=none",
        ] {
            println!("cargo:rustc-link-arg-bins={arg}");
        }
    }
    println!("cargo:rerun-if-changed=linker.ld");
    println!("cargo:rerun-if-changed=src/entry.S");
    println!("cargo:rerun-if-changed=build.rs");
}

//! Links the RM's EL1 image with wurley-rt's `linker.ld` like the test guests: a static
//! position-independent executable linked at 0x4000_0000. The hypervisor loads its ELF
//! segments at their link addresses (`src/vm/elf.rs`), so the relocations `entry.S` applies
//! change nothing there (delta 0).

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("aarch64-") && target.contains("-none") {
        let script = std::env::var("DEP_WURLEY_RT_LINKER_SCRIPT")
            .expect("wurley-rt's build script publishes its linker script");
        let args = std::env::var("DEP_WURLEY_RT_LINK_ARGS")
            .expect("wurley-rt's build script publishes its link arguments");
        println!("cargo::rustc-link-arg-bins=-T{script}");
        for arg in args.split_whitespace() {
            println!("cargo::rustc-link-arg-bins={arg}");
        }
        println!("cargo::rerun-if-changed={script}");
    }
    println!("cargo::rerun-if-changed=build.rs");
}

//! Links the guest with wurley-rt's `linker.ld` at the guest RAM base (0x4000_0000), not
//! position independent.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("aarch64-") && target.contains("-none") {
        let script = std::env::var("DEP_WURLEY_RT_LINKER_SCRIPT")
            .expect("wurley-rt's build script publishes its linker script");
        println!("cargo::rustc-link-arg-bins=-T{script}");
        println!("cargo::rustc-link-arg-bins=--no-pie");
        println!("cargo::rerun-if-changed={script}");
    }
    println!("cargo::rerun-if-changed=build.rs");
}

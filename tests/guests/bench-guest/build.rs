//! Links the guest with wurley-rt's `linker.ld` as a static position-independent executable
//! (linked at 0x4000_0000, it relocates itself to wherever it is loaded).

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

//! Links the guest with wurley-rt's `linker.ld` as a static position-independent executable
//! that relocates itself to wherever it is loaded: `vmapi-guest` linked at 0x4000_0000 (and run
//! at any 2 MiB-aligned RAM base), and `vmapi-child` (the same program) linked at
//! [`CHILD_BASE`], where role `vmlife` lends a region of its own RAM to the secondary VM it
//! creates through the resource manager (the RM maps a lent image parcel at the IPA it had in
//! the owner), so it runs where it is linked.

use std::path::Path;

/// Link address of `vmapi-child` (`vmlife.rs` reads it from the payload the host test builds,
/// which takes it from the ELF's entry point).
const CHILD_BASE: &str = "0x42000000";
/// The line of rt's script that sets the link address.
const RT_BASE_LINE: &str = ". = 0x40000000;";

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("aarch64-") && target.contains("-none") {
        let script = std::env::var("DEP_WURLEY_RT_LINKER_SCRIPT")
            .expect("wurley-rt's build script publishes its linker script");
        let text = std::fs::read_to_string(&script).expect("read wurley-rt's linker script");
        assert_eq!(
            text.matches(RT_BASE_LINE).count(),
            1,
            "{script} should set the link address once with `{RT_BASE_LINE}`"
        );
        let child = text.replace(RT_BASE_LINE, &format!(". = {CHILD_BASE};"));
        let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
        let child_script = Path::new(&out).join("vmapi-child.ld");
        std::fs::write(&child_script, child).expect("write the child's linker script");
        println!("cargo::rustc-link-arg-bin=vmapi-guest=-T{script}");
        println!(
            "cargo::rustc-link-arg-bin=vmapi-child=-T{}",
            child_script.display()
        );
        let args = std::env::var("DEP_WURLEY_RT_LINK_ARGS")
            .expect("wurley-rt's build script publishes its link arguments");
        for arg in args.split_whitespace() {
            println!("cargo::rustc-link-arg-bins={arg}");
        }
        println!("cargo::rerun-if-changed={script}");
    }
    println!("cargo::rerun-if-changed=build.rs");
}

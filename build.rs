//! Links the EL2 image with `linker.ld` as a static position-independent executable, and builds
//! the Resource Manager (`rm/`, an EL1 program) that the image embeds as its root VM.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("aarch64-") && target.contains("-none") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/linker.ld");
        println!("cargo:rustc-link-arg-bins=-pie");
        println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
        println!("cargo:rustc-link-arg-bins=-znotext");
        println!("cargo:rustc-link-arg-bins=--pack-dyn-relocs=none");
        build_rm(&dir, &target);
    }
    println!("cargo:rerun-if-changed=linker.ld");
    println!("cargo:rerun-if-changed=boot/entry.S");
    println!("cargo:rerun-if-changed=build.rs");
}

/// Build the RM for `target` in a target directory of its own (so the nested cargo never waits
/// for this build's lock) and tell the kernel where its ELF is (`WURLEY_RM_ELF`).
fn build_rm(dir: &str, target: &str) {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = out.join("rm-build");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| String::from("cargo"));
    let status = Command::new(cargo)
        .current_dir(dir)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "wurley-rm",
            "--target",
            target,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's compiler wrappers (clippy) and flags are not the RM's.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        // Only the loadable segments are needed: no debug information or symbols in the image.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true")
        .status()
        .expect("run cargo to build the resource manager");
    assert!(
        status.success(),
        "building the resource manager (rm/) failed"
    );
    let elf = target_dir.join(target).join("release").join("wurley-rm");
    println!("cargo:rustc-env=WURLEY_RM_ELF={}", elf.display());
    for path in [
        "rm/src",
        "rm/Cargo.toml",
        "rm/build.rs",
        "rt/src",
        "rt/linker.ld",
        "abi/src",
    ] {
        println!("cargo:rerun-if-changed={dir}/{path}");
    }
}

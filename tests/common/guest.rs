//! EL1 test guests and boot bundles for the QEMU tests: build a guest crate of the workspace
//! into a raw Image, and compile a bundle manifest with `dtc`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target EL1 test guests are built for.
pub const GUEST_TARGET: &str = "aarch64-unknown-none-softfloat";

/// Build guest crate `package` and return its raw Image (`llvm-objcopy -O binary`).
pub fn build_guest(package: &str, dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            package,
            "--target",
            GUEST_TARGET,
        ])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building guest {package} failed");
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let elf = target_dir.join(GUEST_TARGET).join("release").join(package);
    let bin = dir.join(format!("{package}.bin"));
    let status = Command::new("llvm-objcopy")
        .args(["-O", "binary"])
        .arg(&elf)
        .arg(&bin)
        .status()
        .expect("run llvm-objcopy (run `make deps`)");
    assert!(status.success(), "llvm-objcopy failed on {}", elf.display());
    bin
}

/// Compile bundle source `text` in `dir`.
pub fn compile(dir: &Path, text: &str) -> PathBuf {
    let dts = dir.join("bundle.dts");
    let dtb = dir.join("bundle.dtb");
    std::fs::write(&dts, text).expect("write bundle source");
    let status = Command::new("dtc")
        .args(["-q", "-I", "dts", "-O", "dtb", "-o"])
        .arg(&dtb)
        .arg(&dts)
        .status()
        .expect("run dtc (run `make deps`)");
    assert!(status.success(), "dtc failed on {}", dts.display());
    dtb
}

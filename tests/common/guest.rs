//! EL1 test guests and boot bundles for the QEMU tests: build a guest crate of the workspace
//! into a raw Image, and compile a bundle manifest with `dtc`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target EL1 test guests are built for.
pub const GUEST_TARGET: &str = "aarch64-unknown-none-softfloat";

/// Build guest crate `package` and return its raw Image (`llvm-objcopy -O binary`).
pub fn build_guest(package: &str, dir: &Path) -> PathBuf {
    build_guest_bin(package, package, dir)
}

/// Build guest crate `package` and return the raw Image of its binary `bin`.
pub fn build_guest_bin(package: &str, bin: &str, dir: &Path) -> PathBuf {
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
    let elf = guest_elf(bin);
    let out = dir.join(format!("{bin}.bin"));
    let status = Command::new("llvm-objcopy")
        .args(["-O", "binary"])
        .arg(&elf)
        .arg(&out)
        .status()
        .expect("run llvm-objcopy (run `make deps`)");
    assert!(status.success(), "llvm-objcopy failed on {}", elf.display());
    out
}

/// The ELF of guest binary `bin`, as [`build_guest_bin`] built it.
pub fn guest_elf(bin: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target_dir.join(GUEST_TARGET).join("release").join(bin)
}

/// The entry point of a little-endian ELF64 file (`e_entry`): where a guest is linked.
pub fn elf_entry(elf: &Path) -> u64 {
    let bytes = std::fs::read(elf).expect("read the guest ELF");
    assert!(
        bytes.len() >= 32 && bytes[..4] == *b"\x7fELF" && bytes[4] == 2 && bytes[5] == 1,
        "{} is not a little-endian ELF64 file",
        elf.display()
    );
    u64::from_le_bytes(bytes[24..32].try_into().expect("8 bytes"))
}

/// Compile bundle source `text` in `dir`.
pub fn compile(dir: &Path, text: &str) -> PathBuf {
    compile_dts(dir, "bundle", text, &[])
}

/// Compile device-tree source `text` into `dir/<name>.dtb` (`dtc` with `extra` arguments,
/// e.g. `-p 8192` for free space at the end of the blob).
pub fn compile_dts(dir: &Path, name: &str, text: &str, extra: &[&str]) -> PathBuf {
    let dts = dir.join(format!("{name}.dts"));
    let dtb = dir.join(format!("{name}.dtb"));
    std::fs::write(&dts, text).expect("write device-tree source");
    let status = Command::new("dtc")
        .args(["-q", "-I", "dts", "-O", "dtb"])
        .args(extra)
        .arg("-o")
        .arg(&dtb)
        .arg(&dts)
        .status()
        .expect("run dtc (run `make deps`)");
    assert!(status.success(), "dtc failed on {}", dts.display());
    dtb
}

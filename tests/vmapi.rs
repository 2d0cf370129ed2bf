//! VM-API tests: small EL1 guests (`tests/guests/`) that call the Gunyah hypercall ABI directly
//! and report `HYPCALL <name> PASS|FAIL` lines. Each test builds its guest for
//! aarch64-unknown-none-softfloat, turns it into a raw arm64 Image, boots it in a one-VM bundle
//! and checks the lines.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Qemu, scratch};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const GUEST_TARGET: &str = "aarch64-unknown-none-softfloat";
const TIMEOUT: Duration = Duration::from_secs(30);

/// Build guest crate `package` and return its raw Image (`llvm-objcopy -O binary`).
fn build_guest(package: &str, dir: &Path) -> PathBuf {
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

/// A bundle with one 16 MiB, 1-vCPU VM whose kernel is `kernel`.
fn bundle(dir: &Path, name: &str, kernel: &Path) -> PathBuf {
    let dts = dir.join("bundle.dts");
    let dtb = dir.join("bundle.dtb");
    let text = format!(
        r#"/dts-v1/;
/ {{
    compatible = "wurley,bundle-v1";
    vms {{
        {name} {{
            kernel = /incbin/("{}");
            memory-size = <0x0 0x1000000>;
            vcpus = <1>;
            console;
        }};
    }};
}};
"#,
        kernel.display()
    );
    std::fs::write(&dts, text).unwrap();
    let status = Command::new("dtc")
        .args(["-q", "-I", "dts", "-O", "dtb", "-o"])
        .arg(&dtb)
        .arg(&dts)
        .status()
        .expect("run dtc (run `make deps`)");
    assert!(status.success(), "dtc failed on {}", dts.display());
    dtb
}

#[test]
fn hypcall_probe() {
    let dir = scratch("vmapi-hypcall-probe");
    let kernel = build_guest("hypcall-probe", &dir);
    let q = Qemu {
        initrd: Some(bundle(&dir, "probe", &kernel)),
        ..Qemu::smp(1)
    };
    let run = q.run_until(TIMEOUT, |_| false);
    if run.timed_out {
        run.fail(&format!("the probe did not finish within {TIMEOUT:?}"));
    }
    run.reject("*** EL2 EXCEPTION")
        .reject("*** PANIC")
        .reject("HYPCALL panic");
    let checks = [
        "smccc-version",
        "call-uid",
        "revision",
        "call-count",
        "identify-smccc",
        "identify-native",
        "unimplemented-smccc",
        "unimplemented-native",
        "unknown-smccc",
        "hypercall-smc32",
    ];
    for name in checks {
        run.expect(&format!("HYPCALL {name} PASS"));
    }
    for line in run.log.lines().filter(|l| l.starts_with("HYPCALL")) {
        eprintln!("{line}");
        if line.contains(" FAIL") {
            run.fail(&format!("failed check: {line}"));
        }
    }
    run.expect(&format!("HYPCALL-DONE pass={} fail=0", checks.len()));
    run.expect("called SYSTEM_OFF");
    if run.exit != Some(Some(0)) {
        run.fail("QEMU should exit with status 0 after the probe powers off");
    }
}

//! Host tests of the guest device-tree writer: each blob is read back with the hypervisor's own
//! parser ([`Platform::parse`]) and, where it is installed, with `dtc`.
#![allow(clippy::unwrap_used)]

use alloc::string::String;
use alloc::vec::Vec;

use super::*;
use crate::mm::addr::PhysRange;
use crate::platform::{Conduit, IrqSpec, Platform};
use vm_fdt::FdtWriter;

/// QEMU's `virt` machine with `gic-version=3`, 2 CPUs and 1 GiB, as dumped into `tests/data`.
const QEMU_VIRT_SMP2: &[u8] = include_bytes!("../../../tests/data/virt-gicv3-smp2-1g.dtb");

const SEED: [u8; 32] = [
    0x8f, 0x05, 0x08, 0x7d, 0x99, 0xbf, 0xe2, 0xd8, 0x59, 0xc6, 0xeb, 0x16, 0x0b, 0x37, 0xd2, 0xac,
    0x83, 0x98, 0x36, 0xe1, 0x6b, 0xfc, 0xae, 0x65, 0xc7, 0x9b, 0x7a, 0x83, 0xa1, 0x26, 0x38, 0x9f,
];

/// The virt layout for `mpidrs.len()` vCPUs, 512 MiB at 1 GiB.
fn guest(mpidrs: &[u64]) -> GuestDt<'_> {
    GuestDt {
        model: "wurley,virt",
        memory: (0x4000_0000, 0x2000_0000),
        vcpu_mpidrs: mpidrs,
        gic_dist: (0x0800_0000, 0x1_0000),
        gic_redist: (0x080A_0000, mpidrs.len() as u64 * 0x2_0000),
        gic_maintenance_ppi: Some(9),
        timer_ppis: [13, 14, 11, 10],
        uart: (0x0900_0000, 0x1000, 1),
        bootargs: "console=ttyAMA0 earlycon=pl011,0x9000000 root=/dev/ram0",
        initrd: Some((0x4800_0000, 0x4812_3457)),
        psci_method: "hvc",
        rng_seed: Some(SEED),
        extra: None,
    }
}

fn r(base: u64, size: u64) -> PhysRange {
    PhysRange::from_base_size(base, size).unwrap()
}

fn level(intid: u32) -> Option<IrqSpec> {
    Some(IrqSpec { intid, level: true })
}

/// Everything [`Platform`] reads, checked against [`guest`]'s values.
fn assert_round_trip(mpidrs: &[u64]) -> Platform {
    let dtb = write(&guest(mpidrs)).unwrap();
    let p = Platform::parse(&dtb).unwrap();
    assert_eq!(p.memory, [r(0x4000_0000, 0x2000_0000)]);
    assert!(p.reserved.is_empty());
    let got: Vec<u64> = p.cpus.iter().map(|c| c.mpidr).collect();
    assert_eq!(got, mpidrs);
    for c in &p.cpus {
        assert_eq!(c.enable_method.as_deref(), Some("psci"));
        assert_eq!(c.node, alloc::format!("/cpus/cpu@{:x}", c.mpidr));
    }
    assert_eq!(p.gic.dist, r(0x0800_0000, 0x1_0000));
    assert_eq!(
        p.gic.redists,
        [r(0x080A_0000, mpidrs.len() as u64 * 0x2_0000)]
    );
    assert_eq!(p.gic.maintenance, level(25));
    assert_eq!(p.gic.node, "/intc@8000000");
    let t = &p.timer;
    assert_eq!(
        [t.secure_phys, t.phys, t.virt, t.hyp_phys].map(Some),
        [level(29), level(30), level(27), level(26)]
    );
    assert_eq!((t.hyp_virt, t.clock_frequency), (None, None));
    assert_eq!(p.uart.path, "/pl011@9000000");
    assert_eq!(p.uart.base, r(0x0900_0000, 0x1000));
    assert_eq!(p.uart.irq, level(33));
    assert!(p.uart.compatible_pl011);
    assert_eq!(p.psci.conduit, Conduit::Hvc);
    assert_eq!(p.psci.compatible, ["arm,psci-1.0", "arm,psci-0.2"]);
    assert_eq!(
        p.bootargs,
        "console=ttyAMA0 earlycon=pl011,0x9000000 root=/dev/ram0"
    );
    assert_eq!(p.initrd, PhysRange::new(0x4800_0000, 0x4812_3457));
    p
}

#[test]
fn one_vcpu_round_trips() {
    assert_eq!(assert_round_trip(&[0]).cpus.len(), 1);
}

#[test]
fn four_vcpus_round_trip() {
    assert_eq!(assert_round_trip(&[0, 1, 2, 3]).cpus.len(), 4);
}

#[test]
fn second_cluster_and_aff3_round_trip() {
    assert_round_trip(&[0, 1, 0x100, 0x101]);
    // An Aff3 affinity needs two cells per `reg`.
    let p = assert_round_trip(&[0, 0x1_0000_0000]);
    assert_eq!(p.cpus[1].node, "/cpus/cpu@100000000");
}

#[test]
fn mpidr_bits_outside_the_affinity_are_dropped() {
    let mpidrs = [0x8000_0000, 0x8000_0001];
    let p = Platform::parse(&write(&guest(&mpidrs)).unwrap()).unwrap();
    assert_eq!(p.cpus.iter().map(|c| c.mpidr).collect::<Vec<_>>(), [0, 1]);
}

#[test]
fn optional_parts_can_be_left_out() {
    let dt = GuestDt {
        gic_maintenance_ppi: None,
        initrd: None,
        rng_seed: None,
        bootargs: "",
        ..guest(&[0, 1])
    };
    let dtb = write(&dt).unwrap();
    let p = Platform::parse(&dtb).unwrap();
    assert_eq!((p.gic.maintenance, p.initrd), (None, None));
    assert_eq!(p.bootargs, "");
    let with = write(&guest(&[0, 1])).unwrap();
    assert!(contains(&with, &SEED) && contains(&with, b"rng-seed\0"));
    assert!(!contains(&dtb, &SEED) && !contains(&dtb, b"rng-seed\0"));
    assert!(!contains(&dtb, b"linux,initrd-start\0"));
}

/// Where the two overlap, the blob reads back as QEMU's own `virt` tree does.
#[test]
fn matches_qemu_virt() {
    let mpidrs = [0, 1];
    let dt = GuestDt {
        memory: (0x4000_0000, 0x4000_0000),
        gic_redist: (0x080A_0000, 0xF6_0000),
        initrd: None,
        bootargs: "",
        psci_method: "smc",
        ..guest(&mpidrs)
    };
    let ours = Platform::parse(&write(&dt).unwrap()).unwrap();
    let qemu = Platform::parse(QEMU_VIRT_SMP2).unwrap();
    assert_eq!(ours.psci.compatible, qemu.psci.compatible[..2]);
    let ours = Platform {
        psci: qemu.psci.clone(),
        // QEMU's tree has devices the guest's does not (flash, virtio-mmio, PCIe, ...).
        devices: qemu.devices.clone(),
        ..ours
    };
    assert_eq!(ours, qemu);
}

#[test]
fn extra_nodes_are_added_under_the_root() {
    let hook = |w: &mut FdtWriter| {
        let node = w.begin_node("hypervisor")?;
        w.property_phandle(FIRST_FREE_PHANDLE)?;
        w.property_string("compatible", "wurley,hypervisor")?;
        w.end_node(node)
    };
    let dt = GuestDt {
        extra: Some(&hook),
        ..guest(&[0])
    };
    let dtb = write(&dt).unwrap();
    assert!(contains(&dtb, b"hypervisor\0") && contains(&dtb, b"wurley,hypervisor\0"));
    Platform::parse(&dtb).unwrap();
    if let Some(dts) = dtc(&dtb) {
        let node = &dts[dts.find("\thypervisor {").unwrap()..];
        assert!(node.contains("compatible = \"wurley,hypervisor\";"));
        assert!(node.contains("phandle = <0x03>;"));
    }

    let clash = |w: &mut FdtWriter| {
        let node = w.begin_node("hypervisor")?;
        w.property_phandle(GIC_PHANDLE)?;
        w.end_node(node)
    };
    let dt = GuestDt {
        extra: Some(&clash),
        ..guest(&[0])
    };
    assert_eq!(
        write(&dt),
        Err(DtWriteError::Fdt(vm_fdt::Error::DuplicatePhandle))
    );
}

#[test]
fn unusable_inputs_are_refused() {
    let bad = |dt: GuestDt<'_>| match write(&dt) {
        Err(DtWriteError::Invalid(why)) => why,
        other => panic!("{other:?}"),
    };
    assert_eq!(bad(guest(&[])), "vcpu_mpidrs is empty");
    assert_eq!(
        bad(guest(&[0, 1, 0x8000_0001])),
        "vcpu_mpidrs repeats an affinity"
    );
    let cpu = [0];
    bad(GuestDt {
        memory: (0x4000_0000, 0),
        ..guest(&cpu)
    });
    bad(GuestDt {
        gic_maintenance_ppi: Some(25),
        ..guest(&cpu)
    });
    bad(GuestDt {
        timer_ppis: [13, 14, 27, 10],
        ..guest(&cpu)
    });
    bad(GuestDt {
        uart: (0x0900_0000, 0x1000, 988),
        ..guest(&cpu)
    });
    bad(GuestDt {
        initrd: Some((0x4800_0000, 0x47ff_ffff)),
        ..guest(&cpu)
    });
    let e = write(&GuestDt {
        bootargs: "a\0b",
        ..guest(&cpu)
    })
    .unwrap_err();
    assert_eq!(e, DtWriteError::Fdt(vm_fdt::Error::InvalidString));
    assert_eq!(
        e.to_string(),
        "guest device tree: Strings cannot contain NUL"
    );
}

/// The source `dtc` decompiles, for 1 and 4 vCPUs, has every node Linux needs and no warnings.
#[test]
fn dtc_decompiles_without_warnings() {
    for n in [1u64, 4] {
        let mpidrs: Vec<u64> = (0..n).collect();
        let Some(dts) = dtc(&write(&guest(&mpidrs)).unwrap()) else {
            return;
        };
        for want in [
            "compatible = \"linux,dummy-virt\";",
            "model = \"wurley,virt\";",
            "interrupt-parent = <0x01>;",
            "memory@40000000 {",
            "reg = <0x00 0x40000000 0x00 0x20000000>;",
            "compatible = \"arm,psci-1.0\\0arm,psci-0.2\";",
            "method = \"hvc\";",
            "reg = <0x00 0x8000000 0x00 0x10000 0x00 0x80a0000 0x00",
            "interrupts = <0x01 0x09 0x04>;",
            "interrupts = <0x01 0x0d 0x04 0x01 0x0e 0x04 0x01 0x0b 0x04 0x01 0x0a 0x04>;",
            "always-on;",
            "clocks = <0x02 0x02>;",
            "clock-names = \"uartclk\\0apb_pclk\";",
            "interrupts = <0x00 0x01 0x04>;",
            "clock-frequency = <0x16e3600>;",
            "stdout-path = \"/pl011@9000000\";",
            "serial0 = \"/pl011@9000000\";",
            "linux,initrd-start = <0x00 0x48000000>;",
            "linux,initrd-end = <0x00 0x48123457>;",
            "rng-seed = <0x8f05087d",
        ] {
            assert!(dts.contains(want), "missing {want:?} in\n{dts}");
        }
        assert_eq!(dts.matches("enable-method = \"psci\";").count(), n as usize);
        assert_eq!(dts.matches("device_type = \"cpu\";").count(), n as usize);
        assert!(dts.contains(&alloc::format!("cpu@{:x} {{", n - 1)));
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// `dtc -I dtb -O dts` of `dtb`, asserting it succeeds without warnings; `None` (with a note)
/// if `dtc` is not installed.
fn dtc(dtb: &[u8]) -> Option<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let child = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        std::println!("note: dtc not found, skipping its check of the guest device tree");
        return None;
    };
    child.stdin.take().unwrap().write_all(dtb).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "dtc failed: {stderr}");
    assert!(stderr.is_empty(), "dtc complained: {stderr}");
    Some(String::from_utf8(out.stdout).unwrap())
}

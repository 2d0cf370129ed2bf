//! End-to-end tests of [`Platform::parse`] on every fixture of `tests/data/`.
#![allow(clippy::unwrap_used)]

use alloc::string::ToString;
use alloc::vec::Vec;

use super::fixtures::*;
use super::*;

fn r(base: u64, size: u64) -> PhysRange {
    PhysRange::from_base_size(base, size).unwrap()
}

fn level(intid: u32) -> IrqSpec {
    IrqSpec { intid, level: true }
}

#[test]
fn qemu_virt_smp2_1g_in_full() {
    let p = Platform::parse(VIRT_SMP2).unwrap();
    let want = Platform {
        memory: [r(0x4000_0000, 0x4000_0000)].into(),
        reserved: Vec::new(),
        initrd: None,
        bootargs: "".into(),
        gic: GicInfo {
            dist: r(0x0800_0000, 0x1_0000),
            redists: [r(0x080A_0000, 0xF6_0000)].into(),
            maintenance: Some(level(25)),
            node: "/intc@8000000".into(),
        },
        uart: UartInfo {
            path: "/pl011@9000000".into(),
            base: r(0x0900_0000, 0x1000),
            irq: Some(level(33)),
            compatible_pl011: true,
        },
        timer: TimerInfo {
            secure_phys: level(29),
            phys: level(30),
            virt: level(27),
            hyp_phys: level(26),
            hyp_virt: None,
            clock_frequency: None,
        },
        cpus: (0..2)
            .map(|i| CpuInfo {
                mpidr: i,
                node: alloc::format!("/cpus/cpu@{i}"),
                enable_method: Some("psci".into()),
            })
            .collect(),
        psci: PsciInfo {
            conduit: Conduit::Smc,
            compatible: ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]
                .map(Into::into)
                .into(),
        },
        devices: p.devices.clone(),
    };
    assert_eq!(p, want);
}

#[test]
fn qemu_virt_device_windows() {
    let p = Platform::parse(VIRT_SMP2).unwrap();
    let paths: Vec<&str> = p.devices.iter().map(|d| d.path.as_str()).collect();
    // Devices with translatable windows, the GIC and console among them; not RAM, not CPUs.
    for want in [
        "/flash@0",
        "/pl011@9000000",
        "/intc@8000000",
        "/virtio_mmio@a000000",
    ] {
        assert!(paths.contains(&want), "{want} in {paths:?}");
    }
    assert!(
        !paths
            .iter()
            .any(|p| p.starts_with("/memory") || p.starts_with("/cpus"))
    );
    let rtc = p
        .devices
        .iter()
        .find(|d| d.path == "/pl031@9010000")
        .unwrap();
    assert_eq!(rtc.regs, [r(0x901_0000, 0x1000)]);
    assert_eq!(rtc.irqs, [level(34)]);
    // virtio-mmio is edge-triggered (flags 1), the RTC level (4).
    assert_eq!(p.spi_level(48), Some(false));
    assert_eq!(p.spi_level(34), Some(true));
    assert_eq!(p.spi_level(1000), None);

    let free = p.free_device_windows();
    // The 32 virtio-mmio slots of 512 bytes are four pages, merged.
    assert!(free.contains(&r(0xa00_0000, 0x4000)), "{free:?}");
    assert!(free.contains(&r(0x901_0000, 0x1000)));
    assert!(free.contains(&r(0, 0x800_0000)), "flash: {free:?}");
    // Not the GIC (nor its ITS), not the console, not RAM.
    for used in [
        r(0x800_0000, 0x1_0000),
        r(0x808_0000, 0x2_0000),
        r(0x80a_0000, 0xf6_0000),
        r(0x900_0000, 0x1000),
        r(0x4000_0000, 0x4000_0000),
    ] {
        assert!(
            !free.iter().any(|w| w.overlaps(&used)),
            "{used} in {free:?}"
        );
    }
    // Sorted and disjoint.
    assert!(free.windows(2).all(|w| w[0].end() < w[1].start()));
}

#[test]
fn soc_device_windows_are_translated() {
    let p = Platform::parse(SOC).unwrap();
    let free = p.free_device_windows();
    // The other serial port, through the /soc `ranges` (0x2000_0000 + 0x1b_0000); the console
    // (reached through two `ranges`) and the GIC (with its GICC/GICH frames) are not given.
    assert_eq!(free, [r(0x201b_0000, 0x1000)]);
    let dev = p
        .devices
        .iter()
        .find(|d| d.path == "/soc/serial@1b0000")
        .unwrap();
    assert_eq!(dev.irqs, [level(72)]);
    for d in &p.devices {
        assert!(!d.path.starts_with("/cpus"), "{}", d.path);
    }
}

#[test]
fn every_good_fixture_parses() {
    for (dtb, cpus, ram) in [
        (VIRT_SMP1, 1, 512u64 << 20),
        (VIRT_SMP4, 4, 2 << 30),
        (VIRT_SMP8, 8, 1 << 30),
        (VIRT_INITRD, 2, 1 << 30),
    ] {
        let p = Platform::parse(dtb).unwrap();
        assert_eq!(
            (p.cpus.len(), p.memory.iter().map(|m| m.size()).sum::<u64>()),
            (cpus, ram)
        );
    }
    let p = Platform::parse(VIRT_INITRD).unwrap();
    assert_eq!(
        (p.bootargs.as_str(), p.initrd),
        (
            "loglevel=debug foo",
            PhysRange::new(0x4800_0000, 0x4800_0013)
        )
    );
    let p = Platform::parse(SOC).unwrap();
    assert_eq!(p.memory.len(), 2);
    assert_eq!(p.reserved.len(), 3);
    assert_eq!(p.gic.redists.len(), 2);
    assert_eq!(p.psci.conduit, Conduit::Hvc);
    assert_eq!(p.uart.base.start(), 0x201c_0000);
}

#[test]
fn every_negative_fixture_names_what_is_wrong() {
    let cases: [(&[u8], &str); 10] = [
        (
            NEG_NO_GIC,
            "device tree: no GICv3 node (compatible \"arm,gic-v3\")",
        ),
        (
            NEG_GIC_REG_TRUNCATED,
            "device tree node '/intc@8000000' property 'reg': not a whole number of (address, size) entries",
        ),
        (
            NEG_PSCI_NO_METHOD,
            "device tree node '/psci' property 'method': missing",
        ),
        (
            NEG_PSCI_BAD_METHOD,
            "device tree node '/psci' property 'method': neither \"smc\" nor \"hvc\"",
        ),
        (
            NEG_NO_STDOUT_PATH,
            "device tree node '/chosen' property 'stdout-path': missing",
        ),
        (
            NEG_UART_DISABLED,
            "device tree node '/pl011@9000000' property 'status': console UART is disabled",
        ),
        (
            NEG_NO_MEMORY,
            "device tree: no memory node (device_type \"memory\") with a non-empty reg",
        ),
        (
            NEG_NO_TIMER,
            "device tree: no timer node (compatible \"arm,armv8-timer\")",
        ),
        (
            NEG_NO_CPUS,
            "device tree node '/cpus': no usable CPU (device_type \"cpu\") child",
        ),
        (
            NEG_SOC_NO_RANGES,
            "device tree node '/soc' property 'ranges': missing, so child addresses are not translatable",
        ),
    ];
    for (dtb, msg) in cases {
        assert_eq!(Platform::parse(dtb).unwrap_err().to_string(), msg);
    }
}

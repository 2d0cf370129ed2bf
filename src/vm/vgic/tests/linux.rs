//! The sequence Linux's irq-gic-v3 driver runs at probe and CPU bring-up, replayed against the
//! model, followed by the interrupts a booted guest depends on.

use super::*;

const SGI: u64 = 0x1_0000;

/// `gic_dist_init` (after `gic_validate_dist_version`).
fn dist_init(g: &mut VGic, boot_mpidr: u64) -> u32 {
    assert_eq!((dread(g, 0xffe8, 4) >> 4) & 0xf, 3, "GICD_PIDR2.ArchRev");
    let typer = dread(g, 4, 4) as u32;
    let lines = (32 * ((typer & 0x1f) + 1)).min(1020);
    assert_eq!(((typer >> 19) & 0x1f) + 1, 10, "IDbits");
    assert_eq!(typer & (1 << 17), 0, "no LPIs");
    assert_eq!(dread(g, 0xc, 4), 0, "TYPER2");

    // Disable, wait for RWP.
    dwrite(g, 0, 4, 0);
    assert_eq!(dread(g, 0, 4) & (1 << 31), 0);
    for i in (32..lines).step_by(32) {
        dwrite(g, 0x80 + u64::from(i / 8), 4, 0xffff_ffff);
    }
    // gic_dist_config: level-low SPIs, default priority, deactivate + disable all.
    for i in (32..lines).step_by(16) {
        dwrite(g, 0xc00 + u64::from(i / 4), 4, 0);
    }
    for i in (32..lines).step_by(4) {
        dwrite(g, 0x400 + u64::from(i), 4, 0xa0a0_a0a0);
    }
    for i in (32..lines).step_by(32) {
        dwrite(g, 0x380 + u64::from(i / 8), 4, 0xffff_ffff);
        dwrite(g, 0x180 + u64::from(i / 8), 4, 0xffff_ffff);
    }
    assert_eq!(dread(g, 0, 4) & (1 << 31), 0, "RWP");
    // ARE_NS | EnableGrp1A | EnableGrp1 ("G1" is bit 0 in Linux's naming).
    dwrite(g, 0, 4, 0x13);
    assert_eq!(dread(g, 0, 4), 0x53);
    assert_ne!(dread(g, 0, 4) & (1 << 6), 0, "DS: security disabled");
    for i in 32..lines {
        dwrite(g, 0x6000 + 8 * u64::from(i), 8, boot_mpidr & 0xff_00ff_ffff);
    }
    lines
}

/// `gic_populate_rdist`: walk the region until the frame whose affinity is this CPU's.
fn find_rdist(g: &mut VGic, mpidr: u64) -> Option<u64> {
    let aff = ((mpidr >> 32 & 0xff) << 24) | (mpidr & 0xff_ffff);
    let mut base = 0;
    loop {
        let pidr2 = match g.redist_region_access(MmioAccess::read(base + 0xffe8, 4)) {
            MmioResult::Read(v) => v,
            r => panic!("{r:?}"),
        };
        if (pidr2 >> 4) & 0xf != 3 {
            return None;
        }
        let typer = match g.redist_region_access(MmioAccess::read(base + 8, 8)) {
            MmioResult::Read(v) => v,
            r => panic!("{r:?}"),
        };
        if typer >> 32 == aff {
            return Some(base);
        }
        if typer & (1 << 4) != 0 {
            return None;
        }
        base += 0x2_0000;
    }
}

/// `gic_enable_redist` + `gic_cpu_init` for vCPU `v` (window at region offset `base`).
fn cpu_init(g: &mut VGic, v: usize, base: u64) {
    let region = |g: &mut VGic, off: u64, value: Option<u64>| {
        let a = match value {
            Some(x) => MmioAccess::write(base + off, 4, x),
            None => MmioAccess::read(base + off, 4),
        };
        match g.redist_region_access(a) {
            MmioResult::Read(x) => x,
            MmioResult::Written => 0,
            MmioResult::Fault => panic!("fault at {off:#x}"),
        }
    };
    let waker = region(g, 0x14, None);
    region(g, 0x14, Some(waker & !2));
    assert_eq!(region(g, 0x14, None) & 4, 0, "ChildrenAsleep clears");
    // gic_cpu_config: everything group 1, deactivated, disabled, default priority.
    region(g, SGI + 0x80, Some(0xffff_ffff));
    region(g, SGI + 0x380, Some(0xffff_ffff));
    region(g, SGI + 0x180, Some(0xffff_ffff));
    for i in (0..32).step_by(4) {
        region(g, SGI + 0x400 + i, Some(0xa0a0_a0a0));
    }
    assert_eq!(region(g, 0, None) & (1 << 3), 0, "GICR_CTLR.RWP");
    assert_eq!(region(g, SGI + 0xc00, None), 0xaaaa_aaaa);
    // IPIs: enable SGIs 0-7. The virtual timer (PPI 27) is level, enabled.
    region(g, SGI + 0x100, Some(0xff));
    let cfg = region(g, SGI + 0xc04, None);
    region(g, SGI + 0xc04, Some(cfg & !(2 << 22)));
    region(g, SGI + 0x100, Some(1 << 27));
    assert_eq!(region(g, SGI + 0x100, None), 0x0800_00ff, "vCPU {v}");
}

#[test]
fn linux_probe_and_bring_up() {
    let vcpus = 20; // Two Aff1 clusters.
    let mut g = gic(vcpus);
    let lines = dist_init(&mut g, mpidr(0));
    assert_eq!(lines, 96);
    for v in 0..vcpus {
        let base = find_rdist(&mut g, mpidr(v)).expect("redistributor found");
        assert_eq!(base, v as u64 * 0x2_0000);
        let typer = rread(&mut g, v, 8, 8);
        assert_eq!((typer >> 8) & 0xffff, v as u64, "Processor_Number");
        assert_eq!(typer & (1 << 4) != 0, v == vcpus - 1, "Last");
        cpu_init(&mut g, v, base);
    }
    assert_eq!(
        find_rdist(&mut g, 0x8000_0303),
        None,
        "the walk stops at Last"
    );

    // The UART (SPI 1 = INTID 33): Linux enables it, the device raises its line.
    dwrite(&mut g, 0x104, 4, 1 << 1);
    assert_eq!(g.set_level(33, 7, true), Some(0), "routed to the boot vCPU");
    // An IPI from vCPU 0 to vCPU 17 (Aff1 = 1, Aff0 = 1) and a broadcast from vCPU 3.
    let to17 = 1 << 1 | 1 << 16 | 2 << 24;
    assert_eq!(g.send_sgi(0, to17), vec![17]);
    let all = 1 << 40 | 5 << 24;
    assert_eq!(
        g.send_sgi(3, all),
        (0..vcpus).filter(|&v| v != 3).collect::<Vec<_>>()
    );
    // Rerouting the UART to vCPU 17, as irq_set_affinity does.
    dwrite(&mut g, 0x6000 + 8 * 33, 8, mpidr(17) & 0xff_00ff_ffff);
    assert_eq!(g.target_of(33, 0), Some(17));

    let (_, lrs, more) = flush(&mut g, 0, 4);
    assert!(!more);
    assert_eq!(lrs.len(), 1);
    assert_eq!(
        (lrs[0].vintid, lrs[0].state, lrs[0].group1, lrs[0].priority),
        (5, LrState::Pending, true, 0xa0)
    );
    let (_, lrs, _) = flush(&mut g, 17, 4);
    let ids: Vec<u32> = lrs.iter().map(|l| l.vintid).collect();
    assert_eq!(ids, [2, 5, 33], "same priority: by INTID");
    assert!(
        lrs[2].eoi && lrs[2].pintid.is_none(),
        "level SPI asks for an EOI maintenance interrupt"
    );
    assert!(!lrs[0].eoi, "SGIs are edge");
}

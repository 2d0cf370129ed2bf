//! Register-level behaviour of the distributor and redistributor windows.

use super::*;
use crate::vm::vgic::Trigger;
use crate::vm::vgic::redist::split_region_offset;

#[test]
fn ctlr_are_and_ds_are_rao_wi() {
    let mut g = gic(1);
    assert_eq!(dread(&mut g, 0, 4), 0x50);
    dwrite(&mut g, 0, 4, 0xffff_ffff);
    assert_eq!(
        dread(&mut g, 0, 4),
        0x53,
        "only EnableGrp0/1 stick; RWP reads 0"
    );
    dwrite(&mut g, 0, 4, 0);
    assert_eq!(dread(&mut g, 0, 4), 0x50);
    assert_eq!(g.dist_access(MmioAccess::read(0, 8)), MmioResult::Fault);
    assert_eq!(g.dist_access(MmioAccess::write(0, 1, 3)), MmioResult::Fault);
}

#[test]
fn typer_iidr_and_id_registers() {
    let mut g = gic(2);
    let typer = dread(&mut g, 4, 4);
    assert_eq!(typer & 0x1f, 2, "ITLinesNumber for 64 SPIs");
    assert_eq!((typer >> 19) & 0x1f, 9, "IDbits: 10 bits");
    assert_eq!(
        typer & (1 << 16 | 1 << 17 | 1 << 10 | 0xe0),
        0,
        "no MBIS, LPIs, security, CPUNumber"
    );
    assert_eq!(dread(&mut g, 8, 4), 0x5700_043b);
    assert_eq!(dread(&mut g, 0xc, 4), 0, "TYPER2");
    assert_eq!(dread(&mut g, 0x10, 4), 0, "STATUSR");
    dwrite(&mut g, 0x10, 4, 0xffff);
    assert_eq!(dread(&mut g, 0x10, 4), 0);
    assert_eq!(dread(&mut g, 0xffe8, 4), 0x3b);
    assert_eq!((dread(&mut g, 0xffe8, 4) >> 4) & 0xf, 3, "ArchRev = GICv3");
    let cidr: Vec<u64> = (0..4).map(|i| dread(&mut g, 0xfff0 + 4 * i, 4)).collect();
    assert_eq!(cidr, [0x0d, 0xf0, 0x05, 0xb1]);
    assert_eq!(
        g.dist_access(MmioAccess::read(0xffe8, 1)),
        MmioResult::Fault
    );
    dwrite(&mut g, 0xffe8, 4, 0);
    assert_eq!(dread(&mut g, 0xffe8, 4), 0x3b, "ID registers are read-only");
    for (spis, lines, count) in [
        (0, 0, 0),
        (32, 1, 32),
        (33, 2, 33),
        (988, 31, 988),
        (5000, 31, 988),
    ] {
        let mut g = VGic::new(&[0], spis);
        assert_eq!(dread(&mut g, 4, 4) & 0x1f, lines, "{spis} SPIs");
        assert_eq!(g.spis(), count);
    }
}

#[test]
fn enable_pending_active_set_clear_roundtrip() {
    let mut g = gic(1);
    // (set register, clear register) pairs for SPIs 32-63.
    for (set, clear) in [(0x104, 0x184), (0x204, 0x284), (0x304, 0x384)] {
        dwrite(&mut g, set, 4, 0x8000_0005);
        assert_eq!(dread(&mut g, set, 4), 0x8000_0005);
        assert_eq!(dread(&mut g, clear, 4), 0x8000_0005);
        dwrite(&mut g, set, 4, 0x2);
        dwrite(&mut g, clear, 4, 0x8000_0001);
        assert_eq!(dread(&mut g, set, 4), 0x6);
        dwrite(&mut g, clear, 4, 0xffff_ffff);
        assert_eq!(dread(&mut g, set, 4), 0);
    }
    // Group is a plain read/write register.
    dwrite(&mut g, 0x84, 4, 0x1234_5678);
    assert_eq!(dread(&mut g, 0x84, 4), 0x1234_5678);
    // INTIDs 96+ do not exist with 64 SPIs: RAZ/WI.
    dwrite(&mut g, 0x10c, 4, 0xffff_ffff);
    assert_eq!(dread(&mut g, 0x10c, 4), 0);
    // One-bit registers are 32-bit only.
    for size in [1, 2, 8] {
        assert_eq!(
            g.dist_access(MmioAccess::read(0x108, size)),
            MmioResult::Fault
        );
    }
}

#[test]
fn level_line_shows_in_ispendr_until_it_drops() {
    let mut g = gic(1);
    g.set_level(40, 0, true);
    assert_eq!(dread(&mut g, 0x204, 4), 1 << 8);
    dwrite(&mut g, 0x284, 4, 1 << 8);
    assert_eq!(
        dread(&mut g, 0x204, 4),
        1 << 8,
        "ICPENDR clears the latch, not the line"
    );
    g.set_level(40, 0, false);
    assert_eq!(dread(&mut g, 0x204, 4), 0);
}

#[test]
fn priority_is_byte_and_word_accessible() {
    let mut g = gic(1);
    dwrite(&mut g, 0x400 + 33, 1, 0x80);
    assert_eq!(dread(&mut g, 0x420, 4), 0x8000);
    assert_eq!(dread(&mut g, 0x421, 1), 0x80);
    dwrite(&mut g, 0x424, 4, 0x1122_3344);
    assert_eq!(dread(&mut g, 0x427, 1), 0x11);
    assert_eq!(dread(&mut g, 0x424, 1), 0x44);
    assert_eq!(g.irq(38, 0).unwrap().priority, 0x22);
    assert_eq!(g.dist_access(MmioAccess::read(0x424, 2)), MmioResult::Fault);
    assert_eq!(g.dist_access(MmioAccess::read(0x428, 8)), MmioResult::Fault);
    assert_eq!(
        g.dist_access(MmioAccess::read(0x425, 4)),
        MmioResult::Fault,
        "misaligned"
    );
    // Beyond the implemented SPIs, and the banked INTIDs 0-31: RAZ/WI.
    dwrite(&mut g, 0x400 + 100, 4, 0xffff_ffff);
    assert_eq!(dread(&mut g, 0x400 + 100, 4), 0);
    dwrite(&mut g, 0x400, 4, 0xffff_ffff);
    assert_eq!(dread(&mut g, 0x400, 4), 0);
    assert_eq!(g.irq(0, 0).unwrap().priority, 0);
}

#[test]
fn icfgr_keeps_only_the_config_bits() {
    let mut g = gic(1);
    dwrite(&mut g, 0xc08, 4, 0xffff_ffff);
    assert_eq!(dread(&mut g, 0xc08, 4), 0xaaaa_aaaa);
    assert_eq!(g.irq(32, 0).unwrap().trigger, Trigger::Edge);
    dwrite(&mut g, 0xc08, 4, 0x2);
    assert_eq!(g.irq(32, 0).unwrap().trigger, Trigger::Edge);
    assert_eq!(g.irq(33, 0).unwrap().trigger, Trigger::Level);
    assert_eq!(g.dist_access(MmioAccess::read(0xc08, 1)), MmioResult::Fault);
}

#[test]
fn banked_and_secure_ranges_are_raz_wi_in_the_distributor() {
    let mut g = gic(1);
    for off in [
        0x80, 0x100, 0x200, 0x300, 0x400, 0x41c, 0xc00, 0xc04, 0xd00, 0xd04, 0xe00, 0xf00,
    ] {
        dwrite(&mut g, off, 4, 0xffff_ffff);
        assert_eq!(dread(&mut g, off, 4), 0, "{off:#x}");
    }
    let private = *g.irq(27, 0).unwrap();
    assert!(!private.enabled && !private.pending && !private.group1 && private.priority == 0);
    // ITARGETSR and the SGI pending registers are byte accessible, RAZ/WI.
    dwrite(&mut g, 0x821, 1, 0xff);
    assert_eq!(dread(&mut g, 0x820, 4), 0);
    dwrite(&mut g, 0xf20, 1, 0xff);
    assert_eq!(dread(&mut g, 0xf20, 4), 0);
}

#[test]
fn irouter_full_and_half_accesses() {
    let mut g = gic(1);
    let at = |intid: u64| 0x6000 + 8 * intid;
    dwrite(&mut g, at(40), 8, u64::MAX);
    assert_eq!(
        dread(&mut g, at(40), 8),
        0xff_80ff_ffff,
        "Aff3, IRM, Aff2-0 only"
    );
    dwrite(&mut g, at(40), 4, 0x0001_0203);
    assert_eq!(dread(&mut g, at(40), 8), 0xff_0001_0203);
    dwrite(&mut g, at(40) + 4, 4, 0x7);
    assert_eq!(dread(&mut g, at(40), 8), 0x07_0001_0203);
    assert_eq!(dread(&mut g, at(40) + 4, 4), 0x7);
    assert_eq!(dread(&mut g, at(40), 4), 0x0001_0203);
    // IROUTER<0-31> are reserved, IROUTER<96+> unimplemented: RAZ/WI.
    for intid in [0, 31, 96, 1019] {
        dwrite(&mut g, at(intid), 8, 0x123);
        assert_eq!(dread(&mut g, at(intid), 8), 0);
    }
    for size in [1, 2] {
        assert_eq!(
            g.dist_access(MmioAccess::read(at(40), size)),
            MmioResult::Fault
        );
    }
    assert_eq!(
        g.dist_access(MmioAccess::read(at(40) + 4, 8)),
        MmioResult::Fault,
        "misaligned"
    );
}

#[test]
fn unknown_offsets_are_raz_wi_and_bad_sizes_fault() {
    let mut g = gic(1);
    for (off, size) in [
        (0x20, 4),
        (0x40, 8),
        (0xd80, 4),
        (0x5000, 2),
        (0x8000, 8),
        (0xfff0_0000, 4),
    ] {
        assert_eq!(
            g.dist_access(MmioAccess::write(off, size, u64::MAX)),
            MmioResult::Written
        );
        assert_eq!(dread(&mut g, off, size), 0, "{off:#x}");
    }
    assert_eq!(g.dist_access(MmioAccess::read(0x20, 3)), MmioResult::Fault);
    assert_eq!(g.dist_access(MmioAccess::read(0x22, 4)), MmioResult::Fault);
    assert_eq!(g.dist_access(MmioAccess::read(0x20, 16)), MmioResult::Fault);
}

#[test]
fn redistributor_rd_frame() {
    let mut g = gic(3);
    for v in 0..3 {
        let typer = rread(&mut g, v, 8, 8);
        assert_eq!(typer >> 32, mpidr(v) & 0xff_ffff);
        assert_eq!((typer >> 8) & 0xffff, v as u64);
        assert_eq!(typer & 0x10 != 0, v == 2, "Last");
        assert_eq!(typer & 0xf, 0, "no PLPIS/VLPIS/DirectLPI");
        assert_eq!(rread(&mut g, v, 8, 4), typer & 0xffff_ffff);
        assert_eq!(rread(&mut g, v, 0xc, 4), typer >> 32);
    }
    rwrite(&mut g, 1, 0, 4, 1);
    assert_eq!(rread(&mut g, 1, 0, 4), 0, "EnableLPIs RAZ/WI, RWP 0");
    assert_eq!(rread(&mut g, 1, 4, 4), 0x5700_043b);
    assert_eq!(rread(&mut g, 1, 0x10, 4), 0);
    for off in [0x70, 0x78] {
        rwrite(&mut g, 1, off, 8, u64::MAX);
        assert_eq!(rread(&mut g, 1, off, 8), 0);
        assert_eq!(rread(&mut g, 1, off, 4), 0);
    }
    assert_eq!(rread(&mut g, 1, 0xffe8, 4), 0x3b);
    assert_eq!(rread(&mut g, 1, 0xffe0, 4), 0x93);
    assert_eq!(
        g.redist_access(1, MmioAccess::read(0x14, 8)),
        MmioResult::Fault
    );
    assert_eq!(
        g.redist_access(1, MmioAccess::read(8, 2)),
        MmioResult::Fault
    );
    assert_eq!(rread(&mut g, 1, 0x200, 8), 0, "reserved");
    // Aff3 goes to bits 63:56.
    let mut g = VGic::new(&[0x42_8003_0201], 0);
    assert_eq!(rread(&mut g, 0, 8, 8) >> 32, 0x4203_0201);
}

#[test]
fn waker_handshake() {
    let mut g = gic(2);
    assert_eq!(rread(&mut g, 1, 0x14, 4), 0x6, "asleep out of reset");
    rwrite(&mut g, 1, 0x14, 4, 0x4);
    assert_eq!(
        rread(&mut g, 1, 0x14, 4),
        0,
        "ChildrenAsleep follows ProcessorSleep"
    );
    assert_eq!(rread(&mut g, 0, 0x14, 4), 0x6, "per vCPU");
    rwrite(&mut g, 1, 0x14, 4, 0x2);
    assert_eq!(rread(&mut g, 1, 0x14, 4), 0x6);
}

#[test]
fn sgi_frame_registers() {
    let mut g = gic(2);
    let sgi = 0x10000;
    assert_eq!(
        rread(&mut g, 0, sgi + 0xc00, 4),
        0xaaaa_aaaa,
        "SGIs are edge"
    );
    rwrite(&mut g, 0, sgi + 0xc00, 4, 0);
    assert_eq!(
        rread(&mut g, 0, sgi + 0xc00, 4),
        0xaaaa_aaaa,
        "ICFGR0 is WI"
    );
    assert_eq!(
        rread(&mut g, 0, sgi + 0xc04, 4),
        0,
        "PPIs level out of reset"
    );
    rwrite(&mut g, 0, sgi + 0xc04, 4, 2 << 22);
    assert_eq!(rread(&mut g, 0, sgi + 0xc04, 4), 2 << 22);
    assert_eq!(g.irq(27, 0).unwrap().trigger, Trigger::Edge);
    assert_eq!(
        g.irq(27, 1).unwrap().trigger,
        Trigger::Level,
        "banked per vCPU"
    );
    rwrite(&mut g, 1, sgi + 0x100, 4, 0x0800_0001);
    assert_eq!(rread(&mut g, 1, sgi + 0x100, 4), 0x0800_0001);
    assert_eq!(rread(&mut g, 0, sgi + 0x100, 4), 0);
    rwrite(&mut g, 1, sgi + 0x180, 4, 1);
    assert_eq!(rread(&mut g, 1, sgi + 0x180, 4), 0x0800_0000);
    rwrite(&mut g, 1, sgi + 0x41b, 1, 0xa0);
    assert_eq!(rread(&mut g, 1, sgi + 0x418, 4), 0xa000_0000);
    for off in [0xd00, 0xe00, 0xe04, 0x84, 0x420] {
        rwrite(&mut g, 1, sgi + off, 4, u64::MAX);
        assert_eq!(rread(&mut g, 1, sgi + off, 4), 0, "{off:#x}");
    }
    assert_eq!(
        g.redist_access(1, MmioAccess::read(sgi + 0x100, 1)),
        MmioResult::Fault
    );
}

#[test]
fn region_offsets_map_to_vcpus() {
    assert_eq!(split_region_offset(0), (0, 0));
    assert_eq!(split_region_offset(0x2_0008), (1, 8));
    assert_eq!(split_region_offset(0x5_0100), (2, 0x1_0100));
    let mut g = gic(2);
    let typer = |g: &mut VGic, off| match g.redist_region_access(MmioAccess::read(off, 8)) {
        MmioResult::Read(v) => v,
        r => panic!("{r:?}"),
    };
    assert_eq!((typer(&mut g, 0x2_0008) >> 8) & 0xffff, 1);
    assert_eq!(typer(&mut g, 0x4_0008), 0, "past the last vCPU");
    assert_eq!(
        g.redist_region_access(MmioAccess::write(0x4_0014, 4, 0)),
        MmioResult::Written
    );
    assert_eq!(rread(&mut g, 5, 0x14, 4), 0);
    assert_eq!(
        g.redist_region_access(MmioAccess::read(u64::MAX - 7, 8)),
        MmioResult::Read(0)
    );
}

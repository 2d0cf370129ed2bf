//! Injection, routing, and the flush/sync cycle through list registers.

use super::*;

#[test]
fn irouter_routing_picks_the_vcpu() {
    let mut g = gic(4);
    enable_dist(&mut g);
    setup_spi(&mut g, 40, 0x80, 2);
    assert_eq!(g.target_of(40, 0), Some(2));
    assert_eq!(g.pend_edge(40, 0), Some(2));
    assert!(!g.pending_for(0) && g.pending_for(2));
    assert!(flush(&mut g, 0, 4).1.is_empty());
    let (_, lrs, _) = flush(&mut g, 2, 4);
    assert_eq!(lrs[0].vintid, 40);
    g.sync(2, &[]);
    // IRM = 1: vCPU 0 takes it. No matching vCPU: nobody.
    dwrite(&mut g, 0x6000 + 8 * 40, 8, 1 << 31 | 3);
    assert_eq!(g.target_of(40, 3), Some(0));
    dwrite(&mut g, 0x6000 + 8 * 40, 8, 0x0100);
    assert_eq!(g.target_of(40, 0), None);
    assert_eq!(g.pend_edge(40, 0), None);
    assert!((0..4).all(|v| !g.pending_for(v) && flush(&mut g, v, 4).1.is_empty()));
}

#[test]
fn target_of_private_and_invalid() {
    let g = gic(2);
    assert_eq!(g.target_of(3, 1), Some(1));
    assert_eq!(g.target_of(27, 0), Some(0));
    assert_eq!(g.target_of(27, 2), None);
    assert_eq!(g.target_of(96, 0), None);
    assert_eq!(g.target_of(u32::MAX, usize::MAX), None);
}

#[test]
fn sgis_targeted_and_broadcast() {
    let mut g = gic(4);
    enable_dist(&mut g);
    for v in 0..4 {
        setup_private(&mut g, v, 1, 0x10);
    }
    // TargetList {0, 2} from vCPU 1.
    assert_eq!(g.send_sgi(1, 0b101 | 1 << 24), vec![0, 2]);
    assert!(g.pending_for(0) && !g.pending_for(1) && g.pending_for(2) && !g.pending_for(3));
    // Broadcast from vCPU 0; SGI 1 disabled on vCPU 3: pending there, but no kick.
    rwrite(&mut g, 3, 0x10180, 4, 1 << 1);
    assert_eq!(g.send_sgi(0, 1 << 40 | 1 << 24), vec![1, 2]);
    assert!(g.irq(1, 3).unwrap().pending);
    assert!(!g.pending_for(3));
    // SGIs are banked: each target gets its own copy.
    for v in 0..3 {
        let (_, lrs, _) = flush(&mut g, v, 4);
        assert_eq!(
            lrs.iter().map(|l| (l.vintid, l.state)).collect::<Vec<_>>(),
            [(1, LrState::Pending)]
        );
    }
}

#[test]
fn flush_orders_by_priority_and_reports_overflow() {
    let mut g = gic(1);
    enable_dist(&mut g);
    let prios = [
        (40, 0x90),
        (41, 0x10),
        (42, 0xf0),
        (43, 0x10),
        (44, 0x50),
        (45, 0x00),
    ];
    for &(intid, prio) in &prios {
        setup_spi(&mut g, intid, prio, 0);
        dwrite(&mut g, 0xc00 + 8, 4, 0xaaaa_aaaa); // SPIs 32-47 edge
        g.pend_edge(intid, 0);
    }
    let (raw, lrs, more) = flush(&mut g, 0, 4);
    assert!(more, "6 pending, 4 list registers");
    assert_eq!(
        lrs.iter().map(|l| l.vintid).collect::<Vec<_>>(),
        [45, 41, 43, 44]
    );
    assert_eq!(lrs[0].priority, 0);
    // The guest takes all four (EOI), the remaining two come next.
    let done: Vec<u64> = raw
        .iter()
        .map(|&v| with_state(v, LrState::Invalid))
        .collect();
    g.sync(0, &done);
    let (_, lrs, more) = flush(&mut g, 0, 4);
    assert!(!more);
    assert_eq!(lrs.iter().map(|l| l.vintid).collect::<Vec<_>>(), [40, 42]);
    // Not touching the list registers keeps everything as it was.
    let (raw, _, _) = flush(&mut g, 0, 4);
    g.sync(0, &raw);
    assert_eq!(flush(&mut g, 0, 4).1.len(), 2);
}

#[test]
fn active_interrupts_keep_a_list_register() {
    let mut g = gic(1);
    enable_dist(&mut g);
    for intid in 40..44 {
        setup_spi(&mut g, intid, 0x20, 0);
        g.set_level(intid, 0, true);
    }
    setup_spi(&mut g, 50, 0xf0, 0);
    dwrite(&mut g, 0x304, 4, 1 << (50 - 32)); // ISACTIVER: SPI 50 active
    dwrite(&mut g, 0x184, 4, 1 << (50 - 32)); // and disabled meanwhile
    let (_, lrs, more) = flush(&mut g, 0, 2);
    assert!(more);
    assert_eq!(
        (lrs[0].vintid, lrs[0].state),
        (50, LrState::Active),
        "active first, even disabled"
    );
    assert_eq!((lrs[1].vintid, lrs[1].state), (40, LrState::Pending));
}

#[test]
fn completed_edge_interrupt_is_cleared() {
    let mut g = gic(1);
    enable_dist(&mut g);
    setup_private(&mut g, 0, 3, 0x40);
    assert_eq!(g.pend_edge(3, 0), Some(0));
    let (raw, lrs, _) = flush(&mut g, 0, 4);
    assert_eq!(lrs[0].state, LrState::Pending);
    assert!(!lrs[0].eoi);
    assert!(
        g.irq(3, 0).unwrap().in_lr && !g.irq(3, 0).unwrap().pending,
        "latch moved to the LR"
    );
    // Acknowledged: active in the model, nothing pending.
    g.sync(0, &[with_state(raw[0], LrState::Active)]);
    let irq = *g.irq(3, 0).unwrap();
    assert!(irq.active && !irq.pending && !irq.in_lr);
    assert!(!g.pending_for(0));
    // A new edge while active: pending + active.
    g.pend_edge(3, 0);
    let (raw, lrs, _) = flush(&mut g, 0, 4);
    assert_eq!(lrs[0].state, LrState::PendingActive);
    // Deactivated, then taken and completed again: the LR is invalid.
    g.sync(0, &[with_state(raw[0], LrState::Invalid)]);
    let irq = *g.irq(3, 0).unwrap();
    assert!(!irq.active && !irq.pending);
    assert!(flush(&mut g, 0, 4).1.is_empty());
    assert_none_in_lr(&g);
}

#[test]
fn level_interrupt_repends_while_the_line_is_high() {
    let mut g = gic(1);
    enable_dist(&mut g);
    setup_spi(&mut g, 33, 0xa0, 0);
    assert_eq!(g.set_level(33, 0, true), Some(0));
    let (raw, lrs, _) = flush(&mut g, 0, 4);
    assert!(lrs[0].eoi && lrs[0].state == LrState::Pending);
    // EOI while the device still asserts the line: pending again.
    g.sync(0, &[with_state(raw[0], LrState::Invalid)]);
    assert!(g.pending_for(0));
    let (raw, lrs, _) = flush(&mut g, 0, 4);
    assert_eq!(lrs[0].vintid, 33);
    // Acknowledged, the device is serviced, then EOI.
    g.sync(0, &[with_state(raw[0], LrState::Active)]);
    assert_eq!(g.set_level(33, 0, false), None);
    let (raw, lrs, _) = flush(&mut g, 0, 4);
    assert_eq!(lrs[0].state, LrState::Active);
    g.sync(0, &[with_state(raw[0], LrState::Invalid)]);
    assert!(!g.pending_for(0));
    assert!(flush(&mut g, 0, 4).1.is_empty());
    // The line dropping before the guest acknowledged retracts it.
    g.set_level(33, 0, true);
    let (raw, _, _) = flush(&mut g, 0, 4);
    g.set_level(33, 0, false);
    g.sync(0, &raw);
    assert!(!g.irq(33, 0).unwrap().is_pending());
}

#[test]
fn level_latch_from_ispendr_clears_on_acknowledge() {
    let mut g = gic(1);
    enable_dist(&mut g);
    setup_spi(&mut g, 34, 0xa0, 0);
    dwrite(&mut g, 0x204, 4, 1 << 2);
    let (raw, _, _) = flush(&mut g, 0, 4);
    assert!(
        g.irq(34, 0).unwrap().pending,
        "level latch stays until acknowledged"
    );
    g.sync(0, &raw);
    assert!(g.irq(34, 0).unwrap().pending, "not acknowledged yet");
    let (raw, _, _) = flush(&mut g, 0, 4);
    g.sync(0, &[with_state(raw[0], LrState::Active)]);
    let irq = *g.irq(34, 0).unwrap();
    assert!(irq.active && !irq.is_pending());
}

#[test]
fn hw_mapped_interrupts() {
    let mut g = gic(2);
    enable_dist(&mut g);
    assert!(g.map_hw(27, 1, 27));
    assert!(g.map_hw(40, 9, 100), "SPIs ignore the vCPU");
    assert!(!g.map_hw(3, 0, 27), "not SGIs");
    assert!(
        !g.map_hw(27, 0, 15) && !g.map_hw(27, 0, 1020),
        "physical PPI or SPI only"
    );
    assert!(!g.map_hw(96, 0, 40) && !g.map_hw(27, 2, 27), "must exist");
    assert_eq!(g.irq(27, 0).unwrap().hw, None, "PPI mapping is per vCPU");
    setup_private(&mut g, 1, 27, 0xa0);
    assert_eq!(g.pend_edge(27, 1), Some(1));
    let (raw, lrs, _) = flush(&mut g, 1, 4);
    assert_eq!(raw[0] >> 61 & 1, 1, "HW");
    assert_eq!(lrs[0].pintid, Some(27));
    assert!(
        !lrs[0].eoi && raw[0] & (1 << 41) == 0,
        "no EOI maintenance for HW"
    );
    // Acknowledged, and the physical source fires again: never pending+active in the LR.
    g.sync(1, &[with_state(raw[0], LrState::Active)]);
    g.pend_edge(27, 1);
    let (raw, lrs, _) = flush(&mut g, 1, 4);
    assert_eq!(lrs[0].state, LrState::Active);
    g.sync(1, &[with_state(raw[0], LrState::Invalid)]);
    let (_, lrs, _) = flush(&mut g, 1, 4);
    assert_eq!(
        lrs[0].state,
        LrState::Pending,
        "the kept latch is delivered after deactivation"
    );
    assert!(g.unmap_hw(27, 1));
    assert_eq!(g.irq(27, 1).unwrap().hw, None);
}

/// A hardware IRQ taken from a VM whose vIRQ is pending but disabled (the guest masked it; the
/// physical interrupt was acknowledged for it and stays active): `take_back_hw` says the
/// physical interrupt must be deactivated and drops the virtual state. Not so for an unlinked
/// vIRQ, nor for one in a list register (the guest's deactivation still reaches the GIC).
#[test]
fn taking_back_a_hardware_irq_left_pending() {
    let mut g = gic(1);
    enable_dist(&mut g);
    setup_spi(&mut g, 40, 0x20, 0);
    assert!(g.map_hw(40, 0, 34));
    dwrite(&mut g, 0x180 + 4, 4, 1 << (40 - 32));
    g.pend_edge(40, 0);
    assert!(flush(&mut g, 0, 4).1.is_empty(), "disabled: not delivered");
    assert_eq!(g.take_back_hw(40, 0), Some(true));
    let irq = g.irq(40, 0).unwrap();
    assert_eq!((irq.hw, irq.pending, irq.active), (None, false, false));
    assert_eq!(g.take_back_hw(40, 0), Some(false), "no longer linked");
    assert_eq!(g.take_back_hw(2000, 0), None);

    // In a list register: left to the guest.
    setup_spi(&mut g, 41, 0x20, 0);
    assert!(g.map_hw(41, 0, 35));
    g.pend_edge(41, 0);
    let (_, lrs, _) = flush(&mut g, 0, 4);
    assert_eq!(lrs.len(), 1);
    assert_eq!(g.take_back_hw(41, 0), Some(false));
}

#[test]
fn disabled_or_group_disabled_never_flushed() {
    let mut g = gic(1);
    setup_spi(&mut g, 35, 0x20, 0);
    g.pend_edge(35, 0);
    assert!(
        flush(&mut g, 0, 4).1.is_empty(),
        "distributor groups disabled"
    );
    assert!(!g.pending_for(0));
    g.sync(0, &[]);
    dwrite(&mut g, 0, 4, 0x1); // Group 0 only.
    assert!(flush(&mut g, 0, 4).1.is_empty());
    g.sync(0, &[]);
    enable_dist(&mut g);
    dwrite(&mut g, 0x184, 4, 1 << 3); // Disabled.
    assert_eq!(g.pend_edge(35, 0), None);
    assert!(flush(&mut g, 0, 4).1.is_empty() && !g.pending_for(0));
    g.sync(0, &[]);
    dwrite(&mut g, 0x104, 4, 1 << 3);
    assert!(g.pending_for(0));
    assert_eq!(flush(&mut g, 0, 4).1[0].vintid, 35);
    g.sync(0, &[]);
    // A group 0 interrupt goes out (as a vFIQ) only with EnableGrp0.
    dwrite(&mut g, 0x84, 4, 0);
    dwrite(&mut g, 0, 4, 0x2);
    assert!(flush(&mut g, 0, 4).1.is_empty());
    g.sync(0, &[]);
    dwrite(&mut g, 0, 4, 0x1);
    let (_, lrs, _) = flush(&mut g, 0, 4);
    assert!(lrs[0].vintid == 35 && !lrs[0].group1);
}

#[test]
fn unsynced_flush_and_odd_readbacks_lose_nothing() {
    let mut g = gic(2);
    enable_dist(&mut g);
    setup_spi(&mut g, 36, 0x20, 0);
    setup_spi(&mut g, 37, 0x30, 0);
    dwrite(&mut g, 0xc08, 4, 0xaaaa_aaaa);
    g.pend_edge(36, 0);
    g.pend_edge(37, 0);
    let (raw, _, _) = flush(&mut g, 0, 4);
    // Flushing again without a sync undoes the first flush.
    let (raw2, _, _) = flush(&mut g, 0, 4);
    assert_eq!(raw, raw2);
    // A short readback and a slot now holding another vINTID count as untouched.
    g.sync(
        0,
        &[with_state(raw[0], LrState::Invalid) & !0xffff_ffff | 99],
    );
    assert!(g.irq(36, 0).unwrap().pending && g.irq(37, 0).unwrap().pending);
    assert_none_in_lr(&g);
    // An SPI loaded on vCPU 0 is not loaded on vCPU 1 after rerouting until vCPU 0 syncs.
    flush(&mut g, 0, 1);
    dwrite(&mut g, 0x6000 + 8 * 36, 8, mpidr(1) & 0xff_ffff);
    assert!(flush(&mut g, 1, 4).1.is_empty());
    g.sync(1, &[]);
    let (raw, _, _) = flush(&mut g, 0, 1);
    assert_eq!(ListReg::decode(raw[0]).vintid, 37);
    g.sync(0, &raw);
    let (_, lrs, _) = flush(&mut g, 1, 4);
    assert_eq!(lrs[0].vintid, 36);
    // Bad vCPUs are harmless.
    let mut lrs = [u64::MAX; 2];
    assert_eq!(g.flush(7, &mut lrs), crate::vm::vgic::FlushInfo::default());
    assert_eq!(lrs, [0, 0]);
    g.sync(7, &[u64::MAX]);
    assert!(!g.pending_for(7));
    assert!(g.flush(0, &mut []).more_pending);
}

#[test]
fn injections_on_invalid_inputs() {
    let mut g = gic(1);
    enable_dist(&mut g);
    setup_private(&mut g, 0, 2, 0);
    assert_eq!(g.set_level(2, 0, true), None, "SGIs have no line");
    assert!(!g.irq(2, 0).unwrap().level);
    for intid in [96, 1020, u32::MAX] {
        assert_eq!(g.set_level(intid, 0, true), None);
        assert_eq!(g.pend_edge(intid, 0), None);
    }
    assert_eq!(g.pend_edge(16, 1), None);
    assert!(
        g.send_sgi(5, u64::MAX).is_empty(),
        "SGI 15 is disabled: nobody to kick"
    );
    assert!(g.irq(15, 0).unwrap().pending);
    assert_eq!(g.send_sgi(5, !(0xd << 24)), vec![0]);
    assert!(g.send_sgi(0, 0x1_0000).is_empty(), "Aff1 = 1: no such vCPU");
}

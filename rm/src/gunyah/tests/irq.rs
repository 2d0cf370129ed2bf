//! IRQ lending: lend, accept, release, reclaim and their notifications.

use super::*;

#[test]
fn irq_lend_accept_release_reclaim() {
    let mut g = gunyah();
    g.add_hwirq(HOST, 79, CapId(0x77));
    let lend = IrqLendRequest {
        borrower: OTHER,
        virq: 80,
        label: 9,
    };
    assert_eq!(g.irq_lend(HOST, &lend), Err(RmError::IrqInvalid));
    let h = g
        .irq_lend(HOST, &IrqLendRequest { virq: 79, ..lend })
        .unwrap();
    assert_eq!(
        g.irq_lend(HOST, &IrqLendRequest { virq: 79, ..lend }),
        Err(RmError::IrqInUse)
    );
    let vmids = [VmidEntry { vmid: OTHER }];
    let notes = g
        .irq_notify(
            HOST,
            &IrqNotifyRequest {
                handle: h,
                flags: 1,
                vmids: List::from_slice(&vmids),
            },
        )
        .unwrap();
    assert_eq!(
        (notes[0].target, notes[0].id),
        (OTHER, ids::NOTIFY_VM_IRQ_LENT)
    );
    let any = IrqAcceptRequest {
        handle: h,
        virq: u32::MAX,
    };
    assert_eq!(g.irq_accept(HOST, &any), Err(RmError::Denied));
    assert_eq!(g.irq_accept(OTHER, &any), Ok(70));
    assert_eq!(g.irq_release(HOST, h, true), Err(RmError::IrqInUse));
    g.irq_release(OTHER, h, false).unwrap();
    assert_eq!(g.irq_release(OTHER, h, false), Err(RmError::IrqReleased));
    g.irq_release(HOST, h, true).unwrap();
    assert_eq!(
        g.calls().log,
        [
            "hwirq_unbind(0x77)",
            "hwirq_bind(0x77, 0x22, 70)",
            "hwirq_unbind(0x77)",
            "hwirq_bind(0x77, 0x12, 79)",
        ]
    );
    assert_eq!(g.irq_release(HOST, h, true), Err(RmError::HandleInvalid));
}

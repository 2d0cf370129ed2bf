//! The architected generic timer node (`compatible = "arm,armv8-timer"`): [`TimerInfo`].

use super::error::DtError;
use super::gic::{Gic, IrqSpec};
use super::tree::Tree;

/// The generic timer's interrupts, in the order of the node's `interrupts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerInfo {
    /// Secure EL1 physical timer.
    pub secure_phys: IrqSpec,
    /// Non-secure EL1 physical timer.
    pub phys: IrqSpec,
    /// EL1 virtual timer.
    pub virt: IrqSpec,
    /// EL2 (hypervisor) physical timer.
    pub hyp_phys: IrqSpec,
    /// EL2 virtual timer (FEAT_VHE), only if the node lists a fifth interrupt.
    pub hyp_virt: Option<IrqSpec>,
    /// `clock-frequency`, which firmware should have put in CNTFRQ_EL0 instead.
    pub clock_frequency: Option<u32>,
}

/// Decodes the first enabled `arm,armv8-timer` node; its interrupts must go to `gic`.
pub(super) fn find(tree: &Tree<'_>, gic: &Gic<'_, '_>) -> Result<TimerInfo, DtError> {
    let node = tree
        .find_compatible("arm,armv8-timer")
        .ok_or(DtError::tree(
            "no timer node (compatible \"arm,armv8-timer\")",
        ))?;
    if !gic.is_parent_of(node) {
        return Err(node.err(Some("interrupt-parent"), "is not the GICv3"));
    }
    let irqs = gic.irqs(node, "interrupts")?;
    let [secure_phys, phys, virt, hyp_phys, rest @ ..] = irqs.as_slice() else {
        return Err(node.err(Some("interrupts"), "fewer than 4 interrupts"));
    };
    Ok(TimerInfo {
        secure_phys: *secure_phys,
        phys: *phys,
        virt: *virt,
        hyp_phys: *hyp_phys,
        hyp_virt: rest.first().copied(),
        clock_frequency: node.u32_prop("clock-frequency")?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fdt::with_tree;
    use super::super::fixtures::*;
    use super::*;
    use alloc::string::ToString;

    fn timer(dtb: &[u8]) -> Result<TimerInfo, DtError> {
        with_tree(dtb, |t| find(t, &Gic::find(t)?))
    }

    fn level(intid: u32) -> IrqSpec {
        IrqSpec { intid, level: true }
    }

    #[test]
    fn qemu_virt_timer() {
        let t = timer(VIRT_SMP2).unwrap();
        assert_eq!(
            (t.secure_phys, t.phys, t.virt, t.hyp_phys),
            (level(29), level(30), level(27), level(26))
        );
        assert_eq!((t.hyp_virt, t.clock_frequency), (None, None));
    }

    #[test]
    fn soc_timer_has_hyp_virt_and_frequency() {
        let t = timer(SOC).unwrap();
        assert_eq!((t.phys, t.hyp_virt), (level(30), Some(level(28))));
        assert_eq!(t.clock_frequency, Some(25_000_000));
    }

    #[test]
    fn missing_timer_is_named() {
        let e = timer(NEG_NO_TIMER).unwrap_err();
        assert_eq!(
            e.to_string(),
            "device tree: no timer node (compatible \"arm,armv8-timer\")"
        );
    }
}

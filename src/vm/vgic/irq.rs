//! The state of one virtual interrupt, as the distributor or a redistributor keeps it.
//!
//! [`Irq`] owns everything the GICv3 registers expose per INTID (enable, pending latch, active,
//! group, priority, trigger, routing) plus what only the hypervisor knows: the level of the
//! source line, the physical INTID a hardware-backed interrupt is linked to, and whether the
//! interrupt currently sits in a list register.

/// Number of SGIs (INTIDs 0-15).
pub const SGIS: u32 = 16;
/// Number of private interrupts per vCPU: SGIs and PPIs (INTIDs 0-31).
pub const PRIVATE: u32 = 32;
/// Largest number of SPIs a distributor can have (INTIDs 32-1019).
pub const MAX_SPIS: u32 = 988;
/// First INTID past the SPI range (1020-1023 are special).
pub const SPECIAL_INTID: u32 = 1020;

/// GICD_IROUTER.Interrupt_Routing_Mode: 1 = any participating PE (1 of N).
pub const IROUTER_IRM: u64 = 1 << 31;
/// Writable bits of GICD_IROUTER: Aff3 (39:32), IRM (31), Aff2 (23:16), Aff1 (15:8), Aff0 (7:0).
pub const IROUTER_MASK: u64 = 0xff_80ff_ffff;
/// The affinity fields of an MPIDR_EL1 (and of GICD_IROUTER, which has the same layout).
pub const AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// How an interrupt becomes pending (GICD_ICFGR / GICR_ICFGR<n>, bit 2n+1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Trigger {
    /// Pending while the line is high (or the software latch is set). The reset value.
    #[default]
    Level,
    /// Pending latched by a rising edge (or a write to ISPENDR) until acknowledged.
    Edge,
}

/// One interrupt's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irq {
    /// Forwarding enabled (ISENABLER / ICENABLER).
    pub enabled: bool,
    /// The pending latch: set by an edge, an ISPENDR write or an injection; cleared by
    /// ICPENDR, or when the pending state moves to the guest (edge) / is acknowledged (level).
    pub pending: bool,
    /// Level of the source line (meaningful for level-triggered sources).
    pub level: bool,
    /// Active (acknowledged by the guest, not yet deactivated).
    pub active: bool,
    /// Group 1 (IGROUPR bit set); group 0 otherwise. Linux makes everything group 1.
    pub group1: bool,
    /// Priority, lower is more urgent (all 8 bits are kept).
    pub priority: u8,
    /// Edge or level; SGIs are always edge.
    pub trigger: Trigger,
    /// GICD_IROUTER value (SPIs only), masked to [`IROUTER_MASK`].
    pub route: u64,
    /// Physical INTID this interrupt is linked to (ICH_LR HW=1): the guest's deactivation
    /// deactivates the physical interrupt.
    pub hw: Option<u32>,
    /// Currently loaded in a list register of the vCPU it targets.
    pub in_lr: bool,
}

impl Irq {
    /// The reset state: disabled, idle, group 0, priority 0, routed to affinity 0.0.0.0.
    pub const fn new(trigger: Trigger) -> Self {
        Self {
            enabled: false,
            pending: false,
            level: false,
            active: false,
            group1: false,
            priority: 0,
            trigger,
            route: 0,
            hw: None,
            in_lr: false,
        }
    }

    /// The reset state of interrupt `intid`: SGIs are edge-triggered, everything else level.
    pub const fn reset(intid: u32) -> Self {
        Self::new(if intid < SGIS {
            Trigger::Edge
        } else {
            Trigger::Level
        })
    }

    /// The architectural pending state: the latch, or a high line for a level interrupt.
    pub const fn is_pending(&self) -> bool {
        self.pending || (matches!(self.trigger, Trigger::Level) && self.level)
    }

    /// Enabled and pending: forwarded to the vCPU interface if its group is enabled too.
    pub const fn ready(&self) -> bool {
        self.enabled && self.is_pending()
    }

    /// The source line changed. An edge interrupt latches on a rising edge.
    pub fn set_level(&mut self, level: bool) {
        if self.trigger == Trigger::Edge && level && !self.level {
            self.pending = true;
        }
        self.level = level;
    }

    /// Whether an SPI routed by [`Irq::route`] (with IRM = 0) targets the PE with `mpidr`.
    pub const fn routed_to(&self, mpidr: u64) -> bool {
        self.route & IROUTER_IRM == 0 && self.route & AFFINITY_MASK == mpidr & AFFINITY_MASK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_pending_follows_line_and_latch() {
        let mut irq = Irq::reset(40);
        assert_eq!(irq.trigger, Trigger::Level);
        irq.set_level(true);
        assert!(irq.is_pending() && !irq.pending);
        irq.set_level(false);
        assert!(!irq.is_pending());
        irq.pending = true;
        assert!(irq.is_pending());
    }

    #[test]
    fn edge_latches_on_rising_edge_only() {
        let mut irq = Irq::reset(3);
        assert_eq!(irq.trigger, Trigger::Edge);
        irq.set_level(true);
        assert!(irq.pending);
        irq.pending = false;
        irq.set_level(true);
        assert!(!irq.is_pending(), "no new edge while the line stays high");
        irq.set_level(false);
        irq.set_level(true);
        assert!(irq.pending);
    }

    #[test]
    fn routing_matches_affinity_and_ignores_irm_targets() {
        let mut irq = Irq::reset(32);
        irq.route = 0x12_0003_0405;
        assert!(irq.routed_to(0x8000_0000 | 0x12_0003_0405));
        assert!(!irq.routed_to(0x0003_0405));
        irq.route |= IROUTER_IRM;
        assert!(!irq.routed_to(0x12_0003_0405));
    }
}

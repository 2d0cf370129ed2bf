//! VPM groups at EL2: a group's state from its members' power, refreshed whenever a member's
//! power changes ([`power_changed`]) so the group's vIRQ tells its owner, and the answer to
//! `vpm_group_get_state`.

use crate::object::vpm::{VpmGroup, VpmState};

use super::machine::{self, Power, VcpuSlot};

/// The group's state now: each member that is part of a VM counts as on unless powered off;
/// one not yet in a VM counts as off.
pub fn state(group: &VpmGroup) -> VpmState {
    VpmGroup::aggregate(
        group
            .members()
            .iter()
            .map(|m| machine::vcpu_slot_of(m).is_some_and(|(_, s)| s.power() != Power::Off)),
    )
}

/// `slot`'s power changed: refresh its group, if it has one.
pub fn power_changed(slot: &VcpuSlot) {
    if let Some(g) = slot.vpm.get() {
        g.update(state(g));
    }
}

/// Whether `slot` is the only member of its group that is on (`true` without a group).
pub fn is_last_on(slot: &VcpuSlot) -> bool {
    let Some(g) = slot.vpm.get() else {
        return true;
    };
    let on = g
        .members()
        .iter()
        .filter_map(|m| machine::vcpu_slot_of(m))
        .filter(|(_, s)| s.power() != Power::Off)
        .count();
    on <= 1
}

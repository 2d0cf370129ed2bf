//! Raising virtual interrupts in a VM from device models and physical events, and waking the
//! vCPU that must take them.

use super::layout::{UART_SPI, VTIMER_INTID};
use super::machine::{Vm, kick};

/// The virtual UART's interrupt line changed (or may have).
pub fn set_uart_level(vm: &Vm, level: bool) {
    let target = vm.vgic.lock().set_level(32 + UART_SPI, 0, level);
    if let Some(v) = target.and_then(|t| vm.vcpus.get(t)) {
        kick(v);
    }
}

/// The physical virtual-timer interrupt fired for vCPU `vcpu` (which runs on this CPU): make
/// the guest's timer PPI pending, linked to the physical one so the guest's EOI deactivates it.
pub fn virtual_timer_fired(vm: &Vm, vcpu: usize) {
    let _ = vm.vgic.lock().pend_edge(VTIMER_INTID, vcpu);
}

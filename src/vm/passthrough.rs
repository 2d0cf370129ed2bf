//! Hardware interrupts delivered to a VM: a hardware IRQ object bound to a VM's VIC routes its
//! physical SPI to the CPU of the VM's vCPU 0 and links it to the vIRQ in the VM's vGIC with the
//! list registers' HW bit (the guest's deactivation deactivates the physical interrupt). Which
//! VM gets which device is the resource manager's decision (it binds the hwirq caps from its
//! boot information); the device's MMIO window reaches the VM as a device memory extent.

use alloc::vec::Vec;
use spin::Mutex;

use crate::arch::aarch64::gic;

use super::machine::{Vm, kick};

/// SPIs forwarded to a VM: (physical INTID, VM, vIRQ).
static OWNERS: Mutex<Vec<(u32, &'static Vm, u32)>> = Mutex::new(Vec::new());

/// Deliver physical SPI `pintid` to `vm` as `virq` (a hardware IRQ bound to its VIC): linked
/// in its vGIC, routed to the CPU of its vCPU 0, enabled. `Busy` if another VM has it.
pub fn route(
    vm: &'static Vm,
    virq: u32,
    pintid: u32,
    level: bool,
) -> Result<(), wurley_abi::Error> {
    use wurley_abi::Error;
    let mut owners = OWNERS.lock();
    if owners.iter().any(|&(i, _, _)| i == pintid) {
        return Err(Error::Busy);
    }
    owners.try_reserve(1).map_err(|_| Error::Nomem)?;
    let v0 = vm.vcpus.first().ok_or(Error::ObjectState)?;
    if !vm.vgic.lock().map_hw(virq, 0, pintid) {
        return Err(Error::ArgumentInvalid);
    }
    if let Err(e) = gic::enable_spi(pintid, super::sched::cpu_mpidr(v0.pcpu()), 0xa0, level) {
        vm.vgic.lock().unmap_hw(virq, 0);
        log::debug!("VM {}: SPI {pintid}: {e:?}", vm.name);
        return Err(Error::ArgumentInvalid);
    }
    owners.push((pintid, vm, virq));
    log::info!(
        "VM {}: hardware IRQ {pintid} delivered as vIRQ {virq}",
        vm.name
    );
    Ok(())
}

/// Take physical SPI `pintid` back from `vm` (a hardware IRQ unbound): disabled, unlinked.
/// If the interrupt came and the guest never took it (its vIRQ pending, e.g. disabled: a
/// borrower that masked a level-triggered line), the physical interrupt, acknowledged for it,
/// is deactivated here and the vIRQ's state dropped; otherwise the next owner would never get
/// it again. If it is in one of the guest's list registers, the guest's deactivation still
/// ends it.
pub fn unroute(vm: &Vm, virq: u32, pintid: u32) {
    OWNERS
        .lock()
        .retain(|&(i, owner, _)| !(i == pintid && core::ptr::eq(owner, vm)));
    if let Err(e) = gic::disable_spi(pintid) {
        log::warn!("SPI {pintid}: not disabled: {e:?}");
    }
    let left_active = vm.vgic.lock().take_back_hw(virq, 0) == Some(true);
    if left_active {
        if let Err(e) = gic::deactivate_spi(pintid) {
            log::warn!("SPI {pintid}: not deactivated: {e:?}");
        }
        log::debug!(
            "VM {}: SPI {pintid} was pending for vIRQ {virq}: deactivated",
            vm.name
        );
    }
    log::info!("VM {}: hardware IRQ {pintid} taken back", vm.name);
}

/// A physical interrupt arrived: if it belongs to a VM, make its virtual twin pending there
/// (left active physically: the guest's deactivation through the HW-linked list register ends
/// it) and return true.
pub fn fired(intid: u32) -> bool {
    let owner = OWNERS
        .lock()
        .iter()
        .find(|(i, _, _)| *i == intid)
        .map(|&(_, vm, virq)| (vm, virq));
    let Some((vm, virq)) = owner else {
        return false;
    };
    let target = vm.vgic.lock().pend_edge(virq, 0);
    if let Some(v) = target.and_then(|t| vm.vcpus.get(t)) {
        kick(v);
    }
    true
}

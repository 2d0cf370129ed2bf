//! Devices passed through to a VM (the manifest's `devices`): their MMIO windows mapped in the
//! VM's stage 2 at the same addresses, their SPIs forwarded with the list registers' HW bit (the
//! guest's deactivation deactivates the physical interrupt), and their nodes in the VM's device
//! tree.
//!
//! A window is mapped in whole 4 KiB pages: a device whose registers share a page with others
//! (QEMU's virtio-mmio slots are 512 bytes) exposes that page. Checks at launch: windows clear of
//! RAM, of the hypervisor's own devices (GIC, console UART) and of the VM's emulated devices and
//! RAM; interrupts implemented by the VM's virtual GIC and not the console's; nothing claimed by
//! two VMs.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use spin::Mutex;
use vm_fdt::FdtWriter;

use crate::arch::aarch64::gic;
use alloc::sync::Arc;

use crate::bundle::DeviceSpec;
use crate::mm::addr::{PAGE_SIZE, PhysRange};
use crate::object::addrspace::AddrSpaceObject;
use crate::object::hwirq::HwirqObject;
use crate::platform::Platform;

use super::layout::{GICD_BASE, SPIS, UART_BASE, UART_SIZE, gicr_size};
use super::machine::{Vm, kick};
use super::vgic::VGic;

/// SPIs forwarded to a VM: (physical INTID, VM, vIRQ).
static OWNERS: Mutex<Vec<(u32, &'static Vm, u32)>> = Mutex::new(Vec::new());

/// Page-aligned windows and INTIDs already given to a VM.
static CLAIMED: Mutex<(Vec<PhysRange>, Vec<u32>)> = Mutex::new((Vec::new(), Vec::new()));

fn pages(base: u64, size: u64) -> Option<PhysRange> {
    PhysRange::from_base_size(base, size).map(|r| r.align_out(PAGE_SIZE))
}

/// Check `devices` for a VM with RAM `[ram_base, ram_base + ram_size)` and `vcpus` vCPUs, and
/// claim what they use. Nothing is claimed if anything is wrong.
pub fn claim(
    platform: &Platform,
    devices: &[DeviceSpec],
    ram_base: u64,
    ram_size: u64,
    vcpus: usize,
) -> Result<(), String> {
    let mut claimed = CLAIMED.lock();
    let mut windows = Vec::new();
    let mut intids = Vec::new();
    let guest_ram = PhysRange::from_base_size(ram_base, ram_size);
    let emulated = [
        PhysRange::from_base_size(GICD_BASE, super::layout::GICD_SIZE),
        PhysRange::from_base_size(super::layout::GICR_BASE, gicr_size(vcpus)),
        PhysRange::from_base_size(UART_BASE, UART_SIZE),
    ];
    let ipa_limit = 1u64 << crate::arch::aarch64::stage2::ipa_bits();
    for d in devices {
        for &(base, size) in &d.regs {
            let w = pages(base, size)
                .ok_or_else(|| format!("device {}: window {base:#x}+{size:#x} wraps", d.name))?;
            let taken = platform.memory.iter().any(|m| m.overlaps(&w))
                || w.overlaps(&platform.gic.dist)
                || platform.gic.redists.iter().any(|r| r.overlaps(&w))
                || w.overlaps(&platform.uart.base);
            if taken {
                return Err(format!(
                    "device {}: window {w} is RAM or the hypervisor's own device",
                    d.name
                ));
            }
            let clash = guest_ram
                .iter()
                .chain(emulated.iter().flatten())
                .any(|r| r.overlaps(&w));
            if clash || w.end() > ipa_limit {
                return Err(format!(
                    "device {}: window {w} collides with the VM's RAM or emulated devices",
                    d.name
                ));
            }
            if claimed
                .0
                .iter()
                .chain(windows.iter())
                .any(|c: &PhysRange| c.overlaps(&w))
            {
                return Err(format!(
                    "device {}: window {w} is already given to a VM",
                    d.name
                ));
            }
            windows.push(w);
        }
        for intid in d.intids() {
            if intid >= 32 + SPIS {
                return Err(format!(
                    "device {}: SPI {} is above the virtual GIC's {SPIS} SPIs",
                    d.name,
                    intid - 32
                ));
            }
            if platform.uart.irq.is_some_and(|i| i.intid == intid) {
                return Err(format!(
                    "device {}: SPI {} is the console's",
                    d.name,
                    intid - 32
                ));
            }
            if claimed.1.contains(&intid) || intids.contains(&intid) {
                return Err(format!(
                    "device {}: SPI {} is already given to a VM",
                    d.name,
                    intid - 32
                ));
            }
            intids.push(intid);
        }
    }
    claimed.0.extend(windows);
    claimed.1.extend(intids);
    Ok(())
}

/// Map the devices' windows into `space` (direct mappings, recorded as the VM's in the memory
/// database) and link their SPIs in `vgic`.
pub fn map(devices: &[DeviceSpec], space: &AddrSpaceObject, vgic: &mut VGic) -> Result<(), String> {
    for d in devices {
        for &(base, size) in &d.regs {
            let w = pages(base, size).ok_or_else(|| String::from("window wraps"))?;
            super::ownership::give_device(space, w)
                .map_err(|e| format!("device {}: {e}", d.name))?;
        }
        for intid in d.intids() {
            vgic.map_hw(intid, 0, intid);
        }
    }
    Ok(())
}

/// The hardware IRQ objects of the bundle's devices: (the VM that has it, its vIRQ there, the
/// object), for the resource manager's caps.
static HWIRQS: Mutex<Vec<(&'static Vm, u32, Arc<HwirqObject>)>> = Mutex::new(Vec::new());

/// The hardware IRQ objects of the devices the bundle passed through.
pub fn hwirqs() -> Vec<(&'static Vm, u32, Arc<HwirqObject>)> {
    HWIRQS.lock().clone()
}

/// Route the devices' physical SPIs to the CPU of `vm`'s vCPU 0 and record the owner; each
/// becomes a hardware IRQ object bound to the VM's VIC (the resource manager gets caps).
pub fn connect(vm: &'static Vm, devices: &[DeviceSpec]) {
    let Some(v0) = vm.vcpus.first() else { return };
    let mut owners = OWNERS.lock();
    for d in devices {
        for (&(spi, flags), intid) in d.interrupts.iter().zip(d.intids()) {
            let level = flags == 4;
            if let Err(e) = gic::enable_spi(intid, super::sched::cpu_mpidr(v0.pcpu()), 0xa0, level)
            {
                log::error!("VM {}: device {}: SPI {spi}: {e:?}", vm.name, d.name);
                continue;
            }
            owners.push((intid, vm, intid));
            let object = HwirqObject::new(intid, level);
            let vic = vm.objects.get().map(|o| &o.vic);
            match vic.map(|v| object.adopt(v, intid)) {
                Some(Ok(())) => HWIRQS.lock().push((vm, intid, object)),
                Some(Err(e)) => log::warn!("VM {}: SPI {spi}: no hwirq object: {e:?}", vm.name),
                None => {}
            }
        }
        log::info!(
            "VM {}: device {} passed through ({} window(s), SPIs {:?})",
            vm.name,
            d.name,
            d.regs.len(),
            d.interrupts.iter().map(|&(s, _)| s).collect::<Vec<_>>()
        );
    }
}

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
/// If the guest had not completed it, it stays active at the GIC until its next owner's
/// guest completes it.
pub fn unroute(vm: &Vm, virq: u32, pintid: u32) {
    OWNERS
        .lock()
        .retain(|&(i, owner, _)| !(i == pintid && core::ptr::eq(owner, vm)));
    if let Err(e) = gic::disable_spi(pintid) {
        log::warn!("SPI {pintid}: not disabled: {e:?}");
    }
    vm.vgic.lock().unmap_hw(virq, 0);
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

/// The devices' nodes in the VM's device tree (the shared writer the resource manager uses
/// too).
pub fn write_nodes(w: &mut FdtWriter, devices: &[DeviceSpec]) -> Result<(), vm_fdt::Error> {
    crate::bundle::write_device_nodes(w, devices)
}

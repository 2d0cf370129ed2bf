//! Starting the VMs of the boot bundle: memory, stage 2, kernel/initrd/DTB placement per the
//! arm64 boot protocol, the virtual devices, and giving each vCPU a physical CPU (shared when there are more vCPUs than CPUs).
//!
//! One VM's failure (not enough memory, a bad image) is reported and the others still start.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::arch::aarch64::cpu;
use crate::arch::aarch64::percpu::PerCpu;
use crate::arch::aarch64::stage2::MEM;
use crate::bundle::{self, Limits, VmSpec};
use crate::mm::FRAMES;
use crate::mm::addr::PAGE_SIZE;
use crate::mm::guestmem::GuestMemory;
use crate::object::addrspace::AddrSpaceObject;
use crate::object::memextent::{MapAttrs, MemExtent};
use crate::platform::Platform;

use super::devicetree::hypervisor::{self, HypNode};
use super::devicetree::{self, GuestDt};
use super::layout::{self, GICD_BASE, GICD_SIZE, GICR_BASE, UART_BASE, UART_SIZE, UART_SPI};
use super::links::{self, Endpoint};
use super::machine::{self, BootState, Power, VcpuSlot, Vm};
use super::vgic::VGic;

const MIB2: u64 = 2 << 20;

/// Parse the bundle, create every valid VM, pin its vCPUs and power on each boot vCPU. Returns
/// how many VMs started.
pub fn launch(platform: &Platform, bundle_bytes: &[u8], cpus: &[&'static PerCpu]) -> usize {
    // vCPUs share physical CPUs (the scheduler round-robins them), so any number fits.
    let limits = Limits {
        max_vcpus_total: u32::MAX,
        max_vcpus_per_vm: 8,
    };
    let mpidrs: Vec<u64> = cpus.iter().map(|c| c.mpidr).collect();
    super::sched::init(&mpidrs);
    super::assemble::set_vtimer_intid(platform.timer.virt.intid);
    if crate::cmdline::launch(&platform.bootargs) == crate::cmdline::Launch::Rm {
        return launch_rm_only(platform, bundle_bytes, cpus);
    }
    let bundle = match bundle::parse(bundle_bytes, &limits) {
        Ok(b) => b,
        Err(e) => {
            log::error!("{e}");
            return 0;
        }
    };
    for e in &bundle.errors {
        log::error!("{e}");
    }
    // Objects first: each VM's device tree lists the caps and vIRQs its links gave it. The
    // resource manager's endpoint goes last, after the manifest's VMs (whose link indices it
    // must not shift).
    let mut endpoints: Vec<Endpoint<'_>> = bundle.vms.iter().map(Endpoint::new).collect();
    // Each VM's address space exists before the links (a proxy scheduler gets a cap to it).
    for (i, ep) in endpoints.iter().enumerate() {
        if let Some(o) = ep.objects.as_ref()
            && let Err(e) = o.space(manifest_vmid(i))
        {
            log::error!("VM {}: address space: {e:?}", ep.name);
        }
    }
    links::wire(&bundle.links, &mut endpoints);
    let grants = super::proxy_wiring::wire(&bundle.vms, &mut endpoints);
    let rm_endpoint = super::rm::endpoint();
    let has_rm = rm_endpoint.is_some();
    if let Some(ep) = rm_endpoint {
        endpoints.push(ep);
        super::rm::link_clients(&mut endpoints);
        super::rm::watch_vms(&bundle.vms, &mut endpoints);
    }
    let mut rm_vms = if has_rm {
        super::rm::describe_vms(&bundle.vms, &mut endpoints)
    } else {
        Vec::new()
    };
    let mut rm_endpoint = if has_rm { endpoints.pop() } else { None };
    if let Some(ep) = rm_endpoint.as_mut() {
        ep.nodes.extend(grants);
    }
    let mut vms: Vec<&'static Vm> = Vec::new();
    let mut owners: Vec<Option<String>> = Vec::new();
    let mut next_pcpu = 0usize;
    let mut focus = None;
    for (i, (spec, ep)) in bundle.vms.iter().zip(endpoints).enumerate() {
        let before = held();
        let vmid = manifest_vmid(i);
        let space = ep.objects.as_ref().and_then(|o| o.addrspace.get().cloned());
        match create(platform, spec, cpus, next_pcpu, &ep.nodes, space, vmid) {
            Ok(vm) => {
                let vm = machine::leak(vm);
                if let Some(objects) = ep.objects {
                    objects.virqs.attach(vm);
                    if let Some(ram) = &vm.ram {
                        objects.ram_extent.call_once(|| ram.clone());
                    }
                    vm.objects.call_once(|| objects);
                }
                super::passthrough::connect(vm, &spec.devices);
                log_held(&vm.name.get(), before, spec.memory_size);
                // Proxy-scheduled vCPUs run on their owner's CPU: they take none.
                if spec.scheduled_by.is_none() {
                    next_pcpu += vm.vcpus.len();
                }
                owners.push(spec.scheduled_by.clone());
                if spec.console && focus.is_none() {
                    focus = Some(vms.len());
                }
                vms.push(vm);
            }
            Err(e) => log::error!("VM {}: not started: {e}", spec.name),
        }
    }
    if vms.is_empty() {
        log::warn!("no VM could be started");
        return 0;
    }
    let count = vms.len();
    // The RM serves the VMs that started: the first is the primary, and the links of those
    // that did not start leave its device tree.
    let primary = vms.first().map(|vm| vm.name.get().clone());
    if let Some(mut ep) = rm_endpoint {
        ep.nodes.retain(|node| match node {
            HypNode::MsgQueuePair { peer, .. } => vms.iter().any(|vm| vm.name == *peer),
            _ => true,
        });
        rm_vms.retain(|e| vms.iter().any(|vm| vm.name == e.name()));
        let hwirqs = match ep.objects.as_ref() {
            Some(o) => {
                super::rm::give_memory_caps(&mut rm_vms, &vms, o);
                super::rm::give_hwirq_caps(o)
            }
            None => Vec::new(),
        };
        let before = held();
        match super::rm::create(
            platform,
            &ep,
            cpus,
            primary.as_deref(),
            bundle_bytes,
            &rm_vms,
            &hwirqs,
        ) {
            Ok(vm) => {
                let vm = machine::leak(vm);
                if let Some(objects) = ep.objects {
                    objects.virqs.attach(vm);
                    vm.objects.call_once(|| objects);
                }
                log_held(&vm.name.get(), before, super::rm::RM_MEMORY);
                vms.push(vm);
                owners.push(None);
            }
            Err(e) => log::error!("resource manager: not started: {e}"),
        }
    }
    super::console::set_focus(focus.unwrap_or(0));
    let orphans = super::proxy_wiring::attach(&vms, &owners);
    let started = vms.clone();
    machine::publish(vms);
    for vm in orphans {
        vm.end(super::machine::EndReason::Crashed);
    }
    for vm in started {
        if let Some(boot) = vm.vcpus.first() {
            log::info!("VM {}: starting vCPU 0 on CPU {}", vm.name, boot.pcpu());
            boot.set_power(Power::OnPending);
            super::sched::make_runnable(boot);
        }
    }
    count
}

/// `launch=rm`: start only the resource manager, which reads the manifest from the bundle and
/// builds its VMs with hypercalls. Its boot information has no VM entries; it gets a hardware
/// IRQ cap for every SPI the hypervisor does not use. Returns 1 if it started.
fn launch_rm_only(platform: &Platform, bundle_bytes: &[u8], cpus: &[&'static PerCpu]) -> usize {
    // Only a device tree can be a bundle: anything else (no magic) has nothing to launch.
    if bundle_bytes.get(..4) != Some(&[0xd0, 0x0d, 0xfe, 0xed]) {
        log::error!("bundle: not a flattened device tree (no FDT magic)");
        return 0;
    }
    log::info!("launch=rm: the resource manager launches the bundle's VMs");
    let Some(ep) = super::rm::endpoint() else {
        log::error!("resource manager: not started");
        return 0;
    };
    let hwirqs = match ep.objects.as_ref() {
        Some(o) => super::rm::give_all_hwirqs(platform, o),
        None => Vec::new(),
    };
    let before = held();
    let vm = match super::rm::create(platform, &ep, cpus, None, bundle_bytes, &[], &hwirqs) {
        Ok(vm) => machine::leak(vm),
        Err(e) => {
            log::error!("resource manager: not started: {e}");
            return 0;
        }
    };
    if let Some(objects) = ep.objects {
        objects.virqs.attach(vm);
        vm.objects.call_once(|| objects);
    }
    log_held(&vm.name.get(), before, super::rm::RM_MEMORY);
    log::info!(
        "resource manager: {} hardware IRQ cap(s) in its boot information",
        hwirqs.len()
    );
    let _ = super::proxy_wiring::attach(&[vm], &[None]);
    machine::publish(Vec::from([vm]));
    if let Some(boot) = vm.vcpus.first() {
        log::info!("VM {}: starting vCPU 0 on CPU {}", vm.name, boot.pcpu());
        boot.set_power(Power::OnPending);
        super::sched::make_runnable(boot);
    }
    1
}

/// The VMID of the address space of the `i`th VM of the manifest (what `addrspace_configure`
/// would have given it): from 0x8000 up, clear of the numbers a resource manager uses for the
/// VMs it makes.
pub fn manifest_vmid(i: usize) -> u16 {
    0x8000u16.saturating_add(u16::try_from(i).unwrap_or(u16::MAX))
}

/// Frames allocated and heap bytes in use, for what one VM costs the hypervisor.
fn held() -> (u64, u64) {
    let frames = {
        let f = FRAMES.lock();
        f.total_bytes() - f.free_bytes()
    };
    (frames, crate::mm::heap::stats().1 as u64)
}

/// Log the memory VM `name` took besides its `ram` bytes of RAM since `before` ([`held`]).
fn log_held(name: &str, before: (u64, u64), ram: u64) {
    let (frames, heap) = held();
    log::info!(
        "VM {name}: {} MiB of RAM; hypervisor memory for it: {} KiB of frames, {} KiB of heap",
        ram >> 20,
        frames.saturating_sub(before.0).saturating_sub(ram) >> 10,
        heap.saturating_sub(before.1) >> 10
    );
}

fn create(
    platform: &Platform,
    spec: &VmSpec<'_>,
    cpus: &[&'static PerCpu],
    first_pcpu: usize,
    hyp_nodes: &[HypNode],
    space: Option<alloc::sync::Arc<AddrSpaceObject>>,
    vmid: u16,
) -> Result<Vm, String> {
    let space = match space {
        Some(s) => s,
        None => {
            AddrSpaceObject::new_for_vm(&MEM, vmid).map_err(|e| format!("address space: {e:?}"))?
        }
    };
    if cpus.is_empty() {
        return Err(String::from("no physical CPU to run it"));
    }
    super::passthrough::claim(
        platform,
        &spec.devices,
        spec.memory_base,
        spec.memory_size,
        spec.vcpus as usize,
    )?;
    let ipa_limit = 1u64 << crate::arch::aarch64::stage2::ipa_bits();
    if spec
        .memory_base
        .checked_add(spec.memory_size)
        .is_none_or(|end| end > ipa_limit)
    {
        return Err(format!(
            "RAM ends above this machine's {ipa_limit:#x} guest address limit"
        ));
    }
    // A VM with devices is identity mapped (IPA = PA): without an SMMU they do DMA to the
    // physical addresses the guest gives them.
    let block = if spec.devices.is_empty() {
        FRAMES.lock().alloc_aligned(spec.memory_size, MIB2)
    } else {
        crate::mm::addr::PhysRange::from_base_size(spec.memory_base, spec.memory_size)
            .ok_or(crate::mm::frames::FrameError::BadRange)
            .and_then(|r| FRAMES.lock().alloc_at(r))
    }
    .map_err(|e| {
        let at = if spec.devices.is_empty() {
            String::new()
        } else {
            format!(
                " at {:#x} (identity mapped for its devices)",
                spec.memory_base
            )
        };
        format!("{} MiB of RAM{at}: {e}", spec.memory_size >> 20)
    })?;
    build(platform, spec, cpus, first_pcpu, block, hyp_nodes, space).inspect_err(|_| {
        // Its extent is gone (the memory database gives the block to the root partition again)
        // and nothing else refers to it: back to the frame allocator.
        let _ = FRAMES.lock().free(block);
    })
}

/// Everything after the RAM allocation (`block`) of [`create`].
fn build(
    platform: &Platform,
    spec: &VmSpec<'_>,
    cpus: &[&'static PerCpu],
    first_pcpu: usize,
    block: crate::mm::addr::PhysRange,
    hyp_nodes: &[HypNode],
    space: alloc::sync::Arc<AddrSpaceObject>,
) -> Result<Vm, String> {
    let vcpus = spec.vcpus as usize;
    let base = spec.memory_base;
    let mut memory = GuestMemory::new(block, base);
    memory.clear();
    let ram = ram_extent(&space, base, block)?;

    // arm64 boot protocol: the Image at a 2 MiB-aligned base plus text_offset; the DTB 8-byte
    // aligned in its own 2 MiB region (the top one); the initrd below it.
    let kernel_ipa = base + spec.kernel.text_offset;
    let kernel_end = kernel_ipa + spec.kernel.image_size;
    let dtb_ipa = base + spec.memory_size - MIB2;
    let initrd = match spec.initrd {
        Some(bytes) => {
            let start = (dtb_ipa - bytes.len() as u64) & !(PAGE_SIZE - 1);
            if start < kernel_end {
                return Err(String::from(
                    "kernel, initrd and device tree do not fit in memory-size",
                ));
            }
            Some((start, start + bytes.len() as u64, bytes))
        }
        None => None,
    };
    if dtb_ipa < kernel_end {
        return Err(String::from(
            "kernel and device tree do not fit in memory-size",
        ));
    }
    memory
        .write(kernel_ipa, spec.kernel.bytes)
        .map_err(|_| String::from("kernel outside guest RAM"))?;
    if let Some((start, _, bytes)) = initrd {
        memory
            .write(start, bytes)
            .map_err(|_| String::from("initrd outside guest RAM"))?;
    }

    let mpidrs: Vec<u64> = (0..vcpus).map(layout::vcpu_mpidr).collect();
    let dt = devicetree::write(&GuestDt {
        model: "wurley,virt",
        memory: (base, spec.memory_size),
        vcpu_mpidrs: &mpidrs,
        gic_dist: (GICD_BASE, GICD_SIZE),
        gic_redist: (GICR_BASE, layout::gicr_size(vcpus)),
        gic_maintenance_ppi: Some(layout::MAINTENANCE_PPI),
        timer_ppis: layout::TIMER_PPIS,
        uart: (UART_BASE, UART_SIZE, UART_SPI),
        bootargs: &spec.bootargs,
        initrd: initrd.map(|(s, e, _)| (s, e)),
        psci_method: "hvc",
        rng_seed: None,
        extra: Some(&|w| {
            super::passthrough::write_nodes(w, &spec.devices)?;
            hypervisor::write(w, hyp_nodes)
        }),
    })
    .map_err(|e| format!("device tree: {e}"))?;
    if dt.len() as u64 > MIB2 {
        return Err(String::from("device tree larger than 2 MiB"));
    }
    memory
        .write(dtb_ipa, &dt)
        .map_err(|_| String::from("device tree outside guest RAM"))?;
    cpu::invalidate_icache();

    let mut vgic = VGic::new(&mpidrs, layout::SPIS);
    for i in 0..vcpus {
        vgic.map_hw(layout::VTIMER_INTID, i, platform.timer.virt.intid);
    }
    super::passthrough::map(&spec.devices, &space, &mut vgic)?;
    // vCPUs go to physical CPUs in turn, continuing where the VM before stopped: one each
    // while there are enough, shared round-robin beyond that.
    let priority = u8::try_from(spec.priority).unwrap_or(crate::sched::PRIORITY_DEFAULT);
    let timeslice_ns = u64::from(spec.timeslice_us) * 1000;
    let slots: Vec<VcpuSlot> = (0..vcpus)
        .filter_map(|i| {
            let pcpu = cpus.get((first_pcpu + i) % cpus.len())?;
            Some(VcpuSlot::new(
                i,
                mpidrs.get(i).copied().unwrap_or(0),
                pcpu.index,
                priority,
                timeslice_ns,
            ))
        })
        .collect();
    let placement: Vec<String> = slots.iter().map(|s| format!("{}", s.pcpu())).collect();
    if let Some(v0) = slots.first() {
        *v0.boot.lock() = BootState {
            pc: kernel_ipa,
            x0: dtb_ipa,
            regs: None,
        };
    }
    log::info!(
        "VM {}: {} MiB at IPA {base:#x} (PA {}), {vcpus} vCPUs on CPUs {}, priority {priority}, kernel at {kernel_ipa:#x}, DTB at {dtb_ipa:#x}{}",
        spec.name,
        spec.memory_size >> 20,
        block,
        placement.join(","),
        initrd
            .map(|(s, e, _)| format!(", initrd [{s:#x}..{e:#x})"))
            .unwrap_or_default()
    );
    let mut vm = Vm::new(spec.name.clone(), space, Some(ram), slots, vgic);
    vm.critical = spec.critical;
    Ok(vm)
}

/// RAM `block` (just taken from the frame allocator, still the root partition's in the memory
/// database) as a memory extent of the root partition, mapped read-write-execute, normal
/// write-back, at `ipa` in `space`. Dropping the extent gives the block back to the root
/// partition (not to the frame allocator: the caller frees it).
pub fn ram_extent(
    space: &alloc::sync::Arc<AddrSpaceObject>,
    ipa: u64,
    block: crate::mm::addr::PhysRange,
) -> Result<alloc::sync::Arc<MemExtent>, String> {
    let partition = super::objects::root_partition();
    let ram = MemExtent::new_preallocated(&MEM, partition, block.start(), block.size())
        .map_err(|e| format!("RAM {block} as an extent: {e:?}"))?;
    space
        .map(&ram, ipa, MapAttrs::RAM)
        .map_err(|e| format!("mapping RAM {block} at {ipa:#x}: {e:?}"))?;
    Ok(ram)
}

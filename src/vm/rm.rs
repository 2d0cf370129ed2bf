//! The root VM: Wurley's resource manager (`rm/`, an EL1 program embedded in the image), made by
//! the hypervisor itself when a boot bundle is present.
//!
//! The RM gets 16 MiB of RAM at IPA `0x4000_0000` with its ELF segments loaded, one vCPU on the
//! boot CPU at priority [`RM_PRIORITY`] (above every guest's default), caps to the root
//! partition, its own cspace and its VIC, the boot bundle mapped read-only at
//! [`BUNDLE_IPA`], and `X0` = the IPA of a boot-information block (`wurley_abi::bootinfo`) that
//! says where all that is and where its device tree is. Every VM of the bundle is linked to it by
//! a message-queue pair (Gunyah's RM RPC transport: depth 8, 240-byte messages): the VM sees a
//! `gunyah-resource-mgr` node under `/hypervisor`, the RM a `message-queue-pair` labelled
//! `rm-<vm name>`.
//!
//! The RM does not count as a VM of the manifest: when those have all ended, the machine powers
//! off. Its own SYSTEM_OFF powers the machine off and its SYSTEM_RESET resets it. With
//! `launch=rm` the hypervisor makes only the RM ([`give_all_hwirqs`]: a hwirq cap per SPI; no VM
//! entries) and the RM launches the manifest's VMs itself.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use wurley_abi::CapId;
use wurley_abi::bootinfo::{self, BootInfo, HwirqEntry, Range, VmEntry};
use wurley_abi::rights::{
    AddrspaceRights, CspaceRights, HwirqRights, MemextentRights, PartitionRights, ThreadRights,
    VicRights,
};
use wurley_abi::vcpu_run::VcpuVirqType;

use crate::arch::aarch64::cpu;
use crate::arch::aarch64::percpu::PerCpu;
use crate::mm::FRAMES;
use crate::mm::addr::{PAGE_SIZE, PhysRange};
use crate::mm::guestmem::GuestMemory;
use crate::object::Object;
use crate::object::handle::{Header, PartitionObject};
use crate::object::hwirq::HwirqObject;
use crate::platform::Platform;

use super::devicetree::hypervisor::{self, HypNode, RM_MESSAGE_SIZE, RM_QUEUE_DEPTH};
use super::devicetree::{self, GuestDt};
use super::layout::{self, GICD_BASE, GICD_SIZE, GICR_BASE, UART_BASE, UART_SIZE, UART_SPI};
use super::links::{self, Endpoint};
use super::machine::{BootState, VcpuSlot, Vm};
use super::objects::{VmObjects, root_partition};
use super::ownership;
use super::vgic::VGic;
use crate::object::addrspace::AddrSpaceObject;

/// The RM's ELF image, built from `rm/` by `build.rs`.
static RM_ELF: &[u8] = include_bytes!(env!("WURLEY_RM_ELF"));

/// Name of the root VM on the console and in logs.
pub const RM_NAME: &str = "rm";
/// The RM's RAM.
pub const RM_MEMORY: u64 = 16 << 20;
/// The RM's vCPU priority: above guests' default (32), so its replies are not held up by them.
pub const RM_PRIORITY: u8 = 48;
/// Where the boot bundle appears in the RM (read-only).
pub const BUNDLE_IPA: u64 = 0x40_0000_0000;
/// The RM's mapping window (boot info v2): IPAs of its address space where it may map memory
/// extents for itself (to write a new VM's device tree). Nothing else is mapped there.
pub const WINDOW_IPA: u64 = 0x60_0000_0000;
/// Size of the mapping window.
pub const WINDOW_SIZE: u64 = 1 << 30;
/// Object memory the RM may create objects with (its partition cap is the root partition's).
const RM_OBJECT_MEMORY: usize = 4 << 20;
/// Caps the RM's cspace holds (slots are allocated as they are used): a hwirq cap per SPI
/// (up to 988) besides the objects of every VM it builds.
const RM_CSPACE_CAPACITY: usize = 4096;
const MIB2: u64 = 2 << 20;
/// Largest boot-information block (what the RM's runtime reads at most).
const BOOT_INFO_MAX: usize = 64 << 10;

/// The RM's objects and its link endpoint, made before the other VMs (their device trees list
/// their RM queues).
pub fn endpoint() -> Option<Endpoint<'static>> {
    let objects = VmObjects::with_capacity(RM_OBJECT_MEMORY, RM_CSPACE_CAPACITY)
        .inspect_err(|e| log::error!("resource manager: objects: {e:?}"))
        .ok()?;
    if let Err(e) = objects.space(wurley_abi::rm::VMID_RM.raw()) {
        log::error!("resource manager: address space: {e:?}");
        return None;
    }
    Some(Endpoint::root(RM_NAME, objects))
}

/// Rights of the RM's caps to the vCPUs it watches.
const WATCH_RIGHTS: ThreadRights = ThreadRights::BIND_VIRQ.union(ThreadRights::STATE);

/// Let the RM watch each VM of `specs` (endpoints `eps`, the RM's last) that is not
/// proxy-scheduled (a proxy owner learns of its guest's end from `vcpu_run`, and may bind the
/// HALT source itself): a cap to the VM's vCPU 0 in the RM's cspace, its HALT source bound to
/// a vIRQ of the RM's VIC, and a [`HypNode::VmWatch`] in the RM's tree.
pub fn watch_vms(specs: &[crate::bundle::VmSpec<'_>], eps: &mut [Endpoint<'_>]) {
    let Some(rm) = eps.len().checked_sub(1) else {
        return;
    };
    for (i, spec) in specs.iter().enumerate().take(rm) {
        if spec.scheduled_by.is_some() {
            continue;
        }
        match watch(eps, i, rm, spec) {
            Ok(node) => eps[rm].nodes.push(node),
            Err(e) => log::error!(
                "VM {}: the resource manager cannot watch it: {e:?}",
                spec.name
            ),
        }
    }
}

/// The RM's watch of VM `vm` (endpoint `eps[vm]`; the RM's is `eps[rm]`).
fn watch(
    eps: &mut [Endpoint<'_>],
    vm: usize,
    rm: usize,
    spec: &crate::bundle::VmSpec<'_>,
) -> Result<HypNode, wurley_abi::Error> {
    let object = eps[vm]
        .objects()?
        .vcpu_objects(spec.vcpus as usize)
        .first()
        .cloned()
        .ok_or(wurley_abi::Error::ArgumentInvalid)?;
    let virq = eps[rm].virq()?;
    let o = eps[rm].objects()?;
    object.bind(VcpuVirqType::Halt, &o.vic, virq)?;
    let cap = o.grant(Object::Vcpu(object), WATCH_RIGHTS.bits())?;
    Ok(HypNode::VmWatch {
        vm: spec.name.clone(),
        cap,
        virq,
    })
}

/// Rights of the RM's caps to a manifest VM's cspace: it hands the VM caps (and takes them
/// back) for the links it makes at run time.
const VM_CSPACE_RIGHTS: CspaceRights = CspaceRights::CAP_CREATE.union(CspaceRights::CAP_DELETE);

/// What the RM is told of each VM of `specs` (endpoints `eps`, the RM's last) in its boot
/// information (version 2): a cap to the VM's cspace and VIC, its free vIRQs and RAM.
pub fn describe_vms(specs: &[crate::bundle::VmSpec<'_>], eps: &mut [Endpoint<'_>]) -> Vec<VmEntry> {
    let Some(rm) = eps.len().checked_sub(1) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, spec) in specs.iter().enumerate().take(rm) {
        let (cspace, vic) = match eps[i].objects() {
            Ok(o) => (
                Some(Object::CSpace(o.cspace_object.clone())),
                Some(Object::Vic(o.vic.clone())),
            ),
            Err(_) => (None, None),
        };
        let Ok(ro) = eps[rm].objects() else {
            return out;
        };
        let grant = |o: Option<Object>, rights: u32| {
            o.and_then(|o| ro.grant(o, rights).ok())
                .map_or(CapId::INVALID, CapId)
        };
        out.push(VmEntry {
            // The VMID, address-space and RAM-extent caps are filled once the VM exists
            // ([`give_memory_caps`]).
            vmid: 0,
            virq_first: eps[i].next_virq,
            virq_limit: 32 + layout::SPIS,
            addrspace: CapId::INVALID,
            ram_extent: CapId::INVALID,
            cspace: grant(cspace, VM_CSPACE_RIGHTS.bits()),
            vic: grant(vic, VicRights::BIND_SOURCE.bits()),
            ram_ipa: spec.memory_base,
            ram_size: spec.memory_size,
            name: VmEntry::name_field(&spec.name),
        });
    }
    out
}

/// Rights of the RM's cap to a manifest VM's address space: map into it (lend, share) and
/// look mappings up.
const VM_SPACE_RIGHTS: AddrspaceRights = AddrspaceRights::MAP.union(AddrspaceRights::LOOKUP);
/// Rights of the RM's cap to the extent over a manifest VM's RAM: derive parcels from it, map
/// and look them up, donate pages.
const VM_RAM_RIGHTS: MemextentRights = MemextentRights::MAP
    .union(MemextentRights::DERIVE)
    .union(MemextentRights::LOOKUP)
    .union(MemextentRights::DONATE);

/// Once the manifest's VMs exist: give the RM (objects `rm`) caps to each started VM's address
/// space and RAM extent, and its VMID, in `entries` (its boot information).
pub fn give_memory_caps(entries: &mut [VmEntry], vms: &[&'static Vm], rm: &VmObjects) {
    for e in entries.iter_mut() {
        let Some(vm) = vms.iter().find(|vm| vm.name == e.name()) else {
            continue;
        };
        let (Some(space), Some(ram)) = (vm.space(), vm.ram.clone()) else {
            continue;
        };
        e.vmid = space.vmid().unwrap_or(0);
        let grant = |o: Object, rights: u32| rm.grant(o, rights).map_or(CapId::INVALID, CapId);
        e.addrspace = grant(Object::AddrSpace(space), VM_SPACE_RIGHTS.bits());
        e.ram_extent = grant(Object::MemExtent(ram), VM_RAM_RIGHTS.bits());
    }
}

/// The hardware IRQs of the bundle's devices, with caps for the RM (objects `rm`), for its
/// boot information.
pub fn give_hwirq_caps(rm: &VmObjects) -> Vec<HwirqEntry> {
    super::passthrough::hwirqs()
        .into_iter()
        .filter_map(|(vm, virq, object)| {
            let vmid = vm.space().and_then(|s| s.vmid())?;
            let cap = rm
                .grant(Object::Hwirq(object), HwirqRights::BIND_VIC.bits())
                .ok()?;
            Some(HwirqEntry {
                vmid,
                virq,
                cap: CapId(cap),
            })
        })
        .collect()
}

/// `launch=rm`: a hardware IRQ object for every SPI the GIC implements except the console's
/// (the one the hypervisor uses), unbound, with a cap for the RM (objects `rm`) listed in its
/// boot information as vmid 0, virq = the INTID. Level or edge as the platform's device tree
/// says (level if it does not).
pub fn give_all_hwirqs(platform: &Platform, rm: &VmObjects) -> Vec<HwirqEntry> {
    let console = platform.uart.irq.map(|i| i.intid);
    let spis = crate::arch::aarch64::gic::spi_count();
    (32..32 + spis.min(988))
        .filter(|&intid| Some(intid) != console)
        .filter_map(|intid| {
            let level = platform.spi_level(intid).unwrap_or(true);
            let object = HwirqObject::new(intid, level);
            let cap = rm
                .grant(Object::Hwirq(object), HwirqRights::BIND_VIC.bits())
                .inspect_err(|e| log::error!("resource manager: hwirq {intid}: no cap: {e:?}"))
                .ok()?;
            Some(HwirqEntry {
                vmid: 0,
                virq: intid,
                cap: CapId(cap),
            })
        })
        .collect()
}

/// Link every VM endpoint in `eps` (all but the last, which is the RM's) to the RM.
pub fn link_clients(eps: &mut [Endpoint<'_>]) {
    let Some(rm) = eps.len().checked_sub(1) else {
        return;
    };
    for client in 0..rm {
        match links::queue_pair(eps, client, rm, RM_QUEUE_DEPTH, RM_MESSAGE_SIZE) {
            Ok((c, r)) => {
                let name = String::from(eps[client].name);
                eps[client].nodes.push(HypNode::ResourceManager {
                    tx_cap: c.tx_cap,
                    rx_cap: c.rx_cap,
                    tx_virq: c.tx_virq,
                    rx_virq: c.rx_virq,
                });
                eps[rm].nodes.push(links::pair_node(
                    &format!("rm-{name}"),
                    r,
                    RM_QUEUE_DEPTH,
                    RM_MESSAGE_SIZE,
                    name,
                ));
            }
            Err(e) => log::error!(
                "VM {}: no link to the resource manager: {e:?}",
                eps[client].name
            ),
        }
    }
}

/// Make the RM VM from its endpoint; `primary` is the first VM of the manifest that started (VMID 3 in the
/// RM's numbering), `bundle` the boot bundle in hypervisor memory.
pub fn create(
    platform: &Platform,
    ep: &Endpoint<'_>,
    cpus: &[&'static PerCpu],
    primary: Option<&str>,
    bundle: &[u8],
    vms: &[VmEntry],
    hwirqs: &[HwirqEntry],
) -> Result<Vm, String> {
    let boot_cpu = cpus.first().ok_or_else(|| String::from("no CPU"))?;
    let objects = ep.objects().map_err(|e| format!("objects: {e:?}"))?;
    let base = layout::RAM_BASE;
    let image = super::elf::parse(RM_ELF, base, RM_MEMORY - MIB2)
        .map_err(|e| format!("embedded image: {e:?}"))?;
    let block = FRAMES
        .lock()
        .alloc_aligned(RM_MEMORY, MIB2)
        .map_err(|e| format!("{} MiB of RAM: {e}", RM_MEMORY >> 20))?;
    let space = objects
        .space(wurley_abi::rm::VMID_RM.raw())
        .map_err(|e| format!("address space: {e:?}"))
        .cloned();
    // On failure the RAM extent (if made) is gone by now: the block is the root partition's
    // again and goes back to the frame allocator.
    space
        .and_then(|space| {
            build(
                platform, ep, boot_cpu, cpus, primary, bundle, &image, block, space, vms, hwirqs,
            )
        })
        .inspect_err(|_| {
            let _ = FRAMES.lock().free(block);
        })
}

/// Everything after the RAM allocation (`block`) of [`create`].
#[allow(clippy::too_many_arguments)]
fn build(
    platform: &Platform,
    ep: &Endpoint<'_>,
    boot_cpu: &PerCpu,
    cpus: &[&'static PerCpu],
    primary: Option<&str>,
    bundle: &[u8],
    image: &super::elf::Image<'_>,
    block: PhysRange,
    space: alloc::sync::Arc<AddrSpaceObject>,
    vms: &[VmEntry],
    hwirqs: &[HwirqEntry],
) -> Result<Vm, String> {
    let objects = ep.objects().map_err(|e| format!("objects: {e:?}"))?;
    let base = layout::RAM_BASE;
    let mut memory = GuestMemory::new(block, base);
    memory.clear();
    let ram = super::launch::ram_extent(&space, base, block)?;
    // The bundle, read-only, whole pages around it.
    let start = bundle.as_ptr() as u64;
    let pages = PhysRange::from_base_size(start, bundle.len() as u64)
        .map(|r| r.align_out(PAGE_SIZE))
        .ok_or_else(|| String::from("bundle wraps"))?;
    ownership::show_hypervisor_pages(&space, BUNDLE_IPA, pages)
        .map_err(|e| format!("bundle mapping: {e}"))?;
    for seg in &image.segments {
        memory
            .write(seg.ipa, seg.bytes)
            .map_err(|_| String::from("image outside its RAM"))?;
    }

    // Caps the RM starts with: the root partition, its cspace, its VIC.
    let grant = |o: Object, rights: u32| objects.grant(o, rights).unwrap_or(CapId::INVALID.raw());
    let root = PartitionObject::new(Header::new_active(), root_partition().clone(), None);
    let partition = grant(Object::Partition(root), PartitionRights::ALL.bits());
    let cspace = grant(
        Object::CSpace(objects.cspace_object.clone()),
        CspaceRights::ALL.bits(),
    );
    let vic = grant(Object::Vic(objects.vic.clone()), VicRights::ALL.bits());
    // Its own address space (it maps extents into its window to write VMs' device trees) and
    // its own vCPU.
    let own_space = grant(
        Object::AddrSpace(space.clone()),
        AddrspaceRights::ALL.bits(),
    );
    let own_vcpu = objects
        .vcpu_objects(1)
        .first()
        .map_or(CapId::INVALID.raw(), |v| {
            grant(Object::Vcpu(v.clone()), ThreadRights::ALL.bits())
        });

    let dtb_ipa = base + RM_MEMORY - MIB2;
    let mpidrs = [layout::vcpu_mpidr(0)];
    // The RM's own options: the primary VM, and `rm.debug=` passed on from the hypervisor's
    // command line.
    let mut args = Vec::new();
    if let Some(p) = primary {
        args.push(format!("rm.primary={p}"));
    }
    if let Some(d) = crate::cmdline::param(&platform.bootargs, "rm.debug") {
        args.push(format!("rm.debug={d}"));
    }
    let bootargs = args.join(" ");
    let dt = devicetree::write(&GuestDt {
        model: "wurley,virt",
        memory: (base, RM_MEMORY),
        vcpu_mpidrs: &mpidrs,
        gic_dist: (GICD_BASE, GICD_SIZE),
        gic_redist: (GICR_BASE, layout::gicr_size(1)),
        gic_maintenance_ppi: Some(layout::MAINTENANCE_PPI),
        timer_ppis: layout::TIMER_PPIS,
        uart: (UART_BASE, UART_SIZE, UART_SPI),
        bootargs: &bootargs,
        initrd: None,
        psci_method: "hvc",
        rng_seed: None,
        extra: Some(&|w| hypervisor::write(w, &ep.nodes)),
    })
    .map_err(|e| format!("device tree: {e}"))?;
    memory
        .write(dtb_ipa, &dt)
        .map_err(|_| String::from("device tree too large"))?;
    let info = BootInfo {
        partition: CapId(partition),
        cspace: CapId(cspace),
        vic: CapId(vic),
        vcpu: CapId(own_vcpu),
        addrspace: CapId(own_space),
        bundle_ipa: BUNDLE_IPA + (start - pages.start()),
        bundle_size: bundle.len() as u64,
        dtb_ipa,
        cpus: cpus.len() as u32,
        counter_hz: cpu::counter_frequency(),
        window: (WINDOW_IPA, WINDOW_SIZE),
    };
    // The RAM the root partition holds now; the RM makes extents over it with
    // `memextent_configure`.
    let free: Vec<Range> = FRAMES
        .lock()
        .free_ranges()
        .map(|r| Range {
            base: r.start(),
            size: r.size(),
        })
        .collect();
    let mut block_bytes = alloc::vec![0u8; bootinfo::size_v2(free.len(), vms.len(), hwirqs.len())];
    info.encode_v2(&free, vms, hwirqs, &mut block_bytes)
        .ok_or_else(|| String::from("boot information does not fit"))?;
    // Whole pages right below the device tree, clear of the image (its BSS and stack too).
    let info_ipa = dtb_ipa - (block_bytes.len() as u64).next_multiple_of(PAGE_SIZE);
    let image_end = image
        .segments
        .iter()
        .map(|s| s.ipa + s.mem_size.max(s.bytes.len() as u64))
        .max()
        .unwrap_or(base);
    if block_bytes.len() > BOOT_INFO_MAX || info_ipa < image_end {
        return Err(alloc::format!(
            "boot information of {} bytes does not fit below the device tree",
            block_bytes.len()
        ));
    }
    memory
        .write(info_ipa, &block_bytes)
        .map_err(|_| String::from("boot information outside RAM"))?;
    cpu::invalidate_icache();

    let mut vgic = VGic::new(&mpidrs, layout::SPIS);
    vgic.map_hw(layout::VTIMER_INTID, 0, platform.timer.virt.intid);
    let slot = VcpuSlot::new(
        0,
        mpidrs[0],
        boot_cpu.index,
        RM_PRIORITY,
        crate::sched::TIMESLICE_DEFAULT_NS,
    );
    *slot.boot.lock() = BootState {
        pc: image.entry,
        x0: info_ipa,
        regs: None,
    };
    log::info!(
        "resource manager: {} KiB image, {} MiB at IPA {base:#x}, {} client(s), priority {RM_PRIORITY} on CPU {}",
        RM_ELF.len() / 1024,
        RM_MEMORY >> 20,
        ep.nodes.len(),
        boot_cpu.index
    );
    let mut vm = Vm::new(
        String::from(RM_NAME),
        space,
        Some(ram),
        Vec::from([slot]),
        vgic,
    );
    vm.root = true;
    Ok(vm)
}

//! The root VM: Wurley's resource manager (`rm/`, an EL1 program embedded in the image), the
//! only VM the hypervisor makes itself, when a boot bundle is present.
//!
//! The RM gets 16 MiB of RAM at IPA `0x4000_0000` with its ELF segments loaded, one vCPU on the
//! boot CPU at priority [`RM_PRIORITY`] (above every guest's default), caps to the root
//! partition, its own cspace, address space, vCPU and VIC, a hardware IRQ cap for every SPI the
//! hypervisor does not use ([`give_all_hwirqs`]), the boot bundle mapped read-only at
//! [`BUNDLE_IPA`], and `X0` = the IPA of a boot-information block (`wurley_abi::bootinfo`) that
//! says where all that is, which RAM is free, and where its device tree is. From there the RM
//! reads the bundle's manifest and builds every VM through hypercalls.
//!
//! Its own SYSTEM_OFF powers the machine off and its SYSTEM_RESET resets it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use wurley_abi::CapId;
use wurley_abi::bootinfo::{self, BootInfo, HwirqEntry, Range};
use wurley_abi::rights::{
    AddrspaceRights, CspaceRights, HwirqRights, PartitionRights, ThreadRights, VicRights,
};

use crate::arch::aarch64::cpu;
use crate::arch::aarch64::percpu::PerCpu;
use crate::mm::FRAMES;
use crate::mm::addr::{PAGE_SIZE, PhysRange};
use crate::mm::guestmem::GuestMemory;
use crate::object::Object;
use crate::object::handle::{Header, PartitionObject};
use crate::object::hwirq::HwirqObject;
use crate::platform::Platform;

use super::devicetree::hypervisor;
use super::devicetree::{self, GuestDt};
use super::layout::{self, GICD_BASE, GICD_SIZE, GICR_BASE, UART_BASE, UART_SIZE, UART_SPI};
use super::machine::{BootState, VcpuSlot, Vm};
use super::objects::{VmObjects, root_partition};
use super::ownership;
use super::vgic::VGic;
use crate::arch::aarch64::stage2::MEM;
use crate::object::addrspace::AddrSpaceObject;
use crate::object::memextent::{MapAttrs, MemExtent};

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

/// The RM's objects (partition, cspace, VIC) and its address space.
pub fn objects() -> Option<VmObjects> {
    let objects = VmObjects::with_capacity(RM_OBJECT_MEMORY, RM_CSPACE_CAPACITY)
        .inspect_err(|e| log::error!("resource manager: objects: {e:?}"))
        .ok()?;
    if let Err(e) = objects.space(wurley_abi::rm::VMID_RM.raw()) {
        log::error!("resource manager: address space: {e:?}");
        return None;
    }
    Some(objects)
}

/// A hardware IRQ object for every SPI the GIC implements except the console's
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

/// Make the RM VM with its `objects` ([`objects`]); `bundle` is the boot bundle in hypervisor
/// memory, `hwirqs` the hardware IRQ caps its boot information lists.
pub fn create(
    platform: &Platform,
    objects: &VmObjects,
    cpus: &[&'static PerCpu],
    bundle: &[u8],
    hwirqs: &[HwirqEntry],
) -> Result<Vm, String> {
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
    let root = Root {
        platform,
        objects,
        cpus,
        bundle,
        hwirqs,
    };
    space
        .and_then(|space| build(&root, &image, block, space))
        .inspect_err(|_| {
            let _ = FRAMES.lock().free(block);
        })
}

/// What [`create`] makes the RM from.
struct Root<'a> {
    platform: &'a Platform,
    objects: &'a VmObjects,
    cpus: &'a [&'static PerCpu],
    bundle: &'a [u8],
    hwirqs: &'a [HwirqEntry],
}

/// Everything after the RAM allocation (`block`) of [`create`].
fn build(
    root: &Root<'_>,
    image: &super::elf::Image<'_>,
    block: PhysRange,
    space: alloc::sync::Arc<AddrSpaceObject>,
) -> Result<Vm, String> {
    let Root {
        platform,
        objects,
        cpus,
        bundle,
        hwirqs,
    } = *root;
    let boot_cpu = cpus.first().ok_or_else(|| String::from("no CPU"))?;
    let base = layout::RAM_BASE;
    let mut memory = GuestMemory::new(block, base);
    memory.clear();
    let ram = ram_extent(&space, base, block)?;
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
    // The RM's own options: `rm.debug=` passed on from the hypervisor's command line.
    let bootargs = crate::cmdline::param(&platform.bootargs, "rm.debug")
        .map(|d| format!("rm.debug={d}"))
        .unwrap_or_default();
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
        extra: Some(&|w| hypervisor::write(w, &[])),
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
    let mut block_bytes = alloc::vec![0u8; bootinfo::size_v2(free.len(), 0, hwirqs.len())];
    info.encode_v2(&free, &[], hwirqs, &mut block_bytes)
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
        "resource manager: {} KiB image, {} MiB at IPA {base:#x}, priority {RM_PRIORITY} on CPU {}",
        RM_ELF.len() / 1024,
        RM_MEMORY >> 20,
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

/// RAM `block` (just taken from the frame allocator, still the root partition's in the memory
/// database) as a memory extent of the root partition, mapped read-write-execute, normal
/// write-back, at `ipa` in `space`. Dropping the extent gives the block back to the root
/// partition (not to the frame allocator: the caller frees it).
fn ram_extent(
    space: &alloc::sync::Arc<AddrSpaceObject>,
    ipa: u64,
    block: PhysRange,
) -> Result<alloc::sync::Arc<MemExtent>, String> {
    let ram = MemExtent::new_preallocated(&MEM, root_partition(), block.start(), block.size())
        .map_err(|e| format!("RAM {block} as an extent: {e:?}"))?;
    space
        .map(&ram, ipa, MapAttrs::RAM)
        .map_err(|e| format!("mapping RAM {block} at {ipa:#x}: {e:?}"))?;
    Ok(ram)
}

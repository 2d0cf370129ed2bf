//! The boot CPU's path from `boot/entry.S` to the idle loop.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use crate::arch::aarch64::mmu::Tables;
use crate::arch::aarch64::percpu::{self, PerCpu};
use crate::arch::aarch64::pl011::Pl011;
use crate::arch::aarch64::{cpu, exception, gic, psci};
use crate::arch::stage1::{self, MapRequest, Perm};
use crate::boot::image;
use crate::boot::secondary::{ONLINE, SecondaryBoot};
use crate::cmdline;
use crate::mm::addr::{PAGE_SIZE, PhysRange};
use crate::mm::frames::FrameAllocator;
use crate::mm::heap;
use crate::platform::{Conduit, DtError, Platform, UartInfo};

/// Frames of stack each secondary CPU gets.
const SECONDARY_STACK_PAGES: u64 = 16;
/// Heap added from free RAM once the frame allocator exists.
const HEAP_GROWTH: u64 = 4 << 20;
/// How long a CPU gets to report in after `CPU_ON`, in milliseconds.
const CPU_ON_TIMEOUT_MS: u64 = 2000;

/// Rust entry of the boot CPU: MMU off, boot stack, vectors installed, image relocated.
#[unsafe(no_mangle)]
extern "C" fn primary_main(untrusted_dtb: u64, _load_base: u64) -> ! {
    let layout = image::layout();
    let Some(dtb_range) = dtb_header_range(untrusted_dtb) else {
        // No device tree means no console to report on: there is nothing better to do.
        exception::stop_this_cpu();
    };

    // SAFETY: this is the only `Tables`, created once on the boot CPU.
    let mut tables = unsafe { Tables::new() };
    let early = [MapRequest {
        range: dtb_range,
        perm: Perm::ReadOnly,
    }];
    for req in early.iter().chain(layout.requests().iter()) {
        if tables.map(req).is_err() {
            exception::stop_this_cpu();
        }
    }
    // SAFETY: BSS, the boot stack and the relocated data were written with the caches off; no
    // cacheable alias has been used yet, so dropping any stale lines loses nothing.
    unsafe { cpu::invalidate_dcache_range(layout.data.start(), layout.data.size()) };
    // SAFETY: the tables map the whole image with its permissions, and the DTB; nothing else is
    // touched until more is mapped.
    unsafe { tables.enable() };
    heap::init();

    // SAFETY: `dtb_header_range` checked the header; the range is mapped read-only and nothing
    // writes it.
    let dtb = unsafe {
        core::slice::from_raw_parts(dtb_range.start() as *const u8, dtb_range.size() as usize)
    };
    let platform = match Platform::parse(dtb) {
        Ok(p) => p,
        Err(e) => boot_error(&mut tables, dtb, &e),
    };

    let devices = [platform.uart.base, platform.gic.dist]
        .into_iter()
        .chain(platform.gic.redists.iter().copied())
        .collect::<Vec<_>>();
    let no_map: Vec<PhysRange> = platform
        .reserved
        .iter()
        .filter(|r| r.no_map)
        .map(|r| r.range)
        .collect();
    for req in stage1::platform_requests(&layout, dtb_range, &platform.memory, &no_map, &devices) {
        if let Err(e) = tables.map(&req) {
            // The console may not be mapped yet: make it so first, then complain.
            start_console(&mut tables, &platform.uart);
            panic!("cannot map {:?} {}: {e}", req.perm, req.range);
        }
    }
    start_console(&mut tables, &platform.uart);
    let me = cpu::mpidr();
    let Some(boot_index) = platform.cpus.iter().position(|c| c.mpidr == me) else {
        panic!("boot CPU (MPIDR {me:#x}) is not in the device tree's /cpus");
    };
    let boot_cpu: &'static PerCpu = Box::leak(Box::new(PerCpu::new(boot_index, me, usize::MAX)));
    percpu::install(boot_cpu);
    crate::logger::init(
        cmdline::log_level(&platform.bootargs).unwrap_or_else(cmdline::default_log_level),
    );
    banner(&platform, dtb_range, &layout);

    let frames = memory(&platform, &layout, dtb_range);
    *crate::mm::FRAMES.lock() = grow_heap(frames);

    psci::set_conduit_hvc(platform.psci.conduit == Conduit::Hvc);
    match psci::version() {
        Ok((major, minor)) => log::info!("PSCI {major}.{minor} via {:?}", platform.psci.conduit),
        Err(e) => log::warn!("PSCI_VERSION failed: {e:?}"),
    }

    let redists = redistributor_frames(&platform);
    // SAFETY: the GIC regions come from the DT, are mapped as Device above and are handed to the
    // driver here only.
    let boot_redist = match unsafe {
        gic::init(
            platform.gic.dist.start(),
            redist_base(&platform),
            redists,
            me,
        )
    } {
        Ok(i) => i,
        Err(e) => panic!("GICv3 at {}: {e}", platform.gic.dist),
    };
    let boot_cpu: &'static PerCpu = Box::leak(Box::new(PerCpu::new(boot_index, me, boot_redist)));
    percpu::install(boot_cpu);
    log::info!(
        "GICv3: distributor {}, {} redistributor frame(s), boot CPU on redistributor {}",
        platform.gic.dist,
        redists,
        boot_redist
    );

    cpu::route_interrupts_to_el2();
    cpu::trap_fp_at_el2();
    crate::irq::configure(
        crate::irq::Sources {
            hyp_timer: platform.timer.hyp_phys.intid,
            virt_timer: platform.timer.virt.intid,
            maintenance: platform.gic.maintenance.map(|i| i.intid),
            uart: platform.uart.irq.map(|i| i.intid),
        },
        cpu::counter_frequency(),
    );
    crate::arch::aarch64::stage2::init_this_cpu();
    if let Err(e) = crate::irq::start_this_cpu(boot_redist) {
        panic!(
            "hypervisor timer (INTID {}): {e}",
            platform.timer.hyp_phys.intid
        );
    }
    ONLINE.fetch_add(1, Ordering::AcqRel);
    let mut cpus: Vec<&'static PerCpu> = Vec::with_capacity(platform.cpus.len());
    cpus.push(boot_cpu);

    let regs = tables.regs();
    for (index, info) in platform.cpus.iter().enumerate() {
        if index == boot_index {
            continue;
        }
        if info.enable_method.as_deref() != Some("psci") {
            log::warn!(
                "CPU {index} (MPIDR {:#x}): enable-method {:?} is not supported (only psci); left off",
                info.mpidr,
                info.enable_method
            );
            continue;
        }
        match start_secondary(index, info.mpidr, redists, regs) {
            Ok(cpu) => cpus.push(cpu),
            Err(e) => log::error!(
                "CPU {index} (MPIDR {:#x}) did not come online: {e}",
                info.mpidr
            ),
        }
    }
    let online = ONLINE.load(Ordering::Acquire);
    log::info!("{online} of {} CPUs online", platform.cpus.len());

    cpu::enable_irqs();
    wait_for_ticks(&cpus);
    let (heap_total, heap_used) = heap::stats();
    log::info!(
        "heap: {} KiB, {} KiB in use; {} MiB of RAM free",
        heap_total >> 10,
        heap_used >> 10,
        crate::mm::FRAMES.lock().free_bytes() >> 20
    );
    let frames_held = {
        let f = crate::mm::FRAMES.lock();
        f.total_bytes() - f.free_bytes()
    };
    log::info!(
        "RAM held by the hypervisor: {} KiB (image {} KiB, frames {} KiB)",
        (layout.whole().size() + frames_held) >> 10,
        layout.whole().size() >> 10,
        frames_held >> 10
    );

    {
        let db = crate::mm::MEMDB.lock();
        let size = |o| db.ranges_of(o).map(|(s, e)| e - s).sum::<u64>();
        log::info!(
            "memory database: {} ranges; root partition {} MiB, hypervisor {} KiB",
            db.len(),
            size(crate::mm::ROOT_PARTITION) >> 20,
            size(crate::mm::memdb::Owner::Hypervisor) >> 10
        );
    }
    // Device windows the hypervisor does not use are the root partition's: the resource
    // manager makes extents of them for the VMs it gives devices to.
    let (windows, bytes) = crate::mm::record_device_windows(&platform.free_device_windows());
    log::info!(
        "memory database: {windows} device window(s) of the platform ({} KiB) for the root partition",
        bytes >> 10
    );

    if let Some(fault) = cmdline::fault(&platform.bootargs) {
        log::warn!("wurley.fault={fault:?}: faulting on purpose");
        deliberate_fault(fault);
    }
    if let Err(e) = crate::irq::enable_console_input(me) {
        log::warn!("console input unavailable: {e}");
    }
    crate::object::entropy::add_entropy(cpu::counter());
    if let Some(r) = cpu::hardware_random() {
        crate::object::entropy::add_entropy(r);
    }
    let started = match platform.initrd {
        Some(range) => {
            // SAFETY: the loader put the boot bundle there; the range is RAM mapped at EL2,
            // kept out of the frame allocator, and nothing writes it.
            let bundle = unsafe {
                core::slice::from_raw_parts(range.start() as *const u8, range.size() as usize)
            };
            // With IRQs masked: the tick handler takes scheduler locks that launching also
            // takes, and on this CPU it would wait for itself.
            let daif = cpu::save_and_disable_irqs();
            let n = crate::vm::launch::launch(&platform, bundle, &cpus);
            cpu::restore_irqs(daif);
            n
        }
        None => {
            log::info!("no boot bundle (-initrd)");
            0
        }
    };
    if started == 0 {
        log::info!("no guests to run: idling");
    }
    crate::vm::vcpu::cpu_loop(boot_cpu)
}

/// The DTB's range from its header, if `addr` holds a plausible flattened device tree.
fn dtb_header_range(addr: u64) -> Option<PhysRange> {
    const FDT_MAGIC: u32 = 0xd00d_feed;
    const MAX_DTB: u32 = 64 << 20;
    if addr == 0 || !addr.is_multiple_of(8) {
        return None;
    }
    // SAFETY: the boot protocol passes the DTB's address in x0; with the MMU off any RAM address
    // is readable, and the two words read are the header's magic and totalsize.
    let (magic, size) = unsafe {
        let p = addr as *const u32;
        (
            u32::from_be(p.read_volatile()),
            u32::from_be(p.add(1).read_volatile()),
        )
    };
    if magic != FDT_MAGIC || !(40..=MAX_DTB).contains(&size) {
        return None;
    }
    PhysRange::from_base_size(addr, u64::from(size)).map(|r| r.align_out(PAGE_SIZE))
}

/// Map and install the console UART.
/// Only a PL011 is driven; any other UART leaves the hypervisor silent (see docs/porting.md).
fn start_console(tables: &mut Tables, uart: &UartInfo) {
    if !uart.compatible_pl011 {
        return;
    }
    let req = MapRequest {
        range: uart.base.align_out(PAGE_SIZE),
        perm: Perm::Device,
    };
    if tables.map(&req).is_err() {
        return;
    }
    // SAFETY: the DT's stdout UART, mapped Device-nGnRE just above (or earlier); the console is
    // its only user.
    if let Some(pl011) = unsafe { Pl011::new(uart.base.start()) } {
        crate::console::init(pl011);
    }
}

/// The device tree is unusable: say why on its console, if it names one, and power off.
fn boot_error(tables: &mut Tables, dtb: &[u8], err: &DtError) -> ! {
    if let Some(uart) = crate::platform::stdout_uart(dtb) {
        start_console(tables, &uart);
    }
    crate::console::print(format_args!(
        "wurley: boot error: {err}\nwurley: cannot continue without a usable device tree; powering off\n"
    ));
    let _ = psci::system_off();
    exception::stop_this_cpu()
}

fn banner(p: &Platform, dtb: PhysRange, layout: &stage1::ImageLayout) {
    log::info!("Wurley {} starting at EL2", env!("CARGO_PKG_VERSION"));
    log::info!(
        "CPU: MIDR {:#x}, {}-bit physical addresses, counter {} Hz",
        cpu::midr(),
        cpu::pa_bits(),
        cpu::counter_frequency()
    );
    log::info!(
        "image {} (text {}, rodata {}, data+bss {}), DTB {}",
        layout.whole(),
        layout.text,
        layout.rodata,
        layout.data,
        dtb
    );
    for m in &p.memory {
        log::info!("memory: {} ({} MiB)", m, m.size() >> 20);
    }
    for r in &p.reserved {
        log::info!(
            "reserved: {} {}{}",
            r.range,
            r.name,
            if r.no_map { " (no-map)" } else { "" }
        );
    }
    if let Some(initrd) = p.initrd {
        log::info!("initrd: {} ({} KiB)", initrd, initrd.size() >> 10);
    }
    log::info!("bootargs: \"{}\"", p.bootargs);
    log::info!(
        "GIC: distributor {}, redistributors {:?}, maintenance {:?}",
        p.gic.dist,
        p.gic.redists,
        p.gic.maintenance.map(|i| i.intid)
    );
    log::info!("console: {} at {}", p.uart.path, p.uart.base);
    log::info!(
        "timer PPIs: secure {}, non-secure {}, virtual {}, hypervisor {}{}",
        p.timer.secure_phys.intid,
        p.timer.phys.intid,
        p.timer.virt.intid,
        p.timer.hyp_phys.intid,
        p.timer
            .hyp_virt
            .map(|i| alloc::format!(", hypervisor virtual {}", i.intid))
            .unwrap_or_default()
    );
    let mpidrs: Vec<u64> = p.cpus.iter().map(|c| c.mpidr).collect();
    log::info!(
        "{} CPUs in the device tree, MPIDRs {:x?}; PSCI via {:?}",
        p.cpus.len(),
        mpidrs,
        p.psci.conduit
    );
}

/// Build the frame allocator over RAM minus everything already in use, and log the result.
fn memory(p: &Platform, layout: &stage1::ImageLayout, dtb: PhysRange) -> FrameAllocator {
    let mut exclude = alloc::vec![layout.whole(), dtb];
    exclude.extend(p.initrd);
    exclude.extend(p.reserved.iter().map(|r| r.range));
    let frames = FrameAllocator::from_ram(&p.memory, &exclude);
    let free: Vec<PhysRange> = frames.free_ranges().collect();
    let mut hypervisor = alloc::vec![layout.whole(), dtb];
    hypervisor.extend(p.initrd);
    if let Err(e) = crate::mm::record_boot_memory(&free, &hypervisor) {
        log::error!("memory database: {e:?}");
    }
    crate::object::memextent::set_ctx(&crate::arch::aarch64::stage2::MEM);
    for r in frames.free_ranges() {
        log::info!("free: {} ({} MiB)", r, r.size() >> 20);
    }
    let total: u64 = p.memory.iter().map(|m| m.size()).sum();
    log::info!(
        "memory: {} MiB total, {} MiB free for guests and the hypervisor",
        total >> 20,
        frames.free_bytes() >> 20
    );
    frames
}

fn grow_heap(mut frames: FrameAllocator) -> FrameAllocator {
    match frames.alloc_aligned(HEAP_GROWTH, PAGE_SIZE) {
        Ok(r) => {
            if let Err(e) = crate::mm::keep_for_hypervisor(r) {
                log::error!("memory database: heap {r}: {e:?}");
            }
            // SAFETY: the frames were just taken from the allocator, so nothing else owns
            // them, and all free RAM is mapped read-write.
            unsafe { heap::grow(r.start(), r.size()) }
        }
        Err(e) => log::warn!("heap not grown: {e}"),
    }
    frames
}

fn redistributor_frames(p: &Platform) -> usize {
    // One redistributor per CPU, as far as the region holds 128 KiB GICv3 frames (RD + SGI).
    let size = p.gic.redists.first().map(|r| r.size()).unwrap_or(0);
    ((size / (128 << 10)) as usize).min(p.cpus.len()).max(1)
}

fn redist_base(p: &Platform) -> u64 {
    p.gic.redists.first().map(|r| r.start()).unwrap_or(0)
}

fn start_secondary(
    index: usize,
    mpidr: u64,
    redists: usize,
    regs: crate::arch::aarch64::mmu::MmuRegs,
) -> Result<&'static PerCpu, alloc::string::String> {
    use alloc::format;
    let redist = gic::redistributor_of(mpidr, redists).map_err(|e| format!("{e}"))?;
    let stack = crate::mm::FRAMES
        .lock()
        .alloc(SECONDARY_STACK_PAGES)
        .map_err(|e| format!("no stack: {e}"))?;
    let me: &'static PerCpu = Box::leak(Box::new(PerCpu::new(index, mpidr, redist)));
    let block = SecondaryBoot::new(me, stack.end(), regs);
    psci::cpu_on(
        mpidr,
        image::secondary_entry_point(),
        block as *const SecondaryBoot as u64,
    )
    .map_err(|e| format!("PSCI CPU_ON: {e:?}"))?;
    let deadline = cpu::counter() + cpu::counter_frequency() * CPU_ON_TIMEOUT_MS / 1000;
    while !block.is_online() {
        if cpu::counter() > deadline {
            return Err(format!("no report within {CPU_ON_TIMEOUT_MS} ms"));
        }
        core::hint::spin_loop();
    }
    Ok(me)
}

/// Wait (sleeping) until every online CPU has taken a few hypervisor-timer ticks.
fn wait_for_ticks(cpus: &[&'static PerCpu]) {
    const WANT: u64 = 3;
    let deadline = cpu::counter() + cpu::counter_frequency();
    while cpus.iter().any(|c| c.ticks() < WANT) && cpu::counter() < deadline {
        cpu::wfi();
    }
    let late: Vec<usize> = cpus
        .iter()
        .filter(|c| c.ticks() < WANT)
        .map(|c| c.index)
        .collect();
    if late.is_empty() {
        log::info!(
            "hypervisor timer ticking on all {} online CPUs at {} Hz",
            cpus.len(),
            crate::irq::TICK_HZ
        );
    } else {
        log::error!("hypervisor timer not ticking on CPUs {late:?}");
    }
}

fn deliberate_fault(fault: cmdline::Fault) {
    match fault {
        cmdline::Fault::DataAbort => {
            // An address in no RAM or device window the DT names: unmapped at EL2.
            let p = 0xdead_0000_0000u64 as *const u64;
            // SAFETY: not sound on purpose: the load must fault, which the exception handler
            // reports; it never returns a value.
            let _ = unsafe { p.read_volatile() };
        }
        cmdline::Fault::Undefined => {
            // SAFETY: a permanently undefined instruction: the exception handler reports it.
            unsafe { core::arch::asm!("udf #0xbad") };
        }
        cmdline::Fault::Panic => panic!("deliberate panic requested with wurley.fault=panic"),
    }
}

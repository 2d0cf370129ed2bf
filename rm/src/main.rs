//! wurley-rm: the Resource Manager as an EL1 program on wurley-rt.
//!
//! It runs as Wurley's root VM, the only VM the hypervisor makes itself: the hypervisor embeds
//! it and starts it with every boot bundle (docs/rm.md). At start it prints
//! `RM: Wurley resource manager <version>`, reads its boot information (version 2: its own caps,
//! its mapping window, the bundle's IPA, the free RAM and a cap per hardware IRQ it may hand
//! out; the VM-entry list is empty and not read) and launches the manifest's VMs with
//! [`wurley_rm::launch::Launcher`], a step at a time, serving its clients in between.
//!
//! Launched VMs: the first one that starts gets VMID 3 (the primary VM: the only one allowed to
//! VM_ALLOCATE), the others dynamic VMIDs `0x80, 0x81, ...` in manifest order; all are recorded
//! as RUNNING, owned by the RM (0xFF). Each gets an RM link (a message-queue pair, 240-byte
//! messages) and, unless it is proxy-scheduled, a watch: a cap to its vCPU 0 whose HALT source
//! raises a vIRQ of the RM's. A proxy-scheduled vCPU is reported to its owner through
//! VM_GET_HYP_RESOURCES (printing `RM: vCPU <i> of <vm> (vmid ..) proxy-scheduled by <owner>
//! (vmid ..)`). When every watched VM has exited the machine powers off (or resets, if the last
//! one reset).
//!
//! Each link's RX ("not empty") and TX ("not full") vIRQs are enabled (edge); their handlers
//! only set the client's bit in an event mask. The main loop sleeps in `WFI` until a bit is
//! set, then hands the events to the server ([`wurley_rm::server::Server::run`]), which
//! drains every client with packets, answers and sends until a queue is full. Nothing polls.
//! The RM never exits.
//!
//! VM exits: when a watched VM's HALT vIRQ fires, the main loop asks `vcpu_run_check` how the
//! VM stopped (SYSTEM_OFF, reset, fault) and the server marks it EXITED, tells its status
//! listeners (VM_STATUS) and its owner (VM_EXITED), and prints
//! `RM: VM <name> (vmid <id>) exited: <how>`.
//!
//! VM creation: the RM runs with [`wurley_rm::gunyah::Gunyah`] over the hypercalls
//! ([`RtCalls`]), with the caps of its boot information. A VM it creates (VM_INIT) becomes a
//! client at once: the main loop takes the server's events after each round and connects the
//! VM's RM link (reusing the slot of a destroyed VM) and watches its vCPU 0's HALT vIRQ, and
//! undoes both when it is reset.
//!
//! Bootargs: `rm.debug=1` prints one line per request (default: only errors). Heap: a fixed
//! region in BSS (reassembly buffers are 14 616 bytes per client).
//!
//! Built for the host it is an empty program, so that `cargo test --workspace` works.

#![cfg_attr(target_os = "none", no_std, no_main)]
// The heap region handed to the allocator needs `unsafe`.
#![cfg_attr(target_os = "none", allow(unsafe_code))]

#[cfg(target_os = "none")]
mod el1 {
    extern crate alloc;

    use alloc::boxed::Box;
    use alloc::string::String;
    use alloc::vec;
    use alloc::vec::Vec;
    use core::fmt;
    use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

    use buddy_system_allocator::LockedHeap;
    use wurley_abi::rm::status::VmStatus;
    use wurley_abi::rm::{MAX_MESSAGE_SIZE, PACKET_SIZE, VMID_HLOS, VMID_RM};
    use wurley_abi::{CapId, Error, VmId};
    use wurley_rm::calls::{Hypercalls, Kind, Modify};
    use wurley_rm::conn::{RxError, Transport, TxError};
    use wurley_rm::gunyah::{Gunyah, RmCaps};
    use wurley_rm::hyp::{Event, Hyp};
    use wurley_rm::launch::{FreeRam, Launcher, Started, Step};
    use wurley_rm::output::{Level, Output};
    use wurley_rm::server::Server;
    use wurley_rm::vms::VmRecord;
    use wurley_rt::hypdt::{self, Irq};
    use wurley_rt::{args, gic, hyp, mmu, println};

    /// The server the RM runs.
    type RmServer = Server<'static, Gunyah<RtCalls>, MsgQueues>;

    /// The hypervisor calls, one `wurley_rt::hyp` wrapper each; the mapping window is
    /// identity mapped at stage 1 (`window` = its IPA and size, `(0, 0)` if it could not be).
    struct RtCalls {
        window: (u64, u64),
    }

    impl RtCalls {
        /// The window's VA for `len` bytes at `offset`, if they are inside it.
        fn window_va(&self, offset: u64, len: usize) -> Option<usize> {
            let end = offset.checked_add(len as u64)?;
            (end <= self.window.1).then(|| (self.window.0 + offset) as usize)
        }
    }

    impl Hypercalls for RtCalls {
        fn create(&mut self, kind: Kind, partition: CapId, cspace: CapId) -> Result<CapId, Error> {
            match kind {
                Kind::Cspace => hyp::partition_create_cspace(partition, cspace),
                Kind::Addrspace => hyp::partition_create_addrspace(partition, cspace),
                Kind::Memextent => hyp::partition_create_memextent(partition, cspace),
                Kind::Thread => hyp::partition_create_thread(partition, cspace),
                Kind::Msgqueue => hyp::partition_create_msgqueue(partition, cspace),
                Kind::Vic => hyp::partition_create_vic(partition, cspace),
                Kind::VpmGroup => hyp::partition_create_vpm_group(partition, cspace),
                Kind::Partition => hyp::partition_create_partition(partition, cspace),
                Kind::Doorbell => hyp::partition_create_doorbell(partition, cspace),
            }
        }
        fn activate(&mut self, cap: CapId) -> Result<(), Error> {
            hyp::object_activate(cap)
        }
        fn partition_configure(&mut self, partition: CapId, quota: u64) -> Result<(), Error> {
            let id = wurley_abi::vendor::PARTITION_CONFIGURE;
            hyp::result(hyp::hvc_smccc(id, [partition.0, quota, 0, 0, 0, 0, 0])[0])
        }
        fn cspace_configure(&mut self, cspace: CapId, max_caps: u32) -> Result<(), Error> {
            hyp::cspace_configure(cspace, max_caps)
        }
        fn cspace_copy(
            &mut self,
            src: CapId,
            cap: CapId,
            dest: CapId,
            rights: u32,
        ) -> Result<CapId, Error> {
            hyp::cspace_copy_cap_from(src, cap, dest, rights)
        }
        fn cspace_delete(&mut self, cspace: CapId, cap: CapId) -> Result<(), Error> {
            hyp::cspace_delete_cap_from(cspace, cap)
        }
        fn cspace_attach_thread(&mut self, cspace: CapId, thread: CapId) -> Result<(), Error> {
            hyp::cspace_attach_thread(cspace, thread)
        }
        fn addrspace_configure(&mut self, addrspace: CapId, vmid: u16) -> Result<(), Error> {
            hyp::addrspace_configure(addrspace, vmid)
        }
        fn addrspace_attach_thread(&mut self, a: CapId, thread: CapId) -> Result<(), Error> {
            hyp::addrspace_attach_thread(a, thread)
        }
        fn addrspace_map(
            &mut self,
            a: CapId,
            extent: CapId,
            vbase: u64,
            map_attrs: u32,
            size: u64,
        ) -> Result<(), Error> {
            hyp::addrspace_map(a, extent, vbase, map_attrs, 0, 0, size)
        }
        fn addrspace_unmap(
            &mut self,
            a: CapId,
            extent: CapId,
            vbase: u64,
            size: u64,
        ) -> Result<(), Error> {
            hyp::addrspace_unmap(a, extent, vbase, 0, 0, size)
        }
        fn memextent_derive(
            &mut self,
            extent: CapId,
            parent: CapId,
            offset: u64,
            size: u64,
            attrs: u32,
        ) -> Result<(), Error> {
            hyp::memextent_configure_derive(extent, parent, offset, size, attrs)
        }
        fn memextent_modify(&mut self, extent: CapId, op: Modify, size: u64) -> Result<(), Error> {
            hyp::memextent_modify(extent, op as u32, 0, size)
        }
        fn vic_configure(&mut self, vic: CapId, vcpus: u32, virqs: u32) -> Result<(), Error> {
            hyp::vic_configure(vic, vcpus, virqs, 0, 0)
        }
        fn vic_attach_vcpu(&mut self, vic: CapId, thread: CapId, index: u32) -> Result<(), Error> {
            hyp::vic_attach_vcpu(vic, thread, index)
        }
        fn vcpu_configure(&mut self, thread: CapId, flags: u64) -> Result<(), Error> {
            hyp::vcpu_configure(thread, flags)
        }
        fn vcpu_set_affinity(&mut self, thread: CapId, cpu: u64) -> Result<(), Error> {
            hyp::vcpu_set_affinity(thread, cpu)
        }
        fn vcpu_poweron(
            &mut self,
            thread: CapId,
            entry: u64,
            context: u64,
            flags: u64,
        ) -> Result<(), Error> {
            hyp::vcpu_poweron(thread, entry, context, flags)
        }
        fn vcpu_kill(&mut self, thread: CapId) -> Result<(), Error> {
            hyp::vcpu_kill(thread)
        }
        fn vcpu_register_write(
            &mut self,
            thread: CapId,
            set: u64,
            index: u64,
            value: u64,
        ) -> Result<(), Error> {
            hyp::vcpu_register_write(thread, set, index, value)
        }
        fn vcpu_bind_virq(
            &mut self,
            thread: CapId,
            vic: CapId,
            virq: u32,
            kind: u64,
        ) -> Result<(), Error> {
            hyp::vcpu_bind_virq(thread, vic, virq.into(), kind)
        }

        fn vcpu_unbind_virq(&mut self, thread: CapId, kind: u64) -> Result<(), Error> {
            hyp::vcpu_unbind_virq(thread, kind)
        }
        fn msgqueue_configure(&mut self, mq: CapId, depth: u32, size: u32) -> Result<(), Error> {
            hyp::msgqueue_configure(mq, depth, size as usize)
        }
        fn msgqueue_bind_send(&mut self, mq: CapId, vic: CapId, virq: u32) -> Result<(), Error> {
            hyp::msgqueue_bind_send_virq(mq, vic, virq.into())
        }
        fn msgqueue_bind_receive(&mut self, mq: CapId, vic: CapId, virq: u32) -> Result<(), Error> {
            hyp::msgqueue_bind_receive_virq(mq, vic, virq.into())
        }
        fn hwirq_bind(&mut self, hwirq: CapId, vic: CapId, virq: u32) -> Result<(), Error> {
            hyp::hwirq_bind_virq(hwirq, vic, virq.into())
        }
        fn hwirq_unbind(&mut self, hwirq: CapId) -> Result<(), Error> {
            hyp::hwirq_unbind_virq(hwirq)
        }
        fn memextent_configure(
            &mut self,
            extent: CapId,
            phys: u64,
            size: u64,
            attrs: u32,
        ) -> Result<(), Error> {
            hyp::memextent_configure(extent, phys, size, attrs)
        }
        fn memextent_modify_range(
            &mut self,
            extent: CapId,
            op: Modify,
            offset: u64,
            size: u64,
        ) -> Result<(), Error> {
            hyp::memextent_modify(extent, op as u32, offset, size)
        }
        fn vcpu_set_priority(&mut self, thread: CapId, priority: u64) -> Result<(), Error> {
            hyp::vcpu_set_priority(thread, priority)
        }
        fn vcpu_set_timeslice(&mut self, thread: CapId, ns: u64) -> Result<(), Error> {
            hyp::vcpu_set_timeslice(thread, ns)
        }
        fn vpm_group_attach(
            &mut self,
            group: CapId,
            thread: CapId,
            index: u32,
        ) -> Result<(), Error> {
            hyp::vpm_group_attach_vcpu(group, thread, index)
        }
        fn doorbell_bind(&mut self, doorbell: CapId, vic: CapId, virq: u32) -> Result<(), Error> {
            hyp::doorbell_bind_virq(doorbell, vic, virq.into())
        }
        fn vm_set_name(&mut self, addrspace: CapId, name: &str, flags: u64) -> Result<(), Error> {
            hyp::wurley_vm_set_name(addrspace, name.as_bytes(), flags)
        }
        fn window_read(&mut self, offset: u64, buf: &mut [u8]) -> bool {
            let Some(va) = self.window_va(offset, buf.len()) else {
                return false;
            };
            for (i, b) in buf.iter_mut().enumerate() {
                // SAFETY: the window is mapped at stage 1 (Normal memory, identity) and the
                // caller mapped an extent over these bytes at stage 2 before asking; nothing
                // in the RM refers to the window otherwise.
                *b = unsafe { core::ptr::read_volatile((va + i) as *const u8) };
            }
            true
        }
        fn window_write(&mut self, offset: u64, data: &[u8]) -> bool {
            let Some(va) = self.window_va(offset, data.len()) else {
                return false;
            };
            // SAFETY: the window is mapped at stage 1 (Normal memory, identity) and the
            // caller mapped an extent over these bytes at stage 2 before asking; the bytes
            // belong to a VM being built, which does not run yet, and nothing in the RM refers
            // to the window otherwise, so they do not overlap `data`. Normal memory: a plain
            // copy (launches write tens of MiB this way).
            unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), va as *mut u8, data.len()) };
            true
        }
    }

    /// Map the mapping window at stage 1 (identity, Normal memory, 1 GiB blocks); its IPA and
    /// size, or `(0, 0)` if it cannot be.
    fn map_window(window: (u64, u64)) -> (u64, u64) {
        let (ipa, size) = window;
        let blocks = size.div_ceil(mmu::BLOCK_SIZE);
        let first = ipa / mmu::BLOCK_SIZE;
        if size == 0 || !ipa.is_multiple_of(mmu::BLOCK_SIZE) || first + blocks > mmu::ENTRIES as u64
        {
            return (0, 0);
        }
        for b in first..first + blocks {
            let index = b as usize;
            if mmu::map_block(index, b * mmu::BLOCK_SIZE, mmu::Memory::Normal).is_err() {
                return (0, 0);
            }
        }
        (ipa, size)
    }

    /// Most clients (one bit each in the event masks).
    const MAX_CLIENTS: usize = 64;

    const HEAP_SIZE: usize = 2 << 20;

    #[repr(C, align(4096))]
    struct HeapRegion([u8; HEAP_SIZE]);

    static mut HEAP_REGION: HeapRegion = HeapRegion([0; HEAP_SIZE]);

    #[global_allocator]
    static HEAP: LockedHeap<32> = LockedHeap::empty();

    /// Clients whose RX vIRQ fired since the main loop last looked.
    static RX_EVENTS: AtomicU64 = AtomicU64::new(0);
    /// Clients whose TX vIRQ fired since the main loop last looked.
    static TX_EVENTS: AtomicU64 = AtomicU64::new(0);
    /// Watched VMs whose HALT vIRQ fired since the main loop last looked (bit = watch index).
    static HALT_EVENTS: AtomicU64 = AtomicU64::new(0);
    /// Per INTID: 0, or the watch index + 1.
    static WATCH_MAP: [AtomicU8; gic::MAX_INTID] = [const { AtomicU8::new(0) }; gic::MAX_INTID];
    /// Most watched VMs.
    const MAX_WATCHES: usize = 64;

    /// A watched VM's HALT vIRQ: note it for the main loop.
    fn halt_irq(intid: u32) {
        let index = WATCH_MAP
            .get(intid as usize)
            .map(|m| m.load(Ordering::Acquire))
            .and_then(|v| v.checked_sub(1));
        if let Some(i) = index {
            HALT_EVENTS.fetch_or(1u64 << i, Ordering::AcqRel);
        }
    }

    /// A VM the RM watches: its VMID and the cap to its vCPU 0, whose HALT source raises
    /// `virq`.
    struct Watch {
        vmid: VmId,
        name: String,
        cap: CapId,
        virq: u32,
    }

    /// Per INTID: 0, or the client index + 1, with [`IRQ_TX`] for its TX vIRQ.
    static IRQ_MAP: [AtomicU8; gic::MAX_INTID] = [const { AtomicU8::new(0) }; gic::MAX_INTID];
    const IRQ_TX: u8 = 0x80;

    wurley_rt::entry!(rm_main);

    /// An RM link's vIRQ: note the event for the main loop (handlers never print).
    fn link_irq(intid: u32) {
        let Some(v) = IRQ_MAP
            .get(intid as usize)
            .map(|m| m.load(Ordering::Acquire))
        else {
            return;
        };
        let Some(client) = (v & !IRQ_TX).checked_sub(1) else {
            return;
        };
        let bit = 1u64 << client;
        if v & IRQ_TX != 0 {
            TX_EVENTS.fetch_or(bit, Ordering::AcqRel);
        } else {
            RX_EVENTS.fetch_or(bit, Ordering::AcqRel);
        }
    }

    /// The RM's end of a client link: `msgqueue_send` on TX, `msgqueue_receive` on RX.
    struct MsgQueues {
        tx: CapId,
        rx: CapId,
        not_empty: bool,
    }

    impl Transport for MsgQueues {
        fn send(&mut self, packet: &[u8], push: bool) -> Result<(), TxError> {
            let flags = if push { hyp::SEND_FLAG_PUSH } else { 0 };
            match hyp::msgqueue_send_slice(self.tx, packet, flags).0 {
                Ok(()) => Ok(()),
                Err(Error::MsgqueueFull) => Err(TxError::Full),
                Err(e) => Err(TxError::Other(e.code())),
            }
        }

        fn receive(&mut self, buf: &mut [u8; PACKET_SIZE]) -> Result<Option<usize>, RxError> {
            let (res, not_empty) = hyp::msgqueue_receive_into(self.rx, buf);
            match res {
                Ok(len) => {
                    self.not_empty = not_empty;
                    Ok(Some(len))
                }
                Err(Error::MsgqueueEmpty) => {
                    self.not_empty = false;
                    Ok(None)
                }
                Err(e) => {
                    self.not_empty = false;
                    Err(RxError(e.code()))
                }
            }
        }

        fn more_pending(&self) -> bool {
            self.not_empty
        }
    }

    /// The RM's PL011: `RM: ...` log lines, `<vm>: ...` console lines.
    struct Console {
        debug: bool,
    }

    impl Output for Console {
        fn debug_enabled(&self) -> bool {
            self.debug
        }

        fn log(&mut self, level: Level, args: fmt::Arguments<'_>) {
            match level {
                Level::Debug => println!("RM: {args}"),
                Level::Error => println!("RM: error: {args}"),
            }
        }

        fn console(&mut self, vm: &str, text: &str) {
            println!("{vm}: {text}");
        }
    }

    fn rm_main(_dtb: usize) -> ! {
        let start = &raw mut HEAP_REGION as usize;
        // SAFETY: HEAP_REGION is used for nothing else, and this runs once, before any
        // allocation, with the MMU on (the allocator's lock needs Normal memory).
        unsafe { HEAP.lock().init(start, HEAP_SIZE) };

        println!("RM: Wurley resource manager {}", wurley_rm::VERSION);
        let fdt = wurley_rt::fdt();
        let bootargs = fdt
            .as_ref()
            .and_then(|f| f.find_node("/chosen"))
            .and_then(|c| c.prop_str("bootargs"))
            .unwrap_or("");
        let mut out = Console {
            debug: args::get_u64(bootargs, "rm.debug").is_some_and(|v| v != 0),
        };

        let info = wurley_rt::boot_info();
        let rm = RmCaps {
            partition: info.map_or(CapId::INVALID, |i| i.partition),
            cspace: info.map_or(CapId::INVALID, |i| i.cspace),
            vic: info.map_or(CapId::INVALID, |i| i.vic),
            addrspace: info.map_or(CapId::INVALID, |i| i.addrspace),
            window: map_window(info.map_or((0, 0), |i| i.window)),
            cpus: info.map_or(1, |i| i.cpus),
        };
        // vIRQs of the RM's VIC for the links and watches of the VMs it creates: the SPIs its
        // device tree leaves free (not the console's).
        let used = fdt.as_ref().map_or(0, hypdt::used_intids);
        let spi_end = (32 + guestdt::layout::SPIS).min(gic::MAX_INTID as u32);
        let free_virqs: Vec<u32> = (32..spi_end)
            .filter(|&i| i != 33 && used & (1u128 << i) == 0)
            .collect();
        let calls = RtCalls { window: rm.window };
        let mut server: RmServer = Server::new(Gunyah::new(calls, rm, free_virqs));
        if fdt.is_none() {
            println!("RM: error: no valid device tree");
        }
        let launch = launcher(info.as_ref());
        if launch.is_none() {
            println!("RM: serving {} client(s)", server.clients());
        }
        serve(&mut server, &mut out, launch)
    }

    /// The manifest's VMs to launch: the boot bundle and the free RAM and hardware IRQs of the
    /// boot information (version 2; its VM-entry list is empty and not read).
    fn launcher(info: Option<&wurley_abi::bootinfo::BootInfo>) -> Option<Launch> {
        let lists = wurley_rt::boot_info_bytes()
            .and_then(|b| wurley_abi::bootinfo::BootInfo::decode_lists(b).ok());
        let (Some(info), Some(lists)) = (info, lists) else {
            println!("RM: error: no boot information (version 2)");
            return None;
        };
        if info.bundle_size == 0 {
            println!("RM: error: no boot bundle");
            return None;
        }
        let Some(bundle) = map_bundle(info.bundle_ipa, info.bundle_size) else {
            println!("RM: error: the boot bundle cannot be mapped");
            return None;
        };
        let free = FreeRam::new(lists.free_ranges().map(|r| (r.base, r.size)));
        let hwirqs = lists
            .hwirqs()
            .filter(|h| h.vmid == 0)
            .map(|h| (h.virq, h.cap))
            .collect();
        match Launcher::new(bundle, free, hwirqs, info.cpus) {
            Ok(mut launcher) => {
                print_lines(&mut launcher);
                println!(
                    "RM: launching {} VM(s) of the manifest",
                    launcher.specs().len()
                );
                Some(Launch {
                    launcher,
                    ending: Vec::new(),
                    ended: Vec::new(),
                })
            }
            Err(e) => {
                // Nothing of the bundle can run, so nothing will end the machine: end it now,
                // as when every VM of the manifest has ended (scripted runs stop by themselves).
                println!("RM: error: {e}");
                println!("RM: no VM of the manifest runs: powering off");
                wurley_rt::power_off()
            }
        }
    }

    /// The boot bundle, read-only at `ipa`: its 1 GiB blocks mapped at stage 1 (identity,
    /// Normal memory).
    fn map_bundle(ipa: u64, size: u64) -> Option<&'static [u8]> {
        let end = ipa.checked_add(size)?;
        let first = ipa / mmu::BLOCK_SIZE;
        let last = end.div_ceil(mmu::BLOCK_SIZE);
        if last > mmu::ENTRIES as u64 {
            return None;
        }
        for b in first..last {
            mmu::map_block(b as usize, b * mmu::BLOCK_SIZE, mmu::Memory::Normal).ok()?;
        }
        let len = usize::try_from(size).ok()?;
        // SAFETY: the hypervisor maps the bundle read-only at `ipa` (boot information) for as
        // long as the RM runs, and its blocks are mapped at stage 1 above; nothing writes it.
        Some(unsafe { core::slice::from_raw_parts(ipa as usize as *const u8, len) })
    }

    /// The launch of the manifest's VMs, and the VMIDs whose end ends the machine.
    struct Launch {
        launcher: Launcher<'static>,
        /// The VMs whose end ends the machine, and whether each has ended (its HALT watch said
        /// so: a VM_EXIT request alone does not end a VM the hypervisor runs).
        ending: Vec<VmId>,
        ended: Vec<VmId>,
    }

    fn print_lines(launcher: &mut Launcher<'_>) {
        for line in launcher.take_lines() {
            if line.contains("not started")
                || line.contains("not made")
                || line.starts_with("bundle:")
            {
                println!("RM: error: {line}");
            } else {
                println!("RM: {line}");
            }
        }
    }

    /// One step of the launch; true if there is more to do.
    fn launch_step(
        server: &mut RmServer,
        watches: &mut Vec<Option<Watch>>,
        l: &mut Launch,
    ) -> bool {
        if l.launcher.done() {
            return false;
        }
        let step = l.launcher.step(server.hyp_mut());
        print_lines(&mut l.launcher);
        if step != Step::Ready {
            return step == Step::More;
        }
        let started = l.launcher.started();
        let vmids = register(server, watches, &started);
        let ran = l.launcher.power_on(server.hyp_mut());
        print_lines(&mut l.launcher);
        // Hardware IRQs a VM's VIC took only once the VM existed (at its power-on) are its
        // own too, so it may lend them.
        for after in l.launcher.started() {
            let at = started.iter().position(|st| st.name == after.name);
            let Some(Some(vmid)) = at.and_then(|i| vmids.get(i)) else {
                continue;
            };
            for &(virq, cap) in &after.hwirqs {
                server.hyp_mut().add_hwirq(*vmid, virq, cap);
            }
        }
        for ((st, vmid), ok) in started.iter().zip(&vmids).zip(ran) {
            let Some(vmid) = *vmid else { continue };
            if ok && st.watch.is_some() {
                l.ending.push(vmid);
            } else if !ok {
                let _ = server.vms_mut().set_status(vmid, VmStatus::Exited);
            }
        }
        println!("RM: serving {} client(s)", server.clients());
        if l.ending.is_empty() {
            println!("RM: no VM of the manifest runs: powering off");
            wurley_rt::power_off();
        }
        false
    }

    /// Record the launched VMs: VMIDs (the first is the primary, VMID 3), RM links, watches,
    /// caps for lending, proxy schedulers. Their VMIDs, in order (`None`: not recorded).
    fn register(
        server: &mut RmServer,
        watches: &mut Vec<Option<Watch>>,
        started: &[Started],
    ) -> Vec<Option<VmId>> {
        let mut vmids = Vec::new();
        for st in started {
            let vmid = if vmids.iter().all(Option::is_none) {
                Ok(VMID_HLOS)
            } else {
                server.vms().free_dynamic()
            };
            let Ok(vmid) = vmid else {
                println!("RM: error: VM {}: no VMID left", st.name);
                vmids.push(None);
                continue;
            };
            let record = VmRecord::new(vmid, &st.name, VMID_RM, VmStatus::Running);
            if let Err(e) = server.vms_mut().insert(record) {
                println!(
                    "RM: error: VM {}: VMID {:#x}: {}",
                    st.name,
                    vmid.0,
                    e.name()
                );
                vmids.push(None);
                continue;
            }
            vmids.push(Some(vmid));
            server.hyp_mut().add_vm(vmid, st.known.clone());
            for &(virq, cap) in &st.hwirqs {
                server.hyp_mut().add_hwirq(vmid, virq, cap);
            }
            if let Some(link) = st.rm_link {
                let irq = |intid| Irq { intid, edge: true };
                match connect(
                    server,
                    vmid,
                    link.tx,
                    link.rx,
                    irq(link.tx_virq),
                    irq(link.rx_virq),
                ) {
                    Ok(_) => println!(
                        "RM: client {} vmid {:#x} link rm-{} tx_virq={} rx_virq={}",
                        st.name,
                        VmId::raw(vmid),
                        st.name,
                        link.tx_virq,
                        link.rx_virq
                    ),
                    Err(e) => println!("RM: error: VM {}: RM link: {}", st.name, e.name()),
                }
            }
            if let Some((cap, virq)) = st.watch {
                let slot = WATCH_MAP.get(virq as usize);
                match (slot, watches.len() < MAX_WATCHES) {
                    (Some(slot), true) => {
                        slot.store(watches.len() as u8 + 1, Ordering::Release);
                        watches.push(Some(Watch {
                            vmid,
                            name: st.name.clone(),
                            cap,
                            virq,
                        }));
                        gic::enable(virq, true, halt_irq);
                    }
                    _ => println!(
                        "RM: error: watch of VM {}: vIRQ {virq} or too many watches",
                        st.name
                    ),
                }
            }
        }
        for (st, vmid) in started.iter().zip(&vmids) {
            let Some(vm) = *vmid else { continue };
            for g in &st.proxy {
                let owner = vmids.get(g.owner).copied().flatten();
                let owner_name = started.get(g.owner).map_or("?", |o| o.name.as_str());
                let Some(owner) = owner else { continue };
                match server
                    .vms_mut()
                    .grant_proxy_vcpu(vm, owner, g.index, g.cap.0, g.virq)
                {
                    Ok(()) => println!(
                        "RM: vCPU {} of {} (vmid {:#x}) proxy-scheduled by {} (vmid {:#x})",
                        g.index,
                        st.name,
                        VmId::raw(vm),
                        owner_name,
                        VmId::raw(owner)
                    ),
                    Err(e) => println!(
                        "RM: error: vCPU {} of {} run by {}: {}",
                        g.index,
                        st.name,
                        owner_name,
                        e.name()
                    ),
                }
            }
        }
        vmids
    }

    /// VM `vmid` (`name`) of the manifest ended: record it, and stop the VMs it proxy-schedules
    /// (they can never run again).
    fn vm_ended(launch: Option<&mut Launch>, vmid: VmId, name: &str) {
        let Some(l) = launch else { return };
        if !l.ended.contains(&vmid) {
            l.ended.push(vmid);
        }
        for (proxied, vcpus) in l.launcher.proxied_by(name) {
            println!("RM: VM {proxied}: its scheduler VM {name} ended");
            for t in vcpus {
                let _ = hyp::vcpu_kill(t);
            }
        }
    }

    /// Whether the last VM to exit reset (the machine then resets rather than powers off).
    static LAST_EXIT_RESET: AtomicBool = AtomicBool::new(false);

    /// When every VM launched from the manifest has exited, the machine ends.
    fn check_end(server: &RmServer, launch: Option<&Launch>) {
        let Some(l) = launch else { return };
        if !l.launcher.done() || l.ending.is_empty() {
            return;
        }
        let exited = l
            .ending
            .iter()
            .all(|v| l.ended.contains(v) || server.vms().get(*v).is_none());
        if exited {
            // The machine resets if the last VM to end reset.
            if LAST_EXIT_RESET.load(Ordering::Acquire) {
                println!("RM: last VM ended with a reset: resetting the machine");
                wurley_rt::reset();
            }
            println!("RM: last VM ended: powering off (every VM of the manifest has exited)");
            wurley_rt::power_off();
        }
    }

    /// A watched VM's vCPU 0 halted: ask the hypervisor how (`vcpu_run_check`). A VM that
    /// stopped for good becomes EXITED, and its owner hears of it; a vCPU that only powered
    /// off (its VM goes on) or is running again is no news.
    fn check_watch(server: &mut RmServer, w: &Watch, out: &mut Console) -> Option<VmId> {
        use wurley_abi::rm::status::ExitType;
        use wurley_abi::vcpu_run::{POWERED_OFF_EXITED, RunState};
        let Ok(r) = hyp::vcpu_run_check(w.cap) else {
            return None;
        };
        let (exit, how) = match RunState::from_raw(r.state) {
            Some(RunState::PoweredOff) if r.data[0] & POWERED_OFF_EXITED != 0 => {
                (ExitType::PlatformOff, "powered off")
            }
            Some(RunState::PsciSystemReset) => (ExitType::PlatformReset, "reset"),
            Some(RunState::Fault) => (ExitType::SoftwareError, "stopped by a fault"),
            _ => return None,
        };
        if server.vm_exited(w.vmid, exit, out) {
            LAST_EXIT_RESET.store(exit == ExitType::PlatformReset, Ordering::Release);
            println!(
                "RM: VM {} (vmid {:#x}) exited: {how}",
                w.name,
                VmId::raw(w.vmid)
            );
        }
        Some(w.vmid)
    }

    /// Serve VM `vmid` over queues `tx` (the RM sends) and `rx`, with their vIRQs; a closed
    /// slot is reused, else a new one made (its reassembly buffer lives as long as the RM).
    fn connect(
        server: &mut RmServer,
        vmid: VmId,
        tx: CapId,
        rx: CapId,
        tx_irq: Irq,
        rx_irq: Irq,
    ) -> Result<usize, wurley_abi::rm::RmError> {
        let transport = |()| MsgQueues {
            tx,
            rx,
            not_empty: true,
        };
        let id = match server.reconnect(vmid, transport(()))? {
            Some(id) => id,
            None => {
                if server.clients() >= MAX_CLIENTS {
                    return Err(wurley_abi::rm::RmError::NoResource);
                }
                let buf: &'static mut [u8] =
                    Box::leak(vec![0u8; MAX_MESSAGE_SIZE].into_boxed_slice());
                server.connect(vmid, transport(()), buf)?
            }
        };
        let tag = id as u8 + 1;
        if let Some(m) = IRQ_MAP.get(tx_irq.intid as usize) {
            m.store(tag | IRQ_TX, Ordering::Release);
        }
        if let Some(m) = IRQ_MAP.get(rx_irq.intid as usize) {
            m.store(tag, Ordering::Release);
        }
        gic::enable(tx_irq.intid, tx_irq.edge, link_irq);
        gic::enable(rx_irq.intid, rx_irq.edge, link_irq);
        Ok(id)
    }

    /// Stop listening on `virq`.
    fn release_virq(virq: u32) {
        gic::disable(virq);
        if let Some(m) = IRQ_MAP.get(virq as usize) {
            m.store(0, Ordering::Release);
        }
        if let Some(m) = WATCH_MAP.get(virq as usize) {
            m.store(0, Ordering::Release);
        }
    }

    /// Do what the server's operations asked for: connect and disconnect the RM links of the
    /// VMs the RM created and destroyed, watch and unwatch them. True if anything changed.
    fn handle_events(server: &mut RmServer, watches: &mut Vec<Option<Watch>>) -> bool {
        let events = server.hyp_mut().take_events();
        let any = !events.is_empty();
        for event in events {
            match event {
                Event::Link {
                    vmid,
                    tx,
                    rx,
                    tx_virq,
                    rx_virq,
                } => {
                    let irq = |intid| Irq { intid, edge: true };
                    match connect(server, vmid, tx, rx, irq(tx_virq), irq(rx_virq)) {
                        Ok(id) => println!(
                            "RM: client vm{:x} vmid {:#x} created, client {id} tx_virq={tx_virq} rx_virq={rx_virq}",
                            VmId::raw(vmid),
                            VmId::raw(vmid)
                        ),
                        Err(e) => println!(
                            "RM: error: VM {:#x}: no RM link: {}",
                            VmId::raw(vmid),
                            e.name()
                        ),
                    }
                }
                Event::Unlink { vmid, virqs } => {
                    server.disconnect(vmid);
                    virqs.into_iter().for_each(release_virq);
                }
                Event::Watch { vmid, vcpu, virq } => {
                    let name = server
                        .vms()
                        .get(vmid)
                        .map_or_else(|| String::from("?"), |v| v.name.clone());
                    let watch = Watch {
                        vmid,
                        name,
                        cap: vcpu,
                        virq,
                    };
                    let slot = match watches.iter().position(Option::is_none) {
                        Some(i) => i,
                        None if watches.len() < MAX_WATCHES => {
                            watches.push(None);
                            watches.len() - 1
                        }
                        None => {
                            println!("RM: error: VM {:#x}: too many watches", VmId::raw(vmid));
                            continue;
                        }
                    };
                    if let (Some(m), Some(w)) =
                        (WATCH_MAP.get(virq as usize), watches.get_mut(slot))
                    {
                        m.store(slot as u8 + 1, Ordering::Release);
                        *w = Some(watch);
                        gic::enable(virq, true, halt_irq);
                    }
                }
                Event::Unwatch { vmid, virq } => {
                    for w in watches.iter_mut() {
                        if w.as_ref().is_some_and(|w| w.vmid == vmid && w.virq == virq) {
                            *w = None;
                        }
                    }
                    release_virq(virq);
                }
            }
        }
        any
    }

    /// Serve forever: sleep until a link or watch vIRQ, then let the server do what it can.
    fn serve(server: &mut RmServer, out: &mut Console, mut launch: Option<Launch>) -> ! {
        // No clients yet: the launch connects them (and watches them) before they run.
        let mut watches = Vec::new();
        loop {
            // The launch goes on a step at a time, with the clients served in between.
            let launching = launch
                .as_mut()
                .is_some_and(|l| launch_step(server, &mut watches, l));
            // Check the event masks with IRQs masked, so an event that arrives after the
            // check stays pending and ends the WFI.
            wurley_rt::mask_irqs();
            let rx = RX_EVENTS.swap(0, Ordering::AcqRel);
            let tx = TX_EVENTS.swap(0, Ordering::AcqRel);
            let halts = HALT_EVENTS.swap(0, Ordering::AcqRel);
            if rx == 0 && tx == 0 && halts == 0 {
                if launching {
                    wurley_rt::enable_irqs();
                    continue;
                }
                wurley_rt::wait_for_interrupt();
                wurley_rt::enable_irqs();
                continue;
            }
            wurley_rt::enable_irqs();
            for (i, w) in watches.iter().enumerate() {
                if halts & (1u64 << i) != 0
                    && let Some(w) = w
                    && let Some(vmid) = check_watch(server, w, out)
                {
                    vm_ended(launch.as_mut(), vmid, &w.name);
                }
            }
            for id in 0..server.clients() {
                let bit = 1u64 << id;
                if rx & bit != 0 {
                    server.rx_ready(id);
                }
                if tx & bit != 0 {
                    server.tx_ready(id);
                }
            }
            round(server, &mut watches, out);
            check_end(server, launch.as_ref());
        }
    }

    /// Run the server until its operations ask for nothing more (a VM created in this round
    /// is connected, and its first requests served, before the RM sleeps).
    fn round(server: &mut RmServer, watches: &mut Vec<Option<Watch>>, out: &mut Console) {
        loop {
            server.run(out);
            if !handle_events(server, watches) {
                break;
            }
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("wurley-rm is an EL1 program: build it for aarch64-unknown-none-softfloat");
}

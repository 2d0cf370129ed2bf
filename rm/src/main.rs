//! wurley-rm: the Resource Manager as an EL1 program on wurley-rt.
//!
//! It runs as Wurley's root VM: the hypervisor embeds it, starts it with every boot bundle and
//! links every VM of the bundle to it (docs/rm.md). At start it prints
//! `RM: Wurley resource manager <version>`, then finds its clients in its device tree: every
//! message-queue pair under `/hypervisor` whose `label` is `rm-<name>` is the RPC link of client
//! VM `<name>`. The RM side's queues must carry 240-byte messages
//! (the protocol's packet size); other links are refused with an error line.
//!
//! VMIDs: clients get dynamic VMIDs `0x80, 0x81, ...` in device-tree order, except the one
//! named by bootargs `rm.primary=<name>`, which gets VMID 3 (the primary VM: the only one
//! allowed to VM_ALLOCATE). All of them are recorded as RUNNING, owned by the RM (0xFF).
//!
//! Proxy scheduling: each `vcpu-grant@..` node under `/hypervisor` (compatible
//! `"wurley,proxy-vcpu-grant"`) says that VM `wurley,owner` runs vCPU `wurley,vcpu-index` of VM
//! `wurley,vm` with `vcpu_run`; the RM makes the owner that VM's owner and reports the vCPU to
//! it through VM_GET_HYP_RESOURCES (printing `RM: vCPU <i> of <vm> (vmid ..) proxy-scheduled by
//! <owner> (vmid ..)`).
//!
//! Each link's RX ("not empty") and TX ("not full") vIRQs are enabled (edge); their handlers
//! only set the client's bit in an event mask. The main loop sleeps in `WFI` until a bit is
//! set, then hands the events to the server ([`wurley_rm::server::Server::run`]), which
//! drains every client with packets, answers and sends until a queue is full. Nothing polls.
//! The RM never exits.
//!
//! VM exits: each `vm-watch@..` node (compatible `"wurley,vm-watch"`) gives the RM a cap to
//! vCPU 0 of a VM that is not proxy-scheduled, whose HALT source the hypervisor bound to a vIRQ
//! of the RM's and raises when the VM ends. The main loop then asks `vcpu_run_check` how the
//! VM stopped (SYSTEM_OFF, reset, fault) and the server marks it EXITED, tells its status
//! listeners (VM_STATUS) and its owner (VM_EXITED), and prints
//! `RM: VM <name> (vmid <id>) exited: <how>`.
//!
//! Bootargs: `rm.debug=1` prints one line per request (default: only errors);
//! `rm.primary=<name>` as above. Heap: a fixed region in BSS (reassembly buffers are 14 616
//! bytes per client).
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
    use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

    use buddy_system_allocator::LockedHeap;
    use wurley_abi::rm::status::VmStatus;
    use wurley_abi::rm::{MAX_MESSAGE_SIZE, PACKET_SIZE, VMID_HLOS, VMID_RM};
    use wurley_abi::{CapId, Error, VmId};
    use wurley_rm::conn::{RxError, Transport, TxError};
    use wurley_rm::hyp::NoHyp;
    use wurley_rm::output::{Level, Output};
    use wurley_rm::server::Server;
    use wurley_rm::vms::VmRecord;
    use wurley_rt::fdt::Fdt;
    use wurley_rt::hypdt::{self, Irq};
    use wurley_rt::{args, gic, hyp, println};

    /// Prefix of an RM link's label; the rest is the client's name.
    const LINK_PREFIX: &str = "rm-";
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

    /// A VM the hypervisor lets the RM watch: its VMID and the cap to its vCPU 0.
    struct Watch {
        vmid: VmId,
        name: String,
        cap: CapId,
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

    /// One RM link found in the device tree.
    struct Link<'a> {
        label: &'a str,
        client: &'a str,
        tx: CapId,
        rx: CapId,
        tx_irq: Irq,
        rx_irq: Irq,
    }

    /// `peer-name` of the message-queue pair labelled `label`.
    fn peer_name<'a>(fdt: &Fdt<'a>, label: &str) -> Option<&'a str> {
        hypdt::hypervisor(fdt)?
            .children()
            .filter(|n| n.is_compatible(hypdt::COMPAT_MSGQ_PAIR))
            .find(|n| n.prop_str("label") == Some(label))?
            .prop_str("peer-name")
    }

    /// Check one message-queue pair; `None` (with an error line) if it is not a usable RM link.
    fn link<'a>(fdt: &Fdt<'a>, pair: &hypdt::MsgQueuePair<'a>) -> Option<Link<'a>> {
        let client = pair.label.strip_prefix(LINK_PREFIX)?;
        let label = pair.label;
        if client.is_empty() {
            println!("RM: error: link {label}: no client name after {LINK_PREFIX:?}");
            return None;
        }
        let (Some(tx_irq), Some(rx_irq)) = (pair.tx_irq, pair.rx_irq) else {
            println!("RM: error: link {label}: no interrupts");
            return None;
        };
        if [tx_irq.intid, rx_irq.intid]
            .iter()
            .any(|&i| i as usize >= gic::MAX_INTID)
        {
            println!(
                "RM: error: link {label}: vIRQs {} and {} must be below {}",
                tx_irq.intid,
                rx_irq.intid,
                gic::MAX_INTID
            );
            return None;
        }
        let sizes = [pair.tx_message_size, pair.rx_message_size];
        if sizes.iter().any(|&s| s != 0 && s as usize != PACKET_SIZE) {
            println!(
                "RM: error: link {label}: message size {}/{}, the RM protocol needs {PACKET_SIZE}",
                pair.tx_message_size, pair.rx_message_size
            );
            return None;
        }
        if let Some(peer) = peer_name(fdt, label)
            && peer != client
        {
            println!("RM: error: link {label} leads to VM {peer:?}, not {client:?}");
            return None;
        }
        Some(Link {
            label,
            client,
            tx: pair.tx,
            rx: pair.rx,
            tx_irq,
            rx_irq,
        })
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
        let primary = args::get(bootargs, "rm.primary");

        let mut server: Server<'static, NoHyp, MsgQueues> = Server::new(NoHyp);
        match fdt.as_ref() {
            Some(fdt) => {
                for pair in hypdt::msgqueue_pairs(fdt) {
                    if let Some(link) = link(fdt, &pair) {
                        add_client(&mut server, &link, primary);
                    }
                }
            }
            None => println!("RM: error: no valid device tree"),
        }
        if let Some(fdt) = fdt.as_ref() {
            for grant in hypdt::proxy_grants(fdt) {
                add_proxy_grant(&mut server, &grant);
            }
        }
        let mut watches = Vec::new();
        if let Some(fdt) = fdt.as_ref() {
            for w in hypdt::vm_watches(fdt) {
                add_watch(&server, &mut watches, &w);
            }
        }
        if let Some(p) = primary
            && server.vms().iter().all(|v| v.name != p)
        {
            println!("RM: error: rm.primary={p}: no RM link to such a VM");
        }
        println!("RM: serving {} client(s)", server.clients());
        serve(&mut server, &watches, &mut out)
    }

    /// Watch a VM the hypervisor named (`vm-watch` node): its HALT vIRQ ends up in
    /// [`check_watch`].
    fn add_watch(
        server: &Server<'static, NoHyp, MsgQueues>,
        watches: &mut Vec<Watch>,
        w: &hypdt::VmWatch<'_>,
    ) {
        let Some(vmid) = server.vms().iter().find(|v| v.name == w.vm).map(|v| v.vmid) else {
            println!("RM: error: watch of VM {}: no RM link to it", w.vm);
            return;
        };
        let slot = WATCH_MAP.get(w.irq.intid as usize);
        let (Some(slot), true) = (slot, watches.len() < MAX_WATCHES) else {
            println!(
                "RM: error: watch of VM {}: vIRQ {} or too many watches",
                w.vm, w.irq.intid
            );
            return;
        };
        slot.store(watches.len() as u8 + 1, Ordering::Release);
        watches.push(Watch {
            vmid,
            name: String::from(w.vm),
            cap: w.cap,
        });
        gic::enable(w.irq.intid, w.irq.edge, halt_irq);
    }

    /// A watched VM's vCPU 0 halted: ask the hypervisor how (`vcpu_run_check`). A VM that
    /// stopped for good becomes EXITED, and its owner hears of it; a vCPU that only powered
    /// off (its VM goes on) or is running again is no news.
    fn check_watch(server: &mut Server<'static, NoHyp, MsgQueues>, w: &Watch, out: &mut Console) {
        use wurley_abi::rm::status::ExitType;
        use wurley_abi::vcpu_run::{POWERED_OFF_EXITED, RunState};
        let Ok(r) = hyp::vcpu_run_check(w.cap) else {
            return;
        };
        let (exit, how) = match RunState::from_raw(r.state) {
            Some(RunState::PoweredOff) if r.data[0] & POWERED_OFF_EXITED != 0 => {
                (ExitType::PlatformOff, "powered off")
            }
            Some(RunState::PsciSystemReset) => (ExitType::PlatformReset, "reset"),
            Some(RunState::Fault) => (ExitType::SoftwareError, "stopped by a fault"),
            _ => return,
        };
        if server.vm_exited(w.vmid, exit, out) {
            println!(
                "RM: VM {} (vmid {:#x}) exited: {how}",
                w.name,
                VmId::raw(w.vmid)
            );
        }
    }

    fn add_client(
        server: &mut Server<'static, NoHyp, MsgQueues>,
        link: &Link<'_>,
        primary: Option<&str>,
    ) {
        let label = link.label;
        if server.clients() >= MAX_CLIENTS {
            println!("RM: error: link {label}: more than {MAX_CLIENTS} clients");
            return;
        }
        if server.vms().iter().any(|v| v.name == link.client) {
            println!(
                "RM: error: link {label}: VM {} has an RM link already",
                link.client
            );
            return;
        }
        let vmid = if primary == Some(link.client) {
            VMID_HLOS
        } else {
            match server.vms().free_dynamic() {
                Ok(v) => v,
                Err(_) => {
                    println!("RM: error: link {label}: no VMID left");
                    return;
                }
            }
        };
        let record = VmRecord::new(vmid, link.client, VMID_RM, VmStatus::Running);
        if let Err(e) = server.vms_mut().insert(record) {
            println!("RM: error: link {label}: VMID {:#x}: {}", vmid.0, e.name());
            return;
        }
        // Clients live as long as the RM: their reassembly buffers are never freed.
        let buf: &'static mut [u8] = Box::leak(vec![0u8; MAX_MESSAGE_SIZE].into_boxed_slice());
        let transport = MsgQueues {
            tx: link.tx,
            rx: link.rx,
            not_empty: true,
        };
        let id = match server.connect(vmid, transport, buf) {
            Ok(id) => id,
            Err(e) => {
                println!("RM: error: link {label}: {}", e.name());
                server.vms_mut().remove(vmid);
                return;
            }
        };
        let tag = id as u8 + 1;
        if let Some(m) = IRQ_MAP.get(link.tx_irq.intid as usize) {
            m.store(tag | IRQ_TX, Ordering::Release);
        }
        if let Some(m) = IRQ_MAP.get(link.rx_irq.intid as usize) {
            m.store(tag, Ordering::Release);
        }
        gic::enable(link.tx_irq.intid, link.tx_irq.edge, link_irq);
        gic::enable(link.rx_irq.intid, link.rx_irq.edge, link_irq);
        println!(
            "RM: client {} vmid {:#x} link {label} tx_virq={} rx_virq={}",
            link.client,
            VmId::raw(vmid),
            link.tx_irq.intid,
            link.rx_irq.intid
        );
    }

    /// Record a vCPU the hypervisor gave to its proxy scheduler, for VM_GET_HYP_RESOURCES.
    fn add_proxy_grant(server: &mut Server<'static, NoHyp, MsgQueues>, g: &hypdt::ProxyGrant<'_>) {
        let vmid = |name: &str| server.vms().iter().find(|v| v.name == name).map(|v| v.vmid);
        let (Some(vm), Some(owner)) = (vmid(g.vm), vmid(g.owner)) else {
            println!(
                "RM: error: vCPU {} of {} run by {}: no RM link to both VMs",
                g.index, g.vm, g.owner
            );
            return;
        };
        match server
            .vms_mut()
            .grant_proxy_vcpu(vm, owner, g.index, g.cap.0, g.virq)
        {
            Ok(()) => println!(
                "RM: vCPU {} of {} (vmid {:#x}) proxy-scheduled by {} (vmid {:#x})",
                g.index,
                g.vm,
                VmId::raw(vm),
                g.owner,
                VmId::raw(owner)
            ),
            Err(e) => println!(
                "RM: error: vCPU {} of {} run by {}: {}",
                g.index,
                g.vm,
                g.owner,
                e.name()
            ),
        }
    }

    /// Serve forever: sleep until a link or watch vIRQ, then let the server do what it can.
    fn serve(
        server: &mut Server<'static, NoHyp, MsgQueues>,
        watches: &[Watch],
        out: &mut Console,
    ) -> ! {
        // Requests may have been queued before the vIRQs were enabled: one round first.
        server.run(out);
        loop {
            // Check the event masks with IRQs masked, so an event that arrives after the
            // check stays pending and ends the WFI.
            wurley_rt::mask_irqs();
            let rx = RX_EVENTS.swap(0, Ordering::AcqRel);
            let tx = TX_EVENTS.swap(0, Ordering::AcqRel);
            let halts = HALT_EVENTS.swap(0, Ordering::AcqRel);
            if rx == 0 && tx == 0 && halts == 0 {
                wurley_rt::wait_for_interrupt();
                wurley_rt::enable_irqs();
                continue;
            }
            wurley_rt::enable_irqs();
            for (i, w) in watches.iter().enumerate() {
                if halts & (1u64 << i) != 0 {
                    check_watch(server, w, out);
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
            server.run(out);
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("wurley-rm is an EL1 program: build it for aarch64-unknown-none-softfloat");
}

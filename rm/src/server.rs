//! The RPC server: client connections, request dispatch and the handlers.
//!
//! The EL1 binary (or a host test) tells the server which clients had an event
//! ([`Server::rx_ready`] on the RX "not empty" vIRQ, [`Server::tx_ready`] on the TX "not full"
//! vIRQ) and calls [`Server::run`], which does everything that can be done without waiting:
//! drains the clients that have packets, handles every complete message, and sends queued
//! replies and notifications until each client's queue is full or its traffic is out.
//!
//! Per message (reference §7.3, §7.5):
//! * a request is dispatched by message ID; the reply echoes its sequence number and ID and
//!   carries the RM error code, then the payload. Unknown IDs get `RM_ERROR_UNIMPLEMENTED`
//!   (`0xFFFF_FFFF`), as in the public RM; a payload that does not parse gets `MSG_INVALID`;
//! * replies and notifications from clients are dropped and logged (the RM sends no requests
//!   yet);
//! * malformed packets are dropped as the [`Reassembler`](wurley_abi::rm::Reassembler) says;
//!   a run of dropped packets is logged as one line when the next good packet arrives.
//!
//! Back-pressure: replies and notifications wait in the client's [`Conn`]; a client with
//! [`RX_DEFER_QUEUED`] messages waiting (it is not reading its queue) is not drained until
//! they are sent, so its requests stay in its own queue and it alone waits. A drain takes at
//! most [`DRAIN_BUDGET`] packets before the other clients get their turn. Notifications to a
//! client already holding [`OUT_QUEUE_LIMIT`] messages are dropped and logged.
//!
//! Handlers, besides parsing: VM_GET_VMID, VM_GET_STATE, VM_SET_STATUS, VM_GET_HYP_RESOURCES,
//! VM_CONSOLE_OPEN/CLOSE/WRITE/FLUSH, VM_EXIT, VM_ALLOCATE and VM_DEALLOCATE need only the
//! RM's records and are complete. VM_CONFIG_IMAGE, VM_SET_DEMAND_PAGING,
//! VM_SET_ADDRESS_LAYOUT, VM_INIT, VM_SET_BOOT_CONTEXT, VM_START, VM_STOP, VM_RESET, MEM_* and
//! VM_IRQ_* do every check the records allow (`VMID_INVALID`, `DENIED`, `VM_STATE`,
//! `ARGUMENT_INVALID`) and then call [`Hyp`]; with [`NoHyp`](crate::hyp::NoHyp) they answer
//! `UNIMPLEMENTED`. VM_IRQ_UNMAP, whose wire layout is unconfirmed, answers `UNIMPLEMENTED`
//! without parsing; every other ID is unknown.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use wurley_abi::VmId;
use wurley_abi::rm::console::{ConsoleCharsNotification, ConsoleWriteRequest};
use wurley_abi::rm::fragment::{DropReason, Event, Message};
use wurley_abi::rm::header::HeaderError;
use wurley_abi::rm::irq::{
    IRQ_NOTIFY_FLAG_ACCEPTED, IRQ_NOTIFY_FLAG_LENT, IRQ_NOTIFY_FLAG_RELEASED, IrqAcceptReply,
    IrqAcceptRequest, IrqHandle, IrqLendRequest, IrqNotifyRequest,
};
use wurley_abi::rm::memparcel::{
    MEM_CREATE_FLAG_APPEND, MEM_NOTIFY_FLAG_ACCEPTED, MEM_NOTIFY_FLAG_RECALL,
    MEM_NOTIFY_FLAG_RELEASED, MEM_NOTIFY_FLAG_SHARED, MEM_RIGHTS_RWX, MemAcceptRequest,
    MemAppendRequest, MemAttr, MemCreateRequest, MemHandleReply, MemNotifyRequest,
    MemReleaseRequest, MemType, SglEntry, TransType,
};
use wurley_abi::rm::resource::{HypResource, HypResourcesReply};
use wurley_abi::rm::status::{
    ExitCode, ExitType, OsStatus, VmExitedNotification, VmShutdownNotification, VmStatus,
    VmStatusNotification, exit_reason_word,
};
use wurley_abi::rm::vm::{
    AddressRangeId, AuthMechanism, BootRegSet, Empty, VmAllocateReply, VmConfigImageRequest,
    VmExitRequest, VmGetVmidReply, VmSetAddressLayoutRequest, VmSetBootContextRequest,
    VmSetDemandPagingRequest, VmSetStatusRequest, VmStopRequest, VmidRequest,
};
use wurley_abi::rm::{Decode, Encode, List, MessageType, PACKET_SIZE, RmError, VMID_RM, ids};

use crate::conn::{Conn, OutMessage, Transport};
use crate::hyp::Hyp;
use crate::output::Output;
use crate::vms::{ConsoleState, VmTable};
use crate::{debug, error};

/// Most messages a client connection holds (replies and notifications).
pub const OUT_QUEUE_LIMIT: usize = 32;
/// A client with this many messages waiting is not drained until they are sent.
pub const RX_DEFER_QUEUED: usize = 16;
/// Most packets taken from one client before the others get their turn.
pub const DRAIN_BUDGET: usize = 64;
/// A console line longer than this is printed in pieces.
pub const CONSOLE_LINE_MAX: usize = 200;
/// Dropped packets are summarised at least every this many.
const DROP_REPORT_EVERY: u64 = 1024;
/// Memory sizes and addresses in requests must be multiples of this.
pub const PAGE_SIZE: u64 = 4096;

/// Index of a client connection.
pub type ClientId = usize;

/// A run of dropped packets, reported as one line.
#[derive(Debug, Default, Clone, Copy)]
struct DropRun {
    count: u64,
    first: Option<DropReason>,
}

struct Client<'a, T> {
    vmid: VmId,
    /// Its link is gone (the VM was destroyed); the slot is reused by the next VM connected.
    closed: bool,
    conn: Conn<'a, T>,
    rx_pending: bool,
    drops: DropRun,
}

/// What handling one message produced: the reply to the caller (queued first) and
/// notifications to other VMs (or the caller).
#[derive(Debug, Default)]
struct Effects {
    reply: Option<OutMessage>,
    notes: Vec<(VmId, OutMessage)>,
}

/// The request being handled.
struct Ctx {
    caller: VmId,
    notes: Vec<(VmId, OutMessage)>,
}

/// The RM's state apart from the connections: the VM table, the hypervisor operations and
/// the notification sequence counter.
struct Core<H> {
    vms: VmTable,
    hyp: H,
    notify_seq: u16,
}

/// The RPC server.
pub struct Server<'a, H, T> {
    core: Core<H>,
    clients: Vec<Client<'a, T>>,
}

impl<'a, H: Hyp, T: Transport> Server<'a, H, T> {
    /// A server with only the RM in its VM table and no clients.
    pub fn new(hyp: H) -> Self {
        Server {
            core: Core {
                vms: VmTable::new(),
                hyp,
                notify_seq: 0,
            },
            clients: Vec::new(),
        }
    }

    /// The VM table.
    pub fn vms(&self) -> &VmTable {
        &self.core.vms
    }

    /// The VM table, mutably.
    pub fn vms_mut(&mut self) -> &mut VmTable {
        &mut self.core.vms
    }

    /// The hypervisor operations.
    pub fn hyp(&self) -> &H {
        &self.core.hyp
    }

    /// The hypervisor operations, mutably.
    pub fn hyp_mut(&mut self) -> &mut H {
        &mut self.core.hyp
    }

    /// Connect VM `vmid` (already in the table) over `transport`, reassembling in `buf`.
    /// `VMID_INVALID` if the VM is unknown, `IN_USE` if it is already connected.
    pub fn connect(
        &mut self,
        vmid: VmId,
        transport: T,
        buf: &'a mut [u8],
    ) -> Result<ClientId, RmError> {
        if !self.core.vms.contains(vmid) || vmid == VMID_RM {
            return Err(RmError::VmidInvalid);
        }
        if self.clients.iter().any(|c| c.vmid == vmid && !c.closed) {
            return Err(RmError::InUse);
        }
        self.clients.push(Client {
            vmid,
            closed: false,
            conn: Conn::new(transport, buf),
            // Packets may have arrived before the RM looked: drain once at start.
            rx_pending: true,
            drops: DropRun::default(),
        });
        Ok(self.clients.len() - 1)
    }

    /// Connect VM `vmid` (already in the table) over `transport` in a closed slot, reusing its
    /// buffer; `None` if no slot is closed (then use [`Server::connect`]). `VMID_INVALID` if
    /// the VM is unknown, `IN_USE` if it is connected.
    pub fn reconnect(&mut self, vmid: VmId, transport: T) -> Result<Option<ClientId>, RmError> {
        if !self.core.vms.contains(vmid) || vmid == VMID_RM {
            return Err(RmError::VmidInvalid);
        }
        if self.clients.iter().any(|c| c.vmid == vmid && !c.closed) {
            return Err(RmError::InUse);
        }
        let Some(id) = self.clients.iter().position(|c| c.closed) else {
            return Ok(None);
        };
        let client = &mut self.clients[id];
        client.conn.restart(transport);
        client.vmid = vmid;
        client.closed = false;
        client.rx_pending = true;
        client.drops = DropRun::default();
        Ok(Some(id))
    }

    /// VM `vmid`'s link is gone: its slot stops being served (what was queued for it is
    /// dropped when the slot is reused). Returns the slot.
    pub fn disconnect(&mut self, vmid: VmId) -> Option<ClientId> {
        let id = self
            .clients
            .iter()
            .position(|c| c.vmid == vmid && !c.closed)?;
        let client = &mut self.clients[id];
        client.closed = true;
        client.rx_pending = false;
        Some(id)
    }

    /// Number of client connections.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// The VMID of client `id`.
    pub fn client_vmid(&self, id: ClientId) -> Option<VmId> {
        self.clients.get(id).map(|c| c.vmid)
    }

    /// Client `id`'s connection.
    pub fn conn(&self, id: ClientId) -> Option<&Conn<'a, T>> {
        self.clients.get(id).map(|c| &c.conn)
    }

    /// Client `id`'s connection, mutably.
    pub fn conn_mut(&mut self, id: ClientId) -> Option<&mut Conn<'a, T>> {
        self.clients.get_mut(id).map(|c| &mut c.conn)
    }

    /// Client `id` has packets for the RM (its RX vIRQ fired).
    pub fn rx_ready(&mut self, id: ClientId) {
        if let Some(c) = self.clients.get_mut(id) {
            c.rx_pending = true;
        }
    }

    /// Client `id`'s queue has room (its TX vIRQ fired).
    pub fn tx_ready(&mut self, id: ClientId) {
        if let Some(c) = self.clients.get_mut(id) {
            c.conn.tx_ready();
        }
    }

    /// Whether [`Server::run`] would find work without a new event. After `run` this is
    /// false: what is left waits for a vIRQ.
    pub fn has_work(&self) -> bool {
        self.clients.iter().any(|c| {
            !c.closed && (c.conn.can_send() || (c.rx_pending && c.conn.queued() < RX_DEFER_QUEUED))
        })
    }

    /// Do everything possible now: drain clients with packets, handle their messages, send.
    pub fn run(&mut self, out: &mut dyn Output) {
        loop {
            let mut progress = false;
            for id in 0..self.clients.len() {
                progress |= self.drain(id, out);
            }
            for id in 0..self.clients.len() {
                progress |= self.flush(id, out);
            }
            if !progress {
                break;
            }
        }
    }

    fn name(&self, id: ClientId) -> String {
        let vmid = self.client_vmid(id).unwrap_or(VMID_RM);
        self.core.name_of(vmid)
    }

    /// Take up to [`DRAIN_BUDGET`] packets from client `id`; true if any arrived.
    fn drain(&mut self, id: ClientId, out: &mut dyn Output) -> bool {
        let mut got_any = false;
        for _ in 0..DRAIN_BUDGET {
            let Some(client) = self.clients.get_mut(id) else {
                return got_any;
            };
            if client.closed || !client.rx_pending || client.conn.queued() >= RX_DEFER_QUEUED {
                return got_any;
            }
            let mut packet = [0u8; PACKET_SIZE];
            let len = match client.conn.receive(&mut packet) {
                Ok(Some(len)) => len,
                Ok(None) => {
                    client.rx_pending = false;
                    return got_any;
                }
                Err(e) => {
                    client.rx_pending = false;
                    let name = self.name(id);
                    error!(out, "{name}: receive failed: error {}", e.0);
                    return got_any;
                }
            };
            got_any = true;
            let more = client.conn.more_pending();
            self.handle_packet(id, packet.get(..len).unwrap_or(&[]), out);
            if !more && let Some(client) = self.clients.get_mut(id) {
                client.rx_pending = false;
            }
        }
        got_any
    }

    /// Send what client `id` has queued; true if a packet went out.
    fn flush(&mut self, id: ClientId, out: &mut dyn Output) -> bool {
        let Some(client) = self.clients.get_mut(id) else {
            return false;
        };
        if client.closed || !client.conn.can_send() {
            return false;
        }
        let report = client.conn.flush();
        if !report.failures.is_empty() {
            let name = self.name(id);
            for f in &report.failures {
                error!(
                    out,
                    "{name}: send failed (error {}): {:?} {} seq {} dropped at packet {}",
                    f.code,
                    f.kind,
                    IdName(f.id),
                    f.seq,
                    f.packet
                );
            }
        }
        report.packets > 0
    }

    fn handle_packet(&mut self, id: ClientId, packet: &[u8], out: &mut dyn Output) {
        let Server { core, clients } = self;
        let Some(client) = clients.get_mut(id) else {
            return;
        };
        let caller = client.vmid;
        let got = client.conn.push(packet);
        if let Some(lost) = got.aborted {
            error!(
                out,
                "{}: discarded partial {:?} {} seq {} ({} of {} continuations)",
                core.name_of(caller),
                lost.kind,
                IdName(lost.id),
                lost.seq,
                lost.received,
                lost.fragments
            );
        }
        let effects = match got.event {
            Event::Dropped(reason) => {
                client.drops.count += 1;
                client.drops.first.get_or_insert(reason);
                if client.drops.count.is_multiple_of(DROP_REPORT_EVERY) {
                    report_drops(out, &core.name_of(caller), &mut client.drops);
                }
                return;
            }
            Event::NeedMore { .. } => {
                if client.drops.count > 0 {
                    report_drops(out, &core.name_of(caller), &mut client.drops);
                }
                return;
            }
            Event::Complete(msg) => {
                if client.drops.count > 0 {
                    report_drops(out, &core.name_of(caller), &mut client.drops);
                }
                core.handle(caller, &msg, out)
            }
        };
        self.deliver(id, effects, out);
    }

    /// The hypervisor reports that VM `vmid` stopped for good (its vCPU's HALT vIRQ, then
    /// `vcpu_run_check`): it becomes EXITED, its status listeners get VM_STATUS and its owner
    /// VM_EXITED with `exit_type`. False (nothing changes) if the VM is unknown or cannot
    /// become EXITED (already exited, say).
    pub fn vm_exited(&mut self, vmid: VmId, exit_type: ExitType, out: &mut dyn Output) -> bool {
        let mut ctx = Ctx {
            caller: VMID_RM,
            notes: Vec::new(),
        };
        let can = self
            .core
            .vms
            .get(vmid)
            .is_some_and(|v| v.status.can_become(VmStatus::Exited));
        if !can || self.core.vms.set_status(vmid, VmStatus::Exited).is_err() {
            return false;
        }
        // As after VM_STOP: a VM that ended touches no memory, so what it accepted counts as
        // released and its owner may reclaim it before VM_RESET (Linux does). A VM the launch
        // built has nothing to release (`UNIMPLEMENTED`).
        if let Err(e) = self.core.hyp.vm_kill(vmid)
            && e != RmError::Unimplemented
        {
            debug!(
                out,
                "VM {:#x} exited: releasing its memory: {}",
                vmid.0,
                e.name()
            );
        }
        self.core.notify_status(&mut ctx, vmid);
        let code = match exit_type {
            ExitType::SoftwareError | ExitType::AsyncHwError => ExitCode::SoftwareError,
            _ => ExitCode::Normal,
        };
        let reason = exit_reason_word(0, code);
        self.core.notify_exited(&mut ctx, vmid, exit_type, reason);
        let effects = Effects {
            reply: None,
            notes: ctx.notes,
        };
        self.deliver(usize::MAX, effects, out);
        true
    }

    /// Queue a handler's reply on client `id` and its notifications on their targets.
    fn deliver(&mut self, id: ClientId, effects: Effects, out: &mut dyn Output) {
        if let Some(reply) = effects.reply
            && let Some(client) = self.clients.get_mut(id)
        {
            let (seq, msg_id) = (reply.seq(), reply.id());
            if let Err(e) = client.conn.queue(reply, OUT_QUEUE_LIMIT) {
                let name = self.name(id);
                error!(
                    out,
                    "{name}: reply to {} seq {seq} dropped: {e:?}",
                    IdName(msg_id)
                );
            }
        }
        for (target, note) in effects.notes {
            let found = self
                .clients
                .iter_mut()
                .find(|c| c.vmid == target && !c.closed);
            let Some(client) = found else {
                debug!(
                    out,
                    "{}: not connected, {} not sent",
                    self.core.name_of(target),
                    IdName(note.id())
                );
                continue;
            };
            let msg_id = note.id();
            if let Err(e) = client.conn.queue(note, OUT_QUEUE_LIMIT) {
                error!(
                    out,
                    "{}: notification {} dropped: {e:?}",
                    self.core.name_of(target),
                    IdName(msg_id)
                );
            }
        }
    }
}

fn report_drops(out: &mut dyn Output, name: &str, drops: &mut DropRun) {
    if drops.count == 0 {
        return;
    }
    let first = drops.first.map(DropText);
    match first {
        Some(first) => error!(
            out,
            "{name}: dropped {} packet(s), the first: {first}", drops.count
        ),
        None => error!(out, "{name}: dropped {} packet(s)", drops.count),
    }
    *drops = DropRun::default();
}

/// A message ID with its name.
struct IdName(u32);

impl fmt::Display for IdName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match ids::name(self.0) {
            Some(n) => f.write_str(n),
            None => write!(f, "{:#010x}", self.0),
        }
    }
}

/// Why a packet was dropped, for the log.
struct DropText(DropReason);

impl fmt::Display for DropText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            DropReason::BadHeader(HeaderError::TooShort { len }) => {
                write!(f, "{len} bytes, shorter than a header")
            }
            DropReason::BadHeader(HeaderError::BadVersion(v)) => write!(f, "API version {v}"),
            DropReason::BadHeader(HeaderError::BadHeaderWords(w)) => {
                write!(f, "{w} header words")
            }
            DropReason::BadHeader(HeaderError::TooManyFragments(n)) => {
                write!(f, "{n} continuations (at most 62)")
            }
            DropReason::Oversized { len } => write!(f, "{len} bytes, longer than a message"),
            DropReason::StrayContinuation { seq, id } => {
                write!(f, "stray continuation of {} seq {seq}", IdName(id))
            }
            DropReason::Mismatch { expected, got } => write!(
                f,
                "continuation of {} seq {} while {} seq {} is in progress",
                IdName(got.id),
                got.seq,
                IdName(expected.id),
                expected.seq
            ),
            DropReason::Overflow { capacity, needed } => {
                write!(f, "message of {needed}+ bytes, buffer {capacity}")
            }
        }
    }
}

/// Parse a request payload (`MSG_INVALID` when it does not).
fn parse<'p, T: Decode<'p>>(payload: &'p [u8]) -> Result<T, RmError> {
    T::decode(payload).map_err(|_| RmError::MsgInvalid)
}

/// A reply payload.
fn encode<T: Encode>(value: &T) -> Result<Vec<u8>, RmError> {
    let mut buf = vec![0u8; value.encoded_len()];
    let n = value.encode(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// The empty ("standard") reply payload.
fn done() -> Result<Vec<u8>, RmError> {
    Ok(Vec::new())
}

/// VMID 0 in a request means the caller.
fn self_or(caller: VmId, vmid: VmId) -> VmId {
    if vmid.0 == 0 { caller } else { vmid }
}

/// A memory range: non-empty, page aligned, not wrapping.
fn check_range(base: u64, size: u64) -> Result<(), RmError> {
    if size == 0 || !base.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
        return Err(RmError::ArgumentInvalid);
    }
    base.checked_add(size).ok_or(RmError::ArgumentInvalid)?;
    Ok(())
}

fn check_sgl(sgl: &List<'_, SglEntry>) -> Result<(), RmError> {
    sgl.iter().try_for_each(|e| check_range(e.ipa, e.size))
}

/// Append console `chars` to `state.line`, printing every complete line (and every
/// [`CONSOLE_LINE_MAX`] characters) as `name: text`. Bytes other than printable ASCII and tab
/// show as `.`; carriage returns are dropped.
fn console_chars(out: &mut dyn Output, name: &str, state: &mut ConsoleState, chars: &[u8]) {
    for &b in chars {
        match b {
            b'\n' => console_line(out, name, state),
            b'\r' => {}
            b'\t' | 0x20..=0x7e => state.line.push(b),
            _ => state.line.push(b'.'),
        }
        if state.line.len() >= CONSOLE_LINE_MAX {
            console_line(out, name, state);
        }
    }
}

/// Print the pending console line, even if empty (a bare newline is an empty line).
fn console_line(out: &mut dyn Output, name: &str, state: &mut ConsoleState) {
    let text = core::str::from_utf8(&state.line).unwrap_or("");
    out.console(name, text);
    state.line.clear();
}

/// Print the pending console line if there is one.
fn console_flush(out: &mut dyn Output, name: &str, state: &mut ConsoleState) {
    if !state.line.is_empty() {
        console_line(out, name, state);
    }
}

impl<H: Hyp> Core<H> {
    fn name_of(&self, vmid: VmId) -> String {
        match self.vms.get(vmid) {
            Some(vm) => vm.name.clone(),
            None => alloc::format!("vm{:#x}", vmid.0),
        }
    }

    fn handle(&mut self, caller: VmId, msg: &Message<'_>, out: &mut dyn Output) -> Effects {
        if msg.kind != MessageType::Request {
            error!(
                out,
                "{}: dropped {:?} {} seq {} ({} bytes): the RM sends no requests",
                self.name_of(caller),
                msg.kind,
                IdName(msg.id),
                msg.seq,
                msg.payload.len()
            );
            return Effects::default();
        }
        let mut ctx = Ctx {
            caller,
            notes: Vec::new(),
        };
        let (error, payload) = match self.dispatch(&mut ctx, msg.id, msg.payload, out) {
            Ok(payload) => (RmError::Ok, payload),
            Err(e) => (e, Vec::new()),
        };
        debug!(
            out,
            "{}({:#x}) seq {} {} [{} bytes] -> {}",
            self.name_of(caller),
            caller.0,
            msg.seq,
            IdName(msg.id),
            msg.payload.len(),
            error.name()
        );
        let mut reply = OutMessage::reply(msg.seq, msg.id, error, &payload);
        if reply.fragments().is_none() {
            error!(
                out,
                "{}: reply to {} is {} bytes, too long",
                self.name_of(caller),
                IdName(msg.id),
                reply.body().len()
            );
            reply = OutMessage::reply(msg.seq, msg.id, RmError::MsgInvalid, &[]);
        }
        Effects {
            reply: Some(reply),
            notes: ctx.notes,
        }
    }

    fn dispatch(
        &mut self,
        ctx: &mut Ctx,
        id: u32,
        payload: &[u8],
        out: &mut dyn Output,
    ) -> Result<Vec<u8>, RmError> {
        match id {
            ids::VM_GET_VMID => self.get_vmid(ctx, payload),
            ids::VM_GET_STATE => self.get_state(ctx, payload),
            ids::VM_SET_STATUS => self.set_status(ctx, payload),
            ids::VM_GET_HYP_RESOURCES => self.get_hyp_resources(ctx, payload),
            ids::VM_CONSOLE_OPEN => self.console_open(ctx, payload, true, out),
            ids::VM_CONSOLE_CLOSE => self.console_open(ctx, payload, false, out),
            ids::VM_CONSOLE_WRITE => self.console_write(ctx, payload, out),
            ids::VM_CONSOLE_FLUSH => self.console_flush(ctx, payload, out),
            ids::VM_EXIT => self.vm_exit(ctx, payload, out),
            ids::VM_ALLOCATE => self.vm_allocate(ctx, payload),
            ids::VM_DEALLOCATE => self.vm_deallocate(ctx, payload),
            ids::VM_CONFIG_IMAGE => self.vm_config_image(ctx, payload),
            ids::VM_SET_DEMAND_PAGING => self.vm_set_demand_paging(ctx, payload),
            ids::VM_SET_ADDRESS_LAYOUT => self.vm_set_address_layout(ctx, payload),
            ids::VM_INIT => self.vm_init(ctx, payload),
            ids::VM_SET_BOOT_CONTEXT => self.vm_set_boot_context(ctx, payload),
            ids::VM_START => self.vm_start(ctx, payload),
            ids::VM_STOP => self.vm_stop(ctx, payload),
            ids::VM_RESET => self.vm_reset(ctx, payload),
            ids::MEM_LEND => self.mem_create(ctx, payload, TransType::Lend),
            ids::MEM_SHARE => self.mem_create(ctx, payload, TransType::Share),
            ids::MEM_DONATE => self.mem_create(ctx, payload, TransType::Donate),
            ids::MEM_APPEND => self.mem_append(ctx, payload),
            ids::MEM_ACCEPT => self.mem_accept(ctx, payload),
            ids::MEM_RELEASE => self.mem_release(ctx, payload, false),
            ids::MEM_RECLAIM => self.mem_release(ctx, payload, true),
            ids::MEM_NOTIFY => self.mem_notify(ctx, payload),
            ids::VM_IRQ_LEND => self.irq_lend(ctx, payload),
            ids::VM_IRQ_ACCEPT => self.irq_accept(ctx, payload),
            ids::VM_IRQ_RELEASE => self.irq_release(ctx, payload, false),
            ids::VM_IRQ_RECLAIM => self.irq_release(ctx, payload, true),
            ids::VM_IRQ_NOTIFY => self.irq_notify(ctx, payload),
            // Wire layout unconfirmed (the public RM's struct has a size_t count).
            ids::VM_IRQ_UNMAP => Err(RmError::Unimplemented),
            _ => Err(RmError::Unimplemented),
        }
    }

    /// Queue notification `id` with `payload` for `target`.
    fn notify<P: Encode>(&mut self, ctx: &mut Ctx, target: VmId, id: u32, payload: &P) {
        let Ok(bytes) = encode(payload) else { return };
        let seq = self.notify_seq;
        self.notify_seq = self.notify_seq.wrapping_add(1);
        ctx.notes
            .push((target, OutMessage::notification(seq, id, &bytes)));
    }

    /// Queue the notifications a [`Hyp`] operation asked for.
    fn queue_notices(&mut self, ctx: &mut Ctx, notices: Vec<crate::hyp::Notice>) {
        for n in notices {
            let seq = self.notify_seq;
            self.notify_seq = self.notify_seq.wrapping_add(1);
            ctx.notes
                .push((n.target, OutMessage::notification(seq, n.id, &n.payload)));
        }
    }

    /// VM_STATUS about `vmid` to its owner and peers.
    fn notify_status(&mut self, ctx: &mut Ctx, vmid: VmId) {
        let Some(vm) = self.vms.get(vmid) else { return };
        let note = VmStatusNotification {
            vmid,
            vm_status: vm.status,
            os_status: vm.os_status,
            app_status: vm.app_status,
        };
        for target in self.vms.status_listeners(vmid) {
            self.notify(ctx, target, ids::NOTIFY_VM_STATUS, &note);
        }
    }

    /// VM_EXITED about `vmid` to its owner (unless the RM).
    fn notify_exited(&mut self, ctx: &mut Ctx, vmid: VmId, exit_type: ExitType, reason: [u8; 4]) {
        let Some(owner) = self.vms.get(vmid).map(|v| v.owner) else {
            return;
        };
        if owner == VMID_RM || owner == vmid {
            return;
        }
        let note = VmExitedNotification {
            vmid,
            exit_type,
            reason: &reason,
        };
        self.notify(ctx, owner, ids::NOTIFY_VM_EXITED, &note);
    }

    /// The VM `vmid` if `ctx.caller` owns it: `VMID_INVALID` if unknown, `not_owner` if not.
    fn owned(&self, ctx: &Ctx, vmid: VmId, not_owner: RmError) -> Result<VmStatus, RmError> {
        let vm = self.vms.get(vmid).ok_or(RmError::VmidInvalid)?;
        if vm.owner != ctx.caller {
            return Err(not_owner);
        }
        Ok(vm.status)
    }

    // ----- Queries and the caller's own status -----

    fn get_vmid(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        parse::<Empty>(payload)?;
        encode(&VmGetVmidReply { vmid: ctx.caller })
    }

    /// VM_GET_STATE: VMID 0 is the caller; the VM itself, its owner and its peers may ask
    /// (`DENIED` otherwise). An unknown VMID is `VMID_INVALID` (the public RM answers
    /// `NORESOURCE`; Wurley uses the code its other VMID requests use).
    fn get_state(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: VmidRequest = parse(payload)?;
        let vmid = self_or(ctx.caller, req.vmid);
        let vm = self.vms.get(vmid).ok_or(RmError::VmidInvalid)?;
        if !vm.may_query(ctx.caller) {
            return Err(RmError::Denied);
        }
        encode(&vm.state())
    }

    /// VM_SET_STATUS: the caller's OS status (0: unchanged; undefined: `ARGUMENT_INVALID`) and
    /// app status; then VM_STATUS to its owner and peers. Any client may report (the public
    /// RM accepts it only from "secondary" VMs).
    fn set_status(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: VmSetStatusRequest = parse(payload)?;
        let vm = self.vms.get_mut(ctx.caller).ok_or(RmError::VmidInvalid)?;
        // Byte 0 (a VM state in old RMs) is ignored; OS status 0 means "no change".
        let os_status = match req.os_status {
            0 => vm.os_status,
            raw => OsStatus::from_raw(raw).ok_or(RmError::ArgumentInvalid)?,
        };
        vm.os_status = os_status;
        vm.app_status = req.app_status;
        let caller = ctx.caller;
        self.notify_status(ctx, caller);
        done()
    }

    /// VM_GET_HYP_RESOURCES: for the caller itself (VMID 0 too) or a VM it owns (`DENIED`
    /// otherwise): the resources recorded for the caller as holder. Of the bundle's VMs only
    /// the proxy vCPUs are recorded (for their owner, [`crate::vms::VmTable::grant_proxy_vcpu`]);
    /// their other caps are in their own device trees.
    fn get_hyp_resources(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: VmidRequest = parse(payload)?;
        let vmid = self_or(ctx.caller, req.vmid);
        let vm = self.vms.get(vmid).ok_or(RmError::VmidInvalid)?;
        if vmid != ctx.caller && vm.owner != ctx.caller {
            return Err(RmError::Denied);
        }
        let entries: Vec<HypResource> = vm.resources_for(ctx.caller).collect();
        encode(&HypResourcesReply {
            entries: List::from_slice(&entries),
        })
    }

    // ----- Console -----

    /// VM_CONSOLE_OPEN (`open`) and VM_CONSOLE_CLOSE: target 0 (or the caller's own VMID) is
    /// the caller's console; another VM's console only for its owner (`DENIED`); an unknown
    /// target is `ARGUMENT_INVALID` (the public RM's answers).
    fn console_open(
        &mut self,
        ctx: &mut Ctx,
        payload: &[u8],
        open: bool,
        out: &mut dyn Output,
    ) -> Result<Vec<u8>, RmError> {
        let req: VmidRequest = parse(payload)?;
        let target = self_or(ctx.caller, req.vmid);
        let vm = self.vms.get_mut(target).ok_or(RmError::ArgumentInvalid)?;
        if target == ctx.caller {
            if !open {
                console_flush(out, &vm.name, &mut vm.console);
            }
            vm.console.self_open = open;
        } else if vm.owner == ctx.caller {
            vm.console.owner_open = open;
        } else {
            return Err(RmError::Denied);
        }
        done()
    }

    /// VM_CONSOLE_WRITE. The caller's own console: the characters are printed on the RM's
    /// console, a line at a time prefixed with the VM's name, and sent to its owner as
    /// VM_CONSOLE_CHARS if the owner opened the console. The owner writing to a VM's console:
    /// VM_CONSOLE_CHARS (from 0) to the VM if it opened its console. Writing to a console
    /// the writer has not opened is `DENIED`, as in the public RM.
    fn console_write(
        &mut self,
        ctx: &mut Ctx,
        payload: &[u8],
        out: &mut dyn Output,
    ) -> Result<Vec<u8>, RmError> {
        let req: ConsoleWriteRequest<'_> = parse(payload)?;
        let target = self_or(ctx.caller, req.vmid);
        let vm = self.vms.get_mut(target).ok_or(RmError::ArgumentInvalid)?;
        if target == ctx.caller {
            if !vm.console.self_open {
                return Err(RmError::Denied);
            }
            console_chars(out, &vm.name, &mut vm.console, req.chars);
            let (owner, owner_open) = (vm.owner, vm.console.owner_open);
            if owner_open && owner != VMID_RM {
                let note = ConsoleCharsNotification {
                    from: ctx.caller,
                    chars: req.chars,
                };
                self.notify(ctx, owner, ids::NOTIFY_VM_CONSOLE_CHARS, &note);
            }
        } else if vm.owner == ctx.caller {
            if !vm.console.owner_open {
                return Err(RmError::Denied);
            }
            if vm.console.self_open {
                let note = ConsoleCharsNotification {
                    from: VmId(0),
                    chars: req.chars,
                };
                self.notify(ctx, target, ids::NOTIFY_VM_CONSOLE_CHARS, &note);
            }
        } else {
            return Err(RmError::Denied);
        }
        done()
    }

    /// VM_CONSOLE_FLUSH: prints the caller's pending partial line.
    fn console_flush(
        &mut self,
        ctx: &mut Ctx,
        payload: &[u8],
        out: &mut dyn Output,
    ) -> Result<Vec<u8>, RmError> {
        let req: VmidRequest = parse(payload)?;
        let target = self_or(ctx.caller, req.vmid);
        let vm = self.vms.get_mut(target).ok_or(RmError::ArgumentInvalid)?;
        if target == ctx.caller {
            if !vm.console.self_open {
                return Err(RmError::Denied);
            }
            console_flush(out, &vm.name, &mut vm.console);
        } else if vm.owner == ctx.caller {
            if !vm.console.owner_open {
                return Err(RmError::Denied);
            }
        } else {
            return Err(RmError::Denied);
        }
        done()
    }

    // ----- VM lifecycle -----

    /// VM_EXIT: the caller becomes EXITED; its owner gets VM_STATUS and VM_EXITED (type
    /// VM_EXIT, reason `flags | code << 16`). Stopping its vCPUs needs [`Hyp::vm_kill`]; while
    /// that is unimplemented the exit is still recorded (the VM stops itself after VM_EXIT).
    fn vm_exit(
        &mut self,
        ctx: &mut Ctx,
        payload: &[u8],
        out: &mut dyn Output,
    ) -> Result<Vec<u8>, RmError> {
        let req: VmExitRequest = parse(payload)?;
        if req.exit_code == ExitCode::UnknownError {
            return Err(RmError::MsgInvalid);
        }
        let caller = ctx.caller;
        let vm = self.vms.get(caller).ok_or(RmError::VmidInvalid)?;
        if !vm.status.can_become(VmStatus::Exited) {
            return Err(RmError::VmState);
        }
        match self.hyp.vm_kill(caller) {
            Ok(()) => {}
            Err(RmError::Unimplemented) => {
                debug!(out, "{}: VM_EXIT without vcpu_kill", self.name_of(caller));
            }
            Err(e) => return Err(e),
        }
        self.vms.set_status(caller, VmStatus::Exited)?;
        self.notify_status(ctx, caller);
        let reason = exit_reason_word(req.flags, req.exit_code);
        self.notify_exited(ctx, caller, ExitType::VmExit, reason);
        done()
    }

    /// VM_ALLOCATE: only the primary VM (VMID 3) may create VMs (`DENIED`); VMID 0 picks a
    /// dynamic VMID (`NORESOURCE` when none is left) and the reply carries it.
    fn vm_allocate(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: VmidRequest = parse(payload)?;
        if !VmTable::is_primary(ctx.caller) {
            return Err(RmError::Denied);
        }
        let vmid = self.vms.allocate(ctx.caller, req.vmid)?;
        if req.vmid.0 == 0 {
            encode(&VmAllocateReply { vmid })
        } else {
            done()
        }
    }

    /// VM_DEALLOCATE: by the owner, of a VM in LOAD (never initialised) or RESET.
    fn vm_deallocate(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: VmidRequest = parse(payload)?;
        let status = self.owned(ctx, req.vmid, RmError::Denied)?;
        if !matches!(status, VmStatus::Load | VmStatus::Reset) {
            return Err(RmError::VmState);
        }
        self.vms.remove(req.vmid);
        self.hyp.vm_deallocate(req.vmid);
        done()
    }

    /// VM_CONFIG_IMAGE: by the owner, in LOAD; the auth mechanism must be known and the two
    /// ranges must not wrap; then [`Hyp::vm_config_image`].
    fn vm_config_image(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: VmConfigImageRequest = parse(payload)?;
        let status = self.owned(ctx, req.vmid, RmError::Denied)?;
        if status != VmStatus::Load {
            return Err(RmError::VmState);
        }
        AuthMechanism::from_raw(req.auth_mech).ok_or(RmError::ArgumentInvalid)?;
        let image_end = req.image_offset.checked_add(req.image_size);
        let dtb_end = req.dtb_offset.checked_add(req.dtb_size);
        if image_end.is_none() || dtb_end.is_none() || req.dtb_size == 0 {
            return Err(RmError::ArgumentInvalid);
        }
        self.hyp.vm_config_image(ctx.caller, req.vmid, &req)?;
        done()
    }

    /// VM_SET_DEMAND_PAGING: by the owner, before VM_INIT (LOAD); page-aligned ranges.
    fn vm_set_demand_paging(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: VmSetDemandPagingRequest<'_> = parse(payload)?;
        let status = self.owned(ctx, req.vmid, RmError::Denied)?;
        if status != VmStatus::Load {
            return Err(RmError::VmState);
        }
        check_sgl(&req.ranges)?;
        let ranges: Vec<SglEntry> = req.ranges.iter().collect();
        self.hyp
            .vm_set_demand_paging(ctx.caller, req.vmid, &ranges)?;
        done()
    }

    /// VM_SET_ADDRESS_LAYOUT: by the owner, before VM_INIT (LOAD); a known range ID and a
    /// page-aligned range.
    fn vm_set_address_layout(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: VmSetAddressLayoutRequest = parse(payload)?;
        let status = self.owned(ctx, req.vmid, RmError::Denied)?;
        if status != VmStatus::Load {
            return Err(RmError::VmState);
        }
        let range = AddressRangeId::from_raw(req.range_id).ok_or(RmError::ArgumentInvalid)?;
        check_range(req.base, req.size)?;
        self.hyp
            .vm_set_address_layout(req.vmid, range, req.base, req.size)?;
        done()
    }

    /// VM_INIT: by the owner, from LOAD, AUTH or RESET; [`Hyp::vm_create`] then makes the VM
    /// READY (its resources recorded), or INIT_FAILED. Owner and peers get VM_STATUS.
    fn vm_init(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: VmidRequest = parse(payload)?;
        let status = self.owned(ctx, req.vmid, RmError::Denied)?;
        if !status.can_become(VmStatus::Init) {
            return Err(RmError::VmState);
        }
        let owner = ctx.caller;
        self.hyp.vm_init_check(req.vmid, owner)?;
        match self.hyp.vm_create(req.vmid, owner) {
            Ok(resources) => {
                self.vms.set_status(req.vmid, VmStatus::Init)?;
                self.vms.set_status(req.vmid, VmStatus::Ready)?;
                if let Some(vm) = self.vms.get_mut(req.vmid) {
                    vm.resources = resources;
                }
                self.notify_status(ctx, req.vmid);
                done()
            }
            Err(RmError::Unimplemented) => Err(RmError::Unimplemented),
            Err(e) => {
                self.vms.set_status(req.vmid, VmStatus::InitFailed)?;
                self.notify_status(ctx, req.vmid);
                Err(e)
            }
        }
    }

    /// VM_SET_BOOT_CONTEXT: by the owner, between VM_INIT and VM_START (READY); X0..X30, PC,
    /// SP_EL0/SP_EL1 (reg_index 0/1).
    fn vm_set_boot_context(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: VmSetBootContextRequest = parse(payload)?;
        let status = self.owned(ctx, req.vmid, RmError::Denied)?;
        if status != VmStatus::Ready {
            return Err(RmError::VmState);
        }
        let reg_set = BootRegSet::from_raw(req.reg_set).ok_or(RmError::ArgumentInvalid)?;
        let max_index = match reg_set {
            BootRegSet::X => 30,
            BootRegSet::Pc => 0,
            BootRegSet::Sp => 1,
        };
        if req.reg_index > max_index {
            return Err(RmError::ArgumentInvalid);
        }
        self.hyp
            .vm_set_boot_context(req.vmid, reg_set, req.reg_index, req.value)?;
        done()
    }

    /// VM_START: by the owner (`DENIED`), of a READY VM (`VM_STATE`); [`Hyp::vm_power_on`]
    /// then makes it RUNNING, or INIT_FAILED.
    fn vm_start(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: VmidRequest = parse(payload)?;
        let status = self.owned(ctx, req.vmid, RmError::Denied)?;
        if status != VmStatus::Ready {
            return Err(RmError::VmState);
        }
        match self.hyp.vm_power_on(req.vmid) {
            Ok(()) => {
                self.vms.set_status(req.vmid, VmStatus::Running)?;
                self.notify_status(ctx, req.vmid);
                done()
            }
            Err(RmError::Unimplemented) => Err(RmError::Unimplemented),
            Err(e) => {
                self.vms.set_status(req.vmid, VmStatus::InitFailed)?;
                self.notify_status(ctx, req.vmid);
                Err(e)
            }
        }
    }

    /// VM_STOP: by the owner (else `VMID_INVALID`, as in the public RM), of a RUNNING or
    /// PAUSED VM. FORCE: [`Hyp::vm_kill`], the VM becomes EXITED, the owner gets VM_STATUS
    /// and VM_EXITED (VM_STOP_FORCED). Otherwise the VM gets VM_SHUTDOWN with the reason.
    fn vm_stop(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: VmStopRequest = parse(payload)?;
        let status = self.owned(ctx, req.vmid, RmError::VmidInvalid)?;
        if !status.can_become(VmStatus::Exited) {
            return Err(RmError::VmState);
        }
        if req.is_force() {
            self.hyp.vm_kill(req.vmid)?;
            self.vms.set_status(req.vmid, VmStatus::Exited)?;
            self.notify_status(ctx, req.vmid);
            let reason = exit_reason_word(0, ExitCode::Normal);
            self.notify_exited(ctx, req.vmid, ExitType::VmStopForced, reason);
        } else {
            let note = VmShutdownNotification {
                stop_reason: req.stop_reason,
            };
            self.notify(ctx, req.vmid, ids::NOTIFY_VM_SHUTDOWN, &note);
        }
        done()
    }

    /// VM_RESET: by the owner (else `VMID_INVALID`), of an EXITED, READY or INIT_FAILED VM;
    /// [`Hyp::vm_destroy`] then takes it through RESETTING to RESET (resources and console
    /// forgotten), announced by VM_STATUS.
    fn vm_reset(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: VmidRequest = parse(payload)?;
        let status = self.owned(ctx, req.vmid, RmError::VmidInvalid)?;
        if !status.can_become(VmStatus::Resetting) {
            return Err(RmError::VmState);
        }
        self.hyp.vm_destroy(req.vmid)?;
        self.vms.set_status(req.vmid, VmStatus::Resetting)?;
        self.vms.set_status(req.vmid, VmStatus::Reset)?;
        if let Some(vm) = self.vms.get_mut(req.vmid) {
            vm.resources.clear();
            vm.console = ConsoleState::default();
            vm.os_status = OsStatus::None;
            vm.app_status = 0;
        }
        self.notify_status(ctx, req.vmid);
        done()
    }

    // ----- Memory parcels -----

    /// MEM_LEND / MEM_SHARE / MEM_DONATE: a known memory type; a non-empty ACL of known VMs
    /// (`VMID_INVALID`), each once, with rights in RWX; SGL entries page aligned (the SGL may
    /// be empty only with the APPEND flag); attributes known and for VMs of the ACL.
    fn mem_create(
        &mut self,
        ctx: &mut Ctx,
        payload: &[u8],
        trans: TransType,
    ) -> Result<Vec<u8>, RmError> {
        let req: MemCreateRequest<'_> = parse(payload)?;
        MemType::from_raw(req.mem_type).ok_or(RmError::ArgumentInvalid)?;
        if req.acl.is_empty() {
            return Err(RmError::ArgumentInvalid);
        }
        for (i, entry) in req.acl.iter().enumerate() {
            if !self.vms.contains(entry.vmid) {
                return Err(RmError::VmidInvalid);
            }
            if entry.rights == 0 || entry.rights & !MEM_RIGHTS_RWX != 0 {
                return Err(RmError::ArgumentInvalid);
            }
            if req.acl.iter().take(i).any(|e| e.vmid == entry.vmid) {
                return Err(RmError::ArgumentInvalid);
            }
        }
        if req.sgl.is_empty() && req.flags & MEM_CREATE_FLAG_APPEND == 0 {
            return Err(RmError::ArgumentInvalid);
        }
        check_sgl(&req.sgl)?;
        for attr in req.attrs.iter() {
            MemAttr::from_raw(attr.attr).ok_or(RmError::ArgumentInvalid)?;
            if !req.acl.iter().any(|e| e.vmid == attr.vmid) {
                return Err(RmError::ArgumentInvalid);
            }
        }
        let handle = self.hyp.mem_create(ctx.caller, trans, &req)?;
        encode(&MemHandleReply { handle })
    }

    fn mem_append(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: MemAppendRequest<'_> = parse(payload)?;
        check_sgl(&req.sgl)?;
        self.hyp.mem_append(ctx.caller, &req)?;
        done()
    }

    fn mem_accept(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: MemAcceptRequest<'_> = parse(payload)?;
        MemType::from_raw(req.mem_type).ok_or(RmError::ArgumentInvalid)?;
        TransType::from_raw(req.trans_type).ok_or(RmError::ArgumentInvalid)?;
        check_sgl(&req.sgl)?;
        self.hyp.mem_accept(ctx.caller, &req)
    }

    fn mem_release(
        &mut self,
        ctx: &mut Ctx,
        payload: &[u8],
        reclaim: bool,
    ) -> Result<Vec<u8>, RmError> {
        let req: MemReleaseRequest = parse(payload)?;
        self.hyp.mem_release(ctx.caller, &req, reclaim)?;
        done()
    }

    /// MEM_NOTIFY: exactly one known flag; the VMs named must exist.
    fn mem_notify(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: MemNotifyRequest<'_> = parse(payload)?;
        if !matches!(
            req.flags,
            MEM_NOTIFY_FLAG_SHARED
                | MEM_NOTIFY_FLAG_RELEASED
                | MEM_NOTIFY_FLAG_ACCEPTED
                | MEM_NOTIFY_FLAG_RECALL
        ) {
            return Err(RmError::ArgumentInvalid);
        }
        if req.vmids.iter().any(|v| !self.vms.contains(v.vmid)) {
            return Err(RmError::VmidInvalid);
        }
        let notices = self.hyp.mem_notify(ctx.caller, &req)?;
        self.queue_notices(ctx, notices);
        done()
    }

    // ----- IRQ lending -----

    /// VM_IRQ_LEND: the borrower must exist (`VMID_INVALID`) and be another VM.
    fn irq_lend(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: IrqLendRequest = parse(payload)?;
        if !self.vms.contains(req.borrower) {
            return Err(RmError::VmidInvalid);
        }
        if req.borrower == ctx.caller {
            return Err(RmError::ArgumentInvalid);
        }
        let handle = self.hyp.irq_lend(ctx.caller, &req)?;
        encode(&IrqHandle { handle })
    }

    fn irq_accept(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: IrqAcceptRequest = parse(payload)?;
        let virq = self.hyp.irq_accept(ctx.caller, &req)?;
        encode(&IrqAcceptReply { virq })
    }

    fn irq_release(
        &mut self,
        ctx: &mut Ctx,
        payload: &[u8],
        reclaim: bool,
    ) -> Result<Vec<u8>, RmError> {
        let req: IrqHandle = parse(payload)?;
        self.hyp.irq_release(ctx.caller, req.handle, reclaim)?;
        done()
    }

    /// VM_IRQ_NOTIFY: exactly one known flag; the borrowers named must exist.
    fn irq_notify(&mut self, ctx: &mut Ctx, payload: &[u8]) -> Result<Vec<u8>, RmError> {
        let req: IrqNotifyRequest<'_> = parse(payload)?;
        if !matches!(
            req.flags,
            IRQ_NOTIFY_FLAG_LENT | IRQ_NOTIFY_FLAG_RELEASED | IRQ_NOTIFY_FLAG_ACCEPTED
        ) {
            return Err(RmError::ArgumentInvalid);
        }
        if req.vmids.iter().any(|v| !self.vms.contains(v.vmid)) {
            return Err(RmError::VmidInvalid);
        }
        let notices = self.hyp.irq_notify(ctx.caller, &req)?;
        self.queue_notices(ctx, notices);
        done()
    }
}

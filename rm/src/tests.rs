//! Host tests: the server driven through in-memory transports (framing, back-pressure,
//! fairness), every handler's success and error paths, and a deterministic fuzz.

#![allow(clippy::unwrap_used)]

use std::boxed::Box;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::format;
use std::rc::Rc;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use wurley_abi::VmId;
use wurley_abi::rm::console::{ConsoleCharsNotification, ConsoleWriteRequest};
use wurley_abi::rm::irq::{
    IRQ_NOTIFY_FLAG_LENT, IrqAcceptRequest, IrqHandle, IrqLendRequest, IrqNotifyRequest,
};
use wurley_abi::rm::memparcel::{
    AclEntry, AttrEntry, MEM_CREATE_FLAG_APPEND, MEM_RIGHTS_RW, MemAcceptRequest, MemAppendRequest,
    MemCreateRequest, MemHandleReply, MemNotifyRequest, MemReleaseRequest, SglEntry, TransType,
    VmidEntry,
};
use wurley_abi::rm::resource::{HypResource, HypResourcesReply, ResourceType};
use wurley_abi::rm::status::{
    ExitCode, ExitType, OsStatus, VmExitedNotification, VmShutdownNotification, VmStateReply,
    VmStatus, VmStatusNotification,
};
use wurley_abi::rm::vm::{
    AddressRangeId, BootRegSet, VmAllocateReply, VmConfigImageRequest, VmExitRequest,
    VmGetVmidReply, VmSetAddressLayoutRequest, VmSetBootContextRequest, VmSetDemandPagingRequest,
    VmSetStatusRequest, VmStopRequest, VmidRequest,
};
use wurley_abi::rm::{
    Decode, Encode, HEADER_SIZE, Header, List, MAX_MESSAGE_SIZE, MAX_PACKET_PAYLOAD, MessageType,
    PACKET_SIZE, Reassembler, RmError, Splitter, VMID_HLOS, VMID_RM, ids,
};

use crate::conn::{OutMessage, QueueError, RxError, Transport, TxError};
use crate::hyp::{Hyp, NoHyp};
use crate::output::{Level, Output};
use crate::server::{CONSOLE_LINE_MAX, ClientId, OUT_QUEUE_LIMIT, RX_DEFER_QUEUED, Server};
use crate::vms::{Resource, VmRecord, VmTable};

// ----- Test plumbing -----

#[derive(Default)]
struct PipeState {
    /// Client → RM.
    to_rm: VecDeque<Vec<u8>>,
    /// RM → client, with the PUSH flag.
    to_client: VecDeque<(Vec<u8>, bool)>,
    /// Most packets `to_client` holds (the client's queue depth).
    capacity: usize,
    /// The next send fails with this code.
    fail_send: Option<i64>,
    /// The next receive fails with this code.
    fail_receive: Option<i64>,
    sends: usize,
    receives: usize,
}

/// An in-memory message-queue pair, shared by the server (as its transport) and the test.
#[derive(Clone)]
struct Pipe(Rc<RefCell<PipeState>>);

impl Pipe {
    fn new(capacity: usize) -> Pipe {
        Pipe(Rc::new(RefCell::new(PipeState {
            capacity,
            ..PipeState::default()
        })))
    }
}

impl Transport for Pipe {
    fn send(&mut self, packet: &[u8], push: bool) -> Result<(), TxError> {
        let mut s = self.0.borrow_mut();
        assert!(
            (HEADER_SIZE..=PACKET_SIZE).contains(&packet.len()),
            "{}",
            packet.len()
        );
        if let Some(code) = s.fail_send.take() {
            return Err(TxError::Other(code));
        }
        if s.to_client.len() >= s.capacity {
            return Err(TxError::Full);
        }
        s.sends += 1;
        s.to_client.push_back((packet.to_vec(), push));
        Ok(())
    }

    fn receive(&mut self, buf: &mut [u8; PACKET_SIZE]) -> Result<Option<usize>, RxError> {
        let mut s = self.0.borrow_mut();
        if let Some(code) = s.fail_receive.take() {
            return Err(RxError(code));
        }
        let Some(p) = s.to_rm.pop_front() else {
            return Ok(None);
        };
        s.receives += 1;
        let n = p.len().min(PACKET_SIZE);
        buf[..n].copy_from_slice(&p[..n]);
        Ok(Some(n))
    }

    fn more_pending(&self) -> bool {
        !self.0.borrow().to_rm.is_empty()
    }
}

/// Collects the RM's output.
#[derive(Default)]
struct Capture {
    debug: bool,
    log: Vec<(Level, String)>,
    console: Vec<(String, String)>,
}

impl Capture {
    fn errors(&self) -> Vec<&str> {
        self.log
            .iter()
            .filter(|(l, _)| *l == Level::Error)
            .map(|(_, s)| s.as_str())
            .collect()
    }
}

impl Output for Capture {
    fn debug_enabled(&self) -> bool {
        self.debug
    }

    fn log(&mut self, level: Level, args: fmt::Arguments<'_>) {
        self.log.push((level, args.to_string()));
    }

    fn console(&mut self, vm: &str, text: &str) {
        self.console.push((vm.to_string(), text.to_string()));
    }
}

/// A complete message the client received.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    kind: MessageType,
    seq: u16,
    id: u32,
    body: Vec<u8>,
}

impl Got {
    fn code(&self) -> u32 {
        u32::from_le_bytes(self.body[..4].try_into().unwrap())
    }

    fn payload(&self) -> &[u8] {
        &self.body[4..]
    }
}

/// The client side of a [`Pipe`].
struct Peer {
    pipe: Pipe,
    rx: Reassembler<'static>,
    seq: u16,
    /// Notifications received while waiting for replies.
    notes: Vec<Got>,
    /// Packets seen with the PUSH flag / without.
    pushed: usize,
    unpushed: usize,
}

impl Peer {
    fn new(pipe: Pipe) -> Peer {
        Peer {
            pipe,
            rx: Reassembler::new(Box::leak(vec![0u8; MAX_MESSAGE_SIZE].into_boxed_slice())),
            seq: 0,
            notes: Vec::new(),
            pushed: 0,
            unpushed: 0,
        }
    }

    fn send_raw(&self, packet: &[u8]) {
        self.pipe.0.borrow_mut().to_rm.push_back(packet.to_vec());
    }

    /// Queue a request; returns its sequence number.
    fn request(&mut self, id: u32, payload: &[u8]) -> u16 {
        self.seq = self.seq.wrapping_add(1);
        for p in Splitter::request(self.seq, id, payload).unwrap() {
            self.send_raw(p.as_bytes());
        }
        self.seq
    }

    /// Every complete message in the client's queue (notifications included).
    fn take(&mut self) -> Vec<Got> {
        let mut out = Vec::new();
        loop {
            let Some((p, push)) = self.pipe.0.borrow_mut().to_client.pop_front() else {
                break;
            };
            if push {
                self.pushed += 1;
            } else {
                self.unpushed += 1;
            }
            let got = self.rx.push(&p);
            assert_eq!(got.aborted, None, "RM interleaved messages");
            if let Some(m) = got.message() {
                assert!(push, "the last packet of a message carries PUSH");
                out.push(Got {
                    kind: m.kind,
                    seq: m.seq,
                    id: m.id,
                    body: m.payload.to_vec(),
                });
            } else {
                assert!(!push, "only the last packet carries PUSH");
                assert!(
                    matches!(got.event, wurley_abi::rm::Event::NeedMore { .. }),
                    "{:?}",
                    got.event
                );
            }
        }
        out
    }

    /// Replies only; notifications are kept in `notes`.
    fn replies(&mut self) -> Vec<Got> {
        let mut replies = Vec::new();
        for g in self.take() {
            if g.kind == MessageType::Reply {
                replies.push(g);
            } else {
                assert_eq!(g.kind, MessageType::Notification);
                self.notes.push(g);
            }
        }
        replies
    }
}

type TestServer<H> = Server<'static, H, Pipe>;

/// A server with `n` connected clients named `c0, c1, ...`, VMIDs `0x80 + i`, running, owned
/// by the RM; client queues of `capacity` packets.
fn setup<H: Hyp>(hyp: H, n: usize, capacity: usize) -> (TestServer<H>, Vec<Peer>) {
    let mut server = Server::new(hyp);
    let mut peers = Vec::new();
    for i in 0..n {
        let vmid = VmId(0x80 + i as u16);
        let name = format!("c{i}");
        server
            .vms_mut()
            .insert(VmRecord::new(vmid, &name, VMID_RM, VmStatus::Running))
            .unwrap();
        let pipe = Pipe::new(capacity);
        let buf = Box::leak(vec![0u8; MAX_MESSAGE_SIZE].into_boxed_slice());
        let id = server.connect(vmid, pipe.clone(), buf).unwrap();
        assert_eq!(id, i);
        peers.push(Peer::new(pipe));
    }
    (server, peers)
}

/// Tell the server every client has events and let it run.
fn pump<H: Hyp>(server: &mut TestServer<H>, out: &mut Capture) {
    for id in 0..server.clients() {
        server.rx_ready(id);
        server.tx_ready(id);
    }
    server.run(out);
    assert!(!server.has_work());
}

/// One request from client `c`, and its reply as `(error code, payload)`.
fn call<H: Hyp>(
    server: &mut TestServer<H>,
    peers: &mut [Peer],
    c: ClientId,
    id: u32,
    payload: &[u8],
) -> (u32, Vec<u8>) {
    let mut out = Capture::default();
    call_out(server, peers, c, id, payload, &mut out)
}

fn call_out<H: Hyp>(
    server: &mut TestServer<H>,
    peers: &mut [Peer],
    c: ClientId,
    id: u32,
    payload: &[u8],
    out: &mut Capture,
) -> (u32, Vec<u8>) {
    let seq = peers[c].request(id, payload);
    pump(server, out);
    let replies = peers[c].replies();
    assert_eq!(replies.len(), 1, "{replies:?}");
    let r = &replies[0];
    assert_eq!((r.seq, r.id), (seq, id));
    (r.code(), r.payload().to_vec())
}

fn enc<T: Encode>(v: &T) -> Vec<u8> {
    let mut b = vec![0u8; v.encoded_len()];
    let n = v.encode(&mut b).unwrap();
    b.truncate(n);
    b
}

fn vmid_req(vmid: u16) -> Vec<u8> {
    enc(&VmidRequest { vmid: VmId(vmid) })
}

const OK: u32 = 0;
const fn code(e: RmError) -> u32 {
    e.code()
}

fn state_of<H: Hyp>(server: &TestServer<H>, vmid: u16) -> Option<VmStatus> {
    server.vms().get(VmId(vmid)).map(|v| v.status)
}

fn resource(kind: ResourceType, label: u32) -> HypResource {
    HypResource {
        resource_type: kind,
        partner_vmid: VMID_RM,
        handle: label,
        label,
        cap_id: 0x1000 + u64::from(label),
        virq_handle: 0,
        virq: 64 + label,
        base: 0,
        size: 0,
    }
}

/// Deterministic xorshift64.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }
}

/// A hypervisor whose operations succeed (or fail as configured), recording the calls.
#[derive(Default)]
struct FakeHyp {
    calls: Vec<String>,
    resources: Vec<Resource>,
    fail_create: Option<RmError>,
    fail_power_on: Option<RmError>,
    next_handle: u32,
}

impl FakeHyp {
    fn result(&mut self, call: String, fail: Option<RmError>) -> Result<(), RmError> {
        self.calls.push(call);
        fail.map_or(Ok(()), Err)
    }
}

impl Hyp for FakeHyp {
    fn vm_config_image(
        &mut self,
        _: VmId,
        vmid: VmId,
        _: &VmConfigImageRequest,
    ) -> Result<(), RmError> {
        self.result(format!("config_image {:#x}", vmid.0), None)
    }

    fn vm_set_demand_paging(&mut self, _: VmId, vmid: VmId, r: &[SglEntry]) -> Result<(), RmError> {
        self.result(format!("demand_paging {:#x} {}", vmid.0, r.len()), None)
    }

    fn vm_set_address_layout(
        &mut self,
        vmid: VmId,
        range: AddressRangeId,
        base: u64,
        size: u64,
    ) -> Result<(), RmError> {
        self.result(
            format!("address_layout {:#x} {range:?} {base:#x} {size:#x}", vmid.0),
            None,
        )
    }

    fn vm_create(&mut self, vmid: VmId, _: VmId) -> Result<Vec<Resource>, RmError> {
        let fail = self.fail_create;
        self.result(format!("create {:#x}", vmid.0), fail)?;
        Ok(self.resources.clone())
    }

    fn vm_set_boot_context(
        &mut self,
        vmid: VmId,
        reg_set: BootRegSet,
        index: u8,
        value: u64,
    ) -> Result<(), RmError> {
        self.result(
            format!("boot_context {:#x} {reg_set:?}{index} {value:#x}", vmid.0),
            None,
        )
    }

    fn vm_power_on(&mut self, vmid: VmId) -> Result<(), RmError> {
        let fail = self.fail_power_on;
        self.result(format!("power_on {:#x}", vmid.0), fail)
    }

    fn vm_kill(&mut self, vmid: VmId) -> Result<(), RmError> {
        self.result(format!("kill {:#x}", vmid.0), None)
    }

    fn vm_destroy(&mut self, vmid: VmId) -> Result<(), RmError> {
        self.result(format!("destroy {:#x}", vmid.0), None)
    }

    fn mem_create(
        &mut self,
        owner: VmId,
        trans: TransType,
        req: &MemCreateRequest<'_>,
    ) -> Result<u32, RmError> {
        self.result(
            format!("mem_create {:#x} {trans:?} {}", owner.0, req.sgl.len()),
            None,
        )?;
        self.next_handle += 1;
        Ok(self.next_handle)
    }

    fn mem_append(&mut self, _: VmId, _: &MemAppendRequest<'_>) -> Result<(), RmError> {
        self.result("mem_append".into(), None)
    }

    fn mem_accept(&mut self, _: VmId, _: &MemAcceptRequest<'_>) -> Result<Vec<u8>, RmError> {
        self.result("mem_accept".into(), None)?;
        Ok(vec![0; 4])
    }

    fn mem_release(
        &mut self,
        _: VmId,
        _: &MemReleaseRequest,
        reclaim: bool,
    ) -> Result<(), RmError> {
        self.result(format!("mem_release {reclaim}"), None)
    }

    fn mem_notify(
        &mut self,
        _: VmId,
        _: &MemNotifyRequest<'_>,
    ) -> Result<Vec<crate::hyp::Notice>, RmError> {
        self.result("mem_notify".into(), None)?;
        Ok(Vec::new())
    }

    fn irq_lend(&mut self, _: VmId, _: &IrqLendRequest) -> Result<u32, RmError> {
        self.result("irq_lend".into(), None)?;
        Ok(7)
    }

    fn irq_accept(&mut self, _: VmId, req: &IrqAcceptRequest) -> Result<u32, RmError> {
        self.result("irq_accept".into(), None)?;
        Ok(req.virq)
    }

    fn irq_release(&mut self, _: VmId, _: u32, reclaim: bool) -> Result<(), RmError> {
        self.result(format!("irq_release {reclaim}"), None)
    }

    fn irq_notify(
        &mut self,
        _: VmId,
        _: &IrqNotifyRequest<'_>,
    ) -> Result<Vec<crate::hyp::Notice>, RmError> {
        self.result("irq_notify".into(), None)?;
        Ok(Vec::new())
    }
}

// ----- Connection and framing -----

#[test]
fn out_message_packets() {
    let m = OutMessage::reply(5, 0x5600_0020, RmError::Ok, &[0xAB; 228]);
    assert_eq!((m.fragments(), m.packet_count()), (Some(0), 1));
    let mut buf = [0u8; PACKET_SIZE];
    assert_eq!(m.write_packet(0, &mut buf), Some(PACKET_SIZE));
    assert_eq!(&buf[8..12], &[0, 0, 0, 0]);
    assert_eq!(m.write_packet(1, &mut buf), None);

    let m = OutMessage::reply(5, 0x5600_0020, RmError::Busy, &[0xAB; 229]);
    assert_eq!(m.packet_count(), 2);
    assert_eq!(m.write_packet(1, &mut buf), Some(HEADER_SIZE + 1));
    assert_eq!(
        Header::decode(&buf).unwrap(),
        Header::new(MessageType::Continuation, 1, 5, 0x5600_0020)
    );

    let m = OutMessage::notification(1, 2, &[]);
    assert_eq!(m.write_packet(0, &mut buf), Some(HEADER_SIZE));
    let m = OutMessage::request(1, 2, &vec![1; MAX_MESSAGE_SIZE]);
    assert_eq!(m.packet_count(), 63);
    let m = OutMessage::notification(1, 2, &vec![1; MAX_MESSAGE_SIZE + 1]);
    assert_eq!((m.fragments(), m.packet_count()), (None, 0));

    // Every packet of every size reassembles to the body.
    for len in [0, 1, 231, 232, 233, 464, 465, 5000, MAX_MESSAGE_SIZE] {
        let body: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let m = OutMessage::notification(9, 0x5610_0008, &body);
        let mut rbuf = vec![0u8; MAX_MESSAGE_SIZE];
        let mut r = Reassembler::new(&mut rbuf);
        let mut done = None;
        for i in 0..m.packet_count() {
            let n = m.write_packet(i, &mut buf).unwrap();
            if let Some(msg) = r.push(&buf[..n]).message() {
                done = Some(msg.payload.to_vec());
            }
        }
        assert_eq!(done, Some(body), "len {len}");
    }
}

#[test]
fn conn_refuses_oversized_and_excess_messages() {
    let pipe = Pipe::new(8);
    let mut buf = vec![0u8; MAX_MESSAGE_SIZE];
    let mut conn = crate::conn::Conn::new(pipe, &mut buf);
    assert_eq!(
        conn.queue(
            OutMessage::notification(0, 1, &vec![0; MAX_MESSAGE_SIZE + 1]),
            4
        ),
        Err(QueueError::TooLong {
            len: MAX_MESSAGE_SIZE + 1
        })
    );
    for _ in 0..4 {
        conn.queue(OutMessage::notification(0, 1, &[]), 4).unwrap();
    }
    assert_eq!(
        conn.queue(OutMessage::notification(0, 1, &[]), 4),
        Err(QueueError::QueueFull)
    );
    assert_eq!(conn.stats().refused, 2);
    let report = conn.flush();
    assert_eq!(
        (report.packets, report.messages, report.blocked),
        (4, 4, false)
    );
    assert_eq!(conn.queued(), 0);
}

#[test]
fn long_reply_is_fragmented_with_push_on_the_last_packet() {
    let (mut server, mut peers) = setup(NoHyp, 1, 8);
    // Six entries: 4 + 4 + 6 × 44 = 272 bytes of body, two packets.
    let entries: Vec<Resource> = (0..6)
        .map(|i| Resource {
            holder: VmId(0x80),
            entry: resource(ResourceType::MsgQueueSend, i),
        })
        .collect();
    server.vms_mut().get_mut(VmId(0x80)).unwrap().resources = entries.clone();
    let seq = peers[0].request(ids::VM_GET_HYP_RESOURCES, &vmid_req(0x80));
    pump(&mut server, &mut Capture::default());
    assert_eq!(peers[0].pipe.0.borrow().to_client.len(), 2);
    let replies = peers[0].replies();
    assert_eq!((peers[0].pushed, peers[0].unpushed), (1, 1));
    assert_eq!(replies.len(), 1);
    assert_eq!((replies[0].seq, replies[0].code()), (seq, OK));
    let parsed = HypResourcesReply::decode(replies[0].payload()).unwrap();
    let want: Vec<HypResource> = entries.iter().map(|r| r.entry).collect();
    assert_eq!(parsed.entries, List::from_slice(&want));
}

#[test]
fn back_pressure_full_then_resume() {
    // The client's queue holds 2 packets; a 40-entry reply needs 8.
    let (mut server, mut peers) = setup(NoHyp, 1, 2);
    let entries: Vec<Resource> = (0..40)
        .map(|i| Resource {
            holder: VmId(0x80),
            entry: resource(ResourceType::Doorbell, i),
        })
        .collect();
    server.vms_mut().get_mut(VmId(0x80)).unwrap().resources = entries;
    let seq = peers[0].request(ids::VM_GET_HYP_RESOURCES, &vmid_req(0));
    let mut out = Capture::default();
    pump(&mut server, &mut out);
    assert!(server.conn(0).unwrap().tx_blocked());
    assert_eq!(server.conn(0).unwrap().queued(), 1);
    let mut replies = peers[0].replies();
    assert!(replies.is_empty());
    let mut rounds = 0;
    while replies.is_empty() {
        rounds += 1;
        assert!(rounds < 10);
        // The client drained its queue: its TX "not full" vIRQ.
        server.tx_ready(0);
        server.run(&mut out);
        replies = peers[0].replies();
    }
    assert_eq!(rounds, 3, "8 packets, 2 per round");
    assert_eq!((replies[0].seq, replies[0].code()), (seq, OK));
    let parsed = HypResourcesReply::decode(replies[0].payload()).unwrap();
    assert_eq!(parsed.entries.len(), 40);
    assert!(server.conn(0).unwrap().stats().tx_full >= 3);
    assert!(out.errors().is_empty(), "{:?}", out.errors());
}

#[test]
fn a_client_that_never_reads_does_not_block_the_others() {
    let (mut server, mut peers) = setup(NoHyp, 2, 8);
    let mut out = Capture::default();
    // Client 0 floods the RM with requests and never reads its queue.
    for _ in 0..100 {
        peers[0].request(ids::VM_GET_VMID, &[]);
    }
    pump(&mut server, &mut out);
    // Its queue is full (8 replies), the RM holds RX_DEFER_QUEUED more, the rest of its
    // requests wait in its own queue.
    assert_eq!(peers[0].pipe.0.borrow().to_client.len(), 8);
    assert_eq!(server.conn(0).unwrap().queued(), RX_DEFER_QUEUED);
    assert_eq!(
        peers[0].pipe.0.borrow().to_rm.len(),
        100 - 8 - RX_DEFER_QUEUED
    );
    // Client 1 is served all the same, repeatedly.
    for _ in 0..5 {
        let (c, p) = call(&mut server, &mut peers, 1, ids::VM_GET_VMID, &[]);
        assert_eq!(c, OK);
        assert_eq!(VmGetVmidReply::decode(&p).unwrap().vmid, VmId(0x81));
    }
    // Client 0 starts reading: everything arrives, in order.
    let mut got = Vec::new();
    for _ in 0..100 {
        got.extend(peers[0].replies());
        server.tx_ready(0);
        server.run(&mut out);
        if got.len() == 100 {
            break;
        }
    }
    assert_eq!(got.len(), 100);
    for (i, g) in got.iter().enumerate() {
        assert_eq!((g.seq, g.code()), (i as u16 + 1, OK));
    }
    assert!(out.errors().is_empty(), "{:?}", out.errors());
}

#[test]
fn unknown_ids_are_unimplemented() {
    let (mut server, mut peers) = setup(NoHyp, 1, 8);
    for id in [
        0,
        0x5600_00FE,
        ids::VM_GET_ID,
        ids::MEM_QCOM_LOOKUP_SGL,
        0xFFFF_FFFF,
    ] {
        let (c, p) = call(&mut server, &mut peers, 0, id, &[1, 2, 3]);
        assert_eq!((c, p.len()), (0xFFFF_FFFF, 0), "{id:#x}");
    }
    // VM_IRQ_UNMAP's layout is unconfirmed: unimplemented without parsing.
    let (c, _) = call(&mut server, &mut peers, 0, ids::VM_IRQ_UNMAP, &[0; 12]);
    assert_eq!(c, code(RmError::Unimplemented));
}

#[test]
fn largest_request_is_reassembled() {
    let (mut server, mut peers) = setup(NoHyp, 1, 8);
    // 62 continuations: answered.
    let big: Vec<u8> = (0..MAX_MESSAGE_SIZE).map(|i| i as u8).collect();
    let (c, _) = call(&mut server, &mut peers, 0, 0x5600_00FE, &big);
    assert_eq!(c, 0xFFFF_FFFF);
    // And a console write that needs 63 packets too.
    let (c, _) = call(
        &mut server,
        &mut peers,
        0,
        ids::VM_CONSOLE_OPEN,
        &vmid_req(0),
    );
    assert_eq!(c, OK);
    let chars = vec![b'x'; MAX_MESSAGE_SIZE - 4];
    let mut out = Capture::default();
    let req = enc(&ConsoleWriteRequest {
        vmid: VmId(0),
        chars: &chars,
    });
    let (c, _) = call_out(
        &mut server,
        &mut peers,
        0,
        ids::VM_CONSOLE_WRITE,
        &req,
        &mut out,
    );
    assert_eq!(c, OK);
    let printed: usize = out.console.iter().map(|(_, t)| t.len()).sum();
    assert_eq!(
        printed,
        (MAX_MESSAGE_SIZE - 4) / CONSOLE_LINE_MAX * CONSOLE_LINE_MAX
    );
}

#[test]
fn sixty_three_continuations_are_dropped() {
    let (mut server, mut peers) = setup(NoHyp, 1, 8);
    let mut out = Capture::default();
    let mut packet = vec![0u8; PACKET_SIZE];
    packet[..8].copy_from_slice(&Header::new(MessageType::Request, 63, 77, 0x5600_00FE).encode());
    peers[0].send_raw(&packet);
    for _ in 0..63 {
        packet[..8]
            .copy_from_slice(&Header::new(MessageType::Continuation, 63, 77, 0x5600_00FE).encode());
        peers[0].send_raw(&packet);
    }
    pump(&mut server, &mut out);
    assert!(peers[0].take().is_empty());
    assert!(
        out.errors().is_empty(),
        "reported with the next good packet"
    );
    let (c, _) = call_out(&mut server, &mut peers, 0, ids::VM_GET_VMID, &[], &mut out);
    assert_eq!(c, OK);
    assert_eq!(
        out.errors(),
        ["c0: dropped 64 packet(s), the first: 63 continuations (at most 62)"]
    );
    assert_eq!(server.conn(0).unwrap().stats().dropped_packets, 64);
}

#[test]
fn stray_continuations_and_bad_packets_are_dropped() {
    let (mut server, mut peers) = setup(NoHyp, 1, 8);
    let mut out = Capture::default();
    let mut stray = Header::new(MessageType::Continuation, 1, 9, ids::VM_GET_VMID)
        .encode()
        .to_vec();
    stray.extend_from_slice(&[0; 20]);
    peers[0].send_raw(&stray);
    peers[0].send_raw(&[0x21, 1, 0]); // too short
    peers[0].send_raw(&[0x22, 1, 0, 0, 0, 0, 0, 0]); // version 2
    pump(&mut server, &mut out);
    assert!(peers[0].take().is_empty());
    let (c, p) = call_out(&mut server, &mut peers, 0, ids::VM_GET_VMID, &[], &mut out);
    assert_eq!(
        (c, VmGetVmidReply::decode(&p).unwrap().vmid),
        (OK, VmId(0x80))
    );
    assert_eq!(
        out.errors(),
        ["c0: dropped 3 packet(s), the first: stray continuation of VM_GET_VMID seq 9"]
    );

    // A new request aborts a partial one; the partial's continuation is then a mismatch.
    let big = vec![0u8; 500];
    let pkts: Vec<_> = Splitter::request(40, ids::VM_CONSOLE_WRITE, &big)
        .unwrap()
        .collect();
    peers[0].send_raw(pkts[0].as_bytes());
    let mut out = Capture::default();
    let (c, _) = call_out(&mut server, &mut peers, 0, ids::VM_GET_VMID, &[], &mut out);
    assert_eq!(c, OK);
    assert_eq!(
        out.errors(),
        ["c0: discarded partial Request VM_CONSOLE_WRITE seq 40 (0 of 2 continuations)"]
    );
}

#[test]
fn replies_and_notifications_from_clients_are_dropped() {
    let (mut server, mut peers) = setup(NoHyp, 1, 8);
    let mut out = Capture::default();
    for p in Splitter::reply(3, ids::VM_GET_VMID, RmError::Ok, &[1, 2, 3, 4]).unwrap() {
        peers[0].send_raw(p.as_bytes());
    }
    for p in Splitter::notification(4, ids::NOTIFY_VM_STATUS, &[0; 8]).unwrap() {
        peers[0].send_raw(p.as_bytes());
    }
    pump(&mut server, &mut out);
    assert!(peers[0].take().is_empty());
    assert_eq!(out.errors().len(), 2);
    assert!(out.errors()[0].contains("dropped Reply VM_GET_VMID seq 3"));
    assert!(out.errors()[1].contains("dropped Notification NOTIFY_VM_STATUS seq 4"));
}

#[test]
fn transport_errors_are_logged_and_survived() {
    let (mut server, mut peers) = setup(NoHyp, 1, 8);
    let mut out = Capture::default();
    peers[0].pipe.0.borrow_mut().fail_send = Some(-5);
    peers[0].request(ids::VM_GET_VMID, &[]);
    let seq = peers[0].request(ids::VM_GET_VMID, &[]);
    pump(&mut server, &mut out);
    let replies = peers[0].replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].seq, seq);
    assert_eq!(out.errors().len(), 1);
    assert!(out.errors()[0].contains("send failed (error -5)"));

    peers[0].pipe.0.borrow_mut().fail_receive = Some(-6);
    peers[0].request(ids::VM_GET_VMID, &[]);
    let mut out = Capture::default();
    pump(&mut server, &mut out);
    assert_eq!(out.errors(), ["c0: receive failed: error -6"]);
    // The next RX event drains it.
    pump(&mut server, &mut out);
    assert_eq!(peers[0].replies().len(), 1);
}

#[test]
fn debug_lines_name_each_request() {
    let (mut server, mut peers) = setup(NoHyp, 1, 8);
    let mut out = Capture {
        debug: true,
        ..Capture::default()
    };
    call_out(
        &mut server,
        &mut peers,
        0,
        ids::VM_GET_STATE,
        &[0; 3],
        &mut out,
    );
    assert_eq!(
        out.log,
        [(
            Level::Debug,
            "c0(0x80) seq 1 VM_GET_STATE [3 bytes] -> RM_ERROR_MSG_INVALID".to_string()
        )]
    );
}

#[test]
fn notifications_to_a_full_client_are_dropped() {
    let (mut server, mut peers) = setup(NoHyp, 2, 1);
    // Client 1 owns client 0 and never reads.
    server.vms_mut().get_mut(VmId(0x80)).unwrap().owner = VmId(0x81);
    let mut out = Capture::default();
    let status = enc(&VmSetStatusRequest {
        vm_status: 0,
        os_status: 4,
        app_status: 1,
    });
    for _ in 0..(OUT_QUEUE_LIMIT + 2) {
        let (c, _) = call_out(
            &mut server,
            &mut peers,
            0,
            ids::VM_SET_STATUS,
            &status,
            &mut out,
        );
        assert_eq!(c, OK);
    }
    // One in the client's queue, OUT_QUEUE_LIMIT held by the RM, one dropped.
    assert_eq!(peers[1].pipe.0.borrow().to_client.len(), 1);
    assert_eq!(server.conn(1).unwrap().queued(), OUT_QUEUE_LIMIT);
    assert_eq!(out.errors().len(), 1);
    assert!(out.errors()[0].starts_with("c1: notification NOTIFY_VM_STATUS dropped"));
}

// ----- Handlers -----

#[test]
fn get_vmid() {
    let (mut server, mut peers) = setup(NoHyp, 2, 8);
    let (c, p) = call(&mut server, &mut peers, 1, ids::VM_GET_VMID, &[]);
    assert_eq!((c, p), (OK, vec![0x81, 0, 0, 0]));
    let (c, p) = call(&mut server, &mut peers, 1, ids::VM_GET_VMID, &[0]);
    assert_eq!((c, p.len()), (code(RmError::MsgInvalid), 0));
}

#[test]
fn get_state() {
    let (mut server, mut peers) = setup(NoHyp, 2, 8);
    let running = VmStateReply {
        vm_status: VmStatus::Running,
        os_status: OsStatus::None,
        app_status: 0,
    };
    for vmid in [0, 0x80] {
        let (c, p) = call(
            &mut server,
            &mut peers,
            0,
            ids::VM_GET_STATE,
            &vmid_req(vmid),
        );
        assert_eq!((c, VmStateReply::decode(&p).unwrap()), (OK, running));
    }
    let (c, _) = call(
        &mut server,
        &mut peers,
        0,
        ids::VM_GET_STATE,
        &vmid_req(0x1234),
    );
    assert_eq!(c, code(RmError::VmidInvalid));
    // Unrelated VMs (and the RM) may not be queried.
    for vmid in [0x81, 0xFF] {
        let (c, _) = call(
            &mut server,
            &mut peers,
            0,
            ids::VM_GET_STATE,
            &vmid_req(vmid),
        );
        assert_eq!(c, code(RmError::Denied));
    }
    // Owners and peers may.
    server.vms_mut().get_mut(VmId(0x81)).unwrap().owner = VmId(0x80);
    let (c, _) = call(
        &mut server,
        &mut peers,
        0,
        ids::VM_GET_STATE,
        &vmid_req(0x81),
    );
    assert_eq!(c, OK);
    server
        .vms_mut()
        .get_mut(VmId(0x80))
        .unwrap()
        .peers
        .push(VmId(0x81));
    let (c, _) = call(
        &mut server,
        &mut peers,
        1,
        ids::VM_GET_STATE,
        &vmid_req(0x80),
    );
    assert_eq!(c, OK);
    for bad in [&[0u8; 3][..], &[0; 5], &[]] {
        let (c, _) = call(&mut server, &mut peers, 0, ids::VM_GET_STATE, bad);
        assert_eq!(c, code(RmError::MsgInvalid));
    }
}

#[test]
fn set_status_records_and_notifies() {
    let (mut server, mut peers) = setup(NoHyp, 3, 8);
    // c1 owns c0; c2 is a peer of c0.
    {
        let vm = server.vms_mut().get_mut(VmId(0x80)).unwrap();
        vm.owner = VmId(0x81);
        vm.peers.push(VmId(0x82));
    }
    let req = enc(&VmSetStatusRequest {
        vm_status: 0,
        os_status: OsStatus::Run.raw(),
        app_status: 0xBEEF,
    });
    let (c, p) = call(&mut server, &mut peers, 0, ids::VM_SET_STATUS, &req);
    assert_eq!((c, p.len()), (OK, 0));
    let (_, p) = call(&mut server, &mut peers, 0, ids::VM_GET_STATE, &vmid_req(0));
    let state = VmStateReply::decode(&p).unwrap();
    assert_eq!((state.os_status, state.app_status), (OsStatus::Run, 0xBEEF));
    let want = VmStatusNotification {
        vmid: VmId(0x80),
        vm_status: VmStatus::Running,
        os_status: OsStatus::Run,
        app_status: 0xBEEF,
    };
    for c in [1, 2] {
        let notes = peers[c].take();
        assert_eq!(notes.len(), 1);
        assert_eq!(
            (notes[0].kind, notes[0].id),
            (MessageType::Notification, ids::NOTIFY_VM_STATUS)
        );
        assert_eq!(VmStatusNotification::decode(&notes[0].body).unwrap(), want);
    }
    // Notification sequence numbers come from one RM-wide counter.
    assert!(peers[0].notes.is_empty());

    // OS status 0 keeps the old one; the app status always changes.
    let req = enc(&VmSetStatusRequest {
        vm_status: 9,
        os_status: 0,
        app_status: 1,
    });
    let (c, _) = call(&mut server, &mut peers, 0, ids::VM_SET_STATUS, &req);
    assert_eq!(c, OK);
    let vm = server.vms().get(VmId(0x80)).unwrap();
    assert_eq!(
        (vm.os_status, vm.app_status, vm.status),
        (OsStatus::Run, 1, VmStatus::Running)
    );

    let bad = enc(&VmSetStatusRequest {
        vm_status: 0,
        os_status: 8,
        app_status: 0,
    });
    let (c, _) = call(&mut server, &mut peers, 0, ids::VM_SET_STATUS, &bad);
    assert_eq!(c, code(RmError::ArgumentInvalid));
    let (c, _) = call(&mut server, &mut peers, 0, ids::VM_SET_STATUS, &[0; 3]);
    assert_eq!(c, code(RmError::MsgInvalid));
    // A listener that is not running hears nothing.
    server.vms_mut().get_mut(VmId(0x82)).unwrap().status = VmStatus::Exited;
    peers[1].take();
    peers[2].take();
    call(&mut server, &mut peers, 0, ids::VM_SET_STATUS, &req);
    assert_eq!(peers[1].take().len(), 1);
    assert_eq!(peers[2].take().len(), 0);
}

#[test]
fn get_hyp_resources() {
    let (mut server, mut peers) = setup(NoHyp, 2, 8);
    // Nothing known: an empty list.
    let (c, p) = call(
        &mut server,
        &mut peers,
        0,
        ids::VM_GET_HYP_RESOURCES,
        &vmid_req(0),
    );
    assert_eq!((c, p), (OK, vec![0, 0, 0, 0]));
    // Entries per holder.
    server.vms_mut().get_mut(VmId(0x81)).unwrap().owner = VmId(0x80);
    server.vms_mut().get_mut(VmId(0x81)).unwrap().resources = vec![
        Resource {
            holder: VmId(0x81),
            entry: resource(ResourceType::MsgQueueRecv, 1),
        },
        Resource {
            holder: VmId(0x80),
            entry: resource(ResourceType::VirtualCpu, 0),
        },
    ];
    let (c, p) = call(
        &mut server,
        &mut peers,
        1,
        ids::VM_GET_HYP_RESOURCES,
        &vmid_req(0x81),
    );
    assert_eq!(c, OK);
    assert_eq!(p.len(), 4 + 44);
    let r = HypResourcesReply::decode(&p).unwrap();
    assert_eq!(
        r.entries.get(0).unwrap().resource_type,
        ResourceType::MsgQueueRecv
    );
    let (c, p) = call(
        &mut server,
        &mut peers,
        0,
        ids::VM_GET_HYP_RESOURCES,
        &vmid_req(0x81),
    );
    assert_eq!(c, OK);
    let r = HypResourcesReply::decode(&p).unwrap();
    assert_eq!(
        r.entries.get(0).unwrap().resource_type,
        ResourceType::VirtualCpu
    );
    // Others: DENIED; unknown: VMID_INVALID; malformed: MSG_INVALID.
    let (c, _) = call(
        &mut server,
        &mut peers,
        1,
        ids::VM_GET_HYP_RESOURCES,
        &vmid_req(0x80),
    );
    assert_eq!(c, code(RmError::Denied));
    let (c, _) = call(
        &mut server,
        &mut peers,
        1,
        ids::VM_GET_HYP_RESOURCES,
        &vmid_req(0xFF),
    );
    assert_eq!(c, code(RmError::Denied));
    let (c, _) = call(
        &mut server,
        &mut peers,
        1,
        ids::VM_GET_HYP_RESOURCES,
        &vmid_req(0x99),
    );
    assert_eq!(c, code(RmError::VmidInvalid));
    let (c, _) = call(
        &mut server,
        &mut peers,
        1,
        ids::VM_GET_HYP_RESOURCES,
        &[0; 2],
    );
    assert_eq!(c, code(RmError::MsgInvalid));
}

#[test]
fn proxy_vcpus_are_reported_to_their_owner() {
    let (mut server, mut peers) = setup(NoHyp, 3, 8);
    let (owner, guest) = (VmId(0x80), VmId(0x81));
    let vms = server.vms_mut();
    assert_eq!(vms.grant_proxy_vcpu(guest, owner, 0, 0xc0de, 70), Ok(()));
    assert_eq!(vms.grant_proxy_vcpu(guest, owner, 1, 0xc0df, 71), Ok(()));
    // Errors: itself, the RM, unknown VMs, a second owner.
    assert_eq!(
        vms.grant_proxy_vcpu(guest, guest, 0, 1, 1),
        Err(RmError::VmidInvalid)
    );
    assert_eq!(
        vms.grant_proxy_vcpu(guest, VMID_RM, 0, 1, 1),
        Err(RmError::VmidInvalid)
    );
    assert_eq!(
        vms.grant_proxy_vcpu(VmId(0x99), owner, 0, 1, 1),
        Err(RmError::VmidInvalid)
    );
    assert_eq!(
        vms.grant_proxy_vcpu(guest, VmId(0x99), 0, 1, 1),
        Err(RmError::VmidInvalid)
    );
    assert_eq!(
        vms.grant_proxy_vcpu(guest, VmId(0x82), 0, 1, 1),
        Err(RmError::InUse)
    );
    assert_eq!(server.vms().get(guest).unwrap().owner, owner);
    // The owner sees both vCPUs, with its caps and vIRQs.
    let (c, p) = call(
        &mut server,
        &mut peers,
        0,
        ids::VM_GET_HYP_RESOURCES,
        &vmid_req(0x81),
    );
    assert_eq!(c, OK);
    let r = HypResourcesReply::decode(&p).unwrap();
    let got: Vec<(ResourceType, u32, u64, u32, VmId)> = (0..r.entries.len())
        .map(|i| {
            let e = r.entries.get(i).unwrap();
            (e.resource_type, e.label, e.cap_id, e.virq, e.partner_vmid)
        })
        .collect();
    assert_eq!(
        got,
        [
            (ResourceType::VirtualCpu, 0, 0xc0de, 70, guest),
            (ResourceType::VirtualCpu, 1, 0xc0df, 71, guest),
        ]
    );
    // The guest itself sees none of them.
    let (c, p) = call(
        &mut server,
        &mut peers,
        1,
        ids::VM_GET_HYP_RESOURCES,
        &vmid_req(0),
    );
    assert_eq!((c, p), (OK, vec![0, 0, 0, 0]));
}

fn write_req(vmid: u16, chars: &[u8]) -> Vec<u8> {
    enc(&ConsoleWriteRequest {
        vmid: VmId(vmid),
        chars,
    })
}

#[test]
fn console() {
    let (mut server, mut peers) = setup(NoHyp, 2, 8);
    let mut out = Capture::default();
    let mut call =
        |server: &mut TestServer<NoHyp>, c: usize, id: u32, p: &[u8], out: &mut Capture| {
            call_out(server, &mut peers, c, id, p, out).0
        };
    // Writing or flushing a closed console is DENIED (public RM).
    assert_eq!(
        call(
            &mut server,
            0,
            ids::VM_CONSOLE_WRITE,
            &write_req(0, b"x\n"),
            &mut out
        ),
        code(RmError::Denied)
    );
    assert_eq!(
        call(
            &mut server,
            0,
            ids::VM_CONSOLE_FLUSH,
            &vmid_req(0),
            &mut out
        ),
        code(RmError::Denied)
    );
    assert_eq!(
        call(&mut server, 0, ids::VM_CONSOLE_OPEN, &vmid_req(0), &mut out),
        OK
    );
    // 600 bytes over three packets: five lines.
    let mut text = Vec::new();
    for k in 0..5 {
        let line = format!("line {k} {}", "abcdefghij".repeat(11));
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
    }
    text.truncate(600);
    assert_eq!(
        call(
            &mut server,
            0,
            ids::VM_CONSOLE_WRITE,
            &write_req(0, &text),
            &mut out
        ),
        OK
    );
    assert_eq!(out.console.len(), 5);
    assert!(out.console.iter().all(|(vm, _)| vm == "c0"));
    assert!(out.console[4].1.starts_with("line 4 abcdefghij"));
    // A partial line waits for the newline, FLUSH or CLOSE; odd bytes show as '.'.
    out.console.clear();
    assert_eq!(
        call(
            &mut server,
            0,
            ids::VM_CONSOLE_WRITE,
            &write_req(0x80, b"ab\x01\r\tc"),
            &mut out
        ),
        OK
    );
    assert!(out.console.is_empty());
    assert_eq!(
        call(
            &mut server,
            0,
            ids::VM_CONSOLE_FLUSH,
            &vmid_req(0),
            &mut out
        ),
        OK
    );
    assert_eq!(out.console, [("c0".to_string(), "ab.\tc".to_string())]);
    call(
        &mut server,
        0,
        ids::VM_CONSOLE_WRITE,
        &write_req(0, b"tail"),
        &mut out,
    );
    assert_eq!(
        call(
            &mut server,
            0,
            ids::VM_CONSOLE_CLOSE,
            &vmid_req(0),
            &mut out
        ),
        OK
    );
    assert_eq!(out.console.last().unwrap().1, "tail");
    assert_eq!(
        call(
            &mut server,
            0,
            ids::VM_CONSOLE_WRITE,
            &write_req(0, b"x"),
            &mut out
        ),
        code(RmError::Denied)
    );
    // Long lines are cut at CONSOLE_LINE_MAX; an empty line is printed too.
    out.console.clear();
    call(&mut server, 0, ids::VM_CONSOLE_OPEN, &vmid_req(0), &mut out);
    let long = vec![b'z'; CONSOLE_LINE_MAX * 2 + 5];
    call(
        &mut server,
        0,
        ids::VM_CONSOLE_WRITE,
        &write_req(0, &long),
        &mut out,
    );
    call(
        &mut server,
        0,
        ids::VM_CONSOLE_WRITE,
        &write_req(0, b"\n\n"),
        &mut out,
    );
    let lens: Vec<usize> = out.console.iter().map(|(_, t)| t.len()).collect();
    assert_eq!(lens, [CONSOLE_LINE_MAX, CONSOLE_LINE_MAX, 5, 0]);
    // Other VMs' consoles: unknown is ARGUMENT_INVALID, not owned is DENIED.
    assert_eq!(
        call(
            &mut server,
            0,
            ids::VM_CONSOLE_OPEN,
            &vmid_req(0x99),
            &mut out
        ),
        code(RmError::ArgumentInvalid)
    );
    assert_eq!(
        call(
            &mut server,
            0,
            ids::VM_CONSOLE_OPEN,
            &vmid_req(0x81),
            &mut out
        ),
        code(RmError::Denied)
    );
    assert_eq!(
        call(
            &mut server,
            0,
            ids::VM_CONSOLE_WRITE,
            &write_req(0x81, b"x"),
            &mut out
        ),
        code(RmError::Denied)
    );
    // Malformed.
    assert_eq!(
        call(
            &mut server,
            0,
            ids::VM_CONSOLE_WRITE,
            &[0, 0, 5, 0, b'a'],
            &mut out
        ),
        code(RmError::MsgInvalid)
    );
    assert_eq!(
        call(&mut server, 0, ids::VM_CONSOLE_OPEN, &[0; 8], &mut out),
        code(RmError::MsgInvalid)
    );
}

#[test]
fn console_between_owner_and_vm() {
    let (mut server, mut peers) = setup(NoHyp, 2, 8);
    server.vms_mut().get_mut(VmId(0x80)).unwrap().owner = VmId(0x81);
    let mut out = Capture::default();
    // The owner opens c0's console; c0 opens its own and writes: the owner gets the chars.
    assert_eq!(
        call(
            &mut server,
            &mut peers,
            1,
            ids::VM_CONSOLE_OPEN,
            &vmid_req(0x80)
        )
        .0,
        OK
    );
    assert_eq!(
        call(
            &mut server,
            &mut peers,
            0,
            ids::VM_CONSOLE_OPEN,
            &vmid_req(0)
        )
        .0,
        OK
    );
    let (c, _) = call_out(
        &mut server,
        &mut peers,
        0,
        ids::VM_CONSOLE_WRITE,
        &write_req(0, b"hi\n"),
        &mut out,
    );
    assert_eq!(c, OK);
    assert_eq!(out.console, [("c0".to_string(), "hi".to_string())]);
    let notes = peers[1].take();
    assert_eq!(notes[0].id, ids::NOTIFY_VM_CONSOLE_CHARS);
    let n = ConsoleCharsNotification::decode(&notes[0].body).unwrap();
    assert_eq!((n.from, n.chars), (VmId(0x80), &b"hi\n"[..]));
    // The owner writes to c0's console: c0 gets the chars from 0.
    let (c, _) = call(
        &mut server,
        &mut peers,
        1,
        ids::VM_CONSOLE_WRITE,
        &write_req(0x80, b"yo"),
    );
    assert_eq!(c, OK);
    let notes = peers[0].take();
    let n = ConsoleCharsNotification::decode(&notes[0].body).unwrap();
    assert_eq!((n.from, n.chars), (VmId(0), &b"yo"[..]));
    assert_eq!(
        call(
            &mut server,
            &mut peers,
            1,
            ids::VM_CONSOLE_FLUSH,
            &vmid_req(0x80)
        )
        .0,
        OK
    );
    assert_eq!(
        call(
            &mut server,
            &mut peers,
            1,
            ids::VM_CONSOLE_CLOSE,
            &vmid_req(0x80)
        )
        .0,
        OK
    );
    assert_eq!(
        call(
            &mut server,
            &mut peers,
            1,
            ids::VM_CONSOLE_WRITE,
            &write_req(0x80, b"x")
        )
        .0,
        code(RmError::Denied)
    );
}

#[test]
fn vm_exit() {
    let (mut server, mut peers) = setup(NoHyp, 2, 8);
    server.vms_mut().get_mut(VmId(0x80)).unwrap().owner = VmId(0x81);
    for bad in [
        &[0u8, 0, 0, 1][..], // res0
        &[0, 0, 2, 0],       // UNKNOWN_ERROR
        &[0, 0, 9, 0],       // undefined code
        &[0, 0, 0],          // short
    ] {
        let (c, _) = call(&mut server, &mut peers, 0, ids::VM_EXIT, bad);
        assert_eq!(c, code(RmError::MsgInvalid), "{bad:?}");
    }
    let req = enc(&VmExitRequest {
        flags: 1,
        exit_code: ExitCode::SoftwareError,
    });
    let (c, _) = call(&mut server, &mut peers, 0, ids::VM_EXIT, &req);
    assert_eq!(c, OK);
    assert_eq!(state_of(&server, 0x80), Some(VmStatus::Exited));
    let notes = peers[1].take();
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0].id, ids::NOTIFY_VM_STATUS);
    assert_eq!(
        VmStatusNotification::decode(&notes[0].body)
            .unwrap()
            .vm_status,
        VmStatus::Exited
    );
    assert_eq!(notes[1].id, ids::NOTIFY_VM_EXITED);
    let exited = VmExitedNotification::decode(&notes[1].body).unwrap();
    assert_eq!(
        (exited.vmid, exited.exit_type),
        (VmId(0x80), ExitType::VmExit)
    );
    assert_eq!(exited.reason_word(), Some((1, 1)));
    assert_ne!(notes[0].seq, notes[1].seq);
    // Once exited it cannot exit again.
    let (c, _) = call(&mut server, &mut peers, 0, ids::VM_EXIT, &req);
    assert_eq!(c, code(RmError::VmState));
    // A VM owned by the RM exits without notifications.
    let (c, _) = call(&mut server, &mut peers, 1, ids::VM_EXIT, &req);
    assert_eq!(c, OK);
    assert!(peers[0].take().is_empty());
}

#[test]
fn allocate_and_deallocate() {
    let (mut server, mut peers) = setup(NoHyp, 2, 8);
    // Only the primary VM (VMID 3) may allocate.
    let (c, _) = call(&mut server, &mut peers, 0, ids::VM_ALLOCATE, &vmid_req(0));
    assert_eq!(c, code(RmError::Denied));
    let (mut server, mut peers) = primary_clients(NoHyp);
    let (c, p) = call(&mut server, &mut peers, 0, ids::VM_ALLOCATE, &vmid_req(0));
    assert_eq!(c, OK);
    let vmid = VmAllocateReply::decode(&p).unwrap().vmid;
    assert_eq!(vmid, VmId(0x80));
    let (c, p) = call(
        &mut server,
        &mut peers,
        0,
        ids::VM_GET_STATE,
        &vmid_req(0x80),
    );
    assert_eq!(
        (c, VmStateReply::decode(&p).unwrap().vm_status),
        (OK, VmStatus::Load)
    );
    // Fixed VMIDs: none are free on this platform.
    let (c, _) = call(&mut server, &mut peers, 0, ids::VM_ALLOCATE, &vmid_req(45));
    assert_eq!(c, code(RmError::NoResource));
    // Exhaustion: 0x80..=0xBF minus 0x90 (taken by a client) and 0x80.
    let mut got = vec![0x80];
    loop {
        let (c, p) = call(&mut server, &mut peers, 0, ids::VM_ALLOCATE, &vmid_req(0));
        if c != OK {
            assert_eq!(c, code(RmError::NoResource));
            break;
        }
        got.push(VmAllocateReply::decode(&p).unwrap().vmid.0);
    }
    assert_eq!(got.len(), 63);
    assert!(!got.contains(&0x90));
    // Deallocate: owner only, LOAD or RESET only.
    let (c, _) = call(
        &mut server,
        &mut peers,
        1,
        ids::VM_DEALLOCATE,
        &vmid_req(0x81),
    );
    assert_eq!(c, code(RmError::Denied));
    let (c, _) = call(
        &mut server,
        &mut peers,
        0,
        ids::VM_DEALLOCATE,
        &vmid_req(0x81),
    );
    assert_eq!(c, OK);
    let (c, _) = call(
        &mut server,
        &mut peers,
        0,
        ids::VM_GET_STATE,
        &vmid_req(0x81),
    );
    assert_eq!(c, code(RmError::VmidInvalid));
    let (c, _) = call(
        &mut server,
        &mut peers,
        0,
        ids::VM_DEALLOCATE,
        &vmid_req(0x81),
    );
    assert_eq!(c, code(RmError::VmidInvalid));
    let (c, p) = call(&mut server, &mut peers, 0, ids::VM_ALLOCATE, &vmid_req(0));
    assert_eq!(
        (c, VmAllocateReply::decode(&p).unwrap().vmid),
        (OK, VmId(0x81))
    );
    let (c, _) = call(&mut server, &mut peers, 0, ids::VM_ALLOCATE, &[0; 2]);
    assert_eq!(c, code(RmError::MsgInvalid));
    // A running VM cannot be deallocated.
    server.vms_mut().get_mut(VmId(0x90)).unwrap().owner = VMID_HLOS;
    let (c, _) = call(
        &mut server,
        &mut peers,
        0,
        ids::VM_DEALLOCATE,
        &vmid_req(0x90),
    );
    assert_eq!(c, code(RmError::VmState));
}

/// A primary VM (VMID 3, client 0) and another client (0x90, client 1).
fn primary_clients<H: Hyp>(hyp: H) -> (TestServer<H>, Vec<Peer>) {
    let mut s = Server::new(hyp);
    s.vms_mut()
        .insert(VmRecord::new(VMID_HLOS, "hlos", VMID_RM, VmStatus::Running))
        .unwrap();
    s.vms_mut()
        .insert(VmRecord::new(
            VmId(0x90),
            "other",
            VMID_RM,
            VmStatus::Running,
        ))
        .unwrap();
    let mut peers = Vec::new();
    for vmid in [VMID_HLOS, VmId(0x90)] {
        let pipe = Pipe::new(8);
        let buf = Box::leak(vec![0u8; MAX_MESSAGE_SIZE].into_boxed_slice());
        s.connect(vmid, pipe.clone(), buf).unwrap();
        peers.push(Peer::new(pipe));
    }
    (s, peers)
}

/// [`primary_clients`] and a VM 0x80 the primary allocated.
fn primary_setup<H: Hyp>(hyp: H) -> (TestServer<H>, Vec<Peer>) {
    let (mut s, mut peers) = primary_clients(hyp);
    let (c, _) = call(&mut s, &mut peers, 0, ids::VM_ALLOCATE, &vmid_req(0));
    assert_eq!(c, OK);
    (s, peers)
}

fn config_image(vmid: u16, auth: u16, dtb_size: u64) -> Vec<u8> {
    enc(&VmConfigImageRequest {
        vmid: VmId(vmid),
        auth_mech: auth,
        mem_handle: 1,
        image_offset: 0,
        image_size: 0,
        dtb_offset: 0x1000,
        dtb_size,
    })
}

fn boot_context(vmid: u16, reg_set: u8, reg_index: u8) -> Vec<u8> {
    enc(&VmSetBootContextRequest {
        vmid: VmId(vmid),
        reg_set,
        reg_index,
        value: 0x4000_0000,
    })
}

fn stop(vmid: u16, flags: u8) -> Vec<u8> {
    enc(&VmStopRequest {
        vmid: VmId(vmid),
        flags,
        stop_reason: 3,
    })
}

#[test]
fn lifecycle_checks_without_hypervisor_objects() {
    let (mut server, mut peers) = primary_setup(NoHyp);
    let mut c = |server: &mut TestServer<NoHyp>, client: usize, id: u32, p: &[u8]| {
        call(server, &mut peers, client, id, p).0
    };
    let unimpl = code(RmError::Unimplemented);
    // Everything that needs hypervisor objects is validated, then UNIMPLEMENTED.
    assert_eq!(
        c(
            &mut server,
            0,
            ids::VM_CONFIG_IMAGE,
            &config_image(0x80, 0, 0x1000)
        ),
        unimpl
    );
    let ranges = [SglEntry {
        ipa: 0x8000_0000,
        size: 0x10_0000,
    }];
    let paging = enc(&VmSetDemandPagingRequest {
        vmid: VmId(0x80),
        ranges: List::from_slice(&ranges),
    });
    assert_eq!(
        c(&mut server, 0, ids::VM_SET_DEMAND_PAGING, &paging),
        unimpl
    );
    let layout = |range_id, size| {
        enc(&VmSetAddressLayoutRequest {
            vmid: VmId(0x80),
            range_id,
            base: 0x8000_0000,
            size,
        })
    };
    assert_eq!(
        c(
            &mut server,
            0,
            ids::VM_SET_ADDRESS_LAYOUT,
            &layout(0, 0x20_0000)
        ),
        unimpl
    );
    assert_eq!(c(&mut server, 0, ids::VM_INIT, &vmid_req(0x80)), unimpl);
    assert_eq!(
        state_of(&server, 0x80),
        Some(VmStatus::Load),
        "nothing changed"
    );
    // State-machine checks.
    let vm_state = code(RmError::VmState);
    assert_eq!(c(&mut server, 0, ids::VM_START, &vmid_req(0x80)), vm_state);
    assert_eq!(c(&mut server, 0, ids::VM_STOP, &stop(0x80, 1)), vm_state);
    assert_eq!(c(&mut server, 0, ids::VM_RESET, &vmid_req(0x80)), vm_state);
    assert_eq!(
        c(
            &mut server,
            0,
            ids::VM_SET_BOOT_CONTEXT,
            &boot_context(0x80, 1, 0)
        ),
        vm_state
    );
    // Arguments.
    let arg = code(RmError::ArgumentInvalid);
    assert_eq!(
        c(
            &mut server,
            0,
            ids::VM_CONFIG_IMAGE,
            &config_image(0x80, 7, 0x1000)
        ),
        arg
    );
    assert_eq!(
        c(
            &mut server,
            0,
            ids::VM_CONFIG_IMAGE,
            &config_image(0x80, 0, 0)
        ),
        arg
    );
    assert_eq!(
        c(
            &mut server,
            0,
            ids::VM_SET_ADDRESS_LAYOUT,
            &layout(2, 0x1000)
        ),
        arg
    );
    assert_eq!(
        c(
            &mut server,
            0,
            ids::VM_SET_ADDRESS_LAYOUT,
            &layout(0, 0x1001)
        ),
        arg
    );
    let bad_ranges = [SglEntry {
        ipa: 0x800,
        size: 0x1000,
    }];
    let bad_paging = enc(&VmSetDemandPagingRequest {
        vmid: VmId(0x80),
        ranges: List::from_slice(&bad_ranges),
    });
    assert_eq!(
        c(&mut server, 0, ids::VM_SET_DEMAND_PAGING, &bad_paging),
        arg
    );
    // Unknown VMs and VMs of others.
    let invalid = code(RmError::VmidInvalid);
    let denied = code(RmError::Denied);
    for id in [
        ids::VM_INIT,
        ids::VM_START,
        ids::VM_RESET,
        ids::VM_DEALLOCATE,
    ] {
        assert_eq!(c(&mut server, 0, id, &vmid_req(0xA5)), invalid, "{id:#x}");
    }
    assert_eq!(c(&mut server, 0, ids::VM_STOP, &stop(0xA5, 0)), invalid);
    assert_eq!(c(&mut server, 1, ids::VM_INIT, &vmid_req(0x80)), denied);
    assert_eq!(c(&mut server, 1, ids::VM_START, &vmid_req(0x80)), denied);
    assert_eq!(
        c(
            &mut server,
            1,
            ids::VM_CONFIG_IMAGE,
            &config_image(0x80, 0, 0x1000)
        ),
        denied
    );
    assert_eq!(c(&mut server, 1, ids::VM_STOP, &stop(0x80, 1)), invalid);
    assert_eq!(c(&mut server, 1, ids::VM_RESET, &vmid_req(0x80)), invalid);
    // Malformed payloads.
    let msg = code(RmError::MsgInvalid);
    for id in [
        ids::VM_INIT,
        ids::VM_START,
        ids::VM_STOP,
        ids::VM_RESET,
        ids::VM_DEALLOCATE,
        ids::VM_CONFIG_IMAGE,
        ids::VM_SET_BOOT_CONTEXT,
        ids::VM_SET_DEMAND_PAGING,
        ids::VM_SET_ADDRESS_LAYOUT,
    ] {
        assert_eq!(c(&mut server, 0, id, &[0x80, 0, 0]), msg, "{id:#x}");
    }
}

#[test]
fn lifecycle_with_a_hypervisor() {
    let hyp = FakeHyp {
        resources: vec![
            Resource {
                holder: VMID_HLOS,
                entry: resource(ResourceType::VirtualCpu, 0),
            },
            Resource {
                holder: VMID_HLOS,
                entry: resource(ResourceType::AddrSpace, 0),
            },
        ],
        ..FakeHyp::default()
    };
    let (mut server, mut peers) = primary_setup(hyp);
    let mut c =
        |server: &mut TestServer<FakeHyp>, id: u32, p: &[u8]| call(server, &mut peers, 0, id, p).0;
    assert_eq!(
        c(
            &mut server,
            ids::VM_CONFIG_IMAGE,
            &config_image(0x80, 0, 0x1000)
        ),
        OK
    );
    assert_eq!(c(&mut server, ids::VM_INIT, &vmid_req(0x80)), OK);
    assert_eq!(state_of(&server, 0x80), Some(VmStatus::Ready));
    assert_eq!(
        c(&mut server, ids::VM_INIT, &vmid_req(0x80)),
        code(RmError::VmState)
    );
    // Boot context: X0..X30, PC, SP_EL0/1.
    assert_eq!(
        c(
            &mut server,
            ids::VM_SET_BOOT_CONTEXT,
            &boot_context(0x80, 0, 30)
        ),
        OK
    );
    assert_eq!(
        c(
            &mut server,
            ids::VM_SET_BOOT_CONTEXT,
            &boot_context(0x80, 1, 0)
        ),
        OK
    );
    assert_eq!(
        c(
            &mut server,
            ids::VM_SET_BOOT_CONTEXT,
            &boot_context(0x80, 2, 1)
        ),
        OK
    );
    let arg = code(RmError::ArgumentInvalid);
    assert_eq!(
        c(
            &mut server,
            ids::VM_SET_BOOT_CONTEXT,
            &boot_context(0x80, 0, 31)
        ),
        arg
    );
    assert_eq!(
        c(
            &mut server,
            ids::VM_SET_BOOT_CONTEXT,
            &boot_context(0x80, 1, 1)
        ),
        arg
    );
    assert_eq!(
        c(
            &mut server,
            ids::VM_SET_BOOT_CONTEXT,
            &boot_context(0x80, 3, 0)
        ),
        arg
    );
    // Resources for the owner.
    let (code_, p) = call(
        &mut server,
        &mut peers,
        0,
        ids::VM_GET_HYP_RESOURCES,
        &vmid_req(0x80),
    );
    assert_eq!(
        (code_, HypResourcesReply::decode(&p).unwrap().entries.len()),
        (OK, 2)
    );
    let mut c =
        |server: &mut TestServer<FakeHyp>, id: u32, p: &[u8]| call(server, &mut peers, 0, id, p).0;
    assert_eq!(c(&mut server, ids::VM_START, &vmid_req(0x80)), OK);
    assert_eq!(state_of(&server, 0x80), Some(VmStatus::Running));
    // Non-forced stop: the VM would get VM_SHUTDOWN (it has no connection here).
    assert_eq!(c(&mut server, ids::VM_STOP, &stop(0x80, 0)), OK);
    assert_eq!(state_of(&server, 0x80), Some(VmStatus::Running));
    assert_eq!(c(&mut server, ids::VM_STOP, &stop(0x80, 1)), OK);
    assert_eq!(state_of(&server, 0x80), Some(VmStatus::Exited));
    assert_eq!(
        c(&mut server, ids::VM_STOP, &stop(0x80, 1)),
        code(RmError::VmState)
    );
    assert_eq!(
        c(&mut server, ids::VM_DEALLOCATE, &vmid_req(0x80)),
        code(RmError::VmState)
    );
    assert_eq!(c(&mut server, ids::VM_RESET, &vmid_req(0x80)), OK);
    assert_eq!(state_of(&server, 0x80), Some(VmStatus::Reset));
    assert!(server.vms().get(VmId(0x80)).unwrap().resources.is_empty());
    assert_eq!(c(&mut server, ids::VM_DEALLOCATE, &vmid_req(0x80)), OK);
    assert_eq!(state_of(&server, 0x80), None);
    assert_eq!(
        server.hyp().calls,
        [
            "config_image 0x80",
            "create 0x80",
            "boot_context 0x80 X30 0x40000000",
            "boot_context 0x80 Pc0 0x40000000",
            "boot_context 0x80 Sp1 0x40000000",
            "power_on 0x80",
            "kill 0x80",
            "destroy 0x80",
        ]
    );
    // The owner heard: READY, RUNNING, EXITED + VM_EXITED (forced), RESET.
    let notes: Vec<(u32, Vec<u8>)> = peers[0]
        .notes
        .iter()
        .map(|g| (g.id, g.body.clone()))
        .collect();
    let statuses: Vec<VmStatus> = notes
        .iter()
        .filter(|(id, _)| *id == ids::NOTIFY_VM_STATUS)
        .map(|(_, b)| VmStatusNotification::decode(b).unwrap().vm_status)
        .collect();
    assert_eq!(
        statuses,
        [
            VmStatus::Ready,
            VmStatus::Running,
            VmStatus::Exited,
            VmStatus::Reset
        ]
    );
    let exited: Vec<_> = notes
        .iter()
        .filter(|(id, _)| *id == ids::NOTIFY_VM_EXITED)
        .map(|(_, b)| VmExitedNotification::decode(b).unwrap().exit_type)
        .collect();
    assert_eq!(exited, [ExitType::VmStopForced]);
}

#[test]
fn failed_start_and_init_mark_the_vm() {
    let hyp = FakeHyp {
        fail_power_on: Some(RmError::NoResource),
        ..FakeHyp::default()
    };
    let (mut server, mut peers) = primary_setup(hyp);
    assert_eq!(
        call(&mut server, &mut peers, 0, ids::VM_INIT, &vmid_req(0x80)).0,
        OK
    );
    let (c, _) = call(&mut server, &mut peers, 0, ids::VM_START, &vmid_req(0x80));
    assert_eq!(c, code(RmError::NoResource));
    assert_eq!(state_of(&server, 0x80), Some(VmStatus::InitFailed));
    // INIT_FAILED can be reset and initialised again.
    assert_eq!(
        call(&mut server, &mut peers, 0, ids::VM_RESET, &vmid_req(0x80)).0,
        OK
    );
    server.hyp_mut().fail_create = Some(RmError::NoMem);
    let (c, _) = call(&mut server, &mut peers, 0, ids::VM_INIT, &vmid_req(0x80));
    assert_eq!(c, code(RmError::NoMem));
    assert_eq!(state_of(&server, 0x80), Some(VmStatus::InitFailed));
}

#[test]
fn stop_without_force_sends_shutdown_to_the_vm() {
    let (mut server, mut peers) = setup(NoHyp, 2, 8);
    server.vms_mut().get_mut(VmId(0x80)).unwrap().owner = VmId(0x81);
    let (c, _) = call(&mut server, &mut peers, 1, ids::VM_STOP, &stop(0x80, 0));
    assert_eq!(c, OK);
    let notes = peers[0].take();
    assert_eq!(notes[0].id, ids::NOTIFY_VM_SHUTDOWN);
    assert_eq!(
        VmShutdownNotification::decode(&notes[0].body)
            .unwrap()
            .stop_reason,
        3
    );
    // Forced needs vcpu_kill: UNIMPLEMENTED, state unchanged.
    let (c, _) = call(&mut server, &mut peers, 1, ids::VM_STOP, &stop(0x80, 1));
    assert_eq!(c, code(RmError::Unimplemented));
    assert_eq!(state_of(&server, 0x80), Some(VmStatus::Running));
}

fn mem_create(acl: &[AclEntry], sgl: &[SglEntry], attrs: &[AttrEntry], flags: u8) -> Vec<u8> {
    enc(&MemCreateRequest {
        mem_type: 0,
        flags,
        label: 5,
        acl: List::from_slice(acl),
        sgl: List::from_slice(sgl),
        attrs: List::from_slice(attrs),
    })
}

#[test]
fn memparcels() {
    let (mut server, mut peers) = setup(NoHyp, 2, 8);
    let acl = [AclEntry {
        vmid: VmId(0x81),
        rights: MEM_RIGHTS_RW,
    }];
    let sgl = [SglEntry {
        ipa: 0x4000_0000,
        size: 0x2000,
    }];
    let mut c =
        |server: &mut TestServer<NoHyp>, id: u32, p: &[u8]| call(server, &mut peers, 0, id, p).0;
    let arg = code(RmError::ArgumentInvalid);
    for id in [ids::MEM_LEND, ids::MEM_SHARE, ids::MEM_DONATE] {
        assert_eq!(
            c(&mut server, id, &mem_create(&acl, &sgl, &[], 0)),
            code(RmError::Unimplemented)
        );
        assert_eq!(c(&mut server, id, &mem_create(&[], &sgl, &[], 0)), arg);
        assert_eq!(c(&mut server, id, &mem_create(&acl, &[], &[], 0)), arg);
        assert_eq!(
            c(
                &mut server,
                id,
                &mem_create(&acl, &[], &[], MEM_CREATE_FLAG_APPEND)
            ),
            code(RmError::Unimplemented)
        );
        let unknown = [AclEntry {
            vmid: VmId(0x99),
            rights: 4,
        }];
        assert_eq!(
            c(&mut server, id, &mem_create(&unknown, &sgl, &[], 0)),
            code(RmError::VmidInvalid)
        );
        let no_rights = [AclEntry {
            vmid: VmId(0x81),
            rights: 0,
        }];
        assert_eq!(
            c(&mut server, id, &mem_create(&no_rights, &sgl, &[], 0)),
            arg
        );
        let twice = [acl[0], acl[0]];
        assert_eq!(c(&mut server, id, &mem_create(&twice, &sgl, &[], 0)), arg);
        let unaligned = [SglEntry {
            ipa: 0x4000_0000,
            size: 0x1001,
        }];
        assert_eq!(
            c(&mut server, id, &mem_create(&acl, &unaligned, &[], 0)),
            arg
        );
        let wrap = [SglEntry {
            ipa: 0xFFFF_FFFF_FFFF_F000,
            size: 0x2000,
        }];
        assert_eq!(c(&mut server, id, &mem_create(&acl, &wrap, &[], 0)), arg);
        let attr = [AttrEntry {
            attr: 9,
            vmid: VmId(0x81),
        }];
        assert_eq!(c(&mut server, id, &mem_create(&acl, &sgl, &attr, 0)), arg);
        let attr = [AttrEntry {
            attr: 1,
            vmid: VmId(0x80),
        }];
        assert_eq!(c(&mut server, id, &mem_create(&acl, &sgl, &attr, 0)), arg);
        assert_eq!(c(&mut server, id, &[0; 7]), code(RmError::MsgInvalid));
    }
    let append = enc(&MemAppendRequest {
        handle: 1,
        flags: 1,
        sgl: List::from_slice(&sgl),
    });
    assert_eq!(
        c(&mut server, ids::MEM_APPEND, &append),
        code(RmError::Unimplemented)
    );
    let release = enc(&MemReleaseRequest {
        handle: 1,
        flags: 0,
    });
    assert_eq!(
        c(&mut server, ids::MEM_RELEASE, &release),
        code(RmError::Unimplemented)
    );
    assert_eq!(
        c(&mut server, ids::MEM_RECLAIM, &release),
        code(RmError::Unimplemented)
    );
    let notify = |flags| {
        enc(&MemNotifyRequest {
            handle: 1,
            flags,
            mem_info_tag: 0,
            vmids: List::empty(),
        })
    };
    assert_eq!(
        c(&mut server, ids::MEM_NOTIFY, &notify(2)),
        code(RmError::Unimplemented)
    );
    assert_eq!(c(&mut server, ids::MEM_NOTIFY, &notify(3)), arg);
    let vmids = [VmidEntry { vmid: VmId(0x99) }];
    let shared = enc(&MemNotifyRequest {
        handle: 1,
        flags: 1,
        mem_info_tag: 0,
        vmids: List::from_slice(&vmids),
    });
    assert_eq!(
        c(&mut server, ids::MEM_NOTIFY, &shared),
        code(RmError::VmidInvalid)
    );
    let accept = |mem_type, trans_type| {
        enc(&MemAcceptRequest {
            handle: 1,
            mem_type,
            trans_type,
            flags: 0,
            label: 0,
            acl: List::empty(),
            sgl: List::empty(),
            map_vmid: VmId(0),
            attrs: List::empty(),
        })
    };
    assert_eq!(
        c(&mut server, ids::MEM_ACCEPT, &accept(0, 1)),
        code(RmError::Unimplemented)
    );
    assert_eq!(c(&mut server, ids::MEM_ACCEPT, &accept(2, 1)), arg);
    assert_eq!(c(&mut server, ids::MEM_ACCEPT, &accept(0, 3)), arg);
    for id in [
        ids::MEM_APPEND,
        ids::MEM_ACCEPT,
        ids::MEM_RELEASE,
        ids::MEM_NOTIFY,
    ] {
        assert_eq!(c(&mut server, id, &[1]), code(RmError::MsgInvalid));
    }
}

#[test]
fn memparcels_with_a_hypervisor() {
    let (mut server, mut peers) = setup(FakeHyp::default(), 2, 8);
    let acl = [AclEntry {
        vmid: VmId(0x81),
        rights: MEM_RIGHTS_RW,
    }];
    let sgl = [SglEntry {
        ipa: 0x4000_0000,
        size: 0x2000,
    }];
    let (c, p) = call(
        &mut server,
        &mut peers,
        0,
        ids::MEM_LEND,
        &mem_create(&acl, &sgl, &[], 0),
    );
    assert_eq!((c, MemHandleReply::decode(&p).unwrap().handle), (OK, 1));
    assert_eq!(server.hyp().calls, ["mem_create 0x80 Lend 1"]);
}

#[test]
fn irq_lending() {
    let (mut server, mut peers) = setup(NoHyp, 2, 8);
    let mut c =
        |server: &mut TestServer<NoHyp>, id: u32, p: &[u8]| call(server, &mut peers, 0, id, p).0;
    let lend = |borrower| {
        enc(&IrqLendRequest {
            borrower: VmId(borrower),
            virq: 70,
            label: 1,
        })
    };
    assert_eq!(
        c(&mut server, ids::VM_IRQ_LEND, &lend(0x81)),
        code(RmError::Unimplemented)
    );
    assert_eq!(
        c(&mut server, ids::VM_IRQ_LEND, &lend(0x99)),
        code(RmError::VmidInvalid)
    );
    assert_eq!(
        c(&mut server, ids::VM_IRQ_LEND, &lend(0x80)),
        code(RmError::ArgumentInvalid)
    );
    let accept = enc(&IrqAcceptRequest {
        handle: 1,
        virq: 80,
    });
    assert_eq!(
        c(&mut server, ids::VM_IRQ_ACCEPT, &accept),
        code(RmError::Unimplemented)
    );
    let handle = enc(&IrqHandle { handle: 1 });
    assert_eq!(
        c(&mut server, ids::VM_IRQ_RELEASE, &handle),
        code(RmError::Unimplemented)
    );
    assert_eq!(
        c(&mut server, ids::VM_IRQ_RECLAIM, &handle),
        code(RmError::Unimplemented)
    );
    let vmids = [VmidEntry { vmid: VmId(0x81) }];
    let notify = |flags, vmids| {
        enc(&IrqNotifyRequest {
            handle: 1,
            flags,
            vmids,
        })
    };
    assert_eq!(
        c(
            &mut server,
            ids::VM_IRQ_NOTIFY,
            &notify(IRQ_NOTIFY_FLAG_LENT, List::from_slice(&vmids))
        ),
        code(RmError::Unimplemented)
    );
    let bad = [VmidEntry { vmid: VmId(0x99) }];
    assert_eq!(
        c(
            &mut server,
            ids::VM_IRQ_NOTIFY,
            &notify(IRQ_NOTIFY_FLAG_LENT, List::from_slice(&bad))
        ),
        code(RmError::VmidInvalid)
    );
    assert_eq!(
        c(&mut server, ids::VM_IRQ_NOTIFY, &notify(6, List::empty())),
        code(RmError::ArgumentInvalid)
    );
    for id in [
        ids::VM_IRQ_LEND,
        ids::VM_IRQ_ACCEPT,
        ids::VM_IRQ_RELEASE,
        ids::VM_IRQ_NOTIFY,
    ] {
        assert_eq!(
            c(&mut server, id, &[1, 2]),
            code(RmError::MsgInvalid),
            "{id:#x}"
        );
    }
}

#[test]
fn irq_lending_with_a_hypervisor() {
    let (mut server, mut peers) = setup(FakeHyp::default(), 2, 8);
    let lend = enc(&IrqLendRequest {
        borrower: VmId(0x81),
        virq: 70,
        label: 1,
    });
    let (c, p) = call(&mut server, &mut peers, 0, ids::VM_IRQ_LEND, &lend);
    assert_eq!((c, p), (OK, vec![7, 0, 0, 0]));
    let accept = enc(&IrqAcceptRequest {
        handle: 7,
        virq: 80,
    });
    let (c, p) = call(&mut server, &mut peers, 1, ids::VM_IRQ_ACCEPT, &accept);
    assert_eq!((c, p), (OK, vec![80, 0, 0, 0]));
}

// ----- VM table -----

#[test]
fn vm_table() {
    let mut t = VmTable::new();
    assert_eq!(t.len(), 1);
    assert!(t.remove(VMID_RM).is_none());
    assert_eq!(
        t.insert(VmRecord::new(VmId(0), "hyp", VMID_RM, VmStatus::Running)),
        Err(RmError::VmidInvalid)
    );
    assert_eq!(
        t.insert(VmRecord::new(VMID_RM, "x", VMID_RM, VmStatus::Running)),
        Err(RmError::InUse)
    );
    assert_eq!(t.allocate(VMID_HLOS, VmId(0)), Ok(VmId(0x80)));
    assert_eq!(t.get(VmId(0x80)).unwrap().name, "vm80");
    assert_eq!(
        t.set_status(VmId(0x80), VmStatus::Running),
        Err(RmError::VmState)
    );
    assert_eq!(t.set_status(VmId(0x80), VmStatus::Init), Ok(VmStatus::Load));
    assert_eq!(
        t.set_status(VmId(0x81), VmStatus::Init),
        Err(RmError::VmidInvalid)
    );
    // Listeners: running owner and peers, each once, never the RM.
    t.insert(VmRecord::new(VMID_HLOS, "hlos", VMID_RM, VmStatus::Running))
        .unwrap();
    t.insert(VmRecord::new(VmId(0x90), "p", VMID_RM, VmStatus::Exited))
        .unwrap();
    t.get_mut(VmId(0x80)).unwrap().peers = vec![VMID_HLOS, VmId(0x90), VMID_RM];
    assert_eq!(t.status_listeners(VmId(0x80)), [VMID_HLOS]);
    assert!(t.status_listeners(VMID_HLOS).is_empty());
    assert!(t.status_listeners(VmId(0x55)).is_empty());
}

#[test]
fn connect_checks() {
    let mut server: TestServer<NoHyp> = Server::new(NoHyp);
    let buf = Box::leak(vec![0u8; 16].into_boxed_slice());
    assert_eq!(
        server.connect(VmId(0x80), Pipe::new(1), buf).err(),
        Some(RmError::VmidInvalid)
    );
    let buf = Box::leak(vec![0u8; 16].into_boxed_slice());
    assert_eq!(
        server.connect(VMID_RM, Pipe::new(1), buf).err(),
        Some(RmError::VmidInvalid)
    );
    server
        .vms_mut()
        .insert(VmRecord::new(VmId(0x80), "a", VMID_RM, VmStatus::Running))
        .unwrap();
    let buf = Box::leak(vec![0u8; 16].into_boxed_slice());
    assert_eq!(server.connect(VmId(0x80), Pipe::new(1), buf).ok(), Some(0));
    let buf = Box::leak(vec![0u8; 16].into_boxed_slice());
    assert_eq!(
        server.connect(VmId(0x80), Pipe::new(1), buf).err(),
        Some(RmError::InUse)
    );
}

// ----- Fuzz -----

/// Random packets (often with valid headers and known IDs) from three clients, random client
/// queue drains and vIRQs: nothing panics, every packet the RM sends is well formed, and
/// every reply answers a request.
#[test]
fn random_packets_never_panic() {
    let mut rng = XorShift(0x0DDB_1A5E_5BAD_5EED);
    let hyp = FakeHyp::default();
    let (mut server, mut peers) = setup(hyp, 3, 8);
    server.vms_mut().get_mut(VmId(0x81)).unwrap().owner = VmId(0x80);
    let known: Vec<u32> = ids::ALL.iter().map(|&(id, _)| id).collect();
    let mut out = Capture {
        debug: true,
        ..Capture::default()
    };
    let mut replies = 0usize;
    let mut packet = [0u8; PACKET_SIZE + 8];
    for round in 0..20_000 {
        let c = rng.below(3);
        let len = match rng.below(4) {
            0 => rng.below(packet.len() + 1),
            1 => HEADER_SIZE + rng.below(9),
            _ => HEADER_SIZE + rng.below(MAX_PACKET_PAYLOAD + 1),
        };
        rng.fill(&mut packet[..len]);
        if len > 0 && rng.below(4) != 0 {
            packet[0] = 0x21;
        }
        if len > 1 && rng.below(2) == 0 {
            // Request or continuation, few fragments.
            packet[1] = (rng.below(2) as u8) | ((rng.below(3) as u8) << 2);
        }
        if len >= 8 && rng.below(3) != 0 {
            let id = known[rng.below(known.len())];
            packet[4..8].copy_from_slice(&id.to_le_bytes());
        }
        if len >= 8 && rng.below(2) == 0 {
            // Small VMIDs / counts make payloads parse more often.
            for b in packet[8..len].iter_mut().skip(1).step_by(2) {
                *b = 0;
            }
            if len >= 10 {
                packet[8] = [0, 0x80, 0x81, 0x82, 3, 0xFF][rng.below(6)];
            }
        }
        peers[c].send_raw(&packet[..len]);
        if rng.below(3) == 0 {
            server.rx_ready(rng.below(3));
        }
        if rng.below(3) == 0 {
            server.tx_ready(rng.below(3));
        }
        server.run(&mut out);
        // Clients read now and then.
        if rng.below(2) == 0 {
            let c = rng.below(3);
            for g in peers[c].take() {
                if g.kind == MessageType::Reply {
                    assert!(g.body.len() >= 4, "round {round}");
                    replies += 1;
                }
            }
        }
        if round % 1000 == 0 {
            out.log.clear();
            out.console.clear();
        }
    }
    // Drain everything.
    for _ in 0..100 {
        for p in peers.iter_mut() {
            p.take();
        }
        pump(&mut server, &mut out);
    }
    assert!(replies > 1000, "{replies}");
    for id in 0..3 {
        let s = server.conn(id).unwrap().stats();
        assert!(s.dropped_packets > 0 && s.messages_in > 0, "{s:?}");
    }
}

#[test]
fn hypervisor_reported_exits_reach_the_owner() {
    let (mut server, mut peers) = setup(NoHyp, 3, 8);
    let (owner, guest) = (VmId(0x80), VmId(0x81));
    assert_eq!(
        server
            .vms_mut()
            .grant_proxy_vcpu(guest, owner, 0, 0xc0de, 70),
        Ok(())
    );
    let mut out = Capture::default();
    assert!(server.vm_exited(guest, ExitType::PlatformOff, &mut out));
    pump(&mut server, &mut out);
    assert_eq!(state_of(&server, 0x81), Some(VmStatus::Exited));
    let notes = peers[0].take();
    let ids_seen: Vec<u32> = notes.iter().map(|n| n.id).collect();
    assert_eq!(ids_seen, [ids::NOTIFY_VM_STATUS, ids::NOTIFY_VM_EXITED]);
    let exited = VmExitedNotification::decode(&notes[1].body).unwrap();
    assert_eq!(
        (exited.vmid, exited.exit_type),
        (guest, ExitType::PlatformOff)
    );
    assert_eq!(exited.reason_word(), Some((0, 0)));
    // Once: a second report changes nothing; unknown VMs are refused.
    assert!(!server.vm_exited(guest, ExitType::PlatformOff, &mut out));
    assert!(!server.vm_exited(VmId(0x99), ExitType::PlatformOff, &mut out));
    pump(&mut server, &mut out);
    assert!(peers[0].take().is_empty());
    // A crash is a software error in the reason word; a VM owned by the RM notifies nobody.
    assert!(server.vm_exited(VmId(0x82), ExitType::SoftwareError, &mut out));
    pump(&mut server, &mut out);
    assert!(peers.iter_mut().all(|p| p.take().is_empty()));
}

/// A VM that ended by itself releases what it accepted at once, as VM_STOP does, so its owner
/// can reclaim before VM_RESET (Linux's order): the hypervisor's report kills (and so
/// releases) it, once.
#[test]
fn a_vm_that_ended_by_itself_releases_its_memory() {
    let (mut server, _peers) = setup(FakeHyp::default(), 3, 8);
    let mut out = Capture::default();
    assert!(server.vm_exited(VmId(0x81), ExitType::PlatformOff, &mut out));
    assert_eq!(server.hyp().calls, ["kill 0x81"]);
    assert!(!server.vm_exited(VmId(0x81), ExitType::PlatformOff, &mut out));
    assert_eq!(server.hyp().calls, ["kill 0x81"]);
    assert_eq!(state_of(&server, 0x81), Some(VmStatus::Exited));
}

/// Demand paging through the server with [`crate::gunyah::Gunyah`] over the fake hypervisor:
/// VM_SET_DEMAND_PAGING (checked), VM_INIT, VM_GET_HYP_RESOURCES lists the address space
/// (type 10) and the two extents (type 9) for the owner only, VM_RESET deletes them.
#[test]
fn demand_paging_through_the_server() {
    use crate::gunyah::tests::{DEMAND_IPA, DEMAND_SIZE, gunyah, lend_image};
    let mut g = gunyah();
    let _ = lend_image(&mut g);
    let (mut s, mut peers) = primary_setup(g);
    let paging = |ipa, size| {
        let ranges = [SglEntry { ipa, size }];
        enc(&VmSetDemandPagingRequest {
            vmid: VmId(0x80),
            ranges: List::from_slice(&ranges),
        })
    };
    let mut c = |s: &mut TestServer<_>, client, id, p: &[u8]| call(s, &mut peers, client, id, p);
    // Not the owner; not page aligned; not the owner's RAM.
    let good = paging(DEMAND_IPA, DEMAND_SIZE);
    assert_eq!(
        c(&mut s, 1, ids::VM_SET_DEMAND_PAGING, &good).0,
        code(RmError::Denied)
    );
    assert_eq!(
        c(
            &mut s,
            0,
            ids::VM_SET_DEMAND_PAGING,
            &paging(DEMAND_IPA + 8, 0x1000)
        )
        .0,
        code(RmError::ArgumentInvalid)
    );
    assert_eq!(
        c(
            &mut s,
            0,
            ids::VM_SET_DEMAND_PAGING,
            &paging(0x8000_0000, 0x1000)
        )
        .0,
        code(RmError::MemInvalid)
    );
    assert_eq!(c(&mut s, 0, ids::VM_SET_DEMAND_PAGING, &good).0, OK);
    assert_eq!(c(&mut s, 0, ids::VM_INIT, &vmid_req(0x80)).0, OK);
    // Only before VM_INIT.
    assert_eq!(
        c(&mut s, 0, ids::VM_SET_DEMAND_PAGING, &good).0,
        code(RmError::VmState)
    );
    let (code_, p) = c(&mut s, 0, ids::VM_GET_HYP_RESOURCES, &vmid_req(0x80));
    assert_eq!(code_, OK);
    let r = HypResourcesReply::decode(&p).unwrap();
    let paging_entries: Vec<_> = r
        .entries
        .iter()
        .filter(|e| e.resource_type as u8 >= 9)
        .map(|e| (e.resource_type, e.label, e.base, e.size))
        .collect();
    assert_eq!(
        paging_entries,
        [
            (ResourceType::AddrSpace, 0, 0, 0),
            (ResourceType::MemExtent, 0, DEMAND_IPA, DEMAND_SIZE),
            (ResourceType::MemExtent, 2, DEMAND_IPA, DEMAND_SIZE),
        ]
    );
    assert_eq!(c(&mut s, 0, ids::VM_RESET, &vmid_req(0x80)).0, OK);
    let (code_, p) = c(&mut s, 0, ids::VM_GET_HYP_RESOURCES, &vmid_req(0x80));
    assert_eq!((code_, p), (OK, vec![0, 0, 0, 0]));
    // The extents and the owner's caps to them are gone.
    let log = &s.hyp().calls().log;
    for cap in ["0x115", "0x116"] {
        assert!(
            log.contains(&format!("cspace_delete(0x2, {cap})")),
            "{log:?}"
        );
    }
}

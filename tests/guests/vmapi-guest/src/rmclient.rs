//! Role `rmclient`: a client of Wurley's Resource Manager (`rm/`), the root VM the hypervisor
//! starts with every bundle and links to this one by a message-queue pair labelled
//! `rm-<this VM's name>` (bootargs `rmlink=` names it; default: the first pair whose label
//! starts with `rm-`).
//!
//! Speaks the RM RPC protocol (framing from `wurley_abi::rm`) driven by the link's vIRQs: a
//! full TX queue waits for the TX "not full" vIRQ, an empty RX queue for the RX "not empty"
//! vIRQ (WFI in between, nothing polls), and checks the RM's answers:
//!
//! * VM_GET_VMID, VM_GET_STATE of itself (RUNNING), VM_SET_STATUS then VM_GET_STATE showing
//!   it, an invalid OS status, an unknown VMID;
//! * the console: a write before open (DENIED), open, a 600-byte write (three packets; the
//!   RM prints its five lines as `client: <line>`, which the host test looks for), flush,
//!   close;
//! * an unknown message ID (UNIMPLEMENTED), a 3-byte VM_GET_STATE (MSG_INVALID);
//! * a stray continuation packet (no reply; the next request is answered);
//! * VM_GET_HYP_RESOURCES of itself (well formed, empty: the RM knows no caps of VMs it did
//!   not create) and of the RM (DENIED);
//! * a 14 616-byte request (62 continuations: reassembled, UNIMPLEMENTED) and 64 packets
//!   announcing 63 continuations (dropped: no reply; the next request is answered);
//! * as the primary VM (VMID 3, RM bootargs `rm.primary=<name>`): VM_ALLOCATE, the new VM's
//!   state (LOAD), VM_START (VM_STATE), VM_INIT (ARGUMENT_INVALID: no image was
//!   configured, and the VM stays in LOAD), VM_DEALLOCATE;
//! * VM_EXIT, then VM_GET_STATE showing EXITED.

use core::sync::atomic::{AtomicU32, Ordering};

use wurley_abi::rm::status::{OsStatus, VmStateReply, VmStatus};
use wurley_abi::rm::vm::{VmAllocateReply, VmExitRequest, VmGetVmidReply, VmSetStatusRequest};
use wurley_abi::rm::{
    Decode, Encode, HEADER_SIZE, Header, MAX_MESSAGE_SIZE, MAX_PACKET_PAYLOAD, MessageType,
    PACKET_SIZE, Reassembler, RmError, ids,
};
use wurley_abi::{CapId, Error, VmId};
use wurley_rt::fdt::Fdt;
use wurley_rt::{args, gic, hyp, hypdt, time};

use crate::report::Report;

/// How long a reply (or room in the TX queue) may take.
const TIMEOUT_US: u64 = 10_000_000;
/// An ID the RM does not know.
const UNKNOWN_ID: u32 = 0x5600_00FE;
/// Bytes of a reply payload kept.
const KEEP: usize = 1024;

/// Lines of the console test: 5 × 120 bytes = 600, each ending in a newline.
pub const CONSOLE_LINES: usize = 5;
const CONSOLE_LINE_LEN: usize = 120;

/// Byte `i` of console line `k` (the host test rebuilds the same lines).
fn console_byte(k: usize, i: usize, prefix: &[u8]) -> u8 {
    match prefix.get(i) {
        Some(&b) => b,
        None if i == CONSOLE_LINE_LEN - 1 => b'\n',
        None => b'a' + ((i * 7 + k) % 26) as u8,
    }
}

static RX_IRQS: AtomicU32 = AtomicU32::new(0);
static TX_IRQS: AtomicU32 = AtomicU32::new(0);

fn rx_irq(_intid: u32) {
    RX_IRQS.fetch_add(1, Ordering::AcqRel);
}

fn tx_irq(_intid: u32) {
    TX_IRQS.fetch_add(1, Ordering::AcqRel);
}

/// A complete message from the RM.
struct Got {
    kind: MessageType,
    seq: u16,
    id: u32,
    /// The body's length (may exceed what is kept).
    len: usize,
    body: [u8; KEEP],
}

impl Got {
    fn body(&self) -> &[u8] {
        &self.body[..self.len.min(KEEP)]
    }

    /// The RM error word of a reply.
    fn code(&self) -> u32 {
        match self.body().first_chunk::<4>() {
            Some(w) => u32::from_le_bytes(*w),
            None => u32::MAX - 1,
        }
    }

    /// A reply's payload after the error word.
    fn payload(&self) -> &[u8] {
        self.body().get(4..).unwrap_or(&[])
    }
}

/// Why a call failed.
#[derive(Clone, Copy)]
enum CallError {
    Send(Error),
    Receive(Error),
    /// No reply in time.
    Timeout,
    /// A reply to something else arrived first.
    Unexpected {
        seq: u16,
        id: u32,
    },
}

impl core::fmt::Display for CallError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CallError::Send(e) => write!(f, "send error {}", e.code()),
            CallError::Receive(e) => write!(f, "receive error {}", e.code()),
            CallError::Timeout => write!(f, "no reply within {TIMEOUT_US} us"),
            CallError::Unexpected { seq, id } => {
                write!(f, "unexpected reply seq {seq} id {id:#x}")
            }
        }
    }
}

/// The client's end of the RM link.
struct Rpc<'b> {
    tx: CapId,
    rx: CapId,
    seq: u16,
    rx_buf: Reassembler<'b>,
    notifications: u32,
}

impl Rpc<'_> {
    fn next_seq(&mut self) -> u16 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Send one packet, sleeping until the TX vIRQ while the queue is full.
    fn send_packet(&mut self, packet: &[u8], push: bool) -> Result<(), CallError> {
        let flags = if push { hyp::SEND_FLAG_PUSH } else { 0 };
        loop {
            let seen = TX_IRQS.load(Ordering::Acquire);
            match hyp::msgqueue_send_slice(self.tx, packet, flags).0 {
                Ok(()) => return Ok(()),
                Err(Error::MsgqueueFull) => {
                    if !time::wait_until(TIMEOUT_US, || TX_IRQS.load(Ordering::Acquire) != seen) {
                        return Err(CallError::Timeout);
                    }
                }
                Err(e) => return Err(CallError::Send(e)),
            }
        }
    }

    /// Send `packets` packets of a message whose first header is `first` (its continuation
    /// count may be invalid: 63 is still encoded), body bytes from `byte(offset)`, `len` in
    /// all.
    fn send_generated(
        &mut self,
        first: Header,
        packets: usize,
        len: usize,
        byte: impl Fn(usize) -> u8,
    ) -> Result<(), CallError> {
        let mut p = [0u8; PACKET_SIZE];
        for i in 0..packets {
            let mut h = first;
            if i > 0 {
                h.kind = MessageType::Continuation;
            }
            p[..HEADER_SIZE].copy_from_slice(&h.encode());
            let start = i * MAX_PACKET_PAYLOAD;
            let chunk = len.saturating_sub(start).min(MAX_PACKET_PAYLOAD);
            for (j, b) in p[HEADER_SIZE..HEADER_SIZE + chunk].iter_mut().enumerate() {
                *b = byte(start + j);
            }
            self.send_packet(&p[..HEADER_SIZE + chunk], i + 1 == packets)?;
        }
        Ok(())
    }

    /// Send a well-formed request with a generated body; returns its sequence number.
    fn send_request(
        &mut self,
        id: u32,
        len: usize,
        byte: impl Fn(usize) -> u8,
    ) -> Result<u16, CallError> {
        let seq = self.next_seq();
        let packets = len.div_ceil(MAX_PACKET_PAYLOAD).max(1);
        let first = Header::new(MessageType::Request, (packets - 1) as u8, seq, id);
        self.send_generated(first, packets, len, byte)?;
        Ok(seq)
    }

    /// The next complete message, sleeping until the RX vIRQ while the queue is empty.
    fn receive(&mut self) -> Result<Got, CallError> {
        let mut p = [0u8; PACKET_SIZE];
        loop {
            let seen = RX_IRQS.load(Ordering::Acquire);
            match hyp::msgqueue_receive_into(self.rx, &mut p).0 {
                Ok(n) => {
                    if let Some(m) = self.rx_buf.push(&p[..n.min(PACKET_SIZE)]).message() {
                        let mut got = Got {
                            kind: m.kind,
                            seq: m.seq,
                            id: m.id,
                            len: m.payload.len(),
                            body: [0; KEEP],
                        };
                        let keep = m.payload.len().min(KEEP);
                        got.body[..keep].copy_from_slice(&m.payload[..keep]);
                        return Ok(got);
                    }
                }
                Err(Error::MsgqueueEmpty) => {
                    if !time::wait_until(TIMEOUT_US, || RX_IRQS.load(Ordering::Acquire) != seen) {
                        return Err(CallError::Timeout);
                    }
                }
                Err(e) => return Err(CallError::Receive(e)),
            }
        }
    }

    /// Wait for the reply to `(seq, id)`; notifications are counted, anything else fails.
    fn reply_to(&mut self, seq: u16, id: u32) -> Result<Got, CallError> {
        loop {
            let got = self.receive()?;
            match got.kind {
                MessageType::Notification => self.notifications += 1,
                MessageType::Reply if got.seq == seq && got.id == id => return Ok(got),
                _ => {
                    return Err(CallError::Unexpected {
                        seq: got.seq,
                        id: got.id,
                    });
                }
            }
        }
    }

    /// A request with `payload`, and its reply.
    fn call(&mut self, id: u32, payload: &[u8]) -> Result<Got, CallError> {
        let seq = self.send_request(id, payload.len(), |i| payload[i])?;
        self.reply_to(seq, id)
    }

    fn call_encoded<T: Encode>(&mut self, id: u32, req: &T) -> Result<Got, CallError> {
        let mut buf = [0u8; 64];
        let n = req.encode(&mut buf).unwrap_or(0);
        self.call(id, &buf[..n])
    }
}

/// One request `id` with `payload` to the RM over this VM's RM link, for other roles: the
/// reply's RM error word and its payload (at most `out.len()` bytes kept, the length returned).
pub fn call_once(
    fdt: &Fdt<'_>,
    id: u32,
    payload: &[u8],
    out: &mut [u8],
) -> Result<(u32, usize), &'static str> {
    let pair = hypdt::resource_manager(fdt).ok_or("no RM link")?;
    let (Some(txi), Some(rxi)) = (pair.tx_irq, pair.rx_irq) else {
        return Err("RM link without interrupts");
    };
    gic::enable(txi.intid, txi.edge, tx_irq);
    gic::enable(rxi.intid, rxi.edge, rx_irq);
    let mut buf = [0u8; MAX_MESSAGE_SIZE];
    let mut rpc = Rpc {
        tx: pair.tx,
        rx: pair.rx,
        seq: 0,
        rx_buf: Reassembler::new(&mut buf),
        notifications: 0,
    };
    let got = rpc.call(id, payload).map_err(|_| "no reply from the RM")?;
    let p = got.payload();
    let n = p.len().min(out.len());
    out[..n].copy_from_slice(&p[..n]);
    Ok((got.code(), n))
}

/// The payload of a request about VM `vmid`.
pub fn vmid_req(vmid: u16) -> [u8; 4] {
    let v = vmid.to_le_bytes();
    [v[0], v[1], 0, 0]
}

/// Check that a call answered `want`; returns the reply when it did.
fn expect<'g>(
    r: &mut Report,
    name: &str,
    got: &'g Result<Got, CallError>,
    want: RmError,
) -> Option<&'g Got> {
    match got {
        Ok(g) => {
            let ok = g.code() == want.code();
            r.check(
                name,
                ok,
                format_args!(
                    "code={:#x} want={:#x} ({}) payload={} bytes seq={}",
                    g.code(),
                    want.code(),
                    want.name(),
                    g.len.saturating_sub(4),
                    g.seq
                ),
            );
            ok.then_some(g)
        }
        Err(e) => {
            r.check(name, false, format_args!("{e}"));
            None
        }
    }
}

fn state(g: &Got) -> Option<VmStateReply> {
    VmStateReply::decode(g.payload()).ok()
}

pub fn run(r: &mut Report, fdt: &Fdt<'_>, bootargs: &str) {
    let pair = match args::get(bootargs, "rmlink") {
        Some(label) => hypdt::msgqueue_pair(fdt, label),
        None => hypdt::resource_manager(fdt)
            .or_else(|| hypdt::msgqueue_pairs(fdt).find(|p| p.label.starts_with("rm-"))),
    };
    let Some(pair) = pair else {
        r.check(
            "setup",
            false,
            format_args!("no RM link (gunyah-resource-manager node or rm-<name> pair)"),
        );
        return;
    };
    let (Some(txi), Some(rxi)) = (pair.tx_irq, pair.rx_irq) else {
        r.check(
            "setup",
            false,
            format_args!("{}: no interrupts", pair.label),
        );
        return;
    };
    r.info(
        "link",
        format_args!(
            "{}: tx_virq={} rx_virq={} size={}/{}",
            pair.label, txi.intid, rxi.intid, pair.tx_message_size, pair.rx_message_size
        ),
    );
    gic::enable(txi.intid, txi.edge, tx_irq);
    gic::enable(rxi.intid, rxi.edge, rx_irq);
    let mut buf = [0u8; MAX_MESSAGE_SIZE];
    let mut rpc = Rpc {
        tx: pair.tx,
        rx: pair.rx,
        seq: 0,
        rx_buf: Reassembler::new(&mut buf),
        notifications: 0,
    };
    let start = time::ticks();

    // Who am I.
    let got = rpc.call(ids::VM_GET_VMID, &[]);
    let Some(g) = expect(r, "get-vmid", &got, RmError::Ok) else {
        return;
    };
    let vmid = VmGetVmidReply::decode(g.payload()).map_or(VmId(0), |v| v.vmid);
    r.check(
        "get-vmid-value",
        vmid.0 != 0 && g.payload().len() == 4,
        format_args!("vmid={:#x}", vmid.0),
    );

    // State, status.
    let got = rpc.call(ids::VM_GET_STATE, &vmid_req(vmid.0));
    if let Some(g) = expect(r, "get-state", &got, RmError::Ok) {
        let s = state(g);
        r.check(
            "get-state-running",
            s.is_some_and(|s| s.vm_status == VmStatus::Running && s.os_status == OsStatus::None),
            format_args!("{s:?}"),
        );
    }
    let set = VmSetStatusRequest {
        vm_status: 0,
        os_status: OsStatus::Run.raw(),
        app_status: 0x1234,
    };
    let got = rpc.call_encoded(ids::VM_SET_STATUS, &set);
    expect(r, "set-status", &got, RmError::Ok);
    let got = rpc.call(ids::VM_GET_STATE, &vmid_req(0));
    if let Some(g) = expect(r, "get-state-after-set", &got, RmError::Ok) {
        let s = state(g);
        r.check(
            "set-status-shown",
            s.is_some_and(|s| s.os_status == OsStatus::Run && s.app_status == 0x1234),
            format_args!("{s:?}"),
        );
    }
    let bad = VmSetStatusRequest {
        vm_status: 0,
        os_status: 9,
        app_status: 0,
    };
    let got = rpc.call_encoded(ids::VM_SET_STATUS, &bad);
    expect(r, "set-status-invalid", &got, RmError::ArgumentInvalid);
    let got = rpc.call(ids::VM_GET_STATE, &vmid_req(0x1234));
    expect(r, "get-state-unknown", &got, RmError::VmidInvalid);

    // Console.
    let got = rpc.call(ids::VM_CONSOLE_WRITE, &[0, 0, 1, 0, b'x']);
    expect(r, "console-write-closed", &got, RmError::Denied);
    let got = rpc.call(ids::VM_CONSOLE_OPEN, &vmid_req(0));
    expect(r, "console-open", &got, RmError::Ok);
    let text_len = CONSOLE_LINES * CONSOLE_LINE_LEN;
    let console_req = |i: usize| -> u8 {
        match i {
            0 | 1 => 0,
            2 => text_len as u8,
            3 => (text_len >> 8) as u8,
            _ => {
                let (k, j) = ((i - 4) / CONSOLE_LINE_LEN, (i - 4) % CONSOLE_LINE_LEN);
                let mut prefix = *b"rmclient console line 0 of 5: ";
                prefix[22] = b'1' + k as u8;
                console_byte(k + 1, j, &prefix)
            }
        }
    };
    let got = rpc
        .send_request(ids::VM_CONSOLE_WRITE, 4 + text_len, console_req)
        .and_then(|seq| rpc.reply_to(seq, ids::VM_CONSOLE_WRITE));
    expect(r, "console-write-600", &got, RmError::Ok);
    let got = rpc.call(ids::VM_CONSOLE_FLUSH, &vmid_req(0));
    expect(r, "console-flush", &got, RmError::Ok);
    let got = rpc.call(ids::VM_CONSOLE_CLOSE, &vmid_req(0));
    expect(r, "console-close", &got, RmError::Ok);

    // Unknown and malformed.
    let got = rpc.call(UNKNOWN_ID, &[1, 2, 3, 4]);
    expect(r, "unknown-id", &got, RmError::Unimplemented);
    let got = rpc.call(ids::VM_GET_STATE, &[0, 0, 0]);
    expect(r, "malformed-get-state", &got, RmError::MsgInvalid);

    // A stray continuation: dropped without a reply; the next request is answered (and
    // its reply is the first thing that arrives).
    let stray = Header::new(MessageType::Continuation, 1, 0x7777, ids::VM_GET_VMID);
    let sent = rpc.send_generated(stray, 1, 16, |_| 0x55);
    let got = sent.and_then(|()| rpc.call(ids::VM_GET_VMID, &[]));
    expect(r, "stray-continuation-ignored", &got, RmError::Ok);

    // Hyp resources.
    let got = rpc.call(ids::VM_GET_HYP_RESOURCES, &vmid_req(0));
    if let Some(g) = expect(r, "hyp-resources", &got, RmError::Ok) {
        let p = g.payload();
        let n = p
            .first_chunk::<4>()
            .map_or(u32::MAX, |w| u32::from_le_bytes(*w));
        r.check(
            "hyp-resources-list",
            n == 0 && p.len() == 4,
            format_args!(
                "entries={n} payload={} bytes (bundle mode: the RM knows no caps of its clients)",
                p.len()
            ),
        );
    }
    let got = rpc.call(ids::VM_GET_HYP_RESOURCES, &vmid_req(0xFF));
    expect(r, "hyp-resources-of-rm", &got, RmError::Denied);

    // The largest request: 62 continuations, reassembled and answered.
    let got = rpc
        .send_request(UNKNOWN_ID, MAX_MESSAGE_SIZE, |i| (i * 13) as u8)
        .and_then(|seq| rpc.reply_to(seq, UNKNOWN_ID));
    expect(
        r,
        "max-message-62-continuations",
        &got,
        RmError::Unimplemented,
    );

    // 63 continuations announced: every packet is dropped; the next request is answered.
    let seq = rpc.next_seq();
    let too_many = Header::new(MessageType::Request, 63, seq, ids::VM_GET_VMID);
    let sent = rpc.send_generated(too_many, 64, 64 * MAX_PACKET_PAYLOAD, |i| i as u8);
    let got = sent.and_then(|()| rpc.call(ids::VM_GET_VMID, &[]));
    expect(r, "63-continuations-dropped", &got, RmError::Ok);

    // VM management, as the primary VM.
    if vmid.0 == 3 {
        lifecycle(r, &mut rpc);
    } else {
        r.info(
            "lifecycle",
            format_args!("skipped: VMID {:#x} is not the primary VM", vmid.0),
        );
    }

    // Exit.
    let exit = VmExitRequest {
        flags: 0,
        exit_code: wurley_abi::rm::status::ExitCode::Normal,
    };
    let got = rpc.call_encoded(ids::VM_EXIT, &exit);
    expect(r, "vm-exit", &got, RmError::Ok);
    let got = rpc.call(ids::VM_GET_STATE, &vmid_req(0));
    if let Some(g) = expect(r, "get-state-after-exit", &got, RmError::Ok) {
        let s = state(g);
        r.check(
            "exited",
            s.is_some_and(|s| s.vm_status == VmStatus::Exited),
            format_args!("{s:?}"),
        );
    }
    r.info(
        "rpc",
        format_args!(
            "requests={} notifications={} tx_irqs={} rx_irqs={} us={}",
            rpc.seq,
            rpc.notifications,
            TX_IRQS.load(Ordering::Acquire),
            RX_IRQS.load(Ordering::Acquire),
            time::elapsed_us(start)
        ),
    );
}

/// VM_ALLOCATE and the checks the RM can make before hypervisor objects exist.
fn lifecycle(r: &mut Report, rpc: &mut Rpc<'_>) {
    let got = rpc.call(ids::VM_ALLOCATE, &vmid_req(0));
    let Some(g) = expect(r, "vm-allocate", &got, RmError::Ok) else {
        return;
    };
    let new = VmAllocateReply::decode(g.payload()).map_or(0, |v| v.vmid.0);
    r.check(
        "vm-allocate-vmid",
        (0x80..=0xBF).contains(&new),
        format_args!("vmid={new:#x}"),
    );
    let got = rpc.call(ids::VM_GET_STATE, &vmid_req(new));
    if let Some(g) = expect(r, "new-vm-state", &got, RmError::Ok) {
        let s = state(g);
        r.check(
            "new-vm-load",
            s.is_some_and(|s| s.vm_status == VmStatus::Load),
            format_args!("{s:?}"),
        );
    }
    let got = rpc.call(ids::VM_START, &vmid_req(new));
    expect(r, "vm-start-not-ready", &got, RmError::VmState);
    let got = rpc.call(ids::VM_INIT, &vmid_req(new));
    expect(r, "vm-init-unconfigured", &got, RmError::ArgumentInvalid);
    let got = rpc.call(ids::VM_DEALLOCATE, &vmid_req(new));
    expect(r, "vm-deallocate", &got, RmError::Ok);
    let got = rpc.call(ids::VM_GET_STATE, &vmid_req(new));
    expect(r, "deallocated-vm-gone", &got, RmError::VmidInvalid);
}

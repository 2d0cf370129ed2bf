//! The client side of the Resource Manager's RPC link, shared by the roles that talk to the RM
//! (`rmclient`, `vmlife`, `vmchild`, `proxy-owner`): packets framed with `wurley_abi::rm`, sent
//! and received on the link's message-queue pair, driven by its two vIRQs. A full TX queue
//! waits for the TX "not full" vIRQ, an empty RX queue for the RX "not empty" vIRQ (WFI in
//! between, nothing polls). One request at a time; notifications that arrive while a reply is
//! awaited are counted and the last [`KEPT_NOTES`] kept, for [`Rpc::wait_notification`].

use core::sync::atomic::{AtomicU32, Ordering};

use wurley_abi::rm::{
    Encode, HEADER_SIZE, Header, MAX_MESSAGE_SIZE, MAX_PACKET_PAYLOAD, MessageType, PACKET_SIZE,
    Reassembler, RmError,
};
use wurley_abi::{CapId, Error};
use wurley_rt::fdt::Fdt;
use wurley_rt::hypdt::{self, MsgQueuePair};
use wurley_rt::{gic, hyp, time};

use crate::report::Report;

/// How long a reply (or room in the TX queue) may take.
pub const TIMEOUT_US: u64 = 10_000_000;
/// Bytes of a reply payload kept.
const KEEP: usize = 1024;
/// Bytes of a notification's body kept.
const NOTE_KEEP: usize = 64;
/// Notifications kept for [`Rpc::wait_notification`] (the oldest is dropped first).
pub const KEPT_NOTES: usize = 16;

static RX_IRQS: AtomicU32 = AtomicU32::new(0);
static TX_IRQS: AtomicU32 = AtomicU32::new(0);

fn rx_irq(_intid: u32) {
    RX_IRQS.fetch_add(1, Ordering::AcqRel);
}

fn tx_irq(_intid: u32) {
    TX_IRQS.fetch_add(1, Ordering::AcqRel);
}

/// vIRQs taken on the RM link so far: (TX, RX).
pub fn irq_counts() -> (u32, u32) {
    (
        TX_IRQS.load(Ordering::Acquire),
        RX_IRQS.load(Ordering::Acquire),
    )
}

/// A complete message from the RM.
pub struct Got {
    pub kind: MessageType,
    pub seq: u16,
    pub id: u32,
    /// The body's length (may exceed what is kept).
    pub len: usize,
    body: [u8; KEEP],
}

impl Got {
    pub fn body(&self) -> &[u8] {
        &self.body[..self.len.min(KEEP)]
    }

    /// The RM error word of a reply.
    pub fn code(&self) -> u32 {
        match self.body().first_chunk::<4>() {
            Some(w) => u32::from_le_bytes(*w),
            None => u32::MAX - 1,
        }
    }

    /// A reply's payload after the error word.
    pub fn payload(&self) -> &[u8] {
        self.body().get(4..).unwrap_or(&[])
    }
}

/// A notification kept by [`Rpc`].
#[derive(Clone, Copy)]
pub struct Note {
    pub id: u32,
    /// The body's length (may exceed what is kept).
    pub len: usize,
    body: [u8; NOTE_KEEP],
}

impl Note {
    pub fn body(&self) -> &[u8] {
        &self.body[..self.len.min(NOTE_KEEP)]
    }
}

/// Why a call failed.
#[derive(Clone, Copy)]
pub enum CallError {
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
            CallError::Timeout => write!(f, "no reply in time"),
            CallError::Unexpected { seq, id } => {
                write!(f, "unexpected reply seq {seq} id {id:#x}")
            }
        }
    }
}

/// The client's end of the RM link.
pub struct Rpc<'b> {
    tx: CapId,
    rx: CapId,
    /// The last sequence number used (= requests sent, until it wraps).
    pub seq: u16,
    rx_buf: Reassembler<'b>,
    /// Notifications received so far.
    pub notifications: u32,
    notes: [Option<Note>; KEPT_NOTES],
    /// Where the next notification goes in `notes`.
    next_note: usize,
}

impl<'b> Rpc<'b> {
    /// The client end of `pair` (enables its vIRQs), reassembling into `buf` (at least
    /// [`MAX_MESSAGE_SIZE`] bytes for the largest message).
    pub fn new(pair: &MsgQueuePair<'_>, buf: &'b mut [u8]) -> Result<Self, &'static str> {
        let (Some(txi), Some(rxi)) = (pair.tx_irq, pair.rx_irq) else {
            return Err("RM link without interrupts");
        };
        gic::enable(txi.intid, txi.edge, tx_irq);
        gic::enable(rxi.intid, rxi.edge, rx_irq);
        Ok(Rpc {
            tx: pair.tx,
            rx: pair.rx,
            seq: 0,
            rx_buf: Reassembler::new(buf),
            notifications: 0,
            notes: [None; KEPT_NOTES],
            next_note: 0,
        })
    }

    pub fn next_seq(&mut self) -> u16 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Send one packet, sleeping until the TX vIRQ while the queue is full.
    pub fn send_packet(&mut self, packet: &[u8], push: bool) -> Result<(), CallError> {
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
    pub fn send_generated(
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
    pub fn send_request(
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

    /// The next complete message, sleeping until the RX vIRQ while the queue is empty (for at
    /// most `timeout_us` at a time).
    fn receive_within(&mut self, timeout_us: u64) -> Result<Got, CallError> {
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
                    if !time::wait_until(timeout_us, || RX_IRQS.load(Ordering::Acquire) != seen) {
                        return Err(CallError::Timeout);
                    }
                }
                Err(e) => return Err(CallError::Receive(e)),
            }
        }
    }

    /// Count and keep a notification.
    fn keep(&mut self, got: &Got) {
        self.notifications += 1;
        let mut note = Note {
            id: got.id,
            len: got.len,
            body: [0; NOTE_KEEP],
        };
        let n = got.body().len().min(NOTE_KEEP);
        note.body[..n].copy_from_slice(&got.body()[..n]);
        self.notes[self.next_note] = Some(note);
        self.next_note = (self.next_note + 1) % KEPT_NOTES;
    }

    /// Wait for the reply to `(seq, id)`; notifications are counted and kept, anything else
    /// fails.
    pub fn reply_to(&mut self, seq: u16, id: u32) -> Result<Got, CallError> {
        loop {
            let got = self.receive_within(TIMEOUT_US)?;
            match got.kind {
                MessageType::Notification => self.keep(&got),
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
    pub fn call(&mut self, id: u32, payload: &[u8]) -> Result<Got, CallError> {
        let seq = self.send_request(id, payload.len(), |i| payload[i])?;
        self.reply_to(seq, id)
    }

    /// A request with `req` encoded (at most 64 bytes), and its reply.
    pub fn call_encoded<T: Encode>(&mut self, id: u32, req: &T) -> Result<Got, CallError> {
        let mut buf = [0u8; 64];
        let n = req.encode(&mut buf).unwrap_or(0);
        self.call(id, &buf[..n])
    }

    /// Take the oldest kept notification for which `wanted` holds.
    pub fn take_notification(&mut self, mut wanted: impl FnMut(&Note) -> bool) -> Option<Note> {
        for k in 0..KEPT_NOTES {
            let i = (self.next_note + k) % KEPT_NOTES;
            if let Some(note) = self.notes[i]
                && wanted(&note)
            {
                self.notes[i] = None;
                return Some(note);
            }
        }
        None
    }

    /// Forget every kept notification.
    pub fn forget_notifications(&mut self) {
        self.notes = [None; KEPT_NOTES];
    }

    /// A notification for which `wanted` holds: a kept one, or the next that arrives within
    /// `timeout_us` (others are kept; a reply fails the wait: none is outstanding).
    pub fn wait_notification(
        &mut self,
        timeout_us: u64,
        mut wanted: impl FnMut(&Note) -> bool,
    ) -> Result<Note, CallError> {
        if let Some(note) = self.take_notification(&mut wanted) {
            return Ok(note);
        }
        let deadline = time::ticks().saturating_add(time::us_to_ticks(timeout_us));
        loop {
            let left = time::ticks_to_us(deadline.saturating_sub(time::ticks()));
            if left == 0 {
                return Err(CallError::Timeout);
            }
            let got = self.receive_within(left)?;
            if got.kind != MessageType::Notification {
                return Err(CallError::Unexpected {
                    seq: got.seq,
                    id: got.id,
                });
            }
            self.keep(&got);
            if let Some(note) = self.take_notification(&mut wanted) {
                return Ok(note);
            }
        }
    }
}

/// One request `id` with `payload` to the RM over this VM's RM link, for roles that need only
/// one: the reply's RM error word and its payload (at most `out.len()` bytes kept, the length
/// returned).
pub fn call_once(
    fdt: &Fdt<'_>,
    id: u32,
    payload: &[u8],
    out: &mut [u8],
) -> Result<(u32, usize), &'static str> {
    let pair = hypdt::resource_manager(fdt).ok_or("no RM link")?;
    let mut buf = [0u8; MAX_MESSAGE_SIZE];
    let mut rpc = Rpc::new(&pair, &mut buf)?;
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
pub fn expect<'g>(
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

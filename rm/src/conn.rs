//! One client connection: the RM's end of a message-queue pair (reference §7.1).
//!
//! Incoming packets go through a [`Reassembler`] over a caller buffer (14 616 bytes holds any
//! valid message). Outgoing messages (replies, notifications) wait in a FIFO of whole
//! messages and are sent packet by packet; only the message at the front is ever in flight,
//! so a client never sees packets of two messages interleaved. The last packet of each
//! message carries the PUSH flag (the public RM sends without it; Linux relies on its RX
//! vIRQ threshold of 1, so PUSH on the last fragment is harmless and wakes any receiver).
//!
//! Sending never blocks: when the client's queue is full ([`TxError::Full`]) the connection
//! keeps the rest and reports itself blocked until [`Conn::tx_ready`] (the TX "not full"
//! vIRQ). One slow client therefore delays only its own traffic.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use wurley_abi::rm::header::{REPLY_ERROR_SIZE, fragments_for};
use wurley_abi::rm::{
    HEADER_SIZE, Header, MAX_PACKET_PAYLOAD, MessageType, PACKET_SIZE, Reassembler, Received,
    RmError,
};

/// Why a packet could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxError {
    /// The queue is full: try again after the TX "not full" vIRQ.
    Full,
    /// Any other failure (the hypervisor's error code); the message is dropped.
    Other(i64),
}

/// A receive failure other than "empty" (the hypervisor's error code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxError(pub i64);

/// The two message queues of a client link, as the RM sees them: it sends on one and
/// receives from the other. The EL1 binary implements this with `msgqueue_send` and
/// `msgqueue_receive`; host tests with in-memory queues.
pub trait Transport {
    /// Send one packet (8..=240 bytes); `push` asks the receiver's vIRQ to fire now.
    fn send(&mut self, packet: &[u8], push: bool) -> Result<(), TxError>;

    /// Receive one packet into `buf`: `Ok(Some(len))`, or `Ok(None)` when the queue is empty.
    fn receive(&mut self, buf: &mut [u8; PACKET_SIZE]) -> Result<Option<usize>, RxError>;

    /// Whether the last [`Transport::receive`] left more packets queued (`msgqueue_receive`'s
    /// `not_empty`). A drain stops when this is false; the next packet raises the RX vIRQ.
    fn more_pending(&self) -> bool {
        true
    }
}

/// A whole message waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    kind: MessageType,
    seq: u16,
    id: u32,
    /// The body: for replies the error word, then the payload.
    body: Vec<u8>,
}

impl OutMessage {
    /// A reply: error word `error`, then `payload`.
    pub fn reply(seq: u16, id: u32, error: RmError, payload: &[u8]) -> OutMessage {
        let mut body = Vec::with_capacity(REPLY_ERROR_SIZE + payload.len());
        body.extend_from_slice(&error.code().to_le_bytes());
        body.extend_from_slice(payload);
        OutMessage {
            kind: MessageType::Reply,
            seq,
            id,
            body,
        }
    }

    /// A notification carrying `payload`.
    pub fn notification(seq: u16, id: u32, payload: &[u8]) -> OutMessage {
        OutMessage {
            kind: MessageType::Notification,
            seq,
            id,
            body: payload.to_vec(),
        }
    }

    /// A request carrying `payload` (the RM calling a client; unused so far).
    pub fn request(seq: u16, id: u32, payload: &[u8]) -> OutMessage {
        OutMessage {
            kind: MessageType::Request,
            seq,
            id,
            body: payload.to_vec(),
        }
    }

    /// Request, reply or notification.
    pub fn kind(&self) -> MessageType {
        self.kind
    }

    /// The sequence number.
    pub fn seq(&self) -> u16 {
        self.seq
    }

    /// The message ID.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The body (for replies starting with the error word).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Continuation packets after the first; `None` if the body exceeds 14 616 bytes.
    pub fn fragments(&self) -> Option<u8> {
        fragments_for(self.body.len())
    }

    /// Packets the message takes (0 if it is too long to send).
    pub fn packet_count(&self) -> usize {
        self.fragments().map_or(0, |f| usize::from(f) + 1)
    }

    /// Writes packet `index` into `out` and returns its length; `None` past the last packet.
    pub fn write_packet(&self, index: usize, out: &mut [u8; PACKET_SIZE]) -> Option<usize> {
        let fragments = self.fragments()?;
        if index > usize::from(fragments) {
            return None;
        }
        let kind = if index == 0 {
            self.kind
        } else {
            MessageType::Continuation
        };
        let (head, data) = out.split_at_mut(HEADER_SIZE);
        head.copy_from_slice(&Header::new(kind, fragments, self.seq, self.id).encode());
        let start = index * MAX_PACKET_PAYLOAD;
        let chunk = self
            .body
            .get(start..self.body.len().min(start + MAX_PACKET_PAYLOAD))
            .unwrap_or(&[]);
        data.get_mut(..chunk.len())?.copy_from_slice(chunk);
        Some(HEADER_SIZE + chunk.len())
    }
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// The body exceeds 14 616 bytes (more than 62 continuations).
    TooLong {
        /// The body's length.
        len: usize,
    },
    /// The connection already holds the most messages allowed.
    QueueFull,
}

/// A message [`Conn::flush`] gave up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendFailure {
    /// Its type.
    pub kind: MessageType,
    /// Its sequence number.
    pub seq: u16,
    /// Its message ID.
    pub id: u32,
    /// The packet that failed.
    pub packet: usize,
    /// The transport's error code.
    pub code: i64,
}

/// What one [`Conn::flush`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Packets sent.
    pub packets: usize,
    /// Messages completed (last packet sent).
    pub messages: usize,
    /// The client's queue filled up: the rest waits for [`Conn::tx_ready`].
    pub blocked: bool,
    /// Messages dropped because the transport failed.
    pub failures: Vec<SendFailure>,
}

/// Counters of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets received.
    pub packets_in: u64,
    /// Packets sent.
    pub packets_out: u64,
    /// Messages completed by the reassembler.
    pub messages_in: u64,
    /// Messages fully sent.
    pub messages_out: u64,
    /// Received packets the reassembler dropped.
    pub dropped_packets: u64,
    /// Partial messages discarded (a new message started, or overflow).
    pub aborted_messages: u64,
    /// Sends that found the queue full.
    pub tx_full: u64,
    /// Messages dropped because the transport failed.
    pub tx_errors: u64,
    /// Receives that failed (other than "empty").
    pub rx_errors: u64,
    /// Messages refused by [`Conn::queue`].
    pub refused: u64,
}

/// The RM's end of one client's message-queue pair.
pub struct Conn<'a, T> {
    transport: T,
    reassembler: Reassembler<'a>,
    out: VecDeque<OutMessage>,
    /// Packets of `out.front()` already sent.
    sent: usize,
    tx_blocked: bool,
    stats: Stats,
}

impl<'a, T: Transport> Conn<'a, T> {
    /// A connection over `transport`, reassembling in `buf` (give it
    /// [`MAX_MESSAGE_SIZE`](wurley_abi::rm::MAX_MESSAGE_SIZE) bytes to accept every valid
    /// message).
    pub fn new(transport: T, buf: &'a mut [u8]) -> Self {
        Conn {
            transport,
            reassembler: Reassembler::new(buf),
            out: VecDeque::new(),
            sent: 0,
            tx_blocked: false,
            stats: Stats::default(),
        }
    }

    /// Start over on a new `transport` (the client's queues were re-created): the old
    /// transport is returned, queued messages and a partial message are dropped.
    pub fn restart(&mut self, transport: T) -> T {
        self.reassembler.reset();
        self.out.clear();
        self.sent = 0;
        self.tx_blocked = false;
        core::mem::replace(&mut self.transport, transport)
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutably.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Messages waiting to be sent, including the one in flight.
    pub fn queued(&self) -> usize {
        self.out.len()
    }

    /// Whether the last send found the client's queue full (until [`Conn::tx_ready`]).
    pub fn tx_blocked(&self) -> bool {
        self.tx_blocked
    }

    /// Whether [`Conn::flush`] has something to do now.
    pub fn can_send(&self) -> bool {
        !self.tx_blocked && !self.out.is_empty()
    }

    /// Queue `msg` behind the others, unless `limit` messages are already waiting.
    pub fn queue(&mut self, msg: OutMessage, limit: usize) -> Result<(), QueueError> {
        if msg.fragments().is_none() {
            self.stats.refused += 1;
            return Err(QueueError::TooLong {
                len: msg.body.len(),
            });
        }
        if self.out.len() >= limit {
            self.stats.refused += 1;
            return Err(QueueError::QueueFull);
        }
        self.out.push_back(msg);
        Ok(())
    }

    /// The client's queue has room again (its TX "not full" vIRQ fired).
    pub fn tx_ready(&mut self) {
        self.tx_blocked = false;
    }

    /// Send queued packets until the client's queue is full or nothing is left.
    pub fn flush(&mut self) -> FlushReport {
        let mut report = FlushReport::default();
        let mut packet = [0u8; PACKET_SIZE];
        while !self.tx_blocked {
            let Some(msg) = self.out.front() else { break };
            let Some(len) = msg.write_packet(self.sent, &mut packet) else {
                // Never queued (too long) or already complete: drop it.
                self.out.pop_front();
                self.sent = 0;
                continue;
            };
            let last = self.sent + 1 == msg.packet_count();
            let bytes = packet.get(..len).unwrap_or(&packet);
            match self.transport.send(bytes, last) {
                Ok(()) => {
                    self.stats.packets_out += 1;
                    report.packets += 1;
                    self.sent += 1;
                    if last {
                        self.out.pop_front();
                        self.sent = 0;
                        self.stats.messages_out += 1;
                        report.messages += 1;
                    }
                }
                Err(TxError::Full) => {
                    self.stats.tx_full += 1;
                    self.tx_blocked = true;
                    report.blocked = true;
                }
                Err(TxError::Other(code)) => {
                    self.stats.tx_errors += 1;
                    report.failures.push(SendFailure {
                        kind: msg.kind,
                        seq: msg.seq,
                        id: msg.id,
                        packet: self.sent,
                        code,
                    });
                    // A half-sent message is discarded by the client's reassembler when the
                    // next one starts.
                    self.out.pop_front();
                    self.sent = 0;
                }
            }
        }
        report
    }

    /// Receive one packet from the client.
    pub fn receive(&mut self, buf: &mut [u8; PACKET_SIZE]) -> Result<Option<usize>, RxError> {
        let got = self.transport.receive(buf);
        match got {
            Ok(Some(_)) => self.stats.packets_in += 1,
            Ok(None) => {}
            Err(_) => self.stats.rx_errors += 1,
        }
        got
    }

    /// See [`Transport::more_pending`].
    pub fn more_pending(&self) -> bool {
        self.transport.more_pending()
    }

    /// Feed a received packet to the reassembler.
    pub fn push<'s>(&'s mut self, packet: &'s [u8]) -> Received<'s> {
        let got = self.reassembler.push(packet);
        if got.aborted.is_some() {
            self.stats.aborted_messages += 1;
        }
        match got.event {
            wurley_abi::rm::Event::Complete(_) => self.stats.messages_in += 1,
            wurley_abi::rm::Event::Dropped(_) => self.stats.dropped_packets += 1,
            wurley_abi::rm::Event::NeedMore { .. } => {}
        }
        got
    }
}

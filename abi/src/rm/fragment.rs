//! Message framing (§7.3): the [`Splitter`] that cuts one message body into 240-byte
//! packets, and the [`Reassembler`] that puts received packets back together over a
//! caller-provided buffer. Neither allocates.
//!
//! Receive rules, as in the public RM (`src/rpc/rm-rpc.c`):
//! * a packet shorter than the header, longer than [`PACKET_SIZE`], or with a bad header
//!   (version ≠ 1, header words ≠ 2, more than 62 continuations) is dropped and changes
//!   nothing;
//! * a continuation is dropped when no message is in progress, or when its sequence number,
//!   message ID or continuation count differs from the message in progress;
//! * a non-continuation packet discards any message in progress (reported in
//!   [`Received::aborted`] so the server can log it) and starts a new one;
//! * a message is complete after its first packet plus `fragments` continuations.
//!
//! Continuations carry no index, so a duplicated continuation cannot be told from the next
//! one: it is appended, the message completes one packet early, and the packet that should
//! have ended it is then dropped as stray. Like the RM and Linux, packets need not be full:
//! every payload is appended as it comes.

use super::error::RmError;
use super::header::{
    HEADER_SIZE, Header, HeaderError, MAX_PACKET_PAYLOAD, MessageType, PACKET_SIZE,
    REPLY_ERROR_SIZE, fragments_for, split_reply,
};

/// Copies as many bytes as both slices hold; returns the count.
fn copy_prefix(dst: &mut [u8], src: &[u8]) -> usize {
    let mut n = 0;
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
        n += 1;
    }
    n
}

/// Why a message cannot be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitError {
    /// The body (including a reply's error word) exceeds [`MAX_MESSAGE_SIZE`](crate::rm::MAX_MESSAGE_SIZE), i.e. would
    /// need more than 62 continuations.
    TooLong {
        /// The body's length.
        len: usize,
    },
    /// A message cannot start with a continuation packet.
    ContinuationKind,
}

impl From<SplitError> for RmError {
    /// Both cases are malformed messages (the RM's `rm_rpc_reply` answers `MSG_INVALID`).
    fn from(_: SplitError) -> RmError {
        RmError::MsgInvalid
    }
}

/// One packet produced by a [`Splitter`].
#[derive(Clone, Copy)]
pub struct Packet {
    bytes: [u8; PACKET_SIZE],
    len: usize,
}

impl Packet {
    /// The packet's wire bytes (header plus payload).
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&self.bytes)
    }

    /// The packet's length in bytes (8..=240).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: a packet holds at least its header.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl PartialEq for Packet {
    fn eq(&self, other: &Packet) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Packet {}

impl core::fmt::Debug for Packet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Packet")
            .field("header", &Header::decode(self.as_bytes()))
            .field("len", &self.len)
            .finish()
    }
}

/// Cuts one message into packets: the first with the message's type, then `fragments`
/// continuations, each carrying up to 232 payload bytes. Iterate it for [`Packet`] values, or
/// call [`Splitter::next_into`] to write each packet into a buffer of your own.
#[derive(Debug, Clone)]
pub struct Splitter<'a> {
    kind: MessageType,
    seq: u16,
    id: u32,
    prefix: [u8; REPLY_ERROR_SIZE],
    prefix_len: usize,
    payload: &'a [u8],
    fragments: u8,
    sent: u8,
    offset: usize,
}

impl<'a> Splitter<'a> {
    /// Splits `body` as a message of type `kind`. For replies `body` must already start with
    /// the error word (or use [`Splitter::reply`]).
    pub fn new(
        kind: MessageType,
        seq: u16,
        id: u32,
        body: &'a [u8],
    ) -> Result<Splitter<'a>, SplitError> {
        Self::with_prefix(kind, seq, id, [0; REPLY_ERROR_SIZE], 0, body)
    }

    /// A request carrying `payload`.
    pub fn request(seq: u16, id: u32, payload: &'a [u8]) -> Result<Splitter<'a>, SplitError> {
        Self::new(MessageType::Request, seq, id, payload)
    }

    /// A notification carrying `payload`.
    pub fn notification(seq: u16, id: u32, payload: &'a [u8]) -> Result<Splitter<'a>, SplitError> {
        Self::new(MessageType::Notification, seq, id, payload)
    }

    /// A reply: the error word `error`, then `payload` (which may be empty: the RM's
    /// "standard reply"). `4 + payload.len()` must not exceed [`MAX_MESSAGE_SIZE`](crate::rm::MAX_MESSAGE_SIZE).
    pub fn reply(
        seq: u16,
        id: u32,
        error: RmError,
        payload: &'a [u8],
    ) -> Result<Splitter<'a>, SplitError> {
        Self::with_prefix(
            MessageType::Reply,
            seq,
            id,
            error.code().to_le_bytes(),
            REPLY_ERROR_SIZE,
            payload,
        )
    }

    fn with_prefix(
        kind: MessageType,
        seq: u16,
        id: u32,
        prefix: [u8; REPLY_ERROR_SIZE],
        prefix_len: usize,
        payload: &'a [u8],
    ) -> Result<Splitter<'a>, SplitError> {
        if kind == MessageType::Continuation {
            return Err(SplitError::ContinuationKind);
        }
        let len = payload.len().saturating_add(prefix_len);
        let fragments = fragments_for(len).ok_or(SplitError::TooLong { len })?;
        Ok(Splitter {
            kind,
            seq,
            id,
            prefix,
            prefix_len,
            payload,
            fragments,
            sent: 0,
            offset: 0,
        })
    }

    /// Continuation packets after the first (0..=62).
    pub fn fragments(&self) -> u8 {
        self.fragments
    }

    /// Total body length (a reply's error word included).
    pub fn body_len(&self) -> usize {
        self.prefix_len + self.payload.len()
    }

    /// Packets not produced yet.
    pub fn remaining(&self) -> usize {
        usize::from(self.fragments) + 1 - usize::from(self.sent)
    }

    /// Writes the next packet into `out` and returns its length, or `None` when done.
    pub fn next_into(&mut self, out: &mut [u8; PACKET_SIZE]) -> Option<usize> {
        if self.sent > self.fragments {
            return None;
        }
        let kind = if self.sent == 0 {
            self.kind
        } else {
            MessageType::Continuation
        };
        let header = Header::new(kind, self.fragments, self.seq, self.id).encode();
        let (head, data) = out.split_at_mut(HEADER_SIZE);
        head.copy_from_slice(&header);

        let chunk = (self.body_len() - self.offset).min(MAX_PACKET_PAYLOAD);
        // The body is the reply error word (if any) followed by the payload.
        for (k, d) in data.iter_mut().take(chunk).enumerate() {
            let i = self.offset + k;
            *d = match i.checked_sub(self.prefix_len) {
                None => self.prefix.get(i).copied().unwrap_or(0),
                Some(j) => self.payload.get(j).copied().unwrap_or(0),
            };
        }

        self.offset += chunk;
        self.sent += 1;
        Some(HEADER_SIZE + chunk)
    }
}

impl Iterator for Splitter<'_> {
    type Item = Packet;

    fn next(&mut self) -> Option<Packet> {
        let mut packet = Packet {
            bytes: [0; PACKET_SIZE],
            len: 0,
        };
        packet.len = self.next_into(&mut packet.bytes)?;
        Some(packet)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining(), Some(self.remaining()))
    }
}

impl ExactSizeIterator for Splitter<'_> {}

/// A complete message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'r> {
    /// Request, reply or notification (never continuation).
    pub kind: MessageType,
    /// Sequence number from the header.
    pub seq: u16,
    /// Message ID.
    pub id: u32,
    /// Continuations the message arrived in.
    pub fragments: u8,
    /// The reassembled body (for replies: error word first, see [`Message::reply`]).
    pub payload: &'r [u8],
}

impl<'r> Message<'r> {
    /// For a reply: the raw RM error word and the payload after it. `MsgInvalid` if the body
    /// is shorter than the error word.
    pub fn reply(&self) -> Result<(u32, &'r [u8]), RmError> {
        split_reply(self.payload)
    }
}

/// What is known of a message in progress (reported when it is discarded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialInfo {
    /// The message's type (from its first packet).
    pub kind: MessageType,
    /// Its sequence number.
    pub seq: u16,
    /// Its message ID.
    pub id: u32,
    /// Continuations announced.
    pub fragments: u8,
    /// Continuations received so far.
    pub received: u8,
    /// Body bytes received so far.
    pub bytes: usize,
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The header is invalid or incomplete.
    BadHeader(HeaderError),
    /// The packet is longer than a message-queue message ([`PACKET_SIZE`]).
    Oversized {
        /// The packet's length.
        len: usize,
    },
    /// A continuation arrived while no message was in progress.
    StrayContinuation {
        /// Its sequence number.
        seq: u16,
        /// Its message ID.
        id: u32,
    },
    /// A continuation whose sequence number, ID or continuation count differs from the
    /// message in progress (which is kept).
    Mismatch {
        /// The message in progress.
        expected: PartialInfo,
        /// The continuation's header.
        got: Header,
    },
    /// The reassembly buffer cannot hold the message; any message in progress is discarded
    /// (and reported in [`Received::aborted`]).
    Overflow {
        /// The buffer's size.
        capacity: usize,
        /// The bytes the message would have needed so far.
        needed: usize,
    },
}

/// The outcome of one packet for the message it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'r> {
    /// The packet completed a message.
    Complete(Message<'r>),
    /// The packet was accepted; `remaining` continuations are still due.
    NeedMore {
        /// Continuations still expected.
        remaining: u8,
    },
    /// The packet was dropped.
    Dropped(DropReason),
}

/// Everything one packet did: the event, and the message in progress it discarded, if any
/// (a new request/reply/notification aborting a partial one, or an overflow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Received<'r> {
    /// The partial message this packet discarded.
    pub aborted: Option<PartialInfo>,
    /// What happened to the packet.
    pub event: Event<'r>,
}

impl<'r> Received<'r> {
    fn dropped(reason: DropReason) -> Received<'r> {
        Received {
            aborted: None,
            event: Event::Dropped(reason),
        }
    }

    /// The completed message, if this packet completed one.
    pub fn message(&self) -> Option<Message<'r>> {
        match self.event {
            Event::Complete(m) => Some(m),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Partial {
    kind: MessageType,
    seq: u16,
    id: u32,
    fragments: u8,
    received: u8,
    len: usize,
}

impl Partial {
    fn info(&self) -> PartialInfo {
        PartialInfo {
            kind: self.kind,
            seq: self.seq,
            id: self.id,
            fragments: self.fragments,
            received: self.received,
            bytes: self.len,
        }
    }
}

/// Reassembles packets into messages in a caller-provided buffer. A buffer of
/// [`MAX_MESSAGE_SIZE`](crate::rm::MAX_MESSAGE_SIZE) bytes holds any valid message; a smaller one drops longer messages
/// with [`DropReason::Overflow`]. Single-packet messages are returned straight from the
/// packet, without copying.
#[derive(Debug)]
pub struct Reassembler<'a> {
    buf: &'a mut [u8],
    partial: Option<Partial>,
}

impl<'a> Reassembler<'a> {
    /// A reassembler using `buf` for multi-packet messages.
    pub fn new(buf: &'a mut [u8]) -> Reassembler<'a> {
        Reassembler { buf, partial: None }
    }

    /// The message in progress, if any.
    pub fn in_progress(&self) -> Option<PartialInfo> {
        self.partial.map(|p| p.info())
    }

    /// Discards the message in progress and returns what it was.
    pub fn reset(&mut self) -> Option<PartialInfo> {
        self.partial.take().map(|p| p.info())
    }

    /// Feeds one received packet. The returned message borrows the reassembler's buffer or
    /// the packet, so it must be handled before the next call.
    pub fn push<'s>(&'s mut self, packet: &'s [u8]) -> Received<'s> {
        if packet.len() > PACKET_SIZE {
            return Received::dropped(DropReason::Oversized { len: packet.len() });
        }
        let header = match Header::decode(packet) {
            Ok(h) => h,
            Err(e) => return Received::dropped(DropReason::BadHeader(e)),
        };
        let payload = packet.get(HEADER_SIZE..).unwrap_or(&[]);
        if header.kind == MessageType::Continuation {
            self.continuation(header, payload)
        } else {
            self.start(header, payload)
        }
    }

    fn start<'s>(&'s mut self, header: Header, payload: &'s [u8]) -> Received<'s> {
        let aborted = self.reset();
        if header.fragments == 0 {
            return Received {
                aborted,
                event: Event::Complete(Message {
                    kind: header.kind,
                    seq: header.seq,
                    id: header.id,
                    fragments: 0,
                    payload,
                }),
            };
        }
        let Some(dst) = self.buf.get_mut(..payload.len()) else {
            return Received {
                aborted,
                event: Event::Dropped(DropReason::Overflow {
                    capacity: self.buf.len(),
                    needed: payload.len(),
                }),
            };
        };
        copy_prefix(dst, payload);
        self.partial = Some(Partial {
            kind: header.kind,
            seq: header.seq,
            id: header.id,
            fragments: header.fragments,
            received: 0,
            len: payload.len(),
        });
        Received {
            aborted,
            event: Event::NeedMore {
                remaining: header.fragments,
            },
        }
    }

    fn continuation<'s>(&'s mut self, header: Header, payload: &[u8]) -> Received<'s> {
        let Some(mut p) = self.partial else {
            return Received::dropped(DropReason::StrayContinuation {
                seq: header.seq,
                id: header.id,
            });
        };
        if (p.seq, p.id, p.fragments) != (header.seq, header.id, header.fragments) {
            return Received::dropped(DropReason::Mismatch {
                expected: p.info(),
                got: header,
            });
        }
        let end = p.len + payload.len();
        let Some(dst) = self.buf.get_mut(p.len..end) else {
            return Received {
                aborted: self.reset(),
                event: Event::Dropped(DropReason::Overflow {
                    capacity: self.buf.len(),
                    needed: end,
                }),
            };
        };
        copy_prefix(dst, payload);
        p.len = end;
        p.received += 1;
        if p.received < p.fragments {
            self.partial = Some(p);
            return Received {
                aborted: None,
                event: Event::NeedMore {
                    remaining: p.fragments - p.received,
                },
            };
        }
        self.partial = None;
        let buf: &'s [u8] = self.buf;
        Received {
            aborted: None,
            event: Event::Complete(Message {
                kind: p.kind,
                seq: p.seq,
                id: p.id,
                fragments: p.fragments,
                payload: buf.get(..end).unwrap_or(&[]),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;

    use crate::rm::header::MAX_MESSAGE_SIZE;
    use crate::rm::wire::test_util::XorShift;
    use std::vec::Vec;

    fn body(len: usize, salt: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ salt)
            .collect()
    }

    fn packets(s: Splitter<'_>) -> Vec<Vec<u8>> {
        s.map(|p| p.as_bytes().to_vec()).collect()
    }

    /// Feeds all packets; every one but the last must be NeedMore, the last Complete.
    fn reassemble_all(
        r: &mut Reassembler<'_>,
        pkts: &[Vec<u8>],
    ) -> (MessageType, u16, u32, Vec<u8>) {
        let (last, init) = pkts.split_last().expect("packets");
        for (i, p) in init.iter().enumerate() {
            let got = r.push(p);
            assert_eq!(got.aborted, None);
            assert_eq!(
                got.event,
                Event::NeedMore {
                    remaining: (init.len() - i) as u8
                }
            );
        }
        let got = r.push(last);
        assert_eq!(got.aborted, None);
        let m = got.message().expect("complete");
        assert_eq!(usize::from(m.fragments), pkts.len() - 1);
        (m.kind, m.seq, m.id, m.payload.to_vec())
    }

    #[test]
    fn boundary_sizes_round_trip() {
        let mut buf = [0u8; MAX_MESSAGE_SIZE];
        let mut r = Reassembler::new(&mut buf);
        for (len, npackets) in [
            (0, 1),
            (1, 1),
            (231, 1),
            (232, 1),
            (233, 2),
            (464, 2),
            (465, 3),
        ] {
            let data = body(len, 7);
            let s = Splitter::request(9, 0x5600_0009, &data).expect("split");
            assert_eq!(s.len(), npackets, "len {len}");
            let pkts = packets(s);
            assert_eq!(pkts.len(), npackets);
            for (i, p) in pkts.iter().enumerate() {
                assert!(p.len() <= PACKET_SIZE);
                let h = Header::decode(p).expect("header");
                assert_eq!(h.fragments as usize, npackets - 1);
                let want = if i == 0 {
                    MessageType::Request
                } else {
                    MessageType::Continuation
                };
                assert_eq!(h.kind, want);
                assert_eq!((h.seq, h.id), (9, 0x5600_0009));
                if i + 1 < npackets {
                    assert_eq!(p.len(), PACKET_SIZE, "non-final packets are full");
                }
            }
            let (kind, seq, id, got) = reassemble_all(&mut r, &pkts);
            assert_eq!((kind, seq, id), (MessageType::Request, 9, 0x5600_0009));
            assert_eq!(got, data, "len {len}");
            assert_eq!(r.in_progress(), None);
        }
    }

    #[test]
    fn maximum_message_is_62_continuations() {
        let data = body(MAX_MESSAGE_SIZE, 1);
        let s = Splitter::notification(3, 0x5610_0001, &data).expect("split");
        assert_eq!(s.fragments(), 62);
        let pkts = packets(s);
        assert_eq!(pkts.len(), 63);
        let mut buf = [0u8; MAX_MESSAGE_SIZE];
        let mut r = Reassembler::new(&mut buf);
        let (kind, _, _, got) = reassemble_all(&mut r, &pkts);
        assert_eq!(kind, MessageType::Notification);
        assert_eq!(got, data);
    }

    #[test]
    fn sixty_three_continuations_are_rejected() {
        let data = body(MAX_MESSAGE_SIZE + 1, 1);
        assert_eq!(
            Splitter::request(0, 1, &data).err(),
            Some(SplitError::TooLong {
                len: MAX_MESSAGE_SIZE + 1
            })
        );
        // A reply's error word counts.
        let data = body(MAX_MESSAGE_SIZE - 3, 1);
        assert_eq!(
            Splitter::reply(0, 1, RmError::Ok, &data).err(),
            Some(SplitError::TooLong {
                len: MAX_MESSAGE_SIZE + 1
            })
        );
        assert_eq!(
            RmError::from(SplitError::ContinuationKind),
            RmError::MsgInvalid
        );
        assert_eq!(
            Splitter::new(MessageType::Continuation, 0, 1, &[]).err(),
            Some(SplitError::ContinuationKind)
        );

        // On receive, a header announcing 63 continuations is dropped and changes nothing.
        let mut buf = [0u8; MAX_MESSAGE_SIZE];
        let mut r = Reassembler::new(&mut buf);
        let first = packets(Splitter::request(5, 6, &body(300, 0)).expect("split"));
        assert!(matches!(
            r.push(&first[0]).event,
            Event::NeedMore { remaining: 1 }
        ));
        let mut bad = Header::new(MessageType::Request, 63, 1, 2)
            .encode()
            .to_vec();
        bad.extend_from_slice(&[0; 232]);
        assert_eq!(
            r.push(&bad),
            Received {
                aborted: None,
                event: Event::Dropped(DropReason::BadHeader(HeaderError::TooManyFragments(63)))
            }
        );
        let cont = Header::new(MessageType::Continuation, 63, 5, 6).encode();
        assert!(matches!(
            r.push(&cont).event,
            Event::Dropped(DropReason::BadHeader(HeaderError::TooManyFragments(63)))
        ));
        assert_eq!(r.in_progress().map(|p| p.id), Some(6));
        assert!(r.push(&first[1]).message().is_some());
    }

    #[test]
    fn replies_carry_the_error_word() {
        let payload = body(500, 3);
        let s = Splitter::reply(77, 0x5600_0020, RmError::Ok, &payload).expect("split");
        assert_eq!(s.body_len(), 504);
        assert_eq!(s.fragments(), 2);
        let pkts = packets(s);
        assert_eq!(pkts[0][8..12], [0, 0, 0, 0]);
        let mut buf = [0u8; 1024];
        let mut r = Reassembler::new(&mut buf);
        let (kind, seq, _, got) = reassemble_all(&mut r, &pkts);
        assert_eq!((kind, seq), (MessageType::Reply, 77));
        assert_eq!(split_reply(&got), Ok((0, &payload[..])));

        // Standard reply: just the error word.
        let pkts = packets(Splitter::reply(1, 2, RmError::Unimplemented, &[]).expect("split"));
        assert_eq!(pkts.len(), 1);
        let got = r.push(&pkts[0]).message().expect("complete");
        assert_eq!(got.reply(), Ok((0xFFFF_FFFF, &[][..])));

        // The error word counts towards the first packet: 4 + 228 bytes fill it exactly.
        let payload = body(228, 9);
        let pkts = packets(Splitter::reply(1, 2, RmError::Busy, &payload).expect("split"));
        assert_eq!(pkts.len(), 1);
        assert_eq!(pkts[0].len(), PACKET_SIZE);
        let payload = body(229, 9);
        let pkts = packets(Splitter::reply(1, 2, RmError::Busy, &payload).expect("split"));
        assert_eq!(pkts.len(), 2);
        let (_, _, _, got) = reassemble_all(&mut r, &pkts);
        assert_eq!(split_reply(&got), Ok((5, &payload[..])));
    }

    #[test]
    fn next_into_writes_caller_buffers() {
        let data = body(300, 4);
        let mut s = Splitter::request(1, 2, &data).expect("split");
        let mut out = [0u8; PACKET_SIZE];
        assert_eq!(s.next_into(&mut out), Some(PACKET_SIZE));
        assert_eq!(&out[8..], &data[..232]);
        assert_eq!(s.remaining(), 1);
        assert_eq!(s.next_into(&mut out), Some(8 + 68));
        assert_eq!(&out[8..76], &data[232..]);
        assert_eq!(s.next_into(&mut out), None);
        assert_eq!(s.next(), None);
    }

    #[test]
    fn truncated_packets_are_dropped() {
        let mut buf = [0u8; 1024];
        let mut r = Reassembler::new(&mut buf);
        let pkts = packets(Splitter::request(1, 2, &body(400, 0)).expect("split"));
        assert!(matches!(
            r.push(&pkts[0]).event,
            Event::NeedMore { remaining: 1 }
        ));
        for len in 0..HEADER_SIZE {
            assert_eq!(
                r.push(&pkts[1][..len]),
                Received {
                    aborted: None,
                    event: Event::Dropped(DropReason::BadHeader(HeaderError::TooShort { len }))
                }
            );
        }
        // The partial message survived.
        assert_eq!(r.in_progress().map(|p| p.received), Some(0));
        let oversized = [0x21u8; PACKET_SIZE + 1];
        assert_eq!(
            r.push(&oversized).event,
            Event::Dropped(DropReason::Oversized {
                len: PACKET_SIZE + 1
            })
        );
        assert_eq!(
            r.push(&pkts[1]).message().map(|m| m.payload.len()),
            Some(400)
        );
    }

    #[test]
    fn header_only_continuation_counts() {
        // A short (even empty) continuation is appended as it is, as the RM and Linux do.
        let mut buf = [0u8; 1024];
        let mut r = Reassembler::new(&mut buf);
        let mut first = Header::new(MessageType::Request, 2, 4, 5).encode().to_vec();
        first.extend_from_slice(b"abc");
        let mut cont = Header::new(MessageType::Continuation, 2, 4, 5)
            .encode()
            .to_vec();
        assert_eq!(r.push(&first).event, Event::NeedMore { remaining: 2 });
        assert_eq!(r.push(&cont).event, Event::NeedMore { remaining: 1 });
        cont.extend_from_slice(b"de");
        let m = r.push(&cont).message().expect("complete");
        assert_eq!(m.payload, b"abcde");
        assert_eq!(m.fragments, 2);
    }

    #[test]
    fn bad_version_and_header_words_are_dropped() {
        let mut buf = [0u8; 1024];
        let mut r = Reassembler::new(&mut buf);
        let pkts = packets(Splitter::request(1, 2, &body(300, 0)).expect("split"));
        assert!(matches!(r.push(&pkts[0]).event, Event::NeedMore { .. }));
        for (byte0, reason) in [
            (0x20, HeaderError::BadVersion(0)),
            (0x22, HeaderError::BadVersion(2)),
            (0x2F, HeaderError::BadVersion(15)),
            (0x11, HeaderError::BadHeaderWords(1)),
            (0x31, HeaderError::BadHeaderWords(3)),
            (0xF1, HeaderError::BadHeaderWords(15)),
        ] {
            for p in &pkts {
                let mut bad = p.clone();
                bad[0] = byte0;
                assert_eq!(
                    r.push(&bad),
                    Received {
                        aborted: None,
                        event: Event::Dropped(DropReason::BadHeader(reason))
                    }
                );
            }
        }
        assert_eq!(
            r.push(&pkts[1]).message().map(|m| m.payload.len()),
            Some(300)
        );
    }

    #[test]
    fn stray_and_mismatched_continuations_are_dropped() {
        let mut buf = [0u8; 2048];
        let mut r = Reassembler::new(&mut buf);
        let pkts = packets(Splitter::request(10, 0x5100_0012, &body(700, 2)).expect("split"));
        assert_eq!(pkts.len(), 4);

        // Nothing in progress: every continuation is stray.
        for p in &pkts[1..] {
            assert_eq!(
                r.push(p),
                Received {
                    aborted: None,
                    event: Event::Dropped(DropReason::StrayContinuation {
                        seq: 10,
                        id: 0x5100_0012
                    })
                }
            );
        }

        assert_eq!(r.push(&pkts[0]).event, Event::NeedMore { remaining: 3 });
        let expected = r.in_progress().expect("partial");
        // Wrong sequence number, wrong ID, wrong continuation count.
        for h in [
            Header::new(MessageType::Continuation, 3, 11, 0x5100_0012),
            Header::new(MessageType::Continuation, 3, 10, 0x5100_0013),
            Header::new(MessageType::Continuation, 2, 10, 0x5100_0012),
        ] {
            let mut bad = h.encode().to_vec();
            bad.extend_from_slice(&pkts[1][8..]);
            assert_eq!(
                r.push(&bad),
                Received {
                    aborted: None,
                    event: Event::Dropped(DropReason::Mismatch { expected, got: h })
                }
            );
        }
        assert_eq!(r.in_progress(), Some(expected));
        assert_eq!(r.push(&pkts[1]).event, Event::NeedMore { remaining: 2 });
        assert_eq!(r.push(&pkts[2]).event, Event::NeedMore { remaining: 1 });
        assert_eq!(
            r.push(&pkts[3]).message().map(|m| m.payload.to_vec()),
            Some(body(700, 2))
        );
        // After completion, a repeated last continuation is stray.
        assert!(matches!(
            r.push(&pkts[3]).event,
            Event::Dropped(DropReason::StrayContinuation { .. })
        ));
    }

    #[test]
    fn duplicate_continuation_completes_early() {
        // Continuations carry no index: a duplicate is taken for the next one, the message
        // completes one packet early, and the real last packet is then stray.
        let mut buf = [0u8; 2048];
        let mut r = Reassembler::new(&mut buf);
        let data = body(600, 5);
        let pkts = packets(Splitter::request(1, 2, &data).expect("split"));
        assert_eq!(pkts.len(), 3);
        assert!(matches!(
            r.push(&pkts[0]).event,
            Event::NeedMore { remaining: 2 }
        ));
        assert!(matches!(
            r.push(&pkts[1]).event,
            Event::NeedMore { remaining: 1 }
        ));
        let m = r.push(&pkts[1]).message().expect("complete");
        assert_eq!(m.payload.len(), 3 * 232);
        assert_ne!(m.payload, &data[..]);
        assert!(matches!(
            r.push(&pkts[2]).event,
            Event::Dropped(DropReason::StrayContinuation { .. })
        ));
    }

    #[test]
    fn new_message_aborts_a_partial_one() {
        let mut buf = [0u8; 2048];
        let mut r = Reassembler::new(&mut buf);
        let a = packets(Splitter::request(1, 0x5600_0001, &body(600, 1)).expect("split"));
        let b = packets(Splitter::request(2, 0x5600_0004, &body(300, 2)).expect("split"));
        let c = packets(Splitter::notification(3, 0x5610_0008, &body(8, 3)).expect("split"));
        assert!(matches!(
            r.push(&a[0]).event,
            Event::NeedMore { remaining: 2 }
        ));
        assert!(matches!(
            r.push(&a[1]).event,
            Event::NeedMore { remaining: 1 }
        ));

        // B's first packet discards A and starts B.
        let got = r.push(&b[0]);
        assert_eq!(
            got.aborted,
            Some(PartialInfo {
                kind: MessageType::Request,
                seq: 1,
                id: 0x5600_0001,
                fragments: 2,
                received: 1,
                bytes: 464,
            })
        );
        assert_eq!(got.event, Event::NeedMore { remaining: 1 });
        // A's last continuation no longer matches.
        assert!(matches!(
            r.push(&a[2]).event,
            Event::Dropped(DropReason::Mismatch { .. })
        ));
        // A single-packet notification aborts B and completes at once.
        let got = r.push(&c[0]);
        assert_eq!(got.aborted.map(|p| (p.seq, p.received)), Some((2, 0)));
        assert_eq!(
            got.message().map(|m| (m.kind, m.id, m.payload.to_vec())),
            Some((MessageType::Notification, 0x5610_0008, body(8, 3)))
        );
        assert!(matches!(
            r.push(&b[1]).event,
            Event::Dropped(DropReason::StrayContinuation { .. })
        ));
        // B from the start still works.
        let (_, seq, _, got) = reassemble_all(&mut r, &b);
        assert_eq!((seq, got), (2, body(300, 2)));
    }

    #[test]
    fn small_buffers_overflow_cleanly() {
        let mut buf = [0u8; 300];
        let mut r = Reassembler::new(&mut buf);
        let pkts = packets(Splitter::request(1, 2, &body(500, 0)).expect("split"));
        assert!(matches!(r.push(&pkts[0]).event, Event::NeedMore { .. }));
        let got = r.push(&pkts[1]);
        assert_eq!(got.aborted.map(|p| p.bytes), Some(232));
        assert_eq!(
            got.event,
            Event::Dropped(DropReason::Overflow {
                capacity: 300,
                needed: 464
            })
        );
        assert_eq!(r.in_progress(), None);
        // A message that fits still does.
        let pkts = packets(Splitter::request(1, 2, &body(290, 0)).expect("split"));
        let (_, _, _, got) = reassemble_all(&mut r, &pkts);
        assert_eq!(got, body(290, 0));

        let mut tiny = [0u8; 10];
        let mut r = Reassembler::new(&mut tiny);
        let pkts = packets(Splitter::request(1, 2, &body(300, 0)).expect("split"));
        assert_eq!(
            r.push(&pkts[0]).event,
            Event::Dropped(DropReason::Overflow {
                capacity: 10,
                needed: 232
            })
        );
        // Single packets need no buffer at all.
        let pkts = packets(Splitter::request(1, 2, &body(200, 0)).expect("split"));
        assert_eq!(
            r.push(&pkts[0]).message().map(|m| m.payload.len()),
            Some(200)
        );
    }

    #[test]
    fn randomized_split_and_reassemble() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut buf = [0u8; MAX_MESSAGE_SIZE];
        let mut r = Reassembler::new(&mut buf);
        let mut data = std::vec![0u8; MAX_MESSAGE_SIZE];
        for round in 0..400 {
            // Bias towards packet boundaries.
            let len = match rng.below(4) {
                0 => rng.below(MAX_MESSAGE_SIZE + 1),
                1 => (rng.below(63) * MAX_PACKET_PAYLOAD + rng.below(3)).min(MAX_MESSAGE_SIZE),
                2 => rng.below(3 * MAX_PACKET_PAYLOAD),
                _ => MAX_MESSAGE_SIZE - rng.below(5),
            };
            let msg = &mut data[..len];
            rng.fill(msg);
            let seq = rng.next() as u16;
            let id = rng.next() as u32;
            let kind = match rng.below(3) {
                0 => MessageType::Request,
                1 => MessageType::Reply,
                _ => MessageType::Notification,
            };
            let s = Splitter::new(kind, seq, id, msg).expect("split");
            assert_eq!(Some(s.fragments()), fragments_for(len));
            let pkts = packets(s);
            // Sometimes interleave garbage that must not disturb the message.
            let mut noise = [0u8; 300];
            for (i, p) in pkts.iter().enumerate() {
                if i > 0 && rng.below(4) == 0 {
                    let n = rng.below(noise.len());
                    rng.fill(&mut noise[..n]);
                    // Garbage that happens to look like a new message would (correctly)
                    // abort; keep only garbage that cannot.
                    if n >= HEADER_SIZE
                        && matches!(Header::decode(&noise[..n]), Ok(h) if h.kind != MessageType::Continuation)
                    {
                        noise[0] = 0x20;
                    }
                    let got = r.push(&noise[..n]);
                    assert_eq!(got.aborted, None, "round {round}");
                    assert!(matches!(got.event, Event::Dropped(_)), "round {round}");
                }
                let got = r.push(p);
                assert_eq!(got.aborted, None);
                if i + 1 < pkts.len() {
                    assert_eq!(
                        got.event,
                        Event::NeedMore {
                            remaining: (pkts.len() - 1 - i) as u8
                        }
                    );
                } else {
                    let m = got.message().expect("complete");
                    assert_eq!((m.kind, m.seq, m.id), (kind, seq, id));
                    assert_eq!(m.payload, &data[..len], "round {round} len {len}");
                }
            }
        }
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
        let mut buf = [0u8; 1000];
        let mut r = Reassembler::new(&mut buf);
        let mut pkt = [0u8; 260];
        let mut completes = 0;
        for _ in 0..200_000 {
            let n = rng.below(pkt.len() + 1);
            rng.fill(&mut pkt[..n]);
            // Make a good share of headers valid so deeper paths are exercised.
            if n > 0 && rng.below(2) == 0 {
                pkt[0] = 0x21;
            }
            if n > 1 && rng.below(2) == 0 {
                pkt[1] = (pkt[1] & 0x0F) | (rng.below(2) as u8) << 2;
            }
            if n > 3 && rng.below(2) == 0 {
                pkt[2] = 0;
                pkt[3] = 0;
            }
            if n > 7 && rng.below(2) == 0 {
                pkt[4..8].copy_from_slice(&[1, 0, 0, 0x56]);
            }
            let got = r.push(&pkt[..n]);
            if let Some(m) = got.message() {
                completes += 1;
                assert!(m.payload.len() <= MAX_MESSAGE_SIZE);
                let _ = m.reply();
            }
        }
        assert!(completes > 1000);
    }
}

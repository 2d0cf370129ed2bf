//! The 8-byte RM RPC packet header (§7.2), the transport's size limits (§7.1, §7.3) and the
//! error word that opens every reply.
//!
//! ```text
//! byte 0   bits 3:0 API version (1), bits 7:4 header words (2)  -> always 0x21
//! byte 1   bits 1:0 message type, bits 7:2 continuation count (0..=62)
//! 2..=3    sequence number (u16 LE)
//! 4..=7    message ID (u32 LE)
//! ```

use super::error::RmError;

/// Size of one message-queue message, i.e. of the largest packet.
pub const PACKET_SIZE: usize = 240;

/// Size of the packet header.
pub const HEADER_SIZE: usize = 8;

/// Payload bytes one packet can carry (`240 - 8`).
pub const MAX_PACKET_PAYLOAD: usize = PACKET_SIZE - HEADER_SIZE;

/// Most continuation packets one message may have (the RM's limit).
pub const MAX_CONTINUATIONS: u8 = 62;

/// Largest message body: 63 packets of 232 bytes = 14 616 bytes. For replies this includes the
/// 4-byte error word.
pub const MAX_MESSAGE_SIZE: usize = (MAX_CONTINUATIONS as usize + 1) * MAX_PACKET_PAYLOAD;

/// Largest request Linux sends: it refuses anything above 62 × 232 = 14 384 bytes.
pub const LINUX_MAX_MESSAGE_SIZE: usize = MAX_CONTINUATIONS as usize * MAX_PACKET_PAYLOAD;

/// The only API version.
pub const API_VERSION: u8 = 1;

/// Header size in 32-bit words.
pub const HEADER_WORDS: u8 = 2;

/// Byte 0 of every valid header: `API_VERSION | HEADER_WORDS << 4`.
pub const HEADER_BYTE0: u8 = API_VERSION | (HEADER_WORDS << 4);

/// Size of the RM error word at the start of a reply body.
pub const REPLY_ERROR_SIZE: usize = 4;

/// Number of continuation packets a body of `len` bytes needs: `ceil(len / 232) - 1`, `0` for
/// an empty body; `None` when it exceeds [`MAX_CONTINUATIONS`].
pub const fn fragments_for(len: usize) -> Option<u8> {
    if len > MAX_MESSAGE_SIZE {
        None
    } else if len == 0 {
        Some(0)
    } else {
        Some((len.div_ceil(MAX_PACKET_PAYLOAD) - 1) as u8)
    }
}

/// The packet type in header byte 1, bits 1:0. All four 2-bit values are defined, so no
/// header can carry an unknown type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// A follow-on packet of a fragmented message.
    Continuation = 0,
    /// A request (client to RM, or RM to a client it calls).
    Request = 1,
    /// A reply; its body starts with the RM error word.
    Reply = 2,
    /// A notification (no reply expected; Linux ignores its sequence number).
    Notification = 3,
}

impl MessageType {
    /// Decodes the low two bits of `bits`.
    pub const fn from_bits(bits: u8) -> MessageType {
        match bits & 0b11 {
            0 => MessageType::Continuation,
            1 => MessageType::Request,
            2 => MessageType::Reply,
            _ => MessageType::Notification,
        }
    }

    /// The 2-bit wire value.
    pub const fn bits(self) -> u8 {
        self as u8
    }
}

/// Why a header was rejected; the packet is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// The packet is shorter than the 8-byte header.
    TooShort {
        /// The packet's length.
        len: usize,
    },
    /// API version is not 1.
    BadVersion(u8),
    /// Header-words field is not 2.
    BadHeaderWords(u8),
    /// More than [`MAX_CONTINUATIONS`] continuations announced.
    TooManyFragments(u8),
}

/// A decoded packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Packet type.
    pub kind: MessageType,
    /// Continuations of the message (the same in its first packet and every continuation).
    pub fragments: u8,
    /// Sequence number: chosen by the requester, echoed in the reply.
    pub seq: u16,
    /// Message ID (see [`crate::rm::ids`]).
    pub id: u32,
}

impl Header {
    /// A header with the given fields.
    pub const fn new(kind: MessageType, fragments: u8, seq: u16, id: u32) -> Header {
        Header {
            kind,
            fragments,
            seq,
            id,
        }
    }

    /// The 8 wire bytes. `fragments` is truncated to its 6 bits; values above
    /// [`MAX_CONTINUATIONS`] produce a header receivers drop (useful in tests only).
    pub const fn encode(&self) -> [u8; HEADER_SIZE] {
        let seq = self.seq.to_le_bytes();
        let id = self.id.to_le_bytes();
        [
            HEADER_BYTE0,
            self.kind.bits() | ((self.fragments & 0x3F) << 2),
            seq[0],
            seq[1],
            id[0],
            id[1],
            id[2],
            id[3],
        ]
    }

    /// Parses and validates the header at the start of `packet` (the payload that follows is
    /// not looked at).
    pub const fn decode(packet: &[u8]) -> Result<Header, HeaderError> {
        let Some(&[b0, b1, s0, s1, i0, i1, i2, i3]) = packet.first_chunk::<HEADER_SIZE>() else {
            return Err(HeaderError::TooShort { len: packet.len() });
        };
        let version = b0 & 0xF;
        let words = b0 >> 4;
        let fragments = b1 >> 2;
        if version != API_VERSION {
            Err(HeaderError::BadVersion(version))
        } else if words != HEADER_WORDS {
            Err(HeaderError::BadHeaderWords(words))
        } else if fragments > MAX_CONTINUATIONS {
            Err(HeaderError::TooManyFragments(fragments))
        } else {
            Ok(Header {
                kind: MessageType::from_bits(b1),
                fragments,
                seq: u16::from_le_bytes([s0, s1]),
                id: u32::from_le_bytes([i0, i1, i2, i3]),
            })
        }
    }
}

/// Splits a reassembled reply body into its RM error word and the payload after it.
/// `MsgInvalid` when the body is shorter than the error word. The word is returned raw
/// ([`RmError::from_code`] decodes the known values).
pub fn split_reply(body: &[u8]) -> Result<(u32, &[u8]), RmError> {
    match body.split_first_chunk::<REPLY_ERROR_SIZE>() {
        Some((word, payload)) => Ok((u32::from_le_bytes(*word), payload)),
        None => Err(RmError::MsgInvalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(MAX_PACKET_PAYLOAD, 232);
        assert_eq!(MAX_MESSAGE_SIZE, 14_616);
        assert_eq!(LINUX_MAX_MESSAGE_SIZE, 14_384);
        assert_eq!(HEADER_BYTE0, 0x21);
    }

    #[test]
    fn fragment_counts() {
        assert_eq!(fragments_for(0), Some(0));
        assert_eq!(fragments_for(1), Some(0));
        assert_eq!(fragments_for(231), Some(0));
        assert_eq!(fragments_for(232), Some(0));
        assert_eq!(fragments_for(233), Some(1));
        assert_eq!(fragments_for(464), Some(1));
        assert_eq!(fragments_for(465), Some(2));
        assert_eq!(fragments_for(14_616), Some(62));
        assert_eq!(fragments_for(14_617), None);
    }

    #[test]
    fn header_round_trip() {
        for kind in [
            MessageType::Continuation,
            MessageType::Request,
            MessageType::Reply,
            MessageType::Notification,
        ] {
            for fragments in [0, 1, 61, 62] {
                let h = Header::new(kind, fragments, 0xBEEF, 0x5600_0031);
                let bytes = h.encode();
                assert_eq!(bytes[0], 0x21);
                assert_eq!(bytes[1], kind.bits() | fragments << 2);
                assert_eq!(bytes[2..4], [0xEF, 0xBE]);
                assert_eq!(bytes[4..8], [0x31, 0x00, 0x00, 0x56]);
                assert_eq!(Header::decode(&bytes), Ok(h));
                assert_eq!(MessageType::from_bits(kind.bits()), kind);
            }
        }
    }

    #[test]
    fn header_rejections() {
        let good = Header::new(MessageType::Request, 0, 1, 2).encode();
        for len in 0..HEADER_SIZE {
            assert_eq!(
                Header::decode(&good[..len]),
                Err(HeaderError::TooShort { len })
            );
        }
        let mut bad = good;
        bad[0] = 0x22;
        assert_eq!(Header::decode(&bad), Err(HeaderError::BadVersion(2)));
        bad[0] = 0x31;
        assert_eq!(Header::decode(&bad), Err(HeaderError::BadHeaderWords(3)));
        bad[0] = 0x01;
        assert_eq!(Header::decode(&bad), Err(HeaderError::BadHeaderWords(0)));
        let mut bad = good;
        bad[1] = 1 | 63 << 2;
        assert_eq!(Header::decode(&bad), Err(HeaderError::TooManyFragments(63)));
        assert_eq!(
            Header::decode(&Header::new(MessageType::Request, 63, 0, 0).encode()),
            Err(HeaderError::TooManyFragments(63))
        );
    }

    #[test]
    fn reply_error_word() {
        assert_eq!(split_reply(&[4, 0, 0, 0]), Ok((4, &[][..])));
        assert_eq!(split_reply(&[0, 0, 0, 0, 9, 8]), Ok((0, &[9, 8][..])));
        assert_eq!(
            split_reply(&[0xFF; 4]).map(|(c, _)| RmError::from_code(c)),
            Ok(Some(RmError::Unimplemented))
        );
        assert_eq!(split_reply(&[0, 0, 0]), Err(RmError::MsgInvalid));
    }
}

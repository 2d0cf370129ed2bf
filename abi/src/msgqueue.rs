//! Message-queue argument layouts: `msgqueue_configure`'s create-info word, the send flags, and
//! the special threshold and holdoff values of `msgqueue_configure_send/_receive`.

use crate::Error;

/// The deepest queue: depth is `1..=MAX_DEPTH` (Gunyah: `< MSGQUEUE_MAX_QUEUE_DEPTH = 256`).
pub const MAX_DEPTH: u32 = 255;

/// The largest message: size is `1..=MAX_MSG_SIZE` (Gunyah: `< MSGQUEUE_MAX_MAX_MSG_SIZE = 1024`).
pub const MAX_MSG_SIZE: usize = 1023;

/// Threshold argument meaning "leave the threshold unchanged" (`count_t` −1; only the low 32
/// bits of the register are compared).
pub const THRESHOLD_UNCHANGED: u64 = u64::MAX;

/// Not-empty threshold argument meaning "the queue depth" (`count_t` −2; low 32 bits compared).
pub const THRESHOLD_MAXIMUM: u64 = u64::MAX - 1;

/// The only holdoff (delay) argument accepted: `count_t` −1, "unchanged" (low 32 bits compared).
/// Any other holdoff is `UNIMPLEMENTED`, as in Gunyah.
pub const HOLDOFF_UNCHANGED: u64 = u64::MAX;

/// `msgqueue_send` flag: assert the receiver's vIRQ whatever the not-empty threshold.
pub const SEND_FLAG_PUSH: u64 = 1;

/// The create-info word of `msgqueue_configure`: bits 15:0 depth, 31:16 max size, rest
/// reserved (callers should pass 0; Gunyah does not check them, nor does [`CreateInfo::decode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateInfo {
    /// Queue depth in messages (valid `1..=MAX_DEPTH`).
    pub depth: u32,
    /// Largest message in bytes (valid `1..=MAX_MSG_SIZE`).
    pub max_msg_size: usize,
}

impl CreateInfo {
    /// Extract the two fields from the register. Ranges are not checked here but by
    /// the hypervisor's configure step, after the caller's object-state check, in Gunyah's order; so this
    /// never fails today (the `Result` leaves room for a stricter ABI revision).
    pub fn decode(raw: u64) -> Result<CreateInfo, Error> {
        Ok(CreateInfo {
            depth: (raw & 0xFFFF) as u32,
            max_msg_size: ((raw >> 16) & 0xFFFF) as usize,
        })
    }

    /// The register value for these fields (each truncated to its 16 bits).
    pub fn encode(&self) -> u64 {
        (u64::from(self.depth) & 0xFFFF) | (((self.max_msg_size as u64) & 0xFFFF) << 16)
    }

    /// `ARGUMENT_INVALID` unless depth and size are both in range.
    pub fn validate(&self) -> Result<(), Error> {
        if (1..=MAX_DEPTH).contains(&self.depth) && (1..=MAX_MSG_SIZE).contains(&self.max_msg_size)
        {
            Ok(())
        } else {
            Err(Error::ArgumentInvalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_info_round_trips() {
        let info = CreateInfo {
            depth: 8,
            max_msg_size: 240,
        };
        assert_eq!(info.encode(), 8 | 240 << 16);
        assert_eq!(CreateInfo::decode(info.encode()), Ok(info));
        assert_eq!(info.validate(), Ok(()));
        for bad in [(0, 1), (256, 1), (1, 0), (1, 1024)] {
            let i = CreateInfo {
                depth: bad.0,
                max_msg_size: bad.1,
            };
            assert_eq!(i.validate(), Err(Error::ArgumentInvalid), "{bad:?}");
        }
        // Reserved bits are ignored, as Gunyah does.
        assert_eq!(
            CreateInfo::decode(1 << 40 | 1 | 1 << 16).map(|i| i.depth),
            Ok(1)
        );
    }
}

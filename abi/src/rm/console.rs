//! VM console payloads: VM_CONSOLE_WRITE and the VM_CONSOLE_CHARS notification.
//! VM_CONSOLE_OPEN/CLOSE/FLUSH take the common [`crate::rm::vm::VmidRequest`] (VMID 0 = the
//! caller's own console).

use super::error::RmError;
use super::wire::{Decode, Encode, count_u16, decode_exact, encode_with};
use crate::types::VmId;

fn encode_chars(vmid: VmId, chars: &[u8], out: &mut [u8]) -> Result<usize, RmError> {
    let n = count_u16(chars.len())?;
    encode_with(out, 4 + chars.len(), |w| {
        w.u16(vmid.0)?;
        w.u16(n)?;
        w.bytes(chars)
    })
}

fn decode_chars(payload: &[u8]) -> Result<(VmId, &[u8]), RmError> {
    decode_exact(payload, |r| {
        let vmid = VmId(r.u16()?);
        let n = r.u16()?;
        Ok((vmid, r.bytes(usize::from(n))?))
    })
}

/// VM_CONSOLE_WRITE: `u16 vmid, u16 num_bytes, chars[num_bytes]`; the length must be exactly
/// `4 + num_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleWriteRequest<'a> {
    /// Target console (0 = the caller's own, i.e. output towards its owner).
    pub vmid: VmId,
    /// The characters.
    pub chars: &'a [u8],
}

impl Encode for ConsoleWriteRequest<'_> {
    fn encoded_len(&self) -> usize {
        4usize.saturating_add(self.chars.len())
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_chars(self.vmid, self.chars, out)
    }
}

impl<'a> Decode<'a> for ConsoleWriteRequest<'a> {
    fn decode(payload: &'a [u8]) -> Result<Self, RmError> {
        let (vmid, chars) = decode_chars(payload)?;
        Ok(ConsoleWriteRequest { vmid, chars })
    }
}

/// NOTIFY_VM_CONSOLE_CHARS: `u16 from, u16 num_bytes, chars[num_bytes]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleCharsNotification<'a> {
    /// The VM that wrote them (0 when the owner wrote to the receiver's console).
    pub from: VmId,
    /// The characters.
    pub chars: &'a [u8],
}

impl Encode for ConsoleCharsNotification<'_> {
    fn encoded_len(&self) -> usize {
        4usize.saturating_add(self.chars.len())
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_chars(self.from, self.chars, out)
    }
}

impl<'a> Decode<'a> for ConsoleCharsNotification<'a> {
    fn decode(payload: &'a [u8]) -> Result<Self, RmError> {
        let (from, chars) = decode_chars(payload)?;
        Ok(ConsoleCharsNotification { from, chars })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rm::wire::test_util::round_trip_borrowed;

    #[test]
    fn write_round_trips_and_checks_the_count() {
        let req = ConsoleWriteRequest {
            vmid: VmId(0),
            chars: b"hello\n",
        };
        let mut buf = [0u8; 64];
        assert_eq!(round_trip_borrowed(&req, &mut buf), 10);
        assert_eq!(buf[..4], [0, 0, 6, 0]);
        // num_bytes larger or smaller than what follows.
        assert_eq!(
            ConsoleWriteRequest::decode(&[0, 0, 7, 0, b'a', b'b']),
            Err(RmError::MsgInvalid)
        );
        assert_eq!(
            ConsoleWriteRequest::decode(&[0, 0, 1, 0, b'a', b'b']),
            Err(RmError::MsgInvalid)
        );
        assert_eq!(
            ConsoleWriteRequest::decode(&[0, 0, 0, 0]),
            Ok(ConsoleWriteRequest {
                vmid: VmId(0),
                chars: &[]
            })
        );
        // Too many characters for the u16 count.
        let big = [b'x'; 70_000];
        let mut out = [0u8; 70_010];
        assert_eq!(
            ConsoleWriteRequest {
                vmid: VmId(0),
                chars: &big
            }
            .encode(&mut out),
            Err(RmError::MsgInvalid)
        );

        let n = ConsoleCharsNotification {
            from: VmId(0x80),
            chars: b"boot",
        };
        let mut buf = [0u8; 64];
        assert_eq!(round_trip_borrowed(&n, &mut buf), 8);
    }
}

//! The Resource Manager's boot-information block: what the hypervisor tells the root VM when it
//! starts it (`X0` = the block's IPA).
//!
//! Little-endian, 8-byte aligned, versioned: a reader accepts a block whose `magic` matches and
//! whose `version` it knows, and ignores bytes past the fields it knows (`size` says how many the
//! writer wrote), so fields can be appended without breaking older readers.
//!
//! | Offset | Size | Field |
//! |--------|------|-------|
//! | 0 | 8 | magic `"WRLYBOOT"` |
//! | 8 | 4 | version (1) |
//! | 12 | 4 | size of the block in bytes |
//! | 16 | 8 | cap: the root partition (OBJECT_CREATE) |
//! | 24 | 8 | cap: the RM's own cspace |
//! | 32 | 8 | cap: the RM's VIC |
//! | 40 | 8 | cap: the RM's vCPU (`~0` until vCPU objects exist) |
//! | 48 | 8 | cap: the RM's address space (`~0` until address-space objects exist) |
//! | 56 | 8 | IPA of the boot bundle, mapped read-only |
//! | 64 | 8 | size of the boot bundle |
//! | 72 | 8 | IPA of the RM's device tree (its `/hypervisor` node lists its client queues) |
//! | 80 | 4 | physical CPUs |
//! | 84 | 4 | reserved, 0 |
//! | 88 | 8 | counter frequency in Hz |

use crate::CapId;

/// `"WRLYBOOT"` as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"WRLYBOOT");
/// The layout this crate reads and writes.
pub const VERSION: u32 = 1;
/// Bytes in a version-1 block.
pub const SIZE_V1: usize = 96;

/// The boot-information block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootInfo {
    /// The root partition.
    pub partition: CapId,
    /// The RM's own cspace.
    pub cspace: CapId,
    /// The RM's VIC.
    pub vic: CapId,
    /// The RM's vCPU.
    pub vcpu: CapId,
    /// The RM's address space.
    pub addrspace: CapId,
    /// IPA of the read-only boot bundle.
    pub bundle_ipa: u64,
    /// Size of the boot bundle.
    pub bundle_size: u64,
    /// IPA of the RM's device tree.
    pub dtb_ipa: u64,
    /// Physical CPUs.
    pub cpus: u32,
    /// Counter frequency in Hz.
    pub counter_hz: u64,
}

/// Why a block was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// Shorter than its fields.
    TooShort,
    /// Not a boot-information block.
    BadMagic,
    /// A version this reader does not know.
    UnknownVersion(u32),
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        w.copy_from_slice(s);
    }
    u64::from_le_bytes(w)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        w.copy_from_slice(s);
    }
    u32::from_le_bytes(w)
}

impl BootInfo {
    /// Write the block into `out` (at least [`SIZE_V1`] bytes); returns the bytes written.
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let out = out.get_mut(..SIZE_V1)?;
        out.fill(0);
        let mut put = |off: usize, bytes: &[u8]| {
            if let Some(d) = out.get_mut(off..off + bytes.len()) {
                d.copy_from_slice(bytes);
            }
        };
        put(0, &MAGIC.to_le_bytes());
        put(8, &VERSION.to_le_bytes());
        put(12, &(SIZE_V1 as u32).to_le_bytes());
        put(16, &self.partition.raw().to_le_bytes());
        put(24, &self.cspace.raw().to_le_bytes());
        put(32, &self.vic.raw().to_le_bytes());
        put(40, &self.vcpu.raw().to_le_bytes());
        put(48, &self.addrspace.raw().to_le_bytes());
        put(56, &self.bundle_ipa.to_le_bytes());
        put(64, &self.bundle_size.to_le_bytes());
        put(72, &self.dtb_ipa.to_le_bytes());
        put(80, &self.cpus.to_le_bytes());
        put(88, &self.counter_hz.to_le_bytes());
        Some(SIZE_V1)
    }

    /// Read a block.
    pub fn decode(b: &[u8]) -> Result<BootInfo, BootInfoError> {
        if b.len() < 16 {
            return Err(BootInfoError::TooShort);
        }
        if u64_at(b, 0) != MAGIC {
            return Err(BootInfoError::BadMagic);
        }
        let version = u32_at(b, 8);
        if version != VERSION {
            return Err(BootInfoError::UnknownVersion(version));
        }
        let size = u32_at(b, 12) as usize;
        if size < SIZE_V1 || b.len() < SIZE_V1 {
            return Err(BootInfoError::TooShort);
        }
        Ok(BootInfo {
            partition: CapId(u64_at(b, 16)),
            cspace: CapId(u64_at(b, 24)),
            vic: CapId(u64_at(b, 32)),
            vcpu: CapId(u64_at(b, 40)),
            addrspace: CapId(u64_at(b, 48)),
            bundle_ipa: u64_at(b, 56),
            bundle_size: u64_at(b, 64),
            dtb_ipa: u64_at(b, 72),
            cpus: u32_at(b, 80),
            counter_hz: u64_at(b, 88),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BootInfo {
        BootInfo {
            partition: CapId(0x1234),
            cspace: CapId(0x5678),
            vic: CapId(9),
            vcpu: CapId::INVALID,
            addrspace: CapId::INVALID,
            bundle_ipa: 0x8000_0000,
            bundle_size: 0x10_0000,
            dtb_ipa: 0x40e0_0000,
            cpus: 4,
            counter_hz: 62_500_000,
        }
    }

    #[test]
    fn round_trip() {
        let mut buf = [0xAAu8; 128];
        assert_eq!(sample().encode(&mut buf), Some(SIZE_V1));
        assert_eq!(&buf[..8], b"WRLYBOOT");
        assert_eq!(BootInfo::decode(&buf), Ok(sample()));
        assert_eq!(BootInfo::decode(&buf[..SIZE_V1]), Ok(sample()));
    }

    #[test]
    fn refusals() {
        let mut buf = [0u8; SIZE_V1];
        assert_eq!(sample().encode(&mut buf[..10]), None);
        sample().encode(&mut buf);
        assert_eq!(BootInfo::decode(&buf[..8]), Err(BootInfoError::TooShort));
        assert_eq!(BootInfo::decode(&buf[..40]), Err(BootInfoError::TooShort));
        let mut bad = buf;
        bad[0] = b'X';
        assert_eq!(BootInfo::decode(&bad), Err(BootInfoError::BadMagic));
        let mut v2 = buf;
        v2[8] = 2;
        assert_eq!(BootInfo::decode(&v2), Err(BootInfoError::UnknownVersion(2)));
    }
}

//! The Resource Manager's boot-information block: what the hypervisor tells the root VM when it
//! starts it (`X0` = the block's IPA).
//!
//! Little-endian, 8-byte aligned, versioned: a reader accepts a block whose `magic` matches and
//! whose `version` it knows (1 or 2), and ignores bytes past the fields it knows (`size` says how
//! many the writer wrote), so fields can be appended without breaking older readers.
//!
//! Version 1 (96 bytes):
//!
//! | Offset | Size | Field |
//! |--------|------|-------|
//! | 0 | 8 | magic `"WRLYBOOT"` |
//! | 8 | 4 | version (1 or 2) |
//! | 12 | 4 | size of the block in bytes, lists included |
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
//!
//! Version 2 appends ([`SIZE_V2`] bytes of fixed fields, then three lists):
//!
//! | Offset | Size | Field |
//! |--------|------|-------|
//! | 96 | 8 | IPA of the RM's mapping window: where the RM may map extents into its own address space |
//! | 104 | 8 | size of the window |
//! | 112 | 4 | number of free RAM ranges (`F`) |
//! | 116 | 4 | number of VM entries (`V`) |
//! | 120 | 4 | number of hwirq entries (`H`) |
//! | 124 | 4 | reserved, 0 |
//! | 128 | 16 × F | free RAM the root partition owns: `u64 base, u64 size` (physical) |
//! | .. | 96 × V | one [`VmEntry`] per VM the hypervisor launched from the manifest |
//! | .. | 16 × H | one [`HwirqEntry`] per hardware IRQ the RM may lend |
//!
//! A VM entry (96 bytes): `u16 vmid` (the VMID its address space was configured with, 0 if
//! none), `u16` reserved, `u32 virq_first` and `u32 virq_limit` (the vIRQs of its VIC nobody
//! uses yet: `[first, limit)`), `u32` reserved, caps (in the RM's cspace) `u64 addrspace`, `u64
//! ram_extent`, `u64 cspace`, `u64 vic` (`~0` when not given), `u64 ram_ipa`, `u64 ram_size` (the
//! extent is mapped there in the address space), then the VM's name, 32 bytes, NUL padded.
//!
//! A hwirq entry (16 bytes): `u16 vmid`, `u16` reserved, `u32 virq` (where the IRQ is bound in
//! that VM's VIC), `u64 hwirq cap` (BIND_VIC).

use crate::CapId;

/// `"WRLYBOOT"` as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"WRLYBOOT");
/// The layout this crate writes.
pub const VERSION: u32 = 2;
/// Bytes in a version-1 block.
pub const SIZE_V1: usize = 96;
/// Bytes of a version-2 block before its lists.
pub const SIZE_V2: usize = 128;
/// Bytes of one free RAM range.
pub const RANGE_SIZE: usize = 16;
/// Bytes of one [`VmEntry`].
pub const VM_ENTRY_SIZE: usize = 96;
/// Bytes of one [`HwirqEntry`].
pub const HWIRQ_ENTRY_SIZE: usize = 16;
/// Longest VM name in a [`VmEntry`].
pub const NAME_MAX: usize = 32;

/// The boot-information block's fixed fields.
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
    /// Version 2: the RM's mapping window, IPA and size (`(0, 0)` in a version-1 block).
    pub window: (u64, u64),
}

/// A range of physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// First byte.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

/// What the RM gets for a VM the hypervisor launched from the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmEntry {
    /// The VMID its address space was configured with (0: none).
    pub vmid: u16,
    /// First vIRQ of its VIC nobody uses.
    pub virq_first: u32,
    /// End of the free vIRQs (exclusive).
    pub virq_limit: u32,
    /// Its address space (MAP, LOOKUP).
    pub addrspace: CapId,
    /// The extent over its RAM (MAP, DERIVE, DONATE).
    pub ram_extent: CapId,
    /// Its cspace (CAP_CREATE, CAP_DELETE), to hand it caps.
    pub cspace: CapId,
    /// Its VIC (BIND_SOURCE), to bind vIRQs of its queues.
    pub vic: CapId,
    /// Where its RAM extent is mapped in its address space.
    pub ram_ipa: u64,
    /// Size of its RAM.
    pub ram_size: u64,
    /// Its name, NUL padded.
    pub name: [u8; NAME_MAX],
}

impl VmEntry {
    /// The name as text (up to the first NUL; empty if not UTF-8).
    pub fn name(&self) -> &str {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(NAME_MAX);
        core::str::from_utf8(self.name.get(..len).unwrap_or(&[])).unwrap_or("")
    }

    /// `name` as the fixed field (cut at [`NAME_MAX`] bytes).
    pub fn name_field(name: &str) -> [u8; NAME_MAX] {
        let mut out = [0u8; NAME_MAX];
        for (d, s) in out.iter_mut().zip(name.bytes()) {
            *d = s;
        }
        out
    }
}

/// A hardware IRQ the RM may lend: bound at `virq` in VM `vmid`'s VIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HwirqEntry {
    /// The VM it is bound to.
    pub vmid: u16,
    /// Its vIRQ there.
    pub virq: u32,
    /// The hwirq cap (BIND_VIC).
    pub cap: CapId,
}

/// The lists of a version-2 block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lists<'a> {
    free: &'a [u8],
    vms: &'a [u8],
    hwirqs: &'a [u8],
}

impl<'a> Lists<'a> {
    /// The free RAM ranges.
    pub fn free_ranges(&self) -> impl Iterator<Item = Range> + 'a {
        self.free.chunks_exact(RANGE_SIZE).map(|c| Range {
            base: u64_at(c, 0),
            size: u64_at(c, 8),
        })
    }

    /// The VM entries.
    pub fn vms(&self) -> impl Iterator<Item = VmEntry> + 'a {
        self.vms.chunks_exact(VM_ENTRY_SIZE).map(|c| {
            let mut name = [0u8; NAME_MAX];
            if let Some(s) = c.get(64..64 + NAME_MAX) {
                name.copy_from_slice(s);
            }
            VmEntry {
                vmid: u16_at(c, 0),
                virq_first: u32_at(c, 4),
                virq_limit: u32_at(c, 8),
                addrspace: CapId(u64_at(c, 16)),
                ram_extent: CapId(u64_at(c, 24)),
                cspace: CapId(u64_at(c, 32)),
                vic: CapId(u64_at(c, 40)),
                ram_ipa: u64_at(c, 48),
                ram_size: u64_at(c, 56),
                name,
            }
        })
    }

    /// The hwirq entries.
    pub fn hwirqs(&self) -> impl Iterator<Item = HwirqEntry> + 'a {
        self.hwirqs
            .chunks_exact(HWIRQ_ENTRY_SIZE)
            .map(|c| HwirqEntry {
                vmid: u16_at(c, 0),
                virq: u32_at(c, 4),
                cap: CapId(u64_at(c, 8)),
            })
    }
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

fn u16_at(b: &[u8], off: usize) -> u16 {
    let mut w = [0u8; 2];
    if let Some(s) = b.get(off..off + 2) {
        w.copy_from_slice(s);
    }
    u16::from_le_bytes(w)
}

/// Writes little-endian fields into a buffer already checked to be long enough.
struct Put<'a>(&'a mut [u8]);

impl Put<'_> {
    fn at(&mut self, off: usize, bytes: &[u8]) {
        if let Some(d) = self.0.get_mut(off..off + bytes.len()) {
            d.copy_from_slice(bytes);
        }
    }
}

/// Bytes of the whole version-2 block with these lists.
pub const fn size_v2(free: usize, vms: usize, hwirqs: usize) -> usize {
    SIZE_V2 + free * RANGE_SIZE + vms * VM_ENTRY_SIZE + hwirqs * HWIRQ_ENTRY_SIZE
}

impl BootInfo {
    fn put_v1(&self, p: &mut Put<'_>, version: u32, size: usize) {
        p.at(0, &MAGIC.to_le_bytes());
        p.at(8, &version.to_le_bytes());
        p.at(12, &(size as u32).to_le_bytes());
        p.at(16, &self.partition.raw().to_le_bytes());
        p.at(24, &self.cspace.raw().to_le_bytes());
        p.at(32, &self.vic.raw().to_le_bytes());
        p.at(40, &self.vcpu.raw().to_le_bytes());
        p.at(48, &self.addrspace.raw().to_le_bytes());
        p.at(56, &self.bundle_ipa.to_le_bytes());
        p.at(64, &self.bundle_size.to_le_bytes());
        p.at(72, &self.dtb_ipa.to_le_bytes());
        p.at(80, &self.cpus.to_le_bytes());
        p.at(88, &self.counter_hz.to_le_bytes());
    }

    /// Write a version-1 block into `out` (at least [`SIZE_V1`] bytes); returns the bytes
    /// written. The version-2 fields are left out.
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let out = out.get_mut(..SIZE_V1)?;
        out.fill(0);
        self.put_v1(&mut Put(out), 1, SIZE_V1);
        Some(SIZE_V1)
    }

    /// Write a version-2 block with its lists into `out` (at least [`size_v2`] bytes); returns
    /// the bytes written. `None` if `out` is too short or a count does not fit in a u32.
    pub fn encode_v2(
        &self,
        free: &[Range],
        vms: &[VmEntry],
        hwirqs: &[HwirqEntry],
        out: &mut [u8],
    ) -> Option<usize> {
        let size = size_v2(free.len(), vms.len(), hwirqs.len());
        let counts = [free.len(), vms.len(), hwirqs.len()].map(u32::try_from);
        let [Ok(nf), Ok(nv), Ok(nh)] = counts else {
            return None;
        };
        let out = out.get_mut(..size)?;
        out.fill(0);
        let mut p = Put(out);
        self.put_v1(&mut p, VERSION, size);
        p.at(96, &self.window.0.to_le_bytes());
        p.at(104, &self.window.1.to_le_bytes());
        p.at(112, &nf.to_le_bytes());
        p.at(116, &nv.to_le_bytes());
        p.at(120, &nh.to_le_bytes());
        let mut off = SIZE_V2;
        for r in free {
            p.at(off, &r.base.to_le_bytes());
            p.at(off + 8, &r.size.to_le_bytes());
            off += RANGE_SIZE;
        }
        for v in vms {
            p.at(off, &v.vmid.to_le_bytes());
            p.at(off + 4, &v.virq_first.to_le_bytes());
            p.at(off + 8, &v.virq_limit.to_le_bytes());
            p.at(off + 16, &v.addrspace.raw().to_le_bytes());
            p.at(off + 24, &v.ram_extent.raw().to_le_bytes());
            p.at(off + 32, &v.cspace.raw().to_le_bytes());
            p.at(off + 40, &v.vic.raw().to_le_bytes());
            p.at(off + 48, &v.ram_ipa.to_le_bytes());
            p.at(off + 56, &v.ram_size.to_le_bytes());
            p.at(off + 64, &v.name);
            off += VM_ENTRY_SIZE;
        }
        for h in hwirqs {
            p.at(off, &h.vmid.to_le_bytes());
            p.at(off + 4, &h.virq.to_le_bytes());
            p.at(off + 8, &h.cap.raw().to_le_bytes());
            off += HWIRQ_ENTRY_SIZE;
        }
        Some(size)
    }

    /// The version and size a block announces, after checking its magic and version.
    pub fn header(b: &[u8]) -> Result<(u32, usize), BootInfoError> {
        if b.len() < 16 {
            return Err(BootInfoError::TooShort);
        }
        if u64_at(b, 0) != MAGIC {
            return Err(BootInfoError::BadMagic);
        }
        let version = u32_at(b, 8);
        if version != 1 && version != VERSION {
            return Err(BootInfoError::UnknownVersion(version));
        }
        Ok((version, u32_at(b, 12) as usize))
    }

    /// Read a block's fixed fields (version 1 or 2; a version-1 block has no window).
    pub fn decode(b: &[u8]) -> Result<BootInfo, BootInfoError> {
        let (version, size) = Self::header(b)?;
        let fixed = if version == 1 { SIZE_V1 } else { SIZE_V2 };
        if size < fixed || b.len() < fixed {
            return Err(BootInfoError::TooShort);
        }
        let window = if version >= 2 {
            (u64_at(b, 96), u64_at(b, 104))
        } else {
            (0, 0)
        };
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
            window,
        })
    }

    /// Read a block's lists: empty for version 1; `TooShort` if the counts need more bytes
    /// than `size` or `b` hold.
    pub fn decode_lists(b: &[u8]) -> Result<Lists<'_>, BootInfoError> {
        let (version, size) = Self::header(b)?;
        if version == 1 {
            return Ok(Lists::default());
        }
        if size < SIZE_V2 || b.len() < SIZE_V2 {
            return Err(BootInfoError::TooShort);
        }
        let counts = [u32_at(b, 112), u32_at(b, 116), u32_at(b, 120)].map(|n| n as usize);
        let lens = [
            counts[0].checked_mul(RANGE_SIZE),
            counts[1].checked_mul(VM_ENTRY_SIZE),
            counts[2].checked_mul(HWIRQ_ENTRY_SIZE),
        ];
        let [Some(lf), Some(lv), Some(lh)] = lens else {
            return Err(BootInfoError::TooShort);
        };
        let end = SIZE_V2
            .checked_add(lf)
            .and_then(|e| e.checked_add(lv))
            .and_then(|e| e.checked_add(lh))
            .ok_or(BootInfoError::TooShort)?;
        if end > size || end > b.len() {
            return Err(BootInfoError::TooShort);
        }
        let free = b.get(SIZE_V2..SIZE_V2 + lf).unwrap_or(&[]);
        let vms = b.get(SIZE_V2 + lf..SIZE_V2 + lf + lv).unwrap_or(&[]);
        let hwirqs = b.get(SIZE_V2 + lf + lv..end).unwrap_or(&[]);
        Ok(Lists { free, vms, hwirqs })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

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
            window: (0, 0),
        }
    }

    fn vm(name: &str, vmid: u16) -> VmEntry {
        VmEntry {
            vmid,
            virq_first: 70,
            virq_limit: 96,
            addrspace: CapId(0x100 + u64::from(vmid)),
            ram_extent: CapId(0x200 + u64::from(vmid)),
            cspace: CapId::INVALID,
            vic: CapId(0x300),
            ram_ipa: 0x4000_0000,
            ram_size: 0x1000_0000,
            name: VmEntry::name_field(name),
        }
    }

    #[test]
    fn round_trip_v1() {
        let mut buf = [0xAAu8; 128];
        assert_eq!(sample().encode(&mut buf), Some(SIZE_V1));
        assert_eq!(&buf[..8], b"WRLYBOOT");
        assert_eq!(u32_at(&buf, 8), 1);
        assert_eq!(BootInfo::decode(&buf), Ok(sample()));
        assert_eq!(BootInfo::decode(&buf[..SIZE_V1]), Ok(sample()));
        assert_eq!(
            BootInfo::decode_lists(&buf[..SIZE_V1]),
            Ok(Lists::default())
        );
    }

    #[test]
    fn round_trip_v2() {
        let info = BootInfo {
            window: (0x60_0000_0000, 1 << 30),
            ..sample()
        };
        let free = [
            Range {
                base: 0x4800_0000,
                size: 0x100_0000,
            },
            Range {
                base: 0x9000_0000,
                size: 0x2000_0000,
            },
        ];
        let vms = [
            vm("host", 3),
            vm("a-name-that-is-much-longer-than-32-bytes", 0),
        ];
        let hwirqs = [HwirqEntry {
            vmid: 3,
            virq: 79,
            cap: CapId(0x77),
        }];
        let size = size_v2(2, 2, 1);
        assert_eq!(size, 128 + 32 + 192 + 16);
        let mut buf = [0x55u8; 512];
        assert_eq!(
            info.encode_v2(&free, &vms, &hwirqs, &mut buf[..size - 1]),
            None
        );
        assert_eq!(info.encode_v2(&free, &vms, &hwirqs, &mut buf), Some(size));
        assert_eq!(u32_at(&buf, 8), 2);
        assert_eq!(u32_at(&buf, 12) as usize, size);
        assert_eq!(BootInfo::decode(&buf[..size]), Ok(info));
        let lists = BootInfo::decode_lists(&buf[..size]).unwrap_or_default();
        assert_eq!(lists.free_ranges().collect::<Vec<_>>(), free);
        let got: Vec<VmEntry> = lists.vms().collect();
        assert_eq!(got, vms);
        assert_eq!(got[0].name(), "host");
        assert_eq!(got[1].name(), "a-name-that-is-much-longer-than-");
        assert_eq!(lists.hwirqs().collect::<Vec<_>>(), hwirqs);
        // A version-1 view of the same block still reads the fixed fields.
        let v1 = BootInfo::decode(&buf[..SIZE_V2]);
        assert_eq!(v1.map(|i| i.partition), Ok(CapId(0x1234)));
        // Lists cut short are refused, not read past the end.
        assert_eq!(
            BootInfo::decode_lists(&buf[..size - 8]),
            Err(BootInfoError::TooShort)
        );
        let mut lying = buf;
        lying[116..120].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            BootInfo::decode_lists(&lying[..size]),
            Err(BootInfoError::TooShort)
        );
    }

    #[test]
    fn refusals() {
        let mut buf = [0u8; SIZE_V2];
        assert_eq!(sample().encode(&mut buf[..10]), None);
        sample().encode(&mut buf);
        assert_eq!(BootInfo::decode(&buf[..8]), Err(BootInfoError::TooShort));
        assert_eq!(BootInfo::decode(&buf[..40]), Err(BootInfoError::TooShort));
        let mut bad = buf;
        bad[0] = b'X';
        assert_eq!(BootInfo::decode(&bad), Err(BootInfoError::BadMagic));
        let mut v3 = buf;
        v3[8] = 3;
        assert_eq!(BootInfo::decode(&v3), Err(BootInfoError::UnknownVersion(3)));
        // A version-2 header on a block too short for the version-2 fields.
        let mut short = buf;
        short[8] = 2;
        assert_eq!(
            BootInfo::decode(&short[..SIZE_V1]),
            Err(BootInfoError::TooShort)
        );
    }
}

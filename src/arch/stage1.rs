//! What the hypervisor's own EL2 stage-1 tables map, and with which permissions (W^X).
//!
//! The hypervisor runs identity mapped (VA = PA). This module turns the image layout and the
//! platform description into a list of [`MapRequest`]s and chooses the descriptor attributes for
//! each kind of memory; `arch::aarch64::mmu` applies them with the `aarch64-paging` crate. Being
//! pure, both the plan and the descriptor bits are host-tested.

use aarch64_paging::descriptor::El23Attributes;
use alloc::vec::Vec;

use crate::mm::addr::{PAGE_SIZE, PhysRange};

/// MAIR_EL2 attribute index 0: Device-nGnRE. Index 1: Normal, inner/outer write-back
/// read/write-allocate.
pub const MAIR_EL2: u64 = 0x04 | (0xff << 8);

/// How a range is mapped at EL2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Perm {
    /// Hypervisor code: read + execute.
    Text,
    /// Read-only data: no write, no execute.
    ReadOnly,
    /// Data, BSS, stacks, heap, free RAM: read + write, never execute.
    ReadWrite,
    /// MMIO: Device-nGnRE, read + write, never execute.
    Device,
}

/// One range to map with one permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapRequest {
    /// Identity-mapped physical range, page aligned.
    pub range: PhysRange,
    /// Its permission.
    pub perm: Perm,
}

/// The sections of the loaded image, as the linker script lays them out (all page aligned).
#[derive(Clone, Copy, Debug)]
pub struct ImageLayout {
    /// `.text`: the boot stub and all code.
    pub text: PhysRange,
    /// `.rodata`, relocated read-only pointers and the relocation table.
    pub rodata: PhysRange,
    /// `.data`, `.bss` and the boot stack.
    pub data: PhysRange,
}

impl ImageLayout {
    /// The whole image.
    pub fn whole(&self) -> PhysRange {
        PhysRange::new(self.text.start(), self.data.end()).unwrap_or(self.text)
    }

    /// The image's own mappings: code RX, read-only data R, data RW+XN.
    pub fn requests(&self) -> [MapRequest; 3] {
        [
            MapRequest {
                range: self.text,
                perm: Perm::Text,
            },
            MapRequest {
                range: self.rodata,
                perm: Perm::ReadOnly,
            },
            MapRequest {
                range: self.data,
                perm: Perm::ReadWrite,
            },
        ]
    }
}

/// Descriptor attributes for a permission, for the EL2 translation regime.
pub fn attributes(perm: Perm) -> El23Attributes {
    let base = El23Attributes::VALID | El23Attributes::ACCESSED | El23Attributes::USER_RES1;
    let normal = base | El23Attributes::ATTRIBUTE_INDEX_1 | El23Attributes::INNER_SHAREABLE;
    match perm {
        Perm::Text => normal | El23Attributes::READ_ONLY,
        Perm::ReadOnly => normal | El23Attributes::READ_ONLY | El23Attributes::XN,
        Perm::ReadWrite => normal | El23Attributes::XN,
        Perm::Device => base | El23Attributes::ATTRIBUTE_INDEX_0 | El23Attributes::XN,
    }
}

/// `ranges` minus every range in `holes`, page aligned (ranges shrink inwards, holes widen
/// outwards), sorted and non-empty.
pub fn subtract(ranges: &[PhysRange], holes: &[PhysRange]) -> Vec<PhysRange> {
    let mut out: Vec<PhysRange> = ranges
        .iter()
        .map(|r| r.align_in(PAGE_SIZE))
        .filter(|r| !r.is_empty())
        .collect();
    for hole in holes.iter().map(|h| h.align_out(PAGE_SIZE)) {
        let mut next = Vec::with_capacity(out.len() + 1);
        for r in out {
            if !r.overlaps(&hole) {
                next.push(r);
                continue;
            }
            if let Some(head) = PhysRange::new(r.start(), hole.start()).filter(|h| !h.is_empty()) {
                next.push(head);
            }
            if let Some(tail) = PhysRange::new(hole.end(), r.end()).filter(|t| !t.is_empty()) {
                next.push(tail);
            }
        }
        out = next;
    }
    out.sort();
    out
}

/// The mappings added once the device tree is known: RAM outside the image, the DTB and any
/// `no-map` reserved region as read-write data; the DTB read-only; each device window as Device.
pub fn platform_requests(
    image: &ImageLayout,
    dtb: PhysRange,
    ram: &[PhysRange],
    no_map: &[PhysRange],
    devices: &[PhysRange],
) -> Vec<MapRequest> {
    let mut holes = Vec::with_capacity(no_map.len() + 2);
    holes.push(image.whole());
    holes.push(dtb);
    holes.extend_from_slice(no_map);
    let mut out: Vec<MapRequest> = subtract(ram, &holes)
        .into_iter()
        .map(|range| MapRequest {
            range,
            perm: Perm::ReadWrite,
        })
        .collect();
    out.extend(devices.iter().map(|d| MapRequest {
        range: d.align_out(PAGE_SIZE),
        perm: Perm::Device,
    }));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> PhysRange {
        PhysRange::new(start, end).unwrap()
    }

    fn layout() -> ImageLayout {
        ImageLayout {
            text: r(0x4020_0000, 0x4021_0000),
            rodata: r(0x4021_0000, 0x4021_4000),
            data: r(0x4021_4000, 0x4030_0000),
        }
    }

    #[test]
    fn text_is_executable_and_nothing_else_is() {
        let text = attributes(Perm::Text);
        assert!(text.contains(El23Attributes::READ_ONLY));
        assert!(!text.contains(El23Attributes::XN));
        for p in [Perm::ReadOnly, Perm::ReadWrite, Perm::Device] {
            assert!(
                attributes(p).contains(El23Attributes::XN),
                "{p:?} must be XN"
            );
        }
        assert!(attributes(Perm::ReadOnly).contains(El23Attributes::READ_ONLY));
        assert!(!attributes(Perm::ReadWrite).contains(El23Attributes::READ_ONLY));
    }

    #[test]
    fn device_and_normal_use_their_mair_slots() {
        let dev = attributes(Perm::Device).bits() & (7 << 2);
        let normal = attributes(Perm::ReadWrite).bits() & (7 << 2);
        assert_eq!(dev >> 2, 0);
        assert_eq!(normal >> 2, 1);
        assert_eq!(MAIR_EL2 & 0xff, 0x04, "index 0 is Device-nGnRE");
        assert_eq!((MAIR_EL2 >> 8) & 0xff, 0xff, "index 1 is Normal WB");
    }

    #[test]
    fn ram_excludes_image_dtb_and_no_map() {
        let ram = [r(0x4000_0000, 0x8000_0000)];
        let dtb = r(0x4800_0000, 0x4810_0000);
        let nomap = [r(0x5000_0100, 0x5000_2000)];
        let reqs = platform_requests(&layout(), dtb, &ram, &nomap, &[r(0x0900_0000, 0x0900_1000)]);
        let rw: Vec<_> = reqs
            .iter()
            .filter(|m| m.perm == Perm::ReadWrite)
            .map(|m| m.range)
            .collect();
        assert_eq!(
            rw,
            [
                r(0x4000_0000, 0x4020_0000),
                r(0x4030_0000, 0x4800_0000),
                r(0x4810_0000, 0x5000_0000),
                r(0x5000_2000, 0x8000_0000)
            ]
        );
        for m in &reqs {
            for hole in [layout().whole(), dtb, nomap[0]] {
                assert!(!m.range.overlaps(&hole.align_out(PAGE_SIZE)) || m.perm == Perm::Device);
            }
        }
        assert!(reqs.contains(&MapRequest {
            range: r(0x0900_0000, 0x0900_1000),
            perm: Perm::Device
        }));
    }

    #[test]
    fn unaligned_device_window_is_widened() {
        let reqs = platform_requests(&layout(), r(0, 0), &[], &[], &[r(0x0900_0010, 0x0900_0020)]);
        assert_eq!(reqs[0].range, r(0x0900_0000, 0x0900_1000));
    }
}

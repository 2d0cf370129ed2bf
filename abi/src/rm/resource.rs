//! VM_GET_HYP_RESOURCES: the resource types (0..=10, including Linux's memory-extent and
//! address-space types 9/10), the 44-byte packed hyp-resource entry and the reply
//! (`u32 n_entries` followed by exactly `n_entries` entries).

use super::error::RmError;
use super::wire::{
    Decode, Encode, List, WireEntry, count_u32, decode_exact, encode_with, wire_enum,
};
use crate::types::VmId;

wire_enum! {
    /// What a hyp-resource entry describes, from the caller's point of view.
    ResourceType: u8 {
        /// Doorbell the caller can ring (Linux BELL_TX).
        DoorbellSource = 0,
        /// Doorbell the caller receives on, with a VIRQ (Linux BELL_RX).
        Doorbell = 1,
        /// Message queue the caller sends on, with a VIRQ (Linux MSGQ_TX).
        MsgQueueSend = 2,
        /// Message queue the caller receives on, with a VIRQ (Linux MSGQ_RX).
        MsgQueueRecv = 3,
        /// Proxy-scheduled vCPU: label = vCPU index, VIRQ = wakeup IRQ in the caller's VIC.
        VirtualCpu = 4,
        /// Virtual PM group state VIRQ.
        VirtualPm = 5,
        /// virtio-mmio backend.
        VirtioMmio = 6,
        /// Virtual RTC.
        Vrtc = 7,
        /// Watchdog.
        Watchdog = 8,
        /// Memory extent for Linux demand paging (labels: [`MEM_EXTENT_LABEL_GUEST_PRIVATE`]..).
        MemExtent = 9,
        /// The guest's address space (label [`ADDRSPACE_LABEL`]).
        AddrSpace = 10,
    }
}

/// Linux's label for the guest address-space resource.
pub const ADDRSPACE_LABEL: u32 = 0;
/// Memory-extent label: guest-private memory ("to" extent).
pub const MEM_EXTENT_LABEL_GUEST_PRIVATE: u32 = 0;
/// Memory-extent label: host memory shared with the guest ("from" extent).
pub const MEM_EXTENT_LABEL_HOST_SHARED: u32 = 1;
/// Memory-extent label: host-private memory ("from" extent).
pub const MEM_EXTENT_LABEL_HOST_PRIVATE: u32 = 2;
/// Memory-extent label: guest memory shared with the host ("to" extent).
pub const MEM_EXTENT_LABEL_GUEST_SHARED: u32 = 3;

/// One hyp-resource entry (44 bytes, packed): `u8 type, u8 res, u16 partner_vmid,
/// u32 resource_handle, u32 resource_label, u64 cap_id, u32 virq_handle, u32 virq,
/// u64 base, u64 size`. The CapID is in the caller's cspace and the VIRQ in its VIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HypResource {
    /// What this is (an undefined type makes the entry, and the reply, `MsgInvalid`).
    pub resource_type: ResourceType,
    /// The VM at the other end (e.g. of a message queue).
    pub partner_vmid: VmId,
    /// RM handle of the resource.
    pub handle: u32,
    /// Label (vCPU index, doorbell/msgq label from the VM config).
    pub label: u32,
    /// Capability ID in the caller's cspace.
    pub cap_id: u64,
    /// RM handle of the VIRQ.
    pub virq_handle: u32,
    /// VIRQ number (INTID) in the caller's VIC.
    pub virq: u32,
    /// Base address (virtio-mmio, memory extents).
    pub base: u64,
    /// Size.
    pub size: u64,
}

impl WireEntry for HypResource {
    const SIZE: usize = 44;

    fn read(bytes: &[u8]) -> Result<Self, RmError> {
        decode_exact(bytes, |r| {
            let resource_type = ResourceType::from_raw(r.u8()?).ok_or(RmError::MsgInvalid)?;
            r.skip(1)?;
            Ok(HypResource {
                resource_type,
                partner_vmid: VmId(r.u16()?),
                handle: r.u32()?,
                label: r.u32()?,
                cap_id: r.u64()?,
                virq_handle: r.u32()?,
                virq: r.u32()?,
                base: r.u64()?,
                size: r.u64()?,
            })
        })
    }

    fn write(&self, out: &mut [u8]) -> Result<(), RmError> {
        encode_with(out, Self::SIZE, |w| {
            w.u8(self.resource_type.raw())?;
            w.u8(0)?;
            w.u16(self.partner_vmid.0)?;
            w.u32(self.handle)?;
            w.u32(self.label)?;
            // The RM writes the CapID as two u32 halves, low first: the same bytes.
            w.u64(self.cap_id)?;
            w.u32(self.virq_handle)?;
            w.u32(self.virq)?;
            w.u64(self.base)?;
            w.u64(self.size)
        })
        .map(|_| ())
    }
}

/// VM_GET_HYP_RESOURCES reply payload: `u32 n_entries`, then `n_entries` × 44 bytes; Linux
/// rejects it unless the length is exactly `4 + 44 × n_entries`, and so does this parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HypResourcesReply<'a> {
    /// The entries.
    pub entries: List<'a, HypResource>,
}

impl Encode for HypResourcesReply<'_> {
    fn encoded_len(&self) -> usize {
        4usize.saturating_add(self.entries.wire_len())
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        let n = count_u32(self.entries.len())?;
        encode_with(out, self.encoded_len(), |w| {
            w.u32(n)?;
            w.list(&self.entries)
        })
    }
}

impl<'a> Decode<'a> for HypResourcesReply<'a> {
    fn decode(payload: &'a [u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let n = usize::try_from(r.u32()?).map_err(|_| RmError::MsgInvalid)?;
            Ok(HypResourcesReply {
                entries: r.list(n)?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rm::wire::test_util::round_trip_borrowed;

    fn vcpu(index: u32) -> HypResource {
        HypResource {
            resource_type: ResourceType::VirtualCpu,
            partner_vmid: VmId(0x80),
            handle: 0x100 + index,
            label: index,
            cap_id: 0x1234_5678_9ABC_DEF0 + u64::from(index),
            virq_handle: 0x200 + index,
            virq: 960 + index,
            base: 0,
            size: 0,
        }
    }

    #[test]
    fn entry_is_44_packed_bytes() {
        let e = HypResource {
            resource_type: ResourceType::MemExtent,
            partner_vmid: VmId(0x0102),
            handle: 0x0304_0506,
            label: MEM_EXTENT_LABEL_HOST_SHARED,
            cap_id: 0x1112_1314_1516_1718,
            virq_handle: 0x2122_2324,
            virq: 0x3132_3334,
            base: 0x4142_4344_4546_4748,
            size: 0x5152_5354_5556_5758,
        };
        let mut buf = [0u8; 44];
        e.write(&mut buf).expect("write");
        assert_eq!(
            buf,
            [
                9, 0, 0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 1, 0, 0, 0, 0x18, 0x17, 0x16, 0x15, 0x14,
                0x13, 0x12, 0x11, 0x24, 0x23, 0x22, 0x21, 0x34, 0x33, 0x32, 0x31, 0x48, 0x47, 0x46,
                0x45, 0x44, 0x43, 0x42, 0x41, 0x58, 0x57, 0x56, 0x55, 0x54, 0x53, 0x52, 0x51,
            ]
        );
        assert_eq!(HypResource::read(&buf), Ok(e));
        buf[0] = 11;
        assert_eq!(HypResource::read(&buf), Err(RmError::MsgInvalid));
        assert_eq!(HypResource::read(&buf[..43]), Err(RmError::MsgInvalid));
        assert_eq!(ResourceType::ALL.len(), 11);
        assert_eq!(ResourceType::from_raw(10), Some(ResourceType::AddrSpace));
    }

    #[test]
    fn reply_round_trips_and_checks_the_count() {
        let entries = [vcpu(0), vcpu(1), vcpu(2)];
        let reply = HypResourcesReply {
            entries: List::from_slice(&entries),
        };
        let mut buf = [0u8; 256];
        assert_eq!(round_trip_borrowed(&reply, &mut buf), 4 + 3 * 44);
        let parsed = HypResourcesReply::decode(&buf[..136]).expect("parse");
        assert!(parsed.entries.iter().map(|e| e.label).eq([0, 1, 2]));
        for n in [0u32, 2, 4, u32::MAX] {
            let mut bad = buf;
            bad[..4].copy_from_slice(&n.to_le_bytes());
            assert_eq!(
                HypResourcesReply::decode(&bad[..136]),
                Err(RmError::MsgInvalid)
            );
        }
        // An undefined type anywhere rejects the reply.
        let mut bad = buf;
        bad[4 + 44] = 200;
        assert_eq!(
            HypResourcesReply::decode(&bad[..136]),
            Err(RmError::MsgInvalid)
        );

        let empty = HypResourcesReply {
            entries: List::empty(),
        };
        let mut buf = [0u8; 8];
        assert_eq!(round_trip_borrowed(&empty, &mut buf), 4);
    }
}

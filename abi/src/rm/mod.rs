//! The Gunyah Resource Manager RPC protocol (reference §7): what the hypervisor's root VM,
//! the RM, exchanges with every client VM over a pair of message queues (depth 8, 240-byte
//! messages, little-endian throughout).
//!
//! A message (request, reply or notification) is a body of up to 14 616 bytes, cut into
//! packets of an 8-byte header plus up to 232 bytes; reply bodies start with a `u32` RM
//! error code. This module tree holds the wire format only, with no I/O and no allocation:
//!
//! * [`header`]: the packet header, message types, transport limits, the reply error word.
//! * [`fragment`]: [`Splitter`] (message → packets) and [`Reassembler`] (packets → message,
//!   over a caller buffer), with the drop/abort rules of the public RM.
//! * [`error`]: [`RmError`], the RM's `u32` status codes.
//! * [`ids`]: message ID constants and names.
//! * [`wire`]: the [`Encode`]/[`Decode`] traits and [`List`], the borrowed view of counted
//!   arrays that every payload uses.
//! * [`vm`]: VM-management payloads (VMID request, VM_ALLOCATE, VM_STOP, VM_CONFIG_IMAGE,
//!   VM_SET_STATUS, VM_EXIT, VM_GET_VMID and Linux's VM_SET_BOOT_CONTEXT /
//!   VM_SET_DEMAND_PAGING / VM_SET_ADDRESS_LAYOUT).
//! * [`status`]: VM status, OS status, exit types and codes; VM_GET_STATE's reply and the
//!   VM_STATUS, VM_EXITED and VM_SHUTDOWN notifications.
//! * [`resource`]: VM_GET_HYP_RESOURCES and its 44-byte entries.
//! * [`memparcel`]: MEM_LEND/SHARE/DONATE/APPEND/ACCEPT/RELEASE/RECLAIM/NOTIFY and the
//!   MEM_SHARED/RELEASED/ACCEPTED/RECALL notifications.
//! * [`irq`]: VM_IRQ_LEND/ACCEPT/RELEASE/RECLAIM/NOTIFY and the IRQ notifications.
//! * [`console`]: VM_CONSOLE_WRITE and the VM_CONSOLE_CHARS notification.
//!
//! Every parser returns `Result<_, RmError>` and answers [`RmError::MsgInvalid`] for a
//! payload whose length or counts do not match; none panics on any input. A server loop:
//!
//! ```ignore
//! let mut buf = [0u8; rm::MAX_MESSAGE_SIZE];
//! let mut rx = rm::Reassembler::new(&mut buf);
//! let got = rx.push(&packet);
//! if let Some(lost) = got.aborted { log!("partial {:#x} discarded", lost.id) }
//! if let Some(msg) = got.message() {
//!     let reply = match (msg.kind, msg.id) {
//!         (MessageType::Request, ids::VM_START) => VmidRequest::decode(msg.payload)...,
//!         ...
//!     };
//!     for packet in Splitter::reply(msg.seq, msg.id, error, &reply_bytes)? { send(packet.as_bytes()) }
//! }
//! ```

pub mod console;
pub mod error;
pub mod fragment;
pub mod header;
pub mod ids;
pub mod irq;
pub mod memparcel;
pub mod resource;
pub mod status;
pub mod vm;
pub mod wire;

pub use error::RmError;
pub use fragment::{
    DropReason, Event, Message, Packet, PartialInfo, Reassembler, Received, SplitError, Splitter,
};
pub use header::{
    HEADER_SIZE, Header, HeaderError, MAX_CONTINUATIONS, MAX_MESSAGE_SIZE, MAX_PACKET_PAYLOAD,
    MessageType, PACKET_SIZE,
};
pub use wire::{Decode, Encode, List, WireEntry};

use crate::types::VmId;

/// The hypervisor's VMID.
pub const VMID_HYP: VmId = VmId(0);
/// The primary VM (HLOS Linux); the only VM allowed to VM_ALLOCATE.
pub const VMID_HLOS: VmId = VmId(3);
/// The Resource Manager's VMID (Linux `GUNYAH_VMID_ROOT_VM`).
pub const VMID_RM: VmId = VmId(0xFF);
/// First dynamically allocated VMID.
pub const VMID_DYNAMIC_FIRST: VmId = VmId(0x80);
/// Last dynamically allocated VMID.
pub const VMID_DYNAMIC_LAST: VmId = VmId(0xBF);
/// Fixed VMIDs (secondary VMs) are below this.
pub const VMID_FIXED_LIMIT: u16 = 64;
/// "Any VM".
pub const VMID_ANY: VmId = VmId(0xFFFE);
/// Peer default.
pub const VMID_PEER_DEFAULT: VmId = VmId(0xFFFF);

#[cfg(test)]
mod tests {
    //! Cross-file checks: every parser against random bytes, and a full request/reply
    //! exchange through the framing.

    use super::irq::{IrqAcceptReply, IrqAcceptRequest, IrqHandle, IrqLendRequest};
    use super::irq::{IrqLentNotification, IrqNotifyRequest};
    use super::memparcel::{
        MemAcceptReply, MemAcceptRequest, MemAppendRequest, MemCreateRequest, MemHandleReply,
        MemNotifyRequest, MemOwnerNotification, MemRecallNotification, MemReleaseRequest,
        MemSharedNotification,
    };
    use super::resource::HypResourcesReply;
    use super::status::{
        VmExitedNotification, VmShutdownNotification, VmStateReply, VmStatusNotification,
    };
    use super::vm::{
        Empty, VmAllocateReply, VmConfigImageRequest, VmExitRequest, VmGetVmidReply,
        VmSetAddressLayoutRequest, VmSetBootContextRequest, VmSetDemandPagingRequest,
        VmSetFirmwareMemRequest, VmSetStatusRequest, VmStopRequest, VmidRequest,
    };
    use super::wire::test_util::XorShift;
    use super::*;
    use crate::rm::console::{ConsoleCharsNotification, ConsoleWriteRequest};

    /// Parses `bytes` as every payload type; none may panic, and whatever parses must
    /// re-encode to the same length.
    fn parse_everything(bytes: &[u8]) -> usize {
        fn check<'a, T: Decode<'a> + Encode>(bytes: &'a [u8]) -> usize {
            match T::decode(bytes) {
                Ok(v) => {
                    assert_eq!(v.encoded_len(), bytes.len());
                    let mut out = [0u8; 512];
                    if let Some(out) = out.get_mut(..bytes.len()) {
                        assert_eq!(v.encode(out), Ok(bytes.len()));
                    }
                    1
                }
                Err(e) => {
                    assert_eq!(e, RmError::MsgInvalid);
                    0
                }
            }
        }
        check::<Empty>(bytes)
            + check::<VmidRequest>(bytes)
            + check::<VmAllocateReply>(bytes)
            + check::<VmStopRequest>(bytes)
            + check::<VmConfigImageRequest>(bytes)
            + check::<VmSetStatusRequest>(bytes)
            + check::<VmExitRequest>(bytes)
            + check::<VmGetVmidReply>(bytes)
            + check::<VmSetBootContextRequest>(bytes)
            + check::<VmSetDemandPagingRequest<'_>>(bytes)
            + check::<VmSetAddressLayoutRequest>(bytes)
            + check::<VmSetFirmwareMemRequest>(bytes)
            + check::<VmStateReply>(bytes)
            + check::<VmStatusNotification>(bytes)
            + check::<VmExitedNotification<'_>>(bytes)
            + check::<VmShutdownNotification>(bytes)
            + check::<HypResourcesReply<'_>>(bytes)
            + check::<MemCreateRequest<'_>>(bytes)
            + check::<MemHandleReply>(bytes)
            + check::<MemAppendRequest<'_>>(bytes)
            + check::<MemReleaseRequest>(bytes)
            + check::<MemAcceptRequest<'_>>(bytes)
            + check::<MemAcceptReply<'_>>(bytes)
            + check::<MemNotifyRequest<'_>>(bytes)
            + check::<MemSharedNotification<'_>>(bytes)
            + check::<MemOwnerNotification>(bytes)
            + check::<MemRecallNotification>(bytes)
            + check::<IrqLendRequest>(bytes)
            + check::<IrqHandle>(bytes)
            + check::<IrqAcceptRequest>(bytes)
            + check::<IrqAcceptReply>(bytes)
            + check::<IrqNotifyRequest<'_>>(bytes)
            + check::<IrqLentNotification>(bytes)
            + check::<ConsoleWriteRequest<'_>>(bytes)
            + check::<ConsoleCharsNotification<'_>>(bytes)
    }

    #[test]
    fn random_bytes_never_panic_any_parser() {
        let mut rng = XorShift(0x0123_4567_89AB_CDEF);
        let mut buf = [0u8; 300];
        let mut parsed = 0;
        for _ in 0..50_000 {
            let n = rng.below(buf.len() + 1);
            rng.fill(&mut buf[..n]);
            // Small counts make the variable-length parsers succeed now and then.
            if n > 12 && rng.below(2) == 0 {
                for b in buf[..n].iter_mut().skip(1).step_by(2) {
                    *b &= 0x01;
                }
            }
            parsed += parse_everything(&buf[..n]);
        }
        assert!(parsed > 1_000, "{parsed}");
    }

    #[test]
    fn request_reply_exchange() {
        // Client: VM_GET_HYP_RESOURCES for VM 0x80, then the RM's reply, both framed.
        let req = VmidRequest { vmid: VmId(0x80) };
        let mut body = [0u8; 4];
        let n = req.encode(&mut body).expect("encode");
        let packets: [Packet; 1] = [Splitter::request(7, ids::VM_GET_HYP_RESOURCES, &body[..n])
            .expect("split")
            .next()
            .expect("packet")];

        let mut rx_buf = [0u8; MAX_MESSAGE_SIZE];
        let mut rx = Reassembler::new(&mut rx_buf);
        let got = rx.push(packets[0].as_bytes());
        let msg = got.message().expect("complete");
        assert_eq!(msg.kind, MessageType::Request);
        assert_eq!(ids::name(msg.id), Some("VM_GET_HYP_RESOURCES"));
        let parsed = VmidRequest::decode(msg.payload).expect("parse");
        assert_eq!(parsed.vmid, VmId(0x80));

        // RM: six vCPUs are enough to need a continuation (4 + 6 × 44 = 268 > 228).
        let entries: [resource::HypResource; 6] = core::array::from_fn(|i| resource::HypResource {
            resource_type: resource::ResourceType::VirtualCpu,
            partner_vmid: VmId(0x80),
            handle: i as u32,
            label: i as u32,
            cap_id: 0x100 + i as u64,
            virq_handle: 0,
            virq: 960 + i as u32,
            base: 0,
            size: 0,
        });
        let reply = HypResourcesReply {
            entries: List::from_slice(&entries),
        };
        let mut out = [0u8; 512];
        let n = reply.encode(&mut out).expect("encode");
        let seq = msg.seq;
        let packets: [Packet; 2] = {
            let mut s = Splitter::reply(seq, ids::VM_GET_HYP_RESOURCES, RmError::Ok, &out[..n])
                .expect("split");
            [s.next().expect("first"), s.next().expect("second")]
        };
        let mut client_buf = [0u8; MAX_MESSAGE_SIZE];
        let mut client = Reassembler::new(&mut client_buf);
        assert_eq!(
            client.push(packets[0].as_bytes()).event,
            Event::NeedMore { remaining: 1 }
        );
        let got = client.push(packets[1].as_bytes());
        let msg = got.message().expect("complete");
        assert_eq!((msg.kind, msg.seq), (MessageType::Reply, 7));
        let (code, payload) = msg.reply().expect("error word");
        assert_eq!(RmError::from_code(code), Some(RmError::Ok));
        let parsed = HypResourcesReply::decode(payload).expect("parse");
        assert_eq!(parsed, reply);
        assert_eq!(parsed.entries.get(5).map(|e| e.virq), Some(965));
    }

    #[test]
    fn fixed_vmids() {
        assert_eq!(VMID_HLOS.raw(), 3);
        assert_eq!(VMID_RM.raw(), 0xFF);
        assert_eq!(VMID_DYNAMIC_LAST.raw() - VMID_DYNAMIC_FIRST.raw() + 1, 64);
    }
}

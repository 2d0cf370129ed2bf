//! VM-management request and reply payloads (§7.6): the common 4-byte VMID request,
//! VM_ALLOCATE, VM_STOP, VM_CONFIG_IMAGE, VM_SET_STATUS, VM_EXIT, VM_GET_VMID, and the
//! Linux v16/v17 launch calls VM_SET_BOOT_CONTEXT, VM_SET_DEMAND_PAGING,
//! VM_SET_ADDRESS_LAYOUT and VM_SET_FIRMWARE_MEM.
//!
//! Fields whose values the RM must judge (auth mechanism, register set, status values) are
//! kept raw so that a server can answer `ARGUMENT_INVALID` rather than `MSG_INVALID`; the
//! matching enums decode them.

use super::error::RmError;
use super::memparcel::SglEntry;
use super::status::ExitCode;
use super::wire::{Decode, Encode, List, count_u32, decode_exact, encode_with, wire_enum};
use crate::types::VmId;

/// An empty payload (VM_GET_VMID and VM_HOST_GET_TYPE requests, standard replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Empty;

impl Encode for Empty {
    fn encoded_len(&self) -> usize {
        0
    }

    fn encode(&self, _out: &mut [u8]) -> Result<usize, RmError> {
        Ok(0)
    }
}

impl Decode<'_> for Empty {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |_| Ok(Empty))
    }
}

/// The common "VMID request": `u16 vmid, u16 reserved`, exactly 4 bytes. Used by
/// VM_ALLOCATE (0 = pick a dynamic VMID), VM_DEALLOCATE, VM_START, VM_RESET, VM_INIT,
/// VM_GET_STATE, VM_GET_HYP_RESOURCES, VM_GET_ID, VM_GET_CRASH_MSG and
/// VM_CONSOLE_OPEN/CLOSE/FLUSH (0 = the caller itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmidRequest {
    /// The VM the request is about.
    pub vmid: VmId,
}

impl Encode for VmidRequest {
    fn encoded_len(&self) -> usize {
        4
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 4, |w| {
            w.u16(self.vmid.0)?;
            w.zeros(2)
        })
    }
}

impl Decode<'_> for VmidRequest {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let vmid = VmId(r.u16()?);
            r.skip(2)?;
            Ok(VmidRequest { vmid })
        })
    }
}

/// VM_ALLOCATE reply when a dynamic VMID was picked: the VMID as a `u32` (Linux reads
/// `u16 vmid, u16 pad`). When a fixed VMID was requested the reply payload is empty
/// ([`Empty`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmAllocateReply {
    /// The allocated VMID.
    pub vmid: VmId,
}

impl Encode for VmAllocateReply {
    fn encoded_len(&self) -> usize {
        4
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 4, |w| w.u32(u32::from(self.vmid.0)))
    }
}

impl Decode<'_> for VmAllocateReply {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let vmid = VmId(r.u16()?);
            r.skip(2)?;
            Ok(VmAllocateReply { vmid })
        })
    }
}

/// VM_STOP flag: stop at once (the VM goes EXITED, the owner gets VM_EXITED with
/// [`crate::rm::status::ExitType::VmStopForced`]); without it the VM gets VM_SHUTDOWN.
pub const VM_STOP_FLAG_FORCE: u8 = 1;

/// The stop reason Linux sends with a forced VM_STOP.
pub const VM_STOP_REASON_FORCE_STOP: u32 = 3;

/// VM_STOP: `u16 vmid, u8 flags, u8 res, u32 stop_reason`, exactly 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmStopRequest {
    /// The VM to stop.
    pub vmid: VmId,
    /// [`VM_STOP_FLAG_FORCE`] and reserved bits.
    pub flags: u8,
    /// Passed to the VM in VM_SHUTDOWN when not forced.
    pub stop_reason: u32,
}

impl VmStopRequest {
    /// `true` when [`VM_STOP_FLAG_FORCE`] is set.
    pub const fn is_force(&self) -> bool {
        self.flags & VM_STOP_FLAG_FORCE != 0
    }
}

impl Encode for VmStopRequest {
    fn encoded_len(&self) -> usize {
        8
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 8, |w| {
            w.u16(self.vmid.0)?;
            w.u8(self.flags)?;
            w.u8(0)?;
            w.u32(self.stop_reason)
        })
    }
}

impl Decode<'_> for VmStopRequest {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let vmid = VmId(r.u16()?);
            let flags = r.u8()?;
            r.skip(1)?;
            Ok(VmStopRequest {
                vmid,
                flags,
                stop_reason: r.u32()?,
            })
        })
    }
}

wire_enum! {
    /// VM_CONFIG_IMAGE's authentication mechanism.
    AuthMechanism: u16 {
        /// No authentication.
        None = 0,
        /// Qualcomm PIL ELF ("platform").
        QcomPilElf = 1,
        /// Android protected VM.
        AndroidPvm = 2,
    }
}

/// VM_CONFIG_IMAGE: `u16 vmid, u16 auth_mech, u32 mem_handle, u64 image_offset,
/// u64 image_size, u64 dtb_offset, u64 dtb_size`, exactly 40 bytes. Offsets are relative to
/// the start of the memparcel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmConfigImageRequest {
    /// The VM being configured.
    pub vmid: VmId,
    /// Raw [`AuthMechanism`].
    pub auth_mech: u16,
    /// Memparcel holding the image and DT.
    pub mem_handle: u32,
    /// Image offset in the memparcel.
    pub image_offset: u64,
    /// Image size (Linux: 0).
    pub image_size: u64,
    /// DT offset in the memparcel.
    pub dtb_offset: u64,
    /// Maximum DT size.
    pub dtb_size: u64,
}

impl Encode for VmConfigImageRequest {
    fn encoded_len(&self) -> usize {
        40
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 40, |w| {
            w.u16(self.vmid.0)?;
            w.u16(self.auth_mech)?;
            w.u32(self.mem_handle)?;
            w.u64(self.image_offset)?;
            w.u64(self.image_size)?;
            w.u64(self.dtb_offset)?;
            w.u64(self.dtb_size)
        })
    }
}

impl Decode<'_> for VmConfigImageRequest {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            Ok(VmConfigImageRequest {
                vmid: VmId(r.u16()?),
                auth_mech: r.u16()?,
                mem_handle: r.u32()?,
                image_offset: r.u64()?,
                image_size: r.u64()?,
                dtb_offset: r.u64()?,
                dtb_size: r.u64()?,
            })
        })
    }
}

/// VM_SET_STATUS: `u8 vm_status, u8 os_status, u16 app_status`, exactly 4 bytes, about the
/// caller itself. The current public RM ignores byte 0 (older versions read a VM state
/// from it); `os_status` 0 means "no change".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmSetStatusRequest {
    /// Byte 0 (ignored by the current RM; send 0).
    pub vm_status: u8,
    /// Raw [`crate::rm::status::OsStatus`].
    pub os_status: u8,
    /// Application-defined status.
    pub app_status: u16,
}

impl Encode for VmSetStatusRequest {
    fn encoded_len(&self) -> usize {
        4
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 4, |w| {
            w.u8(self.vm_status)?;
            w.u8(self.os_status)?;
            w.u16(self.app_status)
        })
    }
}

impl Decode<'_> for VmSetStatusRequest {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            Ok(VmSetStatusRequest {
                vm_status: r.u8()?,
                os_status: r.u8()?,
                app_status: r.u16()?,
            })
        })
    }
}

/// VM_EXIT flag: the VM asks to be restarted.
pub const VM_EXIT_FLAG_RESTART: u16 = 1;

/// VM_EXIT: `u16 exit_flags, u8 exit_code, u8 res0`, exactly 4 bytes. As in the public RM,
/// a non-zero `res0` or an undefined exit code is `MsgInvalid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmExitRequest {
    /// [`VM_EXIT_FLAG_RESTART`] and other flags (forwarded in VM_EXITED's reason word).
    pub flags: u16,
    /// The exit code.
    pub exit_code: ExitCode,
}

impl Encode for VmExitRequest {
    fn encoded_len(&self) -> usize {
        4
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 4, |w| {
            w.u16(self.flags)?;
            w.u8(self.exit_code.raw())?;
            w.u8(0)
        })
    }
}

impl Decode<'_> for VmExitRequest {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let flags = r.u16()?;
            let exit_code = ExitCode::from_raw(r.u8()?).ok_or(RmError::MsgInvalid)?;
            if r.u8()? != 0 {
                return Err(RmError::MsgInvalid);
            }
            Ok(VmExitRequest { flags, exit_code })
        })
    }
}

/// VM_GET_VMID reply: a `u32` whose low 16 bits are the caller's VMID (the request is
/// [`Empty`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmGetVmidReply {
    /// The caller's VMID.
    pub vmid: VmId,
}

impl Encode for VmGetVmidReply {
    fn encoded_len(&self) -> usize {
        4
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 4, |w| w.u32(u32::from(self.vmid.0)))
    }
}

impl Decode<'_> for VmGetVmidReply {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            Ok(VmGetVmidReply {
                vmid: VmId(r.u32()? as u16),
            })
        })
    }
}

wire_enum! {
    /// VM_SET_BOOT_CONTEXT register set (Linux `enum gunyah_vm_boot_context_reg`).
    BootRegSet: u8 {
        /// General-purpose register `X<reg_index>`.
        X = 0,
        /// The program counter (`reg_index` 0).
        Pc = 1,
        /// A stack pointer (`reg_index` selects which).
        Sp = 2,
    }
}

/// VM_SET_BOOT_CONTEXT (Linux only): `u16 vmid, u8 reg_set, u8 reg_index, u32 pad,
/// u64 value`, exactly 16 bytes. Sets a boot register of the VM's primary vCPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmSetBootContextRequest {
    /// The VM.
    pub vmid: VmId,
    /// Raw [`BootRegSet`].
    pub reg_set: u8,
    /// Register index within the set.
    pub reg_index: u8,
    /// The value.
    pub value: u64,
}

impl Encode for VmSetBootContextRequest {
    fn encoded_len(&self) -> usize {
        16
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 16, |w| {
            w.u16(self.vmid.0)?;
            w.u8(self.reg_set)?;
            w.u8(self.reg_index)?;
            w.zeros(4)?;
            w.u64(self.value)
        })
    }
}

impl Decode<'_> for VmSetBootContextRequest {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let vmid = VmId(r.u16()?);
            let reg_set = r.u8()?;
            let reg_index = r.u8()?;
            r.skip(4)?;
            Ok(VmSetBootContextRequest {
                vmid,
                reg_set,
                reg_index,
                value: r.u64()?,
            })
        })
    }
}

/// VM_SET_DEMAND_PAGING (Linux only): `u16 vmid, u16 pad, u32 range_count`, then
/// `range_count` × `{u64 base, u64 size}`; the length must be exactly `8 + 16 × count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmSetDemandPagingRequest<'a> {
    /// The VM.
    pub vmid: VmId,
    /// The demand-paged ranges (`ipa` = base).
    pub ranges: List<'a, SglEntry>,
}

impl Encode for VmSetDemandPagingRequest<'_> {
    fn encoded_len(&self) -> usize {
        8usize.saturating_add(self.ranges.wire_len())
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        let count = count_u32(self.ranges.len())?;
        encode_with(out, self.encoded_len(), |w| {
            w.u16(self.vmid.0)?;
            w.zeros(2)?;
            w.u32(count)?;
            w.list(&self.ranges)
        })
    }
}

impl<'a> Decode<'a> for VmSetDemandPagingRequest<'a> {
    fn decode(payload: &'a [u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let vmid = VmId(r.u16()?);
            r.skip(2)?;
            let count = usize::try_from(r.u32()?).map_err(|_| RmError::MsgInvalid)?;
            Ok(VmSetDemandPagingRequest {
                vmid,
                ranges: r.list(count)?,
            })
        })
    }
}

wire_enum! {
    /// VM_SET_ADDRESS_LAYOUT range identifier.
    AddressRangeId: u32 {
        /// The image (memparcel) range.
        Image = 0,
        /// The firmware range.
        Firmware = 1,
    }
}

/// VM_SET_ADDRESS_LAYOUT (Linux only): `u16 vmid, u16 pad, u32 range_id, u64 base,
/// u64 size`, exactly 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmSetAddressLayoutRequest {
    /// The VM.
    pub vmid: VmId,
    /// Raw [`AddressRangeId`].
    pub range_id: u32,
    /// Range base (guest physical).
    pub base: u64,
    /// Range size.
    pub size: u64,
}

impl Encode for VmSetAddressLayoutRequest {
    fn encoded_len(&self) -> usize {
        24
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 24, |w| {
            w.u16(self.vmid.0)?;
            w.zeros(2)?;
            w.u32(self.range_id)?;
            w.u64(self.base)?;
            w.u64(self.size)
        })
    }
}

impl Decode<'_> for VmSetAddressLayoutRequest {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let vmid = VmId(r.u16()?);
            r.skip(2)?;
            Ok(VmSetAddressLayoutRequest {
                vmid,
                range_id: r.u32()?,
                base: r.u64()?,
                size: r.u64()?,
            })
        })
    }
}

/// VM_SET_FIRMWARE_MEM: `u16 vmid, u16 res, u32 fw_mem_handle, u64 fw_offset, u64 fw_size`,
/// exactly 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmSetFirmwareMemRequest {
    /// The VM.
    pub vmid: VmId,
    /// Memparcel holding the firmware.
    pub mem_handle: u32,
    /// Firmware offset in the memparcel.
    pub fw_offset: u64,
    /// Firmware size.
    pub fw_size: u64,
}

impl Encode for VmSetFirmwareMemRequest {
    fn encoded_len(&self) -> usize {
        24
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 24, |w| {
            w.u16(self.vmid.0)?;
            w.zeros(2)?;
            w.u32(self.mem_handle)?;
            w.u64(self.fw_offset)?;
            w.u64(self.fw_size)
        })
    }
}

impl Decode<'_> for VmSetFirmwareMemRequest {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let vmid = VmId(r.u16()?);
            r.skip(2)?;
            Ok(VmSetFirmwareMemRequest {
                vmid,
                mem_handle: r.u32()?,
                fw_offset: r.u64()?,
                fw_size: r.u64()?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rm::wire::test_util::{round_trip, round_trip_borrowed};

    #[test]
    fn vmid_request_is_exactly_four_bytes() {
        let req = VmidRequest { vmid: VmId(0x1234) };
        assert_eq!(round_trip(&req), 4);
        let mut buf = [0xFFu8; 4];
        assert_eq!(req.encode(&mut buf), Ok(4));
        assert_eq!(buf, [0x34, 0x12, 0, 0]);
        // Reserved bytes are ignored.
        assert_eq!(
            VmidRequest::decode(&[3, 0, 9, 9]),
            Ok(VmidRequest { vmid: VmId(3) })
        );
        for len in [0, 1, 2, 3, 5, 8] {
            assert_eq!(
                VmidRequest::decode(&[0; 8][..len]),
                Err(RmError::MsgInvalid)
            );
        }
    }

    #[test]
    fn empty_payloads() {
        assert_eq!(round_trip(&Empty), 0);
        assert_eq!(Empty::decode(&[0]), Err(RmError::MsgInvalid));
    }

    #[test]
    fn allocate_and_get_vmid_replies() {
        assert_eq!(round_trip(&VmAllocateReply { vmid: VmId(0x80) }), 4);
        assert_eq!(
            VmAllocateReply::decode(&[0xBF, 0, 0, 0]),
            Ok(VmAllocateReply { vmid: VmId(0xBF) })
        );
        assert_eq!(round_trip(&VmGetVmidReply { vmid: VmId(3) }), 4);
        assert_eq!(
            VmGetVmidReply::decode(&[3, 0, 0xAA, 0xBB]),
            Ok(VmGetVmidReply { vmid: VmId(3) })
        );
    }

    #[test]
    fn stop_request() {
        let req = VmStopRequest {
            vmid: VmId(0x81),
            flags: VM_STOP_FLAG_FORCE,
            stop_reason: VM_STOP_REASON_FORCE_STOP,
        };
        assert!(req.is_force());
        assert_eq!(round_trip(&req), 8);
        let mut buf = [0u8; 8];
        assert_eq!(req.encode(&mut buf), Ok(8));
        assert_eq!(buf, [0x81, 0, 1, 0, 3, 0, 0, 0]);
        assert!(!VmStopRequest { flags: 0, ..req }.is_force());
    }

    #[test]
    fn config_image_request() {
        let req = VmConfigImageRequest {
            vmid: VmId(0x80),
            auth_mech: AuthMechanism::None.raw(),
            mem_handle: 7,
            image_offset: 0,
            image_size: 0,
            dtb_offset: 0x1000,
            dtb_size: 0x2000,
        };
        assert_eq!(round_trip(&req), 40);
        assert_eq!(AuthMechanism::from_raw(2), Some(AuthMechanism::AndroidPvm));
        assert_eq!(AuthMechanism::from_raw(3), None);
    }

    #[test]
    fn status_and_exit_requests() {
        let req = VmSetStatusRequest {
            vm_status: 0,
            os_status: 4,
            app_status: 0xBEEF,
        };
        assert_eq!(round_trip(&req), 4);

        let exit = VmExitRequest {
            flags: VM_EXIT_FLAG_RESTART,
            exit_code: ExitCode::SoftwareError,
        };
        assert_eq!(round_trip(&exit), 4);
        assert_eq!(
            VmExitRequest::decode(&[1, 0, 1, 1]),
            Err(RmError::MsgInvalid)
        );
        assert_eq!(
            VmExitRequest::decode(&[0, 0, 5, 0]),
            Err(RmError::MsgInvalid)
        );
        assert_eq!(
            VmExitRequest::decode(&[0, 0, 4, 0]),
            Ok(VmExitRequest {
                flags: 0,
                exit_code: ExitCode::DeviceError
            })
        );
    }

    #[test]
    fn linux_launch_requests() {
        let ctx = VmSetBootContextRequest {
            vmid: VmId(0x80),
            reg_set: BootRegSet::Pc.raw(),
            reg_index: 0,
            value: 0x8000_0000,
        };
        assert_eq!(round_trip(&ctx), 16);
        let mut buf = [0u8; 16];
        assert_eq!(ctx.encode(&mut buf), Ok(16));
        assert_eq!(buf[..8], [0x80, 0, 1, 0, 0, 0, 0, 0]);
        assert_eq!(BootRegSet::from_raw(3), None);

        let ranges = [
            SglEntry {
                ipa: 0x8000_0000,
                size: 0x1000_0000,
            },
            SglEntry {
                ipa: 0xA000_0000,
                size: 0x20_0000,
            },
        ];
        let dp = VmSetDemandPagingRequest {
            vmid: VmId(0x80),
            ranges: List::from_slice(&ranges),
        };
        let mut buf = [0u8; 64];
        assert_eq!(round_trip_borrowed(&dp, &mut buf), 8 + 32);
        assert_eq!(buf[4..8], [2, 0, 0, 0]);
        // The count must match the length exactly.
        let mut bad = buf;
        bad[4] = 3;
        assert_eq!(
            VmSetDemandPagingRequest::decode(&bad[..40]),
            Err(RmError::MsgInvalid)
        );
        bad[4] = 1;
        assert_eq!(
            VmSetDemandPagingRequest::decode(&bad[..40]),
            Err(RmError::MsgInvalid)
        );
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            VmSetDemandPagingRequest::decode(&bad[..40]),
            Err(RmError::MsgInvalid)
        );
        let none = VmSetDemandPagingRequest {
            vmid: VmId(1),
            ranges: List::empty(),
        };
        let mut buf = [0u8; 16];
        assert_eq!(round_trip_borrowed(&none, &mut buf), 8);

        let layout = VmSetAddressLayoutRequest {
            vmid: VmId(0x80),
            range_id: AddressRangeId::Image.raw(),
            base: 0x8000_0000,
            size: 0x100_0000,
        };
        assert_eq!(round_trip(&layout), 24);
        assert_eq!(AddressRangeId::from_raw(1), Some(AddressRangeId::Firmware));

        let fw = VmSetFirmwareMemRequest {
            vmid: VmId(0x80),
            mem_handle: 9,
            fw_offset: 0x10,
            fw_size: 0x20,
        };
        assert_eq!(round_trip(&fw), 24);
    }
}

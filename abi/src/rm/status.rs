//! VM lifecycle values and the payloads that report them: VM status (with the RM's state
//! machine), OS status, exit types and codes, the VM_GET_STATE reply word, and the
//! VM_STATUS, VM_EXITED and VM_SHUTDOWN notifications.

use super::error::RmError;
use super::wire::{Decode, Encode, decode_exact, encode_with, wire_enum};
use crate::types::VmId;

wire_enum! {
    /// The RM's VM state (`vm_status`); 7 is reserved.
    VmStatus: u8 {
        /// No VM (before VM_ALLOCATE, after deallocation).
        NoState = 0,
        /// Being initialised (VM_INIT in progress).
        Init = 1,
        /// Initialised; can be started.
        Ready = 2,
        /// Running.
        Running = 3,
        /// Paused.
        Paused = 4,
        /// Allocated; image being configured.
        Load = 5,
        /// Image being authenticated.
        Auth = 6,
        /// Initialisation or start failed.
        InitFailed = 8,
        /// Exited (stopped, crashed or exited itself).
        Exited = 9,
        /// VM_RESET in progress.
        Resetting = 10,
        /// Reset finished; can be deallocated or re-initialised.
        Reset = 11,
    }
}

impl VmStatus {
    /// The public RM's transition table (`vm_mgnt_state_change_valid`), ignoring its per-VM
    /// `no_shutdown`/`crash_fatal` restrictions on entering PAUSED and EXITED.
    pub const fn can_become(self, to: VmStatus) -> bool {
        use VmStatus::*;
        match to {
            Load => matches!(self, NoState),
            Auth => matches!(self, Load | Reset),
            Init => matches!(self, Load | Auth | Reset),
            Ready => matches!(self, Init),
            Running => matches!(self, Ready | Paused),
            Paused => matches!(self, Running),
            InitFailed => matches!(self, Init | Ready | Load | Auth | Reset),
            Exited => matches!(self, Running | Paused),
            Resetting => matches!(self, Exited | Ready | InitFailed),
            Reset => matches!(self, Resetting),
            NoState => matches!(self, Reset),
        }
    }
}

wire_enum! {
    /// The guest OS's self-reported state (`os_status`, set by VM_SET_STATUS).
    OsStatus: u8 {
        /// Nothing reported (in VM_SET_STATUS: "no change").
        None = 0,
        /// Early boot.
        EarlyBoot = 1,
        /// Booting.
        Boot = 2,
        /// OS initialisation.
        Init = 3,
        /// Running.
        Run = 4,
        /// Shutting down.
        Shutdown = 5,
        /// Halted.
        Halted = 6,
        /// Crashed.
        Crashed = 7,
    }
}

wire_enum! {
    /// Why a VM exited (VM_EXITED `exit_type`).
    ExitType: u16 {
        /// The VM called VM_EXIT.
        VmExit = 0,
        /// PSCI SYSTEM_OFF.
        PlatformOff = 1,
        /// PSCI SYSTEM_RESET.
        PlatformReset = 2,
        /// PSCI SYSTEM_RESET2.
        PsciSystemReset2 = 3,
        /// Watchdog bite.
        WatchdogBite = 4,
        /// Software error.
        SoftwareError = 5,
        /// Asynchronous hardware error.
        AsyncHwError = 6,
        /// VM_STOP with the FORCE flag.
        VmStopForced = 7,
    }
}

wire_enum! {
    /// The exit code a VM passes to VM_EXIT.
    ExitCode: u8 {
        /// Normal exit.
        Normal = 0,
        /// Software error.
        SoftwareError = 1,
        /// Unknown error (the public RM refuses it in VM_EXIT).
        UnknownError = 2,
        /// Bus error.
        BusError = 3,
        /// Device error.
        DeviceError = 4,
    }
}

/// VM_GET_STATE reply: one `u32` = `vm_status[7:0] | os_status[15:8] | app_status[31:16]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmStateReply {
    /// VM state.
    pub vm_status: VmStatus,
    /// OS state.
    pub os_status: OsStatus,
    /// Application-defined status.
    pub app_status: u16,
}

impl VmStateReply {
    /// The packed status word.
    pub const fn to_word(&self) -> u32 {
        self.vm_status.raw() as u32
            | (self.os_status.raw() as u32) << 8
            | (self.app_status as u32) << 16
    }

    /// Unpacks a status word; `MsgInvalid` for undefined status values.
    pub const fn from_word(word: u32) -> Result<VmStateReply, RmError> {
        let (Some(vm_status), Some(os_status)) = (
            VmStatus::from_raw(word as u8),
            OsStatus::from_raw((word >> 8) as u8),
        ) else {
            return Err(RmError::MsgInvalid);
        };
        Ok(VmStateReply {
            vm_status,
            os_status,
            app_status: (word >> 16) as u16,
        })
    }
}

impl Encode for VmStateReply {
    fn encoded_len(&self) -> usize {
        4
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 4, |w| w.u32(self.to_word()))
    }
}

impl Decode<'_> for VmStateReply {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| VmStateReply::from_word(r.u32()?))
    }
}

/// NOTIFY_VM_STATUS: `u16 vmid, u16 res, u8 vm_status, u8 os_status, u16 app_status`
/// (8 bytes), sent to a VM's peers (Linux: its owner) when its status changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmStatusNotification {
    /// The VM whose status changed.
    pub vmid: VmId,
    /// Its VM state.
    pub vm_status: VmStatus,
    /// Its OS state.
    pub os_status: OsStatus,
    /// Its application status.
    pub app_status: u16,
}

impl Encode for VmStatusNotification {
    fn encoded_len(&self) -> usize {
        8
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 8, |w| {
            w.u16(self.vmid.0)?;
            w.zeros(2)?;
            w.u8(self.vm_status.raw())?;
            w.u8(self.os_status.raw())?;
            w.u16(self.app_status)
        })
    }
}

impl Decode<'_> for VmStatusNotification {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let vmid = VmId(r.u16()?);
            r.skip(2)?;
            let vm_status = VmStatus::from_raw(r.u8()?).ok_or(RmError::MsgInvalid)?;
            let os_status = OsStatus::from_raw(r.u8()?).ok_or(RmError::MsgInvalid)?;
            Ok(VmStatusNotification {
                vmid,
                vm_status,
                os_status,
                app_status: r.u16()?,
            })
        })
    }
}

/// The RM's first exit-reason word: `exit_flags[15:0] | exit_code << 16` (as bytes).
pub const fn exit_reason_word(exit_flags: u16, exit_code: ExitCode) -> [u8; 4] {
    ((exit_flags as u32) | (exit_code.raw() as u32) << 16).to_le_bytes()
}

/// NOTIFY_VM_EXITED: `u16 vmid, u16 exit_type, u32 exit_reason_size, exit_reason[size]`,
/// sent to the owner when a VM exits. The public RM's reason starts with
/// [`exit_reason_word`]; the reason's length must match the size field exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmExitedNotification<'a> {
    /// The VM that exited.
    pub vmid: VmId,
    /// Why.
    pub exit_type: ExitType,
    /// The exit reason bytes.
    pub reason: &'a [u8],
}

impl VmExitedNotification<'_> {
    /// The `(exit_flags, exit_code)` of the RM's first reason word, if the reason holds one.
    pub fn reason_word(&self) -> Option<(u16, u8)> {
        let (word, _) = self.reason.split_first_chunk::<4>()?;
        let word = u32::from_le_bytes(*word);
        Some((word as u16, (word >> 16) as u8))
    }
}

impl Encode for VmExitedNotification<'_> {
    fn encoded_len(&self) -> usize {
        8usize.saturating_add(self.reason.len())
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        let size = u32::try_from(self.reason.len()).map_err(|_| RmError::MsgInvalid)?;
        encode_with(out, self.encoded_len(), |w| {
            w.u16(self.vmid.0)?;
            w.u16(self.exit_type.raw())?;
            w.u32(size)?;
            w.bytes(self.reason)
        })
    }
}

impl<'a> Decode<'a> for VmExitedNotification<'a> {
    fn decode(payload: &'a [u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            let vmid = VmId(r.u16()?);
            let exit_type = ExitType::from_raw(r.u16()?).ok_or(RmError::MsgInvalid)?;
            let size = usize::try_from(r.u32()?).map_err(|_| RmError::MsgInvalid)?;
            Ok(VmExitedNotification {
                vmid,
                exit_type,
                reason: r.bytes(size)?,
            })
        })
    }
}

/// NOTIFY_VM_SHUTDOWN: the `u32` stop reason of a non-forced VM_STOP, sent to the VM itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmShutdownNotification {
    /// The stop reason from VM_STOP.
    pub stop_reason: u32,
}

impl Encode for VmShutdownNotification {
    fn encoded_len(&self) -> usize {
        4
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError> {
        encode_with(out, 4, |w| w.u32(self.stop_reason))
    }
}

impl Decode<'_> for VmShutdownNotification {
    fn decode(payload: &[u8]) -> Result<Self, RmError> {
        decode_exact(payload, |r| {
            Ok(VmShutdownNotification {
                stop_reason: r.u32()?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rm::wire::test_util::{round_trip, round_trip_borrowed};

    #[test]
    fn enum_values() {
        assert_eq!(VmStatus::ALL.len(), 11);
        assert_eq!(VmStatus::from_raw(7), None);
        assert_eq!(VmStatus::from_raw(11), Some(VmStatus::Reset));
        assert_eq!(VmStatus::InitFailed.raw(), 8);
        assert_eq!(OsStatus::from_raw(7), Some(OsStatus::Crashed));
        assert_eq!(OsStatus::from_raw(8), None);
        assert_eq!(ExitType::VmStopForced.raw(), 7);
        assert_eq!(ExitType::from_raw(8), None);
        assert_eq!(ExitCode::DeviceError.raw(), 4);
        assert_eq!(ExitCode::from_raw(5), None);
        for &s in VmStatus::ALL {
            assert_eq!(VmStatus::from_raw(s.raw()), Some(s));
        }
    }

    #[test]
    fn state_machine() {
        use VmStatus::*;
        let path = [
            NoState, Load, Init, Ready, Running, Paused, Running, Exited, Resetting, Reset, NoState,
        ];
        for pair in path.windows(2) {
            assert!(pair[0].can_become(pair[1]), "{pair:?}");
        }
        assert!(Load.can_become(Auth) && Auth.can_become(Init));
        assert!(Reset.can_become(Init) && Ready.can_become(Resetting));
        assert!(!Running.can_become(Ready));
        assert!(!NoState.can_become(Running));
        assert!(!Exited.can_become(Running));
        assert!(!Reset.can_become(Reset));
    }

    #[test]
    fn state_word() {
        let s = VmStateReply {
            vm_status: VmStatus::Running,
            os_status: OsStatus::Boot,
            app_status: 0xABCD,
        };
        assert_eq!(s.to_word(), 0xABCD_0203);
        assert_eq!(VmStateReply::from_word(0xABCD_0203), Ok(s));
        assert_eq!(VmStateReply::from_word(7), Err(RmError::MsgInvalid));
        assert_eq!(VmStateReply::from_word(0x0900), Err(RmError::MsgInvalid));
        assert_eq!(round_trip(&s), 4);
    }

    #[test]
    fn notifications_round_trip() {
        let n = VmStatusNotification {
            vmid: VmId(0x80),
            vm_status: VmStatus::Reset,
            os_status: OsStatus::None,
            app_status: 0x1234,
        };
        assert_eq!(round_trip(&n), 8);
        let mut buf = [0u8; 8];
        assert_eq!(n.encode(&mut buf), Ok(8));
        assert_eq!(buf, [0x80, 0, 0, 0, 11, 0, 0x34, 0x12]);
        assert_eq!(
            VmStatusNotification::decode(&[0x80, 0, 0, 0, 7, 0, 0, 0]),
            Err(RmError::MsgInvalid)
        );

        let word = exit_reason_word(1, ExitCode::BusError);
        assert_eq!(word, [1, 0, 3, 0]);
        let e = VmExitedNotification {
            vmid: VmId(0x81),
            exit_type: ExitType::VmExit,
            reason: &word,
        };
        let mut buf = [0u8; 64];
        assert_eq!(round_trip_borrowed(&e, &mut buf), 12);
        assert_eq!(buf[..8], [0x81, 0, 0, 0, 4, 0, 0, 0]);
        assert_eq!(e.reason_word(), Some((1, 3)));
        let empty = VmExitedNotification {
            vmid: VmId(1),
            exit_type: ExitType::VmStopForced,
            reason: &[],
        };
        assert_eq!(empty.reason_word(), None);
        let mut buf = [0u8; 64];
        assert_eq!(round_trip_borrowed(&empty, &mut buf), 8);
        // The size field must match what follows.
        assert_eq!(
            VmExitedNotification::decode(&[1, 0, 7, 0, 5, 0, 0, 0, 1, 2, 3, 4]),
            Err(RmError::MsgInvalid)
        );
        assert_eq!(
            VmExitedNotification::decode(&[1, 0, 9, 0, 0, 0, 0, 0]),
            Err(RmError::MsgInvalid)
        );

        assert_eq!(round_trip(&VmShutdownNotification { stop_reason: 3 }), 4);
    }
}

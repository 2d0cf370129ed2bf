//! Power State Coordination Interface (PSCI 1.1, Arm DEN0022) function IDs,
//! return codes and a typed decoder.
//!
//! PSCI lives in the SMCCC standard-secure owner range: SMC32 IDs are
//! `0x8400_00xx`, SMC64 IDs `0xC400_00xx`. Gunyah's `vm/psci` module answers
//! these for guests (virtual PSCI); the hypervisor itself also issues them to
//! firmware.

use crate::smccc::{CallingConvention, SVE_HINT_BIT};

const SMC32_BASE: u32 = 0x8400_0000;
const SMC64_BASE: u32 = 0xC400_0000;

/// `PSCI_VERSION`.
pub const PSCI_VERSION: u32 = 0x8400_0000;
/// `CPU_SUSPEND` (SMC32).
pub const CPU_SUSPEND_32: u32 = 0x8400_0001;
/// `CPU_SUSPEND` (SMC64).
pub const CPU_SUSPEND_64: u32 = 0xC400_0001;
/// `CPU_OFF`.
pub const CPU_OFF: u32 = 0x8400_0002;
/// `CPU_ON` (SMC32).
pub const CPU_ON_32: u32 = 0x8400_0003;
/// `CPU_ON` (SMC64).
pub const CPU_ON_64: u32 = 0xC400_0003;
/// `AFFINITY_INFO` (SMC32).
pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
/// `AFFINITY_INFO` (SMC64).
pub const AFFINITY_INFO_64: u32 = 0xC400_0004;
/// `MIGRATE` (SMC32).
pub const MIGRATE_32: u32 = 0x8400_0005;
/// `MIGRATE` (SMC64).
pub const MIGRATE_64: u32 = 0xC400_0005;
/// `MIGRATE_INFO_TYPE`.
pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
/// `MIGRATE_INFO_UP_CPU` (SMC32).
pub const MIGRATE_INFO_UP_CPU_32: u32 = 0x8400_0007;
/// `MIGRATE_INFO_UP_CPU` (SMC64).
pub const MIGRATE_INFO_UP_CPU_64: u32 = 0xC400_0007;
/// `SYSTEM_OFF`.
pub const SYSTEM_OFF: u32 = 0x8400_0008;
/// `SYSTEM_RESET`.
pub const SYSTEM_RESET: u32 = 0x8400_0009;
/// `PSCI_FEATURES`.
pub const PSCI_FEATURES: u32 = 0x8400_000A;
/// `CPU_FREEZE`.
pub const CPU_FREEZE: u32 = 0x8400_000B;
/// `CPU_DEFAULT_SUSPEND` (SMC32).
pub const CPU_DEFAULT_SUSPEND_32: u32 = 0x8400_000C;
/// `CPU_DEFAULT_SUSPEND` (SMC64).
pub const CPU_DEFAULT_SUSPEND_64: u32 = 0xC400_000C;
/// `NODE_HW_STATE` (SMC32).
pub const NODE_HW_STATE_32: u32 = 0x8400_000D;
/// `NODE_HW_STATE` (SMC64).
pub const NODE_HW_STATE_64: u32 = 0xC400_000D;
/// `SYSTEM_SUSPEND` (SMC32).
pub const SYSTEM_SUSPEND_32: u32 = 0x8400_000E;
/// `SYSTEM_SUSPEND` (SMC64).
pub const SYSTEM_SUSPEND_64: u32 = 0xC400_000E;
/// `PSCI_SET_SUSPEND_MODE`.
pub const PSCI_SET_SUSPEND_MODE: u32 = 0x8400_000F;
/// `PSCI_STAT_RESIDENCY` (SMC32).
pub const PSCI_STAT_RESIDENCY_32: u32 = 0x8400_0010;
/// `PSCI_STAT_RESIDENCY` (SMC64).
pub const PSCI_STAT_RESIDENCY_64: u32 = 0xC400_0010;
/// `PSCI_STAT_COUNT` (SMC32).
pub const PSCI_STAT_COUNT_32: u32 = 0x8400_0011;
/// `PSCI_STAT_COUNT` (SMC64).
pub const PSCI_STAT_COUNT_64: u32 = 0xC400_0011;
/// `SYSTEM_RESET2` (SMC32).
pub const SYSTEM_RESET2_32: u32 = 0x8400_0012;
/// `SYSTEM_RESET2` (SMC64).
pub const SYSTEM_RESET2_64: u32 = 0xC400_0012;
/// `MEM_PROTECT`.
pub const MEM_PROTECT: u32 = 0x8400_0013;
/// `MEM_PROTECT_CHECK_RANGE` (SMC32).
pub const MEM_PROTECT_CHECK_RANGE_32: u32 = 0x8400_0014;
/// `MEM_PROTECT_CHECK_RANGE` (SMC64).
pub const MEM_PROTECT_CHECK_RANGE_64: u32 = 0xC400_0014;

/// `PSCI_VERSION` result for PSCI 0.2.
pub const PSCI_VERSION_0_2: u32 = version(0, 2);
/// `PSCI_VERSION` result for PSCI 1.0.
pub const PSCI_VERSION_1_0: u32 = version(1, 0);
/// `PSCI_VERSION` result for PSCI 1.1.
pub const PSCI_VERSION_1_1: u32 = version(1, 1);

/// Encodes a PSCI version: major in bits 30:16, minor in bits 15:0.
pub const fn version(major: u16, minor: u16) -> u32 {
    (((major & 0x7FFF) as u32) << 16) | minor as u32
}

/// `SYSTEM_RESET2` reset type bit 31: vendor-specific reset.
pub const SYSTEM_RESET2_VENDOR: u32 = 1 << 31;
/// `SYSTEM_RESET2` architectural reset type 0: warm reset.
pub const SYSTEM_RESET2_WARM_RESET: u32 = 0;

/// `PSCI_FEATURES(CPU_SUSPEND)` flag bit 0: OS-initiated mode supported.
pub const FEATURES_CPU_SUSPEND_OSI: u32 = 1 << 0;
/// `PSCI_FEATURES(CPU_SUSPEND)` flag bit 1: extended StateID format.
pub const FEATURES_CPU_SUSPEND_EXTENDED_STATE_ID: u32 = 1 << 1;

/// A PSCI return code (`int32`, sign-extended in 64-bit result registers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PsciReturn {
    /// 0.
    Success,
    /// -1.
    NotSupported,
    /// -2.
    InvalidParameters,
    /// -3.
    Denied,
    /// -4.
    AlreadyOn,
    /// -5.
    OnPending,
    /// -6.
    InternalFailure,
    /// -7.
    NotPresent,
    /// -8.
    Disabled,
    /// -9.
    InvalidAddress,
}

impl PsciReturn {
    /// Every return code, in numeric order from 0 downwards.
    pub const ALL: [PsciReturn; 10] = [
        PsciReturn::Success,
        PsciReturn::NotSupported,
        PsciReturn::InvalidParameters,
        PsciReturn::Denied,
        PsciReturn::AlreadyOn,
        PsciReturn::OnPending,
        PsciReturn::InternalFailure,
        PsciReturn::NotPresent,
        PsciReturn::Disabled,
        PsciReturn::InvalidAddress,
    ];

    /// The numeric code.
    pub const fn to_i32(self) -> i32 {
        match self {
            PsciReturn::Success => 0,
            PsciReturn::NotSupported => -1,
            PsciReturn::InvalidParameters => -2,
            PsciReturn::Denied => -3,
            PsciReturn::AlreadyOn => -4,
            PsciReturn::OnPending => -5,
            PsciReturn::InternalFailure => -6,
            PsciReturn::NotPresent => -7,
            PsciReturn::Disabled => -8,
            PsciReturn::InvalidAddress => -9,
        }
    }

    /// Decodes a numeric code.
    pub const fn from_i32(code: i32) -> Option<PsciReturn> {
        Some(match code {
            0 => PsciReturn::Success,
            -1 => PsciReturn::NotSupported,
            -2 => PsciReturn::InvalidParameters,
            -3 => PsciReturn::Denied,
            -4 => PsciReturn::AlreadyOn,
            -5 => PsciReturn::OnPending,
            -6 => PsciReturn::InternalFailure,
            -7 => PsciReturn::NotPresent,
            -8 => PsciReturn::Disabled,
            -9 => PsciReturn::InvalidAddress,
            _ => return None,
        })
    }

    /// The value for `X0`: the code sign-extended to 64 bits (correct for both
    /// SMC32 callers, which read `W0`, and SMC64 callers).
    pub const fn to_register(self) -> u64 {
        self.to_i32() as i64 as u64
    }

    /// Decodes `X0`, accepting either a sign-extended 64-bit value or a
    /// zero-extended 32-bit value (an SMC32 callee may leave the upper half
    /// clear).
    pub const fn from_register(reg: u64) -> Option<PsciReturn> {
        let low = reg as u32 as i32;
        if reg == low as i64 as u64 || reg == low as u32 as u64 {
            PsciReturn::from_i32(low)
        } else {
            None
        }
    }
}

impl From<PsciReturn> for i32 {
    fn from(ret: PsciReturn) -> Self {
        ret.to_i32()
    }
}

/// `AFFINITY_INFO` result states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AffinityState {
    /// 0: at least one core in the affinity instance is on.
    On,
    /// 1: all cores are off.
    Off,
    /// 2: a `CPU_ON` is in progress.
    OnPending,
}

impl AffinityState {
    /// Every state.
    pub const ALL: [AffinityState; 3] = [
        AffinityState::On,
        AffinityState::Off,
        AffinityState::OnPending,
    ];

    /// The numeric state.
    pub const fn to_u32(self) -> u32 {
        match self {
            AffinityState::On => 0,
            AffinityState::Off => 1,
            AffinityState::OnPending => 2,
        }
    }

    /// Decodes a numeric state.
    pub const fn from_u32(value: u32) -> Option<AffinityState> {
        Some(match value {
            0 => AffinityState::On,
            1 => AffinityState::Off,
            2 => AffinityState::OnPending,
            _ => return None,
        })
    }

    /// The value for `X0`.
    pub const fn to_register(self) -> u64 {
        self.to_u32() as u64
    }
}

/// A PSCI call decoded from its function ID.
///
/// Calls that exist in both conventions carry the [`CallingConvention`];
/// the others exist only as SMC32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PsciCall {
    /// `PSCI_VERSION`.
    Version,
    /// `CPU_SUSPEND`.
    CpuSuspend(CallingConvention),
    /// `CPU_OFF`.
    CpuOff,
    /// `CPU_ON`.
    CpuOn(CallingConvention),
    /// `AFFINITY_INFO`.
    AffinityInfo(CallingConvention),
    /// `MIGRATE`.
    Migrate(CallingConvention),
    /// `MIGRATE_INFO_TYPE`.
    MigrateInfoType,
    /// `MIGRATE_INFO_UP_CPU`.
    MigrateInfoUpCpu(CallingConvention),
    /// `SYSTEM_OFF`.
    SystemOff,
    /// `SYSTEM_RESET`.
    SystemReset,
    /// `PSCI_FEATURES`.
    Features,
    /// `CPU_FREEZE`.
    CpuFreeze,
    /// `CPU_DEFAULT_SUSPEND`.
    CpuDefaultSuspend(CallingConvention),
    /// `NODE_HW_STATE`.
    NodeHwState(CallingConvention),
    /// `SYSTEM_SUSPEND`.
    SystemSuspend(CallingConvention),
    /// `PSCI_SET_SUSPEND_MODE`.
    SetSuspendMode,
    /// `PSCI_STAT_RESIDENCY`.
    StatResidency(CallingConvention),
    /// `PSCI_STAT_COUNT`.
    StatCount(CallingConvention),
    /// `SYSTEM_RESET2`.
    SystemReset2(CallingConvention),
    /// `MEM_PROTECT`.
    MemProtect,
    /// `MEM_PROTECT_CHECK_RANGE`.
    MemProtectCheckRange(CallingConvention),
    /// Any other function ID (kept verbatim; answer `NOT_SUPPORTED`).
    Unknown(u32),
}

impl PsciCall {
    /// Decodes a function ID. The SMCCC 1.3 SVE hint bit is ignored; anything
    /// that is not a PSCI 1.1 function becomes [`PsciCall::Unknown`].
    pub const fn from_function_id(fid: u32) -> PsciCall {
        use CallingConvention::{Smc32, Smc64};
        let id = fid & !SVE_HINT_BIT;
        let (conv, function) = if id & !0xFF == SMC32_BASE {
            (Smc32, id & 0xFF)
        } else if id & !0xFF == SMC64_BASE {
            (Smc64, id & 0xFF)
        } else {
            return PsciCall::Unknown(fid);
        };
        match (function, conv) {
            (0x00, Smc32) => PsciCall::Version,
            (0x01, c) => PsciCall::CpuSuspend(c),
            (0x02, Smc32) => PsciCall::CpuOff,
            (0x03, c) => PsciCall::CpuOn(c),
            (0x04, c) => PsciCall::AffinityInfo(c),
            (0x05, c) => PsciCall::Migrate(c),
            (0x06, Smc32) => PsciCall::MigrateInfoType,
            (0x07, c) => PsciCall::MigrateInfoUpCpu(c),
            (0x08, Smc32) => PsciCall::SystemOff,
            (0x09, Smc32) => PsciCall::SystemReset,
            (0x0A, Smc32) => PsciCall::Features,
            (0x0B, Smc32) => PsciCall::CpuFreeze,
            (0x0C, c) => PsciCall::CpuDefaultSuspend(c),
            (0x0D, c) => PsciCall::NodeHwState(c),
            (0x0E, c) => PsciCall::SystemSuspend(c),
            (0x0F, Smc32) => PsciCall::SetSuspendMode,
            (0x10, c) => PsciCall::StatResidency(c),
            (0x11, c) => PsciCall::StatCount(c),
            (0x12, c) => PsciCall::SystemReset2(c),
            (0x13, Smc32) => PsciCall::MemProtect,
            (0x14, c) => PsciCall::MemProtectCheckRange(c),
            _ => PsciCall::Unknown(fid),
        }
    }

    /// Like [`PsciCall::from_function_id`] but `None` for unknown IDs.
    pub const fn decode(fid: u32) -> Option<PsciCall> {
        match PsciCall::from_function_id(fid) {
            PsciCall::Unknown(_) => None,
            call => Some(call),
        }
    }

    /// The function ID of this call (for [`PsciCall::Unknown`], the stored ID).
    pub const fn function_id(self) -> u32 {
        let (function, conv) = match self {
            PsciCall::Version => (0x00, CallingConvention::Smc32),
            PsciCall::CpuSuspend(c) => (0x01, c),
            PsciCall::CpuOff => (0x02, CallingConvention::Smc32),
            PsciCall::CpuOn(c) => (0x03, c),
            PsciCall::AffinityInfo(c) => (0x04, c),
            PsciCall::Migrate(c) => (0x05, c),
            PsciCall::MigrateInfoType => (0x06, CallingConvention::Smc32),
            PsciCall::MigrateInfoUpCpu(c) => (0x07, c),
            PsciCall::SystemOff => (0x08, CallingConvention::Smc32),
            PsciCall::SystemReset => (0x09, CallingConvention::Smc32),
            PsciCall::Features => (0x0A, CallingConvention::Smc32),
            PsciCall::CpuFreeze => (0x0B, CallingConvention::Smc32),
            PsciCall::CpuDefaultSuspend(c) => (0x0C, c),
            PsciCall::NodeHwState(c) => (0x0D, c),
            PsciCall::SystemSuspend(c) => (0x0E, c),
            PsciCall::SetSuspendMode => (0x0F, CallingConvention::Smc32),
            PsciCall::StatResidency(c) => (0x10, c),
            PsciCall::StatCount(c) => (0x11, c),
            PsciCall::SystemReset2(c) => (0x12, c),
            PsciCall::MemProtect => (0x13, CallingConvention::Smc32),
            PsciCall::MemProtectCheckRange(c) => (0x14, c),
            PsciCall::Unknown(fid) => return fid,
        };
        match conv {
            CallingConvention::Smc32 => SMC32_BASE | function,
            CallingConvention::Smc64 => SMC64_BASE | function,
        }
    }

    /// The calling convention of the call (for [`PsciCall::Unknown`], bit 30 of
    /// the stored ID).
    pub const fn convention(self) -> CallingConvention {
        CallingConvention::from_smc64(self.function_id() & crate::smccc::SMC64_BIT != 0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use CallingConvention::{Smc32, Smc64};

    /// Every PSCI 1.1 function ID with its expected decoding, transcribed from
    /// the specification independently of the decoder.
    const TABLE: &[(u32, PsciCall)] = &[
        (PSCI_VERSION, PsciCall::Version),
        (CPU_SUSPEND_32, PsciCall::CpuSuspend(Smc32)),
        (CPU_SUSPEND_64, PsciCall::CpuSuspend(Smc64)),
        (CPU_OFF, PsciCall::CpuOff),
        (CPU_ON_32, PsciCall::CpuOn(Smc32)),
        (CPU_ON_64, PsciCall::CpuOn(Smc64)),
        (AFFINITY_INFO_32, PsciCall::AffinityInfo(Smc32)),
        (AFFINITY_INFO_64, PsciCall::AffinityInfo(Smc64)),
        (MIGRATE_32, PsciCall::Migrate(Smc32)),
        (MIGRATE_64, PsciCall::Migrate(Smc64)),
        (MIGRATE_INFO_TYPE, PsciCall::MigrateInfoType),
        (MIGRATE_INFO_UP_CPU_32, PsciCall::MigrateInfoUpCpu(Smc32)),
        (MIGRATE_INFO_UP_CPU_64, PsciCall::MigrateInfoUpCpu(Smc64)),
        (SYSTEM_OFF, PsciCall::SystemOff),
        (SYSTEM_RESET, PsciCall::SystemReset),
        (PSCI_FEATURES, PsciCall::Features),
        (CPU_FREEZE, PsciCall::CpuFreeze),
        (CPU_DEFAULT_SUSPEND_32, PsciCall::CpuDefaultSuspend(Smc32)),
        (CPU_DEFAULT_SUSPEND_64, PsciCall::CpuDefaultSuspend(Smc64)),
        (NODE_HW_STATE_32, PsciCall::NodeHwState(Smc32)),
        (NODE_HW_STATE_64, PsciCall::NodeHwState(Smc64)),
        (SYSTEM_SUSPEND_32, PsciCall::SystemSuspend(Smc32)),
        (SYSTEM_SUSPEND_64, PsciCall::SystemSuspend(Smc64)),
        (PSCI_SET_SUSPEND_MODE, PsciCall::SetSuspendMode),
        (PSCI_STAT_RESIDENCY_32, PsciCall::StatResidency(Smc32)),
        (PSCI_STAT_RESIDENCY_64, PsciCall::StatResidency(Smc64)),
        (PSCI_STAT_COUNT_32, PsciCall::StatCount(Smc32)),
        (PSCI_STAT_COUNT_64, PsciCall::StatCount(Smc64)),
        (SYSTEM_RESET2_32, PsciCall::SystemReset2(Smc32)),
        (SYSTEM_RESET2_64, PsciCall::SystemReset2(Smc64)),
        (MEM_PROTECT, PsciCall::MemProtect),
        (
            MEM_PROTECT_CHECK_RANGE_32,
            PsciCall::MemProtectCheckRange(Smc32),
        ),
        (
            MEM_PROTECT_CHECK_RANGE_64,
            PsciCall::MemProtectCheckRange(Smc64),
        ),
    ];

    #[test]
    fn well_known_ids() {
        assert_eq!(PSCI_VERSION, 0x8400_0000);
        assert_eq!(SYSTEM_OFF, 0x8400_0008);
        assert_eq!(SYSTEM_RESET, 0x8400_0009);
        assert_eq!(PSCI_FEATURES, 0x8400_000A);
        assert_eq!(CPU_ON_64, 0xC400_0003);
        assert_eq!(PSCI_VERSION_1_1, 0x0001_0001);
        assert_eq!(PSCI_VERSION_0_2, 0x0000_0002);
    }

    #[test]
    fn table_decodes_and_encodes() {
        for &(fid, call) in TABLE {
            assert_eq!(PsciCall::from_function_id(fid), call, "{fid:#x}");
            assert_eq!(PsciCall::decode(fid), Some(call));
            assert_eq!(call.function_id(), fid);
            assert_eq!(call.convention().is_smc64(), fid & 0x4000_0000 != 0);
            // The SVE hint bit does not change the identity of the call.
            assert_eq!(PsciCall::from_function_id(fid | SVE_HINT_BIT), call);
        }
        let mut ids: [u32; TABLE.len()] = [0; TABLE.len()];
        for (slot, &(fid, _)) in ids.iter_mut().zip(TABLE) {
            *slot = fid;
        }
        ids.sort_unstable();
        assert!(ids.windows(2).all(|w| w[0] != w[1]));
    }

    #[test]
    fn every_id_in_both_ranges_round_trips() {
        let mut known = 0;
        for base in [SMC32_BASE, SMC64_BASE, 0x0400_0000, 0x4400_0000] {
            for function in 0..=0xFFFFu32 {
                let fid = base | function;
                let call = PsciCall::from_function_id(fid);
                assert_eq!(call.function_id(), fid, "{fid:#x}");
                match call {
                    PsciCall::Unknown(raw) => {
                        assert_eq!(raw, fid);
                        assert!(TABLE.iter().all(|&(id, _)| id != fid));
                    }
                    _ => {
                        known += 1;
                        assert!(TABLE.iter().any(|&(id, c)| id == fid && c == call));
                    }
                }
            }
        }
        assert_eq!(known, TABLE.len());
    }

    #[test]
    fn unknown_ids() {
        for fid in [
            0u32,
            0x8400_0015,
            0xC400_0000,
            0xC400_0002,
            0x8500_0000,
            0xC600_8000,
        ] {
            assert_eq!(PsciCall::from_function_id(fid), PsciCall::Unknown(fid));
            assert_eq!(PsciCall::decode(fid), None);
        }
    }

    #[test]
    fn return_codes_round_trip() {
        for (i, ret) in PsciReturn::ALL.into_iter().enumerate() {
            let code = -(i as i32);
            assert_eq!(ret.to_i32(), code);
            assert_eq!(i32::from(ret), code);
            assert_eq!(PsciReturn::from_i32(code), Some(ret));
            let reg = ret.to_register();
            assert_eq!(reg, code as i64 as u64);
            assert_eq!(PsciReturn::from_register(reg), Some(ret));
            assert_eq!(PsciReturn::from_register(code as u32 as u64), Some(ret));
        }
        assert_eq!(PsciReturn::InvalidAddress.to_i32(), -9);
        assert_eq!(PsciReturn::from_i32(-10), None);
        assert_eq!(PsciReturn::from_i32(1), None);
        assert_eq!(PsciReturn::from_register(0x1_0000_0000), None);
        assert_eq!(PsciReturn::from_register(0xFFFF_FFFE_FFFF_FFFF), None);
        for code in -1000..1000 {
            if let Some(ret) = PsciReturn::from_i32(code) {
                assert_eq!(ret.to_i32(), code);
            } else {
                assert!(!(-9..=0).contains(&code));
            }
        }
    }

    #[test]
    fn affinity_states_round_trip() {
        for (i, state) in AffinityState::ALL.into_iter().enumerate() {
            assert_eq!(state.to_u32(), i as u32);
            assert_eq!(state.to_register(), i as u64);
            assert_eq!(AffinityState::from_u32(i as u32), Some(state));
        }
        assert_eq!(AffinityState::from_u32(3), None);
    }
}

//! Arm SMC Calling Convention (SMCCC, DEN0028) function IDs as used by Gunyah.
//!
//! A function ID is the 32-bit value in `W0` of an `SMC #0` / `HVC #0`:
//!
//! | Bits  | Field                                   |
//! |-------|-----------------------------------------|
//! | 31    | fast call (1) / yielding call (0)       |
//! | 30    | SMC64/HVC64 (1) / SMC32/HVC32 (0)       |
//! | 29:24 | owning entity ([`Owner`])               |
//! | 23:17 | reserved, must be zero                  |
//! | 16    | SVE live-state hint (SMCCC 1.3+)        |
//! | 15:0  | function number within the owner       |
//!
//! Gunyah implements SMCCC 1.3 ([`SMCCC_VERSION_1_3`]): `SMCCC_VERSION`,
//! `SMCCC_ARCH_FEATURES` and the architectural workaround queries live in the
//! [`Owner::Arch`] range; Gunyah's own services live in [`Owner::VendorHyp`]
//! (see [`crate::hypcall`]) and PSCI in [`Owner::StandardSecure`] (see
//! [`crate::psci`]).

/// Bit 31: fast call.
pub const FAST_BIT: u32 = 1 << 31;
/// Bit 30: SMC64/HVC64 calling convention.
pub const SMC64_BIT: u32 = 1 << 30;
/// Shift of the 6-bit owner field (bits 29:24).
pub const OWNER_SHIFT: u32 = 24;
/// Mask of the owner field after shifting.
pub const OWNER_MASK: u32 = 0x3F;
/// Bits 23:17: reserved, must be zero.
pub const RESERVED_MASK: u32 = 0x00FE_0000;
/// Bit 16: SVE live-state hint ("SVE state not live"), SMCCC 1.3+.
///
/// A callee that does not use the hint must ignore it when identifying the
/// function.
pub const SVE_HINT_BIT: u32 = 1 << 16;
/// Bits 15:0: function number.
pub const FUNCTION_MASK: u32 = 0xFFFF;

/// Return code: success.
pub const SUCCESS: i32 = 0;
/// Return code: function not supported (also "unknown function", `-1`).
pub const NOT_SUPPORTED: i32 = -1;
/// Return code: call not required (e.g. a workaround that is not needed).
pub const NOT_REQUIRED: i32 = -2;
/// Return code: invalid parameter.
pub const INVALID_PARAMETER: i32 = -3;
/// `SMCCC_UNKNOWN_FUNCTION` as written to a 64-bit result register.
pub const UNKNOWN_FUNCTION64: u64 = u64::MAX;
/// `SMCCC_UNKNOWN_FUNCTION` as written to a 32-bit result register.
pub const UNKNOWN_FUNCTION32: u32 = u32::MAX;

/// `SMCCC_VERSION` function ID (fast, SMC32, Arch, function 0).
pub const SMCCC_VERSION: u32 = 0x8000_0000;
/// `SMCCC_ARCH_FEATURES` function ID.
pub const ARCH_FEATURES: u32 = 0x8000_0001;
/// `SMCCC_ARCH_SOC_ID` function ID (SMCCC 1.2+).
pub const ARCH_SOC_ID: u32 = 0x8000_0002;
/// `SMCCC_ARCH_WORKAROUND_1` function ID (Spectre v2 / CVE-2017-5715).
pub const ARCH_WORKAROUND_1: u32 = 0x8000_8000;
/// `SMCCC_ARCH_WORKAROUND_2` function ID (SSBD / CVE-2018-3639).
pub const ARCH_WORKAROUND_2: u32 = 0x8000_7FFF;
/// `SMCCC_ARCH_WORKAROUND_3` function ID (Spectre-BHB / CVE-2022-23960).
pub const ARCH_WORKAROUND_3: u32 = 0x8000_3FFF;

/// The value `SMCCC_VERSION` returns for SMCCC 1.1.
pub const SMCCC_VERSION_1_1: u32 = version(1, 1);
/// The value `SMCCC_VERSION` returns for SMCCC 1.2.
pub const SMCCC_VERSION_1_2: u32 = version(1, 2);
/// The value `SMCCC_VERSION` returns for SMCCC 1.3 (what Gunyah reports).
pub const SMCCC_VERSION_1_3: u32 = version(1, 3);

/// Encodes an SMCCC version: major in bits 30:16, minor in bits 15:0.
pub const fn version(major: u16, minor: u16) -> u32 {
    (((major & 0x7FFF) as u32) << 16) | minor as u32
}

/// Splits an SMCCC version value into `(major, minor)`.
///
/// Returns `None` for negative values (bit 31 set), i.e. error codes such as
/// [`NOT_SUPPORTED`].
pub const fn version_parts(value: u32) -> Option<(u16, u16)> {
    if value & (1 << 31) != 0 {
        None
    } else {
        Some(((value >> 16) as u16, value as u16))
    }
}

/// Sign-extends a 32-bit SMCCC return code to a 64-bit result register.
pub const fn ret_to_register(code: i32) -> u64 {
    code as i64 as u64
}

/// The calling convention a function ID selects (bit 30).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallingConvention {
    /// SMC32/HVC32: arguments and results in `W` registers.
    Smc32,
    /// SMC64/HVC64: arguments and results in `X` registers.
    Smc64,
}

impl CallingConvention {
    /// Whether this is the 64-bit convention.
    pub const fn is_smc64(self) -> bool {
        matches!(self, CallingConvention::Smc64)
    }

    /// The convention selected by bit 30 being `smc64`.
    pub const fn from_smc64(smc64: bool) -> Self {
        if smc64 {
            CallingConvention::Smc64
        } else {
            CallingConvention::Smc32
        }
    }
}

/// The owning entity of an SMCCC function ID (bits 29:24).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// 0: Arm architecture calls (`SMCCC_VERSION`, workarounds, ...).
    Arch,
    /// 1: CPU service calls.
    Cpu,
    /// 2: SiP (silicon partner) service calls.
    Sip,
    /// 3: OEM service calls.
    Oem,
    /// 4: Standard secure service calls (PSCI, SDEI, TRNG, ...).
    StandardSecure,
    /// 5: Standard hypervisor service calls.
    StandardHyp,
    /// 6: Vendor-specific hypervisor service calls (Gunyah's hypercalls).
    VendorHyp,
    /// 7: Vendor-specific EL3 monitor calls (SMCCC 1.4+).
    VendorEl3Monitor,
    /// 8..=47: reserved for future use; holds the raw owner number.
    Reserved(u8),
    /// 48..=49: trusted application calls; holds the raw owner number.
    TrustedApplication(u8),
    /// 50..=63: trusted OS calls; holds the raw owner number.
    TrustedOs(u8),
}

impl Owner {
    /// Decodes a 6-bit owner number; `None` if `bits > 63`.
    pub const fn from_bits(bits: u8) -> Option<Owner> {
        Some(match bits {
            0 => Owner::Arch,
            1 => Owner::Cpu,
            2 => Owner::Sip,
            3 => Owner::Oem,
            4 => Owner::StandardSecure,
            5 => Owner::StandardHyp,
            6 => Owner::VendorHyp,
            7 => Owner::VendorEl3Monitor,
            8..=47 => Owner::Reserved(bits),
            48..=49 => Owner::TrustedApplication(bits),
            50..=63 => Owner::TrustedOs(bits),
            _ => return None,
        })
    }

    /// The 6-bit owner number.
    ///
    /// For the range variants this is the stored number masked to 6 bits;
    /// values built by [`Owner::from_bits`] are always in range.
    pub const fn bits(self) -> u8 {
        match self {
            Owner::Arch => 0,
            Owner::Cpu => 1,
            Owner::Sip => 2,
            Owner::Oem => 3,
            Owner::StandardSecure => 4,
            Owner::StandardHyp => 5,
            Owner::VendorHyp => 6,
            Owner::VendorEl3Monitor => 7,
            Owner::Reserved(b) | Owner::TrustedApplication(b) | Owner::TrustedOs(b) => {
                b & OWNER_MASK as u8
            }
        }
    }
}

/// An SMCCC function ID (the value of `W0` at an `SMC #0` / `HVC #0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionId(pub u32);

impl FunctionId {
    /// Builds a function ID with reserved bits and the SVE hint clear.
    pub const fn new(fast: bool, conv: CallingConvention, owner: Owner, function: u16) -> Self {
        let mut raw = ((owner.bits() as u32) << OWNER_SHIFT) | function as u32;
        if fast {
            raw |= FAST_BIT;
        }
        if conv.is_smc64() {
            raw |= SMC64_BIT;
        }
        FunctionId(raw)
    }

    /// The raw 32-bit value.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// Bit 31: fast (atomic) call rather than yielding call.
    pub const fn is_fast(self) -> bool {
        self.0 & FAST_BIT != 0
    }

    /// Bit 30: SMC64/HVC64 convention.
    pub const fn is_smc64(self) -> bool {
        self.0 & SMC64_BIT != 0
    }

    /// The calling convention (bit 30).
    pub const fn convention(self) -> CallingConvention {
        CallingConvention::from_smc64(self.is_smc64())
    }

    /// The raw 6-bit owner number (bits 29:24).
    pub const fn owner_bits(self) -> u8 {
        ((self.0 >> OWNER_SHIFT) & OWNER_MASK) as u8
    }

    /// The owning entity (bits 29:24).
    pub const fn owner(self) -> Owner {
        match Owner::from_bits(self.owner_bits()) {
            Some(owner) => owner,
            // owner_bits() is masked to 6 bits, so from_bits always succeeds.
            None => Owner::Reserved(self.owner_bits()),
        }
    }

    /// The 16-bit function number (bits 15:0).
    pub const fn function(self) -> u16 {
        (self.0 & FUNCTION_MASK) as u16
    }

    /// Bit 16: the caller's SVE live-state hint.
    pub const fn sve_hint(self) -> bool {
        self.0 & SVE_HINT_BIT != 0
    }

    /// Bits 23:17 as they appear in the ID (zero in a well-formed ID).
    pub const fn reserved_bits(self) -> u32 {
        self.0 & RESERVED_MASK
    }

    /// The same ID with the SVE hint bit cleared, for function identification.
    pub const fn without_sve_hint(self) -> Self {
        FunctionId(self.0 & !SVE_HINT_BIT)
    }
}

impl From<u32> for FunctionId {
    fn from(raw: u32) -> Self {
        FunctionId(raw)
    }
}

impl From<FunctionId> for u32 {
    fn from(fid: FunctionId) -> Self {
        fid.0
    }
}

/// The architecture (owner 0) calls Gunyah implements or answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArchCall {
    /// `SMCCC_VERSION`.
    Version,
    /// `SMCCC_ARCH_FEATURES`.
    Features,
    /// `SMCCC_ARCH_SOC_ID`.
    SocId,
    /// `SMCCC_ARCH_WORKAROUND_1`.
    Workaround1,
    /// `SMCCC_ARCH_WORKAROUND_2`.
    Workaround2,
    /// `SMCCC_ARCH_WORKAROUND_3`.
    Workaround3,
}

impl ArchCall {
    /// Every architecture call.
    pub const ALL: [ArchCall; 6] = [
        ArchCall::Version,
        ArchCall::Features,
        ArchCall::SocId,
        ArchCall::Workaround1,
        ArchCall::Workaround2,
        ArchCall::Workaround3,
    ];

    /// The function ID of this call.
    pub const fn function_id(self) -> u32 {
        match self {
            ArchCall::Version => SMCCC_VERSION,
            ArchCall::Features => ARCH_FEATURES,
            ArchCall::SocId => ARCH_SOC_ID,
            ArchCall::Workaround1 => ARCH_WORKAROUND_1,
            ArchCall::Workaround2 => ARCH_WORKAROUND_2,
            ArchCall::Workaround3 => ARCH_WORKAROUND_3,
        }
    }

    /// Decodes a function ID (the SVE hint bit is ignored).
    pub const fn from_function_id(fid: u32) -> Option<ArchCall> {
        Some(match fid & !SVE_HINT_BIT {
            SMCCC_VERSION => ArchCall::Version,
            ARCH_FEATURES => ArchCall::Features,
            ARCH_SOC_ID => ArchCall::SocId,
            ARCH_WORKAROUND_1 => ArchCall::Workaround1,
            ARCH_WORKAROUND_2 => ArchCall::Workaround2,
            ARCH_WORKAROUND_3 => ArchCall::Workaround3,
            _ => return None,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn owner_round_trips_over_all_six_bit_values() {
        for bits in 0u8..=63 {
            let owner = Owner::from_bits(bits).unwrap();
            assert_eq!(owner.bits(), bits);
        }
        for bits in 64u8..=255 {
            assert_eq!(Owner::from_bits(bits), None);
        }
        assert_eq!(Owner::from_bits(0), Some(Owner::Arch));
        assert_eq!(Owner::from_bits(4), Some(Owner::StandardSecure));
        assert_eq!(Owner::from_bits(5), Some(Owner::StandardHyp));
        assert_eq!(Owner::from_bits(6), Some(Owner::VendorHyp));
        assert_eq!(Owner::from_bits(48), Some(Owner::TrustedApplication(48)));
        assert_eq!(Owner::from_bits(63), Some(Owner::TrustedOs(63)));
    }

    #[test]
    fn function_id_fields_decode() {
        let fid = FunctionId(0xC600_8065);
        assert!(fid.is_fast());
        assert!(fid.is_smc64());
        assert_eq!(fid.convention(), CallingConvention::Smc64);
        assert_eq!(fid.owner(), Owner::VendorHyp);
        assert_eq!(fid.function(), 0x8065);
        assert!(!fid.sve_hint());
        assert_eq!(fid.reserved_bits(), 0);

        let psci = FunctionId(0x8400_0000);
        assert!(psci.is_fast());
        assert!(!psci.is_smc64());
        assert_eq!(psci.owner(), Owner::StandardSecure);
        assert_eq!(psci.function(), 0);

        let hinted = FunctionId(0xC601_8065);
        assert!(hinted.sve_hint());
        assert_eq!(hinted.without_sve_hint(), fid);
        assert_eq!(FunctionId(0xC0FE_0000).reserved_bits(), RESERVED_MASK);
    }

    #[test]
    fn function_id_new_round_trips() {
        for owner_bits in 0u8..=63 {
            let owner = Owner::from_bits(owner_bits).unwrap();
            for &fast in &[false, true] {
                for &conv in &[CallingConvention::Smc32, CallingConvention::Smc64] {
                    for function in (0u32..=0xFFFF).step_by(0x111).chain([0xFFFF]) {
                        let function = function as u16;
                        let fid = FunctionId::new(fast, conv, owner, function);
                        assert_eq!(fid.is_fast(), fast);
                        assert_eq!(fid.convention(), conv);
                        assert_eq!(fid.owner(), owner);
                        assert_eq!(fid.function(), function);
                        assert_eq!(fid.reserved_bits(), 0);
                        assert!(!fid.sve_hint());
                        let rebuilt = FunctionId::new(
                            fid.is_fast(),
                            fid.convention(),
                            fid.owner(),
                            fid.function(),
                        );
                        assert_eq!(rebuilt, fid);
                        assert_eq!(u32::from(fid), fid.raw());
                        assert_eq!(FunctionId::from(fid.raw()), fid);
                    }
                }
            }
        }
    }

    #[test]
    fn arch_ids_are_fast_smc32_arch() {
        assert_eq!(SMCCC_VERSION, 0x8000_0000);
        assert_eq!(ARCH_FEATURES, 0x8000_0001);
        for call in ArchCall::ALL {
            let fid = FunctionId(call.function_id());
            assert!(fid.is_fast());
            assert!(!fid.is_smc64());
            assert_eq!(fid.owner(), Owner::Arch);
            assert_eq!(ArchCall::from_function_id(call.function_id()), Some(call));
            assert_eq!(
                ArchCall::from_function_id(call.function_id() | SVE_HINT_BIT),
                Some(call)
            );
        }
        assert_eq!(ArchCall::from_function_id(0x8000_0003), None);
        assert_eq!(ArchCall::from_function_id(0xC000_0000), None);
    }

    #[test]
    fn version_values() {
        assert_eq!(SMCCC_VERSION_1_3, 0x10003);
        assert_eq!(SMCCC_VERSION_1_1, 0x10001);
        assert_eq!(version_parts(SMCCC_VERSION_1_3), Some((1, 3)));
        assert_eq!(version_parts(NOT_SUPPORTED as u32), None);
        for major in (0u16..0x8000).step_by(0x3F) {
            for minor in (0u16..=0xFFFF).step_by(0x101) {
                assert_eq!(version_parts(version(major, minor)), Some((major, minor)));
            }
        }
    }

    #[test]
    fn return_codes() {
        assert_eq!(SUCCESS, 0);
        assert_eq!(NOT_SUPPORTED, -1);
        assert_eq!(NOT_REQUIRED, -2);
        assert_eq!(INVALID_PARAMETER, -3);
        assert_eq!(ret_to_register(NOT_SUPPORTED), UNKNOWN_FUNCTION64);
        assert_eq!(NOT_SUPPORTED as u32, UNKNOWN_FUNCTION32);
        assert_eq!(ret_to_register(INVALID_PARAMETER), 0xFFFF_FFFF_FFFF_FFFD);
        assert_eq!(ret_to_register(SUCCESS), 0);
    }

    #[test]
    fn calling_convention_round_trips() {
        for smc64 in [false, true] {
            assert_eq!(CallingConvention::from_smc64(smc64).is_smc64(), smc64);
        }
    }
}

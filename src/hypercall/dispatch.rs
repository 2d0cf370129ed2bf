//! What each Gunyah call answers.
//!
//! Implemented so far:
//!
//! - the service queries: CALL_UID → the Gunyah UUID in `X0..X3` (vendor-hyp and standard-hyp,
//!   as Gunyah answers both); vendor-hyp REVISION → `X0` = the `hyp_api_info` word;
//!   standard-hyp REVISION → 1.0 (`X0` = 1, `X1` = 0); CALL_COUNT → `-1` (deprecated);
//! - `hypervisor_identify` (N = 0x00): `X0` = [`API_INFO`], `X1..X3` = api_flags0..2 =
//!   [`IDENTITY`]'s flags, with no error word.
//!
//! Every other hypercall number, assigned or reserved, answers `ERROR_UNIMPLEMENTED` (`-1`) in
//! `X0`. The native path checks no reserved arguments yet: `hypervisor_identify` has none, and
//! the reserved-argument rules come with each call that has them.

use wurley_abi::hypcall::{self, ServiceCall};
use wurley_abi::{ApiFlags0, ApiFlags1, ApiInfo, Error, HypCall, HypervisorIdentity, smccc as abi};

use super::decode::{self, SmcccCall};

/// The `hyp_api_info` word Wurley reports: API version 1, 64-bit, little-endian, the ABI
/// crate's default variant (`QUALCOMM`, Gunyah's source default).
pub const API_INFO: ApiInfo = ApiInfo::DEFAULT;

/// What `hypervisor_identify` returns.
///
/// api_flags0 advertises a feature bit only for an API Wurley implements: none yet, so it is 0
/// (which also reports the trivial scheduler, variant 0). api_flags1 (bit 0: SVE) and
/// api_flags2 are reserved 0.
pub const IDENTITY: HypervisorIdentity = HypervisorIdentity {
    api_info: API_INFO,
    flags0: ApiFlags0::EMPTY,
    flags1: ApiFlags1(0),
    flags2: 0,
};

/// Result registers of a call: `X0..X(len-1)`. Registers beyond `len` are left as they were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    values: [u64; 8],
    len: usize,
}

impl Reply {
    /// A reply of `values` in `X0..`.
    pub fn new(values: &[u64]) -> Reply {
        let mut r = Reply {
            values: [0; 8],
            len: values.len().min(8),
        };
        r.values[..r.len].copy_from_slice(&values[..r.len]);
        r
    }

    /// A reply of one error word in `X0`.
    pub fn error(e: Error) -> Reply {
        Reply::new(&[e.to_register()])
    }

    /// The result registers.
    pub fn values(&self) -> &[u64] {
        &self.values[..self.len]
    }

    /// Writes the result registers into `x` (the guest's `X0..`).
    pub fn apply(&self, x: &mut [u64]) {
        for (dst, src) in x.iter_mut().zip(self.values()) {
            *dst = *src;
        }
    }
}

/// Answers the SMCCC call in `x` (`X0` = function ID, arguments `X1..X7`), or `None` if the
/// function ID is not a Gunyah call (left to PSCI / the SMCCC arch calls / NOT_SUPPORTED).
pub fn smccc(x: &[u64]) -> Option<Reply> {
    let reg = |i: usize| x.get(i).copied().unwrap_or(0);
    let fid = reg(0) as u32;
    Some(match decode::smccc(fid)? {
        SmcccCall::Service(s) => service(s),
        SmcccCall::Hypercall(n) => {
            let args: [u64; 7] = core::array::from_fn(|i| reg(i + 1));
            hypercall(n, &args)
        }
    })
}

/// Answers a native `HVC #imm16` with arguments `x` (`X0..X7`), or `None` if `imm16` is outside
/// the native hypercall range.
pub fn native(imm16: u16, x: &[u64]) -> Option<Reply> {
    let n = decode::native(imm16)?;
    let args: [u64; 8] = core::array::from_fn(|i| x.get(i).copied().unwrap_or(0));
    Some(hypercall(n, &args))
}

fn service(s: ServiceCall) -> Reply {
    match s {
        ServiceCall::VendorHypCallUid | ServiceCall::StandardHypCallUid => {
            Reply::new(&hypcall::GUNYAH_UID.map(u64::from))
        }
        ServiceCall::VendorHypRevision => Reply::new(&[API_INFO.encode()]),
        ServiceCall::StandardHypRevision => Reply::new(&[
            u64::from(hypcall::STANDARD_HYP_REVISION_MAJOR),
            u64::from(hypcall::STANDARD_HYP_REVISION_MINOR),
        ]),
        ServiceCall::VendorHypCallCount | ServiceCall::StandardHypCallCount => {
            Reply::new(&[abi::UNKNOWN_FUNCTION64])
        }
    }
}

/// Hypercall number `n` with its inputs in `.hvc` order (`args[0]` is the first input: `X1` on
/// the SMCCC path, `X0` on the native path).
fn hypercall(n: u16, _args: &[u64]) -> Reply {
    match HypCall::from_number(n) {
        Some(HypCall::HypervisorIdentify) => Reply::new(&IDENTITY.to_registers()),
        _ => Reply::error(Error::Unimplemented),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wurley_abi::{ApiVariant, psci};

    const UNIMPLEMENTED: u64 = u64::MAX;

    fn identify_regs() -> [u64; 4] {
        [(1 << 15) | 1 | (0x51 << 56), 0, 0, 0]
    }

    #[test]
    fn api_info_value() {
        assert_eq!(API_INFO.api_version, 1);
        const { assert!(API_INFO.is_64bit && !API_INFO.big_endian) };
        assert_eq!(API_INFO.variant, ApiVariant::QUALCOMM);
        assert_eq!(API_INFO.encode(), 0x5100_0000_0000_8001);
    }

    #[test]
    fn call_uid() {
        let r = smccc(&[0x8600_FF01]).expect("ours");
        assert_eq!(
            r.values(),
            &[0xcd8f_d5c1, 0xdb5f_53a4, 0x36ce_6592, 0x145f_3d67]
        );
        assert!(hypcall::is_gunyah_uid([
            r.values()[0],
            r.values()[1],
            r.values()[2],
            r.values()[3]
        ]));
        assert_eq!(smccc(&[0x8500_FF01]), Some(r));
    }

    #[test]
    fn revision_and_count() {
        assert_eq!(
            smccc(&[0x8600_FF03]).expect("ours").values(),
            &[identify_regs()[0]]
        );
        assert_eq!(smccc(&[0x8600_FF00]).expect("ours").values(), &[u64::MAX]);
        assert_eq!(smccc(&[0x8500_FF03]).expect("ours").values(), &[1, 0]);
    }

    #[test]
    fn identify_both_paths() {
        let smc = smccc(&[0xC600_8000, 7, 7, 7]).expect("ours");
        assert_eq!(smc.values(), &identify_regs());
        // Native: whatever is in X0..X7, identify has no inputs to check.
        let native = native(0x6000, &[0xdead, 1, 2, 3, 4, 5, 6, 7]).expect("ours");
        assert_eq!(native, smc);
    }

    #[test]
    fn everything_else_is_unimplemented() {
        for n in 1..=HypCall::MAX_NUMBER {
            let fid = u64::from(hypcall::smccc_function_id(n));
            assert_eq!(
                smccc(&[fid]).expect("ours").values(),
                &[UNIMPLEMENTED],
                "N={n:#x}"
            );
            let imm = hypcall::native_hvc_imm(n);
            assert_eq!(
                native(imm, &[0; 8]).expect("ours").values(),
                &[UNIMPLEMENTED]
            );
        }
    }

    #[test]
    fn not_ours() {
        assert_eq!(smccc(&[u64::from(psci::SYSTEM_OFF)]), None);
        assert_eq!(smccc(&[u64::from(abi::SMCCC_VERSION)]), None);
        assert_eq!(smccc(&[0x8600_FF02]), None);
        assert_eq!(smccc(&[0xC600_0001]), None);
        // Only the low 32 bits of X0 are the function ID.
        assert_eq!(
            smccc(&[0xFFFF_FFFF_0000_0000 | u64::from(psci::SYSTEM_OFF)]),
            None
        );
        assert_eq!(native(0, &[0; 8]), None);
        assert_eq!(native(0x6000 + HypCall::MAX_NUMBER + 1, &[0; 8]), None);
    }

    #[test]
    fn apply_writes_only_len_registers() {
        let mut x = [9u64; 31];
        Reply::new(&[1, 2]).apply(&mut x);
        assert_eq!(&x[..3], &[1, 2, 9]);
    }
}

//! Classifies what a guest's `HVC`/`SMC` asks of the hypervisor's Gunyah interface.
//!
//! Two entry paths, as in Gunyah:
//!
//! - SMCCC: `HVC #0` (or a trapped `SMC #0`), `W0` = function ID. Ours are the vendor-hyp (and
//!   standard-hyp) service queries `0x8600_FFxx` / `0x8500_FFxx` and the hypercalls
//!   `0xC600_8000 | N` (fast, SMC64, owner VENDOR_HYP, class HYPERCALL; the SVE hint and
//!   reserved bits 23:17 are ignored). Everything else (PSCI, SMCCC arch calls, unknown IDs) is
//!   left to the caller.
//! - Native: `HVC #imm16` with `imm16` in `0x6000..=0x6000 + HypCall::MAX_NUMBER`; the arguments
//!   are `X0..X7`. Other immediates are ordinary HVC traps.
//!
//! Besides Gunyah's calls, Wurley's own vendor calls `WURLEY_VM_SET_NAME` (`0xC600_0100`) and
//! `WURLEY_PARTITION_CONFIGURE` (`0xC600_0101`), on the SMCCC path only, are ours.
//!
//! A decoded hypercall carries its number, which may be a reserved slot (no call): the
//! dispatcher answers those with `ERROR_UNIMPLEMENTED`.

use wurley_abi::hypcall::{self, ServiceCall};

/// An SMCCC call that the Gunyah interface answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmcccCall {
    /// A vendor-hyp or standard-hyp service query (CALL_COUNT, CALL_UID, REVISION).
    Service(ServiceCall),
    /// Gunyah hypercall number `N` (`0xC600_8000 | N`); arguments in `X1..X7`.
    Hypercall(u16),
    /// Wurley's `WURLEY_VM_SET_NAME` (`0xC600_0100`, [`wurley_abi::vendor`]); arguments in
    /// `X1..X4`.
    VmSetName,
    /// Wurley's `WURLEY_PARTITION_CONFIGURE` (`0xC600_0101`, [`wurley_abi::vendor`]);
    /// arguments in `X1..X2`.
    PartitionConfigure,
}

/// Classifies the SMCCC function ID `fid` (`W0` of `HVC #0` / `SMC #0`), or `None` if it is not
/// a Gunyah call (PSCI, SMCCC arch, or unknown: the caller decides).
pub fn smccc(fid: u32) -> Option<SmcccCall> {
    if let Some(service) = ServiceCall::from_function_id(fid) {
        return Some(SmcccCall::Service(service));
    }
    if fid == wurley_abi::vendor::VM_SET_NAME {
        return Some(SmcccCall::VmSetName);
    }
    if fid == wurley_abi::vendor::PARTITION_CONFIGURE {
        return Some(SmcccCall::PartitionConfigure);
    }
    hypcall::smccc_hypercall_number(fid).map(SmcccCall::Hypercall)
}

/// The hypercall number of a native `HVC #imm16`, or `None` if the immediate is outside the
/// dispatched range (an ordinary HVC: `HVC #0` is the SMCCC path).
pub fn native(imm16: u16) -> Option<u16> {
    hypcall::hvc_imm_number(imm16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wurley_abi::HypCall;
    use wurley_abi::psci;
    use wurley_abi::smccc as abi_smccc;

    #[test]
    fn vendor_hyp_services() {
        assert_eq!(
            smccc(0x8600_FF00),
            Some(SmcccCall::Service(ServiceCall::VendorHypCallCount))
        );
        assert_eq!(
            smccc(0x8600_FF01),
            Some(SmcccCall::Service(ServiceCall::VendorHypCallUid))
        );
        assert_eq!(
            smccc(0x8600_FF03),
            Some(SmcccCall::Service(ServiceCall::VendorHypRevision))
        );
        // Unassigned vendor-hyp service numbers are not ours.
        assert_eq!(smccc(0x8600_FF02), None);
    }

    #[test]
    fn hypercall_ids() {
        assert_eq!(smccc(0xC600_8000), Some(SmcccCall::Hypercall(0)));
        assert_eq!(smccc(0xC600_8067), Some(SmcccCall::Hypercall(0x67)));
        // A reserved slot still decodes; the dispatcher answers ERROR_UNIMPLEMENTED.
        assert_eq!(smccc(0xC600_8008), Some(SmcccCall::Hypercall(0x08)));
        // SVE hint ignored.
        assert_eq!(smccc(0xC601_8000), Some(SmcccCall::Hypercall(0)));
        for call in HypCall::ALL {
            assert_eq!(
                smccc(call.smccc_function_id()),
                Some(SmcccCall::Hypercall(call.number()))
            );
        }
    }

    #[test]
    fn vendor_calls_are_ours_on_the_smccc_path_only() {
        assert_eq!(smccc(0xC600_0100), Some(SmcccCall::VmSetName));
        assert_eq!(smccc(0xC600_0101), Some(SmcccCall::PartitionConfigure));
        // Their SMC32 forms, and the function numbers around them, are not.
        assert_eq!(smccc(0x8600_0100), None);
        assert_eq!(smccc(0x8600_0101), None);
        assert_eq!(smccc(0xC600_0102), None);
        assert_eq!(smccc(0xC600_00FF), None);
    }

    #[test]
    fn rejected_hypercall_forms() {
        // SMC32, yielding, wrong owner, platform class: not hypercalls.
        assert_eq!(smccc(0x8600_8000), None);
        assert_eq!(smccc(0x4600_8000), None);
        assert_eq!(smccc(0xC500_8000), None);
        assert_eq!(smccc(0xC600_0000), None);
    }

    #[test]
    fn psci_and_arch_are_not_ours() {
        assert_eq!(smccc(abi_smccc::SMCCC_VERSION), None);
        assert_eq!(smccc(abi_smccc::ARCH_FEATURES), None);
        assert_eq!(smccc(psci::SYSTEM_OFF), None);
        assert_eq!(smccc(psci::CPU_ON_64), None);
        assert_eq!(smccc(0xC200_0000), None);
    }

    #[test]
    fn native_range() {
        assert_eq!(native(0), None);
        assert_eq!(native(0x5FFF), None);
        assert_eq!(native(0x6000), Some(0));
        assert_eq!(
            native(0x6000 + HypCall::MAX_NUMBER),
            Some(HypCall::MAX_NUMBER)
        );
        assert_eq!(native(0x6000 + HypCall::MAX_NUMBER + 1), None);
        assert_eq!(native(0x61FF), None);
        assert_eq!(native(0xFFFF), None);
    }
}

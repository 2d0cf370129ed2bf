//! Reserved arguments of the native calling convention.
//!
//! On the native path (`HVC #(0x6000 + N)`) Gunyah checks that every `res0` input is zero and
//! every `res1` input is all ones, answering `ERROR_ARGUMENT_INVALID` otherwise. The SMCCC path
//! does not check them (its wrappers drop the trailing reserved words). Positions are 0-based
//! indices into the call's inputs (`X0..` on the native path).

use wurley_abi::HypCall;

/// `(res0 positions, res1 positions)` of `call`.
pub const fn reserved(call: HypCall) -> (&'static [usize], &'static [usize]) {
    use HypCall as H;
    match call {
        H::PartitionCreatePartition
        | H::PartitionCreateCspace
        | H::PartitionCreateAddrspace
        | H::PartitionCreateMemextent
        | H::PartitionCreateThread
        | H::PartitionCreateDoorbell
        | H::PartitionCreateMsgqueue
        | H::PartitionCreateVic
        | H::PartitionCreateVpmGroup => (&[2], &[]),
        H::ObjectActivate | H::ObjectReset => (&[1], &[]),
        H::ObjectActivateFrom | H::ObjectResetFrom => (&[2], &[]),
        H::DoorbellBindVirq => (&[3], &[]),
        H::DoorbellUnbindVirq | H::DoorbellReset => (&[1], &[]),
        H::DoorbellSend | H::DoorbellReceive => (&[2], &[]),
        H::DoorbellMask => (&[3], &[]),
        H::MsgqueueBindSendVirq | H::MsgqueueBindReceiveVirq => (&[3], &[]),
        H::MsgqueueUnbindSendVirq | H::MsgqueueUnbindReceiveVirq | H::MsgqueueFlush => (&[1], &[]),
        H::MsgqueueSend => (&[4], &[]),
        H::MsgqueueReceive => (&[3], &[]),
        H::MsgqueueConfigureSend | H::MsgqueueConfigureReceive => (&[], &[3]),
        H::MsgqueueConfigure => (&[2], &[]),
        H::CspaceDeleteCapFrom
        | H::CspaceRevokeCapFrom
        | H::CspaceConfigure
        | H::CspaceRevokeCapsFrom => (&[2], &[]),
        H::CspaceCopyCapFrom => (&[4], &[]),
        H::VcpuBindVirq | H::VcpuRun | H::AddrspaceConfigureVmmio => (&[4], &[]),
        H::VcpuUnbindVirq => (&[2], &[]),
        H::VcpuRunCheck => (&[1], &[]),
        H::VcpuSetAffinity => (&[], &[2]),
        H::MemextentConfigure | H::AddrspaceLookup => (&[4], &[]),
        H::MemextentConfigureDerive | H::MemextentDonate => (&[5], &[]),
        H::AddrspaceConfigure => (&[2], &[]),
        H::VcpuConfigure | H::CspaceAttachThread | H::AddrspaceAttachThread => (&[2], &[]),
        H::VicAttachVcpu => (&[3], &[]),
        H::VcpuKill | H::VpmGroupUnbindVirq | H::VpmGroupGetState | H::HwirqUnbindVirq => {
            (&[1], &[])
        }
        H::HwirqBindVirq => (&[3], &[]),
        H::VpmGroupConfigure => (&[2], &[]),
        H::VpmGroupAttachVcpu | H::VpmGroupBindVirq => (&[3], &[]),
        H::VcpuRegisterWrite => (&[4], &[]),
        _ => (&[], &[]),
    }
}

/// Whether `args` satisfy `call`'s reserved-argument rules.
pub fn check(call: HypCall, args: &[u64]) -> bool {
    let (res0, res1) = reserved(call);
    let at = |i: &usize| args.get(*i).copied().unwrap_or(0);
    res0.iter().all(|i| at(i) == 0) && res1.iter().all(|i| at(i) == u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn res0_and_res1() {
        assert!(check(HypCall::MsgqueueSend, &[1, 2, 3, 0, 0]));
        assert!(!check(HypCall::MsgqueueSend, &[1, 2, 3, 0, 7]));
        assert!(check(HypCall::MsgqueueConfigureSend, &[1, 2, 3, u64::MAX]));
        assert!(!check(HypCall::MsgqueueConfigureSend, &[1, 2, 3, 0]));
        assert!(check(HypCall::HypervisorIdentify, &[9, 9, 9]));
    }
}

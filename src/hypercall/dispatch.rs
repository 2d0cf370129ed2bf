//! What each Gunyah call answers.
//!
//! - the service queries: CALL_UID → the Gunyah UUID in `X0..X3` (vendor-hyp and standard-hyp,
//!   as Gunyah answers both); vendor-hyp REVISION → `X0` = the `hyp_api_info` word;
//!   standard-hyp REVISION → 1.0 (`X0` = 1, `X1` = 0); CALL_COUNT → `-1` (deprecated);
//! - `hypervisor_identify` (N = 0x00): `X0` = [`API_INFO`], `X1..X3` = api_flags0..2 =
//!   [`IDENTITY`]'s flags, with no error word;
//! - object creation and cspaces ([`super::objects`]), message queues and doorbells
//!   ([`super::ipc`]); proxy scheduling ([`super::vcpu`]); memory extents and address spaces
//!   ([`super::memory`]).
//!
//! Wurley's vendor calls: `WURLEY_VM_SET_NAME` is answered by [`super::thread::vm_set_name`],
//! `WURLEY_PARTITION_CONFIGURE` by [`super::objects::configure_partition`].
//!
//! Every other hypercall number, assigned or reserved, answers `ERROR_UNIMPLEMENTED` (`-1`) in
//! `X0`. On the native path, reserved inputs are checked first ([`super::reserved`]).
//! `docs/abi.md` lists every call with its arguments and errors.

use wurley_abi::hypcall::{self, ServiceCall};
use wurley_abi::{
    ApiFlags0, ApiFlags1, ApiInfo, Error, Feature, HypCall, HypervisorIdentity, SchedulerVariant,
    smccc as abi,
};

use super::context::Caller;
use super::decode::{self, SmcccCall};
use super::objects::{self, Kind};
use super::{ipc, memory, reserved, thread, vcpu};
use crate::object::ipc::QueueEnd;

/// The `hyp_api_info` word Wurley reports: API version 1, 64-bit, little-endian, the ABI
/// crate's default variant (`QUALCOMM`, Gunyah's source default).
pub const API_INFO: ApiInfo = ApiInfo::DEFAULT;

/// What `hypervisor_identify` returns.
///
/// api_flags0 advertises a feature bit for each API family Wurley implements: partitions and
/// cspaces (bit 0), doorbells (bit 1), message queues (bit 2), VICs (bit 3: `vic_configure`,
/// `vic_attach_vcpu`), VPM groups (bit 4), vCPUs (bit 5: configure, power, kill, register
/// writes), memory extents (bit 6: extents and address-space mappings; `addrspace_map` refuses
/// the PARTIAL flag and the demand-paging flags Linux defines, as documented) and proxy
/// scheduling (bit 11, `vcpu_run`); the scheduler variant (bits 31:28) is 1, fixed-priority
/// round robin. api_flags1 (bit 0: SVE) and api_flags2 are reserved 0.
pub const IDENTITY: HypervisorIdentity = HypervisorIdentity {
    api_info: API_INFO,
    flags0: ApiFlags0::EMPTY
        .with(Feature::PartitionCspace)
        .with(Feature::Doorbell)
        .with(Feature::Msgqueue)
        .with(Feature::Vic)
        .with(Feature::Vpm)
        .with(Feature::Vcpu)
        .with(Feature::Memextent)
        .with(Feature::VcpuRun)
        .with_scheduler(SchedulerVariant::FPRR),
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
    /// A reply of `values` in `X0..`. Inlined so that the copy of a constant-length reply is
    /// a few stores, not a call to the byte-wise `memcpy`.
    #[inline]
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

    /// `X0` = 0 or the error.
    pub fn result(r: Result<(), Error>) -> Reply {
        Reply::new(&[wurley_abi::error::to_register(&r)])
    }

    /// `X0` = 0 and `X1` = the value, or `X0` = the error and `X1` = 0.
    pub fn with_value(r: Result<u64, Error>) -> Reply {
        match r {
            Ok(v) => Reply::new(&[0, v]),
            Err(e) => Reply::new(&[e.to_register(), 0]),
        }
    }

    /// The result registers.
    pub fn values(&self) -> &[u64] {
        &self.values[..self.len]
    }

    /// The error word in `X0`, if the call failed.
    pub fn error_code(&self) -> Option<Error> {
        match self.values.first().copied() {
            Some(0) | None => None,
            Some(x0) => Error::from_code(x0 as i64),
        }
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
pub fn smccc(x: &[u64], caller: &mut Caller) -> Option<Reply> {
    let reg = |i: usize| x.get(i).copied().unwrap_or(0);
    let fid = reg(0) as u32;
    Some(match decode::smccc(fid)? {
        SmcccCall::Service(s) => service(s),
        SmcccCall::Hypercall(n) => {
            let args: [u64; 8] = core::array::from_fn(|i| reg(i + 1));
            hypercall(n, &args, false, caller)
        }
        SmcccCall::VmSetName => {
            let args: [u64; 4] = core::array::from_fn(|i| reg(i + 1));
            let reply = thread::vm_set_name(caller, &args);
            if let Some(e) = reply.error_code() {
                log::debug!("WURLEY_VM_SET_NAME({:#x}, ..): {e:?}", args[0]);
            }
            reply
        }
        SmcccCall::PartitionConfigure => {
            let args: [u64; 2] = core::array::from_fn(|i| reg(i + 1));
            let reply = objects::configure_partition(caller, &args);
            if let Some(e) = reply.error_code() {
                log::debug!("WURLEY_PARTITION_CONFIGURE({:#x}, ..): {e:?}", args[0]);
            }
            reply
        }
    })
}

/// Answers a native `HVC #imm16` with arguments `x` (`X0..X7`), or `None` if `imm16` is outside
/// the native hypercall range.
pub fn native(imm16: u16, x: &[u64], caller: &mut Caller) -> Option<Reply> {
    let n = decode::native(imm16)?;
    let args: [u64; 8] = core::array::from_fn(|i| x.get(i).copied().unwrap_or(0));
    Some(hypercall(n, &args, true, caller))
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

/// Hypercall number `n` with its inputs in `.hvc` order (`a[0]` is the first input: `X1` on
/// the SMCCC path, `X0` on the native path).
fn hypercall(n: u16, a: &[u64; 8], native: bool, c: &mut Caller) -> Reply {
    let Some(call) = HypCall::from_number(n) else {
        log::debug!("hypercall {n:#x}: unimplemented");
        return Reply::error(Error::Unimplemented);
    };
    if native && !reserved::check(call, a) {
        log::debug!("{}: reserved argument not as required", call.name());
        return Reply::error(Error::ArgumentInvalid);
    }
    let reply = answer(call, a, c);
    if let Some(e) = reply.error_code() {
        log::debug!("{}({:#x}, {:#x}, ..): {e:?}", call.name(), a[0], a[1]);
    }
    reply
}

/// `scheduler_yield`: X0 control (hint in bits 15:0), X1 argument. Hint 0 gives up the rest of
/// the timeslice; hint 1 (yield to the vCPU named by the cap in X1, right YIELD_TO) needs a
/// vCPU cap, which no VM holds before vCPU objects exist, so the cap lookup fails; other hints
/// and the implementation-defined flag are `ARGUMENT_INVALID`, as in Gunyah's FPRR scheduler.
fn scheduler_yield(c: &mut Caller, a: &[u64; 8]) -> Reply {
    use crate::sched::YieldHint;
    let r = YieldHint::decode(a[0], a[1]).and_then(|hint| match hint {
        YieldHint::Yield => {
            c.yield_cpu = true;
            Ok(())
        }
        YieldHint::YieldTo(cap) => {
            let vcpu = c.vcpu(cap, wurley_abi::rights::ThreadRights::YIELD_TO.bits())?;
            c.yield_cpu = true;
            c.proxy = Some(super::ProxyRequest::YieldTo { vcpu });
            Ok(())
        }
    });
    Reply::result(r)
}

fn answer(call: HypCall, a: &[u64; 8], c: &mut Caller) -> Reply {
    use HypCall as H;
    match call {
        H::HypervisorIdentify => Reply::new(&IDENTITY.to_registers()),
        H::PartitionCreatePartition => objects::create(c, Kind::Partition, a),
        H::PartitionCreateCspace => objects::create(c, Kind::CSpace, a),
        H::PartitionCreateDoorbell => objects::create(c, Kind::Doorbell, a),
        H::PartitionCreateMsgqueue => objects::create(c, Kind::MsgQueue, a),
        H::PartitionCreateThread => objects::create(c, Kind::Thread, a),
        H::PartitionCreateVic => objects::create(c, Kind::Vic, a),
        H::VcpuConfigure => thread::configure(c, a),
        H::CspaceAttachThread => thread::attach_cspace(c, a),
        H::AddrspaceAttachThread => thread::attach_addrspace(c, a),
        H::VicConfigure => thread::vic_configure(c, a),
        H::VicAttachVcpu => thread::vic_attach_vcpu(c, a),
        H::VcpuRegisterWrite => thread::register_write(c, a),
        H::VcpuPoweron => thread::poweron(c, a),
        H::VcpuPoweroff => thread::poweroff(c, a),
        H::VcpuKill => thread::kill(c, a),
        H::PartitionCreateVpmGroup => objects::create(c, Kind::VpmGroup, a),
        H::VpmGroupConfigure => thread::vpm_configure(c, a),
        H::VpmGroupAttachVcpu => thread::vpm_attach(c, a),
        H::VpmGroupBindVirq => thread::vpm_bind(c, a),
        H::VpmGroupUnbindVirq => thread::vpm_unbind(c, a),
        H::VpmGroupGetState => thread::vpm_get_state(c, a),
        H::HwirqBindVirq => thread::hwirq_bind(c, a),
        H::HwirqUnbindVirq => thread::hwirq_unbind(c, a),
        H::ObjectActivate => objects::activate(c, a),
        H::ObjectActivateFrom => objects::activate_from(c, a),
        H::CspaceDeleteCapFrom => objects::delete(c, a),
        H::CspaceCopyCapFrom => objects::copy(c, a),
        H::CspaceRevokeCapsFrom => objects::revoke_caps(c, a),
        H::CspaceConfigure => objects::configure_cspace(c, a),
        H::DoorbellBindVirq => ipc::doorbell_bind(c, a),
        H::DoorbellUnbindVirq => ipc::doorbell_unbind(c, a),
        H::DoorbellSend => ipc::doorbell_send(c, a),
        H::DoorbellReceive => ipc::doorbell_receive(c, a),
        H::DoorbellReset => ipc::doorbell_reset(c, a),
        H::DoorbellMask => ipc::doorbell_mask(c, a),
        H::MsgqueueBindSendVirq => ipc::msgqueue_bind(c, QueueEnd::Send, a),
        H::MsgqueueBindReceiveVirq => ipc::msgqueue_bind(c, QueueEnd::Receive, a),
        H::MsgqueueUnbindSendVirq => ipc::msgqueue_unbind(c, QueueEnd::Send, a),
        H::MsgqueueUnbindReceiveVirq => ipc::msgqueue_unbind(c, QueueEnd::Receive, a),
        H::MsgqueueSend => ipc::msgqueue_send(c, a),
        H::MsgqueueReceive => ipc::msgqueue_receive(c, a),
        H::MsgqueueFlush => ipc::msgqueue_flush(c, a),
        H::MsgqueueConfigureSend => ipc::msgqueue_configure_end(c, QueueEnd::Send, a),
        H::MsgqueueConfigureReceive => ipc::msgqueue_configure_end(c, QueueEnd::Receive, a),
        H::MsgqueueConfigure => ipc::msgqueue_configure(c, a),
        H::SchedulerYield => scheduler_yield(c, a),
        H::VcpuBindVirq => vcpu::bind(c, a),
        H::VcpuUnbindVirq => vcpu::unbind(c, a),
        H::VcpuRun => vcpu::run(c, a),
        H::VcpuRunCheck => vcpu::run_check(c, a),
        H::VcpuSetAffinity => vcpu::set_affinity(c, a),
        H::VcpuSetPriority => {
            thread::set_sched_param(c, a, wurley_abi::rights::ThreadRights::PRIORITY)
        }
        H::VcpuSetTimeslice => {
            thread::set_sched_param(c, a, wurley_abi::rights::ThreadRights::TIMESLICE)
        }
        H::AddrspaceConfigureVmmio => vcpu::configure_vmmio(c, a),
        H::PartitionCreateMemextent => memory::create_memextent(c, a),
        H::PartitionCreateAddrspace => memory::create_addrspace(c, a),
        H::MemextentConfigure => memory::memextent_configure(c, a),
        H::MemextentConfigureDerive => memory::memextent_configure_derive(c, a),
        H::MemextentModify => memory::memextent_modify(c, a),
        H::MemextentDonate => memory::memextent_donate(c, a),
        H::AddrspaceConfigure => memory::addrspace_configure(c, a),
        H::AddrspaceMap => memory::addrspace_map(c, a),
        H::AddrspaceUnmap => memory::addrspace_unmap(c, a),
        H::AddrspaceUpdateAccess => memory::addrspace_update_access(c, a),
        H::AddrspaceLookup => memory::addrspace_lookup(c, a),
        // object_reset is unimplemented in Gunyah too; cspace_revoke_cap_from is documented
        // there as unimplemented (cspace_revoke_caps_from is the revocation call).
        _ => Reply::error(Error::Unimplemented),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypercall::GuestAccess;
    use wurley_abi::{ApiVariant, psci};

    /// A caller without objects or memory.
    struct NoMem;

    impl GuestAccess for NoMem {
        fn read(&mut self, _: u64, _: &mut [u8]) -> Result<(), Error> {
            Err(Error::AddrInvalid)
        }
        fn write(&mut self, _: u64, _: &[u8]) -> Result<(), Error> {
            Err(Error::AddrInvalid)
        }
    }

    fn smccc(x: &[u64]) -> Option<Reply> {
        super::smccc(
            x,
            &mut Caller {
                cspace: None,
                mem: &mut NoMem,
                yield_cpu: false,
                proxy: None,
            },
        )
    }

    fn native(imm16: u16, x: &[u64]) -> Option<Reply> {
        super::native(
            imm16,
            x,
            &mut Caller {
                cspace: None,
                mem: &mut NoMem,
                yield_cpu: false,
                proxy: None,
            },
        )
    }

    const UNIMPLEMENTED: u64 = u64::MAX;

    fn identify_regs() -> [u64; 4] {
        [
            (1 << 15) | 1 | (0x51 << 56),
            0b111_1111 | 1 << 11 | 1 << 28,
            0,
            0,
        ]
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
    fn unassigned_numbers_are_unimplemented() {
        for n in 1..=HypCall::MAX_NUMBER {
            if HypCall::from_number(n).is_some() {
                continue;
            }
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
    fn identify_advertises_what_exists() {
        let flags = IDENTITY.flags0;
        assert!(flags.has(Feature::PartitionCspace));
        assert!(flags.has(Feature::Doorbell) && flags.has(Feature::Msgqueue));
        assert!(flags.has(Feature::VcpuRun));
        assert!(flags.has(Feature::Vcpu) && flags.has(Feature::Memextent));
        assert!(flags.has(Feature::Vic) && flags.has(Feature::Vpm));
        assert!(!flags.has(Feature::Watchdog) && !flags.has(Feature::VirtioMmio));
        assert_eq!(
            smccc(&[0xC600_8000]).expect("ours").values()[1],
            0b111_1111 | 1 << 11 | 1 << 28
        );
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

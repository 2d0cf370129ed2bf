//! Hypercalls: raw `HVC` on both entry paths, and typed wrappers for the Gunyah calls the tests
//! and the resource manager use.
//!
//! * SMCCC: `HVC #0`, `X0` = function ID (`0xC600_8000 | N`), arguments in `X1..X7`. Reserved
//!   arguments are not checked on this path. The typed wrappers use it (as Linux does) and
//!   pass reserved arguments correctly anyway (`res0` = 0, `res1` = all ones).
//! * Native: `HVC #(0x6000 + N)`, arguments in `X0..X7`; reserved arguments are checked. The
//!   immediate is part of the instruction, so [`native`] dispatches over a fixed set of
//!   numbers ([`NATIVE_NUMBERS`]).
//!
//! Results are `X0..X7`; `X0` is the error word for calls that have one. `X8..X17` are
//! clobbered. Numbers, rights and error codes come from `wurley_abi`.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use wurley_abi::{CapId, Error, HypCall, hypcall};

pub use wurley_abi::msgqueue::{
    CreateInfo, HOLDOFF_UNCHANGED, MAX_DEPTH, MAX_MSG_SIZE, SEND_FLAG_PUSH, THRESHOLD_MAXIMUM,
    THRESHOLD_UNCHANGED,
};

/// A `res1` argument.
pub const RES1: u64 = u64::MAX;

/// `HVC #0` (the SMCCC conduit): `X0` = `fid`, `X1..X7` = `args`; returns `X0..X7`.
#[inline]
pub fn hvc_smccc(fid: u32, args: [u64; 7]) -> [u64; 8] {
    let r: [u64; 8];
    // SAFETY: a hypercall. The hypervisor reads or writes guest memory only where the
    // arguments point: buffers of safe callers are valid Rust slices, and callers passing
    // arbitrary addresses for writes go through `unsafe fn`s. Clobbers only what is named.
    unsafe {
        let (r0, r1, r2, r3, r4, r5, r6, r7);
        asm!("hvc #0",
            inout("x0") u64::from(fid) => r0, inout("x1") args[0] => r1,
            inout("x2") args[1] => r2, inout("x3") args[2] => r3, inout("x4") args[3] => r4,
            inout("x5") args[4] => r5, inout("x6") args[5] => r6, inout("x7") args[6] => r7,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
            out("x14") _, out("x15") _, out("x16") _, out("x17") _,
            options(nostack));
        r = [r0, r1, r2, r3, r4, r5, r6, r7];
    }
    r
}

/// `HVC #IMM` with `X0..X7` = `args`; returns `X0..X7`.
#[inline]
pub fn hvc_native<const IMM: u16>(args: [u64; 8]) -> [u64; 8] {
    let r: [u64; 8];
    // SAFETY: as for `hvc_smccc`.
    unsafe {
        let (r0, r1, r2, r3, r4, r5, r6, r7);
        asm!("hvc #{imm}",
            imm = const IMM,
            inout("x0") args[0] => r0, inout("x1") args[1] => r1, inout("x2") args[2] => r2,
            inout("x3") args[3] => r3, inout("x4") args[4] => r4, inout("x5") args[5] => r5,
            inout("x6") args[6] => r6, inout("x7") args[7] => r7,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
            out("x14") _, out("x15") _, out("x16") _, out("x17") _,
            options(nostack));
        r = [r0, r1, r2, r3, r4, r5, r6, r7];
    }
    r
}

macro_rules! native_table {
    ($($n:literal)*) => {
        /// Hypercall numbers [`native`] can issue (`HVC #(0x6000 + N)`): 0x00..=0x25, the
        /// reserved slots 0x35 and 0x36, 0x3B, 0x59, and 0x7F (past the table).
        pub const NATIVE_NUMBERS: &[u16] = &[$($n),*];

        /// `HVC #(0x6000 + number)` with `X0..X7` = `args`, if `number` is in
        /// [`NATIVE_NUMBERS`].
        pub fn native(number: u16, args: [u64; 8]) -> Option<[u64; 8]> {
            match number {
                $($n => Some(hvc_native::<{ hypcall::native_hvc_imm($n) }>(args)),)*
                _ => None,
            }
        }
    };
}

native_table! {
    0x00 0x01 0x02 0x03 0x04 0x05 0x06 0x07 0x08 0x09 0x0A 0x0B 0x0C 0x0D 0x0E 0x0F
    0x10 0x11 0x12 0x13 0x14 0x15 0x16 0x17 0x18 0x19 0x1A 0x1B 0x1C 0x1D 0x1E 0x1F
    0x20 0x21 0x22 0x23 0x24 0x25 0x35 0x36 0x3B 0x59 0x7F
}

/// SMCCC call of hypercall number `number` (`0xC600_8000 | number`), `X1..` = `args`.
pub fn smccc_number(number: u16, args: &[u64]) -> [u64; 8] {
    let mut a = [0u64; 7];
    for (d, s) in a.iter_mut().zip(args) {
        *d = *s;
    }
    hvc_smccc(hypcall::smccc_function_id(number), a)
}

/// SMCCC call of `hc` with `X1..` = `args` (missing ones are 0).
pub fn smccc(hc: HypCall, args: &[u64]) -> [u64; 8] {
    smccc_number(hc.number(), args)
}

/// The last `X0` that was neither OK nor a known error code.
static UNKNOWN_ERROR: AtomicU64 = AtomicU64::new(0);

/// Decode an error word. A value that is not a Gunyah error is reported as
/// [`Error::Failure`]; [`last_unknown_error`] has the raw value.
pub fn result(x0: u64) -> Result<(), Error> {
    match wurley_abi::error::from_register(x0) {
        Some(r) => r,
        None => {
            UNKNOWN_ERROR.store(x0, Ordering::Relaxed);
            Err(Error::Failure)
        }
    }
}

/// The last undecodable error word [`result`] saw (0 if none).
pub fn last_unknown_error() -> u64 {
    UNKNOWN_ERROR.load(Ordering::Relaxed)
}

/// The numeric code of a result: 0 for `Ok`.
pub fn code<T>(r: &Result<T, Error>) -> i64 {
    match r {
        Ok(_) => 0,
        Err(e) => e.code(),
    }
}

fn plain(hc: HypCall, args: &[u64]) -> Result<(), Error> {
    result(smccc(hc, args)[0])
}

fn with_value(hc: HypCall, args: &[u64]) -> Result<u64, Error> {
    let r = smccc(hc, args);
    result(r[0]).map(|()| r[1])
}

/// `hypervisor_identify`: `X0..X3` (api info, flags 0..2; no error word).
pub fn hypervisor_identify() -> [u64; 4] {
    let r = smccc(HypCall::HypervisorIdentify, &[]);
    [r[0], r[1], r[2], r[3]]
}

fn create(hc: HypCall, partition: CapId, cspace: CapId) -> Result<CapId, Error> {
    with_value(hc, &[partition.0, cspace.0, 0]).map(CapId)
}

/// `partition_create_partition`.
pub fn partition_create_partition(partition: CapId, cspace: CapId) -> Result<CapId, Error> {
    create(HypCall::PartitionCreatePartition, partition, cspace)
}

/// `partition_create_cspace`.
pub fn partition_create_cspace(partition: CapId, cspace: CapId) -> Result<CapId, Error> {
    create(HypCall::PartitionCreateCspace, partition, cspace)
}

/// `partition_create_doorbell`.
pub fn partition_create_doorbell(partition: CapId, cspace: CapId) -> Result<CapId, Error> {
    create(HypCall::PartitionCreateDoorbell, partition, cspace)
}

/// `partition_create_msgqueue`.
pub fn partition_create_msgqueue(partition: CapId, cspace: CapId) -> Result<CapId, Error> {
    create(HypCall::PartitionCreateMsgqueue, partition, cspace)
}

/// `partition_create_vic`.
pub fn partition_create_vic(partition: CapId, cspace: CapId) -> Result<CapId, Error> {
    create(HypCall::PartitionCreateVic, partition, cspace)
}

/// `object_activate`.
pub fn object_activate(cap: CapId) -> Result<(), Error> {
    plain(HypCall::ObjectActivate, &[cap.0, 0])
}

/// `object_activate_from`: `cap` looked up in `cspace`.
pub fn object_activate_from(cspace: CapId, cap: CapId) -> Result<(), Error> {
    plain(HypCall::ObjectActivateFrom, &[cspace.0, cap.0, 0])
}

/// `doorbell_bind_virq`.
pub fn doorbell_bind_virq(doorbell: CapId, vic: CapId, virq: u64) -> Result<(), Error> {
    plain(HypCall::DoorbellBindVirq, &[doorbell.0, vic.0, virq, 0])
}

/// `doorbell_unbind_virq`.
pub fn doorbell_unbind_virq(doorbell: CapId) -> Result<(), Error> {
    plain(HypCall::DoorbellUnbindVirq, &[doorbell.0, 0])
}

/// `doorbell_send`: sets `new_flags`; returns the old flags.
pub fn doorbell_send(doorbell: CapId, new_flags: u64) -> Result<u64, Error> {
    with_value(HypCall::DoorbellSend, &[doorbell.0, new_flags, 0])
}

/// `doorbell_receive`: clears `clear_flags`; returns the old flags.
pub fn doorbell_receive(doorbell: CapId, clear_flags: u64) -> Result<u64, Error> {
    with_value(HypCall::DoorbellReceive, &[doorbell.0, clear_flags, 0])
}

/// `doorbell_reset`.
pub fn doorbell_reset(doorbell: CapId) -> Result<(), Error> {
    plain(HypCall::DoorbellReset, &[doorbell.0, 0])
}

/// `doorbell_mask`.
pub fn doorbell_mask(doorbell: CapId, enable_mask: u64, ack_mask: u64) -> Result<(), Error> {
    plain(
        HypCall::DoorbellMask,
        &[doorbell.0, enable_mask, ack_mask, 0],
    )
}

/// `msgqueue_bind_send_virq`.
pub fn msgqueue_bind_send_virq(msgqueue: CapId, vic: CapId, virq: u64) -> Result<(), Error> {
    plain(HypCall::MsgqueueBindSendVirq, &[msgqueue.0, vic.0, virq, 0])
}

/// `msgqueue_bind_receive_virq`.
pub fn msgqueue_bind_receive_virq(msgqueue: CapId, vic: CapId, virq: u64) -> Result<(), Error> {
    plain(
        HypCall::MsgqueueBindReceiveVirq,
        &[msgqueue.0, vic.0, virq, 0],
    )
}

/// `msgqueue_unbind_send_virq`.
pub fn msgqueue_unbind_send_virq(msgqueue: CapId) -> Result<(), Error> {
    plain(HypCall::MsgqueueUnbindSendVirq, &[msgqueue.0, 0])
}

/// `msgqueue_unbind_receive_virq`.
pub fn msgqueue_unbind_receive_virq(msgqueue: CapId) -> Result<(), Error> {
    plain(HypCall::MsgqueueUnbindReceiveVirq, &[msgqueue.0, 0])
}

/// `msgqueue_send` of `size` bytes at guest VA `data`: the result and `not_full`.
///
/// The hypervisor only reads guest memory here, so any address is safe to pass.
pub fn msgqueue_send(
    msgqueue: CapId,
    size: usize,
    data: u64,
    flags: u64,
) -> (Result<(), Error>, bool) {
    let r = smccc(
        HypCall::MsgqueueSend,
        &[msgqueue.0, size as u64, data, flags, 0],
    );
    (result(r[0]), r[1] != 0)
}

/// `msgqueue_send` of `data`.
pub fn msgqueue_send_slice(msgqueue: CapId, data: &[u8], flags: u64) -> (Result<(), Error>, bool) {
    msgqueue_send(msgqueue, data.len(), data.as_ptr() as u64, flags)
}

/// `msgqueue_receive` into `buf_size` bytes at guest VA `buffer`: the result (the message's
/// size) and `not_empty`.
///
/// # Safety
///
/// The hypervisor may write up to `buf_size` bytes at `buffer` (if they translate to guest
/// RAM): they must not be memory Rust code relies on.
pub unsafe fn msgqueue_receive(
    msgqueue: CapId,
    buffer: u64,
    buf_size: usize,
) -> (Result<usize, Error>, bool) {
    let r = smccc(
        HypCall::MsgqueueReceive,
        &[msgqueue.0, buffer, buf_size as u64, 0],
    );
    (result(r[0]).map(|()| r[1] as usize), r[2] != 0)
}

/// `msgqueue_receive` into `buf`.
pub fn msgqueue_receive_into(msgqueue: CapId, buf: &mut [u8]) -> (Result<usize, Error>, bool) {
    // SAFETY: `buf` is writable for its length, and nothing else refers to it meanwhile.
    unsafe { msgqueue_receive(msgqueue, buf.as_mut_ptr() as u64, buf.len()) }
}

/// `msgqueue_flush`.
pub fn msgqueue_flush(msgqueue: CapId) -> Result<(), Error> {
    plain(HypCall::MsgqueueFlush, &[msgqueue.0, 0])
}

/// `msgqueue_configure_send`: "not full" threshold and holdoff ([`THRESHOLD_UNCHANGED`],
/// [`HOLDOFF_UNCHANGED`]).
pub fn msgqueue_configure_send(msgqueue: CapId, threshold: u64, holdoff: u64) -> Result<(), Error> {
    plain(
        HypCall::MsgqueueConfigureSend,
        &[msgqueue.0, threshold, holdoff, RES1],
    )
}

/// `msgqueue_configure_receive`: "not empty" threshold and holdoff ([`THRESHOLD_UNCHANGED`],
/// [`THRESHOLD_MAXIMUM`], [`HOLDOFF_UNCHANGED`]).
pub fn msgqueue_configure_receive(
    msgqueue: CapId,
    threshold: u64,
    holdoff: u64,
) -> Result<(), Error> {
    plain(
        HypCall::MsgqueueConfigureReceive,
        &[msgqueue.0, threshold, holdoff, RES1],
    )
}

/// `msgqueue_configure` with a raw `create_info`.
pub fn msgqueue_configure_raw(msgqueue: CapId, create_info: u64) -> Result<(), Error> {
    plain(HypCall::MsgqueueConfigure, &[msgqueue.0, create_info, 0])
}

/// `msgqueue_configure`: queue depth and largest message (each field is 16 bits wide).
pub fn msgqueue_configure(msgqueue: CapId, depth: u32, max_msg_size: usize) -> Result<(), Error> {
    let info = CreateInfo {
        depth,
        max_msg_size,
    };
    msgqueue_configure_raw(msgqueue, info.encode())
}

/// `cspace_delete_cap_from`.
pub fn cspace_delete_cap_from(cspace: CapId, cap: CapId) -> Result<(), Error> {
    plain(HypCall::CspaceDeleteCapFrom, &[cspace.0, cap.0, 0])
}

/// `cspace_copy_cap_from`: a copy of `cap` (in `src`) in `dest` with `rights & rights_mask`.
pub fn cspace_copy_cap_from(
    src: CapId,
    cap: CapId,
    dest: CapId,
    rights_mask: u32,
) -> Result<CapId, Error> {
    with_value(
        HypCall::CspaceCopyCapFrom,
        &[src.0, cap.0, dest.0, rights_mask.into(), 0],
    )
    .map(CapId)
}

/// `cspace_revoke_cap_from`.
pub fn cspace_revoke_cap_from(cspace: CapId, cap: CapId) -> Result<(), Error> {
    plain(HypCall::CspaceRevokeCapFrom, &[cspace.0, cap.0, 0])
}

/// `cspace_configure`: the number of caps the cspace holds.
pub fn cspace_configure(cspace: CapId, max_caps: u32) -> Result<(), Error> {
    plain(HypCall::CspaceConfigure, &[cspace.0, max_caps.into(), 0])
}

/// `cspace_revoke_caps_from`: revoke every cap copied from master cap `master`.
pub fn cspace_revoke_caps_from(cspace: CapId, master: CapId) -> Result<(), Error> {
    plain(HypCall::CspaceRevokeCapsFrom, &[cspace.0, master.0, 0])
}

/// What `vcpu_run` / `vcpu_run_check` returned: the run state (`X1`, see
/// `wurley_abi::vcpu_run::RunState`) and its data (`X2..X4`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunResult {
    /// The raw state.
    pub state: u64,
    /// state_data_0..2.
    pub data: [u64; 3],
}

fn run_result(r: [u64; 8]) -> Result<RunResult, Error> {
    result(r[0]).map(|()| RunResult {
        state: r[1],
        data: [r[2], r[3], r[4]],
    })
}

/// `vcpu_run`: run a proxy-scheduled vCPU with `resume` data until it stops.
pub fn vcpu_run(vcpu: CapId, resume: [u64; 3]) -> Result<RunResult, Error> {
    run_result(smccc(
        HypCall::VcpuRun,
        &[vcpu.0, resume[0], resume[1], resume[2], 0],
    ))
}

/// `vcpu_run_check`: the state of a halted vCPU.
pub fn vcpu_run_check(vcpu: CapId) -> Result<RunResult, Error> {
    run_result(smccc(HypCall::VcpuRunCheck, &[vcpu.0, 0]))
}

/// `vcpu_set_affinity`: move the vCPU to physical CPU `cpu` (X2 is res1: all ones).
pub fn vcpu_set_affinity(vcpu: CapId, cpu: u64) -> Result<(), Error> {
    plain(HypCall::VcpuSetAffinity, &[vcpu.0, cpu, u64::MAX])
}

/// `vcpu_set_priority` (INIT-only in Gunyah).
pub fn vcpu_set_priority(vcpu: CapId, priority: u64) -> Result<(), Error> {
    plain(HypCall::VcpuSetPriority, &[vcpu.0, priority])
}

/// `vcpu_set_timeslice` in nanoseconds (INIT-only in Gunyah).
pub fn vcpu_set_timeslice(vcpu: CapId, ns: u64) -> Result<(), Error> {
    plain(HypCall::VcpuSetTimeslice, &[vcpu.0, ns])
}

/// `vcpu_bind_virq`: bind the vCPU's source `virq_type` (0 HALT, 1 VCPU_RUN_WAKEUP).
pub fn vcpu_bind_virq(vcpu: CapId, vic: CapId, virq: u64, virq_type: u64) -> Result<(), Error> {
    plain(HypCall::VcpuBindVirq, &[vcpu.0, vic.0, virq, virq_type, 0])
}

/// `vcpu_unbind_virq`.
pub fn vcpu_unbind_virq(vcpu: CapId, virq_type: u64) -> Result<(), Error> {
    plain(HypCall::VcpuUnbindVirq, &[vcpu.0, virq_type, 0])
}

/// `addrspace_configure_vmmio`: `op` 0 adds `[base, base + size)`, 1 removes it.
pub fn addrspace_configure_vmmio(
    addrspace: CapId,
    base: u64,
    size: u64,
    op: u64,
) -> Result<(), Error> {
    plain(
        HypCall::AddrspaceConfigureVmmio,
        &[addrspace.0, base, size, op, 0],
    )
}

// ----- Objects the resource manager creates and wires together -----

/// `partition_create_addrspace`.
pub fn partition_create_addrspace(partition: CapId, cspace: CapId) -> Result<CapId, Error> {
    create(HypCall::PartitionCreateAddrspace, partition, cspace)
}

/// `partition_create_memextent`.
pub fn partition_create_memextent(partition: CapId, cspace: CapId) -> Result<CapId, Error> {
    create(HypCall::PartitionCreateMemextent, partition, cspace)
}

/// `partition_create_thread` (a vCPU).
pub fn partition_create_thread(partition: CapId, cspace: CapId) -> Result<CapId, Error> {
    create(HypCall::PartitionCreateThread, partition, cspace)
}

/// `partition_create_vpm_group`.
pub fn partition_create_vpm_group(partition: CapId, cspace: CapId) -> Result<CapId, Error> {
    create(HypCall::PartitionCreateVpmGroup, partition, cspace)
}

/// `cspace_attach_thread`: the thread (INIT) uses `cspace` (ACTIVE).
pub fn cspace_attach_thread(cspace: CapId, thread: CapId) -> Result<(), Error> {
    plain(HypCall::CspaceAttachThread, &[cspace.0, thread.0, 0])
}

/// `addrspace_configure`: the address space's VMID (INIT only).
pub fn addrspace_configure(addrspace: CapId, vmid: u16) -> Result<(), Error> {
    plain(HypCall::AddrspaceConfigure, &[addrspace.0, vmid.into(), 0])
}

/// `addrspace_attach_thread`: the thread (INIT) runs in `addrspace` (ACTIVE).
pub fn addrspace_attach_thread(addrspace: CapId, thread: CapId) -> Result<(), Error> {
    plain(HypCall::AddrspaceAttachThread, &[addrspace.0, thread.0, 0])
}

/// `addrspace_map`: map `extent` at `vbase` (`map_attrs`: user access 2:0, kernel access 6:4,
/// memtype 23:16; `map_flags`: bit 31 NO_SYNC).
pub fn addrspace_map(
    addrspace: CapId,
    extent: CapId,
    vbase: u64,
    map_attrs: u32,
    map_flags: u32,
    offset: u64,
    size: u64,
) -> Result<(), Error> {
    plain(
        HypCall::AddrspaceMap,
        &[
            addrspace.0,
            extent.0,
            vbase,
            map_attrs.into(),
            map_flags.into(),
            offset,
            size,
        ],
    )
}

/// `addrspace_unmap`: remove the mapping of `extent` at `vbase`.
pub fn addrspace_unmap(
    addrspace: CapId,
    extent: CapId,
    vbase: u64,
    map_flags: u32,
    offset: u64,
    size: u64,
) -> Result<(), Error> {
    plain(
        HypCall::AddrspaceUnmap,
        &[addrspace.0, extent.0, vbase, map_flags.into(), offset, size],
    )
}

/// `addrspace_update_access`.
pub fn addrspace_update_access(
    addrspace: CapId,
    extent: CapId,
    vbase: u64,
    access_attrs: u32,
    map_flags: u32,
    offset: u64,
    size: u64,
) -> Result<(), Error> {
    plain(
        HypCall::AddrspaceUpdateAccess,
        &[
            addrspace.0,
            extent.0,
            vbase,
            access_attrs.into(),
            map_flags.into(),
            offset,
            size,
        ],
    )
}

/// What `addrspace_lookup` found: the offset in the extent, the size mapped, the attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// Offset of `vbase` in the extent.
    pub offset: u64,
    /// Bytes mapped from there.
    pub size: u64,
    /// The mapping's attributes.
    pub map_attrs: u32,
}

/// `addrspace_lookup`.
pub fn addrspace_lookup(
    addrspace: CapId,
    extent: CapId,
    vbase: u64,
    size: u64,
) -> Result<Lookup, Error> {
    let r = smccc(
        HypCall::AddrspaceLookup,
        &[addrspace.0, extent.0, vbase, size, 0],
    );
    result(r[0]).map(|()| Lookup {
        offset: r[1],
        size: r[2],
        map_attrs: r[3] as u32,
    })
}

/// `memextent_configure`: `[phys_base, phys_base + size)` with `attrs` (access 2:0, memtype
/// 9:8, type 17:16).
pub fn memextent_configure(
    extent: CapId,
    phys_base: u64,
    size: u64,
    attrs: u32,
) -> Result<(), Error> {
    plain(
        HypCall::MemextentConfigure,
        &[extent.0, phys_base, size, attrs.into(), 0],
    )
}

/// `memextent_configure_derive`: `extent` covers `[offset, offset + size)` of `parent`.
pub fn memextent_configure_derive(
    extent: CapId,
    parent: CapId,
    offset: u64,
    size: u64,
    attrs: u32,
) -> Result<(), Error> {
    plain(
        HypCall::MemextentConfigureDerive,
        &[extent.0, parent.0, offset, size, attrs.into(), 0],
    )
}

/// `memextent_modify`: `flags` bits 7:0 the operation (0 unmap all, 1 zero, 2 clean, 3 flush,
/// 255 sync all), bit 31 NO_SYNC.
pub fn memextent_modify(extent: CapId, flags: u32, offset: u64, size: u64) -> Result<(), Error> {
    plain(
        HypCall::MemextentModify,
        &[extent.0, flags.into(), offset, size],
    )
}

/// `memextent_donate`: `options` bits 7:0 the type (0 to child, 1 to parent, 2 to sibling).
pub fn memextent_donate(
    options: u32,
    from: CapId,
    to: CapId,
    offset: u64,
    size: u64,
) -> Result<(), Error> {
    plain(
        HypCall::MemextentDonate,
        &[options.into(), from.0, to.0, offset, size, 0],
    )
}

/// `vic_configure`: vCPUs, shared vIRQs, options, MSIs (INIT only).
pub fn vic_configure(
    vic: CapId,
    max_vcpus: u32,
    max_virqs: u32,
    options: u64,
    max_msis: u32,
) -> Result<(), Error> {
    plain(
        HypCall::VicConfigure,
        &[
            vic.0,
            max_vcpus.into(),
            max_virqs.into(),
            options,
            max_msis.into(),
        ],
    )
}

/// `vic_attach_vcpu`: the thread (INIT) is vCPU `index` of `vic` (ACTIVE).
pub fn vic_attach_vcpu(vic: CapId, thread: CapId, index: u32) -> Result<(), Error> {
    plain(HypCall::VicAttachVcpu, &[vic.0, thread.0, index.into(), 0])
}

/// `hwirq_bind_virq`: deliver the hardware IRQ as `virq` of `vic`.
pub fn hwirq_bind_virq(hwirq: CapId, vic: CapId, virq: u64) -> Result<(), Error> {
    plain(HypCall::HwirqBindVirq, &[hwirq.0, vic.0, virq, 0])
}

/// `hwirq_unbind_virq`.
pub fn hwirq_unbind_virq(hwirq: CapId) -> Result<(), Error> {
    plain(HypCall::HwirqUnbindVirq, &[hwirq.0, 0])
}

/// `vcpu_configure`: option flags (INIT only).
pub fn vcpu_configure(vcpu: CapId, flags: u64) -> Result<(), Error> {
    plain(HypCall::VcpuConfigure, &[vcpu.0, flags, 0])
}

/// `vcpu_poweron`: start at `entry` with `X0` = `context` (`flags` bit 0 keeps the entry
/// point, bit 1 the context, set before with `vcpu_register_write`).
pub fn vcpu_poweron(vcpu: CapId, entry: u64, context: u64, flags: u64) -> Result<(), Error> {
    plain(HypCall::VcpuPoweron, &[vcpu.0, entry, context, flags])
}

/// `vcpu_kill`: stop the vCPU for good.
pub fn vcpu_kill(vcpu: CapId) -> Result<(), Error> {
    plain(HypCall::VcpuKill, &[vcpu.0, 0])
}

/// `vcpu_register_write`: `set` 0 X0..X30, 1 PC, 2 SP_EL0/SP_EL1 (the vCPU must be off).
pub fn vcpu_register_write(vcpu: CapId, set: u64, index: u64, value: u64) -> Result<(), Error> {
    plain(HypCall::VcpuRegisterWrite, &[vcpu.0, set, index, value, 0])
}

/// `vpm_group_configure`: bit 0 of `flags` disables aggregation.
pub fn vpm_group_configure(group: CapId, flags: u64) -> Result<(), Error> {
    plain(HypCall::VpmGroupConfigure, &[group.0, flags, 0])
}

/// `vpm_group_attach_vcpu`.
pub fn vpm_group_attach_vcpu(group: CapId, vcpu: CapId, index: u32) -> Result<(), Error> {
    plain(
        HypCall::VpmGroupAttachVcpu,
        &[group.0, vcpu.0, index.into(), 0],
    )
}

/// `vpm_group_bind_virq`.
pub fn vpm_group_bind_virq(group: CapId, vic: CapId, virq: u64) -> Result<(), Error> {
    plain(HypCall::VpmGroupBindVirq, &[group.0, vic.0, virq, 0])
}

/// `vpm_group_unbind_virq`.
pub fn vpm_group_unbind_virq(group: CapId) -> Result<(), Error> {
    plain(HypCall::VpmGroupUnbindVirq, &[group.0, 0])
}

/// `vpm_group_get_state`: 0 no state, 1 running, 2 CPUs suspended, 3 system suspended.
pub fn vpm_group_get_state(group: CapId) -> Result<u64, Error> {
    with_value(HypCall::VpmGroupGetState, &[group.0, 0])
}

/// SMCCC function ID of Wurley's vendor call WURLEY_VM_SET_NAME (fast, SMC64/HVC64; not a
/// Gunyah hypercall number).
pub const WURLEY_VM_SET_NAME: u32 = 0xC600_0100;
/// WURLEY_VM_SET_NAME flag: the VM takes console input first.
pub const VM_NAME_CONSOLE: u64 = 1;

/// WURLEY_VM_SET_NAME: name the VM built (or to be built) on `addrspace` (right MAP). `name`
/// is 1 to 29 bytes of `A-Z a-z 0-9 , . _ + -`; `flags` [`VM_NAME_CONSOLE`] or 0. The
/// hypervisor reads the name at its address in this VM.
pub fn wurley_vm_set_name(addrspace: CapId, name: &[u8], flags: u64) -> Result<(), Error> {
    let r = hvc_smccc(
        WURLEY_VM_SET_NAME,
        [
            addrspace.0,
            name.as_ptr() as u64,
            name.len() as u64,
            flags,
            0,
            0,
            0,
        ],
    );
    result(r[0])
}

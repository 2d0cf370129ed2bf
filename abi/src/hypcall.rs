//! The Gunyah hypercall number map and its two entry encodings.
//!
//! Every hypercall has a number `N` (0x00..=0x68). It can be invoked two ways:
//!
//! * SMCCC: `HVC #0` with `W0 = 0xC600_8000 | N` (fast, SMC64, owner
//!   VENDOR_HYP, vendor-hyp class HYPERCALL); arguments in `X1..`. This is
//!   the path Linux uses. See [`smccc_function_id`] / [`HypCall::from_smccc`].
//! * Native: `HVC #(0x6000 + N)`; arguments in `X0..`. See
//!   [`native_hvc_imm`] / [`HypCall::from_hvc_imm`].
//!
//! The 16-bit vendor-hyp function field (bits 15:0 of the SMCCC ID) splits
//! into a 2-bit class ([`VendorHypClass`]) and a 14-bit function. Besides
//! hypercalls, the SERVICE class carries the vendor-hyp CALL_UID / REVISION
//! queries ([`VENDOR_HYP_CALL_UID`], [`VENDOR_HYP_REVISION`]); Gunyah also
//! answers the STANDARD_HYP equivalents ([`STANDARD_HYP_CALL_UID`],
//! [`STANDARD_HYP_REVISION`]).
//!
//! Numbers without a call (0x08, 0x16, 0x1E, 0x33, 0x35..=0x37) are reserved
//! slots: dispatchers answer them with `ERROR_UNIMPLEMENTED`.

use crate::smccc::{self, FunctionId, Owner};

/// Base of the native `HVC #imm16` range: `imm16 = HVC_IMM_BASE + N`.
pub const HVC_IMM_BASE: u16 = 0x6000;
/// Last immediate of the range Gunyah reserves for native hypercalls.
///
/// Only `HVC_IMM_BASE..=HVC_IMM_BASE + MAX_NUMBER` are dispatched; other
/// immediates are ordinary HVC traps.
pub const HVC_IMM_RESERVED_END: u16 = 0x61FF;
/// Base of the SMCCC hypercall function IDs: `fid = SMCCC_FID_BASE | N`.
pub const SMCCC_FID_BASE: u32 = 0xC600_8000;
/// Mask of the 14-bit function field of a vendor-hyp function number.
pub const VENDOR_HYP_FUNCTION_MASK: u16 = 0x3FFF;
/// Shift of the 2-bit class field of a vendor-hyp function number.
pub const VENDOR_HYP_CLASS_SHIFT: u32 = 14;

/// The SMCCC function ID of hypercall number `n` (`0xC600_8000 | n`).
///
/// `n` is masked to the 14-bit function field.
pub const fn smccc_function_id(n: u16) -> u32 {
    SMCCC_FID_BASE | (n & VENDOR_HYP_FUNCTION_MASK) as u32
}

/// The native `HVC` immediate of hypercall number `n` (`0x6000 + n`).
///
/// Meaningful for `n <= 0x1FF` (the reserved immediate range).
pub const fn native_hvc_imm(n: u16) -> u16 {
    HVC_IMM_BASE.wrapping_add(n)
}

/// The hypercall number carried by an SMCCC function ID, if the ID is a
/// Gunyah hypercall: fast, SMC64, owner VENDOR_HYP, class HYPERCALL.
///
/// Like Gunyah, this ignores the SVE hint (bit 16) and reserved bits 23:17.
/// The number may be one without a call (answer `ERROR_UNIMPLEMENTED`).
pub const fn smccc_hypercall_number(fid: u32) -> Option<u16> {
    let fid = FunctionId(fid);
    if !fid.is_fast() || !fid.is_smc64() || fid.owner_bits() != Owner::VendorHyp.bits() {
        return None;
    }
    match VendorHypClass::of(fid.function()) {
        Some(VendorHypClass::Hypercall) => Some(fid.function() & VENDOR_HYP_FUNCTION_MASK),
        _ => None,
    }
}

/// The hypercall number carried by a native `HVC` immediate, if the immediate
/// is in the dispatched range `0x6000..=0x6000 + MAX_NUMBER`. The number may
/// be one without a call (answer `ERROR_UNIMPLEMENTED`).
pub const fn hvc_imm_number(imm16: u16) -> Option<u16> {
    if imm16 >= HVC_IMM_BASE && imm16 - HVC_IMM_BASE <= HypCall::MAX_NUMBER {
        Some(imm16 - HVC_IMM_BASE)
    } else {
        None
    }
}

macro_rules! hypcalls {
    ($( $(#[$doc:meta])* $variant:ident = $num:literal => $name:literal, )*) => {
        /// A Gunyah hypercall, one variant per entry of the number map.
        ///
        /// The enum deliberately has no `repr`: the number is only available
        /// through [`HypCall::number`], so variants cannot be confused with
        /// raw integers.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum HypCall {
            $( $(#[$doc])* #[doc = concat!("\n\nNumber ", stringify!($num), ", `", $name, "`.")] $variant, )*
        }

        impl HypCall {
            /// Every hypercall, in ascending number order.
            pub const ALL: &'static [HypCall] = &[$(HypCall::$variant,)*];

            /// The hypercall number `N`.
            pub const fn number(self) -> u16 {
                match self {
                    $( HypCall::$variant => $num, )*
                }
            }

            /// The hypercall with number `n`, if that slot holds a call.
            pub const fn from_number(n: u16) -> Option<HypCall> {
                match n {
                    $( $num => Some(HypCall::$variant), )*
                    _ => None,
                }
            }

            /// The Gunyah (snake-case) name, e.g. `"msgqueue_send"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $( HypCall::$variant => $name, )*
                }
            }
        }
    };
}

hypcalls! {
    /// Returns API info and feature flags (no error word).
    HypervisorIdentify = 0x00 => "hypervisor_identify",
    /// Creates a partition.
    PartitionCreatePartition = 0x01 => "partition_create_partition",
    /// Creates a capability space.
    PartitionCreateCspace = 0x02 => "partition_create_cspace",
    /// Creates an address space.
    PartitionCreateAddrspace = 0x03 => "partition_create_addrspace",
    /// Creates a memory extent.
    PartitionCreateMemextent = 0x04 => "partition_create_memextent",
    /// Creates a thread (vCPU).
    PartitionCreateThread = 0x05 => "partition_create_thread",
    /// Creates a doorbell.
    PartitionCreateDoorbell = 0x06 => "partition_create_doorbell",
    /// Creates a message queue.
    PartitionCreateMsgqueue = 0x07 => "partition_create_msgqueue",
    /// Creates a watchdog (module not in the public tree).
    PartitionCreateWatchdog = 0x09 => "partition_create_watchdog",
    /// Creates a virtual interrupt controller.
    PartitionCreateVic = 0x0A => "partition_create_vic",
    /// Creates a virtual PM group.
    PartitionCreateVpmGroup = 0x0B => "partition_create_vpm_group",
    /// Activates an object (INIT -> ACTIVE).
    ObjectActivate = 0x0C => "object_activate",
    /// Activates an object named in another cspace.
    ObjectActivateFrom = 0x0D => "object_activate_from",
    /// Resets an object.
    ObjectReset = 0x0E => "object_reset",
    /// Resets an object named in another cspace.
    ObjectResetFrom = 0x0F => "object_reset_from",
    /// Binds a doorbell to a VIRQ.
    DoorbellBindVirq = 0x10 => "doorbell_bind_virq",
    /// Unbinds a doorbell's VIRQ.
    DoorbellUnbindVirq = 0x11 => "doorbell_unbind_virq",
    /// Sets doorbell flags.
    DoorbellSend = 0x12 => "doorbell_send",
    /// Reads and clears doorbell flags.
    DoorbellReceive = 0x13 => "doorbell_receive",
    /// Resets a doorbell.
    DoorbellReset = 0x14 => "doorbell_reset",
    /// Sets a doorbell's enable and ack masks.
    DoorbellMask = 0x15 => "doorbell_mask",
    /// Binds a message queue's send-side VIRQ.
    MsgqueueBindSendVirq = 0x17 => "msgqueue_bind_send_virq",
    /// Binds a message queue's receive-side VIRQ.
    MsgqueueBindReceiveVirq = 0x18 => "msgqueue_bind_receive_virq",
    /// Unbinds a message queue's send-side VIRQ.
    MsgqueueUnbindSendVirq = 0x19 => "msgqueue_unbind_send_virq",
    /// Unbinds a message queue's receive-side VIRQ.
    MsgqueueUnbindReceiveVirq = 0x1A => "msgqueue_unbind_receive_virq",
    /// Sends a message.
    MsgqueueSend = 0x1B => "msgqueue_send",
    /// Receives a message.
    MsgqueueReceive = 0x1C => "msgqueue_receive",
    /// Discards all queued messages.
    MsgqueueFlush = 0x1D => "msgqueue_flush",
    /// Configures the send-side threshold and holdoff.
    MsgqueueConfigureSend = 0x1F => "msgqueue_configure_send",
    /// Configures the receive-side threshold and holdoff.
    MsgqueueConfigureReceive = 0x20 => "msgqueue_configure_receive",
    /// Configures queue depth and maximum message size.
    MsgqueueConfigure = 0x21 => "msgqueue_configure",
    /// Deletes a capability from a cspace.
    CspaceDeleteCapFrom = 0x22 => "cspace_delete_cap_from",
    /// Copies a capability with a rights mask.
    CspaceCopyCapFrom = 0x23 => "cspace_copy_cap_from",
    /// Revokes a capability.
    CspaceRevokeCapFrom = 0x24 => "cspace_revoke_cap_from",
    /// Configures a cspace's capacity.
    CspaceConfigure = 0x25 => "cspace_configure",
    /// Binds a hardware IRQ to a VIRQ.
    HwirqBindVirq = 0x26 => "hwirq_bind_virq",
    /// Unbinds a hardware IRQ.
    HwirqUnbindVirq = 0x27 => "hwirq_unbind_virq",
    /// Configures a VIC.
    VicConfigure = 0x28 => "vic_configure",
    /// Attaches a vCPU to a VIC.
    VicAttachVcpu = 0x29 => "vic_attach_vcpu",
    /// Attaches a thread to an address space.
    AddrspaceAttachThread = 0x2A => "addrspace_attach_thread",
    /// Maps a memory extent into an address space.
    AddrspaceMap = 0x2B => "addrspace_map",
    /// Unmaps a memory extent from an address space.
    AddrspaceUnmap = 0x2C => "addrspace_unmap",
    /// Changes access rights of a mapping.
    AddrspaceUpdateAccess = 0x2D => "addrspace_update_access",
    /// Configures an address space (VMID).
    AddrspaceConfigure = 0x2E => "addrspace_configure",
    /// Attaches a DMA device to an address space.
    AddrspaceAttachVdma = 0x2F => "addrspace_attach_vdma",
    /// Modifies a memory extent (unmap-all, zero, cache maintenance).
    MemextentModify = 0x30 => "memextent_modify",
    /// Configures a memory extent over physical memory.
    MemextentConfigure = 0x31 => "memextent_configure",
    /// Configures a memory extent derived from a parent.
    MemextentConfigureDerive = 0x32 => "memextent_configure_derive",
    /// Configures vCPU options.
    VcpuConfigure = 0x34 => "vcpu_configure",
    /// Powers on a vCPU.
    VcpuPoweron = 0x38 => "vcpu_poweron",
    /// Powers off the calling vCPU.
    VcpuPoweroff = 0x39 => "vcpu_poweroff",
    /// Kills a vCPU.
    VcpuKill = 0x3A => "vcpu_kill",
    /// Yields the CPU.
    SchedulerYield = 0x3B => "scheduler_yield",
    /// Attaches a vCPU to a VPM group.
    VpmGroupAttachVcpu = 0x3C => "vpm_group_attach_vcpu",
    /// Sets a vCPU's physical CPU affinity.
    VcpuSetAffinity = 0x3D => "vcpu_set_affinity",
    /// Attaches a thread to a cspace.
    CspaceAttachThread = 0x3E => "cspace_attach_thread",
    /// Updates trace class flags.
    TraceUpdateClassFlags = 0x3F => "trace_update_class_flags",
    /// Attaches a vCPU to a watchdog (docs only).
    WatchdogAttachVcpu = 0x40 => "watchdog_attach_vcpu",
    /// Binds a watchdog VIRQ (docs only).
    WatchdogBindVirq = 0x41 => "watchdog_bind_virq",
    /// Unbinds a watchdog VIRQ (docs only).
    WatchdogUnbindVirq = 0x42 => "watchdog_unbind_virq",
    /// Binds a VPM group's VIRQ.
    VpmGroupBindVirq = 0x43 => "vpm_group_bind_virq",
    /// Unbinds a VPM group's VIRQ.
    VpmGroupUnbindVirq = 0x44 => "vpm_group_unbind_virq",
    /// Reads a VPM group's state.
    VpmGroupGetState = 0x45 => "vpm_group_get_state",
    /// Sets a vCPU's scheduling priority.
    VcpuSetPriority = 0x46 => "vcpu_set_priority",
    /// Sets a vCPU's timeslice.
    VcpuSetTimeslice = 0x47 => "vcpu_set_timeslice",
    /// Creates a virtio-mmio backend object.
    PartitionCreateVirtioMmio = 0x48 => "partition_create_virtio_mmio",
    /// Configures a virtio-mmio object.
    VirtioMmioConfigure = 0x49 => "virtio_mmio_configure",
    /// Binds the virtio-mmio backend VIRQ.
    VirtioMmioBackendBindVirq = 0x4A => "virtio_mmio_backend_bind_virq",
    /// Unbinds the virtio-mmio backend VIRQ.
    VirtioMmioBackendUnbindVirq = 0x4B => "virtio_mmio_backend_unbind_virq",
    /// Binds the virtio-mmio frontend VIRQ.
    VirtioMmioFrontendBindVirq = 0x4C => "virtio_mmio_frontend_bind_virq",
    /// Unbinds the virtio-mmio frontend VIRQ.
    VirtioMmioFrontendUnbindVirq = 0x4D => "virtio_mmio_frontend_unbind_virq",
    /// Asserts the frontend interrupt with a status.
    VirtioMmioBackendAssertVirq = 0x4E => "virtio_mmio_backend_assert_virq",
    /// Sets device feature bits.
    VirtioMmioBackendSetDevFeatures = 0x4F => "virtio_mmio_backend_set_dev_features",
    /// Sets a queue's maximum size.
    VirtioMmioBackendSetQueueNumMax = 0x50 => "virtio_mmio_backend_set_queue_num_max",
    /// Reads driver feature bits.
    VirtioMmioBackendGetDrvFeatures = 0x51 => "virtio_mmio_backend_get_drv_features",
    /// Reads a queue's configuration.
    VirtioMmioBackendGetQueueInfo = 0x52 => "virtio_mmio_backend_get_queue_info",
    /// Reads pending notifications.
    VirtioMmioBackendGetNotification = 0x53 => "virtio_mmio_backend_get_notification",
    /// Acknowledges a device reset.
    VirtioMmioBackendAcknowledgeReset = 0x54 => "virtio_mmio_backend_acknowledge_reset",
    /// Updates the device status register.
    VirtioMmioBackendUpdateStatus = 0x55 => "virtio_mmio_backend_update_status",
    /// Binds an MSI source to a VIC.
    VicBindMsiSource = 0x56 => "vic_bind_msi_source",
    /// Reads entropy.
    PrngGetEntropy = 0x57 => "prng_get_entropy",
    /// Configures a watchdog (docs only).
    WatchdogConfigure = 0x58 => "watchdog_configure",
    /// Revokes all capabilities derived from a master capability.
    CspaceRevokeCapsFrom = 0x59 => "cspace_revoke_caps_from",
    /// Looks up a mapping.
    AddrspaceLookup = 0x5A => "addrspace_lookup",
    /// Configures an address space's info area.
    AddrspaceConfigureInfoArea = 0x5B => "addrspace_configure_info_area",
    /// Binds a vCPU VIRQ (halt / vcpu_run wakeup).
    VcpuBindVirq = 0x5C => "vcpu_bind_virq",
    /// Unbinds a vCPU VIRQ.
    VcpuUnbindVirq = 0x5D => "vcpu_unbind_virq",
    /// Configures a virtio-input device.
    VirtioInputConfigure = 0x5E => "virtio_input_configure",
    /// Sets virtio-input configuration data.
    VirtioInputSetData = 0x5F => "virtio_input_set_data",
    /// Adds or removes a VMMIO range of an address space.
    AddrspaceConfigureVmmio = 0x60 => "addrspace_configure_vmmio",
    /// Donates memory between extents (the docs' 0x33 is wrong).
    MemextentDonate = 0x61 => "memextent_donate",
    /// Attaches a virtual device to an address space.
    AddrspaceAttachVdevice = 0x62 => "addrspace_attach_vdevice",
    /// Manages a watchdog (docs only).
    WatchdogManage = 0x63 => "watchdog_manage",
    /// Writes a powered-off vCPU's register.
    VcpuRegisterWrite = 0x64 => "vcpu_register_write",
    /// Runs a proxy-scheduled vCPU.
    VcpuRun = 0x65 => "vcpu_run",
    /// Configures a VPM group.
    VpmGroupConfigure = 0x66 => "vpm_group_configure",
    /// Maps vCPU indices to virtual MPIDRs.
    VgicSetMpidrMapping = 0x67 => "vgic_set_mpidr_mapping",
    /// Reads a proxy-scheduled vCPU's state without running it.
    VcpuRunCheck = 0x68 => "vcpu_run_check",
}

impl HypCall {
    /// The highest hypercall number.
    pub const MAX_NUMBER: u16 = 0x68;
    /// The size of a dispatch table indexed by number (`HYPERCALL_NUM`).
    pub const TABLE_SIZE: usize = Self::MAX_NUMBER as usize + 1;

    /// This call's SMCCC function ID.
    pub const fn smccc_function_id(self) -> u32 {
        smccc_function_id(self.number())
    }

    /// This call's native `HVC` immediate.
    pub const fn native_hvc_imm(self) -> u16 {
        native_hvc_imm(self.number())
    }

    /// Decodes an SMCCC function ID (fast, SMC64, VENDOR_HYP, class
    /// HYPERCALL, number with a call).
    pub const fn from_smccc(fid: u32) -> Option<HypCall> {
        match smccc_hypercall_number(fid) {
            Some(n) => HypCall::from_number(n),
            None => None,
        }
    }

    /// Decodes a native `HVC` immediate (`0x6000..=0x6000 + MAX_NUMBER`,
    /// number with a call).
    pub const fn from_hvc_imm(imm16: u16) -> Option<HypCall> {
        match hvc_imm_number(imm16) {
            Some(n) => HypCall::from_number(n),
            None => None,
        }
    }
}

// Compile-time checks: the map fits the reserved immediate range and
// `MAX_NUMBER` is the number of the last call.
const _: () = assert!(HVC_IMM_BASE + HypCall::MAX_NUMBER <= HVC_IMM_RESERVED_END);
const _: () = assert!(HypCall::ALL[HypCall::ALL.len() - 1].number() == HypCall::MAX_NUMBER);

/// The class of a 16-bit vendor-hyp function number (bits 15:14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VendorHypClass {
    /// 0b00: platform-specific call, forwarded to the platform handler.
    PlatformCall,
    /// 0b10: Gunyah hypercall table.
    Hypercall,
    /// 0b11: SMCCC service queries (CALL_UID, REVISION, CALL_COUNT).
    Service,
}

impl VendorHypClass {
    /// The class of a vendor-hyp function number; `None` for the undefined
    /// class 0b01.
    pub const fn of(function: u16) -> Option<VendorHypClass> {
        match function >> VENDOR_HYP_CLASS_SHIFT {
            0b00 => Some(VendorHypClass::PlatformCall),
            0b10 => Some(VendorHypClass::Hypercall),
            0b11 => Some(VendorHypClass::Service),
            _ => None,
        }
    }

    /// The 2-bit class value.
    pub const fn bits(self) -> u16 {
        match self {
            VendorHypClass::PlatformCall => 0b00,
            VendorHypClass::Hypercall => 0b10,
            VendorHypClass::Service => 0b11,
        }
    }

    /// A vendor-hyp function number from a class and a 14-bit function.
    pub const fn function(self, function: u16) -> u16 {
        (self.bits() << VENDOR_HYP_CLASS_SHIFT) | (function & VENDOR_HYP_FUNCTION_MASK)
    }
}

/// Vendor-hyp service function (class SERVICE, bits 13:0) CALL_COUNT.
pub const VENDOR_HYP_FUNCTION_CALL_COUNT: u16 = 0x3F00;
/// Vendor-hyp service function (class SERVICE, bits 13:0) CALL_UID.
pub const VENDOR_HYP_FUNCTION_CALL_UID: u16 = 0x3F01;
/// Vendor-hyp service function (class SERVICE, bits 13:0) REVISION.
pub const VENDOR_HYP_FUNCTION_REVISION: u16 = 0x3F03;

/// Vendor-hyp CALL_COUNT (fast SMC32): deprecated, answers `-1`.
pub const VENDOR_HYP_CALL_COUNT: u32 = 0x8600_FF00;
/// Vendor-hyp CALL_UID (fast SMC32): answers [`GUNYAH_UID`] in `X0..X3`.
pub const VENDOR_HYP_CALL_UID: u32 = 0x8600_FF01;
/// Vendor-hyp REVISION (fast SMC32): answers the `hyp_api_info` word in `X0`
/// (the same value as `hypervisor_identify` returns).
pub const VENDOR_HYP_REVISION: u32 = 0x8600_FF03;

/// Standard-hyp function CALL_COUNT.
pub const STANDARD_HYP_FUNCTION_CALL_COUNT: u16 = 0xFF00;
/// Standard-hyp function CALL_UID.
pub const STANDARD_HYP_FUNCTION_CALL_UID: u16 = 0xFF01;
/// Standard-hyp function REVISION.
pub const STANDARD_HYP_FUNCTION_REVISION: u16 = 0xFF03;

/// Standard-hyp CALL_COUNT (fast SMC32). Gunyah does not list an answer for
/// it; treat it as unknown (`-1`).
pub const STANDARD_HYP_CALL_COUNT: u32 = 0x8500_FF00;
/// Standard-hyp CALL_UID (fast SMC32): Gunyah answers the same
/// [`GUNYAH_UID`] as the vendor-hyp query.
pub const STANDARD_HYP_CALL_UID: u32 = 0x8500_FF01;
/// Standard-hyp REVISION (fast SMC32): answers
/// [`STANDARD_HYP_REVISION_MAJOR`] in `X0` and
/// [`STANDARD_HYP_REVISION_MINOR`] in `X1` (1.0).
pub const STANDARD_HYP_REVISION: u32 = 0x8500_FF03;
/// Major revision answered by [`STANDARD_HYP_REVISION`].
pub const STANDARD_HYP_REVISION_MAJOR: u32 = 1;
/// Minor revision answered by [`STANDARD_HYP_REVISION`].
pub const STANDARD_HYP_REVISION_MINOR: u32 = 0;

/// Gunyah's SMCCC UID as the four 32-bit words returned in `X0..X3`.
///
/// UUID `c1d58fcd-a453-5fdb-9265-ce36673d5f14`, each word little-endian.
/// Linux's `arch_is_gunyah_guest()` compares exactly these words.
pub const GUNYAH_UID: [u32; 4] = [0xcd8f_d5c1, 0xdb5f_53a4, 0x36ce_6592, 0x145f_3d67];

/// Gunyah's UUID in RFC 4122 byte order (`c1d58fcd-a453-5fdb-9265-ce36673d5f14`
/// read left to right).
pub const GUNYAH_UUID_BYTES: [u8; 16] = uid_words_to_bytes(GUNYAH_UID);

/// Converts the four UID result words into the 16 UUID bytes (each word
/// contributes its bytes least-significant first).
pub const fn uid_words_to_bytes(words: [u32; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 4 {
        let b = words[i].to_le_bytes();
        out[i * 4] = b[0];
        out[i * 4 + 1] = b[1];
        out[i * 4 + 2] = b[2];
        out[i * 4 + 3] = b[3];
        i += 1;
    }
    out
}

/// Whether the four CALL_UID result registers identify Gunyah.
pub const fn is_gunyah_uid(regs: [u64; 4]) -> bool {
    regs[0] == GUNYAH_UID[0] as u64
        && regs[1] == GUNYAH_UID[1] as u64
        && regs[2] == GUNYAH_UID[2] as u64
        && regs[3] == GUNYAH_UID[3] as u64
}

/// The SMCCC service queries Gunyah answers in the vendor-hyp and
/// standard-hyp ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceCall {
    /// [`VENDOR_HYP_CALL_COUNT`] (deprecated; answer `-1`).
    VendorHypCallCount,
    /// [`VENDOR_HYP_CALL_UID`].
    VendorHypCallUid,
    /// [`VENDOR_HYP_REVISION`].
    VendorHypRevision,
    /// [`STANDARD_HYP_CALL_COUNT`].
    StandardHypCallCount,
    /// [`STANDARD_HYP_CALL_UID`].
    StandardHypCallUid,
    /// [`STANDARD_HYP_REVISION`].
    StandardHypRevision,
}

impl ServiceCall {
    /// Every service call.
    pub const ALL: [ServiceCall; 6] = [
        ServiceCall::VendorHypCallCount,
        ServiceCall::VendorHypCallUid,
        ServiceCall::VendorHypRevision,
        ServiceCall::StandardHypCallCount,
        ServiceCall::StandardHypCallUid,
        ServiceCall::StandardHypRevision,
    ];

    /// The function ID of this call.
    pub const fn function_id(self) -> u32 {
        match self {
            ServiceCall::VendorHypCallCount => VENDOR_HYP_CALL_COUNT,
            ServiceCall::VendorHypCallUid => VENDOR_HYP_CALL_UID,
            ServiceCall::VendorHypRevision => VENDOR_HYP_REVISION,
            ServiceCall::StandardHypCallCount => STANDARD_HYP_CALL_COUNT,
            ServiceCall::StandardHypCallUid => STANDARD_HYP_CALL_UID,
            ServiceCall::StandardHypRevision => STANDARD_HYP_REVISION,
        }
    }

    /// Decodes a function ID. Service calls must be fast SMC32 (Gunyah
    /// answers the SMC64 forms with `-1`); the SVE hint bit is ignored.
    pub const fn from_function_id(fid: u32) -> Option<ServiceCall> {
        Some(match fid & !smccc::SVE_HINT_BIT {
            VENDOR_HYP_CALL_COUNT => ServiceCall::VendorHypCallCount,
            VENDOR_HYP_CALL_UID => ServiceCall::VendorHypCallUid,
            VENDOR_HYP_REVISION => ServiceCall::VendorHypRevision,
            STANDARD_HYP_CALL_COUNT => ServiceCall::StandardHypCallCount,
            STANDARD_HYP_CALL_UID => ServiceCall::StandardHypCallUid,
            STANDARD_HYP_REVISION => ServiceCall::StandardHypRevision,
            _ => return None,
        })
    }

    /// The owner range this call belongs to.
    pub const fn owner(self) -> Owner {
        match self {
            ServiceCall::VendorHypCallCount
            | ServiceCall::VendorHypCallUid
            | ServiceCall::VendorHypRevision => Owner::VendorHyp,
            ServiceCall::StandardHypCallCount
            | ServiceCall::StandardHypCallUid
            | ServiceCall::StandardHypRevision => Owner::StandardHyp,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::smccc::CallingConvention;

    /// §2.14 of the reference (with 0x49..0x55, 0x40..0x42 and 0x43/0x44
    /// expanded from §2.12/§2.13), transcribed independently of the enum.
    const REFERENCE_MAP: &[(u16, &str)] = &[
        (0x00, "hypervisor_identify"),
        (0x01, "partition_create_partition"),
        (0x02, "partition_create_cspace"),
        (0x03, "partition_create_addrspace"),
        (0x04, "partition_create_memextent"),
        (0x05, "partition_create_thread"),
        (0x06, "partition_create_doorbell"),
        (0x07, "partition_create_msgqueue"),
        (0x09, "partition_create_watchdog"),
        (0x0A, "partition_create_vic"),
        (0x0B, "partition_create_vpm_group"),
        (0x0C, "object_activate"),
        (0x0D, "object_activate_from"),
        (0x0E, "object_reset"),
        (0x0F, "object_reset_from"),
        (0x10, "doorbell_bind_virq"),
        (0x11, "doorbell_unbind_virq"),
        (0x12, "doorbell_send"),
        (0x13, "doorbell_receive"),
        (0x14, "doorbell_reset"),
        (0x15, "doorbell_mask"),
        (0x17, "msgqueue_bind_send_virq"),
        (0x18, "msgqueue_bind_receive_virq"),
        (0x19, "msgqueue_unbind_send_virq"),
        (0x1A, "msgqueue_unbind_receive_virq"),
        (0x1B, "msgqueue_send"),
        (0x1C, "msgqueue_receive"),
        (0x1D, "msgqueue_flush"),
        (0x1F, "msgqueue_configure_send"),
        (0x20, "msgqueue_configure_receive"),
        (0x21, "msgqueue_configure"),
        (0x22, "cspace_delete_cap_from"),
        (0x23, "cspace_copy_cap_from"),
        (0x24, "cspace_revoke_cap_from"),
        (0x25, "cspace_configure"),
        (0x26, "hwirq_bind_virq"),
        (0x27, "hwirq_unbind_virq"),
        (0x28, "vic_configure"),
        (0x29, "vic_attach_vcpu"),
        (0x2A, "addrspace_attach_thread"),
        (0x2B, "addrspace_map"),
        (0x2C, "addrspace_unmap"),
        (0x2D, "addrspace_update_access"),
        (0x2E, "addrspace_configure"),
        (0x2F, "addrspace_attach_vdma"),
        (0x30, "memextent_modify"),
        (0x31, "memextent_configure"),
        (0x32, "memextent_configure_derive"),
        (0x34, "vcpu_configure"),
        (0x38, "vcpu_poweron"),
        (0x39, "vcpu_poweroff"),
        (0x3A, "vcpu_kill"),
        (0x3B, "scheduler_yield"),
        (0x3C, "vpm_group_attach_vcpu"),
        (0x3D, "vcpu_set_affinity"),
        (0x3E, "cspace_attach_thread"),
        (0x3F, "trace_update_class_flags"),
        (0x40, "watchdog_attach_vcpu"),
        (0x41, "watchdog_bind_virq"),
        (0x42, "watchdog_unbind_virq"),
        (0x43, "vpm_group_bind_virq"),
        (0x44, "vpm_group_unbind_virq"),
        (0x45, "vpm_group_get_state"),
        (0x46, "vcpu_set_priority"),
        (0x47, "vcpu_set_timeslice"),
        (0x48, "partition_create_virtio_mmio"),
        (0x49, "virtio_mmio_configure"),
        (0x4A, "virtio_mmio_backend_bind_virq"),
        (0x4B, "virtio_mmio_backend_unbind_virq"),
        (0x4C, "virtio_mmio_frontend_bind_virq"),
        (0x4D, "virtio_mmio_frontend_unbind_virq"),
        (0x4E, "virtio_mmio_backend_assert_virq"),
        (0x4F, "virtio_mmio_backend_set_dev_features"),
        (0x50, "virtio_mmio_backend_set_queue_num_max"),
        (0x51, "virtio_mmio_backend_get_drv_features"),
        (0x52, "virtio_mmio_backend_get_queue_info"),
        (0x53, "virtio_mmio_backend_get_notification"),
        (0x54, "virtio_mmio_backend_acknowledge_reset"),
        (0x55, "virtio_mmio_backend_update_status"),
        (0x56, "vic_bind_msi_source"),
        (0x57, "prng_get_entropy"),
        (0x58, "watchdog_configure"),
        (0x59, "cspace_revoke_caps_from"),
        (0x5A, "addrspace_lookup"),
        (0x5B, "addrspace_configure_info_area"),
        (0x5C, "vcpu_bind_virq"),
        (0x5D, "vcpu_unbind_virq"),
        (0x5E, "virtio_input_configure"),
        (0x5F, "virtio_input_set_data"),
        (0x60, "addrspace_configure_vmmio"),
        (0x61, "memextent_donate"),
        (0x62, "addrspace_attach_vdevice"),
        (0x63, "watchdog_manage"),
        (0x64, "vcpu_register_write"),
        (0x65, "vcpu_run"),
        (0x66, "vpm_group_configure"),
        (0x67, "vgic_set_mpidr_mapping"),
        (0x68, "vcpu_run_check"),
    ];

    /// Slots the reference marks reserved / unused.
    const RESERVED: &[u16] = &[0x08, 0x16, 0x1E, 0x33, 0x35, 0x36, 0x37];

    #[test]
    fn every_reference_number_decodes_with_its_name() {
        assert_eq!(HypCall::ALL.len(), REFERENCE_MAP.len());
        for &(n, name) in REFERENCE_MAP {
            let call = HypCall::from_number(n).unwrap();
            assert_eq!(call.number(), n);
            assert_eq!(call.name(), name, "number {n:#x}");
        }
    }

    #[test]
    fn no_two_variants_share_a_number() {
        for (i, a) in HypCall::ALL.iter().enumerate() {
            for b in &HypCall::ALL[i + 1..] {
                assert_ne!(a, b);
                assert_ne!(a.number(), b.number(), "{a:?} and {b:?}");
                assert_ne!(a.name(), b.name());
            }
        }
        // ALL is sorted by number, which also makes it duplicate-free.
        assert!(
            HypCall::ALL
                .windows(2)
                .all(|w| w[0].number() < w[1].number())
        );
    }

    #[test]
    fn number_space_is_calls_plus_reserved_slots() {
        let mut calls = 0;
        for n in 0..=u16::MAX {
            match HypCall::from_number(n) {
                Some(call) => {
                    calls += 1;
                    assert_eq!(call.number(), n);
                    assert!(n <= HypCall::MAX_NUMBER);
                    assert!(!RESERVED.contains(&n));
                }
                None => assert!(n > HypCall::MAX_NUMBER || RESERVED.contains(&n), "{n:#x}"),
            }
        }
        assert_eq!(calls, HypCall::ALL.len());
        assert_eq!(calls + RESERVED.len(), HypCall::TABLE_SIZE);
        assert_eq!(
            HypCall::ALL.last().map(|c| c.number()),
            Some(HypCall::MAX_NUMBER)
        );
    }

    #[test]
    fn smccc_encoding_round_trips() {
        for &call in HypCall::ALL {
            let fid = call.smccc_function_id();
            assert_eq!(fid, 0xC600_8000 | call.number() as u32);
            let f = FunctionId(fid);
            assert!(f.is_fast() && f.is_smc64());
            assert_eq!(f.owner(), Owner::VendorHyp);
            assert_eq!(
                VendorHypClass::of(f.function()),
                Some(VendorHypClass::Hypercall)
            );
            assert_eq!(HypCall::from_smccc(fid), Some(call));
            // Gunyah ignores the SVE hint and the reserved bits.
            assert_eq!(HypCall::from_smccc(fid | smccc::SVE_HINT_BIT), Some(call));
            assert_eq!(HypCall::from_smccc(fid | 0x0002_0000), Some(call));
            // Yielding, SMC32, other owners and other classes are rejected.
            assert_eq!(HypCall::from_smccc(fid & !smccc::FAST_BIT), None);
            assert_eq!(HypCall::from_smccc(fid & !smccc::SMC64_BIT), None);
            assert_eq!(
                HypCall::from_smccc((fid & !0x3F00_0000) | 0x0500_0000),
                None
            );
            assert_eq!(HypCall::from_smccc(fid & !0x8000), None);
            assert_eq!(HypCall::from_smccc(fid | 0x4000), None);
        }
        assert_eq!(HypCall::VcpuRun.smccc_function_id(), 0xC600_8065);
        assert_eq!(HypCall::MsgqueueSend.smccc_function_id(), 0xC600_801B);
        assert_eq!(HypCall::MemextentDonate.smccc_function_id(), 0xC600_8061);
    }

    #[test]
    fn smccc_decode_over_the_whole_function_field() {
        for function in 0..=0xFFFFu32 {
            for high in [0xC600_0000u32, 0x8600_0000, 0x4600_0000, 0xC500_0000] {
                let fid = high | function;
                let number = smccc_hypercall_number(fid);
                let expect = high == 0xC600_0000 && function & 0xC000 == 0x8000;
                assert_eq!(number.is_some(), expect, "{fid:#x}");
                if let Some(n) = number {
                    assert_eq!(smccc_function_id(n), fid);
                    assert_eq!(HypCall::from_smccc(fid), HypCall::from_number(n));
                } else {
                    assert_eq!(HypCall::from_smccc(fid), None);
                }
            }
        }
    }

    #[test]
    fn native_encoding_round_trips() {
        for &call in HypCall::ALL {
            let imm = call.native_hvc_imm();
            assert_eq!(imm, 0x6000 + call.number());
            assert_eq!(HypCall::from_hvc_imm(imm), Some(call));
        }
        for imm in 0..=u16::MAX {
            let n = hvc_imm_number(imm);
            let in_range = (0x6000..=0x6068).contains(&imm);
            assert_eq!(n.is_some(), in_range, "{imm:#x}");
            if let Some(n) = n {
                assert_eq!(native_hvc_imm(n), imm);
                assert_eq!(HypCall::from_hvc_imm(imm), HypCall::from_number(n));
            } else {
                assert_eq!(HypCall::from_hvc_imm(imm), None);
            }
        }
        assert_eq!(HypCall::from_hvc_imm(0x6008), None);
    }

    #[test]
    fn vendor_hyp_class_round_trips() {
        for function in 0..=0xFFFFu16 {
            match VendorHypClass::of(function) {
                Some(class) => {
                    assert_eq!(
                        class.function(function & VENDOR_HYP_FUNCTION_MASK),
                        function
                    );
                }
                None => assert_eq!(function >> 14, 0b01),
            }
        }
    }

    #[test]
    fn service_ids() {
        assert_eq!(VENDOR_HYP_CALL_UID, 0x8600_FF01);
        assert_eq!(VENDOR_HYP_REVISION, 0x8600_FF03);
        assert_eq!(VENDOR_HYP_CALL_COUNT, 0x8600_FF00);
        for (fid, f) in [
            (VENDOR_HYP_CALL_COUNT, VENDOR_HYP_FUNCTION_CALL_COUNT),
            (VENDOR_HYP_CALL_UID, VENDOR_HYP_FUNCTION_CALL_UID),
            (VENDOR_HYP_REVISION, VENDOR_HYP_FUNCTION_REVISION),
        ] {
            let expect = FunctionId::new(
                true,
                CallingConvention::Smc32,
                Owner::VendorHyp,
                VendorHypClass::Service.function(f),
            );
            assert_eq!(expect.raw(), fid);
        }
        for (fid, f) in [
            (STANDARD_HYP_CALL_COUNT, STANDARD_HYP_FUNCTION_CALL_COUNT),
            (STANDARD_HYP_CALL_UID, STANDARD_HYP_FUNCTION_CALL_UID),
            (STANDARD_HYP_REVISION, STANDARD_HYP_FUNCTION_REVISION),
        ] {
            let expect = FunctionId::new(true, CallingConvention::Smc32, Owner::StandardHyp, f);
            assert_eq!(expect.raw(), fid);
        }
        for call in ServiceCall::ALL {
            let fid = call.function_id();
            assert_eq!(ServiceCall::from_function_id(fid), Some(call));
            assert_eq!(
                ServiceCall::from_function_id(fid | smccc::SVE_HINT_BIT),
                Some(call)
            );
            assert_eq!(ServiceCall::from_function_id(fid | smccc::SMC64_BIT), None);
            assert_eq!(FunctionId(fid).owner(), call.owner());
            assert_eq!(HypCall::from_smccc(fid), None);
        }
        assert_eq!(ServiceCall::from_function_id(0x8600_FF02), None);
    }

    #[test]
    fn gunyah_uid() {
        assert_eq!(GUNYAH_UID, [0xcd8fd5c1, 0xdb5f53a4, 0x36ce6592, 0x145f3d67]);
        // c1d58fcd-a453-5fdb-9265-ce36673d5f14
        assert_eq!(
            GUNYAH_UUID_BYTES,
            [
                0xc1, 0xd5, 0x8f, 0xcd, 0xa4, 0x53, 0x5f, 0xdb, 0x92, 0x65, 0xce, 0x36, 0x67, 0x3d,
                0x5f, 0x14
            ]
        );
        assert!(is_gunyah_uid(GUNYAH_UID.map(u64::from)));
        let mut wrong = GUNYAH_UID.map(u64::from);
        wrong[3] |= 1 << 32;
        assert!(!is_gunyah_uid(wrong));
        assert_eq!(STANDARD_HYP_REVISION_MAJOR, 1);
        assert_eq!(STANDARD_HYP_REVISION_MINOR, 0);
    }
}

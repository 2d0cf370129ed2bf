//! Proxy scheduling (`vcpu_run`, `vcpu_run_check`, `vcpu_bind_virq`,
//! `addrspace_configure_vmmio`): the run states a call returns in `X1` with their
//! data in `X2..X4`, the vCPU vIRQ types and the VMMIO range operations
//! (Gunyah `hyp/interfaces/vcpu_run` and `hyp/interfaces/addrspace`).

/// `vcpu_run_state` (X1 of `vcpu_run` and `vcpu_run_check`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum RunState {
    /// The caller's CPU must schedule (its timeslice ended, an interrupt for it
    /// arrived, a higher priority waits): call again. No data.
    Ready = 0,
    /// The vCPU idles: data 0 = sleep state (0 = WFI), data 1 = [`WakeupFrom`].
    /// The VCPU_RUN_WAKEUP vIRQ is asserted when it becomes runnable.
    ExpectsWakeup = 1,
    /// Not powered on, powered off, or its VM stopped: data 0 = flags
    /// ([`POWERED_OFF_EXITED`]).
    PoweredOff = 2,
    /// Transiently blocked in the hypervisor: call again.
    Blocked = 3,
    /// A read inside a VMMIO range: data 0 = IPA, data 1 = size in bytes;
    /// resume data 0 of the next call = the value read.
    VmmioRead = 4,
    /// A write inside a VMMIO range: data 0 = IPA, data 1 = size, data 2 =
    /// the value written.
    VmmioWrite = 5,
    /// An unrecoverable fault: the vCPU cannot run again.
    Fault = 6,
    /// Demand paging: a stage-2 fault at a page of an extent's mapping the extent does not
    /// own. Data 0 = the IPA, data 1 = 1 for a write; the vCPU runs the instruction again on
    /// the next call (Linux reads the same layout).
    PageFault = 7,
    /// The guest asked for a system reset: data 0 = reset type
    /// ([`RESET_PLAIN`], or a RESET2 type with [`RESET2_SMC64`]), data 1 =
    /// the RESET2 cookie.
    PsciSystemReset = 0x100,
}

impl RunState {
    /// The state for register value `raw`.
    pub const fn from_raw(raw: u64) -> Option<RunState> {
        Some(match raw {
            0 => RunState::Ready,
            1 => RunState::ExpectsWakeup,
            2 => RunState::PoweredOff,
            3 => RunState::Blocked,
            4 => RunState::VmmioRead,
            5 => RunState::VmmioWrite,
            6 => RunState::Fault,
            7 => RunState::PageFault,
            0x100 => RunState::PsciSystemReset,
            _ => return None,
        })
    }

    /// The register value.
    pub const fn raw(self) -> u64 {
        self as u64
    }
}

/// POWERED_OFF data 0 bit 0: the vCPU exited for good (its VM stopped).
pub const POWERED_OFF_EXITED: u64 = 1;
/// PSCI_SYSTEM_RESET data 0 bit 63: a plain SYSTEM_RESET (not RESET2).
pub const RESET_PLAIN: u64 = 1 << 63;
/// PSCI_SYSTEM_RESET data 0 bit 62: RESET2 was called with the SMC64 ID.
pub const RESET2_SMC64: u64 = 1 << 62;

/// EXPECTS_WAKEUP data 1: what the vCPU waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum WakeupFrom {
    /// Not said.
    Unspecified = 0,
    /// WFI.
    Wfi = 1,
    /// PSCI CPU_SUSPEND.
    PsciCpuSuspend = 2,
    /// PSCI SYSTEM_SUSPEND.
    PsciSystemSuspend = 3,
}

/// `vcpu_virq_type` (X3 of `vcpu_bind_virq`, X1 of `vcpu_unbind_virq`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum VcpuVirqType {
    /// Asserted when the vCPU halts (powers off, faults, its VM stops).
    Halt = 0,
    /// Asserted when a proxy-scheduled vCPU that could not run becomes runnable.
    VcpuRunWakeup = 1,
}

impl VcpuVirqType {
    /// The type for register value `raw`.
    pub const fn from_raw(raw: u64) -> Option<VcpuVirqType> {
        match raw {
            0 => Some(VcpuVirqType::Halt),
            1 => Some(VcpuVirqType::VcpuRunWakeup),
            _ => None,
        }
    }
}

/// `addrspace_vmmio_configure_op` (X3 of `addrspace_configure_vmmio`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum VmmioOp {
    /// Add a range.
    Add = 0,
    /// Remove a range added before (same base and size).
    Remove = 1,
}

impl VmmioOp {
    /// The operation for register value `raw`.
    pub const fn from_raw(raw: u64) -> Option<VmmioOp> {
        match raw {
            0 => Some(VmmioOp::Add),
            1 => Some(VmmioOp::Remove),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_states_round_trip() {
        for raw in 0..0x200 {
            if let Some(s) = RunState::from_raw(raw) {
                assert_eq!(s.raw(), raw);
            }
        }
        assert_eq!(RunState::from_raw(8), None);
        assert_eq!(RunState::PsciSystemReset.raw(), 0x100);
        assert_eq!(RunState::VmmioWrite.raw(), 5);
    }

    #[test]
    fn virq_types_and_ops() {
        assert_eq!(VcpuVirqType::from_raw(1), Some(VcpuVirqType::VcpuRunWakeup));
        assert_eq!(VcpuVirqType::from_raw(2), None);
        assert_eq!(VmmioOp::from_raw(1), Some(VmmioOp::Remove));
        assert_eq!(VmmioOp::from_raw(2), None);
    }
}

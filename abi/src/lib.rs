//! The guest-visible ABI of the Wurley hypervisor, which reimplements
//! Qualcomm's Gunyah.
//!
//! This crate is shared by the EL2 kernel, the Resource Manager and EL1 test
//! guests. It holds only numbers, bit layouts and the pure functions that
//! encode and decode them: no I/O, no allocation, no `unsafe`, and no
//! dependencies.
//!
//! * [`smccc`]: Arm SMC Calling Convention function IDs, owners and return
//!   codes.
//! * [`psci`]: PSCI 1.1 function IDs, return codes and a typed call decoder.
//! * [`hypcall`]: the Gunyah hypercall number map and its two encodings
//!   (SMCCC vendor-hyp function IDs and native `HVC #imm16`), plus the
//!   vendor-hyp and standard-hyp service calls.
//! * [`bootinfo`]: the block the hypervisor gives the Resource Manager at boot.
//! * [`msgqueue`]: message-queue create info, send flags and special thresholds.
//! * [`error`]: the Gunyah `error` enumeration and its register encoding.
//! * [`rights`]: capability rights bitmasks per object type.
//! * [`types`]: scalar newtypes and the `hypervisor_identify` layouts.
//! * [`rm`]: the Resource Manager RPC protocol: packet framing (split and reassembly over
//!   caller buffers), RM error codes, message IDs and every request, reply and notification
//!   payload.
//! * [`vcpu_run`]: proxy-scheduling run states, vCPU vIRQ types and VMMIO range operations.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bootinfo;
pub mod error;
pub mod hypcall;
pub mod msgqueue;
pub mod psci;
pub mod rights;
pub mod rm;
pub mod smccc;
pub mod types;
pub mod vcpu_run;
pub mod vendor;

pub use error::Error;
pub use hypcall::HypCall;
pub use psci::{AffinityState, PsciCall, PsciReturn};
pub use smccc::{CallingConvention, FunctionId, Owner};
pub use types::{
    ApiFlags0, ApiFlags1, ApiInfo, ApiVariant, CapId, CpuIndex, Feature, HypervisorIdentity,
    Nanoseconds, Priority, SchedulerVariant, Virq, VmId,
};

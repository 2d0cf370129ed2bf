//! Gunyah hypercalls: the vendor-hyp SMCCC services and the hypercall table, reached by the
//! SMCCC path (`HVC #0` / trapped `SMC #0` with `X0 = 0xC600_8000 | N`) and the native path
//! (`HVC #(0x6000 + N)`). The numbers live in the `wurley_abi` crate; `docs/abi.md` lists every
//! call Wurley answers, with its arguments and errors.
//!
//! - [`decode`]: which calls are ours (pure);
//! - [`reserved`]: the native path's reserved-argument rules;
//! - [`context`]: the calling VM as handlers see it (its cspace and its memory);
//! - [`dispatch`]: the table from call number to handler, as a [`dispatch::Reply`] of result
//!   registers;
//! - [`objects`]: object creation, activation and the cspace calls;
//! - [`ipc`]: message queues and doorbells;
//! - [`memory`]: memory extents and address-space mappings;
//! - [`vcpu`]: proxy scheduling (`vcpu_run`, vCPU vIRQs, VMMIO ranges);
//! - [`thread`]: building VMs from threads and VICs, and the vCPU lifecycle calls.
//!
//! Everything here is pure over a [`context::Caller`], so host tests drive the whole ABI with a
//! fake guest memory. PSCI and the SMCCC architecture calls are not here: `vm::vpsci` answers
//! them. The glue is in `vm::exit`, which tries this module first (the function-ID ranges do
//! not overlap).

pub mod context;
pub mod decode;
pub mod dispatch;
pub mod ipc;
pub mod memory;
pub mod objects;
pub mod reserved;
pub mod thread;
pub mod vcpu;

pub use context::{Caller, GuestAccess, ProxyRequest};
pub use dispatch::{Reply, native, smccc};

#[cfg(test)]
mod tests;

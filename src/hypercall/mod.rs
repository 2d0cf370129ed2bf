//! Gunyah hypercalls: the vendor-hyp SMCCC services and the hypercall table, reached by the
//! SMCCC path (`HVC #0` / trapped `SMC #0` with `X0 = 0xC600_8000 | N`) and the native path
//! (`HVC #(0x6000 + N)`). The numbers live in the `wurley_abi`
//! crate; `docs/virtualization.md` lists what is answered.
//!
//! - [`decode`]: which calls are ours (pure);
//! - [`dispatch`]: what each call answers, as a [`dispatch::Reply`] of result registers (pure
//!   for now; calls that need the VM will take it as a parameter).
//!
//! PSCI and the SMCCC architecture calls are not here: `vm::vpsci` answers them. The glue is in
//! `vm::exit`, which tries this module first (the function-ID ranges do not overlap).

pub mod decode;
pub mod dispatch;

pub use dispatch::{Reply, native, smccc};

//! wurley-rm: Wurley's Resource Manager (RM), the NS-EL1 program that will become the root VM
//! and hold all VM policy, serving Gunyah's RM RPC protocol (reference §7) to its client VMs.
//!
//! This library is the portable core, host-tested (`cargo test -p wurley-rm --target
//! x86_64-unknown-linux-gnu`); `main.rs` is the EL1 binary that wires it to the hypervisor
//! (message-queue hypercalls, vIRQs, the console).
//!
//! * [`conn`]: one client connection: a [`Reassembler`](wurley_abi::rm::Reassembler) over a
//!   14 616-byte buffer for incoming packets, and a queue of whole outgoing messages sent
//!   packet by packet through a [`Transport`](conn::Transport), never blocking on a full queue.
//! * [`server`]: the RPC server: drains clients, dispatches complete requests by message ID to
//!   the handlers, queues replies and notifications, applies back-pressure per client.
//! * [`vms`]: the VM table (VMID, name, owner, status, hyp resources, console state) and the
//!   VMID allocator.
//! * [`hyp`]: the [`Hyp`](hyp::Hyp) trait, the hypervisor-object half of the VM-management
//!   requests, and [`NoHyp`](hyp::NoHyp), which answers `UNIMPLEMENTED` for all of it.
//! * [`gunyah`]: [`Gunyah`](gunyah::Gunyah), the `Hyp` the RM runs with: VM creation, memory
//!   parcels and IRQ lending over Gunyah's object hypercalls ([`calls`]).
//! * [`memparcel`]: the memparcel bookkeeping, pure.
//! * [`output`]: where the RM's log and the VMs' console lines go.
//!
//! Everything allocates from the global allocator (`alloc`); the binary provides a heap.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod calls;
pub mod conn;
pub mod gunyah;
pub mod hyp;
pub mod launch;
pub mod memparcel;
pub mod output;
pub mod server;
pub mod vms;

#[cfg(test)]
mod launch_tests;
#[cfg(test)]
mod tests;

/// The RM's version, printed at start.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

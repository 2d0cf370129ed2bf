//! The virtual GICv3: a pure model (no hardware access) of the distributor, the per-vCPU
//! redistributors and the list-register formats, for unmodified Linux guests.
//!
//! - [`irq`]: one interrupt's state;
//! - [`dist`]: GICD register emulation (control, SPIs, routing, ID registers);
//! - [`redist`]: GICR register emulation (RD_base and SGI_base frames of one vCPU);
//! - [`sgi`]: decoding ICC_SGI1R_EL1 writes into target vCPUs;
//! - [`lr`]: ICH_LR<n>_EL2 / ICH_HCR_EL2 / ICH_VTR_EL2 formats;
//! - `state`: [`VGic`], which ties them together: injection, routing, flush and sync;
//! - `candidates`: which interrupts the flush's scan looks at.
//!
//! Every guest-derived number (offset, INTID, vCPU index, register value) is range-checked;
//! no guest input can panic the model.

#![warn(clippy::indexing_slicing)]

mod bank;
mod candidates;
pub mod dist;
pub mod irq;
pub mod lr;
pub mod redist;
pub mod sgi;
mod state;
#[cfg(test)]
mod tests;

pub use dist::DIST_SIZE;
pub use irq::{Irq, Trigger};
pub use redist::{REDIST_STRIDE, split_region_offset};
pub use state::{FlushInfo, VGic};

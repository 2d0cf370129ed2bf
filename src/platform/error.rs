//! [`DtError`]: from the shared `wurley-manifest` crate.

pub use wurley_manifest::dt::DtError;

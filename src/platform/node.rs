//! [`NodeRef`]: from the shared `wurley-manifest` crate.

pub(crate) use wurley_manifest::dt::NodeRef;

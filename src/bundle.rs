//! The boot bundle (VM manifest and images), parsed and validated by the shared
//! `wurley-manifest` crate: the hypervisor launches its VMs itself by default, the resource
//! manager does with `launch=rm`.

pub use wurley_manifest::bundle::*;

//! What a guest sees: its IPA map and interrupt numbers, from the shared `guestdt` crate (the
//! resource manager lays out the VMs it creates the same way).

pub use guestdt::layout::*;

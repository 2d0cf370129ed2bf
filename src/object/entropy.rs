//! Seeds for the per-cspace CapID randomisation.
//!
//! CapIDs are randomised so that a guest cannot guess another cap's ID by counting, and so that
//! an ID means nothing in another cspace. This is not a cryptographic generator: it mixes boot
//! entropy (the hardware RNG when the CPU has one, else the counter value at boot) with a
//! sequence number through splitmix64.

use core::sync::atomic::{AtomicU64, Ordering};

static STATE: AtomicU64 = AtomicU64::new(0x6a09_e667_f3bc_c908);

/// Mix boot entropy into the generator (called once at boot; more calls only add entropy).
pub fn add_entropy(value: u64) {
    STATE.fetch_xor(mix(value), Ordering::Relaxed);
}

/// A fresh 64-bit seed.
pub fn seed() -> u64 {
    let x = STATE.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    mix(x.wrapping_add(0x9e37_79b9_7f4a_7c15))
}

/// The splitmix64 finaliser.
pub const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeds_differ() {
        let a = super::seed();
        let b = super::seed();
        assert_ne!(a, b);
        super::add_entropy(42);
        assert_ne!(super::seed(), a);
    }
}

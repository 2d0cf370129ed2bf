//! [`Candidates`]: which interrupts a list-register scan has to look at.
//!
//! One bit per interrupt (per vCPU for SGIs and PPIs, shared for SPIs), set for every interrupt
//! that may be pending or active: a superset. Whoever may make an interrupt pending, active or
//! raise its line sets its bit (or all of them, after a register access); the scan skips clear
//! bits and clears the bits of interrupts it finds idle. A bit set for nothing costs one check.

use alloc::vec::Vec;

use super::irq::{Irq, PRIVATE};

/// The candidate bitmaps of one VGic.
#[derive(Clone, Debug)]
pub struct Candidates {
    /// Per vCPU, bit n: SGI/PPI n.
    private: Vec<u32>,
    /// Bit n of the whole vector: SPI `PRIVATE + n`.
    spis: Vec<u64>,
}

/// Whether `irq` can need a list register at all (pending latch, line, or active).
pub const fn busy(irq: &Irq) -> bool {
    irq.pending || irq.level || irq.active || irq.in_lr
}

impl Candidates {
    /// Everything a candidate: the first scan looks at every interrupt.
    pub fn new(vcpus: usize, spis: u32) -> Self {
        Self {
            private: alloc::vec![u32::MAX; vcpus],
            spis: alloc::vec![u64::MAX; spis.div_ceil(64) as usize],
        }
    }

    /// Interrupt `intid` (of `vcpu` if private) may be busy now.
    pub fn mark(&mut self, intid: u32, vcpu: usize) {
        if intid < PRIVATE {
            if let Some(w) = self.private.get_mut(vcpu) {
                *w |= 1 << intid;
            }
        } else {
            let n = (intid - PRIVATE) as usize;
            if let Some(w) = self.spis.get_mut(n / 64) {
                *w |= 1 << (n % 64);
            }
        }
    }

    /// Any interrupt may be busy now (a register access changed who knows what).
    pub fn mark_all(&mut self) {
        self.private.fill(u32::MAX);
        self.spis.fill(u64::MAX);
    }

    /// The private bits of `vcpu`.
    pub fn private(&self, vcpu: usize) -> u32 {
        self.private.get(vcpu).copied().unwrap_or(0)
    }

    /// Keep only `keep` of `vcpu`'s private bits.
    pub fn retain_private(&mut self, vcpu: usize, keep: u32) {
        if let Some(w) = self.private.get_mut(vcpu) {
            *w &= keep;
        }
    }

    /// Number of SPI words.
    pub fn spi_words(&self) -> usize {
        self.spis.len()
    }

    /// SPI word `i` (SPIs `PRIVATE + 64 i ..`).
    pub fn spi_word(&self, i: usize) -> u64 {
        self.spis.get(i).copied().unwrap_or(0)
    }

    /// Keep only `keep` of SPI word `i`.
    pub fn retain_spis(&mut self, i: usize, keep: u64) {
        if let Some(w) = self.spis.get_mut(i) {
            *w &= keep;
        }
    }
}

/// The positions of the set bits of `bits`, lowest first.
pub fn bits(mut bits: u64) -> impl Iterator<Item = u32> {
    core::iter::from_fn(move || {
        (bits != 0).then(|| {
            let b = bits.trailing_zeros();
            bits &= bits - 1;
            b
        })
    })
}

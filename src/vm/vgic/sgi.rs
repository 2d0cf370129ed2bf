//! Decoding a guest's `ICC_SGI1R_EL1` write: which SGI, and which vCPUs it targets.
//!
//! Field layout: TargetList 15:0, Aff1 23:16, INTID 27:24, Aff2 39:32, IRM 40, RS 47:44,
//! Aff3 55:48. With IRM = 0 the SGI goes to every PE whose Aff3.Aff2.Aff1 match and whose Aff0
//! is `RS * 16 + n` for a set bit n of TargetList; with IRM = 1 to every PE but the sender.

use alloc::vec::Vec;

/// A decoded `ICC_SGI1R_EL1` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sgi1r {
    /// The SGI's INTID (0-15).
    pub intid: u32,
    /// Bit n targets the PE with Aff0 = `rs * 16 + n`.
    pub target_list: u16,
    /// Affinity level 1 of the targets.
    pub aff1: u8,
    /// Affinity level 2 of the targets.
    pub aff2: u8,
    /// Affinity level 3 of the targets.
    pub aff3: u8,
    /// Range selector: which block of 16 Aff0 values `target_list` covers.
    pub rs: u8,
    /// Interrupt routing mode: true = all PEs except the sender.
    pub irm: bool,
}

impl Sgi1r {
    /// Decode a register value.
    pub const fn decode(value: u64) -> Self {
        Self {
            intid: ((value >> 24) & 0xf) as u32,
            target_list: value as u16,
            aff1: (value >> 16) as u8,
            aff2: (value >> 32) as u8,
            aff3: (value >> 48) as u8,
            rs: ((value >> 44) & 0xf) as u8,
            irm: value & (1 << 40) != 0,
        }
    }

    /// Encode back into a register value (the inverse of [`Sgi1r::decode`]).
    pub const fn encode(&self) -> u64 {
        (self.target_list as u64)
            | (self.aff1 as u64) << 16
            | ((self.intid & 0xf) as u64) << 24
            | (self.aff2 as u64) << 32
            | (self.irm as u64) << 40
            | ((self.rs & 0xf) as u64) << 44
            | (self.aff3 as u64) << 48
    }

    /// Whether the PE with `mpidr` is in the target list (ignoring IRM).
    pub const fn lists(&self, mpidr: u64) -> bool {
        let aff0 = (mpidr & 0xff) as u32;
        let aff1 = ((mpidr >> 8) & 0xff) as u8;
        let aff2 = ((mpidr >> 16) & 0xff) as u8;
        let aff3 = ((mpidr >> 32) & 0xff) as u8;
        let low = self.rs as u32 * 16;
        aff1 == self.aff1
            && aff2 == self.aff2
            && aff3 == self.aff3
            && aff0 >= low
            && aff0 < low + 16
            && self.target_list & (1 << (aff0 - low)) != 0
    }

    /// The indices of the vCPUs (by their MPIDRs, in order) the SGI goes to when vCPU
    /// `sender` writes it. A sender that lists itself is included.
    pub fn targets(&self, sender: usize, mpidrs: &[u64]) -> Vec<usize> {
        mpidrs
            .iter()
            .enumerate()
            .filter(|&(i, &mpidr)| {
                if self.irm {
                    i != sender
                } else {
                    self.lists(mpidr)
                }
            })
            .map(|(i, _)| i)
            .collect()
    }
}

/// The SGI INTID and target vCPU indices of an `ICC_SGI1R_EL1` write by vCPU `sender`.
pub fn sgi_targets(sgi1r: u64, sender: usize, mpidrs: &[u64]) -> (u32, Vec<usize>) {
    let sgi = Sgi1r::decode(sgi1r);
    (sgi.intid, sgi.targets(sender, mpidrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MPIDRS: [u64; 5] = [
        0x8000_0000,
        0x8000_0001,
        0x8000_0002,
        0x8000_0100,
        0x1_8000_0000,
    ];

    #[test]
    fn decode_fields() {
        let v = 0x00ab_1102_0005_0a03 | 7 << 24;
        let s = Sgi1r::decode(v);
        assert_eq!(s.intid, 7);
        assert_eq!(s.target_list, 0x0a03);
        assert_eq!(s.aff1, 0x05);
        assert_eq!(s.aff2, 0x02);
        assert!(s.irm);
        assert_eq!(s.rs, 1);
        assert_eq!(s.aff3, 0xab);
        assert_eq!(s.encode(), v);
    }

    #[test]
    fn target_list_picks_matching_cluster() {
        // Aff1 = 0, targets Aff0 0 and 2.
        assert_eq!(sgi_targets(0b101 | 3 << 24, 1, &MPIDRS), (3, vec![0, 2]));
        // Aff1 = 1, Aff0 0: vCPU 3 only.
        assert_eq!(sgi_targets(1 | 1 << 16, 0, &MPIDRS).1, vec![3]);
        // Aff3 = 1: vCPU 4 only.
        assert_eq!(sgi_targets(1 | 1 << 48, 0, &MPIDRS).1, vec![4]);
        // Self-targeting is allowed.
        assert_eq!(sgi_targets(0b10, 1, &MPIDRS).1, vec![1]);
    }

    #[test]
    fn range_selector_shifts_aff0() {
        let mpidrs = [0, 16, 17, 33];
        assert_eq!(sgi_targets(0b11 | 1 << 44, 0, &mpidrs).1, vec![1, 2]);
        assert_eq!(sgi_targets(0b10 | 2 << 44, 0, &mpidrs).1, vec![3]);
        assert_eq!(sgi_targets(0b11, 0, &mpidrs).1, vec![0]);
    }

    #[test]
    fn irm_is_everyone_but_sender() {
        assert_eq!(sgi_targets(1 << 40, 2, &MPIDRS).1, vec![0, 1, 3, 4]);
        assert_eq!(sgi_targets(1 << 40 | 0xffff, 9, &MPIDRS[..2]).1, vec![0, 1]);
        assert!(sgi_targets(1 << 40, 0, &MPIDRS[..1]).1.is_empty());
    }
}

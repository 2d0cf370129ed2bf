//! Host tests of the frame allocator.

#![allow(clippy::unwrap_used)]

use alloc::collections::BTreeSet;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::*;

const MIB: u64 = 1 << 20;
const P: u64 = PAGE_SIZE;

fn r(start: u64, end: u64) -> PhysRange {
    PhysRange::new(start, end).unwrap()
}

fn ranges(a: &FrameAllocator) -> Vec<PhysRange> {
    a.free_ranges().collect()
}

/// The free list is sorted, non-empty, page aligned, coalesced and `free_bytes` agrees with it.
fn check_invariants(a: &FrameAllocator) {
    let list = ranges(a);
    for f in &list {
        assert!(
            !f.is_empty() && f.start() % P == 0 && f.end() % P == 0,
            "{f:?}"
        );
    }
    for w in list.windows(2) {
        assert!(w[0].end() < w[1].start(), "not sorted/coalesced: {list:?}");
    }
    assert_eq!(a.free_bytes(), list.iter().map(|f| f.size()).sum::<u64>());
    assert_eq!(
        a.largest_free(),
        list.iter().map(|f| f.size()).max().unwrap_or(0)
    );
}

#[test]
fn image_in_the_middle_of_ram() {
    let a = FrameAllocator::from_ram(
        &[r(0x4000_0000, 0x8000_0000)],
        &[r(0x4008_0000, 0x4020_0000)],
    );
    assert_eq!(
        ranges(&a),
        vec![r(0x4000_0000, 0x4008_0000), r(0x4020_0000, 0x8000_0000)]
    );
    assert_eq!(a.free_bytes(), 0x4000_0000 - 0x18_0000);
    assert_eq!(a.total_bytes(), a.free_bytes());
    check_invariants(&a);
}

#[test]
fn exclusions_overlapping_each_other_and_ram_edges() {
    // Two RAM banks given out of order and overlapping each other, plus a separate bank.
    let ram = [
        r(0x1_0000_0000, 0x1_0010_0000),
        r(0x4000_0000, 0x4010_0000),
        r(0x4008_0000, 0x4020_0000),
    ];
    let exclude = [
        r(0x3000_0000, 0x4000_2000), // covers the bottom edge of the first bank
        r(0x4001_0000, 0x4003_0000), // these two overlap each other
        r(0x4002_0000, 0x4004_0000),
        r(0x401f_f000, 0x4100_0000),     // runs past the top edge
        r(0x8000_0000, 0x9000_0000),     // outside RAM: ignored
        r(0x1_0000_0000, 0x1_0010_0000), // the whole last bank
    ];
    let a = FrameAllocator::from_ram(&ram, &exclude);
    assert_eq!(
        ranges(&a),
        vec![r(0x4000_2000, 0x4001_0000), r(0x4004_0000, 0x401f_f000)]
    );
    check_invariants(&a);
}

#[test]
fn unaligned_ram_shrinks_and_unaligned_exclusions_widen() {
    let a = FrameAllocator::from_ram(
        &[r(0x1234, 0x10_0fff), r(0x20_0001, 0x20_0fff)], // the second holds no whole page
        &[r(0x5001, 0x5002), r(0x8fff, 0xa001), r(0x7777, 0x7777)], // the last is empty: ignored
    );
    assert_eq!(
        ranges(&a),
        vec![r(0x2000, 0x5000), r(0x6000, 0x8000), r(0xb000, 0x10_0000)]
    );
    check_invariants(&a);
}

#[test]
fn top_of_address_space_does_not_panic() {
    let top = 0u64.wrapping_sub(P);
    let base = 0u64.wrapping_sub(6 * MIB);
    let mut a = FrameAllocator::from_ram(&[r(base, u64::MAX)], &[r(u64::MAX - 10, u64::MAX)]);
    assert_eq!(ranges(&a), vec![r(base, top)]);
    assert_eq!(
        a.alloc_aligned(2 * MIB, 1 << 63),
        Err(FrameError::OutOfMemory)
    );
    assert_eq!(
        a.alloc_aligned(8 * MIB, 2 * MIB),
        Err(FrameError::OutOfMemory)
    );
    assert_eq!(a.alloc(u64::MAX / P), Err(FrameError::OutOfMemory));
    assert_eq!(a.alloc(u64::MAX), Err(FrameError::BadRange));
    let chunk = a.alloc_aligned(2 * MIB, 2 * MIB).unwrap();
    assert_eq!(chunk, r(base, base + 2 * MIB));
    // The only 2 MiB aligned 4 MiB placement left would end at 2^64.
    assert_eq!(
        a.alloc_aligned(4 * MIB, 2 * MIB),
        Err(FrameError::OutOfMemory)
    );
    let rest = a.alloc((4 * MIB - P) / P).unwrap();
    assert_eq!(rest, r(base + 2 * MIB, top));
    assert_eq!(a.free(r(top, u64::MAX)), Err(FrameError::Misaligned));
    a.free(rest).unwrap();
    a.free(chunk).unwrap();
    assert_eq!(ranges(&a), vec![r(base, top)]);
}

#[test]
fn bad_arguments_are_refused() {
    let mut a = FrameAllocator::from_ram(&[r(0, 16 * MIB)], &[]);
    assert_eq!(a.alloc(0), Err(FrameError::BadRange));
    assert_eq!(a.alloc_aligned(0, P), Err(FrameError::BadRange));
    assert_eq!(a.alloc_aligned(100, P), Err(FrameError::Misaligned));
    for align in [0, 3, P / 2, 3 * P] {
        assert_eq!(
            a.alloc_aligned(P, align),
            Err(FrameError::Misaligned),
            "align {align}"
        );
    }
    assert_eq!(a.free(r(P, P)), Err(FrameError::BadRange));
    assert_eq!(a.free(r(P + 1, 2 * P)), Err(FrameError::Misaligned));
    assert_eq!(a.free(r(P, 2 * P + 8)), Err(FrameError::Misaligned));
    assert_eq!(a.free_bytes(), 16 * MIB);
}

#[test]
fn round_trips_restore_free_bytes_and_coalesce() {
    let mut a = FrameAllocator::from_ram(
        &[r(0x4000_0000, 0x4100_0000)],
        &[r(0x4080_0000, 0x4080_1000)],
    );
    let before = ranges(&a);
    let total = a.free_bytes();
    let blocks: Vec<PhysRange> = [1, 3, 1, 7, 2, 16]
        .iter()
        .map(|&n| a.alloc(n).unwrap())
        .collect();
    // First fit from the lowest address: the blocks are back to back from the bottom.
    assert_eq!(blocks[0].start(), 0x4000_0000);
    for w in blocks.windows(2) {
        assert_eq!(w[0].end(), w[1].start());
    }
    assert_eq!(a.free_bytes(), total - 30 * P);
    // Free every other block (creating holes), then the rest: all merges back together.
    for b in blocks.iter().step_by(2) {
        a.free(*b).unwrap();
        check_invariants(&a);
    }
    assert_eq!(a.free_ranges().count(), 5); // three holes, the rest, above the exclusion
    // A freed hole is reused by the next small allocation.
    assert_eq!(a.alloc(1).unwrap(), blocks[0]);
    a.free(blocks[0]).unwrap();
    for b in blocks.iter().skip(1).step_by(2).rev() {
        a.free(*b).unwrap();
        check_invariants(&a);
    }
    assert_eq!(a.free_bytes(), total);
    assert_eq!(ranges(&a), before);
}

#[test]
fn free_merges_with_both_neighbours() {
    let mut a = FrameAllocator::from_ram(&[r(0, 10 * P)], &[]);
    let x = a.alloc(3).unwrap();
    let y = a.alloc(3).unwrap();
    let z = a.alloc(3).unwrap();
    a.free(x).unwrap();
    a.free(z).unwrap();
    assert_eq!(ranges(&a), vec![x, r(z.start(), 10 * P)]);
    a.free(y).unwrap();
    assert_eq!(ranges(&a), vec![r(0, 10 * P)]);
}

#[test]
fn aligned_allocation_in_a_fragmented_map() {
    // RAM starts just above a 2 MiB boundary; the image, the DTB and a reserved region cut it up.
    let exclude = [
        r(0x4021_0000, 0x4023_0000),
        r(0x408f_f800, 0x4090_0800),
        r(0x40c1_0000, 0x40c2_0000),
    ];
    let mut a = FrameAllocator::from_ram(&[r(0x4000_1000, 0x4100_0000)], &exclude);
    // Fragment the low memory: allocate pages and free every other one.
    let pages: Vec<PhysRange> = (0..64).map(|_| a.alloc(1).unwrap()).collect();
    for p in pages.iter().step_by(2) {
        a.free(*p).unwrap();
    }
    let fragments = a.free_ranges().count();
    // [0x4023_0000, 0x408f_f000) and [0x4090_1000, 0x40c1_0000) would have to be split; the top
    // of [0x40c2_0000, 0x4100_0000) is aligned, so it is taken from there.
    let chunk = a.alloc_aligned(2 * MIB, 2 * MIB).unwrap();
    assert_eq!(chunk, r(0x40e0_0000, 0x4100_0000));
    assert_eq!(a.free_ranges().count(), fragments);
    // No placement at a range edge is left: the lowest fitting one splits its range.
    let second = a.alloc_aligned(2 * MIB, 2 * MIB).unwrap();
    assert_eq!(second, r(0x4040_0000, 0x4060_0000));
    assert_eq!(a.free_ranges().count(), fragments + 1);
    // The tail of that split starts aligned: taken from its bottom, no new fragment.
    let third = a.alloc_aligned(2 * MIB, 2 * MIB).unwrap();
    assert_eq!(third, r(0x4060_0000, 0x4080_0000));
    assert_eq!(a.free_ranges().count(), fragments + 1);
    check_invariants(&a);
    for c in [second, chunk, third] {
        a.free(c).unwrap();
    }
    assert_eq!(a.free_ranges().count(), fragments);
}

#[test]
fn exhaustion_returns_out_of_memory() {
    let mut a = FrameAllocator::from_ram(
        &[r(0x8000_0000, 0x8000_0000 + 64 * P)],
        &[r(0x8001_0000, 0x8001_1000)],
    );
    assert_eq!(a.alloc(64), Err(FrameError::OutOfMemory));
    let mut got = Vec::new();
    while let Ok(p) = a.alloc(1) {
        got.push(p);
    }
    assert_eq!(got.len(), 63);
    assert_eq!(a.free_bytes(), 0);
    assert_eq!(a.largest_free(), 0);
    assert_eq!(a.alloc_aligned(P, P), Err(FrameError::OutOfMemory));
    for p in got {
        a.free(p).unwrap();
    }
    assert_eq!(a.free_bytes(), 63 * P);
}

#[test]
fn double_free_partial_overlap_and_unowned_are_refused() {
    let mut a = FrameAllocator::from_ram(&[r(0, MIB)], &[r(0x8_0000, 0x9_0000)]);
    let x = a.alloc(4).unwrap();
    let y = a.alloc(4).unwrap();
    a.free(x).unwrap();
    let before = ranges(&a);
    assert_eq!(a.free(x), Err(FrameError::NotAllocated));
    assert_eq!(
        a.free(r(x.start() + P, x.end() + P)),
        Err(FrameError::NotAllocated)
    );
    assert_eq!(
        a.free(r(y.start(), y.end() + P)),
        Err(FrameError::NotAllocated)
    );
    assert_eq!(a.free(r(0x8_0000, 0x8_1000)), Err(FrameError::NotAllocated)); // excluded
    assert_eq!(
        a.free(r(y.start(), 0x8_1000)),
        Err(FrameError::NotAllocated)
    );
    assert_eq!(a.free(r(MIB, MIB + P)), Err(FrameError::NotAllocated)); // outside RAM
    assert_eq!(ranges(&a), before);
    a.free(y).unwrap();
    assert_eq!(a.free_bytes(), MIB - 0x1_0000);

    let mut empty = FrameAllocator::new();
    assert_eq!(empty.alloc(1), Err(FrameError::OutOfMemory));
    assert_eq!(empty.free(r(0, P)), Err(FrameError::NotAllocated));
    assert_eq!(empty.free_bytes(), 0);
}

#[test]
fn errors_display() {
    assert_eq!(
        FrameError::OutOfMemory.to_string(),
        "out of physical memory"
    );
    for e in [
        FrameError::BadRange,
        FrameError::NotAllocated,
        FrameError::Misaligned,
    ] {
        assert!(!e.to_string().is_empty());
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Whether some free range holds `size` bytes at a multiple of `align` (brute force).
fn fits_somewhere(a: &FrameAllocator, size: u64, align: u64) -> bool {
    a.free_ranges().any(|f| {
        let start = f.start().div_ceil(align) * align;
        start + size <= f.end()
    })
}

#[test]
fn randomised_against_a_model() {
    let ram = [r(0x4000_0000, 0x4200_0000), r(0x8000_3000, 0x8100_0000)];
    let exclude = [
        r(0x4010_0123, 0x4030_0000),
        r(0x4101_0000, 0x4101_2001),
        r(0x80ff_0000, 0x9000_0000),
    ];
    let widened: Vec<PhysRange> = exclude.iter().map(|e| e.align_out(P)).collect();
    let mut a = FrameAllocator::from_ram(&ram, &exclude);
    let initial = ranges(&a);
    let total = a.free_bytes();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut allocated: Vec<PhysRange> = Vec::new();
    let mut frames: BTreeSet<u64> = BTreeSet::new();
    let mut out_of_memory = 0;

    for step in 0..6000 {
        let op = rng.below(100);
        if op < 55 || allocated.is_empty() {
            let (size, align) = match rng.below(10) {
                0..=5 => ((1 + rng.below(16)) * P, P),
                6..=7 => ((1 + rng.below(64)) * P, P << rng.below(5)),
                _ => (2 * MIB * (1 + rng.below(2)), 2 * MIB),
            };
            match a.alloc_aligned(size, align) {
                Ok(got) => {
                    assert_eq!((got.size(), got.start() % align), (size, 0), "step {step}");
                    assert!(
                        ram.iter()
                            .any(|m| m.start() <= got.start() && got.end() <= m.end())
                    );
                    assert!(
                        widened.iter().all(|e| !e.overlaps(&got)),
                        "{got:?} in an exclusion"
                    );
                    for f in got.start() / P..got.end() / P {
                        assert!(
                            frames.insert(f),
                            "frame {f:#x} handed out twice, step {step}"
                        );
                    }
                    allocated.push(got);
                }
                Err(e) => {
                    assert_eq!(e, FrameError::OutOfMemory);
                    out_of_memory += 1;
                    assert!(
                        !fits_somewhere(&a, size, align),
                        "spurious OOM at step {step}"
                    );
                }
            }
        } else {
            let idx = rng.below(allocated.len() as u64) as usize;
            let block = allocated.swap_remove(idx);
            a.free(block).unwrap();
            for f in block.start() / P..block.end() / P {
                frames.remove(&f);
            }
            assert_eq!(
                a.free(block),
                Err(FrameError::NotAllocated),
                "double free, step {step}"
            );
            let wider = r(block.start(), block.end() + P);
            assert_eq!(
                a.free(wider),
                Err(FrameError::NotAllocated),
                "partial overlap, step {step}"
            );
        }
        assert_eq!(
            a.free_bytes(),
            total - frames.len() as u64 * P,
            "step {step}"
        );
        if step % 97 == 0 {
            check_invariants(&a);
            for f in a.free_ranges() {
                assert!(
                    frames.range(f.start() / P..f.end() / P).next().is_none(),
                    "{f:?} free and allocated"
                );
            }
        }
    }
    assert!(
        out_of_memory > 0 && !allocated.is_empty(),
        "memory was never exhausted"
    );
    for b in allocated.drain(..) {
        a.free(b).unwrap();
    }
    assert_eq!(ranges(&a), initial);
}

#[test]
fn alloc_at_takes_exactly_the_range_or_nothing() {
    let mut a = FrameAllocator::from_ram(&[r(0, 64 * MIB)], &[r(8 * MIB, 9 * MIB)]);
    let before = a.free_bytes();
    // In the middle of a free range: head and tail stay free.
    let got = a.alloc_at(r(16 * MIB, 32 * MIB)).unwrap();
    assert_eq!(got, r(16 * MIB, 32 * MIB));
    assert_eq!(
        ranges(&a),
        vec![r(0, 8 * MIB), r(9 * MIB, 16 * MIB), r(32 * MIB, 64 * MIB)]
    );
    check_invariants(&a);
    // Overlapping allocated memory, the exclusion, or beyond RAM: refused, nothing changes.
    let list = ranges(&a);
    for bad in [
        r(31 * MIB, 33 * MIB),
        r(7 * MIB, 10 * MIB),
        r(60 * MIB, 70 * MIB),
    ] {
        assert_eq!(a.alloc_at(bad), Err(FrameError::OutOfMemory), "{bad:?}");
        assert_eq!(ranges(&a), list);
    }
    assert_eq!(
        a.alloc_at(r(40 * MIB, 40 * MIB + 1)),
        Err(FrameError::Misaligned)
    );
    assert_eq!(a.alloc_at(r(40 * MIB, 40 * MIB)), Err(FrameError::BadRange));
    // A whole free range, then its edges.
    a.alloc_at(r(0, 8 * MIB)).unwrap();
    a.alloc_at(r(9 * MIB, 10 * MIB)).unwrap();
    a.alloc_at(r(63 * MIB, 64 * MIB)).unwrap();
    assert_eq!(
        ranges(&a),
        vec![r(10 * MIB, 16 * MIB), r(32 * MIB, 63 * MIB)]
    );
    check_invariants(&a);
    for range in [
        r(0, 8 * MIB),
        r(9 * MIB, 10 * MIB),
        r(63 * MIB, 64 * MIB),
        got,
    ] {
        a.free(range).unwrap();
    }
    assert_eq!(a.free_bytes(), before);
}

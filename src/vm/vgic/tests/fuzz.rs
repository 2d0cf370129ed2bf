//! Random accesses and injections with a xorshift PRNG: nothing panics, and the flush/sync
//! invariants hold throughout.

use super::*;
use crate::vm::vgic::lr::lr_vintid;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// An offset biased towards the interesting parts of a 64 KiB frame.
fn offset(rng: &mut XorShift) -> u64 {
    match rng.below(6) {
        0 => rng.next(),
        1 => rng.below(0x1_0000),
        2 => rng.below(0x20),
        3 => 0x80 + rng.below(0xe80),
        4 => 0x6000 + rng.below(0x2000),
        _ => 0xffd0 + rng.below(0x30),
    }
}

fn access(rng: &mut XorShift, offset: u64) -> MmioAccess {
    let size = rng.pick(&[1u8, 2, 4, 4, 4, 8, 8, 0, 3, 16]);
    if rng.below(2) == 0 {
        MmioAccess::read(offset, size)
    } else {
        MmioAccess::write(offset, size, rng.next())
    }
}

fn intid(rng: &mut XorShift) -> u32 {
    match rng.below(4) {
        0 => rng.next() as u32,
        1 => rng.below(32) as u32,
        _ => rng.below(1100) as u32,
    }
}

/// Run `vcpu` once: flush, let the "guest" scramble the list registers, sync.
fn run_vcpu(g: &mut VGic, rng: &mut XorShift, vcpu: usize) -> usize {
    let n = rng.below(6) as usize;
    let mut lrs = vec![0u64; n];
    let info = g.flush(vcpu, &mut lrs);
    assert!(info.used <= n);
    let mut seen = Vec::new();
    for &v in &lrs[..info.used] {
        let lr = ListReg::decode(v);
        assert!(lr.vintid < 32 + g.spis(), "flushed INTID {}", lr.vintid);
        assert_ne!(lr.state, LrState::Invalid);
        assert!(
            !seen.contains(&lr.vintid),
            "INTID {} loaded twice",
            lr.vintid
        );
        assert!(g.irq(lr.vintid, vcpu).unwrap().in_lr);
        assert_eq!(g.target_of(lr.vintid, vcpu), Some(vcpu));
        seen.push(lr.vintid);
    }
    assert!(lrs[info.used..].iter().all(|&v| v == 0));
    for v in &mut lrs {
        match rng.below(5) {
            0 => *v = with_state(*v, LrState::Invalid),
            1 => *v = with_state(*v, LrState::Active),
            2 => *v = with_state(*v, LrState::from_bits(rng.next())),
            3 if rng.below(8) == 0 => *v = rng.next(),
            _ => {}
        }
    }
    let keep = rng.below(n as u64 + 2) as usize;
    g.sync(vcpu, &lrs[..keep.min(n)]);
    assert!(
        seen.iter()
            .all(|&i| !g.irq(i, vcpu).is_some_and(|irq| irq.in_lr))
    );
    assert!(
        lrs.iter()
            .all(|&v| !g.irq(lr_vintid(v), vcpu).is_some_and(|irq| irq.in_lr))
    );
    info.used
}

/// Returns how many list registers were loaded in all.
fn fuzz(seed: u64, vcpus: usize, spis: u32, steps: usize) -> usize {
    let mut rng = XorShift(seed);
    let mpidrs: Vec<u64> = (0..vcpus).map(mpidr).collect();
    let mut g = VGic::new(&mpidrs, spis);
    // Mostly enabled and routed somewhere real, so delivery paths get exercised.
    dwrite(&mut g, 0, 4, 0x13);
    for word in 0..32 {
        dwrite(&mut g, 0x80 + 4 * word, 4, u64::from(u32::MAX));
        dwrite(&mut g, 0x100 + 4 * word, 4, u64::from(u32::MAX));
    }
    for v in 0..vcpus {
        rwrite(&mut g, v, 0x1_0080, 4, u64::from(u32::MAX));
        rwrite(&mut g, v, 0x1_0100, 4, u64::from(u32::MAX));
    }
    let mut loaded = 0;
    for step in 0..steps {
        let vcpu = rng.below(vcpus as u64 + 2) as usize;
        match rng.below(10) {
            0 | 1 => {
                let off = offset(&mut rng);
                let a = access(&mut rng, off);
                let _ = g.dist_access(a);
            }
            2 => {
                let off = offset(&mut rng) | if rng.below(2) == 0 { 0x1_0000 } else { 0 };
                let a = access(&mut rng, off);
                let _ = g.redist_access(vcpu, a);
            }
            3 => {
                let off = rng.below(0x2_0000 * (vcpus as u64 + 1));
                let a = access(&mut rng, off);
                let _ = g.redist_region_access(a);
            }
            4 => {
                let intid = intid(&mut rng);
                if let Some(t) = g.set_level(intid, vcpu, rng.below(2) == 0) {
                    assert!(t < vcpus && g.pending_for(t));
                }
            }
            5 => {
                let intid = intid(&mut rng);
                if let Some(t) = g.pend_edge(intid, vcpu) {
                    assert_eq!(g.target_of(intid, vcpu), Some(t));
                }
            }
            6 => {
                let value = if rng.below(2) == 0 {
                    rng.next()
                } else {
                    rng.next() & 0x1_00ff_0fff_ffff
                };
                for t in g.send_sgi(vcpu, value) {
                    assert!(t < vcpus);
                }
            }
            7 => {
                let _ = g.map_hw(intid(&mut rng), vcpu, intid(&mut rng));
            }
            _ => {
                let v = rng.below(vcpus as u64 + 1) as usize;
                loaded += run_vcpu(&mut g, &mut rng, v);
            }
        }
        if step % 64 == 0 {
            assert_none_in_lr(&g);
            for v in 0..vcpus + 1 {
                let _ = g.pending_for(v);
                let _ = g.target_of(intid(&mut rng), v);
            }
        }
    }
    loaded
}

#[test]
fn fuzz_random_accesses_never_panic() {
    let loaded = [
        fuzz(0x9e37_79b9_7f4a_7c15, 3, 64, 20_000),
        fuzz(0x1234_5678_9abc_def1, 1, 0, 5_000),
        fuzz(0xdead_beef_cafe_f00d, 5, 988, 5_000),
        fuzz(7, 17, 32, 5_000),
    ];
    println!("list registers loaded: {loaded:?}");
    assert!(
        loaded.iter().all(|&n| n > 50),
        "the fuzz reaches delivery: {loaded:?}"
    );
}

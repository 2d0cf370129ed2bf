//! The flush's reuse of its last scan (`VGic::wanted`, valid while the epoch stands still) and
//! its scan of candidate interrupts only (`Candidates`) load exactly what a fresh scan of every
//! interrupt would: random injections, register writes, reroutes and guest runs, each flush
//! compared with the flush of a clone forced to scan everything again.

use super::*;
use crate::vm::vgic::lr::{lr_state, lr_vintid};

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Flush `vcpu` into `n` list registers, checking the result against a fresh scan.
fn checked_flush(g: &mut VGic, vcpu: usize, n: usize) -> Vec<u64> {
    let mut fresh = g.clone();
    fresh.forget_scans();
    let (mut a, mut b) = (vec![0u64; n], vec![0u64; n]);
    let info = g.flush(vcpu, &mut a);
    assert_eq!(info, fresh.flush(vcpu, &mut b), "flush info of vCPU {vcpu}");
    assert_eq!(a, b, "list registers of vCPU {vcpu}");
    a
}

/// What the guest does with its list registers: nothing (the common case of an exit that
/// does not touch the GIC), acknowledge the first pending one, complete the first one, or
/// complete them all.
fn guest(rng: &mut Rng, lrs: &mut [u64]) {
    match rng.below(4) {
        0 => {
            if let Some(lr) = lrs.iter_mut().find(|v| lr_state(**v).pending()) {
                *lr = with_state(*lr, LrState::Active);
            }
        }
        1 => {
            if let Some(lr) = lrs.iter_mut().find(|v| lr_vintid(**v) != 0) {
                *lr = 0;
            }
        }
        2 => lrs.fill(0),
        _ => {}
    }
}

fn run(seed: u64, vcpus: usize, steps: usize) -> usize {
    let mut rng = Rng(seed);
    let mut g = gic(vcpus);
    enable_dist(&mut g);
    for v in 0..vcpus {
        for intid in [1, 2, 27] {
            setup_private(&mut g, v, intid, 0xa0);
        }
    }
    for intid in 32..48 {
        setup_spi(&mut g, intid, 0x80 + intid as u8, intid as usize % vcpus);
    }
    let mut loaded = 0;
    let mut running: Vec<Option<Vec<u64>>> = vec![None; vcpus];
    for _ in 0..steps {
        let vcpu = rng.below(vcpus as u64) as usize;
        match rng.below(16) {
            0 => {
                let _ = g.pend_edge(32 + rng.below(16) as u32, vcpu);
            }
            1 => {
                let _ = g.set_level(27, vcpu, rng.below(2) == 0);
            }
            2 => {
                let _ = g.assert_source(32 + rng.below(16) as u32, rng.below(2) == 0);
            }
            3 => g.deassert_source(32 + rng.below(16) as u32),
            4 => {
                let target = mpidr(rng.below(vcpus as u64) as usize);
                let _ = g.send_sgi(vcpu, (1 + rng.below(2)) << 24 | 1 << (target & 0xf));
            }
            5 => {
                // Reroute an SPI, perhaps while it sits in a list register.
                let intid = 32 + rng.below(16);
                let to = mpidr(rng.below(vcpus as u64) as usize) & 0xff_ffff;
                dwrite(&mut g, 0x6000 + 8 * intid, 8, to);
            }
            // Enter a vCPU, or exit it: others act while it runs.
            _ => match running[vcpu].take() {
                None => {
                    let n = 1 + rng.below(4) as usize;
                    let lrs = checked_flush(&mut g, vcpu, n);
                    loaded += lrs.iter().filter(|&&v| v != 0).count();
                    running[vcpu] = Some(lrs);
                }
                Some(mut lrs) => {
                    guest(&mut rng, &mut lrs);
                    g.sync(vcpu, &lrs);
                }
            },
        }
    }
    loaded
}

#[test]
fn reused_scans_load_what_a_fresh_scan_would() {
    for (seed, vcpus) in [
        (0x9e37_79b9_7f4a_7c15, 1),
        (0x1234_5678_9abc_def1, 2),
        (99, 3),
    ] {
        assert!(run(seed, vcpus, 20_000) > 1000, "the test reaches delivery");
    }
}

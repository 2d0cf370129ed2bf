//! Host tests of the whole vGIC: register emulation, Linux's probe sequence, delivery through
//! list registers, and a random-access fuzz.

#![allow(clippy::indexing_slicing)]

mod delivery;
mod flush_cache;
mod fuzz;
mod linux;
mod mmio;

use super::VGic;
use super::lr::{ListReg, LrState};
use crate::vm::mmio::{MmioAccess, MmioResult};

/// SPIs in the test GICs (INTIDs 32-95).
const SPIS: u32 = 64;

/// vCPU `i`'s MPIDR_EL1 as the VMM builds it (RES1 bit 31, 16 vCPUs per Aff1 cluster).
fn mpidr(i: usize) -> u64 {
    0x8000_0000 | ((i as u64 / 16) << 8) | (i as u64 % 16)
}

fn gic(vcpus: usize) -> VGic {
    let mpidrs: Vec<u64> = (0..vcpus).map(mpidr).collect();
    VGic::new(&mpidrs, SPIS)
}

fn dread(g: &mut VGic, offset: u64, size: u8) -> u64 {
    match g.dist_access(MmioAccess::read(offset, size)) {
        MmioResult::Read(v) => v,
        r => panic!("GICD read {offset:#x}/{size}: {r:?}"),
    }
}

fn dwrite(g: &mut VGic, offset: u64, size: u8, value: u64) {
    assert_eq!(
        g.dist_access(MmioAccess::write(offset, size, value)),
        MmioResult::Written,
        "GICD {offset:#x}"
    );
}

fn rread(g: &mut VGic, vcpu: usize, offset: u64, size: u8) -> u64 {
    match g.redist_access(vcpu, MmioAccess::read(offset, size)) {
        MmioResult::Read(v) => v,
        r => panic!("GICR{vcpu} read {offset:#x}/{size}: {r:?}"),
    }
}

fn rwrite(g: &mut VGic, vcpu: usize, offset: u64, size: u8, value: u64) {
    let r = g.redist_access(vcpu, MmioAccess::write(offset, size, value));
    assert_eq!(r, MmioResult::Written, "GICR{vcpu} {offset:#x}");
}

/// Enable group 1 forwarding, as Linux does (ARE + EnableGrp1A + "EnableG1").
fn enable_dist(g: &mut VGic) {
    dwrite(g, 0, 4, 0x13);
}

/// Make SPI `intid` enabled, group 1, with `prio`, routed to vCPU `vcpu`.
fn setup_spi(g: &mut VGic, intid: u32, prio: u8, vcpu: usize) {
    let word = u64::from(intid / 32) * 4;
    let bit = 1u64 << (intid % 32);
    let grp = dread(g, 0x80 + word, 4);
    dwrite(g, 0x80 + word, 4, grp | bit);
    dwrite(g, 0x400 + u64::from(intid), 1, u64::from(prio));
    dwrite(
        g,
        0x6000 + 8 * u64::from(intid),
        8,
        mpidr(vcpu) & 0xff_00ff_ffff,
    );
    dwrite(g, 0x100 + word, 4, bit);
}

/// Make private interrupt `intid` of `vcpu` enabled, group 1, with `prio`.
fn setup_private(g: &mut VGic, vcpu: usize, intid: u32, prio: u8) {
    let grp = rread(g, vcpu, 0x10080, 4);
    rwrite(g, vcpu, 0x10080, 4, grp | 1 << intid);
    rwrite(g, vcpu, 0x10400 + u64::from(intid), 1, u64::from(prio));
    rwrite(g, vcpu, 0x10100, 4, 1 << intid);
}

/// Flush `vcpu` into `n` list registers and decode the used ones.
fn flush(g: &mut VGic, vcpu: usize, n: usize) -> (Vec<u64>, Vec<ListReg>, bool) {
    let mut lrs = vec![0u64; n];
    let info = g.flush(vcpu, &mut lrs);
    assert!(
        lrs[info.used..].iter().all(|&v| v == 0),
        "unused slots are zero"
    );
    let decoded = lrs[..info.used]
        .iter()
        .map(|&v| ListReg::decode(v))
        .collect();
    (lrs, decoded, info.more_pending)
}

/// What the guest did to a list register: replace its state.
fn with_state(lr: u64, state: LrState) -> u64 {
    (lr & !(3 << 62)) | state.bits() << 62
}

/// Assert that no interrupt of any vCPU is marked as loaded.
fn assert_none_in_lr(g: &VGic) {
    for vcpu in 0..g.vcpus() {
        for intid in 0..32 + g.spis() {
            assert!(
                !g.irq(intid, vcpu).unwrap().in_lr,
                "INTID {intid} of vCPU {vcpu} still in an LR"
            );
        }
    }
}

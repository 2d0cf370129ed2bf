//! Role `ipi`: virtual IPIs between the two vCPUs of one VM.
//!
//! vCPU 0 starts vCPU 1 (PSCI `CPU_ON`), which enables SGI [`SGI_PING`] and sleeps in WFI. Each
//! sample: vCPU 0 takes the counter and writes `ICC_SGI1R_EL1` (trapped by the hypervisor) to
//! send SGI [`SGI_PING`] to vCPU 1, whose handler sends SGI [`SGI_PONG`] back; vCPU 0 sleeps in
//! WFI until its handler has run and takes the counter there. `vipi_<where>_rtt` is that round
//! trip, `vipi_<where>` half of it. `where=` (`cross_cpu` or `same_cpu`) names the placement.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use wurley_rt::fdt::Fdt;
use wurley_rt::{args, gic, smp, time};

use crate::solo::WARMUP;
use crate::stats::{Report, Samples, spin_until, wait_irq};

const SGI_PING: u32 = 1;
const SGI_PONG: u32 = 2;
/// Offset of a redistributor's SGI_base frame from its RD_base.
const SGI_BASE: usize = 0x1_0000;
const GICR_IGROUPR0: usize = 0x0080;
const GICR_ISENABLER0: usize = 0x0100;
const GICR_IPRIORITYR: usize = 0x0400;

/// vCPU 0's MPIDR affinity (where pongs go).
static BOOT_AFF: AtomicU64 = AtomicU64::new(0);
static READY: AtomicBool = AtomicBool::new(false);
static PONG_AT: AtomicU64 = AtomicU64::new(0);
static PONGS: AtomicU32 = AtomicU32::new(0);

/// A 32-bit load from a trapped (emulated) register. Written as one plain `ldr`: the compiler
/// may otherwise fold the address arithmetic into a load with writeback, whose syndrome the
/// hypervisor cannot emulate.
fn read32(addr: usize) -> u32 {
    let v: u32;
    // SAFETY: a register in this vCPU's redistributor SGI frame (identity-mapped Device memory).
    unsafe { asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = out(reg) v, options(nostack)) };
    v
}

/// A 32-bit store to a trapped register, as one plain `str` (see [`read32`]).
fn write32(addr: usize, v: u32) {
    // SAFETY: as for `read32`.
    unsafe { asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) v, options(nostack)) };
}

/// Enable SGI `intid` on the calling vCPU's redistributor: group 1, the runtime's priority.
/// (`gic::enable` covers PPIs and SPIs only.)
fn enable_sgi(intid: u32) {
    let sgi = gic::redistributor() + SGI_BASE;
    let bit = 1u32 << intid;
    write32(sgi + GICR_IGROUPR0, read32(sgi + GICR_IGROUPR0) | bit);
    let reg = sgi + GICR_IPRIORITYR + (intid as usize & !3);
    let shift = 8 * (intid % 4);
    write32(
        reg,
        (read32(reg) & !(0xff << shift)) | u32::from(gic::PRIORITY) << shift,
    );
    write32(sgi + GICR_ISENABLER0, bit);
}

/// Send SGI `intid` to the vCPU with MPIDR affinity `aff` (Aff1.Aff0 only, as Wurley numbers
/// vCPUs).
fn send_sgi(intid: u32, aff: u64) {
    let aff0 = aff & 0xf;
    let aff1 = (aff >> 8) & 0xff;
    let value = u64::from(intid) << 24 | aff1 << 16 | 1 << aff0;
    // SAFETY: ICC_SGI1R_EL1 (S3_0_C12_C11_5) generates an SGI; no memory is touched.
    unsafe { asm!("msr S3_0_C12_C11_5, {}", "isb", in(reg) value, options(nostack)) };
}

/// On vCPU 1: answer.
fn ping_irq(_intid: u32) {
    send_sgi(SGI_PONG, BOOT_AFF.load(Ordering::Relaxed));
}

/// On vCPU 0: the answer came.
fn pong_irq(_intid: u32) {
    PONG_AT.store(time::ticks(), Ordering::Release);
    PONGS.fetch_add(1, Ordering::AcqRel);
}

fn secondary(_arg: usize) -> ! {
    enable_sgi(SGI_PING);
    READY.store(true, Ordering::Release);
    loop {
        wurley_rt::wait_for_interrupt();
    }
}

pub fn run(r: &mut Report, fdt: &Fdt<'_>, bootargs: &str, reps: usize) {
    let place = args::get(bootargs, "where").unwrap_or("cross_cpu");
    let me = wurley_rt::mpidr_affinity();
    let cpus = smp::cpus(fdt);
    let Some(&other) = cpus.as_slice().iter().find(|&&m| m != me) else {
        r.error(format_args!("needs a VM with two vCPUs"));
        return;
    };
    BOOT_AFF.store(me, Ordering::Release);
    gic::set_handler(SGI_PING, ping_irq);
    gic::set_handler(SGI_PONG, pong_irq);
    enable_sgi(SGI_PONG);
    if let Err(code) = smp::start_cpu(other, secondary, 0) {
        r.error(format_args!("CPU_ON of vCPU {other:#x}: {code}"));
        return;
    }
    let timeout = time::frequency().saturating_mul(20);
    if !spin_until(timeout, || READY.load(Ordering::Acquire)) {
        r.error(format_args!("vCPU {other:#x} did not come up"));
        return;
    }
    let mut s = Samples::new();
    for i in 0..reps + WARMUP {
        let before = PONGS.load(Ordering::Acquire);
        let t0 = time::ticks();
        send_sgi(SGI_PING, other);
        wait_irq(|| PONGS.load(Ordering::Acquire) != before);
        if i >= WARMUP {
            s.push(PONG_AT.load(Ordering::Acquire) - t0);
        }
    }
    if place == "same_cpu" {
        s.report("vipi_same_cpu_rtt", 1);
        s.report("vipi_same_cpu", 2);
    } else {
        s.report("vipi_cross_cpu_rtt", 1);
        s.report("vipi_cross_cpu", 2);
    }
}

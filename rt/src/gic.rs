//! GICv3 at EL1: system-register CPU interface, the distributor (SPIs) and this vCPU's
//! redistributor (PPIs), and the IRQ dispatcher.
//!
//! Everything is group 1, priority [`PRIORITY`], EOImode 0 (an EOI also deactivates). SPIs
//! are routed to the vCPU that enables them. [`handle_irqs`] (called from the IRQ vector)
//! acknowledges until the spurious INTID, counts each interrupt, calls its handler and EOIs it.
//!
//! With several vCPUs ([`crate::smp`]) the boot vCPU runs [`init`] (distributor and its own
//! interface), each secondary [`init_cpu`]; PPIs are enabled on the calling vCPU's
//! redistributor. Handlers and counters are shared by all vCPUs (atomics): a PPI handler runs
//! on whichever vCPU took it.

use core::arch::asm;
use core::ptr;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crate::fdt::Fdt;

/// Distributor base on Wurley's (and QEMU virt's) guest layout.
pub const DEFAULT_GICD: usize = 0x0800_0000;
/// Redistributor region base (vCPU 0's frames).
pub const DEFAULT_GICR: usize = 0x080a_0000;
/// One vCPU's redistributor frames (RD_base + SGI_base).
pub const GICR_STRIDE: usize = 0x2_0000;
/// Offset of the SGI_base frame.
const SGI_BASE: usize = 0x1_0000;
/// Priority of every interrupt enabled here.
pub const PRIORITY: u8 = 0xa0;
/// INTIDs below this have a handler slot and a counter.
pub const MAX_INTID: usize = 128;
/// First special INTID (1020..1023); 1023 means none pending.
const INTID_SPECIAL: u32 = 1020;

const GICD_CTLR: usize = 0x0000;
const GICD_IGROUPR: usize = 0x0080;
const GICD_ISENABLER: usize = 0x0100;
const GICD_ICENABLER: usize = 0x0180;
const GICD_ICPENDR: usize = 0x0280;
const GICD_IPRIORITYR: usize = 0x0400;
const GICD_ICFGR: usize = 0x0c00;
const GICD_IROUTER: usize = 0x6000;
const CTLR_ENABLE_GRP1: u32 = 1 << 1;
const CTLR_ARE: u32 = 1 << 4;
const CTLR_RWP: u32 = 1 << 31;

const GICR_TYPER: usize = 0x0008;
const GICR_WAKER: usize = 0x0014;
const TYPER_LAST: u64 = 1 << 4;
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

/// An interrupt handler, called with the INTID (IRQs masked, before the EOI).
pub type Handler = fn(u32);

static GICD: AtomicUsize = AtomicUsize::new(DEFAULT_GICD);
/// The redistributor region (vCPU 0's frames first).
static GICR: AtomicUsize = AtomicUsize::new(DEFAULT_GICR);
/// Each vCPU's RD_base, by [`crate::smp::this_cpu`] slot (0: not looked up yet).
static RD_BASES: [AtomicUsize; crate::smp::MAX_CPUS] =
    [const { AtomicUsize::new(0) }; crate::smp::MAX_CPUS];
static HANDLERS: [AtomicUsize; MAX_INTID] = [const { AtomicUsize::new(0) }; MAX_INTID];
static COUNTS: [AtomicU32; MAX_INTID] = [const { AtomicU32::new(0) }; MAX_INTID];
/// Interrupts taken (any INTID).
static TOTAL: AtomicU32 = AtomicU32::new(0);

fn read32(addr: usize) -> u32 {
    // SAFETY: callers pass GIC registers inside the distributor / redistributor windows,
    // identity mapped as Device memory; aligned 32-bit accesses.
    unsafe { ptr::read_volatile(addr as *const u32) }
}

fn write32(addr: usize, v: u32) {
    // SAFETY: as for `read32`.
    unsafe { ptr::write_volatile(addr as *mut u32, v) }
}

fn read64(addr: usize) -> u64 {
    // SAFETY: as for `read32`, for the 64-bit registers (GICR_TYPER).
    unsafe { ptr::read_volatile(addr as *const u64) }
}

fn write64(addr: usize, v: u64) {
    // SAFETY: as for `read32`, for the 64-bit registers (GICD_IROUTER).
    unsafe { ptr::write_volatile(addr as *mut u64, v) }
}

macro_rules! sysreg_read {
    ($name:literal) => {{
        let v: u64;
        // SAFETY: reading a GIC CPU interface register of this vCPU.
        unsafe { asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

macro_rules! sysreg_write {
    ($name:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: writing a GIC CPU interface register of this vCPU; the values written are
        // the architected ones for a group-1, EOImode-0 setup.
        unsafe { asm!(concat!("msr ", $name, ", {}"), "isb", in(reg) v, options(nostack)) };
    }};
}

// System register encodings (the assembler needs no GIC feature for these).
// ICC_SRE_EL1 S3_0_C12_C12_5, ICC_PMR_EL1 S3_0_C4_C6_0, ICC_BPR1_EL1 S3_0_C12_C12_3,
// ICC_CTLR_EL1 S3_0_C12_C12_4, ICC_IGRPEN1_EL1 S3_0_C12_C12_7, ICC_IAR1_EL1 S3_0_C12_C12_0,
// ICC_EOIR1_EL1 S3_0_C12_C12_1.

/// Set up the CPU interface, the distributor and this vCPU's redistributor. Bases come from
/// the `arm,gic-v3` node's `reg` if there is one.
pub fn init(fdt: Option<&Fdt<'_>>) -> Result<(), &'static str> {
    if let Some((d, r)) = fdt.and_then(bases) {
        GICD.store(d, Ordering::Relaxed);
        GICR.store(r, Ordering::Relaxed);
    }
    enable_sre()?;
    let gicd = GICD.load(Ordering::Relaxed);
    let ctlr = read32(gicd + GICD_CTLR);
    write32(gicd + GICD_CTLR, ctlr | CTLR_ARE | CTLR_ENABLE_GRP1);
    wait_rwp(gicd);
    init_cpu()
}

fn enable_sre() -> Result<(), &'static str> {
    let sre = sysreg_read!("S3_0_C12_C12_5");
    sysreg_write!("S3_0_C12_C12_5", sre | 1);
    if sysreg_read!("S3_0_C12_C12_5") & 1 == 0 {
        return Err("ICC_SRE_EL1.SRE does not stick");
    }
    Ok(())
}

/// Set up the calling vCPU's CPU interface and wake its redistributor (found by GICR_TYPER
/// affinity). [`init`] does it for the boot vCPU; each secondary calls it once, after the
/// boot vCPU's [`init`] (which enabled the distributor).
pub fn init_cpu() -> Result<(), &'static str> {
    enable_sre()?;
    let rd = find_redistributor(GICR.load(Ordering::Relaxed));
    if let Some(slot) = crate::smp::this_cpu().and_then(|i| RD_BASES.get(i)) {
        slot.store(rd, Ordering::Relaxed);
    }
    let waker = read32(rd + GICR_WAKER);
    write32(rd + GICR_WAKER, waker & !WAKER_PROCESSOR_SLEEP);
    let mut tries = 0u32;
    while read32(rd + GICR_WAKER) & WAKER_CHILDREN_ASLEEP != 0 {
        tries += 1;
        if tries > 1_000_000 {
            return Err("GICR_WAKER.ChildrenAsleep stays set");
        }
    }

    sysreg_write!("S3_0_C4_C6_0", 0xff); // PMR: let everything through
    sysreg_write!("S3_0_C12_C12_3", 0); // BPR1
    let ctlr = sysreg_read!("S3_0_C12_C12_4");
    sysreg_write!("S3_0_C12_C12_4", ctlr & !(1 << 1)); // EOImode 0
    sysreg_write!("S3_0_C12_C12_7", 1); // IGRPEN1
    Ok(())
}

/// The calling vCPU's RD_base.
pub fn redistributor() -> usize {
    match crate::smp::this_cpu().and_then(|i| RD_BASES.get(i)) {
        Some(slot) => match slot.load(Ordering::Relaxed) {
            0 => {
                let rd = find_redistributor(GICR.load(Ordering::Relaxed));
                slot.store(rd, Ordering::Relaxed);
                rd
            }
            rd => rd,
        },
        None => find_redistributor(GICR.load(Ordering::Relaxed)),
    }
}

/// Distributor and redistributor-region bases from the device tree.
fn bases(fdt: &Fdt<'_>) -> Option<(usize, usize)> {
    let gic = fdt.find_compatible("arm,gic-v3")?;
    let root = fdt.root()?;
    let (d, _) = root.reg(&gic, 0)?;
    let (r, _) = root.reg(&gic, 1)?;
    Some((d as usize, r as usize))
}

fn wait_rwp(gicd: usize) {
    for _ in 0..1_000_000 {
        if read32(gicd + GICD_CTLR) & CTLR_RWP == 0 {
            break;
        }
    }
}

/// The RD_base of this vCPU's redistributor: the frame whose GICR_TYPER affinity matches
/// MPIDR (the region's first frame if none does).
fn find_redistributor(region: usize) -> usize {
    let aff = crate::mpidr_affinity();
    let want = ((aff >> 32) & 0xff) << 24 | (aff & 0xff_ffff);
    let mut frame = region;
    for _ in 0..256 {
        let typer = read64(frame + GICR_TYPER);
        if typer >> 32 == want {
            return frame;
        }
        if typer & TYPER_LAST != 0 {
            break;
        }
        frame += GICR_STRIDE;
    }
    region
}

/// Register `handler` for `intid` (replacing any other).
pub fn set_handler(intid: u32, handler: Handler) {
    if let Some(slot) = HANDLERS.get(intid as usize) {
        slot.store(handler as usize, Ordering::Release);
    }
}

/// Remove `intid`'s handler.
pub fn clear_handler(intid: u32) {
    if let Some(slot) = HANDLERS.get(intid as usize) {
        slot.store(0, Ordering::Release);
    }
}

/// Configure and enable `intid` (a PPI or an SPI below [`MAX_INTID`]): group 1, priority
/// [`PRIORITY`], edge or level, routed to this vCPU; `handler` is called for it.
pub fn enable(intid: u32, edge: bool, handler: Handler) {
    set_handler(intid, handler);
    let n = intid as usize;
    let bit = 1u32 << (intid % 32);
    let cfg_shift = 2 * (intid % 16) + 1;
    if (16..32).contains(&intid) {
        let sgi = redistributor() + SGI_BASE;
        write32(sgi + GICD_IGROUPR, read32(sgi + GICD_IGROUPR) | bit);
        set_priority(sgi, n);
        let icfgr = sgi + GICD_ICFGR + 4;
        let v = read32(icfgr) & !(1 << cfg_shift);
        write32(icfgr, v | u32::from(edge) << cfg_shift);
        write32(sgi + GICD_ISENABLER, bit);
    } else if (32..MAX_INTID as u32).contains(&intid) {
        let gicd = GICD.load(Ordering::Relaxed);
        let word = 4 * (n / 32);
        write32(
            gicd + GICD_IGROUPR + word,
            read32(gicd + GICD_IGROUPR + word) | bit,
        );
        set_priority(gicd, n);
        let icfgr = gicd + GICD_ICFGR + 4 * (n / 16);
        let v = read32(icfgr) & !(1 << cfg_shift);
        write32(icfgr, v | u32::from(edge) << cfg_shift);
        write64(gicd + GICD_IROUTER + 8 * n, crate::mpidr_affinity());
        write32(gicd + GICD_ISENABLER + word, bit);
        wait_rwp(gicd);
    }
}

fn set_priority(frame: usize, n: usize) {
    let reg = frame + GICD_IPRIORITYR + (n & !3);
    let shift = 8 * (n % 4);
    let v = read32(reg) & !(0xff << shift);
    write32(reg, v | u32::from(PRIORITY) << shift);
}

/// Disable `intid` and clear its pending state; its handler is removed.
pub fn disable(intid: u32) {
    let bit = 1u32 << (intid % 32);
    if (16..32).contains(&intid) {
        let sgi = redistributor() + SGI_BASE;
        write32(sgi + GICD_ICENABLER, bit);
        write32(sgi + GICD_ICPENDR, bit);
    } else if (32..MAX_INTID as u32).contains(&intid) {
        let gicd = GICD.load(Ordering::Relaxed);
        let word = 4 * (intid as usize / 32);
        write32(gicd + GICD_ICENABLER + word, bit);
        write32(gicd + GICD_ICPENDR + word, bit);
        wait_rwp(gicd);
    }
    clear_handler(intid);
}

/// How many times `intid` was taken.
pub fn count(intid: u32) -> u32 {
    COUNTS
        .get(intid as usize)
        .map_or(0, |c| c.load(Ordering::Acquire))
}

/// How many interrupts were taken in all.
pub fn total() -> u32 {
    TOTAL.load(Ordering::Acquire)
}

/// Acknowledge and handle every pending interrupt (from the IRQ vector, IRQs masked).
pub fn handle_irqs() {
    loop {
        let iar = sysreg_read!("S3_0_C12_C12_0");
        let intid = (iar & 0xff_ffff) as u32;
        if intid >= INTID_SPECIAL {
            break;
        }
        if let Some(c) = COUNTS.get(intid as usize) {
            c.fetch_add(1, Ordering::AcqRel);
        }
        TOTAL.fetch_add(1, Ordering::AcqRel);
        let h = HANDLERS
            .get(intid as usize)
            .map_or(0, |h| h.load(Ordering::Acquire));
        if h != 0 {
            // SAFETY: HANDLERS only ever holds 0 or a `Handler` stored by `set_handler`.
            let f = unsafe { core::mem::transmute::<usize, Handler>(h) };
            f(intid);
        }
        sysreg_write!("S3_0_C12_C12_1", iar);
    }
}

//! The physical GICv3, driven through the `arm-gic` crate: distributor, one redistributor per
//! CPU and the EL2 system-register CPU interface.
//!
//! The distributor and redistributor frames are handed over once, at boot, by the platform
//! description; after [`init`] the driver lives behind a lock. Per-CPU interface operations
//! (acknowledge, end of interrupt, priority mask) are system-register accesses on the calling CPU
//! and need no lock.

use arm_gic::gicv3::registers::{Gicd, GicrSgi};
use arm_gic::gicv3::{GicCpuInterface, GicV3};
use arm_gic::{IntId, InterruptGroup, Trigger, UniqueMmioPointer};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::{Mutex, Once};

static GIC: Once<Mutex<GicV3<'static>>> = Once::new();
/// The distributor's address, for the registers the driver has no call for (GICD_ICACTIVER).
static GICD_BASE: AtomicU64 = AtomicU64::new(0);
/// GICD_ICACTIVER<n>: write 1s to deactivate.
const GICD_ICACTIVER: u64 = 0x380;

/// Why the GIC could not be brought up.
#[derive(Debug)]
pub enum Error {
    /// A base address was zero.
    NullAddress,
    /// The driver rejected the redistributor region.
    Driver(arm_gic::gicv3::GicError),
    /// No redistributor in the region reports this CPU's affinity.
    NoRedistributor(u64),
    /// The interrupt is not a PPI (INTID 16..31).
    NotPpi(u32),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NullAddress => write!(f, "GIC base address is zero"),
            Self::Driver(e) => write!(f, "GIC driver: {e}"),
            Self::NoRedistributor(m) => write!(f, "no GIC redistributor for MPIDR {m:#x}"),
            Self::NotPpi(i) => write!(f, "INTID {i} is not a PPI"),
        }
    }
}

/// Bring up the distributor and every redistributor, and this CPU's interface. Returns the
/// redistributor index of the calling CPU (MPIDR `mpidr`).
///
/// # Safety
/// `dist` and `redist` are the GICv3 distributor and redistributor regions, mapped Device-nGnRE
/// in the EL2 tables, with no other user; `redistributors` frames exist in the region.
pub unsafe fn init(
    dist: u64,
    redist: u64,
    redistributors: usize,
    mpidr: u64,
) -> Result<usize, Error> {
    let gicd = NonNull::new(dist as *mut Gicd).ok_or(Error::NullAddress)?;
    GICD_BASE.store(dist, Ordering::Release);
    let gicr = NonNull::new(redist as *mut GicrSgi).ok_or(Error::NullAddress)?;
    // SAFETY: the caller promised both regions are mapped device memory owned by us alone.
    let mut gic = unsafe { GicV3::new(UniqueMmioPointer::new(gicd), gicr, redistributors) }
        .map_err(Error::Driver)?;
    let index = find_redistributor(&mut gic, redistributors, mpidr)?;
    GicCpuInterface::enable_system_register_el2(true);
    gic.setup(index);
    GicCpuInterface::set_priority_mask(0xff);
    GIC.call_once(|| Mutex::new(gic));
    Ok(index)
}

fn find_redistributor(gic: &mut GicV3<'_>, count: usize, mpidr: u64) -> Result<usize, Error> {
    (0..count)
        .find(|&i| {
            gic.gicr_typer(i)
                .map(|t| t.core_mpidr() == mpidr)
                .unwrap_or(false)
        })
        .ok_or(Error::NoRedistributor(mpidr))
}

/// The redistributor index of the CPU with affinity `mpidr`.
pub fn redistributor_of(mpidr: u64, count: usize) -> Result<usize, Error> {
    let gic = GIC.get().ok_or(Error::NullAddress)?;
    find_redistributor(&mut gic.lock(), count, mpidr)
}

/// Bring up a secondary CPU's redistributor and CPU interface.
pub fn init_this_cpu(redistributor: usize) {
    if let Some(gic) = GIC.get() {
        GicCpuInterface::enable_system_register_el2(true);
        gic.lock().init_cpu(redistributor);
        GicCpuInterface::enable_group1(true);
        GicCpuInterface::set_priority_mask(0xff);
    }
}

/// Enable a private interrupt (PPI, INTID 16..31) on one CPU with a priority and trigger.
pub fn enable_ppi(
    intid: u32,
    redistributor: usize,
    priority: u8,
    level: bool,
) -> Result<(), Error> {
    if !(16..32).contains(&intid) {
        return Err(Error::NotPpi(intid));
    }
    let id = IntId::ppi(intid - 16);
    let Some(gic) = GIC.get() else { return Ok(()) };
    let mut gic = gic.lock();
    let trigger = if level { Trigger::Level } else { Trigger::Edge };
    gic.set_interrupt_priority(id, Some(redistributor), priority)
        .map_err(Error::Driver)?;
    gic.set_trigger(id, Some(redistributor), trigger)
        .map_err(Error::Driver)?;
    gic.enable_interrupt(id, Some(redistributor), true)
        .map_err(Error::Driver)
}

/// Acknowledge the highest-priority pending Group 1 interrupt, if any.
pub fn acknowledge() -> Option<IntId> {
    GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1)
}

/// Drop the running priority of an acknowledged interrupt (ICC_EOIR1_EL1). With EOImode = 1
/// ([`split_eoi_this_cpu`]) this does not deactivate it: see [`deactivate`].
pub fn end_of_interrupt(intid: IntId) {
    GicCpuInterface::end_interrupt(intid, InterruptGroup::Group1);
}

/// Mask every interrupt at this CPU's interface (priority mask 0), so WFI really sleeps.
/// Does nothing before [`init`]: the ICC registers may not be enabled yet.
pub fn mask_this_cpu() {
    if GIC.get().is_some() {
        GicCpuInterface::set_priority_mask(0);
    }
}

/// Split priority drop from deactivation on this CPU (ICC_CTLR_EL1.EOImode = 1): EL2 then
/// writes EOIR and DIR for its own interrupts, and leaves an interrupt forwarded to a guest
/// active until the guest's virtual EOI deactivates it through the list register's HW bit.
pub fn split_eoi_this_cpu() {
    const EOIMODE: u64 = 1 << 1;
    // SAFETY: ICC_CTLR_EL1 is this CPU's interface control; only EOImode changes.
    unsafe {
        core::arch::asm!(
            "mrs {t}, icc_ctlr_el1",
            "orr {t}, {t}, {m}",
            "msr icc_ctlr_el1, {t}",
            "isb",
            t = out(reg) _,
            m = in(reg) EOIMODE,
            options(nostack)
        )
    };
}

/// Deactivate an interrupt (ICC_DIR_EL1), after [`end_of_interrupt`] dropped its priority.
pub fn deactivate(intid: IntId) {
    let raw = u64::from(u32::from(intid));
    // SAFETY: deactivating an interrupt this CPU acknowledged.
    unsafe { core::arch::asm!("msr icc_dir_el1, {}", "isb", in(reg) raw, options(nostack)) };
}

/// Enable SGI `n` on one CPU (the hypervisor's inter-processor kick).
pub fn enable_sgi(n: u32, redistributor: usize) -> Result<(), Error> {
    if n >= 16 {
        return Err(Error::NotPpi(n));
    }
    let Some(gic) = GIC.get() else { return Ok(()) };
    let mut gic = gic.lock();
    let id = IntId::sgi(n);
    gic.set_interrupt_priority(id, Some(redistributor), 0x40)
        .map_err(Error::Driver)?;
    gic.enable_interrupt(id, Some(redistributor), true)
        .map_err(Error::Driver)
}

/// Send SGI `n` to the CPU with affinity `mpidr`.
pub fn send_sgi(n: u32, mpidr: u64) {
    use arm_gic::gicv3::{SgiTarget, SgiTargetGroup};
    if n >= 16 {
        return;
    }
    let aff0 = (mpidr & 0xf) as u16;
    let target = SgiTarget::List {
        affinity3: ((mpidr >> 32) & 0xff) as u8,
        affinity2: ((mpidr >> 16) & 0xff) as u8,
        affinity1: ((mpidr >> 8) & 0xff) as u8,
        target_list: 1 << aff0,
    };
    // Aff0 above 15 needs range selectors; such CPUs are not reachable by this simple form.
    if mpidr & 0xf0 == 0 {
        let _ = GicCpuInterface::send_sgi(IntId::sgi(n), target, SgiTargetGroup::CurrentGroup1);
    }
}

/// How many SPIs the distributor implements (GICD_TYPER.ITLinesNumber): INTIDs 32 up to
/// 32 + this. 0 before the GIC is set up.
pub fn spi_count() -> u32 {
    GIC.get().map_or(0, |gic| gic.lock().typer().num_spis())
}

/// Disable a shared interrupt (SPI): it is no longer signalled to any CPU.
pub fn disable_spi(intid: u32) -> Result<(), Error> {
    if !(32..1020).contains(&intid) {
        return Err(Error::NotPpi(intid));
    }
    let Some(gic) = GIC.get() else { return Ok(()) };
    gic.lock()
        .enable_interrupt(IntId::spi(intid - 32), None, false)
        .map_err(Error::Driver)
}

/// Deactivate a shared interrupt (SPI) at the distributor (GICD_ICACTIVER), whichever CPU
/// acknowledged it: for an SPI acknowledged on a guest's behalf whose guest will never
/// deactivate it. No effect on an SPI that is not active.
pub fn deactivate_spi(intid: u32) -> Result<(), Error> {
    if !(32..1020).contains(&intid) {
        return Err(Error::NotPpi(intid));
    }
    let Some(gic) = GIC.get() else { return Ok(()) };
    // The driver's lock: no other distributor access meanwhile.
    let gic = gic.lock();
    let base = GICD_BASE.load(Ordering::Acquire);
    let reg = base + GICD_ICACTIVER + 4 * u64::from(intid / 32);
    // SAFETY: `base` is the distributor `init` was given (mapped Device-nGnRE, ours alone) and
    // GICD_ICACTIVER<n> for n < 32 lies in its 64 KiB frame; a 32-bit write of one bit changes
    // only that interrupt's active state. The driver's lock is held.
    unsafe { core::ptr::write_volatile(reg as *mut u32, 1 << (intid % 32)) };
    gic.gicd_barrier();
    Ok(())
}

/// Enable a shared interrupt (SPI) routed to the CPU with affinity `mpidr`.
pub fn enable_spi(intid: u32, mpidr: u64, priority: u8, level: bool) -> Result<(), Error> {
    if !(32..1020).contains(&intid) {
        return Err(Error::NotPpi(intid));
    }
    let Some(gic) = GIC.get() else { return Ok(()) };
    let mut gic = gic.lock();
    let id = IntId::spi(intid - 32);
    let trigger = if level { Trigger::Level } else { Trigger::Edge };
    gic.distributor()
        .set_routing(id, Some(mpidr))
        .map_err(Error::Driver)?;
    gic.set_interrupt_priority(id, None, priority)
        .map_err(Error::Driver)?;
    gic.set_trigger(id, None, trigger).map_err(Error::Driver)?;
    gic.enable_interrupt(id, None, true).map_err(Error::Driver)
}

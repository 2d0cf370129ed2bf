//! Per-CPU data, reached through TPIDR_EL2.
//!
//! Boot allocates one [`PerCpu`] per CPU in the device tree and leaks it (they live forever);
//! each CPU stores a pointer to its own in TPIDR_EL2, so [`current`] is one register read.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// What each CPU owns. `repr(C)`: the guest entry/exit assembly uses the first two fields.
#[derive(Debug)]
#[repr(C)]
pub struct PerCpu {
    /// While a guest runs: where its registers are saved on exit (`guest.rs`).
    pub guest_regs: AtomicU64,
    /// While a guest runs: the host stack pointer to return on (`guest.rs`).
    pub host_sp: AtomicU64,
    /// Linear CPU number, in device-tree order; the boot CPU is whatever the DT lists it as.
    pub index: usize,
    /// MPIDR affinity of the CPU.
    pub mpidr: u64,
    /// Index of the CPU's GIC redistributor (`usize::MAX` until the GIC is up).
    redistributor: AtomicUsize,
    /// Hypervisor-timer interrupts taken on this CPU.
    pub ticks: AtomicU64,
}

impl PerCpu {
    /// A new record for CPU `index`.
    pub const fn new(index: usize, mpidr: u64, redistributor: usize) -> Self {
        Self {
            guest_regs: AtomicU64::new(0),
            host_sp: AtomicU64::new(0),
            index,
            mpidr,
            redistributor: AtomicUsize::new(redistributor),
            ticks: AtomicU64::new(0),
        }
    }

    /// Index of the CPU's GIC redistributor.
    pub fn redistributor(&self) -> usize {
        self.redistributor.load(Ordering::Relaxed)
    }

    /// Record the CPU's redistributor once the GIC driver has found it.
    pub fn set_redistributor(&self, index: usize) {
        self.redistributor.store(index, Ordering::Relaxed);
    }

    /// Timer ticks taken so far.
    pub fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }
}

/// Make `cpu` this CPU's record.
pub fn install(cpu: &'static PerCpu) {
    let ptr = cpu as *const PerCpu as u64;
    // SAFETY: TPIDR_EL2 is reserved for this pointer; it only ever holds a `&'static PerCpu`.
    unsafe { asm!("msr tpidr_el2, {}", in(reg) ptr, options(nostack)) };
}

/// This CPU's record, or `None` before [`install`] (early boot).
pub fn current() -> Option<&'static PerCpu> {
    let ptr: u64;
    // SAFETY: reading TPIDR_EL2 has no side effects.
    unsafe { asm!("mrs {}, tpidr_el2", out(reg) ptr, options(nomem, nostack)) };
    if ptr == 0 {
        None
    } else {
        // SAFETY: the boot stub zeroes TPIDR_EL2 and only `install` (or the secondary entry,
        // from the same leaked records) writes it, always with a `&'static PerCpu`.
        Some(unsafe { &*(ptr as *const PerCpu) })
    }
}

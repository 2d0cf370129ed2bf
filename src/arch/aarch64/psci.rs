//! PSCI calls to the firmware (EL3, or QEMU itself), over the conduit the device tree names.

use core::sync::atomic::{AtomicBool, Ordering};
use smccc::{Hvc, Smc, psci};

static USE_HVC: AtomicBool = AtomicBool::new(false);

/// Select the conduit: SMC (the usual one at EL2) or HVC.
pub fn set_conduit_hvc(hvc: bool) {
    USE_HVC.store(hvc, Ordering::Relaxed);
}

/// PSCI_VERSION as (major, minor).
pub fn version() -> Result<(u16, u16), psci::Error> {
    let v = if USE_HVC.load(Ordering::Relaxed) {
        psci::version::<Hvc>()
    } else {
        psci::version::<Smc>()
    }?;
    Ok((v.major, v.minor))
}

/// Power on the CPU with affinity `mpidr` at physical address `entry` with x0 = `context`.
pub fn cpu_on(mpidr: u64, entry: u64, context: u64) -> Result<(), psci::Error> {
    if USE_HVC.load(Ordering::Relaxed) {
        psci::cpu_on::<Hvc>(mpidr, entry, context)
    } else {
        psci::cpu_on::<Smc>(mpidr, entry, context)
    }
}

/// Power the machine off. Returns only if firmware refused.
pub fn system_off() -> psci::Error {
    let r = if USE_HVC.load(Ordering::Relaxed) {
        psci::system_off::<Hvc>()
    } else {
        psci::system_off::<Smc>()
    };
    match r {
        Ok(()) => psci::Error::InternalFailure,
        Err(e) => e,
    }
}

/// Reset the machine. Returns only if firmware refused.
pub fn system_reset() -> psci::Error {
    let r = if USE_HVC.load(Ordering::Relaxed) {
        psci::system_reset::<Hvc>()
    } else {
        psci::system_reset::<Smc>()
    };
    match r {
        Ok(()) => psci::Error::InternalFailure,
        Err(e) => e,
    }
}

//! Unexpected exceptions: a full dump on the console, then this CPU stops.
//!
//! The dump names the exception class, the fault status for aborts, FAR, ELR, SPSR, all general
//! registers and the CPU, and is written without the console lock so it gets out even when the
//! exception hit while the lock was held. The CPU then masks everything and sleeps in WFI; the
//! other CPUs carry on.

use aarch64_cpu::registers::{ESR_EL2, FAR_EL2, Readable};
use core::fmt::Write;

use super::vectors::{Source, TrapFrame, VectorKind};
use crate::arch::esr::Esr;

/// Report an exception Wurley does not handle and stop this CPU.
pub fn unexpected(frame: &TrapFrame, kind: VectorKind, source: Source) -> ! {
    let esr = Esr(ESR_EL2.get());
    let far = FAR_EL2.get();
    let cpu = super::percpu::current().map(|c| c.index);
    let mut out = crate::console::emergency();
    let _ = writeln!(out);
    let _ = match cpu {
        Some(n) => writeln!(
            out,
            "*** EL2 EXCEPTION on CPU {n}: {kind:?} from {source:?}"
        ),
        None => writeln!(
            out,
            "*** EL2 EXCEPTION on CPU ? (early boot): {kind:?} from {source:?}"
        ),
    };
    let _ = writeln!(
        out,
        "    ESR_EL2 {:#018x}  EC {:#04x} {}  IL {}  ISS {:#x}",
        esr.0,
        esr.ec(),
        esr.class_name(),
        u8::from(esr.il()),
        esr.iss()
    );
    if let Some(fsc) = esr.fault_status() {
        let _ = writeln!(
            out,
            "    fault: {fsc} on {}",
            if esr.is_write() { "write" } else { "read" }
        );
    }
    let sp = frame as *const TrapFrame as u64 + core::mem::size_of::<TrapFrame>() as u64;
    let _ = writeln!(
        out,
        "    FAR_EL2 {far:#018x}  ELR_EL2 {:#018x}  SPSR_EL2 {:#018x}  SP {sp:#018x}",
        frame.elr, frame.spsr
    );
    for (row, regs) in frame.x.chunks(4).enumerate() {
        let _ = write!(out, "   ");
        for (col, value) in regs.iter().enumerate() {
            let _ = write!(out, " x{:<2} {value:#018x}", row * 4 + col);
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "*** CPU stopped");
    stop_this_cpu()
}

/// Mask everything and sleep forever, without waking for interrupts.
pub fn stop_this_cpu() -> ! {
    super::cpu::disable_all_exceptions();
    super::timer::stop();
    super::gic::mask_this_cpu();
    loop {
        super::cpu::wfi();
    }
}

//! AArch64 at EL2: system registers, exception vectors, the EL2 MMU, the physical GICv3, the
//! hypervisor timer, the console UART, PSCI calls to firmware and per-CPU data.
//!
//! Knows registers, not objects. Each file owns one concept and documents its `unsafe`.

/// Read a system register by name: `read_sysreg!("vbar_el1")`. Only for registers whose read
/// has no side effects (ID, EL1 context and virtual-interface registers).
macro_rules! read_sysreg {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: the macro is only used on registers whose read has no side effects.
        unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

/// Write a system register by name: `write_sysreg!("vbar_el1", value)`. Only for registers that
/// affect a guest's state (EL1 context, ICH virtual interface), never the hypervisor's own.
macro_rules! write_sysreg {
    ($reg:literal, $v:expr) => {{
        // SAFETY: the macro is only used on guest-state registers, which cannot change how EL2
        // executes or what memory it can reach.
        unsafe { core::arch::asm!(concat!("msr ", $reg, ", {}"), in(reg) $v, options(nomem, nostack)) };
    }};
}

pub mod at;
pub mod context;
pub mod cpu;
pub mod exception;
pub mod gic;
pub mod guest;
pub mod ich;
pub mod idregs;
pub mod mmu;
pub mod percpu;
pub mod pl011;
pub mod psci;
pub mod stage2;
pub mod timer;
pub mod vcpu_hw;
pub mod vectors;

//! Entering a guest and coming back: the world switch of the general-purpose registers.
//!
//! [`enter`] saves the host's callee-saved registers and stack pointer in the CPU's [`PerCpu`]
//! slot, loads the guest's x0-x30, ELR_EL2 and SPSR_EL2 and `eret`s. Any exception from the
//! guest (a lower-EL vector) saves the guest's registers back and returns from [`enter`] with the
//! vector's index, as if it were an ordinary function call. Everything else (EL1 system registers,
//! FP, timer, vGIC) stays loaded while the vCPU runs and is switched by `context.rs`.

use core::arch::global_asm;

use super::percpu::PerCpu;
use super::vectors::VectorKind;

/// The guest registers that change on every exit. Layout shared with the assembly below.
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct GuestRegs {
    /// x0..x30.
    pub x: [u64; 31],
    /// The guest PC (ELR_EL2).
    pub pc: u64,
    /// The guest PSTATE (SPSR_EL2).
    pub pstate: u64,
}

const _: () = assert!(core::mem::offset_of!(GuestRegs, pc) == 31 * 8);
const _: () = assert!(core::mem::offset_of!(PerCpu, guest_regs) == 0);
const _: () = assert!(core::mem::offset_of!(PerCpu, host_sp) == 8);

/// Why `enter` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    /// Synchronous exception, IRQ, FIQ or SError.
    pub kind: VectorKind,
    /// The guest was running AArch32 (never allowed: HCR_EL2.RW makes EL1 AArch64).
    pub aarch32: bool,
}

unsafe extern "C" {
    fn wurley_guest_enter(regs: *mut GuestRegs) -> u64;
}

/// Run the guest until it traps.
///
/// The caller has loaded the vCPU's EL1 state, stage-2 tables (VTTBR_EL2), HCR_EL2 and vGIC
/// state on this CPU, and masked IRQs at EL2.
pub fn enter(regs: &mut GuestRegs) -> Exit {
    // SAFETY: the assembly saves and restores every callee-saved register and the stack
    // pointer around the guest's run, writes only `*regs` and this CPU's PerCpu slots, and
    // returns normally; the guest cannot reach EL2 memory (stage 2 maps only its own RAM).
    let index = unsafe { wurley_guest_enter(regs) };
    let kind = match index & 3 {
        0 => VectorKind::Sync,
        1 => VectorKind::Irq,
        2 => VectorKind::Fiq,
        _ => VectorKind::SError,
    };
    Exit {
        kind,
        aarch32: index >= 12,
    }
}

global_asm!(
    r#"
    .section .text.guest, "ax"
    .global wurley_guest_enter
wurley_guest_enter:
    sub     sp, sp, #(12 * 8)
    stp     x19, x20, [sp, #(0 * 16)]
    stp     x21, x22, [sp, #(1 * 16)]
    stp     x23, x24, [sp, #(2 * 16)]
    stp     x25, x26, [sp, #(3 * 16)]
    stp     x27, x28, [sp, #(4 * 16)]
    stp     x29, x30, [sp, #(5 * 16)]
    mrs     x1, tpidr_el2
    str     x0, [x1, #0]
    mov     x2, sp
    str     x2, [x1, #8]
    ldp     x2, x3, [x0, #(31 * 8)]
    msr     elr_el2, x2
    msr     spsr_el2, x3
    ldp     x2, x3, [x0, #(1 * 16)]
    ldp     x4, x5, [x0, #(2 * 16)]
    ldp     x6, x7, [x0, #(3 * 16)]
    ldp     x8, x9, [x0, #(4 * 16)]
    ldp     x10, x11, [x0, #(5 * 16)]
    ldp     x12, x13, [x0, #(6 * 16)]
    ldp     x14, x15, [x0, #(7 * 16)]
    ldp     x16, x17, [x0, #(8 * 16)]
    ldp     x18, x19, [x0, #(9 * 16)]
    ldp     x20, x21, [x0, #(10 * 16)]
    ldp     x22, x23, [x0, #(11 * 16)]
    ldp     x24, x25, [x0, #(12 * 16)]
    ldp     x26, x27, [x0, #(13 * 16)]
    ldp     x28, x29, [x0, #(14 * 16)]
    ldr     x30, [x0, #(30 * 8)]
    ldp     x0, x1, [x0, #0]
    eret
    dsb     nsh
    isb

    .global wurley_guest_exit
wurley_guest_exit:
    // x1 = vector index; guest x0/x1 are on the stack.
    mrs     x0, tpidr_el2
    ldr     x0, [x0, #0]
    stp     x2, x3, [x0, #(1 * 16)]
    stp     x4, x5, [x0, #(2 * 16)]
    stp     x6, x7, [x0, #(3 * 16)]
    stp     x8, x9, [x0, #(4 * 16)]
    stp     x10, x11, [x0, #(5 * 16)]
    stp     x12, x13, [x0, #(6 * 16)]
    stp     x14, x15, [x0, #(7 * 16)]
    stp     x16, x17, [x0, #(8 * 16)]
    stp     x18, x19, [x0, #(9 * 16)]
    stp     x20, x21, [x0, #(10 * 16)]
    stp     x22, x23, [x0, #(11 * 16)]
    stp     x24, x25, [x0, #(12 * 16)]
    stp     x26, x27, [x0, #(13 * 16)]
    stp     x28, x29, [x0, #(14 * 16)]
    str     x30, [x0, #(30 * 8)]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x0, #0]
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x2, x3, [x0, #(31 * 8)]
    mrs     x2, tpidr_el2
    ldr     x2, [x2, #8]
    mov     sp, x2
    mov     x0, x1
    ldp     x19, x20, [sp, #(0 * 16)]
    ldp     x21, x22, [sp, #(1 * 16)]
    ldp     x23, x24, [sp, #(2 * 16)]
    ldp     x25, x26, [sp, #(3 * 16)]
    ldp     x27, x28, [sp, #(4 * 16)]
    ldp     x29, x30, [sp, #(5 * 16)]
    add     sp, sp, #(12 * 8)
    ret
"#
);

//! The EL2 exception vector table and the register frame it saves.
//!
//! The eight current-EL vectors save x0-x30, ELR_EL2 and SPSR_EL2 on the current stack as a
//! [`TrapFrame`] and call [`el2_exception`] with the vector's index; on return they restore the
//! (possibly modified) frame and `eret`. The eight lower-EL vectors are guest exits: they save the
//! guest's registers and return from `guest::enter` (see `guest.rs`). These are the only steps
//! from assembly to safe Rust.

use core::arch::global_asm;

/// Registers saved on exception entry. Layout shared with the assembly below.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    /// x0..x30.
    pub x: [u64; 31],
    /// ELR_EL2: where the exception returns to.
    pub elr: u64,
    /// SPSR_EL2: the interrupted PSTATE.
    pub spsr: u64,
    _pad: u64,
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 34 * 8);

/// Which vector was taken, by table index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorKind {
    /// Synchronous exception at EL2.
    Sync,
    /// IRQ at EL2.
    Irq,
    /// FIQ at EL2.
    Fiq,
    /// SError at EL2.
    SError,
}

impl VectorKind {
    fn from_index(index: u64) -> (VectorKind, Source) {
        let kind = match index & 3 {
            0 => VectorKind::Sync,
            1 => VectorKind::Irq,
            2 => VectorKind::Fiq,
            _ => VectorKind::SError,
        };
        let source = match index >> 2 {
            0 => Source::CurrentElSp0,
            1 => Source::CurrentElSpx,
            2 => Source::LowerElAarch64,
            _ => Source::LowerElAarch32,
        };
        (kind, source)
    }
}

/// Where the exception came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// EL2 running on SP_EL0 (Wurley never does).
    CurrentElSp0,
    /// EL2 on SP_EL2: the hypervisor itself.
    CurrentElSpx,
    /// A lower EL in AArch64: a guest.
    LowerElAarch64,
    /// A lower EL in AArch32.
    LowerElAarch32,
}

/// Rust side of every vector.
#[unsafe(no_mangle)]
extern "C" fn el2_exception(frame: &mut TrapFrame, index: u64) {
    let (kind, source) = VectorKind::from_index(index);
    match (kind, source) {
        (VectorKind::Irq, Source::CurrentElSpx) => crate::irq::handle(),
        _ => super::exception::unexpected(frame, kind, source),
    }
}

global_asm!(
    r#"
.macro SAVE_FRAME index
    sub     sp, sp, #(34 * 8)
    stp     x0, x1, [sp, #(0 * 16)]
    stp     x2, x3, [sp, #(1 * 16)]
    stp     x4, x5, [sp, #(2 * 16)]
    stp     x6, x7, [sp, #(3 * 16)]
    stp     x8, x9, [sp, #(4 * 16)]
    stp     x10, x11, [sp, #(5 * 16)]
    stp     x12, x13, [sp, #(6 * 16)]
    stp     x14, x15, [sp, #(7 * 16)]
    stp     x16, x17, [sp, #(8 * 16)]
    stp     x18, x19, [sp, #(9 * 16)]
    stp     x20, x21, [sp, #(10 * 16)]
    stp     x22, x23, [sp, #(11 * 16)]
    stp     x24, x25, [sp, #(12 * 16)]
    stp     x26, x27, [sp, #(13 * 16)]
    stp     x28, x29, [sp, #(14 * 16)]
    mrs     x21, elr_el2
    mrs     x22, spsr_el2
    stp     x30, x21, [sp, #(15 * 16)]
    str     x22, [sp, #(16 * 16)]
    mov     x0, sp
    mov     x1, #\index
    b       el2_exception_common
.endm

/* A trap from a guest: park guest x0/x1 on the stack and join the common exit path in
   guest.rs, which saves the guest's registers into its GuestRegs and returns to the host. */
.macro GUEST_EXIT index
    stp     x0, x1, [sp, #-16]!
    mov     x1, #\index
    b       wurley_guest_exit
.endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global __vectors_el2
__vectors_el2:
    .balign 0x80
    SAVE_FRAME 0
    .balign 0x80
    SAVE_FRAME 1
    .balign 0x80
    SAVE_FRAME 2
    .balign 0x80
    SAVE_FRAME 3
    .balign 0x80
    SAVE_FRAME 4
    .balign 0x80
    SAVE_FRAME 5
    .balign 0x80
    SAVE_FRAME 6
    .balign 0x80
    SAVE_FRAME 7
    .balign 0x80
    GUEST_EXIT 8
    .balign 0x80
    GUEST_EXIT 9
    .balign 0x80
    GUEST_EXIT 10
    .balign 0x80
    GUEST_EXIT 11
    .balign 0x80
    GUEST_EXIT 12
    .balign 0x80
    GUEST_EXIT 13
    .balign 0x80
    GUEST_EXIT 14
    .balign 0x80
    GUEST_EXIT 15

el2_exception_common:
    bl      el2_exception
    ldr     x22, [sp, #(16 * 16)]
    ldp     x30, x21, [sp, #(15 * 16)]
    msr     elr_el2, x21
    msr     spsr_el2, x22
    ldp     x0, x1, [sp, #(0 * 16)]
    ldp     x2, x3, [sp, #(1 * 16)]
    ldp     x4, x5, [sp, #(2 * 16)]
    ldp     x6, x7, [sp, #(3 * 16)]
    ldp     x8, x9, [sp, #(4 * 16)]
    ldp     x10, x11, [sp, #(5 * 16)]
    ldp     x12, x13, [sp, #(6 * 16)]
    ldp     x14, x15, [sp, #(7 * 16)]
    ldp     x16, x17, [sp, #(8 * 16)]
    ldp     x18, x19, [sp, #(9 * 16)]
    ldp     x20, x21, [sp, #(10 * 16)]
    ldp     x22, x23, [sp, #(11 * 16)]
    ldp     x24, x25, [sp, #(12 * 16)]
    ldp     x26, x27, [sp, #(13 * 16)]
    ldp     x28, x29, [sp, #(14 * 16)]
    add     sp, sp, #(34 * 8)
    eret
"#
);

/*
 * Wurley EL2 entry.
 *
 * The image starts with the arm64 Linux Image header so QEMU's -kernel and U-Boot's booti load it
 * like a kernel: at a 2 MiB-aligned address, entered at EL2 with the MMU off and x0 = DTB.
 * The image is linked at 0 and is position independent; the primary CPU applies its own
 * R_AARCH64_RELATIVE relocations before any Rust code runs.
 *
 * primary:   x0 = DTB. Clear BSS, relocate, boot stack, EL2 vectors, then
 *            primary_main(dtb, load_base) in Rust (which turns the MMU on).
 * secondary: entered by PSCI CPU_ON with x0 = context id = physical address of a
 *            SecondaryBoot block (src/boot/secondary.rs): stack, MMU registers, per-CPU pointer.
 *            Turn the MMU on with the primary's tables and call secondary_main(block).
 */

    .section .text.head, "ax"
    .global _start
_start:
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0                       // text_offset: anywhere 2 MiB aligned
    .quad   __image_size            // image_size: bytes the loader must leave free (incl. BSS)
    .quad   0xa                     // flags: little endian, 4 KiB pages, placement anywhere
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5 (no PE header)

    .section .text.boot, "ax"

/* SCTLR_EL2 with only its RES1 bits set (nVHE): MMU, caches and alignment checks off. */
    .equ    SCTLR_EL2_RES1, 0x30c50830
    .equ    R_AARCH64_RELATIVE, 1027
    .equ    CURRENT_EL_EL2, (2 << 2)
    .equ    HCR_EL2_RW, (1 << 31)

primary_entry:
    msr     daifset, #0xf
    mov     x19, x0                         // DTB
    mrs     x1, CurrentEL
    cmp     x1, #CURRENT_EL_EL2
    b.ne    park                            // Wurley needs EL2; nothing to report to yet
    ldr     x1, =SCTLR_EL2_RES1
    msr     sctlr_el2, x1
    isb
    ic      iallu
    dsb     nsh
    isb
    mov     x1, #HCR_EL2_RW
    msr     hcr_el2, x1
    adrp    x20, _start                     // load base

    /* BSS (and the boot stack) are not in the file: zero them. */
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __data_end
    add     x2, x2, :lo12:__data_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b

    /* Self-relocation: *(base + offset) = base + addend for every RELATIVE entry. */
2:  adrp    x1, __rela_start
    add     x1, x1, :lo12:__rela_start
    adrp    x2, __rela_end
    add     x2, x2, :lo12:__rela_end
3:  cmp     x1, x2
    b.hs    4f
    ldp     x3, x4, [x1], #16               // r_offset, r_info
    ldr     x5, [x1], #8                    // r_addend
    cmp     w4, #R_AARCH64_RELATIVE
    b.ne    park                            // the linker produced something we cannot apply
    add     x5, x5, x20
    str     x5, [x20, x3]
    b       3b

4:  adrp    x1, __boot_stack_top
    add     x1, x1, :lo12:__boot_stack_top
    mov     sp, x1
    adrp    x1, __vectors_el2
    add     x1, x1, :lo12:__vectors_el2
    msr     vbar_el2, x1
    msr     tpidr_el2, xzr
    isb
    mov     x0, x19
    mov     x1, x20
    bl      primary_main
    b       park

    .global secondary_entry
secondary_entry:
    msr     daifset, #0xf
    mov     x19, x0                         // SecondaryBoot block
    ldr     x1, =SCTLR_EL2_RES1
    msr     sctlr_el2, x1
    isb
    ic      iallu
    mov     x1, #HCR_EL2_RW
    msr     hcr_el2, x1
    adrp    x1, __vectors_el2
    add     x1, x1, :lo12:__vectors_el2
    msr     vbar_el2, x1
    ldp     x0, x1, [x19, #8]               // mair, tcr
    ldp     x2, x3, [x19, #24]              // ttbr0, sctlr
    bl      wurley_enable_mmu
    ldr     x1, [x19, #0]                   // stack top
    mov     sp, x1
    ldr     x1, [x19, #40]                  // per-CPU data
    msr     tpidr_el2, x1
    mov     x0, x19
    bl      secondary_main
    b       park

/*
 * wurley_enable_mmu(mair, tcr, ttbr0, sctlr): program the EL2 stage-1 registers and turn the
 * MMU on. The caller runs identity mapped (VA = PA), so execution continues seamlessly.
 * Clobbers x0-x3 only; usable with or without a stack.
 */
    .global wurley_enable_mmu
wurley_enable_mmu:
    msr     mair_el2, x0
    msr     tcr_el2, x1
    msr     ttbr0_el2, x2
    isb
    tlbi    alle2
    dsb     nsh
    isb
    msr     sctlr_el2, x3
    isb
    ic      iallu
    dsb     nsh
    isb
    ret

    .global park
park:
    msr     daifset, #0xf
5:  wfi
    b       5b

    .ltorg

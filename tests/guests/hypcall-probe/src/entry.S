/*
 * hypcall-probe entry: an arm64 Image header, then EL1 with the MMU off (it stays off). Masks
 * interrupts, applies the image's R_AARCH64_RELATIVE relocations for the address it was loaded
 * at (*(r_offset + delta) = r_addend + delta, delta = load address - link address; any other
 * type parks), zeroes BSS, sets the stack and calls probe_main (which ends with PSCI
 * SYSTEM_OFF). Only PC-relative addresses are used before the relocations are applied.
 */

    .equ    R_AARCH64_RELATIVE, 1027

    .section .text.head, "ax"
    .global _start
_start:
    b       entry                   // code0
    .long   0                       // code1
    .quad   0                       // text_offset: loaded at the RAM base itself
    .quad   __image_size            // image_size, including BSS and stack
    .quad   0xa                     // flags: little endian, 4 KiB pages, placement anywhere
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5

    .section .text.boot, "ax"
entry:
    msr     daifset, #0xf
    adrp    x6, __image_start       // load address
    ldr     x1, =__probe_link_base  // absolute symbol: no relocation of its own
    sub     x6, x6, x1              // delta
    adrp    x1, __rela_start
    add     x1, x1, :lo12:__rela_start
    adrp    x2, __rela_end
    add     x2, x2, :lo12:__rela_end
4:  cmp     x1, x2
    b.hs    5f
    ldp     x3, x4, [x1], #16       // r_offset, r_info
    ldr     x5, [x1], #8            // r_addend
    cmp     w4, #R_AARCH64_RELATIVE
    b.ne    3f
    add     x5, x5, x6
    str     x5, [x3, x6]
    b       4b
5:  adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  adrp    x1, __stack_top
    add     x1, x1, :lo12:__stack_top
    mov     sp, x1
    bl      probe_main
3:  wfi
    b       3b

    .ltorg

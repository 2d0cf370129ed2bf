/*
 * hypcall-probe entry: an arm64 Image header, then EL1 with the MMU off. Masks interrupts,
 * zeroes BSS, sets the stack and calls probe_main (which ends with PSCI SYSTEM_OFF).
 */

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
    adrp    x1, __bss_start
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

/*
 * wurley-rt entry: an arm64 Image header, then EL1h with the MMU off, X0 = the DTB's address.
 *
 * The Image is position independent (see linker.ld): it runs wherever the loader put it, at
 * any 2 MiB-aligned RAM base of at least 1 GiB and below 512 GiB (the 39-bit identity map), as
 * the arm64 boot protocol allows (header flags bit 3). Until step 4 nothing here uses an
 * absolute address: only PC-relative ones (ADRP/ADD) and constants.
 *
 * 1. Mask DAIF, install the vector table, allow FP/SIMD (never used: softfloat target).
 * 2. Build the TTBR0 level-1 table (1 GiB blocks): [0, 1G) Device-nGnRE, the block holding the
 *    Image Normal write-back, everything else invalid; TTBR1 walks disabled. An Image loaded
 *    below 1 GiB (the device block) or past the 39-bit VA range parks: no map could run it.
 *    rt_start (rt.rs) adds the other blocks of RAM, the DTB and the boot information (mmu.rs).
 * 3. Turn the MMU and caches on, so the rest runs on Normal memory.
 * 4. Self-relocation: for every R_AARCH64_RELATIVE entry of .rela.dyn,
 *    *(r_offset + delta) = r_addend + delta, delta = load address - link address (0 when loaded
 *    where linked). Any other relocation type parks: the linker made something this cannot
 *    apply. Done with the MMU on, so the stores go through the cache like every later access.
 * 5. Clear BSS (now cacheable), set the stack, call rt_start(dtb) (never returns).
 *
 * Secondary CPUs enter at rt_secondary_entry (below), which repeats 1 and 3 on the same table
 * and runs on a stack of its own.
 *
 * No Rust code runs before the MMU is on: with it off every data access is Device memory,
 * where the unaligned accesses the compiler may emit would fault.
 *
 * Assembled through global_asm! (no C preprocessor, no braces), hence .equ constants.
 */

/* Block descriptors: valid block, AF; AttrIndx 0 = Device (+ PXN/UXN), 1 = Normal (+ inner
 * shareable). */
    .equ    BLOCK_DEVICE, 0x0060000000000401
    .equ    BLOCK_NORMAL, 0x0000000000000705
/* log2 of a level-1 block (1 GiB) and the level-1 entries of a 39-bit VA space. */
    .equ    BLOCK_SHIFT, 30
    .equ    L1_ENTRIES, 512
    .equ    R_AARCH64_RELATIVE, 1027
/* MAIR: attr0 Device-nGnRE, attr1 Normal WB RW-allocate, attr2 Normal non-cacheable. */
    .equ    MAIR_VALUE, 0x44ff04
/* TCR: T0SZ 25 (39-bit VA), walks inner/outer WB-WA inner shareable, 4 KiB granule, T1SZ 25,
 * EPD1, TG1 4 KiB; IPS is filled in from ID_AA64MMFR0_EL1.PARange. */
    .equ    TCR_VALUE, 0x80993519
/* SCTLR_EL1: M, C, I plus the RES1 bits of Armv8.0; cleared: A, WXN, E0E, EE. */
    .equ    SCTLR_SET, 0x30d01805
    .equ    SCTLR_CLEAR, 0x03080002

/*
 * Turn on the MMU with the level-1 table at x20 (already written and cleaned): MAIR, TCR (IPS
 * from ID_AA64MMFR0_EL1), TTBR0, TTBR1 off, then SCTLR_EL1 with M, C, I. Clobbers x1, x2. Used
 * by the boot CPU and by every secondary (rt_secondary_entry).
 */
.macro MMU_ON
    ldr     x1, =MAIR_VALUE
    msr     mair_el1, x1
    ldr     x1, =TCR_VALUE
    mrs     x2, id_aa64mmfr0_el1
    and     x2, x2, #7
    cmp     x2, #5                  // 48-bit IPS at most (no LPA2 / 52-bit)
    b.ls    9f
    mov     x2, #5
9:  bfi     x1, x2, #32, #3
    msr     tcr_el1, x1
    msr     ttbr0_el1, x20
    msr     ttbr1_el1, xzr
    isb
    tlbi    vmalle1
    dsb     nsh
    ic      iallu
    dsb     nsh
    isb
    mrs     x1, sctlr_el1
    ldr     x2, =SCTLR_SET
    orr     x1, x1, x2
    ldr     x2, =SCTLR_CLEAR
    bic     x1, x1, x2
    msr     sctlr_el1, x1
    isb
.endm

    .section .text.head, "ax"
    .global _start
_start:
    b       rt_entry                // code0
    .long   0                       // code1
    .quad   0                       // text_offset: loaded at the RAM base itself
    .quad   __image_size            // image_size, including page table, BSS and stack
    .quad   0xa                     // flags: little endian, 4 KiB pages, placement anywhere (bit 3)
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5

    .section .text.boot, "ax"
rt_entry:
    msr     daifset, #0xf
    mov     x19, x0
    adrp    x1, rt_vectors
    add     x1, x1, :lo12:rt_vectors
    msr     vbar_el1, x1
    mov     x1, #(3 << 20)          // CPACR_EL1.FPEN: no FP/SIMD traps
    msr     cpacr_el1, x1
    isb

    adrp    x21, __image_start      // load address (2 MiB aligned)
    lsr     x22, x21, #BLOCK_SHIFT  // its level-1 index
    cbz     x22, 5f                 // in the device block: cannot run
    cmp     x22, #L1_ENTRIES
    b.hs    5f                      // past the 39-bit VA range

    adrp    x20, rt_l1_table        // 4 KiB aligned
    bl      rt_table_civac          // no stale dirty lines over the table
    mov     x1, x20
    add     x2, x20, #4096
1:  stp     xzr, xzr, [x1], #16
    cmp     x1, x2
    b.lo    1b
    ldr     x1, =BLOCK_DEVICE
    str     x1, [x20]
    ldr     x1, =BLOCK_NORMAL
    orr     x1, x1, x22, lsl #BLOCK_SHIFT
    str     x1, [x20, x22, lsl #3]
    bl      rt_table_civac          // the walker reads through the cache

    MMU_ON

    /* Self-relocation: *(r_offset + delta) = r_addend + delta. */
    ldr     x1, =__rt_link_base     // absolute symbol: no relocation of its own
    sub     x22, x21, x1            // delta
    adrp    x1, __rela_start
    add     x1, x1, :lo12:__rela_start
    adrp    x2, __rela_end
    add     x2, x2, :lo12:__rela_end
2:  cmp     x1, x2
    b.hs    3f
    ldp     x3, x4, [x1], #16       // r_offset, r_info
    ldr     x5, [x1], #8            // r_addend
    cmp     w4, #R_AARCH64_RELATIVE
    b.ne    5f
    add     x5, x5, x22
    str     x5, [x3, x22]
    b       2b

3:  adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
4:  cmp     x1, x2
    b.hs    6f
    stp     xzr, xzr, [x1], #16
    b       4b
6:  adrp    x1, __stack_top
    add     x1, x1, :lo12:__stack_top
    mov     sp, x1
    mov     x0, x19
    bl      rt_start
5:  wfi
    b       5b

/*
 * Secondary CPUs (PSCI CPU_ON from smp::start_cpu): EL1h, MMU off, X0 = the context id, which
 * is the CPU's slot (0..RT_MAX_CPUS) in rt_secondary_stacks. Nothing is read from memory
 * before the MMU is on (with it off, reads bypass the cache the boot CPU wrote through): the
 * level-1 table is the boot CPU's, already cleaned to memory. Then SP = the top of the slot's
 * stack and rt_secondary_start(slot) runs (GIC, timer, IRQs, then the Rust entry).
 */
    .equ    RT_MAX_CPUS, 8
    .equ    RT_SECONDARY_STACK_SHIFT, 14    // 16 KiB each
    .global rt_secondary_entry
    .balign 4
rt_secondary_entry:
    msr     daifset, #0xf
    mov     x19, x0
    cmp     x19, #RT_MAX_CPUS
    b.hs    6f                      // not a slot smp::start_cpu hands out: park
    adrp    x1, rt_vectors
    add     x1, x1, :lo12:rt_vectors
    msr     vbar_el1, x1
    mov     x1, #(3 << 20)          // CPACR_EL1.FPEN: no FP/SIMD traps
    msr     cpacr_el1, x1
    isb
    adrp    x20, rt_l1_table
    MMU_ON
    adrp    x1, rt_secondary_stacks
    add     x1, x1, :lo12:rt_secondary_stacks
    add     x2, x19, #1
    lsl     x2, x2, #RT_SECONDARY_STACK_SHIFT
    add     x1, x1, x2
    mov     sp, x1
    mov     x0, x19
    bl      rt_secondary_start
6:  wfi
    b       6b

/* Clean and invalidate the data cache lines of the table at x20 (clobbers x1-x4). */
rt_table_civac:
    mrs     x1, ctr_el0
    ubfx    x1, x1, #16, #4         // DminLine: log2(words per line)
    mov     x2, #4
    lsl     x2, x2, x1
    mov     x3, x20
    add     x4, x20, #4096
6:  dc      civac, x3
    add     x3, x3, x2
    cmp     x3, x4
    b.lo    6b
    dsb     sy
    ret

    .ltorg

/*
 * Exception vectors. Each entry makes room for a 192-byte frame, saves X0/X1, puts its index
 * (0..15) in X0 and joins rt_vec_common, which saves the rest and calls
 * rt_exception(index, frame). IRQs at EL1h (index 5) return; everything else powers off.
 *
 * Frame: X0..X17 at 0, X18/X29 at 144, X30/ELR at 160, SPSR at 176.
 */
.macro VECTOR index
    .balign 0x80
    sub     sp, sp, #192
    stp     x0, x1, [sp, #0]
    mov     x0, #\index
    b       rt_vec_common
.endm

    .section .text.vectors, "ax"
    .balign 2048
    .global rt_vectors
rt_vectors:
    VECTOR  0
    VECTOR  1
    VECTOR  2
    VECTOR  3
    VECTOR  4
    VECTOR  5
    VECTOR  6
    VECTOR  7
    VECTOR  8
    VECTOR  9
    VECTOR  10
    VECTOR  11
    VECTOR  12
    VECTOR  13
    VECTOR  14
    VECTOR  15

rt_vec_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x29, [sp, #144]
    mrs     x2, elr_el1
    stp     x30, x2, [sp, #160]
    mrs     x2, spsr_el1
    str     x2, [sp, #176]
    mov     x1, sp
    bl      rt_exception
    ldr     x2, [sp, #176]
    msr     spsr_el1, x2
    ldp     x30, x2, [sp, #160]
    msr     elr_el1, x2
    ldp     x18, x29, [sp, #144]
    ldp     x16, x17, [sp, #128]
    ldp     x14, x15, [sp, #112]
    ldp     x12, x13, [sp, #96]
    ldp     x10, x11, [sp, #80]
    ldp     x8, x9, [sp, #64]
    ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #192
    eret

    .section .bss.rt_secondary_stacks, "aw", %nobits
    .balign 16
    .global rt_secondary_stacks
rt_secondary_stacks:
    .space  RT_MAX_CPUS << RT_SECONDARY_STACK_SHIFT

    .section .pagetable, "aw", %nobits
    .balign 4096
    .global rt_l1_table
rt_l1_table:
    .space  4096

//! Reading the ID registers (op0 3, op1 0, CRn 0, CRm 1..7) by encoding, for emulating the
//! guest's trapped reads (HCR_EL2.TID3). The policy of what a guest may see is in
//! `vm::features`.

use core::arch::asm;

macro_rules! rd {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: ID registers are read-only and reading them has no side effects; encodings
        // that are unallocated in this space read as zero (RAZ) at EL2.
        unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

/// The value of ID register `S3_0_C0_C<crm>_<op2>`; zero outside CRm 1..7.
pub fn read(crm: u8, op2: u8) -> u64 {
    match (crm, op2) {
        (1, 0) => rd!("s3_0_c0_c1_0"),
        (1, 1) => rd!("s3_0_c0_c1_1"),
        (1, 2) => rd!("s3_0_c0_c1_2"),
        (1, 3) => rd!("s3_0_c0_c1_3"),
        (1, 4) => rd!("s3_0_c0_c1_4"),
        (1, 5) => rd!("s3_0_c0_c1_5"),
        (1, 6) => rd!("s3_0_c0_c1_6"),
        (1, 7) => rd!("s3_0_c0_c1_7"),
        (2, 0) => rd!("s3_0_c0_c2_0"),
        (2, 1) => rd!("s3_0_c0_c2_1"),
        (2, 2) => rd!("s3_0_c0_c2_2"),
        (2, 3) => rd!("s3_0_c0_c2_3"),
        (2, 4) => rd!("s3_0_c0_c2_4"),
        (2, 5) => rd!("s3_0_c0_c2_5"),
        (2, 6) => rd!("s3_0_c0_c2_6"),
        (2, 7) => rd!("s3_0_c0_c2_7"),
        (3, 0) => rd!("s3_0_c0_c3_0"),
        (3, 1) => rd!("s3_0_c0_c3_1"),
        (3, 2) => rd!("s3_0_c0_c3_2"),
        (3, 3) => rd!("s3_0_c0_c3_3"),
        (3, 4) => rd!("s3_0_c0_c3_4"),
        (3, 5) => rd!("s3_0_c0_c3_5"),
        (3, 6) => rd!("s3_0_c0_c3_6"),
        (3, 7) => rd!("s3_0_c0_c3_7"),
        (4, 0) => rd!("s3_0_c0_c4_0"),
        (4, 1) => rd!("s3_0_c0_c4_1"),
        (4, 2) => rd!("s3_0_c0_c4_2"),
        (4, 3) => rd!("s3_0_c0_c4_3"),
        (4, 4) => rd!("s3_0_c0_c4_4"),
        (4, 5) => rd!("s3_0_c0_c4_5"),
        (4, 6) => rd!("s3_0_c0_c4_6"),
        (4, 7) => rd!("s3_0_c0_c4_7"),
        (5, 0) => rd!("s3_0_c0_c5_0"),
        (5, 1) => rd!("s3_0_c0_c5_1"),
        (5, 2) => rd!("s3_0_c0_c5_2"),
        (5, 3) => rd!("s3_0_c0_c5_3"),
        (5, 4) => rd!("s3_0_c0_c5_4"),
        (5, 5) => rd!("s3_0_c0_c5_5"),
        (5, 6) => rd!("s3_0_c0_c5_6"),
        (5, 7) => rd!("s3_0_c0_c5_7"),
        (6, 0) => rd!("s3_0_c0_c6_0"),
        (6, 1) => rd!("s3_0_c0_c6_1"),
        (6, 2) => rd!("s3_0_c0_c6_2"),
        (6, 3) => rd!("s3_0_c0_c6_3"),
        (6, 4) => rd!("s3_0_c0_c6_4"),
        (6, 5) => rd!("s3_0_c0_c6_5"),
        (6, 6) => rd!("s3_0_c0_c6_6"),
        (6, 7) => rd!("s3_0_c0_c6_7"),
        (7, 0) => rd!("s3_0_c0_c7_0"),
        (7, 1) => rd!("s3_0_c0_c7_1"),
        (7, 2) => rd!("s3_0_c0_c7_2"),
        (7, 3) => rd!("s3_0_c0_c7_3"),
        (7, 4) => rd!("s3_0_c0_c7_4"),
        (7, 5) => rd!("s3_0_c0_c7_5"),
        (7, 6) => rd!("s3_0_c0_c7_6"),
        (7, 7) => rd!("s3_0_c0_c7_7"),
        _ => 0,
    }
}

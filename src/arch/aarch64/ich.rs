//! The GICv3 virtual CPU interface at EL2 (ICH_*_EL2): list registers, control, VMCR and
//! active-priority registers. `arm-gic` drives only the physical interface, so these are ours.
//!
//! What goes into the list registers is decided by the pure vGIC model (`vm::vgic`); this file
//! only moves values in and out of the registers of the calling CPU.

/// Number of list registers (ICH_VTR_EL2.ListRegs + 1).
pub fn list_registers() -> usize {
    (read_sysreg!("ich_vtr_el2") & 0x1f) as usize + 1
}

/// Number of active-priority registers per group in use (from ICH_VTR_EL2.PREbits).
pub fn apr_count() -> usize {
    match (read_sysreg!("ich_vtr_el2") >> 26) & 7 {
        6 => 2,
        7 => 4,
        _ => 1,
    }
}

/// Read list register `n` (0 for indexes beyond 15).
pub fn read_lr(n: usize) -> u64 {
    match n {
        0 => read_sysreg!("ich_lr0_el2"),
        1 => read_sysreg!("ich_lr1_el2"),
        2 => read_sysreg!("ich_lr2_el2"),
        3 => read_sysreg!("ich_lr3_el2"),
        4 => read_sysreg!("ich_lr4_el2"),
        5 => read_sysreg!("ich_lr5_el2"),
        6 => read_sysreg!("ich_lr6_el2"),
        7 => read_sysreg!("ich_lr7_el2"),
        8 => read_sysreg!("ich_lr8_el2"),
        9 => read_sysreg!("ich_lr9_el2"),
        10 => read_sysreg!("ich_lr10_el2"),
        11 => read_sysreg!("ich_lr11_el2"),
        12 => read_sysreg!("ich_lr12_el2"),
        13 => read_sysreg!("ich_lr13_el2"),
        14 => read_sysreg!("ich_lr14_el2"),
        15 => read_sysreg!("ich_lr15_el2"),
        _ => 0,
    }
}

/// Write list register `n` (ignored for indexes beyond 15).
pub fn write_lr(n: usize, value: u64) {
    match n {
        0 => {
            write_sysreg!("ich_lr0_el2", value);
        }
        1 => {
            write_sysreg!("ich_lr1_el2", value);
        }
        2 => {
            write_sysreg!("ich_lr2_el2", value);
        }
        3 => {
            write_sysreg!("ich_lr3_el2", value);
        }
        4 => {
            write_sysreg!("ich_lr4_el2", value);
        }
        5 => {
            write_sysreg!("ich_lr5_el2", value);
        }
        6 => {
            write_sysreg!("ich_lr6_el2", value);
        }
        7 => {
            write_sysreg!("ich_lr7_el2", value);
        }
        8 => {
            write_sysreg!("ich_lr8_el2", value);
        }
        9 => {
            write_sysreg!("ich_lr9_el2", value);
        }
        10 => {
            write_sysreg!("ich_lr10_el2", value);
        }
        11 => {
            write_sysreg!("ich_lr11_el2", value);
        }
        12 => {
            write_sysreg!("ich_lr12_el2", value);
        }
        13 => {
            write_sysreg!("ich_lr13_el2", value);
        }
        14 => {
            write_sysreg!("ich_lr14_el2", value);
        }
        15 => {
            write_sysreg!("ich_lr15_el2", value);
        }
        _ => {}
    }
}

/// ICH_HCR_EL2.
pub fn read_hcr() -> u64 {
    read_sysreg!("ich_hcr_el2")
}

/// Write ICH_HCR_EL2.
pub fn write_hcr(value: u64) {
    write_sysreg!("ich_hcr_el2", value);
}

/// ICH_MISR_EL2: why the maintenance interrupt fired.
pub fn read_misr() -> u64 {
    read_sysreg!("ich_misr_el2")
}

/// ICH_VMCR_EL2: the guest's view of its CPU interface control (priority mask, enables).
pub fn read_vmcr() -> u64 {
    read_sysreg!("ich_vmcr_el2")
}

/// Write ICH_VMCR_EL2.
pub fn write_vmcr(value: u64) {
    write_sysreg!("ich_vmcr_el2", value);
}

/// Active priorities, group 0 and group 1 (registers 0..3 each).
pub fn read_aprs() -> ([u64; 4], [u64; 4]) {
    let n = apr_count();
    let mut ap0 = [0; 4];
    let mut ap1 = [0; 4];
    ap0[0] = read_sysreg!("ich_ap0r0_el2");
    ap1[0] = read_sysreg!("ich_ap1r0_el2");
    if n > 1 {
        ap0[1] = read_sysreg!("ich_ap0r1_el2");
        ap1[1] = read_sysreg!("ich_ap1r1_el2");
    }
    if n > 2 {
        ap0[2] = read_sysreg!("ich_ap0r2_el2");
        ap1[2] = read_sysreg!("ich_ap1r2_el2");
        ap0[3] = read_sysreg!("ich_ap0r3_el2");
        ap1[3] = read_sysreg!("ich_ap1r3_el2");
    }
    (ap0, ap1)
}

/// Restore active priorities.
pub fn write_aprs(ap0: &[u64; 4], ap1: &[u64; 4]) {
    let n = apr_count();
    write_sysreg!("ich_ap0r0_el2", ap0[0]);
    write_sysreg!("ich_ap1r0_el2", ap1[0]);
    if n > 1 {
        write_sysreg!("ich_ap0r1_el2", ap0[1]);
        write_sysreg!("ich_ap1r1_el2", ap1[1]);
    }
    if n > 2 {
        write_sysreg!("ich_ap0r2_el2", ap0[2]);
        write_sysreg!("ich_ap1r2_el2", ap1[2]);
        write_sysreg!("ich_ap0r3_el2", ap0[3]);
        write_sysreg!("ich_ap1r3_el2", ap1[3]);
    }
}

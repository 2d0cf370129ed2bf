//! What a guest sees: its IPA map and interrupt numbers (the same places QEMU's virt machine
//! uses, so guest kernels configured for it need nothing new).

/// GICv3 distributor (emulated).
pub const GICD_BASE: u64 = 0x0800_0000;
/// Size of the distributor window.
pub const GICD_SIZE: u64 = 0x1_0000;
/// GICv3 redistributors (emulated), one 128 KiB frame pair per vCPU.
pub const GICR_BASE: u64 = 0x080a_0000;
/// Size of one vCPU's redistributor frames.
pub const GICR_STRIDE: u64 = 0x2_0000;
/// Virtual PL011 console.
pub const UART_BASE: u64 = 0x0900_0000;
/// Size of the UART window.
pub const UART_SIZE: u64 = 0x1000;
/// The UART's SPI number (INTID 33).
pub const UART_SPI: u32 = 1;
/// Default guest RAM base.
pub const RAM_BASE: u64 = 0x4000_0000;
/// Timer PPIs as the guest DT lists them: secure physical, non-secure physical, virtual, hyp.
pub const TIMER_PPIS: [u32; 4] = [13, 14, 11, 10];
/// The virtual timer's INTID in the guest (PPI 11).
pub const VTIMER_INTID: u32 = 27;
/// The GIC maintenance interrupt PPI in the guest DT (unused by guests, described for
/// completeness as QEMU does).
pub const MAINTENANCE_PPI: u32 = 9;
/// SPIs the virtual distributor implements.
pub const SPIS: u32 = 64;

/// Size of the redistributor region for `vcpus` vCPUs.
pub const fn gicr_size(vcpus: usize) -> u64 {
    GICR_STRIDE * vcpus as u64
}

/// A guest vCPU's MPIDR affinity: vCPU `n` is Aff0 = n % 16, Aff1 = n / 16 (16 CPUs per
/// cluster keeps every vCPU reachable by a GICv3 SGI target list).
pub const fn vcpu_mpidr(n: usize) -> u64 {
    ((n as u64 / 16) << 8) | (n as u64 % 16)
}

#[cfg(test)]
mod tests {
    #[test]
    fn mpidrs_fit_sgi_target_lists() {
        assert_eq!(super::vcpu_mpidr(0), 0);
        assert_eq!(super::vcpu_mpidr(15), 15);
        assert_eq!(super::vcpu_mpidr(17), 0x101);
    }
}

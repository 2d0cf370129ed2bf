//! The device-tree blobs of `tests/data/` (see its README), embedded for the host tests.

macro_rules! fixture {
    ($name:ident, $file:literal) => {
        pub(super) const $name: &[u8] = include_bytes!(concat!("../../tests/data/", $file));
    };
}

fixture!(VIRT_SMP1, "virt-gicv3-smp1-512m.dtb");
fixture!(VIRT_SMP2, "virt-gicv3-smp2-1g.dtb");
fixture!(VIRT_SMP4, "virt-gicv3-smp4-2g.dtb");
fixture!(VIRT_SMP8, "virt-gicv3-smp8-1g.dtb");
fixture!(VIRT_INITRD, "virt-gicv3-smp2-1g-initrd.dtb");
fixture!(VIRT_LEGACY_STDOUT, "virt-legacy-stdout-path.dtb");
fixture!(SOC, "soc-ranges.dtb");
fixture!(NEG_NO_GIC, "neg-no-gic.dtb");
fixture!(NEG_GIC_REG_TRUNCATED, "neg-gic-reg-truncated.dtb");
fixture!(NEG_PSCI_NO_METHOD, "neg-psci-no-method.dtb");
fixture!(NEG_PSCI_BAD_METHOD, "neg-psci-bad-method.dtb");
fixture!(NEG_NO_STDOUT_PATH, "neg-no-stdout-path.dtb");
fixture!(NEG_UART_DISABLED, "neg-uart-disabled.dtb");
fixture!(NEG_NO_MEMORY, "neg-no-memory.dtb");
fixture!(NEG_NO_TIMER, "neg-no-timer.dtb");
fixture!(NEG_NO_CPUS, "neg-no-cpus.dtb");
fixture!(NEG_SOC_NO_RANGES, "neg-soc-no-ranges.dtb");

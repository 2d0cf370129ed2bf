//! The bundles of `tests/data/bundle/` (see its README), embedded for the host tests.

macro_rules! fixture {
    ($name:ident, $file:literal) => {
        pub(super) const $name: &[u8] =
            include_bytes!(concat!("../../../tests/data/bundle/", $file));
    };
}

fixture!(FAKE_IMAGE, "fake-Image");
fixture!(FAKE_INITRD, "fake-initrd");
fixture!(TWO_VMS, "two-vms.dtb");
fixture!(SMALL, "small.dtb");
fixture!(PER_VM_ERRORS, "per-vm-errors.dtb");
fixture!(VCPU_BUDGET, "vcpu-budget.dtb");
fixture!(CONSOLES, "consoles.dtb");
fixture!(OVERLAP, "overlap.dtb");
fixture!(DUPLICATE_NAMES, "duplicate-names.dtb");
fixture!(ROOT_EXTRAS, "root-extras.dtb");
fixture!(EMPTY_VMS, "empty-vms.dtb");
fixture!(WRONG_COMPATIBLE, "wrong-compatible.dtb");
fixture!(NO_VMS, "no-vms.dtb");
fixture!(LONG_NAME, "long-name.dtb");
fixture!(FROM_TEMPLATE, "from-template.dtb");
fixture!(LINKS, "links.dtb");
fixture!(LINK_ERRORS, "link-errors.dtb");
fixture!(LINK_LIMIT, "link-limit.dtb");
fixture!(DUPLICATE_LINKS, "duplicate-links.dtb");
fixture!(CAPABILITIES, "capabilities.dtb");
fixture!(DEVICES, "devices.dtb");

/// A QEMU `virt` device tree (a fixture of `src/platform/`): a device tree, but not a bundle.
pub(super) const QEMU_VIRT: &[u8] = include_bytes!("../../../tests/data/virt-gicv3-smp2-1g.dtb");
fixture!(SCHEDULED_BY, "scheduled-by.dtb");

//! Proxy-scheduled VMs (`gunyah-vm-config/vcpus/affinity = "proxy"`): the config DT
//! parsing, vcpu_run_scheduled vCPUs with wakeup vIRQs in the owner's VIC, and undoing them.

use super::*;

/// [`lend_image`] with the owner's DTB saying `affinity = <affinity>`.
fn lend_proxy_image(g: &mut Gunyah<Fake>, affinity: &str) -> u32 {
    let h = lend_image(g);
    let dtb = owner_dtb_with(Some(affinity));
    g.calls_mut().window[0x800..0x800 + dtb.len()].copy_from_slice(&dtb);
    h
}

#[test]
fn the_vm_config_says_who_schedules_the_vcpus() {
    use crate::gunyah::create::DtInput;
    assert!(!DtInput::parse(&owner_dtb()).proxy);
    assert!(DtInput::parse(&owner_dtb_with(Some("proxy"))).proxy);
    for other in ["static", "sticky", "Proxy", ""] {
        assert!(
            !DtInput::parse(&owner_dtb_with(Some(other))).proxy,
            "{other}"
        );
    }
    // Not a device tree: the defaults.
    let d = DtInput::parse(&[0u8; 64]);
    assert_eq!((d.vcpus, d.proxy), (1, false));
    // The rest is read as before.
    let d = DtInput::parse(&owner_dtb_with(Some("proxy")));
    assert_eq!(d.vcpus, 2);
    assert_eq!(d.bootargs, "console=hvc0 quiet");
}

/// A proxy-scheduled VM: its vCPUs are configured with vcpu_run_scheduled (bit 9), each one's
/// VCPU_RUN_WAKEUP source is bound to a vIRQ of the owner's VIC, and the owner's VIRTUAL_CPU
/// entries carry that vIRQ; VM_RESET unbinds them and gives the vIRQs back.
#[test]
fn proxy_vm_creation_and_reset() {
    let mut g = gunyah();
    lend_proxy_image(&mut g, "proxy");
    g.calls_mut().log.clear();
    let resources = g.vm_create(GUEST, HOST).unwrap();
    let log = &g.calls().log;
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("vcpu_configure("))
            .count(),
        2
    );
    assert!(log.contains(&String::from("vcpu_configure(0x106, 512)")));
    assert!(log.contains(&String::from("vcpu_configure(0x107, 512)")));
    // The RM still watches vCPU 0's HALT; the owner link takes the owner's vIRQs 70 and 71.
    let binds: Vec<&str> = log
        .iter()
        .filter(|l| l.starts_with("vcpu_bind_virq("))
        .map(String::as_str)
        .collect();
    assert_eq!(
        binds,
        [
            "vcpu_bind_virq(0x106, 0x3, 40, 0)",
            "vcpu_bind_virq(0x106, 0x12, 72, 1)",
            "vcpu_bind_virq(0x107, 0x12, 73, 1)",
        ]
    );
    // Each wakeup is bound after the vCPU's activation, next to the owner's copy of its cap.
    let at = |s: &str| log.iter().position(|l| l == s).unwrap();
    assert!(at("activate(0x107)") < at("vcpu_bind_virq(0x106, 0x12, 72, 1)"));
    assert!(at("cspace_copy(0x2, 0x106, 0x11, 0x72)") < at("vcpu_bind_virq(0x106, 0x12, 72, 1)"));
    let vcpus: Vec<(u32, u32)> = resources
        .iter()
        .filter(|r| r.holder == HOST && r.entry.resource_type == ResourceType::VirtualCpu)
        .map(|r| (r.entry.label, r.entry.virq))
        .collect();
    assert_eq!(vcpus, [(0, 72), (1, 73)]);

    g.vm_kill(GUEST).unwrap();
    g.calls_mut().log.clear();
    g.vm_destroy(GUEST).unwrap();
    let log = &g.calls().log;
    let unbinds: Vec<&str> = log
        .iter()
        .filter(|l| l.starts_with("vcpu_unbind_virq("))
        .map(String::as_str)
        .collect();
    assert_eq!(
        unbinds,
        [
            "vcpu_unbind_virq(0x106, 0)",
            "vcpu_unbind_virq(0x107, 1)",
            "vcpu_unbind_virq(0x106, 1)",
        ]
    );
    // Unbound before any cap of the VM is deleted (the parcel's extent goes back first).
    let first_delete = log
        .iter()
        .position(|l| l.starts_with("cspace_delete(0x11,"))
        .unwrap();
    let last_unbind = log
        .iter()
        .rposition(|l| l.starts_with("vcpu_unbind_virq("))
        .unwrap();
    assert!(last_unbind < first_delete, "{log:?}");

    // The owner's vIRQs are free again: the next proxy VM gets the same ones.
    g.vm_deallocate(GUEST);
    lend_proxy_image(&mut g, "proxy");
    g.calls_mut().log.clear();
    g.vm_create(GUEST, HOST).unwrap();
    assert!(g.calls().log.iter().any(|l| l.ends_with(", 0x12, 72, 1)")));
    assert!(g.calls().log.iter().any(|l| l.ends_with(", 0x12, 73, 1)")));
}

/// Another affinity value leaves the vCPUs to the hypervisor: no option, no wakeup vIRQ.
#[test]
fn other_affinities_are_hypervisor_scheduled() {
    let mut g = gunyah();
    lend_proxy_image(&mut g, "static");
    g.calls_mut().log.clear();
    let resources = g.vm_create(GUEST, HOST).unwrap();
    assert!(
        g.calls()
            .log
            .contains(&String::from("vcpu_configure(0x106, 0)"))
    );
    assert_eq!(g.calls().count("vcpu_bind_virq("), 1);
    assert!(
        resources
            .iter()
            .filter(|r| r.entry.resource_type == ResourceType::VirtualCpu)
            .all(|r| r.entry.virq == 0)
    );
}

/// A wakeup binding that fails half-way: the one made is unbound, the vIRQs go back, and the
/// next try gets the same ones.
#[test]
fn failed_proxy_creation_is_undone() {
    let mut g = gunyah();
    lend_proxy_image(&mut g, "proxy");
    g.calls_mut().log.clear();
    g.calls_mut().fail = Some((String::from("vcpu_bind_virq(0x107, 0x12"), Error::Nomem));
    assert_eq!(g.vm_create(GUEST, HOST), Err(RmError::NoMem));
    let log = &g.calls().log;
    assert!(
        log.contains(&String::from("vcpu_unbind_virq(0x106, 1)")),
        "{log:?}"
    );
    assert_eq!(g.calls().count("vcpu_unbind_virq("), 1);
    g.calls_mut().log.clear();
    g.vm_create(GUEST, HOST).unwrap();
    assert!(g.calls().log.iter().any(|l| l.ends_with(", 0x12, 72, 1)")));
    assert!(g.calls().log.iter().any(|l| l.ends_with(", 0x12, 73, 1)")));
}

/// A proxy-scheduled VM needs an owner the RM can give caps and vIRQs to.
#[test]
fn proxy_vm_needs_an_owner_with_a_vic() {
    let mut g = gunyah();
    // VM 0x82: known, with RAM, but neither cspace nor VIC.
    let owner = VmId(0x82);
    g.add_vm(
        owner,
        KnownVm {
            name: String::from("capless"),
            addrspace: CapId(0x33),
            cspace: CapId::INVALID,
            vic: CapId::INVALID,
            ram: Some(Region {
                ipa: RAM,
                size: 0x1000_0000,
                extent: CapId(0x30),
            }),
            virqs: (70, 96),
        },
    );
    lend_image_from(&mut g, owner, &owner_dtb_with(Some("proxy")));
    g.calls_mut().log.clear();
    assert_eq!(g.vm_create(GUEST, owner), Err(RmError::ArgumentInvalid));
    assert_eq!(g.calls().count("create(Thread"), 0);
    assert_eq!(
        g.calls().count("cspace_delete("),
        g.calls().count("create(")
    );
}

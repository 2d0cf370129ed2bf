//! Host tests of the memparcel bookkeeping and of [`Gunyah`] against a fake hypervisor that
//! records every call: the VM-creation sequence, start, stop, reset, lending, reclaiming, IRQ
//! lending, and that a failure half-way undoes everything.

#![allow(clippy::unwrap_used)]

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use wurley_abi::rm::irq::{IrqAcceptRequest, IrqLendRequest, IrqNotifyRequest};
use wurley_abi::rm::memparcel::{
    AclEntry, MEM_NOTIFY_FLAG_SHARED, MEM_RIGHTS_R, MEM_RIGHTS_RW, MEM_RIGHTS_RWX, MemAcceptReply,
    MemAcceptRequest, MemCreateRequest, MemNotifyRequest, MemReleaseRequest, MemType, SglEntry,
    TransType, VmidEntry,
};
use wurley_abi::rm::resource::ResourceType;
use wurley_abi::rm::vm::{BootRegSet, VmConfigImageRequest};
use wurley_abi::rm::{Decode, List, RmError, ids};
use wurley_abi::{CapId, Error, VmId};
use wurley_rt::fdt::Fdt;

use crate::calls::{Hypercalls, Kind, Modify};
use crate::gunyah::{Gunyah, KnownVm, Region, RmCaps};
use crate::hyp::{Event, Hyp};
use crate::memparcel::{Parcels, Range};

const HOST: VmId = VmId(3);
const GUEST: VmId = VmId(0x80);
const OTHER: VmId = VmId(0x81);
const RAM: u64 = 0x4000_0000;
const WINDOW: u64 = 0x60_0000_0000;

/// A hypervisor that records each call as text, hands out caps 0x100, 0x101, ... and fails the
/// call whose text starts with `fail` (once).
#[derive(Default)]
pub(crate) struct Fake {
    pub(crate) log: Vec<String>,
    pub(crate) next: u64,
    pub(crate) fail: Option<(String, Error)>,
    pub(crate) window: Vec<u8>,
}

impl Fake {
    fn rec(&mut self, call: String) -> Result<(), Error> {
        let fails = self
            .fail
            .as_ref()
            .is_some_and(|(prefix, _)| call.starts_with(prefix.as_str()));
        self.log.push(call);
        if fails && let Some((_, e)) = self.fail.take() {
            return Err(e);
        }
        Ok(())
    }

    pub(crate) fn names(&self) -> Vec<&str> {
        self.log
            .iter()
            .map(|l| l.split('(').next().unwrap_or(""))
            .collect()
    }

    pub(crate) fn count(&self, prefix: &str) -> usize {
        self.log.iter().filter(|l| l.starts_with(prefix)).count()
    }
}

impl Hypercalls for Fake {
    fn create(&mut self, kind: Kind, partition: CapId, cspace: CapId) -> Result<CapId, Error> {
        self.rec(format!(
            "create({kind:?}, {:#x}, {:#x})",
            partition.0, cspace.0
        ))?;
        self.next += 1;
        Ok(CapId(0x100 + self.next))
    }
    fn activate(&mut self, cap: CapId) -> Result<(), Error> {
        self.rec(format!("activate({:#x})", cap.0))
    }
    fn partition_configure(&mut self, p: CapId, quota: u64) -> Result<(), Error> {
        self.rec(format!("partition_configure({:#x}, {quota:#x})", p.0))
    }
    fn cspace_configure(&mut self, cs: CapId, n: u32) -> Result<(), Error> {
        self.rec(format!("cspace_configure({:#x}, {n})", cs.0))
    }
    fn cspace_copy(&mut self, s: CapId, c: CapId, d: CapId, r: u32) -> Result<CapId, Error> {
        self.rec(format!(
            "cspace_copy({:#x}, {:#x}, {:#x}, {r:#x})",
            s.0, c.0, d.0
        ))?;
        self.next += 1;
        Ok(CapId(0x100 + self.next))
    }
    fn cspace_delete(&mut self, cs: CapId, c: CapId) -> Result<(), Error> {
        self.rec(format!("cspace_delete({:#x}, {:#x})", cs.0, c.0))
    }
    fn cspace_attach_thread(&mut self, cs: CapId, t: CapId) -> Result<(), Error> {
        self.rec(format!("cspace_attach_thread({:#x}, {:#x})", cs.0, t.0))
    }
    fn addrspace_configure(&mut self, a: CapId, vmid: u16) -> Result<(), Error> {
        self.rec(format!("addrspace_configure({:#x}, {vmid:#x})", a.0))
    }
    fn addrspace_attach_thread(&mut self, a: CapId, t: CapId) -> Result<(), Error> {
        self.rec(format!("addrspace_attach_thread({:#x}, {:#x})", a.0, t.0))
    }
    fn addrspace_map(&mut self, a: CapId, e: CapId, v: u64, at: u32, s: u64) -> Result<(), Error> {
        self.rec(format!(
            "addrspace_map({:#x}, {:#x}, {v:#x}, {at:#x}, {s:#x})",
            a.0, e.0
        ))
    }
    fn addrspace_unmap(&mut self, a: CapId, e: CapId, v: u64, s: u64) -> Result<(), Error> {
        self.rec(format!(
            "addrspace_unmap({:#x}, {:#x}, {v:#x}, {s:#x})",
            a.0, e.0
        ))
    }
    fn memextent_derive(
        &mut self,
        e: CapId,
        p: CapId,
        o: u64,
        s: u64,
        a: u32,
    ) -> Result<(), Error> {
        self.rec(format!(
            "memextent_derive({:#x}, {:#x}, {o:#x}, {s:#x}, {a})",
            e.0, p.0
        ))
    }
    fn memextent_modify(&mut self, e: CapId, op: Modify, s: u64) -> Result<(), Error> {
        self.rec(format!("memextent_modify({:#x}, {op:?}, {s:#x})", e.0))
    }
    fn vic_configure(&mut self, v: CapId, n: u32, virqs: u32) -> Result<(), Error> {
        self.rec(format!("vic_configure({:#x}, {n}, {virqs})", v.0))
    }
    fn vic_attach_vcpu(&mut self, v: CapId, t: CapId, i: u32) -> Result<(), Error> {
        self.rec(format!("vic_attach_vcpu({:#x}, {:#x}, {i})", v.0, t.0))
    }
    fn vcpu_configure(&mut self, t: CapId, f: u64) -> Result<(), Error> {
        self.rec(format!("vcpu_configure({:#x}, {f})", t.0))
    }
    fn vcpu_set_affinity(&mut self, t: CapId, cpu: u64) -> Result<(), Error> {
        self.rec(format!("vcpu_set_affinity({:#x}, {cpu})", t.0))
    }
    fn vcpu_poweron(&mut self, t: CapId, e: u64, c: u64, f: u64) -> Result<(), Error> {
        self.rec(format!("vcpu_poweron({:#x}, {e:#x}, {c:#x}, {f})", t.0))
    }
    fn vcpu_kill(&mut self, t: CapId) -> Result<(), Error> {
        self.rec(format!("vcpu_kill({:#x})", t.0))
    }
    fn vcpu_register_write(&mut self, t: CapId, s: u64, i: u64, v: u64) -> Result<(), Error> {
        self.rec(format!("vcpu_register_write({:#x}, {s}, {i}, {v:#x})", t.0))
    }
    fn vcpu_bind_virq(&mut self, t: CapId, v: CapId, virq: u32, k: u64) -> Result<(), Error> {
        self.rec(format!(
            "vcpu_bind_virq({:#x}, {:#x}, {virq}, {k})",
            t.0, v.0
        ))
    }
    fn vcpu_unbind_virq(&mut self, t: CapId, k: u64) -> Result<(), Error> {
        self.rec(format!("vcpu_unbind_virq({:#x}, {k})", t.0))
    }
    fn msgqueue_configure(&mut self, q: CapId, d: u32, s: u32) -> Result<(), Error> {
        self.rec(format!("msgqueue_configure({:#x}, {d}, {s})", q.0))
    }
    fn msgqueue_bind_send(&mut self, q: CapId, v: CapId, virq: u32) -> Result<(), Error> {
        self.rec(format!(
            "msgqueue_bind_send({:#x}, {:#x}, {virq})",
            q.0, v.0
        ))
    }
    fn msgqueue_bind_receive(&mut self, q: CapId, v: CapId, virq: u32) -> Result<(), Error> {
        self.rec(format!(
            "msgqueue_bind_receive({:#x}, {:#x}, {virq})",
            q.0, v.0
        ))
    }
    fn hwirq_bind(&mut self, h: CapId, v: CapId, virq: u32) -> Result<(), Error> {
        self.rec(format!("hwirq_bind({:#x}, {:#x}, {virq})", h.0, v.0))
    }
    fn hwirq_unbind(&mut self, h: CapId) -> Result<(), Error> {
        self.rec(format!("hwirq_unbind({:#x})", h.0))
    }
    fn memextent_configure(&mut self, e: CapId, p: u64, s: u64, a: u32) -> Result<(), Error> {
        self.rec(format!(
            "memextent_configure({:#x}, {p:#x}, {s:#x}, {a:#x})",
            e.0
        ))
    }
    fn memextent_modify_range(
        &mut self,
        e: CapId,
        op: Modify,
        o: u64,
        s: u64,
    ) -> Result<(), Error> {
        self.rec(format!(
            "memextent_modify({:#x}, {op:?}, {o:#x}, {s:#x})",
            e.0
        ))
    }
    fn vcpu_set_priority(&mut self, t: CapId, p: u64) -> Result<(), Error> {
        self.rec(format!("vcpu_set_priority({:#x}, {p})", t.0))
    }
    fn vcpu_set_timeslice(&mut self, t: CapId, ns: u64) -> Result<(), Error> {
        self.rec(format!("vcpu_set_timeslice({:#x}, {ns})", t.0))
    }
    fn vpm_group_attach(&mut self, g: CapId, t: CapId, i: u32) -> Result<(), Error> {
        self.rec(format!("vpm_group_attach({:#x}, {:#x}, {i})", g.0, t.0))
    }
    fn doorbell_bind(&mut self, d: CapId, v: CapId, virq: u32) -> Result<(), Error> {
        self.rec(format!("doorbell_bind({:#x}, {:#x}, {virq})", d.0, v.0))
    }
    fn vm_set_name(&mut self, a: CapId, name: &str, flags: u64) -> Result<(), Error> {
        self.rec(format!("vm_set_name({:#x}, {name}, {flags})", a.0))
    }
    fn window_read(&mut self, offset: u64, buf: &mut [u8]) -> bool {
        let o = offset as usize;
        match self.window.get(o..o + buf.len()) {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
    fn window_write(&mut self, offset: u64, data: &[u8]) -> bool {
        let o = offset as usize;
        match self.window.get_mut(o..o + data.len()) {
            Some(dst) => {
                dst.copy_from_slice(data);
                true
            }
            None => false,
        }
    }
}

const RM: RmCaps = RmCaps {
    partition: CapId(1),
    cspace: CapId(2),
    vic: CapId(3),
    addrspace: CapId(4),
    window: (WINDOW, 1 << 30),
    cpus: 2,
};

/// The host (VMID 3) with 256 MiB of RAM at 1 GiB (extent 0x10), cspace 0x11, VIC 0x12,
/// address space 0x13, free vIRQs 70..96; another VM (0x81) with RAM at 2 GiB.
pub(crate) fn gunyah() -> Gunyah<Fake> {
    let fake = Fake {
        window: vec![0; 0x10_0000],
        ..Fake::default()
    };
    let mut g = Gunyah::new(fake, RM, (40..48).collect());
    g.add_vm(
        HOST,
        KnownVm {
            name: String::from("host"),
            addrspace: CapId(0x13),
            cspace: CapId(0x11),
            vic: CapId(0x12),
            ram: Some(Region {
                ipa: RAM,
                size: 0x1000_0000,
                extent: CapId(0x10),
            }),
            virqs: (70, 96),
        },
    );
    g.add_vm(
        OTHER,
        KnownVm {
            name: String::from("other"),
            addrspace: CapId(0x23),
            cspace: CapId(0x21),
            vic: CapId(0x22),
            ram: Some(Region {
                ipa: 0x8000_0000,
                size: 0x1000_0000,
                extent: CapId(0x20),
            }),
            virqs: (70, 96),
        },
    );
    g
}

fn create_req<'a>(acl: &'a [AclEntry], sgl: &'a [SglEntry], flags: u8) -> MemCreateRequest<'a> {
    MemCreateRequest {
        mem_type: MemType::Normal as u8,
        flags,
        label: 0x1abe1,
        acl: List::from_slice(acl),
        sgl: List::from_slice(sgl),
        attrs: List::empty(),
    }
}

fn accept_req(handle: u32, trans: TransType, sgl: &[SglEntry]) -> MemAcceptRequest<'_> {
    MemAcceptRequest {
        handle,
        mem_type: MemType::Normal as u8,
        trans_type: trans as u8,
        flags: 0,
        label: 0,
        acl: List::empty(),
        sgl: List::from_slice(sgl),
        map_vmid: VmId(0),
        attrs: List::empty(),
    }
}

/// The owner's DTB: two CPUs, bootargs, an initrd (written with the same writer).
fn owner_dtb() -> Vec<u8> {
    owner_dtb_with(None)
}

/// [`owner_dtb`] with `/gunyah-vm-config/vcpus` `affinity = <affinity>` if given.
fn owner_dtb_with(affinity: Option<&str>) -> Vec<u8> {
    use guestdt::layout;

    guestdt::write(&guestdt::GuestDt {
        model: "owner's idea",
        memory: (IMAGE_IPA, IMAGE_SIZE),
        vcpu_mpidrs: &[0, 1],
        gic_dist: (layout::GICD_BASE, layout::GICD_SIZE),
        gic_redist: (layout::GICR_BASE, layout::gicr_size(2)),
        gic_maintenance_ppi: None,
        timer_ppis: layout::TIMER_PPIS,
        uart: (layout::UART_BASE, layout::UART_SIZE, layout::UART_SPI),
        bootargs: "console=hvc0 quiet",
        initrd: Some((0x4100_0000, 0x4120_0000)),
        psci_method: "hvc",
        rng_seed: None,
        extra: Some(&|w| {
            let Some(a) = affinity else {
                return Ok(());
            };
            let cfg = w.begin_node("gunyah-vm-config")?;
            w.property_string("image-name", "vm")?;
            let vcpus = w.begin_node("vcpus")?;
            w.property_string("affinity", a)?;
            w.end_node(vcpus)?;
            w.end_node(cfg)
        }),
    })
    .unwrap()
}

const IMAGE_IPA: u64 = RAM + 0x100_0000;
const IMAGE_SIZE: u64 = 0x400_0000;
const DTB_OFFSET: u64 = 0x20_0800;

/// The host lends 64 MiB at 1 GiB + 16 MiB to VM 0x80 and configures it as its image, DTB
/// at 2 MiB + 2 KiB into the parcel.
pub(crate) fn lend_image(g: &mut Gunyah<Fake>) -> u32 {
    let acl = [AclEntry {
        vmid: GUEST,
        rights: MEM_RIGHTS_RWX,
    }];
    let sgl = [SglEntry {
        ipa: IMAGE_IPA,
        size: IMAGE_SIZE,
    }];
    let h = g
        .mem_create(HOST, TransType::Lend, &create_req(&acl, &sgl, 0))
        .unwrap();
    let req = VmConfigImageRequest {
        vmid: GUEST,
        auth_mech: 0,
        mem_handle: h,
        image_offset: 0,
        image_size: 0x20_0000,
        dtb_offset: DTB_OFFSET,
        dtb_size: 0x1_0000,
    };
    g.vm_config_image(HOST, GUEST, &req).unwrap();
    // What the RM will see in its window once it maps the DTB's pages there.
    let dtb = owner_dtb();
    g.calls_mut().window[0x800..0x800 + dtb.len()].copy_from_slice(&dtb);
    h
}

// ----- Memparcel bookkeeping -----

#[test]
fn parcel_acl_and_range_checks() {
    let rwx = MEM_RIGHTS_RWX;
    let lend = TransType::Lend;
    assert_eq!(
        Parcels::check_acl(HOST, lend, &[]),
        Err(RmError::ArgumentInvalid)
    );
    assert_eq!(
        Parcels::check_acl(HOST, lend, &[(HOST, rwx)]),
        Err(RmError::ArgumentInvalid)
    );
    assert_eq!(
        Parcels::check_acl(HOST, TransType::Share, &[(HOST, rwx), (GUEST, 4)]),
        Ok(())
    );
    assert_eq!(
        Parcels::check_acl(HOST, lend, &[(GUEST, rwx), (GUEST, rwx)]),
        Err(RmError::ArgumentInvalid)
    );
    assert_eq!(
        Parcels::check_acl(HOST, lend, &[(GUEST, 8)]),
        Err(RmError::ArgumentInvalid)
    );
    assert_eq!(
        Parcels::check_acl(HOST, TransType::Donate, &[(GUEST, rwx), (OTHER, rwx)]),
        Err(RmError::ArgumentInvalid)
    );

    let mut p = Parcels::new();
    let h = p
        .create(
            HOST,
            lend,
            MemType::Normal,
            7,
            false,
            true,
            &[(GUEST, rwx)],
            &[],
        )
        .unwrap();
    let r = Range {
        ipa: 0x1000,
        size: 0x2000,
        extent: CapId(9),
    };
    p.add_ranges(h, &[r]).unwrap();
    assert_eq!(
        p.check_ranges(HOST, &[(0x2000, 0x1000)]),
        Err(RmError::MemInUse)
    );
    assert_eq!(p.check_ranges(OTHER, &[(0x2000, 0x1000)]), Ok(()));
    assert_eq!(
        p.check_ranges(HOST, &[(0x8000, 0x1000), (0x8000, 0x1000)]),
        Err(RmError::MemInUse)
    );
    assert_eq!(
        p.check_ranges(HOST, &[(0x8001, 0x1000)]),
        Err(RmError::ArgumentInvalid)
    );
    assert_eq!(p.get(h).unwrap().locate(0x1800), Some((0, 0x1800)));
    assert_eq!(p.get(h).unwrap().locate(0x2000), None);

    // Accept, release, reclaim.
    let normal = MemType::Normal;
    assert_eq!(
        p.check_accept(h, OTHER, lend, normal, None).err(),
        Some(RmError::Denied)
    );
    assert_eq!(
        p.check_accept(h, GUEST, TransType::Share, normal, None)
            .err(),
        Some(RmError::ArgumentInvalid)
    );
    assert_eq!(
        p.check_accept(h, GUEST, lend, normal, Some(8)).err(),
        Some(RmError::ValidateFailed)
    );
    assert!(p.check_accept(h, GUEST, lend, normal, Some(7)).is_ok());
    assert_eq!(p.check_release(h, GUEST).err(), Some(RmError::MemReleased));
    p.set_accepted(h, GUEST, vec![0x5000]).unwrap();
    assert_eq!(
        p.check_accept(h, GUEST, lend, normal, None).err(),
        Some(RmError::MemInUse)
    );
    assert_eq!(p.check_reclaim(h, HOST).err(), Some(RmError::MemInUse));
    assert_eq!(p.check_reclaim(h, GUEST).err(), Some(RmError::Denied));
    assert_eq!(p.accepted_by(GUEST), vec![h]);
    assert_eq!(p.lent_to(GUEST), vec![h]);
    assert_eq!(p.owned_by(HOST), vec![h]);
    assert_eq!(p.check_release(h, GUEST).ok(), Some(&[0x5000u64][..]));
    p.set_released(h, GUEST).unwrap();
    assert!(p.check_reclaim(h, HOST).is_ok());
    assert!(p.remove(h).is_some());
    assert_eq!(p.get(h).err(), Some(RmError::HandleInvalid));

    // APPEND: not acceptable until the last range came.
    let h2 = p
        .create(
            HOST,
            lend,
            MemType::Normal,
            0,
            false,
            false,
            &[(GUEST, rwx)],
            &[],
        )
        .unwrap();
    assert_ne!(h2, h);
    p.add_ranges(h2, &[r]).unwrap();
    assert_eq!(
        p.check_accept(h2, GUEST, lend, normal, None).err(),
        Some(RmError::MemInvalid)
    );
    assert_eq!(p.check_append(h2, GUEST).err(), Some(RmError::Denied));
    assert!(p.check_append(h2, HOST).is_ok());
    p.complete(h2).unwrap();
    assert_eq!(
        p.check_append(h2, HOST).err(),
        Some(RmError::ArgumentInvalid)
    );
    assert!(p.check_accept(h2, GUEST, lend, normal, None).is_ok());
}

#[test]
fn lend_accept_release_reclaim_between_vms() {
    let mut g = gunyah();
    let acl = [AclEntry {
        vmid: OTHER,
        rights: MEM_RIGHTS_RW,
    }];
    let sgl = [SglEntry {
        ipa: RAM + 0x20_0000,
        size: 0x10_0000,
    }];
    // Memory the owner does not have.
    let bad = [SglEntry {
        ipa: 0x1000,
        size: 0x1000,
    }];
    assert_eq!(
        g.mem_create(HOST, TransType::Lend, &create_req(&acl, &bad, 0)),
        Err(RmError::MemInvalid)
    );
    assert!(g.calls().log.is_empty(), "checked before any call");

    g.calls_mut().log.clear();
    let h = g
        .mem_create(HOST, TransType::Lend, &create_req(&acl, &sgl, 0))
        .unwrap();
    assert_eq!(
        g.calls().log,
        [
            "create(Memextent, 0x1, 0x2)",
            "memextent_derive(0x101, 0x10, 0x200000, 0x100000, 775)",
            "activate(0x101)",
            "addrspace_unmap(0x13, 0x101, 0x40200000, 0x100000)",
        ]
    );
    // The same pages again: in use.
    assert_eq!(
        g.mem_create(HOST, TransType::Share, &create_req(&acl, &sgl, 0)),
        Err(RmError::MemInUse)
    );
    // Accepted by the borrower at a base of its choosing.
    g.calls_mut().log.clear();
    let at = [SglEntry {
        ipa: 0x9000_0000,
        size: 0x10_0000,
    }];
    assert_eq!(
        g.mem_accept(HOST, &accept_req(h, TransType::Lend, &[])),
        Err(RmError::Denied)
    );
    let reply = g
        .mem_accept(OTHER, &accept_req(h, TransType::Lend, &at))
        .unwrap();
    let r = MemAcceptReply::decode(&reply).unwrap();
    assert_eq!(r.sgl.iter().collect::<Vec<_>>(), at);
    assert_eq!(
        g.calls().log,
        ["addrspace_map(0x23, 0x101, 0x90000000, 0xf0066, 0x100000)"]
    );
    let release = MemReleaseRequest {
        handle: h,
        flags: 0,
    };
    assert_eq!(g.mem_release(HOST, &release, true), Err(RmError::MemInUse));
    g.calls_mut().log.clear();
    g.mem_release(OTHER, &release, false).unwrap();
    assert_eq!(
        g.calls().log,
        ["addrspace_unmap(0x23, 0x101, 0x90000000, 0x100000)"]
    );
    assert_eq!(
        g.mem_release(OTHER, &release, false),
        Err(RmError::MemReleased)
    );
    g.calls_mut().log.clear();
    let sanitize = MemReleaseRequest {
        handle: h,
        flags: 1,
    };
    g.mem_release(HOST, &sanitize, true).unwrap();
    assert_eq!(
        g.calls().log,
        [
            "memextent_modify(0x101, Zero, 0x100000)",
            "cspace_delete(0x2, 0x101)",
        ]
    );
    assert_eq!(
        g.mem_release(HOST, &release, true),
        Err(RmError::HandleInvalid)
    );
}

#[test]
fn share_keeps_the_owner_mapping_and_notifies() {
    let mut g = gunyah();
    let acl = [
        AclEntry {
            vmid: HOST,
            rights: MEM_RIGHTS_RWX,
        },
        AclEntry {
            vmid: OTHER,
            rights: MEM_RIGHTS_R,
        },
    ];
    let sgl = [SglEntry {
        ipa: RAM,
        size: 0x1000,
    }];
    let h = g
        .mem_create(HOST, TransType::Share, &create_req(&acl, &sgl, 0))
        .unwrap();
    assert_eq!(g.calls().count("addrspace_unmap"), 0);
    let vmids = [VmidEntry { vmid: OTHER }];
    let req = MemNotifyRequest {
        handle: h,
        flags: MEM_NOTIFY_FLAG_SHARED,
        mem_info_tag: 5,
        vmids: List::from_slice(&vmids),
    };
    assert_eq!(g.mem_notify(OTHER, &req), Err(RmError::Denied));
    let notes = g.mem_notify(HOST, &req).unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].target, OTHER);
    assert_eq!(notes[0].id, ids::NOTIFY_MEM_SHARED);
    // Read-only for the borrower: access 4 user and kernel.
    g.mem_accept(OTHER, &accept_req(h, TransType::Share, &[]))
        .unwrap();
    assert_eq!(
        g.calls().log.last().map(String::as_str),
        Some("addrspace_map(0x23, 0x101, 0x40000000, 0xf0044, 0x1000)")
    );
    let accepted = MemNotifyRequest {
        handle: h,
        flags: 4,
        mem_info_tag: 5,
        vmids: List::empty(),
    };
    let notes = g.mem_notify(OTHER, &accepted).unwrap();
    assert_eq!(
        (notes[0].target, notes[0].id),
        (HOST, ids::NOTIFY_MEM_ACCEPTED)
    );
}

#[test]
fn donation_moves_the_memory_to_the_recipient() {
    let mut g = gunyah();
    let acl = [AclEntry {
        vmid: OTHER,
        rights: MEM_RIGHTS_RWX,
    }];
    let sgl = [SglEntry {
        ipa: RAM + 0x4000,
        size: 0x2000,
    }];
    let h = g
        .mem_create(HOST, TransType::Donate, &create_req(&acl, &sgl, 0))
        .unwrap();
    g.mem_accept(OTHER, &accept_req(h, TransType::Donate, &[]))
        .unwrap();
    assert!(g.parcels().get(h).is_err(), "the parcel is gone");
    // The recipient may lend it on: its new region is an extent the RM derives from.
    g.calls_mut().log.clear();
    let acl2 = [AclEntry {
        vmid: HOST,
        rights: MEM_RIGHTS_RW,
    }];
    g.mem_create(OTHER, TransType::Lend, &create_req(&acl2, &sgl, 0))
        .unwrap();
    assert_eq!(
        g.calls().log[1],
        "memextent_derive(0x102, 0x101, 0x0, 0x2000, 775)"
    );
}

// ----- VM creation -----

/// The exact hypercalls of VM_INIT for a 2-vCPU VM lent 64 MiB of the host's RAM.
#[test]
fn vm_creation_sequence() {
    let mut g = gunyah();
    let h = lend_image(&mut g);
    g.calls_mut().log.clear();
    let resources = g.vm_create(GUEST, HOST).unwrap();
    let expected = [
        // The owner's DTB pages, into the RM's window.
        "create(Memextent, 0x1, 0x2)",
        "memextent_derive(0x102, 0x101, 0x200000, 0x11000, 774)",
        "activate(0x102)",
        "addrspace_map(0x4, 0x102, 0x6000000000, 0xf0066, 0x11000)",
        // cspace, address space, VIC.
        "create(Cspace, 0x1, 0x2)",
        "cspace_configure(0x103, 64)",
        "activate(0x103)",
        "create(Addrspace, 0x1, 0x2)",
        "addrspace_configure(0x104, 0x80)",
        "activate(0x104)",
        "create(Vic, 0x1, 0x2)",
        "vic_configure(0x105, 2, 64)",
        "activate(0x105)",
        // Two vCPUs (the owner's /cpus).
        "create(Thread, 0x1, 0x2)",
        "vcpu_configure(0x106, 0)",
        "vcpu_set_affinity(0x106, 0)",
        "cspace_attach_thread(0x103, 0x106)",
        "addrspace_attach_thread(0x104, 0x106)",
        "vic_attach_vcpu(0x105, 0x106, 0)",
        "activate(0x106)",
        "create(Thread, 0x1, 0x2)",
        "vcpu_configure(0x107, 0)",
        "vcpu_set_affinity(0x107, 1)",
        "cspace_attach_thread(0x103, 0x107)",
        "addrspace_attach_thread(0x104, 0x107)",
        "vic_attach_vcpu(0x105, 0x107, 1)",
        "activate(0x107)",
        // vCPU 0's HALT to the RM.
        "vcpu_bind_virq(0x106, 0x3, 40, 0)",
        // RM link.
        "create(Msgqueue, 0x1, 0x2)",
        "msgqueue_configure(0x108, 8, 240)",
        "activate(0x108)",
        "create(Msgqueue, 0x1, 0x2)",
        "msgqueue_configure(0x109, 8, 240)",
        "activate(0x109)",
        "msgqueue_bind_send(0x108, 0x105, 64)",
        "msgqueue_bind_receive(0x108, 0x3, 41)",
        "msgqueue_bind_send(0x109, 0x3, 42)",
        "msgqueue_bind_receive(0x109, 0x105, 65)",
        "cspace_copy(0x2, 0x108, 0x103, 0x5)",
        "cspace_copy(0x2, 0x109, 0x103, 0xa)",
        // Owner link.
        "create(Msgqueue, 0x1, 0x2)",
        "msgqueue_configure(0x10c, 8, 240)",
        "activate(0x10c)",
        "create(Msgqueue, 0x1, 0x2)",
        "msgqueue_configure(0x10d, 8, 240)",
        "activate(0x10d)",
        "msgqueue_bind_send(0x10c, 0x105, 66)",
        "msgqueue_bind_receive(0x10c, 0x12, 70)",
        "msgqueue_bind_send(0x10d, 0x12, 71)",
        "msgqueue_bind_receive(0x10d, 0x105, 67)",
        "cspace_copy(0x2, 0x10c, 0x103, 0x5)",
        "cspace_copy(0x2, 0x10d, 0x103, 0xa)",
        "cspace_copy(0x2, 0x10d, 0x11, 0x5)",
        "cspace_copy(0x2, 0x10c, 0x11, 0xa)",
        "cspace_copy(0x2, 0x106, 0x11, 0x72)",
        "cspace_copy(0x2, 0x107, 0x11, 0x72)",
        // The device tree written, cleaned, the window emptied.
        "memextent_modify(0x102, Clean, 0x11000)",
        "addrspace_unmap(0x4, 0x102, 0x6000000000, 0x11000)",
        "cspace_delete(0x2, 0x102)",
        // The image parcel, into the VM at the owner's IPA.
        "memextent_modify(0x101, Clean, 0x4000000)",
        "addrspace_map(0x104, 0x101, 0x41000000, 0xf0077, 0x4000000)",
    ];
    assert_eq!(g.calls().log, expected);

    // What the owner and the VM are told.
    let for_owner: Vec<_> = resources.iter().filter(|r| r.holder == HOST).collect();
    let kinds: Vec<_> = for_owner.iter().map(|r| r.entry.resource_type).collect();
    assert_eq!(
        kinds,
        [
            ResourceType::VirtualCpu,
            ResourceType::VirtualCpu,
            ResourceType::MsgQueueSend,
            ResourceType::MsgQueueRecv
        ]
    );
    assert!(for_owner.iter().all(|r| r.entry.partner_vmid == GUEST));
    assert_eq!(
        (for_owner[2].entry.cap_id, for_owner[2].entry.virq),
        (0x110, 71)
    );
    assert_eq!(
        (for_owner[3].entry.cap_id, for_owner[3].entry.virq),
        (0x111, 70)
    );
    assert_eq!(resources.iter().filter(|r| r.holder == GUEST).count(), 2);
    assert_eq!(
        g.take_events(),
        [
            Event::Link {
                vmid: GUEST,
                tx: CapId(0x109),
                rx: CapId(0x108),
                tx_virq: 42,
                rx_virq: 41
            },
            Event::Watch {
                vmid: GUEST,
                vcpu: CapId(0x106),
                virq: 40
            },
        ]
    );

    // The device tree in the parcel: the owner's bootargs and initrd, two CPUs, the RAM, the
    // RM link and the owner link.
    let window = &g.calls().window;
    let dt = Fdt::new(&window[0x800..]).unwrap();
    let chosen = dt.find_node("/chosen").unwrap();
    assert_eq!(chosen.prop_str("bootargs"), Some("console=hvc0 quiet"));
    assert_eq!(chosen.prop_u64("linux,initrd-start"), Some(0x4100_0000));
    assert_eq!(dt.find_node("/cpus").unwrap().children().count(), 2);
    let mem = dt.find_node("/memory@41000000").unwrap();
    assert_eq!(mem.prop_cells("reg", 1, 2), Some(IMAGE_SIZE));
    let rm = wurley_rt::hypdt::resource_manager(&dt).unwrap();
    assert_eq!((rm.tx.0, rm.rx.0), (0x10a, 0x10b));
    let owner = wurley_rt::hypdt::msgqueue_pair(&dt, "owner").unwrap();
    assert_eq!((owner.tx.0, owner.rx.0), (0x10e, 0x10f));
    assert_eq!(owner.tx_irq.map(|i| i.intid), Some(66));

    // The parcel counts as accepted by the VM.
    assert_eq!(g.parcels().accepted_by(GUEST), vec![h]);

    // VM_SET_BOOT_CONTEXT and VM_START.
    g.calls_mut().log.clear();
    g.vm_set_boot_context(GUEST, BootRegSet::X, 0, 0x4300_0000)
        .unwrap();
    g.vm_power_on(GUEST).unwrap();
    assert_eq!(
        g.calls().log,
        [
            "vcpu_register_write(0x106, 0, 0, 0x43000000)",
            "vcpu_poweron(0x106, 0x41000000, 0x41200800, 2)",
        ]
    );
}

/// VM_STOP, MEM_RECLAIM, VM_RESET, VM_DEALLOCATE: every cap deleted, the pages back with the
/// owner, the vIRQs free again.
#[test]
fn vm_stop_reclaim_reset() {
    let mut g = gunyah();
    let h = lend_image(&mut g);
    g.vm_create(GUEST, HOST).unwrap();
    g.take_events();
    // The owner cannot take the memory back while the VM runs.
    let reclaim = MemReleaseRequest {
        handle: h,
        flags: 0,
    };
    assert_eq!(g.mem_release(HOST, &reclaim, true), Err(RmError::MemInUse));
    g.calls_mut().log.clear();
    g.vm_kill(GUEST).unwrap();
    assert_eq!(
        g.calls().log,
        [
            "vcpu_kill(0x106)",
            "vcpu_kill(0x107)",
            "addrspace_unmap(0x104, 0x101, 0x41000000, 0x4000000)",
        ]
    );
    g.calls_mut().log.clear();
    g.mem_release(HOST, &reclaim, true).unwrap();
    assert_eq!(g.calls().log, ["cspace_delete(0x2, 0x101)"]);

    g.calls_mut().log.clear();
    g.vm_destroy(GUEST).unwrap();
    // The RM's HALT vIRQ is unbound first, then every cap goes.
    let log = &g.calls().log[1..];
    assert_eq!(g.calls().log[0], "vcpu_unbind_virq(0x106, 0)");
    assert!(
        log.iter().all(|l| l.starts_with("cspace_delete(")),
        "{log:?}"
    );
    // 8 copies (4 in the owner's cspace, 4 in the VM's), then 9 master caps (4 queues, 2
    // vCPUs, VIC, addrspace, cspace; the window extent was deleted at init): newest first.
    assert_eq!(log.len(), 8 + 9);
    assert_eq!(log[0], "cspace_delete(0x11, 0x113)");
    assert_eq!(
        log.last().map(String::as_str),
        Some("cspace_delete(0x2, 0x103)")
    );
    assert_eq!(
        g.take_events(),
        [
            Event::Unwatch {
                vmid: GUEST,
                virq: 40
            },
            Event::Unlink {
                vmid: GUEST,
                virqs: [42, 41]
            },
        ]
    );
    // The vIRQs are free again: the next VM gets the same ones.
    g.vm_deallocate(GUEST);
    g.calls_mut().log.clear();
    let _ = lend_image(&mut g);
    g.vm_create(GUEST, HOST).unwrap();
    let bound = |l: &String| l.starts_with("vcpu_bind_virq(") && l.ends_with(", 0x3, 40, 0)");
    assert!(g.calls().log.iter().any(bound));
    assert!(g.calls().log.iter().any(|l| l.ends_with(", 0x12, 70)")));
}

/// A VM reset without MEM_RECLAIM first gives the lent image back by itself.
#[test]
fn reset_returns_lent_memory() {
    let mut g = gunyah();
    let h = lend_image(&mut g);
    g.vm_create(GUEST, HOST).unwrap();
    g.calls_mut().log.clear();
    g.vm_destroy(GUEST).unwrap();
    let log = &g.calls().log;
    assert_eq!(
        log[0],
        "addrspace_unmap(0x104, 0x101, 0x41000000, 0x4000000)"
    );
    assert_eq!(log[1], "cspace_delete(0x2, 0x101)");
    assert!(g.parcels().get(h).is_err());
}

/// A failure half-way through VM_INIT deletes everything it made, in reverse.
#[test]
fn failed_creation_is_undone() {
    for fail in [
        "create(Vic",
        "vic_attach_vcpu(0x105, 0x107",
        "msgqueue_bind_receive(0x10c",
        "cspace_copy(0x2, 0x107",
        "addrspace_map(0x104",
    ] {
        let mut g = gunyah();
        let h = lend_image(&mut g);
        g.calls_mut().log.clear();
        g.calls_mut().fail = Some((String::from(fail), Error::Nomem));
        assert_eq!(g.vm_create(GUEST, HOST), Err(RmError::NoMem), "{fail}");
        let calls = g.calls();
        // The failed call made nothing.
        let failed = usize::from(fail.starts_with("create(") || fail.starts_with("cspace_copy("));
        let created = calls.count("create(") + calls.count("cspace_copy(") - failed;
        assert_eq!(
            calls.count("cspace_delete("),
            created,
            "{fail}: {:?}",
            calls.log
        );
        let maps = calls.count("addrspace_map(") - usize::from(fail.starts_with("addrspace_map("));
        assert_eq!(
            calls.count("addrspace_unmap("),
            maps,
            "{fail}: {:?}",
            calls.log
        );
        assert!(g.take_events().is_empty());
        assert!(g.parcels().accepted_by(GUEST).is_empty());
        // And it can be tried again, with the same vIRQs.
        g.calls_mut().log.clear();
        g.vm_create(GUEST, HOST).unwrap();
        let bound = |l: &String| l.starts_with("vcpu_bind_virq(") && l.ends_with(", 0x3, 40, 0)");
        assert!(g.calls().log.iter().any(bound));
        assert_eq!(g.parcels().accepted_by(GUEST), vec![h]);
    }
}

#[test]
fn creation_needs_a_configured_image() {
    let mut g = gunyah();
    assert_eq!(g.vm_init_check(GUEST, HOST), Err(RmError::ArgumentInvalid));
    assert_eq!(g.vm_create(GUEST, HOST), Err(RmError::ArgumentInvalid));
    let h = lend_image(&mut g);
    assert_eq!(g.vm_init_check(GUEST, HOST), Ok(()));
    assert_eq!(g.vm_init_check(GUEST, OTHER), Err(RmError::ArgumentInvalid));
    // Another owner's parcel, or a DTB outside it.
    let bad = VmConfigImageRequest {
        vmid: GUEST,
        auth_mech: 0,
        mem_handle: h,
        image_offset: 0,
        image_size: 0,
        dtb_offset: IMAGE_SIZE - 0x100,
        dtb_size: 0x1000,
    };
    assert_eq!(g.vm_config_image(OTHER, GUEST, &bad), Err(RmError::Denied));
    assert_eq!(
        g.vm_config_image(HOST, GUEST, &bad),
        Err(RmError::ArgumentInvalid)
    );
    assert_eq!(
        g.vm_config_image(HOST, OTHER, &bad),
        Err(RmError::ArgumentInvalid)
    );
    // A VM the RM did not create is not killed by it.
    assert_eq!(g.vm_kill(OTHER), Err(RmError::Unimplemented));
    assert_eq!(g.vm_destroy(OTHER), Ok(()));
    assert!(g.calls().names().iter().all(|n| *n != "vcpu_kill"));
}

// ----- Demand paging -----

/// The demand-paged range of the tests: the 64 MiB of the host's RAM right after the image.
pub(crate) const DEMAND_IPA: u64 = IMAGE_IPA + IMAGE_SIZE;
pub(crate) const DEMAND_SIZE: u64 = 0x400_0000;

fn sgl(ranges: &[(u64, u64)]) -> Vec<SglEntry> {
    ranges
        .iter()
        .map(|&(ipa, size)| SglEntry { ipa, size })
        .collect()
}

#[test]
fn demand_paging_ranges_are_checked() {
    let mut g = gunyah();
    let page = 0x1000;
    for (ranges, e) in [
        // Unaligned, empty, wrapping.
        (vec![(DEMAND_IPA + 1, page)], RmError::ArgumentInvalid),
        (vec![(DEMAND_IPA, 0x800)], RmError::ArgumentInvalid),
        (vec![(DEMAND_IPA, 0)], RmError::ArgumentInvalid),
        (vec![(!0xfff, 2 * page)], RmError::ArgumentInvalid),
        // Overlapping.
        (
            vec![(DEMAND_IPA + page, page), (DEMAND_IPA, 2 * page)],
            RmError::ArgumentInvalid,
        ),
        // Too many.
        (
            (0..5).map(|i| (DEMAND_IPA + i * page, page)).collect(),
            RmError::ArgumentInvalid,
        ),
        // Not the owner's RAM: beyond its end, another VM's.
        (
            vec![(RAM + 0x1000_0000 - page, 2 * page)],
            RmError::MemInvalid,
        ),
        (vec![(0x8000_0000, page)], RmError::MemInvalid),
    ] {
        assert_eq!(
            g.vm_set_demand_paging(HOST, GUEST, &sgl(&ranges)),
            Err(e),
            "{ranges:x?}"
        );
    }
    let four: Vec<_> = (0..4).map(|i| (DEMAND_IPA + 2 * i * page, page)).collect();
    assert_eq!(g.vm_set_demand_paging(HOST, GUEST, &sgl(&four)), Ok(()));
    // The other VM's RAM is its own to page.
    assert_eq!(
        g.vm_set_demand_paging(OTHER, GUEST, &sgl(&[(0x8000_0000, page)])),
        Ok(())
    );
    // An empty list is no demand paging.
    assert_eq!(g.vm_set_demand_paging(HOST, GUEST, &[]), Ok(()));
    assert!(g.calls().log.is_empty());
}

/// VM_INIT of a demand-paged VM: the owner gets the address space (type 10) and, per range,
/// the guest-private and host-private extents (type 9); the VM's RAM in its device tree
/// covers the parcel and the range; VM_RESET deletes it all.
#[test]
fn demand_paged_vm_creation_and_reset() {
    let mut g = gunyah();
    let _ = lend_image(&mut g);
    g.vm_set_demand_paging(HOST, GUEST, &sgl(&[(DEMAND_IPA, DEMAND_SIZE)]))
        .unwrap();
    g.calls_mut().log.clear();
    let resources = g.vm_create(GUEST, HOST).unwrap();
    let log = &g.calls().log;
    let from = log
        .iter()
        .position(|l| l == "cspace_copy(0x2, 0x107, 0x11, 0x72)")
        .unwrap();
    assert_eq!(
        log[from + 1..from + 12],
        [
            // The owner's cap to the VM's address space: MAP, LOOKUP.
            "cspace_copy(0x2, 0x104, 0x11, 0x6)",
            // guest: the owner's pages at the range.
            "create(Memextent, 0x1, 0x2)",
            "memextent_derive(0x115, 0x10, 0x5000000, 0x4000000, 775)",
            "activate(0x115)",
            // host: all of guest's pages, mapped in the owner.
            "create(Memextent, 0x1, 0x2)",
            "memextent_derive(0x116, 0x115, 0x0, 0x4000000, 775)",
            "activate(0x116)",
            // guest leaves the owner and goes into the VM, empty.
            "addrspace_unmap(0x13, 0x115, 0x45000000, 0x4000000)",
            "addrspace_map(0x104, 0x115, 0x45000000, 0xf0077, 0x4000000)",
            // The owner's caps to both: DONATE.
            "cspace_copy(0x2, 0x115, 0x11, 0x10)",
            "cspace_copy(0x2, 0x116, 0x11, 0x10)",
        ]
    );
    assert_eq!(log[from + 12], "memextent_modify(0x102, Clean, 0x11000)");

    let entries: Vec<_> = resources
        .iter()
        .filter(|r| r.holder == HOST)
        .map(|r| r.entry)
        .filter(|e| e.resource_type as u8 >= 9)
        .map(|e| {
            (
                e.resource_type,
                e.label,
                e.cap_id,
                e.partner_vmid,
                e.base,
                e.size,
            )
        })
        .collect();
    use ResourceType::{AddrSpace, MemExtent};
    assert_eq!(
        entries,
        [
            (AddrSpace, 0, 0x114, GUEST, 0, 0),
            (MemExtent, 0, 0x117, GUEST, DEMAND_IPA, DEMAND_SIZE),
            (MemExtent, 2, 0x118, GUEST, DEMAND_IPA, DEMAND_SIZE),
        ]
    );
    assert!(
        resources
            .iter()
            .filter(|r| r.holder == GUEST)
            .all(|r| (r.entry.resource_type as u8) < 9)
    );
    // The VM's RAM: the parcel and the range.
    let dt = Fdt::new(&g.calls().window[0x800..]).unwrap();
    let mem = dt.find_node("/memory@41000000").unwrap();
    assert_eq!(mem.prop_cells("reg", 1, 2), Some(IMAGE_SIZE + DEMAND_SIZE));

    // VM_RESET: the extent leaves the VM, the owner's copies go, then the extents (host
    // first: its pages go back to guest, then guest's to the owner's RAM extent).
    g.calls_mut().log.clear();
    g.vm_destroy(GUEST).unwrap();
    let log = &g.calls().log;
    let at = |call: &str| log.iter().position(|l| l == call).unwrap();
    let unmap = at("addrspace_unmap(0x104, 0x115, 0x45000000, 0x4000000)");
    let copies = [
        at("cspace_delete(0x11, 0x114)"),
        at("cspace_delete(0x11, 0x117)"),
        at("cspace_delete(0x11, 0x118)"),
    ];
    let host = at("cspace_delete(0x2, 0x116)");
    let guest = at("cspace_delete(0x2, 0x115)");
    let asp = at("cspace_delete(0x2, 0x104)");
    assert!(copies.iter().all(|&c| unmap < c && c < host), "{log:?}");
    assert!(host < guest && guest < asp, "{log:?}");
    // A second life gets the same.
    g.vm_deallocate(GUEST);
    let _ = lend_image(&mut g);
    g.vm_set_demand_paging(HOST, GUEST, &sgl(&[(DEMAND_IPA, DEMAND_SIZE)]))
        .unwrap();
    let again = g.vm_create(GUEST, HOST).unwrap();
    assert_eq!(again.len(), resources.len());
}

/// A demand-paged range may not overlap the image in the VM; a failure in the demand-paging
/// step undoes everything, the owner's mapping of the range included.
#[test]
fn demand_paging_failures_at_init() {
    let mut g = gunyah();
    let _ = lend_image(&mut g);
    // The image parcel's IPAs, mapped into the VM where VM_SET_ADDRESS_LAYOUT put them.
    g.vm_set_address_layout(
        GUEST,
        wurley_abi::rm::vm::AddressRangeId::Image,
        DEMAND_IPA,
        0,
    )
    .unwrap();
    g.vm_set_demand_paging(HOST, GUEST, &sgl(&[(DEMAND_IPA, DEMAND_SIZE)]))
        .unwrap();
    g.calls_mut().log.clear();
    assert_eq!(g.vm_create(GUEST, HOST), Err(RmError::ArgumentInvalid));
    let calls = g.calls();
    assert_eq!(calls.count("create("), calls.count("cspace_delete(0x2, "));

    for fail in [
        "activate(0x116)",
        "addrspace_map(0x104, 0x115",
        "cspace_copy(0x2, 0x116",
    ] {
        let mut g = gunyah();
        let _ = lend_image(&mut g);
        g.vm_set_demand_paging(HOST, GUEST, &sgl(&[(DEMAND_IPA, DEMAND_SIZE)]))
            .unwrap();
        g.calls_mut().log.clear();
        g.calls_mut().fail = Some((String::from(fail), Error::MemdbNotOwner));
        assert_eq!(g.vm_create(GUEST, HOST), Err(RmError::MemInvalid), "{fail}");
        let calls = g.calls();
        let failed = usize::from(fail.starts_with("cspace_copy("));
        let created = calls.count("create(") + calls.count("cspace_copy(") - failed;
        assert_eq!(calls.count("cspace_delete("), created, "{fail}");
        // Both extents deleted, host before guest.
        let log = &calls.log;
        let del = |c: &str| log.iter().position(|l| l == c);
        if fail != "activate(0x116)" {
            assert!(del("cspace_delete(0x2, 0x116)") < del("cspace_delete(0x2, 0x115)"));
        }
        assert!(
            del("cspace_delete(0x2, 0x115)").is_some(),
            "{fail}: {log:?}"
        );
        assert!(g.take_events().is_empty());
    }
}

// ----- IRQ lending -----

#[test]
fn irq_lend_accept_release_reclaim() {
    let mut g = gunyah();
    g.add_hwirq(HOST, 79, CapId(0x77));
    let lend = IrqLendRequest {
        borrower: OTHER,
        virq: 80,
        label: 9,
    };
    assert_eq!(g.irq_lend(HOST, &lend), Err(RmError::IrqInvalid));
    let h = g
        .irq_lend(HOST, &IrqLendRequest { virq: 79, ..lend })
        .unwrap();
    assert_eq!(
        g.irq_lend(HOST, &IrqLendRequest { virq: 79, ..lend }),
        Err(RmError::IrqInUse)
    );
    let vmids = [VmidEntry { vmid: OTHER }];
    let notes = g
        .irq_notify(
            HOST,
            &IrqNotifyRequest {
                handle: h,
                flags: 1,
                vmids: List::from_slice(&vmids),
            },
        )
        .unwrap();
    assert_eq!(
        (notes[0].target, notes[0].id),
        (OTHER, ids::NOTIFY_VM_IRQ_LENT)
    );
    let any = IrqAcceptRequest {
        handle: h,
        virq: u32::MAX,
    };
    assert_eq!(g.irq_accept(HOST, &any), Err(RmError::Denied));
    assert_eq!(g.irq_accept(OTHER, &any), Ok(70));
    assert_eq!(g.irq_release(HOST, h, true), Err(RmError::IrqInUse));
    g.irq_release(OTHER, h, false).unwrap();
    assert_eq!(g.irq_release(OTHER, h, false), Err(RmError::IrqReleased));
    g.irq_release(HOST, h, true).unwrap();
    assert_eq!(
        g.calls().log,
        [
            "hwirq_unbind(0x77)",
            "hwirq_bind(0x77, 0x22, 70)",
            "hwirq_unbind(0x77)",
            "hwirq_bind(0x77, 0x12, 79)",
        ]
    );
    assert_eq!(g.irq_release(HOST, h, true), Err(RmError::HandleInvalid));
}

// ----- Proxy-scheduled VMs (gunyah-vm-config/vcpus/affinity = "proxy") -----

/// [`lend_image`] with the owner's DTB saying `affinity = <affinity>`.
fn lend_proxy_image(g: &mut Gunyah<Fake>, affinity: &str) -> u32 {
    let h = lend_image(g);
    let dtb = owner_dtb_with(Some(affinity));
    g.calls_mut().window[0x800..0x800 + dtb.len()].copy_from_slice(&dtb);
    h
}

#[test]
fn the_vm_config_says_who_schedules_the_vcpus() {
    use crate::gunyah::DtInput;
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
    let acl = [AclEntry {
        vmid: GUEST,
        rights: MEM_RIGHTS_RWX,
    }];
    let sgl = [SglEntry {
        ipa: IMAGE_IPA,
        size: IMAGE_SIZE,
    }];
    let h = g
        .mem_create(owner, TransType::Lend, &create_req(&acl, &sgl, 0))
        .unwrap();
    let req = VmConfigImageRequest {
        vmid: GUEST,
        auth_mech: 0,
        mem_handle: h,
        image_offset: 0,
        image_size: 0x20_0000,
        dtb_offset: DTB_OFFSET,
        dtb_size: 0x1_0000,
    };
    g.vm_config_image(owner, GUEST, &req).unwrap();
    let dtb = owner_dtb_with(Some("proxy"));
    g.calls_mut().window[0x800..0x800 + dtb.len()].copy_from_slice(&dtb);
    g.calls_mut().log.clear();
    assert_eq!(g.vm_create(GUEST, owner), Err(RmError::ArgumentInvalid));
    assert_eq!(g.calls().count("create(Thread"), 0);
    assert_eq!(
        g.calls().count("cspace_delete("),
        g.calls().count("create(")
    );
}

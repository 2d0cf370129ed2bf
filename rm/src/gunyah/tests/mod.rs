//! Host tests of [`Gunyah`] against a fake hypervisor that records every call, one module
//! per part of it: `memory` (memparcel bookkeeping: lending, sharing, donating, reclaiming),
//! `create` (the VM-creation sequence, start, stop, reset, and that a failure half-way undoes
//! everything), `demand` (demand paging), `irq` (IRQ lending), `proxy` (proxy-scheduled VMs).
//! This module holds the fake and the fixtures they share.

#![allow(clippy::unwrap_used)]

mod create;
mod demand;
mod irq;
mod memory;
mod proxy;

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
    lend_image_from(g, HOST, &owner_dtb())
}

/// [`lend_image`] by `owner`, whose configuration DTB is `dtb`.
pub(crate) fn lend_image_from(g: &mut Gunyah<Fake>, owner: VmId, dtb: &[u8]) -> u32 {
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
    // What the RM will see in its window once it maps the DTB's pages there.
    g.calls_mut().window[0x800..0x800 + dtb.len()].copy_from_slice(dtb);
    h
}

/// The demand-paged range of the tests: the 64 MiB of the host's RAM right after the image.
pub(crate) const DEMAND_IPA: u64 = IMAGE_IPA + IMAGE_SIZE;
pub(crate) const DEMAND_SIZE: u64 = 0x400_0000;

//! VM_CONFIG_IMAGE and VM_INIT: where the image and DTB are in the image parcel, and the VM's
//! making (see docs/rm.md for the sequence): cspace, address space (the VMID), VIC, the vCPUs
//! (from the owner's device tree `/cpus`, 1 if absent, at most [`MAX_VCPUS`]; proxy-scheduled
//! if its `gunyah-vm-config/vcpus/affinity` is "proxy": the owner gets each vCPU's wakeup vIRQ
//! and runs it with `vcpu_run`), vCPU 0's HALT bound to a vIRQ of the RM, a message-queue pair
//! VM<->RM (the VM becomes an RM client) and one VM<->owner, the VM's device tree written over
//! the DTB the owner put in the image parcel, and the parcel mapped into the VM at the IPAs it
//! had in the owner (or at the base VM_SET_ADDRESS_LAYOUT gave). A demand-paged VM's extra
//! step is in `demand`. Any failure undoes what was made.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use guestdt::hypervisor::{self, HypNode, RM_MESSAGE_SIZE, RM_QUEUE_DEPTH};
use guestdt::{GuestDt, layout};
use wurley_abi::rights::{MsgqueueRights, ThreadRights};
use wurley_abi::rm::RmError;
use wurley_abi::rm::memparcel::{MEM_RIGHTS_RW, MEM_RIGHTS_RWX, MemType, TransType};
use wurley_abi::rm::resource::{HypResource, ResourceType};
use wurley_abi::rm::vm::VmConfigImageRequest;
use wurley_abi::{CapId, VmId};
use wurley_rt::fdt::Fdt;

use super::demand::memory_with;
use super::{
    Gunyah, Image, MAX_VCPUS, Made, OWNER_LINK_LABEL, Objects, PROXY_AFFINITY, VM_CSPACE_CAPS,
    VM_OWNER_RX_VIRQ, VM_OWNER_TX_VIRQ, VM_RM_RX_VIRQ, VM_RM_TX_VIRQ, VirqPool, extent_attrs,
    map_attrs, rm_error,
};
use crate::calls::{Hypercalls, Kind, Modify, VCPU_VIRQ_HALT, VCPU_VIRQ_RUN_WAKEUP};
use crate::hyp::Event;
use crate::launch::VCPU_OPTION_RUN_SCHEDULED;
use crate::memparcel::{PAGE, Parcel};
use crate::vms::Resource;

/// The rights a VM's owner gets on the VM's vCPUs (to run them with `vcpu_run`, query them).
const OWNER_VCPU_RIGHTS: ThreadRights = ThreadRights::AFFINITY
    .union(ThreadRights::YIELD_TO)
    .union(ThreadRights::BIND_VIRQ)
    .union(ThreadRights::STATE);
/// Rights on the queue a VM sends on / receives from.
const SEND_RIGHTS: MsgqueueRights = MsgqueueRights::SEND.union(MsgqueueRights::BIND_SEND);
const RECEIVE_RIGHTS: MsgqueueRights = MsgqueueRights::RECEIVE.union(MsgqueueRights::BIND_RECEIVE);

/// What the owner's device tree in the image parcel says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DtInput {
    pub(super) vcpus: u32,
    pub(super) bootargs: String,
    pub(super) initrd: Option<(u64, u64)>,
    /// `gunyah-vm-config/vcpus/affinity = "proxy"`: the owner runs the vCPUs with `vcpu_run`.
    pub(super) proxy: bool,
}

impl DtInput {
    pub(super) fn parse(blob: &[u8]) -> DtInput {
        let mut out = DtInput {
            vcpus: 1,
            bootargs: String::new(),
            initrd: None,
            proxy: false,
        };
        let Ok(fdt) = Fdt::new(blob) else {
            return out;
        };
        if let Some(cpus) = fdt.find_node("/cpus") {
            let n = cpus
                .children()
                .filter(|c| c.name().starts_with("cpu@") || c.name() == "cpu")
                .count() as u32;
            out.vcpus = n.clamp(1, MAX_VCPUS);
        }
        if let Some(chosen) = fdt.find_node("/chosen") {
            out.bootargs = String::from(chosen.prop_str("bootargs").unwrap_or(""));
            let start = chosen.prop_u64("linux,initrd-start");
            let end = chosen.prop_u64("linux,initrd-end");
            if let (Some(s), Some(e)) = (start, end)
                && e >= s
            {
                out.initrd = Some((s, e));
            }
        }
        // Linux's VM configuration (`gunyah-vm-config`, a child of the root): `vcpus`
        // `affinity` is "proxy" when the host runs the vCPUs itself; any other value (Gunyah's
        // "static", "sticky") or none leaves them to the hypervisor's scheduler.
        out.proxy = fdt
            .find_node("/gunyah-vm-config/vcpus")
            .and_then(|v| v.prop_str("affinity"))
            .is_some_and(|a| a == PROXY_AFFINITY);
        out
    }
}

fn align_down(v: u64) -> u64 {
    v & !(PAGE - 1)
}

fn align_up(v: u64) -> Option<u64> {
    Some(v.checked_add(PAGE - 1)? & !(PAGE - 1))
}

impl<C: Hypercalls> Gunyah<C> {
    /// VM_CONFIG_IMAGE: where VM `vmid`'s image and DTB are in the owner's parcel.
    pub(super) fn config_image(
        &mut self,
        owner: VmId,
        vmid: VmId,
        req: &VmConfigImageRequest,
    ) -> Result<(), RmError> {
        let p = self.parcels.get(req.mem_handle)?;
        if p.owner != owner {
            return Err(RmError::Denied);
        }
        if p.access(vmid).is_none() || p.trans == TransType::Donate {
            return Err(RmError::ArgumentInvalid);
        }
        let size = p.size();
        let inside = |off: u64, len: u64| off.checked_add(len).is_some_and(|end| end <= size);
        if !inside(req.image_offset, req.image_size) || !inside(req.dtb_offset, req.dtb_size) {
            return Err(RmError::ArgumentInvalid);
        }
        if req.image_offset >= size || req.dtb_size as usize > (1 << 20) {
            return Err(RmError::ArgumentInvalid);
        }
        self.vm_mut(vmid).image = Some(Image {
            handle: req.mem_handle,
            image_offset: req.image_offset,
            dtb_offset: req.dtb_offset,
            dtb_size: req.dtb_size,
        });
        Ok(())
    }

    /// VM_CONFIG_IMAGE must have named a parcel of the owner's that is still lent to the VM
    /// and not accepted (`ARGUMENT_INVALID` otherwise).
    pub(super) fn init_check(&self, vmid: VmId, owner: VmId) -> Result<(), RmError> {
        let image = self
            .vm(vmid)
            .and_then(|v| v.image)
            .ok_or(RmError::ArgumentInvalid)?;
        let p = self
            .parcels
            .get(image.handle)
            .map_err(|_| RmError::ArgumentInvalid)?;
        if p.owner != owner {
            return Err(RmError::ArgumentInvalid);
        }
        self.parcels
            .check_accept(image.handle, vmid, p.trans, p.mem_type, None)
            .map(|_| ())
            .map_err(|_| RmError::ArgumentInvalid)
    }

    /// VM_INIT: make VM `vmid`'s objects ([`Gunyah::build`]) or undo all of it on failure.
    pub(super) fn init_vm(&mut self, vmid: VmId, owner: VmId) -> Result<Vec<Resource>, RmError> {
        let st = self.vm_mut(vmid);
        if st.objects.is_some() {
            return Err(RmError::VmState);
        }
        let image = st.image.ok_or(RmError::ArgumentInvalid)?;
        let layout_base = st.layout_base;
        let p = self.parcels.get(image.handle)?.clone();
        if p.owner != owner {
            return Err(RmError::Denied);
        }
        self.parcels
            .check_accept(image.handle, vmid, p.trans, p.mem_type, None)?;
        let ipas = Self::image_ipas(&p, layout_base)?;
        let mut made = Made::default();
        match self.build(vmid, owner, &p, &image, &ipas, &mut made) {
            Ok((mut objects, resources)) => {
                // The image's mappings belong to the parcel now (released by VM_STOP or
                // VM_RESET); the rest (the demand-paging extents' mappings in the VM) is undone
                // by VM_RESET.
                made.maps
                    .retain(|m| !p.ranges.iter().any(|r| r.extent == m.1));
                objects.made = made;
                self.parcels.set_accepted(image.handle, vmid, ipas)?;
                self.vm_mut(vmid).objects = Some(objects);
                Ok(resources)
            }
            Err(e) => {
                self.undo(made, owner);
                let st = self.vm_mut(vmid);
                st.addrspace = CapId::INVALID;
                st.cspace = CapId::INVALID;
                st.vic = CapId::INVALID;
                st.virqs = VirqPool::default();
                Err(e)
            }
        }
    }

    /// Where the ranges of `p` go in VM `vmid`: at `base` one after the other, or at the
    /// owner's IPAs.
    pub(super) fn image_ipas(p: &Parcel, base: Option<u64>) -> Result<Vec<u64>, RmError> {
        match base {
            None => Ok(p.ranges.iter().map(|r| r.ipa).collect()),
            Some(mut at) => {
                let mut out = Vec::new();
                for r in &p.ranges {
                    out.push(at);
                    at = at.checked_add(r.size).ok_or(RmError::ArgumentInvalid)?;
                }
                Ok(out)
            }
        }
    }

    /// The IPA in the VM of byte `offset` of parcel `p` mapped at `ipas`.
    fn ipa_of(p: &Parcel, ipas: &[u64], offset: u64) -> Result<u64, RmError> {
        let (i, off) = p.locate(offset).ok_or(RmError::ArgumentInvalid)?;
        let base = ipas.get(i).ok_or(RmError::ArgumentInvalid)?;
        base.checked_add(off).ok_or(RmError::ArgumentInvalid)
    }

    /// Map the pages of `p` holding the DTB into the RM's window through a temporary extent
    /// derived from the parcel's; returns it, the bytes mapped, and the DTB's offset in the
    /// window.
    fn map_dtb(
        &mut self,
        p: &Parcel,
        image: &Image,
        made: &mut Made,
    ) -> Result<(CapId, u64, u64), RmError> {
        let (i, off) = p.locate(image.dtb_offset).ok_or(RmError::ArgumentInvalid)?;
        let range = p.ranges.get(i).copied().ok_or(RmError::ArgumentInvalid)?;
        let start = align_down(off);
        let end = off
            .checked_add(image.dtb_size)
            .and_then(align_up)
            .ok_or(RmError::ArgumentInvalid)?;
        let len = end - start;
        if end > range.size || len > self.rm.window.1 {
            return Err(RmError::ArgumentInvalid);
        }
        let tmp = self.create(Kind::Memextent, made)?;
        self.calls
            .memextent_derive(tmp, range.extent, start, len, extent_attrs(MEM_RIGHTS_RW))
            .map_err(rm_error)?;
        self.activate(tmp)?;
        self.calls
            .addrspace_map(
                self.rm.addrspace,
                tmp,
                self.rm.window.0,
                map_attrs(MEM_RIGHTS_RW, MemType::Normal),
                len,
            )
            .map_err(rm_error)?;
        made.maps
            .push((self.rm.addrspace, tmp, self.rm.window.0, len));
        Ok((tmp, len, off - start))
    }

    /// VM_INIT's work; `made` records everything for [`Gunyah::undo`].
    fn build(
        &mut self,
        vmid: VmId,
        owner: VmId,
        p: &Parcel,
        image: &Image,
        ipas: &[u64],
        made: &mut Made,
    ) -> Result<(Objects, Vec<Resource>), RmError> {
        // The VM's RAM: the parcel, contiguous in the VM.
        let mut memory = (ipas.first().copied().unwrap_or(0), 0u64);
        for (r, &ipa) in p.ranges.iter().zip(ipas) {
            if ipa != memory.0 + memory.1 {
                return Err(RmError::ArgumentInvalid);
            }
            memory.1 += r.size;
        }
        let entry = Self::ipa_of(p, ipas, image.image_offset)?;
        let dtb_ipa = Self::ipa_of(p, ipas, image.dtb_offset)?;

        // The owner's device tree: vCPUs, bootargs, initrd.
        let (tmp, tmp_len, dtb_at) = self.map_dtb(p, image, made)?;
        let mut blob = vec![0u8; image.dtb_size as usize];
        if !self.calls.window_read(dtb_at, &mut blob) {
            return Err(RmError::MapFailed);
        }
        let input = DtInput::parse(&blob);

        let rm_cs = self.rm.cspace;
        let cs = self.create(Kind::Cspace, made)?;
        self.calls
            .cspace_configure(cs, VM_CSPACE_CAPS)
            .map_err(rm_error)?;
        self.activate(cs)?;
        let asp = self.create(Kind::Addrspace, made)?;
        self.calls
            .addrspace_configure(asp, vmid.0)
            .map_err(rm_error)?;
        self.activate(asp)?;
        let vic = self.create(Kind::Vic, made)?;
        self.calls
            .vic_configure(vic, input.vcpus, layout::SPIS)
            .map_err(rm_error)?;
        self.activate(vic)?;
        let (owner_cs, owner_vic) = self
            .vm(owner)
            .map_or((CapId::INVALID, CapId::INVALID), |v| (v.cspace, v.vic));
        // A proxy-scheduled VM needs an owner the RM can give vCPU caps and wakeup vIRQs.
        if input.proxy && !(owner_cs.is_valid() && owner_vic.is_valid()) {
            return Err(RmError::ArgumentInvalid);
        }
        let options = if input.proxy {
            VCPU_OPTION_RUN_SCHEDULED
        } else {
            0
        };
        let mut vcpus = Vec::new();
        for i in 0..input.vcpus {
            let t = self.create(Kind::Thread, made)?;
            self.calls.vcpu_configure(t, options).map_err(rm_error)?;
            let cpu = u64::from(i % self.rm.cpus.max(1));
            self.calls.vcpu_set_affinity(t, cpu).map_err(rm_error)?;
            self.calls.cspace_attach_thread(cs, t).map_err(rm_error)?;
            self.calls
                .addrspace_attach_thread(asp, t)
                .map_err(rm_error)?;
            self.calls.vic_attach_vcpu(vic, t, i).map_err(rm_error)?;
            self.activate(t)?;
            vcpus.push(t);
        }
        let v0 = vcpus.first().copied().ok_or(RmError::ArgumentInvalid)?;
        let halt_virq = self.rm_virq(made)?;
        self.calls
            .vcpu_bind_virq(v0, self.rm.vic, halt_virq, VCPU_VIRQ_HALT)
            .map_err(rm_error)?;

        // The VM's RM link: it sends on `to_rm`, the RM on `from_rm`.
        let to_rm = self.queue(made)?;
        let from_rm = self.queue(made)?;
        let rm_rx = self.rm_virq(made)?;
        let rm_tx = self.rm_virq(made)?;
        let c = &mut self.calls;
        c.msgqueue_bind_send(to_rm, vic, VM_RM_TX_VIRQ)
            .map_err(rm_error)?;
        c.msgqueue_bind_receive(to_rm, self.rm.vic, rm_rx)
            .map_err(rm_error)?;
        c.msgqueue_bind_send(from_rm, self.rm.vic, rm_tx)
            .map_err(rm_error)?;
        c.msgqueue_bind_receive(from_rm, vic, VM_RM_RX_VIRQ)
            .map_err(rm_error)?;
        let vm_rm_tx = self.copy(to_rm, cs, SEND_RIGHTS.bits(), made)?;
        let vm_rm_rx = self.copy(from_rm, cs, RECEIVE_RIGHTS.bits(), made)?;
        let mut nodes = vec![HypNode::ResourceManager {
            tx_cap: vm_rm_tx.raw(),
            rx_cap: vm_rm_rx.raw(),
            tx_virq: VM_RM_TX_VIRQ,
            rx_virq: VM_RM_RX_VIRQ,
        }];

        // The link to the owner, and the owner's caps to the vCPUs, if the RM may give the
        // owner caps and bind its vIRQs.
        let mut resources = Vec::new();
        if owner_cs.is_valid() && owner_vic.is_valid() {
            let to_owner = self.queue(made)?;
            let from_owner = self.queue(made)?;
            let o_rx = self.vm_mut(owner).virqs.alloc()?;
            made.owner_virqs.push(o_rx);
            let o_tx = self.vm_mut(owner).virqs.alloc()?;
            made.owner_virqs.push(o_tx);
            let c = &mut self.calls;
            c.msgqueue_bind_send(to_owner, vic, VM_OWNER_TX_VIRQ)
                .map_err(rm_error)?;
            c.msgqueue_bind_receive(to_owner, owner_vic, o_rx)
                .map_err(rm_error)?;
            c.msgqueue_bind_send(from_owner, owner_vic, o_tx)
                .map_err(rm_error)?;
            c.msgqueue_bind_receive(from_owner, vic, VM_OWNER_RX_VIRQ)
                .map_err(rm_error)?;
            let vm_tx = self.copy(to_owner, cs, SEND_RIGHTS.bits(), made)?;
            let vm_rx = self.copy(from_owner, cs, RECEIVE_RIGHTS.bits(), made)?;
            let own_tx = self.copy(from_owner, owner_cs, SEND_RIGHTS.bits(), made)?;
            let own_rx = self.copy(to_owner, owner_cs, RECEIVE_RIGHTS.bits(), made)?;
            nodes.push(HypNode::MsgQueuePair {
                label: String::from(OWNER_LINK_LABEL),
                tx_cap: vm_tx.raw(),
                rx_cap: vm_rx.raw(),
                tx_virq: VM_OWNER_TX_VIRQ,
                rx_virq: VM_OWNER_RX_VIRQ,
                depth: RM_QUEUE_DEPTH,
                message_size: RM_MESSAGE_SIZE,
                peer: self.name(owner),
            });
            let entry = |holder, t, partner, cap: CapId, virq, label| Resource {
                holder,
                entry: HypResource {
                    resource_type: t,
                    partner_vmid: partner,
                    handle: 0,
                    label,
                    cap_id: cap.raw(),
                    virq_handle: 0,
                    virq,
                    base: 0,
                    size: 0,
                },
            };
            use ResourceType::{MsgQueueRecv, MsgQueueSend, VirtualCpu};
            for (i, &t) in vcpus.iter().enumerate() {
                let cap = self.copy(t, owner_cs, OWNER_VCPU_RIGHTS.bits(), made)?;
                // A proxy-scheduled vCPU's VCPU_RUN_WAKEUP source raises a vIRQ of the owner's.
                let wakeup = if input.proxy {
                    let v = self.vm_mut(owner).virqs.alloc()?;
                    made.owner_virqs.push(v);
                    self.calls
                        .vcpu_bind_virq(t, owner_vic, v, VCPU_VIRQ_RUN_WAKEUP)
                        .map_err(rm_error)?;
                    made.bound.push((t, VCPU_VIRQ_RUN_WAKEUP));
                    v
                } else {
                    0
                };
                resources.push(entry(owner, VirtualCpu, vmid, cap, wakeup, i as u32));
            }
            resources.push(entry(owner, MsgQueueSend, vmid, own_tx, o_tx, 0));
            resources.push(entry(owner, MsgQueueRecv, vmid, own_rx, o_rx, 0));
            resources.push(entry(vmid, MsgQueueSend, owner, vm_tx, VM_OWNER_TX_VIRQ, 0));
            resources.push(entry(vmid, MsgQueueRecv, owner, vm_rx, VM_OWNER_RX_VIRQ, 0));
        }

        // Demand paging: the owner's caps to the address space and the extents.
        resources.extend(self.demand_paging(vmid, owner, asp, memory, made)?);
        let demand = self.vm(vmid).map(|v| v.demand.clone()).unwrap_or_default();
        let memory = memory_with(memory, &demand);

        // The VM's device tree, over the owner's.
        let mpidrs: Vec<u64> = (0..input.vcpus as usize).map(layout::vcpu_mpidr).collect();
        let dt = guestdt::write(&GuestDt {
            model: "wurley,virt",
            memory,
            vcpu_mpidrs: &mpidrs,
            gic_dist: (layout::GICD_BASE, layout::GICD_SIZE),
            gic_redist: (layout::GICR_BASE, layout::gicr_size(mpidrs.len())),
            gic_maintenance_ppi: Some(layout::MAINTENANCE_PPI),
            timer_ppis: layout::TIMER_PPIS,
            uart: (layout::UART_BASE, layout::UART_SIZE, layout::UART_SPI),
            bootargs: &input.bootargs,
            initrd: input.initrd,
            psci_method: "hvc",
            rng_seed: None,
            extra: Some(&|w| hypervisor::write(w, &nodes)),
        })
        .map_err(|_| RmError::ArgumentInvalid)?;
        if dt.len() as u64 > image.dtb_size {
            return Err(RmError::NoMem);
        }
        if !self.calls.window_write(dtb_at, &dt) {
            return Err(RmError::MapFailed);
        }
        // The VM starts with its MMU off: what the RM (and the owner) wrote through cacheable
        // mappings must reach memory.
        let c = &mut self.calls;
        c.memextent_modify(tmp, Modify::Clean, tmp_len)
            .map_err(rm_error)?;
        c.addrspace_unmap(self.rm.addrspace, tmp, self.rm.window.0, tmp_len)
            .map_err(rm_error)?;
        made.maps.retain(|m| m.1 != tmp);
        c.cspace_delete(rm_cs, tmp).map_err(rm_error)?;
        made.caps.retain(|&x| x != tmp);

        // The image parcel, mapped into the VM.
        let rights = p.access(vmid).map_or(MEM_RIGHTS_RWX, |a| a.rights);
        for (r, &ipa) in p.ranges.iter().zip(ipas) {
            self.calls
                .memextent_modify(r.extent, Modify::Clean, r.size)
                .map_err(rm_error)?;
            self.calls
                .addrspace_map(asp, r.extent, ipa, map_attrs(rights, p.mem_type), r.size)
                .map_err(rm_error)?;
            made.maps.push((asp, r.extent, ipa, r.size));
        }

        let objects = Objects {
            made: Made::default(),
            owner,
            vcpus,
            entry,
            dtb_ipa,
            boot_flags: 0,
            link_virqs: [rm_tx, rm_rx],
            halt_virq,
        };
        self.events.push(Event::Link {
            vmid,
            tx: from_rm,
            rx: to_rm,
            tx_virq: rm_tx,
            rx_virq: rm_rx,
        });
        self.events.push(Event::Watch {
            vmid,
            vcpu: v0,
            virq: halt_virq,
        });
        let st = self.vm_mut(vmid);
        st.addrspace = asp;
        st.cspace = cs;
        st.vic = vic;
        st.virqs = VirqPool::range(VM_OWNER_RX_VIRQ + 1, 32 + layout::SPIS);
        Ok((objects, resources))
    }
}

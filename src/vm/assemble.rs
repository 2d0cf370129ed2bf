//! Making a VM out of objects: the first `vcpu_poweron` of a thread whose VM does not exist
//! yet builds it from what the thread is attached to.
//!
//! The VM's vCPUs are the threads attached to the thread's VIC at indices 0, 1, .. (stopping at
//! the first free index), each ACTIVE and in the same address space; its memory is whatever its
//! address space maps; its virtual platform (vGIC, virtual timer, PL011 console at the
//! addresses of [`super::layout`]) is the one every VM sees. Threads attached later cannot
//! join a VM that exists. Each vCPU gets the affinity, priority and timeslice its thread was
//! configured with, or the defaults (CPUs round robin, [`crate::sched::PRIORITY_DEFAULT`], the
//! default timeslice). A vCPU configured with `vcpu_run_scheduled` (bit 9) is proxy-scheduled:
//! it gets a [`ProxySlot`] before the VM is published, so the scheduler never queues it, and any
//! holder of a cap to it with the run rights runs it with `vcpu_run` (`vm::proxy`).
//!
//! Once built, the VM's footprint is logged (`log_footprint`): its RAM, the frames of its
//! stage-2 tables and the heap its objects and its record take (`make bench` reads the line).

use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use spin::Mutex;
use wurley_abi::Error;

use crate::object::ObjectState;
use crate::object::handle::CSpaceObject;
use crate::object::vcpu::{
    ANY_OWNER, NO_OWNER, OPTION_CRITICAL, OPTION_RUN_SCHEDULED, VcpuObject, VcpuTarget,
};
use crate::object::vic::Vic;

use super::layout;
use super::machine::{self, VcpuSlot, Vm};
use super::objects::VmObjects;
use super::proxy::ProxySlot;
use super::vgic::VGic;

/// Serialises assembly (two first power-ons of the same VM at once).
static ASSEMBLING: Mutex<()> = Mutex::new(());

/// The physical INTID of the virtual timer (from the platform, set at launch).
static VTIMER_PINTID: AtomicU32 = AtomicU32::new(0);

/// Where the next vCPU without an affinity goes.
static NEXT_CPU: AtomicUsize = AtomicUsize::new(0);

/// Bytes of one stage-2 table frame.
const PAGE_BYTES: usize = crate::mm::addr::PAGE_SIZE as usize;

/// Record the platform's virtual-timer INTID (at launch).
pub fn set_vtimer_intid(intid: u32) {
    VTIMER_PINTID.store(intid, Ordering::Relaxed);
}

/// The VM of thread `object` and its index there, building the VM if it does not exist yet.
/// `ObjectState` if the thread cannot be part of a VM: not attached to an active address
/// space and a VIC, its index beyond the attached run from 0, another thread of the run not
/// active or in another address space, or the VM it was part of is gone.
pub fn vm_of(object: &Arc<VcpuObject>) -> Result<(&'static Vm, usize), Error> {
    if let Some(found) = existing(object)? {
        return Ok(found);
    }
    let _g = ASSEMBLING.lock();
    if let Some(found) = existing(object)? {
        return Ok(found);
    }
    build(object)
}

fn existing(object: &VcpuObject) -> Result<Option<(&'static Vm, usize)>, Error> {
    if object.target().is_none() {
        return Ok(None);
    }
    // Its VM is gone (retired) if the slot holds another VM or none.
    machine::vcpu_of(object).map(Some).ok_or(Error::ObjectState)
}

fn build(object: &Arc<VcpuObject>) -> Result<(&'static Vm, usize), Error> {
    let (addrspace, vic, cspace) = {
        let cfg = object.config.lock();
        if cfg.killed {
            // Killed before its first power-on: it never runs.
            return Err(Error::ObjectState);
        }
        match (&cfg.addrspace, &cfg.vic, &cfg.cspace) {
            (Some(a), Some((v, _)), Some(c)) => (a.clone(), v.clone(), c.clone()),
            _ => return Err(Error::ObjectState),
        }
    };
    if vic.has_controller() {
        // Its VM existed and was retired: the VIC drives nothing any more.
        return Err(Error::ObjectState);
    }
    if addrspace.vttbr().is_none() {
        return Err(Error::ObjectState);
    }
    let threads: Vec<Arc<VcpuObject>> = vic.attached().into_iter().map_while(|t| t).collect();
    if !threads.iter().any(|t| Arc::ptr_eq(t, object)) {
        return Err(Error::ObjectState);
    }
    let mut slots = Vec::new();
    slots.try_reserve(threads.len()).map_err(|_| Error::Nomem)?;
    let mut critical = false;
    let cpus = super::sched::cpu_count().max(1);
    for (i, t) in threads.iter().enumerate() {
        let cfg = t.config.lock();
        let same_space = cfg
            .addrspace
            .as_ref()
            .is_some_and(|a| Arc::ptr_eq(a, &addrspace));
        if t.header.state() != ObjectState::Active || !same_space || t.target().is_some() {
            return Err(Error::ObjectState);
        }
        critical |= cfg.options & OPTION_CRITICAL != 0;
        let proxied = cfg.options & OPTION_RUN_SCHEDULED != 0;
        // A proxy-scheduled vCPU runs on its runner's CPU: it takes none in the round robin.
        let pcpu = cfg.affinity.unwrap_or_else(|| {
            if proxied {
                0
            } else {
                NEXT_CPU.fetch_add(1, Ordering::Relaxed) % cpus
            }
        });
        let slot = VcpuSlot::new(
            i,
            layout::vcpu_mpidr(i),
            pcpu,
            cfg.priority.unwrap_or(crate::sched::PRIORITY_DEFAULT),
            cfg.timeslice_ns
                .unwrap_or(crate::sched::TIMESLICE_DEFAULT_NS),
        );
        if proxied {
            // Before the VM is published: the scheduler never queues it.
            slot.proxy.call_once(|| ProxySlot::new(t.clone()));
        }
        // Killed before the VM existed: neither `vcpu_poweron` nor PSCI CPU_ON starts it.
        slot.killed.store(cfg.killed, Ordering::Release);
        slots.push(slot);
    }
    let mpidrs: Vec<u64> = slots.iter().map(|s| s.mpidr).collect();
    let mut vgic = VGic::new(&mpidrs, layout::SPIS);
    let pintid = VTIMER_PINTID.load(Ordering::Relaxed);
    for i in 0..slots.len() {
        vgic.map_hw(layout::VTIMER_INTID, i, pintid);
    }
    let vmid = addrspace.vmid().unwrap_or(0);
    // The name WURLEY_VM_SET_NAME gave it, else `vm<vmid>`.
    let given = addrspace.vm_name();
    let focus = given.as_ref().is_some_and(|(_, f)| *f);
    let name = given.map_or_else(|| format!("vm{vmid}"), |(n, _)| n);
    let charged = objects_charged(&threads, &vic, &cspace);
    let objects = VmObjects::assembled(cspace, vic.clone(), threads.clone());
    let mut vm = Vm::assembled(name, addrspace, slots, vgic);
    vm.critical = critical;
    let vm = machine::leak(vm);
    objects.virqs.attach(vm);
    vic.set_controller(objects.virqs.clone());
    vm.objects.call_once(|| objects);
    let index = machine::add(vm)?;
    if focus {
        super::console::set_focus(index);
    } else {
        super::console::focus_if_unfocused(index);
    }
    let me = threads
        .iter()
        .position(|t| Arc::ptr_eq(t, object))
        .unwrap_or(0);
    for (i, (t, slot)) in threads.iter().zip(&vm.vcpus).enumerate() {
        t.attach(VcpuTarget {
            vm: index,
            index: i,
            owner: if slot.proxy.get().is_some() {
                ANY_OWNER
            } else {
                NO_OWNER
            },
        });
    }
    let proxied = vm.vcpus.iter().filter(|s| s.proxy.get().is_some()).count();
    log::info!(
        "VM {}: made by hypercalls, {} vCPU(s) on CPUs {:?}{}",
        vm.name,
        vm.vcpus.len(),
        vm.vcpus.iter().map(|s| s.pcpu()).collect::<Vec<_>>(),
        if proxied > 0 {
            format!(", {proxied} proxy-scheduled (run with vcpu_run)")
        } else {
            alloc::string::String::new()
        }
    );
    log_footprint(vm, charged);
    Ok((vm, me))
}

/// What the objects a VM is made of cost their partitions: its threads, its VIC, its cspace
/// (the address space's own charge is in its
/// [`SpaceFootprint`](crate::object::addrspace::SpaceFootprint)). A cspace several VMs share
/// counts for each of them.
fn objects_charged(threads: &[Arc<VcpuObject>], vic: &Vic, cspace: &CSpaceObject) -> usize {
    threads.iter().map(|t| t.charged()).sum::<usize>() + vic.charged() + cspace.charged()
}

/// Heap the hypervisor allocated for `vm` itself when it assembled it: the `Vm` record (with
/// its vCPU slots, objects record, vUART and console line), the vGIC's vectors, a saved
/// context per vCPU and the VM's empty partition.
fn record_bytes(vm: &Vm) -> usize {
    use core::mem::size_of;
    let vgic = vm.vgic.lock().heap_bytes();
    let name = vm.name.get().capacity();
    size_of::<Vm>()
        + vm.vcpus.capacity() * size_of::<VcpuSlot>()
        + vm.vcpus.len() * size_of::<super::vcpu::VcpuContext>()
        + vgic
        + name
        + size_of::<crate::object::handle::PartitionObject>()
        + size_of::<crate::object::partition::Partition>()
}

/// Log what `vm` costs the hypervisor besides its RAM, in the form `make bench` reads:
/// `VM <name>: <N> MiB of RAM; hypervisor memory for it: <F> KiB of frames, <H> KiB of heap`
/// (then the parts). RAM: the RAM extents its address space maps as normal memory; frames:
/// its stage-2 tables; heap: the partition charges of its objects (`objects`, and its
/// address space's) and [`record_bytes`]. The tables grow as memory is mapped later (lent,
/// shared): `machine::retire` logs their peak.
fn log_footprint(vm: &Vm, objects: usize) {
    let space = vm.with_space(|s| s.footprint()).unwrap_or_default();
    let objects = objects + space.charged;
    let record = record_bytes(vm);
    // Rounded up, so a part is never shown as 0 KiB; the heap is the sum of the parts shown.
    let (objects, record) = (objects.div_ceil(1024), record.div_ceil(1024));
    log::info!(
        "VM {}: {} MiB of RAM; hypervisor memory for it: {} KiB of frames, {} KiB of heap \
         (frames for its translation tables; heap: {} KiB charged for its objects, {} KiB for \
         the VM record)",
        vm.name,
        space.ram >> 20,
        space.table_frames * PAGE_BYTES / 1024,
        objects + record,
        objects,
        record
    );
}

//! A running virtual machine: its memory, stage-2 tables, virtual devices and vCPUs (each with
//! its scheduling state and, while it does not run, its saved context), and the list of VMs.
//!
//! Locks: a VM's `vgic` and `uart` are never held together (the UART's interrupt line is
//! updated after its lock is dropped); console output happens under `uart`, and the console
//! lock is innermost.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use spin::{Mutex, Once, RwLock};

use crate::arch::aarch64::psci;
use alloc::sync::Arc;

use crate::object::addrspace::AddrSpaceObject;
use crate::object::memextent::MemExtent;
use crate::vm::vgic::VGic;
use crate::vm::vpl011::VPl011;

/// The physical SGI the hypervisor uses to make another CPU look at its vCPU again.
pub const KICK_SGI: u32 = 0;

/// Power state of a vCPU, as PSCI AFFINITY_INFO reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Power {
    /// Off: never started, or CPU_OFF.
    Off = 0,
    /// CPU_ON accepted, not yet running.
    OnPending = 1,
    /// Running.
    On = 2,
}

/// Where a vCPU starts when powered on.
#[derive(Clone, Copy, Debug, Default)]
pub struct BootState {
    /// Entry point (IPA).
    pub pc: u64,
    /// Value for x0.
    pub x0: u64,
    /// The other registers written with `vcpu_register_write` before `vcpu_poweron` (X1..X30,
    /// SP_EL0, SP_EL1); `None`: all zero (PSCI CPU_ON).
    pub regs: Option<crate::object::vcpu::BootRegs>,
}

/// A vCPU's state shared between physical CPUs (its registers live with the CPU running it).
#[derive(Debug)]
pub struct VcpuSlot {
    /// Index in the VM.
    pub index: usize,
    /// The guest-visible MPIDR affinity.
    pub mpidr: u64,
    /// Its affinity: the physical CPU whose run queue it joins (index into the boot CPU
    /// list). Changed only by `vm::sched::set_affinity`.
    pcpu: AtomicUsize,
    power: AtomicU8,
    /// Entry state for the next power-on.
    pub boot: Mutex<BootState>,
    /// Scheduler priority (0..=63).
    pub priority: u8,
    /// Timeslice in nanoseconds.
    pub timeslice_ns: u64,
    /// Where the vCPU is: idle, queued or running (`vm::sched`).
    pub place: AtomicU8,
    /// Blocked in WFI, waiting for an interrupt or its virtual timer.
    pub blocked: AtomicBool,
    /// Killed (`vcpu_kill`): off for good.
    pub killed: AtomicBool,
    /// What was left of its timeslice when a higher priority preempted it (counter ticks; 0:
    /// a full slice at its next run).
    pub slice_left: AtomicU64,
    /// While blocked: when its virtual timer fires (counter ticks), `u64::MAX` if not armed.
    pub deadline: AtomicU64,
    /// Its registers while it is not running (`None`: start from `boot` at the next run).
    pub context: Mutex<Option<Box<super::vcpu::VcpuContext>>>,
    /// Its VPM group (a VM made by hypercalls), told of every power change.
    pub vpm: Once<alloc::sync::Arc<crate::object::vpm::VpmGroup>>,
    /// Set (before the VMs are published) if the vCPU is proxy-scheduled: the scheduler never
    /// queues it; its owner runs it with `vcpu_run`.
    pub proxy: Once<super::proxy::ProxySlot>,
    vm_index: AtomicUsize,
}

impl VcpuSlot {
    /// A powered-off vCPU `index` with guest affinity `mpidr`, with affinity to physical CPU
    /// `pcpu`, scheduled at `priority` with `timeslice_ns`.
    pub fn new(index: usize, mpidr: u64, pcpu: usize, priority: u8, timeslice_ns: u64) -> Self {
        Self {
            index,
            mpidr,
            pcpu: AtomicUsize::new(pcpu),
            power: AtomicU8::new(Power::Off as u8),
            boot: Mutex::new(BootState::default()),
            priority,
            timeslice_ns,
            place: AtomicU8::new(super::sched::IDLE),
            blocked: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            slice_left: AtomicU64::new(0),
            deadline: AtomicU64::new(u64::MAX),
            context: Mutex::new(None),
            vpm: Once::new(),
            proxy: Once::new(),
            vm_index: AtomicUsize::new(usize::MAX),
        }
    }

    /// The physical CPU it has affinity to.
    pub fn pcpu(&self) -> usize {
        self.pcpu.load(Ordering::Acquire)
    }

    /// Record a new affinity; the previous one. Only `vm::sched::set_affinity` calls this.
    pub(super) fn swap_pcpu(&self, pcpu: usize) -> usize {
        self.pcpu.swap(pcpu, Ordering::AcqRel)
    }

    /// Index of its VM in [`all`].
    pub fn vm_index(&self) -> usize {
        self.vm_index.load(Ordering::Relaxed)
    }

    /// Current power state.
    pub fn power(&self) -> Power {
        match self.power.load(Ordering::Acquire) {
            1 => Power::OnPending,
            2 => Power::On,
            _ => Power::Off,
        }
    }

    /// Change the power state.
    pub fn set_power(&self, p: Power) {
        let old = self.power.swap(p as u8, Ordering::AcqRel);
        if old != p as u8 {
            super::vpm::power_changed(self);
        }
    }

    /// Move from `from` to `to` atomically; false if the state was not `from`.
    pub fn transition(&self, from: Power, to: Power) -> bool {
        let moved = self
            .power
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if moved && from != to {
            super::vpm::power_changed(self);
        }
        moved
    }
}

/// How a VM ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// PSCI SYSTEM_OFF.
    PowerOff,
    /// PSCI SYSTEM_RESET / SYSTEM_RESET2.
    Reset,
    /// The hypervisor stopped it after an unrecoverable guest error.
    Crashed,
    /// Every vCPU was killed (`vcpu_kill`).
    Killed,
}

/// A VM's name: `rm` for the root VM, `vm<vmid>` for a VM built from objects, or what
/// `WURLEY_VM_SET_NAME` said (the resource manager names the manifest's VMs so), which may
/// rename a running VM. A leaf lock, held only to copy or
/// format the name (readers never wait for each other; the writer swaps it in at once).
pub struct VmName(RwLock<String>);

impl VmName {
    /// The name `name`.
    pub fn new(name: String) -> Self {
        Self(RwLock::new(name))
    }

    /// The name now (held briefly: formatting, a console line).
    pub fn get(&self) -> spin::RwLockReadGuard<'_, String> {
        self.0.read()
    }

    /// Rename (the old name is freed after the lock is released).
    pub fn set(&self, name: String) {
        let old = core::mem::replace(&mut *self.0.write(), name);
        drop(old);
    }
}

impl core::fmt::Display for VmName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0.read())
    }
}

impl PartialEq<str> for VmName {
    fn eq(&self, other: &str) -> bool {
        *self.0.read() == other
    }
}

impl PartialEq<&str> for VmName {
    fn eq(&self, other: &&str) -> bool {
        *self.0.read() == *other
    }
}

impl PartialEq<String> for VmName {
    fn eq(&self, other: &String) -> bool {
        *self.0.read() == *other
    }
}

/// A virtual machine.
pub struct Vm {
    /// Its name; prefixes its console lines when several VMs run.
    pub name: VmName,
    /// VTTBR_EL2 value (stage-2 root and VMID).
    pub vttbr: u64,
    /// The virtual GIC.
    pub vgic: Mutex<VGic>,
    /// The virtual PL011.
    pub uart: Mutex<VPl011>,
    /// The vCPUs.
    pub vcpus: Vec<VcpuSlot>,
    ended: AtomicBool,
    end_reason: Mutex<Option<EndReason>>,
    /// Console output being collected into a line (when several VMs share the console).
    pub out_line: Mutex<super::console::PendingLine>,
    /// Unhandled traps already reported (log once per VM).
    pub reported_unknown_trap: AtomicBool,
    /// The root VM (the resource manager): not a guest of the manifest, so its output is always
    /// prefixed, it never has console input, and the machine does not wait for it to end; its
    /// SYSTEM_OFF / SYSTEM_RESET end the machine.
    pub root: bool,
    /// A critical VM: when it ends, the machine powers off (or resets, if the VM reset) whatever
    /// the other VMs do.
    pub critical: bool,
    /// Its hypervisor objects (cspace, partition, VIC), set once when the VM is published.
    pub objects: Once<super::objects::VmObjects>,
    /// Its address space: the stage-2 tables ([`Vm::vttbr`]) and what is mapped in them (let
    /// go when a VM made by hypercalls is retired: [`Vm::space`]).
    space: RwLock<Option<Arc<AddrSpaceObject>>>,
    /// The memory extent over its RAM (mapped in `space` at its memory base), for the root VM;
    /// a VM made by hypercalls has whatever its address space maps.
    pub ram: Option<Arc<MemExtent>>,
    /// Retired ([`retire`]): out of the machine for good.
    retired: AtomicBool,
}

impl Vm {
    /// Assemble a VM from its parts: `space` must be active.
    pub fn new(
        name: String,
        space: Arc<AddrSpaceObject>,
        ram: Option<Arc<MemExtent>>,
        vcpus: Vec<VcpuSlot>,
        vgic: VGic,
    ) -> Self {
        Self {
            name: VmName::new(name),
            vttbr: space.vttbr().unwrap_or(0),
            vgic: Mutex::new(vgic),
            uart: Mutex::new(VPl011::new()),
            vcpus,
            ended: AtomicBool::new(false),
            end_reason: Mutex::new(None),
            out_line: Mutex::new(super::console::PendingLine::new()),
            reported_unknown_trap: AtomicBool::new(false),
            objects: Once::new(),
            retired: AtomicBool::new(false),
            root: false,
            critical: false,
            space: RwLock::new(Some(space)),
            ram,
        }
    }

    /// A VM made by hypercalls (`vm::assemble`): its memory is what `space` maps.
    pub fn assembled(
        name: String,
        space: Arc<AddrSpaceObject>,
        vcpus: Vec<VcpuSlot>,
        vgic: VGic,
    ) -> Self {
        Self::new(name, space, None, vcpus, vgic)
    }

    /// Its address space (`None` once retired).
    pub fn space(&self) -> Option<Arc<AddrSpaceObject>> {
        self.space.read().clone()
    }

    /// Run `f` on its address space (`None` once retired) without taking a reference: the
    /// hypercall-buffer path, where an `Arc` clone and drop per access show in the benchmarks.
    pub fn with_space<R>(&self, f: impl FnOnce(&AddrSpaceObject) -> R) -> Option<R> {
        self.space.read().as_deref().map(f)
    }

    /// Whether the VM has ended.
    pub fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// How the VM ended, once it has.
    pub fn end_reason(&self) -> Option<EndReason> {
        *self.end_reason.lock()
    }

    /// End the VM: every vCPU stops at its next exit. When a critical VM (built from objects
    /// with a critical vCPU) or the root VM (with SYSTEM_OFF / SYSTEM_RESET) ends, the machine
    /// powers off, or resets if that VM asked for a reset. When the other VMs end is the
    /// resource manager's business (it powers the machine off once its VMs have all ended).
    pub fn end(&self, reason: EndReason) {
        if self.ended.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.end_reason.lock() = Some(reason);
        log::info!("VM {} ended: {reason:?}", self.name);
        for v in &self.vcpus {
            kick(v);
        }
        self.raise_halts();
        retire(self);
        if self.root {
            // The resource manager decides when the machine ends: its SYSTEM_OFF powers it
            // off, its SYSTEM_RESET resets it.
            if matches!(reason, EndReason::PowerOff | EndReason::Reset) {
                end_machine("the resource manager", reason);
            }
            return;
        }
        if self.critical {
            end_machine("critical VM", reason);
        }
    }

    /// Raise the HALT vIRQ of every vCPU object of this VM (whoever bound it: a proxy owner,
    /// the resource manager watching the VM): the VM ended.
    fn raise_halts(&self) {
        let objects = self.objects.get().and_then(|o| o.vcpus.get());
        for object in objects.into_iter().flatten() {
            object.raise(wurley_abi::vcpu_run::VcpuVirqType::Halt);
        }
    }

    /// Let go of the objects a VM made by hypercalls holds (retirement): empty its cspace and
    /// drop what its vCPU objects were attached to, so the caps and objects only the VM held
    /// are freed and the rest live exactly as long as their other holders keep them.
    /// Record in each vCPU object the state the VM ended in, for `vcpu_run_check` once the VM
    /// is out of the machine (before it leaves its slot: a check between the two must find
    /// one or the other).
    fn record_final_states(&self) {
        let Some(o) = self.objects.get() else { return };
        for (i, v) in o.vcpus.get().into_iter().flatten().enumerate() {
            if let Some((state, data)) = super::proxy::halted_state(self, i) {
                v.set_final_state(state.raw(), data);
            }
        }
    }

    fn release_objects(&self) {
        drop(self.space.write().take());
        let Some(o) = self.objects.get() else { return };
        // Its vCPUs' cspace is emptied: this record keeps it alive, so its caps would never go.
        // Not if a live VM uses it as its own (a VM that attached the threads to its own
        // cspace keeps its caps).
        let shared = all().any(|other| {
            !core::ptr::eq(other, self)
                && other
                    .objects
                    .get()
                    .is_some_and(|p| Arc::ptr_eq(&p.cspace, &o.cspace))
        });
        if !shared {
            o.cspace.clear();
        }
        for v in o.vcpus.get().into_iter().flatten() {
            v.release();
        }
    }

    /// Find the vCPU with guest affinity `mpidr`.
    pub fn vcpu_by_mpidr(&self, mpidr: u64) -> Option<&VcpuSlot> {
        let mpidr = mpidr & crate::arch::aarch64::cpu::MPIDR_AFFINITY_MASK;
        self.vcpus.iter().find(|v| v.mpidr == mpidr)
    }
}

/// `who` ended with `reason`, and the machine ends with it: reset if it reset, otherwise power
/// off.
fn end_machine(who: &str, reason: EndReason) {
    if reason == EndReason::Reset {
        log::info!("{who} ended with a reset: resetting the machine");
        let e = psci::system_reset();
        log::error!("PSCI SYSTEM_RESET failed: {e:?}");
    } else {
        log::info!("{who} ended: powering off");
        let e = psci::system_off();
        log::error!("PSCI SYSTEM_OFF failed: {e:?}");
    }
}

/// Something is pending for `vcpu`: wake it if it is blocked, or make the physical CPU running
/// it exit the guest and look at its interrupts again.
pub fn kick(vcpu: &VcpuSlot) {
    super::sched::wake(vcpu);
}

/// VMs in the machine now besides the root VM: those made by hypercalls not yet retired.
static LIVE_GUESTS: AtomicUsize = AtomicUsize::new(0);

/// Set by the VMs' launcher (`WURLEY_VM_SET_NAME` flag): several VMs share the console.
static CONSOLE_SHARED: AtomicBool = AtomicBool::new(false);

/// From now on several VMs share the console (the resource manager launches more than one).
pub fn share_console() {
    CONSOLE_SHARED.store(true, Ordering::Release);
}

/// Whether several guests share the console (their output then goes out a line at a time,
/// prefixed with their names): the launcher said so, or several VMs run.
pub fn console_shared() -> bool {
    CONSOLE_SHARED.load(Ordering::Relaxed) || LIVE_GUESTS.load(Ordering::Acquire) > 1
}

/// Most VMs alive at once (the resource manager and those made by hypercalls).
pub const MAX_VMS: usize = 64;

/// The live VMs by index (a vCPU's `vm_index`, a run-queue entry's first half). `None`: free.
/// A VM made by hypercalls leaves its slot when it is retired ([`retire`]); the `Vm` record
/// itself is never freed, so a stale `&'static Vm` stays valid (it just says the VM ended).
static VMS: [RwLock<Option<&'static Vm>>; MAX_VMS] = [const { RwLock::new(None) }; MAX_VMS];

/// One past the highest slot ever used (bounds every walk over [`VMS`]).
static SLOTS_USED: AtomicUsize = AtomicUsize::new(0);

/// Serialises adding and retiring VMs.
static SLOT_LOCK: Mutex<()> = Mutex::new(());

/// Give `vm` a slot, number its vCPUs and give them to the scheduler. `Nomem` if every slot
/// is taken.
pub fn add(vm: &'static Vm) -> Result<usize, wurley_abi::Error> {
    let _g = SLOT_LOCK.lock();
    let i = VMS
        .iter()
        .position(|p| p.read().is_none())
        .ok_or(wurley_abi::Error::Nomem)?;
    for v in &vm.vcpus {
        v.vm_index.store(i, Ordering::Relaxed);
    }
    *VMS[i].write() = Some(vm);
    SLOTS_USED.fetch_max(i + 1, Ordering::AcqRel);
    if !vm.root {
        LIVE_GUESTS.fetch_add(1, Ordering::AcqRel);
    }
    super::sched::add_residents(i, vm);
    Ok(i)
}

/// KiB in a stage-2 table frame.
const FRAME_KIB: usize = (crate::mm::addr::PAGE_SIZE >> 10) as usize;

/// Take a VM made by hypercalls out of the machine once it has ended and none of its vCPUs is
/// on a CPU: the scheduler forgets its vCPUs, its slot is free again, and it lets go of its
/// objects (so they are freed when their last cap goes). Returns whether this call retired it.
pub fn retire(vm: &Vm) -> bool {
    if !vm.has_ended() || vm.root {
        return false;
    }
    let _g = SLOT_LOCK.lock();
    let busy = vm
        .vcpus
        .iter()
        .any(|v| v.place.load(Ordering::Acquire) != super::sched::IDLE);
    if busy || vm.retired.swap(true, Ordering::AcqRel) {
        return false;
    }
    let Some(i) = vm.vcpus.first().map(|v| v.vm_index()) else {
        return false;
    };
    vm.record_final_states();
    super::sched::remove_residents(i);
    if let Some(slot) = VMS.get(i) {
        let mut s = slot.write();
        if s.is_some_and(|v| core::ptr::eq(v, vm)) {
            *s = None;
        }
    }
    LIVE_GUESTS.fetch_sub(1, Ordering::AcqRel);
    for v in &vm.vcpus {
        *v.context.lock() = None;
    }
    // Its stage-2 tables as they stand and at their largest (memory lent after it started).
    let tables = vm.with_space(|s| s.footprint()).unwrap_or_default();
    vm.release_objects();
    log::info!(
        "VM {}: retired; its translation tables: {} KiB of frames, at most {} KiB",
        vm.name,
        tables.table_frames * FRAME_KIB,
        tables.peak_table_frames * FRAME_KIB
    );
    true
}

/// Leak a VM so physical CPUs can share it for the life of the machine.
pub fn leak(vm: Vm) -> &'static Vm {
    Box::leak(Box::new(vm))
}

/// The VM in slot `i`, if any.
pub fn get(i: usize) -> Option<&'static Vm> {
    *VMS.get(i)?.read()
}

/// The VM and the index of the vCPU that vCPU object `object` stands for, while that VM is in
/// the machine. A VM made by hypercalls leaves its slot when it is retired and a new VM may
/// take the slot: the VM found there must list `object` itself at that index, so a thread
/// whose VM is gone reaches no other VM's vCPU.
pub fn vcpu_of(object: &crate::object::vcpu::VcpuObject) -> Option<(&'static Vm, usize)> {
    let t = object.target()?;
    let vm = get(t.vm)?;
    let same = vm
        .objects
        .get()
        .and_then(|o| o.vcpus.get())
        .and_then(|v| v.get(t.index))
        .is_some_and(|o| core::ptr::eq(Arc::as_ptr(o), object));
    (same && vm.vcpus.get(t.index).is_some()).then_some((vm, t.index))
}

/// [`vcpu_of`] with the vCPU's slot.
pub fn vcpu_slot_of(
    object: &crate::object::vcpu::VcpuObject,
) -> Option<(&'static Vm, &'static VcpuSlot)> {
    let (vm, index) = vcpu_of(object)?;
    Some((vm, vm.vcpus.get(index)?))
}

/// One past the highest slot index ever used.
pub fn slots() -> usize {
    SLOTS_USED.load(Ordering::Acquire)
}

/// Every live VM, by slot.
pub fn all() -> impl Iterator<Item = &'static Vm> {
    (0..slots()).filter_map(get)
}

//! A running virtual machine: its memory, stage-2 tables, virtual devices and vCPUs, and the
//! table of which physical CPU runs which vCPU.
//!
//! Locks: a VM's `vgic` and `uart` are never held together (the UART's interrupt line is
//! updated after its lock is dropped); console output happens under `uart`, and the console
//! lock is innermost.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use spin::{Mutex, Once};

use crate::arch::aarch64::stage2::Stage2;
use crate::arch::aarch64::{gic, psci};
use crate::mm::guestmem::GuestMemory;
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
}

/// A vCPU's state shared between physical CPUs (its registers live with the CPU running it).
#[derive(Debug)]
pub struct VcpuSlot {
    /// Index in the VM.
    pub index: usize,
    /// The guest-visible MPIDR affinity.
    pub mpidr: u64,
    /// The physical CPU it is pinned to (index into the boot CPU list).
    pub pcpu: usize,
    /// The physical CPU's MPIDR, for kicks.
    pub pcpu_mpidr: u64,
    power: AtomicU8,
    /// Entry state for the next power-on.
    pub boot: Mutex<BootState>,
}

impl VcpuSlot {
    /// A powered-off vCPU `index` with guest affinity `mpidr`, pinned to physical CPU `pcpu`.
    pub fn new(index: usize, mpidr: u64, pcpu: usize, pcpu_mpidr: u64) -> Self {
        Self {
            index,
            mpidr,
            pcpu,
            pcpu_mpidr,
            power: AtomicU8::new(Power::Off as u8),
            boot: Mutex::new(BootState::default()),
        }
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
        self.power.store(p as u8, Ordering::Release);
    }

    /// Move from `from` to `to` atomically; false if the state was not `from`.
    pub fn transition(&self, from: Power, to: Power) -> bool {
        self.power
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
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
}

/// A virtual machine.
pub struct Vm {
    /// Name from the manifest; prefixes its console lines when several VMs run.
    pub name: String,
    /// Guest RAM.
    pub memory: Mutex<GuestMemory>,
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
    /// Its hypervisor objects (cspace, partition, VIC), set once when the VM is published.
    pub objects: Once<super::objects::VmObjects>,
    _stage2: Stage2,
}

impl Vm {
    /// Assemble a VM from its parts.
    pub fn new(
        name: String,
        memory: GuestMemory,
        stage2: Stage2,
        vcpus: Vec<VcpuSlot>,
        vgic: VGic,
    ) -> Self {
        Self {
            name,
            memory: Mutex::new(memory),
            vttbr: stage2.vttbr(),
            vgic: Mutex::new(vgic),
            uart: Mutex::new(VPl011::new()),
            vcpus,
            ended: AtomicBool::new(false),
            end_reason: Mutex::new(None),
            out_line: Mutex::new(super::console::PendingLine::new()),
            reported_unknown_trap: AtomicBool::new(false),
            objects: Once::new(),
            _stage2: stage2,
        }
    }

    /// Whether the VM has ended.
    pub fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// End the VM: every vCPU stops at its next exit. When the last VM ends, the machine powers
    /// off (or resets, if that VM asked for a reset).
    pub fn end(&self, reason: EndReason) {
        if self.ended.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.end_reason.lock() = Some(reason);
        log::info!("VM {} ended: {reason:?}", self.name);
        for v in &self.vcpus {
            kick(v);
        }
        if RUNNING_VMS.fetch_sub(1, Ordering::AcqRel) == 1 {
            match reason {
                EndReason::Reset => {
                    log::info!("last VM ended with a reset: resetting the machine");
                    let e = psci::system_reset();
                    log::error!("PSCI SYSTEM_RESET failed: {e:?}");
                }
                _ => {
                    log::info!("last VM ended: powering off");
                    let e = psci::system_off();
                    log::error!("PSCI SYSTEM_OFF failed: {e:?}");
                }
            }
        }
    }

    /// Find the vCPU with guest affinity `mpidr`.
    pub fn vcpu_by_mpidr(&self, mpidr: u64) -> Option<&VcpuSlot> {
        let mpidr = mpidr & crate::arch::aarch64::cpu::MPIDR_AFFINITY_MASK;
        self.vcpus.iter().find(|v| v.mpidr == mpidr)
    }
}

/// Make the physical CPU running `vcpu` exit the guest (or leave its idle WFI) and look again.
pub fn kick(vcpu: &VcpuSlot) {
    let me = crate::arch::aarch64::percpu::current().map(|c| c.index);
    if me != Some(vcpu.pcpu) {
        gic::send_sgi(KICK_SGI, vcpu.pcpu_mpidr);
    }
}

/// VMs started and not yet ended.
static RUNNING_VMS: AtomicUsize = AtomicUsize::new(0);

/// For each physical CPU: the (VM, vCPU index) pinned to it.
static ASSIGNMENT: Once<Vec<Option<(&'static Vm, usize)>>> = Once::new();

/// Every VM, in manifest order.
static VMS: Once<Vec<&'static Vm>> = Once::new();

/// Publish the VMs and the CPU assignment (once, after launching).
pub fn publish(vms: Vec<&'static Vm>, assignment: Vec<Option<(&'static Vm, usize)>>) {
    RUNNING_VMS.store(vms.len(), Ordering::Release);
    VMS.call_once(|| vms);
    ASSIGNMENT.call_once(|| assignment);
}

/// Leak a VM so physical CPUs can share it for the life of the machine.
pub fn leak(vm: Vm) -> &'static Vm {
    Box::leak(Box::new(vm))
}

/// The vCPU pinned to physical CPU `pcpu`, if any.
pub fn assigned(pcpu: usize) -> Option<(&'static Vm, usize)> {
    ASSIGNMENT
        .get()
        .and_then(|a| a.get(pcpu).copied().flatten())
}

/// All VMs.
pub fn all() -> &'static [&'static Vm] {
    VMS.get().map(|v| v.as_slice()).unwrap_or(&[])
}

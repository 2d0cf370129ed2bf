//! Secondary vCPUs: [`start_cpu`] powers one on with PSCI `CPU_ON`; it comes up in `entry.S`'s
//! `rt_secondary_entry`, which turns on the MMU with the boot vCPU's tables, installs the
//! vectors and takes a stack of its own ([`STACK_SIZE`] bytes, one per slot); then its GIC
//! redistributor, CPU interface and virtual timer interrupt are set up, IRQs are unmasked and
//! the entry function runs with its argument.
//!
//! A vCPU's *slot* ([`slot_of`]) comes from its MPIDR as Wurley numbers vCPUs
//! (`src/vm/layout.rs`: vCPU n is Aff0 = n % 16, Aff1 = n / 16), so vCPU n is slot n; only
//! slots below [`MAX_CPUS`] can be started. [`cpus`] lists the vCPUs the device tree
//! describes (`/cpus/cpu@N`, `reg` = MPIDR affinity).
//!
//! Shared runtime state (the IRQ handler table and counters, the console) is safe to use from
//! every vCPU at once; [`crate::time`]'s timer functions act on the calling vCPU's own timer.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use wurley_abi::psci::{self, PsciReturn};

use crate::fdt::Fdt;
use crate::{gic, hyp, println, time};

/// vCPUs (slots) the runtime can run, the boot vCPU included.
pub const MAX_CPUS: usize = 8;
/// Stack of each secondary vCPU (`rt_secondary_stacks` in `entry.S`).
pub const STACK_SIZE: usize = 16 * 1024;

/// Per slot: the Rust entry (0: none) and its argument, read by the secondary once it runs.
static ENTRIES: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
static ARGS: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
/// Slots handed to a starting or running secondary (bit per slot).
static CLAIMED: AtomicU32 = AtomicU32::new(0);
/// Secondaries that reached their entry function.
static STARTED: AtomicU32 = AtomicU32::new(0);

unsafe extern "C" {
    /// The secondary entry point in `entry.S` (MMU off, `X0` = slot).
    fn rt_secondary_entry();
}

/// The slot of the vCPU with MPIDR affinity `mpidr_aff` (Aff3 in 39:32, Aff2..Aff0 in 23:0),
/// if it is one the runtime can run.
pub fn slot_of(mpidr_aff: u64) -> Option<usize> {
    if mpidr_aff & !0xffff != 0 {
        return None;
    }
    let (aff0, aff1) = (
        (mpidr_aff & 0xff) as usize,
        (mpidr_aff >> 8 & 0xff) as usize,
    );
    let slot = aff1.checked_mul(16)?.checked_add(aff0)?;
    (aff0 < 16 && slot < MAX_CPUS).then_some(slot)
}

/// The calling vCPU's slot.
pub fn this_cpu() -> Option<usize> {
    slot_of(crate::mpidr_affinity())
}

/// The MPIDR affinities of the vCPUs in the device tree, in `/cpus` order.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuList {
    mpidrs: [u64; MAX_CPUS],
    len: usize,
}

impl CpuList {
    /// The affinities.
    pub fn as_slice(&self) -> &[u64] {
        self.mpidrs.get(..self.len).unwrap_or(&[])
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The vCPUs `/cpus` describes: each child with `device_type = "cpu"` (or named `cpu@N`), its
/// `reg` as MPIDR affinity; at most [`MAX_CPUS`].
pub fn cpus(fdt: &Fdt<'_>) -> CpuList {
    let mut list = CpuList::default();
    let Some(node) = fdt.find_node("/cpus") else {
        return list;
    };
    let is_cpu = |n: &crate::fdt::Node<'_>| {
        n.prop_str("device_type") == Some("cpu") || n.unit_name() == "cpu"
    };
    for cpu in node.children().filter(is_cpu) {
        let Some((mpidr, _)) = node.reg(&cpu, 0) else {
            continue;
        };
        let Some(slot) = list.mpidrs.get_mut(list.len) else {
            break;
        };
        *slot = mpidr;
        list.len += 1;
    }
    list
}

/// Start the vCPU with MPIDR affinity `mpidr_aff` at `entry(arg)` (PSCI `CPU_ON`, `HVC #0`).
/// `Err` holds the PSCI error code: `-2` (INVALID_PARAMETERS) for a vCPU with no slot or this
/// vCPU itself, `-4` (ALREADY_ON) if it was started already, or what `CPU_ON` returned.
///
/// The entry runs on the new vCPU with IRQs unmasked, its GIC interface and virtual timer
/// interrupt set up; it must not return (it may call [`cpu_off`]).
pub fn start_cpu(mpidr_aff: u64, entry: fn(usize) -> !, arg: usize) -> Result<(), i64> {
    let code = |r: PsciReturn| i64::from(r.to_i32());
    let Some(slot) = slot_of(mpidr_aff).filter(|&s| Some(s) != this_cpu()) else {
        return Err(code(PsciReturn::InvalidParameters));
    };
    let bit = 1u32 << slot;
    if CLAIMED.fetch_or(bit, Ordering::AcqRel) & bit != 0 {
        return Err(code(PsciReturn::AlreadyOn));
    }
    let (Some(e), Some(a)) = (ENTRIES.get(slot), ARGS.get(slot)) else {
        return Err(code(PsciReturn::InvalidParameters));
    };
    e.store(entry as usize, Ordering::Release);
    a.store(arg, Ordering::Release);
    let r = hyp::hvc_smccc(
        psci::CPU_ON_64,
        [
            mpidr_aff,
            rt_secondary_entry as *const () as u64,
            slot as u64,
            0,
            0,
            0,
            0,
        ],
    );
    match r[0] as i64 {
        0 => Ok(()),
        err => {
            CLAIMED.fetch_and(!bit, Ordering::AcqRel);
            Err(err)
        }
    }
}

/// Secondaries that have reached their entry function since boot.
pub fn started() -> u32 {
    STARTED.load(Ordering::Acquire)
}

/// Power the calling secondary off (PSCI `CPU_OFF`); its slot can be started again.
pub fn cpu_off() -> ! {
    crate::mask_irqs();
    time::disarm();
    if let Some(slot) = this_cpu() {
        CLAIMED.fetch_and(!(1u32 << slot), Ordering::AcqRel);
    }
    hyp::hvc_smccc(psci::CPU_OFF, [0; 7]);
    // CPU_OFF does not return on success.
    loop {
        crate::wait_for_interrupt();
    }
}

/// Called by `entry.S` on a secondary, MMU on, on its own stack, IRQs masked.
#[unsafe(no_mangle)]
extern "C" fn rt_secondary_start(slot: usize) -> ! {
    if let Err(why) = gic::init_cpu() {
        println!("rt: vCPU {slot}: GIC setup failed: {why}");
    }
    time::init_cpu();
    let entry = ENTRIES.get(slot).map_or(0, |e| e.load(Ordering::Acquire));
    let arg = ARGS.get(slot).map_or(0, |a| a.load(Ordering::Acquire));
    if entry == 0 {
        println!("rt: vCPU {slot} started with no entry function");
        cpu_off();
    }
    // SAFETY: ENTRIES only ever holds 0 or a `fn(usize) -> !` stored by `start_cpu`.
    let f = unsafe { core::mem::transmute::<usize, fn(usize) -> !>(entry) };
    STARTED.fetch_add(1, Ordering::AcqRel);
    crate::enable_irqs();
    f(arg)
}

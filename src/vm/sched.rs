//! Scheduling vCPUs on physical CPUs: each physical CPU has a run queue (the fixed-priority
//! round-robin policy of [`crate::sched`]); a vCPU has an affinity (the CPU whose queue it
//! joins), a priority and a timeslice (set by the vCPU's configuration calls: the resource
//! manager sets them from the manifest for the VMs it launches).
//!
//! A vCPU is in one of three places: *idle* (powered off, or blocked in WFI), *queued* on its
//! CPU's run queue, or *running* there. Making a vCPU runnable ([`wake`]) queues it and, if it
//! runs elsewhere, sends that CPU the kick SGI; a queued vCPU of higher priority than the one
//! running preempts it at the next exit, a queued one of equal priority when the running one's
//! timeslice is used up (checked at the hypervisor tick). A guest's WFI blocks its vCPU (only
//! trapped when its CPU has other vCPUs to run) until an interrupt is pending for it or its
//! virtual timer is due, which the hypervisor timer then wakes.
//!
//! Per-CPU data: the run queue (locked; other CPUs enqueue into it), the reschedule flag, the
//! running vCPU's priority and timeslice end, the list of vCPUs with affinity to it. Lock
//! order: a run queue is innermost (nothing is locked while holding it).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use spin::{Mutex, Once};

use crate::arch::aarch64::{cpu, gic, percpu};
use crate::sched::RunQueue;

use super::machine::{self, KICK_SGI, VcpuSlot, Vm};

/// A vCPU in a run queue: (VM index in [`machine::all`], vCPU index).
pub type Entry = (u16, u16);

/// Nothing runs (priority slot of an idle CPU).
const NO_PRIORITY: u8 = u8::MAX;

/// vCPU places.
pub const IDLE: u8 = 0;
/// In its CPU's run queue.
pub const QUEUED: u8 = 1;
/// Running on its CPU.
pub const RUNNING: u8 = 2;

/// One physical CPU's scheduling state.
pub struct CpuSched {
    queue: Mutex<RunQueue<Entry>>,
    need_resched: AtomicBool,
    running_priority: AtomicU8,
    slice_end: AtomicU64,
    mpidr: u64,
    /// vCPUs with affinity to this CPU ([`set_affinity`] moves them). Lock order: before the
    /// run queue.
    residents: Mutex<Vec<Entry>>,
    /// How many there are, read without the lock on every vCPU load ([`shared`]).
    resident_count: AtomicUsize,
    /// The target of a directed yield ([`yield_to`]), picked before the queue's head once:
    /// an [`Entry`] packed by [`pack`], or [`NO_DONEE`].
    donee: AtomicU32,
}

static CPUS: Once<Vec<CpuSched>> = Once::new();

/// The proxy-scheduled vCPUs: no CPU's residents, but every CPU's tick looks at their timers
/// while they wait for a wake-up.
static PROXIED: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// Set up a run queue per physical CPU (`mpidrs[i]` is CPU `i`'s affinity).
pub fn init(mpidrs: &[u64]) {
    CPUS.call_once(|| {
        mpidrs
            .iter()
            .map(|&mpidr| CpuSched {
                queue: Mutex::new(RunQueue::new()),
                need_resched: AtomicBool::new(false),
                running_priority: AtomicU8::new(NO_PRIORITY),
                slice_end: AtomicU64::new(u64::MAX),
                mpidr,
                residents: Mutex::new(Vec::new()),
                resident_count: AtomicUsize::new(0),
                donee: AtomicU32::new(NO_DONEE),
            })
            .collect()
    });
}

fn cpu_sched(index: usize) -> Option<&'static CpuSched> {
    CPUS.get().and_then(|c| c.get(index))
}

/// Record where the vCPUs of VM `vi` (just given its slot) live: each on its CPU's resident
/// list, proxy-scheduled ones on none (the proxied list instead).
pub fn add_residents(vi: usize, vm: &Vm) {
    let Ok(v16) = u16::try_from(vi) else { return };
    for s in &vm.vcpus {
        let entry = (v16, s.index as u16);
        if s.proxy.get().is_some() {
            let mut p = PROXIED.lock();
            if p.try_reserve(1).is_ok() {
                p.push(entry);
            }
            continue;
        }
        let Some(cs) = cpu_sched(s.pcpu()) else {
            continue;
        };
        let mut r = cs.residents.lock();
        if r.try_reserve(1).is_ok() {
            r.push(entry);
            cs.resident_count.store(r.len(), Ordering::Release);
        }
    }
}

/// Forget the vCPUs of VM `vi` (retired: none of them is queued or running).
pub fn remove_residents(vi: usize) {
    let Ok(v16) = u16::try_from(vi) else { return };
    PROXIED.lock().retain(|e| e.0 != v16);
    for cs in CPUS.get().into_iter().flatten() {
        let mut r = cs.residents.lock();
        r.retain(|e| e.0 != v16);
        cs.resident_count.store(r.len(), Ordering::Release);
    }
}

/// Whether physical CPU `pcpu` has more than one vCPU to run (then guests' WFI is trapped).
pub fn shared(pcpu: usize) -> bool {
    cpu_sched(pcpu).is_some_and(|c| c.resident_count.load(Ordering::Acquire) > 1)
}

fn slot_of(e: Entry) -> Option<(&'static Vm, &'static VcpuSlot)> {
    let vm = machine::get(usize::from(e.0))?;
    Some((vm, vm.vcpus.get(usize::from(e.1))?))
}

fn this_cpu() -> Option<usize> {
    percpu::current().map(|c| c.index)
}

/// Put an idle vCPU in its CPU's run queue and make that CPU look at it. A proxy-scheduled
/// vCPU is never queued: its owner is told through the wake-up vIRQ instead.
pub fn make_runnable(slot: &VcpuSlot) {
    if let Some(proxy) = slot.proxy.get() {
        proxy.runnable();
        return;
    }
    if slot
        .place
        .compare_exchange(IDLE, QUEUED, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    let Some(cs) = cpu_sched(slot.pcpu()) else {
        return;
    };
    let entry = (slot.vm_index() as u16, slot.index as u16);
    // Preempted with part of its slice left: it resumes first within its level.
    let front = slot.slice_left.load(Ordering::Acquire) != 0;
    let queued = {
        let mut q = cs.queue.lock();
        if front {
            q.enqueue_front(entry, slot.priority)
        } else {
            q.enqueue(entry, slot.priority)
        }
    };
    if queued.is_err() {
        // Out of memory for the queue: leave the vCPU idle rather than lose track of it.
        slot.place.store(IDLE, Ordering::Release);
        log::error!("run queue of CPU {} full: vCPU not scheduled", slot.pcpu());
        return;
    }
    if this_cpu() == Some(slot.pcpu()) {
        if crate::sched::wake_preempts(current_priority(cs), slot.priority) {
            cs.need_resched.store(true, Ordering::Release);
        }
    } else {
        gic::send_sgi(KICK_SGI, cs.mpidr);
    }
}

fn current_priority(cs: &CpuSched) -> Option<u8> {
    let p = cs.running_priority.load(Ordering::Acquire);
    (p != NO_PRIORITY).then_some(p)
}

/// Something happened for `slot` (an interrupt became pending, it was powered on): wake it if
/// it is blocked, or make the CPU running it look at its interrupts again.
pub fn wake(slot: &VcpuSlot) {
    if slot.blocked.swap(false, Ordering::AcqRel) {
        make_runnable(slot);
        return;
    }
    let cpu = slot.proxy.get().map_or(Some(slot.pcpu()), |p| p.cpu());
    if slot.place.load(Ordering::Acquire) == RUNNING
        && let Some(cpu) = cpu
        && this_cpu() != Some(cpu)
        && let Some(cs) = cpu_sched(cpu)
    {
        gic::send_sgi(KICK_SGI, cs.mpidr);
    }
}

/// No directed-yield target.
const NO_DONEE: u32 = u32::MAX;

fn pack(e: Entry) -> u32 {
    (u32::from(e.0) << 16) | u32::from(e.1)
}

fn unpack(v: u32) -> Entry {
    ((v >> 16) as u16, v as u16)
}

/// `scheduler_yield` to `target` by the vCPU running on this CPU: if `target` waits in this
/// CPU's queue, it runs next, ahead of the queue's order (the yielder goes to the tail of its
/// level). Otherwise (running elsewhere, blocked, off, proxy-scheduled, on another CPU) the
/// call is a plain yield.
pub fn yield_to(target: &VcpuSlot) {
    let Some(me) = this_cpu() else { return };
    let waits_here = target.pcpu() == me && target.place.load(Ordering::Acquire) == QUEUED;
    if !waits_here || target.proxy.get().is_some() {
        log::debug!(
            "yield to vCPU {} of VM #{}: not waiting on CPU {me} (place {}): plain yield",
            target.index,
            target.vm_index(),
            target.place.load(Ordering::Acquire)
        );
        return;
    }
    if let Some(cs) = cpu_sched(me) {
        let entry = (target.vm_index() as u16, target.index as u16);
        cs.donee.store(pack(entry), Ordering::Release);
    }
}

/// The next vCPU for CPU `me`, now marked running.
pub fn pick(me: usize) -> Option<(&'static Vm, usize)> {
    let cs = cpu_sched(me)?;
    loop {
        // Directed yields are rare: look before the atomic swap.
        let donee = if cs.donee.load(Ordering::Acquire) == NO_DONEE {
            NO_DONEE
        } else {
            cs.donee.swap(NO_DONEE, Ordering::AcqRel)
        };
        let picked = {
            let mut q = cs.queue.lock();
            let wanted = unpack(donee);
            match (donee != NO_DONEE)
                .then(|| q.remove_where(|&e| e == wanted))
                .flatten()
            {
                Some(found) => Some(found),
                None => q.pick(),
            }
        };
        let (entry, _) = picked?;
        let Some((vm, slot)) = slot_of(entry) else {
            continue;
        };
        if slot
            .place
            .compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            cs.need_resched.store(false, Ordering::Release);
            cs.running_priority.store(slot.priority, Ordering::Release);
            let now = cpu::counter();
            let left = slot.slice_left.swap(0, Ordering::AcqRel);
            let slice = if left != 0 {
                left
            } else {
                ns_to_ticks(slot.timeslice_ns)
            };
            cs.slice_end
                .store(now.saturating_add(slice), Ordering::Release);
            return Some((vm, slot.index));
        }
    }
}

/// Why a vCPU left its CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leave {
    /// Preempted: by a higher priority before its slice ran out, back to the *head* of its
    /// level keeping what was left of the slice; else (slice used up, or moved to another CPU)
    /// to the tail with a fresh one.
    Preempted,
    /// Yielded (WFE, `scheduler_yield`): to the tail of its level with a fresh slice.
    Yielded,
    /// Blocked in WFI until woken.
    Blocked,
    /// Powered off, or its VM ended.
    Stopped,
}

/// The vCPU that ran on `me` has left it.
pub fn put(me: usize, slot: &VcpuSlot, leave: Leave) {
    let mut left = 0;
    if let Some(cs) = cpu_sched(me) {
        cs.running_priority.store(NO_PRIORITY, Ordering::Release);
        let end = cs.slice_end.swap(u64::MAX, Ordering::AcqRel);
        if leave == Leave::Preempted && slot.pcpu() == me && end != u64::MAX {
            left = end.saturating_sub(cpu::counter());
        }
    }
    slot.slice_left.store(left, Ordering::Release);
    slot.place.store(IDLE, Ordering::Release);
    match leave {
        Leave::Preempted | Leave::Yielded => make_runnable(slot),
        // A wake between blocking and now found the vCPU still running and only cleared
        // `blocked`: queueing it is then up to us.
        Leave::Blocked if !slot.blocked.load(Ordering::Acquire) => make_runnable(slot),
        Leave::Blocked | Leave::Stopped => {}
    }
}

/// Block the vCPU running on `me` in WFI unless something is already pending for it;
/// `deadline` is its virtual timer's expiry (counter ticks) if armed. Returns whether it
/// blocked.
pub fn block(vm: &Vm, slot: &VcpuSlot, deadline: Option<u64>) -> bool {
    slot.deadline
        .store(deadline.unwrap_or(u64::MAX), Ordering::Release);
    slot.blocked.store(true, Ordering::SeqCst);
    // Re-check after publishing `blocked`: an interrupt made pending before this point is seen
    // here; one made pending after it finds `blocked` set and wakes the vCPU.
    let due = deadline.is_some_and(|d| d <= cpu::counter());
    if due || vm.vgic.lock().pending_for(slot.index) {
        slot.blocked.store(false, Ordering::SeqCst);
        slot.deadline.store(u64::MAX, Ordering::Release);
        return false;
    }
    true
}

/// Whether the vCPU running on `me` should give way now (checked after each exit).
pub fn should_switch(me: usize) -> bool {
    let Some(cs) = cpu_sched(me) else {
        return false;
    };
    // A plain load first: the flag is almost always clear, and an atomic swap on every exit
    // costs more than a load.
    if !cs.need_resched.load(Ordering::Acquire) || !cs.need_resched.swap(false, Ordering::AcqRel) {
        return false;
    }
    must_switch(cs)
}

/// Whether the vCPU running on `me` should give way, without consuming the request: a
/// `vcpu_run` on `me` stops the vCPU it runs for it, and the caller's own loop then sees the
/// request with [`should_switch`].
pub fn switch_pending(me: usize) -> bool {
    cpu_sched(me).is_some_and(|cs| cs.need_resched.load(Ordering::Acquire) && must_switch(cs))
}

fn must_switch(cs: &CpuSched) -> bool {
    let waiting = cs.queue.lock().highest();
    let running = cs.running_priority.load(Ordering::Acquire);
    match waiting {
        Some(w) if w > running => true,
        Some(w) if w == running => cpu::counter() >= cs.slice_end.load(Ordering::Acquire),
        _ => false,
    }
}

/// Whether another vCPU of at least `slot`'s priority waits on its CPU (a WFE yields to it),
/// or a directed yield named one that waits there.
pub fn others_waiting(slot: &VcpuSlot) -> bool {
    cpu_sched(slot.pcpu()).is_some_and(|cs| {
        let q = cs.queue.lock();
        let donee = cs.donee.load(Ordering::Acquire);
        (donee != NO_DONEE && q.contains(unpack(donee)))
            || q.highest().is_some_and(|w| w >= slot.priority)
    })
}

/// The kick SGI or the tick arrived on `me` while a vCPU runs: note whether it must give way.
pub fn check_preempt(me: usize) {
    let Some(cs) = cpu_sched(me) else { return };
    let running = cs.running_priority.load(Ordering::Acquire);
    if running == NO_PRIORITY {
        return;
    }
    let waiting = cs.queue.lock().highest();
    let due = match waiting {
        Some(w) if w > running => true,
        Some(w) if w == running => cpu::counter() >= cs.slice_end.load(Ordering::Acquire),
        _ => false,
    };
    if due {
        cs.need_resched.store(true, Ordering::Release);
    }
}

/// The hypervisor tick on `me`: wake vCPUs whose virtual timer fell due while they were
/// blocked, and check the running one's timeslice. Returns the earliest future wake-up time
/// (counter ticks) among this CPU's blocked vCPUs, for the next timer programming.
pub fn tick(me: usize) -> Option<u64> {
    let cs = cpu_sched(me)?;
    let now = cpu::counter();
    let mut next: Option<u64> = None;
    let residents = cs.residents.lock();
    let proxied = PROXIED.lock();
    for &e in residents.iter().chain(proxied.iter()) {
        let Some((_, slot)) = slot_of(e) else {
            continue;
        };
        let deadline = slot.deadline.load(Ordering::Acquire);
        if deadline == u64::MAX || !slot.blocked.load(Ordering::Acquire) {
            continue;
        }
        if deadline <= now {
            slot.deadline.store(u64::MAX, Ordering::Release);
            wake(slot);
        } else {
            next = Some(next.map_or(deadline, |n| n.min(deadline)));
        }
    }
    drop(proxied);
    drop(residents);
    check_preempt(me);
    next
}

/// The MPIDR of physical CPU `pcpu` (0 if there is none).
pub fn cpu_mpidr(pcpu: usize) -> u64 {
    cpu_sched(pcpu).map_or(0, |c| c.mpidr)
}

/// Physical CPUs the scheduler runs.
pub fn cpu_count() -> usize {
    CPUS.get().map_or(0, Vec::len)
}

/// Move `slot` (vCPU of the VM at `vm_index`) to physical CPU `cpu` (`vcpu_set_affinity`).
/// A queued vCPU moves to `cpu`'s queue at once; a running one is made to leave its CPU
/// (kick) and joins `cpu`'s queue as it does; an idle one is woken there later. Errors:
/// `ArgumentInvalid` for a CPU the scheduler does not run, `Denied` for a proxy-scheduled
/// vCPU (it runs on its caller's CPU).
pub fn set_affinity(slot: &VcpuSlot, cpu: usize) -> Result<(), wurley_abi::Error> {
    let new = cpu_sched(cpu).ok_or(wurley_abi::Error::ArgumentInvalid)?;
    if slot.proxy.get().is_some() {
        return Err(wurley_abi::Error::Denied);
    }
    let old_cpu = slot.swap_pcpu(cpu);
    if old_cpu == cpu {
        return Ok(());
    }
    let entry = (slot.vm_index() as u16, slot.index as u16);
    if let Some(old) = cpu_sched(old_cpu) {
        let mut list = old.residents.lock();
        list.retain(|&e| e != entry);
        old.resident_count.store(list.len(), Ordering::Release);
    }
    {
        let mut list = new.residents.lock();
        if list.try_reserve(1).is_err() {
            return Err(wurley_abi::Error::Nomem);
        }
        list.push(entry);
        new.resident_count.store(list.len(), Ordering::Release);
    }
    match slot.place.load(Ordering::Acquire) {
        QUEUED => {
            let removed = cpu_sched(old_cpu)
                .and_then(|old| old.queue.lock().remove_where(|&e| e == entry))
                .is_some();
            // Not found: the old CPU has just picked it, and it leaves there at its next exit
            // (it is not on its affinity CPU any more), which queues it here.
            if removed {
                slot.place.store(IDLE, Ordering::Release);
                make_runnable(slot);
            } else {
                kick_cpu(old_cpu);
            }
        }
        RUNNING => kick_cpu(old_cpu),
        _ => {
            // Idle: blocked or off. A blocked vCPU's timer is now watched by the new CPU's
            // tick; look at it now rather than at the next tick.
            kick_cpu(cpu);
        }
    }
    log::debug!(
        "vCPU {} of VM #{}: affinity CPU {old_cpu} -> CPU {cpu}",
        slot.index,
        slot.vm_index()
    );
    Ok(())
}

/// Make physical CPU `cpu` look at its run queue and vCPUs: the kick SGI, or on this CPU a
/// reschedule request.
fn kick_cpu(cpu: usize) {
    let Some(cs) = cpu_sched(cpu) else { return };
    if this_cpu() == Some(cpu) {
        cs.need_resched.store(true, Ordering::Release);
    } else {
        gic::send_sgi(KICK_SGI, cs.mpidr);
    }
}

/// Nanoseconds to counter ticks.
pub fn ns_to_ticks(ns: u64) -> u64 {
    let freq = cpu::counter_frequency();
    ((u128::from(ns) * u128::from(freq)) / 1_000_000_000) as u64
}

//! [`Scheduler`]: the whole policy for one physical CPU — its [`RunQueue`], the vCPU holding the
//! CPU with its [`Slice`], and directed yields — as Gunyah's `scheduler_fprr` runs it
//! (`get_next_target`, `update_timeslice`, `select_yield_target`, `scheduler_yield[_to]`).
//!
//! Rules, at each [`Scheduler::schedule`]:
//! - the *active* vCPU (the one holding the CPU) is charged for the time since the last call; if
//!   its slice ran out it gets a fresh one, and a directed yield it was making ends;
//! - the head of the highest waiting level takes over if it has a higher priority, or the same
//!   priority and the active vCPU's slice ran out;
//! - the vCPU it took over from goes back: to the *tail* of its level with a fresh slice if its
//!   slice ran out, else to the *head* of its level keeping what was left of its slice (it was
//!   preempted by a higher priority and resumes first once that is gone);
//! - if the active vCPU is making a directed yield and the caller says its target can run, the
//!   target runs on the active vCPU's time and priority.
//!
//! A vCPU woken ([`Scheduler::wake`]) joins the tail of its level with a fresh slice. Changing a
//! queued vCPU's parameters is [`Scheduler::remove`] then [`Scheduler::wake`] (Gunyah allows it
//! only before a vCPU is activated). Which CPU a vCPU belongs to, whether a yield target may run
//! here, pending interrupts that skip a yield, and IPIs are the caller's: this is plain data,
//! one per physical CPU, under whatever lock the caller keeps it in.

use wurley_abi::Error;

use super::params::SchedParams;
use super::preempt::{should_preempt, slice_timer_needed, wake_preempts};
use super::runqueue::RunQueue;
use super::timeslice::Slice;

/// A queued vCPU with what it resumes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Waiting<T> {
    vcpu: T,
    params: SchedParams,
    /// The slice it starts with when picked: full, or what was left when preempted.
    budget_ns: u64,
    /// A directed yield it was making when preempted.
    yield_to: Option<T>,
}

/// The vCPU holding a CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Active<T> {
    /// The vCPU.
    pub vcpu: T,
    /// Its priority and timeslice.
    pub params: SchedParams,
    /// Its slice, as charged at the last [`Scheduler::schedule`].
    pub slice: Slice,
    /// The target of the directed yield it is making.
    pub yield_to: Option<T>,
}

/// One physical CPU's scheduling state.
#[derive(Clone, Debug)]
pub struct Scheduler<T> {
    queue: RunQueue<Waiting<T>>,
    active: Option<Active<T>>,
    /// The yield target running on the active vCPU's behalf since the last schedule.
    donee: Option<T>,
}

impl<T: Copy + Eq> Default for Scheduler<T> {
    fn default() -> Self {
        Scheduler::new()
    }
}

impl<T: Copy + Eq> Scheduler<T> {
    /// An idle CPU with nothing queued (allocates nothing).
    pub const fn new() -> Self {
        Scheduler {
            queue: RunQueue::new(),
            active: None,
            donee: None,
        }
    }

    /// `vcpu` became runnable here with `params`: it joins the tail of its level with a fresh
    /// slice. Returns whether the CPU must reschedule now ([`wake_preempts`]: it is idle, or
    /// `vcpu` has a higher priority than the active one). Waking the active vCPU while it makes
    /// a directed yield ends the yield (it has something to do) and returns `true`; waking a
    /// queued vCPU only drops a directed yield it was making; otherwise waking one already here
    /// changes nothing. `NOMEM` if the queue could not grow.
    ///
    /// Waking one of *equal* priority does not preempt, but may need the slice timer that was
    /// not needed before: re-read [`Scheduler::deadline`] after any wake.
    pub fn wake(&mut self, vcpu: T, params: SchedParams) -> Result<bool, Error> {
        if let Some(a) = self.active.as_mut().filter(|a| a.vcpu == vcpu) {
            let was_yielding = a.yield_to.take().is_some();
            if was_yielding {
                self.donee = None;
            }
            return Ok(was_yielding);
        }
        if let Some(w) = self.queue.find_mut(|w| w.vcpu == vcpu) {
            w.yield_to = None;
            return Ok(false);
        }
        let entry = Waiting {
            vcpu,
            params,
            budget_ns: params.timeslice_ns(),
            yield_to: None,
        };
        self.queue.enqueue(entry, params.priority())?;
        Ok(wake_preempts(self.active_priority(), params.priority()))
    }

    /// `vcpu` can no longer run here (blocked, powered off, migrated). If it was the active one
    /// the CPU has none until the next [`Scheduler::schedule`], which the caller must make.
    /// Whether it was here.
    pub fn remove(&mut self, vcpu: T) -> bool {
        if self.active.is_some_and(|a| a.vcpu == vcpu) {
            self.active = None;
            self.donee = None;
            return true;
        }
        self.queue.remove_where(|w| w.vcpu == vcpu).is_some()
    }

    /// Decide who runs from `now_ns` on: `None` to idle, else the vCPU to run — the active one,
    /// or the target of its directed yield if `can_yield_to(target)` says that target may run
    /// on this CPU now (runnable, not running elsewhere); if not, the yield ends.
    pub fn schedule(&mut self, now_ns: u64, can_yield_to: impl FnOnce(T) -> bool) -> Option<T> {
        let mut expired = false;
        if let Some(a) = self.active.as_mut() {
            if a.slice.expired(now_ns) {
                expired = true;
                a.slice = Slice::start(a.params.timeslice_ns(), now_ns);
                a.yield_to = None;
            } else {
                a.slice.charge(now_ns);
            }
        }
        if let Some(top) = self.queue.highest() {
            let switch = match self.active {
                None => true,
                Some(a) if expired => top >= a.params.priority(),
                Some(a) => top > a.params.priority(),
            };
            if switch && let Some((next, _)) = self.queue.pick() {
                let new = Active {
                    vcpu: next.vcpu,
                    params: next.params,
                    slice: Slice::start(next.budget_ns, now_ns),
                    yield_to: next.yield_to,
                };
                if let Some(prev) = self.active.replace(new) {
                    let back = Waiting {
                        vcpu: prev.vcpu,
                        params: prev.params,
                        budget_ns: prev.slice.budget(),
                        yield_to: prev.yield_to,
                    };
                    let priority = prev.params.priority();
                    // Cannot fail: `pick` just freed a node, and `prev` was not queued.
                    let _ = if expired {
                        self.queue.enqueue(back, priority)
                    } else {
                        self.queue.enqueue_front(back, priority)
                    };
                }
            }
        }
        self.donee = None;
        let a = self.active.as_mut()?;
        if let Some(target) = a.yield_to {
            if target != a.vcpu && can_yield_to(target) {
                self.donee = Some(target);
            } else {
                a.yield_to = None;
            }
        }
        Some(self.donee.unwrap_or(a.vcpu))
    }

    /// `scheduler_yield` hint 0 by `who`, which the last [`Scheduler::schedule`] returned: if it
    /// runs on another vCPU's donated time, that directed yield ends; if it is the active vCPU,
    /// it gives up the rest of its slice (so the next schedule lets an equal or higher priority
    /// run, or gives it a fresh slice). Whether `who` was running here; the caller schedules
    /// next either way.
    pub fn yield_now(&mut self, who: T) -> bool {
        let Some(a) = self.active.as_mut() else {
            return false;
        };
        if self.donee == Some(who) {
            a.yield_to = None;
            self.donee = None;
            true
        } else if a.vcpu == who {
            a.slice.discard();
            true
        } else {
            false
        }
    }

    /// `scheduler_yield` hint 1 by `who` (which the last [`Scheduler::schedule`] returned) to
    /// `target`. If `who` is the active vCPU it starts donating its slice to `target`; if it
    /// runs on a donation, yielding back to the donor ends the donation and yielding elsewhere
    /// moves it to `target`. Yielding to oneself does nothing. Whether `who` was running here;
    /// the caller schedules next either way.
    pub fn yield_to(&mut self, who: T, target: T) -> bool {
        let Some(a) = self.active.as_mut() else {
            return false;
        };
        if self.donee == Some(who) {
            if target == a.vcpu {
                a.yield_to = None;
                self.donee = None;
            } else {
                a.yield_to = Some(target);
            }
            true
        } else if a.vcpu == who {
            if target != who {
                a.yield_to = Some(target);
            }
            true
        } else {
            false
        }
    }

    /// When the timer must next fire for this CPU's slice, if at all: the active vCPU's slice
    /// end when a vCPU of at least its priority waits or it is donating its slice
    /// ([`slice_timer_needed`]). Combine with other deadlines through
    /// [`super::next_deadline`].
    pub fn deadline(&self) -> Option<u64> {
        let a = self.active.as_ref()?;
        slice_timer_needed(
            a.params.priority(),
            self.queue.highest(),
            a.yield_to.is_some(),
        )
        .then(|| a.slice.end())
    }

    /// Whether a [`Scheduler::schedule`] at `now_ns` would change who runs for a reason of its
    /// own (a wake-up that preempts says so itself): the CPU is idle with something queued, the
    /// active vCPU must give way ([`should_preempt`]), or its directed yield ran out with its
    /// slice.
    pub fn need_schedule(&self, now_ns: u64) -> bool {
        match &self.active {
            None => !self.queue.is_empty(),
            Some(a) => {
                let remaining = a.slice.remaining(now_ns);
                should_preempt(a.params.priority(), remaining, self.queue.highest())
                    || (a.yield_to.is_some() && remaining == 0)
            }
        }
    }

    /// The vCPU holding the CPU, as of the last [`Scheduler::schedule`] and later removals.
    pub fn active(&self) -> Option<&Active<T>> {
        self.active.as_ref()
    }

    /// The vCPU running, as the last [`Scheduler::schedule`] returned it (the yield target
    /// during a directed yield), unless it has been removed or its donation ended since.
    pub fn running(&self) -> Option<T> {
        self.donee.or(self.active.map(|a| a.vcpu))
    }

    /// The active vCPU's priority.
    pub fn active_priority(&self) -> Option<u8> {
        self.active.map(|a| a.params.priority())
    }

    /// The highest priority waiting in the queue.
    pub fn highest_waiting(&self) -> Option<u8> {
        self.queue.highest()
    }

    /// The queued vCPUs with their priorities, in the order they would run.
    pub fn waiting(&self) -> impl Iterator<Item = (T, u8)> + '_ {
        self.queue.iter().map(|(w, p)| (w.vcpu, p))
    }

    /// The number of queued vCPUs (not counting the active one).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Whether `vcpu` is active or queued here.
    pub fn contains(&self, vcpu: T) -> bool {
        self.active.is_some_and(|a| a.vcpu == vcpu)
            || self.queue.iter().any(|(w, _)| w.vcpu == vcpu)
    }

    /// Make room so the next `additional` wakes of new vCPUs cannot fail with `NOMEM`.
    pub fn reserve(&mut self, additional: usize) -> Result<(), Error> {
        self.queue.reserve(additional)
    }
}

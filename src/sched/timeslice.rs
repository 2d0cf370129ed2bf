//! [`Slice`]: the running vCPU's timeslice accounting (Gunyah's `schedtime` plus
//! `scheduler_active_timeslice`), and [`next_deadline`], the earliest of the times the EL2
//! timer must fire at.
//!
//! Times are nanoseconds of any monotonic clock; the caller converts to and from counter
//! ticks. Arithmetic saturates, and a clock read earlier than the slice's start counts as no
//! time used, so no input panics.

/// A running vCPU's budget: it started (or was last charged) at `start_ns` with `budget_ns`
/// left, so the slice ends at `start_ns + budget_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slice {
    start_ns: u64,
    budget_ns: u64,
}

impl Slice {
    /// A slice of `budget_ns` starting at `now_ns`: a fresh timeslice, or what was left of one
    /// when the vCPU was preempted.
    pub const fn start(budget_ns: u64, now_ns: u64) -> Slice {
        Slice {
            start_ns: now_ns,
            budget_ns,
        }
    }

    /// When the slice runs out (saturating at `u64::MAX`).
    pub const fn end(&self) -> u64 {
        self.start_ns.saturating_add(self.budget_ns)
    }

    /// The budget at the last start or charge.
    pub const fn budget(&self) -> u64 {
        self.budget_ns
    }

    /// What is left at `now_ns` (0 once the slice has run out).
    pub const fn remaining(&self, now_ns: u64) -> u64 {
        if now_ns <= self.start_ns {
            self.budget_ns
        } else {
            self.end().saturating_sub(now_ns)
        }
    }

    /// Whether the slice has run out at `now_ns`.
    pub const fn expired(&self, now_ns: u64) -> bool {
        self.remaining(now_ns) == 0
    }

    /// Account the time used up to `now_ns`: the budget becomes what is left, starting at
    /// `now_ns` (the end does not move). Returns what is left. Charging repeatedly is the same
    /// as charging once at the latest time.
    pub const fn charge(&mut self, now_ns: u64) -> u64 {
        if now_ns > self.start_ns {
            self.budget_ns = self.remaining(now_ns);
            self.start_ns = now_ns;
        }
        self.budget_ns
    }

    /// Give up the rest of the slice (a generic yield): it has run out from now on.
    pub const fn discard(&mut self) {
        self.budget_ns = 0;
    }
}

/// The earliest of some optional deadlines (the slice end if a timer is needed for it, a blocked
/// vCPU's virtual timer, ...), or `None` if there is none: when to program the EL2 timer.
pub fn next_deadline(deadlines: impl IntoIterator<Item = Option<u64>>) -> Option<u64> {
    deadlines.into_iter().flatten().min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_slice() {
        let s = Slice::start(5_000, 1_000);
        assert_eq!(s.end(), 6_000);
        assert_eq!(s.remaining(1_000), 5_000);
        assert_eq!(s.remaining(3_500), 2_500);
        assert!(!s.expired(5_999));
        assert_eq!(s.remaining(6_000), 0);
        assert!(s.expired(6_000));
        assert!(s.expired(u64::MAX));
    }

    #[test]
    fn partial_charges_keep_the_end() {
        let mut s = Slice::start(5_000, 1_000);
        assert_eq!(s.charge(2_000), 4_000);
        assert_eq!(s.end(), 6_000);
        assert_eq!(s.charge(2_000), 4_000);
        assert_eq!(s.charge(4_500), 1_500);
        assert_eq!(s.end(), 6_000);
        assert_eq!(s.charge(9_000), 0);
        assert!(s.expired(9_000));
        // Resuming a preempted vCPU later with what it had left.
        let mut s = Slice::start(5_000, 0);
        let left = s.charge(3_000);
        let r = Slice::start(left, 50_000);
        assert_eq!(r.end(), 52_000);
    }

    #[test]
    fn clock_going_backwards_uses_nothing() {
        let mut s = Slice::start(5_000, 10_000);
        assert_eq!(s.remaining(0), 5_000);
        assert_eq!(s.charge(3), 5_000);
        assert_eq!(s.end(), 15_000);
    }

    #[test]
    fn saturation() {
        let s = Slice::start(u64::MAX, u64::MAX - 1);
        assert_eq!(s.end(), u64::MAX);
        assert!(!s.expired(u64::MAX - 1));
        let mut s = Slice::start(0, 0);
        assert!(s.expired(0));
        assert_eq!(s.charge(u64::MAX), 0);
    }

    #[test]
    fn discard() {
        let mut s = Slice::start(5_000, 1_000);
        s.discard();
        assert!(s.expired(1_000));
        assert_eq!(s.end(), 1_000);
    }

    #[test]
    fn deadlines() {
        assert_eq!(next_deadline([]), None);
        assert_eq!(next_deadline([None, None]), None);
        assert_eq!(next_deadline([None, Some(7), Some(3), None]), Some(3));
        assert_eq!(next_deadline([Some(u64::MAX)]), Some(u64::MAX));
    }
}

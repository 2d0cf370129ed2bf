//! The preemption rules of fixed-priority round-robin, as functions of priorities and the
//! running vCPU's slice: when the running vCPU must give way ([`should_preempt`]), when a wake-up
//! reschedules at once ([`wake_preempts`]), and when its slice end needs a timer
//! ([`slice_timer_needed`]).
//!
//! From Gunyah's `get_next_target`: a waiting vCPU of higher priority always wins; one of equal
//! priority wins once the running vCPU's timeslice has run out; a lower one never does (the
//! running vCPU then just starts a fresh slice).

/// Whether the running vCPU (priority `running_priority`, `slice_remaining_ns` left of its
/// slice) must give way to the highest waiting priority `waiting` (`None`: nothing waits). If
/// its slice ran out and it keeps the CPU, it starts a fresh slice.
pub const fn should_preempt(
    running_priority: u8,
    slice_remaining_ns: u64,
    waiting: Option<u8>,
) -> bool {
    match waiting {
        Some(w) if w > running_priority => true,
        Some(w) => w == running_priority && slice_remaining_ns == 0,
        None => false,
    }
}

/// Whether a vCPU of priority `woken` becoming runnable on a CPU running `current` (`None`:
/// idle) preempts it at once: an idle CPU always reschedules, a busy one only for a strictly
/// higher priority (`scheduler_will_preempt_current`). One of equal priority waits for the
/// running vCPU's slice to end — which now needs a timer if it did not before (see
/// [`slice_timer_needed`]).
pub const fn wake_preempts(current: Option<u8>, woken: u8) -> bool {
    match current {
        None => true,
        Some(c) => woken > c,
    }
}

/// Whether the end of the running vCPU's slice needs the timer: only if a vCPU of at least its
/// priority waits (a lower one would not get the CPU anyway), or it is donating its slice in a
/// directed yield (`yielding`), which ends with the slice (Gunyah's `set_next_timeout`).
pub const fn slice_timer_needed(running_priority: u8, waiting: Option<u8>, yielding: bool) -> bool {
    yielding
        || match waiting {
            Some(w) => w >= running_priority,
            None => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preempt_rules() {
        // Nothing waits: never.
        assert!(!should_preempt(32, 0, None));
        assert!(!should_preempt(0, 1000, None));
        // Higher waits: always, slice or not.
        assert!(should_preempt(32, 1000, Some(33)));
        assert!(should_preempt(0, u64::MAX, Some(63)));
        // Equal waits: only once the slice is used up.
        assert!(!should_preempt(32, 1, Some(32)));
        assert!(should_preempt(32, 0, Some(32)));
        // Lower waits: never.
        assert!(!should_preempt(32, 0, Some(31)));
        assert!(!should_preempt(63, 0, Some(0)));
    }

    #[test]
    fn wake_rules() {
        assert!(wake_preempts(None, 0));
        assert!(wake_preempts(None, 63));
        assert!(wake_preempts(Some(10), 11));
        assert!(!wake_preempts(Some(10), 10));
        assert!(!wake_preempts(Some(10), 9));
        assert!(!wake_preempts(Some(63), 63));
    }

    #[test]
    fn timer_rules() {
        assert!(!slice_timer_needed(32, None, false));
        assert!(!slice_timer_needed(32, Some(31), false));
        assert!(slice_timer_needed(32, Some(32), false));
        assert!(slice_timer_needed(32, Some(40), false));
        assert!(slice_timer_needed(32, None, true));
    }
}

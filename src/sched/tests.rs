//! Host tests of the policy as a whole: strict priority, round-robin fairness in simulated time,
//! timeslice accounting, wake-up preemption, removal, yields, and randomized checks of the run
//! queue against a plain `Vec` model and of [`Scheduler`]'s invariants.

#![allow(clippy::unwrap_used)]

use alloc::vec;
use alloc::vec::Vec;

use super::*;

const US: u64 = 1_000;
const MS: u64 = 1_000_000;

/// Deterministic xorshift64.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn params(priority: u8) -> SchedParams {
    SchedParams::new(priority, TIMESLICE_DEFAULT_NS).unwrap()
}

fn params_ts(priority: u8, timeslice_ns: u64) -> SchedParams {
    SchedParams::new(priority, timeslice_ns).unwrap()
}

/// Schedule with every yield target allowed.
fn run(s: &mut Scheduler<u32>, now: u64) -> Option<u32> {
    s.schedule(now, |_| true)
}

fn waiting(s: &Scheduler<u32>) -> Vec<u32> {
    s.waiting().map(|(v, _)| v).collect()
}

/// Run `s` until `end`: the vCPU running exits to EL2 at random (every 20 µs..2 ms, which
/// reschedules), and the slice timer fires at [`Scheduler::deadline`] up to `late_ns` late.
/// Returns the run time of each of vCPUs `0..n`.
fn simulate(
    s: &mut Scheduler<u32>,
    n: usize,
    end: u64,
    rng: &mut XorShift,
    late_ns: u64,
) -> Vec<u64> {
    let mut ran = vec![0u64; n];
    let mut now = 0;
    while now < end {
        let running = run(s, now);
        let exit = now + 20 * US + rng.below(2 * MS);
        let timer = s.deadline().map(|d| d.max(now) + rng.below(late_ns + 1));
        let next = next_deadline([Some(exit), timer, Some(end)]).unwrap();
        if let Some(v) = running {
            ran[v as usize] += next - now;
        }
        now = next;
    }
    ran
}

fn assert_share(ran: &[u64], weights: &[u64], tolerance_percent: u64) {
    let total: u64 = ran.iter().sum();
    let weight: u64 = weights.iter().sum();
    for (i, (&r, &w)) in ran.iter().zip(weights).enumerate() {
        let expected = total * w / weight;
        let diff = r.abs_diff(expected);
        assert!(
            diff * 100 <= expected * tolerance_percent,
            "vCPU {i}: ran {r} ns, expected {expected} ns ±{tolerance_percent}% (all: {ran:?})"
        );
    }
}

#[test]
fn strict_priority_runqueue() {
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    let mut q = RunQueue::new();
    for t in 0..200u32 {
        q.enqueue(t, rng.below(64) as u8).unwrap();
    }
    let mut last = PRIORITY_MAX;
    while let Some((_, p)) = q.pick() {
        assert!(p <= last, "picked {p} after {last}");
        last = p;
    }
}

#[test]
fn strict_priority_scheduler() {
    let mut s = Scheduler::new();
    for (v, p) in [(0, 10), (1, 20), (2, 30), (3, 30), (4, 0)] {
        s.wake(v, params(p)).unwrap();
    }
    let mut rng = XorShift(7);
    let ran = simulate(&mut s, 5, 1_000 * MS, &mut rng, 0);
    assert_eq!((ran[0], ran[1], ran[4]), (0, 0, 0), "{ran:?}");
    assert_share(&ran[2..4], &[1, 1], 2);
    // With the top level gone, the next one runs alone.
    assert!(s.remove(2) && s.remove(3));
    assert_eq!(run(&mut s, 2_000 * MS), Some(1));
    assert_eq!(run(&mut s, 3_000 * MS), Some(1));
    assert_eq!(waiting(&s), vec![0, 4]);
}

#[test]
fn round_robin_is_fair() {
    let mut s = Scheduler::new();
    for v in 0..5 {
        s.wake(v, params(PRIORITY_DEFAULT)).unwrap();
    }
    let mut rng = XorShift(0xdead_beef);
    let ran = simulate(&mut s, 5, 10_000 * MS, &mut rng, 0);
    assert_eq!(ran.iter().sum::<u64>(), 10_000 * MS);
    assert_share(&ran, &[1; 5], 2);
}

#[test]
fn round_robin_with_a_late_timer_is_fair() {
    let mut s = Scheduler::new();
    for v in 0..3 {
        s.wake(v, params_ts(PRIORITY_DEFAULT, MS)).unwrap();
    }
    let mut rng = XorShift(99);
    let ran = simulate(&mut s, 3, 5_000 * MS, &mut rng, 300 * US);
    assert_share(&ran, &[1; 3], 3);
}

#[test]
fn round_robin_shares_follow_timeslices() {
    let mut s = Scheduler::new();
    for (v, ts) in [(0, MS), (1, 2 * MS), (2, 4 * MS)] {
        s.wake(v, params_ts(12, ts)).unwrap();
    }
    let mut rng = XorShift(3);
    let ran = simulate(&mut s, 3, 10_000 * MS, &mut rng, 0);
    assert_share(&ran, &[1, 2, 4], 3);
}

#[test]
fn preempted_low_priority_vcpus_stay_fair() {
    // A high-priority vCPU wakes every 10 ms for 1 ms; two equal low ones share the rest.
    let (hi, lo) = (params(40), params(20));
    let mut s = Scheduler::new();
    s.wake(1, lo).unwrap();
    s.wake(2, lo).unwrap();
    let mut rng = XorShift(0xfeed);
    let mut ran = [0u64; 3];
    let mut now = 0;
    let mut next_wake = 3 * MS;
    let mut hi_until = None;
    let end = 10_000 * MS;
    while now < end {
        if now >= next_wake {
            assert!(s.wake(0, hi).unwrap());
            hi_until = Some(now + MS);
            next_wake += 10 * MS;
        }
        if hi_until.is_some_and(|u| now >= u) {
            assert!(s.remove(0));
            hi_until = None;
        }
        let running = run(&mut s, now);
        let exit = now + 20 * US + rng.below(3 * MS);
        let next = next_deadline([
            Some(exit),
            s.deadline(),
            Some(next_wake),
            hi_until,
            Some(end),
        ])
        .unwrap();
        if let Some(v) = running {
            ran[v as usize] += next - now;
        }
        now = next;
    }
    assert_share(&ran, &[2, 9, 9], 2);
}

#[test]
fn expiry_sends_to_the_tail_with_a_fresh_slice() {
    let mut s = Scheduler::new();
    for v in [1, 2, 3] {
        s.wake(v, params(PRIORITY_DEFAULT)).unwrap();
    }
    assert_eq!(run(&mut s, 0), Some(1));
    assert_eq!(s.deadline(), Some(5 * MS));
    assert_eq!(run(&mut s, 3 * MS), Some(1));
    assert_eq!(s.active().unwrap().slice.remaining(3 * MS), 2 * MS);
    assert_eq!(s.deadline(), Some(5 * MS));
    assert!(!s.need_schedule(4 * MS));
    assert!(s.need_schedule(5 * MS));
    assert_eq!(run(&mut s, 5 * MS), Some(2));
    assert_eq!(waiting(&s), vec![3, 1]);
    assert_eq!(run(&mut s, 10 * MS), Some(3));
    // A slice that ran over is not held against the next one.
    assert_eq!(run(&mut s, 16 * MS), Some(1));
    let a = s.active().unwrap();
    assert_eq!((a.slice.budget(), a.slice.end()), (5 * MS, 21 * MS));
}

#[test]
fn expiry_alone_renews_without_a_timer() {
    let mut s = Scheduler::new();
    s.wake(1, params(32)).unwrap();
    assert_eq!(run(&mut s, 0), Some(1));
    assert_eq!(s.deadline(), None);
    assert_eq!(run(&mut s, 7 * MS), Some(1));
    assert_eq!(s.active().unwrap().slice.end(), 12 * MS);
    // A lower priority waiting needs no timer either.
    assert_eq!(s.wake(2, params(31)), Ok(false));
    assert_eq!(s.deadline(), None);
    assert!(!s.need_schedule(100 * MS));
    // An equal one does not preempt, but now the slice end matters.
    assert_eq!(s.wake(3, params(32)), Ok(false));
    assert_eq!(s.deadline(), Some(12 * MS));
    assert_eq!(run(&mut s, 11 * MS), Some(1));
    assert_eq!(run(&mut s, 12 * MS), Some(3));
    assert_eq!(waiting(&s), vec![1, 2]);
}

#[test]
fn higher_priority_preempts_and_the_preempted_resumes_first() {
    let mut s = Scheduler::new();
    assert_eq!(s.wake(1, params(32)), Ok(true)); // idle CPU
    assert_eq!(run(&mut s, 0), Some(1));
    assert_eq!(s.wake(2, params(32)), Ok(false));
    assert_eq!(s.wake(3, params(10)), Ok(false));
    assert_eq!(s.wake(9, params(40)), Ok(true));
    assert!(s.need_schedule(2 * MS));
    assert_eq!(run(&mut s, 2 * MS), Some(9));
    // Back at the head of its level with 3 ms left.
    assert_eq!(waiting(&s), vec![1, 2, 3]);
    assert!(s.remove(9));
    assert_eq!(run(&mut s, 4 * MS), Some(1));
    assert_eq!(s.active().unwrap().slice.end(), 7 * MS);
    assert_eq!(s.deadline(), Some(7 * MS));
    assert_eq!(run(&mut s, 7 * MS), Some(2));
    assert_eq!(waiting(&s), vec![1, 3]);
}

#[test]
fn preemption_rules_match_the_functions() {
    assert!(wake_preempts(None, PRIORITY_MIN));
    assert!(!wake_preempts(Some(PRIORITY_MAX), PRIORITY_MAX));
    assert!(should_preempt(5, 0, Some(5)));
    assert!(!should_preempt(5, 1, Some(5)));
    assert!(!slice_timer_needed(5, Some(4), false));
}

#[test]
fn remove_and_wake_edge_cases() {
    let mut s = Scheduler::<u32>::new();
    assert!(!s.remove(1));
    assert_eq!(run(&mut s, 0), None);
    assert_eq!(s.deadline(), None);
    assert!(!s.need_schedule(0));
    s.wake(1, params(32)).unwrap();
    s.wake(2, params(32)).unwrap();
    // Waking again changes nothing, active or queued.
    assert_eq!(run(&mut s, 0), Some(1));
    assert_eq!(s.wake(1, params(63)), Ok(false));
    assert_eq!(s.wake(2, params(63)), Ok(false));
    assert_eq!((s.queued(), s.active_priority()), (1, Some(32)));
    assert_eq!(s.waiting().collect::<Vec<_>>(), vec![(2, 32)]);
    // Removing the active one leaves the CPU without one until the next schedule.
    assert!(s.remove(1));
    assert!(!s.contains(1));
    assert_eq!((s.active(), s.running()), (None, None));
    assert!(s.need_schedule(1));
    assert_eq!(run(&mut s, 1), Some(2));
    assert_eq!(s.active().unwrap().slice.end(), 1 + 5 * MS);
    // Removing a queued one; waking it again puts it at the tail, fresh.
    s.wake(1, params(32)).unwrap();
    s.wake(3, params(32)).unwrap();
    assert!(s.remove(1));
    assert!(!s.remove(1));
    s.wake(1, params(32)).unwrap();
    assert_eq!(waiting(&s), vec![3, 1]);
    assert!(s.remove(2) && s.remove(3) && s.remove(1));
    assert_eq!(run(&mut s, 2), None);
    assert_eq!(s.wake(4, params(0)), Ok(true));
}

#[test]
fn reserve_then_wake() {
    let mut s = Scheduler::<u32>::new();
    s.reserve(8).unwrap();
    for v in 0..8 {
        s.wake(v, SchedParams::default()).unwrap();
    }
    assert_eq!(s.queued(), 8);
    assert_eq!(s.reserve(usize::MAX), Err(wurley_abi::Error::Nomem));
}

#[test]
fn generic_yield() {
    let mut s = Scheduler::new();
    s.wake(1, params(32)).unwrap();
    s.wake(2, params(32)).unwrap();
    s.wake(3, params(20)).unwrap();
    assert_eq!(run(&mut s, 0), Some(1));
    // Another of equal priority waits: it runs, the yielder goes to the tail.
    assert!(s.yield_now(1));
    assert!(s.need_schedule(MS));
    assert_eq!(run(&mut s, MS), Some(2));
    assert_eq!(waiting(&s), vec![1, 3]);
    assert!(!s.yield_now(1)); // not running
    // Only lower waits: the yielder goes on with a fresh slice.
    assert!(s.remove(1));
    assert!(s.yield_now(2));
    assert_eq!(run(&mut s, 2 * MS), Some(2));
    let a = s.active().unwrap();
    assert_eq!((a.slice.budget(), a.slice.end()), (5 * MS, 7 * MS));
    assert_eq!(waiting(&s), vec![3]);
}

#[test]
fn directed_yield_runs_the_target_on_the_yielders_time() {
    let mut s = Scheduler::new();
    s.wake(1, params(32)).unwrap();
    assert_eq!(run(&mut s, 0), Some(1));
    assert_eq!(s.deadline(), None);
    // 7 is not queued here (a proxy-scheduled vCPU): it runs as 1's donee.
    assert!(s.yield_to(1, 7));
    assert_eq!(s.schedule(MS, |t| t == 7), Some(7));
    assert_eq!((s.running(), s.active().unwrap().vcpu), (Some(7), 1));
    assert_eq!(s.active().unwrap().yield_to, Some(7));
    assert_eq!(s.deadline(), Some(5 * MS)); // the donation ends with 1's slice
    assert_eq!(run(&mut s, 3 * MS), Some(7));
    assert_eq!(s.active().unwrap().slice.remaining(3 * MS), 2 * MS);
    assert!(!s.need_schedule(4 * MS));
    assert!(s.need_schedule(5 * MS));
    // Slice used up: the donation ends, 1 runs itself with a fresh slice.
    assert_eq!(run(&mut s, 5 * MS), Some(1));
    assert_eq!(s.active().unwrap().yield_to, None);
    assert_eq!(s.active().unwrap().slice.end(), 10 * MS);
    assert_eq!(s.deadline(), None);
}

#[test]
fn directed_yield_ends() {
    let mut s = Scheduler::new();
    s.wake(1, params(32)).unwrap();
    assert_eq!(run(&mut s, 0), Some(1));

    // The target cannot run here.
    assert!(s.yield_to(1, 7));
    assert_eq!(s.schedule(MS, |_| false), Some(1));
    assert_eq!(s.active().unwrap().yield_to, None);

    // The target yields back.
    s.yield_to(1, 7);
    assert_eq!(run(&mut s, MS), Some(7));
    assert!(s.yield_to(7, 1));
    assert_eq!(run(&mut s, MS), Some(1));

    // The target yields (generic): the donation ends, the donor's slice is untouched.
    s.yield_to(1, 7);
    assert_eq!(run(&mut s, 2 * MS), Some(7));
    assert!(s.yield_now(7));
    assert_eq!(run(&mut s, 2 * MS), Some(1));
    assert_eq!(s.active().unwrap().slice.remaining(2 * MS), 3 * MS);

    // The target passes the donation on.
    s.yield_to(1, 7);
    assert_eq!(run(&mut s, 2 * MS), Some(7));
    assert!(s.yield_to(7, 8));
    assert_eq!(run(&mut s, 2 * MS), Some(8));
    assert_eq!(s.active().unwrap().yield_to, Some(8));

    // The donor has something to do (an interrupt woke it).
    assert_eq!(s.wake(1, params(32)), Ok(true));
    assert_eq!(s.running(), Some(1));
    assert_eq!(run(&mut s, 3 * MS), Some(1));

    // Yielding to oneself does nothing; a stranger's yield is ignored.
    assert!(s.yield_to(1, 1));
    assert_eq!(s.active().unwrap().yield_to, None);
    assert!(!s.yield_to(5, 6));
    assert!(!s.yield_now(5));
    assert_eq!(run(&mut s, 3 * MS), Some(1));
}

#[test]
fn directed_yield_survives_preemption() {
    let mut s = Scheduler::new();
    s.wake(1, params(32)).unwrap();
    s.wake(2, params(32)).unwrap();
    assert_eq!(run(&mut s, 0), Some(1));
    s.yield_to(1, 7);
    assert_eq!(run(&mut s, 0), Some(7));
    // A higher priority takes the CPU: 1 goes back to the head, still yielding to 7.
    assert_eq!(s.wake(9, params(50)), Ok(true));
    assert_eq!(run(&mut s, MS), Some(9));
    assert_eq!(waiting(&s), vec![1, 2]);
    s.remove(9);
    assert_eq!(run(&mut s, 2 * MS), Some(7));
    assert_eq!(s.active().unwrap().vcpu, 1);
    assert_eq!(s.active().unwrap().slice.end(), 6 * MS);
    // Waking a queued yielder drops its yield.
    s.wake(9, params(50)).unwrap();
    assert_eq!(run(&mut s, 3 * MS), Some(9));
    assert_eq!(s.wake(1, params(32)), Ok(false));
    s.remove(9);
    assert_eq!(run(&mut s, 3 * MS), Some(1));
}

#[test]
fn runqueue_matches_a_vec_model() {
    let mut rng = XorShift(0x0123_4567_89ab_cdef);
    let mut q = RunQueue::<u8>::new();
    // Entries in FIFO order; the pick is the first of the highest priority.
    let mut model: Vec<(u8, u8)> = Vec::new();
    const PRIORITIES: [u8; 8] = [0, 1, 31, 32, 33, 62, 63, 64];
    for step in 0..50_000 {
        let t = rng.below(24) as u8;
        let p = if rng.chance(80) {
            PRIORITIES[rng.below(PRIORITIES.len() as u64) as usize]
        } else {
            rng.below(256) as u8
        };
        match rng.below(6) {
            0 | 1 => {
                let expected = if p > PRIORITY_MAX {
                    Err(wurley_abi::Error::ArgumentInvalid)
                } else {
                    let new = !model.iter().any(|&(e, _)| e == t);
                    if new {
                        model.push((t, p));
                    }
                    Ok(new)
                };
                assert_eq!(q.enqueue(t, p), expected, "step {step}");
            }
            2 => {
                let expected = if p > PRIORITY_MAX {
                    Err(wurley_abi::Error::ArgumentInvalid)
                } else {
                    let new = !model.iter().any(|&(e, _)| e == t);
                    if new {
                        model.insert(0, (t, p));
                    }
                    Ok(new)
                };
                assert_eq!(q.enqueue_front(t, p), expected, "step {step}");
            }
            3 => {
                let at = model.iter().position(|&(e, _)| e == t);
                if let Some(i) = at {
                    model.remove(i);
                }
                assert_eq!(q.remove(t), at.is_some(), "step {step}");
            }
            _ => {
                let top = model.iter().map(|&(_, p)| p).max();
                let at = model.iter().position(|&(_, p)| Some(p) == top);
                let expected = at.map(|i| model.remove(i));
                assert_eq!(q.pick(), expected, "step {step}");
            }
        }
        let mut sorted = model.clone();
        sorted.sort_by_key(|&(_, p)| core::cmp::Reverse(p)); // stable: FIFO within a level
        assert_eq!(q.iter().collect::<Vec<_>>(), sorted, "step {step}");
        assert_eq!(q.len(), model.len());
        assert_eq!(q.is_empty(), model.is_empty());
        assert_eq!(q.highest(), model.iter().map(|&(_, p)| p).max());
        assert_eq!(q.peek(), sorted.first().copied());
        assert_eq!(
            q.priority_of(t),
            model.iter().find(|&&(e, _)| e == t).map(|&(_, p)| p)
        );
        for level in [0, 31, 32, 63, 64, 255] {
            assert_eq!(q.waiting_at(level), model.iter().any(|&(_, p)| p == level));
        }
    }
}

#[test]
fn scheduler_invariants_under_random_operations() {
    let mut rng = XorShift(0x5eed);
    let mut s = Scheduler::<u32>::new();
    let mut runnable: Vec<u32> = Vec::new();
    let mut now = 0u64;
    let mut running = None;
    for step in 0..50_000 {
        let v = rng.below(12) as u32;
        let prm = params_ts(
            rng.below(4) as u8 * 21,
            TIMESLICE_MIN_NS + rng.below(3 * MS),
        );
        match rng.below(8) {
            0 | 1 => {
                let fresh = !runnable.contains(&v);
                let preempts = s.wake(v, prm).unwrap();
                if fresh {
                    runnable.push(v);
                    assert_eq!(preempts, wake_preempts(s.active_priority(), prm.priority()));
                }
            }
            2 => {
                let at = runnable.iter().position(|&e| e == v);
                if let Some(i) = at {
                    runnable.remove(i);
                }
                assert_eq!(s.remove(v), at.is_some(), "step {step}");
            }
            3 => {
                if let Some(r) = running {
                    s.yield_now(r);
                }
            }
            4 => {
                if let Some(r) = running {
                    s.yield_to(r, v);
                }
            }
            _ => {
                now += rng.below(4 * MS);
                let allowed = rng.chance(70);
                running = s.schedule(now, |_| allowed);
                assert_eq!(running, s.running());
                assert!(!s.need_schedule(now), "step {step}");
                match s.active() {
                    None => {
                        assert_eq!(running, None);
                        assert_eq!(s.queued(), 0);
                    }
                    Some(a) => {
                        assert!(s.highest_waiting() <= Some(a.params.priority()));
                        assert!(!a.slice.expired(now));
                        if let Some(d) = s.deadline() {
                            assert_eq!(d, a.slice.end());
                        }
                        assert_eq!(running != Some(a.vcpu), a.yield_to.is_some());
                    }
                }
            }
        }
        // Every runnable vCPU is here exactly once, and nothing else is.
        let mut here = waiting(&s);
        here.extend(s.active().map(|a| a.vcpu));
        here.sort_unstable();
        let mut expected = runnable.clone();
        expected.sort_unstable();
        assert_eq!(here, expected, "step {step}");
    }
}

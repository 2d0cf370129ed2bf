//! The vCPU scheduling policy of Gunyah's `scheduler_fprr`, as pure data and functions: fixed
//! priorities 0 (lowest) ..= 63 (highest), round-robin within a priority, a timeslice per vCPU,
//! one instance per physical CPU. No hardware, no global state: the EL2 run loop owns one
//! [`Scheduler`] (or just a [`RunQueue`] and the functions) per CPU, under its own lock, and
//! feeds it the time.
//!
//! Times are nanoseconds (`u64`) of a monotonic clock; the caller converts counter ticks.
//!
//! - [`params`]: priority and timeslice ranges and defaults, [`SchedParams`];
//! - [`runqueue`]: [`RunQueue`], the waiting vCPUs in 64 FIFO levels with an O(1) pick;
//! - [`timeslice`]: [`Slice`], the running vCPU's budget, and [`next_deadline`];
//! - [`preempt`]: when the running vCPU gives way ([`should_preempt`], [`wake_preempts`],
//!   [`slice_timer_needed`]);
//! - [`yield_hint`]: `scheduler_yield`'s arguments decoded ([`YieldHint`]);
//! - [`scheduler`]: [`Scheduler`], all of the above composed for one CPU, with directed yield.

pub mod params;
pub mod preempt;
pub mod runqueue;
pub mod scheduler;
pub mod timeslice;
pub mod yield_hint;

#[cfg(test)]
mod tests;

pub use params::{
    PRIORITY_DEFAULT, PRIORITY_LEVELS, PRIORITY_MAX, PRIORITY_MIN, SchedParams,
    TIMESLICE_DEFAULT_NS, TIMESLICE_MAX_NS, TIMESLICE_MIN_NS, check_priority, check_timeslice_ns,
};
pub use preempt::{should_preempt, slice_timer_needed, wake_preempts};
pub use runqueue::RunQueue;
pub use scheduler::{Active, Scheduler};
pub use timeslice::{Slice, next_deadline};
pub use yield_hint::YieldHint;

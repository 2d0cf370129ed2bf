//! A vCPU's scheduling parameters: the priority and timeslice ranges of Gunyah's
//! `scheduler_fprr` (`scheduler_fprr.tc`) and [`SchedParams`], a validated pair of them.
//!
//! Priorities run from [`PRIORITY_MIN`] (0, lowest) to [`PRIORITY_MAX`] (63, highest); a
//! timeslice is in nanoseconds, [`TIMESLICE_MIN_NS`] (100 µs, the source's value; Gunyah's docs
//! say 1 ms) to [`TIMESLICE_MAX_NS`] (100 ms). Out-of-range values are `ARGUMENT_INVALID`, as
//! `scheduler_set_priority` / `scheduler_set_timeslice` return.

use wurley_abi::Error;

/// The lowest priority.
pub const PRIORITY_MIN: u8 = 0;
/// The highest priority.
pub const PRIORITY_MAX: u8 = 63;
/// The number of priority levels.
pub const PRIORITY_LEVELS: usize = PRIORITY_MAX as usize + 1;
/// The priority of a vCPU nobody configured (`SCHEDULER_DEFAULT_PRIORITY`); the root VM and
/// the HLOS run at it.
pub const PRIORITY_DEFAULT: u8 = 32;

/// The shortest timeslice, in nanoseconds (`SCHEDULER_MIN_TIMESLICE`).
pub const TIMESLICE_MIN_NS: u64 = 100_000;
/// The longest timeslice, in nanoseconds (`SCHEDULER_MAX_TIMESLICE`).
pub const TIMESLICE_MAX_NS: u64 = 100_000_000;
/// The timeslice of a vCPU nobody configured, in nanoseconds (`SCHEDULER_DEFAULT_TIMESLICE`).
pub const TIMESLICE_DEFAULT_NS: u64 = 5_000_000;

/// `priority` if it is a valid priority, else `ARGUMENT_INVALID`.
pub const fn check_priority(priority: u8) -> Result<u8, Error> {
    if priority <= PRIORITY_MAX {
        Ok(priority)
    } else {
        Err(Error::ArgumentInvalid)
    }
}

/// `timeslice_ns` if it is a valid timeslice, else `ARGUMENT_INVALID`.
pub const fn check_timeslice_ns(timeslice_ns: u64) -> Result<u64, Error> {
    if timeslice_ns >= TIMESLICE_MIN_NS && timeslice_ns <= TIMESLICE_MAX_NS {
        Ok(timeslice_ns)
    } else {
        Err(Error::ArgumentInvalid)
    }
}

/// A vCPU's priority and timeslice, both within range (the only way to build one is through
/// the checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SchedParams {
    priority: u8,
    timeslice_ns: u64,
}

impl SchedParams {
    /// Priority [`PRIORITY_DEFAULT`], timeslice [`TIMESLICE_DEFAULT_NS`].
    pub const DEFAULT: SchedParams = SchedParams {
        priority: PRIORITY_DEFAULT,
        timeslice_ns: TIMESLICE_DEFAULT_NS,
    };

    /// Both values checked: `ARGUMENT_INVALID` if either is out of range.
    pub const fn new(priority: u8, timeslice_ns: u64) -> Result<SchedParams, Error> {
        match (check_priority(priority), check_timeslice_ns(timeslice_ns)) {
            (Ok(priority), Ok(timeslice_ns)) => Ok(SchedParams {
                priority,
                timeslice_ns,
            }),
            _ => Err(Error::ArgumentInvalid),
        }
    }

    /// The same timeslice with another priority (`vcpu_set_priority`).
    pub const fn with_priority(self, priority: u8) -> Result<SchedParams, Error> {
        SchedParams::new(priority, self.timeslice_ns)
    }

    /// The same priority with another timeslice (`vcpu_set_timeslice`).
    pub const fn with_timeslice_ns(self, timeslice_ns: u64) -> Result<SchedParams, Error> {
        SchedParams::new(self.priority, timeslice_ns)
    }

    /// The priority, `0..=63`.
    pub const fn priority(self) -> u8 {
        self.priority
    }

    /// The full timeslice in nanoseconds, `100_000..=100_000_000`.
    pub const fn timeslice_ns(self) -> u64 {
        self.timeslice_ns
    }
}

impl Default for SchedParams {
    fn default() -> Self {
        SchedParams::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(check_priority(0), Ok(0));
        assert_eq!(check_priority(63), Ok(63));
        assert_eq!(check_priority(64), Err(Error::ArgumentInvalid));
        assert_eq!(check_priority(u8::MAX), Err(Error::ArgumentInvalid));
        assert_eq!(check_timeslice_ns(99_999), Err(Error::ArgumentInvalid));
        assert_eq!(check_timeslice_ns(100_000), Ok(100_000));
        assert_eq!(check_timeslice_ns(100_000_000), Ok(100_000_000));
        assert_eq!(check_timeslice_ns(100_000_001), Err(Error::ArgumentInvalid));
        assert_eq!(check_timeslice_ns(0), Err(Error::ArgumentInvalid));
        assert_eq!(check_timeslice_ns(u64::MAX), Err(Error::ArgumentInvalid));
    }

    #[test]
    fn params() {
        let d = SchedParams::default();
        assert_eq!((d.priority(), d.timeslice_ns()), (32, 5_000_000));
        let p = SchedParams::new(63, 100_000);
        assert_eq!(
            p.map(|p| (p.priority(), p.timeslice_ns())),
            Ok((63, 100_000))
        );
        assert_eq!(SchedParams::new(64, 1_000_000), Err(Error::ArgumentInvalid));
        assert_eq!(SchedParams::new(1, 1), Err(Error::ArgumentInvalid));
        assert_eq!(d.with_priority(7).map(SchedParams::priority), Ok(7));
        assert_eq!(d.with_priority(64), Err(Error::ArgumentInvalid));
        assert_eq!(
            d.with_timeslice_ns(1_000_000)
                .map(SchedParams::timeslice_ns),
            Ok(1_000_000)
        );
        assert_eq!(
            d.with_timeslice_ns(200_000_000),
            Err(Error::ArgumentInvalid)
        );
    }
}

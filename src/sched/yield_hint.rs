//! [`YieldHint`]: the arguments of `scheduler_yield` (hypercall 0x3B) decoded and checked as
//! Gunyah's `hypercall_scheduler_yield` (`scheduler_fprr/src/hypercalls.c`) does.
//!
//! `control` (`scheduler_yield_control`, 32 bits): bits 15:0 the hint, bit 31 `impl_def`. Hint 0
//! is a generic yield, hint 1 a directed yield to the thread named by the capability in `arg1`.
//! Hint 2 (`YIELD_LOWER`, "yield to lower priority", `arg1` a priority) is defined by the ABI but
//! `scheduler_fprr` rejects it, as it does `impl_def` and unknown hints: `ARGUMENT_INVALID`.
//! Control bits 30:16, and 63:32 of the register, are ignored (the generated wrapper casts the
//! register to the 32-bit bitfield; not checked against a running Gunyah).

use wurley_abi::Error;

/// `SCHEDULER_YIELD_HINT_YIELD`.
pub const HINT_YIELD: u16 = 0;
/// `SCHEDULER_YIELD_HINT_YIELD_TO_THREAD`.
pub const HINT_YIELD_TO_THREAD: u16 = 1;
/// `SCHEDULER_YIELD_HINT_YIELD_LOWER` (refused by `scheduler_fprr`).
pub const HINT_YIELD_LOWER: u16 = 2;
/// `scheduler_yield_control.impl_def`.
pub const CONTROL_IMPL_DEF: u64 = 1 << 31;

/// What a `scheduler_yield` call asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YieldHint {
    /// Give up the rest of the timeslice: another vCPU of equal or higher priority runs if one
    /// waits, else the caller goes on with a fresh slice. If the caller runs on another vCPU's
    /// donated time, that directed yield ends instead.
    Yield,
    /// Donate the rest of the timeslice to the thread named by this capability (needs the
    /// `YIELD_TO` right; yielding to oneself does nothing and succeeds).
    YieldTo(u64),
}

impl YieldHint {
    /// Decode `control` (X0) and `arg1` (X1).
    pub const fn decode(control: u64, arg1: u64) -> Result<YieldHint, Error> {
        if control & CONTROL_IMPL_DEF != 0 {
            return Err(Error::ArgumentInvalid);
        }
        match (control & 0xffff) as u16 {
            HINT_YIELD => Ok(YieldHint::Yield),
            HINT_YIELD_TO_THREAD => Ok(YieldHint::YieldTo(arg1)),
            _ => Err(Error::ArgumentInvalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode() {
        assert_eq!(YieldHint::decode(0, 0), Ok(YieldHint::Yield));
        assert_eq!(YieldHint::decode(0, 1234), Ok(YieldHint::Yield));
        assert_eq!(YieldHint::decode(1, 0x42), Ok(YieldHint::YieldTo(0x42)));
        assert_eq!(YieldHint::decode(2, 10), Err(Error::ArgumentInvalid));
        assert_eq!(YieldHint::decode(3, 0), Err(Error::ArgumentInvalid));
        assert_eq!(YieldHint::decode(0xffff, 0), Err(Error::ArgumentInvalid));
        assert_eq!(YieldHint::decode(1 << 31, 0), Err(Error::ArgumentInvalid));
        assert_eq!(
            YieldHint::decode((1 << 31) | 1, 0),
            Err(Error::ArgumentInvalid)
        );
        // Bits 30:16 and 63:32 are ignored.
        assert_eq!(YieldHint::decode(0x7fff_0000, 0), Ok(YieldHint::Yield));
        assert_eq!(
            YieldHint::decode(0xffff_ffff_0000_0001, 5),
            Ok(YieldHint::YieldTo(5))
        );
    }
}

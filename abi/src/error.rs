//! Gunyah's `error` enumeration (`hyp/core/base/types.tc` plus module
//! extensions) and its encoding in result registers.
//!
//! Hypercalls return a signed error in `X0`; `OK` is `0`. Here `OK` is not an
//! [`Error`] variant: results are `Result<T, Error>` and [`to_register`] /
//! [`from_register`] convert at the register boundary. Negative codes travel
//! as two's complement (`-1` is `0xFFFF_FFFF_FFFF_FFFF`).

use core::fmt;

macro_rules! errors {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal => $name:literal, )*) => {
        /// A Gunyah hypercall error (every non-`OK` value of `error_t`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Error {
            $( $(#[$doc])* $variant, )*
        }

        impl Error {
            /// Every error, in declaration order.
            pub const ALL: &'static [Error] = &[$(Error::$variant,)*];

            /// The numeric code of this error.
            pub const fn code(self) -> i64 {
                match self {
                    $( Error::$variant => $code, )*
                }
            }

            /// Decodes a numeric code; `None` for `0` (OK) and unknown codes.
            pub const fn from_code(code: i64) -> Option<Error> {
                match code {
                    $( $code => Some(Error::$variant), )*
                    _ => None,
                }
            }

            /// The Gunyah name of this error, e.g. `"ERROR_ARGUMENT_INVALID"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Error::$variant => $name, )*
                }
            }
        }
    };
}

errors! {
    /// -1: unimplemented call; also returned for unknown hypercall numbers.
    Unimplemented = -1 => "ERROR_UNIMPLEMENTED",
    /// -2: transient failure; retry (Linux maps it to `-EAGAIN`).
    Retry = -2 => "ERROR_RETRY",
    /// 1: invalid argument (including non-zero `res0` / non-ones `res1`).
    ArgumentInvalid = 1 => "ERROR_ARGUMENT_INVALID",
    /// 2: argument has an invalid size.
    ArgumentSize = 2 => "ERROR_ARGUMENT_SIZE",
    /// 3: argument is misaligned.
    ArgumentAlignment = 3 => "ERROR_ARGUMENT_ALIGNMENT",
    /// 7: memory-database failure (internal extension; name/visibility
    /// unconfirmed in the reference).
    Memdb = 7 => "ERROR_MEMDB",
    /// 10: out of memory.
    Nomem = 10 => "ERROR_NOMEM",
    /// 11: out of some other resource.
    Noresources = 11 => "ERROR_NORESOURCES",
    /// 20: address range overflows.
    AddrOverflow = 20 => "ERROR_ADDR_OVERFLOW",
    /// 21: address range underflows.
    AddrUnderflow = 21 => "ERROR_ADDR_UNDERFLOW",
    /// 22: invalid address.
    AddrInvalid = 22 => "ERROR_ADDR_INVALID",
    /// 30: operation denied.
    Denied = 30 => "ERROR_DENIED",
    /// 31: resource busy.
    Busy = 31 => "ERROR_BUSY",
    /// 32: resource idle.
    Idle = 32 => "ERROR_IDLE",
    /// 33: object in the wrong state for this operation.
    ObjectState = 33 => "ERROR_OBJECT_STATE",
    /// 34: object not (correctly) configured.
    ObjectConfig = 34 => "ERROR_OBJECT_CONFIG",
    /// 35: object already configured.
    ObjectConfigured = 35 => "ERROR_OBJECT_CONFIGURED",
    /// 36: generic failure.
    Failure = 36 => "ERROR_FAILURE",
    /// 40: VIRQ already bound.
    VirqBound = 40 => "ERROR_VIRQ_BOUND",
    /// 41: VIRQ not bound.
    VirqNotBound = 41 => "ERROR_VIRQ_NOT_BOUND",
    /// 50: null / invalid CapID.
    CspaceCapNull = 50 => "ERROR_CSPACE_CAP_NULL",
    /// 51: capability revoked.
    CspaceCapRevoked = 51 => "ERROR_CSPACE_CAP_REVOKED",
    /// 52: capability refers to an object of the wrong type.
    CspaceWrongObjectType = 52 => "ERROR_CSPACE_WRONG_OBJECT_TYPE",
    /// 53: capability lacks a required right.
    CspaceInsufficientRights = 53 => "ERROR_CSPACE_INSUFFICIENT_RIGHTS",
    /// 54: capability space full.
    CspaceFull = 54 => "ERROR_CSPACE_FULL",
    /// 60: message queue empty.
    MsgqueueEmpty = 60 => "ERROR_MSGQUEUE_EMPTY",
    /// 61: message queue full.
    MsgqueueFull = 61 => "ERROR_MSGQUEUE_FULL",
    /// 90: string truncated (internal).
    StringTruncated = 90 => "ERROR_STRING_TRUNCATED",
    /// 91: string reached end (internal).
    StringReachedEnd = 91 => "ERROR_STRING_REACHED_END",
    /// 92: invalid format string (internal).
    StringInvalidFormat = 92 => "ERROR_STRING_INVALID_FORMAT",
    /// 93: format placeholder missing (internal).
    StringMissingPlaceholder = 93 => "ERROR_STRING_MISSING_PLACEHOLDER",
    /// 94: format argument missing (internal).
    StringMissingArgument = 94 => "ERROR_STRING_MISSING_ARGUMENT",
    /// 100: allocator range overlaps an existing one.
    AllocatorRangeOverlapping = 100 => "ERROR_ALLOCATOR_RANGE_OVERLAPPING",
    /// 101: allocator memory in use.
    AllocatorMemInuse = 101 => "ERROR_ALLOCATOR_MEM_INUSE",
    /// 110: memory database has no entry for the range.
    MemdbEmpty = 110 => "ERROR_MEMDB_EMPTY",
    /// 111: memory range not owned by the expected owner.
    MemdbNotOwner = 111 => "ERROR_MEMDB_NOT_OWNER",
    /// 120: memory extent mapping slots exhausted (basic extents hold 4).
    MemextentMappingsFull = 120 => "ERROR_MEMEXTENT_MAPPINGS_FULL",
    /// 121: wrong memory extent type for this operation.
    MemextentType = 121 => "ERROR_MEMEXTENT_TYPE",
    /// 200: a mapping already exists.
    ExistingMapping = 200 => "ERROR_EXISTING_MAPPING",
}

impl Error {
    /// This error as a result-register value (two's complement for negatives).
    pub const fn to_register(self) -> u64 {
        self.code() as u64
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

impl core::error::Error for Error {}

/// The result-register value for `result`: `0` for `Ok`, the error code
/// (two's complement for negatives) for `Err`.
pub fn to_register<T>(result: &Result<T, Error>) -> u64 {
    match result {
        Ok(_) => 0,
        Err(e) => e.to_register(),
    }
}

/// Decodes a result register: `Some(Ok(()))` for `0`, `Some(Err(e))` for a
/// known error, `None` for a value that is not a Gunyah error code.
pub const fn from_register(reg: u64) -> Option<Result<(), Error>> {
    if reg == 0 {
        Some(Ok(()))
    } else {
        match Error::from_code(reg as i64) {
            Some(e) => Some(Err(e)),
            None => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    extern crate std;

    use super::*;
    use std::string::ToString;

    /// §1.4 of the reference, transcribed independently of the enum.
    const REFERENCE: &[(i64, &str)] = &[
        (-1, "ERROR_UNIMPLEMENTED"),
        (-2, "ERROR_RETRY"),
        (1, "ERROR_ARGUMENT_INVALID"),
        (2, "ERROR_ARGUMENT_SIZE"),
        (3, "ERROR_ARGUMENT_ALIGNMENT"),
        (10, "ERROR_NOMEM"),
        (11, "ERROR_NORESOURCES"),
        (20, "ERROR_ADDR_OVERFLOW"),
        (21, "ERROR_ADDR_UNDERFLOW"),
        (22, "ERROR_ADDR_INVALID"),
        (30, "ERROR_DENIED"),
        (31, "ERROR_BUSY"),
        (32, "ERROR_IDLE"),
        (33, "ERROR_OBJECT_STATE"),
        (34, "ERROR_OBJECT_CONFIG"),
        (35, "ERROR_OBJECT_CONFIGURED"),
        (36, "ERROR_FAILURE"),
        (40, "ERROR_VIRQ_BOUND"),
        (41, "ERROR_VIRQ_NOT_BOUND"),
        (50, "ERROR_CSPACE_CAP_NULL"),
        (51, "ERROR_CSPACE_CAP_REVOKED"),
        (52, "ERROR_CSPACE_WRONG_OBJECT_TYPE"),
        (53, "ERROR_CSPACE_INSUFFICIENT_RIGHTS"),
        (54, "ERROR_CSPACE_FULL"),
        (60, "ERROR_MSGQUEUE_EMPTY"),
        (61, "ERROR_MSGQUEUE_FULL"),
        (7, "ERROR_MEMDB"),
        (90, "ERROR_STRING_TRUNCATED"),
        (91, "ERROR_STRING_REACHED_END"),
        (92, "ERROR_STRING_INVALID_FORMAT"),
        (93, "ERROR_STRING_MISSING_PLACEHOLDER"),
        (94, "ERROR_STRING_MISSING_ARGUMENT"),
        (100, "ERROR_ALLOCATOR_RANGE_OVERLAPPING"),
        (101, "ERROR_ALLOCATOR_MEM_INUSE"),
        (110, "ERROR_MEMDB_EMPTY"),
        (111, "ERROR_MEMDB_NOT_OWNER"),
        (120, "ERROR_MEMEXTENT_MAPPINGS_FULL"),
        (121, "ERROR_MEMEXTENT_TYPE"),
        (200, "ERROR_EXISTING_MAPPING"),
    ];

    #[test]
    fn every_reference_entry_is_present() {
        assert_eq!(Error::ALL.len(), REFERENCE.len());
        for &(code, name) in REFERENCE {
            let e = Error::from_code(code).unwrap();
            assert_eq!(e.code(), code);
            assert_eq!(e.name(), name);
        }
    }

    #[test]
    fn codes_are_unique_and_round_trip() {
        for (i, a) in Error::ALL.iter().enumerate() {
            assert_eq!(Error::from_code(a.code()), Some(*a));
            assert_ne!(a.code(), 0);
            for b in &Error::ALL[i + 1..] {
                assert_ne!(a.code(), b.code());
                assert_ne!(a.name(), b.name());
            }
        }
    }

    #[test]
    fn only_listed_codes_decode() {
        for code in -300..=300 {
            match Error::from_code(code) {
                Some(e) => assert_eq!(e.code(), code),
                None => assert!(REFERENCE.iter().all(|&(c, _)| c != code)),
            }
        }
        assert_eq!(Error::from_code(0), None);
        assert_eq!(Error::from_code(i64::MIN), None);
        assert_eq!(Error::from_code(i64::MAX), None);
    }

    #[test]
    fn register_encoding() {
        assert_eq!(to_register::<()>(&Ok(())), 0);
        assert_eq!(to_register::<u64>(&Ok(42)), 0);
        assert_eq!(
            to_register::<()>(&Err(Error::Unimplemented)),
            0xFFFF_FFFF_FFFF_FFFF
        );
        assert_eq!(Error::Retry.to_register(), 0xFFFF_FFFF_FFFF_FFFE);
        assert_eq!(Error::ArgumentInvalid.to_register(), 1);
        assert_eq!(Error::ExistingMapping.to_register(), 200);
        assert_eq!(from_register(0), Some(Ok(())));
        for &e in Error::ALL {
            let reg = to_register::<()>(&Err(e));
            assert_eq!(from_register(reg), Some(Err(e)));
        }
        assert_eq!(from_register(4), None);
        assert_eq!(from_register(0xFFFF_FFFF_FFFF_FFFD), None);
        assert_eq!(from_register(0x1_0000_0001), None);
    }

    #[test]
    fn display_names_the_error() {
        assert_eq!(
            Error::CspaceInsufficientRights.to_string(),
            "ERROR_CSPACE_INSUFFICIENT_RIGHTS (53)"
        );
        assert_eq!(Error::Retry.to_string(), "ERROR_RETRY (-2)");
    }
}

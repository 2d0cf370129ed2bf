//! The Resource Manager's error codes (`rm_error_t`, §7.4): the `u32` a reply carries right
//! after its 8-byte header.
//!
//! Unlike the hypervisor's [`crate::Error`], `OK` (0) *is* a variant here, because it is the
//! value a successful reply puts on the wire. The payload parsers of this module never return
//! `Err(RmError::Ok)`; they report malformed payloads as [`RmError::MsgInvalid`], which is also
//! what the public RM answers for a request whose length or counts do not add up.

use core::fmt;

macro_rules! rm_errors {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal => $name:literal, )*) => {
        /// A Resource Manager status code (every value of `rm_error_t`, including `OK`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RmError {
            $( $(#[$doc])* $variant, )*
        }

        impl RmError {
            /// Every code, in declaration order.
            pub const ALL: &'static [RmError] = &[$(RmError::$variant,)*];

            /// The wire value of this code.
            pub const fn code(self) -> u32 {
                match self {
                    $( RmError::$variant => $code, )*
                }
            }

            /// Decodes a wire value; `None` for values §7.4 does not define.
            pub const fn from_code(code: u32) -> Option<RmError> {
                match code {
                    $( $code => Some(RmError::$variant), )*
                    _ => None,
                }
            }

            /// The RM's name of this code, e.g. `"RM_ERROR_MSG_INVALID"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $( RmError::$variant => $name, )*
                }
            }
        }
    };
}

rm_errors! {
    /// 0: success.
    Ok = 0x0 => "RM_OK",
    /// 0xFFFF_FFFF: the message ID is not handled (also the reply to unknown IDs).
    Unimplemented = 0xFFFF_FFFF => "RM_ERROR_UNIMPLEMENTED",
    /// 1: out of memory.
    NoMem = 0x1 => "RM_ERROR_NOMEM",
    /// 2: out of some other resource (e.g. dynamic VMIDs).
    NoResource = 0x2 => "RM_ERROR_NORESOURCE",
    /// 3: the caller may not do this.
    Denied = 0x3 => "RM_ERROR_DENIED",
    /// 4: malformed message: wrong length or inconsistent counts (Linux: "INVALID").
    MsgInvalid = 0x4 => "RM_ERROR_MSG_INVALID",
    /// 5: busy; try again.
    Busy = 0x5 => "RM_ERROR_BUSY",
    /// 6: a well-formed message with an invalid argument.
    ArgumentInvalid = 0x6 => "RM_ERROR_ARGUMENT_INVALID",
    /// 7: unknown memparcel or IRQ handle.
    HandleInvalid = 0x7 => "RM_ERROR_HANDLE_INVALID",
    /// 8: a validation the caller asked for failed (e.g. MEM_ACCEPT's VALIDATE_* flags).
    ValidateFailed = 0x8 => "RM_ERROR_VALIDATE_FAILED",
    /// 9: mapping memory failed.
    MapFailed = 0x9 => "RM_ERROR_MAP_FAILED",
    /// 0xA: invalid memory region.
    MemInvalid = 0xA => "RM_ERROR_MEM_INVALID",
    /// 0xB: the memparcel is in use (still accepted by a borrower).
    MemInUse = 0xB => "RM_ERROR_MEM_INUSE",
    /// 0xC: the memparcel was already released.
    MemReleased = 0xC => "RM_ERROR_MEM_RELEASED",
    /// 0xD: invalid VMID.
    VmidInvalid = 0xD => "RM_ERROR_VMID_INVALID",
    /// 0xE: a lookup (e.g. MEM_QCOM_LOOKUP_SGL) found nothing.
    LookupFailed = 0xE => "RM_ERROR_LOOKUP_FAILED",
    /// 0xF: invalid IRQ.
    IrqInvalid = 0xF => "RM_ERROR_IRQ_INVALID",
    /// 0x10: the IRQ is in use (lent or accepted).
    IrqInUse = 0x10 => "RM_ERROR_IRQ_INUSE",
    /// 0x11: the IRQ was already released.
    IrqReleased = 0x11 => "RM_ERROR_IRQ_RELEASED",
    /// 0x12: resource in use (RM only; Linux maps it to `-EBADMSG`).
    InUse = 0x12 => "RM_ERROR_IN_USE",
    /// 0x13: the IRQ is not mapped (RM only).
    IrqNotMapped = 0x13 => "RM_ERROR_IRQ_NOT_MAPPED",
    /// 0x14: the VM is in the wrong state for this request (RM only).
    VmState = 0x14 => "RM_ERROR_VM_STATE",
}

impl RmError {
    /// `true` for [`RmError::Ok`].
    pub const fn is_ok(self) -> bool {
        matches!(self, RmError::Ok)
    }

    /// The (negative) errno Linux's `gunyah_rm_call` turns this code into: NORESOURCE
    /// `-ENODEV`, DENIED `-EPERM`, BUSY `-EBUSY`, UNIMPLEMENTED `-EOPNOTSUPP`, NOMEM `-ENOMEM`,
    /// MSG_INVALID and ARGUMENT_INVALID..=IRQ_RELEASED `-EINVAL`, anything else `-EBADMSG`;
    /// `0` for OK.
    pub const fn linux_errno(self) -> i32 {
        const ENODEV: i32 = 19;
        const EPERM: i32 = 1;
        const EBUSY: i32 = 16;
        const EOPNOTSUPP: i32 = 95;
        const ENOMEM: i32 = 12;
        const EINVAL: i32 = 22;
        const EBADMSG: i32 = 74;
        match self {
            RmError::Ok => 0,
            RmError::NoResource => -ENODEV,
            RmError::Denied => -EPERM,
            RmError::Busy => -EBUSY,
            RmError::Unimplemented => -EOPNOTSUPP,
            RmError::NoMem => -ENOMEM,
            RmError::MsgInvalid
            | RmError::ArgumentInvalid
            | RmError::HandleInvalid
            | RmError::ValidateFailed
            | RmError::MapFailed
            | RmError::MemInvalid
            | RmError::MemInUse
            | RmError::MemReleased
            | RmError::VmidInvalid
            | RmError::LookupFailed
            | RmError::IrqInvalid
            | RmError::IrqInUse
            | RmError::IrqReleased => -EINVAL,
            RmError::InUse | RmError::IrqNotMapped | RmError::VmState => -EBADMSG,
        }
    }
}

impl fmt::Display for RmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#x})", self.name(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_reference_table() {
        let expected: &[(RmError, u32)] = &[
            (RmError::Ok, 0),
            (RmError::Unimplemented, 0xFFFF_FFFF),
            (RmError::NoMem, 1),
            (RmError::NoResource, 2),
            (RmError::Denied, 3),
            (RmError::MsgInvalid, 4),
            (RmError::Busy, 5),
            (RmError::ArgumentInvalid, 6),
            (RmError::HandleInvalid, 7),
            (RmError::ValidateFailed, 8),
            (RmError::MapFailed, 9),
            (RmError::MemInvalid, 0xA),
            (RmError::MemInUse, 0xB),
            (RmError::MemReleased, 0xC),
            (RmError::VmidInvalid, 0xD),
            (RmError::LookupFailed, 0xE),
            (RmError::IrqInvalid, 0xF),
            (RmError::IrqInUse, 0x10),
            (RmError::IrqReleased, 0x11),
            (RmError::InUse, 0x12),
            (RmError::IrqNotMapped, 0x13),
            (RmError::VmState, 0x14),
        ];
        assert_eq!(RmError::ALL.len(), expected.len());
        for &(e, code) in expected {
            assert_eq!(e.code(), code, "{e}");
            assert_eq!(RmError::from_code(code), Some(e));
        }
        for unknown in [0x15, 0x100, 0x8000_0000, 0xFFFF_FFFE] {
            assert_eq!(RmError::from_code(unknown), None);
        }
        assert!(RmError::Ok.is_ok() && !RmError::Busy.is_ok());
        assert_eq!(RmError::MsgInvalid.name(), "RM_ERROR_MSG_INVALID");
    }

    #[test]
    fn linux_errno_mapping() {
        assert_eq!(RmError::Ok.linux_errno(), 0);
        assert_eq!(RmError::Unimplemented.linux_errno(), -95);
        assert_eq!(RmError::NoResource.linux_errno(), -19);
        assert_eq!(RmError::MsgInvalid.linux_errno(), -22);
        assert_eq!(RmError::IrqReleased.linux_errno(), -22);
        assert_eq!(RmError::VmState.linux_errno(), -74);
    }
}

//! Capability rights (`cap_rights_t`, a `u32`) per object type.
//!
//! Each object type has its own rights bitfield. Bit 31, `OBJECT_ACTIVATE`,
//! is the generic right shared by every type ([`GenericRights`]); the low bits
//! are type specific. Master caps hold `ALL`; `cspace_copy_cap_from` derives
//! caps with `rights & mask`.
//!
//! Each type is a small newtype with the usual set operations; [`bits`] and
//! [`from_bits_retain`] convert to and from the raw ABI value.
//!
//! Values follow the public hypervisor source where it disagrees with the API
//! docs (notably hwirq `BIND_VIC` is bit 1, `0x2`). Entries marked "docs only"
//! come from `docs/api/gunyah_api.md` without a public `.tc` definition.
//!
//! [`bits`]: GenericRights::bits
//! [`from_bits_retain`]: GenericRights::from_bits_retain

use core::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Sub};

/// The generic `OBJECT_ACTIVATE` right (bit 31), present in every type.
pub const OBJECT_ACTIVATE: u32 = 0x8000_0000;

macro_rules! rights {
    (
        $(#[$tdoc:meta])*
        $name:ident {
            $( $(#[$doc:meta])* $right:ident = $value:literal, )*
        }
    ) => {
        $(#[$tdoc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(u32);

        impl $name {
            $( $(#[$doc])* pub const $right: $name = $name($value); )*
            /// The generic right to activate / configure the object (bit 31).
            pub const OBJECT_ACTIVATE: $name = $name(OBJECT_ACTIVATE);
            /// No rights.
            pub const EMPTY: $name = $name(0);
            /// Every defined right (what a master cap holds).
            pub const ALL: $name = $name(OBJECT_ACTIVATE $(| $value)*);
            /// Every named right, type specific ones first, `OBJECT_ACTIVATE` last.
            pub const NAMED: &'static [($name, &'static str)] = &[
                $( ($name::$right, stringify!($right)), )*
                ($name::OBJECT_ACTIVATE, "OBJECT_ACTIVATE"),
            ];

            /// The raw `cap_rights_t` value.
            pub const fn bits(self) -> u32 {
                self.0
            }

            /// Rights from a raw value; `None` if it has undefined bits.
            pub const fn from_bits(bits: u32) -> Option<Self> {
                if bits & !Self::ALL.0 == 0 { Some($name(bits)) } else { None }
            }

            /// Rights from a raw value, dropping undefined bits.
            pub const fn from_bits_truncate(bits: u32) -> Self {
                $name(bits & Self::ALL.0)
            }

            /// Rights from a raw value, keeping undefined bits.
            pub const fn from_bits_retain(bits: u32) -> Self {
                $name(bits)
            }

            /// Whether every right in `other` is also in `self`.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// Whether `self` and `other` share any right.
            pub const fn intersects(self, other: Self) -> bool {
                self.0 & other.0 != 0
            }

            /// Rights in either set.
            pub const fn union(self, other: Self) -> Self {
                $name(self.0 | other.0)
            }

            /// Rights in both sets (what a copy through a mask keeps).
            pub const fn intersection(self, other: Self) -> Self {
                $name(self.0 & other.0)
            }

            /// Rights in `self` but not in `other`.
            pub const fn difference(self, other: Self) -> Self {
                $name(self.0 & !other.0)
            }

            /// Whether no right is held.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }
        }

        impl BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                self.union(rhs)
            }
        }

        impl BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: Self) {
                *self = self.union(rhs);
            }
        }

        impl BitAnd for $name {
            type Output = Self;
            fn bitand(self, rhs: Self) -> Self {
                self.intersection(rhs)
            }
        }

        impl BitAndAssign for $name {
            fn bitand_assign(&mut self, rhs: Self) {
                *self = self.intersection(rhs);
            }
        }

        impl Sub for $name {
            type Output = Self;
            fn sub(self, rhs: Self) -> Self {
                self.difference(rhs)
            }
        }

        impl From<$name> for u32 {
            fn from(r: $name) -> u32 {
                r.0
            }
        }
    };
}

rights! {
    /// Generic rights (`cap_rights_generic`): only `OBJECT_ACTIVATE`.
    GenericRights {}
}

rights! {
    /// Partition rights (`cap_rights_partition`).
    PartitionRights {
        /// Create objects in the partition (all `partition_create_*`).
        OBJECT_CREATE = 0x1,
        /// Donate memory from the partition.
        DONATE = 0x2,
    }
}

rights! {
    /// Capability-space rights (`cap_rights_cspace`).
    CspaceRights {
        /// Insert new caps (destination of create / copy).
        CAP_CREATE = 0x1,
        /// Delete caps.
        CAP_DELETE = 0x2,
        /// Copy caps out of this cspace.
        CAP_COPY = 0x4,
        /// Attach a thread to this cspace.
        ATTACH = 0x8,
        /// Revoke caps derived from a master cap (not in the docs).
        CAP_REVOKE = 0x10,
    }
}

rights! {
    /// Address-space rights (`cap_rights_addrspace`).
    AddrspaceRights {
        /// Attach a thread.
        ATTACH = 0x1,
        /// Map / unmap / update access.
        MAP = 0x2,
        /// Look up mappings.
        LOOKUP = 0x4,
        /// Add / remove VMMIO ranges (not in the docs).
        ADD_VMMIO_RANGE = 0x8,
    }
}

rights! {
    /// Memory-extent rights (`cap_rights_memextent`).
    MemextentRights {
        /// Map the extent into an address space.
        MAP = 0x1,
        /// Derive child extents.
        DERIVE = 0x2,
        /// Attach the extent (e.g. as a virtio-mmio or info area).
        ATTACH = 0x4,
        /// Look up mappings of the extent.
        LOOKUP = 0x8,
        /// Donate memory to / from the extent.
        DONATE = 0x10,
    }
}

rights! {
    /// Thread (vCPU) rights (`cap_rights_thread`).
    ThreadRights {
        /// Power on / off.
        POWER = 0x1,
        /// Set affinity; run with `vcpu_run`.
        AFFINITY = 0x2,
        /// Set priority.
        PRIORITY = 0x4,
        /// Set timeslice.
        TIMESLICE = 0x8,
        /// Be yielded to; run with `vcpu_run`.
        YIELD_TO = 0x10,
        /// Bind / unbind vCPU VIRQs.
        BIND_VIRQ = 0x20,
        /// Read run state (`vcpu_run_check`).
        STATE = 0x40,
        /// Kill.
        LIFECYCLE = 0x80,
        /// Write registers of a powered-off vCPU.
        WRITE_CONTEXT = 0x100,
        /// Set affinity to `CPU_INDEX_INVALID` (disable).
        DISABLE = 0x200,
    }
}

rights! {
    /// Doorbell rights (`cap_rights_doorbell`).
    DoorbellRights {
        /// `doorbell_send`.
        SEND = 0x1,
        /// `doorbell_receive` / `reset` / `mask`.
        RECEIVE = 0x2,
        /// Bind / unbind the VIRQ.
        BIND = 0x4,
    }
}

rights! {
    /// Message-queue rights (`cap_rights_msgqueue`).
    MsgqueueRights {
        /// `msgqueue_send` / `configure_send`.
        SEND = 0x1,
        /// `msgqueue_receive` / `flush` / `configure_receive`.
        RECEIVE = 0x2,
        /// Bind / unbind the send-side VIRQ.
        BIND_SEND = 0x4,
        /// Bind / unbind the receive-side VIRQ.
        BIND_RECEIVE = 0x8,
    }
}

rights! {
    /// Virtual interrupt controller rights (`cap_rights_vic`).
    VicRights {
        /// Bind an interrupt source (doorbell, msgqueue, hwirq, ...) to a VIRQ.
        BIND_SOURCE = 0x1,
        /// Attach a vCPU.
        ATTACH_VCPU = 0x2,
        /// Attach a virtual device (not in the docs).
        ATTACH_VDEVICE = 0x4,
    }
}

rights! {
    /// Hardware IRQ rights (`cap_rights_hwirq`).
    HwirqRights {
        /// Bind to a VIC (source: bit 1; the docs say 0x1).
        BIND_VIC = 0x2,
    }
}

rights! {
    /// Virtual PM group rights (`cap_rights_vpm_group`).
    VpmGroupRights {
        /// Attach a vCPU.
        ATTACH_VCPU = 0x1,
        /// Bind / unbind the VIRQ.
        BIND_VIRQ = 0x2,
        /// Query the group state.
        QUERY = 0x4,
    }
}

rights! {
    /// Watchdog rights (`cap_rights_watchdog`, docs only).
    WatchdogRights {
        /// Attach a vCPU.
        ATTACH_VCPU = 0x1,
        /// Bind / unbind the VIRQ.
        BIND_VIRQ = 0x2,
    }
}

rights! {
    /// Virtio-mmio backend rights (`cap_rights_virtio_mmio`).
    VirtioMmioRights {
        /// Bind the backend VIRQ.
        BIND_BACKEND_VIRQ = 0x1,
        /// Bind the frontend VIRQ.
        BIND_FRONTEND_VIRQ = 0x2,
        /// Assert the frontend VIRQ.
        ASSERT_VIRQ = 0x4,
        /// Configure the device.
        CONFIG = 0x8,
    }
}

rights! {
    /// Virtual RTC rights (`cap_rights_vrtc`).
    VrtcRights {
        /// Configure.
        CONFIGURE = 0x1,
        /// Attach an address space.
        ATTACH_ADDRSPACE = 0x2,
        /// Set the time base.
        SET_TIME_BASE = 0x4,
    }
}

rights! {
    /// Virtual GIC ITS rights (docs only).
    VgicItsRights {
        /// Bind to a VIC.
        BIND_VIC = 0x1,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// §3.2 of the reference as `(type, right, value)`, independent of the
    /// definitions above.
    const REFERENCE: &[(&str, &str, u32)] = &[
        ("partition", "OBJECT_CREATE", 0x1),
        ("partition", "DONATE", 0x2),
        ("cspace", "CAP_CREATE", 0x1),
        ("cspace", "CAP_DELETE", 0x2),
        ("cspace", "CAP_COPY", 0x4),
        ("cspace", "ATTACH", 0x8),
        ("cspace", "CAP_REVOKE", 0x10),
        ("addrspace", "ATTACH", 0x1),
        ("addrspace", "MAP", 0x2),
        ("addrspace", "LOOKUP", 0x4),
        ("addrspace", "ADD_VMMIO_RANGE", 0x8),
        ("memextent", "MAP", 0x1),
        ("memextent", "DERIVE", 0x2),
        ("memextent", "ATTACH", 0x4),
        ("memextent", "LOOKUP", 0x8),
        ("memextent", "DONATE", 0x10),
        ("thread", "POWER", 0x1),
        ("thread", "AFFINITY", 0x2),
        ("thread", "PRIORITY", 0x4),
        ("thread", "TIMESLICE", 0x8),
        ("thread", "YIELD_TO", 0x10),
        ("thread", "BIND_VIRQ", 0x20),
        ("thread", "STATE", 0x40),
        ("thread", "LIFECYCLE", 0x80),
        ("thread", "WRITE_CONTEXT", 0x100),
        ("thread", "DISABLE", 0x200),
        ("doorbell", "SEND", 0x1),
        ("doorbell", "RECEIVE", 0x2),
        ("doorbell", "BIND", 0x4),
        ("msgqueue", "SEND", 0x1),
        ("msgqueue", "RECEIVE", 0x2),
        ("msgqueue", "BIND_SEND", 0x4),
        ("msgqueue", "BIND_RECEIVE", 0x8),
        ("vic", "BIND_SOURCE", 0x1),
        ("vic", "ATTACH_VCPU", 0x2),
        ("vic", "ATTACH_VDEVICE", 0x4),
        ("hwirq", "BIND_VIC", 0x2),
        ("vpm_group", "ATTACH_VCPU", 0x1),
        ("vpm_group", "BIND_VIRQ", 0x2),
        ("vpm_group", "QUERY", 0x4),
        ("watchdog", "ATTACH_VCPU", 0x1),
        ("watchdog", "BIND_VIRQ", 0x2),
        ("virtio_mmio", "BIND_BACKEND_VIRQ", 0x1),
        ("virtio_mmio", "BIND_FRONTEND_VIRQ", 0x2),
        ("virtio_mmio", "ASSERT_VIRQ", 0x4),
        ("virtio_mmio", "CONFIG", 0x8),
        ("vrtc", "CONFIGURE", 0x1),
        ("vrtc", "ATTACH_ADDRSPACE", 0x2),
        ("vrtc", "SET_TIME_BASE", 0x4),
        ("vgic_its", "BIND_VIC", 0x1),
    ];

    /// `(type name, named rights as raw values)` for every newtype.
    fn all_types() -> [(&'static str, &'static [(u32, &'static str)]); 15] {
        macro_rules! named {
            ($t:ty) => {{
                const N: usize = <$t>::NAMED.len();
                const RAW: [(u32, &str); N] = {
                    let mut out = [(0u32, ""); N];
                    let mut i = 0;
                    while i < N {
                        out[i] = (<$t>::NAMED[i].0.bits(), <$t>::NAMED[i].1);
                        i += 1;
                    }
                    out
                };
                &RAW
            }};
        }
        [
            ("generic", named!(GenericRights)),
            ("partition", named!(PartitionRights)),
            ("cspace", named!(CspaceRights)),
            ("addrspace", named!(AddrspaceRights)),
            ("memextent", named!(MemextentRights)),
            ("thread", named!(ThreadRights)),
            ("doorbell", named!(DoorbellRights)),
            ("msgqueue", named!(MsgqueueRights)),
            ("vic", named!(VicRights)),
            ("hwirq", named!(HwirqRights)),
            ("vpm_group", named!(VpmGroupRights)),
            ("watchdog", named!(WatchdogRights)),
            ("virtio_mmio", named!(VirtioMmioRights)),
            ("vrtc", named!(VrtcRights)),
            ("vgic_its", named!(VgicItsRights)),
        ]
    }

    #[test]
    fn every_reference_right_is_defined() {
        let types = all_types();
        for &(ty, right, value) in REFERENCE {
            let (_, named) = types.iter().find(|(t, _)| *t == ty).unwrap();
            assert!(
                named.iter().any(|&(v, n)| n == right && v == value),
                "{ty}::{right}"
            );
        }
        // ...and nothing beyond the reference except OBJECT_ACTIVATE.
        for (ty, named) in types {
            for &(value, right) in named {
                if right == "OBJECT_ACTIVATE" {
                    assert_eq!(value, OBJECT_ACTIVATE);
                } else {
                    assert!(REFERENCE.contains(&(ty, right, value)), "{ty}::{right}");
                }
            }
        }
    }

    #[test]
    fn rights_within_a_type_are_distinct_single_bits() {
        for (ty, named) in all_types() {
            let mut seen = 0u32;
            for &(value, right) in named {
                assert_eq!(value.count_ones(), 1, "{ty}::{right}");
                assert_eq!(seen & value, 0, "{ty}::{right} overlaps");
                seen |= value;
            }
        }
    }

    #[test]
    fn all_masks() {
        assert_eq!(GenericRights::ALL.bits(), 0x8000_0000);
        assert_eq!(PartitionRights::ALL.bits(), 0x8000_0003);
        assert_eq!(CspaceRights::ALL.bits(), 0x8000_001F);
        assert_eq!(AddrspaceRights::ALL.bits(), 0x8000_000F);
        assert_eq!(MemextentRights::ALL.bits(), 0x8000_001F);
        assert_eq!(ThreadRights::ALL.bits(), 0x8000_03FF);
        assert_eq!(DoorbellRights::ALL.bits(), 0x8000_0007);
        assert_eq!(MsgqueueRights::ALL.bits(), 0x8000_000F);
        assert_eq!(VicRights::ALL.bits(), 0x8000_0007);
        assert_eq!(HwirqRights::ALL.bits(), 0x8000_0002);
        assert_eq!(VpmGroupRights::ALL.bits(), 0x8000_0007);
        assert_eq!(WatchdogRights::ALL.bits(), 0x8000_0003);
        assert_eq!(VirtioMmioRights::ALL.bits(), 0x8000_000F);
        assert_eq!(VrtcRights::ALL.bits(), 0x8000_0007);
        assert_eq!(VgicItsRights::ALL.bits(), 0x8000_0001);
    }

    #[test]
    fn set_operations() {
        let send_recv = MsgqueueRights::SEND | MsgqueueRights::RECEIVE;
        assert_eq!(send_recv.bits(), 0x3);
        assert!(send_recv.contains(MsgqueueRights::SEND));
        assert!(!send_recv.contains(MsgqueueRights::BIND_SEND));
        assert!(send_recv.intersects(MsgqueueRights::RECEIVE));
        assert!(MsgqueueRights::ALL.contains(send_recv));
        assert!(send_recv.contains(MsgqueueRights::EMPTY));
        assert_eq!(send_recv & MsgqueueRights::SEND, MsgqueueRights::SEND);
        assert_eq!(send_recv - MsgqueueRights::SEND, MsgqueueRights::RECEIVE);
        assert!(MsgqueueRights::EMPTY.is_empty());
        assert_eq!(MsgqueueRights::default(), MsgqueueRights::EMPTY);
        let mut r = ThreadRights::POWER;
        r |= ThreadRights::AFFINITY;
        r &= ThreadRights::AFFINITY | ThreadRights::YIELD_TO;
        assert_eq!(r, ThreadRights::AFFINITY);
        assert_eq!(u32::from(ThreadRights::OBJECT_ACTIVATE), OBJECT_ACTIVATE);
    }

    #[test]
    fn raw_conversions_round_trip() {
        // Property-style sweep: low 12 bits plus a few high patterns.
        let patterns = (0u32..0x1000).chain([0x8000_0000, 0x8000_0FFF, 0x4000_0001, u32::MAX]);
        for bits in patterns {
            let ok = bits & !ThreadRights::ALL.bits() == 0;
            assert_eq!(ThreadRights::from_bits(bits).is_some(), ok);
            if let Some(r) = ThreadRights::from_bits(bits) {
                assert_eq!(r.bits(), bits);
            }
            let t = ThreadRights::from_bits_truncate(bits);
            assert_eq!(t.bits(), bits & ThreadRights::ALL.bits());
            assert_eq!(ThreadRights::from_bits_retain(bits).bits(), bits);
            // A copy through a mask never grows rights.
            let master = ThreadRights::ALL;
            let derived = master.intersection(ThreadRights::from_bits_retain(bits));
            assert!(master.contains(derived));
            assert_eq!(derived, t);
            // union / intersection / difference agree with the raw operations.
            let a = ThreadRights::from_bits_retain(bits);
            let b = ThreadRights::from_bits_retain(bits.rotate_left(3));
            assert_eq!(a.union(b).bits(), bits | bits.rotate_left(3));
            assert_eq!(a.intersection(b).bits(), bits & bits.rotate_left(3));
            assert_eq!(a.difference(b).bits(), bits & !bits.rotate_left(3));
            assert_eq!(
                a.contains(b),
                bits & bits.rotate_left(3) == bits.rotate_left(3)
            );
        }
    }
}

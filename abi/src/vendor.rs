//! Wurley's own vendor calls: SMCCC function IDs of the vendor-hyp owner outside Gunyah's
//! hypercall class (`0xC600_8000 | N`), on the SMCCC path only (`HVC #0`, `X0` = the ID,
//! arguments in `X1..`, `X0` = the Gunyah error code on return).
//!
//! - [`VM_SET_NAME`] (`0xC600_0100`, fast, SMC64): `X1` address-space cap (right MAP), `X2`
//!   guest VA of the name, `X3` its length (1..=[`VM_NAME_MAX`] bytes of
//!   `A-Z a-z 0-9 , . _ + -`), `X4` flags ([`VM_NAME_CONSOLE_FOCUS`], [`VM_NAME_CONSOLE_SHARED`]; other bits
//!   `ARGUMENT_INVALID`). Names the VM built (or to be built) on that address space: its
//!   console lines are prefixed `[name] ` and the hypervisor's log lines say `VM <name>: ...`.
//! - [`PARTITION_CONFIGURE`] (`0xC600_0101`, fast, SMC64): `X1` partition cap (OBJECT_ACTIVATE,
//!   in INIT), `X2` its object-memory quota in bytes. Gunyah gives a child partition memory of
//!   its own; Wurley's partitions are quotas over one heap, and this sets a child's quota
//!   (unlimited otherwise, within its ancestors').

/// `WURLEY_VM_SET_NAME`: fast, SMC64, vendor-hyp owner, function 0x100.
pub const VM_SET_NAME: u32 = 0xC600_0100;
/// `WURLEY_PARTITION_CONFIGURE`: fast, SMC64, vendor-hyp owner, function 0x101.
pub const PARTITION_CONFIGURE: u32 = 0xC600_0101;
/// Longest name `VM_SET_NAME` accepts.
pub const VM_NAME_MAX: usize = 29;
/// `VM_SET_NAME` flags bit 0: the VM takes console input first.
pub const VM_NAME_CONSOLE_FOCUS: u64 = 1 << 0;
/// `VM_SET_NAME` flags bit 1: several VMs share the console (from now on, every VM's output
/// goes out a whole line at a time, prefixed with its name), as the launcher knows before the
/// VMs start.
pub const VM_NAME_CONSOLE_SHARED: u64 = 1 << 1;

/// Whether `name` is a name `VM_SET_NAME` accepts: 1..=[`VM_NAME_MAX`] bytes, each a letter,
/// a digit or one of `, . _ + -`.
pub fn is_valid_vm_name(name: &[u8]) -> bool {
    (1..=VM_NAME_MAX).contains(&name.len())
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b',' | b'.' | b'_' | b'+' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_vm_name(b"linux"));
        assert!(is_valid_vm_name(b"a,b.c_d+e-F9"));
        assert!(is_valid_vm_name(&[b'x'; VM_NAME_MAX]));
        assert!(!is_valid_vm_name(&[b'x'; VM_NAME_MAX + 1]));
        assert!(!is_valid_vm_name(b""));
        assert!(!is_valid_vm_name(b"with space"));
        assert!(!is_valid_vm_name(b"a]b"));
        assert!(!is_valid_vm_name("é".as_bytes()));
    }

    #[test]
    fn function_id_is_fast_smc64_vendor_hyp_and_not_a_hypercall() {
        for id in [VM_SET_NAME, PARTITION_CONFIGURE] {
            let f = crate::smccc::FunctionId(id);
            assert!(f.is_fast() && f.is_smc64());
            assert_eq!(f.owner(), crate::smccc::Owner::VendorHyp);
            assert_eq!(crate::hypcall::smccc_hypercall_number(id), None);
        }
    }
}

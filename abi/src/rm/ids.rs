//! RM RPC message IDs (§7.5).
//!
//! `0x51xx_xxxx` are memory/firmware messages, `0x56xx_xxxx` VM messages; bits 23:20 are 0
//! for requests and 1 for notifications (`0x5x10_xxxx`). The public RM (12/2023) handles
//! every request here except VM_SET_BOOT_CONTEXT, VM_SET_DEMAND_PAGING and
//! VM_SET_ADDRESS_LAYOUT, which Linux v16/v17 needs to launch a VM and which Wurley's RM must
//! therefore implement.

macro_rules! message_ids {
    ($( $(#[$doc:meta])* $name:ident = $value:literal, )*) => {
        $( $(#[$doc])* pub const $name: u32 = $value; )*

        /// Every message ID with its name, in table order.
        pub const ALL: &[(u32, &str)] = &[$(($value, stringify!($name)),)*];

        /// The name of a message ID (e.g. `"VM_START"`), for logs; `None` if unknown.
        pub const fn name(id: u32) -> Option<&'static str> {
            match id {
                $( $value => Some(stringify!($name)), )*
                _ => None,
            }
        }
    };
}

message_ids! {
    /// Donate memory: ownership moves to the single ACL VM.
    MEM_DONATE = 0x5100_0010,
    /// Accept (map) a memparcel lent, shared or donated to the caller.
    MEM_ACCEPT = 0x5100_0011,
    /// Lend memory: the owner loses access while lent (Linux: exactly one ACL entry).
    MEM_LEND = 0x5100_0012,
    /// Share memory: the owner keeps access (Linux: more than one ACL entry).
    MEM_SHARE = 0x5100_0013,
    /// Release (unmap) an accepted memparcel.
    MEM_RELEASE = 0x5100_0014,
    /// Owner takes a memparcel back.
    MEM_RECLAIM = 0x5100_0015,
    /// Ask the RM to notify VMs about a memparcel.
    MEM_NOTIFY = 0x5100_0017,
    /// Append SGL entries to a memparcel created with the APPEND flag.
    MEM_APPEND = 0x5100_0018,
    /// Qualcomm: look a memparcel up by its SGL.
    MEM_QCOM_LOOKUP_SGL = 0x5100_001A,
    /// Firmware milestone.
    FW_MILESTONE = 0x5100_0020,
    /// Set a VM's firmware.
    FW_SET_VM_FIRMWARE = 0x5100_0021,
    /// Notification: a memparcel was shared with the receiver.
    NOTIFY_MEM_SHARED = 0x5110_0011,
    /// Notification to the owner: a borrower released a memparcel.
    NOTIFY_MEM_RELEASED = 0x5110_0012,
    /// Notification to the owner: a borrower accepted a memparcel.
    NOTIFY_MEM_ACCEPTED = 0x5110_0013,
    /// Notification to borrowers: the owner wants a memparcel back.
    NOTIFY_MEM_RECALL = 0x5110_0014,
    /// Allocate a VMID (Linux: VM_ALLOC_VMID).
    VM_ALLOCATE = 0x5600_0001,
    /// Free a VMID.
    VM_DEALLOCATE = 0x5600_0002,
    /// Start a READY VM.
    VM_START = 0x5600_0004,
    /// Stop a VM (forcibly or by asking it to shut down).
    VM_STOP = 0x5600_0005,
    /// Reset a VM's resources (completion: VM_STATUS with RESET).
    VM_RESET = 0x5600_0006,
    /// Suspend a VM (commented out in the public RM).
    VM_SUSPEND = 0x5600_0007,
    /// Resume a VM (commented out in the public RM).
    VM_RESUME = 0x5600_0008,
    /// Configure the VM image and DT from a memparcel.
    VM_CONFIG_IMAGE = 0x5600_0009,
    /// Authenticate the VM image.
    VM_AUTH_IMAGE = 0x5600_000A,
    /// Create the VM's hypervisor objects (VM becomes READY).
    VM_INIT = 0x5600_000B,
    /// Get a VM's identity (GUID, name, URI, signing authority).
    VM_GET_ID = 0x5600_0010,
    /// Look a VM up by URI.
    VM_LOOKUP_URI = 0x5600_0011,
    /// Look a VM up by GUID.
    VM_LOOKUP_GUID = 0x5600_0012,
    /// Look a VM up by name.
    VM_LOOKUP_NAME = 0x5600_0013,
    /// Get a VM's owner.
    VM_GET_OWNER = 0x5600_0015,
    /// Get a VM's status word.
    VM_GET_STATE = 0x5600_0017,
    /// Get a VM's crash message.
    VM_GET_CRASH_MSG = 0x5600_0019,
    /// Get the hypervisor resources (caps, VIRQs) the caller has for a VM.
    VM_GET_HYP_RESOURCES = 0x5600_0020,
    /// Get capability IDs only.
    VM_GET_HYP_CAPIDS = 0x5600_0021,
    /// Get VIRQs only.
    VM_GET_HYP_IRQS = 0x5600_0022,
    /// Get the caller's own VMID.
    VM_GET_VMID = 0x5600_0024,
    /// Get a VM's peers.
    VM_GET_PEERS = 0x5600_0025,
    /// Set a VM's time base.
    VM_SET_TIME_BASE = 0x5600_0030,
    /// Set a boot register of the primary vCPU (VM_SET_CONTEXT; Linux only, not in the public RM).
    VM_SET_BOOT_CONTEXT = 0x5600_0031,
    /// Set a VM's firmware memparcel.
    VM_SET_FIRMWARE_MEM = 0x5600_0032,
    /// Enable demand paging of ranges (Linux only, not in the public RM).
    VM_SET_DEMAND_PAGING = 0x5600_0033,
    /// Tell the RM where the image/firmware range is (Linux only, not in the public RM).
    VM_SET_ADDRESS_LAYOUT = 0x5600_0034,
    /// Accept a lent IRQ.
    VM_IRQ_ACCEPT = 0x5600_0050,
    /// Lend an IRQ to another VM.
    VM_IRQ_LEND = 0x5600_0051,
    /// Release an accepted IRQ.
    VM_IRQ_RELEASE = 0x5600_0052,
    /// Owner takes a lent IRQ back.
    VM_IRQ_RECLAIM = 0x5600_0053,
    /// Ask the RM to notify VMs about an IRQ.
    VM_IRQ_NOTIFY = 0x5600_0054,
    /// Drop ownership of IRQs (wire layout unconfirmed).
    VM_IRQ_UNMAP = 0x5600_0055,
    /// A VM reports its own OS/app status.
    VM_SET_STATUS = 0x5600_0080,
    /// Open a VM console.
    VM_CONSOLE_OPEN = 0x5600_0081,
    /// Close a VM console.
    VM_CONSOLE_CLOSE = 0x5600_0082,
    /// Write characters to a VM console.
    VM_CONSOLE_WRITE = 0x5600_0083,
    /// Flush a VM console.
    VM_CONSOLE_FLUSH = 0x5600_0084,
    /// A VM exits itself.
    VM_EXIT = 0x5600_0085,
    /// A VM records its crash message.
    VM_SET_CRASH_MSG = 0x5600_0086,
    /// Host type query.
    VM_HOST_GET_TYPE = 0x5600_00A0,
    /// Reserve an IPA range.
    IPA_RESERVE = 0x5600_00B0,
    /// Unreserve an IPA range.
    IPA_UNRESERVE = 0x5600_00B1,
    /// Notification to the owner: a VM exited.
    NOTIFY_VM_EXITED = 0x5610_0001,
    /// Notification to a VM being stopped gracefully (carries the stop reason).
    NOTIFY_VM_SHUTDOWN = 0x5610_0002,
    /// Notification to peers: a VM's status changed.
    NOTIFY_VM_STATUS = 0x5610_0008,
    /// Notification to a borrower: an IRQ was lent to it.
    NOTIFY_VM_IRQ_LENT = 0x5610_0011,
    /// Notification to the owner: a borrower released an IRQ.
    NOTIFY_VM_IRQ_RELEASED = 0x5610_0012,
    /// Notification to the owner: a borrower accepted an IRQ.
    NOTIFY_VM_IRQ_ACCEPTED = 0x5610_0013,
    /// Notification: console characters for the receiver.
    NOTIFY_VM_CONSOLE_CHARS = 0x5610_0080,
}

/// `true` for notification IDs (bits 23:20 equal to 1).
pub const fn is_notification(id: u32) -> bool {
    (id >> 20) & 0xF == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_named() {
        for (i, &(id, n)) in ALL.iter().enumerate() {
            assert_eq!(name(id), Some(n));
            assert!(ALL[i + 1..].iter().all(|&(other, _)| other != id), "{n}");
            assert_eq!(is_notification(id), n.starts_with("NOTIFY_"), "{n}");
            assert!(matches!(id >> 24, 0x51 | 0x56), "{n}");
        }
        assert_eq!(ALL.len(), 65);
        assert_eq!(name(0), None);
        assert_eq!(name(VM_SET_BOOT_CONTEXT), Some("VM_SET_BOOT_CONTEXT"));
        assert_eq!(VM_SET_DEMAND_PAGING, 0x5600_0033);
        assert_eq!(VM_SET_ADDRESS_LAYOUT, 0x5600_0034);
    }
}

//! Role `rmclient`: a client of Wurley's Resource Manager (`rm/`), the root VM the hypervisor
//! starts with every bundle and links to this one by a message-queue pair labelled
//! `rm-<this VM's name>` (bootargs `rmlink=` names it; default: the first pair whose label
//! starts with `rm-`).
//!
//! Speaks the RM RPC protocol (framing from `wurley_abi::rm`) driven by the link's vIRQs: a
//! full TX queue waits for the TX "not full" vIRQ, an empty RX queue for the RX "not empty"
//! vIRQ (WFI in between, nothing polls), and checks the RM's answers:
//!
//! * VM_GET_VMID, VM_GET_STATE of itself (RUNNING), VM_SET_STATUS then VM_GET_STATE showing
//!   it, an invalid OS status, an unknown VMID;
//! * the console: a write before open (DENIED), open, a 600-byte write (three packets; the
//!   RM prints its five lines as `client: <line>`, which the host test looks for), flush,
//!   close;
//! * an unknown message ID (UNIMPLEMENTED), a 3-byte VM_GET_STATE (MSG_INVALID);
//! * a stray continuation packet (no reply; the next request is answered);
//! * VM_GET_HYP_RESOURCES of itself (well formed, empty: the RM knows no caps of VMs it did
//!   not create) and of the RM (DENIED);
//! * a 14 616-byte request (62 continuations: reassembled, UNIMPLEMENTED) and 64 packets
//!   announcing 63 continuations (dropped: no reply; the next request is answered);
//! * as the primary VM (VMID 3: the first VM the RM launches): VM_ALLOCATE, the new VM's
//!   state (LOAD), VM_START (VM_STATE), VM_INIT (ARGUMENT_INVALID: no image was
//!   configured, and the VM stays in LOAD), VM_DEALLOCATE;
//! * VM_EXIT, then VM_GET_STATE showing EXITED.

use wurley_abi::VmId;
use wurley_abi::rm::status::{OsStatus, VmStateReply, VmStatus};
use wurley_abi::rm::vm::{VmAllocateReply, VmExitRequest, VmGetVmidReply, VmSetStatusRequest};
use wurley_abi::rm::{
    Decode, Header, MAX_MESSAGE_SIZE, MAX_PACKET_PAYLOAD, MessageType, RmError, ids,
};
use wurley_rt::fdt::Fdt;
use wurley_rt::{args, hypdt, time};

use crate::report::Report;
use crate::rpc::{self, Got, Rpc, expect, vmid_req};

/// An ID the RM does not know.
const UNKNOWN_ID: u32 = 0x5600_00FE;

/// Lines of the console test: 5 × 120 bytes = 600, each ending in a newline.
pub const CONSOLE_LINES: usize = 5;
const CONSOLE_LINE_LEN: usize = 120;

/// Byte `i` of console line `k` (the host test rebuilds the same lines).
fn console_byte(k: usize, i: usize, prefix: &[u8]) -> u8 {
    match prefix.get(i) {
        Some(&b) => b,
        None if i == CONSOLE_LINE_LEN - 1 => b'\n',
        None => b'a' + ((i * 7 + k) % 26) as u8,
    }
}

fn state(g: &Got) -> Option<VmStateReply> {
    VmStateReply::decode(g.payload()).ok()
}

// Not inlined into `guest_main`: its frame would add to every role's (one 64 KiB stack).
#[inline(never)]
pub fn run(r: &mut Report, fdt: &Fdt<'_>, bootargs: &str) {
    let pair = match args::get(bootargs, "rmlink") {
        Some(label) => hypdt::msgqueue_pair(fdt, label),
        None => hypdt::resource_manager(fdt)
            .or_else(|| hypdt::msgqueue_pairs(fdt).find(|p| p.label.starts_with("rm-"))),
    };
    let Some(pair) = pair else {
        r.check(
            "setup",
            false,
            format_args!("no RM link (gunyah-resource-manager node or rm-<name> pair)"),
        );
        return;
    };
    let (Some(txi), Some(rxi)) = (pair.tx_irq, pair.rx_irq) else {
        r.check(
            "setup",
            false,
            format_args!("{}: no interrupts", pair.label),
        );
        return;
    };
    r.info(
        "link",
        format_args!(
            "{}: tx_virq={} rx_virq={} size={}/{}",
            pair.label, txi.intid, rxi.intid, pair.tx_message_size, pair.rx_message_size
        ),
    );
    let mut buf = [0u8; MAX_MESSAGE_SIZE];
    let mut rpc = match Rpc::new(&pair, &mut buf) {
        Ok(rpc) => rpc,
        Err(why) => {
            r.check("setup", false, format_args!("{}: {why}", pair.label));
            return;
        }
    };
    let start = time::ticks();

    // Who am I.
    let got = rpc.call(ids::VM_GET_VMID, &[]);
    let Some(g) = expect(r, "get-vmid", &got, RmError::Ok) else {
        return;
    };
    let vmid = VmGetVmidReply::decode(g.payload()).map_or(VmId(0), |v| v.vmid);
    r.check(
        "get-vmid-value",
        vmid.0 != 0 && g.payload().len() == 4,
        format_args!("vmid={:#x}", vmid.0),
    );

    // State, status.
    let got = rpc.call(ids::VM_GET_STATE, &vmid_req(vmid.0));
    if let Some(g) = expect(r, "get-state", &got, RmError::Ok) {
        let s = state(g);
        r.check(
            "get-state-running",
            s.is_some_and(|s| s.vm_status == VmStatus::Running && s.os_status == OsStatus::None),
            format_args!("{s:?}"),
        );
    }
    let set = VmSetStatusRequest {
        vm_status: 0,
        os_status: OsStatus::Run.raw(),
        app_status: 0x1234,
    };
    let got = rpc.call_encoded(ids::VM_SET_STATUS, &set);
    expect(r, "set-status", &got, RmError::Ok);
    let got = rpc.call(ids::VM_GET_STATE, &vmid_req(0));
    if let Some(g) = expect(r, "get-state-after-set", &got, RmError::Ok) {
        let s = state(g);
        r.check(
            "set-status-shown",
            s.is_some_and(|s| s.os_status == OsStatus::Run && s.app_status == 0x1234),
            format_args!("{s:?}"),
        );
    }
    let bad = VmSetStatusRequest {
        vm_status: 0,
        os_status: 9,
        app_status: 0,
    };
    let got = rpc.call_encoded(ids::VM_SET_STATUS, &bad);
    expect(r, "set-status-invalid", &got, RmError::ArgumentInvalid);
    let got = rpc.call(ids::VM_GET_STATE, &vmid_req(0x1234));
    expect(r, "get-state-unknown", &got, RmError::VmidInvalid);

    // Console.
    let got = rpc.call(ids::VM_CONSOLE_WRITE, &[0, 0, 1, 0, b'x']);
    expect(r, "console-write-closed", &got, RmError::Denied);
    let got = rpc.call(ids::VM_CONSOLE_OPEN, &vmid_req(0));
    expect(r, "console-open", &got, RmError::Ok);
    let text_len = CONSOLE_LINES * CONSOLE_LINE_LEN;
    let console_req = |i: usize| -> u8 {
        match i {
            0 | 1 => 0,
            2 => text_len as u8,
            3 => (text_len >> 8) as u8,
            _ => {
                let (k, j) = ((i - 4) / CONSOLE_LINE_LEN, (i - 4) % CONSOLE_LINE_LEN);
                let mut prefix = *b"rmclient console line 0 of 5: ";
                prefix[22] = b'1' + k as u8;
                console_byte(k + 1, j, &prefix)
            }
        }
    };
    let got = rpc
        .send_request(ids::VM_CONSOLE_WRITE, 4 + text_len, console_req)
        .and_then(|seq| rpc.reply_to(seq, ids::VM_CONSOLE_WRITE));
    expect(r, "console-write-600", &got, RmError::Ok);
    let got = rpc.call(ids::VM_CONSOLE_FLUSH, &vmid_req(0));
    expect(r, "console-flush", &got, RmError::Ok);
    let got = rpc.call(ids::VM_CONSOLE_CLOSE, &vmid_req(0));
    expect(r, "console-close", &got, RmError::Ok);

    // Unknown and malformed.
    let got = rpc.call(UNKNOWN_ID, &[1, 2, 3, 4]);
    expect(r, "unknown-id", &got, RmError::Unimplemented);
    let got = rpc.call(ids::VM_GET_STATE, &[0, 0, 0]);
    expect(r, "malformed-get-state", &got, RmError::MsgInvalid);

    // A stray continuation: dropped without a reply; the next request is answered (and
    // its reply is the first thing that arrives).
    let stray = Header::new(MessageType::Continuation, 1, 0x7777, ids::VM_GET_VMID);
    let sent = rpc.send_generated(stray, 1, 16, |_| 0x55);
    let got = sent.and_then(|()| rpc.call(ids::VM_GET_VMID, &[]));
    expect(r, "stray-continuation-ignored", &got, RmError::Ok);

    // Hyp resources.
    let got = rpc.call(ids::VM_GET_HYP_RESOURCES, &vmid_req(0));
    if let Some(g) = expect(r, "hyp-resources", &got, RmError::Ok) {
        let p = g.payload();
        let n = p
            .first_chunk::<4>()
            .map_or(u32::MAX, |w| u32::from_le_bytes(*w));
        r.check(
            "hyp-resources-list",
            n == 0 && p.len() == 4,
            format_args!(
                "entries={n} payload={} bytes (bundle mode: the RM knows no caps of its clients)",
                p.len()
            ),
        );
    }
    let got = rpc.call(ids::VM_GET_HYP_RESOURCES, &vmid_req(0xFF));
    expect(r, "hyp-resources-of-rm", &got, RmError::Denied);

    // The largest request: 62 continuations, reassembled and answered.
    let got = rpc
        .send_request(UNKNOWN_ID, MAX_MESSAGE_SIZE, |i| (i * 13) as u8)
        .and_then(|seq| rpc.reply_to(seq, UNKNOWN_ID));
    expect(
        r,
        "max-message-62-continuations",
        &got,
        RmError::Unimplemented,
    );

    // 63 continuations announced: every packet is dropped; the next request is answered.
    let seq = rpc.next_seq();
    let too_many = Header::new(MessageType::Request, 63, seq, ids::VM_GET_VMID);
    let sent = rpc.send_generated(too_many, 64, 64 * MAX_PACKET_PAYLOAD, |i| i as u8);
    let got = sent.and_then(|()| rpc.call(ids::VM_GET_VMID, &[]));
    expect(r, "63-continuations-dropped", &got, RmError::Ok);

    // VM management, as the primary VM.
    if vmid.0 == 3 {
        lifecycle(r, &mut rpc);
    } else {
        r.info(
            "lifecycle",
            format_args!("skipped: VMID {:#x} is not the primary VM", vmid.0),
        );
    }

    // Exit.
    let exit = VmExitRequest {
        flags: 0,
        exit_code: wurley_abi::rm::status::ExitCode::Normal,
    };
    let got = rpc.call_encoded(ids::VM_EXIT, &exit);
    expect(r, "vm-exit", &got, RmError::Ok);
    let got = rpc.call(ids::VM_GET_STATE, &vmid_req(0));
    if let Some(g) = expect(r, "get-state-after-exit", &got, RmError::Ok) {
        let s = state(g);
        r.check(
            "exited",
            s.is_some_and(|s| s.vm_status == VmStatus::Exited),
            format_args!("{s:?}"),
        );
    }
    r.info(
        "rpc",
        format_args!(
            "requests={} notifications={} tx_irqs={} rx_irqs={} us={}",
            rpc.seq,
            rpc.notifications,
            rpc::irq_counts().0,
            rpc::irq_counts().1,
            time::elapsed_us(start)
        ),
    );
}

/// VM_ALLOCATE and the checks the RM can make before hypervisor objects exist.
fn lifecycle(r: &mut Report, rpc: &mut Rpc<'_>) {
    let got = rpc.call(ids::VM_ALLOCATE, &vmid_req(0));
    let Some(g) = expect(r, "vm-allocate", &got, RmError::Ok) else {
        return;
    };
    let new = VmAllocateReply::decode(g.payload()).map_or(0, |v| v.vmid.0);
    r.check(
        "vm-allocate-vmid",
        (0x80..=0xBF).contains(&new),
        format_args!("vmid={new:#x}"),
    );
    let got = rpc.call(ids::VM_GET_STATE, &vmid_req(new));
    if let Some(g) = expect(r, "new-vm-state", &got, RmError::Ok) {
        let s = state(g);
        r.check(
            "new-vm-load",
            s.is_some_and(|s| s.vm_status == VmStatus::Load),
            format_args!("{s:?}"),
        );
    }
    let got = rpc.call(ids::VM_START, &vmid_req(new));
    expect(r, "vm-start-not-ready", &got, RmError::VmState);
    let got = rpc.call(ids::VM_INIT, &vmid_req(new));
    expect(r, "vm-init-unconfigured", &got, RmError::ArgumentInvalid);
    let got = rpc.call(ids::VM_DEALLOCATE, &vmid_req(new));
    expect(r, "vm-deallocate", &got, RmError::Ok);
    let got = rpc.call(ids::VM_GET_STATE, &vmid_req(new));
    expect(r, "deallocated-vm-gone", &got, RmError::VmidInvalid);
}

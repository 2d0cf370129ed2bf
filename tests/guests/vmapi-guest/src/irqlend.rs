//! Roles `irqlend` and `irqchild`: IRQ lending through the Resource Manager on a real hardware
//! interrupt, QEMU virt's PL031 RTC (window `rtc=`, default 0x0901_0000; interrupt `virq=`,
//! default 34 = SPI 2, level), given to the `irqlend` VM (the primary VM) by its manifest's
//! `devices` node.
//!
//! `irqlend` (the owner) takes the RTC's interrupt itself once (`own-irq`: it programs the
//! match register one second ahead, its handler clears RTCICR), then creates a child VM
//! exactly as role `vmlife` does ([`crate::vmlife`]: the payload in its initrd, a 2 MiB parcel
//! of its RAM lent as the child's image; the child's device tree says `role=irqchild`). The
//! child tells it over their message-queue link that it runs ([`KIND_READY`]); the owner
//! checks VM_IRQ_LEND of a vIRQ it does not own (`IRQ_INVALID`) and to itself
//! (`ARGUMENT_INVALID`), lends the RTC's vIRQ to the child with label [`IRQ_LABEL`], lends it
//! again (`IRQ_INUSE`), tries to accept it itself (`DENIED`) and sends VM_IRQ_NOTIFY(LENT) to
//! the child.
//!
//! `irqchild` waits for the VM_IRQ_LENT notification (owner 3, the label), checks VM_IRQ_ACCEPT
//! of a handle nobody lent (`HANDLE_INVALID`) and VM_IRQ_RELEASE before accepting
//! (`IRQ_RELEASED`), accepts the handle at any free vIRQ, accepts it again (`IRQ_INUSE`),
//! enables that vIRQ (level), sends VM_IRQ_NOTIFY(ACCEPTED) and tells the owner the vIRQ
//! ([`KIND_ACCEPTED`]). The owner gets the VM_IRQ_ACCEPTED notification, checks VM_IRQ_RECLAIM
//! while the IRQ is accepted (`IRQ_INUSE`) and programs the RTC's alarm. The child's handler
//! disables the vIRQ (the line stays high: only the owner can clear the device) and the child
//! reports it ([`KIND_GOT`]); the owner sees RTCRIS still set, clears RTCICR and says so
//! ([`KIND_CLEARED`]); the child checks it took the interrupt once, releases the IRQ, releases
//! it again (`IRQ_RELEASED`), sends VM_IRQ_NOTIFY(RELEASED) and reports ([`KIND_RELEASED`]),
//! then idles. The owner gets VM_IRQ_RELEASED, reclaims the IRQ (and again: `HANDLE_INVALID`),
//! takes the RTC's interrupt itself again (`own-irq-back`) and tears the child down as
//! `vmlife` does (stop, VM_EXITED, MEM_RECLAIM, VM_RESET, VM_DEALLOCATE, the parcel its own).
//! Every step waits for the message of the step before it; nothing depends on timing.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use wurley_abi::VmId;
use wurley_abi::rm::irq::{
    IRQ_ACCEPT_ANY_VIRQ, IRQ_NOTIFY_FLAG_ACCEPTED, IRQ_NOTIFY_FLAG_LENT, IRQ_NOTIFY_FLAG_RELEASED,
    IrqAcceptReply, IrqAcceptRequest, IrqHandle, IrqLendRequest, IrqLentNotification,
    IrqNotifyRequest,
};
use wurley_abi::rm::memparcel::{MEM_HANDLE_INVALID, MemHandleReply, VmidEntry};
use wurley_abi::rm::status::{ExitType, VmExitedNotification, VmStatus};
use wurley_abi::rm::vm::{
    VM_STOP_FLAG_FORCE, VM_STOP_REASON_FORCE_STOP, VmAllocateReply, VmGetVmidReply, VmStopRequest,
};
use wurley_abi::rm::{Decode, List, MAX_MESSAGE_SIZE, RmError, ids};
use wurley_rt::fdt::Fdt;
use wurley_rt::{args, gic, hypdt, time};

use crate::report::Report;
use crate::rpc::{CallError, Got, Rpc, vmid_req};
use crate::vmlife::{
    CHILD_TIMEOUT_US, LABEL_BASE, Link, Steps, child_link, config_image, fill_parcel, find_payload,
    is_exited, is_primary, is_status, layout, lend, link_msg, parcel_is_mine, parse_link_msg,
    reclaim,
};

/// The IRQ's label.
pub const IRQ_LABEL: u32 = 0x4952_5131;
/// Child to owner: it runs (VMID in the second word).
pub const KIND_READY: u32 = 0x10;
/// Child to owner: it accepted the IRQ (the vIRQ in the first word).
pub const KIND_ACCEPTED: u32 = 0x11;
/// Child to owner: the interrupt came (vIRQ, times taken).
pub const KIND_GOT: u32 = 0x12;
/// Owner to child: the RTC's interrupt is cleared.
pub const KIND_CLEARED: u32 = 0x13;
/// Child to owner: the IRQ is released.
pub const KIND_RELEASED: u32 = 0x14;
/// Owner to child: nothing more (an error on the owner's side).
pub const KIND_ABORT: u32 = 0x1F;

/// PL031 registers.
const RTCDR: u64 = 0x00;
const RTCMR: u64 = 0x04;
const RTCIMSC: u64 = 0x10;
const RTCRIS: u64 = 0x14;
const RTCICR: u64 = 0x1c;
/// How long the RTC may take to match (it counts whole seconds).
const RTC_WAIT_US: u64 = 3_000_000;
/// The primary VM's VMID.
const PRIMARY: u16 = 3;
/// A vIRQ the owner has no hardware IRQ at (an SPI its manifest gives it no device for).
const NOT_MINE_VIRQ: u32 = 35;

static RTC_BASE: AtomicU64 = AtomicU64::new(0);
static OWN_IRQS: AtomicU32 = AtomicU32::new(0);
static CHILD_IRQS: AtomicU32 = AtomicU32::new(0);
static CHILD_INTID: AtomicU32 = AtomicU32::new(0);

fn rtc_read(off: u64) -> u32 {
    let a = RTC_BASE.load(Ordering::Acquire) + off;
    // SAFETY: a PL031 register in the window the manifest gives this VM, which the runtime
    // maps as Device memory (the first GiB); an aligned 32-bit load.
    unsafe { core::ptr::read_volatile(a as *const u32) }
}

fn rtc_write(off: u64, v: u32) {
    let a = RTC_BASE.load(Ordering::Acquire) + off;
    // SAFETY: as in `rtc_read`, an aligned 32-bit store to a device register.
    unsafe { core::ptr::write_volatile(a as *mut u32, v) }
}

/// The owner's handler: clear the RTC's interrupt.
fn own_irq(_intid: u32) {
    rtc_write(RTCICR, 1);
    OWN_IRQS.fetch_add(1, Ordering::AcqRel);
}

/// The child's handler: it cannot clear the device, so it disables the vIRQ.
fn child_irq(intid: u32) {
    gic::disable(intid);
    CHILD_INTID.store(intid, Ordering::Release);
    CHILD_IRQS.fetch_add(1, Ordering::AcqRel);
}

/// Make the RTC match within a second: RTCMR = RTCDR + 1 (if the counter ticks before the
/// write, the match is at once), its interrupt unmasked.
fn arm_rtc() {
    rtc_write(RTCICR, 1);
    rtc_write(RTCIMSC, 1);
    let now = rtc_read(RTCDR);
    rtc_write(RTCMR, now.wrapping_add(1));
}

/// Take the RTC's interrupt at `virq` in this VM once.
fn own_interrupt(s: &mut Steps<'_>, name: &str, virq: u32) -> bool {
    let before = OWN_IRQS.load(Ordering::Acquire);
    gic::enable(virq, false, own_irq);
    let start = time::ticks();
    arm_rtc();
    let came = time::wait_until(RTC_WAIT_US, || OWN_IRQS.load(Ordering::Acquire) != before);
    let us = time::elapsed_us(start);
    gic::disable(virq);
    let ris = rtc_read(RTCRIS);
    s.check(
        name,
        came && ris & 1 == 0,
        format_args!("virq={virq} taken={came} after {us} us, RTCRIS={ris:#x} (want 0)"),
    )
}

/// A link message of one of `kinds` within the child timeout: `(kind, a, b)`.
fn receive(link: &Link) -> Option<(u32, u32, u32)> {
    let mut buf = [0u8; 240];
    let n = link.receive(&mut buf, CHILD_TIMEOUT_US).ok()?;
    parse_link_msg(&buf[..n.min(buf.len())])
}

fn expect_msg(s: &mut Steps<'_>, name: &str, link: &Link, kind: u32) -> Option<(u32, u32)> {
    let got = receive(link);
    let ok = matches!(got, Some((k, ..)) if k == kind);
    s.check(
        name,
        ok,
        format_args!("link message {got:x?} want kind {kind:#x}"),
    );
    got.filter(|_| ok).map(|(_, a, b)| (a, b))
}

fn send(s: &mut Steps<'_>, name: &str, link: &Link, kind: u32, a: u32, b: u32) -> bool {
    let r = link.send(&link_msg(kind, a, b), CHILD_TIMEOUT_US);
    if r.is_err() {
        s.check(
            name,
            false,
            format_args!("link send of kind {kind:#x}: {r:?}"),
        );
    }
    r.is_ok()
}

fn irq_lend(rpc: &mut Rpc<'_>, borrower: u16, virq: u32) -> Result<Got, CallError> {
    rpc.call_encoded(
        ids::VM_IRQ_LEND,
        &IrqLendRequest {
            borrower: VmId(borrower),
            virq,
            label: IRQ_LABEL,
        },
    )
}

fn irq_accept(rpc: &mut Rpc<'_>, handle: u32) -> Result<Got, CallError> {
    rpc.call_encoded(
        ids::VM_IRQ_ACCEPT,
        &IrqAcceptRequest {
            handle,
            virq: IRQ_ACCEPT_ANY_VIRQ,
        },
    )
}

fn irq_handle_call(rpc: &mut Rpc<'_>, id: u32, handle: u32) -> Result<Got, CallError> {
    rpc.call_encoded(id, &IrqHandle { handle })
}

fn irq_notify(
    rpc: &mut Rpc<'_>,
    handle: u32,
    flags: u32,
    to: &[VmidEntry],
) -> Result<Got, CallError> {
    rpc.call_encoded(
        ids::VM_IRQ_NOTIFY,
        &IrqNotifyRequest {
            handle,
            flags,
            vmids: List::from_slice(to),
        },
    )
}

fn is_handle_note(note: &crate::rpc::Note, id: u32, handle: u32) -> bool {
    note.id == id && IrqHandle::decode(note.body()).is_ok_and(|h| h.handle == handle)
}

/// Role `irqlend`.
pub fn run_owner(r: &mut Report, fdt: &Fdt<'_>, bootargs: &str) {
    let rtc = args::get_u64(bootargs, "rtc").unwrap_or(0x0901_0000);
    let virq = args::get_u64(bootargs, "virq").unwrap_or(34) as u32;
    RTC_BASE.store(rtc, Ordering::Release);
    let payload = match find_payload(fdt) {
        Ok(p) => p,
        Err(why) => {
            r.check("payload", false, format_args!("{why}"));
            return;
        }
    };
    let l = match layout(&payload, false) {
        Ok(l) => l,
        Err(why) => {
            r.check("parcel", false, format_args!("{why}"));
            return;
        }
    };
    r.check(
        "payload",
        true,
        format_args!(
            "parcel at {:#x}, RTC at {:#x} vIRQ {virq}",
            l.base,
            RTC_BASE.load(Ordering::Acquire)
        ),
    );
    let Some(pair) = hypdt::resource_manager(fdt) else {
        r.check("setup", false, format_args!("no gunyah-resource-mgr node"));
        return;
    };
    let mut buf = [0u8; MAX_MESSAGE_SIZE];
    let mut rpc = match Rpc::new(&pair, &mut buf) {
        Ok(rpc) => rpc,
        Err(why) => {
            r.check("setup", false, format_args!("{why}"));
            return;
        }
    };
    if !is_primary(r, &mut rpc) {
        return;
    }
    let mut s = Steps {
        r,
        round: 1,
        verbose: true,
        failed: 0,
    };
    // (1) The device is this VM's.
    s.r.info(
        "rtc",
        format_args!("{:#x}", RTC_BASE.load(Ordering::Acquire)),
    );
    if !own_interrupt(&mut s, "own-irq", virq) {
        return;
    }
    // (2) A child, as vmlife makes one.
    let got = rpc.call(ids::VM_ALLOCATE, &vmid_req(0));
    let Some(g) = s.want("allocate", &got, RmError::Ok) else {
        return;
    };
    let vmid = VmAllocateReply::decode(g.payload()).map_or(0, |v| v.vmid.0);
    fill_parcel(&l, &payload);
    let got = lend(&mut rpc, &l, vmid, LABEL_BASE);
    let Some(g) = s.want("lend", &got, RmError::Ok) else {
        return;
    };
    let mem = MemHandleReply::decode(g.payload()).map_or(MEM_HANDLE_INVALID, |h| h.handle);
    let got = config_image(&mut rpc, &l, vmid, mem);
    if s.want("config-image", &got, RmError::Ok).is_none() {
        return;
    }
    let got = rpc.call(ids::VM_INIT, &vmid_req(vmid));
    if s.want("init", &got, RmError::Ok).is_none() {
        return;
    }
    let got = rpc.call(ids::VM_GET_HYP_RESOURCES, &vmid_req(vmid));
    let Some(g) = s.want("hyp-resources", &got, RmError::Ok) else {
        return;
    };
    let Some(link) = child_link(&mut s, g, vmid) else {
        return;
    };
    link.enable();
    let got = rpc.call(ids::VM_START, &vmid_req(vmid));
    if s.want("start", &got, RmError::Ok).is_some() {
        lend_to(&mut s, &mut rpc, &link, vmid, virq);
    }
    link.disable();
    // Tear the child down.
    let stop = VmStopRequest {
        vmid: VmId(vmid),
        flags: VM_STOP_FLAG_FORCE,
        stop_reason: VM_STOP_REASON_FORCE_STOP,
    };
    let got = rpc.call_encoded(ids::VM_STOP, &stop);
    if s.want("stop", &got, RmError::Ok).is_none() {
        return;
    }
    let exited = rpc.wait_notification(CHILD_TIMEOUT_US, |n| is_exited(n, vmid));
    let t = exited.ok().and_then(|n| {
        VmExitedNotification::decode(n.body())
            .ok()
            .map(|e| e.exit_type)
    });
    s.check(
        "exited",
        t == Some(ExitType::VmStopForced),
        format_args!("VM_EXITED exit_type={t:?} want VmStopForced"),
    );
    let got = reclaim(&mut rpc, mem);
    let reclaimed = s.want("reclaim", &got, RmError::Ok).is_some();
    let got = rpc.call(ids::VM_RESET, &vmid_req(vmid));
    if s.want("reset", &got, RmError::Ok).is_none() {
        return;
    }
    let reset = rpc.wait_notification(CHILD_TIMEOUT_US, |n| is_status(n, vmid, VmStatus::Reset));
    s.check(
        "reset-status",
        reset.is_ok(),
        format_args!("VM_STATUS RESET for {vmid:#x}"),
    );
    let got = rpc.call(ids::VM_DEALLOCATE, &vmid_req(vmid));
    s.want("deallocate", &got, RmError::Ok);
    if reclaimed {
        let bad = parcel_is_mine(l.base, 1);
        s.check(
            "memory-back",
            bad.is_none(),
            format_args!("parcel {:#x}+2MiB: first bad line {bad:?}", l.base),
        );
    }
}

/// Steps (3) to (7) with the running child `vmid`.
fn lend_to(s: &mut Steps<'_>, rpc: &mut Rpc<'_>, link: &Link, vmid: u16, virq: u32) {
    let Some((_, child)) = expect_msg(s, "child-ready", link, KIND_READY) else {
        return;
    };
    s.check(
        "child-vmid",
        child == u32::from(vmid),
        format_args!("child says vmid={child:#x} want {vmid:#x}"),
    );
    // (3) Lend it, after the refusals.
    let got = irq_lend(rpc, vmid, NOT_MINE_VIRQ);
    s.want("lend-not-mine", &got, RmError::IrqInvalid);
    let got = irq_lend(rpc, PRIMARY, virq);
    s.want("lend-to-self", &got, RmError::ArgumentInvalid);
    let got = irq_lend(rpc, vmid, virq);
    let Some(g) = s.want("irq-lend", &got, RmError::Ok) else {
        let _ = link.send(&link_msg(KIND_ABORT, 0, 0), CHILD_TIMEOUT_US);
        return;
    };
    let handle = IrqHandle::decode(g.payload()).map_or(0, |h| h.handle);
    let got = irq_lend(rpc, vmid, virq);
    s.want("lend-again", &got, RmError::IrqInUse);
    let got = irq_accept(rpc, handle);
    s.want("accept-not-borrower", &got, RmError::Denied);
    let to = [VmidEntry { vmid: VmId(vmid) }];
    let got = irq_notify(rpc, handle, IRQ_NOTIFY_FLAG_LENT, &to);
    s.want("notify-lent", &got, RmError::Ok);
    // (4) The child accepted it.
    let Some((child_virq, _)) = expect_msg(s, "child-accepted", link, KIND_ACCEPTED) else {
        return;
    };
    let note = rpc.wait_notification(CHILD_TIMEOUT_US, |n| {
        is_handle_note(n, ids::NOTIFY_VM_IRQ_ACCEPTED, handle)
    });
    s.check(
        "accepted-notification",
        note.is_ok(),
        format_args!("VM_IRQ_ACCEPTED for handle {handle:#x}, child vIRQ {child_virq}"),
    );
    let got = irq_handle_call(rpc, ids::VM_IRQ_RECLAIM, handle);
    s.want("reclaim-accepted", &got, RmError::IrqInUse);
    // (5) The RTC interrupts the child.
    let start = time::ticks();
    arm_rtc();
    let Some((got_virq, times)) = expect_msg(s, "child-irq", link, KIND_GOT) else {
        return;
    };
    let ris = rtc_read(RTCRIS);
    s.check(
        "line-high",
        got_virq == child_virq && times == 1 && ris & 1 == 1,
        format_args!(
            "child took vIRQ {got_virq} (accepted {child_virq}) {times} time(s) {} us after the alarm was set; RTCRIS={ris:#x} (want 1: the owner has not cleared it)",
            time::elapsed_us(start)
        ),
    );
    rtc_write(RTCICR, 1);
    let ris = rtc_read(RTCRIS);
    s.check(
        "cleared",
        ris & 1 == 0,
        format_args!("RTCRIS={ris:#x} after RTCICR"),
    );
    if !send(s, "cleared-sent", link, KIND_CLEARED, 0, 0) {
        return;
    }
    // (6) Released, then reclaimed.
    if expect_msg(s, "child-released", link, KIND_RELEASED).is_none() {
        return;
    }
    let note = rpc.wait_notification(CHILD_TIMEOUT_US, |n| {
        is_handle_note(n, ids::NOTIFY_VM_IRQ_RELEASED, handle)
    });
    s.check(
        "released-notification",
        note.is_ok(),
        format_args!("VM_IRQ_RELEASED for handle {handle:#x}"),
    );
    let got = irq_handle_call(rpc, ids::VM_IRQ_RECLAIM, handle);
    if s.want("irq-reclaim", &got, RmError::Ok).is_none() {
        return;
    }
    let got = irq_handle_call(rpc, ids::VM_IRQ_RECLAIM, handle);
    s.want("reclaim-again", &got, RmError::HandleInvalid);
    // (7) The interrupt is this VM's again.
    own_interrupt(s, "own-irq-back", virq);
}

/// Role `irqchild`: the borrower (runs until its owner stops it).
pub fn run_child(r: &mut Report, fdt: &Fdt<'_>, bootargs: &str) {
    let _ = bootargs;
    child(r, fdt);
    r.tally();
    loop {
        wurley_rt::wait_for_interrupt();
    }
}

fn child(r: &mut Report, fdt: &Fdt<'_>) {
    let Some(rm) = hypdt::resource_manager(fdt) else {
        r.check(
            "rm-link",
            false,
            format_args!("no gunyah-resource-mgr node"),
        );
        return;
    };
    let mut buf = [0u8; MAX_MESSAGE_SIZE];
    let mut rpc = match Rpc::new(&rm, &mut buf) {
        Ok(rpc) => rpc,
        Err(why) => {
            r.check("rm-link", false, format_args!("{why}"));
            return;
        }
    };
    let vmid = rpc
        .call(ids::VM_GET_VMID, &[])
        .ok()
        .filter(|g| g.code() == 0)
        .and_then(|g| VmGetVmidReply::decode(g.payload()).ok())
        .map_or(0, |v| v.vmid.0);
    if !r.check("rm-link", vmid != 0, format_args!("vmid={vmid:#x}")) {
        return;
    }
    let mut pairs = hypdt::msgqueue_pairs(fdt).filter(|p| p.tx != rm.tx);
    let (Some(pair), None) = (pairs.next(), pairs.next()) else {
        r.check(
            "owner-link",
            false,
            format_args!("want exactly one message-queue pair besides the RM link"),
        );
        return;
    };
    let (Some(txi), Some(rxi)) = (pair.tx_irq, pair.rx_irq) else {
        r.check("owner-link", false, format_args!("no interrupts"));
        return;
    };
    let link = Link {
        tx: pair.tx,
        rx: pair.rx,
        tx_irq: txi.intid,
        rx_irq: rxi.intid,
    };
    link.enable();
    let mut s = Steps {
        r,
        round: 1,
        verbose: true,
        failed: 0,
    };
    if send(&mut s, "ready", &link, KIND_READY, 0, u32::from(vmid)) {
        borrow(&mut s, &mut rpc, &link);
    }
    link.disable();
}

fn borrow(s: &mut Steps<'_>, rpc: &mut Rpc<'_>, link: &Link) {
    let note = rpc.wait_notification(CHILD_TIMEOUT_US, |n| n.id == ids::NOTIFY_VM_IRQ_LENT);
    let lent = note
        .ok()
        .and_then(|n| IrqLentNotification::decode(n.body()).ok());
    if !s.check(
        "lent-notification",
        lent.is_some_and(|n| n.owner.0 == PRIMARY && n.label == IRQ_LABEL),
        format_args!("VM_IRQ_LENT {lent:x?} want owner 3 label {IRQ_LABEL:#x}"),
    ) {
        return;
    }
    let handle = lent.map_or(0, |n| n.handle);
    let got = irq_accept(rpc, handle.wrapping_add(100));
    s.want("accept-unknown", &got, RmError::HandleInvalid);
    let got = irq_handle_call(rpc, ids::VM_IRQ_RELEASE, handle);
    s.want("release-unaccepted", &got, RmError::IrqReleased);
    let got = irq_accept(rpc, handle);
    let Some(g) = s.want("accept", &got, RmError::Ok) else {
        return;
    };
    let virq = IrqAcceptReply::decode(g.payload()).map_or(0, |a| a.virq);
    if !s.check(
        "accept-virq",
        (32..gic::MAX_INTID as u32).contains(&virq),
        format_args!("virq={virq}"),
    ) {
        return;
    }
    let got = irq_accept(rpc, handle);
    s.want("accept-again", &got, RmError::IrqInUse);
    gic::enable(virq, false, child_irq);
    let got = irq_notify(rpc, handle, IRQ_NOTIFY_FLAG_ACCEPTED, &[]);
    s.want("notify-accepted", &got, RmError::Ok);
    if !send(s, "accepted-sent", link, KIND_ACCEPTED, virq, 0) {
        return;
    }
    // The owner arms the RTC now.
    let came = time::wait_until(CHILD_TIMEOUT_US, || CHILD_IRQS.load(Ordering::Acquire) != 0);
    let intid = CHILD_INTID.load(Ordering::Acquire);
    s.check(
        "irq",
        came && intid == virq,
        format_args!("taken={came} intid={intid} want {virq}"),
    );
    if !came {
        return;
    }
    let times = CHILD_IRQS.load(Ordering::Acquire);
    if !send(s, "got-sent", link, KIND_GOT, intid, times) {
        return;
    }
    let mut m = [0u8; 240];
    let cleared = link
        .receive(&mut m, CHILD_TIMEOUT_US)
        .ok()
        .and_then(|n| parse_link_msg(&m[..n.min(m.len())]));
    if !s.check(
        "owner-cleared",
        matches!(cleared, Some((KIND_CLEARED, ..))),
        format_args!("link message {cleared:x?}"),
    ) {
        return;
    }
    let times = CHILD_IRQS.load(Ordering::Acquire);
    s.check(
        "irq-once",
        times == 1,
        format_args!("taken {times} time(s) (the handler disabled the vIRQ)"),
    );
    let got = irq_handle_call(rpc, ids::VM_IRQ_RELEASE, handle);
    s.want("release", &got, RmError::Ok);
    let got = irq_handle_call(rpc, ids::VM_IRQ_RELEASE, handle);
    s.want("release-again", &got, RmError::IrqReleased);
    let got = irq_notify(rpc, handle, IRQ_NOTIFY_FLAG_RELEASED, &[]);
    s.want("notify-released", &got, RmError::Ok);
    send(s, "released-sent", link, KIND_RELEASED, 0, 0);
}

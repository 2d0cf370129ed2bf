//! Roles `ping` and `pong`: message-queue traffic and the doorbell, driven by vIRQs.
//!
//! Messages phase: ping sends `count` data messages (`len` bytes, first four = sequence
//! number, the rest a pattern of it) while draining replies; pong receives each, checks its
//! sequence and pattern and replies with the pattern inverted. Both keep their TX queue as
//! full as it gets and drain their RX queue whenever they run; when neither can progress they
//! sleep in WFI until the TX "not full" or RX "not empty" vIRQ fires.
//!
//! Doorbell phase (over the same queue pair for coordination; 16-byte control messages):
//!
//! 1. pong resets the doorbell, masks it to `enable = 0b01, ack = 0`, tells ping (MASKED);
//! 2. ping sends flags 0b10 (masked: no vIRQ), tells pong (SENT_MASKED);
//! 3. pong checks no vIRQ came and the flags read 0b10 (receive with an unused clear bit),
//!    tells ping (SILENT);
//! 4. ping sends 0b01; pong's vIRQ handler receives (clear all) and must see 0b11; pong
//!    tells ping (UNMASKED);
//! 5. `rounds` times: ping sends 0b1 and waits for ACK(round); pong's handler receives the
//!    ring and pong acknowledges.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use wurley_abi::{CapId, Error};
use wurley_rt::fdt::Fdt;
use wurley_rt::hypdt::{self, Irq};
use wurley_rt::{args, gic, hyp, time};

use crate::report::Report;

/// Largest data message.
const MAX_MSG: usize = 240;
/// No progress for this long ends a phase with a FAIL.
const STALL_US: u64 = 20_000_000;
/// Control messages: magic, kind (u32 LE), value (u64 LE).
const CTRL_LEN: usize = 16;
const CTRL_MAGIC: [u8; 4] = *b"CTRL";
const MASKED: u32 = 1;
const SENT_MASKED: u32 = 2;
const SILENT: u32 = 3;
const UNMASKED: u32 = 4;
const ACK: u32 = 5;

/// The queue pair as this VM sees it.
struct Link {
    tx: CapId,
    rx: CapId,
    tx_irq: Irq,
    rx_irq: Irq,
    /// Data message length (both directions).
    len: usize,
}

fn wake(_intid: u32) {}

// Not inlined into `guest_main`: its frame would add to every role's (one 64 KiB stack).
#[inline(never)]
pub fn run(r: &mut Report, fdt: &Fdt<'_>, bootargs: &str, ping: bool) {
    let count = args::get_u64(bootargs, "count").unwrap_or(2000) as u32;
    let rounds = args::get_u64(bootargs, "rounds").unwrap_or(500) as u32;
    let chat = args::get(bootargs, "chat").unwrap_or("chat");
    let bell = args::get(bootargs, "bell").unwrap_or("bell");

    let Some(pair) = hypdt::msgqueue_pair(fdt, chat) else {
        r.check(
            "setup",
            false,
            format_args!("no message-queue pair labelled {chat}"),
        );
        return;
    };
    let (Some(tx_irq), Some(rx_irq)) = (pair.tx_irq, pair.rx_irq) else {
        r.check("setup", false, format_args!("{chat}: no interrupts"));
        return;
    };
    let size = |s: u32| if s == 0 { MAX_MSG } else { s as usize };
    let len = MAX_MSG
        .min(size(pair.tx_message_size))
        .min(size(pair.rx_message_size));
    let link = Link {
        tx: pair.tx,
        rx: pair.rx,
        tx_irq,
        rx_irq,
        len,
    };
    r.info(
        "link",
        format_args!(
            "{chat}: tx_virq={} rx_virq={} depth={}/{} size={}/{} len={len}",
            tx_irq.intid,
            rx_irq.intid,
            pair.tx_depth,
            pair.rx_depth,
            pair.tx_message_size,
            pair.rx_message_size
        ),
    );
    gic::enable(tx_irq.intid, tx_irq.edge, wake);
    gic::enable(rx_irq.intid, rx_irq.edge, wake);

    if ping {
        if !ping_messages(r, &link, count) {
            return;
        }
        match hypdt::doorbell_source(fdt, bell) {
            Some(db) => ping_doorbell(r, &link, db.cap, rounds),
            None => {
                r.check(
                    "doorbell-setup",
                    false,
                    format_args!("no doorbell-source labelled {bell}"),
                );
            }
        }
    } else {
        if !pong_messages(r, &link, count) {
            return;
        }
        match hypdt::doorbell(fdt, bell) {
            Some(hypdt::Doorbell {
                cap,
                irq: Some(irq),
                ..
            }) => pong_doorbell(r, &link, cap, irq, rounds),
            _ => {
                r.check(
                    "doorbell-setup",
                    false,
                    format_args!("no doorbell labelled {bell} with an interrupt"),
                );
            }
        }
    }
}

/// Byte `k` (>= 4) of data message `seq`.
fn pattern(seq: u32, k: usize) -> u8 {
    ((seq.wrapping_mul(0x9e37_79b1) >> (k % 25)) as u8) ^ (k as u8).wrapping_mul(29)
}

fn fill(buf: &mut [u8], seq: u32, reply: bool) {
    let flip = if reply { 0xff } else { 0 };
    for (k, b) in buf.iter_mut().enumerate().skip(4) {
        *b = pattern(seq, k) ^ flip;
    }
    buf[..4].copy_from_slice(&seq.to_le_bytes());
}

fn seq_of(buf: &[u8]) -> u32 {
    u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]])
}

fn pattern_ok(buf: &[u8], seq: u32, reply: bool) -> bool {
    let flip = if reply { 0xff } else { 0 };
    buf.iter()
        .enumerate()
        .skip(4)
        .all(|(k, &b)| b == pattern(seq, k) ^ flip)
}

/// What stopped a phase early.
#[derive(Clone, Copy)]
enum Stop {
    Call(&'static str, Error),
}

/// Counters of a message phase.
#[derive(Default)]
struct Traffic {
    sent: u32,
    received: u32,
    bad: u32,
    first_bad: Option<(u32, u32, usize)>,
    full_errors: u32,
    full_flags: u32,
    stop: Option<Stop>,
}

/// What one step of a message phase achieved.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Nothing to do until an interrupt.
    Idle,
    /// Sent or received something.
    Progress,
    /// Finished (or stopped on an error).
    Done,
}

/// Run `step` (non-blocking work) until it is done, sleeping in WFI whenever a step made no
/// progress. False if nothing progressed for [`STALL_US`].
fn drive(mut step: impl FnMut() -> Step) -> bool {
    loop {
        let mut state = Step::Idle;
        let woke = time::wait_until(STALL_US, || {
            state = step();
            state != Step::Idle
        });
        if !woke {
            return false;
        }
        if state == Step::Done {
            return true;
        }
    }
}

fn ping_messages(r: &mut Report, link: &Link, count: u32) -> bool {
    let start = time::ticks();
    let irqs = (gic::count(link.tx_irq.intid), gic::count(link.rx_irq.intid));
    let mut t = Traffic::default();
    let mut out = [0u8; MAX_MSG];
    let mut inb = [0u8; MAX_MSG];
    let len = link.len;
    let finished = drive(|| {
        if t.stop.is_some() {
            return Step::Done;
        }
        let mut progress = false;
        while t.sent < count {
            fill(&mut out[..len], t.sent, false);
            let (res, not_full) = hyp::msgqueue_send_slice(link.tx, &out[..len], 0);
            match res {
                Ok(()) => {
                    t.sent += 1;
                    progress = true;
                    if !not_full {
                        t.full_flags += 1;
                        break;
                    }
                }
                Err(Error::MsgqueueFull) => {
                    t.full_errors += 1;
                    break;
                }
                Err(e) => {
                    t.stop = Some(Stop::Call("send", e));
                    return Step::Done;
                }
            }
        }
        while t.received < count {
            let (res, not_empty) = hyp::msgqueue_receive_into(link.rx, &mut inb);
            match res {
                Ok(n) => {
                    progress = true;
                    let want = t.received;
                    let ok = n == len && seq_of(&inb) == want && pattern_ok(&inb[..n], want, true);
                    if !ok {
                        t.bad += 1;
                        t.first_bad.get_or_insert((want, seq_of(&inb), n));
                    }
                    t.received += 1;
                    if !not_empty {
                        break;
                    }
                }
                Err(Error::MsgqueueEmpty) => break,
                Err(e) => {
                    t.stop = Some(Stop::Call("receive", e));
                    return Step::Done;
                }
            }
        }
        if t.sent == count && t.received == count {
            Step::Done
        } else if progress {
            Step::Progress
        } else {
            Step::Idle
        }
    });
    report_traffic(r, link, &t, count, finished, start, irqs)
}

fn pong_messages(r: &mut Report, link: &Link, count: u32) -> bool {
    let start = time::ticks();
    let irqs = (gic::count(link.tx_irq.intid), gic::count(link.rx_irq.intid));
    let mut t = Traffic::default();
    let mut buf = [0u8; MAX_MSG];
    let mut pending: Option<usize> = None;
    let len = link.len;
    let finished = drive(|| {
        if t.stop.is_some() {
            return Step::Done;
        }
        let mut progress = false;
        loop {
            if let Some(n) = pending {
                let (res, _) = hyp::msgqueue_send_slice(link.tx, &buf[..n], 0);
                match res {
                    Ok(()) => {
                        pending = None;
                        t.sent += 1;
                        progress = true;
                    }
                    Err(Error::MsgqueueFull) => {
                        t.full_errors += 1;
                        break;
                    }
                    Err(e) => {
                        t.stop = Some(Stop::Call("send", e));
                        return Step::Done;
                    }
                }
            }
            if t.received == count {
                break;
            }
            let (res, _) = hyp::msgqueue_receive_into(link.rx, &mut buf);
            match res {
                Ok(n) => {
                    progress = true;
                    let want = t.received;
                    let seq = seq_of(&buf);
                    if !(n == len && seq == want && pattern_ok(&buf[..n], seq, false)) {
                        t.bad += 1;
                        t.first_bad.get_or_insert((want, seq, n));
                    }
                    t.received += 1;
                    // The reply: same sequence number, pattern inverted.
                    fill(&mut buf[..n.max(4)], seq, true);
                    pending = Some(n.max(4));
                }
                Err(Error::MsgqueueEmpty) => break,
                Err(e) => {
                    t.stop = Some(Stop::Call("receive", e));
                    return Step::Done;
                }
            }
        }
        if t.received == count && pending.is_none() {
            Step::Done
        } else if progress {
            Step::Progress
        } else {
            Step::Idle
        }
    });
    report_traffic(r, link, &t, count, finished, start, irqs)
}

fn report_traffic(
    r: &mut Report,
    link: &Link,
    t: &Traffic,
    count: u32,
    finished: bool,
    start: u64,
    irqs: (u32, u32),
) -> bool {
    let us = time::elapsed_us(start);
    let tx_irqs = gic::count(link.tx_irq.intid) - irqs.0;
    let rx_irqs = gic::count(link.rx_irq.intid) - irqs.1;
    let ok = finished && t.stop.is_none() && t.bad == 0 && t.sent == count && t.received == count;
    r.check(
        "messages",
        ok,
        format_args!(
            "count={count} len={} sent={} received={} bad={} full_errors={} full_flags={} tx_irqs={tx_irqs} rx_irqs={rx_irqs} us={us}{}",
            link.len,
            t.sent,
            t.received,
            t.bad,
            t.full_errors,
            t.full_flags,
            if finished { "" } else { " stalled" },
        ),
    );
    if let Some((want, got, n)) = t.first_bad {
        r.info(
            "first-bad-message",
            format_args!("want_seq={want} got_seq={got} size={n}"),
        );
    }
    if let Some(Stop::Call(what, e)) = t.stop {
        r.info("messages-error", format_args!("{what}: {}", e.code()));
    }
    ok
}

fn ctrl(kind: u32, value: u64) -> [u8; CTRL_LEN] {
    let mut m = [0u8; CTRL_LEN];
    m[..4].copy_from_slice(&CTRL_MAGIC);
    m[4..8].copy_from_slice(&kind.to_le_bytes());
    m[8..].copy_from_slice(&value.to_le_bytes());
    m
}

/// Send a control message, waiting for room.
fn send_ctrl(link: &Link, kind: u32, value: u64) -> Result<(), Error> {
    let m = ctrl(kind, value);
    let mut out = Err(Error::Busy);
    let sent = time::wait_until(STALL_US, || {
        let (res, _) = hyp::msgqueue_send_slice(link.tx, &m, 0);
        match res {
            Err(Error::MsgqueueFull) => false,
            other => {
                out = other;
                true
            }
        }
    });
    if sent { out } else { Err(Error::Busy) }
}

/// Receive a control message: (kind, value). `Err(Busy)` on timeout, `Err(Failure)` if a
/// message is not a control message.
fn recv_ctrl(link: &Link) -> Result<(u32, u64), Error> {
    let mut buf = [0u8; MAX_MSG];
    let mut out = Err(Error::Busy);
    let got = time::wait_until(STALL_US, || {
        let (res, _) = hyp::msgqueue_receive_into(link.rx, &mut buf);
        match res {
            Err(Error::MsgqueueEmpty) => false,
            Ok(n) if n == CTRL_LEN && buf[..4] == CTRL_MAGIC => {
                let kind = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
                let mut v = [0u8; 8];
                v.copy_from_slice(&buf[8..16]);
                out = Ok((kind, u64::from_le_bytes(v)));
                true
            }
            Ok(_) => {
                out = Err(Error::Failure);
                true
            }
            Err(e) => {
                out = Err(e);
                true
            }
        }
    });
    if got { out } else { Err(Error::Busy) }
}

/// Wait for control message `kind`; reports a FAIL named `check` otherwise.
fn expect_ctrl(r: &mut Report, link: &Link, kind: u32, check: &str) -> Option<u64> {
    match recv_ctrl(link) {
        Ok((k, v)) if k == kind => Some(v),
        Ok((k, v)) => {
            r.check(
                check,
                false,
                format_args!("control message {k} ({v}) instead of {kind}"),
            );
            None
        }
        Err(e) => {
            r.check(
                check,
                false,
                format_args!("no control message {kind}: error {}", e.code()),
            );
            None
        }
    }
}

fn send_or_fail(r: &mut Report, link: &Link, kind: u32, value: u64, check: &str) -> bool {
    match send_ctrl(link, kind, value) {
        Ok(()) => true,
        Err(e) => {
            r.check(
                check,
                false,
                format_args!("sending control message {kind}: error {}", e.code()),
            );
            false
        }
    }
}

fn ping_doorbell(r: &mut Report, link: &Link, bell: CapId, rounds: u32) {
    if expect_ctrl(r, link, MASKED, "doorbell-masked").is_none() {
        return;
    }
    let first = hyp::doorbell_send(bell, 0b10);
    if !send_or_fail(r, link, SENT_MASKED, 0, "doorbell-masked") {
        return;
    }
    if expect_ctrl(r, link, SILENT, "doorbell-masked").is_none() {
        return;
    }
    let second = hyp::doorbell_send(bell, 0b01);
    r.check(
        "doorbell-send-old-flags",
        first == Ok(0) && second == Ok(0b10),
        format_args!(
            "first: err={} old={:#x} (want 0) second: err={} old={:#x} (want 0x2)",
            hyp::code(&first),
            first.unwrap_or(0),
            hyp::code(&second),
            second.unwrap_or(0)
        ),
    );
    let Some(seen) = expect_ctrl(r, link, UNMASKED, "doorbell-unmasked") else {
        return;
    };
    r.check(
        "doorbell-unmasked",
        seen == 0b11,
        format_args!("pong's handler saw flags={seen:#x} (want 0x3)"),
    );

    let start = time::ticks();
    let mut done = 0;
    let mut problem = None;
    for round in 1..=rounds {
        if let Err(e) = hyp::doorbell_send(bell, 1) {
            problem = Some((round, "send", e.code()));
            break;
        }
        match recv_ctrl(link) {
            Ok((ACK, v)) if v == u64::from(round) => done = round,
            Ok((k, v)) => {
                problem = Some((round, "ack", i64::from(k) << 32 | v as i64));
                break;
            }
            Err(e) => {
                problem = Some((round, "ack", e.code()));
                break;
            }
        }
    }
    let us = time::elapsed_us(start);
    let per_round = us / u64::from(rounds.max(1));
    match problem {
        None => r.check(
            "doorbell-rounds",
            done == rounds,
            format_args!("rounds={done} us={us} us_per_round={per_round}"),
        ),
        Some((round, what, code)) => r.check(
            "doorbell-rounds",
            false,
            format_args!("round {round}: {what} failed ({code:#x}) after {done} rounds"),
        ),
    };
}

/// The doorbell pong receives, for its vIRQ handler.
static BELL: AtomicU64 = AtomicU64::new(u64::MAX);
/// Handler runs that found flag 0 set.
static RINGS: AtomicU32 = AtomicU32::new(0);
/// Handler runs that found no flag set.
static EMPTY: AtomicU32 = AtomicU32::new(0);
/// Handler runs whose doorbell_receive failed.
static ERRORS: AtomicU32 = AtomicU32::new(0);
/// Every flag the handler saw.
static SEEN: AtomicU64 = AtomicU64::new(0);

/// Pong's doorbell vIRQ: take (and clear) every flag.
fn bell_irq(_intid: u32) {
    match hyp::doorbell_receive(CapId(BELL.load(Ordering::Acquire)), !0) {
        Ok(old) => {
            SEEN.fetch_or(old, Ordering::AcqRel);
            if old & 1 != 0 {
                RINGS.fetch_add(1, Ordering::AcqRel);
            } else {
                EMPTY.fetch_add(1, Ordering::AcqRel);
            }
        }
        Err(_) => {
            ERRORS.fetch_add(1, Ordering::AcqRel);
        }
    }
}

fn pong_doorbell(r: &mut Report, link: &Link, bell: CapId, irq: Irq, rounds: u32) {
    BELL.store(bell.0, Ordering::Release);
    let reset = hyp::doorbell_reset(bell);
    let mask = hyp::doorbell_mask(bell, 0b01, 0);
    if !r.check(
        "doorbell-mask",
        reset.is_ok() && mask.is_ok(),
        format_args!(
            "reset={} mask(enable=0x1,ack=0)={}",
            hyp::code(&reset),
            hyp::code(&mask)
        ),
    ) {
        return;
    }
    gic::enable(irq.intid, irq.edge, bell_irq);
    if !send_or_fail(r, link, MASKED, 0, "doorbell-masked-silent") {
        return;
    }
    if expect_ctrl(r, link, SENT_MASKED, "doorbell-masked-silent").is_none() {
        return;
    }
    // Ping has set flag 1, which is masked: no vIRQ. Read the flags without clearing them by
    // clearing only a bit nobody sets.
    let peek = hyp::doorbell_receive(bell, 1 << 63);
    let irqs = gic::count(irq.intid);
    r.check(
        "doorbell-masked-silent",
        irqs == 0 && peek == Ok(0b10),
        format_args!(
            "irqs={irqs} (want 0) flags: err={} value={:#x} (want 0x2)",
            hyp::code(&peek),
            peek.unwrap_or(0)
        ),
    );
    if !send_or_fail(r, link, SILENT, 0, "doorbell-unmasked-irq") {
        return;
    }
    let fired = time::wait_until(STALL_US, || RINGS.load(Ordering::Acquire) >= 1);
    let seen = SEEN.load(Ordering::Acquire);
    r.check(
        "doorbell-unmasked-irq",
        fired && seen == 0b11 && ERRORS.load(Ordering::Acquire) == 0,
        format_args!(
            "irqs={} rings={} flags={seen:#x} (want 0x3) errors={}",
            gic::count(irq.intid),
            RINGS.load(Ordering::Acquire),
            ERRORS.load(Ordering::Acquire)
        ),
    );
    // Rings counted from here: read before telling ping to start, whose first ring may be
    // handled as soon as the message is sent.
    let base = RINGS.load(Ordering::Acquire);
    if !send_or_fail(r, link, UNMASKED, seen, "doorbell-rounds") {
        return;
    }

    let start = time::ticks();
    let mut acked = 0;
    for round in 1..=rounds {
        if !time::wait_until(STALL_US, || RINGS.load(Ordering::Acquire) >= base + round) {
            break;
        }
        if send_ctrl(link, ACK, u64::from(round)).is_err() {
            break;
        }
        acked = round;
    }
    let us = time::elapsed_us(start);
    let rings = RINGS.load(Ordering::Acquire) - base;
    r.check(
        "doorbell-rounds",
        acked == rounds && rings == rounds && ERRORS.load(Ordering::Acquire) == 0,
        format_args!(
            "rounds={acked} rings={rings} empty_irqs={} errors={} irqs={} us={us}",
            EMPTY.load(Ordering::Acquire),
            ERRORS.load(Ordering::Acquire),
            gic::count(irq.intid)
        ),
    );
}

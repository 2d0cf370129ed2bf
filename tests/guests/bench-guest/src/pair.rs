//! Roles `ping` and `pong`: round trips between two VMs.
//!
//! The bundle links them with a message-queue pair `chat` (240-byte messages) and two
//! doorbells, `ab` (ping rings pong) and `ba` (pong rings ping). Pong answers in its vIRQ
//! handlers: a data message is received and sent straight back (same size), a doorbell ring is
//! received and answered by ringing `ba`. Ping takes the counter, sends, sleeps in WFI until its
//! own vIRQ handler has received the answer, and keeps `handler time - send time` as one round
//! trip; each result comes as the round trip (`*_rtt`) and as half of it (one direction: send,
//! wake-up of the peer and its handler receiving).
//!
//! Neither side arms its virtual timer while waiting, so blocking takes the hypervisor's plain
//! path. With `yield=1` (both VMs on one CPU, equal priority) ping then asks pong to call
//! `scheduler_yield` (hint 0) in a loop, does the same, and takes the counter at every return:
//! one of its iterations is two vCPU switches (`yield_switch` is per switch).
//!
//! Control messages (16 bytes: `BNCH`, kind, value) order the phases: pong says READY, ping
//! asks YIELD (answered YIELDING, ended by STOP and STOPPED with pong's count) and END.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use wurley_abi::{CapId, Error, HypCall};
use wurley_rt::fdt::Fdt;
use wurley_rt::{args, gic, hyp, hypdt, time};

use crate::solo::{RxBuf, SIZES, TX_DATA, WARMUP};
use crate::stats::{Report, Samples, wait_irq};

const CTRL_LEN: usize = 16;
const CTRL_MAGIC: [u8; 4] = *b"BNCH";
const READY: u32 = 1;
const YIELD: u32 = 2;
const YIELDING: u32 = 3;
const STOP: u32 = 4;
const STOPPED: u32 = 5;
const END: u32 = 6;
/// Longest wait for a control message, in µs of virtual time.
const CTRL_TIMEOUT_US: u64 = 20_000_000;

static TX: AtomicU64 = AtomicU64::new(u64::MAX);
static RX: AtomicU64 = AtomicU64::new(u64::MAX);
static BELL_TX: AtomicU64 = AtomicU64::new(u64::MAX);
static BELL_RX: AtomicU64 = AtomicU64::new(u64::MAX);
/// Pong: answer data messages and rings from the handlers.
static ECHO: AtomicBool = AtomicBool::new(false);
static RXBUF: RxBuf = RxBuf::new();
static DATA_AT: AtomicU64 = AtomicU64::new(0);
static DATA: AtomicU32 = AtomicU32::new(0);
static BELL_AT: AtomicU64 = AtomicU64::new(0);
static BELLS: AtomicU32 = AtomicU32::new(0);
/// The last control message not yet taken (0: none) and its value.
static CTRL: AtomicU32 = AtomicU32::new(0);
static CTRL_VALUE: AtomicU64 = AtomicU64::new(0);
static IRQ_ERRORS: AtomicU32 = AtomicU32::new(0);

/// The RX "not empty" vIRQ: take every message; answer data at once if pong.
fn rx_irq(_intid: u32) {
    let rx = CapId(RX.load(Ordering::Relaxed));
    loop {
        // SAFETY: RXBUF is only written by the hypervisor during this call, and only this
        // handler (one vCPU) uses it.
        let (res, not_empty) = unsafe { hyp::msgqueue_receive(rx, RXBUF.addr(), 240) };
        match res {
            Ok(n) => {
                if n == CTRL_LEN && (0..4).all(|i| RXBUF.byte(i) == CTRL_MAGIC[i]) {
                    let kind = u32::from_le_bytes([
                        RXBUF.byte(4),
                        RXBUF.byte(5),
                        RXBUF.byte(6),
                        RXBUF.byte(7),
                    ]);
                    let value = (8..16)
                        .rev()
                        .fold(0u64, |v, i| v << 8 | u64::from(RXBUF.byte(i)));
                    CTRL_VALUE.store(value, Ordering::Release);
                    CTRL.store(kind, Ordering::Release);
                } else {
                    if ECHO.load(Ordering::Relaxed) {
                        let tx = CapId(TX.load(Ordering::Relaxed));
                        if hyp::msgqueue_send(tx, n, RXBUF.addr(), 0).0.is_err() {
                            IRQ_ERRORS.fetch_add(1, Ordering::AcqRel);
                        }
                    }
                    DATA_AT.store(time::ticks(), Ordering::Release);
                    DATA.fetch_add(1, Ordering::AcqRel);
                }
                if !not_empty {
                    break;
                }
            }
            Err(Error::MsgqueueEmpty) => break,
            Err(_) => {
                IRQ_ERRORS.fetch_add(1, Ordering::AcqRel);
                break;
            }
        }
    }
}

/// The received doorbell's vIRQ: clear the flags; ring back if pong.
fn bell_irq(_intid: u32) {
    match hyp::doorbell_receive(CapId(BELL_RX.load(Ordering::Relaxed)), !0) {
        Ok(_) => {
            if ECHO.load(Ordering::Relaxed)
                && hyp::doorbell_send(CapId(BELL_TX.load(Ordering::Relaxed)), 1).is_err()
            {
                IRQ_ERRORS.fetch_add(1, Ordering::AcqRel);
            }
            BELL_AT.store(time::ticks(), Ordering::Release);
            BELLS.fetch_add(1, Ordering::AcqRel);
        }
        Err(_) => {
            IRQ_ERRORS.fetch_add(1, Ordering::AcqRel);
        }
    }
}

fn send_ctrl(kind: u32, value: u64) -> Result<(), Error> {
    let mut m = [0u8; CTRL_LEN];
    m[..4].copy_from_slice(&CTRL_MAGIC);
    m[4..8].copy_from_slice(&kind.to_le_bytes());
    m[8..].copy_from_slice(&value.to_le_bytes());
    let tx = CapId(TX.load(Ordering::Relaxed));
    let mut out = Err(Error::Busy);
    time::wait_until(CTRL_TIMEOUT_US, || {
        match hyp::msgqueue_send_slice(tx, &m, 0).0 {
            Err(Error::MsgqueueFull) => false,
            other => {
                out = other;
                true
            }
        }
    });
    out
}

/// Wait for control message `kind`; its value.
fn wait_ctrl(r: &mut Report, kind: u32) -> Option<u64> {
    let got = time::wait_until(CTRL_TIMEOUT_US, || CTRL.load(Ordering::Acquire) != 0);
    let k = CTRL.swap(0, Ordering::AcqRel);
    if !got || k != kind {
        r.error(format_args!("waiting for control message {kind}: got {k}"));
        return None;
    }
    Some(CTRL_VALUE.load(Ordering::Acquire))
}

fn scheduler_yield() -> u64 {
    hyp::smccc(HypCall::SchedulerYield, &[0, 0, 0])[0]
}

pub fn run(r: &mut Report, fdt: &Fdt<'_>, bootargs: &str, reps: usize, ping: bool) {
    let chat = args::get(bootargs, "chat").unwrap_or("chat");
    let (bell_in, bell_out) = if ping { ("ba", "ab") } else { ("ab", "ba") };
    let Some(pair) = hypdt::msgqueue_pair(fdt, chat) else {
        r.error(format_args!("no message-queue pair labelled {chat}"));
        return;
    };
    let Some(rx_irq_spec) = pair.rx_irq else {
        r.error(format_args!("{chat}: no RX interrupt"));
        return;
    };
    TX.store(pair.tx.0, Ordering::Release);
    RX.store(pair.rx.0, Ordering::Release);
    gic::enable(rx_irq_spec.intid, rx_irq_spec.edge, rx_irq);
    let bells = match (
        hypdt::doorbell(fdt, bell_in),
        hypdt::doorbell_source(fdt, bell_out),
    ) {
        (
            Some(hypdt::Doorbell {
                cap,
                irq: Some(irq),
                ..
            }),
            Some(src),
        ) => {
            BELL_RX.store(cap.0, Ordering::Release);
            BELL_TX.store(src.cap.0, Ordering::Release);
            gic::enable(irq.intid, irq.edge, bell_irq);
            true
        }
        _ => {
            r.error(format_args!(
                "no doorbell {bell_in} (received, with an interrupt) and {bell_out} (rung)"
            ));
            false
        }
    };
    if ping {
        run_ping(r, bootargs, reps, bells);
        if send_ctrl(END, 0).is_err() {
            r.error(format_args!("could not send END"));
        }
    } else {
        run_pong(r);
    }
    let errors = IRQ_ERRORS.load(Ordering::Acquire);
    if errors != 0 {
        r.error(format_args!("{errors} errors in vIRQ handlers"));
    }
}

fn run_pong(r: &mut Report) {
    ECHO.store(true, Ordering::Release);
    if send_ctrl(READY, 0).is_err() {
        r.error(format_args!("could not send READY"));
        return;
    }
    loop {
        // Ping always ends with END: no timer while waiting.
        wait_irq(|| CTRL.load(Ordering::Acquire) != 0);
        match CTRL.swap(0, Ordering::AcqRel) {
            YIELD => {
                if send_ctrl(YIELDING, 0).is_err() {
                    r.error(format_args!("could not send YIELDING"));
                    return;
                }
                let mut n = 0u64;
                while CTRL.load(Ordering::Acquire) != STOP {
                    scheduler_yield();
                    n += 1;
                }
                CTRL.store(0, Ordering::Release);
                if send_ctrl(STOPPED, n).is_err() {
                    r.error(format_args!("could not send STOPPED"));
                    return;
                }
            }
            END => return,
            other => r.error(format_args!("unexpected control message {other}")),
        }
    }
}

fn run_ping(r: &mut Report, bootargs: &str, reps: usize, bells: bool) {
    let place = args::get(bootargs, "where").unwrap_or("same_cpu");
    let with_yield = args::get_u64(bootargs, "yield").unwrap_or(0) != 0;
    if wait_ctrl(r, READY).is_none() {
        return;
    }
    let tx = CapId(TX.load(Ordering::Relaxed));
    let mut s = Samples::new();
    let mut name = Name::new();
    for size in SIZES {
        s.clear();
        for i in 0..reps + WARMUP {
            let before = DATA.load(Ordering::Acquire);
            let t0 = time::ticks();
            if let Err(e) = hyp::msgqueue_send(tx, size, TX_DATA.as_ptr() as u64, 0).0 {
                r.error(format_args!("msgq {size} B: send failed: {}", e.code()));
                return;
            }
            wait_irq(|| DATA.load(Ordering::Acquire) != before);
            if i >= WARMUP {
                s.push(DATA_AT.load(Ordering::Acquire) - t0);
            }
        }
        s.report(name.set(format_args!("msgq_{size}B_{place}_rtt")), 1);
        s.report(name.set(format_args!("msgq_{size}B_{place}")), 2);
    }
    if bells {
        let bell = CapId(BELL_TX.load(Ordering::Relaxed));
        s.clear();
        for i in 0..reps + WARMUP {
            let before = BELLS.load(Ordering::Acquire);
            let t0 = time::ticks();
            if let Err(e) = hyp::doorbell_send(bell, 1) {
                r.error(format_args!("doorbell: send failed: {}", e.code()));
                return;
            }
            wait_irq(|| BELLS.load(Ordering::Acquire) != before);
            if i >= WARMUP {
                s.push(BELL_AT.load(Ordering::Acquire) - t0);
            }
        }
        s.report(name.set(format_args!("doorbell_{place}_rtt")), 1);
        s.report(name.set(format_args!("doorbell_{place}")), 2);
    }
    if with_yield {
        yield_phase(r, &mut s, reps);
    }
}

fn yield_phase(r: &mut Report, s: &mut Samples, reps: usize) {
    if send_ctrl(YIELD, 0).is_err() {
        r.error(format_args!("could not send YIELD"));
        return;
    }
    if wait_ctrl(r, YIELDING).is_none() {
        return;
    }
    let first = scheduler_yield();
    if first != 0 {
        r.error(format_args!("scheduler_yield answered {first:#x}"));
    }
    s.clear();
    let mut prev = time::ticks();
    for i in 0..reps + WARMUP {
        scheduler_yield();
        let now = time::ticks();
        if i >= WARMUP {
            s.push(now - prev);
        }
        prev = now;
    }
    s.report("yield_roundtrip", 1);
    s.report("yield_switch", 2);
    if send_ctrl(STOP, 0).is_err() {
        r.error(format_args!("could not send STOP"));
        return;
    }
    if let Some(n) = wait_ctrl(r, STOPPED) {
        let mine = (reps + WARMUP + 1) as u64;
        r.info(format_args!("yields ping={mine} pong={n}"));
        if n < mine {
            r.error(format_args!(
                "pong yielded {n} times, fewer than ping's {mine}: the switches were not all between the two"
            ));
        }
    }
}

/// A result name built from parts, without an allocator.
struct Name {
    buf: [u8; 64],
    len: usize,
}

impl Name {
    fn new() -> Self {
        Self {
            buf: [0; 64],
            len: 0,
        }
    }

    fn set(&mut self, args: core::fmt::Arguments<'_>) -> &str {
        self.len = 0;
        let _ = core::fmt::write(self, args);
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl core::fmt::Write for Name {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

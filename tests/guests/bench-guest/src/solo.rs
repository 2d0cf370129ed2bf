//! Role `solo`: one VM measuring what it can alone.
//!
//! * `BENCH-CALIB insns=.. ticks=..`: a loop of a known number of instructions, timed on the
//!   virtual counter (the fastest of five runs), so the host side can check how many
//!   instructions one tick is worth (16 under `-icount shift=0` with a 62.5 MHz counter).
//! * Null hypercalls, [`BATCH`] back to back per sample: an unassigned number through SMCCC
//!   (`0xC600_8008`, answered `ERROR_UNIMPLEMENTED`), `hypervisor_identify` through SMCCC and
//!   through the native `HVC #0x6000`.
//! * A message queue and a doorbell the VM creates for itself (caps to its partition, cspace and
//!   VIC are needed): send + receive as plain hypercalls (`msgq_sendrecv_*`,
//!   `doorbell_sendrecv`), then with the receive side bound to one of the VM's own vIRQs, from
//!   before the send to after the vIRQ handler received (`msgq_local_*`, `doorbell_local`): the
//!   injection path without a vCPU switch.
//! * The virtual timer: programmed expiry (`CNTV_CVAL_EL0`) to the handler reading the counter,
//!   with the vCPU spinning (`timer_spin`) or blocked in WFI (`timer_wfi`; the CPU is shared
//!   with the resource manager, so the WFI traps and the hypervisor's timer wakes the vCPU).

use core::arch::asm;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use wurley_abi::{CapId, Error, HypCall, hypcall};
use wurley_rt::fdt::Fdt;
use wurley_rt::hyp;
use wurley_rt::{gic, hypdt, println, time};

use crate::stats::{Report, Samples, spin_until, wait_irq};

/// Null hypercalls per sample.
const BATCH: u32 = 16;
/// Send + receive pairs per sample.
const SR_BATCH: u32 = 4;
/// Samples taken and dropped before each measurement.
pub const WARMUP: usize = 16;
/// Iterations of the calibration loop (two instructions each).
const CALIB_ITERATIONS: u64 = 100_000;
/// The vIRQs (SPIs) the VM binds its own queue and doorbell to: below the link vIRQs (64..)
/// and clear of the UART (33).
const MSGQ_VIRQ: u32 = 40;
const DOORBELL_VIRQ: u32 = 41;
/// Largest message.
const MSG_MAX: usize = 240;
/// Message sizes measured.
pub const SIZES: [usize; 2] = [1, 240];
/// How far ahead the virtual timer is programmed, in ticks.
const TIMER_DELTA: u64 = 500;
/// Longest wait for an interrupt that should come at once, in ticks (10 s at 62.5 MHz: generous,
/// for a host so loaded that QEMU stalls).
const TIMEOUT_TICKS: u64 = 625_000_000;

/// A buffer the hypervisor writes into (message-queue receive), read only after the call.
pub struct RxBuf(UnsafeCell<[u8; 256]>);

// SAFETY: each buffer has one writer at a time (the hypervisor during a receive issued by the
// one vCPU that uses it); the guest only reads it after that call returned.
unsafe impl Sync for RxBuf {}

impl RxBuf {
    pub const fn new() -> Self {
        Self(UnsafeCell::new([0; 256]))
    }

    /// Guest VA of the buffer.
    pub fn addr(&self) -> u64 {
        self.0.get() as u64
    }

    /// Byte `i` of the last message.
    pub fn byte(&self, i: usize) -> u8 {
        // SAFETY: see the `Sync` impl; `get` bounds-checks.
        unsafe { (*self.0.get()).get(i).copied().unwrap_or(0) }
    }
}

/// What every send transmits (the hypervisor only reads it).
pub static TX_DATA: [u8; MSG_MAX] = [0x5a; MSG_MAX];

static RX: RxBuf = RxBuf::new();
static QUEUE: AtomicU64 = AtomicU64::new(u64::MAX);
static DOORBELL: AtomicU64 = AtomicU64::new(u64::MAX);
static RECEIVED_AT: AtomicU64 = AtomicU64::new(0);
static RECEIVED: AtomicU32 = AtomicU32::new(0);
static IRQ_ERRORS: AtomicU32 = AtomicU32::new(0);
static TIMER_AT: AtomicU64 = AtomicU64::new(0);
static TIMER_FIRED: AtomicBool = AtomicBool::new(false);

pub fn run(r: &mut Report, fdt: &Fdt<'_>, reps: usize) {
    let mut s = Samples::new();
    calibrate();
    null_calls(r, &mut s, reps);
    match hypdt::capabilities(fdt) {
        Some(hypdt::Capabilities {
            partition: Some(partition),
            cspace: Some(cspace),
            vic: Some(vic),
            ..
        }) => {
            if let Err(e) = local_msgq(r, &mut s, reps, partition, cspace, vic) {
                r.error(format_args!("message queue setup: error {}", e.code()));
            }
            if let Err(e) = local_doorbell(r, &mut s, reps, partition, cspace, vic) {
                r.error(format_args!("doorbell setup: error {}", e.code()));
            }
        }
        _ => r.error(format_args!(
            "no caps to the VM's partition, cspace and vic (capabilities = \"partition\", \"cspace\", \"vic\")"
        )),
    }
    timer(r, &mut s, reps);
    let errors = IRQ_ERRORS.load(Ordering::Acquire);
    if errors != 0 {
        r.error(format_args!("{errors} receive errors in vIRQ handlers"));
    }
}

/// `iterations` times `subs` + `b.ne`: 2 × `iterations` instructions.
#[inline(never)]
fn spin_instructions(iterations: u64) {
    // SAFETY: a register-only loop.
    unsafe {
        asm!(
            "2:",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            n = inout(reg) iterations => _,
            options(nomem, nostack)
        )
    };
}

fn calibrate() {
    let mut best = u64::MAX;
    for _ in 0..5 {
        let t0 = time::ticks();
        spin_instructions(CALIB_ITERATIONS);
        best = best.min(time::ticks() - t0);
    }
    println!("BENCH-CALIB insns={} ticks={best}", 2 * CALIB_ITERATIONS);
}

/// `reps` samples (after [`WARMUP`]) of `batch` back-to-back `op()`s each.
pub fn measure(s: &mut Samples, reps: usize, batch: u32, mut op: impl FnMut()) {
    s.clear();
    for i in 0..reps + WARMUP {
        let t0 = time::ticks();
        for _ in 0..batch {
            op();
        }
        let t1 = time::ticks();
        if i >= WARMUP {
            s.push(t1 - t0);
        }
    }
}

fn null_calls(r: &mut Report, s: &mut Samples, reps: usize) {
    let unassigned = hypcall::smccc_function_id(0x08);
    let got = hyp::result(hyp::hvc_smccc(unassigned, [0; 7])[0]);
    if got != Err(Error::Unimplemented) {
        r.error(format_args!(
            "hypercall 0x08 answered {} (want ERROR_UNIMPLEMENTED)",
            hyp::code(&got)
        ));
    }
    measure(s, reps, BATCH, || {
        hyp::hvc_smccc(unassigned, [0; 7]);
    });
    s.report("null_unimplemented", BATCH);

    let identify = HypCall::HypervisorIdentify.smccc_function_id();
    let id = hyp::hvc_smccc(identify, [0; 7]);
    if id[0] >> 56 != 0x51 {
        r.error(format_args!(
            "hypervisor_identify: api info {:#x} (want variant 0x51)",
            id[0]
        ));
    }
    measure(s, reps, BATCH, || {
        hyp::hvc_smccc(identify, [0; 7]);
    });
    s.report("null_identify", BATCH);

    const NATIVE_IDENTIFY: u16 = hypcall::native_hvc_imm(0x00);
    measure(s, reps, BATCH, || {
        hyp::hvc_native::<NATIVE_IDENTIFY>([0; 8]);
    });
    s.report("null_identify_native", BATCH);
}

fn msgq_irq(_intid: u32) {
    let q = CapId(QUEUE.load(Ordering::Relaxed));
    loop {
        // SAFETY: RX is only written by the hypervisor during this call.
        let (res, not_empty) = unsafe { hyp::msgqueue_receive(q, RX.addr(), MSG_MAX) };
        match res {
            Ok(_) => {
                RECEIVED_AT.store(time::ticks(), Ordering::Release);
                RECEIVED.fetch_add(1, Ordering::AcqRel);
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

fn doorbell_irq(_intid: u32) {
    match hyp::doorbell_receive(CapId(DOORBELL.load(Ordering::Relaxed)), !0) {
        Ok(_) => {
            RECEIVED_AT.store(time::ticks(), Ordering::Release);
            RECEIVED.fetch_add(1, Ordering::AcqRel);
        }
        Err(_) => {
            IRQ_ERRORS.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Samples of `send()` to the vIRQ handler having received (it bumps [`RECEIVED`]).
fn to_handler(
    r: &mut Report,
    s: &mut Samples,
    reps: usize,
    what: &str,
    mut send: impl FnMut() -> Result<(), Error>,
) {
    s.clear();
    for i in 0..reps + WARMUP {
        let before = RECEIVED.load(Ordering::Acquire);
        let t0 = time::ticks();
        if let Err(e) = send() {
            r.error(format_args!("{what}: send failed: {}", e.code()));
            return;
        }
        if !spin_until(TIMEOUT_TICKS, || RECEIVED.load(Ordering::Acquire) != before) {
            r.error(format_args!("{what}: the vIRQ handler never ran"));
            return;
        }
        if i >= WARMUP {
            s.push(RECEIVED_AT.load(Ordering::Acquire) - t0);
        }
    }
}

fn local_msgq(
    r: &mut Report,
    s: &mut Samples,
    reps: usize,
    partition: CapId,
    cspace: CapId,
    vic: CapId,
) -> Result<(), Error> {
    let q = hyp::partition_create_msgqueue(partition, cspace)?;
    hyp::msgqueue_configure(q, 8, MSG_MAX)?;
    hyp::object_activate(q)?;
    let mut buf = [0u8; MSG_MAX];
    for size in SIZES {
        // Check once that the pair works, then time it.
        hyp::msgqueue_send_slice(q, &TX_DATA[..size], 0).0?;
        let n = hyp::msgqueue_receive_into(q, &mut buf).0?;
        if n != size || buf[..n] != TX_DATA[..n] {
            r.error(format_args!("msgq: sent {size} bytes, received {n}"));
        }
        measure(s, reps, SR_BATCH, || {
            let _ = hyp::msgqueue_send(q, size, TX_DATA.as_ptr() as u64, 0);
            let _ = hyp::msgqueue_receive_into(q, &mut buf);
        });
        match size {
            1 => s.report("msgq_sendrecv_1B", SR_BATCH),
            _ => s.report("msgq_sendrecv_240B", SR_BATCH),
        }
    }

    QUEUE.store(q.0, Ordering::Release);
    hyp::msgqueue_bind_receive_virq(q, vic, MSGQ_VIRQ.into())?;
    gic::enable(MSGQ_VIRQ, true, msgq_irq);
    for size in SIZES {
        let name = if size == 1 {
            "msgq_local_1B"
        } else {
            "msgq_local_240B"
        };
        to_handler(r, s, reps, name, || {
            hyp::msgqueue_send(q, size, TX_DATA.as_ptr() as u64, 0).0
        });
        if RX.byte(0) != TX_DATA[0] {
            r.error(format_args!("{name}: wrong data received"));
        }
        s.report(name, 1);
    }
    gic::disable(MSGQ_VIRQ);
    Ok(())
}

fn local_doorbell(
    r: &mut Report,
    s: &mut Samples,
    reps: usize,
    partition: CapId,
    cspace: CapId,
    vic: CapId,
) -> Result<(), Error> {
    let db = hyp::partition_create_doorbell(partition, cspace)?;
    hyp::object_activate(db)?;
    hyp::doorbell_send(db, 1)?;
    let old = hyp::doorbell_receive(db, !0)?;
    if old != 1 {
        r.error(format_args!("doorbell: received flags {old:#x} (want 0x1)"));
    }
    measure(s, reps, SR_BATCH, || {
        let _ = hyp::doorbell_send(db, 1);
        let _ = hyp::doorbell_receive(db, !0);
    });
    s.report("doorbell_sendrecv", SR_BATCH);

    DOORBELL.store(db.0, Ordering::Release);
    hyp::doorbell_bind_virq(db, vic, DOORBELL_VIRQ.into())?;
    gic::enable(DOORBELL_VIRQ, true, doorbell_irq);
    to_handler(r, s, reps, "doorbell_local", || {
        hyp::doorbell_send(db, 1).map(|_| ())
    });
    s.report("doorbell_local", 1);
    gic::disable(DOORBELL_VIRQ);
    Ok(())
}

fn timer_irq(_intid: u32) {
    TIMER_AT.store(time::ticks(), Ordering::Release);
    time::disarm();
    TIMER_FIRED.store(true, Ordering::Release);
}

fn timer(r: &mut Report, s: &mut Samples, reps: usize) {
    gic::set_handler(time::vtimer_intid(), timer_irq);
    for (name, blocked) in [("timer_spin", false), ("timer_wfi", true)] {
        s.clear();
        for i in 0..reps + WARMUP {
            TIMER_FIRED.store(false, Ordering::Release);
            let expiry = time::ticks() + TIMER_DELTA;
            time::arm(expiry);
            let fired = || TIMER_FIRED.load(Ordering::Acquire);
            if blocked {
                // The timer is armed: the wake-up is certain.
                wait_irq(fired);
            } else if !spin_until(TIMEOUT_TICKS, fired) {
                r.error(format_args!("{name}: the timer interrupt never came"));
                break;
            }
            let at = TIMER_AT.load(Ordering::Acquire);
            if at < expiry {
                r.error(format_args!(
                    "{name}: handler ran {} ticks early",
                    expiry - at
                ));
                break;
            }
            if i >= WARMUP {
                s.push(at - expiry);
            }
        }
        s.report(name, 1);
    }
}

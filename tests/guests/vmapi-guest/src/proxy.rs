//! Roles `proxy-owner` and `proxied`: proxy scheduling with `vcpu_run`.
//!
//! * `role=proxied dev=<IPA>`: a VM whose manifest node says `scheduled-by`; it only runs
//!   inside its owner's `vcpu_run`. It talks to a tiny device at `dev` that its owner emulates
//!   through the VMMIO run states: reads the ID register, asks [`ROUNDS`] questions (reads
//!   `QUESTION`, writes the answer to `ANSWER`), writes a byte to `BYTE`, spins [`SPIN_US`]
//!   without idling (the owner's own timer interrupts bring it back with READY meanwhile),
//!   idles in WFI with
//!   its virtual timer armed, writes `DONE` and powers the VM off (SYSTEM_OFF).
//! * `role=proxy-owner guest=<name> dev=<IPA>`: finds the vCPU cap and the address-space cap of
//!   VM `guest` in its `/hypervisor` node, walks the error paths (wrong cap type, missing
//!   rights, no wake-up vIRQ bound, bad VMMIO ranges, rebinding), registers the device's
//!   VMMIO range and runs the guest with `vcpu_run` until it is POWERED_OFF: it answers the
//!   device accesses, waits for the wake-up vIRQ after EXPECTS_WAKEUP, and checks what the
//!   guest wrote. Needs caps to its own cspace and VIC. With `guest-vmid=<VMID>` it first asks
//!   the resource manager for the guest's hyp resources (VM_GET_HYP_RESOURCES), which must list
//!   the vCPU with the cap and vIRQ of the device tree.

use core::sync::atomic::{AtomicU32, Ordering};

use wurley_abi::rights::ThreadRights;
use wurley_abi::rm::Decode;
use wurley_abi::rm::resource::{HypResourcesReply, ResourceType};
use wurley_abi::vcpu_run::{POWERED_OFF_EXITED, RunState, VcpuVirqType, VmmioOp};
use wurley_abi::{CapId, Error};
use wurley_rt::fdt::Fdt;
use wurley_rt::{args, gic, hyp, hypdt, time};

use crate::report::Report;

/// Questions the guest asks.
pub const ROUNDS: u64 = 50;
/// How long the guest spins without idling.
const SPIN_US: u64 = 20_000;
/// The owner arms its own virtual timer this far ahead of every `vcpu_run`: its interrupt
/// must bring the owner back with READY while the guest spins.
const OWNER_TIMER_US: u64 = 1000;
/// Device register offsets.
const ID: u64 = 0x0;
const QUESTION: u64 = 0x8;
const ANSWER: u64 = 0x10;
const BYTE: u64 = 0x18;
const DONE: u64 = 0x20;
/// What `ID` reads.
const DEVICE_ID: u64 = 0x5752_4c59;
/// What the guest writes to `DONE`.
const DONE_MAGIC: u64 = 0x600d;
/// Size of the device's VMMIO range.
const DEV_SIZE: u64 = 0x1000;

fn dev_base(bootargs: &str) -> u64 {
    args::get_u64(bootargs, "dev").unwrap_or(0x0a00_0000)
}

fn read64(addr: u64) -> u64 {
    // SAFETY: `addr` is the emulated device's register, in the runtime's Device mapping of
    // [0, 1 GiB); the access traps to the hypervisor.
    unsafe { core::ptr::read_volatile(addr as *const u64) }
}

fn write64(addr: u64, value: u64) {
    // SAFETY: as in `read64`.
    unsafe { core::ptr::write_volatile(addr as *mut u64, value) }
}

fn write8(addr: u64, value: u8) {
    // SAFETY: as in `read64`.
    unsafe { core::ptr::write_volatile(addr as *mut u8, value) }
}

/// The proxied guest.
pub fn run_proxied(r: &mut Report, bootargs: &str) {
    let dev = dev_base(bootargs);
    let id = read64(dev + ID);
    r.check("device-id", id == DEVICE_ID, format_args!("id={id:#x}"));
    let mut wrong = 0;
    for i in 0..ROUNDS {
        let q = read64(dev + QUESTION);
        if q != i * 3 {
            wrong += 1;
        }
        write64(dev + ANSWER, q + 1);
    }
    r.check(
        "questions",
        wrong == 0,
        format_args!("rounds={ROUNDS} wrong={wrong}"),
    );
    write8(dev + BYTE, 0xa5);
    // Busy, never idle: only the owner's need for its CPU stops this vCPU.
    let start = time::ticks();
    let mut loops = 0u64;
    while time::elapsed_us(start) < SPIN_US {
        loops = loops.wrapping_add(1);
    }
    r.check(
        "spin",
        loops > 0,
        format_args!("spin_us={SPIN_US} loops={loops}"),
    );
    let start = time::ticks();
    time::sleep_us(2000);
    let slept = time::elapsed_us(start);
    r.check("idle", slept >= 2000, format_args!("slept_us={slept}"));
    write64(dev + DONE, DONE_MAGIC);
}

/// The device the owner emulates.
#[derive(Default)]
struct Device {
    next_question: u64,
    answers_right: u64,
    answers_wrong: u64,
    byte: Option<(u64, u64)>,
    done: u64,
    bad: u64,
}

impl Device {
    fn read(&mut self, offset: u64, size: u64) -> u64 {
        match (offset, size) {
            (ID, 8) => DEVICE_ID,
            (QUESTION, 8) => self.next_question * 3,
            _ => {
                self.bad += 1;
                0
            }
        }
    }

    fn write(&mut self, offset: u64, size: u64, value: u64) {
        match (offset, size) {
            (ANSWER, 8) => {
                if value == self.next_question * 3 + 1 {
                    self.answers_right += 1;
                } else {
                    self.answers_wrong += 1;
                }
                self.next_question += 1;
            }
            (BYTE, _) => self.byte = Some((size, value)),
            (DONE, 8) => self.done = value,
            _ => self.bad += 1,
        }
    }
}

static WAKEUPS: AtomicU32 = AtomicU32::new(0);

fn wakeup_irq(_intid: u32) {
    WAKEUPS.fetch_add(1, Ordering::AcqRel);
}

/// What a run loop saw.
#[derive(Default)]
struct Tally {
    ready: u32,
    vmmio: u32,
    expects_wakeup: u32,
    woken: u32,
    other: u64,
    off_flags: Option<u64>,
}

/// The owner.
// Not inlined into `guest_main`: its frame would add to every role's (one 64 KiB stack).
#[inline(never)]
pub fn run_owner(r: &mut Report, fdt: &Fdt<'_>, bootargs: &str) {
    let guest = args::get(bootargs, "guest").unwrap_or("proxied");
    let dev = dev_base(bootargs);
    let vcpu = hypdt::proxy_vcpus(fdt).find(|v| v.peer == guest && v.index == 0);
    let space = hypdt::addrspace(fdt, guest);
    let caps = hypdt::capabilities(fdt).unwrap_or_default();
    let (Some(vcpu), Some(space), Some(irq), Some(vic), Some(cspace)) =
        (vcpu, space, vcpu.and_then(|v| v.irq), caps.vic, caps.cspace)
    else {
        r.check(
            "setup",
            false,
            format_args!(
                "want a vcpu and an addrspace node for VM {guest}, and caps to my cspace and VIC"
            ),
        );
        return;
    };
    r.check(
        "setup",
        true,
        format_args!(
            "vcpu={:#x} addrspace={:#x} wakeup_virq={}",
            vcpu.cap.0, space.0, irq.intid
        ),
    );
    let cap = vcpu.cap;
    if let Some(vmid) = args::get_u64(bootargs, "guest-vmid") {
        rm_reports(r, fdt, vmid as u16, cap, irq.intid);
    }
    hostile(r, cap, space, vic, cspace, irq.intid, dev);

    gic::enable(irq.intid, irq.edge, wakeup_irq);
    let mut device = Device::default();
    let mut t = Tally::default();
    let mut resume = [0u64; 3];
    for _ in 0..100_000 {
        let seen = WAKEUPS.load(Ordering::Acquire);
        time::arm(time::ticks().saturating_add(time::us_to_ticks(OWNER_TIMER_US)));
        let res = hyp::vcpu_run(cap, resume);
        resume = [0; 3];
        let Ok(run) = res else {
            r.expect_ok("vcpu-run", &res);
            return;
        };
        match RunState::from_raw(run.state) {
            Some(RunState::Ready) => t.ready += 1,
            Some(RunState::VmmioRead) => {
                t.vmmio += 1;
                resume[0] = device.read(run.data[0].wrapping_sub(dev), run.data[1]);
            }
            Some(RunState::VmmioWrite) => {
                t.vmmio += 1;
                device.write(run.data[0].wrapping_sub(dev), run.data[1], run.data[2]);
            }
            Some(RunState::ExpectsWakeup) => {
                t.expects_wakeup += 1;
                if time::wait_until(1_000_000, || WAKEUPS.load(Ordering::Acquire) != seen) {
                    t.woken += 1;
                }
            }
            Some(RunState::PoweredOff) => {
                t.off_flags = Some(run.data[0]);
                break;
            }
            _ => {
                t.other = run.state;
                break;
            }
        }
    }
    r.check(
        "run-loop",
        t.other == 0 && t.off_flags.is_some(),
        format_args!(
            "ready={} vmmio={} expects_wakeup={} woken={} other_state={:#x}",
            t.ready, t.vmmio, t.expects_wakeup, t.woken, t.other
        ),
    );
    time::disarm();
    r.check(
        "ready-on-caller-timer",
        t.ready >= 1,
        format_args!(
            "ready={} (the guest spun {SPIN_US} us, my timer {OWNER_TIMER_US} us)",
            t.ready
        ),
    );
    r.check(
        "vmmio-device",
        device.answers_right == ROUNDS
            && device.answers_wrong == 0
            && device.bad == 0
            && device.byte == Some((1, 0xa5)),
        format_args!(
            "right={} wrong={} bad={} byte={:?}",
            device.answers_right, device.answers_wrong, device.bad, device.byte
        ),
    );
    r.check(
        "expects-wakeup",
        t.expects_wakeup >= 1 && t.woken >= 1,
        format_args!("expects_wakeup={} woken={}", t.expects_wakeup, t.woken),
    );
    r.check(
        "powered-off",
        device.done == DONE_MAGIC && t.off_flags == Some(POWERED_OFF_EXITED),
        format_args!("done={:#x} flags={:?}", device.done, t.off_flags),
    );
    let again = hyp::vcpu_run(cap, [0; 3]);
    r.check(
        "run-after-exit",
        again.is_ok_and(|a| a.state == RunState::PoweredOff.raw() && a.data[0] == 1),
        format_args!("{again:?}"),
    );
    let check = hyp::vcpu_run_check(cap);
    r.check(
        "run-check-halted",
        check.is_ok_and(|a| a.state == RunState::PoweredOff.raw()),
        format_args!("{check:?}"),
    );
}

/// The resource manager reports the vCPU to its owner: VM_GET_HYP_RESOURCES of the guest
/// (VMID `vmid`) lists one VIRTUAL_CPU entry, label 0, with the cap and vIRQ of the device tree.
fn rm_reports(r: &mut Report, fdt: &Fdt<'_>, vmid: u16, cap: CapId, virq: u32) {
    let mut p = [0u8; 64];
    let got = crate::rpc::call_once(
        fdt,
        wurley_abi::rm::ids::VM_GET_HYP_RESOURCES,
        &crate::rpc::vmid_req(vmid),
        &mut p,
    );
    let entry = got.ok().and_then(|(code, n)| {
        let reply = HypResourcesReply::decode(p.get(..n)?).ok()?;
        (code == 0 && reply.entries.len() == 1).then(|| reply.entries.get(0))?
    });
    let ok = entry.is_some_and(|e| {
        e.resource_type == ResourceType::VirtualCpu
            && e.label == 0
            && e.cap_id == cap.0
            && e.virq == virq
    });
    r.check(
        "rm-hyp-resources",
        ok,
        format_args!("vmid={vmid:#x} reply={got:?} entry={entry:?}"),
    );
}

/// The error paths, before the guest has run.
fn hostile(
    r: &mut Report,
    cap: CapId,
    space: CapId,
    vic: CapId,
    cspace: CapId,
    virq: u32,
    dev: u64,
) {
    const WAKE: u64 = VcpuVirqType::VcpuRunWakeup as u64;
    const HALT: u64 = VcpuVirqType::Halt as u64;
    let virq = u64::from(virq);
    r.expect_err(
        "run-not-a-vcpu",
        &hyp::vcpu_run(space, [0; 3]),
        Error::CspaceWrongObjectType,
    );
    r.expect_err(
        "run-check-not-halted",
        &hyp::vcpu_run_check(cap),
        Error::Busy,
    );
    let weak = hyp::cspace_copy_cap_from(
        cspace,
        cap,
        cspace,
        (ThreadRights::BIND_VIRQ | ThreadRights::STATE).bits(),
    );
    r.expect_ok("copy-weak-cap", &weak);
    if let Ok(weak) = weak {
        r.expect_err(
            "run-without-rights",
            &hyp::vcpu_run(weak, [0; 3]),
            Error::CspaceInsufficientRights,
        );
        let _ = hyp::cspace_delete_cap_from(cspace, weak);
    }
    r.expect_err(
        "vmmio-not-an-addrspace",
        &hyp::addrspace_configure_vmmio(cap, dev, DEV_SIZE, VmmioOp::Add as u64),
        Error::CspaceWrongObjectType,
    );
    r.expect_err(
        "unbind-halt-not-bound",
        &hyp::vcpu_unbind_virq(cap, HALT),
        Error::VirqNotBound,
    );
    r.expect_err(
        "bind-bad-type",
        &hyp::vcpu_bind_virq(cap, vic, virq + 1, 7),
        Error::ArgumentInvalid,
    );
    r.expect_err(
        "bind-wakeup-twice",
        &hyp::vcpu_bind_virq(cap, vic, virq + 1, WAKE),
        Error::VirqBound,
    );
    r.expect_ok("unbind-wakeup", &hyp::vcpu_unbind_virq(cap, WAKE));
    r.expect_err(
        "run-without-wakeup-virq",
        &hyp::vcpu_run(cap, [0; 3]),
        Error::Busy,
    );
    r.expect_ok("rebind-wakeup", &hyp::vcpu_bind_virq(cap, vic, virq, WAKE));
    r.expect_err(
        "vmmio-unaligned",
        &hyp::addrspace_configure_vmmio(space, dev + 8, DEV_SIZE, VmmioOp::Add as u64),
        Error::ArgumentAlignment,
    );
    r.expect_err(
        "vmmio-bad-op",
        &hyp::addrspace_configure_vmmio(space, dev, DEV_SIZE, 2),
        Error::ArgumentInvalid,
    );
    r.expect_err(
        "vmmio-remove-unknown",
        &hyp::addrspace_configure_vmmio(space, dev, DEV_SIZE, VmmioOp::Remove as u64),
        Error::AddrInvalid,
    );
    r.expect_ok(
        "vmmio-add",
        &hyp::addrspace_configure_vmmio(space, dev, DEV_SIZE, VmmioOp::Add as u64),
    );
    r.expect_err(
        "vmmio-overlap",
        &hyp::addrspace_configure_vmmio(space, dev, DEV_SIZE, VmmioOp::Add as u64),
        Error::AddrInvalid,
    );
}

//! Roles `owner` and `proxied`: the stage-2 fault round trip to a proxy owner.
//!
//! * `role=proxied dev=<IPA>`: a VM whose manifest node says `scheduled-by = "owner"`, so it
//!   runs only inside its owner's `vcpu_run`. It loads the 64-bit register at `dev` (a VMMIO
//!   range its owner registered) `reps` times after [`WARMUP`] unmeasured loads, timing each
//!   from before the load to after it on the virtual counter: the stage-2 fault, the exit to
//!   the owner through `vcpu_run` (ADDRESS_VMMIO_READ), the owner's emulation, its next
//!   `vcpu_run` with the value as resume data, and the return to the guest past the load.
//!   Prints `BENCH stage2_fault ...` and checks every value read.
//! * `role=owner guest=<name> dev=<IPA>` (`guest` defaults to `proxied`): finds the cap to vCPU
//!   0 of VM `guest` and to its address space in its `/hypervisor` node, registers the VMMIO
//!   range `[dev, dev + 4 KiB)` and runs the guest with `vcpu_run` until it powers off,
//!   answering each read of `dev` with [`VALUE`] (nothing printed per access). Then prints
//!   `BENCH-INFO owner reads=.. ready=.. wakeups=..`.
//!
//! Both VMs share one physical CPU: the proxied vCPU always runs on its caller's.

use core::sync::atomic::{AtomicU32, Ordering};

use wurley_abi::vcpu_run::{POWERED_OFF_EXITED, RunState, VmmioOp};
use wurley_rt::fdt::Fdt;
use wurley_rt::{args, gic, hyp, hypdt, time};

use crate::solo::WARMUP;
use crate::stats::{Report, Samples};

/// What the owner answers to every read of the register.
pub const VALUE: u64 = 0x5752_4c59_0000_5f2f;
/// Size of the VMMIO range the owner registers.
const DEV_SIZE: u64 = 0x1000;
/// How long the owner waits for the wake-up vIRQ after EXPECTS_WAKEUP, in microseconds (the
/// guest never idles, so this is only a safety net).
const WAKEUP_TIMEOUT_US: u64 = 1_000_000;

fn dev_base(bootargs: &str) -> u64 {
    args::get_u64(bootargs, "dev").unwrap_or(0x0a00_0000)
}

/// One 64-bit load from `addr`.
#[inline(always)]
fn read64(addr: u64) -> u64 {
    // SAFETY: `addr` is the owner's VMMIO register, in the runtime's Device mapping of
    // [0, 1 GiB); the load faults at stage 2 and the owner supplies its value.
    unsafe { core::ptr::read_volatile(addr as *const u64) }
}

/// The proxied guest.
pub fn run_proxied(r: &mut Report, bootargs: &str, reps: usize) {
    let dev = dev_base(bootargs);
    let first = read64(dev);
    if first != VALUE {
        r.error(format_args!(
            "read {first:#x} from {dev:#x} (want {VALUE:#x}): is the owner answering?"
        ));
        return;
    }
    let mut s = Samples::new();
    let mut wrong = 0u32;
    for i in 0..reps + WARMUP {
        let t0 = time::ticks();
        let v = read64(dev);
        let t1 = time::ticks();
        if v != VALUE {
            wrong += 1;
        }
        if i >= WARMUP {
            s.push(t1 - t0);
        }
    }
    if wrong != 0 {
        r.error(format_args!(
            "{wrong} reads of {dev:#x} did not give {VALUE:#x}"
        ));
    }
    s.report("stage2_fault", 1);
}

static WAKEUPS: AtomicU32 = AtomicU32::new(0);

fn wakeup_irq(_intid: u32) {
    WAKEUPS.fetch_add(1, Ordering::AcqRel);
}

/// The owner.
pub fn run_owner(r: &mut Report, fdt: &Fdt<'_>, bootargs: &str) {
    let guest = args::get(bootargs, "guest").unwrap_or("proxied");
    let dev = dev_base(bootargs);
    let vcpu = hypdt::proxy_vcpus(fdt).find(|v| v.peer == guest && v.index == 0);
    let (Some(vcpu), Some(space)) = (vcpu, hypdt::addrspace(fdt, guest)) else {
        r.error(format_args!(
            "no vcpu@ and addrspace@ nodes for VM {guest} under /hypervisor (does it say scheduled-by = \"owner\"?)"
        ));
        return;
    };
    if let Err(e) = hyp::addrspace_configure_vmmio(space, dev, DEV_SIZE, VmmioOp::Add as u64) {
        r.error(format_args!(
            "addrspace_configure_vmmio({dev:#x}, {DEV_SIZE:#x}): error {}",
            e.code()
        ));
        return;
    }
    if let Some(irq) = vcpu.irq {
        gic::enable(irq.intid, irq.edge, wakeup_irq);
    }
    let (mut reads, mut ready, mut waits, mut bad) = (0u64, 0u64, 0u64, 0u64);
    let mut resume = [0u64; 3];
    loop {
        let seen = WAKEUPS.load(Ordering::Acquire);
        let run = match hyp::vcpu_run(vcpu.cap, resume) {
            Ok(run) => run,
            Err(e) => {
                r.error(format_args!("vcpu_run: error {}", e.code()));
                return;
            }
        };
        resume = [0; 3];
        match RunState::from_raw(run.state) {
            Some(RunState::VmmioRead) => {
                reads += 1;
                if run.data[0] == dev && run.data[1] == 8 {
                    resume[0] = VALUE;
                } else {
                    bad += 1;
                }
            }
            Some(RunState::Ready) => ready += 1,
            Some(RunState::ExpectsWakeup) => {
                waits += 1;
                if !time::wait_until(WAKEUP_TIMEOUT_US, || {
                    WAKEUPS.load(Ordering::Acquire) != seen
                }) {
                    r.error(format_args!("the guest waits in WFI and no wake-up came"));
                    return;
                }
            }
            Some(RunState::PoweredOff) => {
                if run.data[0] & POWERED_OFF_EXITED == 0 {
                    r.error(format_args!(
                        "POWERED_OFF without EXITED ({:#x})",
                        run.data[0]
                    ));
                }
                break;
            }
            _ => {
                r.error(format_args!(
                    "vcpu_run: unexpected state {:#x} data {:#x?}",
                    run.state, run.data
                ));
                return;
            }
        }
    }
    r.info(format_args!("reads={reads} ready={ready} wakeups={waits}"));
    if reads == 0 || bad != 0 {
        r.error(format_args!(
            "{reads} VMMIO reads, {bad} of them not an 8-byte load of {dev:#x}"
        ));
    }
}

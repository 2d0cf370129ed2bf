//! Role `vmchild`: the secondary VM that role `vmlife` creates through the Resource Manager,
//! booted from the device tree the RM completed (`/chosen/bootargs` from the host test's tree,
//! `/hypervisor` from the RM).
//!
//! It asks the RM for its own VMID (VM_GET_VMID over its `gunyah-resource-mgr` link), finds
//! the message-queue pair to its owner (bootargs `ownerlink=<label>`; default: the only
//! `qcom,message-queue-pair` under `/hypervisor` other than the RM link, whatever its label:
//! `reg` = the cap it sends on, the cap it receives on; `interrupts` = their vIRQs, TX then
//! RX), waits for the round number on it, answers with the round number plus one and its VMID
//! (`vmlife`'s link messages) and, if the owner asked ([`ROUND_FLAG_TAIL`]), the last 8 bytes of
//! its RAM (demand-paged memory its owner provided), prints its tally and idles in WFI until its
//! owner stops it; or, if the owner asked ([`ROUND_FLAG_OFF`]: a proxy-scheduled child its
//! owner runs with `vcpu_run`), powers the VM off with PSCI SYSTEM_OFF.

use wurley_abi::rm::vm::VmGetVmidReply;
use wurley_abi::rm::{Decode, MAX_MESSAGE_SIZE, ids};
use wurley_rt::fdt::Fdt;
use wurley_rt::{args, hypdt};

use crate::report::Report;
use crate::rpc::Rpc;
use crate::vmlife::{
    KIND_ECHO, KIND_ROUND, KIND_TAIL, Link, ROUND_FLAG_OFF, ROUND_FLAG_TAIL, link_msg,
    parse_link_msg,
};

/// How long the owner may take to send the round number.
const WAIT_US: u64 = 10_000_000;

pub fn run(r: &mut Report, fdt: &Fdt<'_>, bootargs: &str) {
    let off = work(r, fdt, bootargs);
    r.tally();
    if off {
        wurley_rt::power_off();
    }
    loop {
        wurley_rt::wait_for_interrupt();
    }
}

/// True if the owner asked it to power off when done.
fn work(r: &mut Report, fdt: &Fdt<'_>, bootargs: &str) -> bool {
    // Who am I: the RM link must work.
    let Some(rm) = hypdt::resource_manager(fdt) else {
        r.check(
            "rm-link",
            false,
            format_args!("no gunyah-resource-manager node"),
        );
        return false;
    };
    let mut buf = [0u8; MAX_MESSAGE_SIZE];
    let vmid = match Rpc::new(&rm, &mut buf) {
        Ok(mut rpc) => rpc
            .call(ids::VM_GET_VMID, &[])
            .ok()
            .filter(|g| g.code() == 0)
            .and_then(|g| VmGetVmidReply::decode(g.payload()).ok())
            .map(|v| v.vmid.0),
        Err(why) => {
            r.check("rm-link", false, format_args!("{why}"));
            return false;
        }
    };
    let Some(vmid) = vmid else {
        r.check("rm-link", false, format_args!("VM_GET_VMID failed"));
        return false;
    };
    r.check("rm-link", true, format_args!("vmid={vmid:#x}"));

    // The link to the owner.
    let pair = match args::get(bootargs, "ownerlink") {
        Some(label) => hypdt::msgqueue_pair(fdt, label),
        None => {
            let mut pairs = hypdt::msgqueue_pairs(fdt).filter(|p| p.tx != rm.tx);
            let first = pairs.next();
            if pairs.next().is_some() {
                r.check(
                    "owner-link",
                    false,
                    format_args!("more than one message-queue pair: say ownerlink=<label>"),
                );
                return false;
            }
            first
        }
    };
    let Some(pair) = pair else {
        r.check(
            "owner-link",
            false,
            format_args!("no message-queue pair to the owner under /hypervisor"),
        );
        return false;
    };
    let (Some(txi), Some(rxi)) = (pair.tx_irq, pair.rx_irq) else {
        r.check(
            "owner-link",
            false,
            format_args!("{}: no interrupts", pair.label),
        );
        return false;
    };
    r.check(
        "owner-link",
        true,
        format_args!(
            "label={} tx_virq={} rx_virq={}",
            pair.label, txi.intid, rxi.intid
        ),
    );
    let link = Link {
        tx: pair.tx,
        rx: pair.rx,
        tx_irq: txi.intid,
        rx_irq: rxi.intid,
    };
    link.enable();
    let mut msg = [0u8; 240];
    let (round, flags) = match link.receive(&mut msg, WAIT_US) {
        Ok(n) => match parse_link_msg(&msg[..n.min(msg.len())]) {
            Some((KIND_ROUND, round, flags)) => (round, flags),
            other => {
                r.check(
                    "round",
                    false,
                    format_args!("unexpected message {other:?} ({n} bytes)"),
                );
                link.disable();
                return false;
            }
        },
        Err(e) => {
            r.check(
                "round",
                false,
                format_args!(
                    "nothing from the owner in {WAIT_US} us (error {})",
                    e.code()
                ),
            );
            link.disable();
            return false;
        }
    };
    let sent = link.send(
        &link_msg(KIND_ECHO, round.wrapping_add(1), u32::from(vmid)),
        WAIT_US,
    );
    r.check(
        "echo",
        sent.is_ok(),
        format_args!(
            "round={round} vmid={vmid:#x} send={}",
            sent.err().map_or(0, |e| e.code())
        ),
    );
    if flags & ROUND_FLAG_TAIL != 0 {
        let (base, size) = wurley_rt::ram();
        let at = base + size - 8;
        // SAFETY: the last 8 bytes of this VM's RAM (its device tree's memory node), identity
        // mapped as Normal memory; an aligned load of plain data.
        let tail = unsafe { core::ptr::read_volatile(at as *const u64) };
        let sent = link.send(
            &link_msg(KIND_TAIL, tail as u32, (tail >> 32) as u32),
            WAIT_US,
        );
        r.check(
            "tail",
            sent.is_ok(),
            format_args!("ram={base:#x}+{size:#x} tail={tail:#x}"),
        );
    }
    link.disable();
    flags & ROUND_FLAG_OFF != 0
}

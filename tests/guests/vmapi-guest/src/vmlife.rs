//! Role `vmlife rounds=N` (default 20): an EL1 client of the Resource Manager that drives a
//! secondary VM's whole life through RPC, `N` times in a row, over its RM link
//! (`gunyah-resource-mgr`). It must be the primary VM (VMID 3): only it may VM_ALLOCATE.
//!
//! **The payload.** The VM's initrd (`/chosen` `linux,initrd-start`/`-end`) holds what the
//! secondary VM runs, as the host test packs it (all little endian):
//!
//! | Offset | Size | Field |
//! |--------|------|-------|
//! | 0 | 8 | magic `"WRLYVMLF"` |
//! | 8 | 8 | IPA the image is linked at (`vmapi-child`: 0x4200_0000) |
//! | 16 | 8 | image length in bytes |
//! | 24 | 8 | DTB length in bytes |
//! | 32 | image length | the image (an arm64 Image: `vmapi-child.bin`) |
//! | 32 + image length rounded up to 8 | DTB length | the secondary VM's device tree |
//!
//! **The parcel.** 2 MiB of this VM's own RAM at the image's link address (which must be
//! 2 MiB aligned, in RAM, and clear of this VM's image, initrd and device tree): the image at
//! offset 0, the device tree at the image's `image_size` (its Image header: code, BSS and
//! stack) rounded up to 64 KiB, with 64 KiB reserved for it (the RM adds `/hypervisor` to it in
//! place). The RM maps a lent image parcel at the IPA it had in the owner, hence the link
//! address. The runtime's stage 1 is an identity map (VA = IPA), so the parcel is written
//! through its IPA.
//!
//! **A round** (`VMAPI vmlife <check> PASS|FAIL` lines for every step of round 1; later
//! rounds print only failures, and each round ends with one `round` check):
//!
//! 1. VM_ALLOCATE(0) -> a dynamic VMID;
//! 2. zero the parcel, copy the image and the DTB into it, clean it to the point of coherency
//!    (the new VM starts with its MMU off);
//! 3. MEM_LEND: mem_type NORMAL, flags 0, label [`LABEL_BASE`] + round, ACL one entry (the new
//!    VMID, RWX), SGL one entry (parcel IPA, 2 MiB), no attributes -> a handle;
//! 4. VM_CONFIG_IMAGE: auth NONE, the handle, image offset 0 and length, DTB offset and
//!    64 KiB;
//! 5. VM_INIT, then VM_GET_STATE (READY);
//! 6. VM_GET_HYP_RESOURCES: exactly one vCPU (type 4) and a message-queue pair to the new VM
//!    (type 2 MSG_QUEUE_SEND and 3 MSG_QUEUE_RECV with the new VMID as partner; their vIRQs
//!    in this VM's VIC, below 128);
//! 7. VM_START, VM_GET_STATE (RUNNING); a second VM_START (VM_STATE); MEM_RECLAIM while the VM
//!    has the parcel (must fail; any code);
//! 8. over the pair: send the round number, receive it back plus one with the child's VMID
//!    (which the child learns from the RM with VM_GET_VMID);
//! 9. VM_STOP (FORCE, reason FORCE_STOP), then the VM_EXITED notification (VM_STOP_FORCED);
//! 10. MEM_RECLAIM (flags 0), VM_RESET, then the VM_STATUS notification saying RESET;
//!     VM_DEALLOCATE, and VM_GET_STATE of the VMID is VMID_INVALID;
//! 11. the parcel is this VM's again: a pattern written to every 64-byte line reads back.
//!
//! Before round 1 it checks the answers to requests about VMs it does not own (the RM, itself,
//! an unallocated VMID), and VM_INIT before VM_CONFIG_IMAGE on a VM allocated for the purpose.
//!
//! **Demand paging** (`demand=1`): the 2 MiB of this VM's RAM right after the parcel are also
//! the child's, provided on demand (the RM's design in docs/rm.md, "The Linux-only messages").
//! Each round then also: writes a pattern over that range; between VM_CONFIG_IMAGE and VM_INIT
//! sends VM_SET_DEMAND_PAGING for a range outside its RAM (`MEM_INVALID`) and for the range
//! (`demand-paging`); finds in VM_GET_HYP_RESOURCES the VM's address space (type 10, label 0)
//! and the guest-private and host-private extents (type 9, labels 0 and 2, base and size the
//! range: `demand-resources`); donates the whole range host -> guest (to_parent) before
//! VM_START (`provide`); asks the child for the last 8 bytes of its RAM, which must be the
//! pattern (`demand-seen`); after VM_EXITED takes the first half back (guest -> host,
//! to_child: `take-back`) and leaves the rest to VM_RESET; at the end the whole range is its
//! own again (`demand-memory-back`).
//!
//! **Proxy scheduling** (`proxy=1`): the child's device tree also says
//! `gunyah-vm-config { vcpus { affinity = "proxy"; }; }` (the host test writes it), so the RM
//! makes its vCPU proxy-scheduled. Each round then also finds in VM_GET_HYP_RESOURCES the
//! VIRTUAL_CPU entry's cap and wakeup vIRQ (`proxy-resources`); after VM_START it runs the
//! child itself with `vcpu_run` until it is POWERED_OFF (READY: again; EXPECTS_WAKEUP: wait
//! for the wakeup vIRQ, then again), sending the round number, with a request to power off
//! when done ([`ROUND_FLAG_OFF`]), the first time the child expects a wakeup (`proxy-run`:
//! the run, wakeup and woken counts, at least one of each), reads the echo (`hello`),
//! checks `vcpu_run_check` (`run-check`) and the VM_EXITED notification (PLATFORM_OFF:
//! `exited`), and skips VM_STOP and the MEM_RECLAIM before VM_RESET (the VM ended by itself
//! and still counts as holding the parcel: VM_RESET gives it back).

use core::sync::atomic::{AtomicU32, Ordering};

use wurley_abi::rm::memparcel::{
    AclEntry, MEM_HANDLE_INVALID, MEM_RIGHTS_RWX, MemCreateRequest, MemHandleReply,
    MemReleaseRequest, MemType, SglEntry,
};
use wurley_abi::rm::resource::{HypResourcesReply, ResourceType};
use wurley_abi::rm::status::{
    ExitType, VmExitedNotification, VmStateReply, VmStatus, VmStatusNotification,
};
use wurley_abi::rm::vm::{
    AuthMechanism, VM_STOP_FLAG_FORCE, VM_STOP_REASON_FORCE_STOP, VmAllocateReply,
    VmConfigImageRequest, VmGetVmidReply, VmSetDemandPagingRequest, VmStopRequest,
};
use wurley_abi::rm::{Decode, List, MAX_MESSAGE_SIZE, RmError, ids};
use wurley_abi::vcpu_run::{POWERED_OFF_EXITED, RunState};
use wurley_abi::{CapId, Error, VmId};
use wurley_rt::fdt::Fdt;
use wurley_rt::{args, gic, hyp, hypdt, time};

use crate::report::Report;
use crate::rpc::{CallError, Got, Note, Rpc, vmid_req};

/// Magic of the payload in the initrd.
pub const PAYLOAD_MAGIC: [u8; 8] = *b"WRLYVMLF";
/// Size of the payload's header.
const PAYLOAD_HEADER: usize = 32;
/// Size of the parcel lent to the secondary VM.
pub(crate) const PARCEL_SIZE: u64 = 2 << 20;
/// Space reserved for the secondary VM's device tree in the parcel (VM_CONFIG_IMAGE's
/// `dtb_size`).
pub(crate) const DTB_SPACE: u64 = 64 << 10;
/// Memparcel labels: this plus the round number.
pub const LABEL_BASE: u32 = 0x564C_0000;
/// A VMID nobody has (the last dynamic one; at most two are allocated at a time here).
const UNKNOWN_VMID: u16 = 0xBF;
/// The primary VM's VMID.
const PRIMARY: u16 = 3;
/// The RM's VMID.
const RM_VMID: u16 = 0xFF;
/// How long the child may take to boot and answer, and the RM to send a notification.
pub(crate) const CHILD_TIMEOUT_US: u64 = 10_000_000;
/// The runtime handles vIRQs below this INTID.
const MAX_INTID: u32 = wurley_rt::gic::MAX_INTID as u32;

/// Messages between the client and the child: `"VMLF"`, u32 kind, u32 round, u32 VMID.
pub const LINK_MAGIC: [u8; 4] = *b"VMLF";
/// Length of a link message.
pub const LINK_MSG_LEN: usize = 16;
/// Client to child: the round number (VMID field 0).
pub const KIND_ROUND: u32 = 1;
/// Child to client: the round number plus one, and the child's VMID.
pub const KIND_ECHO: u32 = 2;
/// Child to client, after the echo if asked: the last 8 bytes of its RAM (low word in the round
/// field, high word in the VMID field).
pub const KIND_TAIL: u32 = 3;
/// [`KIND_ROUND`]'s VMID field: ask for [`KIND_TAIL`] too.
pub const ROUND_FLAG_TAIL: u32 = 1;
/// [`KIND_ROUND`]'s VMID field: power the VM off (SYSTEM_OFF) after answering.
pub const ROUND_FLAG_OFF: u32 = 2;
/// Most `vcpu_run` calls for one life of a proxy-scheduled child.
const MAX_RUNS: u32 = 100_000;
/// Size of the demand-paged range (`demand=1`), right after the parcel.
const DEMAND_SIZE: u64 = 2 << 20;
/// `memextent_donate` types.
const DONATE_TO_CHILD: u32 = 0;
const DONATE_TO_PARENT: u32 = 1;

/// A link message.
pub fn link_msg(kind: u32, round: u32, vmid: u32) -> [u8; LINK_MSG_LEN] {
    let mut m = [0u8; LINK_MSG_LEN];
    m[..4].copy_from_slice(&LINK_MAGIC);
    m[4..8].copy_from_slice(&kind.to_le_bytes());
    m[8..12].copy_from_slice(&round.to_le_bytes());
    m[12..16].copy_from_slice(&vmid.to_le_bytes());
    m
}

/// `(kind, round, vmid)` of a link message.
pub fn parse_link_msg(m: &[u8]) -> Option<(u32, u32, u32)> {
    if m.len() != LINK_MSG_LEN || m[..4] != LINK_MAGIC {
        return None;
    }
    let word = |i: usize| u32::from_le_bytes([m[i], m[i + 1], m[i + 2], m[i + 3]]);
    Some((word(4), word(8), word(12)))
}

static LINK_TX_IRQS: AtomicU32 = AtomicU32::new(0);
static WAKEUP_IRQS: AtomicU32 = AtomicU32::new(0);

fn wakeup_irq(_intid: u32) {
    WAKEUP_IRQS.fetch_add(1, Ordering::AcqRel);
}
static LINK_RX_IRQS: AtomicU32 = AtomicU32::new(0);

fn link_tx_irq(_intid: u32) {
    LINK_TX_IRQS.fetch_add(1, Ordering::AcqRel);
}

fn link_rx_irq(_intid: u32) {
    LINK_RX_IRQS.fetch_add(1, Ordering::AcqRel);
}

/// One end of the message-queue pair between the client and the child, driven by its vIRQs
/// (used by both roles).
pub struct Link {
    pub tx: CapId,
    pub rx: CapId,
    pub tx_irq: u32,
    pub rx_irq: u32,
}

impl Link {
    /// Enable the vIRQs (edge).
    pub fn enable(&self) {
        gic::enable(self.tx_irq, true, link_tx_irq);
        gic::enable(self.rx_irq, true, link_rx_irq);
    }

    /// Disable the vIRQs.
    pub fn disable(&self) {
        gic::disable(self.tx_irq);
        gic::disable(self.rx_irq);
    }

    /// Send `msg`, waiting for the TX vIRQ while the queue is full.
    pub fn send(&self, msg: &[u8], timeout_us: u64) -> Result<(), Error> {
        loop {
            let seen = LINK_TX_IRQS.load(Ordering::Acquire);
            match hyp::msgqueue_send_slice(self.tx, msg, hyp::SEND_FLAG_PUSH).0 {
                Err(Error::MsgqueueFull) => {
                    if !time::wait_until(timeout_us, || {
                        LINK_TX_IRQS.load(Ordering::Acquire) != seen
                    }) {
                        return Err(Error::MsgqueueFull);
                    }
                }
                other => return other,
            }
        }
    }

    /// Receive a message into `buf`, waiting for the RX vIRQ while the queue is empty.
    pub fn receive(&self, buf: &mut [u8], timeout_us: u64) -> Result<usize, Error> {
        loop {
            let seen = LINK_RX_IRQS.load(Ordering::Acquire);
            match hyp::msgqueue_receive_into(self.rx, buf).0 {
                Err(Error::MsgqueueEmpty) => {
                    if !time::wait_until(timeout_us, || {
                        LINK_RX_IRQS.load(Ordering::Acquire) != seen
                    }) {
                        return Err(Error::MsgqueueEmpty);
                    }
                }
                other => return other,
            }
        }
    }
}

/// What the secondary VM runs, from the initrd.
pub(crate) struct Payload {
    /// The image's link address: the parcel's IPA.
    load: u64,
    image: &'static [u8],
    dtb: &'static [u8],
    /// The image's `image_size` (code, BSS and stack).
    image_mem: u64,
    /// Where the payload is (to keep the parcel clear of it).
    range: (u64, u64),
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

pub(crate) fn find_payload(fdt: &Fdt<'_>) -> Result<Payload, &'static str> {
    let chosen = fdt.find_node("/chosen").ok_or("no /chosen")?;
    let start = chosen
        .prop_u64("linux,initrd-start")
        .ok_or("no linux,initrd-start")?;
    let end = chosen
        .prop_u64("linux,initrd-end")
        .ok_or("no linux,initrd-end")?;
    let (base, size) = wurley_rt::ram();
    if end <= start || start < base || end > base + size {
        return Err("the initrd is not in RAM");
    }
    // SAFETY: the initrd lies in this VM's RAM (checked above), which the runtime maps
    // identically as Normal memory; Wurley put it there before the VM started and nothing
    // writes to it, so it stays valid and unchanged for 'static.
    let bytes: &'static [u8] =
        unsafe { core::slice::from_raw_parts(start as *const u8, (end - start) as usize) };
    if bytes.len() < PAYLOAD_HEADER || bytes[..8] != PAYLOAD_MAGIC {
        return Err("the initrd is not a vmlife payload (magic WRLYVMLF)");
    }
    let load = le64(bytes, 8).ok_or("short header")?;
    let image_len = le64(bytes, 16).ok_or("short header")? as usize;
    let dtb_len = le64(bytes, 24).ok_or("short header")? as usize;
    let dtb_at = PAYLOAD_HEADER
        .checked_add(image_len)
        .map(|e| e.next_multiple_of(8))
        .ok_or("bad image length")?;
    let image = bytes
        .get(PAYLOAD_HEADER..PAYLOAD_HEADER + image_len)
        .ok_or("image past the initrd")?;
    let dtb = bytes
        .get(dtb_at..dtb_at.checked_add(dtb_len).ok_or("bad DTB length")?)
        .ok_or("DTB past the initrd")?;
    // The arm64 Image header: image_size at 0x10, magic "ARM\x64" at 0x38.
    if image.get(0x38..0x3c) != Some(b"ARM\x64".as_slice()) {
        return Err("the image is not an arm64 Image");
    }
    let image_mem = le64(image, 0x10).ok_or("short image")?;
    Ok(Payload {
        load,
        image,
        dtb,
        image_mem: image_mem.max(image.len() as u64),
        range: (start, end),
    })
}

/// Where things go in the parcel.
pub(crate) struct Layout {
    pub(crate) base: u64,
    image_len: u64,
    dtb_offset: u64,
    dtb_len: u64,
    /// The demand-paged range's base (`demand=1`): right after the parcel.
    demand: Option<u64>,
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// The parcel's layout (and the demand-paged range after it, if `demand`), if it fits and
/// stays clear of this VM's own image, initrd and device tree.
pub(crate) fn layout(p: &Payload, demand: bool) -> Result<Layout, &'static str> {
    let (ram, ram_size) = wurley_rt::ram();
    let base = p.load;
    if !base.is_multiple_of(PARCEL_SIZE) {
        return Err("the image's link address is not 2 MiB aligned");
    }
    let extra = if demand { DEMAND_SIZE } else { 0 };
    let parcel = (base, base + PARCEL_SIZE + extra);
    if parcel.0 < ram || parcel.1 > ram + ram_size {
        return Err("the parcel is not in RAM");
    }
    // This VM's own Image header (at its RAM base) gives its image_size.
    // SAFETY: the RAM base holds this program's Image header (text_offset 0), mapped Normal.
    let own_size = unsafe { core::ptr::read_volatile((ram + 0x10) as *const u64) };
    if overlaps(parcel, (ram, ram + own_size)) {
        return Err("the parcel overlaps this VM's image");
    }
    if overlaps(parcel, p.range) {
        return Err("the parcel overlaps the initrd");
    }
    // Wurley puts the device tree in the top 2 MiB of RAM.
    let dtb = wurley_rt::dtb() as u64;
    if overlaps(
        parcel,
        (dtb.min(ram + ram_size - PARCEL_SIZE), ram + ram_size),
    ) {
        return Err("the parcel overlaps this VM's device tree");
    }
    let dtb_offset = p.image_mem.next_multiple_of(DTB_SPACE);
    if dtb_offset + DTB_SPACE > PARCEL_SIZE || p.dtb.len() as u64 > DTB_SPACE {
        return Err("the image and the DTB do not fit in 2 MiB");
    }
    Ok(Layout {
        base,
        image_len: p.image.len() as u64,
        dtb_offset,
        dtb_len: p.dtb.len() as u64,
        demand: demand.then_some(base + PARCEL_SIZE),
    })
}

/// Clean `[base, base + size)` to the point of coherency.
fn clean_to_poc(base: u64, size: u64) {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    let line = 4u64 << ((ctr >> 16) & 0xf);
    let mut a = base & !(line - 1);
    while a < base + size {
        // SAFETY: cleaning a line of this VM's own RAM (mapped) only writes dirty data back.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) a, options(nostack)) };
        a += line;
    }
    // SAFETY: a barrier.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}

/// Zero the parcel and copy the image and the DTB into it.
pub(crate) fn fill_parcel(l: &Layout, p: &Payload) {
    // SAFETY: the parcel is this VM's own RAM (checked by `layout`: in RAM, clear of the
    // program, the initrd and the device tree), identity mapped, and not lent right now; no
    // Rust reference points into it.
    unsafe {
        core::ptr::write_bytes(l.base as *mut u8, 0, PARCEL_SIZE as usize);
        core::ptr::copy_nonoverlapping(p.image.as_ptr(), l.base as *mut u8, p.image.len());
        core::ptr::copy_nonoverlapping(
            p.dtb.as_ptr(),
            (l.base + l.dtb_offset) as *mut u8,
            p.dtb.len(),
        );
    }
    clean_to_poc(l.base, PARCEL_SIZE);
}

/// The pattern word of address `a` in round `round`.
fn pattern(a: u64, round: u32) -> u64 {
    a ^ (u64::from(round) << 48) ^ 0x5A5A_0000_0000_A5A5
}

/// Write [`pattern`] to every 64-byte line of `[base, base + size)` (and its last 8 bytes),
/// this VM's own RAM, and clean it to the point of coherency.
fn fill_pattern(base: u64, size: u64, round: u32) {
    let mut a = base;
    while a < base + size {
        // SAFETY: the range is this VM's own RAM (checked by `layout`), identity mapped, not
        // given away right now; 8-byte aligned stores of plain data.
        unsafe { core::ptr::write_volatile(a as *mut u64, pattern(a, round)) };
        a += 64;
    }
    let last = base + size - 8;
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(last as *mut u64, pattern(last, round)) };
    clean_to_poc(base, size);
}

/// Write a pattern to every 64-byte line of the parcel and read it back: the first line that
/// differs, if any.
pub(crate) fn parcel_is_mine(base: u64, round: u32) -> Option<u64> {
    range_is_mine(base, PARCEL_SIZE, round)
}

/// The same for `[base, base + size)`.
fn range_is_mine(base: u64, size: u64, round: u32) -> Option<u64> {
    let word = |a: u64| pattern(a, round);
    let mut a = base;
    while a < base + size {
        // SAFETY: the parcel is this VM's RAM again (reclaimed), identity mapped; 8-byte
        // aligned stores of plain data.
        unsafe { core::ptr::write_volatile(a as *mut u64, word(a)) };
        a += 64;
    }
    let mut a = base;
    while a < base + size {
        // SAFETY: as above, loads.
        if unsafe { core::ptr::read_volatile(a as *const u64) } != word(a) {
            return Some(a);
        }
        a += 64;
    }
    None
}

/// The checks of one round: every one printed in round 1, only failures later.
pub(crate) struct Steps<'r> {
    pub r: &'r mut Report,
    pub round: u32,
    pub verbose: bool,
    pub failed: u32,
}

impl Steps<'_> {
    pub(crate) fn check(
        &mut self,
        name: &str,
        ok: bool,
        details: core::fmt::Arguments<'_>,
    ) -> bool {
        if self.verbose || !ok {
            self.r
                .check(name, ok, format_args!("round={} {details}", self.round));
        }
        if !ok {
            self.failed += 1;
        }
        ok
    }

    /// Check that a call answered `want`; the reply if it did.
    pub(crate) fn want<'g>(
        &mut self,
        name: &str,
        got: &'g Result<Got, CallError>,
        want: RmError,
    ) -> Option<&'g Got> {
        match got {
            Ok(g) => {
                let ok = g.code() == want.code();
                self.check(
                    name,
                    ok,
                    format_args!(
                        "code={:#x} ({}) want={:#x} ({}) payload={} bytes",
                        g.code(),
                        RmError::from_code(g.code()).map_or("?", |e| e.name()),
                        want.code(),
                        want.name(),
                        g.len.saturating_sub(4)
                    ),
                );
                ok.then_some(g)
            }
            Err(e) => {
                self.check(name, false, format_args!("{e}"));
                None
            }
        }
    }

    /// Check that a call was refused (any error code).
    pub(crate) fn refused(&mut self, name: &str, got: &Result<Got, CallError>) -> bool {
        match got {
            Ok(g) => self.check(
                name,
                g.code() != RmError::Ok.code(),
                format_args!(
                    "code={:#x} ({}) want an error",
                    g.code(),
                    RmError::from_code(g.code()).map_or("?", |e| e.name())
                ),
            ),
            Err(e) => self.check(name, false, format_args!("{e}")),
        }
    }

    /// Check the VM's state (VM_GET_STATE).
    pub(crate) fn state(
        &mut self,
        rpc: &mut Rpc<'_>,
        name: &str,
        vmid: u16,
        want: VmStatus,
    ) -> bool {
        match rpc.call(ids::VM_GET_STATE, &vmid_req(vmid)) {
            Ok(g) => {
                let s = VmStateReply::decode(g.payload()).ok().map(|s| s.vm_status);
                self.check(
                    name,
                    g.code() == 0 && s == Some(want),
                    format_args!("code={:#x} state={s:?} want={want:?}", g.code()),
                )
            }
            Err(e) => self.check(name, false, format_args!("{e}")),
        }
    }
}

/// Check (as `primary`) that this VM is the primary VM, the only one that may allocate VMs.
pub(crate) fn is_primary(r: &mut Report, rpc: &mut Rpc<'_>) -> bool {
    let me = rpc
        .call(ids::VM_GET_VMID, &[])
        .ok()
        .filter(|g| g.code() == 0)
        .and_then(|g| VmGetVmidReply::decode(g.payload()).ok())
        .map(|v| v.vmid.0);
    r.check(
        "primary",
        me == Some(PRIMARY),
        format_args!("vmid={me:?} (only the primary VM, 3, may allocate VMs)"),
    )
}

pub(crate) fn is_status(note: &Note, vmid: u16, status: VmStatus) -> bool {
    note.id == ids::NOTIFY_VM_STATUS
        && VmStatusNotification::decode(note.body())
            .is_ok_and(|n| n.vmid.0 == vmid && n.vm_status == status)
}

pub(crate) fn is_exited(note: &Note, vmid: u16) -> bool {
    note.id == ids::NOTIFY_VM_EXITED
        && VmExitedNotification::decode(note.body()).is_ok_and(|n| n.vmid.0 == vmid)
}

/// MEM_LEND of the parcel to `vmid`.
pub(crate) fn lend(rpc: &mut Rpc<'_>, l: &Layout, vmid: u16, label: u32) -> Result<Got, CallError> {
    let acl = [AclEntry {
        vmid: VmId(vmid),
        rights: MEM_RIGHTS_RWX,
    }];
    let sgl = [SglEntry {
        ipa: l.base,
        size: PARCEL_SIZE,
    }];
    let req = MemCreateRequest {
        mem_type: MemType::Normal.raw(),
        flags: 0,
        label,
        acl: List::from_slice(&acl),
        sgl: List::from_slice(&sgl),
        attrs: List::empty(),
    };
    rpc.call_encoded(ids::MEM_LEND, &req)
}

pub(crate) fn config_image(
    rpc: &mut Rpc<'_>,
    l: &Layout,
    vmid: u16,
    handle: u32,
) -> Result<Got, CallError> {
    let req = VmConfigImageRequest {
        vmid: VmId(vmid),
        auth_mech: AuthMechanism::None.raw(),
        mem_handle: handle,
        image_offset: 0,
        image_size: l.image_len,
        dtb_offset: l.dtb_offset,
        dtb_size: DTB_SPACE,
    };
    rpc.call_encoded(ids::VM_CONFIG_IMAGE, &req)
}

pub(crate) fn reclaim(rpc: &mut Rpc<'_>, handle: u32) -> Result<Got, CallError> {
    rpc.call_encoded(ids::MEM_RECLAIM, &MemReleaseRequest { handle, flags: 0 })
}

/// The client's end of the pair to `vmid`, from VM_GET_HYP_RESOURCES; and the vCPU count.
pub(crate) fn child_link(s: &mut Steps<'_>, g: &Got, vmid: u16) -> Option<Link> {
    let reply = HypResourcesReply::decode(g.payload());
    let Ok(reply) = reply else {
        s.check(
            "hyp-resources-parse",
            false,
            format_args!("payload={} bytes does not parse", g.payload().len()),
        );
        return None;
    };
    let mut tx = None;
    let mut rx = None;
    let mut vcpus = 0;
    for e in reply.entries.iter() {
        match e.resource_type {
            ResourceType::MsgQueueSend if e.partner_vmid.0 == vmid => tx = Some(e),
            ResourceType::MsgQueueRecv if e.partner_vmid.0 == vmid => rx = Some(e),
            ResourceType::VirtualCpu => vcpus += 1,
            _ => {}
        }
    }
    s.check(
        "child-vcpus",
        vcpus == 1,
        format_args!(
            "entries={} vcpus={vcpus} want 1 (one cpu in the DTB)",
            reply.entries.len()
        ),
    );
    let (Some(tx), Some(rx)) = (tx, rx) else {
        s.check(
            "child-link",
            false,
            format_args!(
                "entries={}: want MSG_QUEUE_SEND (2) and MSG_QUEUE_RECV (3) with partner {vmid:#x}",
                reply.entries.len()
            ),
        );
        return None;
    };
    let ok = tx.virq < MAX_INTID && rx.virq < MAX_INTID && tx.virq >= 32 && rx.virq >= 32;
    s.check(
        "child-link",
        ok,
        format_args!(
            "tx cap={:#x} virq={} rx cap={:#x} virq={} (vIRQs must be SPIs below {MAX_INTID})",
            tx.cap_id, tx.virq, rx.cap_id, rx.virq
        ),
    );
    ok.then_some(Link {
        tx: CapId(tx.cap_id),
        rx: CapId(rx.cap_id),
        tx_irq: tx.virq,
        rx_irq: rx.virq,
    })
}

/// Send the round number to the child with `flags`.
fn send_round(s: &mut Steps<'_>, link: &Link, flags: u32) -> bool {
    match link.send(&link_msg(KIND_ROUND, s.round, flags), CHILD_TIMEOUT_US) {
        Ok(()) => true,
        Err(e) => s.check(
            "hello",
            false,
            format_args!("send to the child: error {}", e.code()),
        ),
    }
}

/// Send the round number to the child and check its echo (and, if `tail`, that the last 8
/// bytes of its RAM are that).
fn hello(s: &mut Steps<'_>, link: &Link, vmid: u16, tail: Option<u64>) -> bool {
    let flags = if tail.is_some() { ROUND_FLAG_TAIL } else { 0 };
    if !send_round(s, link, flags) {
        return false;
    }
    echo(s, link, vmid, tail)
}

/// Check the child's echo of the round number (and, if `tail`, that the last 8 bytes of its
/// RAM are that).
fn echo(s: &mut Steps<'_>, link: &Link, vmid: u16, tail: Option<u64>) -> bool {
    let round = s.round;
    let mut buf = [0u8; 240];
    let start = time::ticks();
    let echoed = match link.receive(&mut buf, CHILD_TIMEOUT_US) {
        Ok(n) => {
            let m = parse_link_msg(&buf[..n.min(buf.len())]);
            s.check(
                "hello",
                m == Some((KIND_ECHO, round + 1, u32::from(vmid))),
                format_args!(
                    "echo={m:?} want=(kind {KIND_ECHO}, round {}, vmid {vmid:#x}) us={}",
                    round + 1,
                    time::elapsed_us(start)
                ),
            )
        }
        Err(e) => s.check(
            "hello",
            false,
            format_args!(
                "no answer from the child within {CHILD_TIMEOUT_US} us (error {})",
                e.code()
            ),
        ),
    };
    let Some(want) = tail else {
        return echoed;
    };
    match link.receive(&mut buf, CHILD_TIMEOUT_US) {
        Ok(n) => {
            let m = parse_link_msg(&buf[..n.min(buf.len())]);
            let got = m.map(|(k, lo, hi)| (k, u64::from(lo) | u64::from(hi) << 32));
            s.check(
                "demand-seen",
                got == Some((KIND_TAIL, want)),
                format_args!("tail={got:x?} want=(kind {KIND_TAIL}, {want:#x})"),
            )
        }
        Err(e) => s.check(
            "demand-seen",
            false,
            format_args!(
                "no tail from the child within {CHILD_TIMEOUT_US} us (error {})",
                e.code()
            ),
        ),
    }
}

/// The proxy-scheduled child's vCPU in VM_GET_HYP_RESOURCES: the one VIRTUAL_CPU entry's cap
/// and wakeup vIRQ (an SPI of this VM's VIC the runtime handles).
fn proxy_vcpu(s: &mut Steps<'_>, g: &Got) -> Option<(CapId, u32)> {
    let reply = HypResourcesReply::decode(g.payload()).ok()?;
    let mut found = None;
    let mut n = 0;
    for e in reply.entries.iter() {
        if e.resource_type == ResourceType::VirtualCpu {
            n += 1;
            found = Some((e.label, e.cap_id, e.virq));
        }
    }
    let ok = n == 1
        && found.is_some_and(|(label, cap, virq)| {
            label == 0 && cap != CapId::INVALID.0 && (32..MAX_INTID).contains(&virq)
        });
    s.check(
        "proxy-resources",
        ok,
        format_args!(
            "vcpus={n} (label, cap, wakeup virq)={found:x?}: want one, label 0, an SPI below {MAX_INTID}"
        ),
    );
    let (_, cap, virq) = found?;
    ok.then_some((CapId(cap), virq))
}

/// What running a proxy-scheduled child saw.
#[derive(Default, Debug)]
struct Runs {
    runs: u32,
    ready: u32,
    expects_wakeup: u32,
    woken: u32,
    /// POWERED_OFF's flags.
    off: Option<u64>,
    /// A state it did not expect, or an error code.
    other: Option<(u64, [u64; 3])>,
}

/// Run the child's vCPU `cap` with `vcpu_run` until it powers off, for at most
/// [`CHILD_TIMEOUT_US`] (the caller enabled its wakeup vIRQ). The round number goes to the
/// child the first time it expects a wakeup (it waits for it, or for the RM's answer, in WFI),
/// so the wakeup path is taken every time: whatever unblocks it raises the wakeup vIRQ, which
/// `seen`, read before the run, cannot have counted yet.
fn run_child(s: &mut Steps<'_>, cap: CapId, link: &Link, flags: u32) -> bool {
    let start = time::ticks();
    let mut t = Runs::default();
    let mut sent = false;
    while t.runs < MAX_RUNS && time::elapsed_us(start) < CHILD_TIMEOUT_US {
        let seen = WAKEUP_IRQS.load(Ordering::Acquire);
        let res = hyp::vcpu_run(cap, [0; 3]);
        t.runs += 1;
        let run = match res {
            Ok(run) => run,
            Err(e) => {
                t.other = Some((e.code() as u64, [0; 3]));
                break;
            }
        };
        match RunState::from_raw(run.state) {
            Some(RunState::Ready) => t.ready += 1,
            Some(RunState::ExpectsWakeup) => {
                t.expects_wakeup += 1;
                if !sent {
                    sent = true;
                    if !send_round(s, link, flags) {
                        return false;
                    }
                }
                if time::wait_until(1_000_000, || WAKEUP_IRQS.load(Ordering::Acquire) != seen) {
                    t.woken += 1;
                }
            }
            Some(RunState::PoweredOff) => {
                t.off = Some(run.data[0]);
                break;
            }
            _ => {
                t.other = Some((run.state, run.data));
                break;
            }
        }
    }
    s.check(
        "proxy-run",
        t.runs > 0
            && t.other.is_none()
            && t.off == Some(POWERED_OFF_EXITED)
            && sent
            && t.expects_wakeup >= 1
            && t.woken >= 1,
        format_args!(
            "runs={} ready={} expects_wakeup={} woken={} off={:?} other={:x?} us={}",
            t.runs,
            t.ready,
            t.expects_wakeup,
            t.woken,
            t.off,
            t.other,
            time::elapsed_us(start)
        ),
    )
}

/// The owner's caps for demand paging in VM_GET_HYP_RESOURCES: the VM's address space (type
/// 10, label 0), the guest-private and host-private extents (type 9, labels 0 and 2) over
/// `[base, base + DEMAND_SIZE)`.
fn demand_caps(s: &mut Steps<'_>, g: &Got, base: u64) -> Option<(CapId, CapId)> {
    let reply = HypResourcesReply::decode(g.payload()).ok()?;
    let mut asp = None;
    let mut guest = None;
    let mut host = None;
    for e in reply.entries.iter() {
        let range = (e.base, e.size) == (base, DEMAND_SIZE);
        match (e.resource_type, e.label) {
            (ResourceType::AddrSpace, 0) => asp = Some(e.cap_id),
            (ResourceType::MemExtent, 0) if range => guest = Some(e.cap_id),
            (ResourceType::MemExtent, 2) if range => host = Some(e.cap_id),
            _ => {}
        }
    }
    let ok = asp.is_some() && guest.is_some() && host.is_some();
    s.check(
        "demand-resources",
        ok,
        format_args!(
            "addrspace={asp:x?} guest-private={guest:x?} host-private={host:x?} over {base:#x}+{DEMAND_SIZE:#x}"
        ),
    );
    Some((CapId(guest?), CapId(host?)))
}

/// VM_SET_DEMAND_PAGING of one range.
fn set_demand(rpc: &mut Rpc<'_>, vmid: u16, ipa: u64, size: u64) -> Result<Got, CallError> {
    let ranges = [SglEntry { ipa, size }];
    rpc.call_encoded(
        ids::VM_SET_DEMAND_PAGING,
        &VmSetDemandPagingRequest {
            vmid: VmId(vmid),
            ranges: List::from_slice(&ranges),
        },
    )
}

/// One whole life. False if a step failed (the rest of the round is skipped where it
/// depends on the step).
fn life(s: &mut Steps<'_>, rpc: &mut Rpc<'_>, p: &Payload, l: &Layout, proxy: bool) -> bool {
    rpc.forget_notifications();
    let round = s.round;
    let got = rpc.call(ids::VM_ALLOCATE, &vmid_req(0));
    let Some(g) = s.want("allocate", &got, RmError::Ok) else {
        return false;
    };
    let vmid = VmAllocateReply::decode(g.payload()).map_or(0, |v| v.vmid.0);
    if !s.check(
        "allocate-vmid",
        (0x80..=0xBF).contains(&vmid),
        format_args!("vmid={vmid:#x}"),
    ) {
        return false;
    }
    fill_parcel(l, p);
    let got = lend(rpc, l, vmid, LABEL_BASE + round);
    let Some(g) = s.want("lend", &got, RmError::Ok) else {
        return false;
    };
    let handle = MemHandleReply::decode(g.payload()).map_or(MEM_HANDLE_INVALID, |h| h.handle);
    if !s.check(
        "lend-handle",
        handle != MEM_HANDLE_INVALID,
        format_args!("handle={handle:#x}"),
    ) {
        return false;
    }
    let got = config_image(rpc, l, vmid, handle);
    if s.want("config-image", &got, RmError::Ok).is_none() {
        return false;
    }
    if let Some(d) = l.demand {
        fill_pattern(d, DEMAND_SIZE, round);
        let got = set_demand(rpc, vmid, 0x1000, DEMAND_SIZE);
        s.want("demand-paging-not-mine", &got, RmError::MemInvalid);
        let got = set_demand(rpc, vmid, d, DEMAND_SIZE);
        if s.want("demand-paging", &got, RmError::Ok).is_none() {
            return false;
        }
    }
    let got = rpc.call(ids::VM_INIT, &vmid_req(vmid));
    if s.want("init", &got, RmError::Ok).is_none() {
        return false;
    }
    s.state(rpc, "state-ready", vmid, VmStatus::Ready);
    let got = rpc.call(ids::VM_GET_HYP_RESOURCES, &vmid_req(vmid));
    let Some(g) = s.want("hyp-resources", &got, RmError::Ok) else {
        return false;
    };
    let Some(link) = child_link(s, g, vmid) else {
        return false;
    };
    let vcpu = if proxy {
        let Some(v) = proxy_vcpu(s, g) else {
            return false;
        };
        Some(v)
    } else {
        None
    };
    let mut demand = None;
    if let Some(d) = l.demand {
        let Some((guest, host)) = demand_caps(s, g, d) else {
            return false;
        };
        let r = hyp::memextent_donate(DONATE_TO_PARENT, host, guest, 0, DEMAND_SIZE);
        if !s.check(
            "provide",
            r.is_ok(),
            format_args!("donate host {host:?} -> guest {guest:?}: {r:?}"),
        ) {
            return false;
        }
        demand = Some((d, guest, host));
    }
    link.enable();
    if let Some((_, wake)) = vcpu {
        gic::enable(wake, true, wakeup_irq);
    }
    let got = rpc.call(ids::VM_START, &vmid_req(vmid));
    if s.want("start", &got, RmError::Ok).is_none() {
        link.disable();
        if let Some((_, wake)) = vcpu {
            gic::disable(wake);
        }
        return false;
    }
    s.state(rpc, "state-running", vmid, VmStatus::Running);
    let got = rpc.call(ids::VM_START, &vmid_req(vmid));
    s.want("start-again", &got, RmError::VmState);
    let got = reclaim(rpc, handle);
    s.refused("reclaim-in-use", &got);
    let tail = demand.map(|(d, ..)| pattern(d + DEMAND_SIZE - 8, round));
    if let Some((cap, wake)) = vcpu {
        return proxied_end(s, rpc, &link, (vmid, handle), (cap, wake), tail, l);
    }
    hello(s, &link, vmid, tail);

    let stop = VmStopRequest {
        vmid: VmId(vmid),
        flags: VM_STOP_FLAG_FORCE,
        stop_reason: VM_STOP_REASON_FORCE_STOP,
    };
    let got = rpc.call_encoded(ids::VM_STOP, &stop);
    let stopped = s.want("stop", &got, RmError::Ok).is_some();
    link.disable();
    if !stopped {
        return false;
    }
    match rpc.wait_notification(CHILD_TIMEOUT_US, |n| is_exited(n, vmid)) {
        Ok(note) => {
            let n = VmExitedNotification::decode(note.body()).ok();
            let t = n.map(|n| n.exit_type);
            s.check(
                "exited",
                t == Some(ExitType::VmStopForced),
                format_args!("VM_EXITED exit_type={t:?} want VmStopForced"),
            );
        }
        Err(e) => {
            s.check("exited", false, format_args!("no VM_EXITED: {e}"));
        }
    }
    if let Some((_, guest, host)) = demand {
        let r = hyp::memextent_donate(DONATE_TO_CHILD, guest, host, 0, DEMAND_SIZE / 2);
        s.check(
            "take-back",
            r.is_ok(),
            format_args!("donate guest {guest:?} -> host {host:?}, first half: {r:?}"),
        );
    }
    let got = reclaim(rpc, handle);
    let reclaimed = s.want("reclaim", &got, RmError::Ok).is_some();
    let got = rpc.call(ids::VM_RESET, &vmid_req(vmid));
    if s.want("reset", &got, RmError::Ok).is_none() {
        return false;
    }
    let reset = rpc.wait_notification(CHILD_TIMEOUT_US, |n| is_status(n, vmid, VmStatus::Reset));
    s.check(
        "reset-status",
        reset.is_ok(),
        format_args!(
            "VM_STATUS RESET for {vmid:#x}: {}",
            if reset.is_ok() { "received" } else { "missing" }
        ),
    );
    let got = rpc.call(ids::VM_DEALLOCATE, &vmid_req(vmid));
    if s.want("deallocate", &got, RmError::Ok).is_none() {
        return false;
    }
    let got = rpc.call(ids::VM_GET_STATE, &vmid_req(vmid));
    s.want("gone", &got, RmError::VmidInvalid);
    if reclaimed {
        let bad = parcel_is_mine(l.base, round);
        s.check(
            "memory-back",
            bad.is_none(),
            format_args!("parcel {:#x}+2MiB: first bad line {bad:?}", l.base),
        );
    }
    if let Some(d) = l.demand {
        let bad = range_is_mine(d, DEMAND_SIZE, round);
        s.check(
            "demand-memory-back",
            bad.is_none(),
            format_args!("demand range {d:#x}+2MiB: first bad line {bad:?}"),
        );
    }
    s.failed == 0
}

/// The rest of a life whose child is proxy-scheduled (`proxy=1`), after VM_START: run it to
/// its end with `vcpu_run`, then reset and deallocate it.
fn proxied_end(
    s: &mut Steps<'_>,
    rpc: &mut Rpc<'_>,
    link: &Link,
    (vmid, handle): (u16, u32),
    (cap, wake): (CapId, u32),
    tail: Option<u64>,
    l: &Layout,
) -> bool {
    let flags = ROUND_FLAG_OFF | if tail.is_some() { ROUND_FLAG_TAIL } else { 0 };
    if run_child(s, cap, link, flags) {
        echo(s, link, vmid, tail);
    }
    link.disable();
    gic::disable(wake);
    let check = hyp::vcpu_run_check(cap);
    s.check(
        "run-check",
        check.is_ok_and(|c| c.state == RunState::PoweredOff.raw()),
        format_args!("{check:x?}"),
    );
    match rpc.wait_notification(CHILD_TIMEOUT_US, |n| is_exited(n, vmid)) {
        Ok(note) => {
            let t = VmExitedNotification::decode(note.body())
                .ok()
                .map(|n| n.exit_type);
            s.check(
                "exited",
                t == Some(ExitType::PlatformOff),
                format_args!("VM_EXITED exit_type={t:?} want PlatformOff"),
            );
        }
        Err(e) => {
            s.check("exited", false, format_args!("no VM_EXITED: {e}"));
        }
    }
    s.state(rpc, "state-exited", vmid, VmStatus::Exited);
    let got = rpc.call(ids::VM_RESET, &vmid_req(vmid));
    if s.want("reset", &got, RmError::Ok).is_none() {
        return false;
    }
    let reset = rpc.wait_notification(CHILD_TIMEOUT_US, |n| is_status(n, vmid, VmStatus::Reset));
    s.check(
        "reset-status",
        reset.is_ok(),
        format_args!("VM_STATUS RESET for {vmid:#x}"),
    );
    // VM_RESET gave the parcel back: its handle is gone.
    let got = reclaim(rpc, handle);
    s.refused("reclaim-after-reset", &got);
    let got = rpc.call(ids::VM_DEALLOCATE, &vmid_req(vmid));
    if s.want("deallocate", &got, RmError::Ok).is_none() {
        return false;
    }
    let got = rpc.call(ids::VM_GET_STATE, &vmid_req(vmid));
    s.want("gone", &got, RmError::VmidInvalid);
    let bad = parcel_is_mine(l.base, s.round);
    s.check(
        "memory-back",
        bad.is_none(),
        format_args!("parcel {:#x}+2MiB: first bad line {bad:?}", l.base),
    );
    s.failed == 0
}

/// Requests about VMs the client does not own, and VM_INIT before VM_CONFIG_IMAGE.
fn not_mine(s: &mut Steps<'_>, rpc: &mut Rpc<'_>, l: &Layout) {
    let got = rpc.call(ids::VM_START, &vmid_req(RM_VMID));
    s.want("start-rm", &got, RmError::Denied);
    let got = rpc.call(ids::VM_INIT, &vmid_req(PRIMARY));
    s.want("init-self", &got, RmError::Denied);
    let got = config_image(rpc, l, PRIMARY, 1);
    s.want("config-image-self", &got, RmError::Denied);
    let stop = VmStopRequest {
        vmid: VmId(PRIMARY),
        flags: VM_STOP_FLAG_FORCE,
        stop_reason: VM_STOP_REASON_FORCE_STOP,
    };
    let got = rpc.call_encoded(ids::VM_STOP, &stop);
    s.want("stop-self", &got, RmError::VmidInvalid);
    let got = rpc.call(ids::VM_RESET, &vmid_req(RM_VMID));
    s.want("reset-rm", &got, RmError::VmidInvalid);
    let got = rpc.call(ids::VM_DEALLOCATE, &vmid_req(UNKNOWN_VMID));
    s.want("deallocate-unknown", &got, RmError::VmidInvalid);
    let got = rpc.call(ids::VM_GET_HYP_RESOURCES, &vmid_req(UNKNOWN_VMID));
    s.want("hyp-resources-unknown", &got, RmError::VmidInvalid);
    let got = lend(rpc, l, UNKNOWN_VMID, LABEL_BASE);
    s.want("lend-to-unknown", &got, RmError::VmidInvalid);

    // VM_INIT before VM_CONFIG_IMAGE: refused; the VM is left in LOAD or INIT_FAILED (the
    // contract does not say which), and can be reset (from INIT_FAILED) and deallocated.
    let got = rpc.call(ids::VM_ALLOCATE, &vmid_req(0));
    let Some(g) = s.want("early-allocate", &got, RmError::Ok) else {
        return;
    };
    let vmid = VmAllocateReply::decode(g.payload()).map_or(0, |v| v.vmid.0);
    let got = rpc.call(ids::VM_INIT, &vmid_req(vmid));
    s.refused("init-before-config-image", &got);
    let got = rpc.call(ids::VM_GET_STATE, &vmid_req(vmid));
    let state = got
        .as_ref()
        .ok()
        .and_then(|g| VmStateReply::decode(g.payload()).ok())
        .map(|s| s.vm_status);
    s.check(
        "early-state",
        matches!(state, Some(VmStatus::Load | VmStatus::InitFailed)),
        format_args!("state={state:?} want Load or InitFailed"),
    );
    if state == Some(VmStatus::InitFailed) {
        let got = rpc.call(ids::VM_RESET, &vmid_req(vmid));
        s.want("early-reset", &got, RmError::Ok);
        let reset =
            rpc.wait_notification(CHILD_TIMEOUT_US, |n| is_status(n, vmid, VmStatus::Reset));
        s.check(
            "early-reset-status",
            reset.is_ok(),
            format_args!("VM_STATUS RESET for {vmid:#x}"),
        );
    }
    let got = rpc.call(ids::VM_DEALLOCATE, &vmid_req(vmid));
    s.want("early-deallocate", &got, RmError::Ok);
}

// Not inlined into `guest_main`: its frame would add to every role's (one 64 KiB stack).
#[inline(never)]
pub fn run(r: &mut Report, fdt: &Fdt<'_>, bootargs: &str) {
    let rounds = args::get_u64(bootargs, "rounds").unwrap_or(20) as u32;
    let demand = args::get_u64(bootargs, "demand").unwrap_or(0) != 0;
    let proxy = args::get_u64(bootargs, "proxy").unwrap_or(0) != 0;
    let payload = match find_payload(fdt) {
        Ok(p) => p,
        Err(why) => {
            r.check("payload", false, format_args!("{why}"));
            return;
        }
    };
    r.check(
        "payload",
        true,
        format_args!(
            "image={} bytes (image_size {:#x}) linked at {:#x}, dtb={} bytes",
            payload.image.len(),
            payload.image_mem,
            payload.load,
            payload.dtb.len()
        ),
    );
    let l = match layout(&payload, demand) {
        Ok(l) => l,
        Err(why) => {
            r.check("parcel", false, format_args!("{why}"));
            return;
        }
    };
    r.check(
        "parcel",
        true,
        format_args!(
            "ipa={:#x} size={PARCEL_SIZE:#x} image 0+{:#x} dtb {:#x}+{DTB_SPACE:#x} ({} bytes)",
            l.base, l.image_len, l.dtb_offset, l.dtb_len
        ),
    );
    let Some(pair) = hypdt::resource_manager(fdt) else {
        r.check(
            "setup",
            false,
            format_args!("no gunyah-resource-manager node"),
        );
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
        round: 0,
        verbose: true,
        failed: 0,
    };
    not_mine(&mut s, &mut rpc, &l);

    let start = time::ticks();
    let mut done = 0;
    for round in 1..=rounds {
        let t = time::ticks();
        let mut s = Steps {
            r: &mut *s.r,
            round,
            verbose: round == 1,
            failed: 0,
        };
        let ok = life(&mut s, &mut rpc, &payload, &l, proxy);
        let failed = s.failed;
        s.r.check(
            "round",
            ok && failed == 0,
            format_args!("n={round} failed-steps={failed} us={}", time::elapsed_us(t)),
        );
        if !ok || failed != 0 {
            break;
        }
        done += 1;
    }
    let r = s.r;
    r.check(
        "rounds",
        done == rounds,
        format_args!(
            "{done} of {rounds} lives in {} us; requests={} notifications={}",
            time::elapsed_us(start),
            rpc.seq,
            rpc.notifications
        ),
    );
}

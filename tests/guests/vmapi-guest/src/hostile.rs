//! Role `hostile`: every error path of the message-queue, doorbell, cspace and binding calls,
//! with the exact Gunyah error code expected (reference §1.4, numbering of Gunyah's source).
//!
//! It uses the caps `/hypervisor/capabilities` grants (its own partition, cspace and VIC) to
//! make objects of its own. Each check is independent: it makes what it needs, reports, and
//! deletes its objects again, so one failure does not hide the others and the partition's
//! quota is whole for the memory-exhaustion check at the end. Every line prints the code it
//! got, so a mismatch shows what the hypervisor answered.

use core::sync::atomic::{AtomicU32, Ordering};

use wurley_abi::rights::{
    CspaceRights, DoorbellRights, MsgqueueRights, PartitionRights, VicRights,
};
use wurley_abi::{ApiInfo, CapId, Error, HypCall};
use wurley_rt::fdt::Fdt;
use wurley_rt::hyp::{
    self, CreateInfo, HOLDOFF_UNCHANGED, MAX_DEPTH, MAX_MSG_SIZE, THRESHOLD_MAXIMUM,
    THRESHOLD_UNCHANGED,
};
use wurley_rt::mmu::{self, Memory};
use wurley_rt::{args, gic, hypdt, time};

use crate::report::Report;

/// Depth and message size of the queues most checks use.
const DEPTH: u32 = 4;
const SIZE: usize = 64;
/// The UART's INTID (never bindable).
const UART_INTID: u32 = 33;
/// Hypercall numbers without a call: two reserved slots and one past the table.
const UNKNOWN_NUMBERS: [u16; 3] = [0x08, 0x35, 0x7F];
/// Bound on the memory-exhaustion loop.
const NOMEM_TRIES: usize = 64;

/// The hostile VM's caps and what the checks share.
struct Hostile<'r> {
    r: &'r mut Report,
    partition: CapId,
    cspace: CapId,
    vic: CapId,
    /// Caps this VM knows are valid (not to be used as "random" CapIDs).
    known: [CapId; 3],
    /// INTIDs of `/hypervisor` nodes, the UART and private ones: not for binding.
    used_intids: u128,
    ram: (u64, u64),
    rng: u64,
}

pub fn run(r: &mut Report, fdt: &Fdt<'_>, bootargs: &str) {
    let caps = hypdt::capabilities(fdt).unwrap_or_default();
    let (Some(partition), Some(cspace), Some(vic)) = (caps.partition, caps.cspace, caps.vic) else {
        r.check(
            "setup",
            false,
            format_args!(
                "need partition, cspace and vic in /hypervisor/capabilities: {:?} {:?} {:?}",
                caps.partition, caps.cspace, caps.vic
            ),
        );
        return;
    };
    let mut h = Hostile {
        r,
        partition,
        cspace,
        vic,
        known: [partition, cspace, vic],
        used_intids: hypdt::used_intids(fdt) | (1 << UART_INTID) | 0xffff_ffff,
        ram: wurley_rt::ram(),
        rng: time::ticks() | 1,
    };
    h.r.info(
        "caps",
        format_args!(
            "partition={:#x} cspace={:#x} vic={:#x} ram={:#x}+{:#x}",
            partition.0, cspace.0, vic.0, h.ram.0, h.ram.1
        ),
    );
    h.identify();
    h.invalid_caps();
    h.wrong_types();
    h.missing_rights();
    h.deleted_caps();
    h.revoked_caps();
    h.configure_args();
    h.lifecycle();
    h.activate_from();
    h.sizes_full_empty();
    h.small_buffer();
    h.roundtrips();
    h.bad_pointers();
    h.reserved_args();
    h.thresholds();
    h.unknown_calls();
    h.doorbell_args();
    h.virq_binding();
    h.cspace_full();
    let spare = args::get(bootargs, "spare").unwrap_or("spare");
    match hypdt::msgqueue_pair(fdt, spare) {
        Some(pair) => h.spare_link(pair.tx, pair.rx),
        None => h.r.info(
            "spare",
            format_args!("no message-queue pair labelled {spare}"),
        ),
    }
    h.nomem();
}

fn pattern(buf: &mut [u8], seed: u8) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = seed.wrapping_add((i as u8).wrapping_mul(7));
    }
}

impl Hostile<'_> {
    fn next_random(&mut self) -> u64 {
        // xorshift64
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// A message queue of `DEPTH` x `SIZE`, configured and activated; FAIL `<check>-setup`
    /// if that fails.
    fn mq(&mut self, check: &str) -> Option<CapId> {
        let q = self.mq_inactive(check, true)?;
        match hyp::object_activate(q) {
            Ok(()) => Some(q),
            Err(e) => {
                self.setup_failed(check, "object_activate(msgqueue)", e);
                self.delete(q);
                None
            }
        }
    }

    /// A message queue in INIT, configured if `configure`.
    fn mq_inactive(&mut self, check: &str, configure: bool) -> Option<CapId> {
        let q = match hyp::partition_create_msgqueue(self.partition, self.cspace) {
            Ok(q) => q,
            Err(e) => {
                self.setup_failed(check, "partition_create_msgqueue", e);
                return None;
            }
        };
        if configure && let Err(e) = hyp::msgqueue_configure(q, DEPTH, SIZE) {
            self.setup_failed(check, "msgqueue_configure", e);
            self.delete(q);
            return None;
        }
        Some(q)
    }

    /// An active doorbell.
    fn db(&mut self, check: &str) -> Option<CapId> {
        let d = match hyp::partition_create_doorbell(self.partition, self.cspace) {
            Ok(d) => d,
            Err(e) => {
                self.setup_failed(check, "partition_create_doorbell", e);
                return None;
            }
        };
        match hyp::object_activate(d) {
            Ok(()) => Some(d),
            Err(e) => {
                self.setup_failed(check, "object_activate(doorbell)", e);
                self.delete(d);
                None
            }
        }
    }

    /// A copy of `cap` in our cspace with `rights & mask`.
    fn copy(&mut self, check: &str, cap: CapId, mask: u32) -> Option<CapId> {
        match hyp::cspace_copy_cap_from(self.cspace, cap, self.cspace, mask) {
            Ok(c) => Some(c),
            Err(e) => {
                self.setup_failed(check, "cspace_copy_cap_from", e);
                None
            }
        }
    }

    fn setup_failed(&mut self, check: &str, what: &str, e: Error) {
        let mut name = Name::new();
        name.push(check);
        name.push("-setup");
        self.r.check(
            name.as_str(),
            false,
            format_args!("{what} failed: {}", e.code()),
        );
    }

    fn delete(&self, cap: CapId) {
        let _ = hyp::cspace_delete_cap_from(self.cspace, cap);
    }

    /// Up to `n` free SPIs we may bind (not used by `/hypervisor`, not the UART).
    fn free_spis<const N: usize>(&self) -> Option<[u32; N]> {
        let mut out = [0u32; N];
        let mut found = 0;
        for intid in 34..96u32 {
            if found == N {
                break;
            }
            if self.used_intids & (1 << intid) == 0 {
                out[found] = intid;
                found += 1;
            }
        }
        (found == N).then_some(out)
    }

    fn identify(&mut self) {
        let id = hyp::hypervisor_identify();
        let info = ApiInfo::decode_strict(id[0]);
        self.r.check(
            "identify",
            info.is_some_and(|i| i.api_version == 1 && i.is_64bit),
            format_args!("api_info={:#x} flags0={:#x}", id[0], id[1]),
        );
    }

    fn invalid_caps(&mut self) {
        let buf = [0u8; 8];
        let va = buf.as_ptr() as u64;
        let (res, _) = hyp::msgqueue_send(CapId(u64::MAX), 8, va, 0);
        self.r
            .expect_err("cap-null-max", &res, Error::CspaceCapNull);
        if !self.known.contains(&CapId(0)) {
            let (res, _) = hyp::msgqueue_send(CapId(0), 8, va, 0);
            self.r
                .expect_err("cap-null-zero", &res, Error::CspaceCapNull);
        }
        let mut bad = None;
        let mut tried = 0;
        while tried < 16 {
            let cap = CapId(self.next_random());
            if self.known.contains(&cap) || cap == CapId::INVALID {
                continue;
            }
            tried += 1;
            let (res, _) = hyp::msgqueue_send(cap, 8, va, 0);
            if res != Err(Error::CspaceCapNull) {
                bad.get_or_insert((cap, hyp::code(&res)));
            }
        }
        match bad {
            None => self.r.check(
                "cap-null-random",
                true,
                format_args!("{tried} random CapIDs: all 50"),
            ),
            Some((cap, code)) => self.r.check(
                "cap-null-random",
                false,
                format_args!("CapID {:#x}: got={code} want=50", cap.0),
            ),
        };
        let res = hyp::doorbell_send(CapId(u64::MAX), 1);
        self.r
            .expect_err("cap-null-doorbell", &res, Error::CspaceCapNull);
        let res = hyp::partition_create_msgqueue(CapId(u64::MAX), self.cspace);
        self.r
            .expect_err("cap-null-partition", &res, Error::CspaceCapNull);
        if let Ok(q) = &res {
            self.delete(*q);
        }
        let res = hyp::partition_create_msgqueue(self.partition, CapId(u64::MAX));
        self.r
            .expect_err("cap-null-dest-cspace", &res, Error::CspaceCapNull);
        let res = hyp::cspace_delete_cap_from(self.cspace, CapId(u64::MAX));
        self.r
            .expect_err("cap-null-delete", &res, Error::CspaceCapNull);
    }

    fn wrong_types(&mut self) {
        let Some(d) = self.db("wrong-type") else {
            return;
        };
        let Some(q) = self.mq("wrong-type") else {
            self.delete(d);
            return;
        };
        let buf = [1u8; 8];
        let (res, _) = hyp::msgqueue_send_slice(d, &buf, 0);
        self.r
            .expect_err("wrong-type-send", &res, Error::CspaceWrongObjectType);
        let res = hyp::doorbell_send(q, 1);
        self.r
            .expect_err("wrong-type-doorbell", &res, Error::CspaceWrongObjectType);
        let res = hyp::msgqueue_configure(d, DEPTH, SIZE);
        self.r
            .expect_err("wrong-type-configure", &res, Error::CspaceWrongObjectType);
        let res = hyp::partition_create_doorbell(self.cspace, self.cspace);
        self.r
            .expect_err("wrong-type-partition", &res, Error::CspaceWrongObjectType);
        if let Ok(c) = res {
            self.delete(c);
        }
        let res = hyp::partition_create_doorbell(self.partition, q);
        self.r
            .expect_err("wrong-type-dest-cspace", &res, Error::CspaceWrongObjectType);
        if let Ok(c) = res {
            self.delete(c);
        }
        if let Some([spi]) = self.free_spis::<1>() {
            let res = hyp::msgqueue_bind_receive_virq(q, self.cspace, spi.into());
            self.r
                .expect_err("wrong-type-vic", &res, Error::CspaceWrongObjectType);
            if res.is_ok() {
                let _ = hyp::msgqueue_unbind_receive_virq(q);
            }
        }
        self.delete(q);
        self.delete(d);
    }

    fn missing_rights(&mut self) {
        let check = "rights";
        let Some(q) = self.mq(check) else { return };
        let buf = [2u8; 8];
        if let Some(recv_only) = self.copy(check, q, MsgqueueRights::RECEIVE.bits()) {
            let (res, _) = hyp::msgqueue_send_slice(recv_only, &buf, 0);
            self.r
                .expect_err("rights-send", &res, Error::CspaceInsufficientRights);
            let mut rb = [0u8; SIZE];
            let (res, _) = hyp::msgqueue_receive_into(recv_only, &mut rb);
            self.r
                .expect_err("rights-receive-allowed", &res, Error::MsgqueueEmpty);
            // Copying again with every right does not bring SEND back.
            if let Some(regrown) = self.copy(check, recv_only, u32::MAX) {
                let (res, _) = hyp::msgqueue_send_slice(regrown, &buf, 0);
                self.r
                    .expect_err("rights-no-grow", &res, Error::CspaceInsufficientRights);
                self.delete(regrown);
            }
            self.delete(recv_only);
        }
        if let Some(inactive) = self.mq_inactive(check, false) {
            let mask = (MsgqueueRights::SEND | MsgqueueRights::RECEIVE).bits();
            if let Some(c) = self.copy(check, inactive, mask) {
                let res = hyp::msgqueue_configure(c, DEPTH, SIZE);
                self.r
                    .expect_err("rights-configure", &res, Error::CspaceInsufficientRights);
                let res = hyp::object_activate(c);
                self.r
                    .expect_err("rights-activate", &res, Error::CspaceInsufficientRights);
                self.delete(c);
            }
            self.delete(inactive);
        }
        if let Some([spi]) = self.free_spis::<1>()
            && let Some(c) = self.copy(check, q, MsgqueueRights::RECEIVE.bits())
        {
            let res = hyp::msgqueue_bind_receive_virq(c, self.vic, spi.into());
            self.r.expect_err(
                "rights-bind-msgqueue",
                &res,
                Error::CspaceInsufficientRights,
            );
            if res.is_ok() {
                let _ = hyp::msgqueue_unbind_receive_virq(q);
            }
            self.delete(c);
        }
        if let Some(d) = self.db(check) {
            let mask = (DoorbellRights::SEND | DoorbellRights::BIND).bits();
            if let Some(c) = self.copy(check, d, mask) {
                let res = hyp::doorbell_receive(c, 1);
                self.r.expect_err(
                    "rights-doorbell-receive",
                    &res,
                    Error::CspaceInsufficientRights,
                );
                let res = hyp::doorbell_mask(c, 1, 0);
                self.r.expect_err(
                    "rights-doorbell-mask",
                    &res,
                    Error::CspaceInsufficientRights,
                );
                self.delete(c);
            }
            self.delete(d);
        }
        // A copy keeping none of the cap's rights is refused. (This VM's partition and VIC caps
        // hold one right each, so no weaker copies of them exist to test with.)
        for (name, cap, mask) in [
            (
                "rights-copy-empty-vic",
                self.vic,
                !VicRights::BIND_SOURCE.bits(),
            ),
            (
                "rights-copy-empty-partition",
                self.partition,
                !PartitionRights::OBJECT_CREATE.bits(),
            ),
            ("rights-copy-empty-msgqueue", q, 0),
        ] {
            let res = hyp::cspace_copy_cap_from(self.cspace, cap, self.cspace, mask);
            self.r
                .expect_err(name, &res, Error::CspaceInsufficientRights);
            if let Ok(c) = res {
                self.delete(c);
            }
        }
        if let Some(cs) = self.copy(check, self.cspace, !CspaceRights::CAP_CREATE.bits()) {
            let res = hyp::partition_create_doorbell(self.partition, cs);
            self.r
                .expect_err("rights-dest-cspace", &res, Error::CspaceInsufficientRights);
            if let Ok(c) = res {
                self.delete(c);
            }
            self.delete(cs);
        }
        self.delete(q);
    }

    fn deleted_caps(&mut self) {
        let check = "deleted";
        let Some(d) = self.db(check) else { return };
        if let Some(c) = self.copy(check, d, u32::MAX) {
            let res = hyp::cspace_delete_cap_from(self.cspace, c);
            self.r.expect_ok("delete-cap", &res);
            let res = hyp::doorbell_send(c, 1);
            self.r.expect_err("deleted-cap", &res, Error::CspaceCapNull);
            let res = hyp::cspace_delete_cap_from(self.cspace, c);
            self.r
                .expect_err("delete-twice", &res, Error::CspaceCapNull);
        }
        // The original is unaffected.
        let res = hyp::doorbell_send(d, 1);
        self.r.expect_ok("deleted-copy-original-works", &res);
        self.delete(d);
        let res = hyp::doorbell_send(d, 1);
        self.r
            .expect_err("deleted-master", &res, Error::CspaceCapNull);
    }

    fn revoked_caps(&mut self) {
        let check = "revoke";
        let Some(q) = self.mq(check) else { return };
        let copies = [self.copy(check, q, u32::MAX), self.copy(check, q, u32::MAX)];
        if let Some(c) = copies[0] {
            let res = hyp::cspace_revoke_caps_from(self.cspace, c);
            self.r.expect_err(
                "revoke-from-non-master",
                &res,
                Error::CspaceInsufficientRights,
            );
        }
        let res = hyp::cspace_revoke_caps_from(self.cspace, q);
        self.r.expect_ok("revoke-caps", &res);
        let buf = [3u8; 8];
        for (i, c) in copies.iter().enumerate() {
            let Some(c) = *c else { continue };
            let (res, _) = hyp::msgqueue_send_slice(c, &buf, 0);
            let name = if i == 0 {
                "revoked-cap"
            } else {
                "revoked-cap-2"
            };
            self.r.expect_err(name, &res, Error::CspaceCapRevoked);
            if i == 0 {
                let res = hyp::cspace_delete_cap_from(self.cspace, c);
                self.r.expect_ok("delete-revoked-cap", &res);
            } else {
                self.delete(c);
            }
        }
        let (res, _) = hyp::msgqueue_send_slice(q, &buf, 0);
        self.r.expect_ok("revoke-master-works", &res);
        let mut rb = [0u8; SIZE];
        let (res, _) = hyp::msgqueue_receive_into(q, &mut rb);
        self.r.check(
            "revoke-master-receive",
            res == Ok(8) && rb[..8] == buf,
            format_args!("got={} size={}", hyp::code(&res), res.unwrap_or(0)),
        );
        self.delete(q);
    }

    fn configure_args(&mut self) {
        let check = "configure";
        let Some(q) = self.mq_inactive(check, false) else {
            return;
        };
        let info = |depth: u32, max_msg_size: usize| {
            CreateInfo {
                depth,
                max_msg_size,
            }
            .encode()
        };
        let cases = [
            ("configure-depth-0", info(0, SIZE)),
            ("configure-depth-256", info(MAX_DEPTH + 1, SIZE)),
            ("configure-size-0", info(DEPTH, 0)),
            ("configure-size-1024", info(DEPTH, MAX_MSG_SIZE + 1)),
            ("configure-all-ones", u64::MAX),
        ];
        for (name, raw) in cases {
            let res = hyp::msgqueue_configure_raw(q, raw);
            self.r.expect_err(name, &res, Error::ArgumentInvalid);
        }
        // Gunyah reads only the two 16-bit fields of create_info: bits 63:32 are ignored.
        let res =
            hyp::msgqueue_configure_raw(q, info(DEPTH, SIZE) | 0xa5a5_0000_0000_0000 | 1 << 32);
        self.r.expect_ok("configure-reserved-bits-ignored", &res);
        // In INIT a queue can be configured again: the largest valid configuration (not
        // activated, so no memory is taken).
        let res = hyp::msgqueue_configure(q, MAX_DEPTH, MAX_MSG_SIZE);
        self.r.expect_ok("configure-max", &res);
        self.delete(q);
    }

    fn lifecycle(&mut self) {
        let check = "lifecycle";
        if let Some(q) = self.mq_inactive(check, false) {
            let res = hyp::object_activate(q);
            self.r
                .expect_err("activate-unconfigured", &res, Error::ObjectConfig);
            self.delete(q);
        }
        if let Some(q) = self.mq_inactive(check, true) {
            let buf = [4u8; 8];
            let (res, _) = hyp::msgqueue_send_slice(q, &buf, 0);
            self.r.expect_err("send-inactive", &res, Error::ObjectState);
            let res = hyp::object_activate(q);
            self.r.expect_ok("activate", &res);
            let res = hyp::object_activate(q);
            self.r
                .expect_err("activate-twice", &res, Error::ObjectState);
            let res = hyp::msgqueue_configure(q, DEPTH, SIZE);
            self.r
                .expect_err("configure-after-activate", &res, Error::ObjectState);
            self.delete(q);
        }
        if let Ok(d) = hyp::partition_create_doorbell(self.partition, self.cspace) {
            let res = hyp::doorbell_send(d, 1);
            self.r
                .expect_err("doorbell-send-inactive", &res, Error::ObjectState);
            self.delete(d);
        }
    }

    fn activate_from(&mut self) {
        let d = match hyp::partition_create_doorbell(self.partition, self.cspace) {
            Ok(d) => d,
            Err(e) => return self.setup_failed("activate-from", "partition_create_doorbell", e),
        };
        let res = hyp::object_activate_from(self.partition, d);
        self.r.expect_err(
            "activate-from-wrong-type",
            &res,
            Error::CspaceWrongObjectType,
        );
        let res = hyp::object_activate_from(CapId(u64::MAX), d);
        self.r
            .expect_err("activate-from-null", &res, Error::CspaceCapNull);
        let res = hyp::object_activate_from(self.cspace, d);
        self.r.expect_ok("activate-from", &res);
        let res = hyp::doorbell_send(d, 1);
        self.r.expect_ok("activate-from-active", &res);
        let res = hyp::object_activate_from(self.cspace, d);
        self.r
            .expect_err("activate-from-twice", &res, Error::ObjectState);
        self.delete(d);
    }

    fn sizes_full_empty(&mut self) {
        let Some(q) = self.mq("sizes") else { return };
        let buf = [5u8; SIZE + 1];
        let va = buf.as_ptr() as u64;
        let (res, _) = hyp::msgqueue_send(q, 0, va, 0);
        self.r.expect_err("send-size-0", &res, Error::ArgumentSize);
        let (res, _) = hyp::msgqueue_send(q, SIZE + 1, va, 0);
        self.r
            .expect_err("send-size-max-plus-1", &res, Error::ArgumentSize);
        let (res, _) = hyp::msgqueue_send(q, 1 << 40, va, 0);
        self.r
            .expect_err("send-size-huge", &res, Error::ArgumentSize);
        let mut rb = [0u8; SIZE];
        let (res, not_empty) = hyp::msgqueue_receive_into(q, &mut rb);
        self.r.check(
            "receive-empty",
            res == Err(Error::MsgqueueEmpty) && !not_empty,
            format_args!(
                "got={} want=60 not_empty={not_empty} (rejected sends queued nothing)",
                hyp::code(&res)
            ),
        );

        let mut flags = [false; DEPTH as usize];
        let mut sent_ok = true;
        for f in flags.iter_mut() {
            let (res, not_full) = hyp::msgqueue_send(q, SIZE, va, 0);
            sent_ok &= res.is_ok();
            *f = not_full;
        }
        let want_flags =
            flags[..DEPTH as usize - 1].iter().all(|&f| f) && !flags[DEPTH as usize - 1];
        self.r.check(
            "send-fill",
            sent_ok && want_flags,
            format_args!("{DEPTH} sends ok={sent_ok} not_full={flags:?}"),
        );
        let (res, not_full) = hyp::msgqueue_send(q, SIZE, va, 0);
        self.r.check(
            "send-full",
            res == Err(Error::MsgqueueFull) && !not_full,
            format_args!("got={} want=61 not_full={not_full}", hyp::code(&res)),
        );
        let (res, not_empty) = hyp::msgqueue_receive_into(q, &mut rb);
        self.r.check(
            "receive-from-full",
            res == Ok(SIZE) && not_empty,
            format_args!(
                "got={} size={} not_empty={not_empty}",
                hyp::code(&res),
                res.unwrap_or(0)
            ),
        );
        let res = hyp::msgqueue_flush(q);
        self.r.expect_ok("flush", &res);
        let (res, _) = hyp::msgqueue_receive_into(q, &mut rb);
        self.r
            .expect_err("receive-after-flush", &res, Error::MsgqueueEmpty);
        self.delete(q);
    }

    fn small_buffer(&mut self) {
        let Some(q) = self.mq("small-buffer") else {
            return;
        };
        let mut msg = [0u8; SIZE];
        pattern(&mut msg, 0x31);
        let (res, _) = hyp::msgqueue_send_slice(q, &msg, 0);
        if res.is_err() {
            self.r.expect_ok("receive-small-buffer-setup", &res);
        } else {
            let mut small = [0u8; 16];
            let (res, _) = hyp::msgqueue_receive_into(q, &mut small);
            self.r.expect_any(
                "receive-small-buffer",
                &res,
                &[Error::ArgumentSize, Error::AddrOverflow],
            );
            let mut rb = [0u8; SIZE];
            let (res, not_empty) = hyp::msgqueue_receive_into(q, &mut rb);
            self.r.check(
                "receive-small-buffer-kept",
                res == Ok(SIZE) && rb == msg && !not_empty,
                format_args!(
                    "got={} size={} same={} not_empty={not_empty}",
                    hyp::code(&res),
                    res.unwrap_or(0),
                    rb == msg
                ),
            );
        }
        self.delete(q);
    }

    fn roundtrips(&mut self) {
        let Some(q) = self.mq("roundtrip") else {
            return;
        };
        let mut msg = [0u8; 37];
        pattern(&mut msg, 0x52);
        let (res, not_full) = hyp::msgqueue_send_slice(q, &msg, 0);
        let mut rb = [0u8; SIZE];
        let (got, not_empty) = hyp::msgqueue_receive_into(q, &mut rb);
        self.r.check(
            "roundtrip",
            res.is_ok() && not_full && got == Ok(msg.len()) && rb[..msg.len()] == msg && !not_empty,
            format_args!(
                "send={} not_full={not_full} receive={} size={} same={} not_empty={not_empty}",
                hyp::code(&res),
                hyp::code(&got),
                got.unwrap_or(0),
                rb[..msg.len()] == msg
            ),
        );
        // Unaligned buffers on both sides, and the PUSH flag.
        let mut src = [0u8; 48];
        pattern(&mut src, 0x77);
        let (res, _) = hyp::msgqueue_send_slice(q, &src[1..42], hyp::SEND_FLAG_PUSH);
        let mut dst = [0u8; 48];
        let (got, _) = hyp::msgqueue_receive_into(q, &mut dst[3..]);
        self.r.check(
            "roundtrip-unaligned-push",
            res.is_ok() && got == Ok(41) && dst[3..44] == src[1..42],
            format_args!(
                "send={} receive={} size={}",
                hyp::code(&res),
                hyp::code(&got),
                got.unwrap_or(0)
            ),
        );
        self.delete(q);
    }

    /// Buffer addresses that must give ERROR_ADDR_INVALID, as (name, VA, length); the blocks
    /// of level-1 indices 2 and 3 are mapped to IPAs without RAM for the occasion.
    fn bad_buffers(&mut self) -> ([(&'static str, u64); 9], usize) {
        let (base, size) = self.ram;
        let end = base + size;
        let mut list = [("", 0u64); 9];
        let mut n = 0;
        let mut add = |name: &'static str, va: u64| {
            list[n] = (name, va);
            n += 1;
        };
        add("unmapped", mmu::UNMAPPED_VA);
        add("ttbr1", mmu::TTBR1_VA);
        add("beyond-va-range", mmu::OUT_OF_RANGE_VA);
        // Inside the Normal block that holds the end of RAM, but past the end of RAM.
        if end + 0x10_0000 < end.next_multiple_of(mmu::BLOCK_SIZE) {
            add("past-ram-end", end + 0x10_0000);
        }
        // Whole blocks mapped to IPAs without RAM.
        for (index, ipa, name) in [
            (2usize, 0x8000_0000u64, "no-ram-block2"),
            (3, 0x1_0000_0000, "no-ram-block3"),
        ] {
            let no_ram = ipa >= end || ipa + mmu::BLOCK_SIZE <= base;
            if no_ram && let Ok(va) = mmu::map_block(index, ipa, Memory::Device) {
                add(name, va + 0x1000);
            }
        }
        add("gicd", 0x0800_0000);
        add("uart", 0x0900_0000);
        // Straddling the end of RAM: 16 bytes in, the rest out.
        add("straddle-ram-end", end - 16);
        (list, n)
    }

    fn bad_pointers(&mut self) {
        let Some(q) = self.mq("bad-pointer") else {
            return;
        };
        let (list, n) = self.bad_buffers();
        let mut name = Name::new();
        let mut msg = [0u8; SIZE];
        pattern(&mut msg, 0x13);
        let mut rb = [0u8; SIZE];
        for &(what, va) in &list[..n] {
            let (res, _) = hyp::msgqueue_send(q, SIZE, va, 0);
            let (after, _) = hyp::msgqueue_receive_into(q, &mut rb);
            let _ = hyp::msgqueue_flush(q);
            name.clear();
            name.push("send-va-");
            name.push(what);
            self.r.check(
                name.as_str(),
                res == Err(Error::AddrInvalid) && after == Err(Error::MsgqueueEmpty),
                format_args!(
                    "va={va:#x} got={} want=22 then receive={} (want 60: nothing queued)",
                    hyp::code(&res),
                    hyp::code(&after)
                ),
            );

            let (sent, _) = hyp::msgqueue_send_slice(q, &msg, 0);
            // SAFETY: `va` is not memory Rust uses: unmapped, not RAM, a device the
            // hypervisor emulates, or (straddle) the last 16 bytes of RAM, which nothing in
            // this guest uses (the image is at the bottom of RAM, the DTB 2 MiB below the top).
            let (res, _) = unsafe { hyp::msgqueue_receive(q, va, SIZE) };
            rb.fill(0);
            let (kept, _) = hyp::msgqueue_receive_into(q, &mut rb);
            let _ = hyp::msgqueue_flush(q);
            name.clear();
            name.push("receive-va-");
            name.push(what);
            self.r.check(
                name.as_str(),
                sent.is_ok()
                    && res == Err(Error::AddrInvalid)
                    && kept == Ok(msg.len())
                    && rb == msg,
                format_args!(
                    "va={va:#x} got={} want=22 then receive={} size={} same={} (message kept)",
                    hyp::code(&res),
                    hyp::code(&kept),
                    kept.unwrap_or(0),
                    rb == msg
                ),
            );
        }
        let _ = mmu::unmap_block(2);
        let _ = mmu::unmap_block(3);
        self.delete(q);
    }

    fn reserved_args(&mut self) {
        let Some(q) = self.mq("reserved-args") else {
            return;
        };
        let mut msg = [0u8; 8];
        pattern(&mut msg, 0x44);
        let va = msg.as_ptr() as u64;
        let mut rb = [0u8; SIZE];
        let send = HypCall::MsgqueueSend.number();

        let r = hyp::native(send, [q.0, 8, va, 0, 1, 0, 0, 0]);
        let (after, _) = hyp::msgqueue_receive_into(q, &mut rb);
        self.native_check("native-send-res0", r, Error::ArgumentInvalid.to_register());
        self.r.expect_err(
            "native-send-res0-nothing-queued",
            &after,
            Error::MsgqueueEmpty,
        );

        let r = hyp::native(send, [q.0, 8, va, 0, 0, 0, 0, 0]);
        let (after, _) = hyp::msgqueue_receive_into(q, &mut rb);
        self.native_check("native-send", r, 0);
        self.r.check(
            "native-send-received",
            after == Ok(8) && rb[..8] == msg,
            format_args!("got={} size={}", hyp::code(&after), after.unwrap_or(0)),
        );

        let r = hyp::smccc(HypCall::MsgqueueSend, &[q.0, 8, va, 0, 0xdead]);
        let (after, _) = hyp::msgqueue_receive_into(q, &mut rb);
        self.r.check(
            "smccc-send-res0-ignored",
            r[0] == 0 && after == Ok(8) && rb[..8] == msg,
            format_args!(
                "got={} then receive={} (SMCCC does not check reserved arguments)",
                r[0] as i64,
                hyp::code(&after)
            ),
        );

        let cfg = HypCall::MsgqueueConfigureSend.number();
        let unchanged = THRESHOLD_UNCHANGED;
        let hold = HOLDOFF_UNCHANGED;
        let r = hyp::native(cfg, [q.0, unchanged, hold, 0, 0, 0, 0, 0]);
        self.native_check(
            "native-configure-send-res1",
            r,
            Error::ArgumentInvalid.to_register(),
        );
        let r = hyp::native(cfg, [q.0, unchanged, hold, hyp::RES1, 0, 0, 0, 0]);
        self.native_check("native-configure-send", r, 0);
        let r = hyp::smccc(HypCall::MsgqueueConfigureSend, &[q.0, unchanged, hold, 0]);
        self.r.check(
            "smccc-configure-send-res1-ignored",
            r[0] == 0,
            format_args!("got={} want=0", r[0] as i64),
        );

        let r = hyp::native(HypCall::MsgqueueFlush.number(), [q.0, 7, 0, 0, 0, 0, 0, 0]);
        self.native_check("native-flush-res0", r, Error::ArgumentInvalid.to_register());

        if let Some(d) = self.db("reserved-args") {
            let r = hyp::native(HypCall::DoorbellSend.number(), [d.0, 1, 5, 0, 0, 0, 0, 0]);
            self.native_check(
                "native-doorbell-send-res0",
                r,
                Error::ArgumentInvalid.to_register(),
            );
            let flags = hyp::doorbell_receive(d, !0);
            self.r.check(
                "native-doorbell-send-res0-no-effect",
                flags == Ok(0),
                format_args!(
                    "flags: err={} value={:#x}",
                    hyp::code(&flags),
                    flags.unwrap_or(0)
                ),
            );
            self.delete(d);
        }
        if let Some(inactive) = self.mq_inactive("reserved-args", true) {
            let r = hyp::native(
                HypCall::ObjectActivate.number(),
                [inactive.0, 1, 0, 0, 0, 0, 0, 0],
            );
            self.native_check(
                "native-activate-res0",
                r,
                Error::ArgumentInvalid.to_register(),
            );
            let res = hyp::object_activate(inactive);
            self.r.expect_ok("native-activate-res0-still-init", &res);
            self.delete(inactive);
        }
        self.delete(q);
    }

    fn native_check(&mut self, name: &str, r: Option<[u64; 8]>, want: u64) {
        match r {
            Some(r) => self.r.check(
                name,
                r[0] == want,
                format_args!("got={} want={}", r[0] as i64, want as i64),
            ),
            None => self
                .r
                .check(name, false, format_args!("no native stub for this number")),
        };
    }

    fn thresholds(&mut self) {
        let Some(q) = self.mq("thresholds") else {
            return;
        };
        let depth = u64::from(DEPTH);
        let res = hyp::msgqueue_configure_send(q, THRESHOLD_UNCHANGED, 0);
        self.r
            .expect_err("configure-send-holdoff", &res, Error::Unimplemented);
        let res = hyp::msgqueue_configure_send(q, depth, HOLDOFF_UNCHANGED);
        self.r.expect_err(
            "configure-send-threshold-depth",
            &res,
            Error::ArgumentInvalid,
        );
        let res = hyp::msgqueue_configure_send(q, depth - 1, HOLDOFF_UNCHANGED);
        self.r.expect_ok("configure-send-threshold", &res);
        let res = hyp::msgqueue_configure_receive(q, 0, HOLDOFF_UNCHANGED);
        self.r.expect_err(
            "configure-receive-threshold-0",
            &res,
            Error::ArgumentInvalid,
        );
        let res = hyp::msgqueue_configure_receive(q, depth + 1, HOLDOFF_UNCHANGED);
        self.r.expect_err(
            "configure-receive-threshold-past-depth",
            &res,
            Error::ArgumentInvalid,
        );
        let res = hyp::msgqueue_configure_receive(q, THRESHOLD_MAXIMUM, HOLDOFF_UNCHANGED);
        self.r
            .expect_ok("configure-receive-threshold-maximum", &res);
        let res = hyp::msgqueue_configure_receive(q, 1, 5);
        self.r
            .expect_err("configure-receive-holdoff", &res, Error::Unimplemented);
        self.delete(q);
    }

    fn unknown_calls(&mut self) {
        let want = Error::Unimplemented.to_register();
        let mut name = Name::new();
        for n in UNKNOWN_NUMBERS {
            let r = hyp::smccc_number(n, &[0; 7]);
            name.clear();
            name.push("unknown-smccc-");
            name.push_hex(n);
            self.r.check(
                name.as_str(),
                r[0] == want,
                format_args!(
                    "fid={:#x} got={} want=-1",
                    0xC600_8000u32 | u32::from(n),
                    r[0] as i64
                ),
            );
            let r = hyp::native(n, [0; 8]);
            name.clear();
            name.push("unknown-native-");
            name.push_hex(n);
            self.native_check(name.as_str(), r, want);
        }
    }

    fn doorbell_args(&mut self) {
        let Some(d) = self.db("doorbell-args") else {
            return;
        };
        let res = hyp::doorbell_receive(d, 0);
        self.r
            .expect_err("doorbell-receive-clear-0", &res, Error::ArgumentInvalid);
        let res = hyp::doorbell_send(d, 0);
        self.r
            .expect_err("doorbell-send-flags-0", &res, Error::ArgumentInvalid);
        let a = hyp::doorbell_send(d, 0b101);
        let b = hyp::doorbell_receive(d, 0b001);
        let c = hyp::doorbell_receive(d, !0);
        self.r.check(
            "doorbell-send-receive",
            a == Ok(0) && b == Ok(0b101) && c == Ok(0b100),
            format_args!(
                "send old={:?} receive(0x1) old={:?} receive(all) old={:?} (want 0, 0x5, 0x4)",
                a, b, c
            ),
        );
        let m = hyp::doorbell_mask(d, 0, 0);
        let s = hyp::doorbell_send(d, 0b1);
        let reset = hyp::doorbell_reset(d);
        let after = hyp::doorbell_receive(d, !0);
        self.r.check(
            "doorbell-reset",
            m.is_ok() && s == Ok(0) && reset.is_ok() && after == Ok(0),
            format_args!(
                "mask={} send={:?} reset={} flags_after={:?} (want 0)",
                hyp::code(&m),
                s,
                hyp::code(&reset),
                after
            ),
        );
        self.delete(d);
    }

    fn virq_binding(&mut self) {
        let check = "virq";
        let Some([v1, v2, v3]) = self.free_spis::<3>() else {
            self.r
                .check("virq-setup", false, format_args!("no three free SPIs"));
            return;
        };
        let Some(q) = self.mq(check) else { return };
        let Some(d) = self.db(check) else {
            self.delete(q);
            return;
        };
        let vic = self.vic;
        let res = hyp::msgqueue_bind_receive_virq(q, vic, v1.into());
        let bound = self.r.expect_ok("bind-receive", &res);
        let res = hyp::doorbell_bind_virq(d, vic, v1.into());
        self.r.expect_err("bind-virq-taken", &res, Error::VirqBound);
        let res = hyp::msgqueue_bind_send_virq(q, vic, v1.into());
        self.r
            .expect_err("bind-virq-taken-same-queue", &res, Error::VirqBound);
        let res = hyp::msgqueue_bind_receive_virq(q, vic, v2.into());
        self.r
            .expect_err("bind-source-already-bound", &res, Error::VirqBound);
        for (name, virq) in [
            ("bind-uart-intid", u64::from(UART_INTID)),
            ("bind-intid-1020", 1020),
            ("bind-ppi-16", 16),
            ("bind-sgi-0", 0),
            ("bind-spi-past-vgic", 96),
        ] {
            let res = hyp::doorbell_bind_virq(d, vic, virq);
            self.r.expect_err(name, &res, Error::ArgumentInvalid);
            if res.is_ok() {
                let _ = hyp::doorbell_unbind_virq(d);
            }
        }
        let res = hyp::doorbell_unbind_virq(d);
        self.r
            .expect_err("unbind-unbound-doorbell", &res, Error::VirqNotBound);
        let res = hyp::msgqueue_unbind_send_virq(q);
        self.r
            .expect_err("unbind-unbound-send", &res, Error::VirqNotBound);

        // The bound receive vIRQ fires when a message arrives.
        if bound {
            gic::enable(v1, true, count_irq);
            let before = SELF_IRQS.load(Ordering::Acquire);
            let mut msg = [0u8; 24];
            pattern(&mut msg, 0x66);
            let (sent, _) = hyp::msgqueue_send_slice(q, &msg, 0);
            let fired = time::wait_until(2_000_000, || SELF_IRQS.load(Ordering::Acquire) > before);
            let mut rb = [0u8; SIZE];
            let (got, _) = hyp::msgqueue_receive_into(q, &mut rb);
            self.r.check(
                "self-bound-receive-irq",
                sent.is_ok() && fired && got == Ok(msg.len()) && rb[..msg.len()] == msg,
                format_args!(
                    "virq={v1} send={} irqs={} receive={} size={}",
                    hyp::code(&sent),
                    gic::count(v1),
                    hyp::code(&got),
                    got.unwrap_or(0)
                ),
            );
            gic::disable(v1);
            let res = hyp::msgqueue_unbind_receive_virq(q);
            self.r.expect_ok("unbind-receive", &res);
            let res = hyp::msgqueue_unbind_receive_virq(q);
            self.r.expect_err("unbind-twice", &res, Error::VirqNotBound);
        }

        // A doorbell on a freed vIRQ, firing too.
        let res = hyp::doorbell_bind_virq(d, vic, v1.into());
        if self.r.expect_ok("bind-after-unbind", &res) {
            gic::enable(v1, true, count_irq);
            let before = SELF_IRQS.load(Ordering::Acquire);
            let sent = hyp::doorbell_send(d, 1);
            let fired = time::wait_until(2_000_000, || SELF_IRQS.load(Ordering::Acquire) > before);
            let flags = hyp::doorbell_receive(d, !0);
            self.r.check(
                "self-bound-doorbell-irq",
                sent.is_ok() && fired && flags == Ok(1),
                format_args!(
                    "virq={v1} send={} irqs={} flags={:?}",
                    hyp::code(&sent),
                    gic::count(v1),
                    flags
                ),
            );
            gic::disable(v1);
            let res = hyp::doorbell_unbind_virq(d);
            self.r.expect_ok("unbind-doorbell", &res);
        }
        // Deleting a bound object frees its vIRQ.
        let res = hyp::msgqueue_bind_send_virq(q, vic, v3.into());
        self.r.expect_ok("bind-send", &res);
        self.delete(q);
        let res = hyp::doorbell_bind_virq(d, vic, v3.into());
        self.r.expect_ok("bind-after-delete", &res);
        let _ = hyp::doorbell_unbind_virq(d);
        self.delete(d);
    }

    fn cspace_full(&mut self) {
        let check = "cspace-full";
        let cs = match hyp::partition_create_cspace(self.partition, self.cspace) {
            Ok(c) => c,
            Err(e) => return self.setup_failed(check, "partition_create_cspace", e),
        };
        let res = hyp::object_activate(cs);
        self.r
            .expect_err("cspace-activate-unconfigured", &res, Error::ObjectConfig);
        let res = hyp::cspace_configure(cs, u32::MAX);
        self.r
            .expect_err("cspace-configure-too-big", &res, Error::ArgumentInvalid);
        let conf = hyp::cspace_configure(cs, 4);
        let act = hyp::object_activate(cs);
        if !self.r.check(
            "cspace-configure-activate",
            conf.is_ok() && act.is_ok(),
            format_args!(
                "configure(4)={} activate={}",
                hyp::code(&conf),
                hyp::code(&act)
            ),
        ) {
            self.delete(cs);
            return;
        }
        let res = hyp::cspace_configure(cs, 8);
        self.r
            .expect_err("cspace-configure-after-activate", &res, Error::ObjectState);
        let Some(d) = self.db(check) else {
            self.delete(cs);
            return;
        };
        let mut copies = [CapId::INVALID; 8];
        let mut fit = 0;
        let mut last = Ok(CapId::INVALID);
        for slot in copies.iter_mut() {
            last = hyp::cspace_copy_cap_from(self.cspace, d, cs, u32::MAX);
            match last {
                Ok(c) => {
                    *slot = c;
                    fit += 1;
                }
                Err(_) => break,
            }
        }
        self.r.check(
            "cspace-full",
            fit == 4 && last == Err(Error::CspaceFull),
            format_args!("fit={fit} (want 4) then got={} want=54", hyp::code(&last)),
        );
        if fit > 0 {
            let res = hyp::cspace_delete_cap_from(cs, copies[0]);
            let again = hyp::cspace_copy_cap_from(self.cspace, d, cs, u32::MAX);
            self.r.check(
                "cspace-full-delete-frees",
                res.is_ok() && again.is_ok(),
                format_args!("delete={} copy={}", hyp::code(&res), hyp::code(&again)),
            );
        }
        self.delete(d);
        self.delete(cs);
    }

    fn spare_link(&mut self, tx: CapId, rx: CapId) {
        let mut rb = [0u8; 16];
        let (res, _) = hyp::msgqueue_receive_into(tx, &mut rb);
        self.r
            .expect_err("spare-tx-receive", &res, Error::CspaceInsufficientRights);
        let buf = [9u8; 8];
        let (res, _) = hyp::msgqueue_send_slice(rx, &buf, 0);
        self.r
            .expect_err("spare-rx-send", &res, Error::CspaceInsufficientRights);
        let res = hyp::msgqueue_configure(tx, DEPTH, SIZE);
        self.r
            .expect_err("spare-configure", &res, Error::CspaceInsufficientRights);
        if let Some([spi]) = self.free_spis::<1>() {
            let res = hyp::msgqueue_bind_send_virq(tx, self.vic, spi.into());
            self.r
                .expect_err("spare-bind-send", &res, Error::CspaceInsufficientRights);
        }
        if let Some(c) = self.copy("spare", tx, u32::MAX) {
            let (res, _) = hyp::msgqueue_receive_into(c, &mut rb);
            self.r
                .expect_err("spare-copy-no-grow", &res, Error::CspaceInsufficientRights);
            self.delete(c);
        }
    }

    /// Fill the partition with big queues until ERROR_NOMEM; returns how many fit and the
    /// error that stopped it. Their caps are left in `caps`.
    fn fill(&mut self, caps: &mut [CapId; NOMEM_TRIES]) -> (usize, Result<(), Error>) {
        for (i, slot) in caps.iter_mut().enumerate() {
            let q = match hyp::partition_create_msgqueue(self.partition, self.cspace) {
                Ok(q) => q,
                Err(e) => return (i, Err(e)),
            };
            let res = hyp::msgqueue_configure(q, MAX_DEPTH, MAX_MSG_SIZE)
                .and_then(|()| hyp::object_activate(q));
            if let Err(e) = res {
                self.delete(q);
                return (i, Err(e));
            }
            *slot = q;
        }
        (NOMEM_TRIES, Ok(()))
    }

    /// Delete every cap in `caps`; the first error, if any.
    fn delete_all(&mut self, caps: &[CapId]) -> Result<(), Error> {
        let mut out = Ok(());
        for &c in caps {
            let res = hyp::cspace_delete_cap_from(self.cspace, c);
            if out.is_ok() {
                out = res;
            }
        }
        out
    }

    fn nomem(&mut self) {
        let mut caps = [CapId::INVALID; NOMEM_TRIES];
        let (fit, stop) = self.fill(&mut caps);
        self.r.check(
            "nomem",
            fit >= 1 && stop == Err(Error::Nomem),
            format_args!(
                "{fit} queues of 255x1023 fit, then got={} want=10",
                hyp::code(&stop)
            ),
        );
        let res = self.delete_all(&caps[..fit]);
        self.r.expect_ok("nomem-delete-all", &res);
        let (fit_again, stop_again) = self.fill(&mut caps);
        self.r.check(
            "nomem-refund",
            fit_again >= 1 && stop_again == Err(Error::Nomem),
            format_args!(
                "after deleting them {fit_again} fit again (before: {fit}), then got={}",
                hyp::code(&stop_again)
            ),
        );
        let _ = self.delete_all(&caps[..fit_again]);
    }
}

/// vIRQs of self-bound sources taken.
static SELF_IRQS: AtomicU32 = AtomicU32::new(0);

fn count_irq(_intid: u32) {
    SELF_IRQS.fetch_add(1, Ordering::AcqRel);
}

/// A check name built from parts (no allocator).
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

    fn clear(&mut self) {
        self.len = 0;
    }

    fn push(&mut self, s: &str) {
        for &b in s.as_bytes() {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
    }

    fn push_hex(&mut self, v: u16) {
        self.push("0x");
        let digits = b"0123456789abcdef";
        for shift in [4u32, 0] {
            let d = digits[usize::from((v >> shift) as u8 & 0xf)];
            if self.len < self.buf.len() {
                self.buf[self.len] = d;
                self.len += 1;
            }
        }
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

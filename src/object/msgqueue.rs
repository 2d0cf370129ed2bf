//! The message-queue state machine (pure): the bounded FIFO of messages, its two thresholds, and
//! what every operation asks of the queue's two interrupt sources.
//!
//! This module owns the queue's storage and counters and nothing else: no locks, no capability
//! checks, no guest memory, no object lifecycle (the object wrapper in [`super::ipc`] checks the
//! INIT/ACTIVE state before calling in). Every function is total on hostile input: guest
//! registers arrive as `u64` and nothing here panics.
//!
//! # Semantics (Gunyah `hyp/ipc/msgqueue`)
//!
//! Read from `src/msgqueue_common.c` (newest stored version, with atomics and explicit size
//! checks), `src/msgqueue.c`, `src/hypercalls.c`, `msgqueue.tc`, the hypercall ABI in
//! `hyp/interfaces/msgqueue/msgqueue.hvc` and `hyp/mem/useraccess/aarch64/src/useraccess.c` (its
//! copy helpers produce two of the error codes):
//!
//! - **Configure** (`msgqueue_configure`, INIT only): depth `1..=255`, maximum message size
//!   `1..=1023`, otherwise `ARGUMENT_INVALID`.
//! - **Activate**: `OBJECT_CONFIG` unless configured; allocates `depth × (max_size + 8)` bytes
//!   (a slot is an 8-byte length then the data); thresholds start at not-full = `depth − 1`,
//!   not-empty = `1`. Activation asserts nothing.
//! - **Send**: checked in this order: queue full → `MSGQUEUE_FULL`; size > max → `ARGUMENT_SIZE`;
//!   size 0 → `ARGUMENT_SIZE` (the guest-copy helper's check); then the guest copy's own error.
//!   *Every* error returns `not_full = false`. On success the receive source is asserted if
//!   `PUSH` is set or the new count **equals** the not-empty threshold; `not_full` is
//!   `count != depth`.
//! - **Receive**: empty → `MSGQUEUE_EMPTY`; head message longer than the buffer →
//!   `ARGUMENT_SIZE` (the copy-to-guest helper's check); then the copy's own error. Every error
//!   returns size 0 and `not_empty = false`, and leaves the message queued. On success the send
//!   source is asserted if the new count **equals** the not-full threshold; `not_empty` is
//!   `count != 0`.
//! - **Flush**: if the queue held messages, it empties it, asserts the send source and clears
//!   the receive source; an empty queue signals nothing.
//! - **Configure send** (`not_full_thres`, `not_full_holdoff`): holdoff ≠ −1 → `UNIMPLEMENTED`
//!   (checked first); threshold ≥ depth and ≠ −1 → `ARGUMENT_INVALID`; −1 changes nothing;
//!   otherwise the threshold is set and the send source is asserted if `count <= threshold`,
//!   else cleared.
//! - **Configure receive**: holdoff ≠ −1 → `UNIMPLEMENTED`; threshold 0, or > depth and neither
//!   −1 nor −2 → `ARGUMENT_INVALID`; −1 changes nothing; −2 sets the threshold to `depth` and
//!   (unlike every other value) does not re-evaluate the source; otherwise the threshold is set
//!   and the receive source is asserted if `count >= threshold`, else cleared.
//! - **Pending re-checks** (the VIC asks them when the guest has taken the vIRQ): send source
//!   `count <= not_full_threshold`, receive source `count >= not_empty_threshold`.
//!
//! Signals are reported as [`VirqLine`]s: `Assert { level }` where Gunyah calls `virq_assert`
//! (`level` = the re-check after the operation), `Deassert` where it calls `virq_clear`, and
//! also `Deassert` when an operation turns the re-check from true to false without touching the
//! source (Wurley drops a level that is no longer justified instead of letting a stale pending
//! vIRQ reach the guest). Otherwise `Unchanged`.
//!
//! # Where Gunyah's source differs from `gunyah-abi.md`
//!
//! - Receive into a buffer smaller than the message: `ARGUMENT_SIZE`, not `ADDR_OVERFLOW`
//!   (`ADDR_OVERFLOW` only comes from a guest range that wraps the address space).
//! - Send and receive errors always report `not_full` / `not_empty` = false, whatever the count.
//! - Reserved bits are not checked: `msgqueue_send_flags` only reads bit 0 (`PUSH`), and
//!   `msgqueue_create_info` only bits 31:0. The wrapper checks `_res0`/`_res1` inputs only.
//! - Thresholds and holdoffs are `count_t` (32 bits): only the low 32 bits of the register
//!   count, so −1 is `0xFFFF_FFFF` as well as `u64::MAX` (Gunyah's own generated guest API
//!   passes `count_t` −1 zero-extended).
//! - A not-empty threshold of −2 (maximum) sets the threshold without asserting or clearing.

use alloc::vec::Vec;
use core::ops::Range;
use wurley_abi::Error;

use crate::object::VirqLine;

pub use wurley_abi::msgqueue::{
    CreateInfo, HOLDOFF_UNCHANGED, MAX_DEPTH, MAX_MSG_SIZE, SEND_FLAG_PUSH, THRESHOLD_MAXIMUM,
    THRESHOLD_UNCHANGED,
};

/// `count_t` −1, after truncation.
const COUNT_UNCHANGED: u32 = u32::MAX;
/// `count_t` −2, after truncation.
const COUNT_MAXIMUM: u32 = u32::MAX - 1;
/// Bytes of the length field at the start of each storage slot.
const SLOT_HEADER: usize = 8;

/// A `count_t` argument as Gunyah sees it: the low 32 bits of the register.
fn count_t(raw: u64) -> u32 {
    // Truncation intended: the C prototype takes a 32-bit `count_t`.
    (raw & 0xFFFF_FFFF) as u32
}

/// The line for a source the operation did not assert or clear: dropped if its re-check just
/// went from pending to not pending.
fn settle(before: bool, after: bool) -> VirqLine {
    if before && !after {
        VirqLine::Deassert
    } else {
        VirqLine::Unchanged
    }
}

/// What the interrupt sources must do after an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signals {
    /// The sender's "not full" source.
    pub send: VirqLine,
    /// The receiver's "not empty" source.
    pub receive: VirqLine,
}

impl Signals {
    /// Neither source changes.
    pub const NONE: Signals = Signals {
        send: VirqLine::Unchanged,
        receive: VirqLine::Unchanged,
    };
}

/// A successful send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendOk {
    /// The queue still has room for another message (`X1` of `msgqueue_send`).
    pub not_full: bool,
    /// What the interrupt sources must do.
    pub signals: Signals,
}

/// A successful receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiveOk {
    /// Bytes delivered (`X1` of `msgqueue_receive`).
    pub size: usize,
    /// More messages remain (`X2` of `msgqueue_receive`).
    pub not_empty: bool,
    /// What the interrupt sources must do.
    pub signals: Signals,
}

/// A message queue's state: configuration, storage, counters and thresholds.
///
/// Storage is one flat buffer of `depth` slots allocated at [`MsgQueue::activate`]; a slot is an
/// 8-byte little-endian length followed by `max_msg_size` data bytes. Nothing allocates after
/// activation.
#[derive(Debug, Default)]
pub struct MsgQueue {
    /// Configured depth (0 until configured).
    depth: u32,
    /// Configured maximum message size (0 until configured).
    max_msg_size: usize,
    /// The slots; empty until activated.
    storage: Vec<u8>,
    /// Storage allocated and counters initialised.
    active: bool,
    /// Slot index of the oldest message.
    head: u32,
    /// Messages queued, `0..=depth`.
    count: u32,
    /// Send source pending while `count <= not_full_thd`; `< depth`.
    not_full_thd: u32,
    /// Receive source pending while `count >= not_empty_thd`; `1..=depth`.
    not_empty_thd: u32,
}

impl MsgQueue {
    /// An unconfigured queue (the object's INIT/ACTIVE state is the caller's).
    pub fn new() -> MsgQueue {
        MsgQueue::default()
    }

    /// Set depth and maximum message size: `ARGUMENT_INVALID` if either is out of range,
    /// `OBJECT_STATE` once activated (the caller checks INIT first; this keeps the storage and
    /// the configuration consistent even if it does not). May be repeated before activation.
    pub fn configure(&mut self, info: CreateInfo) -> Result<(), Error> {
        if self.active {
            return Err(Error::ObjectState);
        }
        info.validate()?;
        self.depth = info.depth;
        self.max_msg_size = info.max_msg_size;
        Ok(())
    }

    /// Whether [`MsgQueue::configure`] has succeeded.
    pub fn is_configured(&self) -> bool {
        self.depth != 0 && self.max_msg_size != 0
    }

    /// Whether [`MsgQueue::activate`] has succeeded.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Bytes [`MsgQueue::activate`] allocates: `depth × (max_msg_size + 8)` (0 if unconfigured).
    pub fn storage_bytes(&self) -> usize {
        // Both factors are bounded by `configure` (at most 255 × 1031).
        (self.depth as usize).saturating_mul(self.max_msg_size.saturating_add(SLOT_HEADER))
    }

    /// Allocate the storage and start empty with the default thresholds (not-full `depth − 1`,
    /// not-empty 1). `OBJECT_CONFIG` if not configured, `NOMEM` if the allocation fails,
    /// `OBJECT_STATE` if already active.
    pub fn activate(&mut self) -> Result<(), Error> {
        if self.active {
            return Err(Error::ObjectState);
        }
        if !self.is_configured() {
            return Err(Error::ObjectConfig);
        }
        let bytes = self.storage_bytes();
        let mut storage = Vec::new();
        storage.try_reserve_exact(bytes).map_err(|_| Error::Nomem)?;
        storage.resize(bytes, 0);
        self.storage = storage;
        self.head = 0;
        self.count = 0;
        self.not_full_thd = self.depth - 1;
        self.not_empty_thd = 1;
        self.active = true;
        Ok(())
    }

    /// Configured depth (0 until configured).
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Configured maximum message size (0 until configured).
    pub fn max_msg_size(&self) -> usize {
        self.max_msg_size
    }

    /// Messages queued.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The not-full threshold (meaningful once active).
    pub fn not_full_threshold(&self) -> u32 {
        self.not_full_thd
    }

    /// The not-empty threshold (meaningful once active).
    pub fn not_empty_threshold(&self) -> u32 {
        self.not_empty_thd
    }

    /// The checks a send of `size` bytes must pass, in Gunyah's order: full queue
    /// (`MSGQUEUE_FULL`), then size over the maximum or zero (`ARGUMENT_SIZE`). A caller that
    /// copies the message from guest memory first should call this before the copy, so that the
    /// copy's own errors come after these as in Gunyah. `OBJECT_STATE` if not active.
    /// The `bool` is `not_full` for the reply, false on every error as in Gunyah.
    pub fn check_send(&self, size: usize) -> Result<(), (Error, bool)> {
        if !self.active {
            return Err((Error::ObjectState, false));
        }
        if self.count >= self.depth {
            return Err((Error::MsgqueueFull, false));
        }
        if size > self.max_msg_size || size == 0 {
            return Err((Error::ArgumentSize, false));
        }
        Ok(())
    }

    /// Byte range of slot `index`'s length field.
    fn header_range(&self, index: u32) -> Range<usize> {
        // `index < depth <= 255` and the stride is at most 1031: no overflow is possible, and
        // saturation keeps it total anyway (an out-of-range slice is then refused by `get`).
        let off = (index as usize).saturating_mul(self.max_msg_size + SLOT_HEADER);
        off..off.saturating_add(SLOT_HEADER)
    }

    /// Byte range of the first `len` data bytes of slot `index`.
    fn body_range(&self, index: u32, len: usize) -> Range<usize> {
        let start = self.header_range(index).end;
        start..start.saturating_add(len)
    }

    /// Queue `data` at the tail. `flags`: bit 0 is [`SEND_FLAG_PUSH`]; other bits are ignored,
    /// as in Gunyah. Errors as [`MsgQueue::check_send`], with the state unchanged.
    pub fn send(&mut self, data: &[u8], flags: u64) -> Result<SendOk, (Error, bool)> {
        self.check_send(data.len())?;
        let push = flags & SEND_FLAG_PUSH != 0;
        // `count < depth` and `head < depth`, so this is a free slot.
        let tail = (self.head + self.count) % self.depth;
        let (header, body) = (self.header_range(tail), self.body_range(tail, data.len()));
        // The ranges are in bounds while active; `Failure` only guards the invariant.
        let Some(header) = self.storage.get_mut(header) else {
            return Err((Error::Failure, false));
        };
        header.copy_from_slice(&(data.len() as u64).to_le_bytes());
        let Some(body) = self.storage.get_mut(body) else {
            return Err((Error::Failure, false));
        };
        body.copy_from_slice(data);

        let (send_before, receive_before) = (self.send_pending(), self.receive_pending());
        self.count += 1;
        let receive = if push || self.count == self.not_empty_thd {
            VirqLine::Assert {
                level: self.receive_pending(),
            }
        } else {
            settle(receive_before, self.receive_pending())
        };
        Ok(SendOk {
            not_full: self.count != self.depth,
            signals: Signals {
                send: settle(send_before, self.send_pending()),
                receive,
            },
        })
    }

    /// Receive the head message into a buffer of `buf_size` bytes. `deliver` copies the bytes to
    /// the guest; if it fails, its error is returned and the message stays queued.
    ///
    /// Errors, in Gunyah's order: `OBJECT_STATE` if not active, `MSGQUEUE_EMPTY`, `ARGUMENT_SIZE`
    /// if the message is longer than `buf_size`, then `deliver`'s error. The `bool` is
    /// `not_empty` for the reply, false on every error as in Gunyah.
    pub fn receive(
        &mut self,
        buf_size: usize,
        deliver: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<ReceiveOk, (Error, bool)> {
        if !self.active {
            return Err((Error::ObjectState, false));
        }
        if self.count == 0 {
            return Err((Error::MsgqueueEmpty, false));
        }
        let size = self
            .storage
            .get(self.header_range(self.head))
            .and_then(|h| <[u8; SLOT_HEADER]>::try_from(h).ok())
            .map(u64::from_le_bytes)
            .and_then(|s| usize::try_from(s).ok())
            .filter(|s| (1..=self.max_msg_size).contains(s));
        let Some(size) = size else {
            return Err((Error::Failure, false));
        };
        if size > buf_size {
            return Err((Error::ArgumentSize, false));
        }
        let Some(message) = self.storage.get(self.body_range(self.head, size)) else {
            return Err((Error::Failure, false));
        };
        deliver(message).map_err(|e| (e, false))?;

        let (send_before, receive_before) = (self.send_pending(), self.receive_pending());
        self.count -= 1;
        self.head = (self.head + 1) % self.depth;
        let send = if self.count == self.not_full_thd {
            VirqLine::Assert {
                level: self.send_pending(),
            }
        } else {
            settle(send_before, self.send_pending())
        };
        Ok(ReceiveOk {
            size,
            not_empty: self.count != 0,
            signals: Signals {
                send,
                receive: settle(receive_before, self.receive_pending()),
            },
        })
    }

    /// Drop every queued message. If there were any, the send source is asserted and the
    /// receive source cleared; an empty (or inactive) queue signals nothing.
    pub fn flush(&mut self) -> Signals {
        self.head = 0;
        if !self.active || self.count == 0 {
            return Signals::NONE;
        }
        self.count = 0;
        Signals {
            send: VirqLine::Assert {
                level: self.send_pending(),
            },
            receive: VirqLine::Deassert,
        }
    }

    /// `msgqueue_configure_send`: set the not-full threshold (`< depth`, or
    /// [`THRESHOLD_UNCHANGED`]). Only [`HOLDOFF_UNCHANGED`] is accepted as holdoff
    /// (`UNIMPLEMENTED` otherwise, checked first); a bad threshold is `ARGUMENT_INVALID`. Both
    /// are `count_t`: only the low 32 bits count. A new threshold asserts the send source if
    /// `count <= threshold` and clears it otherwise. `OBJECT_STATE` if not active.
    pub fn configure_send(&mut self, threshold: u64, holdoff: u64) -> Result<Signals, Error> {
        if !self.active {
            return Err(Error::ObjectState);
        }
        if count_t(holdoff) != COUNT_UNCHANGED {
            return Err(Error::Unimplemented);
        }
        let threshold = count_t(threshold);
        if threshold == COUNT_UNCHANGED {
            return Ok(Signals::NONE);
        }
        if threshold >= self.depth {
            return Err(Error::ArgumentInvalid);
        }
        self.not_full_thd = threshold;
        let send = if self.send_pending() {
            VirqLine::Assert { level: true }
        } else {
            VirqLine::Deassert
        };
        Ok(Signals {
            send,
            receive: VirqLine::Unchanged,
        })
    }

    /// `msgqueue_configure_receive`: set the not-empty threshold (`1..=depth`,
    /// [`THRESHOLD_MAXIMUM`] for `depth`, or [`THRESHOLD_UNCHANGED`]). Holdoff as for
    /// [`MsgQueue::configure_send`]. A new threshold asserts the receive source if
    /// `count >= threshold` and clears it otherwise, except that [`THRESHOLD_MAXIMUM`] only sets
    /// it (as in Gunyah; the line still drops if it is no longer pending). `OBJECT_STATE` if not
    /// active.
    pub fn configure_receive(&mut self, threshold: u64, holdoff: u64) -> Result<Signals, Error> {
        if !self.active {
            return Err(Error::ObjectState);
        }
        if count_t(holdoff) != COUNT_UNCHANGED {
            return Err(Error::Unimplemented);
        }
        let threshold = count_t(threshold);
        let receive = match threshold {
            0 => return Err(Error::ArgumentInvalid),
            COUNT_UNCHANGED => VirqLine::Unchanged,
            COUNT_MAXIMUM => {
                let before = self.receive_pending();
                self.not_empty_thd = self.depth;
                settle(before, self.receive_pending())
            }
            t if t > self.depth => return Err(Error::ArgumentInvalid),
            t => {
                self.not_empty_thd = t;
                if self.receive_pending() {
                    VirqLine::Assert { level: true }
                } else {
                    VirqLine::Deassert
                }
            }
        };
        Ok(Signals {
            send: VirqLine::Unchanged,
            receive,
        })
    }

    /// The send ("not full") source's pending re-check: `count <= not_full_threshold` (false
    /// until active).
    pub fn send_pending(&self) -> bool {
        self.active && self.count <= self.not_full_thd
    }

    /// The receive ("not empty") source's pending re-check: `count >= not_empty_threshold`
    /// (false until active).
    pub fn receive_pending(&self) -> bool {
        self.active && self.count >= self.not_empty_thd
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use alloc::vec;

    const ASSERT_HIGH: VirqLine = VirqLine::Assert { level: true };
    const ASSERT_LOW: VirqLine = VirqLine::Assert { level: false };

    fn active(depth: u32, size: usize) -> MsgQueue {
        let mut q = MsgQueue::new();
        q.configure(CreateInfo {
            depth,
            max_msg_size: size,
        })
        .unwrap();
        q.activate().unwrap();
        q
    }

    /// Receive into a large buffer, returning the bytes.
    fn recv(q: &mut MsgQueue) -> Result<(Vec<u8>, ReceiveOk), (Error, bool)> {
        let mut got = Vec::new();
        let ok = q.receive(usize::MAX, &mut |b| {
            got.extend_from_slice(b);
            Ok(())
        })?;
        Ok((got, ok))
    }

    fn sig(send: VirqLine, receive: VirqLine) -> Signals {
        Signals { send, receive }
    }

    #[test]
    fn create_info_fields() {
        let raw = 0x0123_00F0_0008u64;
        let info = CreateInfo::decode(raw).unwrap();
        assert_eq!(info.depth, 8);
        assert_eq!(info.max_msg_size, 0xF0);
        // Reserved bits 63:32 are ignored, as in Gunyah.
        assert_eq!(info.encode(), raw & 0xFFFF_FFFF);
        let info = CreateInfo::decode(u64::MAX).unwrap();
        assert_eq!((info.depth, info.max_msg_size), (0xFFFF, 0xFFFF));
        assert_eq!(info.validate(), Err(Error::ArgumentInvalid));
        for depth in [1, 2, 255] {
            for size in [1, 240, 1023] {
                let info = CreateInfo {
                    depth,
                    max_msg_size: size,
                };
                assert_eq!(CreateInfo::decode(info.encode()), Ok(info));
                assert_eq!(info.validate(), Ok(()));
            }
        }
    }

    #[test]
    fn configure_ranges() {
        let bad = [
            (0, 1),
            (256, 1),
            (0xFFFF, 1),
            (1, 0),
            (1, 1024),
            (1, 0xFFFF),
            (0, 0),
        ];
        for (depth, size) in bad {
            let mut q = MsgQueue::new();
            let info = CreateInfo {
                depth,
                max_msg_size: size,
            };
            assert_eq!(q.configure(info), Err(Error::ArgumentInvalid));
            assert!(!q.is_configured());
            assert_eq!(q.storage_bytes(), 0);
        }
        let mut q = MsgQueue::new();
        q.configure(CreateInfo {
            depth: 255,
            max_msg_size: 1023,
        })
        .unwrap();
        assert!(q.is_configured());
        assert_eq!(q.storage_bytes(), 255 * (1023 + 8));
        // Reconfiguring before activation is allowed; a failed attempt keeps the old values.
        q.configure(CreateInfo {
            depth: 8,
            max_msg_size: 240,
        })
        .unwrap();
        let bad = CreateInfo {
            depth: 0,
            max_msg_size: 240,
        };
        assert_eq!(q.configure(bad), Err(Error::ArgumentInvalid));
        assert_eq!((q.depth(), q.max_msg_size()), (8, 240));
        assert_eq!(q.storage_bytes(), 8 * 248);
    }

    #[test]
    fn activate_rules() {
        let mut q = MsgQueue::new();
        assert_eq!(q.activate(), Err(Error::ObjectConfig));
        assert!(!q.is_active());
        q.configure(CreateInfo {
            depth: 4,
            max_msg_size: 16,
        })
        .unwrap();
        q.activate().unwrap();
        assert!(q.is_active());
        assert_eq!(q.storage.len(), q.storage_bytes());
        assert_eq!(q.count(), 0);
        assert_eq!(q.not_full_threshold(), 3);
        assert_eq!(q.not_empty_threshold(), 1);
        assert!(q.send_pending());
        assert!(!q.receive_pending());
        assert_eq!(q.activate(), Err(Error::ObjectState));
        let info = CreateInfo {
            depth: 2,
            max_msg_size: 2,
        };
        assert_eq!(q.configure(info), Err(Error::ObjectState));
        assert_eq!((q.depth(), q.max_msg_size()), (4, 16));
    }

    #[test]
    fn inactive_queue_refuses_everything() {
        for configured in [false, true] {
            let mut q = MsgQueue::new();
            if configured {
                q.configure(CreateInfo {
                    depth: 2,
                    max_msg_size: 4,
                })
                .unwrap();
            }
            assert_eq!(q.check_send(1), Err((Error::ObjectState, false)));
            assert_eq!(q.send(&[1], 0), Err((Error::ObjectState, false)));
            assert_eq!(recv(&mut q), Err((Error::ObjectState, false)));
            assert_eq!(q.flush(), Signals::NONE);
            assert_eq!(q.configure_send(0, u64::MAX), Err(Error::ObjectState));
            assert_eq!(q.configure_receive(1, u64::MAX), Err(Error::ObjectState));
            assert!(!q.send_pending());
            assert!(!q.receive_pending());
            assert_eq!(q.count(), 0);
        }
    }

    #[test]
    fn send_sizes_and_full() {
        let mut q = active(2, 8);
        assert_eq!(q.send(&[], 0), Err((Error::ArgumentSize, false)));
        assert_eq!(q.send(&[0; 9], 0), Err((Error::ArgumentSize, false)));
        assert_eq!(q.check_send(usize::MAX), Err((Error::ArgumentSize, false)));
        assert_eq!(q.count(), 0);
        assert!(q.send(&[7; 8], 0).unwrap().not_full);
        let ok = q.send(&[1], 0).unwrap();
        assert!(!ok.not_full);
        // Full is checked before the size, and every error reports not_full = false.
        assert_eq!(q.send(&[1], 0), Err((Error::MsgqueueFull, false)));
        assert_eq!(q.send(&[], 0), Err((Error::MsgqueueFull, false)));
        assert_eq!(q.send(&[0; 100], 0), Err((Error::MsgqueueFull, false)));
        assert_eq!(q.check_send(1), Err((Error::MsgqueueFull, false)));
        assert_eq!(q.count(), 2);
        assert_eq!(recv(&mut q).unwrap().0, vec![7; 8]);
        assert_eq!(recv(&mut q).unwrap().0, vec![1]);
    }

    #[test]
    fn receive_errors_keep_the_message() {
        let mut q = active(3, 16);
        assert_eq!(recv(&mut q), Err((Error::MsgqueueEmpty, false)));
        q.send(b"hello", 0).unwrap();
        q.send(b"x", 0).unwrap();
        let mut never = |_: &[u8]| -> Result<(), Error> { panic!("delivered") };
        // Too small a buffer: ARGUMENT_SIZE, not_empty false although messages remain.
        assert_eq!(q.receive(4, &mut never), Err((Error::ArgumentSize, false)));
        assert_eq!(q.receive(0, &mut never), Err((Error::ArgumentSize, false)));
        // A failed copy returns the copy's error.
        let mut fault = |_: &[u8]| Err(Error::AddrInvalid);
        assert_eq!(q.receive(5, &mut fault), Err((Error::AddrInvalid, false)));
        assert_eq!(q.count(), 2);
        let mut got = Vec::new();
        let ok = q
            .receive(5, &mut |b| {
                got.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
        assert_eq!(got, b"hello");
        assert_eq!((ok.size, ok.not_empty), (5, true));
        let (got, ok) = recv(&mut q).unwrap();
        assert_eq!(got, b"x");
        assert_eq!((ok.size, ok.not_empty), (1, false));
        assert_eq!(recv(&mut q), Err((Error::MsgqueueEmpty, false)));
    }

    #[test]
    fn fifo_wraps_around() {
        let mut q = active(3, 4);
        let mut next = 0u8;
        let mut expect = VecDeque::new();
        for round in 0..50usize {
            while q.count() < 1 + (round % 3) as u32 {
                let len = 1 + usize::from(next % 4);
                let msg: Vec<u8> = (0..len).map(|i| next.wrapping_add(i as u8)).collect();
                q.send(&msg, 0).unwrap();
                expect.push_back(msg);
                next = next.wrapping_add(1);
            }
            while q.count() > (round % 2) as u32 {
                assert_eq!(recv(&mut q).unwrap().0, expect.pop_front().unwrap());
            }
        }
    }

    #[test]
    fn send_signals_with_default_thresholds() {
        // depth 3: not-full threshold 2, not-empty threshold 1.
        let mut q = active(3, 4);
        let ok = q.send(&[1], 0).unwrap();
        assert_eq!(ok.signals, sig(VirqLine::Unchanged, ASSERT_HIGH));
        let ok = q.send(&[2], 0).unwrap();
        assert_eq!(ok.signals, Signals::NONE);
        // The third message fills the queue: the send re-check goes false.
        let ok = q.send(&[3], 0).unwrap();
        assert_eq!(ok.signals, sig(VirqLine::Deassert, VirqLine::Unchanged));
        assert!(!ok.not_full);
        // Receives: 3 -> 2 reaches the not-full threshold.
        let (_, ok) = recv(&mut q).unwrap();
        assert_eq!(ok.signals, sig(ASSERT_HIGH, VirqLine::Unchanged));
        let (_, ok) = recv(&mut q).unwrap();
        assert_eq!(ok.signals, Signals::NONE);
        let (_, ok) = recv(&mut q).unwrap();
        assert_eq!(ok.signals, sig(VirqLine::Unchanged, VirqLine::Deassert));
    }

    #[test]
    fn push_asserts_below_the_threshold() {
        let mut q = active(4, 4);
        q.configure_receive(3, u64::MAX).unwrap();
        let ok = q.send(&[1], 0).unwrap();
        assert_eq!(ok.signals, Signals::NONE);
        // PUSH asserts although count 2 < threshold 3: an edge (level false).
        let ok = q.send(&[2], SEND_FLAG_PUSH).unwrap();
        assert_eq!(ok.signals.receive, ASSERT_LOW);
        // Only bit 0 counts: other bits are ignored, whether PUSH is set or not.
        let ok = q.send(&[3], !SEND_FLAG_PUSH).unwrap();
        assert_eq!(ok.signals.receive, ASSERT_HIGH); // count 3 == threshold
        let ok = q.send(&[4], u64::MAX).unwrap();
        assert_eq!(ok.signals.receive, ASSERT_HIGH); // PUSH, and count 4 >= threshold
        assert_eq!(q.count(), 4);
    }

    #[test]
    fn flush_rules() {
        let mut q = active(3, 4);
        assert_eq!(q.flush(), Signals::NONE);
        q.send(&[1], 0).unwrap();
        q.send(&[2, 2], 0).unwrap();
        q.send(&[3], 0).unwrap();
        assert_eq!(q.flush(), sig(ASSERT_HIGH, VirqLine::Deassert));
        assert_eq!(q.count(), 0);
        assert_eq!(q.flush(), Signals::NONE);
        assert_eq!(recv(&mut q), Err((Error::MsgqueueEmpty, false)));
        // The queue works normally afterwards.
        q.send(&[9], 0).unwrap();
        assert_eq!(recv(&mut q).unwrap().0, vec![9]);
    }

    #[test]
    fn configure_send_rules() {
        let mut q = active(4, 4);
        // Holdoff first: anything but -1 is UNIMPLEMENTED, even with a bad threshold.
        assert_eq!(q.configure_send(99, 0), Err(Error::Unimplemented));
        assert_eq!(q.configure_send(1, 1000), Err(Error::Unimplemented));
        assert_eq!(q.configure_send(1, 0xFFFF_FFFE), Err(Error::Unimplemented));
        // The threshold must be below the depth; -2 is not special here.
        assert_eq!(q.configure_send(4, u64::MAX), Err(Error::ArgumentInvalid));
        assert_eq!(
            q.configure_send(THRESHOLD_MAXIMUM, u64::MAX),
            Err(Error::ArgumentInvalid)
        );
        assert_eq!(q.not_full_threshold(), 3);
        // -1 leaves it alone, and only the low 32 bits count (count_t).
        assert_eq!(
            q.configure_send(THRESHOLD_UNCHANGED, u64::MAX),
            Ok(Signals::NONE)
        );
        assert_eq!(
            q.configure_send(0xFFFF_FFFF, 0xFFFF_FFFF),
            Ok(Signals::NONE)
        );
        assert_eq!(q.not_full_threshold(), 3);
        for _ in 0..2 {
            q.send(&[0], 0).unwrap();
        }
        // count 2 > 1: cleared; count 2 <= 2: asserted.
        assert_eq!(
            q.configure_send(1, HOLDOFF_UNCHANGED),
            Ok(sig(VirqLine::Deassert, VirqLine::Unchanged))
        );
        assert!(!q.send_pending());
        assert_eq!(
            q.configure_send(2, HOLDOFF_UNCHANGED),
            Ok(sig(ASSERT_HIGH, VirqLine::Unchanged))
        );
        assert!(q.send_pending());
        assert_eq!(
            q.configure_send(0x1_0000_0000, u64::MAX),
            Ok(sig(VirqLine::Deassert, VirqLine::Unchanged))
        );
        assert_eq!(q.not_full_threshold(), 0);
    }

    #[test]
    fn configure_receive_rules() {
        let mut q = active(4, 4);
        assert_eq!(q.configure_receive(0, 5), Err(Error::Unimplemented));
        assert_eq!(
            q.configure_receive(0, u64::MAX),
            Err(Error::ArgumentInvalid)
        );
        assert_eq!(
            q.configure_receive(0x1_0000_0000, u64::MAX),
            Err(Error::ArgumentInvalid)
        );
        assert_eq!(
            q.configure_receive(5, u64::MAX),
            Err(Error::ArgumentInvalid)
        );
        assert_eq!(
            q.configure_receive(0xFFFF_FFFD, u64::MAX),
            Err(Error::ArgumentInvalid)
        );
        assert_eq!(
            q.configure_receive(THRESHOLD_UNCHANGED, u64::MAX),
            Ok(Signals::NONE)
        );
        assert_eq!(q.not_empty_threshold(), 1);
        // Depth itself is allowed.
        assert_eq!(
            q.configure_receive(4, u64::MAX),
            Ok(sig(VirqLine::Unchanged, VirqLine::Deassert))
        );
        for _ in 0..2 {
            q.send(&[0], 0).unwrap();
        }
        assert_eq!(
            q.configure_receive(2, u64::MAX),
            Ok(sig(VirqLine::Unchanged, ASSERT_HIGH))
        );
        assert_eq!(
            q.configure_receive(3, u64::MAX),
            Ok(sig(VirqLine::Unchanged, VirqLine::Deassert))
        );
        assert_eq!(
            q.configure_receive(1, u64::MAX),
            Ok(sig(VirqLine::Unchanged, ASSERT_HIGH))
        );
        // -2 means depth and does not assert or clear; the line drops as the re-check went false.
        assert_eq!(
            q.configure_receive(THRESHOLD_MAXIMUM, u64::MAX),
            Ok(sig(VirqLine::Unchanged, VirqLine::Deassert))
        );
        assert_eq!(q.not_empty_threshold(), 4);
        assert_eq!(
            q.configure_receive(0xFFFF_FFFE, 0xFFFF_FFFF),
            Ok(Signals::NONE)
        );
        q.send(&[0], 0).unwrap();
        let ok = q.send(&[0], 0).unwrap();
        assert_eq!(ok.signals.receive, ASSERT_HIGH); // count 4 == threshold 4
        // -2 with the queue full: the re-check stays true and nothing is signalled.
        assert_eq!(
            q.configure_receive(THRESHOLD_MAXIMUM, u64::MAX),
            Ok(Signals::NONE)
        );
    }

    /// A deterministic xorshift64* generator.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// The reference model: a deque of messages and two thresholds, with the signalling rules
    /// written as the table in the module docs.
    struct Model {
        msgs: VecDeque<Vec<u8>>,
        depth: u32,
        max: usize,
        nf: u32,
        ne: u32,
    }

    impl Model {
        fn len(&self) -> u32 {
            self.msgs.len() as u32
        }
        fn tx(&self) -> bool {
            self.len() <= self.nf
        }
        fn rx(&self) -> bool {
            self.len() >= self.ne
        }
    }

    /// What the bound vIRQ looks like from the VIC, driven only by returned [`VirqLine`]s.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Line {
        Off,
        /// Asserted and held while the re-check is true.
        Level,
        /// Asserted once; the re-check was false at the time.
        Edge,
    }

    impl Line {
        fn apply(&mut self, v: VirqLine) {
            match v {
                VirqLine::Unchanged => {}
                VirqLine::Assert { level } => *self = if level { Line::Level } else { Line::Edge },
                VirqLine::Deassert => *self = Line::Off,
            }
        }
        /// The guest takes the interrupt: the VIC asks the re-check.
        fn take(&mut self, pending: bool) {
            if *self != Line::Off {
                *self = if pending { Line::Level } else { Line::Off };
            }
        }
        fn check(self, pending: bool, what: &str) {
            assert!(
                !pending || self != Line::Off,
                "{what}: pending but line off"
            );
            assert!(
                self != Line::Level || pending,
                "{what}: level line without pending"
            );
        }
    }

    fn settle_model(before: bool, after: bool) -> VirqLine {
        if before && !after {
            VirqLine::Deassert
        } else {
            VirqLine::Unchanged
        }
    }

    fn pick_threshold(r: &mut Rng, depth: u32) -> u64 {
        let d = u64::from(depth);
        match r.below(12) {
            0 => 0,
            1 => 1,
            2 => d.saturating_sub(1),
            3 => d,
            4 => d + 1,
            5 | 6 => r.below(d + 2),
            7 => THRESHOLD_UNCHANGED,
            8 => THRESHOLD_MAXIMUM,
            9 => 0xFFFF_FFFF - r.below(2),
            10 => (r.next() << 32) | r.below(d + 2),
            _ => r.next(),
        }
    }

    fn pick_holdoff(r: &mut Rng) -> u64 {
        match r.below(10) {
            0 => r.next(),
            1 => 0xFFFF_FFFF,
            2 => r.below(1000),
            _ => HOLDOFF_UNCHANGED,
        }
    }

    fn run_model(seed: u64, depth: u32, max: usize, steps: usize) {
        let mut r = Rng(seed | 1);
        let mut q = active(depth, max);
        let mut m = Model {
            msgs: VecDeque::new(),
            depth,
            max,
            nf: depth - 1,
            ne: 1,
        };
        // Lines as if bound at activation with "asserted if pending".
        let mut tx = if q.send_pending() {
            Line::Level
        } else {
            Line::Off
        };
        let mut rx = if q.receive_pending() {
            Line::Level
        } else {
            Line::Off
        };
        let mut stamp = 0u64;
        for step in 0..steps {
            let (tx0, rx0) = (m.tx(), m.rx());
            let signals = match r.below(20) {
                0..=6 => {
                    let len = match r.below(8) {
                        0 => 0,
                        1 => max + 1 + r.below(3) as usize,
                        2 => max,
                        _ => 1 + r.below(max as u64) as usize,
                    };
                    stamp += 1;
                    let data: Vec<u8> = (0..len)
                        .map(|i| (stamp as u8) ^ (i as u8).wrapping_mul(31))
                        .collect();
                    let flags = match r.below(4) {
                        0 => SEND_FLAG_PUSH,
                        1 => r.next(),
                        _ => 0,
                    };
                    let push = flags & 1 != 0;
                    assert_eq!(
                        q.check_send(len).is_ok(),
                        m.len() < depth && (1..=max).contains(&len)
                    );
                    let got = q.send(&data, flags);
                    if m.len() == m.depth {
                        assert_eq!(got, Err((Error::MsgqueueFull, false)), "step {step}");
                        Signals::NONE
                    } else if len == 0 || len > m.max {
                        assert_eq!(got, Err((Error::ArgumentSize, false)), "step {step}");
                        Signals::NONE
                    } else {
                        m.msgs.push_back(data);
                        let receive = if push || m.len() == m.ne {
                            VirqLine::Assert { level: m.rx() }
                        } else {
                            settle_model(rx0, m.rx())
                        };
                        let want = SendOk {
                            not_full: m.len() < m.depth,
                            signals: sig(settle_model(tx0, m.tx()), receive),
                        };
                        assert_eq!(got, Ok(want), "step {step}");
                        want.signals
                    }
                }
                7..=13 => {
                    let head = m.msgs.front().map_or(0, Vec::len);
                    let buf = match r.below(5) {
                        0 => head.saturating_sub(1),
                        1 => head,
                        2 => r.below(max as u64 + 2) as usize,
                        _ => usize::MAX,
                    };
                    let fail = r.below(6) == 0;
                    let mut got_bytes = None;
                    let got = q.receive(buf, &mut |b| {
                        got_bytes = Some(b.to_vec());
                        if fail { Err(Error::Denied) } else { Ok(()) }
                    });
                    if m.msgs.is_empty() {
                        assert_eq!(got, Err((Error::MsgqueueEmpty, false)), "step {step}");
                        assert!(got_bytes.is_none());
                        Signals::NONE
                    } else if head > buf {
                        assert_eq!(got, Err((Error::ArgumentSize, false)), "step {step}");
                        assert!(got_bytes.is_none());
                        Signals::NONE
                    } else if fail {
                        assert_eq!(got, Err((Error::Denied, false)), "step {step}");
                        assert_eq!(got_bytes.as_ref(), m.msgs.front());
                        Signals::NONE
                    } else {
                        let msg = m.msgs.pop_front().unwrap();
                        assert_eq!(got_bytes, Some(msg), "step {step}: FIFO content");
                        let send = if m.len() == m.nf {
                            VirqLine::Assert { level: m.tx() }
                        } else {
                            settle_model(tx0, m.tx())
                        };
                        let want = ReceiveOk {
                            size: head,
                            not_empty: !m.msgs.is_empty(),
                            signals: sig(send, settle_model(rx0, m.rx())),
                        };
                        assert_eq!(got, Ok(want), "step {step}");
                        want.signals
                    }
                }
                14 => {
                    let got = q.flush();
                    let want = if m.msgs.is_empty() {
                        Signals::NONE
                    } else {
                        m.msgs.clear();
                        sig(VirqLine::Assert { level: true }, VirqLine::Deassert)
                    };
                    assert_eq!(got, want, "step {step}");
                    want
                }
                15 => {
                    let (t, h) = (pick_threshold(&mut r, depth), pick_holdoff(&mut r));
                    let got = q.configure_send(t, h);
                    let (t, h) = (t as u32, h as u32);
                    let want = if h != u32::MAX {
                        Err(Error::Unimplemented)
                    } else if t == u32::MAX {
                        Ok(Signals::NONE)
                    } else if t >= m.depth {
                        Err(Error::ArgumentInvalid)
                    } else {
                        m.nf = t;
                        let line = if m.tx() {
                            VirqLine::Assert { level: true }
                        } else {
                            VirqLine::Deassert
                        };
                        Ok(sig(line, VirqLine::Unchanged))
                    };
                    assert_eq!(got, want, "step {step}");
                    want.unwrap_or(Signals::NONE)
                }
                16 => {
                    let (t, h) = (pick_threshold(&mut r, depth), pick_holdoff(&mut r));
                    let got = q.configure_receive(t, h);
                    let (t, h) = (t as u32, h as u32);
                    let want = if h != u32::MAX {
                        Err(Error::Unimplemented)
                    } else if t == 0 || (t > m.depth && t < u32::MAX - 1) {
                        Err(Error::ArgumentInvalid)
                    } else if t == u32::MAX {
                        Ok(Signals::NONE)
                    } else if t == u32::MAX - 1 {
                        m.ne = m.depth;
                        Ok(sig(VirqLine::Unchanged, settle_model(rx0, m.rx())))
                    } else {
                        m.ne = t;
                        let line = if m.rx() {
                            VirqLine::Assert { level: true }
                        } else {
                            VirqLine::Deassert
                        };
                        Ok(sig(VirqLine::Unchanged, line))
                    };
                    assert_eq!(got, want, "step {step}");
                    want.unwrap_or(Signals::NONE)
                }
                17 => {
                    tx.take(q.send_pending());
                    Signals::NONE
                }
                _ => {
                    rx.take(q.receive_pending());
                    Signals::NONE
                }
            };
            // The implementation agrees with the model...
            assert_eq!(q.count(), m.len());
            assert!(q.count() <= q.depth());
            assert_eq!(
                (q.not_full_threshold(), q.not_empty_threshold()),
                (m.nf, m.ne)
            );
            assert!(
                q.not_full_threshold() < depth && (1..=depth).contains(&q.not_empty_threshold())
            );
            assert_eq!((q.send_pending(), q.receive_pending()), (m.tx(), m.rx()));
            // ...and the lines it drives stay consistent with its re-checks.
            for (v, pending) in [(signals.send, m.tx()), (signals.receive, m.rx())] {
                if v == VirqLine::Deassert {
                    assert!(!pending, "step {step}: deasserted a pending source");
                }
            }
            tx.apply(signals.send);
            rx.apply(signals.receive);
            tx.check(m.tx(), "send source");
            rx.check(m.rx(), "receive source");
        }
    }

    #[test]
    fn model_check() {
        let shapes = [(1, 1), (2, 3), (3, 8), (5, 16), (8, 240), (255, 1023)];
        for seed in [1, 0xDEAD_BEEF, 0x1234_5678_9ABC_DEF0, 42, 7_777_777] {
            for (depth, max) in shapes {
                run_model(seed ^ u64::from(depth), depth, max, 4000);
            }
        }
    }
}

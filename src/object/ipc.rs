//! Message-queue and doorbell objects: the pure state machines of [`super::msgqueue`] and
//! [`super::doorbell`] behind a lock, with their memory charge and their vIRQ bindings.
//!
//! Lock order: an object's state lock, then the VIC's (inside [`VirqSource`]), then the target
//! VM's vGIC. Nothing takes them the other way round.

use alloc::sync::Arc;
use spin::Mutex;
use wurley_abi::Error;

use super::doorbell::Doorbell;
use super::handle::Header;
use super::msgqueue::{CreateInfo, MsgQueue, ReceiveOk, SendOk, Signals};
use super::partition::{Charge, Partition};
use super::vic::{self, Vic, VirqSource};

/// Which of a message queue's two interrupt sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueEnd {
    /// The sender's "not full" source.
    Send,
    /// The receiver's "not empty" source.
    Receive,
}

struct QueueState {
    queue: MsgQueue,
    storage: Option<Charge>,
    send: Option<VirqSource>,
    receive: Option<VirqSource>,
}

impl QueueState {
    fn apply(&self, s: Signals) {
        vic::apply(&self.send, s.send);
        vic::apply(&self.receive, s.receive);
    }
}

/// A message queue object.
pub struct MsgQueueObject {
    /// Lifecycle.
    pub header: Header,
    partition: Arc<Partition>,
    state: Mutex<QueueState>,
    _charge: Charge,
}

impl MsgQueueObject {
    /// A new, unconfigured queue owned by `partition` (charged for the object itself).
    pub fn create(partition: &Arc<Partition>) -> Result<Arc<Self>, Error> {
        let charge = partition.charge(core::mem::size_of::<Self>())?;
        Ok(Arc::new(Self {
            header: Header::new_init(),
            partition: partition.clone(),
            state: Mutex::new(QueueState {
                queue: MsgQueue::new(),
                storage: None,
                send: None,
                receive: None,
            }),
            _charge: charge,
        }))
    }

    /// `msgqueue_configure` (INIT only).
    pub fn configure(&self, info: CreateInfo) -> Result<(), Error> {
        let mut st = self.state.lock();
        self.header.require_init()?;
        st.queue.configure(info)
    }

    /// `object_activate`: the queue must be configured; its storage is charged to the
    /// partition and allocated now.
    pub fn activate(&self) -> Result<(), Error> {
        let mut st = self.state.lock();
        self.header.require_init()?;
        if !st.queue.is_configured() {
            return Err(Error::ObjectConfig);
        }
        let charge = self.partition.charge(st.queue.storage_bytes())?;
        st.queue.activate()?;
        st.storage = Some(charge);
        self.header.activate()
    }

    /// Bind `end`'s source to `virq` of `vic` (`VirqBound` if this end already has one).
    pub fn bind(&self, end: QueueEnd, vic: &Arc<Vic>, virq: u32) -> Result<(), Error> {
        let mut st = self.state.lock();
        let slot_taken = match end {
            QueueEnd::Send => st.send.is_some(),
            QueueEnd::Receive => st.receive.is_some(),
        };
        if slot_taken {
            return Err(Error::VirqBound);
        }
        let src = vic.bind(virq)?;
        // A source bound while its condition holds starts asserted.
        let pending = match end {
            QueueEnd::Send => false,
            QueueEnd::Receive => {
                self.header.state() == super::ObjectState::Active && st.queue.receive_pending()
            }
        };
        if pending {
            src.apply(super::VirqLine::Assert { level: true });
        }
        match end {
            QueueEnd::Send => st.send = Some(src),
            QueueEnd::Receive => st.receive = Some(src),
        }
        Ok(())
    }

    /// Unbind `end`'s source (`VirqNotBound` if there is none).
    pub fn unbind(&self, end: QueueEnd) -> Result<(), Error> {
        let src = {
            let mut st = self.state.lock();
            match end {
                QueueEnd::Send => st.send.take(),
                QueueEnd::Receive => st.receive.take(),
            }
        };
        src.map(drop).ok_or(Error::VirqNotBound)
    }

    /// `msgqueue_send` of `data` (already copied from the guest).
    pub fn send(&self, data: &[u8], flags: u64) -> Result<SendOk, (Error, bool)> {
        let mut st = self.state.lock();
        self.header.require_active().map_err(|e| (e, false))?;
        let ok = st.queue.send(data, flags)?;
        st.apply(ok.signals);
        Ok(ok)
    }

    /// `msgqueue_receive` into a guest buffer of `buf_size` bytes; `deliver` copies the message
    /// out (on failure the message stays queued).
    pub fn receive(
        &self,
        buf_size: usize,
        deliver: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<ReceiveOk, (Error, bool)> {
        let mut st = self.state.lock();
        self.header.require_active().map_err(|e| (e, false))?;
        let ok = st.queue.receive(buf_size, deliver)?;
        st.apply(ok.signals);
        Ok(ok)
    }

    /// `msgqueue_flush`.
    pub fn flush(&self) -> Result<(), Error> {
        let mut st = self.state.lock();
        self.header.require_active()?;
        let s = st.queue.flush();
        st.apply(s);
        Ok(())
    }

    /// `msgqueue_configure_send` / `_receive`.
    pub fn configure_end(&self, end: QueueEnd, threshold: u64, holdoff: u64) -> Result<(), Error> {
        let mut st = self.state.lock();
        self.header.require_active()?;
        let s = match end {
            QueueEnd::Send => st.queue.configure_send(threshold, holdoff)?,
            QueueEnd::Receive => st.queue.configure_receive(threshold, holdoff)?,
        };
        st.apply(s);
        Ok(())
    }

    /// The largest message the queue takes (0 until configured).
    pub fn max_msg_size(&self) -> usize {
        self.state.lock().queue.max_msg_size()
    }

    /// The checks `msgqueue_send` makes before touching the guest buffer (queue active, not
    /// full, size in range), in Gunyah's order; the error comes with `not_full` = false.
    pub fn check_send(&self, size: usize) -> Result<(), (Error, bool)> {
        let st = self.state.lock();
        self.header.require_active().map_err(|e| (e, false))?;
        st.queue.check_send(size)
    }

    /// Messages queued (for diagnostics and tests).
    pub fn count(&self) -> u32 {
        self.state.lock().queue.count()
    }
}

struct BellState {
    bell: Doorbell,
    source: Option<VirqSource>,
}

/// A doorbell object.
pub struct DoorbellObject {
    /// Lifecycle.
    pub header: Header,
    state: Mutex<BellState>,
    _charge: Charge,
}

impl DoorbellObject {
    /// A new doorbell owned by `partition`.
    pub fn create(partition: &Arc<Partition>) -> Result<Arc<Self>, Error> {
        let charge = partition.charge(core::mem::size_of::<Self>())?;
        Ok(Arc::new(Self {
            header: Header::new_init(),
            state: Mutex::new(BellState {
                bell: Doorbell::new(),
                source: None,
            }),
            _charge: charge,
        }))
    }

    /// Bind the doorbell's source to `virq` of `vic`.
    pub fn bind(&self, vic: &Arc<Vic>, virq: u32) -> Result<(), Error> {
        let mut st = self.state.lock();
        if st.source.is_some() {
            return Err(Error::VirqBound);
        }
        let src = vic.bind(virq)?;
        if st.bell.pending() {
            src.apply(super::VirqLine::Assert { level: true });
        }
        st.source = Some(src);
        Ok(())
    }

    /// Unbind the source.
    pub fn unbind(&self) -> Result<(), Error> {
        let src = self.state.lock().source.take();
        src.map(drop).ok_or(Error::VirqNotBound)
    }

    /// `doorbell_send`: returns the old flags.
    pub fn send(&self, new_flags: u64) -> Result<u64, Error> {
        let mut st = self.state.lock();
        self.header.require_active()?;
        let (old, line) = st.bell.try_send(new_flags)?;
        vic::apply(&st.source, line);
        Ok(old)
    }

    /// `doorbell_receive`: returns the old flags.
    pub fn receive(&self, clear: u64) -> Result<u64, Error> {
        let mut st = self.state.lock();
        self.header.require_active()?;
        let (old, line) = st.bell.receive(clear)?;
        vic::apply(&st.source, line);
        Ok(old)
    }

    /// `doorbell_mask`.
    pub fn mask(&self, enable: u64, ack: u64) -> Result<(), Error> {
        let mut st = self.state.lock();
        self.header.require_active()?;
        let line = st.bell.mask(enable, ack);
        vic::apply(&st.source, line);
        Ok(())
    }

    /// `doorbell_reset`.
    pub fn reset(&self) -> Result<(), Error> {
        let mut st = self.state.lock();
        self.header.require_active()?;
        let line = st.bell.reset();
        vic::apply(&st.source, line);
        Ok(())
    }
}

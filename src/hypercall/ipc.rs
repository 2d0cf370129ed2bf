//! Message-queue and doorbell calls (Gunyah §2.4, §2.5): look the caps up with the rights each
//! call needs, move message bytes between guest buffers and the queue, and let the objects in
//! `object::ipc` do the rest.

use wurley_abi::Error;
use wurley_abi::rights::{DoorbellRights, MsgqueueRights, OBJECT_ACTIVATE, VicRights};

use super::context::Caller;
use super::dispatch::Reply;
use crate::object::ipc::QueueEnd;
use crate::object::msgqueue::{CreateInfo, MAX_MSG_SIZE};

/// `virq_t` is 32 bits; larger register values name no vIRQ.
fn virq(raw: u64) -> Result<u32, Error> {
    u32::try_from(raw).map_err(|_| Error::ArgumentInvalid)
}

/// `doorbell_bind_virq`: X0 doorbell (BIND), X1 vic (BIND_SOURCE), X2 vIRQ.
pub fn doorbell_bind(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let db = c.doorbell(a[0], DoorbellRights::BIND.bits())?;
        let vic = c.vic(a[1], VicRights::BIND_SOURCE.bits())?;
        db.bind(&vic, virq(a[2])?)
    })())
}

/// `doorbell_unbind_virq`: X0 doorbell (BIND).
pub fn doorbell_unbind(c: &Caller, a: &[u64]) -> Reply {
    Reply::result(
        c.doorbell(a[0], DoorbellRights::BIND.bits())
            .and_then(|db| db.unbind()),
    )
}

/// `doorbell_send`: X0 doorbell (SEND), X1 new flags → X1 old flags.
pub fn doorbell_send(c: &Caller, a: &[u64]) -> Reply {
    Reply::with_value(
        c.doorbell(a[0], DoorbellRights::SEND.bits())
            .and_then(|db| db.send(a[1])),
    )
}

/// `doorbell_receive`: X0 doorbell (RECEIVE), X1 flags to clear → X1 old flags.
pub fn doorbell_receive(c: &Caller, a: &[u64]) -> Reply {
    Reply::with_value(
        c.doorbell(a[0], DoorbellRights::RECEIVE.bits())
            .and_then(|db| db.receive(a[1])),
    )
}

/// `doorbell_reset`: X0 doorbell (RECEIVE).
pub fn doorbell_reset(c: &Caller, a: &[u64]) -> Reply {
    Reply::result(
        c.doorbell(a[0], DoorbellRights::RECEIVE.bits())
            .and_then(|db| db.reset()),
    )
}

/// `doorbell_mask`: X0 doorbell (RECEIVE), X1 enable mask, X2 ack mask.
pub fn doorbell_mask(c: &Caller, a: &[u64]) -> Reply {
    Reply::result(
        c.doorbell(a[0], DoorbellRights::RECEIVE.bits())
            .and_then(|db| db.mask(a[1], a[2])),
    )
}

fn end_right(end: QueueEnd) -> u32 {
    match end {
        QueueEnd::Send => MsgqueueRights::BIND_SEND.bits(),
        QueueEnd::Receive => MsgqueueRights::BIND_RECEIVE.bits(),
    }
}

/// `msgqueue_bind_{send,receive}_virq`: X0 queue (BIND_SEND / BIND_RECEIVE), X1 vic
/// (BIND_SOURCE), X2 vIRQ.
pub fn msgqueue_bind(c: &Caller, end: QueueEnd, a: &[u64]) -> Reply {
    Reply::result((|| {
        let q = c.msgqueue(a[0], end_right(end))?;
        let vic = c.vic(a[1], VicRights::BIND_SOURCE.bits())?;
        q.bind(end, &vic, virq(a[2])?)
    })())
}

/// `msgqueue_unbind_{send,receive}_virq`: X0 queue.
pub fn msgqueue_unbind(c: &Caller, end: QueueEnd, a: &[u64]) -> Reply {
    Reply::result(c.msgqueue(a[0], end_right(end)).and_then(|q| q.unbind(end)))
}

/// `msgqueue_send`: X0 queue (SEND), X1 size, X2 buffer VA, X3 flags → X1 not_full.
pub fn msgqueue_send(c: &mut Caller, a: &[u64]) -> Reply {
    let q = match c.msgqueue(a[0], MsgqueueRights::SEND.bits()) {
        Ok(q) => q,
        Err(e) => return Reply::new(&[e.to_register(), 0]),
    };
    let size = usize::try_from(a[1]).unwrap_or(usize::MAX);
    if let Err((e, not_full)) = q.check_send(size) {
        return Reply::new(&[e.to_register(), u64::from(not_full)]);
    }
    let mut buf = [0u8; MAX_MSG_SIZE];
    let Some(data) = buf.get_mut(..size) else {
        return Reply::new(&[Error::ArgumentSize.to_register(), 0]);
    };
    if let Err(e) = c.mem.read(a[2], data) {
        return Reply::new(&[e.to_register(), 0]);
    }
    match q.send(data, a[3]) {
        Ok(ok) => Reply::new(&[0, u64::from(ok.not_full)]),
        Err((e, not_full)) => Reply::new(&[e.to_register(), u64::from(not_full)]),
    }
}

/// `msgqueue_receive`: X0 queue (RECEIVE), X1 buffer VA, X2 buffer size → X1 size, X2
/// not_empty.
pub fn msgqueue_receive(c: &mut Caller, a: &[u64]) -> Reply {
    let q = match c.msgqueue(a[0], MsgqueueRights::RECEIVE.bits()) {
        Ok(q) => q,
        Err(e) => return Reply::new(&[e.to_register(), 0, 0]),
    };
    let buf_size = usize::try_from(a[2]).unwrap_or(usize::MAX);
    let va = a[1];
    let mem = &mut *c.mem;
    match q.receive(buf_size, &mut |bytes| mem.write(va, bytes)) {
        Ok(ok) => Reply::new(&[0, ok.size as u64, u64::from(ok.not_empty)]),
        Err((e, not_empty)) => Reply::new(&[e.to_register(), 0, u64::from(not_empty)]),
    }
}

/// `msgqueue_flush`: X0 queue (RECEIVE).
pub fn msgqueue_flush(c: &Caller, a: &[u64]) -> Reply {
    Reply::result(
        c.msgqueue(a[0], MsgqueueRights::RECEIVE.bits())
            .and_then(|q| q.flush()),
    )
}

/// `msgqueue_configure_{send,receive}`: X0 queue (SEND / RECEIVE), X1 threshold, X2 holdoff.
pub fn msgqueue_configure_end(c: &Caller, end: QueueEnd, a: &[u64]) -> Reply {
    let right = match end {
        QueueEnd::Send => MsgqueueRights::SEND.bits(),
        QueueEnd::Receive => MsgqueueRights::RECEIVE.bits(),
    };
    Reply::result(
        c.msgqueue(a[0], right)
            .and_then(|q| q.configure_end(end, a[1], a[2])),
    )
}

/// `msgqueue_configure`: X0 queue (OBJECT_ACTIVATE, INIT), X1 create info.
pub fn msgqueue_configure(c: &Caller, a: &[u64]) -> Reply {
    Reply::result((|| {
        let q = c.msgqueue(a[0], OBJECT_ACTIVATE)?;
        q.configure(CreateInfo::decode(a[1])?)
    })())
}

//! [`RunQueue`]: one physical CPU's runnable vCPUs waiting for it (not the one running), in 64
//! FIFO levels, one per priority, with a bitmap of the non-empty levels (Gunyah's
//! `scheduler->runqueue[]` and `prio_bitmap`).
//!
//! Entries live in one slab of nodes doubly linked per level, so adding at either end of a level,
//! taking the head of the highest level and finding the highest waiting priority are O(1);
//! finding a given entry (to remove it, or to refuse a duplicate) walks the queue, which holds a
//! handful of vCPUs. Freed nodes are reused: after [`RunQueue::pick`] (or a removal) the next
//! enqueue never allocates, so "take the next vCPU, put the preempted one back" cannot fail.
//! Growing the slab is fallible (`NOMEM`), never a panic.

use alloc::vec::Vec;

use wurley_abi::Error;

use super::params::{PRIORITY_LEVELS, check_priority};

/// No node (end of a list, empty level, empty free list).
const NIL: usize = usize::MAX;

#[derive(Clone, Copy, Debug)]
struct Node<T> {
    /// The entry (stale in a free node).
    item: T,
    /// The priority level this node is linked into.
    level: u8,
    prev: usize,
    /// Next in the level, or next free node.
    next: usize,
}

/// One physical CPU's queue of runnable vCPUs (not including the one running): strict priority
/// between levels, FIFO within one. `T` is whatever names a vCPU to the caller (an id, a
/// `(vm, vcpu)` pair); an entry is in the queue at most once.
#[derive(Clone, Debug)]
pub struct RunQueue<T> {
    nodes: Vec<Node<T>>,
    free: usize,
    heads: [usize; PRIORITY_LEVELS],
    tails: [usize; PRIORITY_LEVELS],
    /// Bit `p` set iff level `p` is non-empty.
    bitmap: u64,
    len: usize,
}

impl<T: Copy + Eq> Default for RunQueue<T> {
    fn default() -> Self {
        RunQueue::new()
    }
}

impl<T: Copy + Eq> RunQueue<T> {
    /// An empty queue (allocates nothing).
    pub const fn new() -> Self {
        RunQueue {
            nodes: Vec::new(),
            free: NIL,
            heads: [NIL; PRIORITY_LEVELS],
            tails: [NIL; PRIORITY_LEVELS],
            bitmap: 0,
            len: 0,
        }
    }

    /// Queue `t` at the tail of level `priority` (a vCPU that became runnable, or whose
    /// timeslice ran out). `Ok(true)` if queued; `Ok(false)` if `t` was already queued, which
    /// changes nothing (it keeps its place and priority). `ARGUMENT_INVALID` for a priority above
    /// 63, `NOMEM` if the queue could not grow.
    pub fn enqueue(&mut self, t: T, priority: u8) -> Result<bool, Error> {
        self.insert(t, priority, true)
    }

    /// Queue `t` at the head of level `priority`: a vCPU preempted by a higher priority before
    /// its timeslice ran out runs again first (Gunyah's `add_to_runqueue(.., at_tail = false)`).
    /// Results as for [`RunQueue::enqueue`].
    pub fn enqueue_front(&mut self, t: T, priority: u8) -> Result<bool, Error> {
        self.insert(t, priority, false)
    }

    /// Take `t` out of the queue (it blocked, powered off, migrated). Whether it was queued.
    pub fn remove(&mut self, t: T) -> bool {
        self.remove_where(|e| *e == t).is_some()
    }

    /// Take out the first entry (in pick order) for which `f` holds, with its priority.
    pub fn remove_where(&mut self, mut f: impl FnMut(&T) -> bool) -> Option<(T, u8)> {
        let i = self.find_index(|e| f(e))?;
        self.take(i)
    }

    /// The entry to run next, taken out of the queue: the head of the highest non-empty level,
    /// with its priority.
    pub fn pick(&mut self) -> Option<(T, u8)> {
        let level = self.highest()?;
        let head = *self.heads.get(usize::from(level))?;
        self.take(head)
    }

    /// The entry [`RunQueue::pick`] would take, left in place.
    pub fn peek(&self) -> Option<(T, u8)> {
        let level = self.highest()?;
        let node = self.nodes.get(*self.heads.get(usize::from(level))?)?;
        Some((node.item, node.level))
    }

    /// The highest priority with an entry waiting.
    pub fn highest(&self) -> Option<u8> {
        highest_bit(self.bitmap)
    }

    /// Whether an entry of exactly `priority` waits.
    pub fn waiting_at(&self, priority: u8) -> bool {
        priority < 64 && self.bitmap & (1 << priority) != 0
    }

    /// The priority `t` is queued at, if it is queued.
    pub fn priority_of(&self, t: T) -> Option<u8> {
        self.iter().find(|&(e, _)| e == t).map(|(_, p)| p)
    }

    /// Whether `t` is queued.
    pub fn contains(&self, t: T) -> bool {
        self.priority_of(t).is_some()
    }

    /// The number of entries queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Make room for `additional` more entries than are queued now, so that many enqueues
    /// cannot fail with `NOMEM`.
    pub fn reserve(&mut self, additional: usize) -> Result<(), Error> {
        let want = self.len.checked_add(additional).ok_or(Error::Nomem)?;
        let extra = want.saturating_sub(self.nodes.len());
        self.nodes.try_reserve(extra).map_err(|_| Error::Nomem)
    }

    /// The entries with their priorities, in the order [`RunQueue::pick`] would take them.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            queue: self,
            levels: self.bitmap,
            node: NIL,
        }
    }

    /// The first entry (in pick order) for which `f` holds, to change in place; the change must
    /// keep it distinct from every other entry.
    pub(super) fn find_mut(&mut self, mut f: impl FnMut(&T) -> bool) -> Option<&mut T> {
        let i = self.find_index(|e| f(e))?;
        self.nodes.get_mut(i).map(|n| &mut n.item)
    }

    fn insert(&mut self, t: T, priority: u8, at_tail: bool) -> Result<bool, Error> {
        let level = usize::from(check_priority(priority)?);
        if self.contains(t) {
            return Ok(false);
        }
        let (Some(&head), Some(&tail)) = (self.heads.get(level), self.tails.get(level)) else {
            return Err(Error::ArgumentInvalid);
        };
        let (prev, next) = if at_tail { (tail, NIL) } else { (NIL, head) };
        let i = self.alloc(Node {
            item: t,
            level: priority,
            prev,
            next,
        })?;
        match self.nodes.get_mut(prev) {
            Some(p) => p.next = i,
            None => set(&mut self.heads, level, i),
        }
        match self.nodes.get_mut(next) {
            Some(n) => n.prev = i,
            None => set(&mut self.tails, level, i),
        }
        self.bitmap |= 1 << level;
        self.len += 1;
        Ok(true)
    }

    /// Unlink node `i` (which must be linked) and put it on the free list.
    fn take(&mut self, i: usize) -> Option<(T, u8)> {
        let node = *self.nodes.get(i)?;
        let level = usize::from(node.level);
        match self.nodes.get_mut(node.prev) {
            Some(p) => p.next = node.next,
            None => set(&mut self.heads, level, node.next),
        }
        match self.nodes.get_mut(node.next) {
            Some(n) => n.prev = node.prev,
            None => set(&mut self.tails, level, node.prev),
        }
        if self.heads.get(level) == Some(&NIL) {
            self.bitmap &= !(1 << level);
        }
        if let Some(n) = self.nodes.get_mut(i) {
            n.prev = NIL;
            n.next = self.free;
        }
        self.free = i;
        self.len = self.len.saturating_sub(1);
        Some((node.item, node.level))
    }

    fn alloc(&mut self, node: Node<T>) -> Result<usize, Error> {
        if let Some(slot) = self.nodes.get_mut(self.free) {
            let i = self.free;
            self.free = slot.next;
            *slot = node;
            return Ok(i);
        }
        self.nodes.try_reserve(1).map_err(|_| Error::Nomem)?;
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    fn find_index(&self, mut f: impl FnMut(&T) -> bool) -> Option<usize> {
        let mut it = self.iter();
        while let Some(i) = it.next_index() {
            if self.nodes.get(i).is_some_and(|n| f(&n.item)) {
                return Some(i);
            }
        }
        None
    }
}

fn set(array: &mut [usize; PRIORITY_LEVELS], level: usize, value: usize) {
    if let Some(slot) = array.get_mut(level) {
        *slot = value;
    }
}

fn highest_bit(bits: u64) -> Option<u8> {
    // `leading_zeros` of a non-zero u64 is at most 63.
    (bits != 0).then(|| 63 - bits.leading_zeros() as u8)
}

/// The entries of a [`RunQueue`] with their priorities, in pick order.
pub struct Iter<'a, T> {
    queue: &'a RunQueue<T>,
    /// Levels not started yet.
    levels: u64,
    /// The next node in the current level.
    node: usize,
}

impl<T: Copy> Iter<'_, T> {
    fn next_index(&mut self) -> Option<usize> {
        if self.node == NIL {
            let level = highest_bit(self.levels)?;
            self.levels &= !(1 << level);
            self.node = *self.queue.heads.get(usize::from(level))?;
        }
        let i = self.node;
        self.node = self.queue.nodes.get(i).map_or(NIL, |n| n.next);
        Some(i)
    }
}

impl<T: Copy> Iterator for Iter<'_, T> {
    type Item = (T, u8);

    fn next(&mut self) -> Option<(T, u8)> {
        let i = self.next_index()?;
        self.queue.nodes.get(i).map(|n| (n.item, n.level))
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use super::*;

    fn drain(q: &mut RunQueue<u32>) -> Vec<(u32, u8)> {
        core::iter::from_fn(|| q.pick()).collect()
    }

    #[test]
    fn empty() {
        let mut q = RunQueue::<u32>::new();
        assert!(q.is_empty());
        assert_eq!(q.len(), 0);
        assert_eq!(q.pick(), None);
        assert_eq!(q.peek(), None);
        assert_eq!(q.highest(), None);
        assert!(!q.remove(1));
        assert_eq!(q.iter().count(), 0);
        assert!(!q.waiting_at(0));
        assert!(!q.waiting_at(200));
    }

    #[test]
    fn priority_then_fifo() {
        let mut q = RunQueue::new();
        for (t, p) in [(1, 32), (2, 0), (3, 63), (4, 32), (5, 0), (6, 63)] {
            assert_eq!(q.enqueue(t, p), Ok(true));
        }
        assert_eq!(q.len(), 6);
        assert_eq!(q.highest(), Some(63));
        assert!(q.waiting_at(32) && !q.waiting_at(31));
        assert_eq!(q.peek(), Some((3, 63)));
        let order: Vec<_> = q.iter().collect();
        assert_eq!(drain(&mut q), order);
        assert_eq!(
            order,
            vec![(3, 63), (6, 63), (1, 32), (4, 32), (2, 0), (5, 0)]
        );
        assert!(q.is_empty());
        assert_eq!(q.highest(), None);
    }

    #[test]
    fn front_goes_first_in_its_level_only() {
        let mut q = RunQueue::new();
        q.enqueue(1, 10).ok();
        q.enqueue(2, 10).ok();
        q.enqueue(3, 20).ok();
        assert_eq!(q.enqueue_front(4, 10), Ok(true));
        assert_eq!(drain(&mut q), vec![(3, 20), (4, 10), (1, 10), (2, 10)]);
        assert_eq!(q.enqueue_front(5, 7), Ok(true));
        assert_eq!(drain(&mut q), vec![(5, 7)]);
    }

    #[test]
    fn duplicates_change_nothing() {
        let mut q = RunQueue::new();
        assert_eq!(q.enqueue(1, 5), Ok(true));
        assert_eq!(q.enqueue(2, 5), Ok(true));
        assert_eq!(q.enqueue(1, 5), Ok(false));
        assert_eq!(q.enqueue(1, 60), Ok(false));
        assert_eq!(q.enqueue_front(1, 5), Ok(false));
        assert_eq!(q.len(), 2);
        assert_eq!(q.priority_of(1), Some(5));
        assert_eq!(drain(&mut q), vec![(1, 5), (2, 5)]);
    }

    #[test]
    fn bad_priority_refused() {
        let mut q = RunQueue::new();
        assert_eq!(q.enqueue(1, 64), Err(Error::ArgumentInvalid));
        assert_eq!(q.enqueue_front(1, 255), Err(Error::ArgumentInvalid));
        assert!(q.is_empty());
        assert!(!q.contains(1));
    }

    #[test]
    fn remove_head_middle_tail_and_last() {
        let mut q = RunQueue::new();
        for t in 1..=4 {
            q.enqueue(t, 9).ok();
        }
        q.enqueue(9, 3).ok();
        assert!(q.remove(1)); // head
        assert!(q.remove(3)); // middle
        assert!(q.remove(4)); // tail
        assert!(!q.remove(4));
        assert_eq!(q.len(), 2);
        assert_eq!(q.highest(), Some(9));
        assert!(q.remove(2)); // last of its level
        assert_eq!(q.highest(), Some(3));
        assert!(!q.waiting_at(9));
        assert_eq!(q.remove_where(|&t| t > 5), Some((9, 3)));
        assert!(q.is_empty());
        // The level is usable again, at both ends.
        q.enqueue(7, 9).ok();
        q.enqueue_front(8, 9).ok();
        assert_eq!(drain(&mut q), vec![(8, 9), (7, 9)]);
    }

    #[test]
    fn nodes_are_reused() {
        let mut q = RunQueue::new();
        for t in 0..8 {
            q.enqueue(t, (t % 3) as u8).ok();
        }
        let cap = q.nodes.len();
        for round in 0..100u32 {
            if let Some((t, p)) = q.pick() {
                q.enqueue(t, p.wrapping_add(round as u8) % 64).ok();
            }
            q.remove(round % 8);
            q.enqueue(round % 8, 1).ok();
        }
        assert_eq!(q.nodes.len(), cap);
        assert_eq!(q.len(), 8);
    }

    #[test]
    fn reserve() {
        let mut q = RunQueue::<u32>::new();
        assert_eq!(q.reserve(4), Ok(()));
        assert!(q.nodes.capacity() >= 4);
        assert_eq!(q.reserve(usize::MAX), Err(Error::Nomem));
        q.enqueue(1, 1).ok();
        assert_eq!(q.reserve(usize::MAX), Err(Error::Nomem));
        assert_eq!(q.len(), 1);
    }
}

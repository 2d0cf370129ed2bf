//! Partitions: the accounting nodes that object memory is charged to.
//!
//! Every object a guest creates costs memory, and that memory is charged to the partition the
//! object was created from. Partitions form a tree: a child's charges count against its own
//! limit *and* against every ancestor's, so a VM's partition can never make the hypervisor spend
//! more than the quota its parent gave it, however deep it nests child partitions.
//!
//! This module owns the tree ([`Partition`]) and the charges ([`Charge`]): a charge is an RAII
//! value that refunds its bytes to the whole chain when dropped, so an object that holds its
//! charge gives its memory back exactly when it is freed.
//!
//! Accounting is lock-free: each node's `used` counter only grows through a compare-exchange
//! loop that checks the node's limit, so no limit is ever exceeded even under concurrent
//! charges. A charge that fails part-way up the chain rolls back the nodes it already charged;
//! during that short window a concurrent charge may see the rolled-back bytes and fail with
//! `Nomem` although it would fit a moment later (conservative, never over-committing).
//!
//! Gunyah itself gives each partition its own heap (memory donated to it); Wurley has one kernel
//! heap and enforces the partition tree as quotas over it instead.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use wurley_abi::Error;

/// An accounting node for object memory: a limit and the bytes currently charged to it or to
/// any of its descendants.
#[derive(Debug)]
pub struct Partition {
    parent: Option<Arc<Partition>>,
    limit: AtomicUsize,
    used: AtomicUsize,
    depth: usize,
    memdb_id: u32,
}

/// Memory-database ids of child partitions (roots are 0, the root partition's).
static NEXT_MEMDB_ID: AtomicU32 = AtomicU32::new(1);

impl Partition {
    /// A root partition allowing `limit_bytes` of objects in itself and all its descendants.
    pub fn new_root(limit_bytes: usize) -> Arc<Partition> {
        Arc::new(Partition {
            parent: None,
            limit: AtomicUsize::new(limit_bytes),
            used: AtomicUsize::new(0),
            depth: 0,
            memdb_id: 0,
        })
    }

    /// A child partition; its charges count against itself (limit) and every ancestor.
    ///
    /// The child's limit may be larger than what its ancestors have left: the tightest limit
    /// along the chain is the one that bites.
    pub fn new_child(parent: &Arc<Partition>, limit_bytes: usize) -> Arc<Partition> {
        Arc::new(Partition {
            parent: Some(parent.clone()),
            limit: AtomicUsize::new(limit_bytes),
            used: AtomicUsize::new(0),
            depth: parent.depth.saturating_add(1),
            memdb_id: NEXT_MEMDB_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Charge `bytes` to this partition and all its ancestors.
    ///
    /// Fails with [`Error::Nomem`], charging nothing, if any partition along the chain would go
    /// over its limit. The returned [`Charge`] refunds the bytes when dropped. Costs
    /// O([`depth`](Self::depth)).
    pub fn charge(self: &Arc<Self>, bytes: usize) -> Result<Charge, Error> {
        if bytes != 0 {
            let mut node: Option<&Partition> = Some(self);
            while let Some(p) = node {
                if !p.try_add(bytes) {
                    // Roll back everything below the node that refused.
                    self.refund_until(bytes, p);
                    return Err(Error::Nomem);
                }
                node = p.parent.as_deref();
            }
        }
        Ok(Charge {
            partition: self.clone(),
            bytes,
        })
    }

    /// Bytes currently charged to this partition (including its descendants' charges).
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The most bytes this partition may have charged at once.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Acquire)
    }

    /// Set the limit (its partition object's configuration, before anything is charged to it:
    /// a lower limit than [`used`](Self::used) refuses new charges until enough are refunded).
    pub fn set_limit(&self, limit_bytes: usize) {
        self.limit.store(limit_bytes, Ordering::Release);
    }

    /// The parent partition (`None` for a root).
    pub fn parent(&self) -> Option<&Arc<Partition>> {
        self.parent.as_ref()
    }

    /// How many ancestors this partition has (0 for a root). A charge walks the whole chain, so
    /// callers that let guests nest partitions may want to bound this.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The partition's id in the memory database (`Owner::Partition(id)`): 0 for a root (the
    /// root partition, which owns the machine's free RAM), a fresh id for each child (which
    /// owns no memory: extents it configures find nothing to take).
    pub fn memdb_id(&self) -> u32 {
        self.memdb_id
    }

    /// Adds `bytes` to this node alone if that keeps it within its limit.
    fn try_add(&self, bytes: usize) -> bool {
        let limit = self.limit();
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let Some(new) = cur.checked_add(bytes).filter(|&n| n <= limit) else {
                return false;
            };
            match self
                .used
                .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => cur = seen,
            }
        }
    }

    /// Takes `bytes` back from this node and its ancestors, stopping before `stop` (or at the
    /// root when `stop` is not an ancestor, which refunds the whole chain).
    fn refund_until(&self, bytes: usize, stop: *const Partition) {
        let mut node: Option<&Partition> = Some(self);
        while let Some(p) = node {
            if core::ptr::eq(p, stop) {
                break;
            }
            p.used.fetch_sub(bytes, Ordering::AcqRel);
            node = p.parent.as_deref();
        }
    }
}

impl Drop for Partition {
    /// Releases the parent chain iteratively, so dropping the last reference to a deeply nested
    /// partition cannot overflow the stack.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(parent) = next {
            // Only the last holder gets the inner value; anyone else just drops a reference.
            next = Arc::into_inner(parent).and_then(|mut p| p.parent.take());
        }
    }
}

/// Memory charged to a partition chain; refunds its bytes to the chain when dropped.
#[derive(Debug)]
pub struct Charge {
    partition: Arc<Partition>,
    bytes: usize,
}

impl Charge {
    /// A charge of nothing against `partition` (a placeholder that refunds nothing).
    pub fn none(partition: &Arc<Partition>) -> Charge {
        Charge {
            partition: partition.clone(),
            bytes: 0,
        }
    }

    /// How many bytes this charge holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The partition charged (the bottom of the chain).
    pub fn partition(&self) -> &Arc<Partition> {
        &self.partition
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if self.bytes != 0 {
            self.partition
                .refund_until(self.bytes, core::ptr::null::<Partition>());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn charges_sum_and_refund() {
        let root = Partition::new_root(1000);
        assert_eq!(root.limit(), 1000);
        let a = root.charge(100).unwrap();
        let b = root.charge(250).unwrap();
        assert_eq!((a.bytes(), b.bytes()), (100, 250));
        assert_eq!(root.used(), 350);
        drop(a);
        assert_eq!(root.used(), 250);
        drop(b);
        assert_eq!(root.used(), 0);
    }

    #[test]
    fn limit_is_inclusive_and_failure_charges_nothing() {
        let root = Partition::new_root(100);
        let full = root.charge(100).unwrap();
        assert_eq!(root.charge(1).map(|c| c.bytes()), Err(Error::Nomem));
        assert_eq!(root.used(), 100);
        drop(full);
        assert_eq!(root.charge(101).map(|c| c.bytes()), Err(Error::Nomem));
        assert_eq!(root.used(), 0);
    }

    #[test]
    fn zero_and_huge_charges() {
        let root = Partition::new_root(usize::MAX);
        let zero = root.charge(0).unwrap();
        assert_eq!((zero.bytes(), root.used()), (0, 0));
        let big = root.charge(usize::MAX - 1).unwrap();
        // Overflowing the counter is a refusal, not a wrap.
        assert_eq!(root.charge(2).map(|c| c.bytes()), Err(Error::Nomem));
        assert_eq!(root.used(), usize::MAX - 1);
        drop(big);
        let none = Charge::none(&root);
        assert_eq!(none.bytes(), 0);
        assert!(Arc::ptr_eq(none.partition(), &root));
        drop(none);
        assert_eq!(root.used(), 0);
    }

    #[test]
    fn child_charges_count_against_ancestors() {
        let root = Partition::new_root(1000);
        let mid = Partition::new_child(&root, 600);
        let leaf = Partition::new_child(&mid, 10_000);
        assert_eq!((root.depth(), mid.depth(), leaf.depth()), (0, 1, 2));
        assert!(Arc::ptr_eq(leaf.parent().unwrap(), &mid));
        assert!(root.parent().is_none());
        let c = leaf.charge(200).unwrap();
        assert_eq!((leaf.used(), mid.used(), root.used()), (200, 200, 200));
        let d = mid.charge(100).unwrap();
        assert_eq!((leaf.used(), mid.used(), root.used()), (200, 300, 300));
        let e = root.charge(50).unwrap();
        assert_eq!((leaf.used(), mid.used(), root.used()), (200, 300, 350));
        drop((c, d, e));
        assert_eq!((leaf.used(), mid.used(), root.used()), (0, 0, 0));
    }

    #[test]
    fn child_limit_enforced() {
        let root = Partition::new_root(1000);
        let child = Partition::new_child(&root, 100);
        let c = child.charge(80).unwrap();
        assert_eq!(child.charge(21).map(|c| c.bytes()), Err(Error::Nomem));
        assert_eq!((child.used(), root.used()), (80, 80));
        // The parent still has room of its own.
        let r = root.charge(900).unwrap();
        assert_eq!(root.used(), 980);
        drop((c, r));
    }

    #[test]
    fn parent_limit_enforced_and_rolled_back() {
        let root = Partition::new_root(100);
        let mid = Partition::new_child(&root, 1000);
        let leaf = Partition::new_child(&mid, 1000);
        let hog = root.charge(60).unwrap();
        // Fits leaf and mid, not root: nothing may stay charged anywhere.
        assert_eq!(leaf.charge(50).map(|c| c.bytes()), Err(Error::Nomem));
        assert_eq!((leaf.used(), mid.used(), root.used()), (0, 0, 60));
        let ok = leaf.charge(40).unwrap();
        assert_eq!((leaf.used(), mid.used(), root.used()), (40, 40, 100));
        drop(hog);
        assert_eq!((leaf.used(), mid.used(), root.used()), (40, 40, 40));
        drop(ok);
        assert_eq!((leaf.used(), mid.used(), root.used()), (0, 0, 0));
    }

    #[test]
    fn a_child_limit_can_be_set() {
        let root = Partition::new_root(1000);
        let child = Partition::new_child(&root, usize::MAX);
        child.set_limit(100);
        assert_eq!(child.limit(), 100);
        assert_eq!(child.charge(101).map(|c| c.bytes()), Err(Error::Nomem));
        let c = child.charge(100).unwrap();
        assert_eq!(root.used(), 100);
        drop(c);
    }

    #[test]
    fn siblings_share_the_parent() {
        let root = Partition::new_root(100);
        let a = Partition::new_child(&root, 80);
        let b = Partition::new_child(&root, 80);
        let ca = a.charge(70).unwrap();
        assert_eq!(b.charge(31).map(|c| c.bytes()), Err(Error::Nomem));
        let cb = b.charge(30).unwrap();
        assert_eq!((a.used(), b.used(), root.used()), (70, 30, 100));
        drop(ca);
        let cb2 = b.charge(50).unwrap();
        assert_eq!((a.used(), b.used(), root.used()), (0, 80, 80));
        drop((cb, cb2));
        assert_eq!(root.used(), 0);
    }

    /// Interleaved charges and refunds across a small tree, checked against a model after every
    /// step: usage is always the sum of live charges below each node and never over a limit.
    #[test]
    fn interleavings_match_a_model() {
        let root = Partition::new_root(10_000);
        let a = Partition::new_child(&root, 6_000);
        let b = Partition::new_child(&root, 7_000);
        let aa = Partition::new_child(&a, 3_000);
        let nodes = [root.clone(), a.clone(), b.clone(), aa.clone()];
        // Ancestors (as indices into `nodes`) of each node, itself included.
        let chains: [&[usize]; 4] = [&[0], &[1, 0], &[2, 0], &[3, 1, 0]];
        let mut live: Vec<(usize, Charge)> = Vec::new();
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let expect: Vec<usize> = (0..4)
                .map(|n| {
                    live.iter()
                        .filter(|(i, _)| chains[*i].contains(&n))
                        .map(|(_, c)| c.bytes())
                        .sum()
                })
                .collect();
            for (n, p) in nodes.iter().enumerate() {
                assert_eq!(p.used(), expect[n]);
                assert!(p.used() <= p.limit());
            }
            if x.is_multiple_of(3) && !live.is_empty() {
                let i = (x >> 8) as usize % live.len();
                live.swap_remove(i);
            } else {
                let node = (x >> 8) as usize % 4;
                let bytes = (x >> 16) as usize % 1_500;
                let fits = chains[node]
                    .iter()
                    .all(|&n| expect[n] + bytes <= nodes[n].limit());
                match nodes[node].charge(bytes) {
                    Ok(c) => {
                        assert!(fits);
                        live.push((node, c));
                    }
                    Err(e) => {
                        assert_eq!(e, Error::Nomem);
                        assert!(!fits);
                    }
                }
            }
        }
        live.clear();
        assert!(nodes.iter().all(|p| p.used() == 0));
    }

    #[test]
    fn concurrent_charges_never_exceed_limits() {
        extern crate std;
        use std::thread;
        let root = Partition::new_root(1000);
        let kids: Vec<_> = (0..4).map(|_| Partition::new_child(&root, 400)).collect();
        let handles: Vec<_> = kids
            .iter()
            .cloned()
            .map(|p| {
                let root = root.clone();
                thread::spawn(move || {
                    for i in 0..2_000usize {
                        let held: Vec<Charge> = (0..8)
                            .filter_map(|j| p.charge(7 + (i + j) % 90).ok())
                            .collect();
                        assert!(p.used() <= 400 && root.used() <= 1000);
                        drop(held);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(root.used(), 0);
        assert!(kids.iter().all(|k| k.used() == 0));
    }

    #[test]
    fn deep_chains_drop_without_recursion() {
        let root = Partition::new_root(usize::MAX);
        let mut p = root.clone();
        for _ in 0..200_000 {
            p = Partition::new_child(&p, usize::MAX);
        }
        let c = p.charge(1).unwrap();
        assert_eq!(root.used(), 1);
        drop(c);
        drop(p);
        assert_eq!(Arc::strong_count(&root), 1);
    }
}

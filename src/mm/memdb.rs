//! The memory database: exactly one owner for every physical page the hypervisor manages.
//!
//! [`MemDb`] records, for each page-aligned physical range it has been told about, which object
//! owns it ([`Owner`]). Pages it has no entry for are *unowned*. Every change of ownership is a
//! compare-and-swap over a whole range: [`MemDb::update`] moves a range from one owner to another
//! only if every page in it currently belongs to the expected old owner, and otherwise changes
//! nothing. The map, unmap and donate paths use it to make sure no VM gets memory that it, or the
//! extent it maps, does not own.
//!
//! # Relation to Gunyah's memdb
//!
//! Gunyah (`hyp/interfaces/memdb/include/memdb.h`, `hyp/mem/memdb*/`) keeps the same information
//! in a radix tree of physical addresses whose leaf entries are `(object pointer, memdb_type)`
//! pairs. Its types are `NOTYPE` (unowned), `PARTITION`, `ALLOCATOR`, `EXTENT` and
//! `PARTITION_NOMAP`, plus tree-internal level types. The operations correspond like this:
//!
//! | Gunyah | here |
//! |---|---|
//! | `memdb_insert(start, last, obj, type)` (an update from `NOTYPE`) | [`MemDb::insert`] |
//! | `memdb_update(start, last, obj, type, prev_obj, prev_type)` | [`MemDb::update`] |
//! | `memdb_update(..., 0, NOTYPE, owner, PARTITION)` (`partition_remove_ram_range`) | [`MemDb::remove`] |
//! | `memdb_lookup(addr)` (`ERROR_MEMDB_EMPTY` for an unowned page) | [`MemDb::lookup`] (`None`) |
//! | `memdb_is_ownership_contiguous(start, last, obj, type)` | [`MemDb::is_owned_by`] |
//! | `memdb_walk(obj, type, fn, arg)` | [`MemDb::ranges_of`] |
//! | `memdb_range_walk(obj, type, start, last, fn, arg)` | [`MemDb::ranges_of_within`] |
//!
//! Differences, all deliberate:
//!
//! - **Ranges, not a tree.** The database is a sorted vector of coalesced ranges, so a lookup or
//!   an ownership check is one binary search (O(log n)); a change is a binary search plus a shift
//!   of the vector's tail. The number of ranges stays small: a handful per partition, extent and
//!   VM.
//! - **Half-open ranges.** Callers pass `(start, size)`; Gunyah passes an inclusive last address.
//! - **Argument checks.** Gunyah's `memdb_range_check` returns `ARGUMENT_INVALID` for an empty or
//!   backwards range and `ARGUMENT_SIZE` past its maximum address. Here both `start` and `size`
//!   must be page aligned ([`Error::ArgumentAlignment`]), `size` must be non-zero
//!   ([`Error::ArgumentSize`]) and `start + size` must fit in 64 bits ([`Error::AddrOverflow`]),
//!   checked in that order. So the last page of the 64-bit address space cannot be recorded.
//! - **Errors for a failed update.** As in Gunyah, an `insert` over an owned page and an update
//!   or removal that finds a page with another owner fail with [`Error::MemdbNotOwner`]. If the
//!   page found is *unowned*, Gunyah also returns `MEMDB_NOT_OWNER` (it compares against the
//!   `NOTYPE` entry). Wurley returns [`Error::MemdbEmpty`] instead, so callers can tell "nobody
//!   owns this" from "someone else owns this". The first page of the range that does not belong
//!   to the expected owner decides which error is returned.
//! - **All or nothing, without rollback.** Gunyah's original memdb writes entries one by one and
//!   rolls back on failure. Its newer bitmap version checks ownership before changing anything.
//!   This module checks everything, and reserves any vector space it needs
//!   ([`Error::Nomem`] if that fails), before it changes anything, so a failed call leaves the
//!   database exactly as it was.
//! - **Owners are numbers, not pointers.** [`Owner`] names the kind of owner and an id chosen by
//!   the caller. [`Owner::Vm`] has no Gunyah counterpart: Gunyah VMs reach memory only through
//!   extents mapped into their address spaces. `ALLOCATOR` and `PARTITION_NOMAP` have no variant
//!   yet.
//! - **No internal locking.** Gunyah serialises writers with a spinlock and lets readers use RCU.
//!   Here `&mut self` does the same job: the owner of the `MemDb` puts it behind a lock.

use alloc::vec::Vec;

use wurley_abi::Error;

use super::addr::PAGE_SIZE;

/// Who owns a physical page range. The numeric ids are opaque; the caller assigns them (for
/// example an object-table index or a VMID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// The hypervisor itself: its image, heap and page tables (Gunyah: the private partition or its
    /// allocator).
    Hypervisor,
    /// A partition's memory that is not yet part of an extent (Gunyah `MEMDB_TYPE_PARTITION`).
    Partition(u32),
    /// A memory extent (Gunyah `MEMDB_TYPE_EXTENT`).
    Extent(u32),
    /// A virtual machine, by VMID (Wurley only; see the [module documentation](self)).
    Vm(u16),
}

/// One stored range `[start, end)` and its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    start: u64,
    end: u64,
    owner: Owner,
}

/// A harmless value for unused slots of the fixed-size scratch array in [`MemDb::transfer`].
const UNUSED: Entry = Entry {
    start: 0,
    end: 0,
    owner: Owner::Hypervisor,
};

/// The memory database. See the [module documentation](self).
#[derive(Debug, Default)]
pub struct MemDb {
    /// Owned memory: sorted by address, page aligned, each range non-empty, no two overlapping,
    /// and no two adjacent ranges with the same owner (those are merged into one).
    ranges: Vec<Entry>,
    /// Test hook: make the next growth of `ranges` fail as if memory ran out.
    #[cfg(test)]
    fail_reserve: bool,
}

/// Checks a `(start, size)` argument pair and returns the exclusive end address.
fn check_range(start: u64, size: u64) -> Result<u64, Error> {
    if !start.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
        return Err(Error::ArgumentAlignment);
    }
    if size == 0 {
        return Err(Error::ArgumentSize);
    }
    start.checked_add(size).ok_or(Error::AddrOverflow)
}

impl MemDb {
    /// An empty database: every page unowned.
    pub const fn new() -> Self {
        Self {
            ranges: Vec::new(),
            #[cfg(test)]
            fail_reserve: false,
        }
    }

    /// Records `owner` as the owner of the unowned range `[start, start + size)`.
    ///
    /// Fails with [`Error::MemdbNotOwner`] if any page of the range already has an owner (as
    /// Gunyah's `memdb_insert`), and with the argument errors listed in the
    /// [module documentation](self). Nothing changes on failure.
    pub fn insert(&mut self, start: u64, size: u64, owner: Owner) -> Result<(), Error> {
        self.transfer(start, size, None, Some(owner))
    }

    /// Moves the range `[start, start + size)` from `from` to `to`, all or nothing.
    ///
    /// Every page of the range must belong to `from`. The first page that does not decides the
    /// error: [`Error::MemdbEmpty`] if it is unowned, [`Error::MemdbNotOwner`] if someone else owns
    /// it. Nothing changes on failure. `from == to` checks ownership and changes nothing.
    pub fn update(&mut self, start: u64, size: u64, from: Owner, to: Owner) -> Result<(), Error> {
        self.transfer(start, size, Some(from), Some(to))
    }

    /// Makes the range `[start, start + size)`, owned entirely by `owner`, unowned again. Same
    /// rules and errors as [`update`](Self::update).
    pub fn remove(&mut self, start: u64, size: u64, owner: Owner) -> Result<(), Error> {
        self.transfer(start, size, Some(owner), None)
    }

    /// The owner of the page holding `addr` (any address, aligned or not), with the largest
    /// range `[start, end)` around it that has the same owner. `None` if the page is unowned.
    pub fn lookup(&self, addr: u64) -> Option<(Owner, u64, u64)> {
        self.find(addr).map(|i| {
            let e = self.ranges[i];
            (e.owner, e.start, e.end)
        })
    }

    /// Whether every page of `[start, start + size)` belongs to `owner`. `false` for arguments that
    /// [`update`](Self::update) would reject.
    pub fn is_owned_by(&self, start: u64, size: u64, owner: Owner) -> bool {
        check_range(start, size).is_ok_and(|end| self.owned_entry(start, end, owner).is_ok())
    }

    /// The ranges owned by `owner`, as `(start, end)` with `end` exclusive, in address order.
    /// Consecutive ranges are never adjacent.
    pub fn ranges_of(&self, owner: Owner) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges
            .iter()
            .filter(move |e| e.owner == owner)
            .map(|e| (e.start, e.end))
    }

    /// The parts of `[start, start + size)` owned by `owner`, as `(start, end)` with `end`
    /// exclusive, in address order: [`ranges_of`](Self::ranges_of) clipped to the window. Any
    /// `start` and `size` are accepted; the window is cut off at the top of the address space.
    pub fn ranges_of_within(
        &self,
        owner: Owner,
        start: u64,
        size: u64,
    ) -> impl Iterator<Item = (u64, u64)> + '_ {
        let end = start.saturating_add(size);
        let first = self.first_ending_after(start);
        self.ranges[first..]
            .iter()
            .take_while(move |e| e.start < end && start < end)
            .filter(move |e| e.owner == owner)
            .map(move |e| (e.start.max(start), e.end.min(end)))
    }

    /// Every stored range as `(start, end, owner)` with `end` exclusive, in address order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64, Owner)> + '_ {
        self.ranges.iter().map(|e| (e.start, e.end, e.owner))
    }

    /// The number of stored ranges: maximal runs of pages with the same owner.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether no page has an owner.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The index of the first range that ends after `addr`: the one holding `addr`, or else the
    /// first one above it (or `len()`).
    fn first_ending_after(&self, addr: u64) -> usize {
        self.ranges.partition_point(|e| e.end <= addr)
    }

    /// The index of the range holding `addr`, if any.
    fn find(&self, addr: u64) -> Option<usize> {
        let i = self.first_ending_after(addr);
        self.ranges
            .get(i)
            .is_some_and(|e| e.start <= addr)
            .then_some(i)
    }

    /// The index of the range that holds all of `[start, end)` and belongs to `owner`. Because
    /// ranges are coalesced, a run owned by one owner is always a single range. The error names
    /// the first page that is not `owner`'s.
    fn owned_entry(&self, start: u64, end: u64, owner: Owner) -> Result<usize, Error> {
        let i = self.find(start).ok_or(Error::MemdbEmpty)?;
        let e = self.ranges[i];
        if e.owner != owner {
            return Err(Error::MemdbNotOwner);
        }
        if e.end < end {
            // The page at `e.end` is not `owner`'s: either another range starts right there (with
            // a different owner, since ranges are coalesced) or the page is unowned.
            let next_owned = self.ranges.get(i + 1).is_some_and(|n| n.start == e.end);
            return Err(if next_owned {
                Error::MemdbNotOwner
            } else {
                Error::MemdbEmpty
            });
        }
        Ok(i)
    }

    /// The one ownership change behind `insert` (`from == None`), `update` and `remove`
    /// (`to == None`): checks everything, then rewrites the affected ranges in place.
    fn transfer(
        &mut self,
        start: u64,
        size: u64,
        from: Option<Owner>,
        to: Option<Owner>,
    ) -> Result<(), Error> {
        let end = check_range(start, size)?;

        // The stored ranges `lo..hi` are replaced; `old` is the one range that held the range
        // before (none for an insert).
        let (mut lo, mut hi, old) = match from {
            Some(from) => {
                let i = self.owned_entry(start, end, from)?;
                (i, i + 1, Some(self.ranges[i]))
            }
            None => {
                let i = self.first_ending_after(start);
                if self.ranges.get(i).is_some_and(|e| e.start < end) {
                    return Err(Error::MemdbNotOwner);
                }
                (i, i, None)
            }
        };
        if from == to {
            return Ok(());
        }

        // Build the replacement: what is left of `old` below the range, the range itself under
        // its new owner (merged with same-owner neighbours), and what is left of `old` above it.
        let mut new = [UNUSED; 3];
        let mut n = 0;
        let left = old.filter(|o| o.start < start);
        let right = old.filter(|o| end < o.end);
        if let Some(o) = left {
            new[n] = Entry { end: start, ..o };
            n += 1;
        }
        if let Some(to) = to {
            let mut mid = Entry {
                start,
                end,
                owner: to,
            };
            if left.is_none()
                && let Some(prev) = lo.checked_sub(1).map(|p| self.ranges[p])
                && prev.end == start
                && prev.owner == to
            {
                lo -= 1;
                mid.start = prev.start;
            }
            if right.is_none()
                && let Some(next) = self.ranges.get(hi).copied()
                && next.start == end
                && next.owner == to
            {
                hi += 1;
                mid.end = next.end;
            }
            new[n] = mid;
            n += 1;
        }
        if let Some(o) = right {
            new[n] = Entry { start: end, ..o };
            n += 1;
        }
        self.replace(lo, hi, &new[..n])
    }

    /// Replaces the stored ranges `lo..hi` with `new`. Reserves space first, so it either does
    /// the whole job or fails with [`Error::Nomem`] before touching anything.
    fn replace(&mut self, lo: usize, hi: usize, new: &[Entry]) -> Result<(), Error> {
        let old_n = hi - lo;
        if new.len() > old_n {
            self.reserve(new.len() - old_n)?;
        }
        let common = old_n.min(new.len());
        self.ranges[lo..lo + common].copy_from_slice(&new[..common]);
        if new.len() > old_n {
            // No reallocation: the space was reserved above.
            for (k, e) in new.iter().enumerate().skip(common) {
                self.ranges.insert(lo + k, *e);
            }
        } else {
            self.ranges.drain(lo + common..hi);
        }
        Ok(())
    }

    /// Makes room for `extra` more ranges without panicking when memory runs out.
    fn reserve(&mut self, extra: usize) -> Result<(), Error> {
        #[cfg(test)]
        if core::mem::take(&mut self.fail_reserve) {
            return Err(Error::Nomem);
        }
        self.ranges.try_reserve(extra).map_err(|_| Error::Nomem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = PAGE_SIZE;
    const BASE: u64 = 0x4000_0000;
    const A: Owner = Owner::Partition(1);
    const B: Owner = Owner::Extent(2);
    const C: Owner = Owner::Vm(3);

    /// Page `n` of the test window.
    fn pg(n: u64) -> u64 {
        BASE + n * P
    }

    /// The stored ranges as `(first page, page count, owner)` relative to the test window.
    fn pages(db: &MemDb) -> Vec<(u64, u64, Owner)> {
        db.iter()
            .map(|(s, e, o)| ((s - BASE) / P, (e - s) / P, o))
            .collect()
    }

    /// Checks the structural invariants of the database.
    fn check_invariants(db: &MemDb) {
        let mut prev: Option<Entry> = None;
        for e in &db.ranges {
            assert!(e.start < e.end, "empty range {e:?}");
            assert!(
                e.start.is_multiple_of(P) && e.end.is_multiple_of(P),
                "unaligned {e:?}"
            );
            if let Some(p) = prev {
                assert!(p.end <= e.start, "unsorted or overlapping: {p:?} {e:?}");
                assert!(
                    !(p.end == e.start && p.owner == e.owner),
                    "not coalesced: {p:?} {e:?}"
                );
            }
            prev = Some(*e);
        }
    }

    #[test]
    fn empty_database() {
        let db = MemDb::new();
        assert!(db.is_empty());
        assert_eq!(db.len(), 0);
        assert_eq!(db.lookup(BASE), None);
        assert!(!db.is_owned_by(BASE, P, A));
        assert_eq!(db.ranges_of(A).count(), 0);
        let mut db = MemDb::default();
        assert_eq!(db.update(BASE, P, A, B), Err(Error::MemdbEmpty));
        assert_eq!(db.remove(BASE, P, A), Err(Error::MemdbEmpty));
    }

    #[test]
    fn argument_checks() {
        let mut db = MemDb::new();
        db.insert(pg(0), 4 * P, A).unwrap();
        for (start, size, err) in [
            (BASE + 1, P, Error::ArgumentAlignment),
            (BASE + 0x800, P, Error::ArgumentAlignment),
            (BASE, P + 1, Error::ArgumentAlignment),
            (BASE, 0x800, Error::ArgumentAlignment),
            (BASE, 0, Error::ArgumentSize),
            (BASE + 1, 0, Error::ArgumentAlignment),
            (u64::MAX - P + 1, P, Error::AddrOverflow),
            (u64::MAX - 2 * P + 1, 4 * P, Error::AddrOverflow),
            (P, u64::MAX - P + 1, Error::AddrOverflow),
        ] {
            assert_eq!(
                db.insert(start, size, B),
                Err(err),
                "insert {start:#x}+{size:#x}"
            );
            assert_eq!(
                db.update(start, size, A, B),
                Err(err),
                "update {start:#x}+{size:#x}"
            );
            assert_eq!(
                db.remove(start, size, A),
                Err(err),
                "remove {start:#x}+{size:#x}"
            );
            assert!(!db.is_owned_by(start, size, A));
        }
        assert_eq!(pages(&db), [(0, 4, A)]);
        // The highest recordable page ends exactly at the top of the address space minus a page.
        let top = u64::MAX - 2 * P + 1;
        db.insert(top, P, C).unwrap();
        assert_eq!(db.lookup(u64::MAX - P), Some((C, top, top + P)));
        assert_eq!(db.lookup(u64::MAX), None);
    }

    #[test]
    fn insert_and_lookup() {
        let mut db = MemDb::new();
        db.insert(pg(2), 3 * P, A).unwrap();
        assert_eq!(db.len(), 1);
        assert_eq!(db.lookup(pg(1)), None);
        assert_eq!(db.lookup(pg(2)), Some((A, pg(2), pg(5))));
        assert_eq!(db.lookup(pg(4) + 0xfff), Some((A, pg(2), pg(5))));
        assert_eq!(db.lookup(pg(5)), None);
        assert_eq!(db.lookup(0), None);
        assert_eq!(db.lookup(u64::MAX), None);
    }

    #[test]
    fn insert_over_owned_memory_fails_unchanged() {
        let mut db = MemDb::new();
        db.insert(pg(2), 3 * P, A).unwrap();
        db.insert(pg(8), 2 * P, B).unwrap();
        let before = pages(&db);
        for (start, n) in [(2, 3), (0, 3), (4, 2), (3, 1), (0, 16), (5, 4), (9, 1)] {
            assert_eq!(db.insert(pg(start), n * P, C), Err(Error::MemdbNotOwner));
            assert_eq!(db.insert(pg(start), n * P, A), Err(Error::MemdbNotOwner));
            assert_eq!(pages(&db), before);
        }
        // The gap between them is still free.
        db.insert(pg(5), 3 * P, C).unwrap();
        assert_eq!(pages(&db), [(2, 3, A), (5, 3, C), (8, 2, B)]);
    }

    #[test]
    fn insert_coalesces_with_same_owner_neighbours() {
        let mut db = MemDb::new();
        db.insert(pg(0), 2 * P, A).unwrap();
        db.insert(pg(4), 2 * P, A).unwrap();
        assert_eq!(db.len(), 2);
        db.insert(pg(2), P, A).unwrap();
        assert_eq!(pages(&db), [(0, 3, A), (4, 2, A)]);
        db.insert(pg(3), P, A).unwrap();
        assert_eq!(pages(&db), [(0, 6, A)]);
        db.insert(pg(6), P, B).unwrap();
        db.insert(pg(7), P, A).unwrap();
        assert_eq!(pages(&db), [(0, 6, A), (6, 1, B), (7, 1, A)]);
        check_invariants(&db);
    }

    #[test]
    fn update_splits_and_merges() {
        let mut db = MemDb::new();
        db.insert(pg(0), 8 * P, A).unwrap();
        // Middle: split in three.
        db.update(pg(3), 2 * P, A, B).unwrap();
        assert_eq!(pages(&db), [(0, 3, A), (3, 2, B), (5, 3, A)]);
        // Next to a range of the new owner: merges with it.
        db.update(pg(5), P, A, B).unwrap();
        assert_eq!(pages(&db), [(0, 3, A), (3, 3, B), (6, 2, A)]);
        db.update(pg(2), P, A, B).unwrap();
        assert_eq!(pages(&db), [(0, 2, A), (2, 4, B), (6, 2, A)]);
        // A whole range to the owner on both sides: three become one.
        db.update(pg(2), 4 * P, B, A).unwrap();
        assert_eq!(pages(&db), [(0, 8, A)]);
        // Edges.
        db.update(pg(0), P, A, C).unwrap();
        db.update(pg(7), P, A, C).unwrap();
        assert_eq!(pages(&db), [(0, 1, C), (1, 6, A), (7, 1, C)]);
        db.update(pg(1), 6 * P, A, C).unwrap();
        assert_eq!(pages(&db), [(0, 8, C)]);
        check_invariants(&db);
    }

    #[test]
    fn update_to_same_owner_is_a_checked_no_op() {
        let mut db = MemDb::new();
        db.insert(pg(0), 4 * P, A).unwrap();
        db.update(pg(1), 2 * P, A, A).unwrap();
        assert_eq!(pages(&db), [(0, 4, A)]);
        assert_eq!(db.update(pg(3), 2 * P, A, A), Err(Error::MemdbEmpty));
        assert_eq!(db.update(pg(1), P, B, B), Err(Error::MemdbNotOwner));
    }

    #[test]
    fn update_errors_leave_database_unchanged() {
        let mut db = MemDb::new();
        db.insert(pg(0), 4 * P, A).unwrap();
        db.insert(pg(4), 2 * P, B).unwrap();
        db.insert(pg(8), 2 * P, A).unwrap();
        let before = pages(&db);
        // (first page, pages, expected owner, error)
        for (start, n, from, err) in [
            (0, 1, B, Error::MemdbNotOwner),  // wrong owner
            (6, 1, A, Error::MemdbEmpty),     // unowned
            (3, 2, A, Error::MemdbNotOwner),  // runs into B's memory
            (4, 3, B, Error::MemdbEmpty),     // runs into a hole
            (6, 3, A, Error::MemdbEmpty),     // starts in a hole, then A's
            (2, 8, A, Error::MemdbNotOwner),  // A, then B, then a hole, then A
            (9, 2, A, Error::MemdbEmpty),     // past the end of everything
            (0, 10, A, Error::MemdbNotOwner), // two A ranges with other things between
            (5, 1, Owner::Hypervisor, Error::MemdbNotOwner),
        ] {
            assert_eq!(
                db.update(pg(start), n * P, from, C),
                Err(err),
                "update {start}+{n}"
            );
            assert_eq!(
                db.remove(pg(start), n * P, from),
                Err(err),
                "remove {start}+{n}"
            );
            assert_eq!(pages(&db), before);
        }
    }

    #[test]
    fn remove_releases_memory() {
        let mut db = MemDb::new();
        db.insert(pg(0), 8 * P, A).unwrap();
        db.remove(pg(2), 2 * P, A).unwrap();
        assert_eq!(pages(&db), [(0, 2, A), (4, 4, A)]);
        assert_eq!(db.lookup(pg(2)), None);
        db.remove(pg(0), 2 * P, A).unwrap();
        assert_eq!(pages(&db), [(4, 4, A)]);
        db.remove(pg(7), P, A).unwrap();
        assert_eq!(pages(&db), [(4, 3, A)]);
        db.remove(pg(4), 3 * P, A).unwrap();
        assert!(db.is_empty());
        // Released memory can be inserted again, by anyone.
        db.insert(pg(0), 8 * P, B).unwrap();
        assert_eq!(pages(&db), [(0, 8, B)]);
    }

    #[test]
    fn ownership_queries() {
        let mut db = MemDb::new();
        db.insert(pg(0), 4 * P, A).unwrap();
        db.insert(pg(4), 2 * P, B).unwrap();
        db.insert(pg(8), 2 * P, A).unwrap();
        assert!(db.is_owned_by(pg(0), 4 * P, A));
        assert!(db.is_owned_by(pg(1), 2 * P, A));
        assert!(!db.is_owned_by(pg(1), 4 * P, A));
        assert!(!db.is_owned_by(pg(0), 10 * P, A));
        assert!(!db.is_owned_by(pg(6), P, A));
        assert!(db.is_owned_by(pg(4), 2 * P, B));
        assert!(!db.is_owned_by(pg(4), 2 * P, C));
        assert!(!db.is_owned_by(pg(0), 0, A));
        assert_eq!(
            db.ranges_of(A).collect::<Vec<_>>(),
            [(pg(0), pg(4)), (pg(8), pg(10))]
        );
        assert_eq!(db.ranges_of(B).collect::<Vec<_>>(), [(pg(4), pg(6))]);
        assert_eq!(db.ranges_of(C).count(), 0);
        assert_eq!(
            db.ranges_of_within(A, pg(2), 7 * P).collect::<Vec<_>>(),
            [(pg(2), pg(4)), (pg(8), pg(9))]
        );
        assert_eq!(db.ranges_of_within(A, pg(4), 4 * P).collect::<Vec<_>>(), []);
        assert_eq!(
            db.ranges_of_within(A, 0, u64::MAX).collect::<Vec<_>>(),
            [(pg(0), pg(4)), (pg(8), pg(10))]
        );
        assert_eq!(db.ranges_of_within(A, pg(1), 0).count(), 0);
    }

    #[test]
    fn out_of_memory_changes_nothing() {
        let mut db = MemDb::new();
        db.insert(pg(0), 8 * P, A).unwrap();
        db.fail_reserve = true;
        // A split needs two more ranges: refused, unchanged.
        assert_eq!(db.update(pg(2), P, A, B), Err(Error::Nomem));
        assert_eq!(pages(&db), [(0, 8, A)]);
        db.fail_reserve = true;
        assert_eq!(db.remove(pg(2), P, A), Err(Error::Nomem));
        db.fail_reserve = true;
        assert_eq!(db.insert(pg(9), P, B), Err(Error::Nomem));
        assert_eq!(pages(&db), [(0, 8, A)]);
        // Operations that do not add ranges never allocate.
        db.fail_reserve = true;
        db.insert(pg(8), P, A).unwrap();
        db.update(pg(0), 9 * P, A, B).unwrap();
        db.remove(pg(8), P, B).unwrap();
        assert_eq!(pages(&db), [(0, 8, B)]);
        assert!(db.fail_reserve, "no reservation was attempted");
    }

    /// The ownership changes a Gunyah boot and VM launch go through, in order.
    #[test]
    fn gunyah_style_lifecycle() {
        let hyp = Owner::Hypervisor;
        let root = Owner::Partition(0);
        let (me, child) = (Owner::Extent(10), Owner::Extent(11));
        let vm = Owner::Vm(3);
        let ram = 0x4000_0000;
        let mut db = MemDb::new();
        // Hypervisor image and heap, then the rest of RAM to the root partition.
        db.insert(ram, 0x20_0000, hyp).unwrap();
        db.insert(ram + 0x20_0000, 0x3fe0_0000, root).unwrap();
        // An extent takes part of the partition's memory (memextent activation).
        db.update(ram + 0x100_0000, 0x100_0000, root, me).unwrap();
        // Donation to a child extent, then part of that to a VM.
        db.update(ram + 0x180_0000, 0x40_0000, me, child).unwrap();
        db.update(ram + 0x180_0000, 0x10_0000, child, vm).unwrap();
        assert!(db.is_owned_by(ram + 0x180_0000, 0x10_0000, vm));
        // Nobody can take the hypervisor's memory or another extent's.
        assert_eq!(db.update(ram, 0x1000, root, vm), Err(Error::MemdbNotOwner));
        assert_eq!(
            db.update(ram + 0x100_0000, 0x100_0000, me, vm),
            Err(Error::MemdbNotOwner)
        );
        // Teardown in reverse restores the single partition range.
        db.update(ram + 0x180_0000, 0x10_0000, vm, child).unwrap();
        db.update(ram + 0x180_0000, 0x40_0000, child, me).unwrap();
        db.update(ram + 0x100_0000, 0x100_0000, me, root).unwrap();
        assert_eq!(
            db.iter().collect::<Vec<_>>(),
            [
                (ram, ram + 0x20_0000, hyp),
                (ram + 0x20_0000, ram + 0x4000_0000, root)
            ]
        );
        check_invariants(&db);
    }

    // ---- Randomised model check -------------------------------------------------------------

    const PAGES: usize = 64;
    const OWNERS: [Owner; 5] = [
        Owner::Hypervisor,
        Owner::Partition(0),
        Owner::Partition(1),
        Owner::Extent(7),
        Owner::Vm(3),
    ];

    /// xorshift64*: small, deterministic, good enough for picking test cases.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn owner(&mut self) -> Owner {
            OWNERS[self.below(OWNERS.len() as u64) as usize]
        }
    }

    type Model = [Option<Owner>; PAGES];

    /// The model's verdict for the pages `first..first + n` under the same argument rules.
    fn model_range(start: u64, size: u64) -> Result<(usize, usize), Error> {
        check_range(start, size)?;
        let first = ((start - BASE) / P) as usize;
        Ok((first, first + (size / P) as usize))
    }

    /// Per-page reference semantics of insert (`from == None`), update and remove (`to == None`).
    fn model_transfer(
        model: &mut Model,
        start: u64,
        size: u64,
        from: Option<Owner>,
        to: Option<Owner>,
    ) -> Result<(), Error> {
        let (a, b) = model_range(start, size)?;
        for page in &model[a..b] {
            match (from, page) {
                (None, None) => {}
                (None, Some(_)) => return Err(Error::MemdbNotOwner),
                (Some(_), None) => return Err(Error::MemdbEmpty),
                (Some(f), Some(o)) if f == *o => {}
                (Some(_), Some(_)) => return Err(Error::MemdbNotOwner),
            }
        }
        model[a..b].fill(to);
        Ok(())
    }

    /// Maximal runs of one owner in the model, as `(start, end, owner)` addresses.
    fn model_runs(model: &Model) -> Vec<(u64, u64, Owner)> {
        let mut runs: Vec<(u64, u64, Owner)> = Vec::new();
        for (i, page) in model.iter().enumerate() {
            let Some(o) = *page else { continue };
            let addr = pg(i as u64);
            match runs.last_mut() {
                Some(last) if last.1 == addr && last.2 == o => last.1 += P,
                _ => runs.push((addr, addr + P, o)),
            }
        }
        runs
    }

    /// Compares everything observable about `db` with `model`.
    fn compare(db: &MemDb, model: &Model, rng: &mut Rng) {
        check_invariants(db);
        let runs = model_runs(model);
        assert_eq!(db.iter().collect::<Vec<_>>(), runs);
        assert_eq!(db.len(), runs.len());
        for i in 0..PAGES {
            let addr = pg(i as u64) + rng.below(P);
            let expected = runs
                .iter()
                .find(|r| r.0 <= addr && addr < r.1)
                .map(|r| (r.2, r.0, r.1));
            assert_eq!(db.lookup(addr), expected, "lookup {addr:#x}");
        }
        assert_eq!(db.lookup(BASE - 1), None);
        assert_eq!(db.lookup(pg(PAGES as u64)), None);
        for owner in OWNERS {
            let expected: Vec<_> = runs
                .iter()
                .filter(|r| r.2 == owner)
                .map(|r| (r.0, r.1))
                .collect();
            assert_eq!(db.ranges_of(owner).collect::<Vec<_>>(), expected);
        }
    }

    /// Bends a valid `(start, size)` into a bad argument once in a while.
    fn maybe_bad(rng: &mut Rng, mut start: u64, mut size: u64) -> (u64, u64) {
        match rng.below(40) {
            0 => start += 0x800,
            1 => size -= 0x10,
            2 => size = 0,
            _ => {}
        }
        (start, size)
    }

    /// A random range in the window, for queries.
    fn random_range(rng: &mut Rng) -> (u64, u64) {
        let first = rng.below(PAGES as u64);
        let n = 1 + rng.below((PAGES as u64 - first).min(16));
        maybe_bad(rng, pg(first), n * P)
    }

    /// A random insert (`from == None`), update or remove (`to == None`), biased so that a good
    /// share succeeds: `from` is usually the owner of the first page, and the range often stays
    /// inside the run of pages that look like the first one.
    fn random_op(rng: &mut Rng, model: &Model) -> (u64, u64, Option<Owner>, Option<Owner>) {
        let first = rng.below(PAGES as u64) as usize;
        let kind = rng.below(3);
        let from = (kind != 0).then(|| match model[first] {
            Some(o) if rng.below(4) != 0 => o,
            _ => rng.owner(),
        });
        let to = (kind != 2).then(|| rng.owner());
        let run = model[first..]
            .iter()
            .take_while(|p| **p == model[first])
            .count();
        let max = if rng.below(2) == 0 {
            run
        } else {
            PAGES - first
        };
        let n = 1 + rng.below(max.min(16) as u64);
        let (start, size) = maybe_bad(rng, pg(first as u64), n * P);
        (start, size, from, to)
    }

    fn run_model(seed: u64, ops: usize) {
        let mut rng = Rng(seed);
        let mut db = MemDb::new();
        let mut model: Model = [None; PAGES];
        // Outcome counts, to make sure every path is exercised: successful insert, update and
        // remove, out of memory, empty, not owner, bad argument.
        let mut seen = [0usize; 7];
        let mut most_ranges = 0;
        for step in 0..ops {
            let (start, size, from, to) = random_op(&mut rng, &model);
            let before = db.ranges.clone();
            let expected = model_transfer(&mut model, start, size, from, to);
            db.fail_reserve = rng.below(10) == 0;
            let mut got = match (from, to) {
                (None, Some(t)) => db.insert(start, size, t),
                (Some(f), Some(t)) => db.update(start, size, f, t),
                (Some(f), None) => db.remove(start, size, f),
                (None, None) => unreachable!(),
            };
            if got == Err(Error::Nomem) {
                seen[3] += 1;
                // Out of memory is allowed only for a change that adds ranges, and must leave
                // the database untouched; retrying with memory available then behaves normally.
                assert_eq!(
                    db.ranges, before,
                    "seed {seed} step {step}: Nomem changed the db"
                );
                assert!(
                    expected.is_ok(),
                    "seed {seed} step {step}: Nomem for a failing op"
                );
                assert!(model_runs(&model).len() > before.len());
                db.fail_reserve = false;
                got = match (from, to) {
                    (None, Some(t)) => db.insert(start, size, t),
                    (Some(f), Some(t)) => db.update(start, size, f, t),
                    (Some(f), None) => db.remove(start, size, f),
                    (None, None) => unreachable!(),
                };
            }
            db.fail_reserve = false;
            assert_eq!(
                got, expected,
                "seed {seed} step {step}: {from:?} -> {to:?} at {start:#x}+{size:#x}"
            );
            if expected.is_err() {
                assert_eq!(
                    db.ranges, before,
                    "seed {seed} step {step}: failed op changed db"
                );
            }
            seen[match (expected, from, to) {
                (Ok(()), None, _) => 0,
                (Ok(()), _, Some(_)) => 1,
                (Ok(()), _, None) => 2,
                (Err(Error::MemdbEmpty), ..) => 4,
                (Err(Error::MemdbNotOwner), ..) => 5,
                (Err(_), ..) => 6,
            }] += 1;
            compare(&db, &model, &mut rng);
            most_ranges = most_ranges.max(db.len());

            // A random ownership query and a clipped walk.
            let (qs, qz) = random_range(&mut rng);
            let owner = rng.owner();
            let expected_owned = model_range(qs, qz)
                .is_ok_and(|(a, b)| model[a..b].iter().all(|p| *p == Some(owner)));
            assert_eq!(db.is_owned_by(qs, qz, owner), expected_owned);
            let clipped: Vec<_> = model_runs(&model)
                .into_iter()
                .filter(|r| r.2 == owner && r.0 < qs + qz && qs < r.1)
                .map(|r| (r.0.max(qs), r.1.min(qs + qz)))
                .filter(|(a, b)| a < b)
                .collect();
            assert_eq!(
                db.ranges_of_within(owner, qs, qz).collect::<Vec<_>>(),
                clipped
            );
        }
        assert!(
            seen.iter().all(|&n| n >= 20),
            "seed {seed}: too few: {seen:?}"
        );
        assert!(most_ranges >= 10, "seed {seed}: never fragmented");
    }

    #[test]
    fn model_check() {
        for seed in [
            1,
            0x9e37_79b9_7f4a_7c15,
            0xdead_beef,
            42,
            0x1234_5678_9abc_def0,
            7,
            0xffff_ffff,
            0x0123_4567,
        ] {
            run_model(seed, 4000);
        }
    }
}

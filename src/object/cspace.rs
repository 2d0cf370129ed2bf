//! Capability spaces: the tables of capabilities a VM names objects through.
//!
//! This module owns the capability table ([`CSpace`]) and the set of live cspaces that
//! revocation walks ([`Registry`]). A capability (cap) is an object handle plus rights (a `u32`
//! mask whose meaning depends on the object type), a master flag, a lineage and a state:
//!
//! - **Valid**: usable;
//! - **Revoked**: its master revoked it (`cspace_revoke_caps_from`); every lookup fails with
//!   `CSPACE_CAP_REVOKED` until it is deleted. A revoked cap no longer holds its object.
//!
//! A *master* cap is what creating an object returns ([`CSpace::insert_master`]); it starts a
//! new lineage. Copies ([`Registry::copy`]) keep the lineage, are never masters and have at most
//! the rights of the cap they were copied from. Revoking through a master
//! ([`Registry::revoke_derived`]) revokes every non-master cap of its lineage in every
//! registered cspace.
//!
//! # CapIDs
//!
//! CapIDs are opaque and randomised per cspace. A cap's internal value is
//! `v = generation << 16 | slot` (32 bits; a slot's 16-bit generation is bumped on every delete,
//! so the ID of a deleted cap does not name the slot's next cap until the generation wraps).
//! The guest sees `v * mult ^ base` (wrapping, mod 2^64) with an odd `mult` and a `base` derived
//! from the cspace's seed; decoding multiplies by the inverse of `mult` and rejects anything
//! that is not a 32-bit value naming a used slot of the right generation. An ID from another
//! cspace therefore decodes to a 32-bit value with probability about 2^-32. No cap ever gets
//! [`CapId::INVALID`] (`u64::MAX`): the one slot/generation pair that would encode to it is
//! skipped.
//!
//! Gunyah (`cspace_twolevel`) answers `ERROR_ARGUMENT_INVALID` for an ID that does not decode
//! and `ERROR_CSPACE_CAP_NULL` for one that names an empty slot. Here every unusable ID,
//! `CapId::INVALID` included, is `CSPACE_CAP_NULL`.
//!
//! # Locking
//!
//! Each cspace has one spin lock over its table. Copies and revocations also take the
//! registry's lock (copy first, then the cspaces one at a time), so a copy cannot slip a derived
//! cap past a concurrent revocation. Nothing calls into a stored object while holding a lock
//! except to clone it: object handles that leave a table (delete, revoke, a failed copy) are
//! dropped after the locks are released. Every operation is O(capacity) at worst (revocation:
//! O(total capacity of all registered cspaces)).

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;
use wurley_abi::{CapId, Error};

use super::entropy::mix;
use super::{CapObject, ObjectType};

/// The most caps one cspace can hold (slot indices are 16 bits).
pub const MAX_CAPACITY: usize = 1 << 16;

/// Source of lineage numbers: every master cap starts a new one.
static NEXT_LINEAGE: AtomicU64 = AtomicU64::new(1);

/// A used slot's capability.
struct Cap<T> {
    object: T,
    ty: ObjectType,
    rights: u32,
    master: bool,
    lineage: u64,
}

enum Entry<T> {
    Empty,
    Valid(Cap<T>),
    /// Revoked; the object handle is normally dropped at revocation, but is kept here (until
    /// the cap is deleted) if the revoker could not get memory to drop it outside the lock.
    Revoked(Option<T>),
}

struct Slot<T> {
    generation: u16,
    entry: Entry<T>,
}

struct Table<T> {
    /// Slots allocated so far (grows lazily up to `capacity`; never shrinks, so generations
    /// survive a capacity change).
    slots: Vec<Slot<T>>,
    capacity: usize,
    used: usize,
    /// Where the next free-slot search starts (round robin, so a freed slot is not reused at
    /// once and generations wrap as slowly as possible).
    cursor: usize,
}

impl<T> Table<T> {
    /// The slot `index` if it holds a cap (valid or revoked) of generation `generation`.
    fn slot(&self, index: usize, generation: u16) -> Result<&Slot<T>, Error> {
        match self.slots.get(index) {
            Some(s)
                if index < self.capacity
                    && s.generation == generation
                    && !matches!(s.entry, Entry::Empty) =>
            {
                Ok(s)
            }
            _ => Err(Error::CspaceCapNull),
        }
    }

    fn slot_mut(&mut self, index: usize, generation: u16) -> Result<&mut Slot<T>, Error> {
        let capacity = self.capacity;
        match self.slots.get_mut(index) {
            Some(s)
                if index < capacity
                    && s.generation == generation
                    && !matches!(s.entry, Entry::Empty) =>
            {
                Ok(s)
            }
            _ => Err(Error::CspaceCapNull),
        }
    }

    fn is_full(&self) -> bool {
        self.used >= self.capacity
    }

    /// Takes an empty slot below `capacity` (counted as used from now on): the caller must
    /// fill it.
    fn take_free_slot(&mut self) -> Result<(usize, &mut Slot<T>), Error> {
        let index = self.free_index()?;
        let slot = self.slots.get_mut(index).ok_or(Error::CspaceFull)?;
        self.used += 1;
        self.cursor = index + 1;
        Ok((index, slot))
    }

    /// Finds (allocating if needed) an empty slot below `capacity`.
    fn free_index(&mut self) -> Result<usize, Error> {
        if self.is_full() {
            return Err(Error::CspaceFull);
        }
        let live = self.slots.len().min(self.capacity);
        let start = self.cursor.min(live);
        let empty = |s: &Slot<T>| matches!(s.entry, Entry::Empty);
        if let Some(i) = self
            .slots
            .get(start..live)
            .and_then(|s| s.iter().position(empty))
        {
            return Ok(start + i);
        }
        if self.slots.len() < self.capacity {
            if self.slots.len() == self.slots.capacity() {
                let room = self.capacity - self.slots.len();
                let extra = self.slots.len().clamp(8, 1024).min(room);
                self.slots
                    .try_reserve_exact(extra)
                    .map_err(|_| Error::Nomem)?;
            }
            self.slots.push(Slot {
                generation: 0,
                entry: Entry::Empty,
            });
            return Ok(self.slots.len() - 1);
        }
        self.slots
            .get(..start)
            .and_then(|s| s.iter().position(empty))
            .ok_or(Error::CspaceFull)
    }
}

/// A capability space holding caps to objects of type `T`.
pub struct CSpace<T: CapObject> {
    mult: u64,
    inverse: u64,
    base: u64,
    table: Mutex<Table<T>>,
}

/// The multiplicative inverse of odd `a` modulo 2^64 (Newton's iteration: each step doubles
/// the number of correct low bits, starting from 3 since `a * a == 1 mod 8`).
const fn inverse(a: u64) -> u64 {
    let mut x = a;
    let mut i = 0;
    while i < 5 {
        x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
        i += 1;
    }
    x
}

/// splitmix64: advances `state` and returns the next output.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    mix(*state)
}

impl<T: CapObject> CSpace<T> {
    /// An empty cspace for up to `capacity` caps (`1..=MAX_CAPACITY`, else
    /// `ArgumentInvalid`), whose CapIDs are randomised from `seed`.
    ///
    /// Slots are allocated as caps are inserted; charge the caller's partition
    /// [`bytes_for`](Self::bytes_for)`(capacity)` up front.
    pub fn new(capacity: usize, seed: u64) -> Result<Arc<Self>, Error> {
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(Error::ArgumentInvalid);
        }
        let mut state = seed;
        let mult = splitmix(&mut state) | 1;
        let base = splitmix(&mut state);
        Ok(Arc::new(Self {
            mult,
            inverse: inverse(mult),
            base,
            table: Mutex::new(Table {
                slots: Vec::new(),
                capacity,
                used: 0,
                cursor: 0,
            }),
        }))
    }

    /// An upper estimate of the memory a cspace of `capacity` caps uses.
    pub fn bytes_for(capacity: usize) -> usize {
        capacity
            .saturating_mul(core::mem::size_of::<Slot<T>>())
            .saturating_add(core::mem::size_of::<Self>())
    }

    /// `cspace_configure`: sets the capacity to `max_caps` (`1..=MAX_CAPACITY`, else
    /// `ArgumentInvalid`). Meant for a cspace still in INIT (the caller checks the state); if
    /// caps are already present, a capacity that would cut off a used slot is also
    /// `ArgumentInvalid`.
    pub fn configure(&self, max_caps: u64) -> Result<(), Error> {
        let capacity = usize::try_from(max_caps).map_err(|_| Error::ArgumentInvalid)?;
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(Error::ArgumentInvalid);
        }
        let mut t = self.table.lock();
        let cut_off = t
            .slots
            .get(capacity..)
            .is_some_and(|s| s.iter().any(|s| !matches!(s.entry, Entry::Empty)));
        if cut_off {
            return Err(Error::ArgumentInvalid);
        }
        t.capacity = capacity;
        Ok(())
    }

    /// The most caps this cspace can hold.
    pub fn capacity(&self) -> usize {
        self.table.lock().capacity
    }

    /// How many slots hold a cap (valid or revoked).
    pub fn len(&self) -> usize {
        self.table.lock().used
    }

    /// Whether no slot holds a cap.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn encode(&self, index: usize, generation: u16) -> u64 {
        let v = (u64::from(generation) << 16) | (index as u64 & 0xffff);
        v.wrapping_mul(self.mult) ^ self.base
    }

    /// (slot index, generation) of a CapID, if it decodes at all.
    fn decode(&self, cap: CapId) -> Result<(usize, u16), Error> {
        if cap == CapId::INVALID {
            return Err(Error::CspaceCapNull);
        }
        let v = (cap.0 ^ self.base).wrapping_mul(self.inverse);
        let v = u32::try_from(v).map_err(|_| Error::CspaceCapNull)?;
        Ok(((v & 0xffff) as usize, (v >> 16) as u16))
    }

    /// Fixes the generation of the slot just taken so the CapID is never `u64::MAX`, and returns
    /// that CapID.
    fn issue(&self, index: usize, slot: &mut Slot<T>) -> CapId {
        if self.encode(index, slot.generation) == u64::MAX {
            slot.generation = slot.generation.wrapping_add(1);
        }
        CapId(self.encode(index, slot.generation))
    }

    /// Inserts a master cap for `object` with `rights`, starting a new lineage.
    /// `CspaceFull` if every slot is used (`Nomem` if the table cannot grow).
    pub fn insert_master(&self, object: T, rights: u32) -> Result<CapId, Error> {
        let ty = object.object_type();
        let lineage = NEXT_LINEAGE.fetch_add(1, Ordering::Relaxed);
        let mut t = self.table.lock();
        // On failure `object` is dropped when this returns, after the guard (locals go first).
        let (index, slot) = t.take_free_slot()?;
        slot.entry = Entry::Valid(Cap {
            object,
            ty,
            rights,
            master: true,
            lineage,
        });
        Ok(self.issue(index, slot))
    }

    /// The valid cap `cap` names: `CspaceCapNull` for an ID naming no cap,
    /// `CspaceCapRevoked` for a revoked one.
    fn valid<'t>(&self, t: &'t Table<T>, cap: CapId) -> Result<&'t Cap<T>, Error> {
        let (index, generation) = self.decode(cap)?;
        match &t.slot(index, generation)?.entry {
            Entry::Valid(c) => Ok(c),
            Entry::Revoked(_) => Err(Error::CspaceCapRevoked),
            Entry::Empty => Err(Error::CspaceCapNull),
        }
    }

    /// The object `cap` names, which must be of type `ty` and have every right in `required`.
    ///
    /// Errors in Gunyah's order (`cspace_lookup_object`): `CspaceCapNull` (no such cap),
    /// `CspaceCapRevoked`, `CspaceWrongObjectType`, `CspaceInsufficientRights`.
    pub fn lookup(&self, cap: CapId, ty: ObjectType, required: u32) -> Result<T, Error> {
        let t = self.table.lock();
        let c = self.valid(&t, cap)?;
        if c.ty != ty {
            return Err(Error::CspaceWrongObjectType);
        }
        if c.rights & required != required {
            return Err(Error::CspaceInsufficientRights);
        }
        Ok(c.object.clone())
    }

    /// The object `cap` names, of any type, and the cap's rights, which must include
    /// `required`. Errors as [`lookup`](Self::lookup), without the type check.
    pub fn lookup_any(&self, cap: CapId, required: u32) -> Result<(T, u32), Error> {
        let t = self.table.lock();
        let c = self.valid(&t, cap)?;
        if c.rights & required != required {
            return Err(Error::CspaceInsufficientRights);
        }
        Ok((c.object.clone(), c.rights))
    }

    /// Delete every cap (the VM holding this cspace is gone), one at a time, each object
    /// dropped with the table unlocked (dropping one may take other locks).
    pub fn clear(&self) {
        loop {
            let old = {
                let mut t = self.table.lock();
                let Some(s) = t
                    .slots
                    .iter_mut()
                    .find(|s| !matches!(s.entry, Entry::Empty))
                else {
                    return;
                };
                s.generation = s.generation.wrapping_add(1);
                let old = core::mem::replace(&mut s.entry, Entry::Empty);
                t.used = t.used.saturating_sub(1);
                old
            };
            drop(old);
        }
    }

    /// Deletes `cap`, valid or revoked (`CspaceCapNull` if it names no cap). Its slot's
    /// generation moves on, so the ID is dead from now on. The object handle is dropped after
    /// the lock is released.
    pub fn delete(&self, cap: CapId) -> Result<(), Error> {
        let (index, generation) = self.decode(cap)?;
        let old = {
            let mut t = self.table.lock();
            let slot = t.slot_mut(index, generation)?;
            let old = core::mem::replace(&mut slot.entry, Entry::Empty);
            slot.generation = slot.generation.wrapping_add(1);
            t.used -= 1;
            old
        };
        drop(old);
        Ok(())
    }

    /// The lineage of `master`, which must be a valid master cap: `CspaceCapNull`,
    /// `CspaceCapRevoked`, and `CspaceInsufficientRights` for a cap that is not a master (as
    /// Gunyah's `cspace_revoke_caps`).
    fn master_lineage(&self, master: CapId) -> Result<u64, Error> {
        let t = self.table.lock();
        let c = self.valid(&t, master)?;
        if !c.master {
            return Err(Error::CspaceInsufficientRights);
        }
        Ok(c.lineage)
    }

    /// Revokes every valid non-master cap of `lineage` here; their objects go to `victims`
    /// (dropped by the caller once its locks are released). Returns how many were revoked.
    fn revoke_lineage(&self, lineage: u64, victims: &mut Vec<T>) -> usize {
        let doomed =
            |e: &Entry<T>| matches!(e, Entry::Valid(c) if !c.master && c.lineage == lineage);
        let mut t = self.table.lock();
        let n = t.slots.iter().filter(|s| doomed(&s.entry)).count();
        if n == 0 {
            return 0;
        }
        // Pushing within reserved capacity never allocates; without memory the objects stay
        // in their revoked slots until deleted instead.
        let keep = victims.try_reserve(n).is_err();
        for s in t.slots.iter_mut().filter(|s| doomed(&s.entry)) {
            if let Entry::Valid(c) = core::mem::replace(&mut s.entry, Entry::Revoked(None)) {
                if keep {
                    s.entry = Entry::Revoked(Some(c.object));
                } else {
                    victims.push(c.object);
                }
            }
        }
        n
    }

    /// The copy itself; the caller holds the registry lock. On failure after the object was
    /// cloned, the clone is left in `spill` for the caller to drop outside every lock.
    fn copy_unsynchronised(
        src: &CSpace<T>,
        cap: CapId,
        dest: &CSpace<T>,
        rights_mask: u32,
        spill: &mut Option<T>,
    ) -> Result<CapId, Error> {
        // Gunyah (`cspace_copy_cap`) allocates the destination slot before looking at the
        // source cap, so a full destination wins over a bad source.
        if dest.table.lock().is_full() {
            return Err(Error::CspaceFull);
        }
        let (object, ty, rights, lineage) = {
            let t = src.table.lock();
            let c = src.valid(&t, cap)?;
            let rights = c.rights & rights_mask;
            if rights == 0 {
                return Err(Error::CspaceInsufficientRights);
            }
            (c.object.clone(), c.ty, rights, c.lineage)
        };
        let mut t = dest.table.lock();
        match t.take_free_slot() {
            Ok((index, slot)) => {
                slot.entry = Entry::Valid(Cap {
                    object,
                    ty,
                    rights,
                    master: false,
                    lineage,
                });
                Ok(dest.issue(index, slot))
            }
            Err(e) => {
                // Filled up since the check above: hand the clone out to be dropped unlocked.
                *spill = Some(object);
                Err(e)
            }
        }
    }
}

/// Every live cspace, so that revoking a master cap reaches copies wherever they went.
///
/// Holds weak references: a cspace is freed as usual when its last holder lets go, and dead
/// entries are dropped whenever the registry is walked. Its lock also orders copies against
/// revocations.
pub struct Registry<T: CapObject> {
    spaces: Mutex<Vec<Weak<CSpace<T>>>>,
}

impl<T: CapObject> Default for Registry<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: CapObject> Registry<T> {
    /// An empty registry (usable in a `static`).
    pub const fn new() -> Self {
        Self {
            spaces: Mutex::new(Vec::new()),
        }
    }

    /// Adds `cs` to the cspaces revocation walks. Register every cspace caps may be copied
    /// into; registering twice is harmless.
    pub fn register(&self, cs: &Arc<CSpace<T>>) {
        let mut spaces = self.spaces.lock();
        spaces.retain(|w| w.strong_count() > 0);
        if !spaces
            .iter()
            .any(|w| core::ptr::eq(w.as_ptr(), Arc::as_ptr(cs)))
        {
            spaces.push(Arc::downgrade(cs));
        }
    }

    /// How many registered cspaces are still alive.
    pub fn live(&self) -> usize {
        self.spaces
            .lock()
            .iter()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    /// `cspace_copy_cap_from`: copies `cap` from `src` into `dest` with rights
    /// `old & rights_mask`; the copy is not a master and shares the original's lineage.
    /// `src` and `dest` may be the same cspace.
    ///
    /// Errors in Gunyah's order: `CspaceFull` (destination full; `Nomem` if its table cannot
    /// grow), `CspaceCapNull`, `CspaceCapRevoked` (source cap), `CspaceInsufficientRights` (the
    /// masked rights are empty).
    pub fn copy(
        &self,
        src: &CSpace<T>,
        cap: CapId,
        dest: &CSpace<T>,
        rights_mask: u32,
    ) -> Result<CapId, Error> {
        let mut spill = None;
        let r = {
            let _order = self.spaces.lock();
            CSpace::copy_unsynchronised(src, cap, dest, rights_mask, &mut spill)
        };
        drop(spill);
        r
    }

    /// `cspace_revoke_caps_from`: `master` must be a valid master cap in `cspace`
    /// (`CspaceCapNull`, `CspaceCapRevoked`, or `CspaceInsufficientRights` if it is not a
    /// master, as Gunyah). Every non-master cap of its lineage in every registered cspace (and
    /// in `cspace` itself) becomes revoked; masters and other lineages are untouched. Returns
    /// how many caps were revoked. `Nomem` (nothing revoked) if no memory for the walk.
    pub fn revoke_derived(&self, cspace: &CSpace<T>, master: CapId) -> Result<usize, Error> {
        let mut victims: Vec<T> = Vec::new();
        let mut held: Vec<Arc<CSpace<T>>> = Vec::new();
        let r = self.revoke_locked(cspace, master, &mut held, &mut victims);
        // Objects and cspaces the walk let go of are dropped with no lock held.
        drop(victims);
        drop(held);
        r
    }

    fn revoke_locked(
        &self,
        cspace: &CSpace<T>,
        master: CapId,
        held: &mut Vec<Arc<CSpace<T>>>,
        victims: &mut Vec<T>,
    ) -> Result<usize, Error> {
        let mut spaces = self.spaces.lock();
        let lineage = cspace.master_lineage(master)?;
        spaces.retain(|w| w.strong_count() > 0);
        held.try_reserve_exact(spaces.len())
            .map_err(|_| Error::Nomem)?;
        let mut count = 0;
        let mut seen = false;
        for w in spaces.iter() {
            if let Some(cs) = w.upgrade() {
                seen |= core::ptr::eq(Arc::as_ptr(&cs), cspace);
                count += cs.revoke_lineage(lineage, victims);
                held.push(cs);
            }
        }
        if !seen {
            count += cspace.revoke_lineage(lineage, victims);
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use alloc::vec;
    use std::collections::{HashMap, HashSet};

    #[derive(Clone, Debug, PartialEq, Eq)]
    struct Mock {
        ty: ObjectType,
        id: u32,
    }

    impl CapObject for Mock {
        fn object_type(&self) -> ObjectType {
            self.ty
        }
    }

    const TYPES: [ObjectType; 5] = [
        ObjectType::Partition,
        ObjectType::CSpace,
        ObjectType::MsgQueue,
        ObjectType::Doorbell,
        ObjectType::Vic,
    ];

    fn mock(id: u32) -> Mock {
        Mock {
            ty: TYPES[id as usize % TYPES.len()],
            id,
        }
    }

    fn space(capacity: usize, seed: u64) -> Arc<CSpace<Mock>> {
        CSpace::new(capacity, seed).unwrap()
    }

    #[test]
    fn inverse_is_an_inverse() {
        let mut s = 7;
        for _ in 0..1000 {
            let a = splitmix(&mut s) | 1;
            assert_eq!(a.wrapping_mul(inverse(a)), 1);
        }
        assert_eq!(inverse(1), 1);
        assert_eq!(u64::MAX.wrapping_mul(inverse(u64::MAX)), 1);
    }

    #[test]
    fn new_and_configure_ranges() {
        assert!(matches!(
            CSpace::<Mock>::new(0, 1),
            Err(Error::ArgumentInvalid)
        ));
        assert!(matches!(
            CSpace::<Mock>::new(MAX_CAPACITY + 1, 1),
            Err(Error::ArgumentInvalid)
        ));
        let cs = space(MAX_CAPACITY, 1);
        assert_eq!(cs.capacity(), MAX_CAPACITY);
        assert!(cs.is_empty());
        for bad in [0, MAX_CAPACITY as u64 + 1, u64::MAX] {
            assert_eq!(cs.configure(bad), Err(Error::ArgumentInvalid));
        }
        assert_eq!(cs.configure(3), Ok(()));
        assert_eq!(cs.capacity(), 3);
        assert!(CSpace::<Mock>::bytes_for(10) > CSpace::<Mock>::bytes_for(1));
        assert_eq!(CSpace::<Mock>::bytes_for(usize::MAX), usize::MAX);
    }

    #[test]
    fn configure_grows_and_refuses_to_cut_off_caps() {
        let cs = space(1, 2);
        let a = cs.insert_master(mock(0), 1).unwrap();
        assert_eq!(cs.insert_master(mock(1), 1), Err(Error::CspaceFull));
        assert_eq!(cs.configure(3), Ok(()));
        let b = cs.insert_master(mock(1), 1).unwrap();
        let c = cs.insert_master(mock(2), 1).unwrap();
        assert_eq!(cs.insert_master(mock(3), 1), Err(Error::CspaceFull));
        assert_eq!(cs.len(), 3);
        assert_eq!(cs.configure(2), Err(Error::ArgumentInvalid));
        cs.delete(c).unwrap();
        assert_eq!(cs.configure(2), Ok(()));
        assert_eq!(cs.lookup_any(a, 0).unwrap().0, mock(0));
        assert_eq!(cs.lookup_any(b, 0).unwrap().0, mock(1));
        // A dead ID stays dead after the slot range shrinks and grows back.
        assert_eq!(cs.configure(3), Ok(()));
        let d = cs.insert_master(mock(4), 1).unwrap();
        assert_ne!(c, d);
        assert_eq!(cs.lookup_any(c, 0).map(|_| ()), Err(Error::CspaceCapNull));
    }

    #[test]
    fn lookup_error_order() {
        let reg = Registry::new();
        let cs = space(8, 3);
        reg.register(&cs);
        let q = Mock {
            ty: ObjectType::MsgQueue,
            id: 9,
        };
        let m = cs.insert_master(q.clone(), 0b0111).unwrap();
        assert_eq!(cs.lookup(m, ObjectType::MsgQueue, 0b0101), Ok(q.clone()));
        assert_eq!(cs.lookup_any(m, 0b0001), Ok((q.clone(), 0b0111)));
        assert_eq!(
            cs.lookup(m, ObjectType::MsgQueue, 0b1000),
            Err(Error::CspaceInsufficientRights)
        );
        assert_eq!(
            cs.lookup_any(m, 0x8000_0000).map(|_| ()),
            Err(Error::CspaceInsufficientRights)
        );
        // Wrong type wins over missing rights.
        assert_eq!(
            cs.lookup(m, ObjectType::Doorbell, 0b1000),
            Err(Error::CspaceWrongObjectType)
        );
        let c = reg.copy(&cs, m, &cs, 0b0010).unwrap();
        assert_eq!(cs.lookup_any(c, 0), Ok((q.clone(), 0b0010)));
        assert_eq!(reg.revoke_derived(&cs, m), Ok(1));
        // Revoked wins over wrong type and rights.
        assert_eq!(
            cs.lookup(c, ObjectType::Doorbell, 0b1000),
            Err(Error::CspaceCapRevoked)
        );
        assert_eq!(
            cs.lookup_any(c, 0).map(|_| ()),
            Err(Error::CspaceCapRevoked)
        );
        assert_eq!(cs.lookup(m, ObjectType::MsgQueue, 0b0111), Ok(q));
        cs.delete(c).unwrap();
        assert_eq!(
            cs.lookup(c, ObjectType::Doorbell, 0b1000),
            Err(Error::CspaceCapNull)
        );
        assert_eq!(cs.delete(c), Err(Error::CspaceCapNull));
        cs.delete(m).unwrap();
        assert_eq!(cs.lookup_any(m, 0).map(|_| ()), Err(Error::CspaceCapNull));
        assert!(cs.is_empty());
    }

    #[test]
    fn garbage_ids_are_cap_null() {
        let cs = space(16, 4);
        let m = cs.insert_master(mock(1), u32::MAX).unwrap();
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut ids = vec![
            0,
            1,
            u64::MAX,
            u64::MAX - 1,
            1 << 63,
            m.0 ^ 1,
            m.0.wrapping_add(1),
        ];
        for _ in 0..10_000 {
            ids.push(splitmix(&mut x));
        }
        for id in ids {
            if id == m.0 {
                continue;
            }
            assert_eq!(
                cs.lookup_any(CapId(id), 0).map(|_| ()),
                Err(Error::CspaceCapNull)
            );
            assert_eq!(cs.delete(CapId(id)), Err(Error::CspaceCapNull));
        }
        // An ID naming a slot beyond the capacity, or an unused slot, is null too.
        for index in [1, 15, 16, 0xffff] {
            let id = CapId(cs.encode(index, 0));
            assert_eq!(cs.lookup_any(id, 0).map(|_| ()), Err(Error::CspaceCapNull));
        }
        let wrong_gen = CapId(cs.encode(0, 1));
        assert_eq!(
            cs.lookup_any(wrong_gen, 0).map(|_| ()),
            Err(Error::CspaceCapNull)
        );
        assert_eq!(cs.lookup_any(m, 0).map(|(o, _)| o), Ok(mock(1)));
    }

    #[test]
    fn invalid_id_is_never_issued() {
        // A base under which (slot 0, generation 0) encodes to u64::MAX.
        let mult = space(2, 5).mult;
        let cs = CSpace::<Mock> {
            mult,
            inverse: inverse(mult),
            base: u64::MAX,
            table: Mutex::new(Table {
                slots: Vec::new(),
                capacity: 2,
                used: 0,
                cursor: 0,
            }),
        };
        assert_eq!(cs.encode(0, 0), u64::MAX);
        let a = cs.insert_master(mock(0), 1).unwrap();
        assert_ne!(a, CapId::INVALID);
        assert_eq!(cs.lookup_any(a, 0).map(|(o, _)| o), Ok(mock(0)));
        assert_eq!(
            cs.lookup_any(CapId::INVALID, 0).map(|_| ()),
            Err(Error::CspaceCapNull)
        );
        // Reusing the slot many times never lands on the invalid encoding either.
        cs.configure(1).unwrap();
        let mut id = a;
        for i in 0..70_000u32 {
            cs.delete(id).unwrap();
            id = cs.insert_master(mock(i), 1).unwrap();
            assert_ne!(id, CapId::INVALID);
        }
    }

    #[test]
    fn deleted_ids_do_not_alias_the_next_cap() {
        let cs = space(1, 6);
        let mut dead = HashSet::new();
        let mut id = cs.insert_master(mock(0), 1).unwrap();
        for i in 1..1000 {
            cs.delete(id).unwrap();
            assert!(dead.insert(id));
            id = cs.insert_master(mock(i), 1).unwrap();
            assert!(!dead.contains(&id));
            for d in dead.iter().take(20) {
                assert_eq!(cs.lookup_any(*d, 0).map(|_| ()), Err(Error::CspaceCapNull));
            }
        }
    }

    #[test]
    fn slots_are_reused_round_robin() {
        let cs = space(4, 7);
        let ids: Vec<_> = (0..4)
            .map(|i| cs.insert_master(mock(i), 1).unwrap())
            .collect();
        cs.delete(ids[1]).unwrap();
        cs.delete(ids[3]).unwrap();
        let a = cs.insert_master(mock(10), 1).unwrap();
        let b = cs.insert_master(mock(11), 1).unwrap();
        assert_eq!(cs.insert_master(mock(12), 1), Err(Error::CspaceFull));
        assert_eq!(cs.len(), 4);
        let (ai, _) = cs.decode(a).unwrap();
        let (bi, _) = cs.decode(b).unwrap();
        assert_eq!((ai, bi), (1, 3));
    }

    #[test]
    fn copy_rules() {
        let reg = Registry::new();
        let a = space(3, 8);
        let b = space(2, 9);
        reg.register(&a);
        reg.register(&b);
        let m = a.insert_master(mock(1), 0b1111).unwrap();
        // Rights only shrink, through any chain of copies.
        let c1 = reg.copy(&a, m, &b, 0b0110 | 0xffff_0000).unwrap();
        assert_eq!(b.lookup_any(c1, 0).map(|(_, r)| r), Ok(0b0110));
        let c2 = reg.copy(&b, c1, &a, 0b0011).unwrap();
        assert_eq!(a.lookup_any(c2, 0).map(|(_, r)| r), Ok(0b0010));
        // A mask leaving no rights.
        assert_eq!(
            reg.copy(&a, c2, &b, 0b0100),
            Err(Error::CspaceInsufficientRights)
        );
        // Bad source IDs.
        assert_eq!(
            reg.copy(&a, CapId::INVALID, &b, !0),
            Err(Error::CspaceCapNull)
        );
        assert_eq!(reg.copy(&a, c1, &b, !0), Err(Error::CspaceCapNull));
        // Destination full beats a bad source (Gunyah allocates the slot first).
        let _c3 = reg.copy(&a, m, &b, !0).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(reg.copy(&a, m, &b, !0), Err(Error::CspaceFull));
        assert_eq!(reg.copy(&a, CapId::INVALID, &b, !0), Err(Error::CspaceFull));
        // Copies are not masters: revoking through one is refused.
        assert_eq!(
            reg.revoke_derived(&b, c1),
            Err(Error::CspaceInsufficientRights)
        );
        assert_eq!(
            reg.revoke_derived(&a, c2),
            Err(Error::CspaceInsufficientRights)
        );
        // A revoked source cannot be copied.
        assert_eq!(reg.revoke_derived(&a, m), Ok(3));
        assert_eq!(reg.copy(&b, c1, &a, !0), Err(Error::CspaceCapRevoked));
        assert_eq!(reg.revoke_derived(&b, c1), Err(Error::CspaceCapRevoked));
        assert_eq!(
            reg.revoke_derived(&a, CapId(12345)),
            Err(Error::CspaceCapNull)
        );
        // Copying within one cspace works (no self-deadlock), into a fresh lineage member.
        let c4 = reg.copy(&a, m, &a, 0b1000).unwrap();
        assert_eq!(a.lookup_any(c4, 0).map(|(_, r)| r), Ok(0b1000));
        assert_eq!(reg.revoke_derived(&a, m), Ok(1));
        assert_eq!(a.lookup_any(m, 0).map(|(_, r)| r), Ok(0b1111));
    }

    #[test]
    fn revoke_reaches_unregistered_own_cspace_and_skips_dead_ones() {
        let reg = Registry::new();
        let a = space(4, 10);
        let b = space(4, 11);
        let gone = space(4, 12);
        reg.register(&b);
        reg.register(&gone);
        reg.register(&b);
        assert_eq!(reg.live(), 2);
        let m = a.insert_master(mock(1), 1).unwrap();
        let other = a.insert_master(mock(2), 1).unwrap();
        let ca = reg.copy(&a, m, &a, 1).unwrap();
        let cb = reg.copy(&a, m, &b, 1).unwrap();
        let cg = reg.copy(&a, m, &gone, 1).unwrap();
        let co = reg.copy(&a, other, &b, 1).unwrap();
        assert!(gone.lookup_any(cg, 0).is_ok());
        drop(gone);
        assert_eq!(reg.live(), 1);
        assert_eq!(reg.revoke_derived(&a, m), Ok(2));
        assert_eq!(
            a.lookup_any(ca, 0).map(|_| ()),
            Err(Error::CspaceCapRevoked)
        );
        assert_eq!(
            b.lookup_any(cb, 0).map(|_| ()),
            Err(Error::CspaceCapRevoked)
        );
        assert_eq!(b.lookup_any(co, 0).map(|(o, _)| o), Ok(mock(2)));
        assert_eq!(reg.revoke_derived(&a, m), Ok(0));
    }

    #[test]
    fn ids_mean_nothing_in_another_cspace() {
        let mut seed = 99;
        let spaces: Vec<_> = (0..4)
            .map(|_| space(MAX_CAPACITY, splitmix(&mut seed)))
            .collect();
        let ids: Vec<Vec<CapId>> = spaces
            .iter()
            .map(|cs| {
                (0..2000)
                    .map(|i| cs.insert_master(mock(i), 1).unwrap())
                    .collect()
            })
            .collect();
        let mut hits = 0;
        for (i, cs) in spaces.iter().enumerate() {
            for (j, theirs) in ids.iter().enumerate() {
                if i != j {
                    hits += theirs
                        .iter()
                        .filter(|&&id| cs.lookup_any(id, 0).is_ok())
                        .count();
                }
            }
        }
        assert_eq!(hits, 0);
    }

    /// An object that reports whether any lock it could deadlock on is held when it is dropped.
    #[derive(Clone)]
    struct Probe {
        ty: ObjectType,
        space: Arc<spin::Once<Weak<CSpace<Probe>>>>,
        registry: &'static Registry<Probe>,
        violations: Arc<AtomicU64>,
        drops: Arc<AtomicU64>,
    }

    impl CapObject for Probe {
        fn object_type(&self) -> ObjectType {
            self.ty
        }
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::Relaxed);
            let space_locked = self
                .space
                .get()
                .and_then(Weak::upgrade)
                .is_some_and(|cs| cs.table.is_locked());
            if space_locked || self.registry.spaces.is_locked() {
                self.violations.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    #[test]
    fn objects_are_dropped_outside_locks() {
        static REG: Registry<Probe> = Registry::new();
        let cs = CSpace::new(3, 13).unwrap();
        REG.register(&cs);
        let once = Arc::new(spin::Once::new());
        once.call_once(|| Arc::downgrade(&cs));
        let violations = Arc::new(AtomicU64::new(0));
        let drops = Arc::new(AtomicU64::new(0));
        let probe = Probe {
            ty: ObjectType::Doorbell,
            space: once,
            registry: &REG,
            violations: violations.clone(),
            drops: drops.clone(),
        };
        let dropped = || drops.load(Ordering::Relaxed);
        let m = cs.insert_master(probe.clone(), 3).unwrap();
        let c = REG.copy(&cs, m, &cs, 1).unwrap();
        let c2 = REG.copy(&cs, m, &cs, 2).unwrap();
        // Full: the object offered is dropped (after the lock is released).
        assert_eq!(cs.insert_master(probe.clone(), 3), Err(Error::CspaceFull));
        assert_eq!(dropped(), 1);
        assert_eq!(REG.copy(&cs, m, &cs, 1), Err(Error::CspaceFull));
        assert_eq!(dropped(), 1);
        cs.delete(c).unwrap();
        assert_eq!(dropped(), 2);
        let _c3 = REG.copy(&cs, m, &cs, 1).unwrap();
        // Revocation drops the revoked caps' objects.
        assert_eq!(REG.revoke_derived(&cs, m), Ok(2));
        assert_eq!(dropped(), 4);
        // Deleting a revoked cap has nothing left to drop.
        cs.delete(c2).unwrap();
        assert_eq!(dropped(), 4);
        let (p, rights) = cs.lookup_any(m, 0).unwrap();
        assert_eq!(rights, 3);
        drop(p);
        cs.delete(m).unwrap();
        assert_eq!(dropped(), 6);
        drop(probe);
        assert_eq!(dropped(), 7);
        assert_eq!(violations.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn concurrent_copies_never_escape_a_revocation() {
        static REG: Registry<Mock> = Registry::new();
        let a = space(64, 14);
        let b = space(64, 15);
        REG.register(&a);
        REG.register(&b);
        let m = a.insert_master(mock(1), 0xff).unwrap();
        let first = REG.copy(&a, m, &b, 0xff).unwrap();
        let (a2, b2) = (a.clone(), b.clone());
        let copier = std::thread::spawn(move || {
            // Ping-pong copies of copies between the two cspaces until revoked or full.
            let mut from = (first, &b2, &a2);
            for _ in 0..200 {
                let (cap, src, dest) = from;
                match REG.copy(src, cap, dest, 0xff) {
                    Ok(id) => from = (id, dest, src),
                    Err(Error::CspaceCapRevoked | Error::CspaceFull) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
        });
        std::thread::yield_now();
        REG.revoke_derived(&a, m).unwrap();
        copier.join().unwrap();
        // Everything the copier made derives from `first`: after the revocation, nothing but
        // the master may be valid in either cspace.
        for cs in [&a, &b] {
            let t = cs.table.lock();
            for s in &t.slots {
                if let Entry::Valid(c) = &s.entry {
                    assert!(c.master, "a derived cap escaped the revocation");
                }
            }
        }
    }

    /// Deterministic xorshift64.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum State {
        Valid,
        Revoked,
    }

    #[derive(Clone, Debug)]
    struct ModelCap {
        object: u32,
        rights: u32,
        master: bool,
        lineage: u64,
        state: State,
    }

    struct Model {
        capacity: Vec<usize>,
        caps: Vec<HashMap<u64, ModelCap>>,
        dead: Vec<Vec<u64>>,
        /// Each lineage's master rights.
        master_rights: HashMap<u64, u32>,
        next_lineage: u64,
    }

    impl Model {
        fn expect_lookup(
            &self,
            s: usize,
            id: u64,
            ty: Option<ObjectType>,
            req: u32,
        ) -> Result<(u32, u32), Error> {
            let c = self.caps[s].get(&id).ok_or(Error::CspaceCapNull)?;
            if c.state == State::Revoked {
                return Err(Error::CspaceCapRevoked);
            }
            if ty.is_some_and(|t| t != mock(c.object).ty) {
                return Err(Error::CspaceWrongObjectType);
            }
            if c.rights & req != req {
                return Err(Error::CspaceInsufficientRights);
            }
            Ok((c.object, c.rights))
        }
    }

    /// Picks a CapID to try: mostly live caps of `s`, sometimes dead ones, caps of another
    /// cspace, or garbage.
    fn pick_id(rng: &mut Rng, m: &Model, s: usize) -> u64 {
        let k = rng.below(10);
        let from = |rng: &mut Rng, v: Vec<u64>| {
            if v.is_empty() {
                rng.next()
            } else {
                v[rng.below(v.len())]
            }
        };
        match k {
            0..=5 => {
                let mut v: Vec<u64> = m.caps[s].keys().copied().collect();
                v.sort_unstable();
                from(rng, v)
            }
            6 => from(rng, m.dead[s].clone()),
            7 => {
                let o = (s + 1 + rng.below(2)) % 3;
                let mut v: Vec<u64> = m.caps[o].keys().copied().collect();
                v.sort_unstable();
                from(rng, v)
            }
            8 => [0, 1, u64::MAX][rng.below(3)],
            _ => rng.next(),
        }
    }

    fn run_model(seed: u64, steps: usize) {
        let mut rng = Rng(seed);
        let reg = Registry::new();
        let capacity = vec![4 + rng.below(6), 8 + rng.below(10), 16 + rng.below(16)];
        let spaces: Vec<Arc<CSpace<Mock>>> =
            capacity.iter().map(|&c| space(c, rng.next())).collect();
        for cs in &spaces {
            reg.register(cs);
        }
        let mut m = Model {
            capacity,
            caps: vec![HashMap::new(), HashMap::new(), HashMap::new()],
            dead: vec![Vec::new(), Vec::new(), Vec::new()],
            master_rights: HashMap::new(),
            next_lineage: 0,
        };
        // Successes: inserts, copies, deletes, revocations, lookups, lookup_any; caps revoked.
        let mut counts = [0usize; 7];
        for _ in 0..steps {
            let s = rng.below(3);
            match rng.below(12) {
                0 | 1 => {
                    let obj = rng.below(6) as u32;
                    let rights = (rng.next() as u32) | 1;
                    let r = spaces[s].insert_master(mock(obj), rights);
                    if m.caps[s].len() == m.capacity[s] {
                        assert_eq!(r, Err(Error::CspaceFull));
                    } else {
                        let id = r.unwrap().0;
                        assert_ne!(id, u64::MAX);
                        assert!(!m.caps[s].contains_key(&id), "duplicate live id");
                        let lineage = m.next_lineage;
                        m.next_lineage += 1;
                        m.master_rights.insert(lineage, rights);
                        m.caps[s].insert(
                            id,
                            ModelCap {
                                object: obj,
                                rights,
                                master: true,
                                lineage,
                                state: State::Valid,
                            },
                        );
                        counts[0] += 1;
                    }
                }
                2..=4 => {
                    let d = rng.below(3);
                    let id = pick_id(&mut rng, &m, s);
                    let mask = match rng.below(3) {
                        0 => u32::MAX,
                        _ => rng.next() as u32,
                    };
                    let r = reg.copy(&spaces[s], CapId(id), &spaces[d], mask);
                    let expect = if m.caps[d].len() == m.capacity[d] {
                        Err(Error::CspaceFull)
                    } else {
                        m.expect_lookup(s, id, None, 0).and_then(|(_, rights)| {
                            if rights & mask == 0 {
                                Err(Error::CspaceInsufficientRights)
                            } else {
                                Ok(())
                            }
                        })
                    };
                    match (r, expect) {
                        (Ok(new), Ok(())) => {
                            let new = new.0;
                            assert_ne!(new, u64::MAX);
                            assert!(!m.caps[d].contains_key(&new), "duplicate live id");
                            let src = m.caps[s][&id].clone();
                            let rights = src.rights & mask;
                            assert_eq!(rights & !src.rights, 0);
                            assert_eq!(rights & !m.master_rights[&src.lineage], 0);
                            m.caps[d].insert(
                                new,
                                ModelCap {
                                    rights,
                                    master: false,
                                    state: State::Valid,
                                    ..src
                                },
                            );
                            counts[1] += 1;
                        }
                        (r, e) => assert_eq!(r.map(|_| ()), e),
                    }
                }
                5 | 6 => {
                    let id = pick_id(&mut rng, &m, s);
                    let r = spaces[s].delete(CapId(id));
                    if m.caps[s].remove(&id).is_some() {
                        assert_eq!(r, Ok(()));
                        m.dead[s].push(id);
                        counts[2] += 1;
                    } else {
                        assert_eq!(r, Err(Error::CspaceCapNull));
                    }
                }
                7 => {
                    let id = pick_id(&mut rng, &m, s);
                    let r = reg.revoke_derived(&spaces[s], CapId(id));
                    let expect = m.expect_lookup(s, id, None, 0).and_then(|_| {
                        let c = &m.caps[s][&id];
                        if c.master {
                            Ok(c.lineage)
                        } else {
                            Err(Error::CspaceInsufficientRights)
                        }
                    });
                    match expect {
                        Err(e) => assert_eq!(r, Err(e)),
                        Ok(lineage) => {
                            let mut n = 0;
                            for caps in &mut m.caps {
                                for c in caps.values_mut() {
                                    if c.lineage == lineage && !c.master && c.state == State::Valid
                                    {
                                        c.state = State::Revoked;
                                        n += 1;
                                    }
                                }
                            }
                            assert_eq!(r, Ok(n));
                            counts[3] += 1;
                            counts[6] += n;
                        }
                    }
                }
                _ => {
                    let id = pick_id(&mut rng, &m, s);
                    let req = match rng.below(3) {
                        0 => 0,
                        1 => 1 << rng.below(32),
                        _ => rng.next() as u32,
                    };
                    if rng.below(2) == 0 {
                        let ty = TYPES[rng.below(TYPES.len())];
                        let r = spaces[s].lookup(CapId(id), ty, req).map(|o| o.id);
                        let e = m.expect_lookup(s, id, Some(ty), req).map(|(o, _)| o);
                        assert_eq!(r, e);
                        counts[4] += usize::from(r.is_ok());
                    } else {
                        let r = spaces[s].lookup_any(CapId(id), req).map(|(o, r)| (o.id, r));
                        assert_eq!(r, m.expect_lookup(s, id, None, req));
                        counts[5] += usize::from(r.is_ok());
                    }
                }
            }
            for (cs, caps) in spaces.iter().zip(&m.caps) {
                assert_eq!(cs.len(), caps.len());
                assert!(cs.len() <= cs.capacity());
            }
        }
        // Every kind of operation succeeded a fair number of times.
        assert!(counts.iter().all(|&c| c > steps / 200), "{counts:?}");
        // Dead IDs stay dead (no generation wrap in a run this short).
        for (s, cs) in spaces.iter().enumerate() {
            for id in &m.dead[s] {
                if !m.caps[s].contains_key(id) {
                    assert_eq!(
                        cs.lookup_any(CapId(*id), 0).map(|_| ()),
                        Err(Error::CspaceCapNull)
                    );
                }
            }
        }
    }

    #[test]
    fn model_random_operations() {
        for seed in [1, 2, 3, 0x5eed, 0xdead_beef, 0x0123_4567_89ab_cdef] {
            run_model(seed, 20_000);
        }
    }
}

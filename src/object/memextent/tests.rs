//! The extent and address-space state machine over a fake machine: a fake frame allocator and
//! fake stage-2 tables that record every page mapping.

use super::*;
use alloc::collections::BTreeMap;
use alloc::vec;
use wurley_abi::vcpu_run::VmmioOp;

const P: u64 = PAGE_SIZE;
const RAM: u64 = 0x8000_0000;
const RAM_SIZE: u64 = 0x100 * P;
const DEV: u64 = 0x0a00_0000;
const LIMIT: u64 = 1 << 40;
const RWX: u64 = 7;
const NORMAL: u64 = (memtype::NORMAL_WB as u64) << 16;

/// One fake stage 2: IPA page -> (PA page, attrs).
type Table = Arc<Mutex<BTreeMap<u64, (u64, MapAttrs)>>>;

#[derive(Default)]
struct FakePhys {
    /// RAM pages the hypervisor uses (claim fails for them).
    used: Mutex<Vec<u64>>,
    /// RAM pages taken by extents.
    claimed: Mutex<Vec<u64>>,
    /// zero/clean/flush calls.
    ops: Mutex<Vec<(&'static str, u64, u64)>>,
    /// Every table made, by VTTBR.
    tables: Mutex<Vec<(u64, Table)>>,
}

struct FakeTables {
    vttbr: u64,
    t: Table,
}

impl Stage2Tables for FakeTables {
    fn map(&mut self, ipa: u64, pa: u64, size: u64, attrs: MapAttrs) -> Result<(), Error> {
        let mut t = self.t.lock();
        for k in 0..size / P {
            let old = t.insert(ipa + k * P, (pa + k * P, attrs));
            assert!(old.is_none(), "map over a mapping at {:#x}", ipa + k * P);
        }
        Ok(())
    }
    fn unmap(&mut self, ipa: u64, size: u64) -> Result<(), Error> {
        let mut t = self.t.lock();
        for k in 0..size / P {
            assert!(t.remove(&(ipa + k * P)).is_some(), "unmap of nothing");
        }
        Ok(())
    }
    fn protect(&mut self, ipa: u64, pa: u64, size: u64, attrs: MapAttrs) -> Result<(), Error> {
        let mut t = self.t.lock();
        for k in 0..size / P {
            let e = t.get_mut(&(ipa + k * P)).expect("protect of nothing");
            assert_eq!(e.0, pa + k * P);
            e.1 = attrs;
        }
        Ok(())
    }
    fn vttbr(&self) -> u64 {
        self.vttbr
    }
}

fn in_ram(s: u64, size: u64) -> bool {
    s >= RAM && s + size <= RAM + RAM_SIZE
}

impl PhysOps for FakePhys {
    fn ipa_limit(&self) -> u64 {
        LIMIT
    }
    fn claim(&self, start: u64, size: u64) -> Result<bool, Error> {
        if !in_ram(start, size) {
            return Ok(false);
        }
        let pages: Vec<u64> = (0..size / P).map(|k| start + k * P).collect();
        let mut c = self.claimed.lock();
        if pages
            .iter()
            .any(|p| self.used.lock().contains(p) || c.contains(p))
        {
            return Err(Error::MemdbNotOwner);
        }
        c.extend(pages);
        Ok(true)
    }
    fn release(&self, start: u64, size: u64) {
        self.claimed
            .lock()
            .retain(|&p| !(start..start + size).contains(&p));
    }
    fn zero(&self, pa: u64, size: u64) {
        self.ops.lock().push(("zero", pa, size));
    }
    fn clean(&self, pa: u64, size: u64) {
        self.ops.lock().push(("clean", pa, size));
    }
    fn flush(&self, pa: u64, size: u64) {
        self.ops.lock().push(("flush", pa, size));
    }
    fn new_tables(&self) -> Result<Box<dyn Stage2Tables>, Error> {
        let mut all = self.tables.lock();
        let vttbr = 0x1000 * (all.len() as u64 + 1);
        let t: Table = Arc::default();
        all.push((vttbr, t.clone()));
        Ok(Box::new(FakeTables { vttbr, t }))
    }
}

struct World {
    ctx: &'static MemCtx,
    phys: &'static FakePhys,
    root: Arc<Partition>,
}

fn world() -> World {
    let db: &'static Mutex<MemDb> = Box::leak(Box::new(Mutex::new(MemDb::new())));
    db.lock()
        .insert(RAM, RAM_SIZE, Owner::Partition(0))
        .unwrap();
    db.lock().insert(DEV, 4 * P, Owner::Partition(0)).unwrap();
    let phys: &'static FakePhys = Box::leak(Box::default());
    let ctx: &'static MemCtx = Box::leak(Box::new(MemCtx::new(db, phys)));
    World {
        ctx,
        phys,
        root: Partition::new_root(1 << 20),
    }
}

impl World {
    fn extent(&self, base: u64, pages: u64, attrs: u64) -> Arc<MemExtent> {
        let me = MemExtent::create(self.ctx, &self.root).unwrap();
        me.configure(base, pages * P, attrs).unwrap();
        me.activate().unwrap();
        me
    }
    fn child(&self, parent: &Arc<MemExtent>, off: u64, pages: u64, attrs: u64) -> Arc<MemExtent> {
        let me = MemExtent::create(self.ctx, &self.root).unwrap();
        me.configure_derive(parent, off * P, pages * P, attrs)
            .unwrap();
        me.activate().unwrap();
        me
    }
    fn space(&self, vmid: u16) -> Arc<AddrSpaceObject> {
        AddrSpaceObject::new_for_vm(self.ctx, vmid).unwrap()
    }
    fn table(&self, s: &AddrSpaceObject) -> Table {
        let v = s.vttbr().unwrap();
        self.phys
            .tables
            .lock()
            .iter()
            .find(|(x, _)| *x == v)
            .unwrap()
            .1
            .clone()
    }
    /// The mapped pages of `s` as (first IPA page, PA, pages, access) runs.
    fn runs(&self, s: &AddrSpaceObject) -> Vec<(u64, u64, u64, u8)> {
        let mut out: Vec<(u64, u64, u64, u8)> = Vec::new();
        for (&ipa, &(pa, a)) in self.table(s).lock().iter() {
            match out.last_mut() {
                Some(l) if l.0 + l.2 * P == ipa && l.1 + l.2 * P == pa && l.3 == a.access() => {
                    l.2 += 1
                }
                _ => out.push((ipa, pa, 1, a.access())),
            }
        }
        out
    }
    fn owner(&self, pa: u64) -> Option<Owner> {
        self.ctx.db().lock().lookup(pa).map(|(o, _, _)| o)
    }
}

fn attrs(user: u8, kernel: u8) -> MapAttrs {
    MapAttrs {
        user,
        kernel,
        memtype: memtype::NORMAL_WB,
    }
}

#[test]
fn attribute_words() {
    assert_eq!(
        MapAttrs::decode(0x00ff_0077),
        Ok(MapAttrs {
            user: 7,
            kernel: 7,
            memtype: 0xff
        })
        .and(Err(Error::ArgumentInvalid))
    );
    let a = MapAttrs::decode(NORMAL | 0x45).unwrap();
    assert_eq!((a.user, a.kernel, a.memtype), (5, 4, 0xf));
    assert_eq!(a.encode(), NORMAL | 0x45);
    assert_eq!(MapAttrs::decode(NORMAL | 8), Err(Error::ArgumentInvalid));
    assert_eq!(MapAttrs::decode(4 << 16), Err(Error::ArgumentInvalid));
    assert_eq!(MapAttrs::decode(1 << 24), Err(Error::ArgumentInvalid));
    assert_eq!(decode_access_attrs(0x77), Ok((7, 7)));
    assert_eq!(decode_access_attrs(0x100), Err(Error::ArgumentInvalid));
    assert_eq!(decode_extent_attrs(0x307), Ok((7, ExtentMemtype::Cached)));
    assert_eq!(decode_extent_attrs(1 << 16), Err(Error::ArgumentInvalid));
    assert_eq!(decode_extent_attrs(1 << 31), Err(Error::ArgumentInvalid));
    assert!(ExtentMemtype::Device.allows(memtype::DEVICE_NGNRE));
    assert!(!ExtentMemtype::Device.allows(memtype::NORMAL_WB));
    assert!(ExtentMemtype::Uncached.allows(memtype::NORMAL_NC));
    assert!(!ExtentMemtype::Cached.allows(memtype::NORMAL_NC));
}

#[test]
fn configure_and_activate_errors() {
    let w = world();
    let me = MemExtent::create(w.ctx, &w.root).unwrap();
    assert_eq!(me.activate(), Err(Error::ObjectConfig));
    assert_eq!(me.configure(RAM + 1, P, RWX), Err(Error::ArgumentAlignment));
    assert_eq!(me.configure(RAM, P + 1, RWX), Err(Error::ArgumentAlignment));
    assert_eq!(me.configure(RAM, 0, RWX), Err(Error::ArgumentSize));
    assert_eq!(me.configure(!0xfff, 2 * P, RWX), Err(Error::AddrOverflow));
    assert_eq!(me.configure(RAM, P, 1 << 16), Err(Error::ArgumentInvalid));
    assert_eq!(me.configure(RAM, P, 1 << 3), Err(Error::ArgumentInvalid));
    // Unowned memory, then memory that is partly someone else's.
    me.configure(0x1000_0000, P, RWX).unwrap();
    assert_eq!(me.activate(), Err(Error::MemdbEmpty));
    let a = w.extent(RAM, 4, RWX);
    me.configure(RAM + 2 * P, 4 * P, RWX).unwrap();
    assert_eq!(me.activate(), Err(Error::MemdbNotOwner));
    // RAM the hypervisor uses: the memory database is left as it was.
    w.phys.used.lock().push(RAM + 9 * P);
    me.configure(RAM + 8 * P, 2 * P, RWX).unwrap();
    assert_eq!(me.activate(), Err(Error::MemdbNotOwner));
    assert_eq!(w.owner(RAM + 8 * P), Some(Owner::Partition(0)));
    // A child partition owns nothing.
    let child = Partition::new_child(&w.root, 1 << 16);
    let c = MemExtent::create(w.ctx, &child).unwrap();
    c.configure(RAM + 16 * P, P, RWX).unwrap();
    assert_eq!(c.activate(), Err(Error::MemdbNotOwner));
    // Active: no more configuring.
    assert_eq!(a.configure(RAM, P, RWX), Err(Error::ObjectState));
    assert_eq!(a.activate(), Err(Error::ObjectState));
    assert_eq!(w.owner(RAM), Some(a.owner()));
    assert!(a.is_ram());
    assert_eq!(w.phys.claimed.lock().len(), 4);
    // Destruction gives the pages back to the partition and the frame allocator.
    drop(a);
    assert_eq!(w.owner(RAM), Some(Owner::Partition(0)));
    assert!(w.phys.claimed.lock().is_empty());
    // A device window is not RAM.
    let d = w.extent(DEV, 2, 0x106);
    assert!(!d.is_ram());
}

#[test]
fn map_and_its_errors() {
    let w = world();
    let me = w.extent(RAM, 8, RWX | 3 << 8);
    let s = w.space(5);
    let ram = attrs(7, 7);
    s.map(&me, 0x4000_0000, ram).unwrap();
    assert_eq!(w.runs(&s), [(0x4000_0000, RAM, 8, 7)]);
    assert_eq!(s.map(&me, 0x4000_0800, ram), Err(Error::ArgumentAlignment));
    assert_eq!(s.map(&me, LIMIT - 4 * P, ram), Err(Error::AddrOverflow));
    assert_eq!(s.map(&me, !0xfff, ram), Err(Error::AddrOverflow));
    let nc = MapAttrs {
        memtype: memtype::NORMAL_NC,
        ..ram
    };
    assert_eq!(s.map(&me, 0x5000_0000, nc), Err(Error::Denied));
    assert_eq!(s.map(&me, 0x4000_4000, ram), Err(Error::AddrInvalid));
    s.map(&me, 0x5000_0000, ram).unwrap();
    s.map(&me, 0x6000_0000, ram).unwrap();
    s.map(&me, 0x7000_0000, ram).unwrap();
    assert_eq!(
        s.map(&me, 0x8000_0000, ram),
        Err(Error::MemextentMappingsFull)
    );
    assert_eq!(w.runs(&s).len(), 4);
    // A read-only extent cannot be mapped writable.
    let ro = w.extent(RAM + 16 * P, 1, 4);
    assert_eq!(s.map(&ro, 0x9000_0000, ram), Err(Error::Denied));
    s.map(&ro, 0x9000_0000, attrs(4, 4)).unwrap();
    // Inactive address space or extent.
    let init = AddrSpaceObject::create(w.ctx, &w.root).unwrap();
    assert_eq!(init.map(&ro, 0, attrs(4, 4)), Err(Error::ObjectState));
    let idle = MemExtent::create(w.ctx, &w.root).unwrap();
    assert_eq!(s.map(&idle, 0, ram), Err(Error::ObjectState));
    // Unmap exactly one mapping.
    assert_eq!(s.unmap(&me, 0x4000_1000), Err(Error::AddrInvalid));
    s.unmap(&me, 0x5000_0000).unwrap();
    assert_eq!(s.unmap(&me, 0x5000_0000), Err(Error::AddrInvalid));
    assert_eq!(w.runs(&s).len(), 4);
    // unmap_all takes the rest of this extent's, leaves the other's.
    modify(&me, 0, 0, 0).unwrap();
    assert_eq!(w.runs(&s), [(0x9000_0000, RAM + 16 * P, 1, 4)]);
    // The address space going away ends the extent's mappings.
    drop(s);
    assert!(ro.locs().is_empty());
}

#[test]
fn lookup_and_update_access() {
    let w = world();
    let me = w.extent(RAM, 8, RWX);
    let s = w.space(5);
    s.map(&me, 0x4000_0000, attrs(7, 7)).unwrap();
    assert_eq!(
        s.lookup(&me, 0x4000_2000, 0x1000),
        Ok((0x2000, 0x1000, attrs(7, 7)))
    );
    assert_eq!(
        s.lookup(&me, 0x4000_2000, 0x10_0000),
        Ok((0x2000, 6 * P, attrs(7, 7)))
    );
    assert_eq!(s.lookup(&me, 0x4000_8000, P), Err(Error::AddrInvalid));
    assert_eq!(s.lookup(&me, 0x4000_0001, P), Err(Error::ArgumentAlignment));
    assert_eq!(s.lookup(&me, 0x4000_0000, 0), Err(Error::ArgumentSize));
    // Pages a child took are not mapped through the parent.
    let c = w.child(&me, 4, 2, RWX);
    assert_eq!(
        s.lookup(&me, 0x4000_2000, 0x10_0000),
        Ok((0x2000, 2 * P, attrs(7, 7)))
    );
    assert_eq!(s.lookup(&me, 0x4000_4000, P), Err(Error::AddrInvalid));
    assert_eq!(s.lookup(&c, 0x4000_4000, P), Ok((0, P, attrs(7, 7))));
    // Access changes.
    assert_eq!(
        s.update_access(&me, 0x4000_1000, 4, 4),
        Err(Error::AddrInvalid)
    );
    s.update_access(&me, 0x4000_0000, 4, 5).unwrap();
    assert_eq!(
        w.runs(&s),
        [
            (0x4000_0000, RAM, 4, 5),
            (0x4000_4000, RAM + 4 * P, 2, 7),
            (0x4000_6000, RAM + 6 * P, 2, 5)
        ]
    );
    let ro = w.extent(RAM + 16 * P, 1, 5);
    s.map(&ro, 0x9000_0000, attrs(4, 4)).unwrap();
    assert_eq!(s.update_access(&ro, 0x9000_0000, 6, 4), Err(Error::Denied));
}

/// Lend part of a VM's RAM to another VM, then take it back.
#[test]
fn derive_inherits_and_destroy_restores() {
    let w = world();
    let ram = w.extent(RAM, 16, RWX);
    let owner = w.space(3);
    owner.map(&ram, 0x4000_0000, attrs(7, 7)).unwrap();
    let before = w.runs(&owner);
    // The child takes pages 4..8 and inherits the mapping: nothing changes.
    let c = w.child(&ram, 4, 4, RWX);
    assert_eq!(w.runs(&owner), before);
    assert_eq!(w.owner(RAM + 4 * P), Some(c.owner()));
    assert_eq!(c.locs().len(), 1);
    // Lend: unmap from the owner, map in the borrower.
    owner.unmap(&c, 0x4000_4000).unwrap();
    assert_eq!(
        w.runs(&owner),
        [(0x4000_0000, RAM, 4, 7), (0x4000_8000, RAM + 8 * P, 8, 7)]
    );
    let vm = w.space(4);
    vm.map(&c, 0x4000_4000, attrs(7, 7)).unwrap();
    assert_eq!(w.runs(&vm), [(0x4000_4000, RAM + 4 * P, 4, 7)]);
    assert_eq!(vm.ram_at(0x4000_5008, 8, true), Some(RAM + 5 * P + 8));
    assert_eq!(owner.ram_at(0x4000_5008, 8, false), None);
    assert!(vm.is_ram_pa(RAM + 5 * P, 8));
    assert!(vm.allows(0x4000_4000, true, true));
    assert!(!owner.allows(0x4000_4000, false, false));
    // A parent cannot derive over what the child holds.
    let c2 = MemExtent::create(w.ctx, &w.root).unwrap();
    c2.configure_derive(&ram, 6 * P, 4 * P, RWX).unwrap();
    assert_eq!(c2.activate(), Err(Error::MemdbNotOwner));
    drop(c2);
    // Reclaim: the child goes, its pages are the parent's and mapped where it maps them.
    drop(c);
    assert!(w.runs(&vm).is_empty());
    assert_eq!(w.runs(&owner), before);
    assert_eq!(w.owner(RAM + 4 * P), Some(ram.owner()));
}

#[test]
fn derive_clips_access_and_checks() {
    let w = world();
    let ram = w.extent(RAM, 8, 6 | 3 << 8);
    let s = w.space(3);
    s.map(&ram, 0x4000_0000, attrs(6, 6)).unwrap();
    let c = MemExtent::create(w.ctx, &w.root).unwrap();
    assert_eq!(
        c.configure_derive(&ram, 0, 9 * P, 4),
        Err(Error::ArgumentSize)
    );
    assert_eq!(
        c.configure_derive(&ram, 7 * P, 2 * P, 4),
        Err(Error::ArgumentSize)
    );
    assert_eq!(
        c.configure_derive(&ram, P, P, 7),
        Err(Error::ArgumentInvalid)
    );
    assert_eq!(
        c.configure_derive(&ram, P, P, 0x104),
        Err(Error::ArgumentInvalid)
    );
    assert_eq!(
        c.configure_derive(&ram, 1, P, 4),
        Err(Error::ArgumentAlignment)
    );
    let idle = MemExtent::create(w.ctx, &w.root).unwrap();
    assert_eq!(c.configure_derive(&idle, 0, P, 4), Err(Error::ObjectState));
    // ANY is broader than the parent's CACHED.
    assert_eq!(
        c.configure_derive(&ram, 0, P, 4),
        Err(Error::ArgumentInvalid)
    );
    c.configure_derive(&ram, 2 * P, 2 * P, 0x304).unwrap();
    c.activate().unwrap();
    // Inherited read-only.
    assert_eq!(
        w.runs(&s),
        [
            (0x4000_0000, RAM, 2, 6),
            (0x4000_2000, RAM + 2 * P, 2, 4),
            (0x4000_4000, RAM + 4 * P, 4, 6)
        ]
    );
    drop(c);
    assert_eq!(w.runs(&s), [(0x4000_0000, RAM, 8, 6)]);
}

/// The resource manager's demand paging (docs/rm.md): `guest` derived from the owner's RAM
/// extent, `host` from `guest` over all of it, `guest` unmapped from the owner and mapped in the
/// VM. Donations host -> guest (to_parent) and back (to_child) move single pages between the
/// owner's stage 2 and the VM's; destroying `host` then `guest` gives every page back.
#[test]
fn demand_paging_by_donation() {
    let w = world();
    let ram = w.extent(RAM, 16, RWX);
    let owner = w.space(3);
    owner.map(&ram, 0x4000_0000, attrs(7, 7)).unwrap();
    let before = w.runs(&owner);
    let guest = w.child(&ram, 4, 8, RWX);
    let host = w.child(&guest, 0, 8, RWX);
    owner.unmap(&guest, 0x4000_4000).unwrap();
    let vm = w.space(4);
    vm.map(&guest, 0x4000_4000, attrs(7, 7)).unwrap();
    // The owner sees everything, the VM nothing.
    assert_eq!(w.runs(&owner), before);
    assert!(w.runs(&vm).is_empty());
    assert!(!vm.allows(0x4000_5000, false, false));
    // A hole of the VM (a stage-2 fault there is a page fault for its proxy scheduler); outside
    // every mapping is not one, nor is a mapped page.
    assert!(vm.is_hole(0x4000_5008));
    assert!(!vm.is_hole(0x4000_3000) && !vm.is_hole(0x4000_c000));
    assert!(!owner.is_hole(0x4000_5000));
    // Page 1 of the range to the VM: gone from the owner, at the same IPA in the VM.
    donate(1, &host, &guest, P, P).unwrap();
    assert_eq!(w.runs(&vm), [(0x4000_5000, RAM + 5 * P, 1, 7)]);
    assert!(!owner.allows(0x4000_5000, false, false));
    assert!(owner.allows(0x4000_4000, true, false));
    assert!(!vm.is_hole(0x4000_5008) && vm.is_hole(0x4000_4000));
    assert!(owner.is_hole(0x4000_5000));
    // Everything else too, then half back.
    donate(1, &host, &guest, 0, P).unwrap();
    donate(1, &host, &guest, 2 * P, 6 * P).unwrap();
    assert_eq!(w.runs(&vm), [(0x4000_4000, RAM + 4 * P, 8, 7)]);
    assert_eq!(
        w.runs(&owner),
        [(0x4000_0000, RAM, 4, 7), (0x4000_c000, RAM + 12 * P, 4, 7)]
    );
    donate(0, &guest, &host, 0, 4 * P).unwrap();
    assert_eq!(w.runs(&vm), [(0x4000_8000, RAM + 8 * P, 4, 7)]);
    // The wrong directions are refused.
    assert_eq!(donate(0, &host, &guest, 0, P), Err(Error::ArgumentInvalid));
    assert_eq!(donate(1, &guest, &host, 0, P), Err(Error::ArgumentInvalid));
    // Reset: host goes (its pages to guest), then guest (all to the owner's extent).
    drop(host);
    assert_eq!(w.runs(&vm), [(0x4000_4000, RAM + 4 * P, 8, 7)]);
    drop(guest);
    assert!(w.runs(&vm).is_empty());
    assert_eq!(w.runs(&owner), before);
    assert_eq!(w.owner(RAM + 4 * P), Some(ram.owner()));
}

#[test]
fn donate_both_ways_and_to_siblings() {
    let w = world();
    let p = w.extent(RAM, 16, RWX);
    let a = w.child(&p, 0, 8, RWX);
    let b = w.child(&p, 8, 8, RWX);
    let sa = w.space(3);
    let sb = w.space(4);
    // Each child mapped on its own; the parent nowhere.
    sa.map(&a, 0x1000_0000, attrs(7, 7)).unwrap();
    sb.map(&b, 0x2000_0000, attrs(7, 7)).unwrap();
    // a gives pages 2..4 back to the parent: unmapped in sa.
    donate(1, &a, &p, 2 * P, 2 * P).unwrap();
    assert_eq!(w.owner(RAM + 2 * P), Some(p.owner()));
    assert_eq!(
        w.runs(&sa),
        [(0x1000_0000, RAM, 2, 7), (0x1000_4000, RAM + 4 * P, 4, 7)]
    );
    // Twice: not a's any more.
    assert_eq!(donate(1, &a, &p, 2 * P, 2 * P), Err(Error::MemdbNotOwner));
    // And to the child again: mapped again.
    donate(0, &p, &a, 2 * P, P).unwrap();
    assert_eq!(
        w.runs(&sa),
        [(0x1000_0000, RAM, 3, 7), (0x1000_4000, RAM + 4 * P, 4, 7)]
    );
    // Siblings: b's page 8 may go to a only if it is in a's range: it is not.
    assert_eq!(donate(2, &b, &a, 0, P), Err(Error::ArgumentSize));
    // The parent cannot give b what b has.
    assert_eq!(donate(0, &p, &b, 0, P), Err(Error::MemdbNotOwner));
    assert_eq!(w.runs(&sb), [(0x2000_0000, RAM + 8 * P, 8, 7)]);
    // Wrong relationships and options.
    assert_eq!(donate(0, &a, &p, 0, P), Err(Error::ArgumentInvalid));
    assert_eq!(donate(1, &p, &a, 0, P), Err(Error::ArgumentInvalid));
    assert_eq!(donate(2, &a, &a, 0, P), Err(Error::ArgumentInvalid));
    assert_eq!(donate(2, &p, &a, 0, P), Err(Error::ArgumentInvalid));
    assert_eq!(donate(3, &a, &p, 0, P), Err(Error::ArgumentInvalid));
    assert_eq!(donate(1 << 8, &a, &p, 0, P), Err(Error::ArgumentInvalid));
    assert_eq!(donate(1, &a, &p, 0, 9 * P), Err(Error::ArgumentSize));
    assert_eq!(donate(1, &a, &p, 1, P), Err(Error::ArgumentAlignment));
    assert_eq!(donate(1, &a, &p, 0, 0), Err(Error::ArgumentSize));
    // NO_SYNC is accepted.
    donate(1 << 31 | 1, &a, &p, 0, P).unwrap();
    // Sibling donation where the ranges overlap: c over a's returned page 0.
    let c = w.child(&p, 0, 1, RWX);
    let sc = w.space(5);
    sc.map(&c, 0x3000_0000, attrs(7, 7)).unwrap();
    assert_eq!(w.runs(&sc), [(0x3000_0000, RAM, 1, 7)]);
    donate(2, &c, &a, 0, P).unwrap();
    assert!(w.runs(&sc).is_empty());
    assert_eq!(w.runs(&sa)[0], (0x1000_0000, RAM, 3, 7));
}

#[test]
fn modify_ranges() {
    let w = world();
    let me = w.extent(RAM, 8, RWX);
    modify(&me, 1, P, 2 * P).unwrap();
    modify(&me, 2, 0, P).unwrap();
    modify(&me, 3 | 1 << 31, 0, 8 * P).unwrap();
    modify(&me, 255, 0, 0).unwrap();
    assert_eq!(
        *w.phys.ops.lock(),
        vec![
            ("zero", RAM + P, 2 * P),
            ("clean", RAM, P),
            ("flush", RAM, 8 * P)
        ]
    );
    assert_eq!(modify(&me, 1, 0, 9 * P), Err(Error::ArgumentSize));
    assert_eq!(modify(&me, 1, 1, P), Err(Error::ArgumentAlignment));
    assert_eq!(modify(&me, 1, 0, 0), Err(Error::ArgumentSize));
    assert_eq!(modify(&me, 4, 0, P), Err(Error::ArgumentInvalid));
    assert_eq!(modify(&me, 1 << 8, 0, P), Err(Error::ArgumentInvalid));
    // Not on pages lent to a child.
    let _c = w.child(&me, 2, 1, RWX);
    assert_eq!(modify(&me, 1, 0, 4 * P), Err(Error::MemdbNotOwner));
    // Not on devices, not before activation.
    let d = w.extent(DEV, 1, 0x106);
    assert_eq!(modify(&d, 1, 0, P), Err(Error::ArgumentInvalid));
    let idle = MemExtent::create(w.ctx, &w.root).unwrap();
    assert_eq!(modify(&idle, 0, 0, 0), Err(Error::ObjectState));
}

#[test]
fn addrspace_lifecycle() {
    let w = world();
    let s = AddrSpaceObject::create(w.ctx, &w.root).unwrap();
    assert_eq!(s.activate(), Err(Error::ObjectConfig));
    assert_eq!(s.configure(0), Err(Error::ArgumentInvalid));
    assert_eq!(s.configure(0x1_0000), Err(Error::ArgumentInvalid));
    s.configure(7).unwrap();
    s.configure(8).unwrap();
    let t = AddrSpaceObject::create(w.ctx, &w.root).unwrap();
    assert_eq!(t.configure(8), Err(Error::ArgumentInvalid));
    t.configure(7).unwrap();
    assert_eq!(s.vttbr(), None);
    s.activate().unwrap();
    assert_eq!(s.vmid(), Some(8));
    assert!(s.vttbr().is_some());
    assert_eq!(s.configure(9), Err(Error::ObjectState));
    assert_eq!(s.activate(), Err(Error::ObjectState));
    assert!(AddrSpaceObject::new_for_vm(w.ctx, 8).is_err());
    drop(s);
    let u = w.space(8);
    assert_eq!(u.vmid(), Some(8));
    // VMMIO ranges still work.
    u.configure_vmmio(0x1000_0000, P, VmmioOp::Add).unwrap();
    assert!(u.vmmio_contains(0x1000_0000));
}

#[test]
fn direct_mappings_block_extents() {
    let w = world();
    let s = w.space(3);
    s.map_direct(DEV, DEV, P, crate::object::addrspace::Direct::Device)
        .unwrap();
    assert_eq!(
        s.map_direct(DEV, DEV, P, crate::object::addrspace::Direct::Device),
        Err(Error::AddrInvalid)
    );
    let me = w.extent(RAM, 2, RWX);
    assert_eq!(s.map(&me, DEV - P, attrs(7, 7)), Err(Error::AddrInvalid));
    assert!(s.allows(DEV, true, false));
    assert!(!s.allows(DEV, false, true));
    assert!(!s.is_ram_pa(DEV, 8));
    assert_eq!(s.ram_at(DEV, 8, false), None);
}

/// A fresh context over a fake machine, for other modules' tests.
pub(crate) fn fake_ctx() -> &'static MemCtx {
    world().ctx
}

//! Memory extents (Gunyah `memextent`): a physically contiguous range of memory taken from a
//! partition (or derived from a parent extent), which address spaces map whole.
//!
//! Ownership of every page is in the memory database ([`MemDb`]): activating an extent moves its
//! range from its partition (`Owner::Partition`) or its parent (`Owner::Extent`) to itself
//! (`Owner::Extent(id)`); donation moves pages between parent and child or between siblings;
//! destruction (the last reference) gives what the extent owns back to where it came from.
//!
//! Mappings are records: "extent E appears at `vbase` in address space A with `attrs`" (at most
//! [`MAX_MAPPINGS`] per extent). The stage-2 tables always follow one invariant: **in an address
//! space, a page is mapped iff the extent that owns it (memory database) has a mapping there**,
//! at that mapping's place and with its attributes. So a child derived from a mapped parent
//! inherits the parent's mappings of its range (same address spaces, `vbase + offset`, access
//! clipped to the child's) and nothing moves in any stage 2; pages that change owner follow the
//! new owner's mappings ([`retarget`]).
//!
//! Everything here is pure over two traits, so host tests run it with fakes: [`Stage2Tables`]
//! (an address space's translation tables) and [`PhysOps`] (the frame allocator, cache and
//! zeroing operations, and new tables). All changes are serialised by one lock in the
//! [`MemCtx`]. Lock order: that lock, then an address space's state, then the memory database.

use alloc::boxed::Box;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Mutex;
use wurley_abi::Error;

use super::addrspace::{AddrSpaceObject, MapRec};
use super::handle::Header;
use super::partition::{Charge, Partition};
use crate::mm::addr::PAGE_SIZE;
use crate::mm::memdb::{MemDb, Owner};

/// Most mappings one extent holds (Gunyah's basic extents: 4).
pub const MAX_MAPPINGS: usize = 4;

/// `pgtable_access` bits.
pub mod access {
    /// Execute.
    pub const X: u8 = 1;
    /// Write.
    pub const W: u8 = 2;
    /// Read.
    pub const R: u8 = 4;
    /// Read-write-execute.
    pub const RWX: u8 = 7;
}

/// VM memory types (stage-2 MemAttr encodings, `pgtable_vm_memtype`).
pub mod memtype {
    /// Device-nGnRnE.
    pub const DEVICE_NGNRNE: u8 = 0;
    /// Device-nGnRE.
    pub const DEVICE_NGNRE: u8 = 1;
    /// Device-nGRE.
    pub const DEVICE_NGRE: u8 = 2;
    /// Device-GRE.
    pub const DEVICE_GRE: u8 = 3;
    /// Normal non-cacheable.
    pub const NORMAL_NC: u8 = 0b0101;
    /// Normal write-back (Linux's default).
    pub const NORMAL_WB: u8 = 0b1111;

    /// Whether `m` is one of Gunyah's defined VM memory types.
    pub const fn is_valid(m: u8) -> bool {
        matches!(
            m,
            0..=3 | 0b0101 | 0b0110 | 0b0111 | 0b1001 | 0b1010 | 0b1011 | 0b1101 | 0b1110 | 0b1111
        )
    }

    /// Whether `m` is a device type.
    pub const fn is_device(m: u8) -> bool {
        m <= DEVICE_GRE
    }
}

/// How an address space maps an extent (`memextent_mapping_attrs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapAttrs {
    /// EL0 access (`pgtable_access`).
    pub user: u8,
    /// EL1 access.
    pub kernel: u8,
    /// Stage-2 memory type ([`memtype`]).
    pub memtype: u8,
}

impl MapAttrs {
    /// Read-write-execute normal write-back memory (a VM's RAM).
    pub const RAM: MapAttrs = MapAttrs {
        user: access::RWX,
        kernel: access::RWX,
        memtype: memtype::NORMAL_WB,
    };

    /// Decode a `map_attrs` word: user access 2:0, kernel access 6:4, memtype 23:16, the rest 0
    /// (`ArgumentInvalid` otherwise, and for an undefined memtype).
    pub fn decode(raw: u64) -> Result<MapAttrs, Error> {
        if raw & !0x00ff_0077 != 0 {
            return Err(Error::ArgumentInvalid);
        }
        let memtype = (raw >> 16) as u8;
        if !memtype::is_valid(memtype) {
            return Err(Error::ArgumentInvalid);
        }
        Ok(MapAttrs {
            user: (raw & 7) as u8,
            kernel: ((raw >> 4) & 7) as u8,
            memtype,
        })
    }

    /// The `map_attrs` word.
    pub fn encode(self) -> u64 {
        u64::from(self.user) | u64::from(self.kernel) << 4 | u64::from(self.memtype) << 16
    }

    /// The union of user and kernel access: what stage 2 grants (it cannot tell EL0 from EL1
    /// without FEAT_XNX, which Wurley does not use).
    pub fn access(self) -> u8 {
        self.user | self.kernel
    }

    /// The same with both accesses limited to `allowed`.
    pub fn clip(self, allowed: u8) -> MapAttrs {
        MapAttrs {
            user: self.user & allowed,
            kernel: self.kernel & allowed,
            memtype: self.memtype,
        }
    }
}

/// Decode an `access_attrs` word (`addrspace_update_access`): user 2:0, kernel 6:4, the rest 0.
pub fn decode_access_attrs(raw: u64) -> Result<(u8, u8), Error> {
    if raw & !0x77 != 0 {
        return Err(Error::ArgumentInvalid);
    }
    Ok(((raw & 7) as u8, ((raw >> 4) & 7) as u8))
}

/// An extent's memory type (`memextent_memtype`): which VM memory types may map it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtentMemtype {
    /// Anything.
    Any = 0,
    /// Device types only.
    Device = 1,
    /// Device types or normal non-cacheable.
    Uncached = 2,
    /// Normal cacheable types.
    Cached = 3,
}

impl ExtentMemtype {
    /// Whether VM memory type `m` may map an extent of this type.
    pub fn allows(self, m: u8) -> bool {
        match self {
            ExtentMemtype::Any => true,
            ExtentMemtype::Device => memtype::is_device(m),
            ExtentMemtype::Uncached => memtype::is_device(m) || m == memtype::NORMAL_NC,
            ExtentMemtype::Cached => !memtype::is_device(m) && m != memtype::NORMAL_NC,
        }
    }

    /// Whether a child of this type may be derived from a parent of type `parent`.
    fn within(self, parent: ExtentMemtype) -> bool {
        parent == ExtentMemtype::Any || parent == self
    }
}

/// Decoded `memextent_attrs`: access 2:0, memtype 9:8, type 17:16 (must be 0, BASIC); any other
/// bit (APPEND included) is `ArgumentInvalid`.
pub fn decode_extent_attrs(raw: u64) -> Result<(u8, ExtentMemtype), Error> {
    if raw & !0x0003_0307 != 0 || (raw >> 16) & 3 != 0 {
        return Err(Error::ArgumentInvalid);
    }
    let memtype = match (raw >> 8) & 3 {
        0 => ExtentMemtype::Any,
        1 => ExtentMemtype::Device,
        2 => ExtentMemtype::Uncached,
        _ => ExtentMemtype::Cached,
    };
    Ok(((raw & 7) as u8, memtype))
}

/// An address space's translation tables (a stage 2). The EL2 implementation keeps
/// break-before-make and invalidates the TLBs by VMID; host tests record what is mapped.
pub trait Stage2Tables: Send {
    /// Map `[pa, pa + size)` at `ipa` (nothing mapped there yet).
    fn map(&mut self, ipa: u64, pa: u64, size: u64, attrs: MapAttrs) -> Result<(), Error>;
    /// Unmap `[ipa, ipa + size)`.
    fn unmap(&mut self, ipa: u64, size: u64) -> Result<(), Error>;
    /// Change the attributes of the mapping of `[ipa, ipa + size)` (to `pa`).
    fn protect(&mut self, ipa: u64, pa: u64, size: u64, attrs: MapAttrs) -> Result<(), Error>;
    /// VTTBR_EL2 for these tables (root and hardware VMID).
    fn vttbr(&self) -> u64;
    /// Frames (4 KiB pages) the tables take now and the most they took at once; (0, 0) for
    /// tables that take none (host tests).
    fn table_frames(&self) -> (usize, usize) {
        (0, 0)
    }
}

/// What extents and address spaces need from the machine.
pub trait PhysOps: Send + Sync {
    /// Guest addresses end here (exclusive).
    fn ipa_limit(&self) -> u64;
    /// Take `[start, start + size)` out of the frame allocator for an extent: `Ok(true)` if it
    /// was free RAM, `Ok(false)` if it is not RAM at all (a device window),
    /// `MemdbNotOwner` if it is RAM the hypervisor uses.
    fn claim(&self, start: u64, size: u64) -> Result<bool, Error>;
    /// Give RAM taken by [`claim`](Self::claim) back to the frame allocator.
    fn release(&self, start: u64, size: u64);
    /// Zero RAM `[pa, pa + size)` (and clean it to the point of coherency).
    fn zero(&self, pa: u64, size: u64);
    /// Clean RAM `[pa, pa + size)` to the point of coherency.
    fn clean(&self, pa: u64, size: u64);
    /// Clean and invalidate RAM `[pa, pa + size)`.
    fn flush(&self, pa: u64, size: u64);
    /// Empty tables for a new address space.
    fn new_tables(&self) -> Result<Box<dyn Stage2Tables>, Error>;
    /// Bytes of RAM the frame allocator has free (for the log when an address space goes).
    fn free_bytes(&self) -> u64 {
        0
    }
}

/// The state extents and address spaces share: the memory database, the machine, one lock for
/// every change of ownership or mapping, and the VMIDs in use.
pub struct MemCtx {
    db: &'static Mutex<MemDb>,
    phys: &'static dyn PhysOps,
    world: Mutex<()>,
    next_id: AtomicU32,
    vmids: Mutex<Vec<u16>>,
}

impl MemCtx {
    /// A context over `db` and `phys`.
    pub const fn new(db: &'static Mutex<MemDb>, phys: &'static dyn PhysOps) -> MemCtx {
        MemCtx {
            db,
            phys,
            world: Mutex::new(()),
            next_id: AtomicU32::new(1),
            vmids: Mutex::new(Vec::new()),
        }
    }

    /// The machine.
    pub fn phys(&self) -> &'static dyn PhysOps {
        self.phys
    }

    /// The memory database.
    pub fn db(&self) -> &'static Mutex<MemDb> {
        self.db
    }

    pub(crate) fn lock(&self) -> spin::MutexGuard<'_, ()> {
        self.world.lock()
    }

    /// Record `vmid` as used: `ArgumentInvalid` for 0 or one already used.
    pub(crate) fn claim_vmid(&self, vmid: u16) -> Result<(), Error> {
        let mut v = self.vmids.lock();
        if vmid == 0 || v.contains(&vmid) {
            return Err(Error::ArgumentInvalid);
        }
        v.try_reserve(1).map_err(|_| Error::Nomem)?;
        v.push(vmid);
        Ok(())
    }

    pub(crate) fn release_vmid(&self, vmid: u16) {
        self.vmids.lock().retain(|&v| v != vmid);
    }
}

static CTX: spin::Once<&'static MemCtx> = spin::Once::new();

/// Make `ctx` the context hypercalls create extents and address spaces in (once, at boot).
pub fn set_ctx(ctx: &'static MemCtx) {
    CTX.call_once(|| ctx);
}

/// The context set by [`set_ctx`] (`Unimplemented` before). Host tests get a fake machine.
pub fn ctx() -> Result<&'static MemCtx, Error> {
    #[cfg(test)]
    CTX.call_once(tests::fake_ctx);
    CTX.get().copied().ok_or(Error::Unimplemented)
}

/// A configured extent's range and attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtentConfig {
    /// Physical base.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
    /// Most access any mapping may have.
    pub access: u8,
    /// Which memory types may map it.
    pub memtype: ExtentMemtype,
}

struct Inner {
    config: Option<ExtentConfig>,
    /// Set by `configure_derive`; a child keeps its parent alive.
    parent: Option<Arc<MemExtent>>,
    /// Offset of the range in the parent's.
    offset: u64,
    /// Taken from the frame allocator at activation (released at destruction).
    claimed: bool,
    /// The range is RAM (not a device window).
    ram: bool,
    /// Where it is mapped: (address space, vbase); the record is in the address space.
    maps: Vec<(Weak<AddrSpaceObject>, u64)>,
}

/// A memory extent object.
pub struct MemExtent {
    /// Lifecycle.
    pub header: Header,
    ctx: &'static MemCtx,
    id: u32,
    partition: Arc<Partition>,
    inner: Mutex<Inner>,
    _charge: Option<Charge>,
}

/// Where an extent appears in one address space.
#[derive(Clone)]
struct Loc {
    space: Arc<AddrSpaceObject>,
    vbase: u64,
    base: u64,
    attrs: MapAttrs,
}

impl Loc {
    fn ipa(&self, pa: u64) -> u64 {
        self.vbase.wrapping_add(pa.wrapping_sub(self.base))
    }
}

/// Page-aligned, non-zero, no wrap.
fn check_range(start: u64, size: u64) -> Result<u64, Error> {
    if !start.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
        return Err(Error::ArgumentAlignment);
    }
    if size == 0 {
        return Err(Error::ArgumentSize);
    }
    start.checked_add(size).ok_or(Error::AddrOverflow)
}

/// `[offset, offset + size)` inside an extent of `total` bytes.
fn check_window(offset: u64, size: u64, total: u64) -> Result<(), Error> {
    check_range(offset, size)?;
    match offset.checked_add(size) {
        Some(end) if end <= total => Ok(()),
        _ => Err(Error::ArgumentSize),
    }
}

/// Move the pages `pieces` (whose owner just changed) from the mappings `from` (the old owner's)
/// to `to` (the new owner's): where both map a page at the same place nothing moves (or only the
/// attributes change), elsewhere the old mapping goes and the new one comes.
fn retarget(pieces: &[(u64, u64)], from: &[Loc], to: &[Loc]) {
    let same =
        |a: &Loc, b: &Loc, pa: u64| Arc::ptr_eq(&a.space, &b.space) && a.ipa(pa) == b.ipa(pa);
    for &(s, e) in pieces {
        for f in from {
            let r = match to.iter().find(|t| same(f, t, s)) {
                Some(t) if t.attrs == f.attrs => Ok(()),
                Some(t) => f.space.tables_protect(f.ipa(s), s, e - s, t.attrs),
                None => f.space.tables_unmap(f.ipa(s), e - s),
            };
            if let Err(e) = r {
                log::error!("stage 2: unmapping PA {s:#x}: {e:?}");
            }
        }
        for t in to {
            if !from.iter().any(|f| same(f, t, s))
                && let Err(e) = t.space.tables_map(t.ipa(s), s, e - s, t.attrs)
            {
                log::error!("stage 2: mapping PA {s:#x}: {e:?}");
            }
        }
    }
}

impl MemExtent {
    /// A new extent in INIT, created from `partition` (charged to it).
    pub fn create(ctx: &'static MemCtx, partition: &Arc<Partition>) -> Result<Arc<Self>, Error> {
        let charge = partition.charge(core::mem::size_of::<MemExtent>())?;
        Ok(Self::new(ctx, partition, Some(charge)))
    }

    fn new(ctx: &'static MemCtx, partition: &Arc<Partition>, charge: Option<Charge>) -> Arc<Self> {
        Arc::new(MemExtent {
            header: Header::new_init(),
            ctx,
            id: ctx.next_id.fetch_add(1, Ordering::Relaxed),
            partition: partition.clone(),
            inner: Mutex::new(Inner {
                config: None,
                parent: None,
                offset: 0,
                claimed: false,
                ram: false,
                maps: Vec::new(),
            }),
            _charge: charge,
        })
    }

    /// An active extent over RAM `[base, base + size)`, which the caller already took from the
    /// frame allocator and which `partition` owns in the memory database (the root VM's RAM).
    /// Destruction gives the range back to the partition but not to the frame allocator.
    pub fn new_preallocated(
        ctx: &'static MemCtx,
        partition: &Arc<Partition>,
        base: u64,
        size: u64,
    ) -> Result<Arc<Self>, Error> {
        let me = Self::new(ctx, partition, None);
        me.configure(base, size, u64::from(access::RWX) | 3 << 8)?;
        let _w = ctx.lock();
        ctx.db
            .lock()
            .update(base, size, me.partition_owner(), me.owner())?;
        {
            let mut i = me.inner.lock();
            i.ram = true;
            i.claimed = false;
        }
        me.header.activate()?;
        Ok(me)
    }

    /// The extent's memory-database owner.
    pub fn owner(&self) -> Owner {
        Owner::Extent(self.id)
    }

    fn partition_owner(&self) -> Owner {
        Owner::Partition(self.partition.memdb_id())
    }

    /// Its configuration, once configured.
    pub fn config(&self) -> Option<ExtentConfig> {
        self.inner.lock().config
    }

    /// Whether its range is RAM.
    pub fn is_ram(&self) -> bool {
        self.inner.lock().ram
    }

    /// `memextent_configure` (INIT only): `[phys_base, phys_base + size)` from the partition.
    pub fn configure(&self, phys_base: u64, size: u64, attrs: u64) -> Result<(), Error> {
        self.header.require_init()?;
        let (access, memtype) = decode_extent_attrs(attrs)?;
        check_range(phys_base, size)?;
        let mut i = self.inner.lock();
        i.config = Some(ExtentConfig {
            base: phys_base,
            size,
            access,
            memtype,
        });
        i.parent = None;
        i.offset = 0;
        Ok(())
    }

    /// `memextent_configure_derive` (INIT only): `[offset, offset + size)` of `parent`, which
    /// must be active (`ObjectState`); `ArgumentSize` beyond it; access and memtype within the
    /// parent's (`ArgumentInvalid`).
    pub fn configure_derive(
        &self,
        parent: &Arc<MemExtent>,
        offset: u64,
        size: u64,
        attrs: u64,
    ) -> Result<(), Error> {
        self.header.require_init()?;
        let (access, memtype) = decode_extent_attrs(attrs)?;
        parent.header.require_active()?;
        if core::ptr::eq(parent.as_ref(), self) {
            return Err(Error::ArgumentInvalid);
        }
        let pc = parent.config().ok_or(Error::ObjectState)?;
        check_window(offset, size, pc.size)?;
        if access & !pc.access != 0 || !memtype.within(pc.memtype) {
            return Err(Error::ArgumentInvalid);
        }
        let mut i = self.inner.lock();
        i.config = Some(ExtentConfig {
            base: pc.base + offset,
            size,
            access,
            memtype,
        });
        i.parent = Some(parent.clone());
        i.offset = offset;
        Ok(())
    }

    /// `object_activate`: takes the range from the partition or the parent in the memory
    /// database (`MemdbNotOwner` / `MemdbEmpty` if they do not own all of it); a derived extent
    /// inherits its parent's mappings of the range. `ObjectConfig` until configured.
    pub fn activate(&self) -> Result<(), Error> {
        let _w = self.ctx.lock();
        self.header.require_init()?;
        let (cfg, parent) = {
            let i = self.inner.lock();
            (i.config.ok_or(Error::ObjectConfig)?, i.parent.clone())
        };
        match &parent {
            None => {
                let from = self.partition_owner();
                self.ctx
                    .db
                    .lock()
                    .update(cfg.base, cfg.size, from, self.owner())?;
                let ram = match self.ctx.phys.claim(cfg.base, cfg.size) {
                    Ok(ram) => ram,
                    Err(e) => {
                        let _ = self
                            .ctx
                            .db
                            .lock()
                            .update(cfg.base, cfg.size, self.owner(), from);
                        return Err(e);
                    }
                };
                let mut i = self.inner.lock();
                i.ram = ram;
                i.claimed = ram;
            }
            Some(p) => {
                let offset = self.inner.lock().offset;
                // Inherit the parent's mappings (checked before anything changes).
                let plocs = p.locs();
                self.inner
                    .lock()
                    .maps
                    .try_reserve(plocs.len())
                    .map_err(|_| Error::Nomem)?;
                for l in &plocs {
                    l.space.reserve_records(1)?;
                }
                self.ctx
                    .db
                    .lock()
                    .update(cfg.base, cfg.size, p.owner(), self.owner())?;
                let ram = p.is_ram();
                let mine: Vec<Loc> = plocs
                    .iter()
                    .map(|l| Loc {
                        space: l.space.clone(),
                        vbase: l.vbase + offset,
                        base: cfg.base,
                        attrs: l.attrs.clip(cfg.access),
                    })
                    .collect();
                {
                    let mut i = self.inner.lock();
                    i.ram = ram;
                    for l in &mine {
                        i.maps.push((Arc::downgrade(&l.space), l.vbase));
                        l.space.add_record(MapRec {
                            extent: self.id,
                            base: cfg.base,
                            size: cfg.size,
                            vbase: l.vbase,
                            attrs: l.attrs,
                            ram,
                        });
                    }
                }
                retarget(&[(cfg.base, cfg.base + cfg.size)], &plocs, &mine);
            }
        }
        self.header.activate()
    }

    /// Its live mappings (dead address spaces dropped from the list).
    fn locs(&self) -> Vec<Loc> {
        let mut i = self.inner.lock();
        let Some(cfg) = i.config else {
            return Vec::new();
        };
        i.maps.retain(|(w, _)| w.strong_count() > 0);
        i.maps
            .iter()
            .filter_map(|(w, vbase)| {
                let space = w.upgrade()?;
                let attrs = space.record(self.id, *vbase)?.attrs;
                Some(Loc {
                    space,
                    vbase: *vbase,
                    base: cfg.base,
                    attrs,
                })
            })
            .collect()
    }

    /// The pieces of `[start, start + size)` it owns.
    fn owned(&self, start: u64, size: u64) -> Vec<(u64, u64)> {
        self.ctx
            .db
            .lock()
            .ranges_of_within(self.owner(), start, size)
            .collect()
    }

    fn active_config(&self) -> Result<ExtentConfig, Error> {
        self.header.require_active()?;
        self.config().ok_or(Error::ObjectState)
    }

    /// `addrspace_map`: map the whole extent at `vbase` in `space` with `attrs`. Errors, in
    /// order: `ObjectState` (either not active), `ArgumentAlignment` (vbase), `AddrOverflow`
    /// (beyond the IPA size), `Denied` (access or memtype beyond the extent's),
    /// `MemextentMappingsFull`, `AddrInvalid` (overlaps a mapping in the address space).
    pub fn map(
        self: &Arc<Self>,
        space: &Arc<AddrSpaceObject>,
        vbase: u64,
        attrs: MapAttrs,
    ) -> Result<(), Error> {
        let _w = self.ctx.lock();
        space.header.require_active()?;
        let cfg = self.active_config()?;
        if !vbase.is_multiple_of(PAGE_SIZE) {
            return Err(Error::ArgumentAlignment);
        }
        match vbase.checked_add(cfg.size) {
            Some(end) if end <= space.ipa_limit() => {}
            _ => return Err(Error::AddrOverflow),
        }
        if attrs.access() & !cfg.access != 0 || !cfg.memtype.allows(attrs.memtype) {
            return Err(Error::Denied);
        }
        let locs = self.locs();
        if locs.len() >= MAX_MAPPINGS {
            return Err(Error::MemextentMappingsFull);
        }
        if space.overlaps(vbase, cfg.size) {
            return Err(Error::AddrInvalid);
        }
        space.reserve_records(1)?;
        let ram = {
            let mut i = self.inner.lock();
            i.maps.try_reserve(1).map_err(|_| Error::Nomem)?;
            i.maps.push((Arc::downgrade(space), vbase));
            i.ram
        };
        space.add_record(MapRec {
            extent: self.id,
            base: cfg.base,
            size: cfg.size,
            vbase,
            attrs,
            ram,
        });
        let loc = Loc {
            space: space.clone(),
            vbase,
            base: cfg.base,
            attrs,
        };
        retarget(&self.owned(cfg.base, cfg.size), &[], &[loc]);
        Ok(())
    }

    /// The mapping at `vbase` in `space`: `AddrInvalid` if there is none.
    fn loc_at(&self, space: &Arc<AddrSpaceObject>, vbase: u64) -> Result<Loc, Error> {
        self.locs()
            .into_iter()
            .find(|l| Arc::ptr_eq(&l.space, space) && l.vbase == vbase)
            .ok_or(Error::AddrInvalid)
    }

    fn drop_record(&self, space: &Arc<AddrSpaceObject>, vbase: u64) {
        self.inner
            .lock()
            .maps
            .retain(|(w, v)| !(*v == vbase && core::ptr::eq(w.as_ptr(), Arc::as_ptr(space))));
        space.remove_record(self.id, vbase);
    }

    /// `addrspace_unmap`: remove exactly the mapping at `vbase` in `space` (`AddrInvalid` if
    /// there is none).
    pub fn unmap(self: &Arc<Self>, space: &Arc<AddrSpaceObject>, vbase: u64) -> Result<(), Error> {
        let _w = self.ctx.lock();
        let cfg = self.active_config()?;
        let loc = self.loc_at(space, vbase)?;
        retarget(&self.owned(cfg.base, cfg.size), &[loc], &[]);
        self.drop_record(space, vbase);
        Ok(())
    }

    /// `addrspace_update_access`: new user and kernel access for the mapping at `vbase` in
    /// `space`: `Denied` beyond the extent's access, `AddrInvalid` if there is no mapping.
    pub fn update_access(
        self: &Arc<Self>,
        space: &Arc<AddrSpaceObject>,
        vbase: u64,
        user: u8,
        kernel: u8,
    ) -> Result<(), Error> {
        let _w = self.ctx.lock();
        let cfg = self.active_config()?;
        if (user | kernel) & !cfg.access != 0 {
            return Err(Error::Denied);
        }
        let old = self.loc_at(space, vbase)?;
        let new = Loc {
            attrs: MapAttrs {
                user,
                kernel,
                memtype: old.attrs.memtype,
            },
            ..old.clone()
        };
        space.set_record_attrs(self.id, vbase, new.attrs);
        retarget(&self.owned(cfg.base, cfg.size), &[old], &[new]);
        Ok(())
    }

    /// `addrspace_lookup`: for the mapping of this extent in `space` that holds `vbase`: the
    /// offset of `vbase` in the extent, how many bytes from there (at most `size`) are mapped by
    /// it (pages it owns), and its attributes. `AddrInvalid` if `vbase` is not mapped by it.
    pub fn lookup(
        &self,
        space: &Arc<AddrSpaceObject>,
        vbase: u64,
        size: u64,
    ) -> Result<(u64, u64, MapAttrs), Error> {
        let _w = self.ctx.lock();
        let cfg = self.active_config()?;
        check_range(vbase, size)?;
        let loc = self
            .locs()
            .into_iter()
            .find(|l| {
                Arc::ptr_eq(&l.space, space) && l.vbase <= vbase && vbase - l.vbase < cfg.size
            })
            .ok_or(Error::AddrInvalid)?;
        let offset = vbase - loc.vbase;
        let pa = cfg.base + offset;
        let run = self
            .owned(pa, size.min(cfg.size - offset))
            .first()
            .filter(|&&(s, _)| s == pa)
            .map(|&(s, e)| e - s)
            .ok_or(Error::AddrInvalid)?;
        Ok((offset, run, loc.attrs))
    }

    /// `memextent_modify` op 0: remove every mapping.
    pub fn unmap_all(&self) -> Result<(), Error> {
        let _w = self.ctx.lock();
        let cfg = self.active_config()?;
        let locs = self.locs();
        retarget(&self.owned(cfg.base, cfg.size), &locs, &[]);
        for l in &locs {
            l.space.remove_record(self.id, l.vbase);
        }
        self.inner.lock().maps.clear();
        Ok(())
    }

    /// `memextent_modify` ops 1-3 on `[offset, offset + size)` of the extent, which must be RAM
    /// (`ArgumentInvalid`) and all its own (`MemdbNotOwner`: pages it gave a child or sibling).
    pub fn modify_range(&self, op: ModifyOp, offset: u64, size: u64) -> Result<(), Error> {
        let _w = self.ctx.lock();
        let cfg = self.active_config()?;
        check_window(offset, size, cfg.size)?;
        if !self.is_ram() {
            return Err(Error::ArgumentInvalid);
        }
        let pa = cfg.base + offset;
        if !self.ctx.db.lock().is_owned_by(pa, size, self.owner()) {
            return Err(Error::MemdbNotOwner);
        }
        let phys = self.ctx.phys;
        match op {
            ModifyOp::Zero => phys.zero(pa, size),
            ModifyOp::Clean => phys.clean(pa, size),
            ModifyOp::Flush => phys.flush(pa, size),
        }
        Ok(())
    }

    /// Pass everything `self` owns back to `to` (its parent's extent or its partition).
    fn give_back(&self) -> Option<Arc<MemExtent>> {
        let (cfg, parent, claimed) = {
            let mut i = self.inner.lock();
            (i.config, i.parent.take(), i.claimed)
        };
        let Some(cfg) = cfg else { return parent };
        if self.header.require_active().is_err() {
            return parent;
        }
        let pieces = self.owned(cfg.base, cfg.size);
        let mine = self.locs();
        let to_owner = parent
            .as_ref()
            .map_or(self.partition_owner(), |p| p.owner());
        {
            let mut db = self.ctx.db.lock();
            for &(s, e) in &pieces {
                if let Err(err) = db.update(s, e - s, self.owner(), to_owner) {
                    log::error!("memory database: extent {} PA {s:#x}: {err:?}", self.id);
                }
            }
        }
        let theirs = parent.as_ref().map(|p| p.locs()).unwrap_or_default();
        retarget(&pieces, &mine, &theirs);
        for l in &mine {
            l.space.remove_record(self.id, l.vbase);
        }
        if parent.is_none() && claimed {
            for &(s, e) in &pieces {
                self.ctx.phys.release(s, e - s);
            }
        }
        parent
    }
}

impl Drop for MemExtent {
    fn drop(&mut self) {
        let parent = {
            let _w = self.ctx.lock();
            self.give_back()
        };
        // Dropped outside the lock: it may be the parent's last reference.
        drop(parent);
    }
}

/// `memextent_modify` range operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModifyOp {
    /// zero_range.
    Zero,
    /// cache_clean_range.
    Clean,
    /// cache_flush_range.
    Flush,
}

/// `memextent_modify(me, flags, offset, size)`: op in bits 7:0 (0 unmap_all, 1 zero_range,
/// 2 cache_clean_range, 3 cache_flush_range, 255 sync_all), bit 31 NO_SYNC, other bits and ops
/// `ArgumentInvalid`. unmap_all and sync_all ignore offset and size.
pub fn modify(me: &MemExtent, flags: u64, offset: u64, size: u64) -> Result<(), Error> {
    if flags & !0x8000_00ff != 0 {
        return Err(Error::ArgumentInvalid);
    }
    match flags & 0xff {
        0 => me.unmap_all(),
        1 => me.modify_range(ModifyOp::Zero, offset, size),
        2 => me.modify_range(ModifyOp::Clean, offset, size),
        3 => me.modify_range(ModifyOp::Flush, offset, size),
        // Stage-2 changes are complete (TLBs invalidated) when each call returns.
        255 => me.active_config().map(|_| ()),
        _ => Err(Error::ArgumentInvalid),
    }
}

/// `memextent_donate(options, from, to, offset, size)`: type in bits 7:0 (0 to_child: `from`
/// is `to`'s parent; 1 to_parent: `to` is `from`'s parent; 2 to_sibling: same parent), bit 31
/// NO_SYNC; anything else, or extents not so related, `ArgumentInvalid`. The range is
/// `[offset, offset + size)` of the child (to_child, to_parent) or of `from` (to_sibling), and
/// must lie in `to`'s range too (`ArgumentSize`). Every page must be `from`'s
/// (`MemdbNotOwner` / `MemdbEmpty`); the pages then follow `to`'s mappings.
pub fn donate(
    options: u64,
    from: &Arc<MemExtent>,
    to: &Arc<MemExtent>,
    offset: u64,
    size: u64,
) -> Result<(), Error> {
    if options & !0x8000_00ff != 0 {
        return Err(Error::ArgumentInvalid);
    }
    let ctx = from.ctx;
    let _w = ctx.lock();
    let fc = from.active_config()?;
    let tc = to.active_config()?;
    let parent_of = |e: &MemExtent| e.inner.lock().parent.clone();
    let is_parent = |child: &MemExtent, p: &Arc<MemExtent>| {
        parent_of(child).is_some_and(|x| Arc::ptr_eq(&x, p))
    };
    let base = match options & 0xff {
        0 if is_parent(to, from) => tc.base,
        1 if is_parent(from, to) => fc.base,
        2 => match (parent_of(from), parent_of(to)) {
            (Some(a), Some(b)) if Arc::ptr_eq(&a, &b) && !Arc::ptr_eq(from, to) => fc.base,
            _ => return Err(Error::ArgumentInvalid),
        },
        _ => return Err(Error::ArgumentInvalid),
    };
    check_range(offset, size)?;
    let start = base.checked_add(offset).ok_or(Error::ArgumentSize)?;
    let end = start.checked_add(size).ok_or(Error::ArgumentSize)?;
    let inside = |c: &ExtentConfig| start >= c.base && end <= c.base + c.size;
    if !inside(&fc) || !inside(&tc) {
        return Err(Error::ArgumentSize);
    }
    let (fl, tl) = (from.locs(), to.locs());
    ctx.db
        .lock()
        .update(start, size, from.owner(), to.owner())?;
    retarget(&[(start, end)], &fl, &tl);
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;

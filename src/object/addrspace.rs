//! Address-space objects (Gunyah `addrspace`): a VM's guest-physical address space. Created in
//! INIT (`partition_create_addrspace`), given its VMID by `addrspace_configure`, and given its
//! stage-2 tables at activation; or made active by the hypervisor for the root VM, the resource
//! manager ([`AddrSpaceObject::new_for_vm`]).
//!
//! It holds the records of the memory extents mapped into it (`addrspace_map`; the stage-2
//! logic is in [`super::memextent`]), the hypervisor's own direct mappings (the resource
//! manager's read-only view of the boot bundle), and the VMMIO
//! ranges (`addrspace_configure_vmmio`): the ranges whose accesses fault to the VM's proxy
//! scheduler as VMMIO run states instead of being answered by the hypervisor ([`VmmioRanges`],
//! plain data; `vm::exit` asks [`AddrSpaceObject::vmmio_contains`]).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use spin::Mutex;
use wurley_abi::Error;
use wurley_abi::vcpu_run::VmmioOp;

use super::handle::Header;
use super::memextent::{MapAttrs, MemCtx, MemExtent, Stage2Tables, access, memtype};
use super::partition::{Charge, Partition};
use crate::mm::memdb::Owner;

/// Most VMMIO ranges one address space holds.
pub const MAX_VMMIO_RANGES: usize = 16;

/// Range granule: a page.
const GRANULE: u64 = 4096;

/// The VMMIO ranges of one address space: disjoint, page-aligned `[base, base + size)`.
#[derive(Debug, Default)]
pub struct VmmioRanges {
    ranges: Vec<(u64, u64)>,
}

impl VmmioRanges {
    /// `addrspace_configure_vmmio` on these ranges, with addresses below `ipa_limit`.
    ///
    /// Errors, in order: `ArgumentAlignment` if `base` or `size` is not page aligned;
    /// `ArgumentSize` if `size` is 0; `AddrOverflow` if the range wraps or ends above
    /// `ipa_limit`; for ADD, `AddrInvalid` if it overlaps a range already added and `Nomem`
    /// past [`MAX_VMMIO_RANGES`]; for REMOVE, `AddrInvalid` unless exactly that range was
    /// added.
    pub fn configure(
        &mut self,
        base: u64,
        size: u64,
        op: VmmioOp,
        ipa_limit: u64,
    ) -> Result<(), Error> {
        if !base.is_multiple_of(GRANULE) || !size.is_multiple_of(GRANULE) {
            return Err(Error::ArgumentAlignment);
        }
        if size == 0 {
            return Err(Error::ArgumentSize);
        }
        let end = base
            .checked_add(size)
            .filter(|&e| e <= ipa_limit)
            .ok_or(Error::AddrOverflow)?;
        match op {
            VmmioOp::Add => {
                if self.ranges.iter().any(|&(b, s)| base < b + s && b < end) {
                    return Err(Error::AddrInvalid);
                }
                if self.ranges.len() >= MAX_VMMIO_RANGES {
                    return Err(Error::Nomem);
                }
                self.ranges.try_reserve(1).map_err(|_| Error::Nomem)?;
                self.ranges.push((base, size));
                Ok(())
            }
            VmmioOp::Remove => {
                let at = self
                    .ranges
                    .iter()
                    .position(|&r| r == (base, size))
                    .ok_or(Error::AddrInvalid)?;
                self.ranges.swap_remove(at);
                Ok(())
            }
        }
    }

    /// Whether `ipa` is inside a range.
    pub fn contains(&self, ipa: u64) -> bool {
        self.ranges.iter().any(|&(b, s)| ipa >= b && ipa - b < s)
    }
}

/// One extent mapped in an address space: the extent's range `[base, base + size)` appears at
/// `vbase` (pages the extent does not own at the moment are not mapped through it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapRec {
    /// The extent's id (memory-database owner `Extent(extent)`).
    pub extent: u32,
    /// The extent's physical base.
    pub base: u64,
    /// The extent's size.
    pub size: u64,
    /// Where its base appears.
    pub vbase: u64,
    /// How.
    pub attrs: MapAttrs,
    /// The extent is RAM.
    pub ram: bool,
}

impl MapRec {
    fn holds(&self, ipa: u64, len: u64) -> bool {
        ipa >= self.vbase
            && ipa
                .checked_add(len)
                .is_some_and(|end| end <= self.vbase + self.size)
    }
}

/// A mapping the hypervisor makes itself, outside any extent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direct {
    /// Its own pages, read-only (the boot bundle for the resource manager).
    ReadOnly,
    /// A passed-through device window, Device-nGnRE, read-write, never executable.
    Device,
}

#[derive(Default)]
struct Inner {
    tables: Option<Box<dyn Stage2Tables>>,
    maps: Vec<MapRec>,
    /// Direct mappings: (ipa, size, kind).
    direct: Vec<(u64, u64, Direct)>,
}

/// An address-space object.
pub struct AddrSpaceObject {
    /// Lifecycle.
    pub header: Header,
    ctx: &'static MemCtx,
    ipa_limit: u64,
    vmmio: Mutex<VmmioRanges>,
    /// The VMID given by `addrspace_configure` (0: none yet).
    vmid: AtomicU32,
    /// VTTBR_EL2 once active (0 before).
    vttbr: AtomicU64,
    inner: Mutex<Inner>,
    /// The name `WURLEY_VM_SET_NAME` gave the VM on this address space, and whether it takes
    /// console input first.
    vm_name: Mutex<Option<(String, bool)>>,
    charge: Option<Charge>,
}

/// What an address space holds, for what its VM costs the hypervisor (`vm::assemble` logs it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpaceFootprint {
    /// Bytes of RAM extents mapped as normal memory (each mapping counted whole).
    pub ram: u64,
    /// Frames its stage-2 tables take now.
    pub table_frames: usize,
    /// The most frames its stage-2 tables took at once.
    pub peak_table_frames: usize,
    /// What the object itself costs its partition.
    pub charged: usize,
}

impl AddrSpaceObject {
    fn build(ctx: &'static MemCtx, header: Header, charge: Option<Charge>) -> AddrSpaceObject {
        AddrSpaceObject {
            header,
            ctx,
            ipa_limit: ctx.phys().ipa_limit(),
            vmmio: Mutex::new(VmmioRanges::default()),
            vmid: AtomicU32::new(0),
            vttbr: AtomicU64::new(0),
            inner: Mutex::new(Inner::default()),
            vm_name: Mutex::new(None),
            charge,
        }
    }

    /// Record the name of the VM on this address space (`WURLEY_VM_SET_NAME`) and whether it
    /// takes console input first. `Nomem` if the name cannot be allocated.
    pub fn set_vm_name(&self, name: &str, focus: bool) -> Result<(), Error> {
        let mut owned = String::new();
        owned.try_reserve(name.len()).map_err(|_| Error::Nomem)?;
        owned.push_str(name);
        let old = self.vm_name.lock().replace((owned, focus));
        drop(old);
        Ok(())
    }

    /// The name and console-focus flag given with `WURLEY_VM_SET_NAME`, if any.
    pub fn vm_name(&self) -> Option<(String, bool)> {
        self.vm_name.lock().clone()
    }

    /// `partition_create_addrspace`: a new address space in INIT, charged to `partition`.
    pub fn create(ctx: &'static MemCtx, partition: &Arc<Partition>) -> Result<Arc<Self>, Error> {
        let charge = partition.charge(core::mem::size_of::<AddrSpaceObject>())?;
        Ok(Arc::new(Self::build(ctx, Header::new_init(), Some(charge))))
    }

    /// An active address space with VMID `vmid` and empty stage-2 tables, for a VM the
    /// hypervisor makes itself. `ArgumentInvalid` if `vmid` is 0 or used.
    pub fn new_for_vm(ctx: &'static MemCtx, vmid: u16) -> Result<Arc<Self>, Error> {
        let space = Arc::new(Self::build(ctx, Header::new_init(), None));
        space.configure(u64::from(vmid))?;
        space.activate()?;
        Ok(space)
    }

    /// `addrspace_configure` (INIT only): the VMID, 1..=0xffff and not in use by another
    /// address space (`ArgumentInvalid`). A new VMID replaces one configured before.
    pub fn configure(&self, vmid: u64) -> Result<(), Error> {
        let _inner = self.inner.lock();
        self.header.require_init()?;
        let vmid = u16::try_from(vmid).map_err(|_| Error::ArgumentInvalid)?;
        self.ctx.claim_vmid(vmid)?;
        let old = self.vmid.swap(u32::from(vmid), Ordering::AcqRel);
        if old != 0 {
            self.ctx.release_vmid(old as u16);
        }
        Ok(())
    }

    /// `object_activate`: creates the stage-2 tables. `ObjectConfig` without a VMID.
    pub fn activate(&self) -> Result<(), Error> {
        let mut inner = self.inner.lock();
        self.header.require_init()?;
        if self.vmid.load(Ordering::Acquire) == 0 {
            return Err(Error::ObjectConfig);
        }
        let tables = self.ctx.phys().new_tables()?;
        self.vttbr.store(tables.vttbr(), Ordering::Release);
        inner.tables = Some(tables);
        self.header.activate()
    }

    /// The VMID given by `addrspace_configure` (or [`new_for_vm`](Self::new_for_vm)).
    pub fn vmid(&self) -> Option<u16> {
        match self.vmid.load(Ordering::Acquire) {
            0 => None,
            v => Some(v as u16),
        }
    }

    /// VTTBR_EL2 for the address space, once active.
    pub fn vttbr(&self) -> Option<u64> {
        match self.vttbr.load(Ordering::Acquire) {
            0 => None,
            v => Some(v),
        }
    }

    /// RAM mapped, stage-2 table frames and the object's charge (one pass over its mappings).
    pub fn footprint(&self) -> SpaceFootprint {
        let inner = self.inner.lock();
        let ram = inner
            .maps
            .iter()
            .filter(|r| r.ram && !memtype::is_device(r.attrs.memtype))
            .map(|r| r.size)
            .sum();
        let (table_frames, peak_table_frames) =
            inner.tables.as_ref().map_or((0, 0), |t| t.table_frames());
        SpaceFootprint {
            ram,
            table_frames,
            peak_table_frames,
            charged: self.charge.as_ref().map_or(0, Charge::bytes),
        }
    }

    /// Guest addresses end here (exclusive).
    pub fn ipa_limit(&self) -> u64 {
        self.ipa_limit
    }

    /// `addrspace_configure_vmmio` (see [`VmmioRanges::configure`]).
    pub fn configure_vmmio(&self, base: u64, size: u64, op: VmmioOp) -> Result<(), Error> {
        self.vmmio.lock().configure(base, size, op, self.ipa_limit)
    }

    /// Whether `ipa` is inside a VMMIO range.
    pub fn vmmio_contains(&self, ipa: u64) -> bool {
        self.vmmio.lock().contains(ipa)
    }

    /// Map `[pa, pa + size)` at `ipa` directly (not through an extent); the caller has checked
    /// the memory database. `AddrInvalid` if it overlaps any mapping, `ObjectState` if the
    /// address space is not active.
    pub fn map_direct(&self, ipa: u64, pa: u64, size: u64, kind: Direct) -> Result<(), Error> {
        let _w = self.ctx.lock();
        let mut inner = self.inner.lock();
        if ipa.checked_add(size).is_none_or(|e| e > self.ipa_limit) {
            return Err(Error::AddrOverflow);
        }
        if overlaps(&inner, ipa, size) {
            return Err(Error::AddrInvalid);
        }
        inner.direct.try_reserve(1).map_err(|_| Error::Nomem)?;
        let attrs = match kind {
            Direct::ReadOnly => MapAttrs {
                user: access::R,
                kernel: access::R,
                memtype: memtype::NORMAL_WB,
            },
            Direct::Device => MapAttrs {
                user: access::R | access::W,
                kernel: access::R | access::W,
                memtype: memtype::DEVICE_NGNRE,
            },
        };
        inner
            .tables
            .as_mut()
            .ok_or(Error::ObjectState)?
            .map(ipa, pa, size, attrs)?;
        inner.direct.push((ipa, size, kind));
        Ok(())
    }

    /// `addrspace_map` of `me` at `vbase` (see [`MemExtent::map`]).
    pub fn map(
        self: &Arc<Self>,
        me: &Arc<MemExtent>,
        vbase: u64,
        attrs: MapAttrs,
    ) -> Result<(), Error> {
        me.map(self, vbase, attrs)
    }

    /// `addrspace_unmap` (see [`MemExtent::unmap`]).
    pub fn unmap(self: &Arc<Self>, me: &Arc<MemExtent>, vbase: u64) -> Result<(), Error> {
        me.unmap(self, vbase)
    }

    /// `addrspace_update_access` (see [`MemExtent::update_access`]).
    pub fn update_access(
        self: &Arc<Self>,
        me: &Arc<MemExtent>,
        vbase: u64,
        user: u8,
        kernel: u8,
    ) -> Result<(), Error> {
        me.update_access(self, vbase, user, kernel)
    }

    /// `addrspace_lookup` (see [`MemExtent::lookup`]).
    pub fn lookup(
        self: &Arc<Self>,
        me: &Arc<MemExtent>,
        vbase: u64,
        size: u64,
    ) -> Result<(u64, u64, MapAttrs), Error> {
        me.lookup(self, vbase, size)
    }

    /// The extent mapping that maps `[ipa, ipa + len)` now (one whose extent owns those pages),
    /// and the physical address of `ipa`.
    fn mapped_by(&self, inner: &Inner, ipa: u64, len: u64) -> Option<(MapRec, u64)> {
        let db = self.ctx.db().lock();
        inner.maps.iter().find_map(|r| {
            if !r.holds(ipa, len) {
                return None;
            }
            let pa = r.base + (ipa - r.vbase);
            let first = pa & !(crate::mm::addr::PAGE_SIZE - 1);
            let pages = (pa + len.max(1)).next_multiple_of(crate::mm::addr::PAGE_SIZE) - first;
            db.is_owned_by(first, pages, Owner::Extent(r.extent))
                .then_some((*r, pa))
        })
    }

    /// For hypercall buffers: if `[ipa, ipa + len)` (inside one page run of one mapping) is
    /// mapped to normal-memory RAM with read (or, with `write`, write) access, its physical
    /// address.
    pub fn ram_at(&self, ipa: u64, len: u64, write: bool) -> Option<u64> {
        let inner = self.inner.lock();
        let (r, pa) = self.mapped_by(&inner, ipa, len)?;
        let need = if write { access::W } else { access::R };
        (r.ram && !memtype::is_device(r.attrs.memtype) && r.attrs.access() & need != 0)
            .then_some(pa)
    }

    /// For hypercall buffers reached through the MMU (which already checked the stage-2
    /// permissions): whether host physical `[pa, pa + len)` is RAM of an extent mapped here.
    pub fn is_ram_pa(&self, pa: u64, len: u64) -> bool {
        self.with_ram_pa(pa, len, || ()).is_some()
    }

    /// Run `f` if host physical `[pa, pa + len)` is RAM of an extent mapped here, holding the
    /// address space's lock meanwhile (so no extent mapped here can give the pages back to the
    /// frame allocator before `f` is done); `None` otherwise.
    pub fn with_ram_pa<R>(&self, pa: u64, len: u64, f: impl FnOnce() -> R) -> Option<R> {
        let end = pa.checked_add(len)?;
        let inner = self.inner.lock();
        let ok = inner
            .maps
            .iter()
            .any(|r| r.ram && pa >= r.base && end <= r.base + r.size);
        let out = ok.then(f);
        drop(inner);
        out
    }

    /// Whether `ipa` lies inside an extent's mapping of RAM while no extent maps its page: the
    /// extent gave that page to a child or sibling mapped elsewhere or nowhere (demand paging:
    /// not provided yet).
    pub fn is_hole(&self, ipa: u64) -> bool {
        let inner = self.inner.lock();
        inner.maps.iter().any(|r| r.ram && r.holds(ipa, 1))
            && self.mapped_by(&inner, ipa, 1).is_none()
    }

    /// Whether an access to `ipa` (a write with `write`, an instruction fetch with `exec`) is
    /// allowed by the mappings now: a stage-2 fault there was a transient one (a mapping being
    /// changed break-before-make) and the access can be retried. Waits for a change in
    /// progress.
    pub fn allows(&self, ipa: u64, write: bool, exec: bool) -> bool {
        let inner = self.inner.lock();
        let need = if exec {
            access::X
        } else if write {
            access::W
        } else {
            access::R
        };
        if let Some((r, _)) = self.mapped_by(&inner, ipa, 1) {
            return r.attrs.access() & need != 0;
        }
        inner
            .direct
            .iter()
            .any(|&(b, s, k)| ipa >= b && ipa - b < s && !exec && (!write || k == Direct::Device))
    }

    // ---- Records and tables, for `memextent` (under the context lock) ----

    pub(crate) fn record(&self, extent: u32, vbase: u64) -> Option<MapRec> {
        self.inner
            .lock()
            .maps
            .iter()
            .find(|r| r.extent == extent && r.vbase == vbase)
            .copied()
    }

    pub(crate) fn reserve_records(&self, n: usize) -> Result<(), Error> {
        self.inner
            .lock()
            .maps
            .try_reserve(n)
            .map_err(|_| Error::Nomem)
    }

    pub(crate) fn add_record(&self, rec: MapRec) {
        self.inner.lock().maps.push(rec);
    }

    pub(crate) fn remove_record(&self, extent: u32, vbase: u64) {
        self.inner
            .lock()
            .maps
            .retain(|r| !(r.extent == extent && r.vbase == vbase));
    }

    pub(crate) fn set_record_attrs(&self, extent: u32, vbase: u64, attrs: MapAttrs) {
        for r in self.inner.lock().maps.iter_mut() {
            if r.extent == extent && r.vbase == vbase {
                r.attrs = attrs;
            }
        }
    }

    /// Whether `[vbase, vbase + size)` overlaps any mapping.
    pub(crate) fn overlaps(&self, vbase: u64, size: u64) -> bool {
        overlaps(&self.inner.lock(), vbase, size)
    }

    fn with_tables(
        &self,
        f: impl FnOnce(&mut dyn Stage2Tables) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut inner = self.inner.lock();
        let t = inner.tables.as_mut().ok_or(Error::ObjectState)?;
        f(t.as_mut())
    }

    pub(crate) fn tables_map(
        &self,
        ipa: u64,
        pa: u64,
        size: u64,
        a: MapAttrs,
    ) -> Result<(), Error> {
        self.with_tables(|t| t.map(ipa, pa, size, a))
    }

    pub(crate) fn tables_unmap(&self, ipa: u64, size: u64) -> Result<(), Error> {
        self.with_tables(|t| t.unmap(ipa, size))
    }

    pub(crate) fn tables_protect(
        &self,
        ipa: u64,
        pa: u64,
        size: u64,
        a: MapAttrs,
    ) -> Result<(), Error> {
        self.with_tables(|t| t.protect(ipa, pa, size, a))
    }
}

fn overlaps(inner: &Inner, vbase: u64, size: u64) -> bool {
    let end = vbase.saturating_add(size);
    inner
        .maps
        .iter()
        .map(|r| (r.vbase, r.size))
        .chain(inner.direct.iter().map(|&(b, s, _)| (b, s)))
        .any(|(b, s)| vbase < b.saturating_add(s) && b < end)
}

impl Drop for AddrSpaceObject {
    fn drop(&mut self) {
        // Its tables go first, so the log below counts their frames as free.
        let tables = self.inner.get_mut().tables.take();
        let had_tables = tables.is_some();
        drop(tables);
        if let Some(v) = self.vmid() {
            self.ctx.release_vmid(v);
            if had_tables {
                log::info!(
                    "VM {v:#x} destroyed: {} bytes of RAM free",
                    self.ctx.phys().free_bytes()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u64 = 1 << 40;

    #[test]
    fn add_remove_and_lookup() {
        let mut r = VmmioRanges::default();
        assert_eq!(
            r.configure(0x1000_0000, 0x2000, VmmioOp::Add, LIMIT),
            Ok(())
        );
        assert!(r.contains(0x1000_0000) && r.contains(0x1000_1fff));
        assert!(!r.contains(0x1000_2000) && !r.contains(0x0fff_ffff));
        assert_eq!(
            r.configure(0x1000_1000, 0x1000, VmmioOp::Add, LIMIT),
            Err(Error::AddrInvalid)
        );
        assert_eq!(
            r.configure(0x1000_2000, 0x1000, VmmioOp::Add, LIMIT),
            Ok(())
        );
        assert_eq!(
            r.configure(0x1000_0000, 0x1000, VmmioOp::Remove, LIMIT),
            Err(Error::AddrInvalid)
        );
        assert_eq!(
            r.configure(0x1000_0000, 0x2000, VmmioOp::Remove, LIMIT),
            Ok(())
        );
        assert!(!r.contains(0x1000_0000) && r.contains(0x1000_2000));
    }

    #[test]
    fn bad_ranges() {
        let mut r = VmmioRanges::default();
        assert_eq!(
            r.configure(0x1000_0800, 0x1000, VmmioOp::Add, LIMIT),
            Err(Error::ArgumentAlignment)
        );
        assert_eq!(
            r.configure(0x1000_0000, 0x10, VmmioOp::Add, LIMIT),
            Err(Error::ArgumentAlignment)
        );
        assert_eq!(
            r.configure(0x1000_0000, 0, VmmioOp::Add, LIMIT),
            Err(Error::ArgumentSize)
        );
        assert_eq!(
            r.configure(!0xfff, 0x2000, VmmioOp::Add, LIMIT),
            Err(Error::AddrOverflow)
        );
        assert_eq!(
            r.configure(LIMIT - 0x1000, 0x2000, VmmioOp::Add, LIMIT),
            Err(Error::AddrOverflow)
        );
        for i in 0..MAX_VMMIO_RANGES as u64 {
            assert_eq!(r.configure(i * 0x1000, 0x1000, VmmioOp::Add, LIMIT), Ok(()));
        }
        assert_eq!(
            r.configure(0x10_0000, 0x1000, VmmioOp::Add, LIMIT),
            Err(Error::Nomem)
        );
    }
}

//! [`VGic`]: one VM's whole virtual GICv3 (distributor, per-vCPU redistributors), the
//! injection entry points, routing, and moving interrupts in and out of list registers.
//!
//! Delivery model. An interrupt is *forwardable* when it is enabled, pending and its group is
//! enabled in GICD_CTLR. Every injection returns the vCPU to kick when the interrupt is
//! forwardable after it (also when it is already in that vCPU's list registers, so the vCPU
//! exits and picks up the change), `None` otherwise. Before a vCPU runs, [`VGic::flush`] loads
//! its list registers; after it ran, [`VGic::sync`] folds their state back. An interrupt in a
//! list register (`in_lr`) is owned by the guest until the sync: flushes of other vCPUs skip
//! it, and a change made meanwhile by another vCPU (e.g. ICPENDR on an SPI loaded elsewhere)
//! is merged at that sync (a pending latch set meanwhile survives; an active/pending state
//! cleared meanwhile may be restored from the list register).
//!
//! Routing: SGIs and PPIs belong to their vCPU; an SPI goes to the vCPU whose MPIDR affinity
//! equals its GICD_IROUTER, to vCPU 0 when IROUTER.IRM = 1 (1-of-N: vCPU 0 always
//! participates here), and nowhere when no vCPU matches.

use alloc::vec::Vec;

use super::candidates::{Candidates, bits, busy};
use super::dist::Dist;
use super::irq::{Irq, PRIVATE, SGIS, SPECIAL_INTID, Trigger};
use super::lr::{ListReg, LrState, lr_state, lr_vintid};
use super::redist::{Redist, split_region_offset};
use super::sgi::Sgi1r;
use crate::vm::mmio::{MmioAccess, MmioResult};

/// What [`VGic::flush`] loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushInfo {
    /// List registers filled (from slot 0; the others were zeroed).
    pub used: usize,
    /// More interrupts wanted a list register than there were: the caller should ask for a
    /// maintenance interrupt (ICH_HCR_EL2.UIE) to refill them.
    pub more_pending: bool,
}

/// An interrupt wanting a list register, as [`VGic::flush`] orders them: not active (active
/// ones first), priority, INTID.
type Wanted = (bool, u8, u32);

/// A VM's virtual GICv3.
#[derive(Clone, Debug)]
pub struct VGic {
    dist: Dist,
    cpus: Vec<Redist>,
    mpidrs: Vec<u64>,
    /// Bumped by every entry point that may change interrupt state (see [`VGic::touch`]).
    epoch: u64,
    /// Per vCPU: what its last flush's scan found wanting a list register, in load order, and
    /// the [`VGic::epoch`] it was taken at (`u64::MAX`: never). Until the epoch moves the scan
    /// would find the same, so the next flush reuses it.
    wanted: Vec<(u64, Vec<Wanted>)>,
    /// The interrupts a scan has to look at.
    cand: Candidates,
}

impl VGic {
    /// A reset GIC for vCPUs with the given MPIDRs (vCPU index = position) and `spis` SPIs
    /// (clamped to 988; GICD_TYPER reports them rounded up to a multiple of 32).
    pub fn new(vcpu_mpidrs: &[u64], spis: u32) -> Self {
        let n = vcpu_mpidrs.len();
        let cpus = (0..n)
            .zip(vcpu_mpidrs)
            .map(|(i, &mpidr)| Redist::new(i, mpidr, i + 1 == n))
            .collect();
        let dist = Dist::new(spis);
        let cand = Candidates::new(n, dist.spi_count());
        Self {
            dist,
            cand,
            cpus,
            mpidrs: vcpu_mpidrs.to_vec(),
            epoch: 0,
            wanted: alloc::vec![(u64::MAX, Vec::new()); n],
        }
    }

    /// Note that interrupt state may have changed: every vCPU's next flush scans again.
    /// A flush's own loading does not count: the sync that always follows it (at the latest
    /// at the start of the next flush) undoes it, and touches only if the guest changed a list
    /// register. Loading never changes what another vCPU's scan finds: private interrupts
    /// are per vCPU and an SPI is only ever scanned for the one vCPU it targets.
    pub(super) fn touch(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// Number of vCPUs.
    pub fn vcpus(&self) -> usize {
        self.cpus.len()
    }

    /// Number of SPIs (INTIDs 32..32 + spis).
    pub fn spis(&self) -> u32 {
        self.dist.spi_count()
    }

    /// Heap bytes it holds (its vectors as allocated now), for what its VM costs.
    pub fn heap_bytes(&self) -> usize {
        use core::mem::size_of;
        let spis = self.spis() as usize;
        let lrs: usize = self
            .cpus
            .iter()
            .map(|c| c.loaded.capacity() * size_of::<(u32, u64)>())
            .sum();
        let wanted: usize = self
            .wanted
            .iter()
            .map(|w| w.1.capacity() * size_of::<Wanted>())
            .sum();
        spis * size_of::<Irq>()
            + self.cpus.capacity() * size_of::<Redist>()
            + lrs
            + self.mpidrs.capacity() * size_of::<u64>()
            + self.wanted.capacity() * size_of::<(u64, Vec<Wanted>)>()
            + wanted
            + self.cpus.len() * size_of::<u32>()
            + spis.div_ceil(64) * size_of::<u64>()
    }

    /// A guest access to the distributor window.
    pub fn dist_access(&mut self, access: MmioAccess) -> MmioResult {
        self.touch();
        self.cand.mark_all();
        self.dist.access(access)
    }

    /// A guest access at `access.offset` within vCPU `vcpu`'s redistributor window (a vCPU
    /// that does not exist reads as zero and ignores writes).
    pub fn redist_access(&mut self, vcpu: usize, access: MmioAccess) -> MmioResult {
        self.touch();
        self.cand.mark_all();
        match self.cpus.get_mut(vcpu) {
            Some(cpu) => cpu.access(access),
            None => super::dist::raz_wi(&access),
        }
    }

    /// A guest access at `access.offset` from the start of the whole redistributor region.
    pub fn redist_region_access(&mut self, access: MmioAccess) -> MmioResult {
        let (vcpu, offset) = split_region_offset(access.offset);
        self.redist_access(vcpu, MmioAccess { offset, ..access })
    }

    /// Interrupt `intid` as seen by vCPU `vcpu` (SGIs and PPIs are per vCPU, SPIs shared).
    pub fn irq(&self, intid: u32, vcpu: usize) -> Option<&Irq> {
        if intid < PRIVATE {
            self.cpus.get(vcpu)?.irq(intid)
        } else {
            self.dist.spi(intid)
        }
    }

    /// Apply `f` to interrupt `intid` (of `vcpu` if private); [`VGic::touch`] if that changed
    /// it. `None` if there is no such interrupt. (Sources re-assert unchanged lines often: the
    /// UART's level is refreshed at every exit.)
    fn change(&mut self, intid: u32, vcpu: usize, f: impl FnOnce(&mut Irq)) -> Option<()> {
        let irq = self.irq_mut(intid, vcpu)?;
        let before = *irq;
        f(irq);
        let (changed, now_busy) = (*irq != before, busy(irq));
        if now_busy {
            self.cand.mark(intid, vcpu);
        }
        if changed {
            self.touch();
        }
        Some(())
    }

    fn irq_mut(&mut self, intid: u32, vcpu: usize) -> Option<&mut Irq> {
        if intid < PRIVATE {
            self.cpus.get_mut(vcpu)?.irq_mut(intid)
        } else {
            self.dist.spi_mut(intid)
        }
    }

    fn spi_target(&self, irq: &Irq) -> Option<usize> {
        if irq.route & super::irq::IROUTER_IRM != 0 {
            return (!self.cpus.is_empty()).then_some(0);
        }
        self.cpus.iter().position(|cpu| irq.routed_to(cpu.mpidr()))
    }

    /// The vCPU interrupt `intid` is delivered to: `vcpu` itself for an SGI or PPI, the vCPU
    /// GICD_IROUTER selects for an SPI. `None` for unimplemented INTIDs or unmatched routes.
    pub fn target_of(&self, intid: u32, vcpu: usize) -> Option<usize> {
        if intid < PRIVATE {
            return (vcpu < self.cpus.len()).then_some(vcpu);
        }
        self.spi_target(self.dist.spi(intid)?)
    }

    fn forwardable(&self, irq: &Irq) -> bool {
        irq.ready() && self.dist.group_enabled(irq.group1)
    }

    /// The vCPU to kick if `intid` is now forwardable.
    fn notify(&self, intid: u32, vcpu: usize) -> Option<usize> {
        let irq = self.irq(intid, vcpu)?;
        if self.forwardable(irq) {
            self.target_of(intid, vcpu)
        } else {
            None
        }
    }

    /// A level-sensitive source of PPI or SPI `intid` now has line `level` (`vcpu` selects the
    /// PPI's vCPU; it is ignored for SPIs). SGIs have no line: ignored. Returns the vCPU to kick.
    pub fn set_level(&mut self, intid: u32, vcpu: usize, level: bool) -> Option<usize> {
        if intid < SGIS {
            return None;
        }
        self.change(intid, vcpu, |irq| irq.set_level(level))?;
        if level {
            self.notify(intid, vcpu)
        } else {
            None
        }
    }

    /// Latch interrupt `intid` pending (an edge, or a one-shot event such as a hardware
    /// interrupt's firing); `vcpu` selects the SGI's or PPI's vCPU. Returns the vCPU to kick.
    pub fn pend_edge(&mut self, intid: u32, vcpu: usize) -> Option<usize> {
        self.change(intid, vcpu, |irq| irq.pending = true)?;
        self.notify(intid, vcpu)
    }

    /// A hypervisor interrupt source (message queue, doorbell) asserts SPI `intid`: it becomes
    /// pending, and the line stays at `level` (the source's pending re-check) for a
    /// level-triggered SPI. Returns the vCPU to kick.
    pub fn assert_source(&mut self, intid: u32, level: bool) -> Option<usize> {
        if intid < PRIVATE {
            return None;
        }
        self.change(intid, 0, |irq| {
            irq.pending = true;
            irq.level = level;
        })?;
        self.notify(intid, 0)
    }

    /// The source of SPI `intid` no longer asserts it: the line drops, and a level-triggered
    /// SPI the guest has not yet been shown stops being pending (Gunyah's lazy re-check).
    pub fn deassert_source(&mut self, intid: u32) {
        if intid < PRIVATE {
            return;
        }
        self.change(intid, 0, |irq| {
            irq.level = false;
            if irq.trigger == Trigger::Level && !irq.in_lr {
                irq.pending = false;
            }
        });
    }

    /// Link PPI or SPI `intid` (of `vcpu`, for a PPI) to physical INTID `pintid` (a PPI or SPI):
    /// its list registers get HW = 1, so the guest's deactivation deactivates the physical
    /// interrupt. Returns whether the mapping was made.
    pub fn map_hw(&mut self, intid: u32, vcpu: usize, pintid: u32) -> bool {
        if intid < SGIS || !(SGIS..SPECIAL_INTID).contains(&pintid) {
            return false;
        }
        self.touch();
        self.irq_mut(intid, vcpu)
            .map(|irq| irq.hw = Some(pintid))
            .is_some()
    }

    /// Undo [`VGic::map_hw`]. Returns whether `intid` exists.
    pub fn unmap_hw(&mut self, intid: u32, vcpu: usize) -> bool {
        self.touch();
        self.irq_mut(intid, vcpu).map(|irq| irq.hw = None).is_some()
    }

    /// Undo [`VGic::map_hw`] for good (the hardware IRQ goes to another VM): as well as the
    /// link, drop the pending and active state the physical interrupt gave `intid` while it is
    /// not in a list register. Returns whether the physical interrupt was left active for it
    /// (acknowledged by the hypervisor, waiting for this guest's deactivation, which will now
    /// never come): the caller must deactivate it. `None` if `intid` does not exist.
    pub fn take_back_hw(&mut self, intid: u32, vcpu: usize) -> Option<bool> {
        self.touch();
        let irq = self.irq_mut(intid, vcpu)?;
        let linked = irq.hw.take().is_some();
        if !linked || irq.in_lr {
            return Some(false);
        }
        let left_active = irq.pending || irq.active;
        irq.pending = false;
        irq.active = false;
        Some(left_active)
    }

    /// vCPU `sender` wrote `sgi1r` to ICC_SGI1R_EL1: make the SGI pending on every target.
    /// Returns the targets to kick (those on which the SGI is forwardable).
    pub fn send_sgi(&mut self, sender: usize, sgi1r: u64) -> Vec<usize> {
        let sgi = Sgi1r::decode(sgi1r);
        let targets = sgi.targets(sender, &self.mpidrs);
        targets
            .into_iter()
            .filter_map(|t| self.pend_edge(sgi.intid, t))
            .collect()
    }

    /// Whether anything is forwardable to `vcpu` (outside list registers): for deciding
    /// whether a WFI should wait.
    pub fn pending_for(&self, vcpu: usize) -> bool {
        let Some(cpu) = self.cpus.get(vcpu) else {
            return false;
        };
        let private = cpu
            .private
            .iter()
            .any(|irq| !irq.in_lr && self.forwardable(irq));
        private
            || self.dist.spis().iter().any(|irq| {
                !irq.in_lr && self.forwardable(irq) && self.spi_target(irq) == Some(vcpu)
            })
    }

    /// Whether `irq` wants a list register: forwardable, or active (the guest must be able to
    /// deactivate it even if it was disabled meanwhile).
    fn wants_lr(&self, irq: &Irq) -> bool {
        !irq.in_lr && (irq.active || self.forwardable(irq))
    }

    /// Collect what wants a list register on `vcpu` into `wanted`, looking only at candidate
    /// interrupts, and drop the candidates found idle.
    fn scan(&mut self, vcpu: usize, wanted: &mut Vec<Wanted>) {
        let mut keep = self.cand.private(vcpu);
        for intid in bits(u64::from(keep)) {
            match self.cpus.get(vcpu).and_then(|cpu| cpu.irq(intid)) {
                Some(irq) if busy(irq) => {
                    if self.wants_lr(irq) {
                        wanted.push((!irq.active, irq.priority, intid));
                    }
                }
                _ => keep &= !(1 << intid),
            }
        }
        self.cand.retain_private(vcpu, keep);
        for word in 0..self.cand.spi_words() {
            let mut keep = self.cand.spi_word(word);
            for bit in bits(keep) {
                let intid = PRIVATE + 64 * word as u32 + bit;
                match self.dist.spi(intid) {
                    Some(irq) if busy(irq) => {
                        if self.wants_lr(irq) && self.spi_target(irq) == Some(vcpu) {
                            wanted.push((!irq.active, irq.priority, intid));
                        }
                    }
                    _ => keep &= !(1 << bit),
                }
            }
            self.cand.retain_spis(word, keep);
        }
    }

    /// Forget every vCPU's last scan: the next flushes scan every interrupt.
    #[cfg(test)]
    pub(super) fn forget_scans(&mut self) {
        self.touch();
        self.cand.mark_all();
    }

    /// Load `vcpu`'s list registers: active interrupts first, then the forwardable ones by
    /// priority (lowest value first, then lowest INTID). Unused slots are zeroed. An edge
    /// interrupt's pending latch moves into the list register; a level interrupt without a
    /// physical link asks for a maintenance interrupt on EOI (to resample its line); a linked
    /// one gets HW + pINTID and is never loaded pending and active at once (its pending state
    /// waits in the model until the guest deactivates it). A previous flush not yet synced is
    /// first undone, as if the guest had not run.
    pub fn flush(&mut self, vcpu: usize, lrs: &mut [u64]) -> FlushInfo {
        lrs.fill(0);
        if vcpu >= self.cpus.len() {
            return FlushInfo::default();
        }
        self.sync(vcpu, &[]);
        let epoch = self.epoch;
        // The most common case, kept cheap: nothing changed since a scan that found nothing.
        if self
            .wanted
            .get(vcpu)
            .is_some_and(|(at, w)| *at == epoch && w.is_empty())
        {
            return FlushInfo::default();
        }
        let (scanned_at, mut wanted) = self
            .wanted
            .get_mut(vcpu)
            .map(core::mem::take)
            .unwrap_or_default();
        if scanned_at != epoch {
            wanted.clear();
            self.scan(vcpu, &mut wanted);
            wanted.sort_unstable();
        }
        // The sync above left the (empty) vector here: its allocation is reused.
        let mut loaded = self
            .cpus
            .get_mut(vcpu)
            .map(|cpu| core::mem::take(&mut cpu.loaded))
            .unwrap_or_default();
        for (slot, &(_, _, intid)) in lrs.iter_mut().zip(&wanted) {
            let forwardable = self
                .irq(intid, vcpu)
                .is_some_and(|irq| self.forwardable(irq));
            let Some(irq) = self.irq_mut(intid, vcpu) else {
                continue;
            };
            let pending = forwardable && !(irq.hw.is_some() && irq.active);
            let lr = ListReg {
                vintid: intid,
                pintid: irq.hw,
                eoi: irq.hw.is_none() && irq.trigger == Trigger::Level,
                priority: irq.priority,
                group1: irq.group1,
                state: LrState::new(pending, irq.active),
            };
            if pending && irq.trigger == Trigger::Edge {
                irq.pending = false;
            }
            irq.in_lr = true;
            *slot = lr.encode();
            loaded.push((intid, *slot));
        }
        let used = loaded.len();
        let more_pending = wanted.len() > used;
        if let Some(cpu) = self.cpus.get_mut(vcpu) {
            cpu.loaded = loaded;
        }
        if let Some(w) = self.wanted.get_mut(vcpu) {
            *w = (epoch, wanted);
        }
        FlushInfo { used, more_pending }
    }

    /// Fold back `vcpu`'s list registers (as read after the guest ran, in the slots
    /// [`VGic::flush`] filled): their active and pending states return to the model. An
    /// invalid entry was completed by the guest; a level interrupt then stays pending only while
    /// its line is high (or its latch was set again). A slot that is missing or now holds
    /// another vINTID is taken as untouched. Afterwards nothing of `vcpu` is `in_lr`.
    pub fn sync(&mut self, vcpu: usize, lrs: &[u64]) {
        let Some(cpu) = self.cpus.get_mut(vcpu) else {
            return;
        };
        if cpu.loaded.is_empty() {
            // Nothing was loaded since the last sync, so nothing is `in_lr`.
            return;
        }
        let mut loaded = core::mem::take(&mut cpu.loaded);
        let mut changed = false;
        for (i, &(intid, written)) in loaded.iter().enumerate() {
            let value = lrs
                .get(i)
                .copied()
                .filter(|&v| lr_vintid(v) == intid)
                .unwrap_or(written);
            // An untouched list register gives back exactly the state the flush took.
            changed |= value != written;
            let (was, now) = (lr_state(written), lr_state(value));
            let Some(irq) = self.irq_mut(intid, vcpu) else {
                continue;
            };
            irq.active = now.active();
            match irq.trigger {
                // The latch was cleared when the pending state went into the LR; an edge
                // that arrived since is kept either way.
                Trigger::Edge if now.pending() => irq.pending = true,
                Trigger::Edge => {}
                // Acknowledging a level interrupt clears its latch; the line stays.
                Trigger::Level if was.pending() && !now.pending() => irq.pending = false,
                Trigger::Level => {}
            }
            irq.in_lr = false;
        }
        // An SPI rerouted while it sat here was left out of its new target's scan (it was
        // `in_lr`): that vCPU must scan again now that it is free.
        changed |= loaded
            .iter()
            .any(|&(intid, _)| intid >= PRIVATE && self.target_of(intid, vcpu) != Some(vcpu));
        if changed {
            self.touch();
        }
        loaded.clear();
        if let Some(cpu) = self.cpus.get_mut(vcpu) {
            cpu.private.iter_mut().for_each(|irq| irq.in_lr = false);
            cpu.loaded = loaded;
        }
    }
}

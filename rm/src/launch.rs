//! Launching the boot bundle's VMs (the hypervisor starts only the RM): the RM reads the
//! manifest (`wurley_manifest::bundle`) and builds every VM from objects through hypercalls:
//! its IPA layout, device tree (with `/hypervisor`), links and their vIRQs. docs/rm.md has the
//! sequence.
//!
//! [`Launcher`] is a state machine the main loop steps between rounds of RPC service, so the RM
//! stays responsive while it copies images: each [`Launcher::step`] does a bounded amount of
//! work (the objects of every VM, the wiring, zeroing 32 MiB, or copying one window chunk of at
//! most 2 MiB). When [`Step::Ready`] is returned every VM that could be built is built but not
//! running: the caller registers them ([`Launcher::started`]) and calls [`Launcher::power_on`].
//!
//! What the RM decides: where each VM's RAM goes (a 2 MiB aligned block of the free RAM the boot
//! information lists, first fit; at `memory-base` itself for a VM with devices, which is
//! identity mapped) and where the VM sees it ([`placement`]: the primary VM, the first one built,
//! is identity mapped at the block's PA unless its manifest gives `memory-base`; the others see
//! it at `memory-base`), which physical CPU each vCPU gets (round robin, continuing across
//! VMs), which of its own vIRQs serve the RM links and watches.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use guestdt::hypervisor::{self, HypNode, RM_MESSAGE_SIZE, RM_QUEUE_DEPTH};
use guestdt::{GuestDt, layout};
use wurley_abi::rights::{
    AddrspaceRights, CspaceRights, DoorbellRights, MsgqueueRights, PartitionRights, ThreadRights,
    VicRights,
};
use wurley_abi::{CapId, Error};
use wurley_manifest::bundle::{self, Bundle, Limits, LinkKind, VmSpec};

use crate::calls::{Hypercalls, Kind, Modify, VCPU_VIRQ_HALT, VCPU_VIRQ_RUN_WAKEUP};
use crate::gunyah::{Gunyah, KnownVm, Region};

const PAGE: u64 = 4096;
const MIB2: u64 = 2 << 20;
/// The most bytes one step copies (one temporary extent mapped in the window).
pub const CHUNK: u64 = 2 << 20;
/// The most bytes of a VM's RAM one step zeroes.
pub const ZERO_STEP: u64 = 32 << 20;
/// Caps in a manifest VM's cspace (as the hypervisor gives its VMs).
pub const VM_CSPACE_CAPS: u32 = 256;
/// First vIRQ handed out for links (INTIDs below are left for the VM's own bindings).
pub const LINK_VIRQ_BASE: u32 = 64;
/// The VMID of the address space of the `i`th VM of the manifest, as the hypervisor numbers
/// them: from 0x8000 up, clear of the VMIDs the RM gives the VMs it creates.
pub fn manifest_vmid(i: usize) -> u16 {
    0x8000u16.saturating_add(u16::try_from(i).unwrap_or(u16::MAX))
}

/// `vcpu_configure` option: the machine ends with this vCPU's VM.
pub const VCPU_OPTION_CRITICAL: u64 = 1 << 8;
/// `vcpu_configure` option: run only by `vcpu_run` (proxy scheduling).
pub const VCPU_OPTION_RUN_SCHEDULED: u64 = 1 << 9;

/// `memextent_attrs`: access RWX, memtype CACHED.
const RAM_EXTENT_ATTRS: u32 = 7 | 3 << 8;
/// `memextent_attrs`: access RW, memtype CACHED (a window piece derived from RAM).
const PIECE_EXTENT_ATTRS: u32 = ACCESS_RW | 3 << 8;
/// `memextent_attrs`: access RW, memtype DEVICE.
const DEVICE_EXTENT_ATTRS: u32 = ACCESS_RW | 1 << 8;
/// `map_attrs`: RWX for user and kernel, normal write-back.
const RAM_MAP_ATTRS: u32 = 7 | 7 << 4 | 0xF << 16;
/// `map_attrs`: RW, normal write-back (the RM's window).
const WINDOW_MAP_ATTRS: u32 = ACCESS_RW | ACCESS_RW << 4 | 0xF << 16;
/// `map_attrs`: RW, never executable, Device-nGnRE.
const DEVICE_MAP_ATTRS: u32 = ACCESS_RW | ACCESS_RW << 4 | 1 << 16;
/// `pgtable_access` RW: R (4) | W (2).
const ACCESS_RW: u32 = 6;

/// Rights of a VM's caps to its own vCPUs (`capabilities = "vcpus"`), as the hypervisor gives.
const OWN_VCPU_RIGHTS: ThreadRights = ThreadRights::AFFINITY
    .union(ThreadRights::PRIORITY)
    .union(ThreadRights::TIMESLICE)
    .union(ThreadRights::YIELD_TO)
    .union(ThreadRights::STATE);
/// Rights of a proxy scheduler's caps to the vCPUs it runs.
const PROXY_VCPU_RIGHTS: ThreadRights = ThreadRights::AFFINITY
    .union(ThreadRights::YIELD_TO)
    .union(ThreadRights::BIND_VIRQ)
    .union(ThreadRights::STATE);

/// The free RAM, as `(base, size)` ranges, from which VMs' RAM blocks are taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FreeRam {
    ranges: Vec<(u64, u64)>,
}

impl FreeRam {
    /// The free ranges of the boot information.
    pub fn new(ranges: impl IntoIterator<Item = (u64, u64)>) -> Self {
        let mut ranges: Vec<(u64, u64)> = ranges.into_iter().filter(|r| r.1 > 0).collect();
        ranges.sort_unstable();
        FreeRam { ranges }
    }

    /// The ranges left.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// Take `size` bytes: at `at` exactly if given, else the lowest 2 MiB aligned block that
    /// fits. The reason if it cannot.
    pub fn take(&mut self, size: u64, at: Option<u64>) -> Result<u64, &'static str> {
        let found = self.ranges.iter().enumerate().find_map(|(i, &(b, s))| {
            let end = b.checked_add(s)?;
            let start = match at {
                Some(a) => (a >= b).then_some(a)?,
                None => b.checked_add(MIB2 - 1)? & !(MIB2 - 1),
            };
            (start.checked_add(size)? <= end).then_some((i, start))
        });
        let Some((i, start)) = found else {
            return Err(match at {
                Some(_) => "not free RAM",
                None => "no free block that large",
            });
        };
        let (b, s) = self.ranges[i];
        self.ranges.remove(i);
        let tail = (start + size, b + s - (start + size));
        if tail.1 > 0 {
            self.ranges.insert(i, tail);
        }
        if start > b {
            self.ranges.insert(i, (b, start - b));
        }
        Ok(start)
    }

    /// Give `[base, base + size)` back.
    pub fn give(&mut self, base: u64, size: u64) {
        let i = self.ranges.partition_point(|r| r.0 < base);
        self.ranges.insert(i, (base, size));
        // Merge neighbours.
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.ranges.len());
        for &(b, s) in &self.ranges {
            match merged.last_mut() {
                Some(last) if last.0 + last.1 == b => last.1 += s,
                _ => merged.push((b, s)),
            }
        }
        self.ranges = merged;
    }
}

/// How a VM's RAM is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// At PA = IPA = `memory-base` (a VM with devices: their DMA sees guest addresses).
    AtBase,
    /// Anywhere in free RAM, identity mapped (IPA = the PA found): the primary VM (the first
    /// the RM builds) when its manifest gives no `memory-base` and it has no devices.
    Identity,
    /// Anywhere in free RAM, mapped at `memory-base`.
    Anywhere,
}

/// Where the RM puts the RAM of a VM with `spec`, `primary` if it is the first VM it builds.
pub fn placement(spec: &VmSpec<'_>, primary: bool) -> Placement {
    if !spec.devices.is_empty() {
        Placement::AtBase
    } else if primary && !spec.memory_base_explicit {
        Placement::Identity
    } else {
        Placement::Anywhere
    }
}

/// Whether RAM `[pa, pa + size)` can be mapped at IPA = PA in a guest: below the guest IPA
/// limit and clear of the virtual GIC and UART.
fn identity_fits(pa: u64, size: u64) -> bool {
    let end = pa.saturating_add(size);
    let emulated = (layout::GICD_BASE, layout::UART_BASE + layout::UART_SIZE);
    end <= bundle::IPA_LIMIT && (end <= emulated.0 || pa >= emulated.1)
}

/// The RM's link to a VM it launched: the RM sends on `tx` and receives on `rx`, with its
/// vIRQs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RmLink {
    /// The queue the RM sends on.
    pub tx: CapId,
    /// The queue the RM receives from.
    pub rx: CapId,
    /// The RM's "not full" vIRQ of `tx`.
    pub tx_virq: u32,
    /// The RM's "not empty" vIRQ of `rx`.
    pub rx_virq: u32,
}

/// A vCPU of a launched VM given to its proxy scheduler (`scheduled-by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyGrant {
    /// The scheduler: index in the manifest's started VMs ([`Launcher::started`] order).
    pub owner: usize,
    /// The vCPU's index in its VM.
    pub index: u32,
    /// The cap in the owner's cspace.
    pub cap: CapId,
    /// Its VCPU_RUN_WAKEUP vIRQ in the owner's VIC.
    pub virq: u32,
}

/// A VM built from the manifest, for the RM's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The manifest's name.
    pub name: String,
    /// Its address space's VMID.
    pub vmid: u16,
    /// Its link to the RM, if it could be made.
    pub rm_link: Option<RmLink>,
    /// The RM's watch of it: vCPU 0 and the RM's vIRQ its HALT source is bound to (not for a
    /// proxy-scheduled VM).
    pub watch: Option<(CapId, u32)>,
    /// Its caps in the RM's cspace and its RAM, for lending.
    pub known: KnownVm,
    /// Hardware IRQs bound in its VIC: (vIRQ = INTID, hwirq cap).
    pub hwirqs: Vec<(u32, CapId)>,
    /// Its vCPUs given to its proxy scheduler.
    pub proxy: Vec<ProxyGrant>,
}

/// What [`Launcher::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// There is more to do.
    More,
    /// Every VM that could be built is; register them and call [`Launcher::power_on`].
    Ready,
    /// Nothing left to do.
    Done,
}

/// Where the launch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Objects,
    Wire,
    Zero {
        vm: usize,
        offset: u64,
    },
    Write {
        vm: usize,
        piece: usize,
        offset: u64,
    },
    Ready,
    Done,
}

/// One piece of a VM's initial RAM contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Kernel,
    Initrd,
    Dtb,
}

/// A manifest VM being built.
#[derive(Debug)]
struct Vm {
    /// Why it is not started (printed once); `None` while it is fine.
    error: Option<String>,
    /// Master caps made for it, in creation order.
    caps: Vec<CapId>,
    /// Its partition (a child of the RM's with quota `object-memory`), which its own objects
    /// are created from.
    partition: CapId,
    /// Its `object-memory`.
    quota: u32,
    cspace: CapId,
    addrspace: CapId,
    vic: CapId,
    vcpus: Vec<CapId>,
    /// RAM: PA and the extent.
    ram: Option<(u64, CapId)>,
    /// Where its RAM is in its address space: `memory-base`, or its PA when it is identity
    /// mapped ([`Placement::Identity`]).
    ipa: u64,
    /// Its `/hypervisor` children.
    nodes: Vec<HypNode>,
    next_virq: u32,
    /// INTIDs of its devices (never handed out for links).
    reserved: Vec<u32>,
    hwirqs: Vec<(u32, CapId)>,
    /// Hardware IRQs whose binding waits for the VM to exist (its first power-on).
    deferred_hwirqs: Vec<(u32, CapId)>,
    proxy: Vec<ProxyGrant>,
    rm_link: Option<RmLink>,
    watch: Option<(CapId, u32)>,
    /// Physical CPUs of its vCPUs.
    cpus: Vec<u32>,
    /// Kernel entry, DTB IPA, initrd `[start, end)`.
    entry: u64,
    dtb_ipa: u64,
    initrd: Option<(u64, u64)>,
    dtb: Vec<u8>,
}

impl Default for Vm {
    fn default() -> Self {
        Vm {
            error: None,
            caps: Vec::new(),
            partition: CapId::INVALID,
            quota: 0,
            cspace: CapId::INVALID,
            addrspace: CapId::INVALID,
            vic: CapId::INVALID,
            vcpus: Vec::new(),
            ram: None,
            ipa: 0,
            nodes: Vec::new(),
            next_virq: LINK_VIRQ_BASE,
            reserved: Vec::new(),
            hwirqs: Vec::new(),
            deferred_hwirqs: Vec::new(),
            proxy: Vec::new(),
            rm_link: None,
            watch: None,
            cpus: Vec::new(),
            entry: 0,
            dtb_ipa: 0,
            initrd: None,
            dtb: Vec::new(),
        }
    }
}

impl Vm {
    fn alive(&self) -> bool {
        self.error.is_none()
    }

    /// The next free link vIRQ of its VIC.
    fn virq(&mut self) -> Result<u32, Error> {
        if self.next_virq < LINK_VIRQ_BASE {
            self.next_virq = LINK_VIRQ_BASE;
        }
        while self.reserved.contains(&self.next_virq) {
            self.next_virq += 1;
        }
        let v = self.next_virq;
        if v >= 32 + layout::SPIS {
            return Err(Error::Noresources);
        }
        self.next_virq += 1;
        Ok(v)
    }
}

/// Launches the VMs of one manifest.
pub struct Launcher<'a> {
    bundle: Bundle<'a>,
    vms: Vec<Vm>,
    free: FreeRam,
    /// Hardware IRQs the RM may bind: (INTID, cap).
    hwirqs: Vec<(u32, CapId)>,
    claimed_windows: Vec<(u64, u64)>,
    claimed_intids: Vec<u32>,
    cpus: u32,
    next_pcpu: u32,
    phase: Phase,
    lines: Vec<String>,
}

fn hv(what: &str) -> impl Fn(Error) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

/// As [`hv`], for a call that charges a VM's partition of `quota` bytes: `NOMEM` is its
/// `object-memory` running out.
fn charged(what: &str, quota: u32) -> impl Fn(Error) -> String + '_ {
    move |e| match e {
        Error::Nomem => format!("{what}: Nomem: needs more than its object-memory ({quota} bytes)"),
        e => format!("{what}: {e:?}"),
    }
}

impl<'a> Launcher<'a> {
    /// Parse the manifest in `bundle_bytes`. `free` is the free RAM, `hwirqs` the hardware
    /// IRQs the RM may bind (INTID, cap), `cpus` the physical CPUs. `Err` (the line to print)
    /// when the file is unusable as a whole; the problems of single VMs and links are
    /// [`Launcher::take_lines`].
    pub fn new(
        bundle_bytes: &'a [u8],
        free: FreeRam,
        hwirqs: Vec<(u32, CapId)>,
        cpus: u32,
    ) -> Result<Self, String> {
        // vCPUs share physical CPUs (the scheduler round-robins them), so any number fits.
        let limits = Limits {
            max_vcpus_total: u32::MAX,
            max_vcpus_per_vm: bundle::MAX_VCPUS_PER_VM,
        };
        let bundle = bundle::parse(bundle_bytes, &limits).map_err(|e| format!("{e}"))?;
        let lines = bundle.errors.iter().map(|e| format!("{e}")).collect();
        let vms = bundle
            .vms
            .iter()
            .map(|spec| Vm {
                reserved: spec.devices.iter().flat_map(|d| d.intids()).collect(),
                next_virq: LINK_VIRQ_BASE,
                ..Vm::default()
            })
            .collect();
        Ok(Launcher {
            bundle,
            vms,
            free,
            hwirqs,
            claimed_windows: Vec::new(),
            claimed_intids: Vec::new(),
            cpus: cpus.max(1),
            next_pcpu: 0,
            phase: Phase::Objects,
            lines,
        })
    }

    /// The manifest's VMs that passed its checks.
    pub fn specs(&self) -> &[VmSpec<'a>] {
        &self.bundle.vms
    }

    /// The VMs of the manifest proxy-scheduled by VM `owner` that were built: their names
    /// and vCPU caps (in the RM's cspace).
    pub fn proxied_by(&self, owner: &str) -> Vec<(String, Vec<CapId>)> {
        self.bundle
            .vms
            .iter()
            .zip(&self.vms)
            .filter(|(spec, vm)| spec.scheduled_by.as_deref() == Some(owner) && vm.alive())
            .map(|(spec, vm)| (spec.name.clone(), vm.vcpus.clone()))
            .collect()
    }

    /// Lines to print (errors, what was placed where), oldest first.
    pub fn take_lines(&mut self) -> Vec<String> {
        core::mem::take(&mut self.lines)
    }

    /// The free RAM left.
    pub fn free_ram(&self) -> &FreeRam {
        &self.free
    }

    /// Whether there is nothing left to do.
    pub fn done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Do the next bounded piece of work.
    pub fn step<C: Hypercalls>(&mut self, g: &mut Gunyah<C>) -> Step {
        match self.phase {
            Phase::Objects => {
                for i in 0..self.vms.len() {
                    if let Err(e) = self.objects(g, i) {
                        self.fail(g, i, e);
                    }
                }
                self.phase = Phase::Wire;
                Step::More
            }
            Phase::Wire => {
                self.wire(g);
                self.phase = self.next_vm(g, 0);
                Step::More
            }
            Phase::Zero { vm, offset } => {
                self.phase = match self.zero(g, vm, offset) {
                    Ok(Some(next)) => Phase::Zero { vm, offset: next },
                    Ok(None) => Phase::Write {
                        vm,
                        piece: 0,
                        offset: 0,
                    },
                    Err(e) => {
                        self.fail(g, vm, e);
                        self.next_vm(g, vm + 1)
                    }
                };
                Step::More
            }
            Phase::Write { vm, piece, offset } => {
                self.phase = match self.write(g, vm, piece, offset) {
                    Ok(Some((piece, offset))) => Phase::Write { vm, piece, offset },
                    Ok(None) => {
                        self.placed(vm);
                        self.next_vm(g, vm + 1)
                    }
                    Err(e) => {
                        self.fail(g, vm, e);
                        self.next_vm(g, vm + 1)
                    }
                };
                if self.phase == Phase::Ready {
                    Step::Ready
                } else {
                    Step::More
                }
            }
            Phase::Ready => Step::Ready,
            Phase::Done => Step::Done,
        }
    }

    /// The phase that loads VM `from` or the next one alive; [`Phase::Ready`] after the last.
    fn next_vm<C: Hypercalls>(&mut self, g: &mut Gunyah<C>, from: usize) -> Phase {
        for i in from..self.vms.len() {
            if !self.vms[i].alive() {
                continue;
            }
            match self.device_tree(i) {
                Ok(()) => return Phase::Zero { vm: i, offset: 0 },
                Err(e) => self.fail(g, i, e),
            }
        }
        Phase::Ready
    }

    /// VM `i` is not started: say why, delete what was made for it, give its RAM back.
    fn fail<C: Hypercalls>(&mut self, g: &mut Gunyah<C>, i: usize, why: String) {
        let name = self.bundle.vms[i].name.clone();
        let size = self.bundle.vms[i].memory_size;
        let vm = &mut self.vms[i];
        if vm.error.is_some() {
            return;
        }
        self.lines.push(format!("VM {name}: not started: {why}"));
        vm.error = Some(why);
        let cs = g.rm_caps().cspace;
        for &cap in vm.caps.iter().rev() {
            let _ = g.calls_mut().cspace_delete(cs, cap);
        }
        vm.caps.clear();
        vm.nodes.clear();
        if let Some((pa, _)) = vm.ram.take() {
            self.free.give(pa, size);
        }
    }

    /// An object for `vm` from the RM's partition (its own partition, memory extents: a child
    /// partition owns no memory), its master cap in the RM's cspace.
    fn create<C: Hypercalls>(g: &mut Gunyah<C>, vm: &mut Vm, kind: Kind) -> Result<CapId, String> {
        let rm = g.rm_caps();
        let cap = g
            .calls_mut()
            .create(kind, rm.partition, rm.cspace)
            .map_err(|e| format!("creating a {kind:?}: {e:?}"))?;
        vm.caps.push(cap);
        Ok(cap)
    }

    /// An object of `vm`'s own, charged to its partition (its `object-memory`), its master cap
    /// in the RM's cspace.
    fn own<C: Hypercalls>(g: &mut Gunyah<C>, vm: &mut Vm, kind: Kind) -> Result<CapId, String> {
        let rm = g.rm_caps();
        let cap = g
            .calls_mut()
            .create(kind, vm.partition, rm.cspace)
            .map_err(charged(&format!("creating a {kind:?}"), vm.quota))?;
        vm.caps.push(cap);
        Ok(cap)
    }

    /// Check VM `i`'s devices against its RAM and emulated devices, and against what earlier
    /// VMs were given; claim them.
    fn claim(&mut self, i: usize) -> Result<(), String> {
        let spec = &self.bundle.vms[i];
        let overlaps = |a: (u64, u64), b: (u64, u64)| a.0 < b.0 + b.1 && b.0 < a.0 + a.1;
        let emulated = [
            (layout::GICD_BASE, layout::GICD_SIZE),
            (layout::GICR_BASE, layout::gicr_size(spec.vcpus as usize)),
            (layout::UART_BASE, layout::UART_SIZE),
            (spec.memory_base, spec.memory_size),
        ];
        let mut windows = Vec::new();
        let mut intids = Vec::new();
        for d in &spec.devices {
            for &(base, size) in &d.regs {
                let start = base & !(PAGE - 1);
                let w = base
                    .checked_add(size)
                    .and_then(|e| e.checked_add(PAGE - 1))
                    .map(|e| (start, (e & !(PAGE - 1)) - start))
                    .ok_or_else(|| {
                        format!("device {}: window {base:#x}+{size:#x} wraps", d.name)
                    })?;
                let show = format!("[{:#x}..{:#x})", w.0, w.0 + w.1);
                if emulated.iter().any(|&e| overlaps(e, w)) || w.0 + w.1 > bundle::IPA_LIMIT {
                    return Err(format!(
                        "device {}: window {show} collides with the VM's RAM or emulated devices",
                        d.name
                    ));
                }
                if self
                    .claimed_windows
                    .iter()
                    .chain(windows.iter())
                    .any(|&c| overlaps(c, w))
                {
                    return Err(format!(
                        "device {}: window {show} is already given to a VM",
                        d.name
                    ));
                }
                windows.push(w);
            }
            for intid in d.intids() {
                let spi = intid - 32;
                if intid >= 32 + layout::SPIS {
                    return Err(format!(
                        "device {}: SPI {spi} is above the virtual GIC's {} SPIs",
                        d.name,
                        layout::SPIS
                    ));
                }
                if self.claimed_intids.contains(&intid) || intids.contains(&intid) {
                    return Err(format!(
                        "device {}: SPI {spi} is already given to a VM",
                        d.name
                    ));
                }
                if !self.hwirqs.iter().any(|h| h.0 == intid) {
                    return Err(format!(
                        "device {}: SPI {spi} is not one the hypervisor lets VMs have",
                        d.name
                    ));
                }
                intids.push(intid);
            }
        }
        self.claimed_windows.extend(windows);
        self.claimed_intids.extend(intids);
        Ok(())
    }

    /// VM `i`'s objects: partition, cspace, address space, RAM, VIC, VPM group, devices, vCPUs,
    /// the caps it asked for.
    fn objects<C: Hypercalls>(&mut self, g: &mut Gunyah<C>, i: usize) -> Result<(), String> {
        self.claim(i)?;
        let spec = &self.bundle.vms[i];
        let primary = self.vms[..i].iter().all(|v| !v.alive());
        let how = placement(spec, primary);
        let at_base = how == Placement::AtBase;
        let pa = self
            .free
            .take(spec.memory_size, at_base.then_some(spec.memory_base))
            .map_err(|e| {
                let at = if at_base {
                    format!(
                        " at {:#x} (identity mapped for its devices)",
                        spec.memory_base
                    )
                } else {
                    String::new()
                };
                format!("{} MiB of RAM{at}: {e}", spec.memory_size >> 20)
            })?;
        let ipa = match how {
            Placement::Identity if !identity_fits(pa, spec.memory_size) => {
                self.free.give(pa, spec.memory_size);
                return Err(format!(
                    "{} MiB of RAM at PA {pa:#x}: cannot be identity mapped (above the guest \
                     IPA limit or over the emulated devices)",
                    spec.memory_size >> 20
                ));
            }
            Placement::Identity => {
                self.lines.push(format!(
                    "VM {}: primary VM, identity mapped at PA {pa:#x}",
                    spec.name
                ));
                pa
            }
            Placement::AtBase | Placement::Anywhere => spec.memory_base,
        };
        let vm = &mut self.vms[i];
        vm.ipa = ipa;
        let spec = &self.bundle.vms[i];
        let rm = g.rm_caps();

        // Its partition: a child of the RM's, with its object-memory as quota; its objects but
        // the memory extents come from it.
        vm.quota = spec.object_memory;
        vm.partition = Self::create(g, vm, Kind::Partition)?;
        let c = g.calls_mut();
        c.partition_configure(vm.partition, u64::from(spec.object_memory))
            .map_err(hv("partition"))?;
        c.activate(vm.partition).map_err(hv("partition"))?;
        vm.cspace = Self::own(g, vm, Kind::Cspace)?;
        let c = g.calls_mut();
        c.cspace_configure(vm.cspace, VM_CSPACE_CAPS)
            .map_err(charged("cspace", vm.quota))?;
        c.activate(vm.cspace).map_err(hv("cspace"))?;
        vm.addrspace = Self::own(g, vm, Kind::Addrspace)?;
        let c = g.calls_mut();
        c.addrspace_configure(vm.addrspace, manifest_vmid(i))
            .map_err(hv("address space"))?;
        c.activate(vm.addrspace).map_err(hv("address space"))?;

        // RAM: an extent over the block, mapped at its IPA.
        let ram = Self::create(g, vm, Kind::Memextent)?;
        vm.ram = Some((pa, ram));
        let what = format!("{} MiB of RAM at PA {pa:#x}", spec.memory_size >> 20);
        let c = g.calls_mut();
        c.memextent_configure(ram, pa, spec.memory_size, RAM_EXTENT_ATTRS)
            .map_err(hv(&what))?;
        c.activate(ram).map_err(hv(&what))?;
        c.addrspace_map(vm.addrspace, ram, ipa, RAM_MAP_ATTRS, spec.memory_size)
            .map_err(hv(&what))?;

        vm.vic = Self::own(g, vm, Kind::Vic)?;
        let c = g.calls_mut();
        c.vic_configure(vm.vic, spec.vcpus, layout::SPIS)
            .map_err(hv("VIC"))?;
        c.activate(vm.vic).map_err(hv("VIC"))?;
        let vpm = Self::own(g, vm, Kind::VpmGroup)?;
        g.calls_mut().activate(vpm).map_err(hv("VPM group"))?;

        // Devices: their windows at their own addresses, device memory.
        for d in &spec.devices {
            for &(base, size) in &d.regs {
                let start = base & !(PAGE - 1);
                let len = ((base + size + PAGE - 1) & !(PAGE - 1)) - start;
                let e = Self::create(g, vm, Kind::Memextent)?;
                let what = format!("device {}: window {start:#x}+{len:#x}", d.name);
                let c = g.calls_mut();
                c.memextent_configure(e, start, len, DEVICE_EXTENT_ATTRS)
                    .map_err(hv(&what))?;
                c.activate(e).map_err(hv(&what))?;
                c.addrspace_map(vm.addrspace, e, start, DEVICE_MAP_ATTRS, len)
                    .map_err(hv(&what))?;
            }
        }

        // vCPUs, on physical CPUs in turn; proxy-scheduled ones take none.
        let mut options = 0;
        if spec.critical {
            options |= VCPU_OPTION_CRITICAL;
        }
        if spec.scheduled_by.is_some() {
            options |= VCPU_OPTION_RUN_SCHEDULED;
        }
        let timeslice_ns = u64::from(spec.timeslice_us) * 1000;
        for index in 0..spec.vcpus {
            let t = Self::own(g, vm, Kind::Thread)?;
            let cpu = (self.next_pcpu + index) % self.cpus;
            let what = format!("vCPU {index}");
            let c = g.calls_mut();
            c.vcpu_configure(t, options).map_err(hv(&what))?;
            c.vcpu_set_affinity(t, u64::from(cpu)).map_err(hv(&what))?;
            c.vcpu_set_priority(t, u64::from(spec.priority))
                .map_err(hv(&what))?;
            c.vcpu_set_timeslice(t, timeslice_ns).map_err(hv(&what))?;
            c.cspace_attach_thread(vm.cspace, t).map_err(hv(&what))?;
            c.addrspace_attach_thread(vm.addrspace, t)
                .map_err(hv(&what))?;
            c.vic_attach_vcpu(vm.vic, t, index).map_err(hv(&what))?;
            c.vpm_group_attach(vpm, t, index).map_err(hv(&what))?;
            c.activate(t).map_err(hv(&what))?;
            vm.vcpus.push(t);
            vm.cpus.push(cpu);
        }

        // Hardware IRQs at their own INTIDs (after the vCPUs: the VM's interrupts go to its
        // vCPU 0). A VM that does not exist yet (it is built at its first power-on) may refuse
        // them: then they are bound once it runs.
        for d in &spec.devices {
            for intid in d.intids() {
                let Some(&(_, cap)) = self.hwirqs.iter().find(|h| h.0 == intid) else {
                    continue;
                };
                match g.calls_mut().hwirq_bind(cap, vm.vic, intid) {
                    Ok(()) => vm.hwirqs.push((intid, cap)),
                    Err(Error::ObjectState) => vm.deferred_hwirqs.push((intid, cap)),
                    Err(e) => {
                        return Err(format!("device {}: SPI {}: {e:?}", d.name, intid - 32));
                    }
                }
            }
        }

        // `capabilities`: copies of its own caps in its cspace.
        let caps = spec.capabilities;
        if caps.partition || caps.cspace || caps.vic || caps.vcpus {
            let mut copy = |cap: CapId, rights: u32| {
                g.calls_mut()
                    .cspace_copy(rm.cspace, cap, vm.cspace, rights)
                    .map(|c| c.raw())
                    .map_err(hv("capabilities"))
            };
            let partition = caps
                .partition
                .then(|| copy(vm.partition, PartitionRights::OBJECT_CREATE.bits()))
                .transpose()?;
            let cspace = caps
                .cspace
                .then(|| copy(vm.cspace, CspaceRights::ALL.bits()))
                .transpose()?;
            let vic = caps
                .vic
                .then(|| copy(vm.vic, VicRights::BIND_SOURCE.bits()))
                .transpose()?;
            let mut vcpus = Vec::new();
            if caps.vcpus {
                for &t in &vm.vcpus {
                    vcpus.push(copy(t, OWN_VCPU_RIGHTS.bits())?);
                }
            }
            vm.nodes.push(HypNode::Capabilities {
                partition,
                cspace,
                vic,
                vcpus,
            });
        }
        if spec.scheduled_by.is_none() {
            self.next_pcpu = (self.next_pcpu + spec.vcpus) % self.cpus;
        }
        Ok(())
    }

    /// The links of the manifest, the proxy schedulers' caps, each VM's RM link and the RM's
    /// watch of it, in the order the hypervisor makes them (so the vIRQs are the same).
    fn wire<C: Hypercalls>(&mut self, g: &mut Gunyah<C>) {
        let links = core::mem::take(&mut self.bundle.links);
        for link in &links {
            let r = match link.kind {
                LinkKind::MsgQueuePair {
                    vms: [a, b],
                    depth,
                    message_size,
                } => self.msgqueue_pair(g, &link.name, a, b, depth, message_size),
                LinkKind::Doorbell { sender, receiver } => {
                    self.doorbell(g, &link.name, sender, receiver)
                }
            };
            match r {
                Ok(()) => self.lines.push(format!("link {}: ready", link.name)),
                Err(e) => self
                    .lines
                    .push(format!("link {}: not made: {e}", link.name)),
            }
        }
        self.bundle.links = links;

        for i in 0..self.vms.len() {
            let Some(owner) = self.bundle.vms[i].scheduled_by.clone() else {
                continue;
            };
            let name = self.bundle.vms[i].name.clone();
            let o = self.bundle.vms.iter().position(|s| s.name == owner);
            let r = match o {
                Some(o) if self.vms[o].alive() && self.vms[i].alive() => self.give(g, i, o),
                _ => Err(format!("its scheduler VM {owner} did not start")),
            };
            if let Err(e) = r {
                self.fail(g, i, format!("not given to VM {owner}: {e}"));
                continue;
            }
            self.lines
                .push(format!("VM {name}: proxy-scheduled by VM {owner}"));
        }

        for i in 0..self.vms.len() {
            if !self.vms[i].alive() {
                continue;
            }
            if let Err(e) = self.rm_link(g, i) {
                let name = &self.bundle.vms[i].name;
                self.lines
                    .push(format!("VM {name}: no link to the resource manager: {e}"));
            }
        }
        for i in 0..self.vms.len() {
            if !self.vms[i].alive() || self.bundle.vms[i].scheduled_by.is_some() {
                continue;
            }
            let Some(&v0) = self.vms[i].vcpus.first() else {
                continue;
            };
            let rm = g.rm_caps();
            let r = g
                .take_rm_virq()
                .map_err(|e| format!("{e:?}"))
                .and_then(|virq| {
                    g.calls_mut()
                        .vcpu_bind_virq(v0, rm.vic, virq, VCPU_VIRQ_HALT)
                        .map(|()| virq)
                        .map_err(|e| format!("{e:?}"))
                });
            match r {
                Ok(virq) => self.vms[i].watch = Some((v0, virq)),
                Err(e) => {
                    let name = &self.bundle.vms[i].name;
                    self.lines.push(format!(
                        "VM {name}: the resource manager cannot watch it: {e}"
                    ));
                }
            }
        }
    }

    /// Two queues of `depth` messages of `size` bytes between `a` and `b` (`b` may be `None`:
    /// the RM); the `a` end and the `b` end: (tx cap, rx cap, tx vIRQ, rx vIRQ), caps in each
    /// VM's cspace (the RM keeps the master caps).
    #[allow(clippy::type_complexity)]
    fn queue_pair<C: Hypercalls>(
        &mut self,
        g: &mut Gunyah<C>,
        a: usize,
        b: Option<usize>,
        depth: u32,
        size: u32,
    ) -> Result<((CapId, CapId, u32, u32), (CapId, CapId, u32, u32)), String> {
        if b == Some(a) || !self.vms[a].alive() || b.is_some_and(|b| !self.vms[b].alive()) {
            return Err(String::from("a VM is not started"));
        }
        let rm = g.rm_caps();
        let mut queue = |this: &mut Self| -> Result<CapId, String> {
            let vm = &mut this.vms[a];
            let q = Self::own(g, vm, Kind::Msgqueue)?;
            g.calls_mut()
                .msgqueue_configure(q, depth, size)
                .map_err(hv("message queue"))?;
            g.calls_mut()
                .activate(q)
                .map_err(charged("message queue", vm.quota))?;
            Ok(q)
        };
        let ab = queue(self)?;
        let ba = queue(self)?;
        let e = |e: Error| format!("{e:?}");
        let (a_tx, a_rx) = (
            self.vms[a].virq().map_err(e)?,
            self.vms[a].virq().map_err(e)?,
        );
        let (b_tx, b_rx, b_vic) = match b {
            Some(b) => (
                self.vms[b].virq().map_err(e)?,
                self.vms[b].virq().map_err(e)?,
                self.vms[b].vic,
            ),
            None => {
                let e = |e| format!("the RM's vIRQs: {e:?}");
                (
                    g.take_rm_virq().map_err(e)?,
                    g.take_rm_virq().map_err(e)?,
                    rm.vic,
                )
            }
        };
        let a_vic = self.vms[a].vic;
        let c = g.calls_mut();
        let bind = hv("binding vIRQs");
        c.msgqueue_bind_send(ab, a_vic, a_tx).map_err(&bind)?;
        c.msgqueue_bind_receive(ab, b_vic, b_rx).map_err(&bind)?;
        c.msgqueue_bind_send(ba, b_vic, b_tx).map_err(&bind)?;
        c.msgqueue_bind_receive(ba, a_vic, a_rx).map_err(&bind)?;
        let send = MsgqueueRights::SEND.bits();
        let recv = MsgqueueRights::RECEIVE.bits();
        let copy = hv("caps");
        let a_cs = self.vms[a].cspace;
        let a_end = (
            c.cspace_copy(rm.cspace, ab, a_cs, send).map_err(&copy)?,
            c.cspace_copy(rm.cspace, ba, a_cs, recv).map_err(&copy)?,
            a_tx,
            a_rx,
        );
        let b_end = match b {
            Some(b) => {
                let b_cs = self.vms[b].cspace;
                (
                    c.cspace_copy(rm.cspace, ba, b_cs, send).map_err(&copy)?,
                    c.cspace_copy(rm.cspace, ab, b_cs, recv).map_err(&copy)?,
                    b_tx,
                    b_rx,
                )
            }
            None => (ba, ab, b_tx, b_rx),
        };
        Ok((a_end, b_end))
    }

    fn msgqueue_pair<C: Hypercalls>(
        &mut self,
        g: &mut Gunyah<C>,
        name: &str,
        a: usize,
        b: usize,
        depth: u32,
        message_size: u32,
    ) -> Result<(), String> {
        if a >= self.vms.len() || b >= self.vms.len() {
            return Err(String::from("no such VM"));
        }
        let (a_end, b_end) = self.queue_pair(g, a, Some(b), depth, message_size)?;
        let names = [
            self.bundle.vms[a].name.clone(),
            self.bundle.vms[b].name.clone(),
        ];
        for (vm, end, peer) in [(a, a_end, &names[1]), (b, b_end, &names[0])] {
            self.vms[vm].nodes.push(HypNode::MsgQueuePair {
                label: String::from(name),
                tx_cap: end.0.raw(),
                rx_cap: end.1.raw(),
                tx_virq: end.2,
                rx_virq: end.3,
                depth,
                message_size,
                peer: peer.clone(),
            });
        }
        Ok(())
    }

    fn doorbell<C: Hypercalls>(
        &mut self,
        g: &mut Gunyah<C>,
        name: &str,
        sender: usize,
        receiver: usize,
    ) -> Result<(), String> {
        if sender == receiver || sender >= self.vms.len() || receiver >= self.vms.len() {
            return Err(String::from("no such VM"));
        }
        if !self.vms[sender].alive() || !self.vms[receiver].alive() {
            return Err(String::from("a VM is not started"));
        }
        let rm = g.rm_caps();
        let db = Self::own(g, &mut self.vms[receiver], Kind::Doorbell)?;
        g.calls_mut().activate(db).map_err(hv("doorbell"))?;
        let virq = self.vms[receiver].virq().map_err(|e| format!("{e:?}"))?;
        let (r_vic, r_cs, s_cs) = (
            self.vms[receiver].vic,
            self.vms[receiver].cspace,
            self.vms[sender].cspace,
        );
        let c = g.calls_mut();
        c.doorbell_bind(db, r_vic, virq).map_err(hv("doorbell"))?;
        let rx = (DoorbellRights::RECEIVE | DoorbellRights::BIND).bits();
        let rx_cap = c.cspace_copy(rm.cspace, db, r_cs, rx).map_err(hv("caps"))?;
        let tx_cap = c
            .cspace_copy(rm.cspace, db, s_cs, DoorbellRights::SEND.bits())
            .map_err(hv("caps"))?;
        let s_name = self.bundle.vms[sender].name.clone();
        let r_name = self.bundle.vms[receiver].name.clone();
        self.vms[receiver].nodes.push(HypNode::Doorbell {
            label: String::from(name),
            cap: rx_cap.raw(),
            virq,
            peer: s_name,
        });
        self.vms[sender].nodes.push(HypNode::DoorbellSource {
            label: String::from(name),
            cap: tx_cap.raw(),
            peer: r_name,
        });
        Ok(())
    }

    /// Give VM `vm`'s vCPUs and address space to its proxy scheduler `owner`.
    fn give<C: Hypercalls>(
        &mut self,
        g: &mut Gunyah<C>,
        vm: usize,
        owner: usize,
    ) -> Result<(), String> {
        if vm == owner {
            return Err(String::from("names the VM itself"));
        }
        let rm = g.rm_caps();
        let peer = self.bundle.vms[vm].name.clone();
        let (o_vic, o_cs) = (self.vms[owner].vic, self.vms[owner].cspace);
        let vcpus = self.vms[vm].vcpus.clone();
        let mut nodes = Vec::new();
        let mut grants = Vec::new();
        for (index, &t) in vcpus.iter().enumerate() {
            let virq = self.vms[owner].virq().map_err(|e| format!("{e:?}"))?;
            let c = g.calls_mut();
            c.vcpu_bind_virq(t, o_vic, virq, VCPU_VIRQ_RUN_WAKEUP)
                .map_err(hv("wakeup vIRQ"))?;
            let cap = c
                .cspace_copy(rm.cspace, t, o_cs, PROXY_VCPU_RIGHTS.bits())
                .map_err(hv("vCPU cap"))?;
            nodes.push(HypNode::ProxyVcpu {
                cap: cap.raw(),
                virq,
                index: index as u32,
                peer: peer.clone(),
            });
            grants.push(ProxyGrant {
                owner,
                index: index as u32,
                cap,
                virq,
            });
        }
        let cap = g
            .calls_mut()
            .cspace_copy(
                rm.cspace,
                self.vms[vm].addrspace,
                o_cs,
                AddrspaceRights::ADD_VMMIO_RANGE.bits(),
            )
            .map_err(hv("address-space cap"))?;
        nodes.push(HypNode::AddrSpace {
            cap: cap.raw(),
            peer,
        });
        self.vms[owner].nodes.extend(nodes);
        self.vms[vm].proxy = grants;
        Ok(())
    }

    /// VM `i`'s link to the RM (its `gunyah-resource-mgr` node).
    fn rm_link<C: Hypercalls>(&mut self, g: &mut Gunyah<C>, i: usize) -> Result<(), String> {
        let (vm_end, rm_end) = self.queue_pair(g, i, None, RM_QUEUE_DEPTH, RM_MESSAGE_SIZE)?;
        self.vms[i].nodes.push(HypNode::ResourceManager {
            tx_cap: vm_end.0.raw(),
            rx_cap: vm_end.1.raw(),
            tx_virq: vm_end.2,
            rx_virq: vm_end.3,
        });
        self.vms[i].rm_link = Some(RmLink {
            tx: rm_end.0,
            rx: rm_end.1,
            tx_virq: rm_end.2,
            rx_virq: rm_end.3,
        });
        Ok(())
    }

    /// VM `i`'s layout (arm64 boot protocol, as the hypervisor places it) and device tree.
    fn device_tree(&mut self, i: usize) -> Result<(), String> {
        let spec = &self.bundle.vms[i];
        let vm = &mut self.vms[i];
        let base = vm.ipa;
        let kernel_ipa = base + spec.kernel.text_offset;
        let kernel_end = kernel_ipa + spec.kernel.image_size;
        let dtb_ipa = base + spec.memory_size - MIB2;
        let initrd = match spec.initrd {
            Some(bytes) => {
                let start = (dtb_ipa - bytes.len() as u64) & !(PAGE - 1);
                if start < kernel_end {
                    return Err(String::from(
                        "kernel, initrd and device tree do not fit in memory-size",
                    ));
                }
                Some((start, start + bytes.len() as u64))
            }
            None => None,
        };
        if dtb_ipa < kernel_end {
            return Err(String::from(
                "kernel and device tree do not fit in memory-size",
            ));
        }
        let vcpus = spec.vcpus as usize;
        let mpidrs: Vec<u64> = (0..vcpus).map(layout::vcpu_mpidr).collect();
        let nodes = &vm.nodes;
        let devices = &spec.devices;
        let dt = guestdt::write(&GuestDt {
            model: "wurley,virt",
            memory: (base, spec.memory_size),
            vcpu_mpidrs: &mpidrs,
            gic_dist: (layout::GICD_BASE, layout::GICD_SIZE),
            gic_redist: (layout::GICR_BASE, layout::gicr_size(vcpus)),
            gic_maintenance_ppi: Some(layout::MAINTENANCE_PPI),
            timer_ppis: layout::TIMER_PPIS,
            uart: (layout::UART_BASE, layout::UART_SIZE, layout::UART_SPI),
            bootargs: &spec.bootargs,
            initrd,
            psci_method: "hvc",
            rng_seed: None,
            extra: Some(&|w| {
                bundle::write_device_nodes(w, devices)?;
                hypervisor::write(w, nodes)
            }),
        })
        .map_err(|e| format!("device tree: {e}"))?;
        if dt.len() as u64 > MIB2 {
            return Err(String::from("device tree larger than 2 MiB"));
        }
        vm.entry = kernel_ipa;
        vm.dtb_ipa = dtb_ipa;
        vm.initrd = initrd;
        vm.dtb = dt;
        Ok(())
    }

    /// Zero `[offset, offset + ZERO_STEP)` of VM `i`'s RAM; the next offset, `None` at the end.
    fn zero<C: Hypercalls>(
        &mut self,
        g: &mut Gunyah<C>,
        i: usize,
        offset: u64,
    ) -> Result<Option<u64>, String> {
        let size = self.bundle.vms[i].memory_size;
        let (_, ram) = self.vms[i].ram.ok_or("no RAM")?;
        let len = ZERO_STEP.min(size - offset);
        g.calls_mut()
            .memextent_modify_range(ram, Modify::Zero, offset, len)
            .map_err(hv("zeroing RAM"))?;
        Ok((offset + len < size).then_some(offset + len))
    }

    /// Copy one chunk of piece `piece` (kernel, initrd, device tree) of VM `i` from `offset`;
    /// where to go on, `None` when every piece is written.
    fn write<C: Hypercalls>(
        &mut self,
        g: &mut Gunyah<C>,
        i: usize,
        piece: usize,
        offset: u64,
    ) -> Result<Option<(usize, u64)>, String> {
        const PIECES: [Source; 3] = [Source::Kernel, Source::Initrd, Source::Dtb];
        let Some(&source) = PIECES.get(piece) else {
            return Ok(None);
        };
        let spec = &self.bundle.vms[i];
        let mut vm = core::mem::take(&mut self.vms[i]);
        let dtb = core::mem::take(&mut vm.dtb);
        let base = vm.ipa;
        let at = match source {
            Source::Kernel => Some((vm.entry - base, spec.kernel.bytes)),
            Source::Initrd => vm.initrd.zip(spec.initrd).map(|(r, b)| (r.0 - base, b)),
            Source::Dtb => Some((vm.dtb_ipa - base, dtb.as_slice())),
        };
        let r = match at {
            Some((at, bytes)) => Self::write_piece(g, &mut vm, at, bytes, offset, source),
            None => Ok(None),
        };
        vm.dtb = dtb;
        self.vms[i] = vm;
        Ok(Some(match r? {
            Some(next) => (piece, next),
            None => (piece + 1, 0),
        }))
    }

    /// Copy the chunk at `offset` of `bytes`, which go at byte `at` of `vm`'s RAM; the next
    /// offset, `None` at the end.
    fn write_piece<C: Hypercalls>(
        g: &mut Gunyah<C>,
        vm: &mut Vm,
        at: u64,
        bytes: &[u8],
        offset: u64,
        source: Source,
    ) -> Result<Option<u64>, String> {
        let (_, ram) = vm.ram.ok_or("no RAM")?;
        let room = CHUNK.min(g.rm_caps().window.1 & !(PAGE - 1));
        let dst = at + offset;
        let left = (bytes.len() as u64).saturating_sub(offset);
        if left == 0 {
            return Ok(None);
        }
        if room == 0 {
            return Err(String::from("the RM has no mapping window"));
        }
        let len = left.min(room - (dst & (PAGE - 1)));
        let data = bytes
            .get(offset as usize..(offset + len) as usize)
            .ok_or("piece outside its image")?;
        Self::write_chunk(g, vm, ram, dst, data, &format!("{source:?}"))?;
        let next = offset + len;
        Ok((next < bytes.len() as u64).then_some(next))
    }

    /// Write `data` at byte `dst` of RAM extent `ram` through the RM's window: a temporary
    /// extent derived over the pages, mapped in the window, written, cleaned to memory (the
    /// VM starts with its MMU off), unmapped and deleted.
    fn write_chunk<C: Hypercalls>(
        g: &mut Gunyah<C>,
        vm: &mut Vm,
        ram: CapId,
        dst: u64,
        data: &[u8],
        what: &str,
    ) -> Result<(), String> {
        let rm = g.rm_caps();
        let start = dst & !(PAGE - 1);
        let end = (dst + data.len() as u64 + PAGE - 1) & !(PAGE - 1);
        let len = end - start;
        let tmp = Self::create(g, vm, Kind::Memextent)?;
        let what = format!("loading the {what} at offset {dst:#x}");
        let c = g.calls_mut();
        let r = (|| {
            c.memextent_derive(tmp, ram, start, len, PIECE_EXTENT_ATTRS)
                .map_err(hv(&what))?;
            c.activate(tmp).map_err(hv(&what))?;
            c.addrspace_map(rm.addrspace, tmp, rm.window.0, WINDOW_MAP_ATTRS, len)
                .map_err(hv(&what))?;
            let written = c.window_write(dst - start, data);
            let cleaned = c.memextent_modify(tmp, Modify::Clean, len);
            let unmapped = c.addrspace_unmap(rm.addrspace, tmp, rm.window.0, len);
            if !written {
                return Err(format!("{what}: the window cannot be written"));
            }
            cleaned.map_err(hv(&what))?;
            unmapped.map_err(hv(&what))
        })();
        let deleted = c.cspace_delete(rm.cspace, tmp);
        vm.caps.retain(|&c| c != tmp);
        r?;
        deleted.map_err(hv(&what))
    }

    /// VM `i` is loaded: say where it is.
    fn placed(&mut self, i: usize) {
        let spec = &self.bundle.vms[i];
        let vm = &self.vms[i];
        let pa = vm.ram.map_or(0, |r| r.0);
        let cpus: Vec<String> = vm.cpus.iter().map(|c| format!("{c}")).collect();
        let initrd = vm
            .initrd
            .map(|(s, e)| format!(", initrd [{s:#x}..{e:#x})"))
            .unwrap_or_default();
        self.lines.push(format!(
            "VM {}: {} MiB at IPA {:#x} (PA {pa:#x}), {} vCPUs on CPUs {}, priority {}, kernel at {:#x}, DTB at {:#x}{initrd}",
            spec.name,
            spec.memory_size >> 20,
            vm.ipa,
            spec.vcpus,
            cpus.join(","),
            spec.priority,
            vm.entry,
            vm.dtb_ipa
        ));
    }

    /// The VMs that are built (after [`Step::Ready`]), in manifest order; a
    /// [`ProxyGrant::owner`] is an index into this list.
    pub fn started(&self) -> Vec<Started> {
        let alive: Vec<usize> = (0..self.vms.len())
            .filter(|&i| self.vms[i].alive())
            .collect();
        alive
            .iter()
            .map(|&i| {
                let spec = &self.bundle.vms[i];
                let vm = &self.vms[i];
                Started {
                    name: spec.name.clone(),
                    vmid: manifest_vmid(i),
                    rm_link: vm.rm_link,
                    watch: vm.watch,
                    known: KnownVm {
                        name: spec.name.clone(),
                        addrspace: vm.addrspace,
                        cspace: vm.cspace,
                        vic: vm.vic,
                        ram: vm.ram.map(|(_, extent)| Region {
                            ipa: vm.ipa,
                            size: spec.memory_size,
                            extent,
                        }),
                        virqs: (vm.next_virq, 32 + layout::SPIS),
                    },
                    hwirqs: vm.hwirqs.clone(),
                    proxy: vm
                        .proxy
                        .iter()
                        .filter_map(|p| {
                            Some(ProxyGrant {
                                owner: alive.iter().position(|&a| a == p.owner)?,
                                ..*p
                            })
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// Name every built VM (console input to the one with `console`, else the first) and power
    /// on its vCPU 0 at the kernel with the DTB in X0. Returns, per [`Launcher::started`]
    /// entry, whether it runs; failures are in [`Launcher::take_lines`].
    pub fn power_on<C: Hypercalls>(&mut self, g: &mut Gunyah<C>) -> Vec<bool> {
        let alive: Vec<usize> = (0..self.vms.len())
            .filter(|&i| self.vms[i].alive())
            .collect();
        let focus = alive
            .iter()
            .copied()
            .find(|&i| self.bundle.vms[i].console)
            .or(alive.first().copied());
        let mut out = Vec::new();
        // Several VMs: the console is shared from the start (whole lines, named).
        let shared = if alive.len() > 1 {
            wurley_abi::vendor::VM_NAME_CONSOLE_SHARED
        } else {
            0
        };
        for &i in &alive {
            let spec = &self.bundle.vms[i];
            let vm = &mut self.vms[i];
            let flags = u64::from(Some(i) == focus) | shared;
            let c = g.calls_mut();
            if let Err(e) = c.vm_set_name(vm.addrspace, &spec.name, flags) {
                self.lines
                    .push(format!("VM {}: naming it: {e:?}", spec.name));
            }
            let Some(&v0) = vm.vcpus.first() else {
                out.push(false);
                continue;
            };
            match c.vcpu_poweron(v0, vm.entry, vm.dtb_ipa, 0) {
                Ok(()) => out.push(true),
                Err(e) => {
                    self.lines
                        .push(format!("VM {}: not started: power-on: {e:?}", spec.name));
                    out.push(false);
                    continue;
                }
            }
            for (intid, cap) in core::mem::take(&mut vm.deferred_hwirqs) {
                match c.hwirq_bind(cap, vm.vic, intid) {
                    Ok(()) => vm.hwirqs.push((intid, cap)),
                    Err(e) => self.lines.push(format!(
                        "VM {}: SPI {}: not delivered: {e:?}",
                        spec.name,
                        intid - 32
                    )),
                }
            }
            self.lines.push(format!(
                "VM {}: starting vCPU 0 on CPU {}",
                spec.name,
                vm.cpus.first().copied().unwrap_or(0)
            ));
        }
        self.phase = Phase::Done;
        out
    }
}

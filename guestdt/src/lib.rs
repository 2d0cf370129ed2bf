//! guestdt: a guest's device tree, shared by the hypervisor (for the VMs it launches) and the
//! resource manager (for the VMs it creates). [`write`] turns a [`GuestDt`] into a flattened
//! device tree blob with the `vm-fdt` crate; [`hypervisor`] writes its `/hypervisor` node and
//! [`layout`] is the virtual platform every VM sees.
//!
//! The nodes mirror what QEMU's `virt` machine generates for the same devices (GICv3, generic
//! timer, PL011 with its APB clock, PSCI), which an unmodified arm64 Linux kernel is known to
//! accept. Interrupt numbers in [`GuestDt`] are PPI/SPI numbers as device-tree specifiers hold
//! them, not INTIDs (PPI 9 is INTID 25, SPI 1 is INTID 33).

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use vm_fdt::FdtWriter;

pub mod hypervisor;
pub mod layout;

/// Phandle of the GIC node (the root's `interrupt-parent`).
pub const GIC_PHANDLE: u32 = 1;
/// Phandle of the `apb-pclk` fixed clock.
pub const CLK_PHANDLE: u32 = 2;
/// The lowest phandle [`GuestDt::extra`] may use for nodes of its own; the writer rejects a
/// phandle given twice.
pub const FIRST_FREE_PHANDLE: u32 = 3;

/// The affinity fields a CPU node's `reg` may hold: Aff3 (bits 39:32) and Aff2..Aff0 (23:0).
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// GIC specifier type of a shared peripheral interrupt.
const SPI: u32 = 0;
/// GIC specifier type of a private peripheral interrupt.
const PPI: u32 = 1;
/// GIC specifier flags: level-sensitive, active high.
const LEVEL_HIGH: u32 = 4;
/// PPI numbers are 0..16 (INTIDs 16..32).
const PPI_COUNT: u32 = 16;
/// SPI numbers are 0..988 (INTIDs 32..1020).
const SPI_COUNT: u32 = 988;
/// The frequency QEMU gives the PL011's clocks; Linux's driver needs a clock to probe.
const APB_PCLK_HZ: u32 = 24_000_000;

/// A hook that adds nodes under the root before it is closed. It can only add child nodes:
/// the root's own properties are already written.
pub type ExtraNodes<'a> = &'a dyn Fn(&mut FdtWriter) -> Result<(), vm_fdt::Error>;

/// What a guest's device tree describes.
#[derive(Clone, Copy)]
pub struct GuestDt<'a> {
    /// The root's `model`, e.g. `"wurley,virt"`.
    pub model: &'a str,
    /// Guest RAM: IPA base and size (non-zero).
    pub memory: (u64, u64),
    /// One CPU node each, in this order; `reg` is the MPIDR's affinity fields
    /// ([`MPIDR_AFFINITY_MASK`]; other bits, such as the RES1 bit 31, are dropped). At least one,
    /// none repeated.
    pub vcpu_mpidrs: &'a [u64],
    /// GICv3 distributor: base and size.
    pub gic_dist: (u64, u64),
    /// GICv3 redistributors, one region for all vCPUs: base and size.
    pub gic_redist: (u64, u64),
    /// The GIC maintenance interrupt as a PPI number (not INTID), e.g. 9; `None` omits it.
    pub gic_maintenance_ppi: Option<u32>,
    /// Generic timer PPI numbers: secure physical, non-secure physical, virtual, hypervisor
    /// physical (QEMU: 13, 14, 11, 10).
    pub timer_ppis: [u32; 4],
    /// PL011 console: base, size and SPI number (not INTID).
    pub uart: (u64, u64, u32),
    /// The kernel command line (`/chosen` `bootargs`).
    pub bootargs: &'a str,
    /// The initrd: IPA start and end (exclusive).
    pub initrd: Option<(u64, u64)>,
    /// PSCI conduit, `"hvc"` or `"smc"`.
    pub psci_method: &'a str,
    /// `/chosen` `rng-seed`, if given.
    pub rng_seed: Option<[u8; 32]>,
    /// Adds further nodes under the root (after all others). Phandles it uses must be at least
    /// [`FIRST_FREE_PHANDLE`].
    pub extra: Option<ExtraNodes<'a>>,
}

impl fmt::Debug for GuestDt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuestDt")
            .field("model", &self.model)
            .field("memory", &self.memory)
            .field("vcpu_mpidrs", &self.vcpu_mpidrs)
            .field("gic_dist", &self.gic_dist)
            .field("gic_redist", &self.gic_redist)
            .field("gic_maintenance_ppi", &self.gic_maintenance_ppi)
            .field("timer_ppis", &self.timer_ppis)
            .field("uart", &self.uart)
            .field("bootargs", &self.bootargs)
            .field("initrd", &self.initrd)
            .field("psci_method", &self.psci_method)
            .field("rng_seed", &self.rng_seed.map(|_| ".."))
            .field("extra", &self.extra.map(|_| ".."))
            .finish()
    }
}

/// Why a guest device tree could not be written.
#[derive(Debug, PartialEq, Eq)]
pub enum DtWriteError {
    /// The FDT writer refused (a bad name or string, a repeated phandle, ...), including from
    /// [`GuestDt::extra`].
    Fdt(vm_fdt::Error),
    /// The [`GuestDt`] itself is unusable; the text says which field and why.
    Invalid(&'static str),
}

impl From<vm_fdt::Error> for DtWriteError {
    fn from(e: vm_fdt::Error) -> Self {
        Self::Fdt(e)
    }
}

impl fmt::Display for DtWriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fdt(e) => write!(f, "guest device tree: {e}"),
            Self::Invalid(why) => write!(f, "guest device tree: {why}"),
        }
    }
}

impl core::error::Error for DtWriteError {}

/// Writes the guest's device tree blob.
pub fn write(dt: &GuestDt<'_>) -> Result<Vec<u8>, DtWriteError> {
    let cpus = check(dt)?;
    let mut w = FdtWriter::new()?;
    if let Some(boot) = cpus.first().and_then(|&m| u32::try_from(m).ok()) {
        w.set_boot_cpuid_phys(boot);
    }
    let uart_path = format!("/pl011@{:x}", dt.uart.0);

    let root = w.begin_node("")?;
    w.property_u32("interrupt-parent", GIC_PHANDLE)?;
    w.property_string("model", dt.model)?;
    w.property_u32("#size-cells", 2)?;
    w.property_u32("#address-cells", 2)?;
    w.property_string("compatible", "linux,dummy-virt")?;

    psci(&mut w, dt.psci_method)?;
    memory(&mut w, dt.memory)?;
    cpu_nodes(&mut w, &cpus)?;
    gic(&mut w, dt)?;
    timer(&mut w, dt.timer_ppis)?;
    apb_pclk(&mut w)?;
    pl011(&mut w, dt.uart)?;
    chosen(&mut w, dt, &uart_path)?;
    let aliases = w.begin_node("aliases")?;
    w.property_string("serial0", &uart_path)?;
    w.end_node(aliases)?;
    if let Some(extra) = dt.extra {
        extra(&mut w)?;
    }
    w.end_node(root)?;
    Ok(w.finish()?)
}

/// Rejects what Linux could not use, and returns the CPU `reg` values.
fn check(dt: &GuestDt<'_>) -> Result<Vec<u64>, DtWriteError> {
    let invalid = |why| Err(DtWriteError::Invalid(why));
    let cpus: Vec<u64> = dt
        .vcpu_mpidrs
        .iter()
        .map(|m| m & MPIDR_AFFINITY_MASK)
        .collect();
    if cpus.is_empty() {
        return invalid("vcpu_mpidrs is empty");
    }
    if cpus.iter().enumerate().any(|(i, m)| cpus[..i].contains(m)) {
        return invalid("vcpu_mpidrs repeats an affinity");
    }
    if dt.memory.1 == 0 || dt.memory.0.checked_add(dt.memory.1).is_none() {
        return invalid("memory is empty or wraps");
    }
    let ppis = dt.timer_ppis.iter().chain(dt.gic_maintenance_ppi.iter());
    if ppis.into_iter().any(|&p| p >= PPI_COUNT) {
        return invalid("a PPI number is 16 or more (PPI numbers are INTID - 16)");
    }
    if dt.uart.2 >= SPI_COUNT {
        return invalid("the UART SPI number is 988 or more (SPI numbers are INTID - 32)");
    }
    if dt.initrd.is_some_and(|(start, end)| end < start) {
        return invalid("initrd ends before it starts");
    }
    Ok(cpus)
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn psci(w: &mut FdtWriter, method: &str) -> Result<(), vm_fdt::Error> {
    let node = w.begin_node("psci")?;
    w.property_string("method", method)?;
    w.property_string_list("compatible", strings(&["arm,psci-1.0", "arm,psci-0.2"]))?;
    w.end_node(node)
}

fn memory(w: &mut FdtWriter, (base, size): (u64, u64)) -> Result<(), vm_fdt::Error> {
    let node = w.begin_node(&format!("memory@{base:x}"))?;
    w.property_array_u64("reg", &[base, size])?;
    w.property_string("device_type", "memory")?;
    w.end_node(node)
}

/// `/cpus`, in one cell per `reg` when every affinity fits (no Aff3), else two.
fn cpu_nodes(w: &mut FdtWriter, cpus: &[u64]) -> Result<(), vm_fdt::Error> {
    let one_cell = cpus.iter().all(|&m| u32::try_from(m).is_ok());
    let node = w.begin_node("cpus")?;
    w.property_u32("#size-cells", 0)?;
    w.property_u32("#address-cells", if one_cell { 1 } else { 2 })?;
    for &mpidr in cpus {
        let cpu = w.begin_node(&format!("cpu@{mpidr:x}"))?;
        match u32::try_from(mpidr) {
            Ok(m) if one_cell => w.property_u32("reg", m)?,
            _ => w.property_u64("reg", mpidr)?,
        }
        // On every CPU, the boot CPU included: Linux needs it to hotplug that CPU too.
        w.property_string("enable-method", "psci")?;
        w.property_string("compatible", "arm,armv8")?;
        w.property_string("device_type", "cpu")?;
        w.end_node(cpu)?;
    }
    w.end_node(node)
}

fn gic(w: &mut FdtWriter, dt: &GuestDt<'_>) -> Result<(), vm_fdt::Error> {
    let node = w.begin_node(&format!("intc@{:x}", dt.gic_dist.0))?;
    w.property_phandle(GIC_PHANDLE)?;
    if let Some(ppi) = dt.gic_maintenance_ppi {
        w.property_array_u32("interrupts", &[PPI, ppi, LEVEL_HIGH])?;
    }
    let (d, r) = (dt.gic_dist, dt.gic_redist);
    w.property_array_u64("reg", &[d.0, d.1, r.0, r.1])?;
    w.property_u32("#redistributor-regions", 1)?;
    w.property_string("compatible", "arm,gic-v3")?;
    w.property_null("ranges")?;
    w.property_u32("#size-cells", 2)?;
    w.property_u32("#address-cells", 2)?;
    w.property_null("interrupt-controller")?;
    w.property_u32("#interrupt-cells", 3)?;
    w.end_node(node)
}

fn timer(w: &mut FdtWriter, ppis: [u32; 4]) -> Result<(), vm_fdt::Error> {
    let node = w.begin_node("timer")?;
    let mut cells = [0; 12];
    for (spec, ppi) in cells.chunks_exact_mut(3).zip(ppis) {
        spec.copy_from_slice(&[PPI, ppi, LEVEL_HIGH]);
    }
    w.property_array_u32("interrupts", &cells)?;
    w.property_null("always-on")?;
    w.property_string_list(
        "compatible",
        strings(&["arm,armv8-timer", "arm,armv7-timer"]),
    )?;
    w.end_node(node)
}

/// The fixed clock the PL011 names as both `uartclk` and `apb_pclk` (the AMBA bus code will not
/// probe a primecell without `apb_pclk`).
fn apb_pclk(w: &mut FdtWriter) -> Result<(), vm_fdt::Error> {
    let node = w.begin_node("apb-pclk")?;
    w.property_phandle(CLK_PHANDLE)?;
    w.property_string("clock-output-names", "clk24mhz")?;
    w.property_u32("clock-frequency", APB_PCLK_HZ)?;
    w.property_u32("#clock-cells", 0)?;
    w.property_string("compatible", "fixed-clock")?;
    w.end_node(node)
}

fn pl011(w: &mut FdtWriter, (base, size, spi): (u64, u64, u32)) -> Result<(), vm_fdt::Error> {
    let node = w.begin_node(&format!("pl011@{base:x}"))?;
    w.property_string_list("clock-names", strings(&["uartclk", "apb_pclk"]))?;
    w.property_array_u32("clocks", &[CLK_PHANDLE, CLK_PHANDLE])?;
    w.property_array_u32("interrupts", &[SPI, spi, LEVEL_HIGH])?;
    w.property_array_u64("reg", &[base, size])?;
    w.property_string_list("compatible", strings(&["arm,pl011", "arm,primecell"]))?;
    w.end_node(node)
}

fn chosen(w: &mut FdtWriter, dt: &GuestDt<'_>, uart_path: &str) -> Result<(), vm_fdt::Error> {
    let node = w.begin_node("chosen")?;
    w.property_string("bootargs", dt.bootargs)?;
    w.property_string("stdout-path", uart_path)?;
    if let Some((start, end)) = dt.initrd {
        w.property_u64("linux,initrd-start", start)?;
        w.property_u64("linux,initrd-end", end)?;
    }
    if let Some(seed) = &dt.rng_seed {
        w.property("rng-seed", seed)?;
    }
    w.end_node(node)
}

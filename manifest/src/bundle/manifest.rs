//! Reading the manifest out of the bundle's device tree: the root checks, then each VM node on
//! its own ([`Candidate`]), collecting every problem of a VM rather than stopping at the first.
//! Checks across VMs are in `check.rs`, the link nodes in `links.rs`.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::ops::{Range, RangeInclusive};

use super::image::KernelImage;
use super::links::{self, LinkCandidate};
use super::{
    BundleError, COMPATIBLE, Capabilities, DEFAULT_MEMORY_BASE, DEFAULT_OBJECT_MEMORY,
    DEFAULT_PRIORITY, DEFAULT_TIMESLICE_US, DT_RESERVE, IPA_LIMIT, Limits, MAX_BOOTARGS_LEN,
    MAX_NAME_LEN, MEMORY_ALIGN, MIN_MEMORY_SIZE, OBJECT_MEMORY, PRIORITIES, TIMESLICES_US,
};
use crate::dt::{DtError, NodeRef, Tree};
use guestdt::layout;

/// Properties a VM node may have (besides the tolerated ones).
const VM_PROPS: &[&str] = &[
    "kernel",
    "initrd",
    "bootargs",
    "memory-size",
    "memory-base",
    "vcpus",
    "priority",
    "timeslice-us",
    "console",
    "critical",
    "capabilities",
    "object-memory",
    "scheduled-by",
    "status",
    "description",
];
/// Properties allowed on any node: set by `dtc` (phandles) or by old trees (`name`).
pub(super) const TOLERATED: &[&str] = &["phandle", "linux,phandle", "name"];
/// Properties of the root node.
const ROOT_PROPS: &[&str] = &["compatible", "description", "#address-cells", "#size-cells"];
/// Nodes under the root: the VMs, the links, and the labels `dtc -@` records.
const ROOT_NODES: &[&str] = &["vms", "links", "__symbols__"];
/// `capabilities` values.
const CAPABILITIES: &[&str] = &["partition", "cspace", "vic", "vcpus"];

const PAGE: u64 = 4096;

/// A VM whose own properties are valid. Images are byte ranges of the blob.
pub(super) struct Candidate {
    /// Position among the children of `/vms`, from 1 (errors sort by it).
    pub(super) order: usize,
    pub(super) name: String,
    pub(super) kernel: Range<usize>,
    pub(super) text_offset: u64,
    pub(super) image_size: u64,
    pub(super) initrd: Option<Range<usize>>,
    pub(super) bootargs: String,
    /// `None` if the VM takes [`DEFAULT_MEMORY_BASE`].
    pub(super) memory_base: Option<u64>,
    pub(super) memory_size: u64,
    pub(super) vcpus: u32,
    pub(super) priority: u32,
    pub(super) timeslice_us: u32,
    pub(super) console: bool,
    pub(super) critical: bool,
    pub(super) capabilities: Capabilities,
    pub(super) object_memory: u32,
    pub(super) devices: Vec<super::DeviceSpec>,
    /// The VM that runs its vCPUs with `vcpu_run` (`scheduled-by`), not yet looked up.
    pub(super) scheduled_by: Option<String>,
}

/// A child of `/vms`, valid or not: what a link naming it is told when it is not started.
pub(super) struct VmNode {
    pub(super) name: String,
    /// Not `status = "disabled"`.
    pub(super) enabled: bool,
}

/// What the manifest says, before the checks across VMs.
pub(super) struct Manifest {
    /// VMs valid on their own, in manifest order.
    pub(super) vms: Vec<Candidate>,
    /// Every child of `/vms`, in manifest order.
    pub(super) vm_nodes: Vec<VmNode>,
    /// The enabled children of `/links`, in manifest order, their VMs not yet looked up.
    pub(super) links: Vec<LinkCandidate>,
    /// Problems, each with its VM's [`Candidate::order`] or its link's
    /// [`LinkCandidate::order`] (0 for the file as a whole).
    pub(super) errors: Vec<(usize, BundleError)>,
}

/// Reads the manifest of `tree`, whose blob occupies the addresses `blob`. `Err` if the root is
/// not a bundle or has no `/vms`.
pub(super) fn read(
    tree: &Tree<'_>,
    blob: Range<usize>,
    limits: &Limits,
) -> Result<Manifest, BundleError> {
    let root = tree
        .find_path("/")
        .ok_or_else(|| BundleError::file("empty device tree"))?;
    let compatible = root
        .strings("compatible")
        .map_err(|e| BundleError::file(dt_problem(&e)))?;
    if !compatible.contains(&COMPATIBLE) {
        let found = match compatible.as_slice() {
            [] => String::from("missing"),
            list => format!("{list:?}"),
        };
        return Err(BundleError::file(format!(
            "root property 'compatible': {found}, not \"{COMPATIBLE}\" (not a Wurley boot bundle, or another version)"
        )));
    }
    let vms = root
        .children()
        .find(|n| n.name() == "vms")
        .ok_or_else(|| BundleError::file("node '/vms': missing"))?;

    let mut errors = Vec::new();
    let mut note = |problem: String| errors.push((0, BundleError::file(problem)));
    for p in root.prop_names() {
        if !ROOT_PROPS.contains(&p) && !TOLERATED.contains(&p) {
            note(format!("root property '{p}': unknown, ignored"));
        }
    }
    for n in root.children() {
        if !ROOT_NODES.contains(&n.name()) {
            note(format!("node '/{}': unknown, ignored", n.name()));
        }
    }
    for p in vms.prop_names() {
        if !TOLERATED.contains(&p) && p != "description" {
            note(format!("node '/vms' property '{p}': unknown, ignored"));
        }
    }

    let mut out = Vec::new();
    let mut vm_nodes = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for (i, node) in vms.children().enumerate() {
        let order = i + 1;
        let name = node.name();
        let mut vm = Vm::new(node, blob.clone());
        let enabled = vm.enabled();
        if enabled {
            if names.contains(&name) {
                vm.problem("node name: another VM node before it has the same name");
            }
            names.push(name);
            if let Some(candidate) = vm.read(order, limits) {
                out.push(candidate);
            }
        }
        vm_nodes.push(VmNode {
            name: name.to_string(),
            enabled,
        });
        for p in vm.problems {
            errors.push((order, BundleError::vm(name, p)));
        }
    }
    if names.is_empty() {
        errors.push((usize::MAX, BundleError::file("node '/vms': no enabled VM")));
    }
    // Link errors sort after every VM's.
    let links = match root.children().find(|n| n.name() == "links") {
        Some(node) => links::read(node, vm_nodes.len() + 1, &mut errors),
        None => Vec::new(),
    };
    Ok(Manifest {
        vms: out,
        vm_nodes,
        links,
        errors,
    })
}

/// A [`DtError`] as `property 'x': problem`.
pub(super) fn dt_problem(e: &DtError) -> String {
    match e.property {
        Some(p) => format!("property '{p}': {}", e.problem),
        None => e.problem.to_string(),
    }
}

/// What is wrong with `name` as the name of a `what` ("VM", "link"), whose good names look like
/// `example`.
pub(super) fn name_problem(name: &str, what: &str, example: &str) -> Option<String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || ",._+-".contains(c);
    if name.contains('@') {
        Some(format!(
            "node name: has a unit address; name the node after the {what}, e.g. '{example}'"
        ))
    } else if name.is_empty() || name.len() > MAX_NAME_LEN {
        Some(format!("node name: must be 1 to {MAX_NAME_LEN} characters"))
    } else if !name.chars().all(ok) {
        Some(String::from(
            "node name: only letters, digits and , . _ + - are allowed",
        ))
    } else {
        None
    }
}

/// `status` of `node`: whether to read it at all, and what is wrong with the property (a bad
/// `status` counts as enabled, so that the node is read for more problems).
pub(super) fn status(node: NodeRef<'_, '_>) -> (bool, Option<String>) {
    match node.strings("status") {
        Ok(list) => match list.as_slice() {
            [] | ["okay"] | ["ok"] => (true, None),
            ["disabled"] => (false, None),
            [other] => (
                true,
                Some(format!(
                    "property 'status': \"{other}\" is neither \"okay\" nor \"disabled\""
                )),
            ),
            _ => (
                true,
                Some(String::from("property 'status': must be one string")),
            ),
        },
        Err(e) => (true, Some(dt_problem(&e))),
    }
}

/// One-cell property `name` of `node` in `range`, `default` if absent; `unit` follows the range
/// in the message.
pub(super) fn u32_in(
    node: NodeRef<'_, '_>,
    name: &'static str,
    default: u32,
    range: RangeInclusive<u32>,
    unit: &str,
) -> Result<u32, String> {
    let v = node
        .u32_prop(name)
        .map_err(|e| dt_problem(&e))?
        .unwrap_or(default);
    if range.contains(&v) {
        return Ok(v);
    }
    let (lo, hi) = (range.start(), range.end());
    Err(format!(
        "property '{name}': {v} is outside {lo}..={hi}{unit}"
    ))
}

/// One VM node being read, and what is wrong with it so far.
struct Vm<'t, 'a> {
    node: NodeRef<'t, 'a>,
    /// The blob's addresses, to turn images into offsets.
    blob: Range<usize>,
    problems: Vec<String>,
}

impl<'t, 'a> Vm<'t, 'a> {
    fn new(node: NodeRef<'t, 'a>, blob: Range<usize>) -> Self {
        Self {
            node,
            blob,
            problems: Vec::new(),
        }
    }

    fn problem(&mut self, problem: impl Into<String>) {
        self.problems.push(problem.into());
    }

    fn bad(&mut self, property: &str, problem: impl fmt::Display) {
        self.problem(format!("property '{property}': {problem}"));
    }

    /// The candidate, or `None` if the VM has problems (in `self.problems`).
    fn read(&mut self, order: usize, limits: &Limits) -> Option<Candidate> {
        self.check_name();
        self.check_contents();

        let kernel = match self.node.prop("kernel") {
            None => {
                self.bad("kernel", "missing");
                None
            }
            Some(bytes) => KernelImage::parse(bytes)
                .map_err(|e| self.bad("kernel", e))
                .ok(),
        };
        let initrd = self.node.prop("initrd");
        if initrd == Some(&[]) {
            self.bad("initrd", "empty (leave the property out for no initrd)");
        }
        let bootargs = self.bootargs();
        let memory_size = self.memory_size();
        let memory_base = self.memory_base();
        let vcpus = self.vcpus(limits);
        let priority = self.u32_in("priority", DEFAULT_PRIORITY, PRIORITIES, "");
        let timeslice_us = self.u32_in(
            "timeslice-us",
            DEFAULT_TIMESLICE_US,
            TIMESLICES_US,
            " microseconds",
        );
        let console = self.flag("console");
        let critical = self.flag("critical");
        let capabilities = self.capabilities();
        let object_memory = self.u32_in(
            "object-memory",
            DEFAULT_OBJECT_MEMORY,
            OBJECT_MEMORY,
            " bytes",
        );
        let scheduled_by = self.scheduled_by();
        let devices = match self.node.children().find(|c| c.name() == "devices") {
            Some(node) => {
                let (list, problems) = super::devices::read(node);
                self.problems.extend(problems);
                list
            }
            None => Vec::new(),
        };

        if let (Some(size), Some(base)) = (memory_size, memory_base) {
            self.check_range(size, base, vcpus.unwrap_or(1));
        }
        if let (Some(size), Some(kernel)) = (memory_size, &kernel) {
            self.check_fit(size, kernel, initrd.unwrap_or_default());
        }
        let kernel_span = kernel.and_then(|k| self.span(k.bytes));
        let initrd_span = initrd.map(|i| self.span(i));
        let lost_kernel = kernel.is_some() && kernel_span.is_none();
        if lost_kernel || initrd_span.as_ref().is_some_and(Option::is_none) {
            self.problem("images outside the blob (a bug in the device-tree walker)");
        }
        if !self.problems.is_empty() {
            return None;
        }
        Some(Candidate {
            order,
            name: self.node.name().to_string(),
            kernel: kernel_span?,
            text_offset: kernel?.text_offset,
            image_size: kernel?.image_size,
            initrd: initrd_span.flatten(),
            bootargs: bootargs?,
            memory_base: memory_base?,
            memory_size: memory_size?,
            vcpus: vcpus?,
            priority: priority?,
            timeslice_us: timeslice_us?,
            console: console?,
            critical: critical?,
            capabilities: capabilities?,
            object_memory: object_memory?,
            devices,
            scheduled_by: scheduled_by?,
        })
    }

    /// Where `value`, a property value, lies in the blob; `None` if it is not inside it.
    fn span(&self, value: &[u8]) -> Option<Range<usize>> {
        let at = value.as_ptr_range();
        let (start, end) = (at.start.addr(), at.end.addr());
        let origin = self.blob.start;
        (origin <= start && end <= self.blob.end).then(|| start - origin..end - origin)
    }

    /// `status`: whether to read the VM at all (a bad `status` is a problem, and the VM is read
    /// for more).
    fn enabled(&mut self) -> bool {
        let (enabled, problem) = status(self.node);
        self.problems.extend(problem);
        enabled
    }

    fn check_name(&mut self) {
        let problem = name_problem(self.node.name(), "VM", "linux");
        self.problems.extend(problem);
    }

    /// Unknown properties and child nodes.
    fn check_contents(&mut self) {
        let node = self.node;
        for p in node.prop_names() {
            if !VM_PROPS.contains(&p) && !TOLERATED.contains(&p) {
                self.bad(
                    p,
                    format!("unknown; a VM node takes {}", VM_PROPS.join(", ")),
                );
            }
        }
        for child in node.children().filter(|c| c.name() != "devices") {
            self.problem(format!(
                "node '{}': unknown; a VM node's only child node is 'devices'",
                child.name()
            ));
        }
    }

    /// `scheduled-by`: one VM name; `Some(None)` if absent.
    fn scheduled_by(&mut self) -> Option<Option<String>> {
        match self.node.strings("scheduled-by") {
            Ok(list) => match list.as_slice() {
                [] if self.node.prop("scheduled-by").is_none() => Some(None),
                [] => {
                    self.bad("scheduled-by", "empty; name the VM that runs this one");
                    None
                }
                [owner] if *owner == self.node.name() => {
                    self.bad("scheduled-by", "names the VM itself");
                    None
                }
                [owner] => Some(Some((*owner).to_string())),
                _ => {
                    self.bad("scheduled-by", "must be one VM name, not a list");
                    None
                }
            },
            Err(e) => {
                self.problem(dt_problem(&e));
                None
            }
        }
    }

    fn bootargs(&mut self) -> Option<String> {
        match self.node.strings("bootargs") {
            Ok(list) => match list.as_slice() {
                [] => Some(String::new()),
                [s] if s.len() > MAX_BOOTARGS_LEN => {
                    let n = s.len();
                    self.bad(
                        "bootargs",
                        format!("{n} bytes, longer than Linux's {MAX_BOOTARGS_LEN}"),
                    );
                    None
                }
                [s] => Some((*s).to_string()),
                _ => {
                    self.bad("bootargs", "must be one string, not a list");
                    None
                }
            },
            Err(e) => {
                self.problem(dt_problem(&e));
                None
            }
        }
    }

    /// A two-cell property, `Some(None)` if absent, `None` if malformed.
    fn u64_prop(&mut self, name: &'static str) -> Option<Option<u64>> {
        match self.node.cells(name) {
            Ok(None) => Some(None),
            Ok(Some(cells)) => match cells.as_slice() {
                [hi, lo] => Some(Some(u64::from(*hi) << 32 | u64::from(*lo))),
                _ => {
                    self.bad(name, "must be 64 bits: <high low> or /bits/ 64 <value>");
                    None
                }
            },
            Err(e) => {
                self.problem(dt_problem(&e));
                None
            }
        }
    }

    fn memory_size(&mut self) -> Option<u64> {
        let size = match self.u64_prop("memory-size")? {
            Some(size) => size,
            None => {
                self.bad("memory-size", "missing");
                return None;
            }
        };
        if size < MIN_MEMORY_SIZE {
            self.bad(
                "memory-size",
                format!(
                    "{} is below the minimum of {}",
                    Size(size),
                    Size(MIN_MEMORY_SIZE)
                ),
            );
            None
        } else if !size.is_multiple_of(MEMORY_ALIGN) {
            self.bad(
                "memory-size",
                format!("{size:#x} is not a multiple of 2 MiB"),
            );
            None
        } else {
            Some(size)
        }
    }

    /// `Some(None)` for the default base.
    fn memory_base(&mut self) -> Option<Option<u64>> {
        let base = self.u64_prop("memory-base")?;
        if let Some(b) = base.filter(|b| !b.is_multiple_of(MEMORY_ALIGN)) {
            self.bad("memory-base", format!("{b:#x} is not a multiple of 2 MiB"));
            return None;
        }
        Some(base)
    }

    /// RAM inside the IPA space and, for an explicit base, clear of the emulated devices.
    fn check_range(&mut self, size: u64, base: Option<u64>, vcpus: u32) {
        let start = base.unwrap_or(DEFAULT_MEMORY_BASE);
        let prop = if base.is_some() {
            "memory-base"
        } else {
            "memory-size"
        };
        let end = start.checked_add(size).filter(|e| *e <= IPA_LIMIT);
        let Some(end) = end else {
            self.bad(
                prop,
                format!(
                    "RAM of {} at {start:#x} ends past the {} guest address space",
                    Size(size),
                    Size(IPA_LIMIT)
                ),
            );
            return;
        };
        let devices = devices(vcpus);
        if base.is_some() && start < devices.end && devices.start < end {
            self.bad(
                prop,
                format!(
                    "RAM [{start:#x}, {end:#x}) overlaps the emulated devices at [{:#x}, {:#x})",
                    devices.start, devices.end
                ),
            );
        }
    }

    /// The kernel, the initrd and the device tree fit in RAM (as `vm::launch` places them).
    fn check_fit(&mut self, size: u64, kernel: &KernelImage<'_>, initrd: &[u8]) {
        let kernel_end = kernel.footprint().next_multiple_of(PAGE);
        let initrd_len = (initrd.len() as u64).next_multiple_of(PAGE);
        let need = kernel_end
            .saturating_add(initrd_len)
            .saturating_add(DT_RESERVE);
        if need > size {
            let initrd = match initrd.len() {
                0 => String::new(),
                n => format!(", the initrd ({})", Size(n as u64)),
            };
            self.bad(
                "memory-size",
                format!(
                    "{} is too small: the kernel ({} from the 2 MiB-aligned base){initrd} and {} for the device tree need {}",
                    Size(size),
                    Size(kernel.footprint()),
                    Size(DT_RESERVE),
                    Size(need.saturating_add(MEMORY_ALIGN - 1) / MEMORY_ALIGN * MEMORY_ALIGN),
                ),
            );
        }
    }

    fn vcpus(&mut self, limits: &Limits) -> Option<u32> {
        let n = match self.node.u32_prop("vcpus") {
            Ok(n) => n.unwrap_or(1),
            Err(e) => {
                self.problem(dt_problem(&e));
                return None;
            }
        };
        if n == 0 {
            self.bad("vcpus", "0; a VM needs at least 1");
            None
        } else if n > limits.max_vcpus_per_vm {
            let max = limits.max_vcpus_per_vm;
            self.bad("vcpus", format!("{n} is above the limit of {max} per VM"));
            None
        } else {
            Some(n)
        }
    }

    fn u32_in(
        &mut self,
        name: &'static str,
        default: u32,
        range: RangeInclusive<u32>,
        unit: &str,
    ) -> Option<u32> {
        u32_in(self.node, name, default, range, unit)
            .map_err(|p| self.problem(p))
            .ok()
    }

    /// `capabilities`: each of [`CAPABILITIES`] at most once.
    fn capabilities(&mut self) -> Option<Capabilities> {
        let list = match self.node.strings("capabilities") {
            Ok(list) => list,
            Err(e) => {
                self.problem(dt_problem(&e));
                return None;
            }
        };
        let mut caps = Capabilities::default();
        let mut ok = true;
        let mut repeated: Vec<&str> = Vec::new();
        for cap in list {
            let slot = match cap {
                "partition" => &mut caps.partition,
                "cspace" => &mut caps.cspace,
                "vic" => &mut caps.vic,
                "vcpus" => &mut caps.vcpus,
                _ => {
                    let known = CAPABILITIES.join("\", \"");
                    self.bad(
                        "capabilities",
                        format!("\"{cap}\" is not one of \"{known}\""),
                    );
                    ok = false;
                    continue;
                }
            };
            if *slot && !repeated.contains(&cap) {
                self.bad("capabilities", format!("\"{cap}\" is listed twice"));
                repeated.push(cap);
                ok = false;
            }
            *slot = true;
        }
        ok.then_some(caps)
    }

    /// An empty (boolean) property: present or not.
    fn flag(&mut self, name: &'static str) -> Option<bool> {
        match self.node.prop(name) {
            None => Some(false),
            Some([]) => Some(true),
            Some(_) => {
                self.bad(name, format!("must be empty: write `{name};`"));
                None
            }
        }
    }
}

/// The guest-physical window of the emulated GIC and PL011 for a VM of `vcpus`.
fn devices(vcpus: u32) -> Range<u64> {
    let windows = [
        (layout::GICD_BASE, layout::GICD_SIZE),
        (layout::GICR_BASE, layout::gicr_size(vcpus as usize)),
        (layout::UART_BASE, layout::UART_SIZE),
    ];
    let start = windows.iter().map(|w| w.0).min().unwrap_or(0);
    let end = windows.iter().map(|w| w.0 + w.1).max().unwrap_or(0);
    start..end
}

/// A byte count for messages: `16 MiB`, `96 KiB`, `26 bytes`, `0x1000001 bytes`.
pub(super) struct Size(pub(super) u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const KIB: u64 = 1 << 10;
        const MIB: u64 = 1 << 20;
        const GIB: u64 = 1 << 30;
        match self.0 {
            0 => write!(f, "0 bytes"),
            n if n.is_multiple_of(GIB) => write!(f, "{} GiB", n / GIB),
            n if n.is_multiple_of(MIB) => write!(f, "{} MiB", n / MIB),
            n if n.is_multiple_of(KIB) => write!(f, "{} KiB", n / KIB),
            n if n < MIB => write!(f, "{n} bytes"),
            n => write!(f, "{n:#x} bytes"),
        }
    }
}

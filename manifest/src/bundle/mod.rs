//! The boot bundle: the one file, passed as the initrd, that holds the VM manifest and every
//! kernel and initrd. [`parse`] validates it into [`VmSpec`]s; `docs/configuration.md` is the
//! user's guide.
//!
//! # Format (`wurley,bundle-v1`)
//!
//! A flattened device tree, compiled with `dtc` from a source that pulls the images in with
//! `/incbin/("file")` (like a U-Boot FIT image):
//!
//! ```dts
//! /dts-v1/;
//! / {
//!     compatible = "wurley,bundle-v1";
//!     vms {
//!         linux {                                   // the VM's name
//!             kernel = /incbin/("Image");           // required: uncompressed arm64 Image
//!             initrd = /incbin/("initramfs.cpio.gz");
//!             bootargs = "console=ttyAMA0";
//!             memory-size = /bits/ 64 <0x20000000>; // required, same as <0x0 0x20000000>
//!             vcpus = <2>;
//!             console;
//!         };
//!     };
//! };
//! ```
//!
//! Root: `compatible` must hold `"wurley,bundle-v1"`, and `/vms` must exist, or the file is
//! refused as a whole ([`parse`] returns `Err`). Each child of `/vms` is a VM, named by its
//! node name (1 to 29 characters from `A-Z a-z 0-9 , . _ + -`, no unit address; a longer node
//! name anywhere makes the blob unreadable, see [`MAX_NAME_LEN`]):
//!
//! | Property | Type | |
//! |----------|------|-|
//! | `kernel` | bytes | required; an arm64 Linux `Image` (see [`KernelImage`]) |
//! | `initrd` | bytes | optional, not empty |
//! | `bootargs` | string | optional, at most 2047 bytes (Linux's limit) |
//! | `memory-size` | u64 (2 cells) | required; at least 16 MiB, a multiple of 2 MiB |
//! | `memory-base` | u64 (2 cells) | optional guest-physical (IPA) base of RAM, a multiple of 2 MiB; default 0x4000_0000 |
//! | `vcpus` | u32 | 1 to [`Limits::max_vcpus_per_vm`] (8); default 1 |
//! | `priority` | u32 | 0..=63, default 32 (for the scheduler) |
//! | `timeslice-us` | u32 | 100..=100000, default 5000 (for the scheduler) |
//! | `console` | empty | this VM has the console input first; at most one VM |
//! | `critical` | empty | when this VM ends, the machine powers off (or resets, if the VM reset) |
//! | `capabilities` | strings | caps to its own objects: `"partition"`, `"cspace"`, `"vic"`, `"vcpus"` (each at most once); default none |
//! | `object-memory` | u32 | bytes of objects it may create through its partition cap, [`OBJECT_MEMORY`]; default 256 KiB |
//! | `status` | string | `"okay"` (default) or `"disabled"`: skip the VM without reading it |
//! | `description` | string | free text, ignored |
//!
//! `phandle`, `linux,phandle` and `name` are tolerated; any other property or a child node is an
//! error (it catches typos such as `bootarg`).
//!
//! Placement: the kernel goes at `memory-base + text_offset`, the device tree in the top 2 MiB,
//! the initrd page-aligned below it, so `text_offset + image_size` and the initrd (each rounded
//! up to 4 KiB) plus 2 MiB must fit in `memory-size`.
//!
//! Each VM has its own IPA space, so VMs using the default base never conflict. An explicit
//! `memory-base` is meant for identity-mapped primaries (IPA = PA, for DMA without an SMMU):
//! two VMs with explicit bases must not overlap, and an explicit range must stay clear of the
//! emulated devices (GIC, PL011) and inside the 39-bit IPA space.
//!
//! `/links`, optional, joins started VMs: each child is a link ([`LinkSpec`]), named by its node
//! name (the same rules as a VM's, unique within `/links`):
//!
//! ```dts
//! links {
//!     chat {
//!         compatible = "wurley,msgqueue-pair";  // a message queue each way
//!         vms = "ping", "pong";
//!         queue-depth = <8>;                    // 1..=255, default 8
//!         message-size = <240>;                 // 1..=1023 bytes, default 240
//!     };
//!     bell {
//!         compatible = "wurley,doorbell";
//!         sender = "ping";
//!         receiver = "pong";
//!     };
//! };
//! ```
//!
//! A link also takes `status` and `description` like a VM; anything else is an error. It joins
//! two different VMs, both started, and each VM can be in at most [`MAX_LINKS_PER_VM`] links.
//! Each VM learns of its ends of links, and of its `capabilities`, from a `/hypervisor` node in
//! its device tree (Gunyah's binding; written by `vm::devicetree`).
//!
//! # Errors
//!
//! One bad VM does not stop the others. [`Bundle::errors`] lists every problem in manifest
//! order (the VMs, then the links); an error naming a VM means that VM is not in
//! [`Bundle::vms`], one naming a link that the link is not in [`Bundle::links`]. First each VM
//! on its own: all problems of its properties are reported together, and a name already used
//! by an earlier VM node is one. Then, in manifest order, each remaining VM must not claim the
//! console a VM before it has, overlap an earlier explicit `memory-base`, or need more vCPUs
//! than the physical CPUs left by the VMs before it ([`Limits::max_vcpus_total`]; each vCPU is
//! pinned to its own CPU); a VM failing these claims nothing. Last each link, the same way: its
//! own properties and name, then its VMs, looked up among those that passed (a link to a VM
//! that is not started is refused; the VMs still start), then, in manifest order, the per-VM
//! link count (a refused link counts for nothing). Errors without a VM or link concern the
//! file: what was ignored outside the VM and link nodes, or that no VM is enabled.

mod check;
mod devices;
mod image;
mod links;
mod manifest;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::ops::RangeInclusive;

use crate::dt::with_tree;
use guestdt::layout;

pub use devices::{DeviceSpec, write_nodes as write_device_nodes};
pub use image::KernelImage;

/// The root `compatible` string of this format.
pub const COMPATIBLE: &str = "wurley,bundle-v1";
/// Guest RAM base (IPA) when a VM gives no `memory-base`.
pub const DEFAULT_MEMORY_BASE: u64 = layout::RAM_BASE;
/// Smallest `memory-size`.
pub const MIN_MEMORY_SIZE: u64 = 16 << 20;
/// `memory-size` and `memory-base` are multiples of this (stage-2 block size and the arm64
/// kernel's load alignment).
pub const MEMORY_ALIGN: u64 = 2 << 20;
/// Room kept at the top of guest RAM for the device tree (arm64 Linux allows up to 2 MiB).
pub const DT_RESERVE: u64 = 2 << 20;
/// End of the guest IPA space (39 bits, as `arch::aarch64::stage2::IPA_BITS` sets up).
pub const IPA_LIMIT: u64 = 1 << 39;
/// The most vCPUs one VM may have ([`Limits::new`]).
pub const MAX_VCPUS_PER_VM: u32 = 8;
/// `priority` values.
pub const PRIORITIES: RangeInclusive<u32> = 0..=63;
/// `priority` when not given.
pub const DEFAULT_PRIORITY: u32 = 32;
/// `timeslice-us` values.
pub const TIMESLICES_US: RangeInclusive<u32> = 100..=100_000;
/// `timeslice-us` when not given.
pub const DEFAULT_TIMESLICE_US: u32 = 5_000;
/// Longest VM name. The device-tree spec allows 31 characters, but the walker (`fdt-rs`) reads
/// node names of at most 29 and refuses the whole blob otherwise.
pub const MAX_NAME_LEN: usize = 29;
/// Longest `bootargs` (arm64 Linux's `COMMAND_LINE_SIZE` less the NUL).
pub const MAX_BOOTARGS_LEN: usize = 2047;
/// `object-memory` values, in bytes.
pub const OBJECT_MEMORY: RangeInclusive<u32> = 4096..=16 << 20;
/// `object-memory` when not given.
pub const DEFAULT_OBJECT_MEMORY: u32 = 256 << 10;
/// `compatible` of a message-queue-pair link.
pub const MSGQUEUE_PAIR_COMPATIBLE: &str = "wurley,msgqueue-pair";
/// `compatible` of a doorbell link.
pub const DOORBELL_COMPATIBLE: &str = "wurley,doorbell";
/// `queue-depth` values.
pub const QUEUE_DEPTHS: RangeInclusive<u32> = 1..=255;
/// `queue-depth` when not given.
pub const DEFAULT_QUEUE_DEPTH: u32 = 8;
/// `message-size` values, in bytes.
pub const MESSAGE_SIZES: RangeInclusive<u32> = 1..=1023;
/// `message-size` when not given.
pub const DEFAULT_MESSAGE_SIZE: u32 = 240;
/// The most links one VM can be in: each link end takes up to 2 of the 32 vIRQs a VM has for
/// its links (SPIs from INTID 64 up; a message-queue pair takes 2, a doorbell's receiver 1).
pub const MAX_LINKS_PER_VM: usize = 16;

/// What the machine allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most vCPUs all VMs together may have (the hypervisor passes no limit since vCPUs
    /// share physical CPUs; a board port may set one).
    pub max_vcpus_total: u32,
    /// The most vCPUs one VM may have.
    pub max_vcpus_per_vm: u32,
}

impl Limits {
    /// `physical_cpus` to pin to, at most [`MAX_VCPUS_PER_VM`] per VM.
    pub const fn new(physical_cpus: u32) -> Self {
        Self {
            max_vcpus_total: physical_cpus,
            max_vcpus_per_vm: MAX_VCPUS_PER_VM,
        }
    }
}

/// A parsed bundle: the VMs that passed validation, in manifest order, and every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle<'a> {
    /// The valid, enabled VMs.
    pub vms: Vec<VmSpec<'a>>,
    /// The valid, enabled links between VMs of `vms`, in manifest order.
    pub links: Vec<LinkSpec>,
    /// Problems, in manifest order; one naming a VM means that VM is not in `vms`, one naming a
    /// link that the link is not in `links`.
    pub errors: Vec<BundleError>,
}

/// Caps a VM gets to its own objects (`capabilities`), listed in its device tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `"partition"`: its partition, to create objects in (up to [`VmSpec::object_memory`]).
    pub partition: bool,
    /// `"cspace"`: its own cspace.
    pub cspace: bool,
    /// `"vic"`: its virtual interrupt controller, to bind interrupt sources to.
    pub vic: bool,
    /// `"vcpus"`: its own vCPUs, to move them between physical CPUs (`vcpu_set_affinity`).
    pub vcpus: bool,
}

/// A link between two started VMs (a child of `/links`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSpec {
    /// The node name under `/links`.
    pub name: String,
    /// What it is and whom it joins.
    pub kind: LinkKind,
}

/// What a link is; VMs are indices into [`Bundle::vms`], always two different ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// `wurley,msgqueue-pair`: a message queue each way; each VM gets a TX and an RX cap and
    /// their two vIRQs.
    MsgQueuePair {
        /// The two VMs, as `vms` lists them.
        vms: [usize; 2],
        /// Messages each queue holds, in [`QUEUE_DEPTHS`].
        depth: u32,
        /// Largest message in bytes, in [`MESSAGE_SIZES`].
        message_size: u32,
    },
    /// `wurley,doorbell`: `sender` rings, `receiver` gets the vIRQ.
    Doorbell {
        /// The VM that rings it.
        sender: usize,
        /// The VM that is interrupted.
        receiver: usize,
    },
}

/// One VM to create. Images borrow the bundle.
#[derive(Clone, PartialEq, Eq)]
pub struct VmSpec<'a> {
    /// The node name under `/vms`.
    pub name: String,
    /// The kernel, header checked.
    pub kernel: KernelImage<'a>,
    /// The initrd, if any (never empty).
    pub initrd: Option<&'a [u8]>,
    /// The kernel command line, empty if not given.
    pub bootargs: String,
    /// Guest RAM base (IPA), 2 MiB aligned: `memory-base` or [`DEFAULT_MEMORY_BASE`].
    pub memory_base: u64,
    /// Whether the manifest gives `memory-base` (false: [`VmSpec::memory_base`] is the
    /// default, and a launcher may place the RAM elsewhere, e.g. identity mapped).
    pub memory_base_explicit: bool,
    /// Guest RAM size, at least [`MIN_MEMORY_SIZE`], 2 MiB aligned; base + size is at most
    /// [`IPA_LIMIT`] and holds the kernel, the initrd and [`DT_RESERVE`].
    pub memory_size: u64,
    /// vCPU count, at least 1.
    pub vcpus: u32,
    /// Scheduler priority, in [`PRIORITIES`].
    pub priority: u32,
    /// Scheduler timeslice in microseconds, in [`TIMESLICES_US`].
    pub timeslice_us: u32,
    /// Whether this VM gets console input first (at most one VM has it).
    pub console: bool,
    /// Whether the machine ends with this VM (power off, or reset if the VM reset).
    pub critical: bool,
    /// Caps to its own objects.
    pub capabilities: Capabilities,
    /// Bytes of objects it may create through its partition cap, in [`OBJECT_MEMORY`].
    pub object_memory: u32,
    /// Devices passed through to it (the `devices` child node).
    pub devices: Vec<DeviceSpec>,
    /// `scheduled-by`: the VM (another started VM, not proxy-scheduled itself) that runs this
    /// one's vCPUs with `vcpu_run`; the scheduler never runs them on its own.
    pub scheduled_by: Option<String>,
}

impl fmt::Debug for VmSpec<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VmSpec")
            .field("name", &self.name)
            .field("kernel", &self.kernel)
            .field("initrd_len", &self.initrd.map(<[u8]>::len))
            .field("bootargs", &self.bootargs)
            .field("memory_base", &format_args!("{:#x}", self.memory_base))
            .field("memory_base_explicit", &self.memory_base_explicit)
            .field("memory_size", &format_args!("{:#x}", self.memory_size))
            .field("vcpus", &self.vcpus)
            .field("priority", &self.priority)
            .field("timeslice_us", &self.timeslice_us)
            .field("console", &self.console)
            .field("critical", &self.critical)
            .field("capabilities", &self.capabilities)
            .field("object_memory", &self.object_memory)
            .field("devices", &self.devices)
            .finish()
    }
}

/// A problem with the bundle, or with one VM or link of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleError {
    /// The VM at fault; `None` for a link or the file as a whole.
    pub vm: Option<String>,
    /// The link at fault (a node under `/links`); `None` for a VM or the file as a whole.
    pub link: Option<String>,
    /// What is wrong, naming the property or node, e.g. `property 'kernel': missing`.
    pub problem: String,
}

impl BundleError {
    /// A problem with the whole file.
    fn file(problem: impl Into<String>) -> Self {
        Self {
            vm: None,
            link: None,
            problem: problem.into(),
        }
    }

    /// A problem with VM `vm`.
    fn vm(vm: &str, problem: impl Into<String>) -> Self {
        Self {
            vm: Some(vm.into()),
            link: None,
            problem: problem.into(),
        }
    }

    /// A problem with link `link`.
    fn link(link: &str, problem: impl Into<String>) -> Self {
        Self {
            vm: None,
            link: Some(link.into()),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.vm, &self.link) {
            (Some(vm), _) => write!(f, "bundle: vm '{vm}': {}", self.problem),
            (None, Some(link)) => write!(f, "bundle: link '{link}': {}", self.problem),
            (None, None) => write!(f, "bundle: {}", self.problem),
        }
    }
}

impl core::error::Error for BundleError {}

/// Parses and validates a bundle. `bytes` may extend past the blob's `totalsize` and need not be
/// aligned (an unaligned bundle is copied once while it is read; the result still borrows
/// `bytes`). `Err` only when the file is unusable as a whole: not a device tree, another
/// `compatible`, no `/vms`.
pub fn parse<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Bundle<'a>, BundleError> {
    if let Some(what) = not_a_dtb(bytes) {
        return Err(BundleError::file(what));
    }
    let mut copy = Vec::new();
    let blob = aligned(bytes, &mut copy);
    let at = blob.as_ptr_range();
    let addresses = at.start.addr()..at.end.addr();
    let read =
        with_tree(blob, |tree| Ok(manifest::read(tree, addresses, limits))).map_err(|e| {
            // What fdt-rs says of a node name it cannot read: the likely cause in a bundle.
            let hint = match e.problem {
                "malformed structure block" => {
                    " (a node name longer than 29 characters, or a corrupt file?)"
                }
                _ => "",
            };
            BundleError::file(format!("not a usable device tree: {}{hint}", e.problem))
        })??;
    let (kept, mut errors) = check::across(read.vms, limits);
    let (kept, owner_errors) = check::schedulers(kept);
    errors.extend(owner_errors);
    errors.extend(read.errors);

    let mut vms = Vec::with_capacity(kept.len());
    for vm in kept {
        let kernel = bytes.get(vm.kernel.clone());
        let initrd = vm.initrd.clone().map(|r| bytes.get(r));
        match (kernel, initrd) {
            (Some(kernel), None | Some(Some(_))) => vms.push(VmSpec {
                kernel: KernelImage {
                    bytes: kernel,
                    text_offset: vm.text_offset,
                    image_size: vm.image_size,
                },
                initrd: initrd.flatten(),
                name: vm.name,
                bootargs: vm.bootargs,
                memory_base: vm.memory_base.unwrap_or(DEFAULT_MEMORY_BASE),
                memory_base_explicit: vm.memory_base.is_some(),
                memory_size: vm.memory_size,
                vcpus: vm.vcpus,
                priority: vm.priority,
                timeslice_us: vm.timeslice_us,
                console: vm.console,
                critical: vm.critical,
                capabilities: vm.capabilities,
                object_memory: vm.object_memory,
                devices: vm.devices,
                scheduled_by: vm.scheduled_by,
            }),
            // Unreachable: the spans were measured in a copy of `bytes`.
            _ => errors.push((
                vm.order,
                BundleError::vm(&vm.name, "images outside the bundle"),
            )),
        }
    }

    // Links last, against the final list, so that their indices are right.
    let started: Vec<&str> = vms.iter().map(|v| v.name.as_str()).collect();
    let (links, link_errors) = links::resolve(read.links, &started, &read.vm_nodes);
    errors.extend(link_errors);
    errors.sort_by_key(|(order, _)| *order);
    let errors = errors.into_iter().map(|(_, e)| e).collect();
    Ok(Bundle { vms, links, errors })
}

const FDT_MAGIC: [u8; 4] = [0xd0, 0x0d, 0xfe, 0xed];

/// Why `bytes` is not a device tree at all, naming what it looks like instead; `None` if it
/// starts with the FDT magic.
fn not_a_dtb(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(&FDT_MAGIC) {
        return None;
    }
    let looks_like = if bytes.starts_with(&[0x1f, 0x8b]) {
        "gzip data"
    } else if bytes.starts_with(b"0707") {
        "a cpio archive (a plain initramfs?)"
    } else if bytes.get(image::MAGIC_OFFSET..image::MAGIC_OFFSET + 4) == Some(&image::MAGIC[..]) {
        "an arm64 kernel Image"
    } else if bytes.is_empty() {
        "empty"
    } else {
        "no device tree magic 0xd00dfeed"
    };
    Some(format!(
        "not a boot bundle ({looks_like}): build one with dtc, see docs/configuration.md"
    ))
}

/// `bytes` up to the blob's `totalsize`, at a 4-byte aligned address: `bytes` itself if it is
/// aligned, else a copy made in `copy`.
fn aligned<'b>(bytes: &'b [u8], copy: &'b mut Vec<u8>) -> &'b [u8] {
    if bytes.as_ptr().addr().is_multiple_of(4) {
        return bytes;
    }
    let total = bytes
        .get(4..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_be_bytes) as usize;
    let src = bytes.get(..total).unwrap_or(bytes);
    *copy = vec![0; src.len() + 3];
    let skip = copy.as_ptr().addr().wrapping_neg() % 4;
    let end = skip + src.len();
    match copy.get_mut(skip..end) {
        Some(dst) => dst.copy_from_slice(src),
        None => return bytes,
    }
    copy.get(skip..end).unwrap_or(bytes)
}

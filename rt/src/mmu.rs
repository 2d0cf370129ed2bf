//! The stage-1 identity map `entry.S` builds, and what tests may change in it.
//!
//! 4 KiB granule, 39-bit VAs (T0SZ = 25), one TTBR0 level-1 table of 1 GiB blocks:
//! index 0 `[0, 1G)` Device-nGnRE (GIC, UART), the blocks of guest RAM Normal write-back, all
//! others invalid. TTBR1 walks are disabled (EPD1), so upper-half VAs never translate.
//!
//! Guest RAM is wherever the VM's device tree says (`/memory`), at 1 GiB or above: `entry.S`
//! maps the block the image was loaded in, then the runtime adds the blocks of the boot
//! information, the device tree and the rest of RAM with [`map_ram`] before reading them. Those
//! blocks and index 0 are fixed ([`is_fixed`]); [`map_block`] adds a block at another index,
//! e.g. to make a VA whose stage-1 translation is valid but leads to an IPA without RAM.

use core::arch::asm;
use core::ptr;
use core::sync::atomic::{AtomicU64, Ordering};

/// Size of one level-1 block.
pub const BLOCK_SIZE: u64 = 1 << 30;
/// Entries of the level-1 table (39-bit VAs).
pub const ENTRIES: usize = 512;
/// The device block, which `entry.S` maps (and [`map_block`] refuses to change).
pub const DEVICE_INDEX: usize = 0;
/// A VA in TTBR0's range whose level-1 entry is invalid (index 64).
pub const UNMAPPED_VA: u64 = 0x10_0000_0000;
/// A VA past TTBR0's 39-bit range (not in TTBR1's either): no translation.
pub const OUT_OF_RANGE_VA: u64 = 0x0000_8000_0000_0000;
/// A VA in the TTBR1 half, whose walks are disabled.
pub const TTBR1_VA: u64 = 0xffff_0000_0000_0000;

/// Memory type of a block [`map_block`] adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Memory {
    /// Device-nGnRE, never executable (MAIR index 0).
    Device,
    /// Normal write-back, inner shareable (MAIR index 1).
    Normal,
}

/// Valid block, access flag.
const BLOCK: u64 = 0x401;
const ATTR_NORMAL: u64 = (1 << 2) | (3 << 8);
/// PXN and UXN.
const XN: u64 = (1 << 53) | (1 << 54);

unsafe extern "C" {
    /// The level-1 table (`entry.S`), 4 KiB aligned.
    static mut rt_l1_table: [u64; ENTRIES];
    /// The first byte of the image (`linker.ld`): where it was loaded, once relocated.
    static __image_start: u8;
}

/// One bit per level-1 index: the blocks of RAM the runtime mapped (and [`map_block`] refuses
/// to change).
static RAM_BLOCKS: [AtomicU64; ENTRIES / 64] = [const { AtomicU64::new(0) }; ENTRIES / 64];

/// The address the image was loaded at (its first byte, the Image header): the guest's RAM base
/// when the loader used text_offset 0, as Wurley does.
pub fn image_base() -> u64 {
    // The address of a linker symbol, PC-relative in this position-independent image: taking
    // it reads nothing.
    (&raw const __image_start) as u64
}

/// Whether level-1 entry `index` is one the runtime depends on: the device block or a block
/// of RAM.
pub fn is_fixed(index: usize) -> bool {
    index == DEVICE_INDEX
        || RAM_BLOCKS
            .get(index / 64)
            .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (index % 64)) != 0)
}

/// Why [`map_ram`] could not map a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotMappable;

/// Map the 1 GiB blocks that hold `[start, start + len)` as identity Normal memory (RAM: the
/// image, the device tree, the boot information) and make them fixed. Refuses a range that
/// wraps, touches the device block or reaches past the 39-bit VA range.
pub fn map_ram(start: u64, len: u64) -> Result<(), NotMappable> {
    let end = start.checked_add(len.max(1)).ok_or(NotMappable)?;
    let first = usize::try_from(start / BLOCK_SIZE).map_err(|_| NotMappable)?;
    let last = usize::try_from(end.div_ceil(BLOCK_SIZE)).map_err(|_| NotMappable)?;
    if first == DEVICE_INDEX || last > ENTRIES {
        return Err(NotMappable);
    }
    for index in first..last {
        if is_fixed(index) {
            continue;
        }
        write_entry(index, block_va(index) | ATTR_NORMAL | BLOCK);
        if let Some(w) = RAM_BLOCKS.get(index / 64) {
            w.fetch_or(1 << (index % 64), Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Record the block `entry.S` mapped for the image as RAM (called once, first thing in
/// `rt_start`).
pub(crate) fn init() {
    let index = (image_base() / BLOCK_SIZE) as usize;
    if let Some(w) = RAM_BLOCKS.get(index / 64) {
        w.fetch_or(1 << (index % 64), Ordering::Relaxed);
    }
}

/// The VA of level-1 block `index`.
pub const fn block_va(index: usize) -> u64 {
    index as u64 * BLOCK_SIZE
}

/// Why a block was not (un)mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// `index` is past the table or fixed ([`is_fixed`]: the device block or RAM).
    Index,
    /// `ipa` is not 1 GiB aligned or is past 48 bits.
    Address,
}

fn set_entry(index: usize, value: u64) -> Result<(), MapError> {
    if index >= ENTRIES || is_fixed(index) {
        return Err(MapError::Index);
    }
    write_entry(index, value);
    Ok(())
}

/// Write level-1 entry `index` (nothing if it is past [`ENTRIES`]) and make the change visible
/// to every vCPU. Callers never change an entry the running code depends on: [`set_entry`] refuses fixed
/// ones, [`map_ram`] only writes blocks that are not fixed yet.
fn write_entry(index: usize, value: u64) {
    if index >= ENTRIES {
        return;
    }
    // SAFETY: the table is only written here and by entry.S before Rust runs; each write is
    // one aligned 64-bit store (so vCPUs sharing the table never see half an entry), and
    // `index` is in bounds (checked above) and is not an entry the running code depends on.
    // The hardware walkers read it; the inner-shareable TLB maintenance below makes the
    // change visible to every vCPU.
    unsafe {
        let table = &raw mut rt_l1_table;
        ptr::write_volatile((table as *mut u64).add(index), value);
        asm!(
            "dsb ishst",
            "tlbi vmalle1is",
            "dsb ish",
            "isb",
            options(nostack)
        );
    }
}

/// Map VA block `index` (1 GiB at [`block_va`]) to `ipa` (1 GiB aligned) as `memory`.
pub fn map_block(index: usize, ipa: u64, memory: Memory) -> Result<u64, MapError> {
    if !ipa.is_multiple_of(BLOCK_SIZE) || ipa >> 48 != 0 {
        return Err(MapError::Address);
    }
    let attrs = match memory {
        Memory::Device => XN,
        Memory::Normal => ATTR_NORMAL,
    };
    set_entry(index, ipa | attrs | BLOCK)?;
    Ok(block_va(index))
}

/// Make VA block `index` invalid again.
pub fn unmap_block(index: usize) -> Result<(), MapError> {
    set_entry(index, 0)
}

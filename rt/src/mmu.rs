//! The stage-1 identity map `entry.S` builds, and what tests may change in it.
//!
//! 4 KiB granule, 39-bit VAs (T0SZ = 25), one TTBR0 level-1 table of 1 GiB blocks:
//! index 0 `[0, 1G)` Device-nGnRE (GIC, UART), index 1 `[1G, 2G)` Normal write-back (guest
//! RAM at 0x4000_0000), all others invalid. TTBR1 walks are disabled (EPD1), so upper-half
//! VAs never translate. [`map_block`] adds a block at another index, e.g. to make a VA whose
//! stage-1 translation is valid but leads to an IPA without RAM.

use core::arch::asm;
use core::ptr;

/// Size of one level-1 block.
pub const BLOCK_SIZE: u64 = 1 << 30;
/// Entries of the level-1 table (39-bit VAs).
pub const ENTRIES: usize = 512;
/// Indices `entry.S` maps (and [`map_block`] refuses to change).
pub const FIXED_INDICES: [usize; 2] = [0, 1];
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
}

/// The VA of level-1 block `index`.
pub const fn block_va(index: usize) -> u64 {
    index as u64 * BLOCK_SIZE
}

/// Why a block was not (un)mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// `index` is past the table or one of [`FIXED_INDICES`].
    Index,
    /// `ipa` is not 1 GiB aligned or is past 48 bits.
    Address,
}

fn set_entry(index: usize, value: u64) -> Result<(), MapError> {
    if index >= ENTRIES || FIXED_INDICES.contains(&index) {
        return Err(MapError::Index);
    }
    // SAFETY: the table is only written here and by entry.S before Rust runs; each write is
    // one aligned 64-bit store (so vCPUs sharing the table never see half an entry), and
    // `index` is in bounds and is not an entry the running code depends on. The hardware
    // walkers read it; the inner-shareable TLB maintenance below makes the change visible to
    // every vCPU.
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
    Ok(())
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

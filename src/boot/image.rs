//! Where the loader put the image: the linker symbols turned into physical ranges.

use crate::arch::stage1::ImageLayout;
use crate::mm::addr::PhysRange;

unsafe extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __data_end: u8;
    fn secondary_entry();
}

fn addr(sym: *const u8) -> u64 {
    sym as u64
}

fn range(start: *const u8, end: *const u8) -> PhysRange {
    PhysRange::new(addr(start), addr(end)).unwrap_or_default()
}

/// The loaded image's sections (the image runs where it was loaded, identity mapped).
pub fn layout() -> ImageLayout {
    ImageLayout {
        text: range(&raw const __image_start, &raw const __text_end),
        rodata: range(&raw const __rodata_start, &raw const __rodata_end),
        data: range(&raw const __data_start, &raw const __data_end),
    }
}

/// Physical address of the secondary CPUs' entry point in `boot/entry.S`.
pub fn secondary_entry_point() -> u64 {
    secondary_entry as *const () as u64
}

//! [`KernelImage`]: an arm64 Linux `Image` and the two header fields that place it in guest
//! memory (Linux `Documentation/arch/arm64/booting.rst`).
//!
//! The header is the first 64 bytes, little endian:
//!
//! | Offset | Field | Checked |
//! |--------|-------|---------|
//! | 0x08 | `text_offset` | a 4 KiB multiple below 2 MiB |
//! | 0x10 | `image_size` | 0 (kernels before 3.17: the file size counts), else at least the file size |
//! | 0x18 | `flags` | bit 0 clear: little endian |
//! | 0x38 | `magic` | `"ARM\x64"` |
//!
//! Compressed kernels (a gzip `vmlinuz`, an EFI zboot image) are recognised and refused with a
//! hint: the hypervisor does not decompress.

use alloc::format;
use alloc::string::String;
use core::fmt;

/// The arm64 `Image` magic at [`MAGIC_OFFSET`].
pub const MAGIC: [u8; 4] = *b"ARM\x64";
/// Where the magic is.
pub const MAGIC_OFFSET: usize = 0x38;
/// Length of the header.
pub const HEADER_LEN: usize = 64;
/// The alignment of the base the kernel is loaded above (at `base + text_offset`).
pub const LOAD_ALIGN: u64 = 2 << 20;

const PAGE: u64 = 4096;
const TEXT_OFFSET: usize = 0x08;
const IMAGE_SIZE: usize = 0x10;
const FLAGS: usize = 0x18;
const FLAG_BIG_ENDIAN: u64 = 1;

/// A validated arm64 Linux `Image`, borrowed from the bundle.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KernelImage<'a> {
    /// The whole file.
    pub bytes: &'a [u8],
    /// Where the image goes above a 2 MiB-aligned base (header offset 0x08).
    pub text_offset: u64,
    /// Bytes the kernel occupies from `text_offset` on, BSS included: the header's `image_size`
    /// or, if that is 0 (kernels before 3.17), the file size rounded up to 4 KiB.
    pub image_size: u64,
}

impl<'a> KernelImage<'a> {
    /// Checks the header of `bytes`. The error says what is wrong, e.g. `"gzip-compressed: ..."`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        if bytes.starts_with(&[0x1f, 0x8b]) {
            return Err(String::from(
                "gzip-compressed: the bundle needs the uncompressed arm64 Image (gunzip the vmlinuz)",
            ));
        }
        if bytes.starts_with(b"MZ") && bytes.get(4..8) == Some(b"zimg") {
            return Err(String::from(
                "an EFI zboot (compressed) image: the bundle needs the uncompressed arm64 Image",
            ));
        }
        let len = bytes.len();
        if len < HEADER_LEN {
            return Err(format!(
                "{len} bytes, too short for an arm64 Image header ({HEADER_LEN} bytes)"
            ));
        }
        if bytes.get(MAGIC_OFFSET..MAGIC_OFFSET + MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(String::from(
                "no arm64 Image magic \"ARM\\x64\" at offset 0x38: not an arm64 Linux Image",
            ));
        }
        let field = |off: usize| {
            bytes
                .get(off..off + 8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_le_bytes)
        };
        let (text_offset, image_size) = (field(TEXT_OFFSET), field(IMAGE_SIZE));
        if field(FLAGS) & FLAG_BIG_ENDIAN != 0 {
            return Err(String::from(
                "big-endian Image (header flags bit 0): only little-endian kernels run",
            ));
        }
        if !text_offset.is_multiple_of(PAGE) || text_offset >= LOAD_ALIGN {
            return Err(format!(
                "text_offset {text_offset:#x} is not a multiple of 4 KiB below 2 MiB"
            ));
        }
        let file = len as u64;
        let image_size = match image_size {
            0 => file.next_multiple_of(PAGE),
            size if size < file => {
                return Err(format!(
                    "image_size {size:#x} is smaller than the file ({file:#x} bytes)"
                ));
            }
            size => size,
        };
        Ok(Self {
            bytes,
            text_offset,
            image_size,
        })
    }

    /// Bytes from the 2 MiB-aligned base to the end of the kernel: `text_offset + image_size`.
    pub fn footprint(&self) -> u64 {
        self.text_offset.saturating_add(self.image_size)
    }
}

impl fmt::Debug for KernelImage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelImage")
            .field("len", &self.bytes.len())
            .field("text_offset", &format_args!("{:#x}", self.text_offset))
            .field("image_size", &format_args!("{:#x}", self.image_size))
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// A header-only Image: text_offset, image_size, flags.
    fn image(len: usize, text_offset: u64, image_size: u64, flags: u64) -> Vec<u8> {
        let mut h = vec![0u8; len];
        h[TEXT_OFFSET..TEXT_OFFSET + 8].copy_from_slice(&text_offset.to_le_bytes());
        h[IMAGE_SIZE..IMAGE_SIZE + 8].copy_from_slice(&image_size.to_le_bytes());
        h[FLAGS..FLAGS + 8].copy_from_slice(&flags.to_le_bytes());
        h[MAGIC_OFFSET..MAGIC_OFFSET + 4].copy_from_slice(&MAGIC);
        h
    }

    #[test]
    fn header_fields_are_read() {
        let bytes = image(0x1000, 0x8_0000, 0x2_0000, 0xa);
        let k = KernelImage::parse(&bytes).unwrap();
        assert_eq!((k.text_offset, k.image_size), (0x8_0000, 0x2_0000));
        assert_eq!(k.footprint(), 0xa_0000);
        assert_eq!(k.bytes.len(), 0x1000);
    }

    #[test]
    fn zero_image_size_counts_the_file_rounded_to_pages() {
        let bytes = image(0x1001, 0, 0, 0);
        assert_eq!(KernelImage::parse(&bytes).unwrap().image_size, 0x2000);
        let bytes = image(HEADER_LEN, 0, 0, 0);
        assert_eq!(KernelImage::parse(&bytes).unwrap().image_size, 0x1000);
    }

    #[test]
    fn bad_headers_say_why() {
        let err = |b: &[u8]| KernelImage::parse(b).unwrap_err();
        assert!(err(&[0x1f, 0x8b, 8, 0]).starts_with("gzip-compressed"));
        let mut zboot = image(0x100, 0, 0, 0);
        zboot[..2].copy_from_slice(b"MZ");
        zboot[4..8].copy_from_slice(b"zimg");
        assert!(err(&zboot).starts_with("an EFI zboot"));
        assert_eq!(
            err(&image(0x100, 0, 0, 0)[..63]),
            "63 bytes, too short for an arm64 Image header (64 bytes)"
        );
        let mut bad = image(0x100, 0, 0, 0);
        bad[MAGIC_OFFSET + 3] = b'e';
        assert!(err(&bad).starts_with("no arm64 Image magic"));
        assert!(err(&image(0x100, 0, 0, 0xb)).starts_with("big-endian"));
        assert_eq!(
            err(&image(0x100, 0x1234, 0, 0)),
            "text_offset 0x1234 is not a multiple of 4 KiB below 2 MiB"
        );
        assert!(err(&image(0x100, 2 << 20, 0, 0)).starts_with("text_offset 0x200000"));
        assert_eq!(
            err(&image(0x100, 0, 0x80, 0)),
            "image_size 0x80 is smaller than the file (0x100 bytes)"
        );
    }
}

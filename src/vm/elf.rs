//! Loading the Resource Manager's ELF image: the loadable segments of a little-endian AArch64
//! ELF64 executable, checked against the guest memory they must land in.
//!
//! Only what a statically linked EL1 program needs: `PT_LOAD` segments copied to their physical
//! address (`p_paddr`, the guest IPA), `p_memsz - p_filesz` left zero (guest RAM starts zeroed),
//! and the entry point. An executable (`ET_EXEC`) or a static position-independent one
//! (`ET_DYN`, as wurley-rt links the RM) is loaded the same way, at its link addresses: a PIE
//! applies its own relocations at start-up (delta 0 there), so nothing here reads them.
//! Anything else in the file is ignored; anything malformed is an error, never a panic.

/// Why an ELF image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Not an ELF64 little-endian AArch64 executable (`ET_EXEC` or `ET_DYN`).
    NotAarch64Elf,
    /// A header or segment lies outside the file.
    Truncated,
    /// A segment or the entry point lies outside `[base, base + size)`.
    OutsideMemory,
}

/// One segment to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Guest physical address.
    pub ipa: u64,
    /// Bytes to copy there.
    pub bytes: &'a [u8],
    /// Size in memory (the rest after `bytes` is zero).
    pub mem_size: u64,
}

/// A parsed image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image<'a> {
    /// Entry point (guest physical).
    pub entry: u64,
    /// Loadable segments.
    pub segments: alloc::vec::Vec<Segment<'a>>,
}

const PT_LOAD: u32 = 1;
const EM_AARCH64: u16 = 183;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

/// Parse `file` for loading into guest memory `[base, base + size)`.
pub fn parse(file: &[u8], base: u64, size: u64) -> Result<Image<'_>, ElfError> {
    let ident_ok = file.get(..6) == Some(&[0x7f, b'E', b'L', b'F', 2, 1]);
    let machine = u16_at(file, 18);
    let kind = u16_at(file, 16);
    let kind_ok = kind == Some(ET_EXEC) || kind == Some(ET_DYN);
    if !ident_ok || machine != Some(EM_AARCH64) || !kind_ok {
        return Err(ElfError::NotAarch64Elf);
    }
    let entry = u64_at(file, 24).ok_or(ElfError::Truncated)?;
    let phoff = u64_at(file, 32).ok_or(ElfError::Truncated)?;
    let phentsize = u16_at(file, 54).ok_or(ElfError::Truncated)?;
    let phnum = u16_at(file, 56).ok_or(ElfError::Truncated)?;
    if phentsize < 56 {
        return Err(ElfError::Truncated);
    }
    let end = base.checked_add(size).ok_or(ElfError::OutsideMemory)?;
    let inside = |ipa: u64, len: u64| ipa >= base && ipa.checked_add(len).is_some_and(|e| e <= end);
    let mut segments = alloc::vec::Vec::new();
    for i in 0..u64::from(phnum) {
        let off = phoff
            .checked_add(i * u64::from(phentsize))
            .and_then(|o| usize::try_from(o).ok())
            .ok_or(ElfError::Truncated)?;
        let ph = file.get(off..off + 56).ok_or(ElfError::Truncated)?;
        if u32_at(ph, 0) != Some(PT_LOAD) {
            continue;
        }
        let (Some(offset), Some(paddr), Some(filesz), Some(memsz)) = (
            u64_at(ph, 8),
            u64_at(ph, 24),
            u64_at(ph, 32),
            u64_at(ph, 40),
        ) else {
            return Err(ElfError::Truncated);
        };
        if memsz == 0 {
            continue;
        }
        if filesz > memsz || !inside(paddr, memsz) {
            return Err(ElfError::OutsideMemory);
        }
        let start = usize::try_from(offset).map_err(|_| ElfError::Truncated)?;
        let len = usize::try_from(filesz).map_err(|_| ElfError::Truncated)?;
        let bytes = file
            .get(start..start.checked_add(len).ok_or(ElfError::Truncated)?)
            .ok_or(ElfError::Truncated)?;
        segments.push(Segment {
            ipa: paddr,
            bytes,
            mem_size: memsz,
        });
    }
    if !inside(entry, 4) {
        return Err(ElfError::OutsideMemory);
    }
    Ok(Image { entry, segments })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// A minimal ELF with one PT_LOAD of `data` at `paddr` (memsz `memsz`), entry `entry`.
    fn elf(paddr: u64, data: &[u8], memsz: u64, entry: u64) -> Vec<u8> {
        elf_of_kind(ET_EXEC, paddr, data, memsz, entry)
    }

    /// [`elf`] with ELF type `kind`.
    fn elf_of_kind(kind: u16, paddr: u64, data: &[u8], memsz: u64, entry: u64) -> Vec<u8> {
        let mut f = vec![0u8; 64 + 56];
        f[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1]);
        f[16..18].copy_from_slice(&kind.to_le_bytes());
        f[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes());
        f[24..32].copy_from_slice(&entry.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&1u16.to_le_bytes());
        let ph = 64;
        f[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        f[ph + 8..ph + 16].copy_from_slice(&120u64.to_le_bytes());
        f[ph + 24..ph + 32].copy_from_slice(&paddr.to_le_bytes());
        f[ph + 32..ph + 40].copy_from_slice(&(data.len() as u64).to_le_bytes());
        f[ph + 40..ph + 48].copy_from_slice(&memsz.to_le_bytes());
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn loads_a_segment() {
        let f = elf(0x4000_0000, b"code", 0x1000, 0x4000_0000);
        let img = parse(&f, 0x4000_0000, 0x100_0000).unwrap();
        assert_eq!(img.entry, 0x4000_0000);
        assert_eq!(
            img.segments,
            vec![Segment {
                ipa: 0x4000_0000,
                bytes: b"code",
                mem_size: 0x1000
            }]
        );
    }

    #[test]
    fn loads_a_static_pie_at_its_link_address() {
        let f = elf_of_kind(ET_DYN, 0x4000_0000, b"code", 0x1000, 0x4000_0000);
        let img = parse(&f, 0x4000_0000, 0x100_0000).unwrap();
        assert_eq!(img.entry, 0x4000_0000);
        assert_eq!(img.segments.len(), 1);
        assert_eq!(img.segments[0].ipa, 0x4000_0000);
    }

    #[test]
    fn refuses_bad_images() {
        let good = elf(0x4000_0000, b"code", 0x1000, 0x4000_0000);
        assert_eq!(parse(b"MZ", 0, 1), Err(ElfError::NotAarch64Elf));
        // ET_REL (an object file) and ET_CORE are not loadable.
        for kind in [1u16, 4] {
            assert_eq!(
                parse(
                    &elf_of_kind(kind, 0x4000_0000, b"code", 0x1000, 0x4000_0000),
                    0x4000_0000,
                    0x10_0000
                ),
                Err(ElfError::NotAarch64Elf)
            );
        }
        assert_eq!(
            parse(&good[..70], 0x4000_0000, 0x1000),
            Err(ElfError::Truncated)
        );
        assert_eq!(
            parse(&good[..121], 0x4000_0000, 0x1000),
            Err(ElfError::Truncated)
        );
        assert_eq!(
            parse(&good, 0x4000_0000, 0x800),
            Err(ElfError::OutsideMemory)
        );
        let wrong_entry = elf(0x4000_0000, b"code", 0x1000, 0x1000);
        assert_eq!(
            parse(&wrong_entry, 0x4000_0000, 0x10_0000),
            Err(ElfError::OutsideMemory)
        );
        let wrapping = elf(u64::MAX - 2, b"code", 0x1000, 0x4000_0000);
        assert_eq!(
            parse(&wrapping, 0x4000_0000, 0x10_0000),
            Err(ElfError::OutsideMemory)
        );
        // Every prefix of a good image fails cleanly.
        for n in 0..good.len() {
            assert!(parse(&good[..n], 0x4000_0000, 0x10_0000).is_err());
        }
    }
}

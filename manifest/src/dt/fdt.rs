//! The one place that hands raw bytes to `fdt-rs`: header and layout checks, 4-byte alignment
//! (copying the blob if needed), the `unsafe` `DevTree` construction, and the walk of the
//! structure block into a [`Tree`].
#![allow(unsafe_code)]

use alloc::vec::Vec;
use fdt_rs::base::DevTree;
use fdt_rs::base::parse::ParsedTok;
use fdt_rs::prelude::*;

use super::error::DtError;
use super::tree::{Tree, TreeBuilder};

const FDT_MAGIC: u32 = 0xd00d_feed;
const HEADER_LEN: usize = 40;

fn be32(buf: &[u8], off: usize) -> Option<u32> {
    let bytes = buf.get(off..off.checked_add(4)?)?;
    bytes.try_into().ok().map(u32::from_be_bytes)
}

fn be64(buf: &[u8], off: usize) -> Option<u64> {
    let bytes = buf.get(off..off.checked_add(8)?)?;
    bytes.try_into().ok().map(u64::from_be_bytes)
}

/// Header field `index` (in 32-bit words) as an offset or size.
fn field(buf: &[u8], index: usize) -> Result<usize, DtError> {
    be32(buf, index * 4)
        .map(|v| v as usize)
        .ok_or(DtError::tree("blob shorter than the FDT header"))
}

/// Checks `dtb`, indexes it and runs `f` on the result. `dtb` may be longer than the header's
/// `totalsize` (trailing bytes are ignored) and need not be 4-byte aligned.
pub fn with_tree<R>(
    dtb: &[u8],
    f: impl FnOnce(&Tree<'_>) -> Result<R, DtError>,
) -> Result<R, DtError> {
    if be32(dtb, 0) != Some(FDT_MAGIC) {
        return Err(DtError::tree("not a flattened device tree (bad magic)"));
    }
    let total = field(dtb, 1)?;
    let dtb = dtb
        .get(..total)
        .filter(|b| b.len() >= HEADER_LEN)
        .ok_or(DtError::tree("blob shorter than the header's totalsize"))?;
    if dtb.as_ptr().addr() % 4 == 0 {
        return f(&build(dtb)?);
    }
    let words: Vec<u32> = dtb
        .chunks(4)
        .map(|chunk| {
            let mut word = [0u8; 4];
            word.iter_mut().zip(chunk).for_each(|(w, b)| *w = *b);
            u32::from_ne_bytes(word)
        })
        .collect();
    // SAFETY: `words` is a live, initialised allocation of `size_of_val(words)` bytes; `u8` has
    // no alignment or validity requirement, and the slice borrows `words`, so it cannot outlive
    // or alias a mutation of it.
    let bytes = unsafe {
        core::slice::from_raw_parts(words.as_ptr().cast::<u8>(), size_of_val(words.as_slice()))
    };
    f(&build(bytes.get(..total).unwrap_or(bytes))?)
}

/// Indexes a 4-byte aligned blob of exactly `totalsize` bytes.
fn build(buf: &[u8]) -> Result<Tree<'_>, DtError> {
    let bad = DtError::tree;
    let (version, rsvmap) = (field(buf, 5)?, field(buf, 4)?);
    let (off_struct, off_strings) = (field(buf, 2)?, field(buf, 3)?);
    let (size_strings, size_struct) = (field(buf, 8)?, field(buf, 9)?);
    if version < 17 {
        return Err(bad("unsupported FDT version (before 17)"));
    }
    let struct_end = off_struct
        .checked_add(size_struct)
        .filter(|end| *end <= buf.len() && off_struct % 4 == 0)
        .ok_or(bad("structure block outside the blob or misaligned"))?;
    let strings = off_strings
        .checked_add(size_strings)
        .and_then(|end| buf.get(off_strings..end))
        .ok_or(bad("strings block outside the blob"))?;
    if rsvmap % 8 != 0 {
        return Err(bad("memory reservation block misaligned"));
    }
    let memreserve = reservations(buf, rsvmap)?;

    // SAFETY: `buf` starts on a 4-byte boundary (checked or copied by `with_tree`) and is exactly
    // the header's `totalsize` long, which is all `DevTree::new` asks; the header itself lies
    // inside `buf` (HEADER_LEN checked) and the block offsets were bounds-checked above.
    let dt = unsafe { DevTree::new(buf) }.map_err(|_| bad("header rejected by fdt-rs"))?;
    let mut tokens = dt.parse_iter();
    let mut tree = TreeBuilder::new(strings);
    loop {
        // fdt-rs only debug-asserts that a token fits; stay inside the structure block (and,
        // as it asserts, strictly inside the buffer) so a malformed blob is an error instead.
        let fits = tokens
            .offset
            .checked_add(4)
            .is_some_and(|e| e <= struct_end && e < buf.len());
        if !fits {
            return Err(bad("structure block has no FDT_END token"));
        }
        match tokens.next() {
            Ok(Some(ParsedTok::BeginNode(node))) => tree.begin(node.name)?,
            Ok(Some(ParsedTok::EndNode)) => tree.end()?,
            Ok(Some(ParsedTok::Prop(prop))) => tree.prop(prop.name_offset, prop.prop_buf)?,
            Ok(Some(ParsedTok::Nop)) => {}
            Ok(None) => return tree.finish(memreserve),
            Err(_) => return Err(bad("malformed structure block")),
        }
    }
}

/// The `(address, size)` entries of the memory reservation block at `off`.
fn reservations(buf: &[u8], mut off: usize) -> Result<Vec<(u64, u64)>, DtError> {
    let mut entries = Vec::new();
    loop {
        let addr = be64(buf, off);
        let size = off.checked_add(8).and_then(|o| be64(buf, o));
        match (addr, size) {
            (Some(0), Some(0)) => return Ok(entries),
            (Some(a), Some(s)) => entries.push((a, s)),
            _ => return Err(DtError::tree("memory reservation block has no terminator")),
        }
        off = off.saturating_add(16);
    }
}

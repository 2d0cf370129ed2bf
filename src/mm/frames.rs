//! The physical frame allocator: owns every page of RAM that is not the hypervisor image, the DTB,
//! the initrd or a reserved region, and hands it out in page-aligned [`PhysRange`]s for page
//! tables, CPU stacks and guest memory.
//!
//! Free memory is a sorted, coalesced list of page-aligned ranges, built once at boot by
//! [`FrameAllocator::from_ram`]. Allocation is first fit from the lowest address; an aligned
//! allocation prefers a placement that does not split a free range in two, so big aligned chunks do
//! not leave needless small fragments behind. Every address computation is overflow-checked: bad
//! requests return a [`FrameError`], never panic.

use alloc::vec::Vec;
use core::fmt;

use super::addr::{PAGE_SIZE, PhysRange};

/// Why the frame allocator refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// No free range can hold the request (or the free list itself could not grow).
    OutOfMemory,
    /// The request is empty or does not fit in the address space.
    BadRange,
    /// The range is not allocated memory of this allocator: (partly) free already, as in a double
    /// free, or outside the memory it manages.
    NotAllocated,
    /// An address or size is not a multiple of [`PAGE_SIZE`], or an alignment is not a power of two
    /// of at least [`PAGE_SIZE`].
    Misaligned,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::OutOfMemory => "out of physical memory",
            Self::BadRange => "empty or overflowing physical range",
            Self::NotAllocated => "range is free already or not managed by the frame allocator",
            Self::Misaligned => "size, address or alignment not page aligned",
        })
    }
}

/// The physical frame allocator. See the [module documentation](self).
#[derive(Debug, Default)]
pub struct FrameAllocator {
    /// Free memory: sorted by address, page aligned, non-empty, neither overlapping nor adjacent.
    free: Vec<PhysRange>,
    /// All memory given to the allocator at construction, in the same form. Only ranges inside
    /// one of these can be freed.
    managed: Vec<PhysRange>,
}

/// `addr` rounded up to `align` (a power of two); `None` past the top of the address space.
fn align_up(addr: u64, align: u64) -> Option<u64> {
    Some(addr.checked_add(align - 1)? & !(align - 1))
}

/// The non-empty range `[start, end)`, if there is one.
fn nonempty(start: u64, end: u64) -> Option<PhysRange> {
    PhysRange::new(start, end).filter(|r| !r.is_empty())
}

/// The smallest range covering `a` and `b` (callers pass touching or overlapping ranges).
fn join(a: PhysRange, b: PhysRange) -> PhysRange {
    // Infallible: max(end) >= a.end >= a.start >= min(start); the fallback is never taken.
    PhysRange::new(a.start().min(b.start()), a.end().max(b.end())).unwrap_or(a)
}

/// `list` with the bytes of `hole` removed from every range.
fn carve(list: &[PhysRange], hole: PhysRange) -> Vec<PhysRange> {
    let mut out = Vec::with_capacity(list.len() + 1);
    for &r in list {
        if r.overlaps(&hole) {
            out.extend(nonempty(r.start(), hole.start()));
            out.extend(nonempty(hole.end(), r.end()));
        } else {
            out.push(r);
        }
    }
    out
}

impl FrameAllocator {
    /// An allocator that owns no memory.
    pub const fn new() -> Self {
        Self {
            free: Vec::new(),
            managed: Vec::new(),
        }
    }

    /// Builds the allocator from the RAM ranges of the device tree (in any order, possibly
    /// overlapping): each is shrunk inwards to page alignment, then every non-empty `exclude` range
    /// widened outwards to page alignment is removed. Exclusions outside RAM are ignored.
    pub fn from_ram(ram: &[PhysRange], exclude: &[PhysRange]) -> Self {
        let mut ram: Vec<PhysRange> = ram
            .iter()
            .map(|r| r.align_in(PAGE_SIZE))
            .filter(|r| !r.is_empty())
            .collect();
        ram.sort_unstable();
        let mut free: Vec<PhysRange> = Vec::with_capacity(ram.len());
        for r in ram {
            match free.last_mut() {
                Some(last) if r.start() <= last.end() => *last = join(*last, r),
                _ => free.push(r),
            }
        }
        for hole in exclude.iter().filter(|e| !e.is_empty()) {
            free = carve(&free, hole.align_out(PAGE_SIZE));
        }
        Self {
            managed: free.clone(),
            free,
        }
    }

    /// Allocates `frames` contiguous pages, first fit from the lowest address.
    pub fn alloc(&mut self, frames: u64) -> Result<PhysRange, FrameError> {
        let size = frames.checked_mul(PAGE_SIZE).ok_or(FrameError::BadRange)?;
        self.alloc_aligned(size, PAGE_SIZE)
    }

    /// Allocates `size` bytes (a non-zero multiple of [`PAGE_SIZE`]) starting at a multiple of
    /// `align` (a power of two, at least [`PAGE_SIZE`]).
    ///
    /// Takes the lowest placement that leaves its free range in at most one piece (the chunk sits
    /// at the bottom or the top of the range); only if there is none does it split the lowest
    /// range that fits into a head and a tail.
    pub fn alloc_aligned(&mut self, size: u64, align: u64) -> Result<PhysRange, FrameError> {
        if size == 0 {
            return Err(FrameError::BadRange);
        }
        if !align.is_power_of_two() || align < PAGE_SIZE || !size.is_multiple_of(PAGE_SIZE) {
            return Err(FrameError::Misaligned);
        }
        let mut split = None;
        let mut whole = None;
        for (i, f) in self.free.iter().enumerate() {
            // Later ranges start higher, so once the placement overflows it does for them too.
            let Some(low) = align_up(f.start(), align) else {
                break;
            };
            let Some(low_end) = low.checked_add(size) else {
                break;
            };
            if low_end > f.end() {
                continue;
            }
            if low == f.start() {
                whole = Some((i, low, low_end));
                break;
            }
            // `low + size <= f.end()`, so `high` lies in `[low, f.end() - size]`: no overflow.
            let high = (f.end() - size) & !(align - 1);
            if f.end() - high == size {
                whole = Some((i, high, f.end()));
                break;
            }
            split.get_or_insert((i, low, low_end));
        }
        let (i, start, end) = whole.or(split).ok_or(FrameError::OutOfMemory)?;
        let taken = PhysRange::new(start, end).ok_or(FrameError::BadRange)?;
        self.take(i, taken)?;
        Ok(taken)
    }

    /// Remove `taken`, which lies inside free range `i`, from the free list: what is left of
    /// range `i` stays free, in one or two pieces.
    fn take(&mut self, i: usize, taken: PhysRange) -> Result<(), FrameError> {
        let f = self.free[i];
        match (
            nonempty(f.start(), taken.start()),
            nonempty(taken.end(), f.end()),
        ) {
            (None, None) => {
                self.free.remove(i);
            }
            (Some(piece), None) | (None, Some(piece)) => self.free[i] = piece,
            (Some(head), Some(tail)) => {
                self.free
                    .try_reserve(1)
                    .map_err(|_| FrameError::OutOfMemory)?;
                self.free[i] = head;
                self.free.insert(i + 1, tail);
            }
        }
        Ok(())
    }

    /// Allocates exactly `range` (page aligned, non-empty), which must lie wholly in free memory:
    /// for RAM that has to sit at a given physical address (an identity-mapped VM).
    pub fn alloc_at(&mut self, range: PhysRange) -> Result<PhysRange, FrameError> {
        if range.is_empty() {
            return Err(FrameError::BadRange);
        }
        if !range.start().is_multiple_of(PAGE_SIZE) || !range.end().is_multiple_of(PAGE_SIZE) {
            return Err(FrameError::Misaligned);
        }
        let i = self
            .free
            .iter()
            .position(|f| f.start() <= range.start() && range.end() <= f.end())
            .ok_or(FrameError::OutOfMemory)?;
        self.take(i, range)?;
        Ok(range)
    }

    /// Returns `range` to the free list, merging it with free neighbours. The range must be page
    /// aligned, lie inside managed memory and not overlap free memory; otherwise nothing changes.
    pub fn free(&mut self, range: PhysRange) -> Result<(), FrameError> {
        if range.is_empty() {
            return Err(FrameError::BadRange);
        }
        if !range.start().is_multiple_of(PAGE_SIZE) || !range.end().is_multiple_of(PAGE_SIZE) {
            return Err(FrameError::Misaligned);
        }
        let m = self.managed.partition_point(|m| m.end() <= range.start());
        if !self
            .managed
            .get(m)
            .is_some_and(|m| m.start() <= range.start() && range.end() <= m.end())
        {
            return Err(FrameError::NotAllocated);
        }
        // Free ranges are sorted and disjoint: only the last one starting below `range` and the
        // first one starting at or above it can overlap or touch it.
        let i = self.free.partition_point(|f| f.start() < range.start());
        let prev = i.checked_sub(1).and_then(|p| self.free.get(p)).copied();
        let next = self.free.get(i).copied();
        if prev.is_some_and(|p| p.overlaps(&range)) || next.is_some_and(|n| n.overlaps(&range)) {
            return Err(FrameError::NotAllocated);
        }
        let prev = prev.filter(|p| p.end() == range.start());
        let next = next.filter(|n| n.start() == range.end());
        match (prev, next) {
            (Some(p), Some(n)) => {
                self.free[i - 1] = join(p, n);
                self.free.remove(i);
            }
            (Some(p), None) => self.free[i - 1] = join(p, range),
            (None, Some(n)) => self.free[i] = join(range, n),
            (None, None) => {
                self.free
                    .try_reserve(1)
                    .map_err(|_| FrameError::OutOfMemory)?;
                self.free.insert(i, range);
            }
        }
        Ok(())
    }

    /// Whether any byte of `range` is memory the allocator manages (RAM), free or allocated.
    pub fn manages_any(&self, range: PhysRange) -> bool {
        self.managed.iter().any(|m| m.overlaps(&range))
    }

    /// Bytes currently free.
    pub fn free_bytes(&self) -> u64 {
        self.free.iter().map(PhysRange::size).sum()
    }

    /// Bytes the allocator manages, free or allocated.
    pub fn total_bytes(&self) -> u64 {
        self.managed.iter().map(PhysRange::size).sum()
    }

    /// The free ranges, in ascending address order, coalesced.
    pub fn free_ranges(&self) -> impl Iterator<Item = PhysRange> + '_ {
        self.free.iter().copied()
    }

    /// Size in bytes of the largest free range (0 if none).
    pub fn largest_free(&self) -> u64 {
        self.free.iter().map(PhysRange::size).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests;

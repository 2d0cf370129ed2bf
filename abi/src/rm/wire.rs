//! Little-endian wire primitives shared by every RM payload file: the [`Encode`] and
//! [`Decode`] traits, [`WireEntry`] for fixed-size array elements, and [`List`], a borrowed
//! view of a counted array that is either still in its wire bytes (after parsing) or a slice
//! of values (before encoding). Also the crate-internal bounds-checked reader and writer.
//!
//! Conventions for every payload type of [`crate::rm`]:
//! * Parsing is exact: a payload whose length differs from what its fixed fields and counts
//!   imply is [`RmError::MsgInvalid`]. Parsers never panic and never allocate.
//! * Reserved fields are written as zero and ignored when parsed, unless the public RM rejects
//!   non-zero values (then so do we, with `MsgInvalid`).
//! * Encoding writes into a caller buffer and returns the length; a buffer shorter than
//!   [`Encode::encoded_len`] is [`RmError::NoMem`], a list longer than its count field can
//!   express is [`RmError::MsgInvalid`].

use core::fmt;

use super::error::RmError;

/// Defines a `#[repr]` enum for a wire value with `ALL`, `from_raw` and `raw`.
macro_rules! wire_enum {
    (
        $(#[$doc:meta])* $name:ident : $repr:ty {
            $( $(#[$vdoc:meta])* $variant:ident = $value:literal, )*
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr($repr)]
        pub enum $name {
            $( $(#[$vdoc])* $variant = $value, )*
        }

        impl $name {
            /// Every value, in wire order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// Decodes a wire value; `None` if undefined.
            pub const fn from_raw(raw: $repr) -> Option<$name> {
                match raw {
                    $( $value => Some($name::$variant), )*
                    _ => None,
                }
            }

            /// The wire value.
            pub const fn raw(self) -> $repr {
                self as $repr
            }
        }
    };
}

pub(crate) use wire_enum;

/// A payload that can be written in its wire form.
pub trait Encode {
    /// The exact number of bytes [`Encode::encode`] writes.
    fn encoded_len(&self) -> usize;

    /// Writes the payload at the start of `out` and returns its length.
    fn encode(&self, out: &mut [u8]) -> Result<usize, RmError>;
}

/// A payload that can be parsed from its wire form, borrowing variable parts from it.
pub trait Decode<'a>: Sized {
    /// Parses exactly `payload` (no trailing bytes allowed); `MsgInvalid` on any mismatch.
    fn decode(payload: &'a [u8]) -> Result<Self, RmError>;
}

/// A fixed-size element of a counted array (ACL, SGL, attribute, VMID, resource entries).
pub trait WireEntry: Copy {
    /// The element's size on the wire.
    const SIZE: usize;

    /// Parses one element from exactly [`WireEntry::SIZE`] bytes.
    fn read(bytes: &[u8]) -> Result<Self, RmError>;

    /// Writes one element into exactly [`WireEntry::SIZE`] bytes.
    fn write(&self, out: &mut [u8]) -> Result<(), RmError>;
}

impl WireEntry for u64 {
    const SIZE: usize = 8;

    fn read(bytes: &[u8]) -> Result<Self, RmError> {
        decode_exact(bytes, |r| r.u64())
    }

    fn write(&self, out: &mut [u8]) -> Result<(), RmError> {
        encode_with(out, Self::SIZE, |w| w.u64(*self)).map(|_| ())
    }
}

/// A counted array of `T`: borrowed wire bytes (from a parser, every element already
/// validated) or a borrowed slice of values (to encode). Two lists are equal when their
/// elements are, whichever form they are in.
pub struct List<'a, T> {
    repr: Repr<'a, T>,
}

enum Repr<'a, T> {
    Wire(&'a [u8]),
    Items(&'a [T]),
}

impl<T> Clone for List<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for List<'_, T> {}

impl<T> Clone for Repr<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Repr<'_, T> {}

impl<T> Default for List<'_, T> {
    fn default() -> Self {
        List {
            repr: Repr::Items(&[]),
        }
    }
}

impl<'a, T: WireEntry> List<'a, T> {
    /// A list of the given values (for encoding).
    pub const fn from_slice(items: &'a [T]) -> Self {
        List {
            repr: Repr::Items(items),
        }
    }

    /// The empty list.
    pub const fn empty() -> Self {
        List {
            repr: Repr::Items(&[]),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self.repr {
            Repr::Wire(bytes) => bytes.len() / T::SIZE,
            Repr::Items(items) => items.len(),
        }
    }

    /// `true` when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element at `index`, if any.
    pub fn get(&self, index: usize) -> Option<T> {
        match self.repr {
            Repr::Wire(bytes) => {
                let start = index.checked_mul(T::SIZE)?;
                let chunk = bytes.get(start..start.checked_add(T::SIZE)?)?;
                T::read(chunk).ok()
            }
            Repr::Items(items) => items.get(index).copied(),
        }
    }

    /// Iterates over the elements by value.
    pub fn iter(&self) -> ListIter<'a, T> {
        ListIter {
            list: *self,
            next: 0,
        }
    }

    /// The size of the elements on the wire (`len() * T::SIZE`, saturating).
    pub fn wire_len(&self) -> usize {
        self.len().saturating_mul(T::SIZE)
    }
}

impl<T: WireEntry + PartialEq> PartialEq for List<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: WireEntry + Eq> Eq for List<'_, T> {}

impl<T: WireEntry + fmt::Debug> fmt::Debug for List<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a, T: WireEntry> IntoIterator for List<'a, T> {
    type Item = T;
    type IntoIter = ListIter<'a, T>;

    fn into_iter(self) -> ListIter<'a, T> {
        self.iter()
    }
}

impl<'a, T: WireEntry> IntoIterator for &List<'a, T> {
    type Item = T;
    type IntoIter = ListIter<'a, T>;

    fn into_iter(self) -> ListIter<'a, T> {
        self.iter()
    }
}

/// Iterator over a [`List`]'s elements.
#[derive(Clone)]
pub struct ListIter<'a, T> {
    list: List<'a, T>,
    next: usize,
}

impl<T: WireEntry> Iterator for ListIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        let item = self.list.get(self.next)?;
        self.next += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.list.len().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl<T: WireEntry> ExactSizeIterator for ListIter<'_, T> {}

/// Bounds-checked little-endian reader; every failure is `MsgInvalid`.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], RmError> {
        let end = self.pos.checked_add(n).ok_or(RmError::MsgInvalid)?;
        let bytes = self.buf.get(self.pos..end).ok_or(RmError::MsgInvalid)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RmError> {
        <[u8; N]>::try_from(self.bytes(N)?).map_err(|_| RmError::MsgInvalid)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, RmError> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, RmError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, RmError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, RmError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<(), RmError> {
        self.bytes(n).map(|_| ())
    }

    /// `count` elements of `T`, each validated now so that [`List::get`] cannot fail later.
    pub(crate) fn list<T: WireEntry>(&mut self, count: usize) -> Result<List<'a, T>, RmError> {
        let len = count.checked_mul(T::SIZE).ok_or(RmError::MsgInvalid)?;
        let bytes = self.bytes(len)?;
        for chunk in bytes.chunks_exact(T::SIZE) {
            T::read(chunk)?;
        }
        Ok(List {
            repr: Repr::Wire(bytes),
        })
    }

    /// A `u16` count, two reserved bytes, then that many elements (the RM's list section).
    pub(crate) fn list_u16<T: WireEntry>(&mut self) -> Result<List<'a, T>, RmError> {
        let count = self.u16()?;
        self.skip(2)?;
        self.list(usize::from(count))
    }

    /// `MsgInvalid` unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), RmError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(RmError::MsgInvalid)
        }
    }
}

/// Runs `f` over `payload` and requires it to consume every byte.
pub(crate) fn decode_exact<'a, T>(
    payload: &'a [u8],
    f: impl FnOnce(&mut Reader<'a>) -> Result<T, RmError>,
) -> Result<T, RmError> {
    let mut r = Reader::new(payload);
    let value = f(&mut r)?;
    r.finish()?;
    Ok(value)
}

/// Bounds-checked little-endian writer; running out of room is `NoMem`.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    pub(crate) fn bytes(&mut self, src: &[u8]) -> Result<(), RmError> {
        let end = self.pos.checked_add(src.len()).ok_or(RmError::NoMem)?;
        let dst = self.buf.get_mut(self.pos..end).ok_or(RmError::NoMem)?;
        dst.copy_from_slice(src);
        self.pos = end;
        Ok(())
    }

    pub(crate) fn u8(&mut self, v: u8) -> Result<(), RmError> {
        self.bytes(&v.to_le_bytes())
    }

    pub(crate) fn u16(&mut self, v: u16) -> Result<(), RmError> {
        self.bytes(&v.to_le_bytes())
    }

    pub(crate) fn u32(&mut self, v: u32) -> Result<(), RmError> {
        self.bytes(&v.to_le_bytes())
    }

    pub(crate) fn u64(&mut self, v: u64) -> Result<(), RmError> {
        self.bytes(&v.to_le_bytes())
    }

    pub(crate) fn zeros(&mut self, n: usize) -> Result<(), RmError> {
        for _ in 0..n {
            self.u8(0)?;
        }
        Ok(())
    }

    /// The elements of `list`, without a count.
    pub(crate) fn list<T: WireEntry>(&mut self, list: &List<'_, T>) -> Result<(), RmError> {
        for item in list.iter() {
            let end = self.pos.checked_add(T::SIZE).ok_or(RmError::NoMem)?;
            let dst = self.buf.get_mut(self.pos..end).ok_or(RmError::NoMem)?;
            item.write(dst)?;
            self.pos = end;
        }
        Ok(())
    }

    /// A `u16` count, two zero bytes, then the elements (the RM's list section).
    pub(crate) fn list_u16<T: WireEntry>(&mut self, list: &List<'_, T>) -> Result<(), RmError> {
        self.u16(count_u16(list.len())?)?;
        self.zeros(2)?;
        self.list(list)
    }
}

/// Checks `out` can hold `len` bytes, runs `f` and returns the number of bytes written.
pub(crate) fn encode_with(
    out: &mut [u8],
    len: usize,
    f: impl FnOnce(&mut Writer<'_>) -> Result<(), RmError>,
) -> Result<usize, RmError> {
    if out.len() < len {
        return Err(RmError::NoMem);
    }
    let mut w = Writer { buf: out, pos: 0 };
    f(&mut w)?;
    Ok(w.pos)
}

/// A list length as a `u16` count field.
pub(crate) fn count_u16(n: usize) -> Result<u16, RmError> {
    u16::try_from(n).map_err(|_| RmError::MsgInvalid)
}

/// A list length as a `u32` count field.
pub(crate) fn count_u32(n: usize) -> Result<u32, RmError> {
    u32::try_from(n).map_err(|_| RmError::MsgInvalid)
}

/// The size of a `u16`-counted list section (count word plus elements), saturating.
pub(crate) fn list_u16_len<T: WireEntry>(list: &List<'_, T>) -> usize {
    list.wire_len().saturating_add(4)
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Shared round-trip checks for the payload tests.

    use super::*;
    use core::fmt::Debug;

    /// Deterministic xorshift64 generator for the randomized tests.
    pub(crate) struct XorShift(pub(crate) u64);

    impl XorShift {
        pub(crate) fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        /// Uniform-ish in `0..n` (`n > 0`).
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        pub(crate) fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                *b = self.next() as u8;
            }
        }
    }

    /// Encodes `value`, checks the length bookkeeping, parses it back and checks every
    /// length other than the exact one is rejected. Returns the encoded length.
    pub(crate) fn round_trip<T>(value: &T) -> usize
    where
        T: Encode + for<'a> Decode<'a> + PartialEq + Debug,
    {
        let mut buf = [0u8; 2048];
        let len = value.encode(&mut buf).expect("encode");
        assert_eq!(len, value.encoded_len(), "{value:?}");
        let decoded = T::decode(&buf[..len]).expect("decode");
        assert_eq!(&decoded, value);
        if len > 0 {
            assert_eq!(
                T::decode(&buf[..len - 1]),
                Err(RmError::MsgInvalid),
                "short {value:?}"
            );
            assert_eq!(value.encode(&mut buf[..len - 1]), Err(RmError::NoMem));
        }
        assert_eq!(
            T::decode(&buf[..len + 1]),
            Err(RmError::MsgInvalid),
            "long {value:?}"
        );
        len
    }

    /// Like [`round_trip`] for payloads that borrow from their bytes.
    pub(crate) fn round_trip_borrowed<'b, T>(value: &T, buf: &'b mut [u8]) -> usize
    where
        T: Encode + Decode<'b> + PartialEq + Debug,
    {
        let len = value.encode(buf).expect("encode");
        assert_eq!(len, value.encoded_len(), "{value:?}");
        let buf: &'b [u8] = buf;
        assert_eq!(&T::decode(&buf[..len]).expect("decode"), value);
        if len > 0 {
            assert_eq!(T::decode(&buf[..len - 1]), Err(RmError::MsgInvalid));
        }
        assert_eq!(T::decode(&buf[..len + 1]), Err(RmError::MsgInvalid));
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_checks_bounds() {
        let bytes = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(0x0302));
        assert_eq!(r.u32(), Ok(0x0706_0504));
        assert_eq!(r.finish(), Err(RmError::MsgInvalid));
        assert_eq!(r.u32(), Err(RmError::MsgInvalid));
        assert_eq!(r.u16(), Ok(0x0908));
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(r.u8(), Err(RmError::MsgInvalid));
        assert_eq!(
            Reader::new(&bytes).list::<u64>(usize::MAX),
            Err(RmError::MsgInvalid)
        );
    }

    #[test]
    fn writer_checks_bounds() {
        let mut buf = [0u8; 5];
        assert_eq!(encode_with(&mut buf, 5, |w| w.u32(0xAABB_CCDD)), Ok(4));
        assert_eq!(buf[..4], [0xDD, 0xCC, 0xBB, 0xAA]);
        assert_eq!(encode_with(&mut buf, 6, |_| Ok(())), Err(RmError::NoMem));
        assert_eq!(encode_with(&mut buf, 0, |w| w.u64(1)), Err(RmError::NoMem));
    }

    #[test]
    fn lists_compare_across_forms() {
        let values = [1u64, 2, 0xFFFF_FFFF_FFFF_FFFF];
        let list = List::from_slice(&values);
        let mut buf = [0u8; 64];
        let n = encode_with(&mut buf, list_u16_len(&list), |w| w.list_u16(&list)).expect("enc");
        assert_eq!(n, 4 + 24);
        let mut r = Reader::new(&buf[..n]);
        let parsed = r.list_u16::<u64>().expect("parse");
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(parsed, list);
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed.get(2), Some(u64::MAX));
        assert_eq!(parsed.get(3), None);
        assert_eq!(parsed.iter().len(), 3);
        assert_eq!(parsed.into_iter().map(|v| v & 0xF).sum::<u64>(), 18);
        assert_ne!(parsed, List::from_slice(&values[..2]));
        assert!(List::<u64>::empty().is_empty());
        assert_eq!(List::<u64>::default(), List::empty());
    }

    #[test]
    fn oversized_counts_are_msg_invalid() {
        let many = [0u64; 70_000];
        let list = List::from_slice(&many);
        let mut buf = [0u8; 16];
        assert_eq!(
            encode_with(&mut buf, 0, |w| w.list_u16(&list)),
            Err(RmError::MsgInvalid)
        );
    }
}

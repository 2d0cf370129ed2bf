//! A small flattened-device-tree (DTB) reader: header checks, nodes by path or compatible
//! string, children, and properties as bytes, cells, `u64`s or strings. No allocation; a
//! malformed blob ends the walks early instead of panicking.

/// `FDT_MAGIC`.
pub const MAGIC: u32 = 0xd00d_feed;
/// Size of the header (version 17).
pub const HEADER_SIZE: usize = 40;
const TOKEN_BEGIN_NODE: u32 = 1;
const TOKEN_END_NODE: u32 = 2;
const TOKEN_PROP: u32 = 3;
const TOKEN_NOP: u32 = 4;
const TOKEN_END: u32 = 9;

/// Why a blob was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdtError {
    /// No `0xd00dfeed` magic.
    BadMagic,
    /// A version before 17 (no `size_dt_struct`) or a last compatible version after 17.
    BadVersion,
    /// `totalsize` or a block lies beyond the data.
    Truncated,
}

fn be32(b: &[u8], off: usize) -> Option<u32> {
    let w = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

fn align4(v: usize) -> usize {
    (v + 3) & !3
}

/// The string in `b` from `off` up to its NUL.
fn cstr(b: &[u8], off: usize) -> Option<(&str, usize)> {
    let rest = b.get(off..)?;
    let len = rest.iter().position(|&c| c == 0)?;
    let s = core::str::from_utf8(&rest[..len]).ok()?;
    Some((s, len))
}

/// A checked device tree blob.
#[derive(Clone, Copy, Debug)]
pub struct Fdt<'a> {
    structs: &'a [u8],
    strings: &'a [u8],
}

/// One token of the structure block.
#[derive(Clone, Copy, Debug)]
enum Token<'a> {
    Begin(&'a str),
    End,
    Prop(&'a str, &'a [u8]),
    Eof,
}

impl<'a> Fdt<'a> {
    /// Check `blob`'s header and locate its structure and strings blocks.
    pub fn new(blob: &'a [u8]) -> Result<Self, FdtError> {
        if blob.len() < HEADER_SIZE {
            return Err(FdtError::Truncated);
        }
        let field = |i: usize| be32(blob, i * 4).map(|v| v as usize).unwrap_or(0);
        if field(0) != MAGIC as usize {
            return Err(FdtError::BadMagic);
        }
        let total = field(1);
        if total > blob.len() || total < HEADER_SIZE {
            return Err(FdtError::Truncated);
        }
        let (version, last_compatible) = (field(5), field(6));
        if version < 17 || last_compatible > 17 {
            return Err(FdtError::BadVersion);
        }
        let blob = &blob[..total];
        let block = |off: usize, size: usize| blob.get(off..off.checked_add(size)?);
        let structs = block(field(2), field(9)).ok_or(FdtError::Truncated)?;
        let strings = block(field(3), field(8)).ok_or(FdtError::Truncated)?;
        Ok(Self { structs, strings })
    }

    /// The blob at `addr`: the header is checked before `totalsize` bytes are used.
    ///
    /// # Safety
    ///
    /// `addr` must be readable for 40 bytes and, if they are a valid header, for its
    /// `totalsize` bytes, and that memory must not change for `'a`.
    pub unsafe fn from_addr(addr: usize) -> Result<Fdt<'a>, FdtError> {
        // SAFETY: the caller guarantees the first 40 bytes are readable and stable.
        let header = unsafe { core::slice::from_raw_parts(addr as *const u8, HEADER_SIZE) };
        if be32(header, 0) != Some(MAGIC) {
            return Err(FdtError::BadMagic);
        }
        let total = be32(header, 4).unwrap_or(0) as usize;
        // SAFETY: as above, for the `totalsize` the (valid) header states.
        let blob = unsafe { core::slice::from_raw_parts(addr as *const u8, total) };
        Fdt::new(blob)
    }

    /// The token at `off` (skipping NOPs) and the offset after it.
    fn token(&self, mut off: usize) -> Option<(Token<'a>, usize)> {
        loop {
            let tag = be32(self.structs, off)?;
            match tag {
                TOKEN_NOP => off += 4,
                TOKEN_BEGIN_NODE => {
                    let (name, len) = cstr(self.structs, off + 4)?;
                    return Some((Token::Begin(name), align4(off + 4 + len + 1)));
                }
                TOKEN_END_NODE => return Some((Token::End, off + 4)),
                TOKEN_PROP => {
                    let len = be32(self.structs, off + 4)? as usize;
                    let name_off = be32(self.structs, off + 8)? as usize;
                    let value = self.structs.get(off + 12..(off + 12).checked_add(len)?)?;
                    let (name, _) = cstr(self.strings, name_off)?;
                    return Some((Token::Prop(name, value), align4(off + 12 + len)));
                }
                TOKEN_END => return Some((Token::Eof, off + 4)),
                _ => return None,
            }
        }
    }

    /// The offset after the `END_NODE` closing the node whose contents start at `off`.
    fn skip_node(&self, mut off: usize) -> Option<usize> {
        let mut depth = 0usize;
        loop {
            let (tok, next) = self.token(off)?;
            off = next;
            match tok {
                Token::Begin(_) => depth += 1,
                Token::End if depth == 0 => return Some(off),
                Token::End => depth -= 1,
                Token::Prop(..) => {}
                Token::Eof => return None,
            }
        }
    }

    /// The root node.
    pub fn root(&self) -> Option<Node<'a>> {
        match self.token(0)? {
            (Token::Begin(name), body) => Some(Node {
                fdt: *self,
                name,
                body,
            }),
            _ => None,
        }
    }

    /// The node at `path` (`/`-separated; a component without `@` also matches a node name's
    /// part before `@`).
    pub fn find_node(&self, path: &str) -> Option<Node<'a>> {
        let mut node = self.root()?;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            node = node.child(part)?;
        }
        Some(node)
    }

    /// Every node, depth first, root first.
    pub fn nodes(&self) -> Nodes<'a> {
        Nodes {
            fdt: *self,
            off: Some(0),
        }
    }

    /// The first node whose `compatible` list holds `compatible`.
    pub fn find_compatible(&self, compatible: &str) -> Option<Node<'a>> {
        self.nodes().find(|n| n.is_compatible(compatible))
    }
}

/// Iterator over all nodes ([`Fdt::nodes`]).
pub struct Nodes<'a> {
    fdt: Fdt<'a>,
    off: Option<usize>,
}

impl<'a> Iterator for Nodes<'a> {
    type Item = Node<'a>;

    fn next(&mut self) -> Option<Node<'a>> {
        let mut off = self.off?;
        loop {
            let Some((tok, next)) = self.fdt.token(off) else {
                self.off = None;
                return None;
            };
            off = next;
            match tok {
                Token::Begin(name) => {
                    self.off = Some(off);
                    return Some(Node {
                        fdt: self.fdt,
                        name,
                        body: off,
                    });
                }
                Token::Eof => {
                    self.off = None;
                    return None;
                }
                Token::End | Token::Prop(..) => {}
            }
        }
    }
}

/// A node: its name and where its properties start.
#[derive(Clone, Copy, Debug)]
pub struct Node<'a> {
    fdt: Fdt<'a>,
    name: &'a str,
    body: usize,
}

impl<'a> Node<'a> {
    /// The full name, e.g. `"doorbell@1234"` (`""` for the root).
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The name without its unit address, e.g. `"doorbell"`.
    pub fn unit_name(&self) -> &'a str {
        self.name.split('@').next().unwrap_or(self.name)
    }

    /// The node's properties, in order.
    pub fn properties(&self) -> Properties<'a> {
        Properties {
            fdt: self.fdt,
            off: Some(self.body),
        }
    }

    /// The value of property `name`.
    pub fn property(&self, name: &str) -> Option<&'a [u8]> {
        self.properties().find(|&(n, _)| n == name).map(|(_, v)| v)
    }

    /// Whether property `name` exists (also an empty one).
    pub fn has_property(&self, name: &str) -> bool {
        self.property(name).is_some()
    }

    /// Cell `index` (big-endian `u32`) of property `name`.
    pub fn cell(&self, name: &str, index: usize) -> Option<u32> {
        be32(self.property(name)?, index.checked_mul(4)?)
    }

    /// Property `name` as one `u32`.
    pub fn prop_u32(&self, name: &str) -> Option<u32> {
        let v = self.property(name)?;
        if v.len() != 4 {
            return None;
        }
        be32(v, 0)
    }

    /// Property `name` as one `u64` (two cells; one cell is zero-extended).
    pub fn prop_u64(&self, name: &str) -> Option<u64> {
        let v = self.property(name)?;
        match v.len() {
            4 => be32(v, 0).map(u64::from),
            8 => Some(u64::from_be_bytes(v.try_into().ok()?)),
            _ => None,
        }
    }

    /// Cells `index * cells .. (index + 1) * cells` of property `name` as one number
    /// (`cells` is 1 or 2).
    pub fn prop_cells(&self, name: &str, index: usize, cells: u32) -> Option<u64> {
        let first = index.checked_mul(cells as usize)?;
        (0..cells as usize).try_fold(0u64, |acc, i| {
            let c = self.cell(name, first + i)?;
            Some(acc.checked_shl(32).unwrap_or(0) | u64::from(c))
        })
    }

    /// Property `name` as a string (its first, if it is a list).
    pub fn prop_str(&self, name: &str) -> Option<&'a str> {
        self.prop_strings(name).next()
    }

    /// Property `name` as a list of NUL-terminated strings.
    pub fn prop_strings(&self, name: &str) -> Strings<'a> {
        Strings {
            rest: self.property(name).unwrap_or(&[]),
        }
    }

    /// Whether `compatible` lists `compatible`.
    pub fn is_compatible(&self, compatible: &str) -> bool {
        self.prop_strings("compatible").any(|c| c == compatible)
    }

    /// `#address-cells` (default 2).
    pub fn address_cells(&self) -> u32 {
        self.prop_u32("#address-cells").unwrap_or(2)
    }

    /// `#size-cells` (default 1).
    pub fn size_cells(&self) -> u32 {
        self.prop_u32("#size-cells").unwrap_or(1)
    }

    /// Entry `index` of `child`'s `reg` as (address, size), in this node's (the parent's)
    /// cell sizes. A parent with `#size-cells = 0` gives size 0.
    pub fn reg(&self, child: &Node<'_>, index: usize) -> Option<(u64, u64)> {
        let (ac, sc) = (self.address_cells(), self.size_cells());
        if ac == 0 || ac > 2 || sc > 2 {
            return None;
        }
        let first = index.checked_mul((ac + sc) as usize)?;
        let cells = |start: usize, n: u32| {
            (0..n as usize).try_fold(0u64, |acc, i| {
                let c = child.cell("reg", start + i)?;
                Some(acc.checked_shl(32).unwrap_or(0) | u64::from(c))
            })
        };
        Some((cells(first, ac)?, cells(first + ac as usize, sc)?))
    }

    /// The direct children.
    pub fn children(&self) -> Children<'a> {
        Children {
            fdt: self.fdt,
            off: Some(self.body),
        }
    }

    /// The child named `name` (or whose name before `@` is `name`, if `name` has no `@`).
    pub fn child(&self, name: &str) -> Option<Node<'a>> {
        self.children()
            .find(|c| c.name == name || (!name.contains('@') && c.unit_name() == name))
    }
}

/// Iterator over a node's properties.
pub struct Properties<'a> {
    fdt: Fdt<'a>,
    off: Option<usize>,
}

impl<'a> Iterator for Properties<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (tok, next) = self.fdt.token(self.off?)?;
        match tok {
            Token::Prop(name, value) => {
                self.off = Some(next);
                Some((name, value))
            }
            _ => {
                self.off = None;
                None
            }
        }
    }
}

/// Iterator over a node's children.
pub struct Children<'a> {
    fdt: Fdt<'a>,
    off: Option<usize>,
}

impl<'a> Iterator for Children<'a> {
    type Item = Node<'a>;

    fn next(&mut self) -> Option<Node<'a>> {
        let mut off = self.off?;
        loop {
            let Some((tok, next)) = self.fdt.token(off) else {
                self.off = None;
                return None;
            };
            match tok {
                Token::Prop(..) => off = next,
                Token::Begin(name) => {
                    self.off = self.fdt.skip_node(next);
                    return Some(Node {
                        fdt: self.fdt,
                        name,
                        body: next,
                    });
                }
                Token::End | Token::Eof => {
                    self.off = None;
                    return None;
                }
            }
        }
    }
}

/// Iterator over the strings of a string-list property.
pub struct Strings<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Strings<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        let len = self
            .rest
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(self.rest.len());
        let (s, rest) = self.rest.split_at(len);
        self.rest = rest.get(1..).unwrap_or(&[]);
        core::str::from_utf8(s).ok()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::vec::Vec;

    /// A minimal DTB writer for the tests.
    pub struct Builder {
        structs: Vec<u8>,
        strings: Vec<u8>,
    }

    impl Builder {
        pub fn new() -> Self {
            Self {
                structs: Vec::new(),
                strings: Vec::new(),
            }
        }

        fn word(&mut self, w: u32) {
            self.structs.extend_from_slice(&w.to_be_bytes());
        }

        fn pad(&mut self) {
            while !self.structs.len().is_multiple_of(4) {
                self.structs.push(0);
            }
        }

        pub fn begin(&mut self, name: &str) -> &mut Self {
            self.word(TOKEN_BEGIN_NODE);
            self.structs.extend_from_slice(name.as_bytes());
            self.structs.push(0);
            self.pad();
            self
        }

        pub fn end(&mut self) -> &mut Self {
            self.word(TOKEN_END_NODE);
            self
        }

        pub fn nop(&mut self) -> &mut Self {
            self.word(TOKEN_NOP);
            self
        }

        pub fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            self.word(TOKEN_PROP);
            self.word(value.len() as u32);
            self.word(off);
            self.structs.extend_from_slice(value);
            self.pad();
            self
        }

        pub fn prop_u32s(&mut self, name: &str, cells: &[u32]) -> &mut Self {
            let v: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
            self.prop(name, &v)
        }

        pub fn prop_strs(&mut self, name: &str, strs: &[&str]) -> &mut Self {
            let mut v = Vec::new();
            for s in strs {
                v.extend_from_slice(s.as_bytes());
                v.push(0);
            }
            self.prop(name, &v)
        }

        pub fn finish(&mut self) -> Vec<u8> {
            self.word(TOKEN_END);
            let rsv = HEADER_SIZE as u32;
            let off_struct = rsv + 16;
            let off_strings = off_struct + self.structs.len() as u32;
            let total = off_strings + self.strings.len() as u32;
            let mut out = Vec::new();
            for w in [
                MAGIC,
                total,
                off_struct,
                off_strings,
                rsv,
                17,
                16,
                0,
                self.strings.len() as u32,
                self.structs.len() as u32,
            ] {
                out.extend_from_slice(&w.to_be_bytes());
            }
            out.extend_from_slice(&[0; 16]);
            out.extend_from_slice(&self.structs);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    fn sample() -> Vec<u8> {
        let mut b = Builder::new();
        b.begin("")
            .prop_u32s("#address-cells", &[2])
            .prop_u32s("#size-cells", &[2])
            .begin("chosen")
            .prop_strs("bootargs", &["role=ping count=5"])
            .end()
            .begin("memory@40000000")
            .prop_strs("device_type", &["memory"])
            .prop_u32s("reg", &[0, 0x4000_0000, 0, 0x100_0000])
            .end()
            .nop()
            .begin("hypervisor")
            .prop_strs("compatible", &["gunyah-hypervisor", "simple-bus"])
            .prop_u32s("#address-cells", &[2])
            .prop_u32s("#size-cells", &[0])
            .begin("doorbell@5")
            .prop_strs(
                "compatible",
                &["qcom,gunyah-doorbell", "qcom,gunyah-capability"],
            )
            .prop_u32s("reg", &[0x1234, 0x5678_9abc])
            .prop_u32s("interrupts", &[0, 32, 1])
            .prop_strs("label", &["bell"])
            .begin("nested")
            .prop("empty", &[])
            .end()
            .end()
            .begin("capabilities")
            .prop_strs("compatible", &["wurley,capabilities"])
            .prop("partition", &0xdead_beef_0000_0001u64.to_be_bytes())
            .end()
            .end()
            .end();
        b.finish()
    }

    #[test]
    fn header_checks() {
        let blob = sample();
        assert!(Fdt::new(&blob).is_ok());
        let mut bad = blob.clone();
        bad[0] = 0;
        assert_eq!(Fdt::new(&bad).err(), Some(FdtError::BadMagic));
        assert_eq!(Fdt::new(&blob[..30]).err(), Some(FdtError::Truncated));
        assert_eq!(
            Fdt::new(&blob[..blob.len() - 1]).err(),
            Some(FdtError::Truncated)
        );
        let mut old = blob.clone();
        old[23] = 16;
        assert_eq!(Fdt::new(&old).err(), Some(FdtError::BadVersion));
    }

    #[test]
    fn paths_properties_and_children() {
        let blob = sample();
        let fdt = Fdt::new(&blob).unwrap();
        let chosen = fdt.find_node("/chosen").unwrap();
        assert_eq!(chosen.prop_str("bootargs"), Some("role=ping count=5"));
        assert!(fdt.find_node("/nothing").is_none());

        let root = fdt.root().unwrap();
        let names: Vec<&str> = root.children().map(|n| n.name()).collect();
        assert_eq!(names, ["chosen", "memory@40000000", "hypervisor"]);
        let mem = fdt.find_node("/memory").unwrap();
        assert_eq!(root.reg(&mem, 0), Some((0x4000_0000, 0x100_0000)));
        assert_eq!(root.reg(&mem, 1), None);

        let hyp = fdt.find_node("/hypervisor").unwrap();
        assert!(hyp.is_compatible("simple-bus"));
        assert!(!hyp.is_compatible("simple"));
        let kids: Vec<&str> = hyp.children().map(|n| n.name()).collect();
        assert_eq!(kids, ["doorbell@5", "capabilities"]);
        let db = fdt.find_compatible("qcom,gunyah-doorbell").unwrap();
        assert_eq!(db.name(), "doorbell@5");
        assert_eq!(hyp.reg(&db, 0), Some((0x1234_5678_9abc, 0)));
        assert_eq!(db.cell("interrupts", 1), Some(32));
        assert_eq!(db.prop_cells("reg", 0, 2), Some(0x1234_5678_9abc));
        assert_eq!(db.prop_str("label"), Some("bell"));
        assert!(
            fdt.find_node("/hypervisor/doorbell/nested")
                .unwrap()
                .has_property("empty")
        );
        let caps = fdt.find_node("/hypervisor/capabilities").unwrap();
        assert_eq!(caps.prop_u64("partition"), Some(0xdead_beef_0000_0001));
        assert_eq!(caps.prop_u64("cspace"), None);
        let all: Vec<&str> = fdt.nodes().map(|n| n.name()).collect();
        assert_eq!(
            all,
            [
                "",
                "chosen",
                "memory@40000000",
                "hypervisor",
                "doorbell@5",
                "nested",
                "capabilities"
            ]
        );
    }

    #[test]
    fn garbage_does_not_panic() {
        let blob = sample();
        for cut in 0..blob.len() {
            let mut b = blob.clone();
            b[cut] ^= 0xa5;
            if let Ok(fdt) = Fdt::new(&b) {
                let _ = fdt.nodes().count();
                let _ = fdt.find_node("/hypervisor/capabilities");
                if let Some(root) = fdt.root() {
                    for c in root.children() {
                        let _ = c.properties().count();
                        let _ = c.children().count();
                    }
                }
            }
        }
    }
}

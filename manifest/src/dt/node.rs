//! [`NodeRef`]: a handle to one node of a [`Tree`], with the typed property reads (strings,
//! cells, `status`, `compatible`) every other module builds on.

use alloc::string::String;
use alloc::vec::Vec;
use core::str;

use super::error::DtError;
use super::tree::{Node, Tree};

/// A single big-endian cell, if `bytes` is exactly one.
pub fn be32(bytes: &[u8]) -> Option<u32> {
    bytes.try_into().ok().map(u32::from_be_bytes)
}

/// A handle to one node of a [`Tree`].
#[derive(Clone, Copy)]
pub struct NodeRef<'t, 'a> {
    tree: &'t Tree<'a>,
    idx: usize,
}

impl<'t, 'a> NodeRef<'t, 'a> {
    /// The node at index `idx` of `tree`.
    pub fn new(tree: &'t Tree<'a>, idx: usize) -> Self {
        Self { tree, idx }
    }

    fn node(self) -> Option<&'t Node<'a>> {
        self.tree.nodes.get(self.idx)
    }

    /// The tree this node belongs to.
    pub fn tree(self) -> &'t Tree<'a> {
        self.tree
    }

    /// Whether both handles name the same node.
    pub fn same(self, other: NodeRef<'_, '_>) -> bool {
        self.idx == other.idx
    }

    /// The node name including any unit address (empty for the root).
    pub fn name(self) -> &'a str {
        self.node().map_or("", |n| n.name)
    }

    /// The node name without its unit address.
    pub fn base_name(self) -> &'a str {
        let name = self.name();
        name.split('@').next().unwrap_or(name)
    }

    /// The parent node, `None` for the root.
    pub fn parent(self) -> Option<Self> {
        let idx = self.node()?.parent?;
        Some(Self {
            tree: self.tree,
            idx,
        })
    }

    /// The direct children, in order.
    pub fn children(self) -> impl Iterator<Item = NodeRef<'t, 'a>> {
        let tree = self.tree;
        let me = self.idx;
        (me + 1..tree.nodes.len())
            .filter(move |i| tree.nodes.get(*i).and_then(|n| n.parent) == Some(me))
            .map(move |idx| NodeRef { tree, idx })
    }

    /// The full path, e.g. `/soc/serial@1c0000`.
    pub fn path(self) -> String {
        let mut names = Vec::new();
        let mut cur = Some(self);
        while let Some(n) = cur.filter(|n| n.parent().is_some()) {
            names.push(n.name());
            cur = n.parent();
        }
        let mut path = String::new();
        for name in names.iter().rev() {
            path.push('/');
            path.push_str(name);
        }
        if path.is_empty() {
            path.push('/');
        }
        path
    }

    /// An error about `property` (or the node itself) of this node.
    pub fn err(self, property: Option<&'static str>, problem: &'static str) -> DtError {
        DtError::new(self.path(), property, problem)
    }

    /// The raw value of property `name`.
    pub fn prop(self, name: &str) -> Option<&'a [u8]> {
        self.node()?
            .props
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value)
    }

    /// The names of the node's properties, in blob order.
    pub fn prop_names(self) -> impl Iterator<Item = &'a str> {
        self.node()
            .into_iter()
            .flat_map(|n| n.props.iter().map(|p| p.name))
    }

    /// The strings of a string-list property; empty if absent.
    pub fn strings(self, name: &'static str) -> Result<Vec<&'a str>, DtError> {
        let Some(value) = self.prop(name) else {
            return Ok(Vec::new());
        };
        let bad = || self.err(Some(name), "not a NUL-terminated UTF-8 string list");
        let body = value.strip_suffix(&[0]).ok_or_else(bad)?;
        body.split(|b| *b == 0)
            .map(|s| str::from_utf8(s).map_err(|_| bad()))
            .collect()
    }

    /// The first string of a string property, `None` if absent.
    pub fn str_prop(self, name: &'static str) -> Result<Option<&'a str>, DtError> {
        Ok(self.strings(name)?.first().copied())
    }

    /// The cells of a property, `None` if absent.
    pub fn cells(self, name: &'static str) -> Result<Option<Vec<u32>>, DtError> {
        let Some(value) = self.prop(name) else {
            return Ok(None);
        };
        let chunks = value.chunks_exact(4);
        if !chunks.remainder().is_empty() {
            return Err(self.err(Some(name), "length is not a whole number of cells"));
        }
        Ok(Some(chunks.filter_map(be32).collect()))
    }

    /// A one-cell property, `None` if absent.
    pub fn u32_prop(self, name: &'static str) -> Result<Option<u32>, DtError> {
        match self.prop(name) {
            None => Ok(None),
            Some(v) => be32(v)
                .map(Some)
                .ok_or_else(|| self.err(Some(name), "not a single cell")),
        }
    }

    /// Whether the `compatible` list holds `compat`.
    pub fn is_compatible(self, compat: &str) -> bool {
        self.strings("compatible")
            .is_ok_and(|list| list.contains(&compat))
    }

    /// The `device_type` string, if any.
    pub fn device_type(self) -> Option<&'a str> {
        self.str_prop("device_type").ok().flatten()
    }

    /// Whether `status` is `"disabled"` or `"fail"`/`"fail-sss"`.
    pub fn is_disabled(self) -> bool {
        match self.str_prop("status") {
            Ok(Some(s)) => s == "disabled" || s.starts_with("fail"),
            _ => false,
        }
    }
}

//! [`Tree`]: the device tree's nodes and properties indexed in memory (borrowing the blob), and
//! the typed property reads every other module builds on.

use alloc::string::String;
use alloc::vec::Vec;
use core::str;

use super::error::DtError;

struct Prop<'a> {
    name: &'a str,
    value: &'a [u8],
}

struct Node<'a> {
    name: &'a str,
    parent: Option<usize>,
    props: Vec<Prop<'a>>,
}

/// All nodes of a blob in structure-block order (index 0 is the root), plus its header
/// `/memreserve/` entries as `(address, size)`.
pub(super) struct Tree<'a> {
    nodes: Vec<Node<'a>>,
    pub(super) memreserve: Vec<(u64, u64)>,
}

/// Builds a [`Tree`] from the structure block's tokens, checking that they nest properly.
pub(super) struct TreeBuilder<'a> {
    strings: &'a [u8],
    nodes: Vec<Node<'a>>,
    open: Vec<usize>,
}

fn malformed(problem: &'static str) -> DtError {
    DtError::tree(problem)
}

impl<'a> TreeBuilder<'a> {
    /// A builder resolving property names in the strings block `strings`.
    pub(super) fn new(strings: &'a [u8]) -> Self {
        Self {
            strings,
            nodes: Vec::new(),
            open: Vec::new(),
        }
    }

    /// An `FDT_BEGIN_NODE` token.
    pub(super) fn begin(&mut self, name: &'a [u8]) -> Result<(), DtError> {
        let parent = self.open.last().copied();
        if parent.is_none() && !self.nodes.is_empty() {
            return Err(malformed("structure block has more than one root node"));
        }
        let name = str::from_utf8(name).map_err(|_| malformed("node name is not UTF-8"))?;
        self.open.push(self.nodes.len());
        self.nodes.push(Node {
            name,
            parent,
            props: Vec::new(),
        });
        Ok(())
    }

    /// An `FDT_END_NODE` token.
    pub(super) fn end(&mut self) -> Result<(), DtError> {
        self.open
            .pop()
            .map(|_| ())
            .ok_or(malformed("structure block closes an unopened node"))
    }

    /// An `FDT_PROP` token whose name is at `name_offset` in the strings block.
    pub(super) fn prop(&mut self, name_offset: usize, value: &'a [u8]) -> Result<(), DtError> {
        let name = self
            .strings
            .get(name_offset..)
            .and_then(|s| s.split(|b| *b == 0).next().filter(|n| n.len() < s.len()))
            .and_then(|n| str::from_utf8(n).ok())
            .ok_or(malformed("property name outside the strings block"))?;
        let node = self
            .open
            .last()
            .and_then(|i| self.nodes.get_mut(*i))
            .ok_or(malformed("property outside any node"))?;
        node.props.push(Prop { name, value });
        Ok(())
    }

    /// The `FDT_END` token.
    pub(super) fn finish(self, memreserve: Vec<(u64, u64)>) -> Result<Tree<'a>, DtError> {
        if self.nodes.is_empty() || !self.open.is_empty() {
            return Err(malformed("structure block ends inside a node"));
        }
        Ok(Tree {
            nodes: self.nodes,
            memreserve,
        })
    }
}

impl<'a> Tree<'a> {
    /// The root node.
    pub(super) fn root(&self) -> NodeRef<'_, 'a> {
        NodeRef { tree: self, idx: 0 }
    }

    /// Every node, in structure-block (depth-first) order.
    pub(super) fn nodes(&self) -> impl Iterator<Item = NodeRef<'_, 'a>> {
        (0..self.nodes.len()).map(move |idx| NodeRef { tree: self, idx })
    }

    /// The node at `path`; a component without a unit address also matches `name@unit`.
    pub(super) fn find_path(&self, path: &str) -> Option<NodeRef<'_, 'a>> {
        let mut node = self.root();
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            let exact = node.children().find(|c| c.name() == comp);
            node = match exact {
                Some(n) => n,
                None if !comp.contains('@') => node.children().find(|c| c.base_name() == comp)?,
                None => return None,
            };
        }
        Some(node)
    }

    /// The first node, not disabled, whose `compatible` list holds `compat`.
    pub(super) fn find_compatible(&self, compat: &str) -> Option<NodeRef<'_, 'a>> {
        self.nodes()
            .find(|n| n.is_compatible(compat) && !n.is_disabled())
    }

    /// The node whose `phandle` (or legacy `linux,phandle`) is `phandle`.
    pub(super) fn by_phandle(&self, phandle: u32) -> Option<NodeRef<'_, 'a>> {
        let is = |n: &NodeRef<'_, 'a>, p| n.prop(p).and_then(be32) == Some(phandle);
        self.nodes()
            .find(|n| is(n, "phandle") || is(n, "linux,phandle"))
    }
}

/// A single big-endian cell, if `bytes` is exactly one.
fn be32(bytes: &[u8]) -> Option<u32> {
    bytes.try_into().ok().map(u32::from_be_bytes)
}

/// A handle to one node of a [`Tree`].
#[derive(Clone, Copy)]
pub(super) struct NodeRef<'t, 'a> {
    tree: &'t Tree<'a>,
    idx: usize,
}

impl<'t, 'a> NodeRef<'t, 'a> {
    fn node(self) -> Option<&'t Node<'a>> {
        self.tree.nodes.get(self.idx)
    }

    /// The tree this node belongs to.
    pub(super) fn tree(self) -> &'t Tree<'a> {
        self.tree
    }

    /// Whether both handles name the same node.
    pub(super) fn same(self, other: NodeRef<'_, '_>) -> bool {
        self.idx == other.idx
    }

    /// The node name including any unit address (empty for the root).
    pub(super) fn name(self) -> &'a str {
        self.node().map_or("", |n| n.name)
    }

    /// The node name without its unit address.
    pub(super) fn base_name(self) -> &'a str {
        let name = self.name();
        name.split('@').next().unwrap_or(name)
    }

    /// The parent node, `None` for the root.
    pub(super) fn parent(self) -> Option<Self> {
        let idx = self.node()?.parent?;
        Some(Self {
            tree: self.tree,
            idx,
        })
    }

    /// The direct children, in order.
    pub(super) fn children(self) -> impl Iterator<Item = NodeRef<'t, 'a>> {
        let tree = self.tree;
        let me = self.idx;
        (me + 1..tree.nodes.len())
            .filter(move |i| tree.nodes.get(*i).and_then(|n| n.parent) == Some(me))
            .map(move |idx| NodeRef { tree, idx })
    }

    /// The full path, e.g. `/soc/serial@1c0000`.
    pub(super) fn path(self) -> String {
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
    pub(super) fn err(self, property: Option<&'static str>, problem: &'static str) -> DtError {
        DtError::new(self.path(), property, problem)
    }

    /// The raw value of property `name`.
    pub(super) fn prop(self, name: &str) -> Option<&'a [u8]> {
        self.node()?
            .props
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value)
    }

    /// The strings of a string-list property; empty if absent.
    pub(super) fn strings(self, name: &'static str) -> Result<Vec<&'a str>, DtError> {
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
    pub(super) fn str_prop(self, name: &'static str) -> Result<Option<&'a str>, DtError> {
        Ok(self.strings(name)?.first().copied())
    }

    /// The cells of a property, `None` if absent.
    pub(super) fn cells(self, name: &'static str) -> Result<Option<Vec<u32>>, DtError> {
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
    pub(super) fn u32_prop(self, name: &'static str) -> Result<Option<u32>, DtError> {
        match self.prop(name) {
            None => Ok(None),
            Some(v) => be32(v)
                .map(Some)
                .ok_or_else(|| self.err(Some(name), "not a single cell")),
        }
    }

    /// Whether the `compatible` list holds `compat`.
    pub(super) fn is_compatible(self, compat: &str) -> bool {
        self.strings("compatible")
            .is_ok_and(|list| list.contains(&compat))
    }

    /// The `device_type` string, if any.
    pub(super) fn device_type(self) -> Option<&'a str> {
        self.str_prop("device_type").ok().flatten()
    }

    /// Whether `status` is `"disabled"` or `"fail"`/`"fail-sss"`.
    pub(super) fn is_disabled(self) -> bool {
        match self.str_prop("status") {
            Ok(Some(s)) => s == "disabled" || s.starts_with("fail"),
            _ => false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fdt::with_tree;
    use super::super::fixtures::*;

    #[test]
    fn paths_resolve_with_and_without_unit_address() {
        with_tree(SOC, |t| {
            let uart = t.find_path("/soc/bus@100000/serial@c0000").unwrap();
            assert_eq!(uart.path(), "/soc/bus@100000/serial@c0000");
            assert!(t.find_path("/soc/bus/serial").unwrap().same(uart));
            assert!(t.find_path("/soc/bus@100001").is_none());
            assert_eq!(t.find_path("/").unwrap().path(), "/");
            assert_eq!(uart.strings("compatible")?, ["arm,pl011", "arm,primecell"]);
            assert_eq!(uart.parent().unwrap().base_name(), "bus");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn children_in_order_and_phandles() {
        with_tree(VIRT_SMP2, |t| {
            let cpus = t.find_path("/cpus").unwrap();
            let names: alloc::vec::Vec<_> = cpus.children().map(|c| c.name()).collect();
            assert_eq!(names, ["cpu-map", "cpu@0", "cpu@1"]);
            assert_eq!(t.by_phandle(0x8003).unwrap().path(), "/intc@8000000");
            assert!(t.by_phandle(0xdead).is_none());
            let psci = t.find_path("/psci").unwrap();
            assert_eq!(psci.u32_prop("cpu_on")?, Some(0xc400_0003));
            assert!(psci.u32_prop("compatible").is_err());
            Ok(())
        })
        .unwrap();
    }
}

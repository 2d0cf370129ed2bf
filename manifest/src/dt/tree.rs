//! [`Tree`]: the device tree's nodes and properties indexed in memory (borrowing the blob),
//! checked for proper nesting as it is built, and the lookups of nodes by path, `compatible`
//! and phandle.

use alloc::vec::Vec;
use core::str;

use super::error::DtError;
use super::node::{NodeRef, be32};

/// One property: its name from the strings block and its raw value.
pub struct Prop<'a> {
    pub name: &'a str,
    pub value: &'a [u8],
}

/// One node: its name (with unit address), its parent's index and its properties.
pub struct Node<'a> {
    pub name: &'a str,
    pub parent: Option<usize>,
    pub props: Vec<Prop<'a>>,
}

/// All nodes of a blob in structure-block order (index 0 is the root), plus its header
/// `/memreserve/` entries as `(address, size)`.
pub struct Tree<'a> {
    pub nodes: Vec<Node<'a>>,
    pub memreserve: Vec<(u64, u64)>,
}

/// Builds a [`Tree`] from the structure block's tokens, checking that they nest properly.
pub struct TreeBuilder<'a> {
    strings: &'a [u8],
    nodes: Vec<Node<'a>>,
    open: Vec<usize>,
}

fn malformed(problem: &'static str) -> DtError {
    DtError::tree(problem)
}

impl<'a> TreeBuilder<'a> {
    /// A builder resolving property names in the strings block `strings`.
    pub fn new(strings: &'a [u8]) -> Self {
        Self {
            strings,
            nodes: Vec::new(),
            open: Vec::new(),
        }
    }

    /// An `FDT_BEGIN_NODE` token.
    pub fn begin(&mut self, name: &'a [u8]) -> Result<(), DtError> {
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
    pub fn end(&mut self) -> Result<(), DtError> {
        self.open
            .pop()
            .map(|_| ())
            .ok_or(malformed("structure block closes an unopened node"))
    }

    /// An `FDT_PROP` token whose name is at `name_offset` in the strings block.
    pub fn prop(&mut self, name_offset: usize, value: &'a [u8]) -> Result<(), DtError> {
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
    pub fn finish(self, memreserve: Vec<(u64, u64)>) -> Result<Tree<'a>, DtError> {
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
    pub fn root(&self) -> NodeRef<'_, 'a> {
        NodeRef::new(self, 0)
    }

    /// Every node, in structure-block (depth-first) order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeRef<'_, 'a>> {
        (0..self.nodes.len()).map(move |idx| NodeRef::new(self, idx))
    }

    /// The node at `path`; a component without a unit address also matches `name@unit`.
    pub fn find_path(&self, path: &str) -> Option<NodeRef<'_, 'a>> {
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
    pub fn find_compatible(&self, compat: &str) -> Option<NodeRef<'_, 'a>> {
        self.nodes()
            .find(|n| n.is_compatible(compat) && !n.is_disabled())
    }

    /// The node whose `phandle` (or legacy `linux,phandle`) is `phandle`.
    pub fn by_phandle(&self, phandle: u32) -> Option<NodeRef<'_, 'a>> {
        let is = |n: &NodeRef<'_, 'a>, p| n.prop(p).and_then(be32) == Some(phandle);
        self.nodes()
            .find(|n| is(n, "phandle") || is(n, "linux,phandle"))
    }
}

//! A flattened device tree indexed in memory: [`with_tree`] checks a blob and hands a [`Tree`]
//! of its nodes to a closure; [`NodeRef`] reads typed properties; [`DtError`] names the node and
//! property at fault. Only `fdt.rs` touches the blob through `fdt-rs` (and `unsafe`).

mod error;
mod fdt;
mod node;
mod tree;

pub use error::DtError;
pub use fdt::with_tree;
pub use node::{NodeRef, be32};
pub use tree::{Node, Prop, Tree, TreeBuilder};

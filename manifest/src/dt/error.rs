//! [`DtError`]: why a device tree could not be read (the hypervisor's platform description, a bundle).

use alloc::string::String;
use core::fmt;

/// A device-tree problem, naming the node (full path) and property it was found in.
///
/// `node` is empty when the problem concerns the blob as a whole or a node that could not be
/// found at all (then `problem` says what was looked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtError {
    /// Full path of the node, e.g. `/intc@8000000`; empty for whole-tree problems.
    pub node: String,
    /// The property at fault, if the problem is with one.
    pub property: Option<&'static str>,
    /// What is wrong, e.g. `missing`.
    pub problem: &'static str,
}

impl DtError {
    /// A problem with `property` (or the node itself) of the node at `node`.
    pub fn new(node: String, property: Option<&'static str>, problem: &'static str) -> Self {
        Self {
            node,
            property,
            problem,
        }
    }

    /// A problem with the blob as a whole or a node that could not be found.
    pub fn tree(problem: &'static str) -> Self {
        Self {
            node: String::new(),
            property: None,
            problem,
        }
    }
}

impl fmt::Display for DtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.node.is_empty() {
            write!(f, "device tree: ")?;
            if let Some(p) = self.property {
                write!(f, "property '{p}': ")?;
            }
            return write!(f, "{}", self.problem);
        }
        write!(f, "device tree node '{}'", self.node)?;
        if let Some(p) = self.property {
            write!(f, " property '{p}'")?;
        }
        write!(f, ": {}", self.problem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn display_names_node_and_property() {
        let e = DtError::new("/intc@8000000".into(), Some("reg"), "missing");
        assert_eq!(
            e.to_string(),
            "device tree node '/intc@8000000' property 'reg': missing"
        );
        let e = DtError::new("/cpus".into(), None, "missing node");
        assert_eq!(e.to_string(), "device tree node '/cpus': missing node");
        let e = DtError::tree("no GICv3 node (compatible \"arm,gic-v3\")");
        assert_eq!(
            e.to_string(),
            "device tree: no GICv3 node (compatible \"arm,gic-v3\")"
        );
    }
}

//! The links of `/links`: each node read on its own ([`read`], collecting every problem of a link
//! like a VM's), then its VMs looked up among the VMs that passed every VM check and the per-VM
//! link count applied ([`resolve`]).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::manifest::{TOLERATED, VmNode, dt_problem, name_problem, status, u32_in};
use super::{
    BundleError, COMPATIBLE, DEFAULT_MESSAGE_SIZE, DEFAULT_QUEUE_DEPTH, DOORBELL_COMPATIBLE,
    LinkKind, LinkSpec, MAX_LINKS_PER_VM, MESSAGE_SIZES, MSGQUEUE_PAIR_COMPATIBLE, QUEUE_DEPTHS,
};
use crate::dt::NodeRef;

/// Properties every link may have (besides the tolerated ones).
const COMMON_PROPS: &[&str] = &["compatible", "status", "description"];
/// Properties of a message-queue pair only.
const PAIR_PROPS: &[&str] = &["vms", "queue-depth", "message-size"];
/// Properties of a doorbell only.
const DOORBELL_PROPS: &[&str] = &["sender", "receiver"];

/// What a link is, as `compatible` says.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Pair,
    Doorbell,
}

impl Which {
    fn compatible(self) -> &'static str {
        match self {
            Which::Pair => MSGQUEUE_PAIR_COMPATIBLE,
            Which::Doorbell => DOORBELL_COMPATIBLE,
        }
    }

    fn props(self) -> &'static [&'static str] {
        match self {
            Which::Pair => PAIR_PROPS,
            Which::Doorbell => DOORBELL_PROPS,
        }
    }
}

/// A link whose own properties are read, its VMs still names.
pub(super) struct LinkCandidate {
    /// Sorts its errors after every VM's and in manifest order.
    pub(super) order: usize,
    pub(super) name: String,
    /// The VM names to look up, each with the property giving it (one name when a link names
    /// one VM twice).
    ends: Vec<(&'static str, String)>,
    /// `None` if the link has problems of its own (already reported).
    kind: Option<Kind>,
}

/// A link's own settings.
#[derive(Clone, Copy)]
enum Kind {
    Pair { depth: u32, message_size: u32 },
    Doorbell,
}

/// Reads the children of `links`, the `/links` node. The first link's errors sort at `order`,
/// the next at `order + 1`, and so on; every problem goes to `errors`.
pub(super) fn read(
    links: NodeRef<'_, '_>,
    order: usize,
    errors: &mut Vec<(usize, BundleError)>,
) -> Vec<LinkCandidate> {
    for p in links.prop_names() {
        if !TOLERATED.contains(&p) && p != "description" {
            errors.push((
                0,
                BundleError::file(format!("node '/links' property '{p}': unknown, ignored")),
            ));
        }
    }
    let mut out = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for (i, node) in links.children().enumerate() {
        let order = order.saturating_add(i);
        let name = node.name();
        let mut link = Link {
            node,
            problems: Vec::new(),
        };
        let (enabled, problem) = status(node);
        link.problems.extend(problem);
        if enabled {
            if names.contains(&name) {
                link.problem("node name: another link node before it has the same name");
            }
            names.push(name);
            out.push(link.read(order));
        }
        for p in link.problems {
            errors.push((order, BundleError::link(name, p)));
        }
    }
    out
}

/// Looks up the VMs of `links` among `started` (the names of [`super::Bundle::vms`], in order)
/// and counts each VM's links, in manifest order. `nodes` are all the children of `/vms`, to say
/// why a VM is not started. Returns the links that pass and the errors of those that do not.
pub(super) fn resolve(
    links: Vec<LinkCandidate>,
    started: &[&str],
    nodes: &[VmNode],
) -> (Vec<LinkSpec>, Vec<(usize, BundleError)>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut count = vec![0usize; started.len()];
    for link in links {
        let mut problems = Vec::new();
        let mut ends = Vec::new();
        for (prop, vm) in &link.ends {
            match started.iter().position(|s| s == vm) {
                Some(i) => ends.push((*prop, vm, i)),
                None => problems.push(format!("property '{prop}': {}", not_started(vm, nodes))),
            }
        }
        if problems.is_empty() && link.kind.is_some() {
            for (prop, vm, i) in &ends {
                if count.get(*i).is_none_or(|n| *n >= MAX_LINKS_PER_VM) {
                    problems.push(format!(
                        "property '{prop}': VM '{vm}' is already in {MAX_LINKS_PER_VM} links, the most one VM can be in"
                    ));
                }
            }
        }
        let kind = match (link.kind, ends.as_slice()) {
            (
                Some(Kind::Pair {
                    depth,
                    message_size,
                }),
                [(_, _, a), (_, _, b)],
            ) => Some(LinkKind::MsgQueuePair {
                vms: [*a, *b],
                depth,
                message_size,
            }),
            (Some(Kind::Doorbell), [(_, _, sender), (_, _, receiver)]) => {
                Some(LinkKind::Doorbell {
                    sender: *sender,
                    receiver: *receiver,
                })
            }
            _ => None,
        };
        match kind.filter(|_| problems.is_empty()) {
            Some(kind) => {
                for (_, _, i) in &ends {
                    if let Some(n) = count.get_mut(*i) {
                        *n += 1;
                    }
                }
                out.push(LinkSpec {
                    name: link.name,
                    kind,
                });
            }
            None => {
                for p in problems {
                    errors.push((link.order, BundleError::link(&link.name, p)));
                }
            }
        }
    }
    (out, errors)
}

/// Why a link cannot have VM `vm`, which is not started.
fn not_started(vm: &str, nodes: &[VmNode]) -> String {
    let mut named = nodes.iter().filter(|n| n.name == vm).peekable();
    if named.peek().is_none() {
        format!("no VM '{vm}' in /vms")
    } else if named.any(|n| n.enabled) {
        format!("VM '{vm}' is not started (refused above)")
    } else {
        format!("VM '{vm}' is not started (disabled)")
    }
}

/// One link node being read, and what is wrong with it so far.
struct Link<'t, 'a> {
    node: NodeRef<'t, 'a>,
    problems: Vec<String>,
}

impl Link<'_, '_> {
    fn problem(&mut self, problem: impl Into<String>) {
        self.problems.push(problem.into());
    }

    fn bad(&mut self, property: &str, problem: impl core::fmt::Display) {
        self.problem(format!("property '{property}': {problem}"));
    }

    /// The candidate; its `kind` is `None` if the link has problems (in `self.problems`).
    fn read(&mut self, order: usize) -> LinkCandidate {
        self.problems
            .extend(name_problem(self.node.name(), "link", "chat"));
        let which = self.compatible();
        self.check_contents(which);
        let (ends, kind) = match which {
            Some(Which::Pair) => {
                let ends = self.pair();
                let depth = self.u32_in("queue-depth", DEFAULT_QUEUE_DEPTH, QUEUE_DEPTHS, "");
                let size = self.u32_in(
                    "message-size",
                    DEFAULT_MESSAGE_SIZE,
                    MESSAGE_SIZES,
                    " bytes",
                );
                let kind = depth.zip(size).map(|(depth, message_size)| Kind::Pair {
                    depth,
                    message_size,
                });
                (ends, kind)
            }
            Some(Which::Doorbell) => (self.doorbell(), Some(Kind::Doorbell)),
            None => (Vec::new(), None),
        };
        LinkCandidate {
            order,
            name: self.node.name().to_string(),
            ends,
            kind: kind.filter(|_| self.problems.is_empty()),
        }
    }

    fn compatible(&mut self) -> Option<Which> {
        let known = format!("\"{MSGQUEUE_PAIR_COMPATIBLE}\" or \"{DOORBELL_COMPATIBLE}\"");
        match self.node.strings("compatible") {
            Ok(list) => match list.as_slice() {
                [] => {
                    self.bad("compatible", format!("missing; {known}"));
                    None
                }
                [c] if *c == MSGQUEUE_PAIR_COMPATIBLE => Some(Which::Pair),
                [c] if *c == DOORBELL_COMPATIBLE => Some(Which::Doorbell),
                [c] => {
                    self.bad("compatible", format!("\"{c}\" is unknown; {known}"));
                    None
                }
                _ => {
                    self.bad("compatible", format!("must be one string, {known}"));
                    None
                }
            },
            Err(e) => {
                self.problem(dt_problem(&e));
                None
            }
        }
    }

    /// Unknown properties and child nodes. With an unknown `compatible` the properties of any
    /// kind of link pass.
    fn check_contents(&mut self, which: Option<Which>) {
        let node = self.node;
        let kinds: &[Which] = match &which {
            Some(w) => core::slice::from_ref(w),
            None => &[Which::Pair, Which::Doorbell],
        };
        let known = |p: &str| {
            COMMON_PROPS.contains(&p)
                || TOLERATED.contains(&p)
                || kinds.iter().any(|k| k.props().contains(&p))
        };
        for p in node.prop_names() {
            if known(p) {
                continue;
            }
            let takes = match which {
                Some(w) => format!("a {} link takes", w.compatible()),
                None => String::from("a link node takes"),
            };
            let mut all: Vec<&str> = vec!["compatible"];
            for k in kinds {
                all.extend_from_slice(k.props());
            }
            all.extend_from_slice(&["status", "description"]);
            self.bad(p, format!("unknown; {takes} {}", all.join(", ")));
        }
        for child in node.children() {
            self.problem(format!(
                "node '{}': link nodes have no child nodes in {COMPATIBLE}",
                child.name()
            ));
        }
    }

    /// `vms` of a message-queue pair.
    fn pair(&mut self) -> Vec<(&'static str, String)> {
        match self.node.strings("vms") {
            Ok(list) => match list.as_slice() {
                [] => {
                    self.bad("vms", "missing");
                    Vec::new()
                }
                [a, b] if a == b => {
                    self.bad("vms", format!("names VM '{a}' twice; a link joins two VMs"));
                    vec![("vms", (*a).to_string())]
                }
                [a, b] => vec![("vms", (*a).to_string()), ("vms", (*b).to_string())],
                _ => {
                    self.bad(
                        "vms",
                        "must be two VM names, e.g. vms = \"ping\", \"pong\";",
                    );
                    Vec::new()
                }
            },
            Err(e) => {
                self.problem(dt_problem(&e));
                Vec::new()
            }
        }
    }

    /// `sender` and `receiver` of a doorbell.
    fn doorbell(&mut self) -> Vec<(&'static str, String)> {
        let sender = self.one_vm("sender");
        let receiver = self.one_vm("receiver");
        match (sender, receiver) {
            (Some(s), Some(r)) if s == r => {
                self.bad(
                    "receiver",
                    format!("VM '{r}' is also the sender; a link joins two VMs"),
                );
                vec![("sender", s)]
            }
            (s, r) => [s.map(|s| ("sender", s)), r.map(|r| ("receiver", r))]
                .into_iter()
                .flatten()
                .collect(),
        }
    }

    /// A property naming one VM.
    fn one_vm(&mut self, prop: &'static str) -> Option<String> {
        match self.node.strings(prop) {
            Ok(list) => match list.as_slice() {
                [] => {
                    self.bad(prop, "missing");
                    None
                }
                [vm] => Some((*vm).to_string()),
                _ => {
                    self.bad(prop, "must be one VM name, not a list");
                    None
                }
            },
            Err(e) => {
                self.problem(dt_problem(&e));
                None
            }
        }
    }

    fn u32_in(
        &mut self,
        name: &'static str,
        default: u32,
        range: core::ops::RangeInclusive<u32>,
        unit: &str,
    ) -> Option<u32> {
        u32_in(self.node, name, default, range, unit)
            .map_err(|p| self.problem(p))
            .ok()
    }
}

//! Naming tensors by their path from the root of the object tree.
//!
//! A path joins dict keys (ints in decimal, strings as they are, even when they contain `.`),
//! list and tuple indices, and object attributes with `.`; a tensor at the root is `""`. A
//! tensor reachable along two paths is listed under both. The walk is iterative, stops at
//! cycles, and is bounded by `max_depth` and `max_walk` (visits) and `max_name_bytes` (the text
//! made: each key's text once, and each name): paths are kept as links to their parent until a
//! tensor is found, so a deep path of long keys costs its bytes once, not once per level.

#![forbid(unsafe_code)]

use crate::hashing::{FastMap, FastSet};
use crate::limits::Limit;
use crate::pickle::text;
use crate::pickle::tree::{Node, Tree, ValueId};
use crate::pyrepr::{bytes_repr, complex_repr, float_repr, str_repr};
use crate::torch::Tables;
use crate::{Error, ErrorKind, Limits, Result};

/// One step of a path: the link to the step before and the text of this one.
struct Link {
    parent: Option<u32>,
    segment: u32,
    /// Bytes of the whole path up to here, dots included.
    len: usize,
}

/// The budget of `max_name_bytes`.
struct Budget {
    left: u64,
    max: u64,
}

impl Budget {
    fn spend(&mut self, n: usize) -> Result<()> {
        self.left = self
            .left
            .checked_sub(n as u64)
            .ok_or_else(|| Error::limit_in(Limit::MaxNameBytes, self.max, "the names of the tensors"))?;
        Ok(())
    }
}

/// The paths of the tensors of a checkpoint: all their text in one string (a state dict of
/// 20,000 tensors would otherwise allocate 20,000 strings), each with the index of its tensor.
#[derive(Debug, Default)]
pub(crate) struct TensorNames {
    text: String,
    /// Where each path ends in `text` (it starts where the one before ends), and its tensor.
    ends: Vec<(usize, u32)>,
}

impl TensorNames {
    /// The number of paths.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no path.
    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The path at `position` and its tensor.
    pub(crate) fn get(&self, position: usize) -> Option<(&str, u32)> {
        let &(end, tensor) = self.ends.get(position)?;
        let start = match position.checked_sub(1) {
            Some(before) => self.ends.get(before)?.0,
            None => 0,
        };
        Some((self.text.get(start..end)?, tensor))
    }

    /// Every path and its tensor, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&(end, tensor)| {
            let name = self.text.get(start..end).unwrap_or_default();
            start = end;
            (name, tensor)
        })
    }
}

/// The path of every tensor reachable from the root, in depth-first order.
pub(crate) fn tensor_paths(tree: &Tree<'_>, tables: &Tables<'_>, limits: &Limits) -> Result<TensorNames> {
    enum Step {
        Enter { id: ValueId, link: Option<u32>, depth: u64 },
        Leave(ValueId),
    }
    // Only values that lead to a tensor are walked: the rest of the tree (configs, inert
    // objects of lenient files) costs one linear pass, however it is shared or nested.
    let bearing = tensor_bearing(tree, tables);
    let is_bearing = |id: ValueId| bearing.get(id.index()).copied().unwrap_or(false);
    let mut names = Names {
        links: Vec::new(),
        segments: Vec::new(),
        made: String::new(),
        by_label: FastMap::default(),
        scratch: Vec::new(),
        budget: Budget {
            left: limits.max_name_bytes,
            max: limits.max_name_bytes,
        },
    };
    // About one link per tensor (a state dict's keys): room made once, not by rehashing.
    let _ = names.by_label.try_reserve(tables.tensors.len());
    let _ = names.links.try_reserve(tables.tensors.len());
    let mut found = TensorNames::default();
    let _ = found.ends.try_reserve(tables.tensors.len());
    // The paths' bytes: text from the tree and text made here, all UTF-8 (checked once, at the
    // end, rather than key by key).
    let mut text: Vec<u8> = Vec::new();
    let mut on_path: FastSet<ValueId> = FastSet::default();
    let mut stack = vec![Step::Enter {
        id: tree.root_id(),
        link: None,
        depth: 0,
    }];
    let mut visits = 0u64;
    while let Some(step) = stack.pop() {
        let (id, link, depth) = match step {
            Step::Leave(id) => {
                on_path.remove(&id);
                continue;
            }
            Step::Enter { id, link, depth } => (id, link, depth),
        };
        if !is_bearing(id) {
            continue;
        }
        visits += 1;
        if visits > limits.max_walk {
            return Err(Error::limit_in(Limit::MaxWalk, limits.max_walk, "the object tree"));
        }
        if depth > limits.max_depth {
            return Err(Error::limit_in(Limit::MaxDepth, limits.max_depth, "the object tree"));
        }
        if let Node::Tensor(index) = tree.node(id) {
            names.path(link, &mut text)?;
            found.ends.push((text.len(), *index));
        }
        let children = children(tree, Some(tables), id);
        if children.is_empty() || !on_path.insert(id) {
            continue; // a leaf, or a value containing itself
        }
        stack.push(Step::Leave(id));
        let _ = stack.try_reserve(children.len());
        for (label, child) in children.into_iter().rev() {
            if !is_bearing(child) {
                continue;
            }
            let link = Some(names.link(tree, link, label)?);
            stack.push(Step::Enter {
                id: child,
                link,
                depth: depth + 1,
            });
        }
    }
    found.text = String::from_utf8(text).map_err(|_| ErrorKind::Unsupported {
        what: "a tensor path that is not UTF-8".into(),
    })?;
    Ok(found)
}

/// The text of a path segment: a string key's own text in the tree, or text made for it (an
/// index, another key's `str()`) in [`Names::made`].
#[derive(Clone, Copy)]
enum Segment<'t> {
    Key(&'t [u8]),
    Made(usize, usize),
}

/// Path links and the texts of their segments, each made once.
struct Names<'t> {
    links: Vec<Link>,
    segments: Vec<Segment<'t>>,
    /// The text of the segments that are not string keys, one after the other.
    made: String,
    by_label: FastMap<Label, u32>,
    budget: Budget,
    /// The segments of the path being built, reused from path to path.
    scratch: Vec<u32>,
}

impl<'t> Names<'t> {
    /// A link from `parent` by `label`.
    fn link(&mut self, tree: &'t Tree<'_>, parent: Option<u32>, label: Label) -> Result<u32> {
        let segment = match self.by_label.get(&label) {
            Some(&s) => s,
            None => {
                let key_text = match label {
                    Label::Key(k) => tree.text_bytes(k),
                    Label::Index(_) => None,
                };
                let segment = match key_text {
                    Some(text) => {
                        self.budget.spend(text.len())?;
                        Segment::Key(text)
                    }
                    None => {
                        let text = label.text(tree, &mut self.budget)?;
                        let start = self.made.len();
                        self.made.push_str(&text);
                        Segment::Made(start, self.made.len())
                    }
                };
                self.segments.push(segment);
                let s = (self.segments.len() - 1) as u32;
                self.by_label.insert(label, s);
                s
            }
        };
        let own = self.text(segment).len();
        let len = match parent.and_then(|p| self.links.get(p as usize)) {
            Some(p) => p.len.saturating_add(1).saturating_add(own),
            None => own,
        };
        self.links.push(Link { parent, segment, len });
        Ok((self.links.len() - 1) as u32)
    }

    /// The text of a segment.
    fn text(&self, segment: u32) -> &[u8] {
        match self.segments.get(segment as usize) {
            Some(&Segment::Key(text)) => text,
            Some(&Segment::Made(start, end)) => self.made.as_bytes().get(start..end).unwrap_or_default(),
            None => &[],
        }
    }

    /// Appends the full path of a link to `out`, charged to the budget before it is built.
    fn path(&mut self, link: Option<u32>, out: &mut Vec<u8>) -> Result<()> {
        let Some(last) = link.and_then(|l| self.links.get(l as usize)) else {
            return Ok(());
        };
        self.budget.spend(last.len)?;
        out.try_reserve(last.len)
            .map_err(|_| ErrorKind::OutOfMemory { bytes: last.len as u64 })?;
        let mut parts = std::mem::take(&mut self.scratch);
        parts.clear();
        let mut at = link;
        while let Some(l) = at.and_then(|l| self.links.get(l as usize)) {
            parts.push(l.segment);
            at = l.parent;
        }
        for (i, &segment) in parts.iter().rev().enumerate() {
            if i > 0 {
                out.push(b'.');
            }
            out.extend_from_slice(self.text(segment));
        }
        self.scratch = parts;
        Ok(())
    }
}

/// Which values lead to a tensor: tensors themselves and everything that reaches one. Computed
/// backwards from the tensors over the edges reachable from the root, so cycles and sharing
/// cost nothing extra.
fn tensor_bearing(tree: &Tree<'_>, tables: &Tables<'_>) -> Vec<bool> {
    let n = tree.len();
    let mut reached = vec![false; n];
    let mut edges: Vec<(u32, u32)> = Vec::new(); // (child, parent)
    let mut tensors = Vec::with_capacity(tables.tensors.len());
    let mut queue = vec![tree.root_id()];
    if let Some(r) = reached.get_mut(tree.root_id().index()) {
        *r = true;
    }
    while let Some(id) = queue.pop() {
        if matches!(tree.node(id), Node::Tensor(_)) {
            tensors.push(id);
        }
        let children = children(tree, Some(tables), id);
        // The children exist: room for their edges at once, not by doubling.
        let _ = edges.try_reserve(children.len());
        for (_, child) in children {
            edges.push((child.0, id.0));
            if let Some(seen @ false) = reached.get_mut(child.index()) {
                *seen = true;
                queue.push(child);
            }
        }
    }
    edges.sort_unstable();
    let mut bearing = vec![false; n];
    for &t in &tensors {
        if let Some(b) = bearing.get_mut(t.index()) {
            *b = true;
        }
    }
    let mut queue = tensors;
    while let Some(id) = queue.pop() {
        let start = edges.partition_point(|&(c, _)| c < id.0);
        for &(c, parent) in edges.get(start..).unwrap_or_default() {
            if c != id.0 {
                break;
            }
            if let Some(b @ false) = bearing.get_mut(parent as usize) {
                *b = true;
                queue.push(ValueId(parent));
            }
        }
    }
    bearing
}

/// How a child hangs off its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Label {
    Index(usize),
    Key(ValueId),
}

impl Label {
    fn text(self, tree: &Tree<'_>, budget: &mut Budget) -> Result<String> {
        match self {
            Label::Index(i) => {
                let text = i.to_string();
                budget.spend(text.len())?;
                Ok(text)
            }
            Label::Key(k) => key_segment(tree, k, budget),
        }
    }
}

/// The labelled children of a container, an object, or a tensor with Python attributes.
fn children(tree: &Tree<'_>, tables: Option<&Tables<'_>>, id: ValueId) -> Vec<(Label, ValueId)> {
    let indexed = |items: &[ValueId]| {
        items
            .iter()
            .enumerate()
            .map(|(i, &c)| (Label::Index(i), c))
            .collect::<Vec<_>>()
    };
    let keyed = |items: &[(ValueId, ValueId)]| items.iter().map(|&(k, v)| (Label::Key(k), v)).collect::<Vec<_>>();
    match tree.node(id) {
        // Sets and frozensets have no order to name their elements by: not walked, as in the
        // corpus rule.
        Node::List(items) => indexed(items),
        Node::Tuple(items) => indexed(tree.items(*items)),
        Node::Dict(dict) => {
            // Items, then attributes set by BUILD (an OrderedDict's `_metadata`), as Python's
            // `vars()` would show them.
            let mut out = keyed(&dict.items);
            if let Some(Node::Dict(attributes)) = dict.attributes.map(|s| tree.node(s)) {
                out.extend(keyed(&attributes.items));
            }
            out
        }
        Node::Object(obj) => {
            let mut out = obj.state.map(|s| attributes(tree, s)).unwrap_or_default();
            out.extend(indexed(&obj.items));
            out.extend(keyed(&obj.dict_items));
            out
        }
        // A tensor's Python attributes are walked like an object's.
        Node::Tensor(index) => tables
            .and_then(|t| t.attributes_of(*index))
            .map(|s| attributes(tree, s))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Attributes from a pickled state: a dict, or a `(dict, slots)` tuple of dicts.
fn attributes(tree: &Tree<'_>, state: ValueId) -> Vec<(Label, ValueId)> {
    let keyed = |items: &[(ValueId, ValueId)]| items.iter().map(|&(k, v)| (Label::Key(k), v)).collect::<Vec<_>>();
    match tree.node(state) {
        Node::Dict(d) => keyed(&d.items),
        Node::Tuple(parts) => tree
            .items(*parts)
            .iter()
            .filter_map(|&part| match tree.node(part) {
                Node::Dict(d) => Some(keyed(&d.items)),
                _ => None,
            })
            .flatten()
            .collect(),
        _ => Vec::new(),
    }
}

/// A dict key as a path segment: strings as they are, other keys as Python's `str()` shows them.
fn key_segment(tree: &Tree<'_>, key: ValueId, budget: &mut Budget) -> Result<String> {
    if let Some(s) = tree.text(key) {
        budget.spend(s.len())?;
        return Ok(s.to_owned());
    }
    let mut out = Repr {
        text: String::new(),
        budget,
    };
    out.value(tree, key, 0)?;
    Ok(out.text)
}

/// Python's `str()` of an allowlisted global used as a value: a dtype, layout or qscheme is
/// its name (`torch.float32`), a class `<class 'module.Name'>`, a storage type
/// `StorageType(dtype=torch.float32)`; `None` for functions (their `str()` shows an address)
/// and names this reader does not know.
fn global_str(module: &str, name: &str) -> Option<String> {
    use crate::pickle::builtins::Builtin;
    use crate::torch::globals::{lookup, Global};
    if module == "torch" && (name.starts_with("sparse_") || matches!(name, "strided" | "_mkldnn" | "jagged")) {
        return Some(format!("torch.{name}"));
    }
    let (global, _) = lookup(module, name)?;
    Some(match global {
        Global::DType => match crate::DType::from_name(name) {
            Some(d) => format!("torch.{}", d.name()),
            None => format!("torch.{name}"),
        },
        Global::QScheme => format!("torch.{name}"),
        Global::StorageType(d) => format!("StorageType(dtype=torch.{})", d.name()),
        Global::Builtin(Builtin::Encode) | Global::Rebuild(_) | Global::GetLayout => return None,
        Global::Builtin(_) if module == "builtins" => format!("<class '{name}'>"),
        _ => format!("<class '{module}.{name}'>"),
    })
}

/// Python-style `repr` of simple values, written within the name budget.
struct Repr<'b> {
    text: String,
    budget: &'b mut Budget,
}

impl Repr<'_> {
    fn push(&mut self, s: &str) -> Result<()> {
        self.budget.spend(s.len())?;
        self.text.push_str(s);
        Ok(())
    }

    fn value(&mut self, tree: &Tree<'_>, id: ValueId, depth: usize) -> Result<()> {
        if depth > 8 {
            return self.push("...");
        }
        match tree.node(id) {
            Node::None => self.push("None"),
            Node::Bool(true) => self.push("True"),
            Node::Bool(false) => self.push("False"),
            Node::Int(i) => self.push(&i.to_string()),
            Node::BigInt(span) => match text::big_to_decimal(tree.bytes_of(*span)) {
                Some(decimal) => self.push(&decimal),
                // Python's own `str()` refuses such an integer (sys.int_info.default_max_str_digits).
                None => Err(ErrorKind::Unsupported {
                    what: format!(
                        "naming a tensor by a dict key that is an integer of more than {} digits",
                        text::MAX_DECIMAL_DIGITS
                    ),
                }
                .into()),
            },
            Node::Float(f) => self.push(&float_repr(*f)),
            Node::Complex(re, im) => self.push(&complex_repr(*re, *im)),
            Node::Str(_) => {
                let s = tree.text(id).unwrap_or_default();
                // The repr is at most 4 times as long: charged before it is made.
                self.budget.spend(s.len().saturating_mul(3))?;
                self.push(&str_repr(s))
            }
            Node::Bytes(span) => {
                let bytes = tree.bytes_of(*span);
                self.budget.spend(bytes.len().saturating_mul(3))?;
                self.push(&bytes_repr(bytes))
            }
            Node::Tuple(items) => {
                let items = tree.items(*items);
                self.push("(")?;
                for (i, &item) in items.iter().enumerate() {
                    if i > 0 {
                        self.push(", ")?;
                    }
                    self.value(tree, item, depth + 1)?;
                }
                self.push(if items.len() == 1 { ",)" } else { ")" })
            }
            Node::Global(g) => match global_str(&g.module, &g.name) {
                Some(text) => self.push(&text),
                None => Err(ErrorKind::Unsupported {
                    what: format!(
                        "naming a tensor by a dict key that is the function {}.{} (whose str() shows an address)",
                        g.module, g.name
                    ),
                }
                .into()),
            },
            Node::Object(o) if tree.global(o.callable) == Some(("torch", "device")) => {
                let args = tree.seq(o.args).unwrap_or_default();
                let text = match args {
                    [kind, index] => format!(
                        "{}:{}",
                        tree.text(*kind).unwrap_or_default(),
                        tree.as_int(*index).unwrap_or(0)
                    ),
                    [spec] => tree.text(*spec).unwrap_or_default().to_owned(),
                    _ => String::new(),
                };
                self.push(&text)
            }
            _ => Err(ErrorKind::Unsupported {
                what: format!(
                    "naming a tensor by a dict key that is a {} (whose str() this reader does not reproduce)",
                    tree.type_name(id)
                ),
            }
            .into()),
        }
    }
}

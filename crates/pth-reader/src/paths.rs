//! Naming tensors by their path from the root of the object tree.
//!
//! A path joins dict keys (ints in decimal, strings as they are, even when they contain `.`),
//! list and tuple indices, and object attributes with `.`; a tensor at the root is `""`. A
//! tensor reachable along two paths is listed under both. The walk is iterative, stops at
//! cycles, and is bounded by `max_depth` and `max_walk`.

#![forbid(unsafe_code)]

use std::collections::HashSet;

use crate::pickle::tree::{Node, Tree, ValueId};
use crate::value::Tables;
use crate::{Error, Limits, Result};

/// `(path, tensor index)` for every tensor reachable from the root, in depth-first order.
pub(crate) fn tensor_paths(tree: &Tree, tables: &Tables<'_>, limits: &Limits) -> Result<Vec<(String, u32)>> {
    enum Step {
        Enter { id: ValueId, path: String, depth: u64 },
        Leave(ValueId),
    }
    // Only values that lead to a tensor are walked: the rest of the tree (configs, inert
    // objects of lenient files) costs one linear pass, however it is shared or nested.
    let bearing = tensor_bearing(tree);
    let mut found = Vec::new();
    let mut on_path: HashSet<ValueId> = HashSet::new();
    let mut stack = vec![Step::Enter {
        id: tree.root_id(),
        path: String::new(),
        depth: 0,
    }];
    let mut visits = 0u64;
    while let Some(step) = stack.pop() {
        let (id, path, depth) = match step {
            Step::Leave(id) => {
                on_path.remove(&id);
                continue;
            }
            Step::Enter { id, path, depth } => (id, path, depth),
        };
        if !bearing.get(id.index()).copied().unwrap_or(false) {
            continue;
        }
        visits += 1;
        if visits > limits.max_walk {
            return Err(Error::LimitExceeded {
                context: "the object tree".into(),
                limit: "max_walk",
                max: limits.max_walk,
            });
        }
        if depth > limits.max_depth {
            return Err(Error::LimitExceeded {
                context: format!("the object tree at {path:?}"),
                limit: "max_depth",
                max: limits.max_depth,
            });
        }
        if let Node::Tensor(index) = tree.node(id) {
            found.push((path.clone(), *index));
        }
        let children = children(tree, tables, id);
        if children.is_empty() || !on_path.insert(id) {
            continue; // a leaf, or a value containing itself
        }
        stack.push(Step::Leave(id));
        for (label, child) in children.into_iter().rev() {
            if !bearing.get(child.index()).copied().unwrap_or(false) {
                continue;
            }
            let segment = label.segment(tree);
            let path = if depth == 0 && path.is_empty() {
                segment
            } else {
                format!("{path}.{segment}")
            };
            stack.push(Step::Enter {
                id: child,
                path,
                depth: depth + 1,
            });
        }
    }
    Ok(found)
}

/// Which values lead to a tensor: tensors themselves and everything that reaches one. Computed
/// backwards from the tensors over the edges reachable from the root, so cycles and sharing
/// cost nothing extra.
fn tensor_bearing(tree: &Tree) -> Vec<bool> {
    let n = tree.len();
    let mut reached = vec![false; n];
    let mut edges: Vec<(u32, u32)> = Vec::new(); // (child, parent)
    let mut tensors = Vec::new();
    let mut queue = vec![tree.root_id()];
    if let Some(r) = reached.get_mut(tree.root_id().index()) {
        *r = true;
    }
    // Tables are not needed here: tensor attributes hang off `Tensor` nodes, which are
    // bearing anyway.
    while let Some(id) = queue.pop() {
        if matches!(tree.node(id), Node::Tensor(_)) {
            tensors.push(id);
        }
        for child in child_ids(tree, id) {
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
enum Label {
    Index(usize),
    Key(ValueId),
}

impl Label {
    fn segment(&self, tree: &Tree) -> String {
        match self {
            Label::Index(i) => i.to_string(),
            Label::Key(k) => key_segment(tree, *k),
        }
    }
}

/// The ids of a value's children, for reachability (no names).
fn child_ids(tree: &Tree, id: ValueId) -> Vec<ValueId> {
    match tree.node(id) {
        Node::Tensor(_) => Vec::new(),
        _ => children_of(tree, id, None).into_iter().map(|(_, c)| c).collect(),
    }
}

/// The labelled children of a container, an object, or a tensor with Python attributes.
fn children(tree: &Tree, tables: &Tables<'_>, id: ValueId) -> Vec<(Label, ValueId)> {
    children_of(tree, id, Some(tables))
}

fn children_of(tree: &Tree, id: ValueId, tables: Option<&Tables<'_>>) -> Vec<(Label, ValueId)> {
    let indexed = |items: &[ValueId]| {
        items
            .iter()
            .enumerate()
            .map(|(i, &c)| (Label::Index(i), c))
            .collect::<Vec<_>>()
    };
    let keyed = |items: &[(ValueId, ValueId)]| items.iter().map(|&(k, v)| (Label::Key(k), v)).collect::<Vec<_>>();
    match tree.node(id) {
        Node::List(items) | Node::Set(items) => indexed(items),
        Node::Tuple(items) | Node::FrozenSet(items) => indexed(items),
        Node::Dict(dict) => {
            // Items, then attributes set by BUILD (an OrderedDict's `_metadata`), as Python's
            // `vars()` would show them.
            let mut out = keyed(&dict.items);
            if let Some(Node::Dict(state)) = dict.state.map(|s| tree.node(s)) {
                out.extend(keyed(&state.items));
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
fn attributes(tree: &Tree, state: ValueId) -> Vec<(Label, ValueId)> {
    let keyed = |items: &[(ValueId, ValueId)]| items.iter().map(|&(k, v)| (Label::Key(k), v)).collect::<Vec<_>>();
    match tree.node(state) {
        Node::Dict(d) => keyed(&d.items),
        Node::Tuple(parts) => parts
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
pub(crate) fn key_segment(tree: &Tree, key: ValueId) -> String {
    match tree.node(key) {
        Node::Str(s) => s.to_string(),
        _ => python_repr(tree, key, 0),
    }
}

/// A short Python-style `repr` of simple values (for keys; containers are bounded in depth).
pub(crate) fn python_repr(tree: &Tree, id: ValueId, depth: usize) -> String {
    if depth > 8 {
        return "...".into();
    }
    match tree.node(id) {
        Node::None => "None".into(),
        Node::Bool(true) => "True".into(),
        Node::Bool(false) => "False".into(),
        Node::Int(i) => i.to_string(),
        Node::BigInt(b) if b.len() <= 4096 => crate::pickle::text::big_to_decimal(b),
        Node::Float(f) => float_repr(*f),
        Node::Str(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Node::Bytes(b) => format!("b'{}'", b.escape_ascii()),
        Node::Tuple(items) => {
            let parts: Vec<String> = items.iter().map(|&i| python_repr(tree, i, depth + 1)).collect();
            if parts.len() == 1 {
                format!("({},)", parts.join(""))
            } else {
                format!("({})", parts.join(", "))
            }
        }
        Node::Global(g) => format!("{}.{}", g.module, g.name),
        _ => "<object>".into(),
    }
}

/// Python's `repr(float)`: shortest round-trip digits, positional from 1e-4 up to 1e16.
pub(crate) fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e5", "1e-7".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if (-4..16).contains(&exp) {
        if exp < 0 {
            let zeros = "0".repeat((-exp - 1) as usize);
            return format!("{sign}0.{zeros}{digits}");
        }
        let point = exp as usize + 1;
        return match digits.split_at_checked(point) {
            Some((int, frac)) if !frac.is_empty() => format!("{sign}{int}.{frac}"),
            _ => format!("{sign}{digits}{}.0", "0".repeat(point.saturating_sub(digits.len()))),
        };
    }
    let mantissa = match digits.split_at_checked(1) {
        Some((first, rest)) if !rest.is_empty() => format!("{first}.{rest}"),
        _ => digits.clone(),
    };
    format!("{sign}{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

#[cfg(test)]
mod tests {
    use super::float_repr;

    #[test]
    fn floats_print_like_python() {
        assert_eq!(float_repr(1.0), "1.0");
        assert_eq!(float_repr(0.1), "0.1");
        assert_eq!(float_repr(-2.5), "-2.5");
        assert_eq!(float_repr(1e-7), "1e-07");
        assert_eq!(float_repr(1e22), "1e+22");
        assert_eq!(float_repr(123456.0), "123456.0");
        assert_eq!(float_repr(f64::NAN), "nan");
        assert_eq!(float_repr(-0.0), "-0.0");
        assert_eq!(float_repr(0.0001), "0.0001");
        assert_eq!(float_repr(1e16), "1e+16");
        assert_eq!(float_repr(1234.5678), "1234.5678");
    }
}

//! Turns the standard library's pickled reconstructions into plain values.
//!
//! Python pickles some builtins as calls: `set` as `builtins.set([...])`, `bytes` at protocol
//! 2 as `_codecs.encode('\xff', 'latin1')`, `OrderedDict` as `OrderedDict()` plus `SETITEMS`.
//! These calls are rewritten in place into the values Python would have built, so users (and
//! the torch layer) see a set, bytes or a dict instead of an opaque object. Nothing else is
//! interpreted here.

use super::tree::{DictNode, Node, Tree, ValueId};

/// Rewrites every recognised reconstruction in `tree`, then gives every dict Python's key
/// semantics.
pub(crate) fn normalize(tree: &mut Tree) {
    for index in 0..tree.nodes.len() {
        let id = ValueId(index as u32);
        if let Some(node) = rebuilt(tree, id) {
            tree.replace(id, node);
        }
    }
    for index in 0..tree.nodes.len() {
        let id = ValueId(index as u32);
        if let Some(items) = deduplicated(tree, id) {
            if let Some(Node::Dict(dict)) = tree.node_mut(id) {
                dict.items = items;
            }
        }
    }
}

/// A dict key as Python compares it, for the key types that matter (strings, integers,
/// booleans, integral floats, bytes, None); `None` for keys left as they are.
#[derive(PartialEq, Eq, Hash)]
enum KeyIdentity<'a> {
    Str(&'a str),
    Int(i64),
    Big(&'a [u8]),
    Bytes(&'a [u8]),
    NoneKey,
}

fn key_identity(tree: &Tree, key: ValueId) -> Option<KeyIdentity<'_>> {
    Some(match tree.node(key) {
        Node::Str(s) => KeyIdentity::Str(s),
        Node::Int(i) => KeyIdentity::Int(*i),
        // True == 1 and 1.0 == 1 in Python, with equal hashes.
        Node::Bool(b) => KeyIdentity::Int(i64::from(*b)),
        Node::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => KeyIdentity::Int(*f as i64),
        Node::BigInt(b) => KeyIdentity::Big(b),
        Node::Bytes(b) => KeyIdentity::Bytes(b),
        Node::None => KeyIdentity::NoneKey,
        _ => return None,
    })
}

/// A dict's items with repeated keys merged as Python's dict merges them (first position,
/// last value), or `None` when no key repeats.
fn deduplicated(tree: &Tree, id: ValueId) -> Option<Vec<(ValueId, ValueId)>> {
    let Node::Dict(dict) = tree.node(id) else { return None };
    let mut first: std::collections::HashMap<KeyIdentity<'_>, usize> = std::collections::HashMap::new();
    let mut merged: Vec<(ValueId, ValueId)> = Vec::with_capacity(dict.items.len());
    let mut repeated = false;
    for &(k, v) in &dict.items {
        match key_identity(tree, k) {
            Some(identity) => match first.get(&identity) {
                Some(&at) => {
                    repeated = true;
                    if let Some(slot) = merged.get_mut(at) {
                        slot.1 = v;
                    }
                }
                None => {
                    first.insert(identity, merged.len());
                    merged.push((k, v));
                }
            },
            None => merged.push((k, v)),
        }
    }
    repeated.then_some(merged)
}

/// The plain value an object node stands for, if it is a recognised builtin reconstruction.
fn rebuilt(tree: &Tree, id: ValueId) -> Option<Node> {
    let Node::Object(obj) = tree.node(id) else {
        return None;
    };
    let (module, name) = tree.global(obj.callable)?;
    let args = tree.seq(obj.args).unwrap_or(&[]);
    let arg = |i: usize| args.get(i).copied();
    match (module, name) {
        ("collections", "OrderedDict" | "Counter") => {
            let mut items = match arg(0).map(|a| tree.node(a)) {
                Some(Node::Dict(d)) => d.items.clone(),
                // OrderedDict([(k, v), ...]) in old protocols.
                Some(Node::List(pairs)) => pairs
                    .iter()
                    .filter_map(|&p| match tree.seq(p) {
                        Some(&[k, v]) => Some((k, v)),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            items.extend(obj.dict_items.iter().copied());
            Some(Node::Dict(Box::new(DictNode {
                items,
                class: Some(obj.callable),
                state: obj.state,
            })))
        }
        ("builtins", "set" | "frozenset") => {
            let items = match arg(0) {
                None => Vec::new(),
                Some(a) => elements(tree, a)?.to_vec(),
            };
            Some(if name == "set" {
                Node::Set(items)
            } else {
                Node::FrozenSet(items.into())
            })
        }
        ("builtins", "bytearray") => match (arg(0), arg(1)) {
            (None, _) => Some(Node::ByteArray(Box::new([]))),
            (Some(a), None) => match tree.node(a) {
                Node::Bytes(b) => Some(Node::ByteArray(b.clone())),
                _ => None,
            },
            (Some(text), Some(encoding)) => encode(tree, text, encoding).map(|b| Node::ByteArray(b.into())),
        },
        ("builtins", "bytes") if args.is_empty() => Some(Node::Bytes(Box::new([]))),
        ("_codecs", "encode") => encode(tree, arg(0)?, arg(1)?).map(|b| Node::Bytes(b.into())),
        ("builtins", "complex") => {
            let part = |i: usize| match arg(i).map(|a| tree.node(a)) {
                None => Some(0.0),
                Some(Node::Float(f)) => Some(*f),
                Some(Node::Int(i)) => Some(*i as f64),
                Some(Node::Bool(b)) => Some(f64::from(u8::from(*b))),
                _ => None,
            };
            Some(Node::Complex(part(0)?, part(1)?))
        }
        _ => None,
    }
}

/// Elements of a list, tuple, set or frozenset.
fn elements(tree: &Tree, id: ValueId) -> Option<&[ValueId]> {
    match tree.node(id) {
        Node::List(v) | Node::Set(v) => Some(v),
        Node::Tuple(v) | Node::FrozenSet(v) => Some(v),
        _ => None,
    }
}

/// `str.encode(encoding)` for the encodings pickles use for bytes.
fn encode(tree: &Tree, text: ValueId, encoding: ValueId) -> Option<Vec<u8>> {
    let text = tree.as_str(text)?;
    match tree.as_str(encoding)?.to_ascii_lowercase().replace('_', "-").as_str() {
        "latin1" | "latin-1" | "iso-8859-1" => text.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect(),
        "utf-8" | "utf8" => Some(text.as_bytes().to_vec()),
        "ascii" => text.is_ascii().then(|| text.as_bytes().to_vec()),
        _ => None,
    }
}

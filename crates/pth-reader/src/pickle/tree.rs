//! The decoded object graph: an arena of nodes addressed by [`ValueId`].
//!
//! Values live in one `Vec` and refer to each other by index. That gives Python's sharing
//! semantics for free (the memo, `DUP` and `GET` hand out the same id, and a later `APPEND` or
//! `SETITEM` is seen through every reference), makes cycles harmless, and makes dropping a
//! million-deep structure a flat loop rather than a recursion.
//!
//! Text, bytes and big integers read from the pickle are not copied: a node holds a [`Span`]
//! of the pickle's own bytes (which the tree keeps alive). Only bytes made by the machine or by
//! a call (`bytearray(5)`, `_codecs.encode(...)`, a dict key's decimal form) are owned, and
//! those are charged to [`Limits::max_value_bytes`](crate::Limits::max_value_bytes), as every
//! node is charged to `max_values`.

use super::keys::{KeyId, KeyTable};
use crate::hashing::FastMap;
use crate::limits::Limit;
use crate::{Error, Limits, Result, SharedBytes};

/// The position of a value in its tree: equal ids are the same (shared) value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub(crate) u32);

impl ValueId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// Bytes of a node: a range of the pickle's bytes, or one of the tree's owned buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// Offset into the source, or (with [`Span::OWNED`] set) an index into `owned`.
    at: u64,
    len: u64,
}

impl Span {
    const OWNED: u64 = 1 << 63;

    pub(crate) fn len(self) -> usize {
        self.len as usize
    }
}

/// One decoded value. Containers refer to their elements by id.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    None,
    Bool(bool),
    Int(i64),
    /// An integer beyond 64 bits: little-endian two's complement, trimmed (as `LONG1` carries it).
    BigInt(Span),
    Float(f64),
    Complex(f64, f64),
    /// Text as UTF-8 that may hold encoded surrogates (Python's `surrogatepass`): equal strings
    /// have equal bytes. [`Tree::text`] shows surrogates as U+FFFD.
    Str(Span),
    Bytes(Span),
    ByteArray(Span),
    List(Vec<ValueId>),
    /// Elements in the tree's pool ([`Tree::items`]): tuples never change once made.
    Tuple(Items),
    Set(Box<SetNode>),
    FrozenSet(Items),
    Dict(Box<DictNode>),
    Global(Box<GlobalNode>),
    Object(Box<ObjectNode>),
    /// A persistent id (`PERSID`/`BINPERSID`) that no layer resolved (standalone pickles).
    PersistentId(ValueId),
    /// A tensor, by index into the tables of the layer that made it (the torch layer).
    Tensor(u32),
    /// A storage, by index into the tables of the layer that made it (the torch layer).
    Storage(u32),
}

/// The elements of a tuple or frozenset: a range of the tree's pool of ids, so that a tuple
/// costs no allocation of its own (a torch state dict makes four per tensor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Items {
    start: u32,
    len: u32,
}

impl Items {
    /// No elements.
    pub(crate) const EMPTY: Items = Items { start: 0, len: 0 };

    pub(crate) fn len(self) -> usize {
        self.len as usize
    }

    pub(crate) fn is_empty(self) -> bool {
        self.len == 0
    }
}

/// Which class a dict node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum DictClass {
    #[default]
    Dict,
    OrderedDict,
    Counter,
    /// A sparse tensor shown as the dict of its parts; the layout's name (`sparse_coo`).
    Sparse(&'static str),
}

impl DictClass {
    /// `(module, name)` of the class, `None` for a plain dict.
    pub(crate) fn name(self) -> Option<(&'static str, &'static str)> {
        match self {
            DictClass::Dict => None,
            DictClass::OrderedDict => Some(("collections", "OrderedDict")),
            DictClass::Counter => Some(("collections", "Counter")),
            DictClass::Sparse(layout) => Some(("torch", layout)),
        }
    }

    /// Whether `SETITEM` may set items (torch's loader: `dict`, `OrderedDict`, `Counter`).
    pub(crate) fn takes_items(self) -> bool {
        !matches!(self, DictClass::Sparse(_))
    }
}

/// A dict, `OrderedDict` or `Counter`: items in insertion order, keys unique as Python compares
/// them (see [`crate::pickle::keys`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct DictNode {
    pub(crate) items: Vec<(ValueId, ValueId)>,
    /// Position in `items` of each key.
    pub(crate) index: FastMap<KeyId, usize>,
    pub(crate) class: DictClass,
    /// The instance `__dict__` (a dict node) set by `BUILD` (a state dict's `_metadata`).
    pub(crate) attributes: Option<ValueId>,
}

/// A set: elements in insertion order, unique as Python compares them.
#[derive(Debug, Clone, Default)]
pub(crate) struct SetNode {
    pub(crate) items: Vec<ValueId>,
    pub(crate) index: FastMap<KeyId, usize>,
}

/// A `GLOBAL`/`STACK_GLOBAL`/`INST` reference: a name, never imported.
#[derive(Debug, Clone)]
pub(crate) struct GlobalNode {
    pub(crate) module: Box<str>,
    pub(crate) name: Box<str>,
}

/// How a call was written in the pickle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Construction {
    /// `REDUCE`: `callable(*args)`.
    Reduce,
    /// `NEWOBJ`/`NEWOBJ_EX`: `cls.__new__(cls, *args, **kwargs)`.
    NewObj,
    /// `INST`/`OBJ`: protocol 0/1 class instantiation.
    Instantiate,
}

/// An object the pickle asked to construct: recorded, never constructed.
#[derive(Debug, Clone)]
pub(crate) struct ObjectNode {
    pub(crate) callable: ValueId,
    pub(crate) args: ValueId,
    pub(crate) kwargs: Option<ValueId>,
    pub(crate) construction: Construction,
    /// Set by `BUILD` (`__setstate__` or `__dict__.update`).
    pub(crate) state: Option<ValueId>,
    /// Items added by `APPEND(S)`/`ADDITEMS` (list or set subclasses, deques).
    pub(crate) items: Vec<ValueId>,
    /// Items added by `SETITEM(S)` (dict subclasses).
    pub(crate) dict_items: Vec<(ValueId, ValueId)>,
}

/// What one input may make the tree hold: values, and bytes beyond the pickle's own.
#[derive(Debug, Clone)]
struct Budget {
    values: u64,
    max_values: u64,
    bytes: u64,
    max_bytes: u64,
}

/// A decoded pickle: the arena, the id of the value `STOP` returned, and the pickle's bytes
/// that text and byte values point into.
#[derive(Debug, Clone)]
pub(crate) struct Tree<'data> {
    pub(crate) nodes: Vec<Node>,
    /// The elements of every tuple and frozenset, one after another.
    pool: Vec<ValueId>,
    pub(crate) root: ValueId,
    source: SharedBytes<'data>,
    owned: Vec<Box<[u8]>>,
    /// Display forms of strings holding lone surrogates (not valid UTF-8), by node.
    lossy: FastMap<ValueId, Box<str>>,
    pub(crate) keys: KeyTable,
    budget: Budget,
}

/// Ids of the constants every tree starts with.
pub(crate) const NONE_ID: ValueId = ValueId(0);
pub(crate) const FALSE_ID: ValueId = ValueId(1);
pub(crate) const TRUE_ID: ValueId = ValueId(2);

impl<'data> Tree<'data> {
    /// An arena over `source` holding only the shared constants.
    pub(crate) fn new(source: SharedBytes<'data>, limits: &Limits) -> Tree<'data> {
        let mut nodes = vec![Node::None, Node::Bool(false), Node::Bool(true)];
        // Room for the nodes a pickle of this size typically makes (one per 6 bytes in a torch
        // state dict), so that the arena does not grow by copying itself many times. Bounded by
        // the source's size, `max_values` and 2^20 nodes (24 MiB: a legacy stream's source
        // runs on through the storages after its pickle; pages never written stay virtual);
        // a refusal only means growing as needed.
        let expected = (source.len() / 6)
            .min(1 << 20)
            .min(usize::try_from(limits.max_values).unwrap_or(usize::MAX));
        let _ = nodes.try_reserve_exact(expected);
        // Likewise the pool of tuple elements: about one per 8 bytes (a state dict's tensor
        // takes about 100 bytes and four tuples of 13 elements in all).
        let mut pool = Vec::new();
        let _ = pool.try_reserve_exact(expected * 3 / 4);
        Tree {
            nodes,
            pool,
            root: NONE_ID,
            source,
            owned: Vec::new(),
            lossy: FastMap::default(),
            keys: KeyTable::default(),
            budget: Budget {
                values: 0,
                max_values: limits.max_values,
                bytes: 0,
                max_bytes: limits.max_value_bytes,
            },
        }
    }

    pub(crate) fn node(&self, id: ValueId) -> &Node {
        // Ids are only minted by `push`, so they are always in range; `None` keeps this total.
        self.nodes.get(id.index()).unwrap_or(&Node::None)
    }

    pub(crate) fn node_mut(&mut self, id: ValueId) -> Option<&mut Node> {
        self.nodes.get_mut(id.index())
    }

    /// Counts `n` units of `max_values` (values created plus container slots filled).
    pub(crate) fn charge(&mut self, n: u64) -> Result<()> {
        self.budget.values = self.budget.values.saturating_add(n);
        if self.budget.values > self.budget.max_values {
            return Err(Error::limit(Limit::MaxValues, self.budget.max_values));
        }
        Ok(())
    }

    /// Counts `n` bytes of `max_value_bytes` before they are allocated.
    pub(crate) fn charge_bytes(&mut self, n: u64) -> Result<()> {
        self.budget.bytes = self.budget.bytes.saturating_add(n);
        if self.budget.bytes > self.budget.max_bytes {
            return Err(Error::limit(Limit::MaxValueBytes, self.budget.max_bytes));
        }
        Ok(())
    }

    /// Appends a node, charging it to `max_values`.
    pub(crate) fn push(&mut self, node: Node) -> Result<ValueId> {
        self.charge(1)?;
        let id =
            ValueId(u32::try_from(self.nodes.len()).map_err(|_| Error::limit(Limit::MaxValues, u64::from(u32::MAX)))?);
        self.nodes.push(node);
        Ok(id)
    }

    /// The elements of a tuple or frozenset.
    pub(crate) fn items(&self, items: Items) -> &[ValueId] {
        let start = items.start as usize;
        self.pool.get(start..start + items.len()).unwrap_or_default()
    }

    /// Adds `items` to the pool. Each element was a value on the machine's stack (or an
    /// argument of a call): the pool grows no faster than the opcodes run.
    fn new_items(&mut self, items: &[ValueId]) -> Result<Items> {
        let too_many = || Error::limit(Limit::MaxValues, u64::from(u32::MAX));
        let start = u32::try_from(self.pool.len()).map_err(|_| too_many())?;
        let len = u32::try_from(items.len()).map_err(|_| too_many())?;
        start.checked_add(len).ok_or_else(too_many)?;
        self.pool.try_reserve(items.len()).map_err(|_| too_many())?;
        self.pool.extend_from_slice(items);
        Ok(Items { start, len })
    }

    /// Adds a tuple of `items`.
    pub(crate) fn push_tuple(&mut self, items: &[ValueId]) -> Result<ValueId> {
        let items = self.new_items(items)?;
        self.push(Node::Tuple(items))
    }

    /// Adds a frozenset of `items` (distinct already).
    pub(crate) fn push_frozenset(&mut self, items: &[ValueId]) -> Result<ValueId> {
        let items = self.new_items(items)?;
        self.push(Node::FrozenSet(items))
    }

    /// A span of the pickle's own bytes (`range` as the machine read it).
    pub(crate) fn source_span(&self, start: usize, len: usize) -> Span {
        Span {
            at: start as u64,
            len: len as u64,
        }
    }

    /// Keeps `bytes` (made by the machine or a call), charging them to `max_value_bytes`.
    pub(crate) fn own(&mut self, bytes: Vec<u8>) -> Result<Span> {
        self.charge_bytes(bytes.len() as u64)?;
        let index = self.owned.len() as u64;
        let len = bytes.len() as u64;
        self.owned.push(bytes.into_boxed_slice());
        Ok(Span {
            at: index | Span::OWNED,
            len,
        })
    }

    /// An empty buffer with room for `n` bytes of a value about to be made and kept with
    /// [`own`](Self::own): refused when `n` would exceed `max_value_bytes`.
    pub(crate) fn buffer(&self, n: usize) -> Result<Vec<u8>> {
        if self.budget.bytes.saturating_add(n as u64) > self.budget.max_bytes {
            return Err(Error::limit(Limit::MaxValueBytes, self.budget.max_bytes));
        }
        let mut out = Vec::new();
        out.try_reserve_exact(n)
            .map_err(|_| Error::limit(Limit::MaxValueBytes, self.budget.max_bytes))?;
        Ok(out)
    }

    /// The bytes of a span.
    pub(crate) fn bytes_of(&self, span: Span) -> &[u8] {
        if span.at & Span::OWNED != 0 {
            let index = (span.at & !Span::OWNED) as usize;
            return self.owned.get(index).map(|b| &b[..]).unwrap_or_default();
        }
        let (Ok(start), Ok(len)) = (usize::try_from(span.at), usize::try_from(span.len)) else {
            return &[];
        };
        self.source
            .as_slice()
            .get(start..start.saturating_add(len))
            .unwrap_or_default()
    }

    /// Adds a string node from its `surrogatepass` UTF-8 bytes (already checked by the caller).
    pub(crate) fn push_str(&mut self, span: Span) -> Result<ValueId> {
        let lossy = match std::str::from_utf8(self.bytes_of(span)) {
            Ok(_) => None,
            Err(_) => Some(super::text::lossy_surrogates(self.bytes_of(span))),
        };
        let id = self.push(Node::Str(span))?;
        if let Some(text) = lossy {
            self.charge_bytes(text.len() as u64)?;
            self.lossy.insert(id, text.into_boxed_str());
        }
        Ok(id)
    }

    /// Adds a string node holding `text`.
    pub(crate) fn push_owned_str(&mut self, text: &str) -> Result<ValueId> {
        let span = self.own(text.as_bytes().to_vec())?;
        self.push(Node::Str(span))
    }

    /// The value `STOP` returned.
    pub(crate) fn root_id(&self) -> ValueId {
        self.root
    }

    /// Number of values in the arena.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// `(module, name)` when `id` is a global reference.
    pub(crate) fn global(&self, id: ValueId) -> Option<(&str, &str)> {
        match self.node(id) {
            Node::Global(g) => Some((&g.module, &g.name)),
            _ => None,
        }
    }

    /// The elements of a tuple or list.
    pub(crate) fn seq(&self, id: ValueId) -> Option<&[ValueId]> {
        match self.node(id) {
            Node::Tuple(items) => Some(self.items(*items)),
            Node::List(items) => Some(items),
            _ => None,
        }
    }

    /// The text of a string node (lone surrogates shown as U+FFFD).
    pub(crate) fn text(&self, id: ValueId) -> Option<&str> {
        match self.node(id) {
            Node::Str(span) => match std::str::from_utf8(self.bytes_of(*span)) {
                Ok(s) => Some(s),
                Err(_) => self.lossy.get(&id).map(|s| &s[..]),
            },
            _ => None,
        }
    }

    /// The UTF-8 bytes of [`text`](Self::text), without checking them again: every str node
    /// is checked when it is made (its bytes are UTF-8, or its text is kept in `lossy`).
    pub(crate) fn text_bytes(&self, id: ValueId) -> Option<&[u8]> {
        match self.node(id) {
            Node::Str(span) => match (!self.lossy.is_empty()).then(|| self.lossy.get(&id)).flatten() {
                Some(lossy) => Some(lossy.as_bytes()),
                None => Some(self.bytes_of(*span)),
            },
            _ => None,
        }
    }

    /// The bytes of a `bytes`, `bytearray` or big-integer node.
    pub(crate) fn blob(&self, id: ValueId) -> Option<&[u8]> {
        match self.node(id) {
            Node::Bytes(s) | Node::ByteArray(s) | Node::BigInt(s) => Some(self.bytes_of(*s)),
            _ => None,
        }
    }

    /// An integer (booleans count, as in Python).
    pub(crate) fn as_int(&self, id: ValueId) -> Option<i64> {
        match self.node(id) {
            Node::Int(i) => Some(*i),
            Node::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// Python's name for the type of a value, for error messages (`'list'`, `'dict'`).
    pub(crate) fn type_name(&self, id: ValueId) -> String {
        let name = match self.node(id) {
            Node::None => "NoneType",
            Node::Bool(_) => "bool",
            Node::Int(_) | Node::BigInt(_) => "int",
            Node::Float(_) => "float",
            Node::Complex(..) => "complex",
            Node::Str(_) => "str",
            Node::Bytes(_) => "bytes",
            Node::ByteArray(_) => "bytearray",
            Node::List(_) => "list",
            Node::Tuple(_) => "tuple",
            Node::Set(_) => "set",
            Node::FrozenSet(_) => "frozenset",
            Node::Dict(d) => match d.class {
                DictClass::Dict => "dict",
                DictClass::Sparse(_) => "torch.Tensor",
                other => return other.name().map(|(m, n)| format!("{m}.{n}")).unwrap_or_default(),
            },
            Node::Global(g) => return format!("global {}.{}", g.module, g.name),
            Node::Object(o) => {
                return match self.global(o.callable) {
                    Some((m, n)) => format!("{m}.{n} object"),
                    None => "object".into(),
                }
            }
            Node::PersistentId(_) => "persistent id",
            Node::Tensor(_) => "torch.Tensor",
            Node::Storage(_) => "torch.storage.TypedStorage",
        };
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `max_values` bounds the arena's memory only while nodes stay small.
    #[test]
    fn nodes_stay_three_words() {
        assert!(std::mem::size_of::<Node>() <= 24, "{}", std::mem::size_of::<Node>());
    }

    #[test]
    fn owned_bytes_are_charged_and_source_bytes_are_not() {
        let source = SharedBytes::from(b"hello".to_vec());
        let limits = Limits {
            max_value_bytes: 4,
            ..Limits::default()
        };
        let mut tree = Tree::new(source, &limits);
        let borrowed = tree.source_span(1, 3);
        assert_eq!(tree.bytes_of(borrowed), b"ell");
        assert!(tree.own(b"abcd".to_vec()).is_ok());
        assert!(tree.own(b"e".to_vec()).is_err());
        assert!(tree.buffer(1).is_err());
    }
}

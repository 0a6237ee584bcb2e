//! [`Value`]: a read-only view of one node of a decoded object tree.

#![forbid(unsafe_code)]

use std::fmt;

use crate::pickle::text;
use crate::pickle::tree::{DictNode, Node, ObjectNode, Tree, ValueId};
use crate::pickle::Construction;
use crate::tensor::{Storage, TensorView};
use crate::torch::Tables;

/// One value of a decoded pickle: a number, a string, a container, a tensor, or an inert object.
///
/// Values are cheap handles (`Copy`) into the tree; containers hand out further values. Shared
/// values (the same list reachable twice) give the same [`ValueId`].
///
/// ```
/// # fn main() -> Result<(), pth_reader::Error> {
/// let ckpt = pth_reader::Checkpoint::open(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint.pth"), &Default::default())?;
/// let root = ckpt.root();
/// assert_eq!(root.get("epoch").and_then(|v| v.as_i64()), Some(3));
/// if let pth_reader::Kind::Dict(model) = root.get("model").unwrap().kind() {
///     for (key, value) in model.iter() {
///         if let Some(tensor) = value.as_tensor() {
///             println!("{}: {:?}", key.as_str().unwrap_or("?"), tensor.shape());
///         }
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Copy)]
pub struct Value<'a> {
    tree: &'a Tree<'a>,
    tables: &'a Tables<'a>,
    id: ValueId,
}

/// What a [`Value`] is.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Kind<'a> {
    /// Python `None`.
    None,
    /// `True`/`False`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A larger integer.
    BigInt(BigInt<'a>),
    /// A float.
    Float(f64),
    /// A complex number.
    Complex {
        /// Real part.
        re: f64,
        /// Imaginary part.
        im: f64,
    },
    /// A string.
    Str(&'a str),
    /// `bytes`.
    Bytes(&'a [u8]),
    /// `bytearray`.
    ByteArray(&'a [u8]),
    /// A list.
    List(Seq<'a>),
    /// A tuple (also `torch.Size`).
    Tuple(Seq<'a>),
    /// A set.
    Set(Seq<'a>),
    /// A frozenset.
    FrozenSet(Seq<'a>),
    /// A dict, `OrderedDict` or `Counter`.
    Dict(Dict<'a>),
    /// A reference to a module-level name (a class, a function, a dtype), never imported.
    Global {
        /// Module path.
        module: &'a str,
        /// Qualified name in the module.
        name: &'a str,
    },
    /// An object the pickle asked to construct, kept inert.
    Object(Object<'a>),
    /// A persistent id that no layer resolved (standalone pickles).
    PersistentId(Value<'a>),
    /// A tensor.
    Tensor(&'a TensorView<'a>),
    /// A bare storage (a file that saved a storage rather than a tensor).
    Storage(&'a Storage<'a>),
}

impl<'a> Value<'a> {
    pub(crate) fn new(tree: &'a Tree<'a>, tables: &'a Tables<'a>, id: ValueId) -> Value<'a> {
        Value { tree, tables, id }
    }

    fn at(&self, id: ValueId) -> Value<'a> {
        Value { id, ..*self }
    }

    /// The value's identity in its tree: equal ids are the same (shared) value.
    pub fn id(&self) -> ValueId {
        self.id
    }

    /// What the value is.
    pub fn kind(&self) -> Kind<'a> {
        let node: &'a Node = self.tree.node(self.id);
        match node {
            Node::None => Kind::None,
            Node::Bool(b) => Kind::Bool(*b),
            Node::Int(i) => Kind::Int(*i),
            Node::BigInt(b) => Kind::BigInt(BigInt {
                bytes: self.tree.bytes_of(*b),
            }),
            Node::Float(f) => Kind::Float(*f),
            Node::Complex(re, im) => Kind::Complex { re: *re, im: *im },
            Node::Str(_) => Kind::Str(self.tree.text(self.id).unwrap_or_default()),
            Node::Bytes(b) => Kind::Bytes(self.tree.bytes_of(*b)),
            Node::ByteArray(b) => Kind::ByteArray(self.tree.bytes_of(*b)),
            Node::List(v) => Kind::List(self.seq(v)),
            Node::Tuple(v) => Kind::Tuple(self.seq(self.tree.items(*v))),
            Node::Set(v) => Kind::Set(self.seq(&v.items)),
            Node::FrozenSet(v) => Kind::FrozenSet(self.seq(self.tree.items(*v))),
            Node::Dict(d) => Kind::Dict(Dict { value: *self, node: d }),
            Node::Global(g) => Kind::Global {
                module: &g.module,
                name: &g.name,
            },
            Node::Object(o) => Kind::Object(Object { value: *self, node: o }),
            Node::PersistentId(pid) => Kind::PersistentId(self.at(*pid)),
            Node::Tensor(i) => match self.tables.tensors.get(*i as usize) {
                Some(t) => Kind::Tensor(t),
                None => Kind::None,
            },
            Node::Storage(i) => match self.tables.storages.get(*i as usize) {
                Some(s) => Kind::Storage(s),
                None => Kind::None,
            },
        }
    }

    fn seq(&self, ids: &'a [ValueId]) -> Seq<'a> {
        Seq { value: *self, ids }
    }

    /// Whether this is `None`.
    pub fn is_none(&self) -> bool {
        matches!(self.kind(), Kind::None)
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self.kind() {
            Kind::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The integer, if this is one that fits in `i64` (booleans count, as in Python).
    pub fn as_i64(&self) -> Option<i64> {
        match self.kind() {
            Kind::Int(i) => Some(i),
            Kind::Bool(b) => Some(i64::from(b)),
            Kind::BigInt(b) => b.to_i128().and_then(|v| i64::try_from(v).ok()),
            _ => None,
        }
    }

    /// The number as `f64`, if this is a float or an integer.
    pub fn as_f64(&self) -> Option<f64> {
        match self.kind() {
            Kind::Float(f) => Some(f),
            Kind::Int(i) => Some(i as f64),
            Kind::Bool(b) => Some(f64::from(u8::from(b))),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&'a str> {
        match self.kind() {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is `bytes` or `bytearray`.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.kind() {
            Kind::Bytes(b) | Kind::ByteArray(b) => Some(b),
            _ => None,
        }
    }

    /// The tensor, if this is one.
    pub fn as_tensor(&self) -> Option<&'a TensorView<'a>> {
        match self.kind() {
            Kind::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// The elements, if this is a list, tuple, set or frozenset.
    pub fn as_seq(&self) -> Option<Seq<'a>> {
        match self.kind() {
            Kind::List(s) | Kind::Tuple(s) | Kind::Set(s) | Kind::FrozenSet(s) => Some(s),
            _ => None,
        }
    }

    /// The dict, if this is one.
    pub fn as_dict(&self) -> Option<Dict<'a>> {
        match self.kind() {
            Kind::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The object, if this is an inert object.
    pub fn as_object(&self) -> Option<Object<'a>> {
        match self.kind() {
            Kind::Object(o) => Some(o),
            _ => None,
        }
    }

    /// `(module, name)`, if this is a global reference.
    pub fn as_global(&self) -> Option<(&'a str, &'a str)> {
        match self.kind() {
            Kind::Global { module, name } => Some((module, name)),
            _ => None,
        }
    }

    /// The entry under string key `key` of a dict, or the attribute `key` of an object or a
    /// tensor (`obj.__dict__[key]`).
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        match self.kind() {
            Kind::Dict(d) => d.get(key),
            Kind::Object(o) => o.attribute(key),
            Kind::Tensor(_) => self.attributes().and_then(|a| a.get(key)),
            _ => None,
        }
    }

    /// The Python attributes (`__dict__`) of a tensor saved with them, or of an object whose
    /// state is a dict (or a `(dict, slots)` tuple).
    pub fn attributes(&self) -> Option<Dict<'a>> {
        let state = match self.tree.node(self.id) {
            Node::Tensor(i) => self.at(self.tables.attributes_of(*i)?),
            Node::Object(o) => self.at(o.state?),
            Node::Dict(d) => self.at(d.attributes?),
            _ => return None,
        };
        match state.kind() {
            Kind::Dict(d) => Some(d),
            Kind::Tuple(t) => t.iter().find_map(|s| s.as_dict()),
            _ => None,
        }
    }

    /// Element `i` of a list or tuple.
    pub fn index(&self, i: usize) -> Option<Value<'a>> {
        match self.kind() {
            Kind::List(s) | Kind::Tuple(s) => s.get(i),
            _ => None,
        }
    }
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value({:?}, {:?})", self.id, self.kind())
    }
}

/// The elements of a list, tuple or set.
#[derive(Clone, Copy)]
pub struct Seq<'a> {
    value: Value<'a>,
    ids: &'a [ValueId],
}

impl<'a> Seq<'a> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Element `i`.
    pub fn get(&self, i: usize) -> Option<Value<'a>> {
        self.ids.get(i).map(|&id| self.value.at(id))
    }

    /// The elements in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Value<'a>> + 'a {
        let value = self.value;
        self.ids.iter().map(move |&id| value.at(id))
    }
}

impl fmt::Debug for Seq<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} elements]", self.len())
    }
}

/// A dict (also `OrderedDict` and `Counter`), in insertion order.
#[derive(Clone, Copy)]
pub struct Dict<'a> {
    value: Value<'a>,
    node: &'a DictNode,
}

impl<'a> Dict<'a> {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.node.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.node.items.is_empty()
    }

    /// The items in insertion order. Keys may be any value (ints in optimizer states).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (Value<'a>, Value<'a>)> + 'a {
        let value = self.value;
        self.node.items.iter().map(move |&(k, v)| (value.at(k), value.at(v)))
    }

    /// The value under a string key (keys are unique, as in Python).
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        let tree = self.value.tree;
        self.node
            .items
            .iter()
            .find(|&&(k, _)| matches!(tree.node(k), Node::Str(s) if tree.bytes_of(*s) == key.as_bytes()))
            .map(|&(_, v)| self.value.at(v))
    }

    /// The value under an integer key (`1`, `True` and `1.0` are one key, as in Python).
    pub fn get_int(&self, key: i64) -> Option<Value<'a>> {
        let tree = self.value.tree;
        self.node
            .items
            .iter()
            .find(|&&(k, _)| match tree.node(k) {
                Node::Int(i) => *i == key,
                Node::Bool(b) => i64::from(*b) == key,
                Node::Float(f) => *f == key as f64 && f.fract() == 0.0 && (key as f64) as i64 == key,
                _ => false,
            })
            .map(|&(_, v)| self.value.at(v))
    }

    /// `(module, name)` of the dict subclass (`collections.OrderedDict`), if any.
    pub fn class(&self) -> Option<(&'a str, &'a str)> {
        self.node.class.name()
    }

    /// The instance attributes (`__dict__`) set by `BUILD` (a state dict's `_metadata`), if any.
    pub fn state(&self) -> Option<Value<'a>> {
        self.node.attributes.map(|s| self.value.at(s))
    }
}

impl fmt::Debug for Dict<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{} items}}", self.len())
    }
}

/// An object a pickle asked to construct, kept as data: what would have been called, with
/// which arguments, and the state and items applied to it afterwards.
#[derive(Clone, Copy)]
pub struct Object<'a> {
    value: Value<'a>,
    node: &'a ObjectNode,
}

impl<'a> Object<'a> {
    /// The class or function (usually a [`Kind::Global`]).
    pub fn callable(&self) -> Value<'a> {
        self.value.at(self.node.callable)
    }

    /// `(module, name)` of the callable when it is a global reference.
    pub fn class_name(&self) -> Option<(&'a str, &'a str)> {
        self.value.tree.global(self.node.callable)
    }

    /// The class of the instance this call creates: the callable itself, or, for the
    /// protocol 0/1 helpers `copyreg._reconstructor(cls, base, state)` and
    /// `copyreg.__newobj__(cls, *args)`, their first argument.
    pub fn instance_class(&self) -> Option<(&'a str, &'a str)> {
        match self.class_name()? {
            ("copyreg", "_reconstructor" | "__newobj__" | "__newobj_ex__") => {
                self.args().index(0).and_then(|c| c.as_global())
            }
            other => Some(other),
        }
    }

    /// The positional arguments (usually a tuple).
    pub fn args(&self) -> Value<'a> {
        self.value.at(self.node.args)
    }

    /// Keyword arguments (`NEWOBJ_EX`), if any.
    pub fn kwargs(&self) -> Option<Value<'a>> {
        self.node.kwargs.map(|k| self.value.at(k))
    }

    /// How it was created.
    pub fn construction(&self) -> Construction {
        self.node.construction
    }

    /// The state passed to `BUILD` (`__setstate__`/`__dict__`), if any.
    pub fn state(&self) -> Option<Value<'a>> {
        self.node.state.map(|s| self.value.at(s))
    }

    /// An attribute: `state[name]` when the state is a dict, or the dict half of a
    /// `(dict, slots)` state tuple.
    pub fn attribute(&self, name: &str) -> Option<Value<'a>> {
        let state = self.state()?;
        match state.kind() {
            Kind::Dict(d) => d.get(name),
            Kind::Tuple(t) => t.iter().filter_map(|s| s.as_dict()).find_map(|d| d.get(name)),
            _ => None,
        }
    }

    /// Items appended after construction (`APPEND`/`ADDITEMS` on list or set subclasses).
    pub fn items(&self) -> Seq<'a> {
        self.value.seq(&self.node.items)
    }

    /// Items set after construction (`SETITEM` on dict subclasses).
    pub fn dict_items(&self) -> impl ExactSizeIterator<Item = (Value<'a>, Value<'a>)> + 'a {
        let value = self.value;
        self.node
            .dict_items
            .iter()
            .map(move |&(k, v)| (value.at(k), value.at(v)))
    }
}

impl fmt::Debug for Object<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.class_name() {
            Some((m, n)) => write!(f, "<{m}.{n} object>"),
            None => write!(f, "<object>"),
        }
    }
}

/// An integer wider than 64 bits.
#[derive(Clone, Copy)]
pub struct BigInt<'a> {
    bytes: &'a [u8],
}

impl BigInt<'_> {
    /// Little-endian two's complement bytes (Python's `int.to_bytes(n, "little", signed=True)`).
    pub fn to_le_bytes(&self) -> &[u8] {
        self.bytes
    }

    /// The value, if it fits in 128 bits (numpy's random states use such ints).
    pub fn to_i128(&self) -> Option<i128> {
        text::big_to_i128(self.bytes)
    }

    /// Decimal text; integers of more than 4300 digits (CPython's limit for `str(int)`) are
    /// summarised rather than converted (the conversion is quadratic).
    pub fn to_decimal(&self) -> String {
        text::big_to_decimal(self.bytes).unwrap_or_else(|| format!("<integer of {} bytes>", self.bytes.len()))
    }
}

impl fmt::Debug for BigInt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_decimal())
    }
}

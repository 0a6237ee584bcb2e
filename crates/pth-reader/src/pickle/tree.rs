//! The decoded object graph: an arena of nodes addressed by [`ValueId`].
//!
//! Values live in one `Vec` and refer to each other by index. That gives Python's sharing
//! semantics for free (the memo, `DUP` and `GET` hand out the same id, and a later `APPEND` or
//! `SETITEM` is seen through every reference), makes cycles harmless, and makes dropping a
//! million-deep structure a flat loop rather than a recursion.

/// The position of a value in its [`Tree`](crate::pickle::Tree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub(crate) u32);

impl ValueId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// One decoded value. Containers refer to their elements by id.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    None,
    Bool(bool),
    Int(i64),
    /// An integer beyond 64 bits: little-endian two's complement, as `LONG1`/`LONG4` carry it.
    BigInt(Box<[u8]>),
    Float(f64),
    Complex(f64, f64),
    Str(Box<str>),
    Bytes(Box<[u8]>),
    ByteArray(Box<[u8]>),
    List(Vec<ValueId>),
    Tuple(Box<[ValueId]>),
    Set(Vec<ValueId>),
    FrozenSet(Box<[ValueId]>),
    Dict(Box<DictNode>),
    Global(Box<GlobalNode>),
    Object(Box<ObjectNode>),
    /// A persistent id (`PERSID`/`BINPERSID`) not yet resolved by a higher layer.
    PersistentId(ValueId),
    /// A tensor, by index into the checkpoint's tensor table (set by the torch layer).
    Tensor(u32),
    /// A bare storage, by index into the checkpoint's storage table (set by the torch layer).
    Storage(u32),
}

/// A dict, an `OrderedDict`, a `Counter`...: items in insertion order.
#[derive(Debug, Clone, Default)]
pub(crate) struct DictNode {
    pub(crate) items: Vec<(ValueId, ValueId)>,
    /// The class for dict subclasses rebuilt by `REDUCE` (`collections.OrderedDict`).
    pub(crate) class: Option<ValueId>,
    /// Attributes set by `BUILD` (a state dict's `_metadata`).
    pub(crate) state: Option<ValueId>,
}

/// A `GLOBAL`/`STACK_GLOBAL`/`INST` reference: a name, never imported.
#[derive(Debug, Clone)]
pub(crate) struct GlobalNode {
    pub(crate) module: Box<str>,
    pub(crate) name: Box<str>,
}

/// How an inert object was created.
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
    /// Byte offset of the opcode that created it, for error messages.
    pub(crate) offset: u64,
}

/// A decoded pickle: the arena and the id of the value `STOP` returned.
#[derive(Debug, Clone)]
pub struct Tree {
    pub(crate) nodes: Vec<Node>,
    pub(crate) root: ValueId,
}

/// Ids of the constants every tree starts with.
pub(crate) const NONE_ID: ValueId = ValueId(0);
pub(crate) const FALSE_ID: ValueId = ValueId(1);
pub(crate) const TRUE_ID: ValueId = ValueId(2);

impl Tree {
    /// An empty arena holding only the shared constants.
    pub(crate) fn with_constants() -> Tree {
        Tree {
            nodes: vec![Node::None, Node::Bool(false), Node::Bool(true)],
            root: NONE_ID,
        }
    }

    pub(crate) fn node(&self, id: ValueId) -> &Node {
        // Ids are only minted by `push`, so they are always in range; `None` keeps this total.
        self.nodes.get(id.index()).unwrap_or(&Node::None)
    }

    pub(crate) fn node_mut(&mut self, id: ValueId) -> Option<&mut Node> {
        self.nodes.get_mut(id.index())
    }

    /// Appends a node; `None` only if the arena outgrew 32-bit ids.
    pub(crate) fn push(&mut self, node: Node) -> Option<ValueId> {
        let id = ValueId(u32::try_from(self.nodes.len()).ok()?);
        self.nodes.push(node);
        Some(id)
    }

    /// Replaces a node in place (used by layers that interpret objects, such as the torch
    /// layer turning a `_rebuild_tensor_v2` call into a tensor).
    pub(crate) fn replace(&mut self, id: ValueId, node: Node) {
        if let Some(slot) = self.node_mut(id) {
            *slot = node;
        }
    }

    /// The value `STOP` returned.
    pub fn root_id(&self) -> ValueId {
        self.root
    }

    /// Number of values in the arena.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the arena holds nothing but its constants.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 3
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
            Node::Tuple(items) => Some(items),
            Node::List(items) => Some(items),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self, id: ValueId) -> Option<&str> {
        match self.node(id) {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_int(&self, id: ValueId) -> Option<i64> {
        match self.node(id) {
            Node::Int(i) => Some(*i),
            Node::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }
}

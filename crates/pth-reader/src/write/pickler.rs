//! Object trees pickled at protocol 2 as Python's pickler writes `torch.save`'s `data.pkl`.
//!
//! Opcode for opcode what CPython 3's `pickle.Pickler(protocol=2)` emits for the same objects:
//! every string, container, global and call result memoized with `BINPUT` and fetched again
//! with `BINGET`; ints as `BININT1`/`BININT2`/`BININT`/`LONG1`; `BINFLOAT`; lists and dicts
//! filled in batches of 1000 (`APPENDS`/`SETITEMS`, or `APPEND`/`SETITEM` for one item); tuples
//! of one to three items with `TUPLE1..3`; Python 3 types through their protocol-2 reductions
//! (`__builtin__ set`, `__builtin__ complex`, `_codecs encode` for bytes — also for empty bytes,
//! which Python reduces to `__builtin__ bytes`, a global `torch.load(weights_only=True)`
//! refuses); and tensors as `Tensor.__reduce_ex__` reduces them, with storages as persistent
//! ids (`torch.serialization._save` / `_legacy_save`), one key per storage in the order first
//! met.
//!
//! The walk is iterative (a task stack), so a deep tree costs memory, never the call stack;
//! shared values are written once and fetched from the memo, and cycles terminate as Python's
//! pickler makes them terminate: containers are memoized before their items, and a tuple or a
//! call whose value was memoized while its arguments were written is popped and fetched.

#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::collections::HashMap;

use super::storages::{StorageIdentity, StorageOut};
use crate::pickle::names::python2_module;
use crate::pickle::opcode::Op;
use crate::pickle::text::trimmed_len;
use crate::pickle::tree::{Construction, DictClass, Node, ObjectNode, Tree, ValueId};
use crate::tensor::ByteOrder;
use crate::torch::Tables;
use crate::{Error, ErrorKind, Result};

mod tensors;

/// Items per `APPENDS`/`SETITEMS` (`pickle.Pickler._BATCHSIZE`).
const BATCH: usize = 1000;

/// The batch of at most [`BATCH`] items starting at `from`, and where the next one starts if
/// items remain after it.
fn next_batch<T>(items: &[T], from: usize) -> (&[T], Option<usize>) {
    let batch = items.get(from..).unwrap_or_default();
    let batch = batch.get(..BATCH).unwrap_or(batch);
    let next = from + batch.len();
    (batch, (!batch.is_empty() && next < items.len()).then_some(next))
}

/// How storages are named in persistent ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PidForm {
    /// `('storage', type, key, location, numel)` (`_save`).
    Zip,
    /// `('storage', type, key, location, numel, None)` (`_legacy_save`).
    Legacy,
}

/// Byte orders: of the bare storages read (tensors know theirs), and of the storages written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Orders {
    pub(crate) bare: ByteOrder,
    pub(crate) target: ByteOrder,
}

/// A pickle and the storages it refers to, in key order.
pub(crate) struct Pickled<'a, 'data> {
    pub(crate) bytes: Vec<u8>,
    pub(crate) storages: Vec<StorageOut<'a, 'data>>,
}

/// Pickles `root` of `tree`, whose tensor and storage nodes index `tables`.
///
/// `orders` are the byte order of the bare storages' bytes (tensors know their own) and the
/// order to write storages in.
pub(crate) fn pickle<'a, 'data>(
    tree: &'a Tree<'data>,
    tables: &'a Tables<'data>,
    root: ValueId,
    form: PidForm,
    orders: Orders,
) -> Result<Pickled<'a, 'data>> {
    let mut p = Pickler {
        tree,
        tables,
        form,
        orders,
        out: Vec::new(),
        next_memo: 0,
        nodes: HashMap::new(),
        texts: HashMap::new(),
        globals: HashMap::new(),
        storages: Vec::new(),
        storage_index: HashMap::new(),
        tasks: vec![Task::Save(root)],
    };
    p.op(Op::Proto(2))?;
    while let Some(task) = p.tasks.pop() {
        p.run(task)?;
    }
    p.op(Op::Stop)?;
    Ok(Pickled {
        bytes: p.out,
        storages: p.storages,
    })
}

/// What is left to write, last pushed first.
enum Task<'a> {
    /// A value of the tree.
    Save(ValueId),
    /// An opcode without argument.
    Op(Op<'static>),
    /// `BINPUT` of the next memo slot, for a value that is not a node.
    PutNew,
    /// After a call's `REDUCE`: memoize its value, or, if writing its arguments memoized it
    /// already (a cycle), drop the new one and fetch the first.
    Memoize(ValueId),
    /// After a tuple's items: `TUPLE`/`TUPLEn` and memoize, or drop them and fetch the tuple if
    /// its items memoized it already.
    EndTuple(ValueId, usize),
    /// Items of a list-like sequence from `from` on, in batches.
    Appends(&'a [ValueId], usize),
    /// Pairs of a dict-like from `from` on, in batches.
    SetItems(&'a [(ValueId, ValueId)], usize),
}

struct Pickler<'a, 'data> {
    tree: &'a Tree<'data>,
    tables: &'a Tables<'data>,
    form: PidForm,
    orders: Orders,
    out: Vec<u8>,
    next_memo: u32,
    nodes: HashMap<ValueId, u32>,
    texts: HashMap<Cow<'a, [u8]>, u32>,
    globals: HashMap<(&'a str, &'a str), u32>,
    storages: Vec<StorageOut<'a, 'data>>,
    storage_index: HashMap<StorageIdentity, usize>,
    tasks: Vec<Task<'a>>,
}

fn unsupported(what: impl Into<String>) -> Error {
    Error::from(ErrorKind::Unsupported { what: what.into() })
}

impl<'a, 'data> Pickler<'a, 'data> {
    fn run(&mut self, task: Task<'a>) -> Result<()> {
        match task {
            Task::Save(id) => self.save(id),
            Task::Op(op) => self.op(op),
            Task::PutNew => self.put().map(|_| ()),
            Task::Memoize(id) => match self.nodes.get(&id) {
                Some(&at) => {
                    self.op(Op::Pop)?;
                    self.op(Op::Get(at))
                }
                None => self.memoize(id),
            },
            Task::EndTuple(id, len) => self.end_tuple(id, len),
            Task::Appends(items, from) => self.appends(items, from),
            Task::SetItems(pairs, from) => self.set_items(pairs, from),
        }
    }

    // ---- output ---------------------------------------------------------------------------

    fn op(&mut self, op: Op<'_>) -> Result<()> {
        op.write(&mut self.out)
            .map_err(|e| unsupported(format!("pickling: {e}")))
    }

    /// `BINPUT` of the next memo slot; returns the slot.
    fn put(&mut self) -> Result<u32> {
        let at = self.next_memo;
        self.next_memo = at
            .checked_add(1)
            .ok_or_else(|| unsupported("more than 2^32 memoized values"))?;
        self.op(Op::Put(at))?;
        Ok(at)
    }

    fn memoize(&mut self, id: ValueId) -> Result<()> {
        let at = self.put()?;
        self.nodes.insert(id, at);
        Ok(())
    }

    /// A string (UTF-8, lone surrogates `surrogatepass`-encoded), memoized by content; returns
    /// its memo slot.
    fn text(&mut self, bytes: Cow<'a, [u8]>) -> Result<u32> {
        if let Some(&at) = self.texts.get(&bytes) {
            self.op(Op::Get(at))?;
            return Ok(at);
        }
        self.op(Op::BinUnicode(&bytes))?;
        let at = self.put()?;
        self.texts.insert(bytes, at);
        Ok(at)
    }

    /// A global, named as Python 3 names it (written as protocol 2 spells builtins).
    fn global(&mut self, module: &'a str, name: &'a str) -> Result<()> {
        let module = python2_module(module);
        if let Some(&at) = self.globals.get(&(module, name)) {
            return self.op(Op::Get(at));
        }
        self.op(Op::Global(module, name))?;
        let at = self.put()?;
        self.globals.insert((module, name), at);
        Ok(())
    }

    fn int(&mut self, v: i64) -> Result<()> {
        match v {
            0..=0xff => self.op(Op::BinInt1(v as u8)),
            0x100..=0xffff => self.op(Op::BinInt2(v as u16)),
            _ => match i32::try_from(v) {
                Ok(small) => self.op(Op::BinInt(small)),
                Err(_) => {
                    let bytes = v.to_le_bytes();
                    self.long(&bytes)
                }
            },
        }
    }

    /// A little-endian two's complement integer, trimmed as Python's `encode_long` trims it.
    fn long(&mut self, bytes: &[u8]) -> Result<()> {
        let len = trimmed_len(bytes);
        self.op(Op::Long(bytes.get(..len).unwrap_or(bytes)))
    }

    fn bool(&mut self, v: bool) -> Result<()> {
        self.op(if v { Op::NewTrue } else { Op::NewFalse })
    }

    /// `items` as a tuple that is not a node (an argument tuple), memoized like Python's.
    fn tuple_of(&mut self, len: usize, items: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        match len {
            0 => return self.op(Op::EmptyTuple),
            1..=3 => items(self)?,
            _ => {
                self.op(Op::Mark)?;
                items(self)?;
            }
        }
        self.op(if len <= 3 { Op::TupleN(len as u8) } else { Op::Tuple })?;
        self.put().map(|_| ())
    }

    // ---- values ---------------------------------------------------------------------------

    fn save(&mut self, id: ValueId) -> Result<()> {
        if let Some(&at) = self.nodes.get(&id) {
            return self.op(Op::Get(at));
        }
        let tree = self.tree;
        match tree.node(id) {
            Node::None => self.op(Op::None),
            Node::Bool(b) => self.bool(*b),
            Node::Int(i) => self.int(*i),
            Node::BigInt(span) => self.long(tree.bytes_of(*span)),
            Node::Float(f) => self.op(Op::BinFloat(*f)),
            Node::Complex(re, im) => {
                self.global("builtins", "complex")?;
                self.op(Op::BinFloat(*re))?;
                self.op(Op::BinFloat(*im))?;
                self.op(Op::TupleN(2))?;
                self.put()?;
                self.op(Op::Reduce)?;
                self.memoize(id)
            }
            Node::Str(span) => {
                // Memoized by node too: a string referenced many times is hashed once.
                let at = self.text(Cow::Borrowed(tree.bytes_of(*span)))?;
                self.nodes.insert(id, at);
                Ok(())
            }
            Node::Bytes(span) => {
                self.bytes(tree.bytes_of(*span))?;
                self.memoize(id)
            }
            Node::ByteArray(span) => self.byte_array(id, tree.bytes_of(*span)),
            Node::List(items) => {
                self.op(Op::EmptyList)?;
                self.memoize(id)?;
                self.appends(items, 0)
            }
            Node::Tuple(items) => self.tuple(id, tree.items(*items)),
            Node::Set(set) => self.set(id, &set.items),
            Node::FrozenSet(items) => {
                // Protocol 4's opcode: Python 3 reduces a frozenset to `frozenset(list)` at
                // protocol 2, a global torch refuses; the opcode reads back as the same value.
                self.op(Op::Mark)?;
                self.tasks.push(Task::Memoize(id));
                self.tasks.push(Task::Op(Op::FrozenSet));
                self.push_saves(tree.items(*items));
                Ok(())
            }
            Node::Dict(dict) => self.dict(id, dict.class, &dict.items, dict.attributes),
            Node::Global(g) => self.global(&g.module, &g.name),
            Node::Object(object) => self.object(id, object),
            Node::PersistentId(_) => Err(unsupported("an unresolved persistent id")),
            Node::Tensor(index) => {
                let t = self
                    .tables
                    .tensors
                    .get(*index as usize)
                    .ok_or_else(|| unsupported("a dangling tensor"))?;
                let attributes = self.tables.attributes_of(*index);
                // Pushed first, run last: after whatever the tensor leaves to tasks.
                self.tasks.push(Task::Memoize(id));
                self.tensor(t, attributes)
            }
            Node::Storage(index) => {
                let s = self
                    .tables
                    .storages
                    .get(*index as usize)
                    .ok_or_else(|| unsupported("a dangling storage"))?;
                self.bare_storage(s)
            }
        }
    }

    /// Pushes `Save` tasks so that `items` are written in order.
    fn push_saves(&mut self, items: &[ValueId]) {
        self.tasks.extend(items.iter().rev().map(|&id| Task::Save(id)));
    }

    fn tuple(&mut self, id: ValueId, items: &'a [ValueId]) -> Result<()> {
        if items.is_empty() {
            return self.op(Op::EmptyTuple);
        }
        if items.len() > 3 {
            self.op(Op::Mark)?;
        }
        self.tasks.push(Task::EndTuple(id, items.len()));
        self.push_saves(items);
        Ok(())
    }

    fn end_tuple(&mut self, id: ValueId, len: usize) -> Result<()> {
        if let Some(&at) = self.nodes.get(&id) {
            // Written while its items were: drop the copy (`save_tuple`'s recursion check).
            if len > 3 {
                self.op(Op::PopMark)?;
            } else {
                for _ in 0..len {
                    self.op(Op::Pop)?;
                }
            }
            return self.op(Op::Get(at));
        }
        self.op(if len <= 3 { Op::TupleN(len as u8) } else { Op::Tuple })?;
        self.memoize(id)
    }

    /// One batch of `APPEND(S)` from `from`, and a task for the rest.
    fn appends(&mut self, items: &'a [ValueId], from: usize) -> Result<()> {
        let (batch, rest) = next_batch(items, from);
        if let Some(next) = rest {
            self.tasks.push(Task::Appends(items, next));
        }
        self.close_batch(batch.len(), Op::Append, Op::Appends)?;
        self.push_saves(batch);
        Ok(())
    }

    /// One batch of `SETITEM(S)` from `from`, and a task for the rest.
    fn set_items(&mut self, pairs: &'a [(ValueId, ValueId)], from: usize) -> Result<()> {
        let (batch, rest) = next_batch(pairs, from);
        if let Some(next) = rest {
            self.tasks.push(Task::SetItems(pairs, next));
        }
        self.close_batch(batch.len(), Op::SetItem, Op::SetItems)?;
        for &(key, value) in batch.iter().rev() {
            self.tasks.push(Task::Save(value));
            self.tasks.push(Task::Save(key));
        }
        Ok(())
    }

    /// Opens a batch of `len` items and schedules the opcode that closes it, as `pickle`'s
    /// `_batch_appends`/`_batch_setitems` do: `one` for a single item, `MARK` … `many` for
    /// more, nothing for none. The items' tasks are pushed after (they run before the close).
    fn close_batch(&mut self, len: usize, one: Op<'static>, many: Op<'static>) -> Result<()> {
        match len {
            0 => {}
            1 => self.tasks.push(Task::Op(one)),
            _ => {
                self.op(Op::Mark)?;
                self.tasks.push(Task::Op(many));
            }
        }
        Ok(())
    }

    /// `bytes` at protocol 2: `_codecs.encode(text, 'latin1')`, the text being the bytes as
    /// Latin-1 code points.
    fn bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.global("_codecs", "encode")?;
        let latin1: String = bytes.iter().map(|&b| char::from(b)).collect();
        self.text(Cow::Owned(latin1.into_bytes()))?;
        self.text(Cow::Borrowed(b"latin1"))?;
        self.op(Op::TupleN(2))?;
        self.put()?;
        self.op(Op::Reduce)
    }

    /// `bytearray(bytes)` (or `bytearray()`).
    fn byte_array(&mut self, id: ValueId, bytes: &[u8]) -> Result<()> {
        self.global("builtins", "bytearray")?;
        if bytes.is_empty() {
            self.op(Op::EmptyTuple)?;
        } else {
            self.bytes(bytes)?;
            self.put()?;
            self.op(Op::TupleN(1))?;
            self.put()?;
        }
        self.op(Op::Reduce)?;
        self.memoize(id)
    }

    /// `set(list)`: the list is a temporary, memoized as Python memoizes it.
    fn set(&mut self, id: ValueId, items: &'a [ValueId]) -> Result<()> {
        self.global("builtins", "set")?;
        self.reduce_over_temporary(id, Op::EmptyList)?;
        self.appends(items, 0)
    }

    /// `callable((temporary,))`, `callable` written already: the temporary (`empty`, filled by
    /// the tasks pushed after this call) memoized as Python memoizes it, then `TUPLE1`,
    /// `REDUCE`, and the result memoized as `id`.
    fn reduce_over_temporary(&mut self, id: ValueId, empty: Op<'static>) -> Result<()> {
        self.op(empty)?;
        self.put()?;
        self.tasks.push(Task::Memoize(id));
        self.tasks.push(Task::Op(Op::Reduce));
        self.tasks.push(Task::PutNew);
        self.tasks.push(Task::Op(Op::TupleN(1)));
        Ok(())
    }

    fn dict(
        &mut self,
        id: ValueId,
        class: DictClass,
        pairs: &'a [(ValueId, ValueId)],
        attributes: Option<ValueId>,
    ) -> Result<()> {
        match class {
            DictClass::Dict => {
                self.op(Op::EmptyDict)?;
                self.memoize(id)?;
            }
            DictClass::OrderedDict => {
                self.global("collections", "OrderedDict")?;
                self.op(Op::EmptyTuple)?;
                self.op(Op::Reduce)?;
                self.memoize(id)?;
            }
            DictClass::Counter => {
                // `Counter.__reduce__`: `(Counter, (dict(self),))`, the dict a temporary.
                self.global("collections", "Counter")?;
                self.reduce_over_temporary(id, Op::EmptyDict)?;
                if let Some(state) = attributes {
                    return Err(unsupported(format!("a Counter with attributes ({state:?})")));
                }
                return self.set_items(pairs, 0);
            }
            DictClass::Sparse(layout) => return self.sparse(id, layout, pairs),
        }
        if let Some(state) = attributes {
            self.tasks.push(Task::Op(Op::Build));
            self.tasks.push(Task::Save(state));
        }
        self.set_items(pairs, 0)
    }

    /// An inert object: the call that made it, then the items and state given to it.
    fn object(&mut self, id: ValueId, object: &'a ObjectNode) -> Result<()> {
        if let Some(state) = object.state {
            self.tasks.push(Task::Op(Op::Build));
            self.tasks.push(Task::Save(state));
        }
        if !object.dict_items.is_empty() {
            self.tasks.push(Task::SetItems(&object.dict_items, 0));
        }
        if !object.items.is_empty() {
            self.tasks.push(Task::Appends(&object.items, 0));
        }
        self.tasks.push(Task::Memoize(id));
        let call = match (object.construction, object.kwargs) {
            (Construction::NewObj, Some(kwargs)) => {
                self.tasks.push(Task::Op(Op::NewObjEx));
                self.tasks.push(Task::Save(kwargs));
                return self.push_call_head(object);
            }
            (Construction::NewObj, None) => Op::NewObj,
            _ => Op::Reduce,
        };
        self.tasks.push(Task::Op(call));
        self.push_call_head(object)
    }

    fn push_call_head(&mut self, object: &ObjectNode) -> Result<()> {
        self.tasks.push(Task::Save(object.args));
        self.tasks.push(Task::Save(object.callable));
        Ok(())
    }
}

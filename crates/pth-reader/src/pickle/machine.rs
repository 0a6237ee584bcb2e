//! The pickle virtual machine: executes opcodes symbolically into a [`Tree`].
//!
//! Nothing is ever imported or called. `GLOBAL` yields a name, `REDUCE`/`NEWOBJ`/`BUILD`
//! record what Python would have done as inert [`ObjectNode`]s, and persistent ids are kept
//! for the layer above to resolve. All work is bounded by [`Limits`].

use std::collections::HashMap;

use super::opcode::Opcode;
use super::text::{self, ParsedInt};
use super::tree::{Construction, DictNode, GlobalNode, Node, ObjectNode, Tree, ValueId, FALSE_ID, NONE_ID, TRUE_ID};
use crate::cursor::Cursor;
use crate::{Error, Limits, Result};

/// Decides which globals a pickle may name. `None` (lenient) accepts every name.
pub(crate) type GlobalFilter<'a> = Option<&'a dyn Fn(&str, &str) -> bool>;

/// What the machine needs besides the bytes.
pub(crate) struct Config<'a> {
    /// Name of the record holding the pickle, for error messages.
    pub(crate) record: &'a str,
    pub(crate) limits: &'a Limits,
    pub(crate) filter: GlobalFilter<'a>,
}

/// A decoded pickle plus how many input bytes it occupied (pickles are concatenated in legacy
/// files, so the next one starts there).
pub(crate) struct Unpickled {
    pub(crate) tree: Tree,
    pub(crate) consumed: usize,
    pub(crate) protocol: u8,
}

/// Runs one pickle from the start of `bytes` to its `STOP`.
pub(crate) fn unpickle(bytes: &[u8], config: &Config<'_>) -> Result<Unpickled> {
    // A pickle may not span more than `max_pickle_bytes`; running out of the bounded input is
    // then reported as that limit rather than as truncation.
    let max = usize::try_from(config.limits.max_pickle_bytes).unwrap_or(usize::MAX);
    let bounded = bytes.get(..max).unwrap_or(bytes);
    let mut machine = Machine {
        input: Cursor::new(bounded),
        cut_by_limit: bounded.len() < bytes.len(),
        tree: Tree::with_constants(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        config,
        op_offset: 0,
        budget: 0,
        protocol: 0,
    };
    let root = machine.run()?;
    machine.tree.root = root;
    Ok(Unpickled {
        tree: machine.tree,
        consumed: machine.input.position(),
        protocol: machine.protocol,
    })
}

struct Machine<'a, 'c> {
    input: Cursor<'a>,
    /// Whether `input` was shortened to `max_pickle_bytes`.
    cut_by_limit: bool,
    tree: Tree,
    stack: Vec<ValueId>,
    /// Stack heights at each `MARK`.
    marks: Vec<usize>,
    memo: HashMap<u64, ValueId>,
    config: &'c Config<'c>,
    /// Offset of the opcode being executed.
    op_offset: usize,
    /// Values created plus container slots filled: what `max_values` bounds.
    budget: u64,
    protocol: u8,
}

impl<'a> Machine<'a, '_> {
    fn run(&mut self) -> Result<ValueId> {
        let max_ops = self.config.limits.max_opcodes;
        for _ in 0..max_ops {
            self.op_offset = self.input.position();
            let Some(byte) = self.input.u8() else {
                return Err(self.eof("pickle ends without STOP"));
            };
            let Some(op) = Opcode::from_byte(byte) else {
                return Err(self.error(format!("unknown opcode 0x{byte:02x}")));
            };
            if let Some(root) = self.step(op)? {
                return Ok(root);
            }
        }
        Err(self.limit("max_opcodes", max_ops))
    }

    /// Executes one opcode; `Some(root)` at `STOP`.
    fn step(&mut self, op: Opcode) -> Result<Option<ValueId>> {
        use Opcode::*;
        match op {
            PROTO => {
                let v = self.u8()?;
                if v > 5 {
                    return Err(self.error(format!("unsupported pickle protocol {v}")));
                }
                self.protocol = v;
            }
            FRAME => {
                // Framing only groups opcodes for buffered readers; check the claim and go on.
                let len = self.u64()?;
                if len > self.input.remaining() as u64 {
                    return Err(self.eof(format!("FRAME of {len} bytes extends past the end")));
                }
            }
            STOP => return self.pop().map(Some),
            MARK => {
                self.marks.push(self.stack.len());
                self.check_stack()?;
            }
            POP => {
                if self.frame_len() > 0 {
                    self.pop()?;
                } else {
                    self.pop_mark()?;
                }
            }
            POP_MARK => {
                self.pop_mark()?;
            }
            DUP => {
                let top = self.top()?;
                self.push_id(top)?;
            }

            NONE => self.push_id(NONE_ID)?,
            NEWTRUE => self.push_id(TRUE_ID)?,
            NEWFALSE => self.push_id(FALSE_ID)?,
            BININT => {
                let v = self.read(|c| c.i32_le())?;
                self.push(Node::Int(i64::from(v)))?;
            }
            BININT1 => {
                let v = self.u8()?;
                self.push(Node::Int(i64::from(v)))?;
            }
            BININT2 => {
                let v = self.read(|c| c.u16_le())?;
                self.push(Node::Int(i64::from(v)))?;
            }
            LONG1 => {
                let n = self.u8()?;
                let bytes = self.take(u64::from(n))?;
                self.push_int(text::int_from_le_bytes(bytes))?;
            }
            LONG4 => {
                let n = self.read(|c| c.i32_le())?;
                let n = u64::try_from(n).map_err(|_| self.error("LONG4 with a negative length"))?;
                let bytes = self.take(n)?;
                self.push_int(text::int_from_le_bytes(bytes))?;
            }
            INT => {
                let line = self.line()?;
                match line {
                    b"00" => self.push_id(FALSE_ID)?,
                    b"01" => self.push_id(TRUE_ID)?,
                    _ => {
                        let v = text::parse_int(line).ok_or_else(|| self.error("bad INT literal"))?;
                        self.push_int(v)?;
                    }
                }
            }
            LONG => {
                let line = self.line()?;
                let digits = line.strip_suffix(b"L").unwrap_or(line);
                let v = text::parse_int(digits).ok_or_else(|| self.error("bad LONG literal"))?;
                self.push_int(v)?;
            }
            BINFLOAT => {
                let v = self.read(|c| c.f64_be())?;
                self.push(Node::Float(v))?;
            }
            FLOAT => {
                let line = self.line()?;
                let v = std::str::from_utf8(line)
                    .ok()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .ok_or_else(|| self.error("bad FLOAT literal"))?;
                self.push(Node::Float(v))?;
            }

            SHORT_BINUNICODE => {
                let n = self.u8()?;
                self.push_text(u64::from(n))?;
            }
            BINUNICODE => {
                let n = self.read(|c| c.u32_le())?;
                self.push_text(u64::from(n))?;
            }
            BINUNICODE8 => {
                let n = self.u64()?;
                self.push_text(n)?;
            }
            UNICODE => {
                let line = self.line()?;
                let s = text::parse_raw_unicode_escape(line).ok_or_else(|| self.error("bad UNICODE literal"))?;
                self.push(Node::Str(s.into()))?;
            }
            SHORT_BINSTRING => {
                let n = self.u8()?;
                self.push_py2_string(u64::from(n))?;
            }
            BINSTRING => {
                let n = self.read(|c| c.i32_le())?;
                let n = u64::try_from(n).map_err(|_| self.error("BINSTRING with a negative length"))?;
                self.push_py2_string(n)?;
            }
            STRING => {
                let line = self.line()?;
                let bytes = text::parse_quoted(line).ok_or_else(|| self.error("bad STRING literal"))?;
                self.push(py2_string(&bytes))?;
            }
            SHORT_BINBYTES => {
                let n = self.u8()?;
                let b = self.take(u64::from(n))?;
                self.push(Node::Bytes(b.into()))?;
            }
            BINBYTES => {
                let n = self.read(|c| c.u32_le())?;
                let b = self.take(u64::from(n))?;
                self.push(Node::Bytes(b.into()))?;
            }
            BINBYTES8 => {
                let n = self.u64()?;
                let b = self.take(n)?;
                self.push(Node::Bytes(b.into()))?;
            }
            BYTEARRAY8 => {
                let n = self.u64()?;
                let b = self.take(n)?;
                self.push(Node::ByteArray(b.into()))?;
            }

            EMPTY_TUPLE => self.push(Node::Tuple(Box::new([])))?,
            TUPLE => {
                let items = self.pop_mark()?;
                self.push(Node::Tuple(items.into()))?;
            }
            TUPLE1 | TUPLE2 | TUPLE3 => {
                let n = match op {
                    TUPLE1 => 1,
                    TUPLE2 => 2,
                    _ => 3,
                };
                let items = self.pop_n(n)?;
                self.push(Node::Tuple(items.into()))?;
            }
            EMPTY_LIST => self.push(Node::List(Vec::new()))?,
            LIST => {
                let items = self.pop_mark()?;
                self.push(Node::List(items))?;
            }
            APPEND => {
                let item = self.pop()?;
                let target = self.top()?;
                self.extend(target, vec![item])?;
            }
            APPENDS => {
                let items = self.pop_mark()?;
                let target = self.top()?;
                self.extend(target, items)?;
            }
            EMPTY_DICT => self.push(Node::Dict(Box::default()))?,
            DICT => {
                let items = self.pop_mark()?;
                let pairs = self.pairs(items)?;
                self.push(Node::Dict(Box::new(DictNode {
                    items: pairs,
                    ..Default::default()
                })))?;
            }
            SETITEM => {
                let value = self.pop()?;
                let key = self.pop()?;
                let target = self.top()?;
                self.set_items(target, vec![(key, value)])?;
            }
            SETITEMS => {
                let items = self.pop_mark()?;
                let pairs = self.pairs(items)?;
                let target = self.top()?;
                self.set_items(target, pairs)?;
            }
            EMPTY_SET => self.push(Node::Set(Vec::new()))?,
            ADDITEMS => {
                let items = self.pop_mark()?;
                let target = self.top()?;
                self.charge(items.len() as u64)?;
                match self.tree.node_mut(target) {
                    Some(Node::Set(set)) => set.extend(items),
                    Some(Node::Object(obj)) => obj.items.extend(items),
                    _ => return Err(self.error("ADDITEMS to something that is not a set")),
                }
            }
            FROZENSET => {
                let items = self.pop_mark()?;
                self.push(Node::FrozenSet(items.into()))?;
            }

            GLOBAL => {
                let module = self.line()?;
                let name = self.line()?;
                let (module, name) = (self.utf8(module)?, self.utf8(name)?);
                let id = self.global(&module, &name)?;
                self.push_id(id)?;
            }
            STACK_GLOBAL => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Some(module), Some(name)) = (self.tree.as_str(module), self.tree.as_str(name)) else {
                    return Err(self.error("STACK_GLOBAL needs two strings"));
                };
                let (module, name) = (module.to_owned(), name.to_owned());
                let id = self.global(&module, &name)?;
                self.push_id(id)?;
            }
            INST => {
                let module = self.line()?;
                let module = self.utf8(module)?;
                let name = self.line()?;
                let name = self.utf8(name)?;
                let args = self.pop_mark()?;
                let class = self.global(&module, &name)?;
                let args = self.push_new(Node::Tuple(args.into()))?;
                self.push_object(class, args, None, Construction::Instantiate)?;
            }
            OBJ => {
                let mut items = self.pop_mark()?.into_iter();
                let class = items.next().ok_or_else(|| self.error("OBJ without a class"))?;
                let args = self.push_new(Node::Tuple(items.collect()))?;
                self.check_callable(class)?;
                self.push_object(class, args, None, Construction::Instantiate)?;
            }
            REDUCE => {
                let args = self.pop()?;
                let callable = self.pop()?;
                self.check_callable(callable)?;
                self.push_object(callable, args, None, Construction::Reduce)?;
            }
            NEWOBJ => {
                let args = self.pop()?;
                let class = self.pop()?;
                self.check_callable(class)?;
                self.push_object(class, args, None, Construction::NewObj)?;
            }
            NEWOBJ_EX => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                let class = self.pop()?;
                self.check_callable(class)?;
                self.push_object(class, args, Some(kwargs), Construction::NewObj)?;
            }
            BUILD => {
                let state = self.pop()?;
                let target = self.top()?;
                match self.tree.node_mut(target) {
                    Some(Node::Object(obj)) => obj.state = Some(state),
                    Some(Node::Dict(dict)) => dict.state = Some(state),
                    _ => return Err(self.error("BUILD on a value that has no state")),
                }
            }

            PERSID => {
                let line = self.line()?;
                let pid = self.utf8(line)?;
                let pid = self.push_new(Node::Str(pid))?;
                self.push(Node::PersistentId(pid))?;
            }
            BINPERSID => {
                let pid = self.pop()?;
                self.push(Node::PersistentId(pid))?;
            }

            GET => {
                let line = self.line()?;
                let index = self.memo_index(line)?;
                self.get(index)?;
            }
            BINGET => {
                let index = self.u8()?;
                self.get(u64::from(index))?;
            }
            LONG_BINGET => {
                let index = self.read(|c| c.u32_le())?;
                self.get(u64::from(index))?;
            }
            PUT => {
                let line = self.line()?;
                let index = self.memo_index(line)?;
                self.put(index)?;
            }
            BINPUT => {
                let index = self.u8()?;
                self.put(u64::from(index))?;
            }
            LONG_BINPUT => {
                let index = self.read(|c| c.u32_le())?;
                self.put(u64::from(index))?;
            }
            MEMOIZE => {
                let index = self.memo.len() as u64;
                self.put(index)?;
            }

            EXT1 | EXT2 | EXT4 => {
                return Err(self.error(format!(
                    "{} refers to the copyreg extension registry, which a file cannot carry",
                    op.name()
                )))
            }
            NEXT_BUFFER | READONLY_BUFFER => {
                return Err(self.error(format!(
                    "{}: out-of-band buffers (protocol 5) are not part of a file",
                    op.name()
                )))
            }
        }
        Ok(None)
    }

    // ---- errors -------------------------------------------------------------------------

    fn error(&self, reason: impl Into<String>) -> Error {
        Error::Pickle {
            record: self.config.record.to_owned(),
            offset: self.op_offset as u64,
            reason: reason.into(),
        }
    }

    /// The input ended early: truncation, or the `max_pickle_bytes` bound.
    fn eof(&self, reason: impl Into<String>) -> Error {
        if self.cut_by_limit {
            return self.limit("max_pickle_bytes", self.config.limits.max_pickle_bytes);
        }
        self.error(reason)
    }

    fn limit(&self, limit: &'static str, max: u64) -> Error {
        Error::LimitExceeded {
            context: format!("{} at byte {}", self.config.record, self.op_offset),
            limit,
            max,
        }
    }

    // ---- input ----------------------------------------------------------------------------

    fn read<T>(&mut self, f: impl FnOnce(&mut Cursor<'_>) -> Option<T>) -> Result<T> {
        f(&mut self.input).ok_or_else(|| self.eof("truncated argument"))
    }

    fn u8(&mut self) -> Result<u8> {
        self.read(|c| c.u8())
    }

    fn u64(&mut self) -> Result<u64> {
        self.read(|c| c.u64_le())
    }

    /// `n` bytes of input; a length larger than what remains is an error, never an allocation.
    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let remaining = self.input.remaining();
        self.input
            .take_u64(n)
            .ok_or_else(|| self.eof(format!("length {n} exceeds the {remaining} bytes left")))
    }

    fn utf8(&self, bytes: &[u8]) -> Result<Box<str>> {
        text::utf8_surrogatepass(bytes).ok_or_else(|| self.error("text is not valid UTF-8"))
    }

    fn line(&mut self) -> Result<&'a [u8]> {
        self.input.line().ok_or_else(|| self.eof("unterminated text argument"))
    }

    // ---- values ---------------------------------------------------------------------------

    /// Counts `n` units of `max_values`.
    fn charge(&mut self, n: u64) -> Result<()> {
        self.budget = self.budget.saturating_add(n);
        let max = self.config.limits.max_values;
        if self.budget > max {
            return Err(self.limit("max_values", max));
        }
        Ok(())
    }

    /// Adds a node to the arena without pushing it on the stack.
    fn push_new(&mut self, node: Node) -> Result<ValueId> {
        self.charge(1)?;
        self.tree
            .push(node)
            .ok_or_else(|| self.limit("max_values", u64::from(u32::MAX)))
    }

    fn push(&mut self, node: Node) -> Result<()> {
        let id = self.push_new(node)?;
        self.push_id(id)
    }

    fn push_id(&mut self, id: ValueId) -> Result<()> {
        self.stack.push(id);
        self.check_stack()
    }

    fn check_stack(&self) -> Result<()> {
        let max = self.config.limits.max_stack;
        if (self.stack.len() + self.marks.len()) as u64 > max {
            return Err(self.limit("max_stack", max));
        }
        Ok(())
    }

    fn push_int(&mut self, v: ParsedInt) -> Result<()> {
        match v {
            ParsedInt::Small(i) => self.push(Node::Int(i)),
            ParsedInt::Big(bytes) => self.push(Node::BigInt(bytes.into())),
        }
    }

    fn push_text(&mut self, n: u64) -> Result<()> {
        let bytes = self.take(n)?;
        let s = self.utf8(bytes)?;
        self.push(Node::Str(s))
    }

    fn push_py2_string(&mut self, n: u64) -> Result<()> {
        let bytes = self.take(n)?;
        let node = py2_string(bytes);
        self.push(node)
    }

    fn push_object(
        &mut self,
        callable: ValueId,
        args: ValueId,
        kwargs: Option<ValueId>,
        construction: Construction,
    ) -> Result<()> {
        let object = ObjectNode {
            callable,
            args,
            kwargs,
            construction,
            state: None,
            items: Vec::new(),
            dict_items: Vec::new(),
            offset: self.op_offset as u64,
        };
        self.push(Node::Object(Box::new(object)))
    }

    /// A global reference, after Python 2 → 3 renames and the filter.
    fn global(&mut self, module: &str, name: &str) -> Result<ValueId> {
        let (module, name) = super::names::python3_name(module, name);
        if let Some(allowed) = self.config.filter {
            if !allowed(module, name) {
                return Err(Error::GlobalRefused {
                    record: self.config.record.to_owned(),
                    offset: self.op_offset as u64,
                    module: module.to_owned(),
                    name: name.to_owned(),
                });
            }
        }
        self.push_new(Node::Global(Box::new(GlobalNode {
            module: module.into(),
            name: name.into(),
        })))
    }

    /// In strict mode only allowlisted globals may be called, as in torch's weights_only
    /// unpickler; calling the result of another call is refused.
    fn check_callable(&self, callable: ValueId) -> Result<()> {
        if self.config.filter.is_some() && self.tree.global(callable).is_none() {
            return Err(self.error("only allowlisted globals may be called in strict mode"));
        }
        Ok(())
    }

    fn extend(&mut self, target: ValueId, items: Vec<ValueId>) -> Result<()> {
        self.charge(items.len() as u64)?;
        match self.tree.node_mut(target) {
            Some(Node::List(list)) => list.extend(items),
            Some(Node::Object(obj)) => obj.items.extend(items),
            _ => return Err(self.error("APPEND to something that is not a list")),
        }
        Ok(())
    }

    fn set_items(&mut self, target: ValueId, pairs: Vec<(ValueId, ValueId)>) -> Result<()> {
        self.charge(pairs.len() as u64)?;
        match self.tree.node_mut(target) {
            Some(Node::Dict(dict)) => dict.items.extend(pairs),
            Some(Node::Object(obj)) => obj.dict_items.extend(pairs),
            _ => return Err(self.error("SETITEM on something that is not a dict")),
        }
        Ok(())
    }

    fn pairs(&self, items: Vec<ValueId>) -> Result<Vec<(ValueId, ValueId)>> {
        if items.len() % 2 != 0 {
            return Err(self.error("odd number of items for a dict"));
        }
        let mut it = items.into_iter();
        let mut pairs = Vec::with_capacity(it.len() / 2);
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            pairs.push((k, v));
        }
        Ok(pairs)
    }

    // ---- stack ----------------------------------------------------------------------------

    /// Values above the innermost mark (Python's current `stack` list).
    fn frame_len(&self) -> usize {
        self.stack.len() - self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<ValueId> {
        if self.frame_len() == 0 {
            return Err(self.error("stack underflow"));
        }
        self.stack.pop().ok_or_else(|| self.error("stack underflow"))
    }

    fn pop_n(&mut self, n: usize) -> Result<Vec<ValueId>> {
        if self.frame_len() < n {
            return Err(self.error("stack underflow"));
        }
        Ok(self.stack.split_off(self.stack.len() - n))
    }

    fn top(&self) -> Result<ValueId> {
        if self.frame_len() == 0 {
            return Err(self.error("stack underflow"));
        }
        self.stack.last().copied().ok_or_else(|| self.error("stack underflow"))
    }

    /// Pops everything above the innermost mark, and the mark.
    fn pop_mark(&mut self) -> Result<Vec<ValueId>> {
        let mark = self.marks.pop().ok_or_else(|| self.error("no MARK to pop to"))?;
        Ok(self.stack.split_off(mark))
    }

    // ---- memo -----------------------------------------------------------------------------

    fn memo_index(&self, line: &[u8]) -> Result<u64> {
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| self.error("bad memo index"))
    }

    fn get(&mut self, index: u64) -> Result<()> {
        let id = *self
            .memo
            .get(&index)
            .ok_or_else(|| self.error(format!("memo key {index} was never stored")))?;
        self.push_id(id)
    }

    fn put(&mut self, index: u64) -> Result<()> {
        let top = self.top()?;
        let max = self.config.limits.max_memo;
        if self.memo.insert(index, top).is_none() && self.memo.len() as u64 > max {
            return Err(self.limit("max_memo", max));
        }
        Ok(())
    }
}

/// Python 2 `str` payloads (`STRING`, `BINSTRING`, `SHORT_BINSTRING`), decoded as torch.load
/// does (`encoding="utf-8"`); bytes that are not UTF-8 stay bytes.
fn py2_string(bytes: &[u8]) -> Node {
    match std::str::from_utf8(bytes) {
        Ok(s) => Node::Str(s.into()),
        Err(_) => Node::Bytes(bytes.into()),
    }
}

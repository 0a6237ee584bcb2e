//! The pickle virtual machine: runs opcodes into a [`Tree`].
//!
//! Nothing is ever imported or called. Data opcodes build values as Python would (dict keys
//! merge as Python compares them, `APPEND` only extends lists, `SETITEM` only fills dicts);
//! globals, calls, `BUILD` and persistent ids are handed to a [`Handler`] at the moment the
//! opcode runs. In lenient mode, calls the handler does not claim are kept as inert
//! [`ObjectNode`]s that take items and state as data. All work is bounded by [`Limits`].

use super::call::{Call, Failure, Handler, Outcome};
use super::keys::{self, KeyId};
use super::memo::Memo;
use super::opcode::Opcode;
use super::text::{self, LeInt, ParsedInt};
use super::tree::{
    Construction, DictClass, DictNode, GlobalNode, Items, Node, ObjectNode, SetNode, Tree, ValueId, FALSE_ID, NONE_ID,
    TRUE_ID,
};
use crate::cursor::Cursor;
use crate::limits::Limit;
use crate::{Error, ErrorKind, Limits, Result, SharedBytes};

/// What the machine needs besides the bytes and the handler.
pub(crate) struct Config<'a> {
    /// Name of the record holding the pickle, for error messages.
    pub(crate) record: &'a str,
    pub(crate) limits: &'a Limits,
    /// Whether inert objects (calls no handler claimed) take `APPEND`, `SETITEM` and `BUILD`.
    pub(crate) lenient: bool,
    /// Whether text with lone surrogates (which Rust strings cannot hold) is kept, shown with
    /// U+FFFD; otherwise it is refused, so that no value is read differently than written.
    pub(crate) lossy_text: bool,
}

/// A decoded pickle plus how many input bytes it occupied (pickles are concatenated in legacy
/// files, so the next one starts there).
pub(crate) struct Unpickled<'data> {
    pub(crate) tree: Tree<'data>,
    pub(crate) consumed: usize,
    pub(crate) protocol: u8,
}

/// Runs one pickle from the start of `source` to its `STOP`.
pub(crate) fn unpickle<'data>(
    source: SharedBytes<'data>,
    config: &Config<'_>,
    handler: &mut dyn Handler<'data>,
) -> Result<Unpickled<'data>> {
    // A pickle may not span more than `max_pickle_bytes`; running out of the bounded input is
    // then reported as that limit rather than as truncation.
    let max = usize::try_from(config.limits.max_pickle_bytes).unwrap_or(usize::MAX);
    let all = source.clone();
    let bounded = all.as_slice().get(..max).unwrap_or(all.as_slice());
    let mut machine = Machine {
        input: Cursor::new(bounded),
        cut_by_limit: bounded.len() < all.len(),
        tree: Tree::new(source, config.limits),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Memo::for_pickle(bounded.len()),
        small_ints: [None; 256],
        config,
        handler,
        op_offset: 0,
        protocol: 0,
    };
    let root = machine.run()?;
    machine.tree.root = root;
    Ok(Unpickled {
        consumed: machine.input.position(),
        protocol: machine.protocol,
        tree: machine.tree,
    })
}

struct Machine<'a, 'c, 'data> {
    input: Cursor<'a>,
    /// Whether `input` was shortened to `max_pickle_bytes`.
    cut_by_limit: bool,
    tree: Tree<'data>,
    stack: Vec<ValueId>,
    /// Stack heights at each `MARK`.
    marks: Vec<usize>,
    memo: Memo,
    /// The node of each small int made so far: like CPython, which keeps one object per int
    /// from -5 to 256, the machine makes one node per int from 0 to 255 (a state dict has two
    /// or three per tensor: offsets, strides, sizes).
    small_ints: [Option<ValueId>; 256],
    config: &'c Config<'c>,
    handler: &'c mut dyn Handler<'data>,
    /// Offset of the opcode being executed.
    op_offset: usize,
    protocol: u8,
}

impl<'a> Machine<'a, '_, '_> {
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
        Err(self.limit(Limit::MaxOpcodes, max_ops))
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
                self.push_int_value(i64::from(v))?;
            }
            BININT1 => {
                let v = self.u8()?;
                self.push_int_value(i64::from(v))?;
            }
            BININT2 => {
                let v = self.read(|c| c.u16_le())?;
                self.push_int_value(i64::from(v))?;
            }
            LONG1 => {
                let n = self.u8()?;
                self.push_long(u64::from(n))?;
            }
            LONG4 => {
                let n = self.read(|c| c.i32_le())?;
                let n = u64::try_from(n).map_err(|_| self.error("LONG4 with a negative length"))?;
                self.push_long(n)?;
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
                self.check_exact_text(&s)?;
                let span = self.own(s)?;
                let id = self.tree.push_str(span).map_err(|e| self.locate(e))?;
                self.push_id(id)?;
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
                if std::str::from_utf8(&bytes).is_err() {
                    return Err(self.error(PY2_STRING_NOT_UTF8));
                }
                let span = self.own(bytes)?;
                self.push(Node::Str(span))?;
            }
            SHORT_BINBYTES => {
                let n = self.u8()?;
                let span = self.take_span(u64::from(n))?;
                self.push(Node::Bytes(span))?;
            }
            BINBYTES => {
                let n = self.read(|c| c.u32_le())?;
                let span = self.take_span(u64::from(n))?;
                self.push(Node::Bytes(span))?;
            }
            BINBYTES8 => {
                let n = self.u64()?;
                let span = self.take_span(n)?;
                self.push(Node::Bytes(span))?;
            }
            BYTEARRAY8 => {
                let n = self.u64()?;
                let span = self.take_span(n)?;
                self.push(Node::ByteArray(span))?;
            }

            EMPTY_TUPLE => self.push(Node::Tuple(Items::EMPTY))?,
            TUPLE => {
                let mark = self.marks.pop().ok_or_else(|| self.error("no MARK to pop to"))?;
                self.tuple_from(mark)?;
            }
            TUPLE1 | TUPLE2 | TUPLE3 => {
                let n = match op {
                    TUPLE1 => 1,
                    TUPLE2 => 2,
                    _ => 3,
                };
                if self.frame_len() < n {
                    return Err(self.error("stack underflow"));
                }
                self.tuple_from(self.stack.len() - n)?;
            }
            EMPTY_LIST => self.push(Node::List(Vec::new()))?,
            LIST => {
                let items = self.pop_mark()?;
                self.push(Node::List(items))?;
            }
            APPEND => {
                let item = self.pop()?;
                let target = self.top()?;
                self.extend(target, vec![item], "append to")?;
            }
            APPENDS => {
                let items = self.pop_mark()?;
                let target = self.top()?;
                self.extend(target, items, "extend")?;
            }
            EMPTY_DICT => self.push(Node::Dict(Box::default()))?,
            DICT => {
                let items = self.pop_mark()?;
                let dict = self.push_new(Node::Dict(Box::default()))?;
                self.set_items(dict, &items, "DICT")?;
                self.push_id(dict)?;
            }
            SETITEM => {
                let value = self.pop()?;
                let key = self.pop()?;
                let target = self.top()?;
                self.set_items(target, &[key, value], "SETITEM")?;
            }
            SETITEMS => {
                let items = self.pop_mark()?;
                let target = self.top()?;
                self.set_items(target, &items, "SETITEMS")?;
            }
            EMPTY_SET => self.push(Node::Set(Box::default()))?,
            ADDITEMS => {
                let items = self.pop_mark()?;
                let target = self.top()?;
                self.add_items(target, &items)?;
            }
            FROZENSET => {
                let items = self.pop_mark()?;
                let set = self.unique(&items)?;
                let id = self.tree.push_frozenset(&set).map_err(|e| self.locate(e))?;
                self.push_id(id)?;
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
                let (Some(module), Some(name)) = (self.tree.text(module), self.tree.text(name)) else {
                    return Err(self.error("STACK_GLOBAL requires str"));
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
                let args = self.tree.push_tuple(&args).map_err(|e| self.locate(e))?;
                self.call(class, args, None, Construction::Instantiate)?;
            }
            OBJ => {
                let items = self.pop_mark()?;
                let Some((&class, args)) = items.split_first() else {
                    return Err(self.error("OBJ without a class"));
                };
                let args = self.tree.push_tuple(args).map_err(|e| self.locate(e))?;
                self.call(class, args, None, Construction::Instantiate)?;
            }
            REDUCE => {
                let args = self.pop()?;
                let callable = self.pop()?;
                self.call(callable, args, None, Construction::Reduce)?;
            }
            NEWOBJ => {
                let args = self.pop()?;
                let class = self.pop()?;
                self.call(class, args, None, Construction::NewObj)?;
            }
            NEWOBJ_EX => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                let class = self.pop()?;
                self.call(class, args, Some(kwargs), Construction::NewObj)?;
            }
            BUILD => {
                let state = self.pop()?;
                let target = self.top()?;
                self.build(target, state)?;
            }

            PERSID => {
                let line = self.line()?;
                if !text::is_surrogatepass_utf8(line) {
                    return Err(self.error("persistent IDs in protocol 0 must be ASCII strings"));
                }
                let span = self.own(line.to_vec())?;
                let pid = self.tree.push_str(span).map_err(|e| self.locate(e))?;
                self.persistent_load(pid)?;
            }
            BINPERSID => {
                let pid = self.pop()?;
                self.persistent_load(pid)?;
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
                let index = self.memo.len();
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

    #[cold]
    #[inline(never)]
    fn error(&self, reason: impl Into<String>) -> Error {
        self.locate(ErrorKind::Pickle { reason: reason.into() }.into())
    }

    /// The input ended early: truncation, or the `max_pickle_bytes` bound.
    #[cold]
    #[inline(never)]
    fn eof(&self, reason: impl Into<String>) -> Error {
        if self.cut_by_limit {
            return self.limit(Limit::MaxPickleBytes, self.config.limits.max_pickle_bytes);
        }
        self.error(reason)
    }

    #[cold]
    #[inline(never)]
    fn limit(&self, limit: Limit, max: u64) -> Error {
        self.locate(Error::limit(limit, max))
    }

    /// Says where an error was raised: at the opcode being run, in this pickle's record
    /// (unless the error names its own record).
    #[cold]
    #[inline(never)]
    fn locate(&self, error: Error) -> Error {
        error.at(self.config.record, self.op_offset as u64)
    }

    #[cold]
    #[inline(never)]
    fn failure(&self, failure: Failure) -> Error {
        match failure {
            Failure::Python(reason) => self.error(reason),
            Failure::Error(error) => self.locate(error),
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

    /// `n` bytes of input as a span of the source: kept where they are, not copied.
    fn take_span(&mut self, n: u64) -> Result<super::tree::Span> {
        let start = self.input.position();
        let bytes = self.take(n)?;
        Ok(self.tree.source_span(start, bytes.len()))
    }

    fn utf8(&self, bytes: &[u8]) -> Result<String> {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| self.error("text is not valid UTF-8"))
    }

    fn line(&mut self) -> Result<&'a [u8]> {
        self.input.line().ok_or_else(|| self.eof("unterminated text argument"))
    }

    fn own(&mut self, bytes: Vec<u8>) -> Result<super::tree::Span> {
        self.tree.own(bytes).map_err(|e| self.locate(e))
    }

    // ---- values ---------------------------------------------------------------------------

    /// Counts `n` units of `max_values`.
    fn charge(&mut self, n: u64) -> Result<()> {
        self.tree.charge(n).map_err(|e| self.locate(e))
    }

    /// Adds a node to the arena without pushing it on the stack.
    fn push_new(&mut self, node: Node) -> Result<ValueId> {
        self.tree.push(node).map_err(|e| self.locate(e))
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
            return Err(self.limit(Limit::MaxStack, max));
        }
        Ok(())
    }

    /// Pushes the int `v`: the one node of a small int, or a new node.
    fn push_int_value(&mut self, v: i64) -> Result<()> {
        let Some(slot) = usize::try_from(v).ok().and_then(|i| self.small_ints.get(i).copied()) else {
            return self.push(Node::Int(v));
        };
        let id = match slot {
            Some(id) => id,
            None => {
                let id = self.push_new(Node::Int(v))?;
                if let Some(slot) = usize::try_from(v).ok().and_then(|i| self.small_ints.get_mut(i)) {
                    *slot = Some(id);
                }
                id
            }
        };
        self.push_id(id)
    }

    fn push_int(&mut self, v: ParsedInt) -> Result<()> {
        match v {
            ParsedInt::Small(i) => self.push_int_value(i),
            ParsedInt::Big(bytes) => {
                let span = self.own(bytes)?;
                self.push(Node::BigInt(span))
            }
        }
    }

    /// A `LONG1`/`LONG4` integer; big ones stay in the pickle's bytes.
    fn push_long(&mut self, n: u64) -> Result<()> {
        let span = self.take_span(n)?;
        match text::int_from_le_bytes(self.tree.bytes_of(span)) {
            LeInt::Small(i) => self.push_int_value(i),
            LeInt::Big(len) => {
                let start = self.input.position() - span.len();
                let span = self.tree.source_span(start, len);
                self.push(Node::BigInt(span))
            }
        }
    }

    fn push_text(&mut self, n: u64) -> Result<()> {
        let span = self.take_span(n)?;
        if std::str::from_utf8(self.tree.bytes_of(span)).is_ok() {
            // Plain UTF-8 (nearly all text): exact, nothing lossy to keep.
            let id = self.push_new(Node::Str(span))?;
            return self.push_id(id);
        }
        if !text::is_surrogatepass_utf8(self.tree.bytes_of(span)) {
            return Err(self.error("text is not valid UTF-8"));
        }
        self.check_exact_text(self.tree.bytes_of(span))?;
        let id = self.tree.push_str(span).map_err(|e| self.locate(e))?;
        self.push_id(id)
    }

    /// Refuses text holding a lone surrogate unless lossy text is allowed.
    fn check_exact_text(&self, bytes: &[u8]) -> Result<()> {
        if !self.config.lossy_text && std::str::from_utf8(bytes).is_err() {
            return Err(self.error(
                "a string holds a lone surrogate (U+D800..U+DFFF), which this reader cannot represent exactly",
            ));
        }
        Ok(())
    }

    /// Python 2 `str` payloads (`BINSTRING`, `SHORT_BINSTRING`), decoded as torch.load decodes
    /// them (`encoding="utf-8"`, strict).
    fn push_py2_string(&mut self, n: u64) -> Result<()> {
        let span = self.take_span(n)?;
        if std::str::from_utf8(self.tree.bytes_of(span)).is_err() {
            return Err(self.error(PY2_STRING_NOT_UTF8));
        }
        self.push(Node::Str(span))
    }

    /// A global reference, after Python 2 → 3 renames and the handler's verdict.
    fn global(&mut self, module: &str, name: &str) -> Result<ValueId> {
        let (module, name) = super::names::python3_name(module, name);
        if !self.handler.allows_global(module, name) {
            return Err(self.locate(
                ErrorKind::GlobalRefused {
                    module: module.to_owned(),
                    name: name.to_owned(),
                }
                .into(),
            ));
        }
        self.push_new(Node::Global(Box::new(GlobalNode {
            module: module.into(),
            name: name.into(),
        })))
    }

    /// Evaluates a call through the handler, or keeps it inert; pushes the result.
    fn call(
        &mut self,
        callable: ValueId,
        args: ValueId,
        kwargs: Option<ValueId>,
        construction: Construction,
    ) -> Result<()> {
        let call = Call {
            callable,
            args,
            kwargs,
            construction,
            offset: self.op_offset as u64,
        };
        let outcome = self.handler.call(&mut self.tree, &call).map_err(|f| self.failure(f))?;
        let result = match outcome {
            Outcome::Value(id) => id,
            Outcome::Inert => self.push_new(Node::Object(Box::new(ObjectNode {
                callable,
                args,
                kwargs,
                construction,
                state: None,
                items: Vec::new(),
                dict_items: Vec::new(),
            })))?,
        };
        self.push_id(result)
    }

    fn build(&mut self, target: ValueId, state: ValueId) -> Result<()> {
        let outcome = self
            .handler
            .build(&mut self.tree, target, state, self.op_offset as u64)
            .map_err(|f| self.failure(f))?;
        if outcome == Outcome::Inert {
            match self.tree.node_mut(target) {
                Some(Node::Object(obj)) if self.config.lenient => obj.state = Some(state),
                _ => {
                    let kind = self.tree.type_name(target);
                    return Err(self.error(format!(
                        "Can only build Tensor, Parameter, OrderedDict or allowlisted types, but got {kind}"
                    )));
                }
            }
        }
        Ok(())
    }

    fn persistent_load(&mut self, pid: ValueId) -> Result<()> {
        let id = self
            .handler
            .persistent_load(&mut self.tree, pid, self.op_offset as u64)
            .map_err(|f| self.failure(f))?;
        self.push_id(id)
    }

    /// `APPEND`/`APPENDS`: lists only, as torch's loader demands (and inert objects in lenient
    /// mode, whose class Python would have asked to `append`).
    fn extend(&mut self, target: ValueId, items: Vec<ValueId>, verb: &str) -> Result<()> {
        self.charge(items.len() as u64)?;
        let lenient = self.config.lenient;
        match self.tree.node_mut(target) {
            Some(Node::List(list)) => list.extend(items),
            Some(Node::Object(obj)) if lenient => obj.items.extend(items),
            _ => {
                let kind = self.tree.type_name(target);
                return Err(self.error(format!("Can only {verb} lists, but got {kind}")));
            }
        }
        Ok(())
    }

    /// `SETITEM`/`SETITEMS`/`DICT`: `dict`, `OrderedDict` and `Counter` only, as torch's loader
    /// demands (and inert objects in lenient mode); keys merge as Python's dict merges them.
    fn set_items(&mut self, target: ValueId, items: &[ValueId], op: &str) -> Result<()> {
        match self.tree.node(target) {
            Node::Dict(d) if d.class.takes_items() => {}
            Node::Object(_) if self.config.lenient => {
                if items.len() % 2 != 0 {
                    return Err(self.error("odd number of items for SETITEMS"));
                }
                self.charge(items.len() as u64 / 2)?;
                let pairs = items.chunks_exact(2).filter_map(|kv| match kv {
                    &[k, v] => Some((k, v)),
                    _ => None,
                });
                if let Some(Node::Object(obj)) = self.tree.node_mut(target) {
                    obj.dict_items.extend(pairs);
                }
                return Ok(());
            }
            _ => {
                let kind = self.tree.type_name(target);
                return Err(self.error(format!(
                    "Can only {op} for dict, collections.OrderedDict, collections.Counter, but got {kind}"
                )));
            }
        }
        // Room for the batch at once (its pairs are on the stack already), not by rehashing as
        // the dict grows; keys met again just leave room unused.
        let pairs = items.len() / 2;
        self.tree.keys.reserve(pairs);
        if let Some(Node::Dict(dict)) = self.tree.node_mut(target) {
            let _ = dict.items.try_reserve(pairs);
            let _ = dict.index.try_reserve(pairs);
        }
        for pair in items.chunks(2) {
            let &[key, value] = pair else {
                return Err(self.error("odd number of items for SETITEMS"));
            };
            self.charge(1)?;
            let key_id = self.key(key)?;
            if let Some(Node::Dict(dict)) = self.tree.node_mut(target) {
                dict_insert(dict, key_id, key, value);
            }
        }
        Ok(())
    }

    /// `ADDITEMS`: sets only (and inert objects in lenient mode).
    fn add_items(&mut self, target: ValueId, items: &[ValueId]) -> Result<()> {
        match self.tree.node(target) {
            Node::Set(_) => {}
            Node::Object(_) if self.config.lenient => {
                self.charge(items.len() as u64)?;
                if let Some(Node::Object(obj)) = self.tree.node_mut(target) {
                    obj.items.extend_from_slice(items);
                }
                return Ok(());
            }
            _ => {
                let kind = self.tree.type_name(target);
                return Err(self.error(format!("'{kind}' object has no attribute 'add'")));
            }
        }
        for &item in items {
            self.charge(1)?;
            let key_id = self.key(item)?;
            if let Some(Node::Set(set)) = self.tree.node_mut(target) {
                set_insert(set, key_id, item);
            }
        }
        Ok(())
    }

    /// The distinct elements of `items`, first occurrences kept (a frozenset's elements).
    fn unique(&mut self, items: &[ValueId]) -> Result<Vec<ValueId>> {
        let mut set = SetNode::default();
        for &item in items {
            self.charge(1)?;
            let key_id = self.key(item)?;
            set_insert(&mut set, key_id, item);
        }
        Ok(set.items)
    }

    fn key(&mut self, key: ValueId) -> Result<KeyId> {
        keys::key_of(&mut self.tree, key).map_err(|u| self.error(format!("unhashable type: '{}'", u.0)))
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

    /// Replaces the values from stack height `start` up with the tuple of them.
    fn tuple_from(&mut self, start: usize) -> Result<()> {
        let made = self.tree.push_tuple(self.stack.get(start..).unwrap_or_default());
        let id = made.map_err(|e| self.locate(e))?;
        self.stack.truncate(start);
        self.push_id(id)
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
        let id = self
            .memo
            .get(index)
            .ok_or_else(|| self.error(format!("memo key {index} was never stored")))?;
        self.push_id(id)
    }

    fn put(&mut self, index: u64) -> Result<()> {
        let top = self.top()?;
        let max = self.config.limits.max_memo;
        if !self.memo.put(index, top) || self.memo.len() > max {
            return Err(self.limit(Limit::MaxMemo, max));
        }
        Ok(())
    }
}

const PY2_STRING_NOT_UTF8: &str = "a Python 2 string is not UTF-8 (torch.load decodes them with encoding='utf-8')";

/// `dict[key] = value`: a new key goes last; an equal key keeps its place and its first key
/// object and takes the new value.
pub(crate) fn dict_insert(dict: &mut DictNode, key_id: KeyId, key: ValueId, value: ValueId) {
    match dict.index.get(&key_id).and_then(|&at| dict.items.get_mut(at)) {
        Some(slot) => slot.1 = value,
        None => {
            dict.index.insert(key_id, dict.items.len());
            dict.items.push((key, value));
        }
    }
}

/// `set.add(item)`: a new element goes last; an equal one is already there.
pub(crate) fn set_insert(set: &mut SetNode, key_id: KeyId, item: ValueId) {
    if !set.index.contains_key(&key_id) {
        set.index.insert(key_id, set.items.len());
        set.items.push(item);
    }
}

/// A new dict of class `class` holding `items` (key, value) pairs, merged as Python merges them.
pub(crate) fn new_dict(
    tree: &mut Tree<'_>,
    class: DictClass,
    items: &[(ValueId, ValueId)],
) -> std::result::Result<ValueId, Failure> {
    let mut dict = DictNode {
        class,
        ..DictNode::default()
    };
    for &(key, value) in items {
        tree.charge(1)?;
        let key_id = keys::key_of(tree, key).map_err(|u| Failure::Python(format!("unhashable type: '{}'", u.0)))?;
        dict_insert(&mut dict, key_id, key, value);
    }
    Ok(tree.push(Node::Dict(Box::new(dict)))?)
}

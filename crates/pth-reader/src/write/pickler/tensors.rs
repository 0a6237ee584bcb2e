//! Tensors and storages, reduced as `Tensor.__reduce_ex__` and `_save.persistent_id` reduce them.
//!
//! - a plain tensor: `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
//!   OrderedDict()[, metadata])`, or `_rebuild_tensor_v3(…, dtype[, metadata])` for the dtypes
//!   torch keeps in untyped storages; `metadata` is `{'conj': True}` / `{'neg': True}`;
//! - a meta tensor: `_rebuild_meta_tensor_no_storage(dtype, size, stride, requires_grad)`;
//! - a quantized tensor: `_rebuild_qtensor(storage, offset, size, stride, qparams,
//!   requires_grad, OrderedDict())`;
//! - a Parameter: `_rebuild_parameter(data, requires_grad, OrderedDict())`, or
//!   `_rebuild_parameter_with_state(…, state)` when it has Python attributes;
//! - a tensor with Python attributes, or of a subclass: `_rebuild_from_type_v2(func, cls, args,
//!   state)`;
//! - a storage: the persistent id `('storage', cls, key, location, numel)` (a sixth item, `None`,
//!   in the legacy stream).

#![forbid(unsafe_code)]

use std::borrow::Cow;

use super::{unsupported, Pickler, PidForm, Task};
use crate::pickle::opcode::Op;
use crate::pickle::tree::ValueId;
use crate::tensor::{Quantization, Storage, TensorView};
use crate::write::storages::{StorageIdentity, StorageKind, StorageOut};
use crate::{ByteOrder, Error, ErrorKind, Result, SharedBytes};

const UTILS: &str = "torch._utils";

impl<'a, 'data> Pickler<'a, 'data> {
    /// Writes the call that rebuilds `t`, up to its `REDUCE` (pushing tasks for what comes
    /// after a nested value); the caller memoizes the result.
    pub(super) fn tensor(&mut self, t: &'a TensorView<'data>, attributes: Option<ValueId>) -> Result<()> {
        if t.data.is_none() && t.subclass.is_some() {
            return Err(unsupported("a wrapper tensor subclass (no storage)"));
        }
        if t.is_parameter {
            return self.parameter(t, attributes);
        }
        if attributes.is_none() && t.subclass.is_none() {
            return self.plain(t, t.requires_grad);
        }
        // `_rebuild_from_type_v2(func, type(self), args, state)`.
        self.global("torch._tensor", "_rebuild_from_type_v2")?;
        self.op(Op::Mark)?;
        let (module, name) = rebuild_function(t);
        self.global(module, name)?;
        match t.subclass.as_deref() {
            None => self.global("torch", "Tensor")?,
            Some(class) => {
                let (module, name) = class.rsplit_once('.').unwrap_or(("", class));
                self.global(module, name)?;
            }
        }
        self.rebuild_args(t, t.requires_grad)?;
        self.end_with_state(attributes)
    }

    /// A plain tensor's `func(args)`.
    fn plain(&mut self, t: &'a TensorView<'data>, requires_grad: bool) -> Result<()> {
        let (module, name) = rebuild_function(t);
        self.global(module, name)?;
        self.rebuild_args(t, requires_grad)?;
        self.op(Op::Reduce)
    }

    /// `_rebuild_parameter(data, requires_grad, OrderedDict())`, with the state when the
    /// Parameter has attributes; `data` is the plain tensor.
    fn parameter(&mut self, t: &'a TensorView<'data>, attributes: Option<ValueId>) -> Result<()> {
        if t.subclass.is_some() {
            return Err(unsupported("a Parameter of a tensor subclass"));
        }
        if attributes.is_some() {
            self.global(UTILS, "_rebuild_parameter_with_state")?;
            self.op(Op::Mark)?;
        } else {
            self.global(UTILS, "_rebuild_parameter")?;
        }
        self.plain(t, false)?;
        self.put()?;
        self.bool(t.requires_grad)?;
        self.hooks()?;
        match attributes {
            Some(_) => self.end_with_state(attributes),
            None => {
                self.op(Op::TupleN(3))?;
                self.put()?;
                self.op(Op::Reduce)
            }
        }
    }

    /// The last item of a `MARK`ed argument tuple, the state, then the call: the state is a
    /// value of the tree, written by tasks (an empty dict when there is none).
    fn end_with_state(&mut self, state: Option<ValueId>) -> Result<()> {
        self.tasks.push(Task::Op(Op::Reduce));
        self.tasks.push(Task::PutNew);
        self.tasks.push(Task::Op(Op::Tuple));
        match state {
            Some(state) => self.tasks.push(Task::Save(state)),
            None => {
                self.op(Op::EmptyDict)?;
                self.put()?;
            }
        }
        Ok(())
    }

    /// The argument tuple of [`rebuild_function`]`(t)`.
    fn rebuild_args(&mut self, t: &'a TensorView<'data>, requires_grad: bool) -> Result<()> {
        self.op(Op::Mark)?;
        if t.data.is_none() {
            // `(dtype, size, stride, requires_grad)`
            self.global("torch", t.dtype.name())?;
            self.sizes(t.shape())?;
            self.sizes(t.stride())?;
            self.bool(requires_grad)?;
        } else {
            self.persistent_id(t)?;
            self.int(i64::try_from(t.storage_offset()).map_err(|_| unsupported("a storage offset past 2^63"))?)?;
            self.sizes(t.shape())?;
            self.sizes(t.stride())?;
            if let Some(q) = t.quantization.as_deref() {
                self.qparams(q)?;
                self.bool(requires_grad)?;
                self.hooks()?;
            } else {
                self.bool(requires_grad)?;
                self.hooks()?;
                if t.dtype.storage_name().is_none() {
                    self.global("torch", t.dtype.name())?;
                }
                self.metadata(t)?;
            }
        }
        self.op(Op::Tuple)?;
        self.put().map(|_| ())
    }

    /// A size or stride: a tuple of ints.
    fn sizes(&mut self, values: &[usize]) -> Result<()> {
        let values: Vec<i64> = values
            .iter()
            .map(|&v| i64::try_from(v).map_err(|_| unsupported("a size or stride past 2^63")))
            .collect::<Result<_>>()?;
        self.tuple_of(values.len(), |p| values.iter().try_for_each(|&v| p.int(v)))
    }

    /// `OrderedDict()`: the backward hooks torch always writes empty.
    fn hooks(&mut self) -> Result<()> {
        self.global("collections", "OrderedDict")?;
        self.op(Op::EmptyTuple)?;
        self.op(Op::Reduce)?;
        self.put().map(|_| ())
    }

    /// `get_tensor_metadata`: the conjugate and negative bits that are set, if any.
    fn metadata(&mut self, t: &TensorView<'_>) -> Result<()> {
        let flags: Vec<&'static [u8]> = [(t.conj, &b"conj"[..]), (t.neg, &b"neg"[..])]
            .into_iter()
            .filter_map(|(set, name)| set.then_some(name))
            .collect();
        if flags.is_empty() {
            return Ok(());
        }
        self.op(Op::EmptyDict)?;
        self.put()?;
        if flags.len() > 1 {
            self.op(Op::Mark)?;
        }
        for name in &flags {
            self.text(Cow::Borrowed(name))?;
            self.op(Op::NewTrue)?;
        }
        self.op(if flags.len() > 1 { Op::SetItems } else { Op::SetItem })
    }

    /// `(qscheme, scale, zero_point)` or `(qscheme, scales, zero_points, axis)`.
    fn qparams(&mut self, q: &'a Quantization<'data>) -> Result<()> {
        match q {
            Quantization::PerTensor {
                scheme,
                scale,
                zero_point,
            } => {
                self.global("torch", scheme)?;
                self.op(Op::BinFloat(*scale))?;
                self.int(*zero_point)?;
                self.op(Op::TupleN(3))?;
            }
            Quantization::PerChannel {
                scheme,
                scales,
                zero_points,
                axis,
            } => {
                self.op(Op::Mark)?;
                self.global("torch", scheme)?;
                for part in [&**scales, &**zero_points] {
                    if part.quantization.is_some() || part.is_parameter || part.subclass.is_some() {
                        return Err(unsupported("a quantizer whose scales are not plain tensors"));
                    }
                    self.plain(part, part.requires_grad)?;
                    self.put()?;
                }
                self.int(*axis)?;
                self.op(Op::Tuple)?;
            }
        }
        self.put().map(|_| ())
    }

    /// `BINPERSID` of the storage `t` views, registered on first sight.
    fn persistent_id(&mut self, t: &'a TensorView<'data>) -> Result<()> {
        let bytes = t.data.as_ref().ok_or_else(|| unsupported("a tensor without data"))?;
        let swap_unit = if t.byte_order == self.orders.target {
            1
        } else {
            t.swap_unit
        };
        let location = t.location.as_deref().unwrap_or("cpu");
        let key = t.storage_key.as_ref();
        let at = self.storage(bytes, key, StorageKind::for_dtype(t.dtype), swap_unit, location)?;
        self.pid(at)
    }

    /// A storage saved on its own (`torch.save(t.untyped_storage())`).
    pub(super) fn bare_storage(&mut self, s: &'a Storage<'data>) -> Result<()> {
        let kind = s.dtype.map_or(StorageKind::Untyped, StorageKind::for_dtype);
        let swap_unit = match kind {
            StorageKind::Typed(d) if self.orders.bare != self.orders.target => d.swap_unit(),
            _ => 1,
        };
        let at = self.storage(&s.bytes, Some(&s.key), kind, swap_unit, &s.location)?;
        self.pid(at)
    }

    /// The index of a storage among those written, registering it on first sight; torch's
    /// refusal when one storage is viewed as two types.
    fn storage(
        &mut self,
        bytes: &'a SharedBytes<'data>,
        key: Option<&std::sync::Arc<str>>,
        kind: StorageKind,
        swap_unit: usize,
        location: &'a str,
    ) -> Result<usize> {
        if kind == StorageKind::Untyped && self.form == PidForm::Legacy {
            // `_legacy_load` asks the storage class for its dtype, which `UntypedStorage` has
            // not: torch writes such files (for float8, uint16, complex32, ...) but cannot read
            // them back.
            return Err(unsupported(
                "an untyped storage (float8, uint16/32/64, complex32, bits, ...) in the legacy format, \
                 which torch cannot read back",
            ));
        }
        if kind == StorageKind::Untyped && self.form == PidForm::Zip && self.orders.target == ByteOrder::Big {
            // torch swaps a big-endian archive's typed storages as it loads them, never its
            // untyped ones: a little-endian torch would read other values than were written.
            return Err(unsupported(
                "an untyped storage (float8, uint16/32/64, complex32, bits, ...) in a big-endian archive, \
                 which torch reads back unswapped",
            ));
        }
        let identity = StorageIdentity::of(bytes, key);
        let Some(&at) = self.storage_index.get(&identity) else {
            let at = self.storages.len();
            self.storages.push(StorageOut {
                key: at.to_string(),
                bytes,
                kind,
                location,
                swap_unit,
            });
            self.storage_index.insert(identity, at);
            return Ok(at);
        };
        let known = self.storages.get(at).ok_or_else(|| unsupported("a dangling storage"))?;
        if known.kind != kind || known.swap_unit != swap_unit {
            return Err(Error::from(ErrorKind::InvalidStorage {
                key: key.map(|k| k.to_string()).unwrap_or_default(),
                reason: "Cannot save multiple tensors or storages that view the same data as different types".into(),
            }));
        }
        Ok(at)
    }

    /// `_rebuild_sparse_tensor(_get_layout('torch.<layout>'), data)`, `data` being the parts
    /// (the values of the dict the reader shows a sparse tensor as, in their order).
    pub(super) fn sparse(&mut self, id: ValueId, layout: &'static str, parts: &'a [(ValueId, ValueId)]) -> Result<()> {
        self.global(UTILS, "_rebuild_sparse_tensor")?;
        self.global("torch.serialization", "_get_layout")?;
        self.text(Cow::Owned(format!("torch.{layout}").into_bytes()))?;
        self.op(Op::TupleN(1))?;
        self.put()?;
        self.op(Op::Reduce)?;
        self.put()?;
        let len = parts.len();
        if len > 3 {
            self.op(Op::Mark)?;
        }
        self.tasks.push(Task::Memoize(id));
        self.tasks.push(Task::Op(Op::Reduce));
        self.tasks.push(Task::PutNew);
        self.tasks.push(Task::Op(Op::TupleN(2)));
        self.tasks.push(Task::PutNew);
        self.tasks.push(Task::Op(match len {
            1..=3 => Op::TupleN(len as u8),
            _ => Op::Tuple,
        }));
        self.tasks
            .extend(parts.iter().rev().map(|&(_, value)| Task::Save(value)));
        Ok(())
    }

    /// `('storage', cls, key, location, numel[, None])` and `BINPERSID`.
    fn pid(&mut self, at: usize) -> Result<()> {
        let s = self.storages.get(at).ok_or_else(|| unsupported("a dangling storage"))?;
        let (class, key, location, numel) = (s.kind.class(), s.key.clone(), s.location, s.numel()?);
        self.op(Op::Mark)?;
        self.text(Cow::Borrowed(b"storage"))?;
        self.global(class.0, class.1)?;
        self.text(Cow::Owned(key.into_bytes()))?;
        self.text(Cow::Borrowed(location.as_bytes()))?;
        self.int(i64::try_from(numel).map_err(|_| unsupported("a storage of more than 2^63 elements"))?)?;
        if self.form == PidForm::Legacy {
            self.op(Op::None)?;
        }
        self.op(Op::Tuple)?;
        self.put()?;
        self.op(Op::BinPersId)
    }
}

/// The function `Tensor._reduce_ex_internal` reduces `t` to.
fn rebuild_function(t: &TensorView<'_>) -> (&'static str, &'static str) {
    let name = if t.data.is_none() {
        "_rebuild_meta_tensor_no_storage"
    } else if t.quantization.is_some() {
        "_rebuild_qtensor"
    } else if t.dtype.storage_name().is_none() {
        "_rebuild_tensor_v3"
    } else {
        "_rebuild_tensor_v2"
    };
    (UTILS, name)
}

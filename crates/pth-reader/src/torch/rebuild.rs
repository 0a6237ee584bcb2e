//! The rebuild functions of `torch._utils` (and `torch._tensor._rebuild_from_type_v2`),
//! evaluated when the pickle calls them, as torch 2.15 defines them.

use std::sync::Arc;

use super::globals::{self, Global, Rebuild};
use super::handler::TorchHandler;
use super::spec::{self, contiguous_strides, Data, QuantSpec, TensorSpec};
use crate::pickle::call::{raise, Failure};
use crate::pickle::tree::{Construction, DictClass, Node, Tree, ValueId};
use crate::DType;

/// Sparse layouts by the name `torch.serialization._get_layout` gives them.
pub(crate) const SPARSE_LAYOUTS: [&str; 5] = ["sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc"];

/// Every layout `_get_layout` knows (`str(layout)` of torch's layouts).
pub(crate) const LAYOUTS: [&str; 8] = [
    "strided",
    "sparse_coo",
    "sparse_csr",
    "sparse_csc",
    "sparse_bsr",
    "sparse_bsc",
    "_mkldnn",
    "jagged",
];

fn arity(args: &[ValueId], min: usize, max: usize, name: &str) -> Result<(), Failure> {
    if args.len() < min || args.len() > max {
        return raise(format!(
            "{name}() takes {min} to {max} arguments ({} given)",
            args.len()
        ));
    }
    Ok(())
}

impl TorchHandler<'_> {
    /// Calls a rebuild function.
    pub(super) fn rebuild(
        &mut self,
        tree: &mut Tree<'_>,
        which: Rebuild,
        args: &[ValueId],
        offset: u64,
    ) -> Result<ValueId, Failure> {
        let arg = |i: usize| args.get(i).copied();
        match which {
            Rebuild::Tensor => {
                arity(args, 4, 4, "_rebuild_tensor")?;
                let made = self.dense(tree, args, None, offset);
                self.tensor_or_invalid(tree, made)
            }
            Rebuild::TensorV2 => self.tensor_v2_or_v3(tree, args, false, offset),
            Rebuild::TensorV3 => self.tensor_v2_or_v3(tree, args, true, offset),
            Rebuild::QTensor => {
                arity(args, 7, 7, "_rebuild_qtensor")?;
                let made = self.qtensor(tree, args, offset);
                self.tensor_or_invalid(tree, made)
            }
            Rebuild::Parameter => {
                arity(args, 3, 3, "_rebuild_parameter")?;
                self.parameter(tree, arg(0), arg(1), offset)
            }
            Rebuild::ParameterWithState => {
                arity(args, 4, 4, "_rebuild_parameter_with_state")?;
                let param = self.parameter(tree, arg(0), arg(1), offset)?;
                if let Some(state) = arg(3) {
                    self.set_obj_state(tree, param, state)?;
                }
                Ok(param)
            }
            Rebuild::Sparse => {
                arity(args, 2, 2, "_rebuild_sparse_tensor")?;
                self.sparse(tree, arg(0), arg(1))
            }
            Rebuild::MetaNoStorage => {
                arity(args, 4, 4, "_rebuild_meta_tensor_no_storage")?;
                let made = self.meta(tree, arg(0), arg(1), arg(2), arg(3), offset);
                self.tensor_or_invalid(tree, made)
            }
            Rebuild::WrapperSubclass => {
                arity(args, 8, 8, "_rebuild_wrapper_subclass")?;
                let made = self.wrapper_subclass(tree, args, offset);
                self.tensor_or_invalid(tree, made)
            }
            Rebuild::DeviceFromNumpy => {
                arity(args, 4, 4, "_rebuild_device_tensor_from_numpy")?;
                self.device_tensor_from_numpy(tree, arg(0))
            }
            Rebuild::DeviceFromCpu => {
                arity(args, 4, 4, "_rebuild_device_tensor_from_cpu_tensor")?;
                self.device_tensor_from_cpu(tree, args, offset)
            }
            Rebuild::FromTypeV2 => {
                arity(args, 4, 4, "_rebuild_from_type_v2")?;
                self.rebuild_from_type_v2(tree, args, offset)
            }
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[,
    /// metadata])`, or `_rebuild_tensor_v3` with the dtype as a seventh argument.
    fn tensor_v2_or_v3(
        &mut self,
        tree: &mut Tree<'_>,
        args: &[ValueId],
        v3: bool,
        offset: u64,
    ) -> Result<ValueId, Failure> {
        let arg = |i: usize| args.get(i).copied();
        let (min, name) = if v3 {
            (7, "_rebuild_tensor_v3")
        } else {
            (6, "_rebuild_tensor_v2")
        };
        arity(args, min, min + 1, name)?;
        let dtype = if v3 { Some(self.dtype_arg(tree, arg(6))?) } else { None };
        let made = self.dense(tree, args, dtype, offset).and_then(|mut t| {
            t.requires_grad = Self::requires_grad(tree, arg(4), t.dtype())?;
            self.metadata(tree, &mut t, arg(min))?;
            Ok(t)
        });
        self.tensor_or_invalid(tree, made)
    }

    /// `torch.from_numpy(data)`: no numpy array can be made in a pickle torch accepts, and this
    /// reader does not rebuild numpy arrays.
    fn device_tensor_from_numpy(&self, tree: &Tree<'_>, data: Option<ValueId>) -> Result<ValueId, Failure> {
        match data.map(|a| tree.node(a)) {
            Some(Node::Object(_)) => Err(self.unsupported("a tensor rebuilt from a numpy array")),
            _ => raise("expected np.ndarray"),
        }
    }

    /// `torch.empty((0,), dtype).set_(storage._untyped_storage, offset, size, stride)`.
    fn dense(
        &mut self,
        tree: &Tree<'_>,
        args: &[ValueId],
        dtype: Option<DType>,
        offset: u64,
    ) -> Result<TensorSpec, Failure> {
        let arg = |i: usize| args.get(i).copied();
        let index = match arg(0).map(|a| tree.node(a)) {
            Some(Node::Storage(i)) => *i,
            _ => {
                let kind = arg(0).map_or("nothing".to_owned(), |a| tree.type_name(a));
                return raise(format!("'{kind}' object has no attribute '_untyped_storage'"));
            }
        };
        let storage = self
            .work
            .storage(index)
            .ok_or_else(|| Failure::Python("dangling storage".into()))?;
        let dtype = dtype.unwrap_or(storage.dtype);
        self.view_of_storage(tree, index, dtype, arg(1), arg(2), arg(3), offset)
    }

    /// `set_(storage, storage_offset, size, stride)` on a tensor of `dtype`; a legacy stream's
    /// storage grows to fit, as torch's resizable storages do.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn view_of_storage(
        &mut self,
        tree: &Tree<'_>,
        storage: u32,
        dtype: DType,
        storage_offset: Option<ValueId>,
        size: Option<ValueId>,
        stride: Option<ValueId>,
        offset: u64,
    ) -> Result<TensorSpec, Failure> {
        let nbytes = self.work.storage(storage).map(|s| s.nbytes);
        let start = match storage_offset.map(|a| tree.node(a)) {
            Some(Node::Int(v)) => *v,
            _ => return raise("set_(): storage_offset must be an int"),
        };
        let shape = self.dims(tree, size, "size")?;
        let stride = match stride.map(|s| tree.node(s)) {
            None | Some(Node::None) => contiguous_strides(&shape),
            Some(_) => self.dims(tree, stride, "stride")?,
        };
        if super::storage::growable(&self.work, storage) {
            if let Ok(unbounded) = spec::layout(dtype, &shape, &stride, start, None, self.limits) {
                if let Some(needed) = unbounded.bytes_needed() {
                    super::storage::grow(&mut self.work, storage, needed as u64);
                }
            }
        }
        let nbytes = self.work.storage(storage).map(|s| s.nbytes).or(nbytes);
        let layout = spec::layout(dtype, &shape, &stride, start, nbytes, self.limits)
            .map_err(|reason| self.invalid(offset, reason))?;
        Ok(TensorSpec::new(layout, Data::Storage(storage)))
    }

    /// `set_tensor_metadata`: a truthy metadata must be a dict of str → bool-like; `conj` only
    /// on complex tensors.
    fn metadata(&self, tree: &Tree<'_>, t: &mut TensorSpec, metadata: Option<ValueId>) -> Result<(), Failure> {
        let Some(metadata) = metadata else { return Ok(()) };
        if Self::truthy(tree, metadata) == Some(false) {
            return Ok(());
        }
        let Node::Dict(dict) = tree.node(metadata) else {
            return raise(format!("expected dict, got {}", tree.type_name(metadata)));
        };
        for &(k, v) in &dict.items {
            let Some(key) = tree.text(k) else {
                return raise("tensor metadata keys must be str");
            };
            let on = match tree.node(v) {
                Node::Bool(_) | Node::Int(_) | Node::BigInt(_) | Node::Float(_) | Node::None => {
                    Self::truthy(tree, v).unwrap_or(false)
                }
                _ => return raise("tensor metadata values must be bool"),
            };
            match key {
                "conj" if on && !t.dtype().is_complex() => {
                    return raise("only complex tensors can be conjugate views");
                }
                "conj" => t.conj = on,
                "neg" => t.neg = on,
                _ => {}
            }
        }
        Ok(())
    }

    /// `_rebuild_qtensor(storage, offset, size, stride, quantizer_params, requires_grad, hooks)`.
    fn qtensor(&mut self, tree: &mut Tree<'_>, args: &[ValueId], offset: u64) -> Result<TensorSpec, Failure> {
        let arg = |i: usize| args.get(i).copied();
        let mut t = self.dense(tree, args, None, offset)?;
        if !t.dtype().is_quantized() {
            return raise(format!(
                "_empty_affine_quantized: {} is not a quantized dtype",
                t.dtype()
            ));
        }
        let Some(params) = arg(4).and_then(|p| tree.seq(p)).map(<[ValueId]>::to_vec) else {
            return raise("quantizer_params is not a tuple");
        };
        let scheme = match params.first().and_then(|&s| tree.global(s)) {
            Some(("torch", name)) => name.to_owned(),
            _ => return raise("the qscheme is not a torch qscheme"),
        };
        let number = |id: Option<ValueId>| match id.map(|a| tree.node(a)) {
            Some(Node::Float(f)) => Some(*f),
            Some(Node::Int(v)) => Some(*v as f64),
            _ => None,
        };
        t.quantization = Some(Box::new(match (scheme.as_str(), params.len()) {
            ("per_tensor_affine", 3) => {
                let scale = number(params.get(1).copied());
                let zero_point = params.get(2).and_then(|&z| match tree.node(z) {
                    Node::Int(v) => Some(*v),
                    _ => None,
                });
                let (Some(scale), Some(zero_point)) = (scale, zero_point) else {
                    return raise("per-tensor quantizer without a float scale and an int zero point");
                };
                QuantSpec::PerTensor {
                    scheme,
                    scale,
                    zero_point,
                }
            }
            ("per_channel_affine" | "per_channel_affine_float_qparams", 4) => {
                self.per_channel(tree, &t, scheme, &params)?
            }
            _ => return raise(format!("Can't deserialize quantized tensor with qscheme {scheme}")),
        }));
        t.requires_grad = Self::requires_grad(tree, arg(5), t.dtype())?;
        Ok(t)
    }

    /// Per-channel parameters: `axis` in range, as many scales and zero points as
    /// `size[axis]`, lists turned into tensors.
    fn per_channel(
        &mut self,
        tree: &mut Tree<'_>,
        t: &TensorSpec,
        scheme: String,
        params: &[ValueId],
    ) -> Result<QuantSpec, Failure> {
        let axis = match params.get(3).map(|&a| tree.node(a)) {
            Some(Node::Int(v)) => *v,
            _ => return raise("per-channel quantizer axis is not an int"),
        };
        let shape = &t.layout.shape;
        let expected = usize::try_from(axis)
            .ok()
            .and_then(|a| shape.get(a).copied())
            .ok_or_else(|| Failure::Python(format!("_rebuild_qtensor: per_channel axis {axis} out of range")))?;
        let affine = scheme == "per_channel_affine";
        let (scale_dtype, zero_dtype) = if affine {
            (DType::Float64, DType::Int64)
        } else {
            (DType::Float32, DType::Float32)
        };
        let (Some(&scales), Some(&zero_points)) = (params.get(1), params.get(2)) else {
            return raise("per-channel quantizer without scales and zero points");
        };
        let both_lists = [scales, zero_points]
            .iter()
            .all(|&p| matches!(tree.node(p), Node::List(_)));
        let part =
            |handler: &mut Self, tree: &mut Tree<'_>, id: ValueId, dtype: DType| -> Result<TensorSpec, Failure> {
                match tree.node(id) {
                    Node::List(_) if both_lists => handler.data_tensor(tree, dtype, id),
                    Node::Tensor(_) => handler.tensor_arg(tree, Some(id), "scales"),
                    _ => raise("per-channel scales and zero points must be tensors or lists"),
                }
            };
        let scales = part(self, tree, scales, scale_dtype)?;
        let zero_points = part(self, tree, zero_points, zero_dtype)?;
        if scales.layout.numel != expected || zero_points.layout.numel != expected {
            return raise(format!(
                "_rebuild_qtensor: per_channel scales/zero_points length must equal size[axis]={expected}"
            ));
        }
        Ok(QuantSpec::PerChannel {
            scheme,
            scales: Box::new(scales),
            zero_points: Box::new(zero_points),
            axis,
        })
    }

    /// `torch.empty_strided(size, stride, dtype=dtype, device="meta", requires_grad=...)`.
    fn meta(
        &self,
        tree: &Tree<'_>,
        dtype: Option<ValueId>,
        size: Option<ValueId>,
        stride: Option<ValueId>,
        requires_grad: Option<ValueId>,
        offset: u64,
    ) -> Result<TensorSpec, Failure> {
        let dtype = self.dtype_arg(tree, dtype)?;
        let shape = self.dims(tree, size, "size")?;
        let stride = self.dims(tree, stride, "stride")?;
        let layout = spec::layout(dtype, &shape, &stride, 0, None, self.limits).map_err(|r| self.invalid(offset, r))?;
        let mut t = TensorSpec::new(layout, Data::Meta);
        t.requires_grad = Self::requires_grad(tree, requires_grad, dtype)?;
        Ok(t)
    }

    /// `_rebuild_wrapper_subclass(cls, dtype, size, stride, storage_offset, layout, device,
    /// requires_grad)`: a tensor with metadata and no data.
    fn wrapper_subclass(&self, tree: &Tree<'_>, args: &[ValueId], offset: u64) -> Result<TensorSpec, Failure> {
        let arg = |i: usize| args.get(i).copied();
        let class = match arg(0).and_then(|c| tree.global(c)) {
            Some(class) => class,
            None => return raise("_make_wrapper_subclass: cls is not a class"),
        };
        // Only a class defining `__torch_dispatch__` may be made this way: none of the
        // allowlisted ones does (a lenient file may name one that does).
        if globals::lookup(class.0, class.1).is_some() {
            return raise(format!("{}.{} must define __torch_dispatch__", class.0, class.1));
        }
        let dtype = self.dtype_arg(tree, arg(1))?;
        let shape = self.dims(tree, arg(2), "size")?;
        let stride = self.dims(tree, arg(3), "stride")?;
        let start = match arg(4).map(|a| tree.node(a)) {
            Some(Node::Int(v)) => *v,
            None | Some(Node::None) => 0,
            _ => return raise("storage_offset must be an int"),
        };
        let layout =
            spec::layout(dtype, &shape, &stride, start, None, self.limits).map_err(|r| self.invalid(offset, r))?;
        let mut t = TensorSpec::new(layout, Data::Meta);
        t.requires_grad = Self::requires_grad(tree, arg(7), dtype)?;
        if !matches!(class, ("torch", "Tensor") | ("torch._tensor", "Tensor")) {
            t.subclass = Some(Arc::from(format!("{}.{}", class.0, class.1)));
        }
        Ok(t)
    }

    /// `data.to(dtype=dtype, device=device)` then `requires_grad`: the same tensor object when
    /// nothing changes; conversions are not reproduced.
    fn device_tensor_from_cpu(
        &mut self,
        tree: &mut Tree<'_>,
        args: &[ValueId],
        offset: u64,
    ) -> Result<ValueId, Failure> {
        let arg = |i: usize| args.get(i).copied();
        let data = arg(0).filter(|&a| Self::tensor_index(tree, a).is_some());
        let (Some(data), Some(index)) = (data, data.and_then(|a| Self::tensor_index(tree, a))) else {
            return raise("'data' must be a Tensor");
        };
        let dtype = self.dtype_arg(tree, arg(1))?;
        if !self.is_cpu_device(tree, arg(2)) {
            return Err(self.unsupported("a tensor moved to a device other than the CPU"));
        }
        let requires_grad = Self::requires_grad(tree, arg(3), dtype)?;
        let source = self.tensor_arg(tree, Some(data), "data")?;
        if source.dtype() == dtype {
            // `to` returns the tensor itself when nothing changes.
            if let Some(t) = self.work.tensor_mut(index) {
                t.requires_grad = requires_grad;
            }
            return Ok(data);
        }
        if !super::convert::convertible(source.dtype(), dtype) || source.quantization.is_some() {
            return Err(self.unsupported(format!("converting a {} tensor to {dtype}", source.dtype())));
        }
        // The copy `to` makes of a tensor that requires grad carries its gradient when it can
        // (a floating or complex copy) and is then no leaf: torch refuses to set its
        // `requires_grad`, to True as to False. An integer or bool copy is a new leaf.
        if source.requires_grad && super::handler::can_require_grad(dtype) {
            return raise("you can only change requires_grad flags of leaf variables.");
        }
        let layout = super::convert::preserved_layout(&source.layout, dtype, self.limits)
            .map_err(|r| self.invalid(offset, r))?;
        let mut t = TensorSpec::new(layout, Data::Converted(Box::new(source)));
        t.requires_grad = requires_grad;
        self.tensor_node(tree, t)
    }

    /// `func(*args)`, then a subclass cast to `new_type`, then `_set_obj_state(ret, state)`.
    fn rebuild_from_type_v2(&mut self, tree: &mut Tree<'_>, args: &[ValueId], offset: u64) -> Result<ValueId, Failure> {
        let arg = |i: usize| args.get(i).copied();
        let Some((module, name)) = arg(0).and_then(|f| tree.global(f)) else {
            return raise("_rebuild_from_type_v2: func is not callable");
        };
        let func = match globals::lookup(module, name) {
            Some((g, allowed)) if allowed || self.lenient => g,
            _ => return raise(format!("_rebuild_from_type_v2: {module}.{name} cannot be called")),
        };
        let inner = match arg(2).and_then(|a| tree.seq(a)) {
            Some(items) => items.to_vec(),
            None => return raise("_rebuild_from_type_v2: args is not a tuple"),
        };
        // `func` may be `_rebuild_from_type_v2` again, over a list that holds itself.
        if self.nesting >= super::handler::MAX_NESTING {
            return raise("maximum recursion depth exceeded in nested rebuild calls");
        }
        self.nesting += 1;
        let result = self.evaluate(tree, func, &inner, Construction::Reduce, offset);
        self.nesting -= 1;
        let result = result?;
        let result = self.as_subclass(tree, result, arg(1))?;
        if let Some(state) = arg(3) {
            self.set_obj_state(tree, result, state)?;
        }
        Ok(result)
    }

    /// `ret.as_subclass(new_type)` when `type(ret) is not new_type`.
    fn as_subclass(
        &mut self,
        tree: &mut Tree<'_>,
        result: ValueId,
        new_type: Option<ValueId>,
    ) -> Result<ValueId, Failure> {
        let Some((module, name)) = new_type.and_then(|t| tree.global(t)) else {
            return raise("_rebuild_from_type_v2: new_type is not a class");
        };
        let target = match globals::lookup(module, name) {
            Some((Global::Tensor, _)) => Some(false),
            Some((Global::Parameter, _)) => Some(true),
            _ => None,
        };
        let class = format!("{module}.{name}");
        let Some(index) = Self::tensor_index(tree, result) else {
            // Not a tensor: only `type(ret) is new_type` goes on (no `as_subclass` to call).
            let same = match (tree.node(result), globals::lookup(module, name)) {
                (Node::Dict(d), Some((Global::Builtin(b), _))) => {
                    matches!(
                        (d.class, b),
                        (DictClass::OrderedDict, crate::pickle::builtins::Builtin::OrderedDict)
                            | (DictClass::Counter, crate::pickle::builtins::Builtin::Counter)
                    )
                }
                _ => false,
            };
            if !same {
                return raise(format!(
                    "'{}' object has no attribute 'as_subclass'",
                    tree.type_name(result)
                ));
            }
            return Ok(result);
        };
        let Some(t) = self.work.tensor(index) else {
            return raise("dangling tensor");
        };
        let is_type = match target {
            Some(param) => t.is_parameter == param && t.subclass.is_none(),
            None => t.subclass.as_deref() == Some(class.as_str()),
        };
        if is_type {
            return Ok(result);
        }
        let mut cast = t.clone();
        match target {
            Some(param) => {
                cast.is_parameter = param;
                cast.subclass = None;
            }
            None if self.lenient => cast.subclass = Some(Arc::from(class)),
            None => return raise(format!("as_subclass: {class} is not a Tensor subclass")),
        }
        self.tensor_node(tree, cast)
    }

    /// `_rebuild_sparse_tensor(layout, data)`: a dict of the parts (`indices`/`values`/`size`/
    /// `is_coalesced` for COO; compressed indices, plain indices, values and size otherwise)
    /// whose class is the layout.
    fn sparse(
        &mut self,
        tree: &mut Tree<'_>,
        layout: Option<ValueId>,
        data: Option<ValueId>,
    ) -> Result<ValueId, Failure> {
        let layout = match layout.and_then(|l| tree.global(l)) {
            Some(("torch", name)) => SPARSE_LAYOUTS.iter().copied().find(|&l| l == name),
            _ => None,
        };
        let Some(layout) = layout else {
            return raise("rebuilding sparse tensor for an unknown layout");
        };
        let parts: &[&str] = match layout {
            "sparse_coo" => &["indices", "values", "size", "is_coalesced"],
            "sparse_csr" | "sparse_bsr" => &["crow_indices", "col_indices", "values", "size"],
            _ => &["ccol_indices", "row_indices", "values", "size"],
        };
        let Some(items) = data.and_then(|d| tree.seq(d)).map(<[ValueId]>::to_vec) else {
            return raise("sparse tensor data is not a tuple");
        };
        let arity_ok = match layout {
            "sparse_coo" => items.len() == 3 || items.len() == 4,
            _ => items.len() == 4,
        };
        if !arity_ok {
            return raise(format!("not enough values to unpack for {layout}"));
        }
        self.check_sparse_parts(tree, layout, &items)?;
        let mut pairs = Vec::with_capacity(items.len());
        for (&name, &item) in parts.iter().zip(items.iter()) {
            let key = tree.push_owned_str(name)?;
            pairs.push((key, item));
        }
        let node = crate::pickle::machine::new_dict(tree, DictClass::Sparse(layout), &pairs)?;
        self.work.sparse.push(super::sparse::Pending { node, layout });
        Ok(node)
    }

    /// Whether a device argument is the CPU (`"cpu"` or `torch.device("cpu")`).
    pub(super) fn is_cpu_device(&self, tree: &Tree<'_>, id: Option<ValueId>) -> bool {
        let Some(id) = id else { return false };
        if tree.text(id) == Some("cpu") {
            return true;
        }
        match tree.node(id) {
            Node::Object(o) if tree.global(o.callable) == Some(("torch", "device")) => tree
                .seq(o.args)
                .is_some_and(|a| matches!(a, [only] if tree.text(*only) == Some("cpu"))),
            _ => false,
        }
    }
}

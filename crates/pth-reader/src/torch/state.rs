//! `BUILD` and attribute setting, as torch's `weights_only` unpickler applies them.
//!
//! - on a `torch.Tensor`: `inst.set_(*state)` (legacy tensors rebind their view);
//! - on a `Parameter` (and, in lenient files, a tensor subclass): `Tensor.__setstate__(state)`
//!   — four items `set_` the view, five replace `data` and set `requires_grad`, three set
//!   `requires_grad` and the hooks;
//! - on an `OrderedDict`: `inst.__dict__.update(state)`;
//! - on the other allowlisted types: `__dict__.update`/`setattr` of a `(state, slots)` pair,
//!   which only `Counter` (a Python class) can take, and which is a no-op when both are empty;
//! - anything else is refused.
//!
//! `_set_obj_state` (the state of `_rebuild_parameter_with_state` and
//! `_rebuild_from_type_v2`) is `setattr` of each item: `data` replaces the tensor's view,
//! `requires_grad` sets the flag, plain names become Python attributes (`__dict__`).

use super::handler::TorchHandler;
use super::spec::TensorSpec;
use crate::pickle::call::{raise, Failure, Outcome};
use crate::pickle::machine::{dict_insert, new_dict};
use crate::pickle::tree::{DictClass, Node, Tree, ValueId};
use crate::pickle::{builtins, keys};

/// Tensor attributes that are not entries of `__dict__` and whose setting this reader does
/// not reproduce (descriptors of `torch.Tensor` and `Parameter`).
const TENSOR_DESCRIPTORS: [&str; 47] = [
    "H",
    "T",
    "__class__",
    "__cuda_array_interface__",
    "__dict__",
    "__weakref__",
    "_base",
    "_cdata",
    "_grad",
    "_grad_fn",
    "_has_grad_dtype_override",
    "_has_symbolic_sizes_strides",
    "_python_dispatch",
    "_version",
    "device",
    "dtype",
    "grad_dtype",
    "grad_fn",
    "imag",
    "is_cpu",
    "is_cuda",
    "is_ipu",
    "is_leaf",
    "is_maia",
    "is_meta",
    "is_mkldnn",
    "is_mps",
    "is_mtia",
    "is_nested",
    "is_quantized",
    "is_sparse",
    "is_sparse_csr",
    "is_vulkan",
    "is_xla",
    "is_xpu",
    "itemsize",
    "layout",
    "mH",
    "mT",
    "name",
    "names",
    "nbytes",
    "ndim",
    "output_nr",
    "real",
    "retains_grad",
    "shape",
];

impl TorchHandler<'_> {
    /// `BUILD`: applies `state` to `target`.
    pub(super) fn set_state(
        &mut self,
        tree: &mut Tree<'_>,
        target: ValueId,
        state: ValueId,
        offset: u64,
    ) -> Result<Outcome, Failure> {
        match tree.node(target) {
            Node::Tensor(index) => {
                let index = *index;
                let Some(t) = self.work.tensor(index) else {
                    return raise("dangling tensor");
                };
                if t.is_parameter || t.subclass.is_some() {
                    self.tensor_setstate(tree, index, state, offset)?;
                } else {
                    let args = builtins::iterate(tree, state)
                        .map_err(|_| Failure::Python("Tensor.set_() argument after * must be an iterable".into()))?;
                    self.set_(tree, index, &args, offset)?;
                }
            }
            Node::Dict(d) if d.class == DictClass::OrderedDict => {
                let pairs = match tree.node(state) {
                    Node::Dict(s) => s.items.clone(),
                    _ => pairs_of(tree, state)?,
                };
                self.update_attributes(tree, target, &pairs)?;
            }
            Node::Dict(d) if d.class == DictClass::Counter => self.load_build(tree, target, state, true)?,
            Node::Set(_) | Node::ByteArray(_) | Node::Complex(..) => self.load_build(tree, target, state, false)?,
            Node::Storage(_) => storage_build(tree, state)?,
            Node::Object(o) if tree.global(o.callable) == Some(("torch", "device")) => {
                self.load_build(tree, target, state, false)?
            }
            Node::Object(_) => return Ok(Outcome::Inert),
            _ => {
                return raise(format!(
                "Can only build Tensor, Parameter, OrderedDict or types allowlisted via `add_safe_globals`, but got {}",
                tree.type_name(target)
            ))
            }
        }
        Ok(Outcome::Value(target))
    }

    /// pickle's `load_build` for an allowlisted type without `__setstate__`: `(state, slots)`
    /// split, `__dict__.update(state)` if truthy, `setattr` of each slot if truthy. Only
    /// `Counter` has a `__dict__`.
    fn load_build(
        &mut self,
        tree: &mut Tree<'_>,
        target: ValueId,
        state: ValueId,
        has_dict: bool,
    ) -> Result<(), Failure> {
        let (state, slots) = match tree.node(state) {
            Node::Tuple(parts) => match *tree.items(*parts) {
                [state, slots] => (state, Some(slots)),
                _ => (state, None),
            },
            _ => (state, None),
        };
        for (part, is_slots) in [(Some(state), false), (slots, true)] {
            let Some(part) = part else { continue };
            match Self::truthy(tree, part) {
                Some(false) => continue,
                None => return raise("the state's truth value is not known"),
                Some(true) if !has_dict => {
                    return raise(format!(
                        "'{}' object has no attribute '__dict__'",
                        tree.type_name(target)
                    ))
                }
                Some(true) => {}
            }
            let pairs = match tree.node(part) {
                Node::Dict(d) => d.items.clone(),
                _ if is_slots => return raise("slot state must be a dict"),
                _ => pairs_of(tree, part)?,
            };
            if is_slots {
                for &(k, _) in &pairs {
                    plain_attribute_name(tree, k)?;
                }
            }
            self.update_attributes(tree, target, &pairs)?;
        }
        Ok(())
    }

    /// Adds `pairs` to the `__dict__` of a dict-class object (`OrderedDict`, `Counter`).
    fn update_attributes(
        &mut self,
        tree: &mut Tree<'_>,
        target: ValueId,
        pairs: &[(ValueId, ValueId)],
    ) -> Result<(), Failure> {
        let attributes = match tree.node(target) {
            Node::Dict(d) => d.attributes,
            _ => return raise("no __dict__"),
        };
        let attributes = match attributes {
            Some(a) => a,
            None => {
                let a = new_dict(tree, DictClass::Dict, &[])?;
                if let Some(Node::Dict(d)) = tree.node_mut(target) {
                    d.attributes = Some(a);
                }
                a
            }
        };
        insert_all(tree, attributes, pairs)
    }

    /// `Tensor.__setstate__(state)` (Parameters and tensor subclasses).
    fn tensor_setstate(&mut self, tree: &mut Tree<'_>, index: u32, state: ValueId, offset: u64) -> Result<(), Failure> {
        let items = match tree.node(state) {
            Node::Tuple(v) => tree.items(*v).to_vec(),
            Node::List(v) => v.clone(),
            _ => return raise("Tensor.__setstate__: the state is not a sequence"),
        };
        let dtype = self.work.tensor(index).map(TensorSpec::dtype);
        let (requires_grad, data) = match items.as_slice() {
            [_, _, _, _] => return self.set_(tree, index, &items, offset),
            &[data, _, _, requires_grad, _] => (requires_grad, Some(data)),
            &[requires_grad, _, _] => (requires_grad, None),
            _ => return raise(format!("not enough values to unpack (expected 3, got {})", items.len())),
        };
        if let Some(data) = data {
            self.set_data(tree, index, data)?;
        }
        let dtype = self.work.tensor(index).map(TensorSpec::dtype).or(dtype);
        let flag = Self::requires_grad(tree, Some(requires_grad), dtype.unwrap_or(crate::DType::Float32))?;
        if let Some(t) = self.work.tensor_mut(index) {
            t.requires_grad = flag;
        }
        Ok(())
    }

    /// `tensor.set_(*args)`: rebinds the tensor's view in place.
    fn set_(&mut self, tree: &mut Tree<'_>, index: u32, args: &[ValueId], offset: u64) -> Result<(), Failure> {
        let Some(current) = self.work.tensor(index) else {
            return raise("dangling tensor");
        };
        if current.requires_grad {
            return raise("a leaf Variable that requires grad is being used in an in-place operation.");
        }
        let dtype = current.dtype();
        let storage_of = |id: ValueId| match tree.node(id) {
            Node::Storage(i) => Some(*i),
            _ => None,
        };
        let rebound = match args {
            [] => self.empty(dtype, offset)?,
            [one] => match (storage_of(*one), Self::tensor_index(tree, *one)) {
                (Some(s), _) => self.whole_storage(tree, s, dtype, offset)?,
                (None, Some(_)) => {
                    let source = self.tensor_arg(tree, Some(*one), "source")?;
                    if source.dtype() != dtype {
                        return raise(format!("set_(): expected a {dtype} source, got {}", source.dtype()));
                    }
                    source
                }
                _ => {
                    return raise(format!(
                        "set_() received an invalid argument ({})",
                        tree.type_name(*one)
                    ))
                }
            },
            [storage, storage_offset, size, rest @ ..] if rest.len() <= 1 => {
                let Some(s) = storage_of(*storage) else {
                    return raise("set_(): source must be a Storage");
                };
                let spec = self
                    .work
                    .storage(s)
                    .ok_or_else(|| Failure::Python("dangling storage".into()))?;
                if spec.dtype != dtype {
                    return raise(format!(
                        "Expected a Storage of type {dtype} or an UntypedStorage, but got type {}",
                        spec.dtype
                    ));
                }
                let made = self.view_of_storage(
                    tree,
                    s,
                    dtype,
                    Some(*storage_offset),
                    Some(*size),
                    rest.first().copied(),
                    offset,
                );
                match made {
                    Ok(t) => t,
                    Err(Failure::Error(error)) => {
                        self.work.invalid.push((index, error));
                        return Ok(());
                    }
                    Err(other) => return Err(other),
                }
            }
            _ => return raise("set_() received an invalid combination of arguments"),
        };
        let Some(t) = self.work.tensor_mut(index) else {
            return raise("dangling tensor");
        };
        t.layout = rebound.layout;
        t.data = rebound.data;
        t.conj = rebound.conj;
        t.neg = rebound.neg;
        Ok(())
    }

    /// `tensor.data = other`: the tensor takes `other`'s storage, layout and dtype.
    fn set_data(&mut self, tree: &Tree<'_>, index: u32, other: ValueId) -> Result<(), Failure> {
        let source = self.tensor_arg(tree, Some(other), "data")?;
        let Some(t) = self.work.tensor_mut(index) else {
            return raise("dangling tensor");
        };
        if t.requires_grad && !(source.dtype().is_floating_point() || source.dtype().is_complex()) {
            return raise("data set to a tensor that cannot require gradients");
        }
        t.layout = source.layout;
        t.data = source.data;
        t.conj = source.conj;
        t.neg = source.neg;
        t.quantization = source.quantization;
        Ok(())
    }

    /// `torch._utils._set_obj_state(obj, state)`.
    pub(super) fn set_obj_state(&mut self, tree: &mut Tree<'_>, obj: ValueId, state: ValueId) -> Result<(), Failure> {
        let (dict_state, slots) = match tree.node(state) {
            Node::Tuple(parts) => match *tree.items(*parts) {
                [state, slots] => (state, Some(slots)),
                _ => return raise("Invalid serialized state"),
            },
            _ => (state, None),
        };
        for part in std::iter::once(dict_state).chain(slots) {
            match Self::truthy(tree, part) {
                Some(false) => continue,
                None => return raise("the state's truth value is not known"),
                Some(true) => {}
            }
            let Node::Dict(d) = tree.node(part) else {
                return raise(format!("'{}' object has no attribute 'items'", tree.type_name(part)));
            };
            for (key, value) in d.items.clone() {
                self.setattr(tree, obj, key, value)?;
            }
        }
        Ok(())
    }

    /// `setattr(obj, key, value)` on a tensor or a dict-class object.
    fn setattr(&mut self, tree: &mut Tree<'_>, obj: ValueId, key: ValueId, value: ValueId) -> Result<(), Failure> {
        let name = plain_attribute_name(tree, key)?.to_owned();
        let Some(index) = Self::tensor_index(tree, obj) else {
            return match tree.node(obj) {
                Node::Dict(d) if matches!(d.class, DictClass::OrderedDict | DictClass::Counter) => {
                    self.update_attributes(tree, obj, &[(key, value)])
                }
                _ => raise(format!("'{}' object has no attribute '{name}'", tree.type_name(obj))),
            };
        };
        match name.as_str() {
            "data" => self.set_data(tree, index, value),
            "requires_grad" => {
                let dtype = self
                    .work
                    .tensor(index)
                    .map(TensorSpec::dtype)
                    .unwrap_or(crate::DType::Float32);
                let flag = Self::requires_grad(tree, Some(value), dtype)?;
                if let Some(t) = self.work.tensor_mut(index) {
                    t.requires_grad = flag;
                }
                Ok(())
            }
            // Hooks are not serialized state; `volatile` has no effect.
            "_backward_hooks" | "_post_accumulate_grad_hooks" | "volatile" => Ok(()),
            "grad" if matches!(tree.node(value), Node::None) => Ok(()),
            "grad" => raise("setting a tensor's grad from a pickle is not supported"),
            _ if TENSOR_DESCRIPTORS.contains(&name.as_str()) => {
                raise(format!("attribute '{name}' of tensors cannot be set from a pickle"))
            }
            _ => {
                let attributes = match self.work.attributes.get(&index) {
                    Some(&a) => a,
                    None => {
                        let a = new_dict(tree, DictClass::Dict, &[])?;
                        self.work.attributes.insert(index, a);
                        a
                    }
                };
                insert_all(tree, attributes, &[(key, value)])
            }
        }
    }
}

/// `BUILD` on a `TypedStorage`: pickle's `load_build` updates its `__dict__`, where the
/// storage keeps its `dtype` and its bytes (`_untyped_storage`). Other attributes change
/// nothing this reader shows and are accepted; those two would change what later tensors
/// read, and slot states go through properties: refused.
fn storage_build(tree: &Tree<'_>, state: ValueId) -> Result<(), Failure> {
    if TorchHandler::truthy(tree, state) == Some(false) {
        return Ok(());
    }
    let Node::Dict(d) = tree.node(state) else {
        return raise("BUILD on a storage with a state other than a dict is not supported");
    };
    if d.items
        .iter()
        .any(|&(k, _)| matches!(tree.text(k), Some("dtype" | "_untyped_storage")))
    {
        return raise("BUILD that replaces a storage's dtype or bytes is not supported");
    }
    Ok(())
}

/// An attribute name: a `str` other than `__class__`/`__dict__` (whose setting would change
/// what the object is).
fn plain_attribute_name<'t>(tree: &'t Tree<'_>, key: ValueId) -> Result<&'t str, Failure> {
    match tree.text(key) {
        Some("__class__" | "__dict__") => raise("setting __class__ or __dict__ from a pickle is not supported"),
        Some(name) => Ok(name),
        None => raise(format!("attribute name must be string, not '{}'", tree.type_name(key))),
    }
}

/// The `(key, value)` pairs of an iterable of 2-item sequences (`dict.update(iterable)`).
fn pairs_of(tree: &mut Tree<'_>, id: ValueId) -> Result<Vec<(ValueId, ValueId)>, Failure> {
    let elements = builtins::iterate(tree, id)?;
    elements
        .into_iter()
        .enumerate()
        .map(|(i, e)| match tree.seq(e) {
            Some(&[k, v]) => Ok((k, v)),
            _ => raise(format!(
                "cannot convert dictionary update sequence element #{i} to a sequence"
            )),
        })
        .collect()
}

/// `dict[k] = v` for each pair.
fn insert_all(tree: &mut Tree<'_>, dict: ValueId, pairs: &[(ValueId, ValueId)]) -> Result<(), Failure> {
    for &(k, v) in pairs {
        tree.charge(1)?;
        let key = keys::key_of(tree, k).map_err(|u| Failure::Python(format!("unhashable type: '{}'", u.0)))?;
        if let Some(Node::Dict(d)) = tree.node_mut(dict) {
            dict_insert(d, key, k, v);
        }
    }
    Ok(())
}

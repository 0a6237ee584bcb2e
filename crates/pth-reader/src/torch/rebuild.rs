//! The torch layer proper: turns persistent ids into storages and `torch._utils._rebuild_*`
//! calls into tensors, replacing those nodes of the tree in place.
//!
//! Calls are interpreted, never made: each rebuild function torch may name is matched by name
//! and its arguments are read as data. Arguments are always created before the call that uses
//! them, so one pass in creation order sees every tensor argument (a `Parameter`'s data) already
//! rebuilt.

use std::collections::HashMap;
use std::sync::Arc;

use super::storage::{Storage, StorageRef};
use crate::pickle::tree::{DictNode, GlobalNode, Node, ObjectNode, Tree, ValueId};
use crate::tensor::{ByteOrder, Layout, Quantization, TensorView};
use crate::value::Tables;
use crate::{DType, Error, Limits, Result, SharedBytes};

/// What makes two persistent ids the same storage: key, type, and legacy view.
type StorageIdentity = (String, Option<DType>, Option<(String, u64, u64)>);

/// Everything the pass needs from the container.
pub(crate) struct Context<'a> {
    /// The record holding the pickle, for error messages.
    pub(crate) record: &'a str,
    pub(crate) byte_order: ByteOrder,
    pub(crate) limits: &'a Limits,
}

/// Resolves storages and tensors in `tree`. `root_bytes` returns the bytes of a root storage,
/// already checked against the reference's size by the container.
pub(crate) fn resolve<'data>(
    tree: &mut Tree,
    refs: Vec<(ValueId, StorageRef)>,
    mut root_bytes: impl FnMut(&StorageRef) -> Result<SharedBytes<'data>>,
    context: &Context<'_>,
) -> Result<Tables<'data>> {
    let mut tables = Tables::default();
    let mut seen: HashMap<StorageIdentity, u32> = HashMap::new();
    for (node, r) in refs {
        let identity = (r.key.clone(), r.dtype, r.view.clone());
        let index = match seen.get(&identity) {
            Some(&i) => i,
            None => {
                let bytes = storage_bytes(&r, root_bytes(&r)?)?;
                let i = tables.storages.len() as u32;
                tables.storages.push(Storage {
                    key: Arc::from(r.view.as_ref().map_or(r.key.as_str(), |v| v.0.as_str())),
                    dtype: r.dtype,
                    location: Arc::from(r.location.as_str()),
                    bytes,
                });
                seen.insert(identity, i);
                i
            }
        };
        tree.replace(node, Node::Storage(index));
    }
    let mut pass = Pass { tree, tables, context };
    for index in 0..pass.tree.nodes.len() {
        pass.rebuild_node(ValueId(index as u32))?;
    }
    Ok(pass.tables)
}

/// The bytes a reference sees: the root storage, or the view of it that legacy files describe.
fn storage_bytes<'data>(r: &StorageRef, root: SharedBytes<'data>) -> Result<SharedBytes<'data>> {
    let Some((_, offset, size)) = &r.view else {
        return Ok(root);
    };
    let unit = r.dtype.map_or(1, DType::size) as u64;
    let (Some(start), Some(len)) = (offset.checked_mul(unit), size.checked_mul(unit)) else {
        return Err(r.invalid("view offset or size overflows"));
    };
    root.slice_u64(start, len).ok_or_else(|| {
        r.invalid(format!(
            "view of {len} bytes at {start} exceeds the {} bytes of its storage",
            root.len()
        ))
    })
}

struct Pass<'t, 'c, 'data> {
    tree: &'t mut Tree,
    tables: Tables<'data>,
    context: &'c Context<'c>,
}

impl<'data> Pass<'_, '_, 'data> {
    fn rebuild_node(&mut self, id: ValueId) -> Result<()> {
        let Node::Object(obj) = self.tree.node(id) else {
            return Ok(());
        };
        let Some((module, name)) = self.tree.global(obj.callable) else {
            return Ok(());
        };
        let is_torch = matches!(
            module,
            "torch" | "torch.nn.parameter" | "torch._utils" | "torch._tensor"
        );
        if !is_torch {
            return Ok(());
        }
        let (obj, module, name) = ((**obj).clone(), module.to_owned(), name.to_owned());
        let args = self.tree.seq(obj.args).unwrap_or(&[]).to_vec();
        let replacement = match (module.as_str(), name.as_str()) {
            ("torch", "Size") => {
                // torch.Size((2, 3)) is a tuple.
                let dims = args.first().and_then(|&a| self.tree.seq(a)).map(<[ValueId]>::to_vec);
                dims.map(|d| Node::Tuple(d.into()))
            }
            ("torch.nn.parameter", "Parameter") => {
                let requires_grad = args.get(1).and_then(|&a| self.tree.as_int(a)).is_none_or(|v| v != 0);
                self.parameter(&obj, args.first().copied(), requires_grad)?
            }
            ("torch._utils", _) | ("torch._tensor", "_rebuild_from_type_v2") => {
                match self.call(&obj, &module, &name, &args) {
                    // Keep going so the error can name the tensor's path (see `Tables::invalid`).
                    Err(error @ Error::InvalidTensor { .. }) => Some(self.invalid_placeholder(error)),
                    other => other?,
                }
            }
            _ => None,
        };
        if let Some(node) = replacement {
            self.tree.replace(id, node);
        }
        Ok(())
    }

    /// Interprets a rebuild function applied to `args`; `None` for functions that are not
    /// tensors (sparse tensors stay objects whose parts are tensors).
    fn call(&mut self, obj: &ObjectNode, module: &str, name: &str, args: &[ValueId]) -> Result<Option<Node>> {
        let arg = |i: usize| args.get(i).copied();
        let tensor = match (module, name) {
            ("torch._utils", "_rebuild_tensor") => self.dense(obj, args, None, None)?,
            ("torch._utils", "_rebuild_tensor_v2") => self.dense(obj, args, None, arg(6))?,
            ("torch._utils", "_rebuild_tensor_v3") => {
                let dtype = self.dtype_arg(obj, arg(6))?;
                self.dense(obj, args, Some(dtype), arg(7))?
            }
            ("torch._utils", "_rebuild_qtensor") => {
                let quantization = self.quantization(obj, arg(4))?;
                let mut t = self.dense(obj, args, None, None)?;
                t.quantization = quantization.map(Box::new);
                t
            }
            ("torch._utils", "_rebuild_meta_tensor_no_storage") => {
                let dtype = self.dtype_arg(obj, arg(0))?;
                let shape = self.dims(obj, arg(1), "size")?;
                let stride = self.dims(obj, arg(2), "stride")?;
                let layout = Layout::validate(dtype, &shape, &stride, 0, None, self.context.limits)
                    .map_err(|r| self.invalid(obj, r))?;
                let mut t = TensorView::without_data(layout, self.context.byte_order);
                t.requires_grad = self.flag(arg(3));
                t
            }
            ("torch._utils", "_rebuild_wrapper_subclass") => {
                let dtype = self.dtype_arg(obj, arg(1))?;
                let shape = self.dims(obj, arg(2), "size")?;
                let stride = self.dims(obj, arg(3), "stride")?;
                let offset = arg(4).and_then(|a| self.tree.as_int(a)).unwrap_or(0);
                let layout = Layout::validate(dtype, &shape, &stride, offset, None, self.context.limits)
                    .map_err(|r| self.invalid(obj, r))?;
                let mut t = TensorView::without_data(layout, self.context.byte_order);
                t.requires_grad = self.flag(arg(7));
                t
            }
            ("torch._utils", "_rebuild_parameter") => {
                return self.parameter(obj, arg(0), self.flag(arg(1)));
            }
            ("torch._utils", "_rebuild_sparse_tensor") => return self.sparse(obj, arg(0), arg(1)).map(Some),
            ("torch._utils", "_rebuild_parameter_with_state") => {
                let node = self.parameter(obj, arg(0), self.flag(arg(1)))?;
                self.keep_attributes(node.as_ref(), arg(3));
                return Ok(node);
            }
            ("torch._utils", "_rebuild_device_tensor_from_cpu_tensor") => {
                let dtype = self.dtype_arg(obj, arg(1))?;
                let mut t = self.tensor_arg(obj, arg(0))?;
                if t.dtype != dtype {
                    return Err(Error::Unsupported {
                        what: format!(
                            "{}: a device tensor converted from {} to {dtype}",
                            self.at(obj),
                            t.dtype
                        ),
                    });
                }
                t.requires_grad = self.flag(arg(3));
                t
            }
            ("torch._tensor", "_rebuild_from_type_v2") => {
                // (func, new_type, args, state): func(*args), then a subclass cast.
                let Some((func_module, func_name)) = arg(0).and_then(|f| self.tree.global(f)) else {
                    return Err(self.invalid(obj, "_rebuild_from_type_v2 without a function"));
                };
                let (func_module, func_name) = (func_module.to_owned(), func_name.to_owned());
                let inner: Vec<ValueId> = arg(2).and_then(|a| self.tree.seq(a)).unwrap_or(&[]).to_vec();
                let class = arg(1)
                    .and_then(|c| self.tree.global(c))
                    .map(|(m, n)| format!("{m}.{n}"));
                let rebuilt =
                    if (func_module.as_str(), func_name.as_str()) == ("torch._tensor", "_rebuild_from_type_v2") {
                        None // no nesting of the wrapper itself: that would be a loop
                    } else {
                        self.call(obj, &func_module, &func_name, &inner)?
                    };
                let Some(Node::Tensor(index)) = rebuilt else {
                    return Ok(rebuilt);
                };
                self.keep_attributes(rebuilt.as_ref(), arg(3));
                if let Some(t) = self.tables.tensors.get_mut(index as usize) {
                    if class
                        .as_deref()
                        .is_some_and(|c| c != "torch._tensor.Tensor" && c != "torch.Tensor")
                    {
                        t.subclass = class.map(Arc::from);
                    }
                }
                return Ok(Some(Node::Tensor(index)));
            }
            _ => return Ok(None),
        };
        Ok(Some(self.add(tensor)))
    }

    /// `_rebuild_sparse_tensor(layout, data)`: a sparse tensor becomes a dict of its parts
    /// (`indices`/`values` for COO, `crow_indices`/`col_indices`/`values` for CSR and BSR,
    /// `ccol_indices`/`row_indices`/`values` for CSC and BSC, and `size`), whose class is the
    /// layout (`torch.sparse_coo`, ...). Its parts are then listed as `<path>.values`, ...
    fn sparse(&mut self, obj: &ObjectNode, layout: Option<ValueId>, data: Option<ValueId>) -> Result<Node> {
        // The layout is `torch.serialization._get_layout("torch.sparse_coo")`, or in old files
        // the global `torch.sparse_coo` itself.
        let layout_name = match layout.map(|l| self.tree.node(l)) {
            Some(Node::Object(call)) => self
                .tree
                .seq(call.args)
                .and_then(|a| a.first())
                .and_then(|&s| self.tree.as_str(s)),
            Some(Node::Global(g)) if &*g.module == "torch" => Some(&*g.name),
            _ => None,
        };
        let layout_name = layout_name.map(|n| n.strip_prefix("torch.").unwrap_or(n).to_owned());
        let parts: &[&str] = match layout_name.as_deref() {
            Some("sparse_coo") => &["indices", "values", "size", "is_coalesced"],
            Some("sparse_csr" | "sparse_bsr") => &["crow_indices", "col_indices", "values", "size"],
            Some("sparse_csc" | "sparse_bsc") => &["ccol_indices", "row_indices", "values", "size"],
            _ => return Err(self.invalid(obj, "sparse tensor with an unknown layout")),
        };
        let Some(items) = data.and_then(|d| self.tree.seq(d)).map(<[ValueId]>::to_vec) else {
            return Err(self.invalid(obj, "sparse tensor data is not a tuple"));
        };
        let class = Node::Global(Box::new(GlobalNode {
            module: "torch".into(),
            name: layout_name.unwrap_or_default().into(),
        }));
        let class = self
            .tree
            .push(class)
            .ok_or_else(|| self.invalid(obj, "too many values"))?;
        let mut dict = DictNode {
            class: Some(class),
            ..DictNode::default()
        };
        for (&name, &item) in parts.iter().zip(items.iter()) {
            let key = self
                .tree
                .push(Node::Str(name.into()))
                .ok_or_else(|| self.invalid(obj, "too many values"))?;
            dict.items.push((key, item));
        }
        Ok(Node::Dict(Box::new(dict)))
    }

    /// A stand-in for a tensor whose metadata is invalid, remembered with its error; opening
    /// fails once the tensor's path is known.
    fn invalid_placeholder(&mut self, error: Error) -> Node {
        let layout = Layout::validate(DType::UInt8, &[0], &[1], 0, None, self.context.limits);
        let index = self.tables.tensors.len() as u32;
        if let Ok(layout) = layout {
            self.tables
                .tensors
                .push(TensorView::without_data(layout, self.context.byte_order));
        }
        self.tables.invalid.push((index, error));
        Node::Tensor(index)
    }

    /// Records a tensor's Python attributes (a non-empty state) so they stay reachable.
    fn keep_attributes(&mut self, tensor: Option<&Node>, state: Option<ValueId>) {
        let (Some(Node::Tensor(index)), Some(state)) = (tensor, state) else {
            return;
        };
        let empty = match self.tree.node(state) {
            Node::None => true,
            Node::Dict(d) => d.items.is_empty(),
            _ => false,
        };
        if !empty {
            self.tables.attributes.insert(*index, state);
        }
    }

    fn add(&mut self, tensor: TensorView<'data>) -> Node {
        let index = self.tables.tensors.len() as u32;
        self.tables.tensors.push(tensor);
        Node::Tensor(index)
    }

    /// `(storage, storage_offset, size, stride[, requires_grad, hooks, ...])` over a storage.
    fn dense(
        &self,
        obj: &ObjectNode,
        args: &[ValueId],
        dtype: Option<DType>,
        metadata: Option<ValueId>,
    ) -> Result<TensorView<'data>> {
        let storage = match args.first().map(|&a| self.tree.node(a)) {
            Some(Node::Storage(i)) => self.tables.storages.get(*i as usize),
            _ => None,
        };
        let Some(storage) = storage else {
            return Err(self.invalid(obj, "the first argument is not a storage"));
        };
        let dtype = match (dtype, storage.dtype) {
            (Some(d), _) | (None, Some(d)) => d,
            (None, None) => return Err(self.invalid(obj, "an untyped storage without a dtype argument")),
        };
        let offset = args.get(1).and_then(|&a| self.tree.as_int(a));
        let Some(offset) = offset else {
            return Err(self.invalid(obj, "storage_offset is not an integer"));
        };
        let shape = self.dims(obj, args.get(2).copied(), "size")?;
        let stride = self.dims(obj, args.get(3).copied(), "stride")?;
        let layout = Layout::validate(
            dtype,
            &shape,
            &stride,
            offset,
            Some(storage.bytes.len()),
            self.context.limits,
        )
        .map_err(|r| self.invalid(obj, format!("{r} (storage {})", storage.key)))?;
        let mut t = TensorView::over(layout, storage, self.context.byte_order);
        t.requires_grad = self.flag(args.get(4).copied());
        if let Some(Node::Dict(meta)) = metadata.map(|m| self.tree.node(m)) {
            for &(k, v) in &meta.items {
                let on = self.tree.as_int(v).is_some_and(|v| v != 0);
                match self.tree.as_str(k) {
                    Some("conj") => t.conj = on,
                    Some("neg") => t.neg = on,
                    _ => {}
                }
            }
        }
        Ok(t)
    }

    fn parameter(&mut self, obj: &ObjectNode, data: Option<ValueId>, requires_grad: bool) -> Result<Option<Node>> {
        let mut t = self.tensor_arg(obj, data)?;
        t.is_parameter = true;
        t.requires_grad = requires_grad;
        Ok(Some(self.add(t)))
    }

    fn tensor_arg(&self, obj: &ObjectNode, id: Option<ValueId>) -> Result<TensorView<'data>> {
        match id.map(|a| self.tree.node(a)) {
            Some(Node::Tensor(i)) => self
                .tables
                .tensors
                .get(*i as usize)
                .cloned()
                .ok_or_else(|| self.invalid(obj, "dangling tensor")),
            _ => Err(self.invalid(obj, "the data argument is not a tensor")),
        }
    }

    fn dtype_arg(&self, obj: &ObjectNode, id: Option<ValueId>) -> Result<DType> {
        match id.and_then(|a| self.tree.global(a)) {
            Some(("torch", name)) => DType::from_name(name).ok_or_else(|| Error::Unsupported {
                what: format!("{}: dtype torch.{name}", self.at(obj)),
            }),
            _ => Err(self.invalid(obj, "the dtype argument is not a torch dtype")),
        }
    }

    /// A size or stride argument: a tuple/list of integers (or a `torch.Size`, already a tuple).
    fn dims(&self, obj: &ObjectNode, id: Option<ValueId>, what: &str) -> Result<Vec<i64>> {
        let items = id.and_then(|a| self.tree.seq(a));
        let Some(items) = items else {
            return Err(self.invalid(obj, format!("{what} is not a tuple")));
        };
        let max = self.context.limits.max_dims;
        if items.len() as u64 > max {
            return Err(Error::LimitExceeded {
                context: self.at(obj),
                limit: "max_dims",
                max,
            });
        }
        items
            .iter()
            .map(|&d| self.tree.as_int(d))
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| self.invalid(obj, format!("{what} holds a non-integer")))
    }

    fn flag(&self, id: Option<ValueId>) -> bool {
        id.and_then(|a| self.tree.as_int(a)).is_some_and(|v| v != 0)
    }

    /// `(qscheme, scale, zero_point)` or `(qscheme, scales, zero_points, axis)`.
    fn quantization(&self, obj: &ObjectNode, id: Option<ValueId>) -> Result<Option<Quantization<'data>>> {
        let Some(items) = id.and_then(|a| self.tree.seq(a)) else {
            return Ok(None);
        };
        let scheme = items
            .first()
            .and_then(|&s| self.tree.global(s))
            .map(|(_, n)| n.to_owned());
        let Some(scheme) = scheme else {
            return Err(self.invalid(obj, "quantizer parameters without a qscheme"));
        };
        let number = |i: usize| match items.get(i).map(|&a| self.tree.node(a)) {
            Some(Node::Float(f)) => Some(*f),
            Some(Node::Int(v)) => Some(*v as f64),
            _ => None,
        };
        if scheme.starts_with("per_tensor") {
            let (Some(scale), Some(zero_point)) = (number(1), items.get(2).and_then(|&z| self.tree.as_int(z))) else {
                return Err(self.invalid(obj, "per-tensor quantizer without scale and zero point"));
            };
            return Ok(Some(Quantization::PerTensor {
                scheme,
                scale,
                zero_point,
            }));
        }
        let scales = self.tensor_arg(obj, items.get(1).copied())?;
        let zero_points = self.tensor_arg(obj, items.get(2).copied())?;
        let axis = items.get(3).and_then(|&a| self.tree.as_int(a)).unwrap_or(0);
        Ok(Some(Quantization::PerChannel {
            scheme,
            scales: Box::new(scales),
            zero_points: Box::new(zero_points),
            axis,
        }))
    }

    fn at(&self, obj: &ObjectNode) -> String {
        format!("{} at byte {}", self.context.record, obj.offset)
    }

    fn invalid(&self, obj: &ObjectNode, reason: impl Into<String>) -> Error {
        Error::InvalidTensor {
            context: self.at(obj),
            reason: reason.into(),
        }
    }
}

//! Constructors a pickle may call: `Parameter(...)`, the legacy tensor classes
//! (`torch.Tensor(...)`, `torch.FloatTensor(...)`, also through `__new__`), `torch.Size(...)`,
//! `torch.device(...)` and `torch.serialization._get_layout(...)`.
//!
//! A legacy constructor given sizes returns uninitialised memory (`torch.FloatTensor(3)`):
//! there is nothing to read exactly, so a non-empty one is refused. CUDA classes need a GPU
//! that torch on a CPU-only machine does not have, and are refused as torch refuses them there.

use super::globals::Place;
use super::handler::TorchHandler;
use super::rebuild::LAYOUTS;
use super::spec::{self, contiguous_strides, Data, Dims, TensorSpec};
use crate::pickle::call::{raise, Failure};
use crate::pickle::text;
use crate::pickle::tree::{DictClass, Node, Tree, ValueId};
use crate::{DType, SharedBytes};

/// Device types `torch.device` accepts.
const DEVICE_TYPES: [&str; 20] = [
    "cpu",
    "cuda",
    "ipu",
    "xpu",
    "mkldnn",
    "opengl",
    "opencl",
    "ideep",
    "hip",
    "ve",
    "fpga",
    "maia",
    "xla",
    "lazy",
    "vulkan",
    "mps",
    "meta",
    "hpu",
    "mtia",
    "privateuseone",
];

impl TorchHandler<'_> {
    /// `Parameter(data=None, requires_grad=True)`: a new tensor object over `data`'s storage.
    pub(super) fn parameter(
        &mut self,
        tree: &mut Tree<'_>,
        data: Option<ValueId>,
        requires_grad: Option<ValueId>,
        offset: u64,
    ) -> Result<ValueId, Failure> {
        let mut t = match data.map(|d| tree.node(d)) {
            None | Some(Node::None) => self.empty(DType::Float32, offset)?,
            _ => self.tensor_arg(tree, data, "data")?,
        };
        t.requires_grad = match requires_grad {
            None => Self::requires_grad(tree, Some(crate::pickle::tree::TRUE_ID), t.dtype())?,
            Some(_) => Self::requires_grad(tree, requires_grad, t.dtype())?,
        };
        t.is_parameter = true;
        t.subclass = None;
        self.tensor_node(tree, t)
    }

    /// An empty one-dimensional tensor of `dtype` (`torch.empty(0)`).
    pub(super) fn empty(&self, dtype: DType, offset: u64) -> Result<TensorSpec, Failure> {
        let layout = spec::layout(dtype, &[0], &[1], 0, None, self.limits).map_err(|r| self.invalid(offset, r))?;
        Ok(TensorSpec::new(layout, Data::Owned(SharedBytes::fresh_empty())))
    }

    /// `torch.Tensor(*args)` / `torch.<Dtype>Tensor(*args)` (and their `__new__`).
    pub(super) fn legacy_constructor(
        &mut self,
        tree: &mut Tree<'_>,
        dtype: DType,
        place: Place,
        args: &[ValueId],
        offset: u64,
    ) -> Result<ValueId, Failure> {
        match place {
            Place::Cpu => {}
            Place::Cuda | Place::CudaSparse => {
                return Err(self.unsupported("a CUDA tensor class (torch refuses it without a GPU)"))
            }
            Place::Sparse => return self.empty_sparse(tree, dtype, args, offset),
        }
        let t = match args {
            [] => self.empty(dtype, offset)?,
            [one] => match tree.node(*one) {
                Node::Storage(index) => {
                    let index = *index;
                    self.whole_storage(tree, index, dtype, offset)?
                }
                Node::Tensor(_) => {
                    let t = self.tensor_arg(tree, Some(*one), "other")?;
                    if t.dtype() != dtype {
                        return raise(format!("expected {dtype} (got {})", t.dtype()));
                    }
                    t
                }
                Node::Tuple(_) | Node::List(_) if !self.work.sizes.contains(one) => {
                    self.data_tensor(tree, dtype, *one)?
                }
                _ => self.uninitialised(tree, dtype, args, offset)?,
            },
            _ => self.uninitialised(tree, dtype, args, offset)?,
        };
        self.tensor_node(tree, t)
    }

    /// `set_(storage)`: the whole storage, which must have the tensor's dtype.
    pub(super) fn whole_storage(
        &self,
        tree: &Tree<'_>,
        index: u32,
        dtype: DType,
        offset: u64,
    ) -> Result<TensorSpec, Failure> {
        let _ = tree;
        let Some(storage) = self.work.storage(index) else {
            return raise("dangling storage");
        };
        if storage.dtype != dtype {
            return raise(format!(
                "Expected a Storage of type {dtype} or an UntypedStorage, but got type {}",
                storage.dtype
            ));
        }
        let numel = storage.nbytes / dtype.size() as u64;
        let numel = i64::try_from(numel).map_err(|_| Failure::Python("storage too large".into()))?;
        let layout = spec::layout(dtype, &[numel], &[1], 0, Some(storage.nbytes), self.limits)
            .map_err(|r| self.invalid(offset, r))?;
        Ok(TensorSpec::new(layout, Data::Storage(index)))
    }

    /// Sizes given as ints or a `torch.Size`: torch returns uninitialised memory, whose values
    /// no reader can reproduce. This reader gives zeros (within `max_value_bytes`) and says so
    /// in the warnings.
    fn uninitialised(
        &mut self,
        tree: &mut Tree<'_>,
        dtype: DType,
        args: &[ValueId],
        offset: u64,
    ) -> Result<TensorSpec, Failure> {
        let shape = self.sizes_of(tree, args)?;
        let layout = spec::layout(dtype, &shape, &contiguous_strides(&shape), 0, None, self.limits)
            .map_err(|r| self.invalid(offset, r))?;
        let nbytes = layout.numel.saturating_mul(dtype.size());
        let mut zeros = tree.buffer(nbytes)?;
        tree.charge_bytes(nbytes as u64)?;
        zeros.resize(nbytes, 0);
        let zeros = if nbytes == 0 {
            SharedBytes::fresh_empty()
        } else {
            SharedBytes::from(zeros)
        };
        if nbytes > 0 {
            self.work.warnings.push(format!(
                "{}: a legacy constructor made a {dtype} tensor of shape {shape:?} from sizes alone; torch \
                 leaves its memory uninitialised, it reads as zeros here",
                self.at(offset)
            ));
        }
        Ok(TensorSpec::new(layout, Data::Owned(zeros)))
    }

    /// The shape given to a legacy constructor: ints, or one `torch.Size`.
    fn sizes_of(&self, tree: &Tree<'_>, args: &[ValueId]) -> Result<Dims, Failure> {
        let shape = match args {
            [one] if self.work.sizes.contains(one) => self.dims(tree, Some(*one), "size")?,
            _ => args
                .iter()
                .map(|&a| match tree.node(a) {
                    Node::Int(v) => Ok(*v),
                    _ => raise(format!("new(): invalid argument of type {}", tree.type_name(a))),
                })
                .collect::<Result<Dims, Failure>>()?,
        };
        if shape.iter().any(|&s| s < 0) {
            return raise("negative dimension");
        }
        Ok(shape)
    }

    /// `torch.sparse.<Dtype>Tensor(*sizes)`: a COO tensor without elements (indices
    /// `[ndim, 0]`, values `[0]`; no sizes is one dimension of size 0).
    fn empty_sparse(
        &mut self,
        tree: &mut Tree<'_>,
        dtype: DType,
        args: &[ValueId],
        offset: u64,
    ) -> Result<ValueId, Failure> {
        if args.iter().any(|&a| matches!(tree.node(a), Node::Tensor(_))) {
            return Err(self.unsupported("a legacy sparse tensor constructor given tensors"));
        }
        let sizes = if args.is_empty() {
            smallvec::smallvec![0]
        } else {
            self.sizes_of(tree, args)?
        };
        let rank = sizes.len() as i64;
        let indices_layout = spec::layout(
            DType::Int64,
            &[rank, 0],
            &contiguous_strides(&[rank, 0]),
            0,
            None,
            self.limits,
        )
        .map_err(|r| self.invalid(offset, r))?;
        let indices = self.tensor_node(
            tree,
            TensorSpec::new(indices_layout, Data::Owned(SharedBytes::fresh_empty())),
        )?;
        let values = self.empty(dtype, offset)?;
        let values = self.tensor_node(tree, values)?;
        let mut dims = Vec::with_capacity(sizes.len());
        for s in &sizes {
            dims.push(tree.push(Node::Int(*s))?);
        }
        let size = tree.push_tuple(&dims)?;
        let mut pairs = Vec::new();
        for (name, value) in [("indices", indices), ("values", values), ("size", size)] {
            pairs.push((tree.push_owned_str(name)?, value));
        }
        pairs.push((tree.push_owned_str("is_coalesced")?, crate::pickle::tree::TRUE_ID));
        crate::pickle::machine::new_dict(tree, DictClass::Sparse("sparse_coo"), &pairs)
    }

    /// A tensor made from nested sequences of numbers, converted to `dtype` as torch's
    /// `tensor_new.cpp` converts them.
    pub(super) fn data_tensor(&self, tree: &mut Tree<'_>, dtype: DType, data: ValueId) -> Result<TensorSpec, Failure> {
        let shape = sequence_shape(tree, data, self.limits.max_dims)?;
        let numel = shape.iter().try_fold(1usize, |n, &s| n.checked_mul(s));
        let nbytes = numel
            .and_then(|n| n.checked_mul(dtype.size()))
            .ok_or_else(|| Failure::Python("too many elements".into()))?;
        tree.charge(numel.unwrap_or(0) as u64)?;
        let mut bytes = tree.buffer(nbytes)?;
        store(tree, data, &shape, 0, dtype, &mut bytes)?;
        tree.charge_bytes(nbytes as u64)?;
        let dims: Vec<i64> = shape.iter().map(|&s| s as i64).collect();
        let layout = spec::layout(dtype, &dims, &contiguous_strides(&dims), 0, None, self.limits)
            .map_err(|r| Failure::Python(r.to_string()))?;
        Ok(TensorSpec::new(layout, Data::Owned(SharedBytes::from(bytes))))
    }

    /// `torch.Size(iterable_of_ints)`: a tuple, remembered as a size.
    pub(super) fn size(&mut self, tree: &mut Tree<'_>, args: &[ValueId]) -> Result<ValueId, Failure> {
        let items = match args {
            [] => Vec::new(),
            [one] => {
                let mut items = crate::pickle::builtins::iterate(tree, *one)?;
                for (i, item) in items.iter_mut().enumerate() {
                    match tree.node(*item) {
                        Node::Int(_) => {}
                        // A bool is an int to Python; the size holds the int.
                        Node::Bool(b) => *item = tree.push(Node::Int(i64::from(*b)))?,
                        _ => {
                            return raise(format!(
                                "torch.Size() takes an iterable of 'int' (item {i} is '{}')",
                                tree.type_name(*item)
                            ))
                        }
                    }
                }
                items
            }
            _ => return raise("torch.Size() takes at most 1 argument"),
        };
        let id = tree.push_tuple(&items)?;
        self.work.sizes.insert(id);
        Ok(id)
    }

    /// `torch.device(type_or_string[, index])`, checked and kept as an inert object.
    pub(super) fn device(&mut self, tree: &mut Tree<'_>, args: &[ValueId]) -> Result<ValueId, Failure> {
        let valid = match args {
            [spec] => tree.text(*spec).is_some_and(|s| {
                let (kind, index) = s.split_once(':').unwrap_or((s, ""));
                DEVICE_TYPES.contains(&kind) && (index.is_empty() || index.bytes().all(|b| b.is_ascii_digit()))
            }),
            [kind, index] => {
                tree.text(*kind).is_some_and(|k| DEVICE_TYPES.contains(&k))
                    && matches!(tree.node(*index), Node::Int(i) if *i >= 0)
            }
            _ => false,
        };
        if !valid {
            return raise("Invalid device string or arguments for torch.device");
        }
        let callable = tree.push(Node::Global(Box::new(crate::pickle::tree::GlobalNode {
            module: "torch".into(),
            name: "device".into(),
        })))?;
        let args = tree.push_tuple(args)?;
        Ok(tree.push(Node::Object(Box::new(crate::pickle::tree::ObjectNode {
            callable,
            args,
            kwargs: None,
            construction: crate::pickle::tree::Construction::Reduce,
            state: None,
            items: Vec::new(),
            dict_items: Vec::new(),
        })))?)
    }

    /// `torch.serialization._get_layout("torch.sparse_coo")`: the layout, as the global
    /// `torch.sparse_coo`.
    pub(super) fn get_layout(&mut self, tree: &mut Tree<'_>, args: &[ValueId]) -> Result<ValueId, Failure> {
        let name = match args {
            [one] => tree.text(*one).and_then(|s| s.strip_prefix("torch.")),
            _ => None,
        };
        let Some(name) = name.and_then(|n| LAYOUTS.iter().find(|&&l| l == n)) else {
            return raise("_get_layout: unknown layout");
        };
        Ok(tree.push(Node::Global(Box::new(crate::pickle::tree::GlobalNode {
            module: "torch".into(),
            name: (*name).into(),
        })))?)
    }
}

/// The shape of nested lists and tuples, as `compute_sizes` finds it (each level's first
/// element gives the next dimension).
fn sequence_shape(tree: &Tree<'_>, data: ValueId, max_dims: u64) -> Result<Vec<usize>, Failure> {
    let mut shape = Vec::new();
    let mut at = data;
    while let Some(items) = tree.seq(at) {
        if shape.len() as u64 >= max_dims {
            return raise("too many dimensions");
        }
        shape.push(items.len());
        match items.first() {
            Some(&first) => at = first,
            None => break,
        }
    }
    Ok(shape)
}

/// Writes the elements of `data` (of `shape[dim..]`) into `out`, converted to `dtype`; an
/// explicit stack instead of recursion.
fn store(
    tree: &Tree<'_>,
    data: ValueId,
    shape: &[usize],
    dim: usize,
    dtype: DType,
    out: &mut Vec<u8>,
) -> Result<(), Failure> {
    let mut stack = vec![(data, dim)];
    while let Some((at, dim)) = stack.pop() {
        match shape.get(dim) {
            None => {
                if tree.seq(at).is_some() {
                    return raise("too many dimensions for the data");
                }
                scalar(tree, at, dtype, out)?;
            }
            Some(&size) => {
                let Some(items) = tree.seq(at) else {
                    return raise(format!(
                        "expected sequence of length {size} at dim {dim} (got {})",
                        tree.type_name(at)
                    ));
                };
                if items.len() != size {
                    return raise(format!(
                        "expected sequence of length {size} at dim {dim} (got {})",
                        items.len()
                    ));
                }
                stack.extend(items.iter().rev().map(|&c| (c, dim + 1)));
            }
        }
    }
    Ok(())
}

/// One Python number converted to `dtype` as torch's `store_scalar` does.
fn scalar(tree: &Tree<'_>, id: ValueId, dtype: DType, out: &mut Vec<u8>) -> Result<(), Failure> {
    let number = match tree.node(id) {
        Node::Bool(b) => Number::Int(i64::from(*b)),
        Node::Int(i) => Number::Int(*i),
        Node::BigInt(span) => Number::Big(tree.bytes_of(*span)),
        Node::Float(f) => Number::Float(*f),
        Node::Complex(..) => return raise("must be real number, not complex"),
        _ => return raise(format!("new(): invalid data type '{}'", tree.type_name(id))),
    };
    match dtype {
        DType::Float64 | DType::Float32 | DType::Float16 | DType::BFloat16 => {
            let v = match number {
                Number::Int(i) => i as f64,
                Number::Float(f) => f,
                Number::Big(b) => {
                    text::big_to_f64(b).ok_or_else(|| Failure::Python("int too large to convert to float".into()))?
                }
            };
            match dtype {
                DType::Float64 => out.extend_from_slice(&v.to_le_bytes()),
                DType::Float32 => out.extend_from_slice(&(v as f32).to_le_bytes()),
                // c10::Half and c10::BFloat16 are built from a float: the double is rounded
                // to float first.
                DType::Float16 => out.extend_from_slice(&half::f16::from_f32(v as f32).to_le_bytes()),
                _ => out.extend_from_slice(&half::bf16::from_f32(v as f32).to_le_bytes()),
            }
        }
        DType::Bool => {
            let on = match number {
                Number::Int(i) => i != 0,
                Number::Float(f) => f != 0.0,
                Number::Big(_) => true,
            };
            out.push(u8::from(on));
        }
        _ => {
            let (min, max): (i64, i64) = match dtype {
                DType::Int64 => (i64::MIN, i64::MAX),
                DType::Int32 => (i32::MIN.into(), i32::MAX.into()),
                DType::Int16 => (i16::MIN.into(), i16::MAX.into()),
                DType::Int8 => (i8::MIN.into(), i8::MAX.into()),
                DType::UInt8 => (0, 255),
                _ => return raise(format!("a {dtype} tensor cannot be made from data")),
            };
            // c10::checked_convert, as observed in torch 2.15: integers may also wrap into
            // uint8 from -255; floats are truncated when `lowest <= f < max + 1` (NaN refused).
            let lowest = if dtype == DType::UInt8 { -255 } else { min };
            let v = match number {
                Number::Int(i) if (lowest..=max).contains(&i) => i,
                Number::Float(f) if f >= min as f64 && f < max as f64 + 1.0 => f.trunc() as i64,
                _ => return raise(format!("value cannot be converted to type {dtype} without overflow")),
            };
            out.extend_from_slice(v.to_le_bytes().get(..dtype.size()).unwrap_or_default());
        }
    }
    Ok(())
}

enum Number<'a> {
    Int(i64),
    Float(f64),
    Big(&'a [u8]),
}

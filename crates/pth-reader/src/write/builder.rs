//! [`Builder`]: a tree of values and tensors to save, made bottom-up.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use super::{SaveOptions, Source};
use crate::pickle::call::Failure;
use crate::pickle::machine::new_dict;
use crate::pickle::text::trimmed_len;
use crate::pickle::tree::{DictClass, Node, Tree, ValueId, FALSE_ID, NONE_ID, TRUE_ID};
use crate::tensor::{ByteOrder, Layout, Storage, TensorView};
use crate::torch::Tables;
use crate::{DType, Error, ErrorKind, Limits, Result, SharedBytes};

/// A storage added to a [`Builder`]: tensors made over the same storage share its bytes, as
/// views of one tensor do in torch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StorageId(u32);

/// A tree of Python values and tensors to save as torch would, built bottom-up: every method
/// adds a value and returns its [`ValueId`], which containers then hold. A value used twice is
/// written once and shared when read back, as in Python.
///
/// Tensors view storages: bytes borrowed for `'data` (a `&[u8]`, a tensor of another checkpoint)
/// or owned (`Vec<u8>`), never copied, and written straight to the output.
///
/// ```
/// # fn main() -> Result<(), pth_reader::Error> {
/// use pth_reader::{write::{Builder, SaveOptions}, Checkpoint, DType, Options};
///
/// let weights: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect();
/// let mut b = Builder::new();
/// let storage = b.storage(DType::Float32, weights.as_slice())?;
/// let w = b.tensor(storage, &[2, 3])?;
/// let column = b.strided(storage, &[2], &[3], 1)?; // w[:, 1], sharing w's storage
/// b.set_requires_grad(w, true)?;
/// let epoch = b.int(3);
/// let model = b.state_dict(&[("weight", w), ("column", column)])?;
/// let (k_model, k_epoch) = (b.str("model"), b.str("epoch"));
/// let root = b.dict(&[(k_model, model), (k_epoch, epoch)])?;
///
/// let mut file = Vec::new();
/// b.save_to(root, &mut file, &SaveOptions::default())?;
/// let ckpt = Checkpoint::from_bytes(&file[..], &Options::default())?;
/// assert_eq!(ckpt.tensor("model.column")?.to_vec::<f32>()?, [2.0, 5.0]);
/// assert!(ckpt.tensor("model.weight")?.requires_grad());
/// assert_eq!(ckpt.root().get("epoch").and_then(|v| v.as_i64()), Some(3));
/// assert_eq!(ckpt.storages().len(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Builder<'data> {
    tree: Tree<'data>,
    tables: Tables<'data>,
    /// The byte order of each storage's bytes.
    orders: Vec<ByteOrder>,
}

impl Default for Builder<'_> {
    fn default() -> Self {
        Builder::new()
    }
}

fn unsupported(what: impl Into<String>) -> Error {
    Error::from(ErrorKind::Unsupported { what: what.into() })
}

impl<'data> Builder<'data> {
    /// An empty tree.
    pub fn new() -> Self {
        // A builder's values come from the program, not from input: no budget.
        let limits = Limits {
            max_values: u64::MAX,
            max_value_bytes: u64::MAX,
            ..Limits::default()
        };
        Builder {
            tree: Tree::new(SharedBytes::from(&[][..]), &limits),
            tables: Tables::default(),
            orders: Vec::new(),
        }
    }

    pub(crate) fn parts(&self) -> (&Tree<'data>, &Tables<'data>) {
        (&self.tree, &self.tables)
    }

    fn push(&mut self, node: Node) -> ValueId {
        // Unbounded budget: only more than 2^32 values fail, and they cannot fit in memory.
        self.tree.push(node).unwrap_or(NONE_ID)
    }

    /// Fails unless every id is a value of this builder.
    fn check(&self, ids: impl IntoIterator<Item = ValueId>) -> Result<()> {
        match ids.into_iter().find(|id| id.index() >= self.tree.len()) {
            Some(id) => Err(unsupported(format!("{id:?} is not a value of this builder"))),
            None => Ok(()),
        }
    }

    /// `None`.
    pub fn none(&self) -> ValueId {
        NONE_ID
    }

    /// `True` or `False`.
    pub fn bool(&self, value: bool) -> ValueId {
        if value {
            TRUE_ID
        } else {
            FALSE_ID
        }
    }

    /// An int.
    pub fn int(&mut self, value: i64) -> ValueId {
        self.push(Node::Int(value))
    }

    /// An int of any size, from its little-endian two's complement bytes (Python's
    /// `n.to_bytes(k, "little", signed=True)`).
    pub fn big_int_le(&mut self, bytes: &[u8]) -> ValueId {
        let bytes = bytes.get(..trimmed_len(bytes)).unwrap_or(bytes);
        if bytes.len() <= 8 {
            let fill = if bytes.last().is_some_and(|&b| b >= 0x80) {
                0xff
            } else {
                0
            };
            let mut le = [fill; 8];
            le.get_mut(..bytes.len()).unwrap_or_default().copy_from_slice(bytes);
            return self.int(i64::from_le_bytes(le));
        }
        match self.tree.own(bytes.to_vec()) {
            Ok(span) => self.push(Node::BigInt(span)),
            Err(_) => NONE_ID,
        }
    }

    /// A float.
    pub fn float(&mut self, value: f64) -> ValueId {
        self.push(Node::Float(value))
    }

    /// A string.
    pub fn str(&mut self, text: &str) -> ValueId {
        self.tree.push_owned_str(text).unwrap_or(NONE_ID)
    }

    /// `bytes`.
    pub fn bytes(&mut self, bytes: &[u8]) -> ValueId {
        match self.tree.own(bytes.to_vec()) {
            Ok(span) => self.push(Node::Bytes(span)),
            Err(_) => NONE_ID,
        }
    }

    /// A list of `items`.
    pub fn list(&mut self, items: &[ValueId]) -> Result<ValueId> {
        self.check(items.iter().copied())?;
        Ok(self.push(Node::List(items.to_vec())))
    }

    /// A tuple of `items`.
    pub fn tuple(&mut self, items: &[ValueId]) -> Result<ValueId> {
        self.check(items.iter().copied())?;
        Ok(self.tree.push_tuple(items).unwrap_or(NONE_ID))
    }

    /// A dict of `(key, value)` pairs, in order; keys equal as Python compares them merge (the
    /// first key kept, the last value), and unhashable keys (lists, dicts) are refused.
    pub fn dict(&mut self, items: &[(ValueId, ValueId)]) -> Result<ValueId> {
        self.dict_of(DictClass::Dict, items)
    }

    /// A `collections.OrderedDict` of `(key, value)` pairs (a state dict's type).
    pub fn ordered_dict(&mut self, items: &[(ValueId, ValueId)]) -> Result<ValueId> {
        self.dict_of(DictClass::OrderedDict, items)
    }

    /// A state dict: an `OrderedDict` of tensors (or any values) by name.
    pub fn state_dict(&mut self, items: &[(&str, ValueId)]) -> Result<ValueId> {
        let pairs: Vec<(ValueId, ValueId)> = items.iter().map(|&(name, value)| (self.str(name), value)).collect();
        self.ordered_dict(&pairs)
    }

    fn dict_of(&mut self, class: DictClass, items: &[(ValueId, ValueId)]) -> Result<ValueId> {
        self.check(items.iter().flat_map(|&(k, v)| [k, v]))?;
        new_dict(&mut self.tree, class, items).map_err(|failure| match failure {
            Failure::Python(reason) => unsupported(format!("a dict key: {reason}")),
            Failure::Error(error) => error,
        })
    }

    /// A storage of `dtype` elements holding `bytes`, little-endian. Quantized dtypes are refused:
    /// their tensors need a quantizer ([`tensor_view`](Self::tensor_view) keeps one).
    pub fn storage(&mut self, dtype: DType, bytes: impl Into<SharedBytes<'data>>) -> Result<StorageId> {
        self.storage_in(dtype, bytes.into(), ByteOrder::Little)
    }

    pub(crate) fn storage_in(
        &mut self,
        dtype: DType,
        bytes: SharedBytes<'data>,
        order: ByteOrder,
    ) -> Result<StorageId> {
        if dtype.is_quantized() {
            return Err(unsupported(format!(
                "a {dtype} storage: quantized tensors need their quantizer (add them with tensor_view)"
            )));
        }
        if bytes.len() % dtype.size() != 0 {
            return Err(Error::from(ErrorKind::InvalidStorage {
                key: format!("builder/{}", self.tables.storages.len()),
                reason: format!("{} bytes are not a whole number of {dtype} elements", bytes.len()),
            }));
        }
        let id = u32::try_from(self.tables.storages.len()).map_err(|_| unsupported("2^32 storages"))?;
        self.tables.storages.push(Storage {
            key: Arc::from(format!("builder/{id}")),
            dtype: Some(dtype),
            location: Arc::from("cpu"),
            bytes,
        });
        self.orders.push(order);
        Ok(StorageId(id))
    }

    /// A contiguous tensor of `shape` from the start of `storage`.
    pub fn tensor(&mut self, storage: StorageId, shape: &[usize]) -> Result<ValueId> {
        let mut stride = vec![0usize; shape.len()];
        let mut step = 1usize;
        for (s, &size) in stride.iter_mut().zip(shape).rev() {
            *s = step;
            step = step.saturating_mul(size.max(1));
        }
        self.strided(storage, shape, &stride, 0)
    }

    /// A tensor of `shape` viewing `storage` with `stride` (in elements) from element `offset`:
    /// a slice, a transpose, an expanded tensor (stride 0). Every element must lie in the
    /// storage, as torch checks.
    pub fn strided(&mut self, storage: StorageId, shape: &[usize], stride: &[usize], offset: usize) -> Result<ValueId> {
        let index = storage.0 as usize;
        let (Some(s), Some(&order)) = (self.tables.storages.get(index), self.orders.get(index)) else {
            return Err(unsupported(format!("{storage:?} is not a storage of this builder")));
        };
        let dtype = s.dtype.unwrap_or(DType::UInt8);
        let to_i64 = |v: &[usize]| {
            v.iter()
                .map(|&x| i64::try_from(x).unwrap_or(i64::MAX))
                .collect::<Vec<_>>()
        };
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let layout = Layout::validate(
            dtype,
            &to_i64(shape),
            &to_i64(stride),
            offset,
            Some(s.bytes.len()),
            &Limits::default(),
        )
        .map_err(|reason| {
            Error::from(ErrorKind::InvalidTensor {
                reason: format!("a tensor of {storage:?}: {reason}"),
            })
        })?;
        let view = TensorView::over(layout, s, order);
        self.add_tensor(view)
    }

    /// A tensor of another checkpoint (or of this crate's reading), as it is: dtype, layout,
    /// flags and storage, which it keeps sharing with the other views of that storage added
    /// here.
    pub fn tensor_view(&mut self, tensor: &TensorView<'data>) -> Result<ValueId> {
        self.add_tensor(tensor.clone())
    }

    fn add_tensor(&mut self, view: TensorView<'data>) -> Result<ValueId> {
        let index = u32::try_from(self.tables.tensors.len()).map_err(|_| unsupported("2^32 tensors"))?;
        self.tables.tensors.push(view);
        Ok(self.push(Node::Tensor(index)))
    }

    /// Marks a tensor as requiring gradients (`requires_grad=True`), or not; only floating
    /// point and complex tensors can, as in torch.
    pub fn set_requires_grad(&mut self, tensor: ValueId, requires_grad: bool) -> Result<()> {
        let view = match self.tree.node(tensor) {
            Node::Tensor(index) => self.tables.tensors.get_mut(*index as usize),
            _ => None,
        };
        let view = view.ok_or_else(|| unsupported(format!("{tensor:?} is not a tensor")))?;
        if requires_grad && !(view.dtype.is_floating_point() || view.dtype.is_complex()) {
            // torch.load would raise it.
            return Err(Error::from(ErrorKind::InvalidTensor {
                reason: format!("{tensor:?}: only Tensors of floating point and complex dtype can require gradients"),
            }));
        }
        view.requires_grad = requires_grad;
        Ok(())
    }

    /// Writes `root` as `torch.save(root, path)` would (see [`SaveOptions`]), streaming each
    /// storage from its bytes.
    pub fn save(&self, root: ValueId, path: impl AsRef<Path>, options: &SaveOptions) -> Result<()> {
        self.source(root)?.write_file(path.as_ref(), options)
    }

    /// Writes `root` to `out` as `torch.save(root, buffer)` would; returns `out`. Only `Write`
    /// is needed: nothing is sought back to.
    pub fn save_to<W: Write>(&self, root: ValueId, out: W, options: &SaveOptions) -> Result<W> {
        self.source(root)?.write_to(out, &options.root_for(None)?, options)
    }

    fn source(&self, root: ValueId) -> Result<Source<'_, 'data>> {
        self.check([root])?;
        Ok(Source {
            tree: &self.tree,
            tables: &self.tables,
            root,
            byte_order: ByteOrder::Little,
        })
    }
}

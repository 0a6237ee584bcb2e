//! What the torch layer knows about tensors and storages while a pickle runs.
//!
//! Tensors are made when the pickle calls a rebuild function, but a legacy file's storage bytes
//! follow the pickle; so a tensor is first a [`TensorSpec`] — a layout checked against its
//! storage's size, flags, and where its bytes will come from — and becomes a
//! [`TensorView`](crate::TensorView) once the container has found every storage's bytes.
//! A spec is mutable until then, as a torch tensor is: `BUILD` may rebind it (`set_`), and
//! every reference to it (a `Node::Tensor` index) sees the change.

use std::sync::Arc;

use super::storage::{StorageKey, StorageSpec};
use crate::hashing::{FastMap, FastSet};
use crate::pickle::ValueId;
use crate::tensor::{Layout, LayoutError};
use crate::{DType, Error, Limits, SharedBytes};

/// Where a tensor's bytes come from.
#[derive(Debug, Clone)]
pub(crate) enum Data {
    /// A storage of the file, by index into [`Work::storages`].
    Storage(u32),
    /// Bytes made by a call (`torch.FloatTensor([1, 2])`, `set_()`), little-endian.
    Owned(SharedBytes<'static>),
    /// No data: a meta tensor or a wrapper subclass.
    Meta,
    /// The elements of another tensor cast to this one's dtype (`Tensor.to(dtype)`), made once
    /// the storage bytes are known.
    Converted(Box<TensorSpec>),
}

/// A quantizer's parameters.
#[derive(Debug, Clone)]
pub(crate) enum QuantSpec {
    PerTensor {
        scheme: String,
        scale: f64,
        zero_point: i64,
    },
    PerChannel {
        scheme: String,
        scales: Box<TensorSpec>,
        zero_points: Box<TensorSpec>,
        axis: i64,
    },
}

/// A tensor as torch would hold it after the calls made so far.
#[derive(Debug, Clone)]
pub(crate) struct TensorSpec {
    pub(crate) layout: Layout,
    pub(crate) data: Data,
    pub(crate) requires_grad: bool,
    pub(crate) is_parameter: bool,
    pub(crate) conj: bool,
    pub(crate) neg: bool,
    /// The Python class when it is neither `torch.Tensor` nor `Parameter` (lenient files).
    pub(crate) subclass: Option<Arc<str>>,
    /// Boxed: rare, and large beside the rest (20,000 specs are alive at once while a big
    /// state dict loads).
    pub(crate) quantization: Option<Box<QuantSpec>>,
}

impl TensorSpec {
    pub(crate) fn new(layout: Layout, data: Data) -> TensorSpec {
        TensorSpec {
            layout,
            data,
            requires_grad: false,
            is_parameter: false,
            conj: false,
            neg: false,
            subclass: None,
            quantization: None,
        }
    }

    pub(crate) fn dtype(&self) -> DType {
        self.layout.dtype
    }
}

/// The torch layer's state while a pickle runs.
#[derive(Debug, Default)]
pub(crate) struct Work {
    pub(crate) tensors: Vec<TensorSpec>,
    pub(crate) storages: Vec<StorageSpec>,
    /// The `__dict__` of tensors that have Python attributes: a dict node, by tensor index.
    pub(crate) attributes: FastMap<u32, ValueId>,
    /// Tensors whose layout failed torch's checks: opening fails with the first, named by its
    /// path once paths are known.
    pub(crate) invalid: Vec<(u32, Error)>,
    /// Tuples that are `torch.Size` objects (legacy constructors read them as shapes).
    pub(crate) sizes: FastSet<ValueId>,
    /// The node of each storage object, by storage index, so that one object is one value
    /// (identity matters for dict keys).
    pub(crate) storage_nodes: Vec<Option<ValueId>>,
    /// Storage objects by key: the zip loader's `loaded_storages`, or the legacy loader's
    /// `deserialized_objects` (where view keys and root keys share one namespace).
    pub(crate) by_key: FastMap<StorageKey, u32>,
    /// Things worth knowing that do not stop the file from opening.
    pub(crate) warnings: Vec<String>,
    /// Sparse tensors, validated once their indices can be read.
    pub(crate) sparse: Vec<super::sparse::Pending>,
    /// The storage locations met so far (`"cpu"`, nearly always alone): storages share them.
    locations: Vec<Arc<str>>,
}

impl Work {
    pub(crate) fn tensor(&self, index: u32) -> Option<&TensorSpec> {
        self.tensors.get(index as usize)
    }

    pub(crate) fn tensor_mut(&mut self, index: u32) -> Option<&mut TensorSpec> {
        self.tensors.get_mut(index as usize)
    }

    pub(crate) fn storage(&self, index: u32) -> Option<&StorageSpec> {
        self.storages.get(index as usize)
    }

    /// `location` (UTF-8), shared with the storages that named it before: compared as bytes,
    /// decoded once.
    pub(crate) fn location(&mut self, location: &[u8]) -> Arc<str> {
        if let Some(known) = self.locations.iter().find(|l| l.as_bytes() == location) {
            return Arc::clone(known);
        }
        let new: Arc<str> = Arc::from(String::from_utf8_lossy(location));
        // A file may name many locations; only the first few are worth searching.
        if self.locations.len() < 8 {
            self.locations.push(Arc::clone(&new));
        }
        new
    }

    /// Makes room for about `n` storages and tensors, so that their vectors (and the map of
    /// storages by key) do not grow by copying themselves. A hint only: a refusal leaves them
    /// to grow as needed.
    pub(crate) fn expect(&mut self, n: usize) {
        let _ = self.tensors.try_reserve_exact(n);
        let _ = self.storages.try_reserve_exact(n);
        let _ = self.by_key.try_reserve(n);
    }

    /// Adds a tensor; its index.
    pub(crate) fn add_tensor(&mut self, spec: TensorSpec) -> u32 {
        self.tensors.push(spec);
        (self.tensors.len() - 1) as u32
    }
}

/// Sizes or strides read from a pickle: inline up to 8 dimensions (nearly every tensor), so
/// that reading them allocates nothing.
pub(crate) type Dims = smallvec::SmallVec<[i64; 8]>;

/// C-contiguous strides for `shape` (torch's default when a stride is `None`).
pub(crate) fn contiguous_strides(shape: &[i64]) -> Dims {
    let mut strides: Dims = smallvec::smallvec![1i64; shape.len()];
    let mut acc = 1i64;
    for (stride, &size) in strides.iter_mut().zip(shape).rev() {
        *stride = acc;
        acc = acc.saturating_mul(size.max(1));
    }
    strides
}

/// A layout checked as torch's `set_` checks it, against a storage of `nbytes` bytes (`None`
/// for tensors without storage).
pub(crate) fn layout(
    dtype: DType,
    shape: &[i64],
    stride: &[i64],
    offset: i64,
    nbytes: Option<u64>,
    limits: &Limits,
) -> Result<Layout, LayoutError> {
    let available = match nbytes {
        None => None,
        Some(n) => Some(usize::try_from(n).map_err(|_| LayoutError::StorageTooLarge)?),
    };
    Layout::validate(dtype, shape, stride, offset, available, limits)
}

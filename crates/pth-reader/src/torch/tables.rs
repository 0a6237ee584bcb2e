//! From specs to views: storages get their bytes, tensors become [`TensorView`]s.

use std::collections::BTreeMap;

use super::spec::{Data, QuantSpec, TensorSpec, Work};
use super::storage::Backing;
use crate::container::{RootRequest, StorageSource};
use crate::pickle::call::Handler;
use crate::pickle::ValueId;
use crate::tensor::{ByteOrder, Quantization, Storage, TensorView};
use crate::{Error, ErrorKind, Limits, Result, SharedBytes};

/// The tensors and storages a tree's `Tensor`/`Storage` nodes index into.
#[derive(Debug, Default)]
pub(crate) struct Tables<'data> {
    pub(crate) tensors: Vec<TensorView<'data>>,
    pub(crate) storages: Vec<Storage<'data>>,
    /// Python attributes (`__dict__`) of tensors, by tensor index: a dict node.
    pub(crate) attributes: BTreeMap<u32, ValueId>,
    /// Tensors whose metadata failed validation, with the error: opening fails with the first
    /// one, named by its path.
    pub(crate) invalid: Vec<(u32, Error)>,
    /// Things the torch layer noticed that do not stop the file from opening.
    pub(crate) warnings: Vec<String>,
    /// Sparse tensors to validate once the tree is complete.
    pub(crate) sparse: Vec<super::sparse::Pending>,
    /// Tensors of a big-endian archive that torch reads without swapping their bytes: named in
    /// a warning once their paths are known.
    pub(crate) unswapped: Vec<u32>,
}

static NO_TABLES: Tables<'static> = Tables {
    tensors: Vec::new(),
    storages: Vec::new(),
    attributes: BTreeMap::new(),
    invalid: Vec::new(),
    warnings: Vec::new(),
    sparse: Vec::new(),
    unswapped: Vec::new(),
};

impl Tables<'_> {
    /// The attribute dict of tensor `index`, if it has one.
    pub(crate) fn attributes_of(&self, index: u32) -> Option<ValueId> {
        self.attributes.get(&index).copied()
    }

    pub(crate) fn empty() -> &'static Tables<'static> {
        &NO_TABLES
    }
}

/// Gives every storage its bytes (asking the container for the roots) and makes the views.
pub(crate) fn finish<'data>(
    work: Work,
    source: &mut dyn StorageSource<'data>,
    pickle_len: usize,
    plain: &mut dyn Handler<'data>,
    byte_order: ByteOrder,
    limits: &Limits,
) -> Result<Tables<'data>> {
    let mut work = work;
    // The specs and the views they become are alive together below: the specs' vectors give
    // back the room they grew into first (a third of them, for 20,000 tensors).
    work.tensors.shrink_to_fit();
    work.storages.shrink_to_fit();
    let bytes = storage_bytes(&work, source, pickle_len, plain)?;
    let swaps = swap_units(&work, byte_order);
    let storages: Vec<Storage<'data>> = work
        .storages
        .iter()
        .zip(bytes)
        .map(|(s, bytes)| Storage {
            key: s.key.clone(),
            dtype: (!s.untyped).then_some(s.dtype),
            location: s.location.clone(),
            bytes,
        })
        .collect();
    let mut tensors = Vec::with_capacity(work.tensors.len());
    for (spec, unit) in work.tensors.into_iter().zip(swaps.units) {
        let mut t = make_view(spec, &storages, byte_order, limits)?;
        if let Some(unit) = unit {
            t.swap_unit = unit;
        }
        tensors.push(t);
    }
    Ok(Tables {
        tensors,
        attributes: work.attributes.into_iter().collect(),
        invalid: work.invalid,
        storages,
        warnings: work.warnings,
        sparse: work.sparse,
        unswapped: swaps.unswapped,
    })
}

/// The bytes of every storage: roots from the container, the rest from their roots.
fn storage_bytes<'data>(
    work: &Work,
    source: &mut dyn StorageSource<'data>,
    pickle_len: usize,
    plain: &mut dyn Handler<'data>,
) -> Result<Vec<SharedBytes<'data>>> {
    let requests: Vec<RootRequest<'_>> = work
        .storages
        .iter()
        .filter_map(|s| match &s.backing {
            Backing::Root(key) => Some(RootRequest {
                key,
                nbytes: s.nbytes,
                element_size: s.dtype.size(),
            }),
            _ => None,
        })
        .collect();
    // The bytes of the roots, in the order of the requests: the storages' order.
    let mut from_root = source.resolve(pickle_len, &requests, plain)?.into_iter();
    let mut out: Vec<SharedBytes<'data>> = Vec::with_capacity(work.storages.len());
    for s in &work.storages {
        // Storages refer only to storages made before them.
        let bytes = match &s.backing {
            Backing::Root(_) => from_root.next(),
            Backing::Same(of) => out.get(*of as usize).cloned(),
            Backing::Slice { of, offset } => out.get(*of as usize).and_then(|b| b.slice_u64(*offset, s.nbytes)),
        };
        out.push(bytes.ok_or_else(|| {
            Error::from(ErrorKind::InvalidStorage {
                key: s.key.to_string(),
                reason: "its bytes could not be found".into(),
            })
        })?);
    }
    Ok(out)
}

/// How the tensors of a big-endian archive are read.
struct Swaps {
    /// The groups of bytes each tensor's elements are reversed by (`None`: the tensor's own).
    units: Vec<Option<usize>>,
    /// Tensors of multi-byte elements whose bytes torch does not swap.
    unswapped: Vec<u32>,
}

/// The bytes each tensor's elements are swapped by, in a big-endian archive: torch's.
///
/// torch swaps each storage once, when its first persistent id loads it, by that id's dtype
/// (`storage.byteswap(dtype)`): a typed storage by its element size, an `UntypedStorage` not at
/// all (its dtype is uint8), and a storage met again with another dtype is the same, already
/// swapped, bytes. So every tensor over a typed storage is swapped by the storage's element
/// size, whatever its own dtype, and every tensor over an untyped one is not swapped: what
/// torch's own writer makes of the dtypes that have no typed storage (uint16/32/64, complex32,
/// float8: the "v3" dtypes), which `torch.load` then gives byte-swapped relative to the values
/// that were saved. This reader gives torch's reading, and names those tensors in a warning.
fn swap_units(work: &Work, byte_order: ByteOrder) -> Swaps {
    let mut swaps = Swaps {
        units: Vec::with_capacity(work.tensors.len()),
        unswapped: Vec::new(),
    };
    for (index, t) in work.tensors.iter().enumerate() {
        let Data::Storage(storage) = t.data else {
            swaps.units.push(None);
            continue;
        };
        if byte_order != ByteOrder::Big {
            swaps.units.push(None);
            continue;
        }
        // The storage object whose first load swapped the bytes.
        let first = match work.storage(storage).map(|s| &s.backing) {
            Some(Backing::Same(of)) => *of,
            _ => storage,
        };
        let unit = match work.storage(first) {
            Some(s) if !s.untyped => s.dtype.swap_unit(),
            _ => 1,
        };
        if unit == 1 && t.dtype().swap_unit() > 1 && t.layout.numel > 0 {
            swaps.unswapped.push(index as u32);
        }
        swaps.units.push(Some(unit));
    }
    swaps
}

/// The view of `spec` (taken apart: its layout moves into the view).
fn make_view<'data>(
    spec: TensorSpec,
    storages: &[Storage<'data>],
    byte_order: ByteOrder,
    limits: &Limits,
) -> Result<TensorView<'data>> {
    let mut t = match spec.data {
        Data::Storage(i) => match storages.get(i as usize) {
            Some(storage) => TensorView::over(spec.layout, storage, byte_order),
            None => TensorView::without_data(spec.layout, byte_order),
        },
        Data::Owned(bytes) => {
            let mut t = TensorView::without_data(spec.layout, ByteOrder::Little);
            t.data = Some(bytes);
            t
        }
        Data::Meta => TensorView::without_data(spec.layout, byte_order),
        Data::Converted(source) => {
            let source = make_view(*source, storages, byte_order, limits)?;
            let bytes = super::convert::converted(&source, &spec.layout)?;
            let mut t = TensorView::without_data(spec.layout, ByteOrder::Little);
            t.data = Some(SharedBytes::from(bytes));
            t
        }
    };
    t.requires_grad = spec.requires_grad;
    t.is_parameter = spec.is_parameter;
    t.conj = spec.conj;
    t.neg = spec.neg;
    t.subclass = spec.subclass;
    t.expansion_limit = limits.max_expanded_bytes;
    t.quantization = match spec.quantization.map(|q| *q) {
        None => None,
        Some(q) => Some(Box::new(match q {
            QuantSpec::PerTensor {
                scheme,
                scale,
                zero_point,
            } => Quantization::PerTensor {
                scheme,
                scale,
                zero_point,
            },
            QuantSpec::PerChannel {
                scheme,
                scales,
                zero_points,
                axis,
            } => Quantization::PerChannel {
                scheme,
                scales: Box::new(make_view(*scales, storages, byte_order, limits)?),
                zero_points: Box::new(make_view(*zero_points, storages, byte_order, limits)?),
                axis,
            },
        })),
    };
    Ok(t)
}

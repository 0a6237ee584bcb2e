//! From specs to views: storages get their bytes, tensors become [`TensorView`]s.

use std::collections::{BTreeMap, HashMap};

use super::spec::{Data, QuantSpec, TensorSpec, Work};
use super::storage::Backing;
use crate::container::{RootRequest, StorageSource};
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
}

static NO_TABLES: Tables<'static> = Tables {
    tensors: Vec::new(),
    storages: Vec::new(),
    attributes: BTreeMap::new(),
    invalid: Vec::new(),
    warnings: Vec::new(),
    sparse: Vec::new(),
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
    byte_order: ByteOrder,
    limits: &Limits,
) -> Result<Tables<'data>> {
    let bytes = storage_bytes(&work, source, pickle_len)?;
    let units = swap_units(&work, byte_order)?;
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
    for (spec, unit) in work.tensors.iter().zip(units) {
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
    })
}

/// The bytes of every storage: roots from the container, the rest from their roots.
fn storage_bytes<'data>(
    work: &Work,
    source: &mut dyn StorageSource<'data>,
    pickle_len: usize,
) -> Result<Vec<SharedBytes<'data>>> {
    let roots: Vec<(usize, RootRequest<'_>)> = work
        .storages
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match &s.backing {
            Backing::Root(key) => Some((
                i,
                RootRequest {
                    key,
                    nbytes: s.nbytes,
                    element_size: s.dtype.size(),
                },
            )),
            _ => None,
        })
        .collect();
    let requests: Vec<RootRequest<'_>> = roots.iter().map(|(_, r)| r.clone()).collect();
    let resolved = source.resolve(pickle_len, &requests)?;
    let mut from_root: HashMap<usize, SharedBytes<'data>> = roots.iter().map(|(i, _)| *i).zip(resolved).collect();
    let mut out: Vec<SharedBytes<'data>> = Vec::with_capacity(work.storages.len());
    for (i, s) in work.storages.iter().enumerate() {
        // Storages refer only to storages made before them.
        let bytes = match &s.backing {
            Backing::Root(_) => from_root.remove(&i),
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

/// The bytes each tensor's elements are swapped by, in a big-endian archive.
///
/// torch swaps each storage once, when its first persistent id loads it, by that id's dtype
/// (`storage.byteswap(dtype)`): by nothing for an `UntypedStorage` (dtype uint8), and a
/// storage met again with another dtype of the same size is the same, already swapped, bytes.
/// This reader gives the same reading for typed storages: every tensor over one is swapped by
/// the storage's element size, whatever its own dtype; and for tensors of the dtypes that have
/// a typed storage over an `UntypedStorage` (which torch's writer never makes), torch's
/// unswapped bytes. torch's writer saves the other dtypes (uint16/32/64, complex32, float8:
/// the "v3" dtypes) over an `UntypedStorage`, which torch then never swaps, misreading its own
/// files; for those this reader swaps by the tensor's element size and gives the values that
/// were saved (see `docs/design.md`) — unless such tensors of two element sizes view one
/// storage, where no single answer exists and the archive is refused.
fn swap_units(work: &Work, byte_order: ByteOrder) -> Result<Vec<Option<usize>>> {
    if byte_order != ByteOrder::Big {
        return Ok(vec![None; work.tensors.len()]);
    }
    // The unit torch applied to a storage's bytes; `None` for an untyped root (per tensor).
    let applied = |index: u32| -> (u32, Option<usize>) {
        let Some(s) = work.storage(index) else {
            return (index, None);
        };
        match &s.backing {
            Backing::Same(of) => {
                let root = work.storage(*of);
                let unit = root.map_or(1, |r| if r.untyped { 1 } else { r.dtype.swap_unit() });
                (*of, Some(unit))
            }
            _ if s.untyped => (index, None),
            _ => (index, Some(s.dtype.swap_unit())),
        }
    };
    let mut per_tensor: HashMap<u32, usize> = HashMap::new();
    let mut units = Vec::with_capacity(work.tensors.len());
    for t in &work.tensors {
        let Data::Storage(index) = t.data else {
            units.push(None);
            continue;
        };
        let (root, unit) = applied(index);
        let own = match t.dtype().storage_name() {
            Some(_) => 1,
            None => t.dtype().swap_unit(),
        };
        if unit.is_none() && own > 1 && t.layout.numel > 0 && *per_tensor.entry(root).or_insert(own) != own {
            let key = work.storage(root).map(|s| s.key.to_string()).unwrap_or_default();
            return Err(Error::from(ErrorKind::InvalidStorage {
                key,
                reason: format!(
                    "a big-endian untyped storage viewed with elements of {own} bytes and of another size: \
                     which bytes to swap is ambiguous"
                ),
            }));
        }
        units.push(Some(unit.unwrap_or(own)));
    }
    Ok(units)
}

fn make_view<'data>(
    spec: &TensorSpec,
    storages: &[Storage<'data>],
    byte_order: ByteOrder,
    limits: &Limits,
) -> Result<TensorView<'data>> {
    let mut t = match &spec.data {
        Data::Storage(i) => match storages.get(*i as usize) {
            Some(storage) => TensorView::over(spec.layout.clone(), storage, byte_order),
            None => TensorView::without_data(spec.layout.clone(), byte_order),
        },
        Data::Owned(bytes) => {
            let mut t = TensorView::without_data(spec.layout.clone(), ByteOrder::Little);
            t.data = Some(bytes.clone());
            t
        }
        Data::Meta => TensorView::without_data(spec.layout.clone(), byte_order),
        Data::Converted(source) => {
            let source = make_view(source, storages, byte_order, limits)?;
            let bytes = super::convert::converted(&source, &spec.layout)?;
            let mut t = TensorView::without_data(spec.layout.clone(), ByteOrder::Little);
            t.data = Some(SharedBytes::from(bytes));
            t
        }
    };
    t.requires_grad = spec.requires_grad;
    t.is_parameter = spec.is_parameter;
    t.conj = spec.conj;
    t.neg = spec.neg;
    t.subclass = spec.subclass.clone();
    t.expansion_limit = limits.max_expanded_bytes;
    t.quantization = match &spec.quantization {
        None => None,
        Some(q) => Some(Box::new(match q {
            QuantSpec::PerTensor {
                scheme,
                scale,
                zero_point,
            } => Quantization::PerTensor {
                scheme: scheme.clone(),
                scale: *scale,
                zero_point: *zero_point,
            },
            QuantSpec::PerChannel {
                scheme,
                scales,
                zero_points,
                axis,
            } => Quantization::PerChannel {
                scheme: scheme.clone(),
                scales: Box::new(make_view(scales, storages, byte_order, limits)?),
                zero_points: Box::new(make_view(zero_points, storages, byte_order, limits)?),
                axis: *axis,
            },
        })),
    };
    Ok(t)
}

//! From specs to views: storages get their bytes, tensors become [`TensorView`]s.

use std::collections::{BTreeMap, HashMap};

use super::spec::{Data, QuantSpec, TensorSpec, Work};
use super::storage::Backing;
use crate::container::{RootRequest, StorageSource};
use crate::pickle::ValueId;
use crate::tensor::{ByteOrder, Quantization, Storage, TensorView};
use crate::{Error, Limits, Result, SharedBytes};

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
}

static NO_TABLES: Tables<'static> = Tables {
    tensors: Vec::new(),
    storages: Vec::new(),
    attributes: BTreeMap::new(),
    invalid: Vec::new(),
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
    if byte_order == ByteOrder::Big {
        check_swaps(&work)?;
    }
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
    let view = |spec: &TensorSpec| make_view(spec, &storages, byte_order, limits);
    let tensors = work.tensors.iter().map(view).collect();
    Ok(Tables {
        tensors,
        attributes: work.attributes.into_iter().collect(),
        invalid: work.invalid,
        storages,
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
        out.push(bytes.ok_or_else(|| Error::InvalidStorage {
            key: s.key.to_string(),
            reason: "its bytes could not be found".into(),
        })?);
    }
    Ok(out)
}

/// A big-endian archive is read by swapping each tensor's elements by its own element size;
/// torch swaps each storage once, by the dtype of its first persistent id (not at all for an
/// `UntypedStorage`). The two agree only when every tensor over a typed storage has that
/// storage's swap size, and the tensors over an untyped one share one size (whose true values
/// this reader gives, where torch leaves them unswapped: see `docs/design.md`). Anything else
/// is ambiguous and refused.
fn check_swaps(work: &Work) -> Result<()> {
    // The root each storage's bytes were swapped with, and the unit torch applied (None: none,
    // this reader swaps per tensor).
    let applied = |index: u32| -> (u32, Option<usize>) {
        let Some(s) = work.storage(index) else {
            return (index, None);
        };
        match &s.backing {
            Backing::Same(of) => {
                let root = work.storage(*of);
                let unit = root.map(|r| if r.untyped { 1 } else { r.dtype.swap_unit() });
                (*of, unit)
            }
            _ if s.untyped => (index, None),
            _ => (index, Some(s.dtype.swap_unit())),
        }
    };
    let mut per_tensor: HashMap<u32, usize> = HashMap::new();
    for t in &work.tensors {
        let Data::Storage(index) = t.data else { continue };
        if t.layout.numel == 0 {
            continue;
        }
        let unit = t.dtype().swap_unit();
        let (root, applied) = applied(index);
        let consistent = match applied {
            Some(u) => u == unit,
            None => *per_tensor.entry(root).or_insert(unit) == unit,
        };
        if !consistent {
            let key = work.storage(root).map(|s| s.key.to_string()).unwrap_or_default();
            return Err(Error::InvalidStorage {
                key,
                reason: format!(
                    "a big-endian storage viewed with elements of {unit} bytes and of another size: \
                     which bytes to swap is ambiguous"
                ),
            });
        }
    }
    Ok(())
}

fn make_view<'data>(
    spec: &TensorSpec,
    storages: &[Storage<'data>],
    byte_order: ByteOrder,
    limits: &Limits,
) -> TensorView<'data> {
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
    };
    t.requires_grad = spec.requires_grad;
    t.is_parameter = spec.is_parameter;
    t.conj = spec.conj;
    t.neg = spec.neg;
    t.subclass = spec.subclass.clone();
    t.expansion_limit = limits.max_expanded_bytes;
    t.quantization = spec.quantization.as_ref().map(|q| {
        Box::new(match q {
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
                scales: Box::new(make_view(scales, storages, byte_order, limits)),
                zero_points: Box::new(make_view(zero_points, storages, byte_order, limits)),
                axis: *axis,
            },
        })
    });
    t
}

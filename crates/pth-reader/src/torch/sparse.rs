//! Sparse tensors as torch's `weights_only` loader checks them.
//!
//! `_rebuild_sparse_tensor` builds the tensor without checking its invariants
//! (`check_invariants=False`), but checks the parts' shapes and dtypes; when the load ends,
//! `_validate_loaded_sparse_tensors(weights_only=True)` checks the invariants, reading the
//! indices: COO indices inside the size (and sorted and unique when the tensor claims to be
//! coalesced); compressed indices starting at 0, non-decreasing, ending at the number of
//! elements, with sorted, distinct plain indices inside the size. A file that fails either is
//! refused, as torch refuses it. Batched compressed tensors are refused as unsupported.

use super::handler::TorchHandler;
use super::spec::TensorSpec;
use super::tables::Tables;
use crate::pickle::call::{raise, Failure};
use crate::pickle::tree::{Node, Tree, ValueId};
use crate::tensor::TensorView;
use crate::{DType, Error, ErrorKind, Result};

/// A sparse tensor awaiting validation: its dict node and its layout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    pub(crate) node: ValueId,
    pub(crate) layout: &'static str,
}

impl TorchHandler<'_> {
    /// The shape and dtype checks `sparse_coo_tensor` / `sparse_compressed_tensor` make.
    pub(super) fn check_sparse_parts(&self, tree: &Tree<'_>, layout: &str, items: &[ValueId]) -> Result<(), Failure> {
        let tensor = |i: usize, what: &str| self.tensor_arg(tree, items.get(i).copied(), what);
        let size = self.dims(
            tree,
            items.get(if layout == "sparse_coo" { 2 } else { 3 }).copied(),
            "size",
        )?;
        if size.iter().any(|&s| s < 0) {
            return raise("sparse tensor size has a negative dimension");
        }
        if layout == "sparse_coo" {
            let (indices, values) = (tensor(0, "indices")?, tensor(1, "values")?);
            return coo_shapes(&indices, &values, &size);
        }
        let (compressed, plain, values) = (
            tensor(0, "compressed indices")?,
            tensor(1, "plain indices")?,
            tensor(2, "values")?,
        );
        compressed_shapes(layout, &compressed, &plain, &values, &size)
    }
}

fn coo_shapes(indices: &TensorSpec, values: &TensorSpec, size: &[i64]) -> Result<(), Failure> {
    if indices.dtype() != DType::Int64 {
        return raise("indices must be an int64 tensor");
    }
    let (ishape, vshape) = (&indices.layout.shape, &values.layout.shape);
    let [sparse_dim, nnz] = **ishape else {
        return raise(format!("indices must be sparse_dim x nnz, but got: {ishape:?}"));
    };
    let Some((&vnnz, dense)) = vshape.split_first() else {
        return Err(Failure::Error(Error::from(ErrorKind::Unsupported {
            what: "a sparse tensor with zero-dimensional values".into(),
        })));
    };
    if vnnz != nnz {
        return raise(format!(
            "indices and values must have same nnz, but got nnz from indices: {nnz}, nnz from values: {vnnz}"
        ));
    }
    if size.len() != sparse_dim + dense.len() {
        return raise(format!(
            "number of dimensions must be sparse_dim ({sparse_dim}) + dense_dim ({}), but got {}",
            dense.len(),
            size.len()
        ));
    }
    let dense_size = size.get(sparse_dim..).unwrap_or_default();
    if dense_size.iter().zip(dense).any(|(&s, &d)| s as usize != d) {
        return raise("values has incorrect size for the sparse tensor's dense dimensions");
    }
    Ok(())
}

/// `(rows, columns)` dimension indices of the compressed and plain indices' axes.
fn compressed_axes(layout: &str) -> (usize, usize) {
    match layout {
        "sparse_csr" | "sparse_bsr" => (0, 1),
        _ => (1, 0),
    }
}

fn compressed_shapes(
    layout: &str,
    compressed: &TensorSpec,
    plain: &TensorSpec,
    values: &TensorSpec,
    size: &[i64],
) -> Result<(), Failure> {
    if !matches!(compressed.dtype(), DType::Int32 | DType::Int64) || compressed.dtype() != plain.dtype() {
        return raise("compressed and plain indices must be int32 or int64 tensors of one dtype");
    }
    let ([ncompressed], [nnz]) = (&*compressed.layout.shape, &*plain.layout.shape) else {
        return Err(Failure::Error(Error::from(ErrorKind::Unsupported {
            what: "a batched compressed sparse tensor".into(),
        })));
    };
    let blocked = matches!(layout, "sparse_bsr" | "sparse_bsc");
    let block_dims = if blocked { 2 } else { 0 };
    let vshape = &values.layout.shape;
    if vshape.first() != Some(nnz) || vshape.len() < 1 + block_dims || size.len() != 2 + vshape.len() - 1 - block_dims {
        return raise(format!(
            "values of shape {vshape:?} do not fit a {layout} tensor of size {size:?}"
        ));
    }
    let (compressed_axis, _) = compressed_axes(layout);
    let block = if blocked {
        vshape.get(1 + compressed_axis).copied().unwrap_or(1)
    } else {
        1
    };
    let extent = size.get(compressed_axis).copied().unwrap_or(0) as usize;
    if block == 0 || extent % block != 0 || *ncompressed != extent / block + 1 {
        return raise(format!(
            "{layout}: compressed indices must have length {} + 1",
            extent / block.max(1)
        ));
    }
    Ok(())
}

/// `_validate_loaded_sparse_tensors(weights_only=True)` over every sparse tensor made.
pub(crate) fn validate(tree: &Tree<'_>, tables: &Tables<'_>, pending: &[Pending]) -> Result<()> {
    for p in pending {
        let Node::Dict(d) = tree.node(p.node) else { continue };
        let part = |i: usize| d.items.get(i).map(|&(_, v)| v);
        let view = |i: usize| -> Option<&TensorView<'_>> {
            match part(i).map(|v| tree.node(v)) {
                Some(Node::Tensor(t)) => tables.tensors.get(*t as usize),
                _ => None,
            }
        };
        let size: Vec<i64> = part(if p.layout == "sparse_coo" { 2 } else { 3 })
            .and_then(|s| tree.seq(s))
            .map(|s| s.iter().filter_map(|&d| tree.as_int(d)).collect())
            .unwrap_or_default();
        let (Some(first), Some(second)) = (view(0), view(1)) else {
            continue;
        };
        let problem = if p.layout == "sparse_coo" {
            let coalesced = part(3).is_some_and(|c| matches!(tree.node(c), Node::Bool(true)));
            coo_problem(first, &size, coalesced)?
        } else {
            // Blocked layouts index blocks: values are `[nnz, block rows, block columns, ...]`.
            let (_, plain_axis) = compressed_axes(p.layout);
            let blocked = matches!(p.layout, "sparse_bsr" | "sparse_bsc");
            let block = match view(2) {
                Some(values) if blocked => values.shape().get(1 + plain_axis).copied().unwrap_or(1).max(1),
                _ => 1,
            };
            let bound = size.get(plain_axis).copied().unwrap_or(0) / block as i64;
            compressed_problem(p.layout, first, second, bound)?
        };
        if let Some(reason) = problem {
            return Err(ErrorKind::InvalidTensor {
                reason: format!("a {} tensor: {reason}", p.layout),
            }
            .into());
        }
    }
    Ok(())
}

fn coo_problem(indices: &TensorView<'_>, size: &[i64], coalesced: bool) -> Result<Option<String>> {
    let values = indices.to_vec::<i64>()?;
    let (sparse_dim, nnz) = match indices.shape() {
        [s, n] => (*s, *n),
        _ => return Ok(None),
    };
    for d in 0..sparse_dim {
        let bound = size.get(d).copied().unwrap_or(0);
        for &index in values.get(d * nnz..(d + 1) * nnz).unwrap_or_default() {
            if index < 0 {
                return Ok(Some(format!("found negative index {index} for dim {d}")));
            }
            if index >= bound {
                return Ok(Some(format!(
                    "size is inconsistent with indices: for dim {d}, size is {bound} but found index {index}"
                )));
            }
        }
    }
    if coalesced {
        // Sorted and unique: each column's indices, read as a number in mixed radix, increase.
        let values = &values;
        let key = |j: usize| (0..sparse_dim).map(move |d| values.get(d * nnz + j).copied().unwrap_or(0));
        for j in 1..nnz {
            if key(j - 1).cmp(key(j)) != std::cmp::Ordering::Less {
                return Ok(Some(
                    "the tensor claims to be coalesced but its indices are not sorted and unique".into(),
                ));
            }
        }
    }
    Ok(None)
}

fn indices_of(t: &TensorView<'_>) -> Result<Vec<i64>> {
    Ok(match t.dtype() {
        DType::Int32 => t.to_vec::<i32>()?.into_iter().map(i64::from).collect(),
        _ => t.to_vec::<i64>()?,
    })
}

/// Compressed indices from 0 to nnz, non-decreasing; plain indices in `0..bound`, sorted and
/// distinct within each compressed row.
fn compressed_problem(
    layout: &str,
    compressed: &TensorView<'_>,
    plain: &TensorView<'_>,
    bound: i64,
) -> Result<Option<String>> {
    let (c, p) = (indices_of(compressed)?, indices_of(plain)?);
    let nnz = p.len() as i64;
    if c.first().is_some_and(|&f| f != 0) {
        return Ok(Some(format!("{layout}: compressed indices must start with 0")));
    }
    if c.last().is_some_and(|&l| l != nnz) {
        return Ok(Some(format!(
            "{layout}: the last compressed index must equal nnz ({nnz})"
        )));
    }
    for row in c.windows(2) {
        let &[start, end] = row else { continue };
        if end < start {
            return Ok(Some(format!("{layout}: compressed indices must be non-decreasing")));
        }
        let segment = p
            .get(usize::try_from(start).unwrap_or(0)..usize::try_from(end).unwrap_or(0))
            .unwrap_or_default();
        if segment.iter().any(|&i| i < 0 || i >= bound) {
            return Ok(Some(format!("{layout}: plain indices must be in range")));
        }
        if segment.windows(2).any(|w| matches!(w, [a, b] if a >= b)) {
            return Ok(Some(format!(
                "{layout}: plain indices in a row must be sorted and distinct"
            )));
        }
    }
    Ok(None)
}

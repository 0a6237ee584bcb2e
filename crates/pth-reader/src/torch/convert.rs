//! `Tensor.to(dtype)` for real dtypes, as `_rebuild_device_tensor_from_cpu_tensor` calls it:
//! a new tensor with `torch.preserve_format` strides and every element cast as C++
//! `static_cast` casts it (floats truncate toward zero into integers, integers wrap into
//! narrower ones, float16/bfloat16 are made from a float). A float that does not fit the
//! integer type is undefined behaviour in C++: refused, not guessed.

use super::spec::{self, contiguous_strides};
use crate::tensor::{Layout, LayoutError, TensorView};
use crate::{DType, Error, ErrorKind, Limits, Result};

/// Whether `to` can make a `target` from a `source` tensor here.
pub(crate) fn convertible(source: DType, target: DType) -> bool {
    decodes(source) && decodes(target)
}

fn decodes(dtype: DType) -> bool {
    matches!(
        dtype,
        DType::Float64
            | DType::Float32
            | DType::Float16
            | DType::BFloat16
            | DType::Int8
            | DType::Int16
            | DType::Int32
            | DType::Int64
            | DType::UInt8
            | DType::UInt16
            | DType::UInt32
            | DType::UInt64
            | DType::Bool
    )
}

/// The layout of `source.to(dtype)`: the same strides (at offset 0) when `source` is dense
/// without overlap, else contiguous (`torch.preserve_format`).
pub(crate) fn preserved_layout(
    source: &Layout,
    dtype: DType,
    limits: &Limits,
) -> std::result::Result<Layout, LayoutError> {
    let shape: Vec<i64> = source.shape.iter().map(|&s| s as i64).collect();
    let stride: super::spec::Dims = if is_dense(source) {
        source.stride.iter().map(|&s| s as i64).collect()
    } else {
        contiguous_strides(&shape)
    };
    spec::layout(dtype, &shape, &stride, 0, None, limits)
}

/// torch's `is_non_overlapping_and_dense`: some order of the dimensions is contiguous.
fn is_dense(layout: &Layout) -> bool {
    let mut dims: Vec<(usize, usize)> = layout
        .shape
        .iter()
        .zip(layout.stride.iter())
        .filter(|(&size, _)| size != 1)
        .map(|(&size, &stride)| (stride, size))
        .collect();
    dims.sort_unstable();
    let mut expected = 1usize;
    for (stride, size) in dims {
        if stride != expected {
            return false;
        }
        expected = expected.saturating_mul(size);
    }
    true
}

/// One element as C++ holds it before the cast.
#[derive(Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

fn read(dtype: DType, bytes: &[u8]) -> Num {
    let array = |n: usize| -> [u8; 8] {
        let mut out = [0u8; 8];
        for (o, b) in out.iter_mut().zip(bytes.iter().take(n)) {
            *o = *b;
        }
        out
    };
    let le = array(8);
    match dtype {
        DType::Float64 => Num::Float(f64::from_le_bytes(le)),
        DType::Float32 => Num::Float(f64::from(f32::from_le_bytes([le[0], le[1], le[2], le[3]]))),
        DType::Float16 => Num::Float(f64::from(half::f16::from_le_bytes([le[0], le[1]]))),
        DType::BFloat16 => Num::Float(f64::from(half::bf16::from_le_bytes([le[0], le[1]]))),
        DType::Int8 => Num::Int(i128::from(le[0] as i8)),
        DType::Int16 => Num::Int(i128::from(i16::from_le_bytes([le[0], le[1]]))),
        DType::Int32 => Num::Int(i128::from(i32::from_le_bytes([le[0], le[1], le[2], le[3]]))),
        DType::Int64 => Num::Int(i128::from(i64::from_le_bytes(le))),
        DType::UInt16 => Num::Int(i128::from(u16::from_le_bytes([le[0], le[1]]))),
        DType::UInt32 => Num::Int(i128::from(u32::from_le_bytes([le[0], le[1], le[2], le[3]]))),
        DType::UInt64 => Num::Int(i128::from(u64::from_le_bytes(le))),
        DType::Bool => Num::Int(i128::from(le[0] != 0)),
        _ => Num::Int(i128::from(le[0])),
    }
}

/// Appends `value` cast to `dtype`; `false` when the cast is undefined (a float out of range).
fn write(value: Num, dtype: DType, out: &mut Vec<u8>) -> bool {
    let float = |v: Num| match v {
        Num::Float(f) => f,
        Num::Int(i) => i as f64,
    };
    match dtype {
        DType::Float64 => out.extend_from_slice(&float(value).to_le_bytes()),
        DType::Float32 => {
            let f = match value {
                Num::Float(f) => f as f32,
                Num::Int(i) => i as f32,
            };
            out.extend_from_slice(&f.to_le_bytes());
        }
        DType::Float16 => out.extend_from_slice(&half::f16::from_f32(float(value) as f32).to_le_bytes()),
        DType::BFloat16 => out.extend_from_slice(&half::bf16::from_f32(float(value) as f32).to_le_bytes()),
        DType::Bool => out.push(u8::from(match value {
            Num::Float(f) => f != 0.0,
            Num::Int(i) => i != 0,
        })),
        _ => {
            let bits = match value {
                // Integers wrap (two's complement truncation).
                Num::Int(i) => i,
                Num::Float(f) => {
                    let (min, end) = int_range(dtype);
                    let whole = f.trunc();
                    if !(whole >= min && whole < end) {
                        return false;
                    }
                    whole as i128
                }
            };
            out.extend_from_slice(bits.to_le_bytes().get(..dtype.size()).unwrap_or_default());
        }
    }
    true
}

/// The smallest value of an integer dtype and one past its largest, both exact as floats.
fn int_range(dtype: DType) -> (f64, f64) {
    let bits = (dtype.size() * 8) as i32;
    match dtype {
        DType::UInt8 | DType::UInt16 | DType::UInt32 | DType::UInt64 => (0.0, 2f64.powi(bits)),
        _ => (-(2f64.powi(bits - 1)), 2f64.powi(bits - 1)),
    }
}

/// The bytes of `target` (a layout from [`preserved_layout`]) holding `source`'s elements cast.
pub(crate) fn converted(source: &TensorView<'_>, target: &Layout) -> Result<Vec<u8>> {
    let logical = source.to_le_bytes()?;
    let (from, to) = (source.dtype(), target.dtype);
    let mut cast = Vec::new();
    cast.try_reserve_exact(target.numel.saturating_mul(to.size()))
        .map_err(|_| {
            Error::from(ErrorKind::OutOfMemory {
                bytes: (target.numel as u64).saturating_mul(to.size() as u64),
            })
        })?;
    for element in logical.chunks_exact(from.size()) {
        if !write(read(from, element), to, &mut cast) {
            return Err(Error::from(ErrorKind::Unsupported {
                what: format!("converting {from} to {to}: a value out of {to}'s range (undefined in torch)"),
            }));
        }
    }
    if target.is_contiguous() {
        return Ok(cast);
    }
    // Same strides as the source: put each element (C order) at its place.
    let size = to.size();
    let mut out = Vec::new();
    out.try_reserve_exact(cast.len()).map_err(|_| {
        Error::from(ErrorKind::OutOfMemory {
            bytes: cast.len() as u64,
        })
    })?;
    out.resize(cast.len(), 0);
    let mut next = cast.chunks_exact(size);
    target.try_for_each_run(|first, count| {
        for k in 0..count {
            let at = (first + k) * size;
            if let (Some(slot), Some(element)) = (out.get_mut(at..at + size), next.next()) {
                slot.copy_from_slice(element);
            }
        }
        Ok::<(), Error>(())
    })?;
    Ok(out)
}

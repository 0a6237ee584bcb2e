//! numpy arrays, scalars and dtypes rebuilt from their pickled form, without numpy.
//!
//! numpy pickles an array in one of three ways, all of which are recognised here:
//! - `numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')` followed by `BUILD` with the
//!   state `(1, shape, dtype, is_fortran, raw_bytes)` (older numpy: without the leading 1);
//! - `numpy.core.numeric._frombuffer(buffer, dtype, shape, order)` (protocol 5, numpy ≥ 1.23);
//! - `numpy.core.multiarray.scalar(dtype, raw_bytes)` for a scalar such as `np.int64(5)`.
//!
//! numpy 2 spells the modules `numpy._core.*`; both spellings are accepted. A dtype is
//! `numpy.dtype('f4', False, True)` followed by `BUILD` with a state whose second item is the
//! byte order (`<`, `>`, `|` or `=`). Arrays are converted to C order and little-endian once,
//! when decoded.

use std::fmt;

use pth_reader::{DType, Kind, Value};

use crate::decode::{invalid, Budget, Malformed};

/// The element type of a numpy array (the numeric dtypes that spaces and statistics use).
///
/// ```
/// use sb3_format::NpDType;
/// assert_eq!(NpDType::from_code("f4"), Some(NpDType::Float32));
/// assert_eq!(NpDType::Float32.name(), "float32");
/// assert_eq!(NpDType::Int64.size(), 8);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NpDType {
    /// `bool` (`b1`, `?`).
    Bool,
    /// `int8` (`i1`).
    Int8,
    /// `int16` (`i2`).
    Int16,
    /// `int32` (`i4`).
    Int32,
    /// `int64` (`i8`).
    Int64,
    /// `uint8` (`u1`).
    UInt8,
    /// `uint16` (`u2`).
    UInt16,
    /// `uint32` (`u4`).
    UInt32,
    /// `uint64` (`u8`).
    UInt64,
    /// `float16` (`f2`).
    Float16,
    /// `float32` (`f4`).
    Float32,
    /// `float64` (`f8`).
    Float64,
    /// `complex64` (`c8`): two float32.
    Complex64,
    /// `complex128` (`c16`): two float64.
    Complex128,
}

impl NpDType {
    /// The dtype for a numpy type code such as `f4`, `<i8`, `u1` or `b1`; `None` for codes this
    /// crate does not decode (objects, strings, records, datetimes, `float128`).
    pub fn from_code(code: &str) -> Option<NpDType> {
        let code = code.trim_start_matches(['<', '>', '=', '|']);
        Some(match code {
            "b1" | "?" | "bool" => NpDType::Bool,
            "i1" | "int8" => NpDType::Int8,
            "i2" | "int16" => NpDType::Int16,
            "i4" | "int32" => NpDType::Int32,
            "i8" | "int64" => NpDType::Int64,
            "u1" | "uint8" => NpDType::UInt8,
            "u2" | "uint16" => NpDType::UInt16,
            "u4" | "uint32" => NpDType::UInt32,
            "u8" | "uint64" => NpDType::UInt64,
            "f2" | "float16" => NpDType::Float16,
            "f4" | "float32" => NpDType::Float32,
            "f8" | "float64" => NpDType::Float64,
            "c8" | "complex64" => NpDType::Complex64,
            "c16" | "complex128" => NpDType::Complex128,
            _ => return None,
        })
    }

    /// numpy's name for it (`str(dtype)`): `float32`, `int64`, `bool`, ...
    pub fn name(self) -> &'static str {
        match self {
            NpDType::Bool => "bool",
            NpDType::Int8 => "int8",
            NpDType::Int16 => "int16",
            NpDType::Int32 => "int32",
            NpDType::Int64 => "int64",
            NpDType::UInt8 => "uint8",
            NpDType::UInt16 => "uint16",
            NpDType::UInt32 => "uint32",
            NpDType::UInt64 => "uint64",
            NpDType::Float16 => "float16",
            NpDType::Float32 => "float32",
            NpDType::Float64 => "float64",
            NpDType::Complex64 => "complex64",
            NpDType::Complex128 => "complex128",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            NpDType::Bool | NpDType::Int8 | NpDType::UInt8 => 1,
            NpDType::Int16 | NpDType::UInt16 | NpDType::Float16 => 2,
            NpDType::Int32 | NpDType::UInt32 | NpDType::Float32 => 4,
            NpDType::Int64 | NpDType::UInt64 | NpDType::Float64 | NpDType::Complex64 => 8,
            NpDType::Complex128 => 16,
        }
    }

    /// Whether it is `float16`, `float32` or `float64`.
    pub fn is_float(self) -> bool {
        matches!(self, NpDType::Float16 | NpDType::Float32 | NpDType::Float64)
    }

    /// Whether it is a signed or unsigned integer type (not `bool`).
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            NpDType::Int8
                | NpDType::Int16
                | NpDType::Int32
                | NpDType::Int64
                | NpDType::UInt8
                | NpDType::UInt16
                | NpDType::UInt32
                | NpDType::UInt64
        )
    }

    /// The torch dtype with the same elements: the one element decoder
    /// ([`DType::decode_f64`]) and byte-swapping rule serve numpy arrays too.
    pub fn dtype(self) -> DType {
        match self {
            NpDType::Bool => DType::Bool,
            NpDType::Int8 => DType::Int8,
            NpDType::Int16 => DType::Int16,
            NpDType::Int32 => DType::Int32,
            NpDType::Int64 => DType::Int64,
            NpDType::UInt8 => DType::UInt8,
            NpDType::UInt16 => DType::UInt16,
            NpDType::UInt32 => DType::UInt32,
            NpDType::UInt64 => DType::UInt64,
            NpDType::Float16 => DType::Float16,
            NpDType::Float32 => DType::Float32,
            NpDType::Float64 => DType::Float64,
            NpDType::Complex64 => DType::Complex64,
            NpDType::Complex128 => DType::Complex128,
        }
    }
}

impl fmt::Display for NpDType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A numpy array (or scalar, with an empty shape) decoded from a pickle: C order,
/// little-endian bytes.
///
/// ```
/// use pth_reader::{Options, Pickle};
/// use sb3_format::{NdArray, NpDType};
/// // pickle.dumps(np.array([1.5, -2.0], dtype=np.float32), protocol=5) with numpy 2
/// let bytes = b"\x80\x05\x95|\x00\x00\x00\x00\x00\x00\x00\x8c\x13numpy._core.numeric\x94\x8c\x0b_frombuffer\x94\x93\x94(\x96\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\xc0?\x00\x00\x00\xc0\x94\x8c\x05numpy\x94\x8c\x05dtype\x94\x93\x94\x8c\x02f4\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01<\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t\x94bK\x02\x85\x94\x8c\x01C\x94t\x94R\x94.";
/// let pickle = Pickle::parse(bytes, &Options::default().lenient(true))?;
/// let array = NdArray::from_value(pickle.root()).expect("a numpy array");
/// assert_eq!(array.dtype(), NpDType::Float32);
/// assert_eq!(array.shape(), &[2]);
/// assert_eq!(array.to_f64_vec(), Some(vec![1.5, -2.0]));
/// # Ok::<(), pth_reader::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NdArray {
    dtype: NpDType,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl NdArray {
    /// Builds an array from little-endian C-order bytes; `None` when `data` does not hold
    /// exactly `product(shape)` elements.
    pub fn from_le_bytes(dtype: NpDType, shape: Vec<usize>, data: Vec<u8>) -> Option<NdArray> {
        let expected = numel(&shape)?.checked_mul(dtype.size())?;
        (expected == data.len()).then_some(NdArray { dtype, shape, data })
    }

    /// Decodes a pickled numpy array or numpy scalar; `None` when `value` is not one, or is a
    /// kind this crate does not decode (object arrays, strings, records).
    pub fn from_value(value: Value<'_>) -> Option<NdArray> {
        parse_array(value).ok().flatten()?.build().ok()
    }

    /// The element type.
    pub fn dtype(&self) -> NpDType {
        self.dtype
    }

    /// The shape (empty for a scalar).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.size()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements as little-endian bytes in C order.
    pub fn as_le_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The elements in C order as `f64` (booleans as 0 and 1, integers converted with
    /// rounding beyond 2^53, floats widened exactly); `None` for complex arrays.
    pub fn to_f64_vec(&self) -> Option<Vec<f64>> {
        let dtype = self.dtype.dtype();
        self.data
            .chunks_exact(self.dtype.size())
            .map(|element| dtype.decode_f64(element))
            .collect()
    }

    /// The elements of a complex array in C order as `(re, im)` pairs of `f64`; `None` for
    /// real arrays.
    pub fn to_complex_vec(&self) -> Option<Vec<(f64, f64)>> {
        let part = match self.dtype {
            NpDType::Complex64 => DType::Float32,
            NpDType::Complex128 => DType::Float64,
            _ => return None,
        };
        self.data
            .chunks_exact(self.dtype.size())
            .map(|c| {
                let (re, im) = c.split_at(part.size());
                Some((part.decode_f64(re)?, part.decode_f64(im)?))
            })
            .collect()
    }

    /// The elements in C order as `i64`; `None` unless the dtype is an integer or `bool`
    /// type and every value fits.
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        let size = self.dtype.size();
        let convert: fn(&[u8]) -> Option<i64> = match self.dtype {
            NpDType::Bool => |b| Some(i64::from(b != [0])),
            NpDType::Int8 => |b| Some(i64::from(i8::from_le_bytes(arr(b)))),
            NpDType::Int16 => |b| Some(i64::from(i16::from_le_bytes(arr(b)))),
            NpDType::Int32 => |b| Some(i64::from(i32::from_le_bytes(arr(b)))),
            NpDType::Int64 => |b| Some(i64::from_le_bytes(arr(b))),
            NpDType::UInt8 => |b| Some(i64::from(u8::from_le_bytes(arr(b)))),
            NpDType::UInt16 => |b| Some(i64::from(u16::from_le_bytes(arr(b)))),
            NpDType::UInt32 => |b| Some(i64::from(u32::from_le_bytes(arr(b)))),
            NpDType::UInt64 => |b| i64::try_from(u64::from_le_bytes(arr(b))).ok(),
            _ => return None,
        };
        self.data.chunks_exact(size).map(convert).collect()
    }

    /// The single value of a scalar or one-element array as `f64`.
    pub fn scalar_f64(&self) -> Option<f64> {
        match self.to_f64_vec()?.as_slice() {
            [x] => Some(*x),
            _ => None,
        }
    }

    /// The single value of a scalar or one-element integer array as `i64`.
    pub fn scalar_i64(&self) -> Option<i64> {
        match self.to_i64_vec()?.as_slice() {
            [x] => Some(*x),
            _ => None,
        }
    }
}

/// The first `N` bytes of a chunk as an array (chunks always have the element size).
fn arr<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = bytes.get(..N) {
        out.copy_from_slice(src);
    }
    out
}

/// Product of a shape, or `None` on overflow.
fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// Whether `module` is numpy's `core.<tail>` under either spelling (`numpy.core` for numpy 1,
/// `numpy._core` for numpy 2).
pub(crate) fn is_numpy_module(module: &str, tail: &str) -> bool {
    module
        .strip_prefix("numpy.core.")
        .or_else(|| module.strip_prefix("numpy._core."))
        == Some(tail)
}

/// Decodes a pickled dtype (`numpy.dtype('f4', False, True)` + `BUILD`).
///
/// `Ok(None)` when `value` is not a dtype; `Err` when it is one this crate does not decode.
pub(crate) fn decode_dtype(value: Value<'_>) -> Result<Option<(NpDType, bool)>, Malformed> {
    let Some(obj) = value.as_object() else {
        return Ok(None);
    };
    if obj.class_name() != Some(("numpy", "dtype")) {
        return Ok(None);
    }
    let code = obj
        .args()
        .index(0)
        .and_then(|c| c.as_str())
        .ok_or("numpy.dtype without a type code")?;
    let dtype =
        NpDType::from_code(code).ok_or_else(|| Malformed::Unsupported(format!("unsupported dtype {code:?}")))?;
    // The state's second item is the byte order; a dtype without state is native (little).
    let order = obj.state().and_then(|s| s.index(1)).and_then(|o| o.as_str());
    let big_endian = match order {
        Some(">") => true,
        Some("<" | "|" | "=") | None => code.starts_with('>'),
        Some(other) => return invalid(format!("dtype {code:?} with byte order {other:?}")),
    };
    Ok(Some((dtype, big_endian)))
}

/// A pickled array found but not yet copied: its bytes still borrowed from the pickle.
pub(crate) struct RawArray<'a> {
    dtype: NpDType,
    big_endian: bool,
    shape: Vec<usize>,
    fortran: bool,
    data: &'a [u8],
}

impl RawArray<'_> {
    /// Number of elements (validated against the bytes by [`build`](Self::build)).
    pub(crate) fn numel(&self) -> usize {
        self.data.len() / self.dtype.size()
    }

    /// Copies the bytes into an [`NdArray`], checking them against the shape first.
    pub(crate) fn build(&self) -> Result<NdArray, Malformed> {
        build(self.dtype, self.big_endian, self.shape.clone(), self.fortran, self.data)
    }
}

/// Decodes a pickled numpy array or scalar, charging its elements to `budget`.
///
/// `Ok(None)` when `value` is not one of numpy's array reconstructions; `Err` with a reason
/// when it is one but malformed, of a kind this crate does not decode, or over budget.
pub(crate) fn decode_array(value: Value<'_>, budget: &mut Budget) -> Result<Option<NdArray>, Malformed> {
    match parse_array(value)? {
        None => Ok(None),
        Some(raw) => {
            budget.charge(raw.numel())?;
            raw.build().map(Some)
        }
    }
}

/// Finds a pickled numpy array or scalar without copying its bytes.
pub(crate) fn parse_array<'a>(value: Value<'a>) -> Result<Option<RawArray<'a>>, Malformed> {
    let Some(obj) = value.as_object() else {
        return Ok(None);
    };
    let Some((module, name)) = obj.class_name() else {
        return Ok(None);
    };
    let args = obj.args();
    let arg = |i: usize| args.index(i);
    if is_numpy_module(module, "multiarray") && name == "_reconstruct" {
        let state = obj.state().ok_or("ndarray without state")?;
        let items = state.as_seq().ok_or("ndarray state is not a tuple")?;
        // (version, shape, dtype, is_fortran, data); numpy < 1.x wrote it without the version.
        let offset = if items.len() >= 5 { 1 } else { 0 };
        let get = |i: usize| {
            items
                .get(i + offset)
                .ok_or_else(|| Malformed::Invalid(format!("ndarray state has {} items", items.len())))
        };
        let shape = shape_of(get(0)?)?;
        let (dtype, big_endian) = dtype_of(get(1)?)?;
        let fortran = get(2)?.as_bool().or_else(|| get(2).ok()?.as_i64().map(|i| i != 0));
        let data = get(3)?.as_bytes().ok_or_else(|| {
            Malformed::Unsupported("ndarray data is not bytes (object arrays are not decoded)".into())
        })?;
        return Ok(Some(RawArray {
            dtype,
            big_endian,
            shape,
            fortran: fortran.unwrap_or(false),
            data,
        }));
    }
    if is_numpy_module(module, "numeric") && name == "_frombuffer" {
        let data = arg(0)
            .and_then(|b| b.as_bytes())
            .ok_or("_frombuffer without a buffer")?;
        let (dtype, big_endian) = dtype_of(arg(1).ok_or("_frombuffer without a dtype")?)?;
        let shape = shape_of(arg(2).ok_or("_frombuffer without a shape")?)?;
        let fortran = arg(3).and_then(|o| o.as_str()) == Some("F");
        return Ok(Some(RawArray {
            dtype,
            big_endian,
            shape,
            fortran,
            data,
        }));
    }
    if is_numpy_module(module, "multiarray") && name == "scalar" {
        let (dtype, big_endian) = dtype_of(arg(0).ok_or("numpy scalar without a dtype")?)?;
        let data = arg(1).and_then(|b| b.as_bytes()).ok_or_else(|| {
            Malformed::Unsupported("numpy scalar without bytes (object scalars are not decoded)".into())
        })?;
        return Ok(Some(RawArray {
            dtype,
            big_endian,
            shape: Vec::new(),
            fortran: false,
            data,
        }));
    }
    Ok(None)
}

fn dtype_of(value: Value<'_>) -> Result<(NpDType, bool), Malformed> {
    decode_dtype(value)?.ok_or_else(|| "expected a numpy dtype".into())
}

fn shape_of(value: Value<'_>) -> Result<Vec<usize>, Malformed> {
    if let Some(d) = value.as_i64() {
        return usize::try_from(d)
            .map(|d| vec![d])
            .map_err(|_| Malformed::Invalid(format!("negative dimension {d}")));
    }
    let seq = value.as_seq().ok_or("shape is not a tuple")?;
    seq.iter()
        .map(|d| {
            d.as_i64()
                .and_then(|d| usize::try_from(d).ok())
                .ok_or_else(|| "shape holds a non-integer or negative dimension".into())
        })
        .collect()
}

/// Checks the byte count against the shape before copying, then normalises to C order and
/// little-endian.
fn build(
    dtype: NpDType,
    big_endian: bool,
    shape: Vec<usize>,
    fortran: bool,
    data: &[u8],
) -> Result<NdArray, Malformed> {
    let count = numel(&shape).ok_or("shape overflows")?;
    let expected = count.checked_mul(dtype.size()).ok_or("shape overflows")?;
    if expected != data.len() {
        return invalid(format!(
            "{} array of shape {shape:?} needs {expected} bytes, the pickle holds {}",
            dtype.name(),
            data.len()
        ));
    }
    let mut bytes = data.to_vec();
    if big_endian {
        let unit = dtype.dtype().swap_unit();
        for chunk in bytes.chunks_exact_mut(unit) {
            chunk.reverse();
        }
    }
    if fortran && shape.len() > 1 {
        bytes = fortran_to_c(&bytes, &shape, dtype.size());
    }
    Ok(NdArray {
        dtype,
        shape,
        data: bytes,
    })
}

/// Reorders elements stored in Fortran (column-major) order into C (row-major) order.
fn fortran_to_c(bytes: &[u8], shape: &[usize], size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    // Fortran strides, in elements: the first axis varies fastest.
    let mut strides = Vec::with_capacity(shape.len());
    let mut stride = 1usize;
    for &d in shape {
        strides.push(stride);
        stride = stride.saturating_mul(d);
    }
    let mut index = vec![0usize; shape.len()];
    let count = bytes.len() / size.max(1);
    for _ in 0..count {
        let offset: usize = index.iter().zip(&strides).map(|(i, s)| i.saturating_mul(*s)).sum();
        let start = offset.saturating_mul(size);
        if let Some(element) = bytes.get(start..start.saturating_add(size)) {
            out.extend_from_slice(element);
        }
        // Advance the C-order index: the last axis varies fastest.
        for (i, &d) in index.iter_mut().zip(shape).rev() {
            *i += 1;
            if *i < d {
                break;
            }
            *i = 0;
        }
    }
    out
}

/// A one-element numpy array or scalar, copied only when it has one element.
fn scalar_array(value: Value<'_>) -> Option<NdArray> {
    let raw = parse_array(value).ok().flatten()?;
    (raw.numel() == 1).then(|| raw.build().ok())?
}

/// An integer: a Python int or bool, or a numpy integer scalar (gymnasium stores
/// `Discrete.n` as `np.int64`).
pub(crate) fn int_of(value: Value<'_>) -> Option<i64> {
    value.as_i64().or_else(|| {
        let array = scalar_array(value)?;
        array.dtype().is_integer().then(|| array.scalar_i64())?
    })
}

/// A number: a Python int, float or bool, or a numpy numeric scalar.
pub(crate) fn float_of(value: Value<'_>) -> Option<f64> {
    value.as_f64().or_else(|| scalar_array(value)?.scalar_f64())
}

/// A boolean: Python `bool` or `numpy.bool_`.
pub(crate) fn bool_of(value: Value<'_>) -> Option<bool> {
    match value.kind() {
        Kind::Bool(b) => Some(b),
        _ => {
            let array = scalar_array(value)?;
            (array.dtype() == NpDType::Bool)
                .then(|| array.scalar_i64().map(|i| i != 0))
                .flatten()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_values() {
        let halves = [0x3c00u16, 0xc000, 0x7c00, 0x7e00, 0x0001];
        let bytes = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
        let array = NdArray::from_le_bytes(NpDType::Float16, vec![5], bytes).unwrap();
        let values = array.to_f64_vec().unwrap();
        assert_eq!(values[..3], [1.0, -2.0, f64::INFINITY]);
        assert!(values[3].is_nan());
        assert_eq!(values[4], 2f64.powi(-24));
    }

    #[test]
    fn fortran_order_is_transposed() {
        // shape (2, 3), Fortran order: columns stored first.
        let f = [0u8, 3, 1, 4, 2, 5];
        assert_eq!(fortran_to_c(&f, &[2, 3], 1), vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn sizes_are_checked_before_copying() {
        assert!(build(NpDType::Float32, false, vec![usize::MAX, 2], false, &[]).is_err());
        assert!(build(NpDType::Float32, false, vec![2], false, &[0; 7]).is_err());
        let big = build(NpDType::Int16, true, vec![1], false, &[1, 2]);
        assert_eq!(big.map(|a| a.to_i64_vec()), Ok(Some(vec![0x0102])));
        assert!(NdArray::from_le_bytes(NpDType::Int8, vec![3], vec![1, 2]).is_none());
    }

    #[test]
    fn module_spellings() {
        assert!(is_numpy_module("numpy.core.multiarray", "multiarray"));
        assert!(is_numpy_module("numpy._core.numeric", "numeric"));
        assert!(!is_numpy_module("numpyx.core.numeric", "numeric"));
    }
}

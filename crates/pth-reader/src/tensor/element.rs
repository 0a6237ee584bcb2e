//! Rust element types that tensors can be read as, and per-element decoding.

use half::{bf16, f16};

use crate::DType;

mod sealed {
    pub trait Sealed {}
}

/// A Rust type a tensor's elements can be read as with [`TensorView::to_vec`](crate::TensorView::to_vec).
///
/// The dtype must match exactly (no silent conversion): `f32` reads `float32`, `i8` reads
/// `int8` and `qint8` (quantized integers are read as their integer representation), `bool`
/// reads `bool`, `[f32; 2]` reads `complex64` as (real, imaginary). For conversions use
/// [`TensorView::to_f32_vec`](crate::TensorView::to_f32_vec).
pub trait Element: Copy + Send + Sync + 'static + sealed::Sealed {
    /// The Rust type's name, for error messages.
    const NAME: &'static str;
    /// Whether elements of `dtype` are this type.
    fn accepts(dtype: DType) -> bool;
    /// Decodes one element from exactly `size_of::<Self>()` little-endian bytes.
    fn from_le(bytes: &[u8]) -> Self;
    /// Appends the elements of `bytes` (whole little-endian elements) to `out`: one copy when
    /// the bytes can be viewed as `Self` as they are, element by element otherwise.
    #[doc(hidden)]
    fn extend_from_le(out: &mut Vec<Self>, bytes: &[u8]) {
        out.extend(
            bytes
                .chunks_exact(std::mem::size_of::<Self>())
                .map(<Self as Element>::from_le),
        );
    }
}

macro_rules! numeric {
    ($($t:ty => $($d:ident)|+;)*) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const NAME: &'static str = stringify!($t);
            fn accepts(dtype: DType) -> bool {
                matches!(dtype, $(DType::$d)|+)
            }
            fn from_le(bytes: &[u8]) -> Self {
                bytes.try_into().map(<$t>::from_le_bytes).unwrap_or_default()
            }
            fn extend_from_le(out: &mut Vec<Self>, bytes: &[u8]) {
                // On a little-endian machine aligned element bytes are the values (storages
                // in torch archives are 64-byte aligned): one `memcpy`.
                match bytemuck::try_cast_slice::<u8, $t>(bytes) {
                    Ok(values) if cfg!(target_endian = "little") => out.extend_from_slice(values),
                    _ => out.extend(bytes.chunks_exact(std::mem::size_of::<$t>()).map(<Self as Element>::from_le)),
                }
            }
        }
    )*};
}

numeric! {
    f64 => Float64;
    f32 => Float32;
    i8 => Int8 | QInt8;
    i16 => Int16;
    i32 => Int32 | QInt32;
    i64 => Int64;
    u8 => UInt8 | QUInt8;
    u16 => UInt16;
    u32 => UInt32;
    u64 => UInt64;
    f16 => Float16;
    bf16 => BFloat16;
}

impl sealed::Sealed for bool {}
impl Element for bool {
    const NAME: &'static str = "bool";
    fn accepts(dtype: DType) -> bool {
        dtype == DType::Bool
    }
    fn from_le(bytes: &[u8]) -> Self {
        bytes.first().is_some_and(|&b| b != 0)
    }
}

macro_rules! complex {
    ($($t:ty => $d:ident;)*) => {$(
        impl sealed::Sealed for [$t; 2] {}
        impl Element for [$t; 2] {
            const NAME: &'static str = concat!("[", stringify!($t), "; 2]");
            fn accepts(dtype: DType) -> bool {
                dtype == DType::$d
            }
            fn from_le(bytes: &[u8]) -> Self {
                let (re, im) = bytes.split_at(bytes.len() / 2);
                [<$t as Element>::from_le(re), <$t as Element>::from_le(im)]
            }
        }
    )*};
}

complex! {
    f32 => Complex64;
    f64 => Complex128;
    f16 => Complex32;
    bf16 => BComplex32;
}

impl DType {
    /// Decodes one little-endian element of this dtype as `f64` (floats including float8,
    /// integers, bool as 0/1, quantized integers as their representation); `None` for dtypes
    /// that are not real numbers (complex, packed sub-byte and opaque bit types). The one
    /// element decoder of this crate, for callers that hold raw element bytes (numpy arrays).
    ///
    /// ```
    /// use pth_reader::DType;
    /// assert_eq!(DType::Float16.decode_f64(&[0x00, 0x3c]), Some(1.0));
    /// assert_eq!(DType::Int16.decode_f64(&(-3i16).to_le_bytes()), Some(-3.0));
    /// assert_eq!(DType::Complex64.decode_f64(&[0; 8]), None);
    /// ```
    pub fn decode_f64(self, le_bytes: &[u8]) -> Option<f64> {
        real_to_f64(self, le_bytes)
    }
}

/// Decodes one little-endian element of a real dtype as `f64`, or `None` for dtypes that are
/// not real numbers (complex, packed sub-byte and opaque bit types).
pub(crate) fn real_to_f64(dtype: DType, bytes: &[u8]) -> Option<f64> {
    let byte = || bytes.first().copied().unwrap_or(0);
    Some(match dtype {
        DType::Float64 => <f64 as Element>::from_le(bytes),
        DType::Float32 => f64::from(<f32 as Element>::from_le(bytes)),
        DType::Float16 => f64::from(<f16 as Element>::from_le(bytes)),
        DType::BFloat16 => f64::from(<bf16 as Element>::from_le(bytes)),
        DType::Int8 | DType::QInt8 => f64::from(<i8 as Element>::from_le(bytes)),
        DType::Int16 => f64::from(<i16 as Element>::from_le(bytes)),
        DType::Int32 | DType::QInt32 => f64::from(<i32 as Element>::from_le(bytes)),
        DType::Int64 => <i64 as Element>::from_le(bytes) as f64,
        DType::UInt8 | DType::QUInt8 => f64::from(byte()),
        DType::UInt16 => f64::from(<u16 as Element>::from_le(bytes)),
        DType::UInt32 => f64::from(<u32 as Element>::from_le(bytes)),
        DType::UInt64 => <u64 as Element>::from_le(bytes) as f64,
        DType::Bool => f64::from(u8::from(byte() != 0)),
        DType::Float8E4M3Fn => f64::from(float8(byte(), 3, 7, Special::E4M3Fn)),
        DType::Float8E4M3Fnuz => f64::from(float8(byte(), 3, 8, Special::Fnuz)),
        DType::Float8E5M2 => f64::from(float8(byte(), 2, 15, Special::Ieee)),
        DType::Float8E5M2Fnuz => f64::from(float8(byte(), 2, 16, Special::Fnuz)),
        DType::Float8E8M0Fnu => match byte() {
            0xff => f64::NAN,
            e => 2f64.powi(i32::from(e) - 127),
        },
        _ => return None,
    })
}

/// Decodes the elements of one real dtype as `f32`, with the values (NaN bits included) of
/// `real_to_f64(..) as f32`, but a slice at a time: the per-dtype choice is made once, half
/// floats go through `half`'s slice conversions (F16C where the CPU has it) and one-byte dtypes
/// through a table of their 256 values.
pub(crate) enum F32Decoder {
    Float32,
    /// Half floats, with the instruction set chosen once, for every block.
    Float16(pulp::Arch),
    BFloat16(pulp::Arch),
    Byte(Box<[f32; 256]>),
    Other(DType),
}

/// Elements converted at a time through a buffer on the stack.
const BLOCK: usize = 1024;

impl F32Decoder {
    pub(crate) fn new(dtype: DType) -> Self {
        let as_f32 = |bytes: &[u8]| real_to_f64(dtype, bytes).map_or(f32::NAN, |v| v as f32);
        match dtype {
            DType::Float32 => F32Decoder::Float32,
            DType::Float16 => F32Decoder::Float16(pulp::Arch::new()),
            DType::BFloat16 => F32Decoder::BFloat16(pulp::Arch::new()),
            _ if dtype.size() == 1 => {
                let mut table = Box::new([0f32; 256]);
                for (byte, value) in (0..=255u8).zip(table.iter_mut()) {
                    *value = as_f32(&[byte]);
                }
                F32Decoder::Byte(table)
            }
            _ => F32Decoder::Other(dtype),
        }
    }

    /// Appends the elements of `bytes` (whole little-endian elements) to `out`.
    pub(crate) fn extend(&self, out: &mut Vec<f32>, bytes: &[u8]) {
        match self {
            F32Decoder::Float32 => f32::extend_from_le(out, bytes),
            // `half`'s slice conversion calls its F16C kernel through a function pointer for
            // every 8 elements; integer and float operations the compiler vectorises for this
            // CPU are faster, and exact.
            F32Decoder::Float16(arch) => extend_half::<f16>(out, bytes, |from, to| {
                arch.dispatch(
                    #[inline(always)]
                    || {
                        for (f, t) in from.iter().zip(to.iter_mut()) {
                            *t = f16_to_f32(f.to_bits());
                        }
                    },
                )
            }),
            F32Decoder::BFloat16(arch) => extend_half::<bf16>(out, bytes, |from, to| {
                // Compiled for the best instruction set of this CPU (AVX2, AVX-512), chosen at
                // run time: the shift vectorises 8 or 16 wide instead of SSE2's 4.
                arch.dispatch(
                    #[inline(always)]
                    || {
                        for (f, t) in from.iter().zip(to.iter_mut()) {
                            *t = bf16_to_f32(f.to_bits());
                        }
                    },
                )
            }),
            // A byte always indexes the 256 entries: the check compiles away.
            F32Decoder::Byte(table) => out.extend(
                bytes
                    .iter()
                    .map(|&b| table.get(usize::from(b)).copied().unwrap_or(f32::NAN)),
            ),
            F32Decoder::Other(dtype) => out.extend(
                bytes
                    .chunks_exact(dtype.size())
                    .map(|e| real_to_f64(*dtype, e).map_or(f32::NAN, |v| v as f32)),
            ),
        }
    }
}

/// Two-byte floats to `f32`, `BLOCK` at a time through `convert` (a slice conversion), or one
/// by one when the bytes are not aligned for `H`.
fn extend_half<H: Element + bytemuck::Pod + Into<f64>>(
    out: &mut Vec<f32>,
    bytes: &[u8],
    convert: impl Fn(&[H], &mut [f32]),
) {
    match bytemuck::try_cast_slice::<u8, H>(bytes) {
        Ok(values) if cfg!(target_endian = "little") => {
            let mut buffer = [0f32; BLOCK];
            for block in values.chunks(BLOCK) {
                let to = buffer.get_mut(..block.len()).unwrap_or_default();
                convert(block, to);
                out.extend_from_slice(to);
            }
        }
        _ => out.extend(bytes.chunks_exact(2).map(|e| H::from_le(e).into() as f32)),
    }
}

/// float16 bits to `f32` as `f16 → f64 → f32` gives them, without branches (the loop over a
/// slice vectorises): a finite half's exponent and mantissa moved to `f32`'s places and
/// rescaled by 2^112 (exact, subnormal halves included); infinities and NaNs given the
/// all-ones exponent, NaNs quieted.
#[inline(always)]
fn f16_to_f32(bits: u16) -> f32 {
    let h = u32::from(bits);
    let sign = (h & 0x8000) << 16;
    let magnitude = h & 0x7fff;
    let moved = magnitude << 13;
    let finite = (f32::from_bits(moved) * f32::from_bits(0x7780_0000)).to_bits();
    let special = moved | 0x7f80_0000 | (u32::from(magnitude > 0x7c00) << 22);
    f32::from_bits(if magnitude >= 0x7c00 { special } else { finite } | sign)
}

/// bfloat16 bits to `f32` as `bf16 → f64 → f32` gives them: the bits shifted up, NaNs quieted.
#[inline(always)]
fn bf16_to_f32(bits: u16) -> f32 {
    let wide = u32::from(bits) << 16;
    let nan = u32::from(wide & 0x7fff_ffff > 0x7f80_0000);
    f32::from_bits(wide | (nan << 22))
}

/// How an 8-bit float encodes infinities and NaNs.
#[derive(Clone, Copy)]
enum Special {
    /// IEEE: all-ones exponent is infinity (mantissa 0) or NaN.
    Ieee,
    /// `e4m3fn`: no infinity; only all-ones exponent and mantissa is NaN.
    E4M3Fn,
    /// `fnuz`: no infinity, no negative zero; the negative-zero pattern 0x80 is NaN.
    Fnuz,
}

fn float8(byte: u8, mantissa_bits: u32, bias: i32, special: Special) -> f32 {
    let exponent_mask = (1u8 << (7 - mantissa_bits)) - 1;
    let exponent = (byte >> mantissa_bits) & exponent_mask;
    let mantissa = byte & ((1u8 << mantissa_bits) - 1);
    let negative = byte & 0x80 != 0;
    match special {
        Special::Ieee if exponent == exponent_mask => {
            return match (mantissa, negative) {
                (0, false) => f32::INFINITY,
                (0, true) => f32::NEG_INFINITY,
                _ => f32::NAN,
            }
        }
        Special::E4M3Fn if byte & 0x7f == 0x7f => return f32::NAN,
        Special::Fnuz if byte == 0x80 => return f32::NAN,
        _ => {}
    }
    let scale = (1u32 << mantissa_bits) as f32;
    let magnitude = if exponent == 0 {
        f32::from(mantissa) / scale * 2f32.powi(1 - bias)
    } else {
        (1.0 + f32::from(mantissa) / scale) * 2f32.powi(i32::from(exponent) - bias)
    };
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_decoder_matches_the_f64_route_bit_for_bit() {
        let all: Vec<u8> = (0..=u16::MAX).flat_map(u16::to_le_bytes).collect();
        for dtype in [
            DType::Float16,
            DType::BFloat16,
            DType::Float8E4M3Fn,
            DType::Float8E5M2Fnuz,
            DType::Int8,
            DType::Int16,
        ] {
            let bytes = if dtype.size() == 1 { &all[..256] } else { &all[..] };
            let mut fast = Vec::new();
            F32Decoder::new(dtype).extend(&mut fast, bytes);
            // Unaligned: the element-by-element path.
            let mut unaligned = Vec::new();
            let shifted: Vec<u8> = std::iter::once(0).chain(bytes.iter().copied()).collect();
            F32Decoder::new(dtype).extend(&mut unaligned, &shifted[1..]);
            let slow: Vec<f32> = bytes
                .chunks_exact(dtype.size())
                .map(|e| real_to_f64(dtype, e).unwrap() as f32)
                .collect();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(&slow), "{dtype}");
            assert_eq!(bits(&unaligned), bits(&slow), "{dtype} unaligned");
        }
    }

    #[test]
    fn float8_reference_values() {
        // Values from the OCP 8-bit floating point spec tables.
        let e4m3 = |b| real_to_f64(DType::Float8E4M3Fn, &[b]);
        assert_eq!(e4m3(0x7e), Some(448.0));
        assert_eq!(e4m3(0x01), Some(2f64.powi(-9)));
        assert_eq!(e4m3(0xb8), Some(-1.0));
        assert!(e4m3(0xff).is_some_and(f64::is_nan));
        let e5m2 = |b| real_to_f64(DType::Float8E5M2, &[b]);
        assert_eq!(e5m2(0x7b), Some(57344.0));
        assert_eq!(e5m2(0x7c), Some(f64::INFINITY));
        assert!(e5m2(0x7d).is_some_and(f64::is_nan));
        assert_eq!(e5m2(0x3c), Some(1.0));
        let fnuz = |b| real_to_f64(DType::Float8E4M3Fnuz, &[b]);
        assert!(fnuz(0x80).is_some_and(f64::is_nan));
        assert_eq!(fnuz(0x7f), Some(240.0));
        assert_eq!(real_to_f64(DType::Float8E5M2Fnuz, &[0x7f]), Some(57344.0));
        assert_eq!(real_to_f64(DType::Float8E8M0Fnu, &[127]), Some(1.0));
        assert_eq!(real_to_f64(DType::Complex64, &[0; 8]), None);
    }
}

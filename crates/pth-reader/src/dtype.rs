//! Tensor element types, with torch's names and sizes.

#![forbid(unsafe_code)]

use std::fmt;

macro_rules! dtypes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $name:literal, $size:literal, $storage:expr; )*) => {
        /// A tensor element type, as torch names it.
        ///
        /// ```
        /// use pth_reader::DType;
        /// assert_eq!(DType::from_name("bfloat16"), Some(DType::BFloat16));
        /// assert_eq!(DType::BFloat16.size(), 2);
        /// assert_eq!(DType::from_storage_name("HalfStorage"), Some(DType::Float16));
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum DType {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl DType {
            /// Every dtype this crate knows.
            pub const ALL: &'static [DType] = &[$(DType::$variant,)*];

            /// torch's name without the `torch.` prefix (`float32`, `bfloat16`, ...).
            pub fn name(self) -> &'static str {
                match self { $( DType::$variant => $name, )* }
            }

            /// Bytes per element in a storage (sub-byte and packed types count whole bytes).
            pub fn size(self) -> usize {
                match self { $( DType::$variant => $size, )* }
            }

            /// The legacy storage class name (`FloatStorage`), for dtypes that have one.
            pub fn storage_name(self) -> Option<&'static str> {
                match self { $( DType::$variant => $storage, )* }
            }
        }
    };
}

dtypes! {
    /// IEEE double.
    Float64 = "float64", 8, Some("DoubleStorage");
    /// IEEE single.
    Float32 = "float32", 4, Some("FloatStorage");
    /// IEEE half.
    Float16 = "float16", 2, Some("HalfStorage");
    /// Brain float (8-bit exponent, 7-bit mantissa).
    BFloat16 = "bfloat16", 2, Some("BFloat16Storage");
    /// Signed 8-bit integer.
    Int8 = "int8", 1, Some("CharStorage");
    /// Signed 16-bit integer.
    Int16 = "int16", 2, Some("ShortStorage");
    /// Signed 32-bit integer.
    Int32 = "int32", 4, Some("IntStorage");
    /// Signed 64-bit integer.
    Int64 = "int64", 8, Some("LongStorage");
    /// Unsigned 8-bit integer.
    UInt8 = "uint8", 1, Some("ByteStorage");
    /// Unsigned 16-bit integer (always stored as an untyped storage).
    UInt16 = "uint16", 2, None;
    /// Unsigned 32-bit integer (always stored as an untyped storage).
    UInt32 = "uint32", 4, None;
    /// Unsigned 64-bit integer (always stored as an untyped storage).
    UInt64 = "uint64", 8, None;
    /// Boolean, one byte holding 0 or 1.
    Bool = "bool", 1, Some("BoolStorage");
    /// Complex of two float16 (real, imaginary).
    Complex32 = "complex32", 4, None;
    /// Complex of two float32 (real, imaginary).
    Complex64 = "complex64", 8, Some("ComplexFloatStorage");
    /// Complex of two float64 (real, imaginary).
    Complex128 = "complex128", 16, Some("ComplexDoubleStorage");
    /// Complex of two bfloat16 (real, imaginary).
    BComplex32 = "bcomplex32", 4, None;
    /// 8-bit float, 4-bit exponent, 3-bit mantissa, finite (NaN only).
    Float8E4M3Fn = "float8_e4m3fn", 1, None;
    /// 8-bit float, 4-bit exponent, 3-bit mantissa, finite, unsigned zero (NaN at 0x80).
    Float8E4M3Fnuz = "float8_e4m3fnuz", 1, None;
    /// 8-bit float, 5-bit exponent, 2-bit mantissa (IEEE-like).
    Float8E5M2 = "float8_e5m2", 1, None;
    /// 8-bit float, 5-bit exponent, 2-bit mantissa, finite, unsigned zero.
    Float8E5M2Fnuz = "float8_e5m2fnuz", 1, None;
    /// 8-bit power-of-two scale (exponent only, bias 127, NaN at 0xff).
    Float8E8M0Fnu = "float8_e8m0fnu", 1, None;
    /// Two 4-bit floats packed in a byte.
    Float4E2M1FnX2 = "float4_e2m1fn_x2", 1, None;
    /// Quantized signed 8-bit (integer representation).
    QInt8 = "qint8", 1, Some("QInt8Storage");
    /// Quantized unsigned 8-bit (integer representation).
    QUInt8 = "quint8", 1, Some("QUInt8Storage");
    /// Quantized signed 32-bit (integer representation).
    QInt32 = "qint32", 4, Some("QInt32Storage");
    /// Quantized unsigned 4-bit, two per byte.
    QUInt4x2 = "quint4x2", 1, Some("QUInt4x2Storage");
    /// Quantized unsigned 2-bit, four per byte.
    QUInt2x4 = "quint2x4", 1, Some("QUInt2x4Storage");
    /// Opaque 8 bits.
    Bits8 = "bits8", 1, None;
    /// Opaque 16 bits.
    Bits16 = "bits16", 2, None;
    /// Eight opaque bits.
    Bits1x8 = "bits1x8", 1, None;
    /// Four opaque 2-bit fields.
    Bits2x4 = "bits2x4", 1, None;
    /// Two opaque 4-bit fields.
    Bits4x2 = "bits4x2", 1, None;
}

impl DType {
    /// The dtype torch calls `name` (with or without `torch.`), including the aliases torch
    /// accepts (`float`, `double`, `half`, `long`, `int`, `short`, `cfloat`, `cdouble`, `chalf`).
    pub fn from_name(name: &str) -> Option<DType> {
        let name = name.strip_prefix("torch.").unwrap_or(name);
        let alias = match name {
            "float" => Some(DType::Float32),
            "double" => Some(DType::Float64),
            "half" => Some(DType::Float16),
            "long" => Some(DType::Int64),
            "int" => Some(DType::Int32),
            "short" => Some(DType::Int16),
            "cfloat" => Some(DType::Complex64),
            "cdouble" => Some(DType::Complex128),
            "chalf" => Some(DType::Complex32),
            _ => None,
        };
        alias.or_else(|| DType::ALL.iter().copied().find(|d| d.name() == name))
    }

    /// The dtype of a legacy storage class (`FloatStorage` → float32). Also accepts the
    /// `<ScalarType>Storage` names TorchScript's C++ writer produces (`Float8_e5m2Storage`).
    pub fn from_storage_name(name: &str) -> Option<DType> {
        if let Some(d) = DType::ALL.iter().copied().find(|d| d.storage_name() == Some(name)) {
            return Some(d);
        }
        let scalar = name.strip_suffix("Storage")?;
        let d = match scalar {
            "ComplexHalf" => DType::Complex32,
            "UInt16" => DType::UInt16,
            "UInt32" => DType::UInt32,
            "UInt64" => DType::UInt64,
            "Float8_e5m2" => DType::Float8E5M2,
            "Float8_e4m3fn" => DType::Float8E4M3Fn,
            "Float8_e5m2fnuz" => DType::Float8E5M2Fnuz,
            "Float8_e4m3fnuz" => DType::Float8E4M3Fnuz,
            "Float8_e8m0fnu" => DType::Float8E8M0Fnu,
            "Float4_e2m1fn_x2" => DType::Float4E2M1FnX2,
            "Bits8" => DType::Bits8,
            "Bits16" => DType::Bits16,
            "Bits1x8" => DType::Bits1x8,
            "Bits2x4" => DType::Bits2x4,
            "Bits4x2" => DType::Bits4x2,
            _ => return None,
        };
        Some(d)
    }

    /// Whether the elements are complex numbers (two floats each).
    pub fn is_complex(self) -> bool {
        matches!(
            self,
            DType::Complex32 | DType::Complex64 | DType::Complex128 | DType::BComplex32
        )
    }

    /// Whether the elements are real floating-point numbers (including 8- and 4-bit floats).
    pub fn is_floating_point(self) -> bool {
        matches!(
            self,
            DType::Float64
                | DType::Float32
                | DType::Float16
                | DType::BFloat16
                | DType::Float8E4M3Fn
                | DType::Float8E4M3Fnuz
                | DType::Float8E5M2
                | DType::Float8E5M2Fnuz
                | DType::Float8E8M0Fnu
                | DType::Float4E2M1FnX2
        )
    }

    /// Whether the elements are quantized integers.
    pub fn is_quantized(self) -> bool {
        matches!(
            self,
            DType::QInt8 | DType::QUInt8 | DType::QInt32 | DType::QUInt4x2 | DType::QUInt2x4
        )
    }

    /// The unit that a big-endian archive byte-swaps: the element size, or half of it for
    /// complex numbers (each part is swapped on its own, as torch's `byteswap` does).
    pub fn swap_unit(self) -> usize {
        if self.is_complex() {
            self.size() / 2
        } else {
            self.size()
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for &d in DType::ALL {
            assert_eq!(DType::from_name(d.name()), Some(d));
            if let Some(s) = d.storage_name() {
                assert_eq!(DType::from_storage_name(s), Some(d));
            }
        }
        assert_eq!(DType::from_name("torch.float"), Some(DType::Float32));
        assert_eq!(DType::from_name("float128"), None);
        assert_eq!(DType::from_storage_name("FooStorage"), None);
        assert_eq!(DType::Complex64.swap_unit(), 4);
    }
}

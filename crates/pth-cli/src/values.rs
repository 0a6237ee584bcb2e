//! A tensor's elements as printable numbers, whatever its dtype.

use pth_reader::{DType, TensorView};
use serde_json::{json, Value as Json};

/// Elements decoded for display.
pub enum Elements {
    /// Real floats (float8 to float64); `single` when the dtype is no wider than float32, so
    /// they print with float32's shortest digits.
    Float { values: Vec<f64>, single: bool },
    /// Signed integers (and quantized integer representations).
    Int(Vec<i64>),
    /// Unsigned integers up to 64 bits.
    UInt(Vec<u64>),
    /// Booleans.
    Bool(Vec<bool>),
    /// Complex numbers as (re, im).
    Complex(Vec<(f64, f64)>),
    /// Raw element bytes as unsigned integers (bit types, packed sub-byte types).
    Raw(Vec<u64>),
}

impl Elements {
    /// Decodes every element of `t`.
    pub fn of(t: &TensorView<'_>) -> anyhow::Result<Elements> {
        use DType::*;
        Ok(match t.dtype() {
            Bool => Elements::Bool(t.to_vec::<bool>()?),
            Int8 | QInt8 => Elements::Int(t.to_vec::<i8>()?.into_iter().map(i64::from).collect()),
            Int16 => Elements::Int(t.to_vec::<i16>()?.into_iter().map(i64::from).collect()),
            Int32 | QInt32 => Elements::Int(t.to_vec::<i32>()?.into_iter().map(i64::from).collect()),
            Int64 => Elements::Int(t.to_vec::<i64>()?),
            UInt8 | QUInt8 => Elements::UInt(t.to_vec::<u8>()?.into_iter().map(u64::from).collect()),
            UInt16 => Elements::UInt(t.to_vec::<u16>()?.into_iter().map(u64::from).collect()),
            UInt32 => Elements::UInt(t.to_vec::<u32>()?.into_iter().map(u64::from).collect()),
            UInt64 => Elements::UInt(t.to_vec::<u64>()?),
            Complex64 => Elements::Complex(
                t.to_vec::<[f32; 2]>()?
                    .into_iter()
                    .map(|[r, i]| (f64::from(r), f64::from(i)))
                    .collect(),
            ),
            Complex128 => Elements::Complex(t.to_vec::<[f64; 2]>()?.into_iter().map(|[r, i]| (r, i)).collect()),
            Complex32 => Elements::Complex(
                t.to_vec::<[half::f16; 2]>()?
                    .into_iter()
                    .map(|[r, i]| (f64::from(r), f64::from(i)))
                    .collect(),
            ),
            BComplex32 => Elements::Complex(
                t.to_vec::<[half::bf16; 2]>()?
                    .into_iter()
                    .map(|[r, i]| (f64::from(r), f64::from(i)))
                    .collect(),
            ),
            d if d.is_floating_point() && d != Float4E2M1FnX2 => Elements::Float {
                values: t.to_f64_vec()?,
                single: d != Float64,
            },
            _ => {
                let size = t.dtype().size();
                let bytes = t.to_le_bytes()?;
                Elements::Raw(
                    bytes
                        .chunks_exact(size)
                        .map(|c| c.iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
                        .collect(),
                )
            }
        })
    }

    /// Element `i` as text, numpy-style.
    pub fn text(&self, i: usize) -> String {
        match self {
            Elements::Float { values, single: true } => {
                values.get(i).map(|&f| float32_text(f as f32)).unwrap_or_default()
            }
            Elements::Float { values, single: false } => values.get(i).map(|&f| float_text(f)).unwrap_or_default(),
            Elements::Int(v) => v.get(i).map(i64::to_string).unwrap_or_default(),
            Elements::UInt(v) | Elements::Raw(v) => v.get(i).map(u64::to_string).unwrap_or_default(),
            Elements::Bool(v) => v
                .get(i)
                .map(|b| if *b { "True" } else { "False" }.to_owned())
                .unwrap_or_default(),
            Elements::Complex(v) => v
                .get(i)
                .map(|&(r, im)| {
                    format!(
                        "{}{}{}j",
                        float_text(r),
                        if im < 0.0 || im.is_sign_negative() { "-" } else { "+" },
                        float_text(im.abs())
                    )
                })
                .unwrap_or_default(),
        }
    }

    /// Writes element `i` as JSON, as [`json`](Self::json) renders it, without building a
    /// JSON value (printing every value of a large tensor).
    pub fn write_json(&self, w: &mut dyn std::io::Write, i: usize) -> std::io::Result<()> {
        use crate::json::put;
        match self {
            Elements::Float { values, .. } => match values.get(i) {
                Some(f) if f.is_finite() => put(w, f),
                _ => put(w, &self.json(i)),
            },
            Elements::Int(v) => put(w, &v.get(i)),
            Elements::UInt(v) | Elements::Raw(v) => put(w, &v.get(i)),
            Elements::Bool(v) => put(w, &v.get(i)),
            Elements::Complex(_) => put(w, &self.json(i)),
        }
    }

    /// Element `i` as JSON (complex as `[re, im]`, non-finite floats as strings).
    pub fn json(&self, i: usize) -> Json {
        match self {
            Elements::Float { values, .. } => values.get(i).map_or(Json::Null, |&f| crate::json::float(f)),
            Elements::Int(v) => v.get(i).map_or(Json::Null, |&x| json!(x)),
            Elements::UInt(v) | Elements::Raw(v) => v.get(i).map_or(Json::Null, |&x| json!(x)),
            Elements::Bool(v) => v.get(i).map_or(Json::Null, |&x| json!(x)),
            Elements::Complex(v) => v.get(i).map_or(Json::Null, |&(r, im)| {
                json!([crate::json::float(r), crate::json::float(im)])
            }),
        }
    }
}

/// A float32 for humans: its own shortest round-trip digits (`0.33025187`, not the float64
/// expansion `0.33025187253952026`).
pub fn float32_text(f: f32) -> String {
    if !f.is_finite() {
        return float_text(f64::from(f));
    }
    let s = format!("{f}");
    if s.len() > 12 {
        format!("{f:e}")
    } else {
        s
    }
}

/// A float for humans: shortest round-trip digits (`0.1`, `1e-07`, `nan`).
pub fn float_text(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = format!("{f}");
    if s.len() > 12 {
        format!("{f:e}")
    } else {
        s
    }
}

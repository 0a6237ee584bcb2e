//! `.npy` headers (NumPy's format 1.0, 2.0 and 3.0): dtype, order and shape of the array that
//! follows.
//!
//! The header is the text of a Python dict, `{'descr': '<f4', 'fortran_order': False, 'shape':
//! (2, 3), }`, padded with spaces and a newline. Plain numeric dtypes are read; structured,
//! object and string arrays are refused.

use anyhow::{bail, Context};
use pth_reader::DType;

/// What a `.npy` header says about the array after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub dtype: DType,
    /// Whether the elements are stored most significant byte first (`>` in `descr`).
    pub big_endian: bool,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
    /// Where the data starts, from the start of the `.npy` bytes.
    pub data_start: usize,
}

impl Header {
    /// The bytes the data takes.
    pub fn nbytes(&self) -> anyhow::Result<usize> {
        self.shape
            .iter()
            .try_fold(self.dtype.size(), |n, &d| n.checked_mul(d))
            .context("the array's size overflows")
    }

    /// Strides in elements: C order, or Fortran order (column-major).
    pub fn strides(&self) -> Vec<usize> {
        let mut strides = vec![0; self.shape.len()];
        let mut step = 1usize;
        let mut set = |i: usize| {
            if let (Some(s), Some(&size)) = (strides.get_mut(i), self.shape.get(i)) {
                *s = step;
                step = step.saturating_mul(size.max(1));
            }
        };
        if self.fortran_order {
            (0..self.shape.len()).for_each(&mut set);
        } else {
            (0..self.shape.len()).rev().for_each(&mut set);
        }
        strides
    }
}

/// Parses the header at the start of `bytes`.
pub fn parse(bytes: &[u8]) -> anyhow::Result<Header> {
    let rest = bytes
        .strip_prefix(b"\x93NUMPY")
        .context("not a .npy array (no \\x93NUMPY magic)")?;
    let (&[major, _minor], rest) = rest.split_first_chunk::<2>().context("truncated .npy header")?;
    let (len, prefix): (usize, usize) = match major {
        1 => {
            let (len, _) = rest.split_first_chunk::<2>().context("truncated .npy header")?;
            (usize::from(u16::from_le_bytes(*len)), 10)
        }
        2 | 3 => {
            let (len, _) = rest.split_first_chunk::<4>().context("truncated .npy header")?;
            (u32::from_le_bytes(*len) as usize, 12)
        }
        v => bail!(".npy format version {v} is not supported"),
    };
    let text = bytes
        .get(prefix..prefix.saturating_add(len))
        .context("the .npy header extends past the end")?;
    let text = std::str::from_utf8(text).context("the .npy header is not text")?;
    let descr = quoted_value(text, "descr")?;
    let (dtype, big_endian) = dtype_of(descr)?;
    let fortran_order = match value_after(text, "fortran_order")? {
        v if v.starts_with("True") => true,
        v if v.starts_with("False") => false,
        _ => bail!("fortran_order is neither True nor False"),
    };
    Ok(Header {
        dtype,
        big_endian,
        fortran_order,
        shape: shape_of(value_after(text, "shape")?)?,
        data_start: prefix + len,
    })
}

/// The text after `'key':`.
fn value_after<'t>(text: &'t str, key: &str) -> anyhow::Result<&'t str> {
    let at = text
        .find(&format!("'{key}'"))
        .with_context(|| format!("the .npy header has no {key}"))?;
    let rest = text.get(at + key.len() + 2..).unwrap_or_default().trim_start();
    Ok(rest.strip_prefix(':').context("malformed .npy header")?.trim_start())
}

/// The quoted string after `'key':`.
fn quoted_value<'t>(text: &'t str, key: &str) -> anyhow::Result<&'t str> {
    let value = value_after(text, key)?;
    let inner = value
        .strip_prefix('\'')
        .with_context(|| format!("{key} is not a string (structured arrays are not supported)"))?;
    Ok(inner.split('\'').next().unwrap_or_default())
}

/// `(2, 3)`, `(3,)`, `()`.
fn shape_of(value: &str) -> anyhow::Result<Vec<usize>> {
    let inner = value
        .strip_prefix('(')
        .and_then(|v| v.split(')').next())
        .context("shape is not a tuple")?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            d.trim_end_matches('L')
                .parse::<usize>()
                .with_context(|| format!("bad dimension {d:?}"))
        })
        .collect()
}

/// The dtype of a `descr` such as `<f4`, `|b1` or `>i8`, and whether it is big-endian.
fn dtype_of(descr: &str) -> anyhow::Result<(DType, bool)> {
    let (order, code) = match descr.split_at_checked(1) {
        Some((o @ ("<" | ">" | "|" | "="), code)) => (o, code),
        _ => ("=", descr),
    };
    let dtype = match code {
        "b1" | "?" => DType::Bool,
        "i1" => DType::Int8,
        "u1" => DType::UInt8,
        "i2" => DType::Int16,
        "u2" => DType::UInt16,
        "i4" => DType::Int32,
        "u4" => DType::UInt32,
        "i8" => DType::Int64,
        "u8" => DType::UInt64,
        "f2" => DType::Float16,
        "f4" => DType::Float32,
        "f8" => DType::Float64,
        "c8" => DType::Complex64,
        "c16" => DType::Complex128,
        _ => bail!("numpy dtype {descr:?} has no torch dtype this converter writes"),
    };
    Ok((dtype, order == ">" && dtype.size() > 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(dict: &str) -> Vec<u8> {
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((dict.len() as u16).to_le_bytes());
        out.extend(dict.as_bytes());
        out
    }

    #[test]
    fn headers_numpy_writes_are_read() {
        let h = parse(&header(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }   \n",
        ))
        .unwrap();
        assert_eq!((h.dtype, h.big_endian, h.fortran_order), (DType::Float32, false, false));
        assert_eq!(h.shape, [2, 3]);
        assert_eq!(h.strides(), [3, 1]);
        assert_eq!(h.nbytes().unwrap(), 24);
        let f = parse(&header("{'descr': '>i8', 'fortran_order': True, 'shape': (2, 3), }\n")).unwrap();
        assert!(f.big_endian);
        assert_eq!(f.strides(), [1, 2]);
        let scalar = parse(&header("{'descr': '|b1', 'fortran_order': False, 'shape': (), }\n")).unwrap();
        assert!(scalar.shape.is_empty());
        assert_eq!(
            parse(&header("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"))
                .unwrap()
                .shape,
            [3]
        );
        assert!(parse(&header(
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }"
        ))
        .is_err());
        assert!(parse(&header("{'descr': '|O', 'fortran_order': False, 'shape': (3,), }")).is_err());
        assert!(parse(b"\x93NUMPY\x01\x00\xff\xff{").is_err());
    }
}

//! Spaces printed the way gymnasium's `repr` prints them: `Discrete(4)`,
//! `Box(0, 255, (3, 36, 36), uint8)`, `Dict('camera': ..., 'state': ...)`.

use pth_reader::pyrepr::{float_repr_with_digits, float_text, str_repr};
use sb3_format::{BoxSpace, NdArray, NpDType, Space};

/// How many elements numpy prints before summarising an array with `...`.
const NUMPY_THRESHOLD: usize = 1000;
/// Elements numpy shows at each end of a summarised array.
const NUMPY_EDGE: usize = 3;

/// A space as gymnasium's `repr` shows it.
pub fn space(space: &Space) -> String {
    match space {
        Space::Box(b) => box_space(b),
        Space::Discrete { n, start } if *start != 0 => format!("Discrete({n}, start={start})"),
        Space::Discrete { n, .. } => format!("Discrete({n})"),
        Space::MultiDiscrete { nvec, start } => {
            let start = start
                .as_ref()
                .filter(|s| s.to_i64_vec().is_some_and(|v| v.iter().any(|&x| x != 0)));
            match start {
                Some(s) => format!("MultiDiscrete({}, start={})", int_array(nvec), int_array(s)),
                None => format!("MultiDiscrete({})", int_array(nvec)),
            }
        }
        Space::MultiBinary { shape, n_is_int } => match (n_is_int, shape.as_slice()) {
            (true, [n]) => format!("MultiBinary({n})"),
            _ => format!("MultiBinary({})", tuple(shape)),
        },
        Space::Dict(items) => {
            let inner: Vec<String> = items
                .iter()
                .map(|(k, s)| format!("{}: {}", str_repr(k), self::space(s)))
                .collect();
            format!("Dict({})", inner.join(", "))
        }
        Space::Tuple(items) => {
            let inner: Vec<String> = items.iter().map(self::space).collect();
            format!("Tuple({})", inner.join(", "))
        }
        other => format!("{}()", other.type_name()),
    }
}

/// `Box(low, high, shape, dtype)` with each bound a scalar when all its values are equal.
fn box_space(b: &BoxSpace) -> String {
    let dtype = b.dtype();
    format!(
        "Box({}, {}, {}, {})",
        bound(&b.low_f64(), b.shape(), dtype),
        bound(&b.high_f64(), b.shape(), dtype),
        tuple(b.shape()),
        dtype.name()
    )
}

/// gymnasium's `_short_repr`: the value when all are equal, else the array (of `shape`).
fn bound(values: &[f64], shape: &[usize], dtype: NpDType) -> String {
    match values.split_first() {
        Some((first, rest)) if rest.iter().all(|v| v == first) => scalar(*first, dtype),
        _ if is_float(dtype) => nested(&float_column(values, dtype), shape),
        _ => nested(&int_column(values.iter().map(|&v| scalar(v, dtype)).collect()), shape),
    }
}

/// Integers as numpy prints them in an array: right-aligned to the widest (`[ 0 -5 10]`).
fn int_column(items: Vec<String>) -> Vec<String> {
    let width = items.iter().map(String::len).max().unwrap_or(0);
    items.into_iter().map(|s| format!("{s:>width$}")).collect()
}

/// An array of `shape` from its formatted elements in C order, bracketed per axis as numpy
/// prints it (`[[1. 2.] [3. 4.]]`), but on one line: numpy breaks rows, and lines beyond 75
/// characters, with newlines that would split a field of `pth sb3 info`. Arrays numpy
/// summarises (over 1000 elements) are shown flat, summarised.
fn nested(items: &[String], shape: &[usize]) -> String {
    match shape.split_first() {
        Some((_, inner)) if !inner.is_empty() && items.len() <= NUMPY_THRESHOLD => {
            let row: usize = inner.iter().product();
            let rows: Vec<String> = items.chunks(row.max(1)).map(|r| nested(r, inner)).collect();
            format!("[{}]", rows.join(" "))
        }
        _ => array(items.to_vec()),
    }
}

fn is_float(dtype: NpDType) -> bool {
    matches!(dtype, NpDType::Float16 | NpDType::Float32 | NpDType::Float64)
}

/// Floats as numpy prints them in an array (its default `precision=8`, `floatmode='maxprec'`):
/// each with its shortest digits but at most 8 after the point, aligned on the point
/// (`[-2.   -0.5  -0.05]`); in scientific notation with mantissas of one length when numpy
/// switches to it (magnitudes from 1e8 — 1e6 for float32, 1e3 for float16 —, below 1e-4, or
/// spread over more than 1e3): `[-3.4028235e+38  5.0000000e-01]`.
fn float_column(values: &[f64], dtype: NpDType) -> Vec<String> {
    let finite: Vec<f64> = values
        .iter()
        .copied()
        .filter(|v| v.is_finite() && *v != 0.0)
        .map(f64::abs)
        .collect();
    let (min, max) = finite
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if !finite.is_empty() && is_scientific(min, max, dtype) {
        return scientific_column(values, dtype);
    }
    let parts: Vec<Option<(String, String)>> = values
        .iter()
        .map(|&v| {
            v.is_finite().then(|| {
                let text = positional(v, dtype);
                let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
                (int.to_owned(), frac.trim_end_matches('0').to_owned())
            })
        })
        .collect();
    let right = parts.iter().flatten().map(|(_, f)| f.len()).max().unwrap_or(0);
    // Non-finite values widen the integer part so that they fit (numpy's FloatingFormat).
    let non_finite = values
        .iter()
        .filter(|v| !v.is_finite())
        .map(|&v| scalar(v, dtype).len())
        .max()
        .map_or(0, |n| n.saturating_sub(right + 1));
    let left = parts
        .iter()
        .flatten()
        .map(|(i, _)| i.len())
        .max()
        .unwrap_or(0)
        .max(non_finite);
    parts
        .iter()
        .zip(values)
        .map(|(part, &v)| match part {
            Some((int, frac)) => format!("{int:>left$}.{frac:<right$}"),
            None => format!("{:>width$}", scalar(v, dtype), width = left + 1 + right),
        })
        .collect()
}

/// Whether numpy prints an array whose smallest and largest non-zero finite magnitudes are
/// `min` and `max` in scientific notation. numpy 2 (`FloatingFormat.fillFormat`) compares in
/// the array's dtype: `max >= 10 ** min(8, finfo(dtype).precision)` (1e3 for float16, 1e6 for
/// float32, 1e8 for float64), `min < 1e-4` (1e-4 rounded to the dtype) or `max / min > 1e3`
/// (the quotient rounded to the dtype; float16 divides through float32, as numpy's half does).
fn is_scientific(min: f64, max: f64, dtype: NpDType) -> bool {
    let (cutoff, in_dtype): (f64, fn(f64) -> f64) = match dtype {
        NpDType::Float16 => (1e3, |v| f64::from(half::f16::from_f64(v))),
        NpDType::Float32 => (1e6, |v| f64::from(v as f32)),
        _ => (1e8, |v| v),
    };
    let ratio = match dtype {
        NpDType::Float16 | NpDType::Float32 => in_dtype(f64::from(max as f32 / min as f32)),
        _ => max / min,
    };
    max >= cutoff || min < in_dtype(1e-4) || ratio > 1e3
}

/// numpy's fractional digits at most (`precision`).
const NUMPY_PRECISION: usize = 8;

/// The shortest digits of `v` as a float of `dtype`, in Rust's `{:e}` form (`-1.5e-3`).
/// Where two decimals of that length are equally near (float32 `-262056.125`: `…12` or
/// `…13`), Rust picks the upper one, Python and numpy the correctly rounded one (half to
/// even): so the digits are `v`'s exact value rounded to that length.
fn shortest_e(v: f64, dtype: NpDType) -> String {
    let shortest = match dtype {
        NpDType::Float16 => shortest_f16_e(v),
        NpDType::Float32 => format!("{:e}", v as f32),
        _ => format!("{v:e}"),
    };
    if !v.is_finite() {
        return shortest;
    }
    let digits = split_e(&shortest).0.chars().filter(char::is_ascii_digit).count();
    // `v` is the float's exact value (float32 and float16 widen exactly).
    format!("{v:.prec$e}", prec = digits.saturating_sub(1))
}

/// The fewest significant digits that read back as the same float16 (numpy prints
/// `float16(4.73)` as `4.73`, not as the float32 `4.7304688`).
fn shortest_f16_e(v: f64) -> String {
    let bits = half::f16::from_f64(v).to_bits();
    (0..5)
        .map(|p| format!("{v:.p$e}"))
        .find(|s| s.parse::<f64>().is_ok_and(|r| half::f16::from_f64(r).to_bits() == bits))
        .unwrap_or_else(|| format!("{:e}", v as f32))
}

/// A finite value positionally: its shortest digits, or rounded to 8 after the point when
/// it needs more (`1.7022163282706066` → `1.70221633`). Only used below numpy's cutoff
/// for scientific notation (at most 1e8).
fn positional(v: f64, dtype: NpDType) -> String {
    let shortest = shortest_e(v, dtype);
    let (mantissa, exponent) = split_e(&shortest);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if digits.len() as i64 - 1 - i64::from(exponent) > NUMPY_PRECISION as i64 {
        // `v` is the exact value of the float (float32 values widen exactly), rounded once.
        format!("{v:.NUMPY_PRECISION$}")
    } else {
        float_text(v.is_sign_negative(), &digits, exponent, true)
    }
}

/// numpy's scientific array format: mantissas with the most fractional digits any value
/// needs (at most 8), each value's exact digits to that many (not zeros: numpy's
/// `min_digits`), exponents of one width, non-finite values right-aligned.
fn scientific_column(values: &[f64], dtype: NpDType) -> Vec<String> {
    // The most fractional digits a finite value's mantissa needs: its shortest digits, or
    // rounded to 8 when it needs more (trailing zeros trimmed either way).
    let needed = |v: f64| {
        let fraction = |text: &str| {
            let mantissa = split_e(text).0;
            mantissa
                .split_once('.')
                .map_or(0, |(_, f)| f.trim_end_matches('0').len())
        };
        match fraction(&shortest_e(v, dtype)) {
            n if n > NUMPY_PRECISION => fraction(&format!("{v:.NUMPY_PRECISION$e}")),
            n => n,
        }
    };
    let precision = values
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| needed(v))
        .max()
        .unwrap_or(0);
    // (sign and integer digit, fractional digits, exponent) of each finite value: its exact
    // digits to `precision` (`v` widens the float exactly), as numpy's `min_digits` prints them.
    let parts: Vec<Option<(String, String, i32)>> = values
        .iter()
        .map(|&v| {
            v.is_finite().then(|| {
                let text = format!("{v:.precision$e}");
                let (mantissa, exponent) = split_e(&text);
                let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
                (int.to_owned(), frac.to_owned(), exponent)
            })
        })
        .collect();
    let finite = || parts.iter().flatten();
    let exp_digits = finite()
        .map(|(_, _, e)| e.unsigned_abs().to_string().len().max(2))
        .max()
        .unwrap_or(2);
    let left = finite().map(|(i, _, _)| i.len()).max().unwrap_or(0);
    let width = left + 1 + precision + 2 + exp_digits;
    parts
        .iter()
        .zip(values)
        .map(|(part, &v)| match part {
            Some((int, frac, e)) => format!(
                "{int:>left$}.{frac}e{}{:0>exp_digits$}",
                if *e < 0 { '-' } else { '+' },
                e.unsigned_abs()
            ),
            None => format!("{:>width$}", scalar(v, dtype)),
        })
        .collect()
}

/// Rust's `{:e}` form (`-1.25e-3`) split into its mantissa (`-1.25`) and exponent (`-3`).
fn split_e(text: &str) -> (&str, i32) {
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
    (mantissa, exponent.parse().unwrap_or(0))
}

/// A Python tuple of sizes: `(5,)`, `(3, 36, 36)`.
fn tuple(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => {
            let items: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", items.join(", "))
        }
    }
}

/// A flat numpy array: `[4 4]`, summarised beyond 1000 elements.
fn array(items: Vec<String>) -> String {
    if items.len() > NUMPY_THRESHOLD {
        let head = items.get(..NUMPY_EDGE).unwrap_or_default().join(" ");
        let tail = items.get(items.len() - NUMPY_EDGE..).unwrap_or_default().join(" ");
        return format!("[{head} ... {tail}]");
    }
    format!("[{}]", items.join(" "))
}

fn int_array(a: &NdArray) -> String {
    array(int_column(
        a.to_i64_vec().unwrap_or_default().iter().map(i64::to_string).collect(),
    ))
}

/// One value of a bound as numpy prints a scalar of `dtype`: its shortest digits, positional
/// from 1e-4 (compared exactly: float32's `1e-4` lies below it) up to 1e3 for float16, 1e6 for
/// float32 and 1e16 for float64, scientific outside (`np.float32(2e6)` prints `2e+06`).
fn scalar(v: f64, dtype: NpDType) -> String {
    if !is_float(dtype) && v.fract() == 0.0 && v.is_finite() {
        return format!("{}", v as i64);
    }
    let shortest = shortest_e(v, dtype);
    if !v.is_finite() {
        return float_repr_with_digits(v, &shortest);
    }
    let cutoff = match dtype {
        NpDType::Float16 => 1e3,
        NpDType::Float32 => 1e6,
        _ => 1e16,
    };
    let positional = v == 0.0 || (1e-4..cutoff).contains(&v.abs());
    let (mantissa, exponent) = split_e(&shortest);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    float_text(v.is_sign_negative(), &digits, exponent, positional)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python() {
        let f = |v: f64| float_repr_with_digits(v, &format!("{v:e}"));
        assert_eq!(f(-1.0), "-1.0");
        assert_eq!(f(0.5), "0.5");
        assert_eq!(f(255.0), "255.0");
        assert_eq!(f(1e-5), "1e-05");
        assert_eq!(f(0.0001), "0.0001");
        assert_eq!(f(3.4028234663852886e38), "3.4028234663852886e+38");
        assert_eq!(scalar(-4.800000190734863, NpDType::Float32), "-4.8");
        assert_eq!(scalar(f64::from(f32::MAX), NpDType::Float32), "3.4028235e+38");
        assert_eq!(scalar(255.0, NpDType::UInt8), "255");
        // Two shortest decimals equally near: numpy's str(np.float32(-262056.125)).
        assert_eq!(scalar(-262_056.125, NpDType::Float32), "-262056.12");
        // numpy 2's scalar cutoffs (str of np.float16 / float32 / float64 scalars).
        let h = |v: f64| f64::from(half::f16::from_f64(v));
        assert_eq!(scalar(h(999.0), NpDType::Float16), "999.0");
        assert_eq!(scalar(h(1000.0), NpDType::Float16), "1e+03");
        assert_eq!(scalar(h(33300.0), NpDType::Float16), "3.33e+04");
        assert_eq!(scalar(h(1e-4), NpDType::Float16), "0.0001");
        assert_eq!(scalar(999_999.94f32.into(), NpDType::Float32), "999999.94");
        assert_eq!(scalar(2e6, NpDType::Float32), "2e+06");
        assert_eq!(scalar(1e-4f32.into(), NpDType::Float32), "1e-04");
        assert_eq!(scalar(1e15, NpDType::Float64), "1000000000000000.0");
        assert_eq!(scalar(1e16, NpDType::Float64), "1e+16");
        assert_eq!(scalar(-0.0, NpDType::Float32), "-0.0");
    }

    #[test]
    fn float_arrays_print_as_numpy() {
        // str(np.array(...)) with numpy 2.4's defaults.
        let f32s = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
        let cases: [(Vec<f64>, NpDType, &str); 7] = [
            (
                f32s(&[f32::NEG_INFINITY, -3.402_823_5e38, 0.5]),
                NpDType::Float32,
                "[          -inf -3.4028235e+38  5.0000000e-01]",
            ),
            (
                vec![1e-5, 0.123_456_789],
                NpDType::Float64,
                "[1.00000000e-05 1.23456789e-01]",
            ),
            (
                vec![f64::NEG_INFINITY, 1.702_216_328_270_606_6, 2.0],
                NpDType::Float64,
                "[      -inf 1.70221633 2.        ]",
            ),
            (vec![1.000_000_000_1, 2.5], NpDType::Float64, "[1.  2.5]"),
            (
                f32s(&[f32::NAN, 1e9, -2.0]),
                NpDType::Float32,
                "[    nan  1.e+09 -2.e+00]",
            ),
            (
                f32s(&[0.074_983_954, -1.114_248]),
                NpDType::Float32,
                "[ 0.07498395 -1.114248  ]",
            ),
            (
                vec![f64::from(half::f16::from_f32(4.73)), -1.0],
                NpDType::Float16,
                "[ 4.73 -1.  ]",
            ),
        ];
        for (values, dtype, want) in cases {
            assert_eq!(array(float_column(&values, dtype)), want);
        }
        // numpy 2's scientific cutoff depends on the dtype: 1e3 for float16, 1e6 for float32.
        let f16s = |v: &[f64]| {
            v.iter()
                .map(|&x| f64::from(half::f16::from_f64(x)))
                .collect::<Vec<f64>>()
        };
        let cutoffs: [(Vec<f64>, NpDType, &str); 8] = [
            (vec![2e6], NpDType::Float32, "[2.e+06]"),
            (vec![999_999.0], NpDType::Float32, "[999999.]"),
            (vec![2e6], NpDType::Float64, "[2000000.]"),
            (f16s(&[f64::INFINITY, 33300.0]), NpDType::Float16, "[     inf 3.33e+04]"),
            (
                f16s(&[-55040.0, f64::NEG_INFINITY, f64::NEG_INFINITY]),
                NpDType::Float16,
                "[-5.504e+04       -inf       -inf]",
            ),
            (vec![999.0], NpDType::Float16, "[999.]"),
            (vec![1000.0], NpDType::Float16, "[1.e+03]"),
            (
                f16s(&[f64::NEG_INFINITY, -1.887, -3.447]),
                NpDType::Float16,
                "[  -inf -1.887 -3.447]",
            ),
        ];
        for (values, dtype, want) in cutoffs {
            assert_eq!(array(float_column(&values, dtype)), want, "{dtype:?} {values:?}");
        }
        let grid: Vec<String> = ["1.", "2.", "3.", "4.", "5.", "6."].map(String::from).to_vec();
        assert_eq!(nested(&grid, &[3, 2]), "[[1. 2.] [3. 4.] [5. 6.]]");
    }

    #[test]
    fn spaces_print_as_gymnasium() {
        assert_eq!(space(&Space::Discrete { n: 4, start: 0 }), "Discrete(4)");
        assert_eq!(space(&Space::Discrete { n: 3, start: -1 }), "Discrete(3, start=-1)");
        // Keys as Python's repr quotes them.
        let quoted = Space::Dict(vec![("k'q".into(), Space::Discrete { n: 2, start: 0 })]);
        assert_eq!(space(&quoted), "Dict(\"k'q\": Discrete(2))");
        let ones =
            |n: usize, v: f32| NdArray::from_le_bytes(NpDType::Float32, vec![n], v.to_le_bytes().repeat(n)).unwrap();
        let b = BoxSpace::new(NpDType::Float32, vec![5], ones(5, -1.0), ones(5, 1.0)).unwrap();
        let pixels = |v: u8| NdArray::from_le_bytes(NpDType::UInt8, vec![3, 2, 2], vec![v; 12]).unwrap();
        let image = BoxSpace::new(NpDType::UInt8, vec![3, 2, 2], pixels(0), pixels(255)).unwrap();
        let dict = Space::Dict(vec![
            ("camera".into(), Space::Box(image)),
            ("state".into(), Space::Box(b)),
        ]);
        assert_eq!(
            space(&dict),
            "Dict('camera': Box(0, 255, (3, 2, 2), uint8), 'state': Box(-1.0, 1.0, (5,), float32))"
        );
        let mixed = BoxSpace::new(NpDType::Float32, vec![2], ones(2, 0.5), {
            let bytes = [1.0f32.to_le_bytes(), f32::INFINITY.to_le_bytes()].concat();
            NdArray::from_le_bytes(NpDType::Float32, vec![2], bytes).unwrap()
        })
        .unwrap();
        assert_eq!(space(&Space::Box(mixed)), "Box(0.5, [ 1. inf], (2,), float32)");
        let f32s = |v: &[f32]| {
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            NdArray::from_le_bytes(NpDType::Float32, vec![v.len()], bytes).unwrap()
        };
        let actions = BoxSpace::new(
            NpDType::Float32,
            vec![3],
            f32s(&[-2.0, -0.5, -0.05]),
            f32s(&[1.0, 3.0, 0.1]),
        )
        .unwrap();
        // numpy: Box([-2.   -0.5  -0.05], [1.  3.  0.1], (3,), float32)
        assert_eq!(
            space(&Space::Box(actions)),
            "Box([-2.   -0.5  -0.05], [1.  3.  0.1], (3,), float32)"
        );
    }
}

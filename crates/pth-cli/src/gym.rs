//! Spaces printed the way gymnasium's `repr` prints them: `Discrete(4)`,
//! `Box(0, 255, (3, 36, 36), uint8)`, `Dict('camera': ..., 'state': ...)`.

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
                .map(|(k, s)| format!("'{k}': {}", self::space(s)))
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
        bound(&b.low_f64(), dtype),
        bound(&b.high_f64(), dtype),
        tuple(b.shape()),
        dtype.name()
    )
}

/// gymnasium's `_short_repr`: the value when all are equal, else the array.
fn bound(values: &[f64], dtype: NpDType) -> String {
    match values.split_first() {
        Some((first, rest)) if rest.iter().all(|v| v == first) => scalar(*first, dtype),
        _ if is_float(dtype) => array(float_column(values, dtype)),
        _ => array(values.iter().map(|&v| scalar(v, dtype)).collect()),
    }
}

fn is_float(dtype: NpDType) -> bool {
    matches!(dtype, NpDType::Float16 | NpDType::Float32 | NpDType::Float64)
}

/// Floats as numpy prints them in an array: each with its shortest digits, aligned on the
/// point (`[-2.   -0.5  -0.05]`), or each in Python's repr when numpy would switch to
/// scientific notation (magnitudes from 1e8, below 1e-4, or spread over more than 1e3).
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
    if !finite.is_empty() && (max >= 1e8 || min < 1e-4 || max / min > 1e3) {
        return values.iter().map(|&v| scalar(v, dtype)).collect();
    }
    let parts: Vec<Option<(String, String)>> = values
        .iter()
        .map(|&v| {
            let text = scalar(v, dtype);
            v.is_finite().then(|| {
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
    array(a.to_i64_vec().unwrap_or_default().iter().map(i64::to_string).collect())
}

/// One value of a bound as numpy prints a scalar of `dtype`.
fn scalar(v: f64, dtype: NpDType) -> String {
    if !is_float(dtype) && v.fract() == 0.0 && v.is_finite() {
        return format!("{}", v as i64);
    }
    if dtype == NpDType::Float32 || dtype == NpDType::Float16 {
        python_float(f64::from(v as f32), format!("{:e}", v as f32))
    } else {
        python_float(v, format!("{v:e}"))
    }
}

/// Python's `repr` of a float from its shortest digits (`mantissa e exponent` as Rust's `{:e}`
/// writes them): positional between 1e-4 and 1e16, scientific outside.
fn python_float(v: f64, shortest: String) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    let (mantissa, exponent) = shortest.split_once('e').unwrap_or((&shortest, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        format!(
            "{sign}{first}{rest}e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.abs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python() {
        let f = |v: f64| python_float(v, format!("{v:e}"));
        assert_eq!(f(-1.0), "-1.0");
        assert_eq!(f(0.5), "0.5");
        assert_eq!(f(255.0), "255.0");
        assert_eq!(f(1e-5), "1e-05");
        assert_eq!(f(0.0001), "0.0001");
        assert_eq!(f(3.4028234663852886e38), "3.4028234663852886e+38");
        assert_eq!(scalar(-4.800000190734863, NpDType::Float32), "-4.8");
        assert_eq!(scalar(f64::from(f32::MAX), NpDType::Float32), "3.4028235e+38");
        assert_eq!(scalar(255.0, NpDType::UInt8), "255");
    }

    #[test]
    fn spaces_print_as_gymnasium() {
        assert_eq!(space(&Space::Discrete { n: 4, start: 0 }), "Discrete(4)");
        assert_eq!(space(&Space::Discrete { n: 3, start: -1 }), "Discrete(3, start=-1)");
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

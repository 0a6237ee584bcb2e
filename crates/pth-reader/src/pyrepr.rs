//! Python's text forms of numbers, shared by the layers that show values as Python does.

#![forbid(unsafe_code)]

/// Python's `repr(float)`: shortest round-trip digits, positional from 1e-4 up to 1e16.
pub(crate) fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e5", "1e-7".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if (-4..16).contains(&exp) {
        if exp < 0 {
            let zeros = "0".repeat((-exp - 1) as usize);
            return format!("{sign}0.{zeros}{digits}");
        }
        let point = exp as usize + 1;
        return match digits.split_at_checked(point) {
            Some((int, frac)) if !frac.is_empty() => format!("{sign}{int}.{frac}"),
            _ => format!("{sign}{digits}{}.0", "0".repeat(point.saturating_sub(digits.len()))),
        };
    }
    let mantissa = match digits.split_at_checked(1) {
        Some((first, rest)) if !rest.is_empty() => format!("{first}.{rest}"),
        _ => digits.clone(),
    };
    format!("{sign}{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

/// Python's `repr(complex)`: `(1+2j)`, `2j`, `(1.5-0j)` (parts without a trailing `.0`).
pub(crate) fn complex_repr(re: f64, im: f64) -> String {
    let part = |f: f64| {
        let text = float_repr(f);
        text.strip_suffix(".0").map(str::to_owned).unwrap_or(text)
    };
    if re == 0.0 && !re.is_sign_negative() {
        return format!("{}j", part(im));
    }
    let sign = if im.is_sign_negative() || im < 0.0 { "-" } else { "+" };
    format!("({}{sign}{}j)", part(re), part(im.abs()))
}

#[cfg(test)]
mod tests {
    use super::{complex_repr, float_repr};

    #[test]
    fn complex_numbers_print_like_python() {
        assert_eq!(complex_repr(1.0, 2.0), "(1+2j)");
        assert_eq!(complex_repr(0.0, 2.0), "2j");
        assert_eq!(complex_repr(1.5, -0.0), "(1.5-0j)");
        assert_eq!(complex_repr(-0.0, 1.0), "(-0+1j)");
    }

    #[test]
    fn floats_print_like_python() {
        assert_eq!(float_repr(1.0), "1.0");
        assert_eq!(float_repr(0.1), "0.1");
        assert_eq!(float_repr(-2.5), "-2.5");
        assert_eq!(float_repr(1e-7), "1e-07");
        assert_eq!(float_repr(1e22), "1e+22");
        assert_eq!(float_repr(123456.0), "123456.0");
        assert_eq!(float_repr(f64::NAN), "nan");
        assert_eq!(float_repr(-0.0), "-0.0");
        assert_eq!(float_repr(0.0001), "0.0001");
        assert_eq!(float_repr(1e16), "1e+16");
        assert_eq!(float_repr(1234.5678), "1234.5678");
    }
}

//! Python's text forms of values (`repr`), shared by the layers that show values as Python does;
//! [`str_repr`], [`float_repr_with_digits`] and [`float_text`] are public for callers that
//! print names and numbers the way Python and numpy would.

#![forbid(unsafe_code)]

/// Python's `repr(float)`: shortest round-trip digits, positional from 1e-4 up to 1e16.
pub(crate) fn float_repr(f: f64) -> String {
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e5", "-1e-7".
    float_repr_with_digits(f, &format!("{f:e}"))
}

/// Python's `repr(float)` of `value` written with the digits of `digits`, a number in Rust's
/// `{:e}` form (`-1.5e-3`): positional from 1e-4 up to 1e16, scientific outside; `nan`, `inf`
/// and `-inf` for the non-finite values. For callers whose shortest digits are those of
/// another float type (numpy prints a float32 `0.1` as `0.1`, not as its float64 digits).
///
/// ```
/// use pth_reader::pyrepr::float_repr_with_digits;
/// assert_eq!(float_repr_with_digits(0.1f32 as f64, &format!("{:e}", 0.1f32)), "0.1");
/// assert_eq!(float_repr_with_digits(-2.5e-7, "-2.5e-7"), "-2.5e-07");
/// assert_eq!(float_repr_with_digits(1e16, "1e16"), "1e+16");
/// assert_eq!(float_repr_with_digits(3.0, "3e0"), "3.0");
/// ```
pub fn float_repr_with_digits(value: f64, digits: &str) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    let (mantissa, exp) = digits.split_once('e').unwrap_or((digits, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    float_text(value.is_sign_negative(), &digits, exp, (-4..16).contains(&exp))
}

/// A float written from its significant decimal `digits` (no sign, no point) and the decimal
/// exponent `exp` of the first of them, positionally (`0.00125`, `1500.0`) or in scientific
/// notation (`1.25e-03`, `1.5e+03`), as Python's float repr and numpy's scalars write either
/// form. For callers that choose the form by another rule than Python's (numpy's scalar
/// cutoff depends on the dtype).
///
/// ```
/// use pth_reader::pyrepr::float_text;
/// assert_eq!(float_text(false, "15", 3, true), "1500.0");
/// assert_eq!(float_text(false, "15", 3, false), "1.5e+03");
/// assert_eq!(float_text(true, "125", -3, true), "-0.00125");
/// assert_eq!(float_text(false, "1", -4, false), "1e-04");
/// ```
pub fn float_text(negative: bool, digits: &str, exp: i32, positional: bool) -> String {
    let sign = if negative { "-" } else { "" };
    if positional {
        if exp < 0 {
            let zeros = "0".repeat(exp.unsigned_abs() as usize - 1);
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
        _ => digits.to_owned(),
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

/// Python's `repr(str)`: single quotes unless the text has a `'` and no `"`; backslash,
/// the quote and non-printable characters escaped (`\n`, `\x07`, `\u2028`).
///
/// ```
/// use pth_reader::pyrepr::str_repr;
/// assert_eq!(str_repr("cam"), "'cam'");
/// assert_eq!(str_repr("k'q"), "\"k'q\"");
/// assert_eq!(str_repr("a\tb"), "'a\\tb'");
/// ```
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr(bytes)`: `b'...'`, quotes chosen as for `str`, bytes outside printable ASCII
/// as `\xNN`.
pub(crate) fn bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::with_capacity(b.len() + 3);
    out.push('b');
    out.push(char::from(quote));
    for &byte in b {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            q if q == quote => {
                out.push('\\');
                out.push(char::from(q));
            }
            0x20..=0x7e => out.push(char::from(byte)),
            _ => out.push_str(&format!("\\x{byte:02x}")),
        }
    }
    out.push(char::from(quote));
    out
}

/// Python's `str.isprintable` for one character, for the characters that matter in keys:
/// controls, separators other than the space, format characters and unassigned planes are not.
fn is_printable(c: char) -> bool {
    let code = c as u32;
    !matches!(code,
        0x00..=0x1f | 0x7f..=0xa0 | 0xad | 0x034f | 0x061c | 0x115f..=0x1160 | 0x1680 | 0x180e
        | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x206f | 0x3000 | 0x3164 | 0xd800..=0xf8ff
        | 0xfeff | 0xfff0..=0xfffb | 0xe0000..=0xe0fff | 0xf0000..)
}

#[cfg(test)]
mod tests {
    use super::{bytes_repr, complex_repr, float_repr, str_repr};

    #[test]
    fn strings_and_bytes_print_like_python() {
        assert_eq!(str_repr("a"), "'a'");
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("q\""), "'q\"'");
        assert_eq!(str_repr("'\""), "'\\'\"'");
        assert_eq!(str_repr("a\nb\\"), "'a\\nb\\\\'");
        assert_eq!(str_repr("\u{7}é"), "'\\x07é'");
        assert_eq!(bytes_repr(b"x"), "b'x'");
        assert_eq!(bytes_repr(b"\x00'"), "b\"\\x00'\"");
    }

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

//! Protocol-0 literals (decimal ints, quoted strings, raw-unicode-escape text) and big-integer
//! conversions. Pure functions over bytes, each bounded by its input.

/// The most decimal digits accepted for one integer: CPython's own default
/// (`sys.int_info.default_max_str_digits`), which keeps conversion time bounded.
pub(crate) const MAX_DECIMAL_DIGITS: usize = 4300;

/// An integer decoded from text: small ones as `i64`, others as little-endian two's complement.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ParsedInt {
    Small(i64),
    Big(Vec<u8>),
}

/// Parses `[+-]digits` (surrounding ASCII whitespace allowed, as Python's `int()` does).
pub(crate) fn parse_int(text: &[u8]) -> Option<ParsedInt> {
    let text = text.trim_ascii();
    let (negative, digits) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > MAX_DECIMAL_DIGITS {
        return None;
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if let Some(v) = std::str::from_utf8(text).ok().and_then(|s| s.parse::<i64>().ok()) {
        return Some(ParsedInt::Small(v));
    }
    // Magnitude in base 2^32 limbs, little-endian.
    let mut limbs: Vec<u32> = vec![0];
    for &d in digits {
        let mut carry = u64::from(d - b'0');
        for limb in limbs.iter_mut() {
            let v = u64::from(*limb) * 10 + carry;
            *limb = v as u32; // low 32 bits; the rest carries
            carry = v >> 32;
        }
        if carry > 0 {
            limbs.push(carry as u32);
        }
    }
    let mut bytes: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
    if negative {
        // Two's complement: invert and add one.
        let mut carry = true;
        for b in bytes.iter_mut() {
            let (v, c) = (!*b).overflowing_add(u8::from(carry));
            *b = v;
            carry = c;
        }
    }
    // Sign byte, then trim redundant sign-extension bytes.
    bytes.push(if negative { 0xff } else { 0 });
    trim_twos_complement(&mut bytes);
    Some(ParsedInt::Big(bytes))
}

/// Removes high bytes that only repeat the sign.
pub(crate) fn trim_twos_complement(bytes: &mut Vec<u8>) {
    let len = trimmed_len(bytes);
    bytes.truncate(len);
}

/// The length of `bytes` without the high bytes that only repeat the sign.
pub(crate) fn trimmed_len(bytes: &[u8]) -> usize {
    let mut len = bytes.len();
    while len > 1 {
        let (Some(&next), Some(&last)) = (bytes.get(len - 2), bytes.get(len - 1)) else {
            break;
        };
        let redundant = (last == 0 && next < 0x80) || (last == 0xff && next >= 0x80);
        if !redundant {
            break;
        }
        len -= 1;
    }
    len
}

/// A `LONG1`/`LONG4` payload: an `i64` when it fits, otherwise how many of its bytes remain
/// once redundant sign bytes are trimmed (the payload itself is kept where it is).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LeInt {
    Small(i64),
    Big(usize),
}

/// Decodes a `LONG1`/`LONG4` payload.
pub(crate) fn int_from_le_bytes(bytes: &[u8]) -> LeInt {
    let len = trimmed_len(bytes);
    let bytes = bytes.get(..len).unwrap_or_default();
    if bytes.len() > 8 {
        return LeInt::Big(len);
    }
    let negative = bytes.last().is_some_and(|&b| b >= 0x80);
    let mut buf = [if negative { 0xff } else { 0 }; 8];
    for (dst, src) in buf.iter_mut().zip(bytes) {
        *dst = *src;
    }
    LeInt::Small(i64::from_le_bytes(buf))
}

/// The value of a little-endian two's complement integer as `i128`, if it fits.
pub(crate) fn big_to_i128(bytes: &[u8]) -> Option<i128> {
    if bytes.len() > 16 {
        return None;
    }
    let negative = bytes.last().is_some_and(|&b| b >= 0x80);
    let mut buf = [if negative { 0xff } else { 0 }; 16];
    for (dst, src) in buf.iter_mut().zip(bytes) {
        *dst = *src;
    }
    Some(i128::from_le_bytes(buf))
}

/// The most bytes of an integer converted to decimal: integers up to [`MAX_DECIMAL_DIGITS`]
/// digits fit (the conversion is quadratic; CPython refuses `str()` beyond that many digits).
pub(crate) const MAX_DECIMAL_BYTES: usize = MAX_DECIMAL_DIGITS * 1000 / 2408 + 1;

/// Decimal text of a little-endian two's complement integer, or `None` beyond
/// [`MAX_DECIMAL_BYTES`] (as CPython's `str(int)` refuses more than 4300 digits).
pub(crate) fn big_to_decimal(bytes: &[u8]) -> Option<String> {
    if bytes.len() > MAX_DECIMAL_BYTES {
        return None;
    }
    Some(big_to_decimal_unbounded(bytes))
}

fn big_to_decimal_unbounded(bytes: &[u8]) -> String {
    let negative = bytes.last().is_some_and(|&b| b >= 0x80);
    let mut magnitude: Vec<u8> = bytes.to_vec();
    if negative {
        let mut carry = true;
        for b in magnitude.iter_mut() {
            let (v, c) = (!*b).overflowing_add(u8::from(carry));
            *b = v;
            carry = c;
        }
    }
    // Repeated division by 10^9 over big-endian base-256 digits.
    let mut be: Vec<u8> = magnitude.into_iter().rev().skip_while(|&b| b == 0).collect();
    let mut chunks: Vec<u32> = Vec::new();
    while !be.is_empty() {
        let mut rem: u64 = 0;
        for b in be.iter_mut() {
            let cur = (rem << 8) | u64::from(*b);
            *b = (cur / 1_000_000_000) as u8;
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem as u32);
        let zeros = be.iter().take_while(|&&b| b == 0).count();
        be.drain(..zeros);
    }
    let mut out = String::from(if negative { "-" } else { "" });
    match chunks.split_last() {
        None => out.push('0'),
        Some((first, rest)) => {
            out.push_str(&first.to_string());
            for c in rest.iter().rev() {
                out.push_str(&format!("{c:09}"));
            }
        }
    }
    out
}

/// A little-endian two's complement integer as the nearest `f64` (ties to even, as Python's
/// `float(int)`), or `None` when it is too large for a float.
pub(crate) fn big_to_f64(bytes: &[u8]) -> Option<f64> {
    let negative = bytes.last().is_some_and(|&b| b >= 0x80);
    let mut magnitude = bytes.to_vec();
    if negative {
        let mut carry = true;
        for b in magnitude.iter_mut() {
            let (v, c) = (!*b).overflowing_add(u8::from(carry));
            *b = v;
            carry = c;
        }
    }
    while magnitude.last() == Some(&0) {
        magnitude.pop();
    }
    let bits = match magnitude.last() {
        None => return Some(0.0),
        Some(&top) => magnitude.len() * 8 - top.leading_zeros() as usize,
    };
    // The top 64 bits, with every lower bit folded into the lowest one (a "sticky" bit) so that
    // the conversion of the 64 bits to f64 rounds as the whole number would.
    let shift = bits.saturating_sub(64);
    let bit = |i: usize| magnitude.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1);
    let mut top: u64 = 0;
    for i in (shift..bits).rev() {
        top = (top << 1) | u64::from(bit(i));
    }
    if (0..shift).any(bit) {
        top |= 1;
    }
    let value = (top as f64) * 2f64.powi(i32::try_from(shift).ok()?);
    if value.is_infinite() {
        return None;
    }
    Some(if negative { -value } else { value })
}

/// Parses a string as Python's `complex()` does: `"1+2j"`, `"-3.5J"`, `"(1-j)"`, `"inf"`.
pub(crate) fn parse_complex(text: &str) -> Option<(f64, f64)> {
    let mut s = text.trim();
    if let Some(inner) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        s = inner.trim();
    }
    let float = |t: &str| -> Option<f64> {
        let lower = t.to_ascii_lowercase();
        let body = lower.trim_start_matches(['+', '-']);
        let word = matches!(body, "inf" | "infinity" | "nan");
        if !word
            && !body
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
        {
            return None;
        }
        t.parse::<f64>().ok()
    };
    let Some(body) = s.strip_suffix(['j', 'J']) else {
        return Some((float(s)?, 0.0));
    };
    // The imaginary part starts at the last sign that is not an exponent's.
    let split = body
        .char_indices()
        .rev()
        .find(|&(i, c)| (c == '+' || c == '-') && i > 0 && !matches!(body.as_bytes().get(i - 1), Some(b'e' | b'E')))
        .map(|(i, _)| i);
    let (real, imag) = match split {
        Some(i) => body.split_at(i),
        None => ("", body),
    };
    let imag = match imag {
        "" | "+" => 1.0,
        "-" => -1.0,
        other => float(other)?,
    };
    let real = if real.is_empty() { 0.0 } else { float(real)? };
    Some((real, imag))
}

/// Decodes a protocol-0 `STRING` argument: a Python bytes literal in single or double quotes.
pub(crate) fn parse_quoted(text: &[u8]) -> Option<Vec<u8>> {
    let text = text.trim_ascii_end();
    let (&first, rest) = text.split_first()?;
    let (&last, body) = rest.split_last()?;
    if first != last || (first != b'\'' && first != b'"') {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut bytes = body.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(e) = bytes.next() else {
            out.push(b'\\');
            break;
        };
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'x' => {
                let hi = bytes.next().and_then(hex_digit)?;
                let lo = bytes.next().and_then(hex_digit)?;
                out.push(hi * 16 + lo);
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match bytes.peek() {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            bytes.next();
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Decodes protocol-0 `UNICODE` text (Python's raw-unicode-escape: `\\uXXXX`, `\\UXXXXXXXX`,
/// every other byte is a Latin-1 character) into `surrogatepass` UTF-8, the form string nodes
/// hold.
pub(crate) fn parse_raw_unicode_escape(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        let width = match (b, text.get(i + 1)) {
            (b'\\', Some(b'u')) => 4,
            (b'\\', Some(b'U')) => 8,
            _ => 0,
        };
        if width == 0 {
            push_code_point(&mut out, u32::from(b));
            i += 1;
            continue;
        }
        let digits = text.get(i + 2..i + 2 + width)?;
        let code = u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
        if code > 0x10ffff {
            return None;
        }
        push_code_point(&mut out, code);
        i += 2 + width;
    }
    Some(out)
}

/// Appends a code point as UTF-8, surrogates included (as Python's `surrogatepass` does).
fn push_code_point(out: &mut Vec<u8>, code: u32) {
    match char::from_u32(code) {
        Some(c) => {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        // A lone surrogate (U+D800..U+DFFF): its 3-byte encoding.
        None => out.extend_from_slice(&[
            0xe0 | (code >> 12) as u8,
            0x80 | ((code >> 6) & 0x3f) as u8,
            0x80 | (code & 0x3f) as u8,
        ]),
    }
}

/// Whether `bytes` is text as Python decodes pickled strings (`'utf-8', 'surrogatepass'`):
/// UTF-8 in which encoded lone surrogates (`ED A0..BF xx`) are allowed.
pub(crate) fn is_surrogatepass_utf8(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(_) => return true,
            Err(e) => match rest.get(e.valid_up_to()..) {
                Some([0xed, 0xa0..=0xbf, 0x80..=0xbf, tail @ ..]) => rest = tail,
                _ => return false,
            },
        }
    }
}

/// The display form of `surrogatepass` text: each encoded lone surrogate becomes U+FFFD
/// (Rust strings cannot hold surrogates).
pub(crate) fn lossy_surrogates(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let (valid, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push(char::REPLACEMENT_CHARACTER);
                let skip = match bad {
                    [0xed, 0xa0..=0xbf, 0x80..=0xbf, ..] => 3,
                    _ => e.error_len().unwrap_or(bad.len()),
                };
                rest = bad.get(skip..).unwrap_or_default();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python_int_bytes(v: i128) -> Vec<u8> {
        // Same encoding as pickle.encode_long for the values used below.
        let mut b = v.to_le_bytes().to_vec();
        trim_twos_complement(&mut b);
        b
    }

    #[test]
    fn decimal_ints_become_small_or_twos_complement() {
        assert_eq!(parse_int(b"  -42\n"), Some(ParsedInt::Small(-42)));
        assert_eq!(parse_int(b"12x"), None);
        assert_eq!(parse_int(b"-"), None);
        let big = 1i128 << 70;
        assert_eq!(
            parse_int(big.to_string().as_bytes()),
            Some(ParsedInt::Big(python_int_bytes(big)))
        );
        let neg = -(1i128 << 65) - 3;
        assert_eq!(
            parse_int(neg.to_string().as_bytes()),
            Some(ParsedInt::Big(python_int_bytes(neg)))
        );
        assert_eq!(parse_int("9".repeat(MAX_DECIMAL_DIGITS + 1).as_bytes()), None);
    }

    #[test]
    fn big_ints_round_trip_through_decimal() {
        for v in [0i128, 1, -1, 255, -256, 1 << 64, -(1 << 64), i128::MAX, i128::MIN] {
            assert_eq!(big_to_decimal(&python_int_bytes(v)), Some(v.to_string()));
            assert_eq!(big_to_i128(&python_int_bytes(v)), Some(v));
        }
        assert_eq!(int_from_le_bytes(&[0xff]), LeInt::Small(-1));
        assert_eq!(int_from_le_bytes(&[0x00, 0x80]), LeInt::Small(-32768));
        assert_eq!(int_from_le_bytes(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), LeInt::Small(1));
        assert_eq!(int_from_le_bytes(&[1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]), LeInt::Big(9));
        assert_eq!(big_to_decimal(&vec![1; MAX_DECIMAL_BYTES + 1]), None);
    }

    #[test]
    fn big_integers_convert_to_the_nearest_float() {
        for v in [
            0i128,
            1,
            -1,
            1 << 70,
            -(1 << 70),
            (1 << 64) + 1,
            (1 << 53) + 1,
            (1 << 100) + (1 << 47),
        ] {
            assert_eq!(big_to_f64(&python_int_bytes(v)), Some(v as f64), "{v}");
        }
        assert_eq!(
            big_to_f64(&[0u8; 200].iter().chain(&[1]).copied().collect::<Vec<_>>()),
            None
        );
        assert_eq!(parse_complex("1+2j"), Some((1.0, 2.0)));
        assert_eq!(parse_complex(" (-1.5e3-j) "), Some((-1500.0, -1.0)));
        assert_eq!(parse_complex("2J"), Some((0.0, 2.0)));
        assert_eq!(parse_complex("3"), Some((3.0, 0.0)));
        assert_eq!(parse_complex("1e-3+1e+2j"), Some((0.001, 100.0)));
        assert_eq!(parse_complex("x"), None);
    }

    #[test]
    fn quoted_strings_and_raw_unicode_escape() {
        assert_eq!(parse_quoted(b"'a\\'b\\x41\\101\\n'"), Some(b"a'bAA\n".to_vec()));
        assert_eq!(parse_quoted(b"\"x\""), Some(b"x".to_vec()));
        assert_eq!(parse_quoted(b"'unterminated"), None);
        assert_eq!(
            parse_raw_unicode_escape(b"caf\xe9 \\u20ac"),
            Some("café €".as_bytes().to_vec())
        );
        assert_eq!(parse_raw_unicode_escape(b"\\ud800"), Some(vec![0xed, 0xa0, 0x80]));
        assert_eq!(parse_raw_unicode_escape(b"\\u12"), None);
        assert!(is_surrogatepass_utf8(b"a\xed\xa0\x80b"));
        assert_eq!(lossy_surrogates(b"a\xed\xa0\x80b"), "a\u{fffd}b");
        assert!(!is_surrogatepass_utf8(b"\xff\xfe"));
    }
}

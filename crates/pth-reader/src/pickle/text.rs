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
fn trim_twos_complement(bytes: &mut Vec<u8>) {
    while bytes.len() > 1 {
        let [.., next, last] = bytes[..] else { break };
        let redundant = (last == 0 && next < 0x80) || (last == 0xff && next >= 0x80);
        if !redundant {
            break;
        }
        bytes.pop();
    }
}

/// Decodes `LONG1`/`LONG4` payloads: `i64` when it fits, otherwise the bytes as they are.
pub(crate) fn int_from_le_bytes(bytes: &[u8]) -> ParsedInt {
    if bytes.is_empty() {
        return ParsedInt::Small(0);
    }
    if bytes.len() <= 8 {
        let negative = bytes.last().is_some_and(|&b| b >= 0x80);
        let mut buf = [if negative { 0xff } else { 0 }; 8];
        for (dst, src) in buf.iter_mut().zip(bytes) {
            *dst = *src;
        }
        return ParsedInt::Small(i64::from_le_bytes(buf));
    }
    let mut v = bytes.to_vec();
    trim_twos_complement(&mut v);
    if v.len() <= 8 {
        return int_from_le_bytes(&v);
    }
    ParsedInt::Big(v)
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

/// Decimal text of a little-endian two's complement integer (quadratic: callers bound size).
pub(crate) fn big_to_decimal(bytes: &[u8]) -> String {
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

/// Decodes protocol-0 `UNICODE` text (Python's raw-unicode-escape: `\uXXXX`, `\UXXXXXXXX`,
/// every other byte is a Latin-1 character).
pub(crate) fn parse_raw_unicode_escape(text: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        let width = match (b, text.get(i + 1)) {
            (b'\\', Some(b'u')) => 4,
            (b'\\', Some(b'U')) => 8,
            _ => 0,
        };
        if width == 0 {
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let digits = text.get(i + 2..i + 2 + width)?;
        let code = u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
        // Lone surrogates cannot be Rust chars; Python would keep them. Use U+FFFD.
        out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
        i += 2 + width;
    }
    Some(out)
}

/// UTF-8 text as Python decodes pickled strings (`'utf-8', 'surrogatepass'`): encoded lone
/// surrogates (`ED A0..BF xx`), which Rust strings cannot hold, become U+FFFD; any other
/// invalid sequence is an error, as in Python.
pub(crate) fn utf8_surrogatepass(bytes: &[u8]) -> Option<Box<str>> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Some(s.into());
    }
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
                out.push_str(std::str::from_utf8(valid).ok()?);
                match bad {
                    [0xed, 0xa0..=0xbf, 0x80..=0xbf, tail @ ..] => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        rest = tail;
                    }
                    _ => return None,
                }
            }
        }
    }
    Some(out.into())
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
            assert_eq!(big_to_decimal(&python_int_bytes(v)), v.to_string());
            assert_eq!(big_to_i128(&python_int_bytes(v)), Some(v));
        }
        assert_eq!(int_from_le_bytes(&[0xff]), ParsedInt::Small(-1));
        assert_eq!(int_from_le_bytes(&[0x00, 0x80]), ParsedInt::Small(-32768));
        assert_eq!(int_from_le_bytes(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), ParsedInt::Small(1));
    }

    #[test]
    fn quoted_strings_and_raw_unicode_escape() {
        assert_eq!(parse_quoted(b"'a\\'b\\x41\\101\\n'"), Some(b"a'bAA\n".to_vec()));
        assert_eq!(parse_quoted(b"\"x\""), Some(b"x".to_vec()));
        assert_eq!(parse_quoted(b"'unterminated"), None);
        assert_eq!(parse_raw_unicode_escape(b"caf\xe9 \\u20ac"), Some("café €".to_string()));
        assert_eq!(parse_raw_unicode_escape(b"\\u12"), None);
        assert_eq!(utf8_surrogatepass(b"a\xed\xa0\x80b").as_deref(), Some("a\u{fffd}b"));
        assert_eq!(utf8_surrogatepass(b"\xff\xfe"), None);
    }
}

//! Entry names: which are refused, and the index that finds them as miniz does.

#![forbid(unsafe_code)]

use super::Dialect;
use crate::hashing::PositionIndex;
use crate::zip_anomaly::ZipAnomaly;

/// Flag bit 11: the name and comment are UTF-8.
const UTF8_FLAG: u16 = 1 << 11;

/// The bytes of a name that [`check_name`] looks for, found 8 at a time (names are checked
/// for every entry, and a pass per check, or a byte at a time, would cost more than the rest
/// of the entry's checks): each field marks the bytes found with bit 7 of their lane.
#[derive(Debug, Default)]
struct Found {
    non_ascii: u64,
    backslash: u64,
    nul: u64,
    /// Dots that follow a slash: they start a component, which may be `.` or `..`.
    dot_after_slash: u64,
    /// Slashes followed by a slash.
    doubled_slash: u64,
    /// Bit 7: the last byte of the previous word is a slash.
    slash_before: u64,
}

impl Found {
    /// Each byte lane's low bit.
    const LOW: u64 = 0x0101_0101_0101_0101;
    /// Each byte lane's high bit.
    const HIGH: u64 = 0x8080_8080_8080_8080;

    /// What `path` holds.
    fn of(path: &[u8]) -> Found {
        let mut found = Found::default();
        let mut words = path.chunks_exact(8);
        for word in &mut words {
            found.add(u64::from_le_bytes(word.try_into().unwrap_or_default()));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            // Padded with a byte that is none of those looked for.
            let mut last = [b'a'; 8];
            last.iter_mut().zip(rest).for_each(|(to, &from)| *to = from);
            found.add(u64::from_le_bytes(last));
        }
        found
    }

    /// Bit 7 of each byte lane of `word` that holds `byte`. Exact, unlike the usual zero-byte
    /// test (which may mark lanes above a match): no addition carries out of a lane.
    fn lanes(word: u64, byte: u8) -> u64 {
        let zero_where_equal = word ^ (Self::LOW * u64::from(byte));
        // Bit 7 ends up set in lanes with a non-zero low 7 bits (the addition carries into
        // it) or a set bit 7 (the `|`): in all but the zero lanes.
        let non_zero = ((zero_where_equal & !Self::HIGH) + !Self::HIGH) | zero_where_equal;
        !non_zero & Self::HIGH
    }

    /// Adds the next 8 bytes of the name (little-endian: its first byte in the low lane).
    fn add(&mut self, word: u64) {
        self.non_ascii |= word & Self::HIGH;
        self.backslash |= Self::lanes(word, b'\\');
        self.nul |= Self::lanes(word, 0);
        let dots = Self::lanes(word, b'.');
        let slashes = Self::lanes(word, b'/');
        // A slash whose next byte is one: the next lane moved onto it, and the last byte of the
        // previous word onto the first lane.
        self.doubled_slash |= slashes & ((slashes >> 8) | self.slash_before);
        // A dot after a slash: the lane before moved onto it, and the previous word's last.
        self.dot_after_slash |= dots & ((slashes << 8) | self.slash_before);
        self.slash_before = slashes >> 56;
    }
}

/// Checks the name of an entry: `Err` says why it is refused.
///
/// torch compares names as bytes, Python's `zipfile` decodes them (UTF-8 with flag bit 11,
/// cp437 without), and tools that extract archives normalise paths. A name is kept only when
/// all of them mean the same file by it: UTF-8, relative, without `.`/`..` or empty components
/// (a trailing `/` marks a directory), backslashes or NUL bytes (Python cuts names at NUL, miniz
/// does not). Reading an SB3 zip as Python does, a non-ASCII name must also carry the UTF-8 flag.
pub(super) fn check_name(raw: &[u8], flags: u16, dialect: Dialect) -> Result<(), ZipAnomaly> {
    let bad = |reason| ZipAnomaly::BadName {
        name: String::from_utf8_lossy(raw).into_owned(),
        reason,
    };
    let path = raw.strip_suffix(b"/").unwrap_or(raw);
    let found = Found::of(path);
    // An ASCII name is UTF-8: only the others need decoding.
    let ascii = found.non_ascii == 0;
    if !ascii && std::str::from_utf8(raw).is_err() {
        return Err(bad("is not UTF-8"));
    }
    if raw.is_empty() {
        return Err(bad("is empty"));
    }
    if raw.starts_with(b"/") {
        return Err(bad("is absolute"));
    }
    if found.backslash != 0 {
        return Err(bad("contains a backslash"));
    }
    if found.nul != 0 {
        return Err(bad("contains a NUL byte"));
    }
    // A component is empty at either end of the path or between two slashes; it can be `.`
    // or `..` only if it starts with a dot, and then each component is looked at (rare:
    // `.data/version` in torch archives).
    let empty_component = path.is_empty() || path.starts_with(b"/") || path.ends_with(b"/") || found.doubled_slash != 0;
    let dot_component = (path.starts_with(b".") || found.dot_after_slash != 0)
        && path
            .split(|&byte| byte == b'/')
            .any(|component| matches!(component, b"." | b".."));
    let bad_component = empty_component || dot_component;
    if bad_component {
        return Err(bad("has an empty, `.` or `..` component"));
    }
    if dialect == Dialect::Python && !ascii && flags & UTF8_FLAG == 0 {
        return Err(ZipAnomaly::NameEncoding {
            name: String::from_utf8_lossy(raw).into_owned(),
        });
    }
    Ok(())
}

/// The entries by ASCII-lowercased name: positions keyed by the lowercased name's hash and
/// compared against the entries' own names (no lowercased copy of every name is kept: an
/// archive of 20,000 records would allocate 20,000 strings for it).
#[derive(Debug, Clone)]
pub(super) struct NameIndex(PositionIndex);

impl NameIndex {
    /// The index of the `count` names that `name_at` gives by position (entry order),
    /// refusing duplicates and names that differ only in ASCII case.
    ///
    /// miniz sorts the directory by lowercased name and binary-searches it
    /// (`mz_zip_locate_file_binary_search`), so of two names equal but for case torch finds
    /// either, and of two equal names, either; Python's `zipfile` keeps the last of two equal
    /// names.
    pub(super) fn build<'a>(count: usize, name_at: impl Fn(usize) -> Option<&'a str>) -> Result<NameIndex, ZipAnomaly> {
        // Room for every name (the entries exist already): no rehash while building.
        let mut positions = PositionIndex::with_capacity(count);
        // `positions.hash`, for the closure that `positions` calls while borrowed.
        let seed = positions.seed();
        let lowered_hash = |at| {
            use std::hash::BuildHasher;
            seed.hash_one(name_at(at).unwrap_or_default().to_ascii_lowercase().as_bytes())
        };
        let mut lowered = String::new();
        for position in 0..count {
            let name = name_at(position).unwrap_or_default();
            // Most names are lowercase already: hashed as they are, without a lowercased copy.
            let key = if has_ascii_uppercase(name.as_bytes()) {
                lowered.clear();
                lowered.push_str(name);
                lowered.make_ascii_lowercase();
                lowered.as_str()
            } else {
                name
            };
            let hash = positions.hash(key.as_bytes());
            let is_name = |at| name_at(at).is_some_and(|earlier| same_but_for_case(earlier, key));
            if let Some(earlier) = positions.find_or_insert(hash, position, is_name, lowered_hash) {
                let first = name_at(earlier).unwrap_or_default().to_owned();
                return Err(if first == name {
                    ZipAnomaly::DuplicateName { name: first }
                } else {
                    ZipAnomaly::CaseCollision {
                        first,
                        second: name.to_owned(),
                    }
                });
            }
        }
        Ok(NameIndex(positions))
    }

    /// The position of the name whose ASCII-lowercased form is `lowered`; `name_at` gives the
    /// names by position.
    pub(super) fn get<'n>(&self, lowered: &str, name_at: impl Fn(usize) -> Option<&'n str>) -> Option<usize> {
        let NameIndex(positions) = self;
        positions.find(positions.hash(lowered.as_bytes()), |at| {
            name_at(at).is_some_and(|name| same_but_for_case(name, lowered))
        })
    }
}

/// Whether `name` lowercased (ASCII) is `lowered`. Most names are lowercase already: comparing
/// them as they are (a `memcmp`) settles those without comparing byte by byte ignoring case.
fn same_but_for_case(name: &str, lowered: &str) -> bool {
    name == lowered || name.eq_ignore_ascii_case(lowered)
}

/// Whether `name` has a byte `A`–`Z`; looked at 8 bytes at a time.
fn has_ascii_uppercase(name: &[u8]) -> bool {
    let mut words = name.chunks_exact(8);
    let mut upper = 0;
    for word in &mut words {
        upper |= uppercase_lanes(u64::from_le_bytes(word.try_into().unwrap_or_default()));
    }
    upper != 0 || words.remainder().iter().any(u8::is_ascii_uppercase)
}

/// Bit 7 of each byte lane of `word` that holds `A`–`Z`.
fn uppercase_lanes(word: u64) -> u64 {
    const LOW: u64 = Found::LOW;
    const HIGH: u64 = Found::HIGH;
    // With bit 7 of each lane cleared, adding to a lane cannot carry out of it: bit 7 of the
    // sums says whether the byte is at least `A`, and more than `Z`.
    let seven_bits = word & !HIGH;
    let from_a = seven_bits + LOW * u64::from(0x80 - b'A');
    let past_z = seven_bits + LOW * u64::from(0x80 - b'Z' - 1);
    from_a & !past_z & !word & HIGH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_tools_read_differently_are_refused() {
        let ok = |n: &str| check_name(n.as_bytes(), UTF8_FLAG, Dialect::Torch).is_ok();
        assert!(ok("archive/data/0") && ok("archive/") && ok("é/x"));
        assert!(ok(".a") && ok("a..b") && ok("...") && ok("a/.b/") && ok("a/b/"));
        for bad in [
            "", "/abs", "a\\b", "a\0b", "a/../b", "a/./b", "a//b", "..", "a//", "./a", "a/.", "a/..", "a\\", ".", "./",
        ] {
            assert!(!ok(bad), "{bad:?}");
        }
        assert!(check_name(b"\xff", 0, Dialect::Torch).is_err());
        assert!(check_name("é".as_bytes(), 0, Dialect::Torch).is_ok());
        let python = check_name("é".as_bytes(), 0, Dialect::Python);
        assert_eq!(python, Err(ZipAnomaly::NameEncoding { name: "é".into() }));
    }

    /// The checks as they were written first, a byte at a time: what [`check_name`] must
    /// decide for every name.
    fn reference(raw: &[u8], flags: u16, dialect: Dialect) -> Result<(), ZipAnomaly> {
        let bad = |reason| ZipAnomaly::BadName {
            name: String::from_utf8_lossy(raw).into_owned(),
            reason,
        };
        let name = std::str::from_utf8(raw).map_err(|_| bad("is not UTF-8"))?;
        if name.is_empty() {
            return Err(bad("is empty"));
        }
        if name.starts_with('/') {
            return Err(bad("is absolute"));
        }
        let path = name.strip_suffix('/').unwrap_or(name).as_bytes();
        let (mut backslash, mut nul, mut bad_component, mut ascii) = (false, false, false, true);
        let mut component_start = 0;
        for (at, &byte) in path.iter().enumerate() {
            match byte {
                b'\\' => backslash = true,
                0 => nul = true,
                b'/' => {
                    bad_component |= matches!(path.get(component_start..at), Some(b"" | b"." | b".."));
                    component_start = at + 1;
                }
                _ => ascii &= byte.is_ascii(),
            }
        }
        bad_component |= matches!(path.get(component_start..), Some(b"" | b"." | b".."));
        if backslash {
            return Err(bad("contains a backslash"));
        }
        if nul {
            return Err(bad("contains a NUL byte"));
        }
        if bad_component {
            return Err(bad("has an empty, `.` or `..` component"));
        }
        if dialect == Dialect::Python && !ascii && flags & UTF8_FLAG == 0 {
            return Err(ZipAnomaly::NameEncoding { name: name.to_owned() });
        }
        Ok(())
    }

    #[test]
    fn names_are_checked_as_the_byte_at_a_time_reference_checks_them() {
        // Every name of up to 4 symbols, each symbol a byte a check looks for or an ordinary
        // one, placed at every offset of a word (by a prefix of ordinary bytes).
        let symbols: [&[u8]; 8] = [b"a", b"/", b".", b"\\", b"\0", "é".as_bytes(), b"\xff", b"A"];
        let mut names = vec![Vec::new()];
        let mut longest = names.clone();
        for _ in 0..4 {
            longest = longest
                .iter()
                .flat_map(|n| symbols.iter().map(move |s| [n.as_slice(), s].concat()))
                .collect();
            names.extend(longest.iter().cloned());
        }
        for name in &names {
            for prefix in ["", "x", "xxxxxx", "xxxxxxx", "xxxxxxxx/", "xxxxxxxxxxxxxx/"] {
                let raw = [prefix.as_bytes(), name].concat();
                for (flags, dialect) in [(0, Dialect::Torch), (0, Dialect::Python), (UTF8_FLAG, Dialect::Python)] {
                    assert_eq!(
                        check_name(&raw, flags, dialect),
                        reference(&raw, flags, dialect),
                        "{:?}",
                        String::from_utf8_lossy(&raw)
                    );
                }
            }
        }
    }

    #[test]
    fn uppercase_is_found_in_every_lane() {
        for byte in 0..=255u8 {
            for lane in 0..8 {
                let word = u64::from(byte) << (8 * lane) | 0x6161_7a5a_405b_6001 & !(0xff << (8 * lane));
                let expected = word.to_le_bytes().map(|b| u8::from(b.is_ascii_uppercase()) << 7);
                assert_eq!(
                    uppercase_lanes(word),
                    u64::from_le_bytes(expected),
                    "{byte:#x} in lane {lane}"
                );
                let mut name = word.to_le_bytes().to_vec();
                assert_eq!(has_ascii_uppercase(&name), expected.iter().any(|&b| b != 0));
                name.push(byte);
                assert_eq!(has_ascii_uppercase(&name), name.iter().any(u8::is_ascii_uppercase));
            }
        }
    }

    #[test]
    fn the_index_refuses_duplicates_and_case_twins() {
        let index_of = |names: &[&'static str]| NameIndex::build(names.len(), |at| names.get(at).copied());
        let names = ["a/B", "a/c"];
        let index = index_of(&names).unwrap();
        assert_eq!(index.get("a/b", |at| names.get(at).copied()), Some(0));
        assert_eq!(index.get("a/c", |at| names.get(at).copied()), Some(1));
        assert_eq!(index.get("a/d", |at| names.get(at).copied()), None);
        assert!(matches!(
            index_of(&["a/b", "a/b"]),
            Err(ZipAnomaly::DuplicateName { .. })
        ));
        assert!(matches!(
            index_of(&["a/b", "A/b"]),
            Err(ZipAnomaly::CaseCollision { .. })
        ));
        assert!(index_of(&["a/é", "a/É"]).is_ok(), "miniz lowercases ASCII only");
    }
}

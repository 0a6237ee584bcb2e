//! Entry names: which are refused, and the index that finds them as miniz does.

#![forbid(unsafe_code)]

use super::Dialect;
use crate::hashing::PositionIndex;
use crate::zip_anomaly::ZipAnomaly;

/// Flag bit 11: the name and comment are UTF-8.
const UTF8_FLAG: u16 = 1 << 11;

/// The name of an entry, or the reason it is refused.
///
/// torch compares names as bytes, Python's `zipfile` decodes them (UTF-8 with flag bit 11,
/// cp437 without), and tools that extract archives normalise paths. A name is kept only when
/// all of them mean the same file by it: UTF-8, relative, without `.`/`..` or empty components
/// (a trailing `/` marks a directory), backslashes or NUL bytes (Python cuts names at NUL, miniz
/// does not). Reading an SB3 zip as Python does, a non-ASCII name must also carry the UTF-8 flag.
pub(super) fn entry_name(raw: &[u8], flags: u16, dialect: Dialect) -> Result<String, ZipAnomaly> {
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
    // One pass over the bytes for every check (names are checked for every entry, and most
    // are short: a pass per check would cost more than the checks), reported in this order.
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
    Ok(name.to_owned())
}

/// The entries by ASCII-lowercased name: positions keyed by the lowercased name's hash and
/// compared against the entries' own names (no lowercased copy of every name is kept: an
/// archive of 20,000 records would allocate 20,000 strings for it).
#[derive(Debug, Clone)]
pub(super) struct NameIndex(PositionIndex);

impl NameIndex {
    /// The index of `names` (in entry order), refusing duplicates and names that differ only
    /// in ASCII case.
    ///
    /// miniz sorts the directory by lowercased name and binary-searches it
    /// (`mz_zip_locate_file_binary_search`), so of two names equal but for case torch finds
    /// either, and of two equal names, either; Python's `zipfile` keeps the last of two equal
    /// names.
    pub(super) fn build<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> Result<NameIndex, ZipAnomaly> {
        // Room for every name (the entries exist already): no rehash while building.
        let mut index = NameIndex(PositionIndex::with_capacity(names.len()));
        let mut originals: Vec<&str> = Vec::new();
        let mut lowered = String::new();
        for (position, name) in names.enumerate() {
            lowered.clear();
            lowered.push_str(name);
            lowered.make_ascii_lowercase();
            if let Some(earlier) = index.get(&lowered, |at| originals.get(at).copied()) {
                let first = originals.get(earlier).copied().unwrap_or_default().to_owned();
                return Err(if first == name {
                    ZipAnomaly::DuplicateName { name: first }
                } else {
                    ZipAnomaly::CaseCollision {
                        first,
                        second: name.to_owned(),
                    }
                });
            }
            originals.push(name);
            let NameIndex(positions) = &mut index;
            let hash = positions.hash(lowered.as_bytes());
            positions.insert(hash, position, |at| {
                originals.get(at).copied().unwrap_or_default().to_ascii_lowercase()
            });
        }
        Ok(index)
    }

    /// The position of the name whose ASCII-lowercased form is `lowered`; `name_at` gives the
    /// names by position.
    pub(super) fn get<'n>(&self, lowered: &str, name_at: impl Fn(usize) -> Option<&'n str>) -> Option<usize> {
        let NameIndex(positions) = self;
        positions.find(positions.hash(lowered.as_bytes()), |at| {
            name_at(at).is_some_and(|name| name.eq_ignore_ascii_case(lowered))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_tools_read_differently_are_refused() {
        let ok = |n: &str| entry_name(n.as_bytes(), UTF8_FLAG, Dialect::Torch).is_ok();
        assert!(ok("archive/data/0") && ok("archive/") && ok("é/x"));
        assert!(ok(".a") && ok("a..b") && ok("...") && ok("a/.b/") && ok("a/b/"));
        for bad in [
            "", "/abs", "a\\b", "a\0b", "a/../b", "a/./b", "a//b", "..", "a//", "./a", "a/.", "a/..", "a\\", ".", "./",
        ] {
            assert!(!ok(bad), "{bad:?}");
        }
        assert!(entry_name(b"\xff", 0, Dialect::Torch).is_err());
        assert!(entry_name("é".as_bytes(), 0, Dialect::Torch).is_ok());
        let python = entry_name("é".as_bytes(), 0, Dialect::Python);
        assert_eq!(python, Err(ZipAnomaly::NameEncoding { name: "é".into() }));
    }

    #[test]
    fn the_index_refuses_duplicates_and_case_twins() {
        let index_of = |names: &[&str]| NameIndex::build(names.iter().copied());
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

//! Entry names: which are refused, and the index that finds them as miniz does.

#![forbid(unsafe_code)]

use super::Dialect;
use crate::hashing::FastMap;
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
    let path = name.strip_suffix('/').unwrap_or(name);
    if name.is_empty() {
        return Err(bad("is empty"));
    }
    if name.starts_with('/') {
        return Err(bad("is absolute"));
    }
    if name.contains('\\') {
        return Err(bad("contains a backslash"));
    }
    if name.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(bad("has an empty, `.` or `..` component"));
    }
    if dialect == Dialect::Python && !name.is_ascii() && flags & UTF8_FLAG == 0 {
        return Err(ZipAnomaly::NameEncoding { name: name.to_owned() });
    }
    Ok(name.to_owned())
}

/// The entries by ASCII-lowercased name, refusing duplicates and names that differ only in
/// ASCII case.
///
/// miniz sorts the directory by lowercased name and binary-searches it
/// (`mz_zip_locate_file_binary_search`), so of two names equal but for case torch finds either,
/// and of two equal names, either; Python's `zipfile` keeps the last of two equal names.
pub(super) fn index<'a>(names: impl Iterator<Item = &'a str>) -> Result<FastMap<String, usize>, ZipAnomaly> {
    let mut by_name: FastMap<String, usize> = FastMap::default();
    let mut originals: Vec<&str> = Vec::new();
    for (position, name) in names.enumerate() {
        originals.push(name);
        if let Some(&earlier) = by_name.get(&name.to_ascii_lowercase()) {
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
        by_name.insert(name.to_ascii_lowercase(), position);
    }
    Ok(by_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_tools_read_differently_are_refused() {
        let ok = |n: &str| entry_name(n.as_bytes(), UTF8_FLAG, Dialect::Torch).is_ok();
        assert!(ok("archive/data/0") && ok("archive/") && ok("é/x"));
        for bad in ["", "/abs", "a\\b", "a\0b", "a/../b", "a/./b", "a//b", "..", "a//"] {
            assert!(!ok(bad), "{bad:?}");
        }
        assert!(entry_name(b"\xff", 0, Dialect::Torch).is_err());
        assert!(entry_name("é".as_bytes(), 0, Dialect::Torch).is_ok());
        let python = entry_name("é".as_bytes(), 0, Dialect::Python);
        assert_eq!(python, Err(ZipAnomaly::NameEncoding { name: "é".into() }));
    }

    #[test]
    fn the_index_refuses_duplicates_and_case_twins() {
        let index_of = |names: &[&str]| index(names.iter().copied());
        assert_eq!(index_of(&["a/B", "a/c"]).unwrap().get("a/b"), Some(&0));
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

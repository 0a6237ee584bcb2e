//! Test helpers shared by the workspace's crates (a dev-dependency only): where the project,
//! its fixtures and the shared corpus are, reading manifests, and hashing tensor bytes.
#![forbid(unsafe_code)]
#![allow(clippy::panic, clippy::expect_used)]

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// The project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file under `fixtures/`.
pub fn fixture(relative: &str) -> PathBuf {
    root().join("fixtures").join(relative)
}

/// The shared corpus (`$PTH_CORPUS`, default `../shared/corpus` beside the project), or `None`
/// when it is absent. With `PTH_REQUIRE_CORPUS=1` (as `.ci/run` sets) a missing corpus panics,
/// failing the test instead of skipping it.
pub fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("PTH_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/corpus"));
    if dir.join("README.md").exists() {
        return Some(dir);
    }
    if std::env::var("PTH_REQUIRE_CORPUS").is_ok_and(|v| v == "1") {
        panic!("PTH_REQUIRE_CORPUS=1 but the corpus is missing at {}", dir.display());
    }
    eprintln!(
        "skipping: no corpus at {} (set PTH_REQUIRE_CORPUS=1 to make this fail)",
        dir.display()
    );
    None
}

/// A JSON file (a manifest), or a panic naming it.
pub fn load_json(path: &Path) -> Json {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Hex sha256, as the manifests write it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The name of an enum value's variant (`Overlap` for `Overlap { .. }`), from its `Debug` form:
/// how manifests name an expected error or warning.
pub fn variant_name(value: &impl std::fmt::Debug) -> String {
    format!("{value:?}")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

/// A manifest's array of sizes (`shape`, `stride`) as `usize`s.
pub fn usizes(v: &Json) -> Vec<usize> {
    let items = v.as_array().unwrap_or_else(|| panic!("not an array: {v}"));
    items
        .iter()
        .map(|x| x.as_u64().unwrap_or_else(|| panic!("not a size: {x}")) as usize)
        .collect()
}

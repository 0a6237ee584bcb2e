//! Comparing torch checkpoints with their manifests (the schema of
//! `../shared/corpus/README.md`).

use pth_reader::{Checkpoint, Options, TensorView};
use serde_json::Value as Json;

use crate::{load_json, sha256_hex, usizes};

/// Compares one tensor with its manifest entry; returns what differs.
pub fn compare(name: &str, t: &TensorView<'_>, want: &Json) -> Result<(), String> {
    let dtype = want["dtype"].as_str().unwrap();
    if t.dtype().name() != dtype {
        return Err(format!("{name}: dtype {} want {dtype}", t.dtype()));
    }
    if t.shape() != usizes(&want["shape"]).as_slice() {
        return Err(format!("{name}: shape {:?} want {}", t.shape(), want["shape"]));
    }
    if t.stride() != usizes(&want["stride"]).as_slice() {
        return Err(format!("{name}: stride {:?} want {}", t.stride(), want["stride"]));
    }
    if t.storage_offset() as u64 != want["storage_offset"].as_u64().unwrap() {
        return Err(format!(
            "{name}: offset {} want {}",
            t.storage_offset(),
            want["storage_offset"]
        ));
    }
    if let Some(sha) = want.get("sha256").and_then(Json::as_str) {
        let bytes = t.to_le_bytes().map_err(|e| format!("{name}: {e}"))?;
        let got = sha256_hex(&bytes);
        if got != sha {
            return Err(format!("{name}: sha256 {got} want {sha}"));
        }
    }
    Ok(())
}

/// Checks every tensor of every file of a torch manifest; returns (files, failures).
pub fn check_manifest(manifest: &std::path::Path, base: &std::path::Path, lenient_key: bool) -> (usize, Vec<String>) {
    let m = load_json(manifest);
    let mut failures = Vec::new();
    let files = m["files"].as_array().unwrap();
    for f in files {
        let file = f["file"].as_str().unwrap();
        let lenient = lenient_key && f.get("lenient").and_then(Json::as_bool).unwrap_or(false);
        let options = Options::default().lenient(lenient);
        let ckpt = match Checkpoint::open(base.join(file), &options) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{file}: {e}"));
                continue;
            }
        };
        let want = f["tensors"].as_array().unwrap();
        let got: Vec<(&str, &TensorView<'_>)> = ckpt.tensors().collect();
        if got.len() != want.len() {
            let names: Vec<&str> = got.iter().map(|(n, _)| *n).collect();
            failures.push(format!("{file}: {} tensors {names:?}, want {}", got.len(), want.len()));
            continue;
        }
        for w in want {
            let name = w["name"].as_str().unwrap();
            match ckpt.tensor(name) {
                Ok(t) => {
                    if let Err(e) = compare(name, t, w) {
                        failures.push(format!("{file}: {e}"));
                    }
                }
                Err(e) => failures.push(format!("{file}: {e}")),
            }
        }
    }
    (files.len(), failures)
}

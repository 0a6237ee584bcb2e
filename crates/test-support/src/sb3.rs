//! Comparing SB3 models with their manifests (the schema of `../shared/corpus/README.md`,
//! with the comparison rules of `../shared/tools/sb3_info.py`).

use std::collections::HashMap;
use std::path::Path;

use pth_reader::Options;
use sb3_format::{Model, Space};
use serde_json::{json, Value as Json};

use crate::{load_json, sha256_hex, usizes};

fn num(x: &Json) -> Option<f64> {
    match x {
        Json::String(s) => match s.as_str() {
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            "nan" => Some(f64::NAN),
            _ => None,
        },
        other => other.as_f64(),
    }
}

/// sb3_info.py's `same_space`: every key of `want` must match; `spaces` recursively with the
/// same key set; `low`/`high` numerically (nan equal to nan).
pub fn same_space(got: &Json, want: &Json) -> bool {
    if got.get("type") != want.get("type") {
        return false;
    }
    let Some(want) = want.as_object() else {
        return false;
    };
    want.iter().all(|(k, v)| match k.as_str() {
        "spaces" => {
            let (Some(g), Some(w)) = (got.get(k).and_then(Json::as_object), v.as_object()) else {
                return false;
            };
            g.len() == w.len()
                && w.iter()
                    .all(|(key, ws)| g.get(key).is_some_and(|gs| same_space(gs, ws)))
        }
        "low" | "high" => {
            let (Some(g), Some(w)) = (got.get(k).and_then(Json::as_array), v.as_array()) else {
                return false;
            };
            g.len() == w.len()
                && g.iter().zip(w).all(|(a, b)| match (num(a), num(b)) {
                    (Some(a), Some(b)) => a == b || (a.is_nan() && b.is_nan()),
                    _ => false,
                })
        }
        _ => got.get(k) == Some(v),
    })
}

/// Opens one model and compares it with its manifest entry; returns what differs.
pub fn check_model(base: &Path, entry: &Json) -> Result<(), String> {
    let file = entry["file"].as_str().unwrap();
    let model = Model::open(base.join(file), &Options::default().lenient(true)).map_err(|e| format!("open: {e}"))?;
    let info = json!({
        "sb3_version": model.sb3_version(),
        "system_info": model.system_info(),
        "entries": model.entry_names().collect::<Vec<_>>(),
        "policy_class": model.policy_class().map(|c| c.name.as_str()),
        "observation_space": model.observation_space(),
        "action_space": model.action_space(),
    });
    for key in ["sb3_version", "system_info", "entries", "policy_class"] {
        if info[key] != entry[key] {
            return Err(format!("{key}: got {} want {}", info[key], entry[key]));
        }
    }
    for key in ["observation_space", "action_space"] {
        if !same_space(&info[key], &entry[key]) {
            return Err(format!("{key}: got {} want {}", info[key], entry[key]));
        }
    }
    let want_dicts = entry["state_dicts"].as_object().unwrap();
    let got_names: Vec<&str> = model.state_dicts().map(|(n, _)| n).collect();
    if got_names.len() != want_dicts.len() {
        return Err(format!(
            "state dicts {got_names:?}, want {:?}",
            want_dicts.keys().collect::<Vec<_>>()
        ));
    }
    for (sd, tensors) in want_dicts {
        let ckpt = model.state_dict(sd).ok_or_else(|| format!("no state dict {sd}"))?;
        let tensors = tensors.as_array().unwrap();
        let got: HashMap<&str, _> = ckpt.tensors().collect();
        if ckpt.len() != tensors.len() {
            return Err(format!("{sd}: {} tensors, want {}", ckpt.len(), tensors.len()));
        }
        for t in tensors {
            let name = t["name"].as_str().unwrap();
            let g = got.get(name).ok_or_else(|| format!("{sd}: no tensor {name:?}"))?;
            if g.dtype().name() != t["dtype"].as_str().unwrap() {
                return Err(format!("{sd}.{name}: dtype {} want {}", g.dtype(), t["dtype"]));
            }
            let shape = usizes(&t["shape"]);
            if g.shape() != shape.as_slice() {
                return Err(format!("{sd}.{name}: shape {:?} want {shape:?}", g.shape()));
            }
            let bytes = g.to_le_bytes().map_err(|e| format!("{sd}.{name}: {e}"))?;
            let sha = sha256_hex(&bytes);
            if sha != t["sha256"].as_str().unwrap() {
                return Err(format!("{sd}.{name}: sha256 {sha} want {}", t["sha256"]));
            }
        }
    }
    Ok(())
}

/// Checks every model of an SB3 manifest; returns (models, failures).
pub fn check_manifest(manifest: &Path, base: &Path) -> (usize, Vec<String>) {
    let m = load_json(manifest);
    let models = m["models"].as_array().unwrap();
    let failures = models
        .iter()
        .filter_map(|e| {
            check_model(base, e)
                .err()
                .map(|why| format!("{}: {why}", e["file"].as_str().unwrap()))
        })
        .collect();
    (models.len(), failures)
}

/// Flat element count of a Box space, or of each key of a Dict of Boxes.
pub fn box_len(space: &Space) -> Option<usize> {
    match space {
        Space::Box(b) => Some(b.shape().iter().product()),
        _ => None,
    }
}

//! The project's own fixtures, written by torch 2.15 (fixtures/generate.py): every dtype,
//! layout, protocol and container variant, compared tensor by tensor with the manifest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[test]
fn every_fixture_tensor_matches_torch() {
    let dir = test_support::root().join("fixtures");
    let (files, failures) = test_support::torch::check_manifest(&dir.join("torch/expected.json"), &dir, true);
    assert!(files >= 50, "the manifest lists {files} files");
    assert!(
        failures.is_empty(),
        "{} of {files} files differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

use std::collections::{BTreeMap, HashMap};

use pth_reader::{Checkpoint, ErrorKind, Kind, Options, Value};
use serde_json::{json, Value as Json};

fn manifest() -> Json {
    test_support::load_json(&test_support::root().join("fixtures/torch/expected.json"))
}

fn open(entry: &Json) -> Checkpoint<'static> {
    let path = test_support::root()
        .join("fixtures")
        .join(entry["file"].as_str().unwrap());
    let lenient = entry["lenient"].as_bool().unwrap_or(false);
    Checkpoint::open(&path, &Options::default().lenient(lenient)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn format_byte_order_and_locations_match() {
    for f in manifest()["files"].as_array().unwrap() {
        let ckpt = open(f);
        let file = f["file"].as_str().unwrap();
        assert_eq!(ckpt.format().name(), f["format"], "{file}");
        assert_eq!(ckpt.byte_order().name(), f["byteorder"], "{file}");
        if let Some(locations) = f.get("locations").and_then(Json::as_array) {
            let mut want: Vec<&str> = locations.iter().map(|l| l.as_str().unwrap()).collect();
            let mut got: Vec<&str> = ckpt.storages().iter().map(|s| s.location()).collect();
            want.sort_unstable();
            want.dedup();
            got.sort_unstable();
            got.dedup();
            assert_eq!(got, want, "{file}");
        }
    }
}

#[test]
fn strict_mode_refuses_exactly_the_files_torch_calls_unsafe_naming_the_global() {
    for f in manifest()["files"].as_array().unwrap() {
        let path = test_support::root().join("fixtures").join(f["file"].as_str().unwrap());
        let strict = Checkpoint::open(&path, &Options::default());
        match f.get("unsafe_globals").and_then(Json::as_array) {
            None => assert!(strict.is_ok(), "{}: {:?}", path.display(), strict.err()),
            Some(globals) => match strict {
                Err(e) if matches!(e.kind(), ErrorKind::GlobalRefused { .. }) => {
                    let ErrorKind::GlobalRefused { module, name } = e.kind() else {
                        unreachable!()
                    };
                    let full = format!("{module}.{name}");
                    assert!(
                        globals.iter().any(|g| g == &json!(full)),
                        "{}: refused {full}",
                        path.display()
                    );
                    let message = Checkpoint::open(&path, &Options::default())
                        .err()
                        .map(|e| e.to_string())
                        .unwrap_or_default();
                    assert!(message.contains(&full), "{message}");
                }
                other => panic!("{}: strict open gave {:?}", path.display(), other.map(|c| c.len())),
            },
        }
    }
}

#[test]
fn tensor_flags_storage_sharing_and_values_match() {
    for f in manifest()["files"].as_array().unwrap() {
        let ckpt = open(f);
        let file = f["file"].as_str().unwrap();
        let mut group_to_key: HashMap<u64, String> = HashMap::new();
        let mut key_to_group: HashMap<String, u64> = HashMap::new();
        for want in f["tensors"].as_array().unwrap() {
            let name = want["name"].as_str().unwrap();
            let t = ckpt.tensor(name).unwrap();
            let flag = |k: &str| want.get(k).and_then(Json::as_bool).unwrap_or(false);
            // TorchScript ground truth comes from `state_dict()`, which detaches.
            if f["format"] != "torchscript" {
                assert_eq!(t.requires_grad(), flag("requires_grad"), "{file} {name} requires_grad");
            }
            assert_eq!(t.is_parameter(), flag("is_parameter"), "{file} {name} is_parameter");
            assert_eq!(t.is_conj(), flag("conj"), "{file} {name} conj");
            assert_eq!(t.is_neg(), flag("neg"), "{file} {name} neg");
            assert_eq!(
                t.subclass(),
                want.get("subclass").and_then(Json::as_str),
                "{file} {name} subclass"
            );
            assert_eq!(t.has_data(), want.get("device").is_none(), "{file} {name} has data");
            if let (Some(group), Some(key)) = (want.get("storage_group").and_then(Json::as_u64), t.storage_key()) {
                let k = group_to_key.entry(group).or_insert_with(|| key.to_owned());
                assert_eq!(k, key, "{file} {name}: storage group {group} spans two storages");
                let g = key_to_group.entry(key.to_owned()).or_insert(group);
                assert_eq!(*g, group, "{file} {name}: storage {key} is in two groups");
            }
            if let Some(values) = want.get("values").and_then(Json::as_array) {
                check_values(file, name, t, values);
            }
        }
    }
}

/// Real dtypes: `to_f64_vec` against the manifest's values (float8 and bf16 conversions included).
fn check_values(file: &str, name: &str, t: &pth_reader::TensorView<'_>, values: &[Json]) {
    let dtype = t.dtype();
    if dtype.is_complex()
        || matches!(
            dtype.name(),
            "float4_e2m1fn_x2" | "bits8" | "bits16" | "bits1x8" | "bits2x4" | "bits4x2" | "quint4x2" | "quint2x4"
        )
    {
        return;
    }
    let got = t.to_f64_vec().unwrap_or_else(|e| panic!("{file} {name}: {e}"));
    assert_eq!(got.len(), values.len(), "{file} {name}");
    for (g, w) in got.iter().zip(values) {
        let ok = match w {
            Json::String(s) => match s.as_str() {
                "nan" => g.is_nan(),
                "inf" => *g == f64::INFINITY,
                "-inf" => *g == f64::NEG_INFINITY,
                _ => false,
            },
            Json::Bool(b) => *g == f64::from(u8::from(*b)),
            other => other
                .as_f64()
                .is_some_and(|w| w == *g || (w - g).abs() <= w.abs() * 1e-15),
        };
        assert!(ok, "{file} {name}: {g} want {w}");
    }
}

/// Every non-tensor leaf as the generator describes it (fixtures/generate.py `leaf_json`).
fn leaves(value: Value<'_>, path: &str, out: &mut BTreeMap<String, Json>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    let float = |f: f64| {
        if f.is_nan() {
            json!({"float": "nan"})
        } else if f.is_infinite() {
            json!({"float": if f > 0.0 { "inf" } else { "-inf" }})
        } else {
            json!(f)
        }
    };
    match value.kind() {
        Kind::Tensor(_) => {
            for (k, v) in value.attributes().iter().flat_map(|a| a.iter()) {
                leaves(v, &join(&key_text(k)), out);
            }
        }
        // A sparse tensor: a dict of its parts; the generator lists only the tensor parts.
        Kind::Dict(d) if d.class().is_some_and(|(m, n)| m == "torch" && n.starts_with("sparse_")) => {}
        Kind::Dict(d) => {
            if d.is_empty() && d.state().is_none() {
                out.insert(path.to_owned(), json!({}));
            }
            for (k, v) in d.iter() {
                leaves(v, &join(&key_text(k)), out);
            }
            if let Some(state) = d.state().and_then(|s| s.as_dict()) {
                for (k, v) in state.iter() {
                    leaves(v, &join(&key_text(k)), out);
                }
            }
        }
        Kind::List(s) | Kind::Tuple(s) => {
            if s.is_empty() {
                let empty = if matches!(value.kind(), Kind::List(_)) {
                    json!([])
                } else {
                    json!({"tuple": []})
                };
                out.insert(path.to_owned(), empty);
            }
            for (i, v) in s.iter().enumerate() {
                leaves(v, &join(&i.to_string()), out);
            }
        }
        Kind::None => drop(out.insert(path.to_owned(), Json::Null)),
        Kind::Bool(b) => drop(out.insert(path.to_owned(), json!(b))),
        Kind::Int(i) => drop(out.insert(path.to_owned(), json!(i))),
        Kind::BigInt(b) => drop(out.insert(path.to_owned(), json!({"int": b.to_decimal()}))),
        Kind::Float(f) => drop(out.insert(path.to_owned(), float(f))),
        Kind::Complex { re, im } => drop(out.insert(path.to_owned(), json!({"complex": [re, im]}))),
        Kind::Str(s) => drop(out.insert(path.to_owned(), json!(s))),
        Kind::Bytes(b) => drop(out.insert(path.to_owned(), json!({"bytes_hex": hex::encode(b)}))),
        Kind::ByteArray(b) => drop(out.insert(path.to_owned(), json!({"bytearray_hex": hex::encode(b)}))),
        Kind::Set(s) | Kind::FrozenSet(s) => {
            let mut items: Vec<Json> = s
                .iter()
                .map(|v| {
                    let mut one = BTreeMap::new();
                    leaves(v, "", &mut one);
                    one.remove("").unwrap_or(Json::Null)
                })
                .collect();
            items.sort_by_key(|j| j.to_string());
            out.insert(path.to_owned(), json!({"set": items}));
        }
        Kind::Global { module: "torch", name } => drop(out.insert(path.to_owned(), json!({"dtype": name}))),
        Kind::Object(o) if o.class_name() == Some(("torch", "device")) => {
            let args: Vec<String> = o
                .args()
                .as_seq()
                .unwrap()
                .iter()
                .map(|a| {
                    a.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| a.as_i64().unwrap().to_string())
                })
                .collect();
            out.insert(path.to_owned(), json!({"device": args.join(":")}));
        }
        Kind::Object(o) => {
            if let Some(state) = o.state().and_then(|s| s.as_dict()) {
                for (k, v) in state.iter() {
                    leaves(v, &join(&key_text(k)), out);
                }
            }
        }
        other => panic!("no JSON form for {other:?} at {path}"),
    }
}

fn key_text(k: Value<'_>) -> String {
    match k.kind() {
        Kind::Str(s) => s.to_owned(),
        Kind::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

#[test]
fn non_tensor_values_of_the_object_tree_match() {
    for f in manifest()["files"].as_array().unwrap() {
        let Some(objects) = f.get("objects").and_then(Json::as_object) else {
            continue;
        };
        let ckpt = open(f);
        let mut got = BTreeMap::new();
        leaves(ckpt.root(), "", &mut got);
        let want: BTreeMap<String, Json> = objects.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(got, want, "{}", f["file"]);
    }
}

#[test]
fn a_tensor_view_outlives_its_checkpoint() {
    let path = test_support::root().join("fixtures/torch/checkpoint.pth");
    let bytes = std::fs::read(&path).unwrap();
    let view = {
        let ckpt = Checkpoint::from_bytes(&bytes, &Options::default()).unwrap();
        ckpt.tensor("model.0.weight").unwrap().clone()
    };
    assert_eq!(view.to_vec::<f32>().unwrap().len(), view.numel());
    let owned = {
        let ckpt = Checkpoint::open(&path, &Options::default()).unwrap();
        ckpt.tensor("model.0.bias").unwrap().clone()
    };
    assert!(
        owned.raw_bytes().is_some(),
        "contiguous tensors are borrowed without copying"
    );
}

#[test]
fn ndarray_views_follow_strides_and_refuse_misaligned_storage() {
    let path = test_support::root().join("fixtures/torch/layouts.pt");
    let ckpt = Checkpoint::open(&path, &Options::default()).unwrap();
    let mut strided = 0;
    for (name, t) in ckpt.tensors().filter(|(_, t)| t.dtype() == pth_reader::DType::Float32) {
        let view = t.as_array::<f32>().unwrap_or_else(|e| panic!("{name}: {e}"));
        let logical: Vec<f32> = view.iter().copied().collect();
        assert_eq!(logical, t.to_vec::<f32>().unwrap(), "{name}");
        assert_eq!(t.to_array::<f32>().unwrap(), view, "{name}");
        strided += usize::from(!t.is_contiguous());
    }
    assert!(
        strided >= 3,
        "layouts.pt has transposed, step-sliced and expanded tensors"
    );

    // The same archive one byte into a buffer: storages are no longer 4-byte aligned.
    let bytes = std::fs::read(&path).unwrap();
    let mut shifted = vec![0u8];
    shifted.extend(&bytes);
    let ckpt = Checkpoint::from_bytes(&shifted[1..], &Options::default()).unwrap();
    let (name, t) = ckpt
        .tensors()
        .find(|(_, t)| t.dtype() == pth_reader::DType::Float32 && t.numel() > 1)
        .unwrap();
    assert!(
        matches!(t.as_array::<f32>(), Err(e) if matches!(e.kind(), ErrorKind::NotBorrowable { .. })),
        "{name}"
    );
    assert_eq!(t.to_array::<f32>().unwrap().len(), t.numel());
}

#[test]
fn invalid_tensors_are_named_by_their_path() {
    let path = test_support::root().join("fixtures/hostile/torch_offset_past_storage.pt");
    let error = Checkpoint::open(&path, &Options::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        error.starts_with("invalid tensor at \"weight\" (archive/data.pkl at byte"),
        "{error}"
    );
}

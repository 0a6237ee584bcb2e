//! JSON renderings shared by the commands: tensor entries (the schema of
//! `../shared/corpus/README.md`) and whole object trees.

use std::collections::HashSet;

use pth_reader::pickle::ValueId;
use pth_reader::{Kind, TensorView, Value};
use serde_json::{json, Map, Value as Json};
use sha2::{Digest, Sha256};

/// sha256 of a tensor's logical elements in C order as little-endian bytes.
pub fn sha256(t: &TensorView<'_>) -> anyhow::Result<String> {
    let bytes = t.to_le_bytes()?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// One tensor entry: `name`, `dtype`, `shape`, `stride`, `storage_offset`, `storage`, and the
/// `sha256` when asked for (tensors without data, meta tensors, have none).
pub fn tensor_entry(name: &str, t: &TensorView<'_>, with_sha256: bool) -> anyhow::Result<Json> {
    let mut entry = json!({
        "name": name,
        "dtype": t.dtype().name(),
        "shape": t.shape(),
        "stride": t.stride(),
        "storage_offset": t.storage_offset(),
        "storage": t.storage_key(),
        "nbytes": t.nbytes(),
        "contiguous": t.is_contiguous(),
    });
    if let (Some(map), true) = (entry.as_object_mut(), with_sha256 && t.has_data()) {
        map.insert("sha256".into(), Json::String(sha256(t)?));
    }
    Ok(entry)
}

/// A float as JSON: numbers, or the strings `"nan"`, `"inf"`, `"-inf"` (JSON has no such
/// numbers; serde_json would write `null`).
pub fn float(f: f64) -> Json {
    if f.is_nan() {
        json!("nan")
    } else if f.is_infinite() {
        json!(if f > 0.0 { "inf" } else { "-inf" })
    } else {
        json!(f)
    }
}

/// The whole object tree as JSON. Dicts with string keys are objects, other dicts
/// `{"$dict": [[key, value], ...]}`; lists and tuples are arrays; everything JSON cannot say
/// directly is tagged: `{"$tensor": {...}}`, `{"$object": "module.Name", "args": ..., "state": ...}`,
/// `{"$global": "module.name"}`, `{"$bytes": "hex"}`, `{"$int": "decimal"}`, `{"$float": "nan"}`,
/// `{"$complex": [re, im]}`, `{"$set": [...]}`; a value containing itself is `{"$cycle": id}`.
pub fn tree(root: Value<'_>) -> Json {
    let mut walk = Walk {
        on_path: HashSet::new(),
        budget: MAX_VALUES,
    };
    walk.value(root)
}

/// Most values rendered (a pickle sharing one list many times can expand enormously).
const MAX_VALUES: u64 = 5_000_000;
/// Deepest nesting rendered (the recursion must stay far from the stack's end).
const MAX_DEPTH: usize = 1_000;

struct Walk {
    on_path: HashSet<ValueId>,
    budget: u64,
}

impl Walk {
    fn value(&mut self, v: Value<'_>) -> Json {
        if self.budget == 0 || self.on_path.len() >= MAX_DEPTH {
            return json!({"$truncated": true});
        }
        self.budget -= 1;
        let id = v.id();
        // Every value on the current path counts toward the depth, so chains of calls (`args` of
        // `args`) are bounded too; meeting an ancestor again means the value contains itself.
        if !self.on_path.insert(id) {
            return json!({"$cycle": format!("{id:?}")});
        }
        let out = match v.kind() {
            Kind::None => Json::Null,
            Kind::Bool(b) => json!(b),
            Kind::Int(i) => json!(i),
            Kind::BigInt(b) => json!({"$int": b.to_decimal()}),
            Kind::Float(f) if f.is_finite() => json!(f),
            Kind::Float(f) => json!({"$float": float(f)}),
            Kind::Complex { re, im } => json!({"$complex": [float(re), float(im)]}),
            Kind::Str(s) => json!(s),
            Kind::Bytes(b) => json!({"$bytes": hex::encode(b)}),
            Kind::ByteArray(b) => json!({"$bytearray": hex::encode(b)}),
            Kind::List(s) | Kind::Tuple(s) => self.seq(s),
            Kind::Set(s) | Kind::FrozenSet(s) => json!({"$set": self.seq(s)}),
            Kind::Dict(d) => {
                let string_keys = d.iter().all(|(k, _)| k.as_str().is_some());
                let mut out = if string_keys {
                    let mut map = Map::new();
                    for (k, val) in d.iter() {
                        map.insert(k.as_str().unwrap_or_default().to_owned(), self.value(val));
                    }
                    Json::Object(map)
                } else {
                    let items = d.iter().map(|(k, val)| json!([self.value(k), self.value(val)]));
                    json!({"$dict": items.collect::<Vec<_>>()})
                };
                if let (Some(state), Some(map)) = (d.state(), out.as_object_mut()) {
                    if string_keys && !map.contains_key("$state") {
                        map.insert("$state".into(), self.value(state));
                    }
                }
                out
            }
            Kind::Global { module, name } => json!({"$global": format!("{module}.{name}")}),
            Kind::Object(o) => {
                let class = o.class_name().map(|(m, n)| format!("{m}.{n}"));
                let mut map = Map::new();
                map.insert("$object".into(), class.map_or(Json::Null, Json::String));
                map.insert("args".into(), self.value(o.args()));
                if let Some(kw) = o.kwargs() {
                    map.insert("kwargs".into(), self.value(kw));
                }
                if let Some(state) = o.state() {
                    map.insert("state".into(), self.value(state));
                }
                if !o.items().is_empty() {
                    map.insert("items".into(), self.seq(o.items()));
                }
                let dict_items: Vec<Json> = o
                    .dict_items()
                    .map(|(k, val)| json!([self.value(k), self.value(val)]))
                    .collect();
                if !dict_items.is_empty() {
                    map.insert("dict_items".into(), Json::Array(dict_items));
                }
                Json::Object(map)
            }
            Kind::PersistentId(pid) => json!({"$persistent_id": self.value(pid)}),
            Kind::Tensor(t) => {
                let mut entry = json!({
                    "dtype": t.dtype().name(), "shape": t.shape(), "stride": t.stride(),
                    "storage_offset": t.storage_offset(), "storage": t.storage_key(),
                });
                if let (Some(attrs), Some(map)) = (v.attributes(), entry.as_object_mut()) {
                    let attrs: Map<String, Json> = attrs
                        .iter()
                        .map(|(k, val)| (k.as_str().unwrap_or("?").to_owned(), self.value(val)))
                        .collect();
                    map.insert("attributes".into(), Json::Object(attrs));
                }
                json!({"$tensor": entry})
            }
            Kind::Storage(s) => {
                json!({"$storage": {"key": s.key(), "nbytes": s.bytes().len(), "location": s.location()}})
            }
            _ => json!({"$unknown": true}),
        };
        self.on_path.remove(&id);
        out
    }

    fn seq(&mut self, s: pth_reader::Seq<'_>) -> Json {
        Json::Array(s.iter().map(|x| self.value(x)).collect())
    }
}

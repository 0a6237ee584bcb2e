//! JSON renderings shared by the commands: tensor entries (the schema of
//! `../shared/corpus/README.md`) and whole object trees, written as they are made (a tree
//! that shares one long string many times is never held in memory; the output limit stops
//! it).

use std::collections::HashSet;
use std::io::{self, Write};

use pth_reader::pickle::ValueId;
use pth_reader::{Kind, TensorView, Value};
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

/// sha256 of a tensor's logical elements in C order as little-endian bytes, streamed (an
/// expanded tensor is hashed without being materialised).
pub fn sha256(t: &TensorView<'_>) -> anyhow::Result<String> {
    let mut hasher = Sha256::new();
    t.write_le_bytes(&mut HashWriter(&mut hasher))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Feeds written bytes to a digest.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
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

/// Writes a JSON value.
pub fn put<T: serde::Serialize + ?Sized>(w: &mut dyn Write, value: &T) -> io::Result<()> {
    serde_json::to_writer(w, value).map_err(io::Error::other)
}

/// Writes the whole object tree as JSON. Dicts with string keys are objects, other dicts
/// `{"$dict": [[key, value], ...]}`; lists and tuples are arrays; everything JSON cannot say
/// directly is tagged: `{"$tensor": {...}}`, `{"$object": "module.Name", "args": ..., "state": ...}`,
/// `{"$global": "module.name"}`, `{"$bytes": "hex"}`, `{"$int": "decimal"}`, `{"$float": "nan"}`,
/// `{"$complex": [re, im]}`, `{"$set": [...]}`; a value containing itself is `{"$cycle": id}`.
pub fn write_tree(w: &mut dyn Write, root: Value<'_>) -> io::Result<()> {
    let mut walk = Walk {
        w,
        on_path: HashSet::new(),
        budget: MAX_VALUES,
    };
    walk.value(root)?;
    walk.w.write_all(b"\n")
}

/// Most values rendered (a pickle sharing one list many times can expand enormously).
const MAX_VALUES: u64 = 5_000_000;
/// Deepest nesting rendered (the recursion must stay far from the stack's end).
const MAX_DEPTH: usize = 1_000;

struct Walk<'w> {
    w: &'w mut dyn Write,
    on_path: HashSet<ValueId>,
    budget: u64,
}

impl Walk<'_> {
    fn value(&mut self, v: Value<'_>) -> io::Result<()> {
        if self.budget == 0 || self.on_path.len() >= MAX_DEPTH {
            return self.w.write_all(br#"{"$truncated":true}"#);
        }
        self.budget -= 1;
        let id = v.id();
        // Every value on the current path counts toward the depth, so chains of calls (`args` of
        // `args`) are bounded too; meeting an ancestor again means the value contains itself.
        if !self.on_path.insert(id) {
            return put(self.w, &json!({"$cycle": format!("{id:?}")}));
        }
        self.kind(v)?;
        self.on_path.remove(&id);
        Ok(())
    }

    fn kind(&mut self, v: Value<'_>) -> io::Result<()> {
        match v.kind() {
            Kind::None => self.w.write_all(b"null"),
            Kind::Bool(b) => put(self.w, &b),
            Kind::Int(i) => put(self.w, &i),
            Kind::BigInt(b) => put(self.w, &json!({"$int": b.to_decimal()})),
            Kind::Float(f) if f.is_finite() => put(self.w, &f),
            Kind::Float(f) => put(self.w, &json!({"$float": float(f)})),
            Kind::Complex { re, im } => put(self.w, &json!({"$complex": [float(re), float(im)]})),
            Kind::Str(s) => put(self.w, &s),
            Kind::Bytes(b) => self.hex("$bytes", b),
            Kind::ByteArray(b) => self.hex("$bytearray", b),
            Kind::List(s) | Kind::Tuple(s) => self.seq(s),
            Kind::Set(s) | Kind::FrozenSet(s) => {
                self.w.write_all(br#"{"$set":"#)?;
                self.seq(s)?;
                self.w.write_all(b"}")
            }
            Kind::Dict(d) => self.dict(d),
            Kind::Global { module, name } => put(self.w, &json!({"$global": format!("{module}.{name}")})),
            Kind::Object(o) => self.object(o),
            Kind::PersistentId(pid) => {
                self.w.write_all(br#"{"$persistent_id":"#)?;
                self.value(pid)?;
                self.w.write_all(b"}")
            }
            Kind::Tensor(t) => self.tensor(v, t),
            Kind::Storage(s) => put(
                self.w,
                &json!({"$storage": {"key": s.key(), "nbytes": s.bytes().len(), "location": s.location()}}),
            ),
            _ => self.w.write_all(br#"{"$unknown":true}"#),
        }
    }

    /// `{"<tag>": "<hex>"}`, written a chunk at a time.
    fn hex(&mut self, tag: &str, bytes: &[u8]) -> io::Result<()> {
        write!(self.w, "{{\"{tag}\":\"")?;
        for chunk in bytes.chunks(32 * 1024) {
            self.w.write_all(hex::encode(chunk).as_bytes())?;
        }
        self.w.write_all(b"\"}")
    }

    fn seq(&mut self, s: pth_reader::Seq<'_>) -> io::Result<()> {
        self.w.write_all(b"[")?;
        for (i, x) in s.iter().enumerate() {
            if i > 0 {
                self.w.write_all(b",")?;
            }
            self.value(x)?;
        }
        self.w.write_all(b"]")
    }

    /// A dict: an object when every key is a string, else `{"$dict": [[k, v], ...]}`.
    fn dict(&mut self, d: pth_reader::Dict<'_>) -> io::Result<()> {
        let string_keys = d.iter().all(|(k, _)| k.as_str().is_some());
        if !string_keys {
            self.w.write_all(br#"{"$dict":"#)?;
            self.pairs(d.iter())?;
            return self.w.write_all(b"}");
        }
        self.w.write_all(b"{")?;
        let mut has_state_key = false;
        for (i, (k, val)) in d.iter().enumerate() {
            let key = k.as_str().unwrap_or_default();
            has_state_key |= key == "$state";
            self.key(i > 0, key)?;
            self.value(val)?;
        }
        if let (Some(state), false) = (d.state(), has_state_key) {
            self.key(!d.is_empty(), "$state")?;
            self.value(state)?;
        }
        self.w.write_all(b"}")
    }

    /// `[[key, value], ...]`.
    fn pairs<'v>(&mut self, items: impl Iterator<Item = (Value<'v>, Value<'v>)>) -> io::Result<()> {
        self.w.write_all(b"[")?;
        for (i, (k, val)) in items.enumerate() {
            self.w.write_all(if i > 0 { b",[" } else { b"[" })?;
            self.value(k)?;
            self.w.write_all(b",")?;
            self.value(val)?;
            self.w.write_all(b"]")?;
        }
        self.w.write_all(b"]")
    }

    fn key(&mut self, comma: bool, key: &str) -> io::Result<()> {
        if comma {
            self.w.write_all(b",")?;
        }
        put(self.w, &key)?;
        self.w.write_all(b":")
    }

    fn object(&mut self, o: pth_reader::Object<'_>) -> io::Result<()> {
        let class = o.class_name().map(|(m, n)| format!("{m}.{n}"));
        self.w.write_all(br#"{"$object":"#)?;
        put(self.w, &class)?;
        self.key(true, "args")?;
        self.value(o.args())?;
        if let Some(kw) = o.kwargs() {
            self.key(true, "kwargs")?;
            self.value(kw)?;
        }
        if let Some(state) = o.state() {
            self.key(true, "state")?;
            self.value(state)?;
        }
        if !o.items().is_empty() {
            self.key(true, "items")?;
            self.seq(o.items())?;
        }
        if o.dict_items().len() > 0 {
            self.key(true, "dict_items")?;
            self.pairs(o.dict_items())?;
        }
        self.w.write_all(b"}")
    }

    fn tensor(&mut self, v: Value<'_>, t: &TensorView<'_>) -> io::Result<()> {
        let entry = json!({
            "dtype": t.dtype().name(), "shape": t.shape(), "stride": t.stride(),
            "storage_offset": t.storage_offset(), "storage": t.storage_key(),
        });
        let text = entry.to_string();
        // The entry without its closing brace, then the attributes, if any.
        self.w.write_all(br#"{"$tensor":"#)?;
        self.w.write_all(text.strip_suffix('}').unwrap_or(&text).as_bytes())?;
        if let Some(attrs) = v.attributes() {
            self.key(true, "attributes")?;
            self.w.write_all(b"{")?;
            for (i, (k, val)) in attrs.iter().enumerate() {
                self.key(i > 0, k.as_str().unwrap_or("?"))?;
                self.value(val)?;
            }
            self.w.write_all(b"}")?;
        }
        self.w.write_all(b"}}")
    }
}

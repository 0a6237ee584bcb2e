//! The one JSON rendering of decoded values (feature `json`): `pth tree --json`, and any
//! embedder that wants to show a checkpoint's or a pickle's object tree as data.
//!
//! The rendering is written as it is made, so a tree that shares one long string many times is
//! never held in memory, and it is bounded by a [`JsonBudget`]: past `max_values` values or
//! `max_depth` levels the rest of a value is `{"$truncated":true}` (the output stays valid
//! JSON); past `max_bytes` bytes writing stops with an error (a [`BoundedWriter`]'s).
//!
//! Dicts whose keys are all strings are objects, other dicts `{"$dict": [[key, value], ...]}`;
//! lists and tuples are arrays; everything JSON cannot say directly is tagged:
//! `{"$tensor": {"dtype", "shape", "stride", "storage_offset", "storage", "attributes"?}}`,
//! `{"$object": "module.Name", "args", "kwargs"?, "state"?, "items"?, "dict_items"?}` (an
//! inert call: nothing was ever called), `{"$global": "module.name"}`, `{"$bytes": "hex"}`,
//! `{"$bytearray": "hex"}`, `{"$int": "decimal"}`, `{"$float": "nan"}` (also `"inf"`, `"-inf"`),
//! `{"$complex": [re, im]}`, `{"$set": [...]}`, `{"$persistent_id": value}`,
//! `{"$storage": {"key", "nbytes", "location"}}`; a dict's instance attributes are its
//! `"$state"` key; a value containing itself is `{"$cycle": "ValueId(n)"}`.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use pth_reader::json::{write_json, JsonBudget};
//! use pth_reader::{Options, Pickle};
//! // pickle.dumps({"a": [1, 2.5, None], "f": os.system}, protocol=2): os.system stays a name
//! let bytes = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01G@\x04\x00\x00\x00\x00\x00\x00NeX\x01\x00\x00\x00fq\x03cposix\nsystem\nq\x04u.";
//! let pickle = Pickle::parse(bytes, &Options::default().lenient(true))?;
//! let mut out = Vec::new();
//! write_json(&mut out, pickle.root(), &JsonBudget::default())?;
//! assert_eq!(String::from_utf8(out)?, r#"{"a":[1,2.5,null],"f":{"$global":"posix.system"}}"#);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::{self, Write};

use serde_json::{json, Value as Json};

use crate::hashing::FastSet;
use crate::{Dict, Kind, Object, Seq, TensorView, Value, ValueId};

/// How much one rendering may produce.
///
/// ```
/// let tight = pth_reader::json::JsonBudget::default().with_max_values(1_000).with_max_bytes(1 << 20);
/// assert_eq!(tight.max_depth, 1_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JsonBudget {
    /// Most values rendered (default 5,000,000): a pickle sharing one list many times expands
    /// enormously. The rest is `{"$truncated":true}`.
    pub max_values: u64,
    /// Deepest nesting rendered (default 1,000, Python's own recursion limit; the rendering
    /// recurses). Deeper values are `{"$truncated":true}`.
    pub max_depth: u64,
    /// Most bytes written (default 256 MiB); past it writing fails with an error of kind
    /// [`io::ErrorKind::Other`].
    pub max_bytes: u64,
}

impl Default for JsonBudget {
    fn default() -> Self {
        JsonBudget {
            max_values: 5_000_000,
            max_depth: 1_000,
            max_bytes: 256 << 20,
        }
    }
}

impl JsonBudget {
    /// Sets [`max_values`](Self::max_values).
    pub fn with_max_values(mut self, max: u64) -> Self {
        self.max_values = max;
        self
    }

    /// Sets [`max_depth`](Self::max_depth).
    pub fn with_max_depth(mut self, max: u64) -> Self {
        self.max_depth = max;
        self
    }

    /// Sets [`max_bytes`](Self::max_bytes).
    pub fn with_max_bytes(mut self, max: u64) -> Self {
        self.max_bytes = max;
        self
    }
}

/// A float as JSON: a number when finite, else the string `"nan"`, `"inf"` or `"-inf"` (JSON
/// has no literal for them; `serde_json` would write `null`). The spelling of the corpus
/// manifests, of `$float` values and of `pth`'s outputs.
///
/// ```
/// use pth_reader::json::float;
/// assert_eq!(float(-4.5), serde_json::json!(-4.5));
/// assert_eq!(float(f64::NEG_INFINITY), serde_json::json!("-inf"));
/// ```
pub fn float(f: f64) -> Json {
    if f.is_nan() {
        json!("nan")
    } else if f.is_infinite() {
        json!(if f > 0.0 { "inf" } else { "-inf" })
    } else {
        json!(f)
    }
}

/// Writes `value` as JSON into `out` (see the module's documentation for the tags), within
/// `budget`, followed by nothing.
pub fn write_json(out: &mut dyn Write, value: Value<'_>, budget: &JsonBudget) -> io::Result<()> {
    let mut walk = Walk {
        w: BoundedWriter::new(out, budget.max_bytes, "JsonBudget::max_bytes"),
        on_path: FastSet::default(),
        values_left: budget.max_values,
        max_depth: budget.max_depth,
    };
    walk.value(value)
}

/// A writer that refuses to write more than `max` bytes in all: past it, writing fails with
/// an error of kind [`io::ErrorKind::Other`] saying so, and `hint` (what to raise). The
/// rendering bounds itself with one ([`JsonBudget::max_bytes`]); `pth` bounds all it prints
/// with one (`--max-output`).
///
/// ```
/// use std::io::Write;
/// let mut out = pth_reader::json::BoundedWriter::new(Vec::new(), 4, "a larger bound");
/// assert!(out.write_all(b"abcd").is_ok());
/// let err = out.write_all(b"e").unwrap_err();
/// assert_eq!(err.to_string(), "the output would exceed 4 bytes (a larger bound)");
/// assert_eq!(out.into_inner(), b"abcd");
/// ```
#[derive(Debug)]
pub struct BoundedWriter<W> {
    inner: W,
    left: u64,
    max: u64,
    hint: &'static str,
}

impl<W: Write> BoundedWriter<W> {
    /// Writes into `inner`, at most `max` bytes.
    pub fn new(inner: W, max: u64, hint: &'static str) -> Self {
        BoundedWriter {
            inner,
            left: max,
            max,
            hint,
        }
    }

    /// The writer written into.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for BoundedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(io::Error::other(format!(
                "the output would exceed {} bytes ({})",
                self.max, self.hint
            )));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a serializable value.
fn put<T: serde::Serialize + ?Sized>(w: &mut dyn Write, value: &T) -> io::Result<()> {
    serde_json::to_writer(w, value).map_err(io::Error::other)
}

struct Walk<'w> {
    w: BoundedWriter<&'w mut dyn Write>,
    /// The values on the path from the root: meeting one again is a cycle.
    on_path: FastSet<ValueId>,
    values_left: u64,
    max_depth: u64,
}

impl Walk<'_> {
    fn value(&mut self, v: Value<'_>) -> io::Result<()> {
        if self.values_left == 0 || self.on_path.len() as u64 >= self.max_depth {
            return self.w.write_all(br#"{"$truncated":true}"#);
        }
        self.values_left -= 1;
        let id = v.id();
        // Every value on the current path counts toward the depth, so chains of calls (`args` of
        // `args`) are bounded too; meeting an ancestor again means the value contains itself.
        if !self.on_path.insert(id) {
            return put(&mut self.w, &json!({"$cycle": format!("{id:?}")}));
        }
        self.kind(v)?;
        self.on_path.remove(&id);
        Ok(())
    }

    fn kind(&mut self, v: Value<'_>) -> io::Result<()> {
        let w = &mut self.w;
        match v.kind() {
            Kind::None => w.write_all(b"null"),
            Kind::Bool(b) => put(w, &b),
            Kind::Int(i) => put(w, &i),
            Kind::BigInt(b) => put(w, &json!({"$int": b.to_decimal()})),
            Kind::Float(f) if f.is_finite() => put(w, &f),
            Kind::Float(f) => put(w, &json!({"$float": float(f)})),
            Kind::Complex { re, im } => put(w, &json!({"$complex": [float(re), float(im)]})),
            Kind::Str(s) => put(w, &s),
            Kind::Bytes(b) => self.hex("$bytes", b),
            Kind::ByteArray(b) => self.hex("$bytearray", b),
            Kind::List(s) | Kind::Tuple(s) => self.seq(s),
            Kind::Set(s) | Kind::FrozenSet(s) => {
                self.w.write_all(br#"{"$set":"#)?;
                self.seq(s)?;
                self.w.write_all(b"}")
            }
            Kind::Dict(d) => self.dict(d),
            Kind::Global { module, name } => put(w, &json!({"$global": format!("{module}.{name}")})),
            Kind::Object(o) => self.object(o),
            Kind::PersistentId(pid) => {
                self.w.write_all(br#"{"$persistent_id":"#)?;
                self.value(pid)?;
                self.w.write_all(b"}")
            }
            Kind::Tensor(t) => self.tensor(v, t),
            Kind::Storage(s) => put(
                w,
                &json!({"$storage": {"key": s.key(), "nbytes": s.bytes().len(), "location": s.location()}}),
            ),
        }
    }

    /// `{"<tag>": "<hex>"}`, written a chunk at a time.
    fn hex(&mut self, tag: &str, bytes: &[u8]) -> io::Result<()> {
        write!(self.w, "{{\"{tag}\":\"")?;
        for chunk in bytes.chunks(16 * 1024) {
            let mut text = String::with_capacity(chunk.len() * 2);
            for byte in chunk {
                let _ = write!(text, "{byte:02x}");
            }
            self.w.write_all(text.as_bytes())?;
        }
        self.w.write_all(b"\"}")
    }

    fn seq(&mut self, s: Seq<'_>) -> io::Result<()> {
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
    fn dict(&mut self, d: Dict<'_>) -> io::Result<()> {
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
        put(&mut self.w, &key)?;
        self.w.write_all(b":")
    }

    fn object(&mut self, o: Object<'_>) -> io::Result<()> {
        let class = o.class_name().map(|(m, n)| format!("{m}.{n}"));
        self.w.write_all(br#"{"$object":"#)?;
        put(&mut self.w, &class)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Options, Pickle};

    fn render(pickle: &[u8], budget: &JsonBudget) -> (String, io::Result<()>) {
        let pickle = Pickle::parse(pickle, &Options::default().lenient(true)).unwrap();
        let mut out = Vec::new();
        let result = write_json(&mut out, pickle.root(), budget);
        (String::from_utf8(out).unwrap(), result)
    }

    #[test]
    fn cycles_and_budgets_end_the_rendering() {
        // l = []; l.append(l)
        let cyclic = b"\x80\x02]q\x00h\x00a.";
        let (text, result) = render(cyclic, &JsonBudget::default());
        assert!(result.is_ok());
        assert_eq!(text, r#"[{"$cycle":"ValueId(3)"}]"#);
        // [b"\xff\x00", [1, 2, 3]] with two values at most
        let nested = b"\x80\x03]q\x00(C\x02\xff\x00q\x01]q\x02(K\x01K\x02K\x03ee.";
        let (text, _) = render(nested, &JsonBudget::default());
        assert_eq!(text, r#"[{"$bytes":"ff00"},[1,2,3]]"#);
        let (text, _) = render(nested, &JsonBudget::default().with_max_values(3));
        assert_eq!(
            text,
            r#"[{"$bytes":"ff00"},[{"$truncated":true},{"$truncated":true},{"$truncated":true}]]"#
        );
        let (text, result) = render(nested, &JsonBudget::default().with_max_bytes(8));
        assert!(result.is_err() && text.len() <= 8, "{text}");
    }
}

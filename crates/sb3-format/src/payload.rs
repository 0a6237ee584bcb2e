//! `:serialized:` payloads of the `data` member: base64 cloudpickles, decoded inert.
//!
//! SB3 stores every attribute that `json.dumps` refuses as
//! `{":type:": str(type(x)), ":serialized:": base64(cloudpickle.dumps(x)), ...}`. The payload
//! is decoded by `pth-reader`'s pickle machine in lenient mode: globals stay names and calls
//! stay records, so a schedule, a code object or a payload naming `os.system` is data to look
//! at, never something that runs.

use std::fmt;

use base64::Engine as _;
use pth_reader::{Kind, Options, Pickle, Value};
use serde_json::{json, Map, Value as Json};

use crate::numpy::{decode_dtype, parse_array, Budget};
use crate::space::{self, float_json};
use crate::{Error, Result};

/// A Python global: a module and a qualified name (`torch.nn.modules.activation` `ReLU`).
///
/// ```
/// let relu = sb3_format::GlobalName::new("torch.nn.modules.activation", "ReLU");
/// assert_eq!(relu.to_string(), "torch.nn.modules.activation.ReLU");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GlobalName {
    /// The module path.
    pub module: String,
    /// The qualified name inside the module.
    pub name: String,
}

impl GlobalName {
    /// A name from its parts.
    pub fn new(module: impl Into<String>, name: impl Into<String>) -> GlobalName {
        GlobalName {
            module: module.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for GlobalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.module, self.name)
    }
}

/// One decoded `:serialized:` value of `data`: its `:type:` string and the inert pickle.
///
/// ```no_run
/// # fn main() -> Result<(), sb3_format::Error> {
/// let model = sb3_format::Model::open(concat!(
///     env!("CARGO_MANIFEST_DIR"),
///     "/../../../shared/corpus/rl-trained-agents/a2c/Ant-v3_1/Ant-v3.zip"
/// ))?;
/// let data = model.data().expect("a data member");
/// let schedule = data.payload("lr_schedule").expect("a serialized schedule");
/// assert_eq!(schedule.type_name(), Some("<class 'function'>"));
/// // A code object is an inert record of what cloudpickle would have called.
/// println!("{}", schedule.to_json());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Payload {
    type_name: Option<String>,
    pickle: Pickle,
}

impl Payload {
    /// Decodes base64 text holding a pickle, in lenient mode with `options`' limits.
    ///
    /// `member` and `key` name where the payload came from, for errors.
    ///
    /// ```
    /// use sb3_format::Payload;
    /// // base64 of pickle.dumps(3, protocol=4)
    /// let payload = Payload::decode("gARLAy4=", None, &pth_reader::Options::default(), "data", "n")?;
    /// assert_eq!(payload.root().as_i64(), Some(3));
    /// assert!(Payload::decode("**", None, &pth_reader::Options::default(), "data", "n").is_err());
    /// # Ok::<(), sb3_format::Error>(())
    /// ```
    pub fn decode(
        base64: &str,
        type_name: Option<&str>,
        options: &Options,
        member: &str,
        key: &str,
    ) -> Result<Payload> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(base64.trim())
            .map_err(|e| Error::Base64 {
                member: member.to_owned(),
                key: key.to_owned(),
                reason: e.to_string(),
            })?;
        let options = options.clone().lenient(true);
        let pickle =
            Pickle::parse_named(&bytes, &format!("{member}[{key}]"), &options).map_err(|source| Error::Payload {
                member: member.to_owned(),
                key: key.to_owned(),
                source: Box::new(source),
            })?;
        Ok(Payload {
            type_name: type_name.map(str::to_owned),
            pickle,
        })
    }

    /// The `:type:` string SB3 wrote (`"<class 'gymnasium.spaces.box.Box'>"`), if any.
    pub fn type_name(&self) -> Option<&str> {
        self.type_name.as_deref()
    }

    /// The decoded value.
    pub fn root(&self) -> Value<'_> {
        self.pickle.root()
    }

    /// The decoded pickle.
    pub fn pickle(&self) -> &Pickle {
        &self.pickle
    }

    /// The global the payload names, when it is just a reference (a class such as
    /// `policy_class`, or a function).
    pub fn global(&self) -> Option<GlobalName> {
        let (module, name) = self.root().as_global()?;
        Some(GlobalName::new(module, name))
    }

    /// An inert JSON rendering (see [`value_to_json`]), at most `max_nodes` values.
    pub fn to_json(&self) -> Json {
        value_to_json(self.root(), DEFAULT_MAX_NODES)
    }
}

/// How many values [`Payload::to_json`] renders before eliding the rest.
pub const DEFAULT_MAX_NODES: usize = 100_000;

/// How deep [`value_to_json`] descends before eliding.
const MAX_JSON_DEPTH: usize = 64;

/// Renders an inert pickle value as JSON, for inspection.
///
/// Plain values map to JSON (`None` → `null`, tuples and sets → arrays, dicts → objects with
/// keys as text, non-finite floats → `"inf"`/`"-inf"`/`"nan"`, big integers → decimal text).
/// What Python would have built is shown as data: `{":global:": "module.name"}`,
/// `{":ndarray:": {"dtype", "shape", "values"}}`, `{":dtype:": "float32"}`,
/// `{":space:": <space JSON>}`, `{":bytes:": "<base64>"}`, and for any other call
/// `{":object:": "module.name", "args": .., "state": .., "items": .., "dict_items": ..}`
/// (`":object:"` holds the rendered callable when it is not a plain global).
/// Shared values are rendered where they occur; after `max_nodes` values or 64 levels the
/// rest is the string `"..."`, so a hostile pickle cannot make the output explode.
///
/// ```
/// use pth_reader::{Options, Pickle};
/// // pickle.dumps(os.system, protocol=2) rendered as a name, never imported
/// let pickle = Pickle::parse(b"\x80\x02cposix\nsystem\nq\x00.", &Options::default().lenient(true))?;
/// let json = sb3_format::value_to_json(pickle.root(), 1000);
/// assert_eq!(json, serde_json::json!({":global:": "posix.system"}));
/// # Ok::<(), pth_reader::Error>(())
/// ```
pub fn value_to_json(value: Value<'_>, max_nodes: usize) -> Json {
    let mut budget = Budget::new(max_nodes as u64);
    render(value, 0, &mut budget)
}

/// Renders elements until the budget is spent, then one `"..."`.
fn render_all<'a>(values: impl Iterator<Item = Value<'a>>, depth: usize, budget: &mut Budget) -> Vec<Json> {
    let mut out = Vec::new();
    for v in values {
        if budget.is_spent() {
            out.push(Json::from("..."));
            break;
        }
        out.push(render(v, depth + 1, budget));
    }
    out
}

/// A string, charged by length: one that does not fit the budget is cut to its first 256
/// characters followed by `...`.
fn text(s: &str, budget: &mut Budget) -> Json {
    if budget.try_charge(s.len() / 64) {
        return Json::from(s);
    }
    let cut = s.char_indices().nth(256).map_or(s.len(), |(i, _)| i);
    Json::from(format!("{}...", s.get(..cut).unwrap_or_default()))
}

/// `module.name`, charged by length.
fn global_text(module: &str, name: &str, budget: &mut Budget) -> Json {
    if budget.try_charge((module.len() + name.len()) / 64) {
        Json::from(format!("{module}.{name}"))
    } else {
        Json::from("...")
    }
}

fn render(value: Value<'_>, depth: usize, budget: &mut Budget) -> Json {
    if depth > MAX_JSON_DEPTH || !budget.try_charge(1) {
        return Json::from("...");
    }
    match value.kind() {
        Kind::None => Json::Null,
        Kind::Bool(b) => Json::Bool(b),
        Kind::Int(i) => Json::from(i),
        Kind::BigInt(b) => {
            // The decimal conversion is quadratic in the length.
            let len = b.to_le_bytes().len();
            if budget.try_charge(len.saturating_mul(len) / 65536) {
                Json::from(b.to_decimal())
            } else {
                json!({":int:": "...", "bytes": len})
            }
        }
        Kind::Float(f) => float_json(f),
        Kind::Complex { re, im } => json!([float_json(re), float_json(im)]),
        Kind::Str(s) => text(s, budget),
        Kind::Bytes(b) | Kind::ByteArray(b) => {
            if budget.try_charge(b.len() / 64) {
                json!({":bytes:": base64::engine::general_purpose::STANDARD.encode(b)})
            } else {
                json!({":bytes:": "...", "len": b.len()})
            }
        }
        Kind::List(s) | Kind::Tuple(s) | Kind::Set(s) | Kind::FrozenSet(s) => {
            Json::Array(render_all(s.iter(), depth, budget))
        }
        Kind::Dict(d) => {
            let mut map = Map::new();
            for (k, v) in d.iter() {
                if budget.is_spent() {
                    map.insert("...".into(), Json::from("..."));
                    break;
                }
                let key = match k.kind() {
                    Kind::Str(s) => match text(s, budget) {
                        Json::String(s) => s,
                        _ => "...".into(),
                    },
                    Kind::Int(i) => i.to_string(),
                    _ => render(k, depth + 1, budget).to_string(),
                };
                map.insert(key, render(v, depth + 1, budget));
            }
            Json::Object(map)
        }
        Kind::Global { module, name } => json!({":global:": global_text(module, name, budget)}),
        Kind::Object(obj) => {
            if let Ok(Some(raw)) = parse_array(value) {
                // Arrays cost one unit per element; too large ones are summarised uncopied.
                if budget.try_charge(raw.numel()) {
                    if let Ok(array) = raw.build() {
                        return json!({":ndarray:": array.to_json()});
                    }
                } else {
                    return json!({":ndarray:": {"dtype": raw.dtype().name(), "shape": raw.shape(), "values": "..."}});
                }
            }
            if let Ok(Some((dtype, _))) = decode_dtype(value) {
                return json!({":dtype:": dtype.name()});
            }
            if space::is_space(value) {
                if let Ok(space) = space::decode(value, budget) {
                    return json!({":space:": space.to_json()});
                }
            }
            let class = match obj.class_name() {
                Some((module, name)) => global_text(module, name, budget),
                None => render(obj.callable(), depth + 1, budget),
            };
            let mut map = Map::new();
            map.insert(":object:".into(), class);
            map.insert("args".into(), render(obj.args(), depth + 1, budget));
            if let Some(kwargs) = obj.kwargs() {
                map.insert("kwargs".into(), render(kwargs, depth + 1, budget));
            }
            if let Some(state) = obj.state() {
                map.insert("state".into(), render(state, depth + 1, budget));
            }
            if !obj.items().is_empty() {
                let items = render_all(obj.items().iter(), depth, budget);
                map.insert("items".into(), Json::Array(items));
            }
            let mut pairs = Vec::new();
            for (k, v) in obj.dict_items() {
                if budget.is_spent() {
                    pairs.push(Json::from("..."));
                    break;
                }
                pairs.push(json!([render(k, depth + 1, budget), render(v, depth + 1, budget)]));
            }
            if !pairs.is_empty() {
                map.insert("dict_items".into(), Json::Array(pairs));
            }
            Json::Object(map)
        }
        Kind::PersistentId(pid) => json!({":persistent_id:": render(pid, depth + 1, budget)}),
        Kind::Tensor(t) => json!({":tensor:": {"dtype": t.dtype().name(), "shape": t.shape()}}),
        Kind::Storage(_) => json!({":storage:": null}),
        _ => Json::from("<unknown>"),
    }
}

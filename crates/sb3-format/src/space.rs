//! Observation and action spaces (`gym.spaces` and `gymnasium.spaces`) rebuilt from their
//! pickles, and their JSON rendering in the corpus schema.

use pth_reader::{Kind, Value};
use serde_json::{json, Map, Value as Json};

use crate::numpy::{decode_array, decode_dtype, int_of, Budget, NdArray, NpDType};
use crate::payload::GlobalName;

/// How deeply `Dict`/`Tuple` spaces may nest (a pickle can make a space contain itself).
const MAX_SPACE_DEPTH: usize = 32;

/// An observation or action space, as gym or gymnasium pickled it.
///
/// Values are exact: bounds come from the pickled numpy arrays, not from the lossy readable
/// strings SB3 writes beside them.
///
/// ```no_run
/// # fn main() -> Result<(), sb3_format::Error> {
/// let model = sb3_format::Model::open(concat!(
///     env!("CARGO_MANIFEST_DIR"),
///     "/../../../shared/corpus/rl-trained-agents/ppo/CartPole-v1_1/CartPole-v1.zip"
/// ))?;
/// match model.observation_space() {
///     Some(sb3_format::Space::Box(b)) => println!("{} {:?}", b.dtype(), b.shape()),
///     Some(other) => println!("{}", other.to_json()),
///     None => println!("no observation space"),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Space {
    /// `Box`: a bounded (or unbounded) array of numbers.
    Box(BoxSpace),
    /// `Discrete`: one integer in `start .. start + n`.
    Discrete {
        /// Number of values.
        n: i64,
        /// The smallest value (0 for spaces pickled before gym had `start`).
        start: i64,
    },
    /// `MultiDiscrete`: an array of integers, element `i` in `start[i] .. start[i] + nvec[i]`.
    MultiDiscrete {
        /// Number of values of each element.
        nvec: NdArray,
        /// The smallest value of each element, when the pickle has one (gymnasium ≥ 1.0).
        start: Option<NdArray>,
    },
    /// `MultiBinary`: an array of 0/1 values.
    MultiBinary {
        /// The shape of the array (`[n]` when `n` is an int).
        shape: Vec<usize>,
        /// Whether Python's `n` is an int (`MultiBinary(5)`) rather than a sequence.
        n_is_int: bool,
    },
    /// `Dict`: named sub-spaces, in the pickled order.
    Dict(Vec<(String, Space)>),
    /// `Tuple`: sub-spaces in order.
    Tuple(Vec<Space>),
    /// A space class this crate does not decode (`Text`, `Graph`, a custom space, ...).
    Other {
        /// The class.
        class: GlobalName,
    },
}

/// A `Box` space: dtype, shape and exact bounds.
///
/// ```
/// use sb3_format::{BoxSpace, NdArray, NpDType};
/// let low = NdArray::from_le_bytes(NpDType::Float32, vec![1], (-1.0f32).to_le_bytes().to_vec()).unwrap();
/// let high = NdArray::from_le_bytes(NpDType::Float32, vec![1], f32::INFINITY.to_le_bytes().to_vec()).unwrap();
/// let space = BoxSpace::new(NpDType::Float32, vec![1], low, high).unwrap();
/// assert_eq!(space.high_f64(), vec![f64::INFINITY]);
/// assert_eq!(sb3_format::Space::Box(space).to_json()["high"], serde_json::json!(["inf"]));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BoxSpace {
    dtype: NpDType,
    shape: Vec<usize>,
    low: NdArray,
    high: NdArray,
}

impl BoxSpace {
    /// A box from its parts; `None` unless `low` and `high` both have `shape`'s element count
    /// and are real-valued.
    pub fn new(dtype: NpDType, shape: Vec<usize>, low: NdArray, high: NdArray) -> Option<BoxSpace> {
        let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?;
        let ok = |a: &NdArray| a.len() == count && a.to_f64_vec().is_some();
        (ok(&low) && ok(&high)).then_some(BoxSpace {
            dtype,
            shape,
            low,
            high,
        })
    }

    /// The element type of observations or actions (`Box.dtype`).
    pub fn dtype(&self) -> NpDType {
        self.dtype
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Lower bounds, as pickled.
    pub fn low(&self) -> &NdArray {
        &self.low
    }

    /// Upper bounds, as pickled.
    pub fn high(&self) -> &NdArray {
        &self.high
    }

    /// Lower bounds in C order, widened to `f64` exactly.
    pub fn low_f64(&self) -> Vec<f64> {
        self.low.to_f64_vec().unwrap_or_default()
    }

    /// Upper bounds in C order, widened to `f64` exactly.
    pub fn high_f64(&self) -> Vec<f64> {
        self.high.to_f64_vec().unwrap_or_default()
    }
}

impl Space {
    /// The space's type name: `Box`, `Discrete`, `MultiDiscrete`, `MultiBinary`, `Dict`,
    /// `Tuple`, or the class name of an undecoded space.
    pub fn type_name(&self) -> &str {
        match self {
            Space::Box(_) => "Box",
            Space::Discrete { .. } => "Discrete",
            Space::MultiDiscrete { .. } => "MultiDiscrete",
            Space::MultiBinary { .. } => "MultiBinary",
            Space::Dict(_) => "Dict",
            Space::Tuple(_) => "Tuple",
            Space::Other { class } => &class.name,
        }
    }

    /// The sub-space under `key` of a `Dict` space.
    pub fn get(&self, key: &str) -> Option<&Space> {
        match self {
            Space::Dict(items) => items.iter().find(|(k, _)| k == key).map(|(_, s)| s),
            _ => None,
        }
    }

    /// The corpus-schema JSON rendering:
    /// `{"type": "Box", "shape": [..], "dtype": "float32", "low": [..], "high": [..]}` (bounds
    /// flat in C order as `f64`, non-finite as `"inf"`, `"-inf"`, `"nan"`),
    /// `{"type": "Discrete", "n", "start"}`, `{"type": "MultiDiscrete", "nvec"}` (nested
    /// lists), `{"type": "MultiBinary", "n"}` (an int, or a list), `{"type": "Dict",
    /// "spaces": {key: space}}`, `{"type": "Tuple", "spaces": [..]}`, and for other classes
    /// `{"type": name, "class": "module.name"}`.
    ///
    /// ```
    /// let space = sb3_format::Space::Discrete { n: 3, start: 0 };
    /// assert_eq!(space.to_json(), serde_json::json!({"type": "Discrete", "n": 3, "start": 0}));
    /// ```
    pub fn to_json(&self) -> Json {
        match self {
            Space::Box(b) => json!({
                "type": "Box",
                "shape": b.shape,
                "dtype": b.dtype.name(),
                "low": b.low_f64().into_iter().map(float_json).collect::<Vec<_>>(),
                "high": b.high_f64().into_iter().map(float_json).collect::<Vec<_>>(),
            }),
            Space::Discrete { n, start } => json!({"type": "Discrete", "n": n, "start": start}),
            Space::MultiDiscrete { nvec, .. } => json!({
                "type": "MultiDiscrete",
                "nvec": nested_ints(nvec),
            }),
            Space::MultiBinary { shape, n_is_int } => {
                let n = match (n_is_int, shape.as_slice()) {
                    (true, [n]) => json!(n),
                    _ => json!(shape),
                };
                json!({"type": "MultiBinary", "n": n})
            }
            Space::Dict(items) => {
                let spaces: Map<String, Json> = items.iter().map(|(k, s)| (k.clone(), s.to_json())).collect();
                json!({"type": "Dict", "spaces": spaces})
            }
            Space::Tuple(items) => json!({
                "type": "Tuple",
                "spaces": items.iter().map(Space::to_json).collect::<Vec<_>>(),
            }),
            Space::Other { class } => json!({"type": class.name, "class": class.to_string()}),
        }
    }
}

/// A float as JSON: a number when finite, else the string `"inf"`, `"-inf"` or `"nan"` (JSON
/// has no literal for them; `serde_json` would write `null`).
///
/// ```
/// use serde_json::json;
/// assert_eq!(sb3_format::float_json(-4.5), json!(-4.5));
/// assert_eq!(sb3_format::float_json(f64::NEG_INFINITY), json!("-inf"));
/// assert_eq!(sb3_format::float_json(f64::NAN), json!("nan"));
/// ```
pub fn float_json(x: f64) -> Json {
    if x.is_nan() {
        Json::from("nan")
    } else if x.is_infinite() {
        Json::from(if x > 0.0 { "inf" } else { "-inf" })
    } else {
        Json::from(x)
    }
}

/// An integer array as nested JSON lists (numpy's `tolist()`).
fn nested_ints(array: &NdArray) -> Json {
    let values = array.to_i64_vec().unwrap_or_default();
    // An empty array may have a huge shape such as (2**40, 0): the lists nesting it would be
    // empty yet countless. Such arrays are rendered flat.
    let mut lists = 0usize;
    let mut prefix = 1usize;
    for &d in array.shape() {
        lists = lists.saturating_add(prefix);
        prefix = prefix.saturating_mul(d);
    }
    if lists > values.len().saturating_add(1 << 16) {
        return Json::Array(values.into_iter().map(Json::from).collect());
    }
    fn build(values: &[i64], shape: &[usize]) -> Json {
        match shape.split_first() {
            None => values.first().map_or(Json::Null, |v| json!(v)),
            Some((&n, rest)) => {
                let step = rest.iter().product::<usize>().max(1);
                let items = (0..n)
                    .map(|i| {
                        let start = i.saturating_mul(step);
                        let end = start.saturating_add(step);
                        build(values.get(start..end).unwrap_or_default(), rest)
                    })
                    .collect();
                Json::Array(items)
            }
        }
    }
    build(&values, array.shape())
}

/// The class of an inert object (looking through protocol 0–1 `copyreg` helpers).
pub(crate) fn class_of<'a>(value: Value<'a>) -> Option<(&'a str, &'a str)> {
    value.as_object()?.instance_class()
}

/// Whether `module` is one of gym's or gymnasium's space modules.
fn is_space_module(module: &str) -> bool {
    ["gym.spaces", "gymnasium.spaces"]
        .iter()
        .any(|root| module == *root || module.strip_prefix(root).is_some_and(|rest| rest.starts_with('.')))
}

/// Whether `value` looks like a pickled space (an object of a gym/gymnasium space class).
pub(crate) fn is_space(value: Value<'_>) -> bool {
    class_of(value).is_some_and(|(module, _)| is_space_module(module))
}

/// Decodes a pickled space; `Err` names what is missing or malformed. Each space and each
/// bound is charged to `budget` (a pickle can share one space many times over).
pub(crate) fn decode(value: Value<'_>, budget: &mut Budget) -> Result<Space, String> {
    decode_at(value, 0, budget)
}

fn decode_at(value: Value<'_>, depth: usize, budget: &mut Budget) -> Result<Space, String> {
    if depth > MAX_SPACE_DEPTH {
        return Err(format!("spaces nest deeper than {MAX_SPACE_DEPTH} levels"));
    }
    budget.charge(1)?;
    let (module, name) = class_of(value).ok_or("not a pickled space object")?;
    budget.charge_text(module.len() + name.len())?;
    let class = GlobalName::new(module, name);
    if !is_space_module(module) {
        return Ok(Space::Other { class });
    }
    let attr = |key: &str| value.get(key);
    let need = |key: &str| attr(key).ok_or_else(|| format!("{name} without `{key}`"));
    match name {
        "Box" => decode_box(value, budget).map(Space::Box),
        "Discrete" => {
            let n = int_of(need("n")?).ok_or("Discrete `n` is not an integer")?;
            let start = match attr("start") {
                None => 0,
                Some(s) if s.is_none() => 0,
                Some(s) => int_of(s).ok_or("Discrete `start` is not an integer")?,
            };
            Ok(Space::Discrete { n, start })
        }
        "MultiDiscrete" => {
            let nvec = int_array(need("nvec")?, budget).map_err(|e| format!("MultiDiscrete `nvec`: {e}"))?;
            let start = match attr("start") {
                Some(s) if !s.is_none() => {
                    Some(int_array(s, budget).map_err(|e| format!("MultiDiscrete `start`: {e}"))?)
                }
                _ => None,
            };
            Ok(Space::MultiDiscrete { nvec, start })
        }
        "MultiBinary" => {
            let n = need("n")?;
            if let Some(n) = int_of(n) {
                let n = usize::try_from(n).map_err(|_| "MultiBinary `n` is negative")?;
                return Ok(Space::MultiBinary {
                    shape: vec![n],
                    n_is_int: true,
                });
            }
            let dims = match decode_array(n, budget)? {
                Some(array) => array.to_i64_vec(),
                None => n
                    .as_seq()
                    .and_then(|s| s.iter().map(int_of).collect::<Option<Vec<_>>>()),
            }
            .ok_or("MultiBinary `n` is neither an int nor a sequence of ints")?;
            let shape = dims
                .into_iter()
                .map(usize::try_from)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| "MultiBinary `n` has a negative dimension")?;
            Ok(Space::MultiBinary { shape, n_is_int: false })
        }
        "Dict" => {
            let spaces = need("spaces")?;
            let dict = spaces.as_dict().ok_or("Dict `spaces` is not a dict")?;
            let mut items = Vec::with_capacity(dict.len());
            for (key, sub) in dict.iter() {
                let key = match key.kind() {
                    Kind::Str(s) => {
                        budget.charge_text(s.len())?;
                        s.to_owned()
                    }
                    Kind::Int(i) => i.to_string(),
                    _ => return Err("Dict space with a key that is not a string".into()),
                };
                let space = decode_at(sub, depth + 1, budget).map_err(|e| format!("Dict[{key:?}]: {e}"))?;
                items.push((key, space));
            }
            Ok(Space::Dict(items))
        }
        "Tuple" => {
            let spaces = need("spaces")?;
            let seq = spaces.as_seq().ok_or("Tuple `spaces` is not a sequence")?;
            let mut items = Vec::with_capacity(seq.len());
            for (i, sub) in seq.iter().enumerate() {
                items.push(decode_at(sub, depth + 1, budget).map_err(|e| format!("Tuple[{i}]: {e}"))?);
            }
            Ok(Space::Tuple(items))
        }
        _ => Ok(Space::Other { class }),
    }
}

fn int_array(value: Value<'_>, budget: &mut Budget) -> Result<NdArray, String> {
    if let Some(array) = decode_array(value, budget)? {
        return if array.to_i64_vec().is_some() {
            Ok(array)
        } else {
            Err(format!("a {} array, not integers", array.dtype()))
        };
    }
    // A plain list of ints (hand-made spaces).
    let seq = value.as_seq().ok_or("not an array")?;
    budget.charge(seq.len())?;
    let ints = seq
        .iter()
        .map(int_of)
        .collect::<Option<Vec<i64>>>()
        .ok_or("a sequence that is not all integers")?;
    let bytes = ints.iter().flat_map(|i| i.to_le_bytes()).collect();
    NdArray::from_le_bytes(NpDType::Int64, vec![ints.len()], bytes).ok_or_else(|| "bad list".into())
}

fn decode_box(value: Value<'_>, budget: &mut Budget) -> Result<BoxSpace, String> {
    let mut array = |key: &str| -> Result<NdArray, String> {
        let v = value.get(key).ok_or_else(|| format!("Box without `{key}`"))?;
        decode_array(v, budget)
            .map_err(|e| format!("Box `{key}`: {e}"))?
            .ok_or_else(|| format!("Box `{key}` is not a numpy array"))
    };
    let low = array("low")?;
    let high = array("high")?;
    let dtype = match value.get("dtype") {
        Some(d) => decode_dtype(d)
            .map_err(|e| format!("Box `dtype`: {e}"))?
            .map(|(dtype, _)| dtype)
            .ok_or("Box `dtype` is not a numpy dtype")?,
        None => low.dtype(),
    };
    // gym ≥ 0.21 stores `_shape`, older gym `shape`; both are tuples of ints.
    let shape = match value.get("_shape").or_else(|| value.get("shape")) {
        Some(s) if !s.is_none() => s
            .as_seq()
            .and_then(|s| {
                s.iter()
                    .map(|d| int_of(d).and_then(|d| usize::try_from(d).ok()))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or("Box shape is not a tuple of non-negative ints")?,
        _ => low.shape().to_vec(),
    };
    let (low_len, high_len) = (low.len(), high.len());
    BoxSpace::new(dtype, shape.clone(), low, high)
        .ok_or_else(|| format!("Box of shape {shape:?} has {low_len} low and {high_len} high real bounds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_int_lists_follow_the_shape() {
        let bytes = (0i64..6).flat_map(|i| i.to_le_bytes()).collect();
        let a = NdArray::from_le_bytes(NpDType::Int64, vec![2, 3], bytes).unwrap();
        assert_eq!(nested_ints(&a), json!([[0, 1, 2], [3, 4, 5]]));
    }

    #[test]
    fn empty_arrays_with_huge_shapes_render_flat() {
        let a = NdArray::from_le_bytes(NpDType::Int64, vec![1 << 40, 0], Vec::new()).unwrap();
        assert_eq!(nested_ints(&a), json!([]));
        let b = NdArray::from_le_bytes(NpDType::Int64, vec![2, 0], Vec::new()).unwrap();
        assert_eq!(nested_ints(&b), json!([[], []]));
    }

    #[test]
    fn space_modules() {
        assert!(is_space_module("gym.spaces.box"));
        assert!(is_space_module("gymnasium.spaces"));
        assert!(!is_space_module("gymnasium.spacesx"));
        assert!(!is_space_module("os"));
    }

    #[test]
    fn multibinary_json_keeps_int_or_list() {
        let int = Space::MultiBinary {
            shape: vec![5],
            n_is_int: true,
        };
        assert_eq!(int.to_json(), json!({"type": "MultiBinary", "n": 5}));
        let list = Space::MultiBinary {
            shape: vec![2, 3],
            n_is_int: false,
        };
        assert_eq!(list.to_json(), json!({"type": "MultiBinary", "n": [2, 3]}));
    }
}

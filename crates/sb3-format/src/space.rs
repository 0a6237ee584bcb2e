//! Observation and action spaces (`gym.spaces` and `gymnasium.spaces`) rebuilt from their
//! pickles, and their JSON rendering in the corpus schema.

use pth_reader::{Kind, Value};

use crate::decode::{invalid, Budget, Malformed};
use crate::names::GlobalName;
use crate::numpy::{decode_array, decode_dtype, int_of, NdArray, NpDType};

/// How deeply `Dict`/`Tuple` spaces may nest (a pickle can make a space contain itself).
const MAX_SPACE_DEPTH: usize = 32;

/// An observation or action space, as gym or gymnasium pickled it.
///
/// Values are exact: bounds come from the pickled numpy arrays, not from the lossy readable
/// strings SB3 writes beside them.
///
/// ```
/// # fn main() -> Result<(), sb3_format::Error> {
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sb3/ppo_cartpole.zip");
/// let model = sb3_format::Model::open(path, &pth_reader::Options::default())?;
/// match model.observation_space() {
///     Some(sb3_format::Space::Box(b)) => assert_eq!((b.dtype().name(), b.shape()), ("float32", &[4][..])),
///     other => panic!("CartPole observes a Box, not {other:?}"),
/// }
/// assert_eq!(model.action_space(), Some(&sb3_format::Space::Discrete { n: 2, start: 0 }));
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
pub(crate) fn decode(value: Value<'_>, budget: &mut Budget) -> Result<Space, Malformed> {
    decode_at(value, 0, budget)
}

fn decode_at(value: Value<'_>, depth: usize, budget: &mut Budget) -> Result<Space, Malformed> {
    if depth > MAX_SPACE_DEPTH {
        return invalid(format!("spaces nest deeper than {MAX_SPACE_DEPTH} levels"));
    }
    budget.charge(1)?;
    let (module, name) = class_of(value).ok_or("not a pickled space object")?;
    budget.charge_text(module.len() + name.len())?;
    let class = GlobalName::new(module, name);
    if !is_space_module(module) {
        return Ok(Space::Other { class });
    }
    match name {
        "Box" => decode_box(value, budget).map(Space::Box),
        "Discrete" => decode_discrete(value),
        "MultiDiscrete" => {
            let nvec =
                int_array(required(value, name, "nvec")?, budget).map_err(|e| e.inside("MultiDiscrete `nvec`"))?;
            let start = match value.get("start") {
                Some(s) if !s.is_none() => Some(int_array(s, budget).map_err(|e| e.inside("MultiDiscrete `start`"))?),
                _ => None,
            };
            Ok(Space::MultiDiscrete { nvec, start })
        }
        "MultiBinary" => decode_multibinary(required(value, name, "n")?, budget),
        "Dict" => {
            let dict = required(value, name, "spaces")?
                .as_dict()
                .ok_or("Dict `spaces` is not a dict")?;
            let mut items = Vec::with_capacity(dict.len());
            for (key, sub) in dict.iter() {
                let key = match key.kind() {
                    Kind::Str(s) => {
                        budget.charge_text(s.len())?;
                        s.to_owned()
                    }
                    Kind::Int(i) => i.to_string(),
                    _ => return invalid("Dict space with a key that is not a string"),
                };
                let space = decode_at(sub, depth + 1, budget).map_err(|e| e.inside(format!("Dict[{key:?}]")))?;
                items.push((key, space));
            }
            Ok(Space::Dict(items))
        }
        "Tuple" => {
            let seq = required(value, name, "spaces")?
                .as_seq()
                .ok_or("Tuple `spaces` is not a sequence")?;
            let mut items = Vec::with_capacity(seq.len());
            for (i, sub) in seq.iter().enumerate() {
                items.push(decode_at(sub, depth + 1, budget).map_err(|e| e.inside(format!("Tuple[{i}]")))?);
            }
            Ok(Space::Tuple(items))
        }
        _ => Ok(Space::Other { class }),
    }
}

/// The attribute `key` of a space of class `class`, or the error naming it.
fn required<'a>(value: Value<'a>, class: &str, key: &str) -> Result<Value<'a>, Malformed> {
    value
        .get(key)
        .ok_or_else(|| Malformed::Invalid(format!("{class} without `{key}`")))
}

fn decode_discrete(value: Value<'_>) -> Result<Space, Malformed> {
    let n = int_of(required(value, "Discrete", "n")?).ok_or("Discrete `n` is not an integer")?;
    let start = match value.get("start") {
        None => 0,
        Some(s) if s.is_none() => 0,
        Some(s) => int_of(s).ok_or("Discrete `start` is not an integer")?,
    };
    Ok(Space::Discrete { n, start })
}

fn decode_multibinary(n: Value<'_>, budget: &mut Budget) -> Result<Space, Malformed> {
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

fn int_array(value: Value<'_>, budget: &mut Budget) -> Result<NdArray, Malformed> {
    if let Some(array) = decode_array(value, budget)? {
        return if array.to_i64_vec().is_some() {
            Ok(array)
        } else {
            invalid(format!("a {} array, not integers", array.dtype()))
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

fn decode_box(value: Value<'_>, budget: &mut Budget) -> Result<BoxSpace, Malformed> {
    let mut array = |key: &str| -> Result<NdArray, Malformed> {
        let v = required(value, "Box", key)?;
        let part = || format!("Box `{key}`");
        decode_array(v, budget)
            .map_err(|e| e.inside(part()))?
            .ok_or_else(|| Malformed::Invalid(format!("{} is not a numpy array", part())))
    };
    let low = array("low")?;
    let high = array("high")?;
    let dtype = match value.get("dtype") {
        Some(d) => decode_dtype(d)
            .map_err(|e| e.inside("Box `dtype`"))?
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
    BoxSpace::new(dtype, shape.clone(), low, high).ok_or_else(|| {
        Malformed::Invalid(format!(
            "Box of shape {shape:?} has {low_len} low and {high_len} high real bounds"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_modules() {
        assert!(is_space_module("gym.spaces.box"));
        assert!(is_space_module("gymnasium.spaces"));
        assert!(!is_space_module("gymnasium.spacesx"));
        assert!(!is_space_module("os"));
    }
}

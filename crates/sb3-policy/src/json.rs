//! Observations from JSON and actions to JSON, in the forms SB3's users and the corpus
//! manifests write them: nested arrays for Box (channel-last images included), a bare integer
//! for Discrete, arrays for MultiDiscrete and MultiBinary, an object for Dict; actions as
//! arrays (`[n]` for Discrete).

use pth_reader::json::float;
use sb3_format::Space;
use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::observation::{Action, Observation, Values};

/// An observation parsed from JSON, owning its values; [`with`](Self::with) lends it as an
/// [`Observation`].
///
/// ```
/// # fn main() -> Result<(), sb3_policy::Error> {
/// use sb3_policy::{JsonObservation, Policy};
/// let policy = Policy::open(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sb3/ppo_cartpole.zip"))?;
/// let json = serde_json::json!([0.01, -0.02, 0.03, 0.04]);
/// let parsed = JsonObservation::parse(&json, policy.observation_space())?;
/// let action = parsed.with(|obs| policy.predict(obs))?;
/// assert_eq!(sb3_policy::action_to_json(&action, policy.action_shape()).as_array().map(Vec::len), Some(1));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct JsonObservation {
    root: Parsed,
    space: Space,
}

#[derive(Debug, Clone, PartialEq)]
enum Parsed {
    Array { values: Vec<f64>, shape: Vec<usize> },
    Discrete(i64),
    Ints(Vec<i64>),
    Dict(Vec<Parsed>),
}

fn bad(reason: impl Into<String>) -> Error {
    Error::Observation(reason.into())
}

/// Flattens nested JSON arrays of numbers in C order, returning the shape.
fn flatten(json: &Json, values: &mut Vec<f64>) -> Result<Vec<usize>> {
    match json {
        Json::Array(items) => {
            let mut inner: Option<Vec<usize>> = None;
            for item in items {
                let shape = flatten(item, values)?;
                match &inner {
                    Some(s) if *s != shape => return Err(bad("a ragged array")),
                    Some(_) => {}
                    None => inner = Some(shape),
                }
            }
            let mut shape = vec![items.len()];
            shape.extend(inner.unwrap_or_default());
            Ok(shape)
        }
        Json::Number(n) => {
            values.push(n.as_f64().ok_or_else(|| bad(format!("number {n} out of range")))?);
            Ok(Vec::new())
        }
        Json::String(s) => {
            values.push(match s.as_str() {
                "nan" => f64::NAN,
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                _ => return Err(bad(format!("{s:?} is not a number"))),
            });
            Ok(Vec::new())
        }
        Json::Bool(b) => {
            values.push(f64::from(u8::from(*b)));
            Ok(Vec::new())
        }
        other => Err(bad(format!("{other} is not a number or an array"))),
    }
}

fn integers(values: &[f64]) -> Result<Vec<i64>> {
    values
        .iter()
        .map(|&v| {
            if v.fract() == 0.0 && v.abs() < 9.0e15 {
                Ok(v as i64)
            } else {
                Err(bad(format!("{v} is not an integer")))
            }
        })
        .collect()
}

fn parse(json: &Json, space: &Space) -> Result<Parsed> {
    if let Space::Dict(items) = space {
        let object = json
            .as_object()
            .ok_or_else(|| bad("the observation space is a Dict: expected a JSON object"))?;
        if let Some(extra) = object.keys().find(|k| !items.iter().any(|(key, _)| key == *k)) {
            return Err(bad(format!("key {extra:?} is not in the observation space")));
        }
        let parts = items
            .iter()
            .map(|(key, sub)| {
                let value = object.get(key).ok_or_else(|| bad(format!("missing key {key:?}")))?;
                parse(value, sub).map_err(|e| bad(format!("key {key:?}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok(Parsed::Dict(parts));
    }
    let mut values = Vec::new();
    let shape = flatten(json, &mut values)?;
    Ok(match space {
        Space::Discrete { .. } => match integers(&values)?.as_slice() {
            [v] => Parsed::Discrete(*v),
            _ => return Err(bad("a Discrete observation is one integer")),
        },
        Space::MultiDiscrete { .. } => Parsed::Ints(integers(&values)?),
        _ => Parsed::Array { values, shape },
    })
}

fn leaf<'a>(parsed: &'a Parsed, space: &Space) -> Observation<'a> {
    match (parsed, space) {
        (Parsed::Discrete(v), _) => Observation::Discrete(*v),
        (Parsed::Ints(v), _) => Observation::MultiDiscrete(v),
        (Parsed::Array { values, .. }, Space::MultiBinary { .. }) => Observation::MultiBinary(Values::F64(values)),
        (Parsed::Array { values, shape }, Space::Box(b)) => {
            // A leading batch dimension of one is the same observation (channel-last or not).
            let own = shape
                .strip_prefix(&[1][..])
                .filter(|s| s.len() == b.shape().len())
                .unwrap_or(shape);
            if own == b.shape() {
                Observation::Box(Values::F64(values))
            } else {
                Observation::Shaped(Values::F64(values), own)
            }
        }
        (Parsed::Array { values, .. }, _) => Observation::Box(Values::F64(values)),
        (Parsed::Dict(_), _) => Observation::Dict(&[]),
    }
}

impl JsonObservation {
    /// Parses one JSON observation for `space`. Numbers are kept as float64, so VecNormalize
    /// sees them as numpy would see a float64 observation (exact for float32 ones).
    pub fn parse(json: &Json, space: &Space) -> Result<JsonObservation> {
        Ok(JsonObservation {
            root: parse(json, space)?,
            space: space.clone(),
        })
    }

    /// Calls `f` with the observation.
    pub fn with<R>(&self, f: impl FnOnce(&Observation<'_>) -> R) -> R {
        match (&self.root, &self.space) {
            (Parsed::Dict(parts), Space::Dict(items)) => {
                let entries: Vec<Observation<'_>> = parts.iter().zip(items).map(|(p, (_, s))| leaf(p, s)).collect();
                f(&Observation::Dict(&entries))
            }
            (root, space) => f(&leaf(root, space)),
        }
    }
}

/// An action as JSON: an array for Box (nested per the action shape), MultiDiscrete and
/// MultiBinary; `[n]` for Discrete; non-finite numbers as `"nan"`, `"inf"`, `"-inf"`.
pub fn action_to_json(action: &Action, shape: &[usize]) -> Json {
    match action {
        Action::Box(values) => {
            let flat: Vec<Json> = values.iter().map(|&v| float(f64::from(v))).collect();
            nest(flat, shape)
        }
        Action::Discrete(n) => Json::Array(vec![Json::from(*n)]),
        Action::MultiDiscrete(values) => Json::Array(values.iter().map(|&v| Json::from(v)).collect()),
        Action::MultiBinary(values) => Json::Array(values.iter().map(|&v| Json::from(v)).collect()),
    }
}

fn nest(flat: Vec<Json>, shape: &[usize]) -> Json {
    match shape {
        [] | [_] => Json::Array(flat),
        [_, rest @ ..] => {
            let step = rest.iter().product::<usize>().max(1);
            Json::Array(flat.chunks(step).map(|c| nest(c.to_vec(), rest)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_arrays_keep_their_shape() {
        let mut values = Vec::new();
        assert_eq!(
            flatten(&json!([[1, 2, 3], [4, 5, 6]]), &mut values).unwrap(),
            vec![2, 3]
        );
        assert_eq!(values, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(flatten(&json!([[1, 2], [3]]), &mut Vec::new()).is_err());
        assert!(flatten(&json!({"a": 1}), &mut Vec::new()).is_err());
    }

    #[test]
    fn actions_nest_per_shape() {
        let action = Action::Box(vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(action_to_json(&action, &[2, 2]), json!([[1.0, 2.0], [3.0, 4.0]]));
        assert_eq!(action_to_json(&Action::Discrete(3), &[]), json!([3]));
        assert_eq!(action_to_json(&Action::Box(vec![f32::NAN]), &[1]), json!(["nan"]));
    }
}

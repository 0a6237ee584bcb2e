//! The `data` member: SB3's JSON of the algorithm's attributes, with a typed view of the
//! common fields and every `:serialized:` payload decoded inert.

use pth_reader::Options;
use serde_json::{Map, Value as Json};

use crate::decode::Budget;
use crate::names::GlobalName;
use crate::payload::Payload;
use crate::policy_kwargs::PolicyKwargs;
use crate::space::{self, Space};
use crate::{ErrorKind, Result};

/// The name of the member, for errors.
const MEMBER: &str = "data";

/// The parsed `data` member.
///
/// Opening decodes every `:serialized:` payload (so a corrupt one is reported at once, naming
/// its key) and rebuilds the spaces, the policy class and `policy_kwargs`. Everything else is
/// reachable through [`get`](Self::get) or [`raw`](Self::raw).
///
/// ```
/// # fn main() -> Result<(), sb3_format::Error> {
/// let text = br#"{"n_envs": 4, "gamma": 0.99, "seed": null,
///   "policy_kwargs": {"net_arch": [64, 64]},
///   "policy_class": {":type:": "<class 'abc.ABCMeta'>",
///     ":serialized:": "gAWVOwAAAAAAAACMIXN0YWJsZV9iYXNlbGluZXMzLmNvbW1vbi5wb2xpY2llc5SMEUFjdG9yQ3JpdGljUG9saWN5lJOULg=="}}"#;
/// let data = sb3_format::Data::parse(text, &pth_reader::Options::default())?;
/// assert_eq!(data.n_envs(), Some(4));
/// assert_eq!(data.gamma(), Some(0.99));
/// assert_eq!(data.seed(), None);
/// assert_eq!(data.policy_class().map(|c| c.name.as_str()), Some("ActorCriticPolicy"));
/// assert!(data.policy_kwargs().unwrap().net_arch.is_some());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Data {
    json: Map<String, Json>,
    payloads: Vec<(String, Payload)>,
    policy_class: Option<GlobalName>,
    policy_kwargs: Option<PolicyKwargs>,
    observation_space: Option<Space>,
    action_space: Option<Space>,
}

/// One top-level value of `data`: plain JSON, or a decoded `:serialized:` payload.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum DataValue<'a> {
    /// A value `json.dumps` accepted, stored as-is.
    Json(&'a Json),
    /// A value SB3 had to cloudpickle, decoded inert.
    Serialized(&'a Payload),
}

/// `bytes` with the bare `NaN`, `Infinity` and `-Infinity` that Python's `json.dumps` writes
/// replaced by the strings `"nan"`, `"inf"` and `"-inf"` (the spelling the corpus manifests use
/// for non-finite numbers); `None` when there are none.
fn python_constants(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let (mut in_string, mut escaped, mut changed) = (false, false, false);
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else {
            let rest = bytes.get(i..).unwrap_or_default();
            let constant = [
                (&b"-Infinity"[..], &b"\"-inf\""[..]),
                (b"Infinity", b"\"inf\""),
                (b"NaN", b"\"nan\""),
            ]
            .into_iter()
            .find(|(token, _)| rest.starts_with(token));
            if let Some((token, replacement)) = constant {
                out.extend_from_slice(replacement);
                i += token.len();
                changed = true;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    changed.then_some(out)
}

impl Data {
    /// Parses the bytes of a `data` member; payloads are decoded in lenient mode (they are
    /// cloudpickles, whose globals are code by design) within `options`' limits.
    pub fn parse(bytes: &[u8], options: &Options) -> Result<Data> {
        let member = MEMBER;
        let parsed = serde_json::from_slice::<Json>(bytes).or_else(|e| match python_constants(bytes) {
            // Python's json.dumps writes NaN, Infinity and -Infinity, which JSON lacks.
            Some(fixed) => serde_json::from_slice(&fixed),
            None => Err(e),
        });
        let json = parsed.map_err(|e| ErrorKind::Json {
            member: member.to_owned(),
            reason: e.to_string(),
        })?;
        let Json::Object(json) = json else {
            return Err(ErrorKind::Json {
                member: member.to_owned(),
                reason: "not a JSON object".into(),
            }
            .into());
        };
        let mut payloads = Vec::new();
        for (key, value) in &json {
            let Some(serialized) = value.get(":serialized:") else {
                continue;
            };
            let text = serialized.as_str().ok_or_else(|| ErrorKind::Invalid {
                member: member.to_owned(),
                reason: format!("key {key:?}: :serialized: is not a string"),
            })?;
            let type_name = value.get(":type:").and_then(Json::as_str);
            let payload = Payload::decode(text, type_name, options, member, key)?;
            payloads.push((key.clone(), payload));
        }
        let find = |key: &str| payloads.iter().find(|(k, _)| k == key).map(|(_, p)| p);
        let mut budget = Budget::new(options.limits().max_values);
        let mut space_of = |key: &str| -> Result<Option<Space>> {
            let Some(payload) = find(key) else {
                return Ok(None);
            };
            space::decode(payload.root(), &mut budget).map(Some).map_err(|reason| {
                ErrorKind::Invalid {
                    member: member.to_owned(),
                    reason: format!("key {key:?}: {reason}"),
                }
                .into()
            })
        };
        let observation_space = space_of("observation_space")?;
        let action_space = space_of("action_space")?;
        let policy_class = find("policy_class").and_then(Payload::global);
        let policy_kwargs = match find("policy_kwargs") {
            Some(payload) => PolicyKwargs::from_value(payload.root()),
            None => json.get("policy_kwargs").and_then(PolicyKwargs::from_json),
        };
        Ok(Data {
            json,
            payloads,
            policy_class,
            policy_kwargs,
            observation_space,
            action_space,
        })
    }

    /// The JSON object as written (`:serialized:` values still base64, with their readable
    /// extras).
    pub fn raw(&self) -> &Map<String, Json> {
        &self.json
    }

    /// The top-level keys, in file order.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.json.keys().map(String::as_str)
    }

    /// The value under a top-level key: the decoded payload when it is `:serialized:`.
    pub fn get(&self, key: &str) -> Option<DataValue<'_>> {
        match self.payload(key) {
            Some(p) => Some(DataValue::Serialized(p)),
            None => self.json.get(key).map(DataValue::Json),
        }
    }

    /// The decoded payload under a top-level key, if that value is `:serialized:`.
    pub fn payload(&self, key: &str) -> Option<&Payload> {
        self.payloads.iter().find(|(k, _)| k == key).map(|(_, p)| p)
    }

    /// Every decoded payload with its key, in file order.
    pub fn payloads(&self) -> impl Iterator<Item = (&str, &Payload)> + '_ {
        self.payloads.iter().map(|(k, p)| (k.as_str(), p))
    }

    /// The policy class (`stable_baselines3.common.policies.ActorCriticPolicy`).
    pub fn policy_class(&self) -> Option<&GlobalName> {
        self.policy_class.as_ref()
    }

    /// `policy_kwargs`, from plain JSON or its payload.
    pub fn policy_kwargs(&self) -> Option<&PolicyKwargs> {
        self.policy_kwargs.as_ref()
    }

    /// The observation space.
    pub fn observation_space(&self) -> Option<&Space> {
        self.observation_space.as_ref()
    }

    /// The action space.
    pub fn action_space(&self) -> Option<&Space> {
        self.action_space.as_ref()
    }

    fn json_u64(&self, key: &str) -> Option<u64> {
        self.json.get(key).and_then(Json::as_u64)
    }

    fn json_f64(&self, key: &str) -> Option<f64> {
        self.json.get(key).and_then(Json::as_f64)
    }

    /// `n_envs`: the number of environments trained in parallel.
    pub fn n_envs(&self) -> Option<u64> {
        self.json_u64("n_envs")
    }

    /// `num_timesteps`: steps trained.
    pub fn num_timesteps(&self) -> Option<u64> {
        self.json_u64("num_timesteps")
    }

    /// `_total_timesteps`: steps the last `learn` call was asked for.
    pub fn total_timesteps(&self) -> Option<u64> {
        self.json_u64("_total_timesteps")
    }

    /// `seed`, when one was set.
    pub fn seed(&self) -> Option<i64> {
        self.json.get("seed").and_then(Json::as_i64)
    }

    /// `gamma`: the discount factor.
    pub fn gamma(&self) -> Option<f64> {
        self.json_f64("gamma")
    }

    /// `learning_rate` when it is a constant (a schedule is a payload: see
    /// [`payload`](Self::payload)).
    pub fn learning_rate(&self) -> Option<f64> {
        self.json_f64("learning_rate")
    }

    /// `use_sde`: whether the policy uses generalized state-dependent exploration.
    pub fn use_sde(&self) -> Option<bool> {
        self.json.get("use_sde").and_then(Json::as_bool)
    }

    /// `n_steps` (on-policy algorithms).
    pub fn n_steps(&self) -> Option<u64> {
        self.json_u64("n_steps")
    }

    /// `batch_size`.
    pub fn batch_size(&self) -> Option<u64> {
        self.json_u64("batch_size")
    }

    /// `buffer_size` (off-policy algorithms).
    pub fn buffer_size(&self) -> Option<u64> {
        self.json_u64("buffer_size")
    }

    /// `tau`: the soft update coefficient (off-policy algorithms).
    pub fn tau(&self) -> Option<f64> {
        self.json_f64("tau")
    }

    /// `start_time`: when training started (seconds since the epoch; nanoseconds in SB3 ≥ 2.0).
    pub fn start_time(&self) -> Option<f64> {
        self.json_f64("start_time")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_member_and_key() {
        let err = Data::parse(b"{", &Options::default()).unwrap_err();
        assert!(err.to_string().starts_with("data: invalid JSON"), "{err}");
        let err = Data::parse(b"[1]", &Options::default()).unwrap_err();
        assert!(err.to_string().contains("not a JSON object"), "{err}");
        let err = Data::parse(br#"{"x": {":serialized:": 5}}"#, &Options::default()).unwrap_err();
        assert!(err.to_string().contains("key \"x\""), "{err}");
        let err = Data::parse(br#"{"x": {":serialized:": "@@@"}}"#, &Options::default()).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Base64 { key, .. } if key == "x"),
            "{err}"
        );
        // base64 of a truncated pickle
        let err = Data::parse(br#"{"x": {":serialized:": "gARL"}}"#, &Options::default()).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Payload { key, .. } if key == "x"),
            "{err}"
        );
    }

    #[test]
    fn plain_values_and_absent_spaces() {
        let data = Data::parse(
            br#"{"n_envs": 1, "learning_rate": 0.0003, "policy_kwargs": {}}"#,
            &Options::default(),
        )
        .unwrap();
        assert_eq!(data.learning_rate(), Some(0.0003));
        assert!(data.observation_space().is_none());
        assert_eq!(data.policy_kwargs().map(|k| k.keys.len()), Some(0));
        assert!(matches!(data.get("n_envs"), Some(DataValue::Json(_))));
        assert_eq!(data.keys().count(), 3);
    }
}

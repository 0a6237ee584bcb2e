//! `policy_kwargs`: the policy's constructor arguments, plain JSON or a serialized dict.

use std::collections::HashSet;

use pth_reader::{Kind, Limits, Value};
use serde_json::Value as Json;

use crate::decode::Budget;
use crate::names::GlobalName;
use crate::numpy::{bool_of, float_of, int_of};

/// The common constructor arguments of an SB3 policy, read from `data["policy_kwargs"]`.
///
/// Each field is `None` when the key is absent or not of the expected type; every key that
/// was present is listed in [`keys`](Self::keys), and the raw value stays available through
/// [`Data::get`](crate::Data::get).
///
/// ```
/// # fn main() -> Result<(), sb3_format::Error> {
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sb3/a2c_mountaincar_vecnorm.zip");
/// let model = sb3_format::Model::open(path, &pth_reader::Options::default())?;
/// let kwargs = model.data().and_then(|d| d.policy_kwargs()).expect("policy_kwargs");
/// assert_eq!(kwargs.optimizer_class.as_ref().map(|a| a.name.as_str()), Some("RMSprop"));
/// assert_eq!(kwargs.net_arch, Some(sb3_format::NetArch::Layers(vec![32, 32])));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PolicyKwargs {
    /// `net_arch`.
    pub net_arch: Option<NetArch>,
    /// `activation_fn`, a class such as `torch.nn.modules.activation.ReLU`.
    pub activation_fn: Option<GlobalName>,
    /// `log_std_init`.
    pub log_std_init: Option<f64>,
    /// `squash_output`.
    pub squash_output: Option<bool>,
    /// `use_sde` (gSDE).
    pub use_sde: Option<bool>,
    /// `use_expln`.
    pub use_expln: Option<bool>,
    /// `full_std`.
    pub full_std: Option<bool>,
    /// `clip_mean` (SAC/TQC with gSDE).
    pub clip_mean: Option<f64>,
    /// `ortho_init`.
    pub ortho_init: Option<bool>,
    /// `normalize_images`.
    pub normalize_images: Option<bool>,
    /// `share_features_extractor`.
    pub share_features_extractor: Option<bool>,
    /// `n_critics` (SAC/TD3/TQC).
    pub n_critics: Option<i64>,
    /// `n_quantiles` (QR-DQN/TQC).
    pub n_quantiles: Option<i64>,
    /// `features_extractor_class`.
    pub features_extractor_class: Option<GlobalName>,
    /// `optimizer_class`.
    pub optimizer_class: Option<GlobalName>,
    /// Every key present, in order.
    pub keys: Vec<String>,
}

/// `net_arch` as written: SB3 interprets a plain list differently across versions (shared
/// layers before 1.8, separate since), so the form is kept rather than interpreted.
///
/// ```
/// let arch = sb3_format::NetArch::PerNetwork(vec![("pi".into(), vec![64]), ("qf".into(), vec![400, 300])]);
/// assert_eq!(arch.network("qf"), Some(&[400, 300][..]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetArch {
    /// A list of layer sizes: `[64, 64]`.
    Layers(Vec<u64>),
    /// Sizes per network: `dict(pi=[..], vf=[..])` or `dict(pi=[..], qf=[..])`.
    PerNetwork(Vec<(String, Vec<u64>)>),
    /// The form before SB3 1.8: shared layers, then per-network sizes
    /// (`[64, dict(pi=[..], vf=[..])]`).
    SharedThenPerNetwork {
        /// The shared layer sizes.
        shared: Vec<u64>,
        /// Sizes per network.
        networks: Vec<(String, Vec<u64>)>,
    },
}

impl NetArch {
    /// The layer sizes of one network (`pi`, `vf`, `qf`) when given per network.
    pub fn network(&self, name: &str) -> Option<&[u64]> {
        let networks = match self {
            NetArch::Layers(_) => return None,
            NetArch::PerNetwork(n) | NetArch::SharedThenPerNetwork { networks: n, .. } => n,
        };
        networks
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, sizes)| sizes.as_slice())
    }
}

/// A value from either source: parsed JSON, or a decoded pickle.
#[derive(Clone, Copy)]
enum Item<'a> {
    Json(&'a Json),
    Py(Value<'a>),
}

impl<'a> Item<'a> {
    /// The string-keyed items of a dict, keys borrowed.
    fn items(self) -> Option<Vec<(&'a str, Item<'a>)>> {
        match self {
            Item::Json(j) => Some(
                j.as_object()?
                    .iter()
                    .map(|(k, v)| (k.as_str(), Item::Json(v)))
                    .collect(),
            ),
            Item::Py(v) => Some(
                v.as_dict()?
                    .iter()
                    .filter_map(|(k, v)| Some((k.as_str()?, Item::Py(v))))
                    .collect(),
            ),
        }
    }

    fn list(self) -> Option<Vec<Item<'a>>> {
        match self {
            Item::Json(j) => Some(j.as_array()?.iter().map(Item::Json).collect()),
            Item::Py(v) => match v.kind() {
                Kind::List(s) | Kind::Tuple(s) => Some(s.iter().map(Item::Py).collect()),
                _ => None,
            },
        }
    }

    fn u64(self) -> Option<u64> {
        match self {
            Item::Json(j) => j.as_u64(),
            Item::Py(v) => match v.kind() {
                Kind::Bool(_) => None,
                _ => int_of(v).and_then(|i| u64::try_from(i).ok()),
            },
        }
    }

    fn i64(self) -> Option<i64> {
        match self {
            Item::Json(j) => j.as_i64(),
            Item::Py(v) => int_of(v),
        }
    }

    fn f64(self) -> Option<f64> {
        match self {
            Item::Json(j) => j.as_f64(),
            Item::Py(v) => float_of(v),
        }
    }

    fn bool(self) -> Option<bool> {
        match self {
            Item::Json(j) => j.as_bool(),
            Item::Py(v) => bool_of(v),
        }
    }

    fn global(self) -> Option<GlobalName> {
        match self {
            Item::Json(_) => None,
            Item::Py(v) => v.as_global().map(|(m, n)| GlobalName::new(m, n)),
        }
    }

    /// A list of layer sizes; its length is charged to `budget` (a pickle may share one long
    /// list under many keys).
    fn sizes(self, budget: &mut Budget) -> Option<Vec<u64>> {
        let list = self.list()?;
        budget.charge(list.len()).ok()?;
        list.into_iter().map(Item::u64).collect()
    }
}

impl PolicyKwargs {
    /// Reads the kwargs from plain JSON (`{"net_arch": [64, 64]}`); `None` unless an object.
    ///
    /// ```
    /// let json = serde_json::json!({"net_arch": {"pi": [32], "vf": [32]}, "ortho_init": false});
    /// let kwargs = sb3_format::PolicyKwargs::from_json(&json).unwrap();
    /// assert_eq!(kwargs.ortho_init, Some(false));
    /// assert_eq!(kwargs.net_arch.unwrap().network("vf"), Some(&[32][..]));
    /// ```
    pub fn from_json(json: &Json) -> Option<PolicyKwargs> {
        PolicyKwargs::from_item(Item::Json(json))
    }

    /// Reads the kwargs from a decoded pickle (a dict); `None` unless a dict.
    pub fn from_value(value: Value<'_>) -> Option<PolicyKwargs> {
        PolicyKwargs::from_item(Item::Py(value))
    }

    fn from_item(item: Item<'_>) -> Option<PolicyKwargs> {
        let items = item.items()?;
        // What is copied out is charged, so shared values cannot multiply the work.
        let mut budget = Budget::new(Limits::default().max_values);
        // A pickle may set one key twice; as in Python, the last value wins.
        let get = |key: &str| items.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let mut keys = Vec::with_capacity(items.len());
        let mut seen = HashSet::new();
        for (key, _) in &items {
            if budget.charge_text(key.len()).is_err() {
                break;
            }
            if seen.insert(*key) {
                keys.push((*key).to_owned());
            }
        }
        Some(PolicyKwargs {
            net_arch: get("net_arch").and_then(|a| net_arch(a, &mut budget)),
            activation_fn: get("activation_fn").and_then(Item::global),
            log_std_init: get("log_std_init").and_then(Item::f64),
            squash_output: get("squash_output").and_then(Item::bool),
            use_sde: get("use_sde").and_then(Item::bool),
            use_expln: get("use_expln").and_then(Item::bool),
            full_std: get("full_std").and_then(Item::bool),
            clip_mean: get("clip_mean").and_then(Item::f64),
            ortho_init: get("ortho_init").and_then(Item::bool),
            normalize_images: get("normalize_images").and_then(Item::bool),
            share_features_extractor: get("share_features_extractor").and_then(Item::bool),
            n_critics: get("n_critics").and_then(Item::i64),
            n_quantiles: get("n_quantiles").and_then(Item::i64),
            features_extractor_class: get("features_extractor_class").and_then(Item::global),
            optimizer_class: get("optimizer_class").and_then(Item::global),
            keys,
        })
    }
}

fn per_network(item: Item<'_>, budget: &mut Budget) -> Option<Vec<(String, Vec<u64>)>> {
    let mut out = Vec::new();
    for (key, value) in item.items()? {
        budget.charge_text(key.len()).ok()?;
        let sizes = value.sizes(budget)?;
        out.push((key.to_owned(), sizes));
    }
    Some(out)
}

fn net_arch(item: Item<'_>, budget: &mut Budget) -> Option<NetArch> {
    if let Some(networks) = per_network(item, budget) {
        return Some(NetArch::PerNetwork(networks));
    }
    let list = item.list()?;
    if let Some(sizes) = item.sizes(budget) {
        return Some(NetArch::Layers(sizes));
    }
    // [64, 64, dict(pi=[..], vf=[..])]: sizes, then one dict last.
    let (last, shared) = list.split_last()?;
    let shared = shared.iter().map(|i| i.u64()).collect::<Option<Vec<_>>>()?;
    Some(NetArch::SharedThenPerNetwork {
        shared,
        networks: per_network(*last, budget)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn net_arch_forms() {
        let arch = |j: Json| net_arch(Item::Json(&j), &mut Budget::new(1000));
        assert_eq!(arch(json!([64, 64])), Some(NetArch::Layers(vec![64, 64])));
        assert_eq!(
            arch(json!([128, {"pi": [64], "vf": [32]}])),
            Some(NetArch::SharedThenPerNetwork {
                shared: vec![128],
                networks: vec![("pi".into(), vec![64]), ("vf".into(), vec![32])],
            })
        );
        assert_eq!(arch(json!(["a"])), None);
        assert_eq!(arch(json!(null)), None);
    }
}

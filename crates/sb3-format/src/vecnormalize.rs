//! `vecnormalize.pkl`: the observation statistics many trained agents need before `predict`.
//!
//! The file is a plain pickle of SB3's `VecNormalize` wrapper (without its environment). It is
//! decoded by `pth-reader`'s pickle machine in lenient mode, so nothing in it runs.

use std::path::Path;

use pth_reader::{Kind, Options, Pickle, SharedBytes, Value};

use crate::decode::{invalid, Budget, Malformed};
use crate::names::GlobalName;
use crate::numpy::{bool_of, decode_array, float_of};
use crate::space::{self, class_of, Space};
use crate::{Error, ErrorKind, Result};

/// The name used in errors when the file has no name of its own.
const MEMBER: &str = "vecnormalize.pkl";

/// A running mean and variance (SB3's `RunningMeanStd`), in `float64`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningMeanStd {
    shape: Vec<usize>,
    mean: Vec<f64>,
    var: Vec<f64>,
    count: f64,
}

impl RunningMeanStd {
    /// The shape of the statistics (the observation's shape; empty for rewards).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The means, flat in C order.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The variances, flat in C order.
    pub fn var(&self) -> &[f64] {
        &self.var
    }

    /// The number of samples seen (a float: it starts at `epsilon`).
    pub fn count(&self) -> f64 {
        self.count
    }

    /// `clip((x - mean) / sqrt(var + epsilon), -clip, clip)` for each element, in `f64` as SB3
    /// computes it; `None` when `x` does not have one value per statistic.
    pub fn normalize(&self, x: &[f64], epsilon: f64, clip: f64) -> Option<Vec<f64>> {
        if x.len() != self.mean.len() {
            return None;
        }
        Some(
            x.iter()
                .zip(self.mean.iter().zip(&self.var))
                .map(|(x, (m, v))| ((x - m) / (v + epsilon).sqrt()).clamp(-clip, clip))
                .collect(),
        )
    }

    fn decode(value: Value<'_>, budget: &mut Budget) -> std::result::Result<RunningMeanStd, Malformed> {
        let mut array = |key: &str| -> std::result::Result<(Vec<usize>, Vec<f64>), Malformed> {
            let v = value
                .get(key)
                .ok_or_else(|| Malformed::Invalid(format!("RunningMeanStd without `{key}`")))?;
            if let Some(x) = v.as_f64() {
                return Ok((Vec::new(), vec![x]));
            }
            let array = decode_array(v, budget)
                .map_err(|e| e.inside(format!("`{key}`")))?
                .ok_or_else(|| Malformed::Invalid(format!("`{key}` is not a numpy array")))?;
            let values = array
                .to_f64_vec()
                .ok_or_else(|| Malformed::Invalid(format!("`{key}` is a {} array", array.dtype())))?;
            Ok((array.shape().to_vec(), values))
        };
        let (shape, mean) = array("mean")?;
        let (var_shape, var) = array("var")?;
        if var_shape != shape {
            return invalid(format!("mean has shape {shape:?} but var has shape {var_shape:?}"));
        }
        let count = value
            .get("count")
            .and_then(float_of)
            .ok_or("RunningMeanStd without a numeric `count`")?;
        Ok(RunningMeanStd {
            shape,
            mean,
            var,
            count,
        })
    }
}

/// The observation statistics: one set, or one per key of a `Dict` observation space.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ObsStats {
    /// Statistics of a single array observation.
    Single(RunningMeanStd),
    /// Statistics per observation key, in the pickled order.
    Dict(Vec<(String, RunningMeanStd)>),
}

impl ObsStats {
    /// `obs_rms`: one `RunningMeanStd`, or a dict of them.
    fn decode(value: Value<'_>, budget: &mut Budget) -> std::result::Result<ObsStats, Malformed> {
        let Kind::Dict(dict) = value.kind() else {
            return RunningMeanStd::decode(value, budget)
                .map(ObsStats::Single)
                .map_err(|e| e.inside("obs_rms"));
        };
        let mut items = Vec::with_capacity(dict.len());
        for (key, value) in dict.iter() {
            let key = key.as_str().ok_or("`obs_rms` has a key that is not a string")?;
            let rms = RunningMeanStd::decode(value, budget).map_err(|e| e.inside(format!("obs_rms[{key:?}]")))?;
            budget.charge_text(key.len())?;
            items.push((key.to_owned(), rms));
        }
        Ok(ObsStats::Dict(items))
    }

    /// The statistics of a single observation, or of key `key` of a dict observation.
    pub fn get(&self, key: &str) -> Option<&RunningMeanStd> {
        match self {
            ObsStats::Single(_) => None,
            ObsStats::Dict(items) => items.iter().find(|(k, _)| k == key).map(|(_, r)| r),
        }
    }
}

/// A decoded `vecnormalize.pkl`.
///
/// Exposes what `predict` needs (`obs_rms`, `epsilon`, `clip_obs`, `norm_obs`,
/// `norm_obs_keys`) and the rest of the wrapper's settings. Files from every SB3 version are
/// read: `norm_obs_keys` (SB3 ≥ 1.6), the older `obs_keys` set, or neither; `numpy.core` and
/// numpy 2's `numpy._core` names.
///
/// ```
/// # fn main() -> Result<(), sb3_format::Error> {
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sb3/a2c_mountaincar_vecnorm.vecnormalize.pkl");
/// let vn = sb3_format::VecNormalize::open(path, &pth_reader::Options::default())?;
/// let raw = [-0.5, 0.01]; // MountainCarContinuous: position, velocity
/// let normalized: Vec<f32> = vn.normalize_obs(&raw).expect("two values");
/// assert_eq!(normalized.len(), 2);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct VecNormalize {
    class: Option<GlobalName>,
    obs_rms: Option<ObsStats>,
    ret_rms: Option<RunningMeanStd>,
    clip_obs: f64,
    clip_reward: Option<f64>,
    epsilon: f64,
    gamma: Option<f64>,
    norm_obs: bool,
    norm_reward: Option<bool>,
    training: Option<bool>,
    norm_obs_keys: Option<Vec<String>>,
    observation_space: Option<Space>,
    pickle: Pickle,
}

impl VecNormalize {
    /// Decodes the file at `path` (mapped or read as `options` say); errors name the file.
    pub fn open(path: impl AsRef<Path>, options: &Options) -> Result<VecNormalize> {
        let path = path.as_ref();
        let bytes = SharedBytes::open(path, options).map_err(|source| ErrorKind::Io {
            path: path.to_path_buf(),
            source,
        })?;
        VecNormalize::decode(bytes.as_slice(), options, &path.display().to_string())
    }

    /// Decodes the bytes of a VecNormalize pickle; errors name `vecnormalize.pkl`.
    pub fn from_bytes(bytes: &[u8], options: &Options) -> Result<VecNormalize> {
        VecNormalize::decode(bytes, options, MEMBER)
    }

    /// Decodes the pickle in lenient mode (its classes are SB3's) within `options`' limits;
    /// errors name `name`.
    fn decode(bytes: &[u8], options: &Options, name: &str) -> Result<VecNormalize> {
        let options = options.clone().lenient(true);
        let pickle = Pickle::parse_named(bytes, name, &options).map_err(|source| ErrorKind::Member {
            member: name.to_owned(),
            source,
        })?;
        let invalid = |reason: String| {
            Error::from(ErrorKind::Invalid {
                member: name.to_owned(),
                reason,
            })
        };
        let root = pickle.root();
        let mut budget = Budget::new(options.limits().max_values);
        let class = class_of(root).map(|(m, n)| GlobalName::new(m, n));
        let get = |key: &str| root.get(key);
        let number = |key: &str| get(key).and_then(float_of);
        let flag = |key: &str| get(key).and_then(bool_of);
        let norm_obs = flag("norm_obs").ok_or_else(|| invalid("no boolean `norm_obs`".into()))?;
        // SB3 makes `obs_rms` only when it normalises observations (`norm_obs=False`: rewards only).
        let obs_rms = match get("obs_rms") {
            Some(v) => Some(ObsStats::decode(v, &mut budget).map_err(|e| invalid(e.to_string()))?),
            None if norm_obs => {
                return Err(invalid(
                    "no `obs_rms` though `norm_obs` is set: not a VecNormalize pickle (or one without its state)"
                        .into(),
                ))
            }
            None => None,
        };
        let ret_rms = match get("ret_rms") {
            Some(v) if !v.is_none() => {
                Some(RunningMeanStd::decode(v, &mut budget).map_err(|e| invalid(format!("ret_rms: {e}")))?)
            }
            _ => None,
        };
        let clip_obs = number("clip_obs").ok_or_else(|| invalid("no numeric `clip_obs`".into()))?;
        let epsilon = number("epsilon").ok_or_else(|| invalid("no numeric `epsilon`".into()))?;
        let norm_obs_keys = observation_keys(root, &mut budget).map_err(|e| invalid(e.to_string()))?;
        let observation_space = match get("observation_space") {
            Some(v) if space::is_space(v) => {
                Some(space::decode(v, &mut budget).map_err(|e| invalid(format!("observation_space: {e}")))?)
            }
            _ => None,
        };
        Ok(VecNormalize {
            class,
            obs_rms,
            ret_rms,
            clip_obs,
            clip_reward: number("clip_reward"),
            epsilon,
            gamma: number("gamma"),
            norm_obs,
            norm_reward: flag("norm_reward"),
            training: flag("training"),
            norm_obs_keys,
            observation_space,
            pickle,
        })
    }

    /// The pickled class (`stable_baselines3.common.vec_env.vec_normalize.VecNormalize`).
    pub fn class(&self) -> Option<&GlobalName> {
        self.class.as_ref()
    }

    /// The observation statistics; `None` when the file has none (SB3 keeps them only with
    /// [`norm_obs`](Self::norm_obs)).
    pub fn obs_rms(&self) -> Option<&ObsStats> {
        self.obs_rms.as_ref()
    }

    /// The return statistics (for reward normalisation), if present.
    pub fn ret_rms(&self) -> Option<&RunningMeanStd> {
        self.ret_rms.as_ref()
    }

    /// `clip_obs`: normalised observations are clipped to `[-clip_obs, clip_obs]`.
    pub fn clip_obs(&self) -> f64 {
        self.clip_obs
    }

    /// `clip_reward`.
    pub fn clip_reward(&self) -> Option<f64> {
        self.clip_reward
    }

    /// `epsilon`, added to the variance.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// `gamma`, the discount used for return statistics.
    pub fn gamma(&self) -> Option<f64> {
        self.gamma
    }

    /// `norm_obs`: whether observations are normalised.
    pub fn norm_obs(&self) -> bool {
        self.norm_obs
    }

    /// `norm_reward`.
    pub fn norm_reward(&self) -> Option<bool> {
        self.norm_reward
    }

    /// `training`.
    pub fn training(&self) -> Option<bool> {
        self.training
    }

    /// The keys of a dict observation to normalise (`norm_obs_keys`, or the older
    /// `obs_keys`), when the file names them.
    pub fn norm_obs_keys(&self) -> Option<&[String]> {
        self.norm_obs_keys.as_deref()
    }

    /// The observation space the wrapper saw, when the file holds one.
    pub fn observation_space(&self) -> Option<&Space> {
        self.observation_space.as_ref()
    }

    /// The decoded pickle, for everything else.
    pub fn pickle(&self) -> &Pickle {
        &self.pickle
    }

    /// Normalises a raw (single-array) observation as SB3's `normalize_obs` does: in `f64`,
    /// then cast to `f32`. Returns the observation unchanged (cast) when `norm_obs` is false;
    /// `None` for dict statistics or a length mismatch.
    pub fn normalize_obs(&self, obs: &[f64]) -> Option<Vec<f32>> {
        if !self.norm_obs {
            return Some(obs.iter().map(|&x| x as f32).collect());
        }
        match self.obs_rms.as_ref()? {
            ObsStats::Single(rms) => rms
                .normalize(obs, self.epsilon, self.clip_obs)
                .map(|v| v.into_iter().map(|x| x as f32).collect()),
            ObsStats::Dict(_) => None,
        }
    }

    /// Normalises key `key` of a dict observation: keys outside
    /// [`norm_obs_keys`](Self::norm_obs_keys) (all keys with statistics when the file names
    /// none) are returned unchanged. `None` for a length mismatch or single statistics.
    pub fn normalize_obs_key(&self, key: &str, obs: &[f64]) -> Option<Vec<f32>> {
        let unchanged = || Some(obs.iter().map(|&x| x as f32).collect());
        let stats = match &self.obs_rms {
            Some(stats @ ObsStats::Dict(_)) => stats,
            Some(ObsStats::Single(_)) => return None,
            None if self.norm_obs => return None,
            None => return unchanged(),
        };
        let selected = match &self.norm_obs_keys {
            Some(keys) => keys.iter().any(|k| k == key),
            None => stats.get(key).is_some(),
        };
        if !self.norm_obs || !selected {
            return unchanged();
        }
        stats
            .get(key)?
            .normalize(obs, self.epsilon, self.clip_obs)
            .map(|v| v.into_iter().map(|x| x as f32).collect())
    }
}

/// The keys of a dict observation to normalise: SB3 ≥ 1.6 writes `norm_obs_keys` (a list or
/// None); earlier versions `obs_keys` (a set or None); the oldest neither.
fn observation_keys(root: Value<'_>, budget: &mut Budget) -> std::result::Result<Option<Vec<String>>, Malformed> {
    let given = |key: &str| root.get(key).filter(|v| !v.is_none());
    let Some(value) = given("norm_obs_keys").or_else(|| given("obs_keys")) else {
        return Ok(None);
    };
    let seq = value.as_seq().ok_or("observation keys are not a list or set")?;
    let mut keys = Vec::with_capacity(seq.len());
    for k in seq.iter() {
        let k = k.as_str().ok_or("observation keys are not all strings")?;
        budget.charge_text(k.len())?;
        keys.push(k.to_owned());
    }
    Ok(Some(keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_clips_and_checks_length() {
        let rms = RunningMeanStd {
            shape: vec![2],
            mean: vec![1.0, 0.0],
            var: vec![4.0, 1e-12],
            count: 10.0,
        };
        assert_eq!(rms.normalize(&[3.0, 1.0], 0.0, 5.0), Some(vec![1.0, 5.0]));
        assert_eq!(rms.normalize(&[3.0], 0.0, 5.0), None);
    }

    #[test]
    fn errors_name_the_file() {
        let err = VecNormalize::from_bytes(b"\x80\x02}q\x00.", &Options::default()).unwrap_err();
        assert!(err.to_string().starts_with("vecnormalize.pkl: "), "{err}");
        let err = VecNormalize::from_bytes(b"garbage", &Options::default()).unwrap_err();
        assert!(err.to_string().starts_with("vecnormalize.pkl: "), "{err}");
    }
}

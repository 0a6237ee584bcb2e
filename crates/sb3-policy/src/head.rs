//! From the output layer's values to the action `predict(deterministic=True)` returns: the
//! squashing inside the network (tanh, gSDE's clamp of the mean), the distribution's mode
//! (argmax of the categorical probabilities, per-block argmax, Bernoulli rounding, QR-DQN's
//! mean over quantiles) and `predict`'s own step (clip to the bounds, or unscale a squashed
//! action), all in float32 in SB3's order of operations.

use sb3_format::Space;

use crate::error::{unsupported, Error, Result};
use crate::math;
use crate::observation::Action;

/// What the network applies after its output layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Squash {
    /// Nothing (logits, Q-values, Gaussian means).
    None,
    /// `tanh` (TD3's actor, SAC's squashed Gaussian, ARS with `squash_output`, gSDE with
    /// `squash_output`).
    Tanh,
    /// `Hardtanh(-clip_mean, clip_mean)` then `tanh` (SAC/TQC with gSDE).
    ClampTanh(f32),
}

impl Squash {
    #[inline(always)]
    pub fn apply(self, values: &mut [f32]) {
        match self {
            Squash::None => {}
            Squash::Tanh => values.iter_mut().for_each(|v| *v = math::tanh(*v)),
            Squash::ClampTanh(limit) => values.iter_mut().for_each(|v| {
                // torch's hardtanh keeps NaN.
                let clamped = if *v < -limit {
                    -limit
                } else if *v > limit {
                    limit
                } else {
                    *v
                };
                *v = math::tanh(clamped);
            }),
        }
    }
}

/// How output values become the action.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mapping {
    /// `np.clip(action, low, high)` (Box actions of unsquashed policies).
    Clip { low: Vec<f32>, high: Vec<f32> },
    /// `low + 0.5 · (action + 1) · (high - low)` (squashed policies).
    Unscale { low: Vec<f32>, high: Vec<f32> },
    /// `argmax(softmax(logits))` over `n` logits (Discrete, actor-critic).
    Categorical { n: usize },
    /// One categorical per element (MultiDiscrete, actor-critic).
    MultiCategorical { nvec: Vec<usize> },
    /// `round(sigmoid(logits))` (MultiBinary, actor-critic).
    Bernoulli,
    /// `argmax(softmax(pair))` for each pair of logits (MultiBinary, MaskablePPO: sb3-contrib's
    /// `MaskableBernoulliDistribution` is a categorical of two states per element).
    CategoricalPairs,
    /// `argmax(values)` over `n` values (DQN's Q-values, ARS's logits).
    Argmax { n: usize },
    /// `argmax(mean over quantiles)`, values laid out `[quantile][action]` (QR-DQN).
    QuantileArgmax { quantiles: usize, actions: usize },
}

/// A Box action space's bounds as float32, and its size.
pub(crate) fn box_bounds(space: &Space) -> Option<(Vec<f32>, Vec<f32>)> {
    match space {
        Space::Box(b) => Some((
            b.low_f64().into_iter().map(|v| v as f32).collect(),
            b.high_f64().into_iter().map(|v| v as f32).collect(),
        )),
        _ => None,
    }
}

impl Mapping {
    /// The mapping of an actor-critic policy's distribution for `space` (`maskable`: the
    /// distributions of sb3-contrib's MaskablePPO).
    pub fn for_distribution(space: &Space, squash: bool, maskable: bool) -> Result<Mapping> {
        Ok(match space {
            // sb3-contrib cannot make a maskable distribution for any other space.
            Space::Box(_) if maskable => return Err(unsupported("MaskablePPO with Box actions")),
            Space::Box(_) => {
                let (low, high) = box_bounds(space).unwrap_or_default();
                if squash {
                    Mapping::Unscale { low, high }
                } else {
                    Mapping::Clip { low, high }
                }
            }
            Space::Discrete { n, .. } => Mapping::Categorical {
                n: usize::try_from(*n)
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| unsupported(format!("Discrete({n}) actions")))?,
            },
            Space::MultiDiscrete { nvec, .. } => Mapping::MultiCategorical {
                nvec: nvec
                    .to_i64_vec()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|n| usize::try_from(n).ok().filter(|&n| n > 0))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| unsupported("MultiDiscrete actions with a non-positive size"))?,
            },
            Space::MultiBinary { shape, n_is_int: true } if shape.len() == 1 => match maskable {
                true => Mapping::CategoricalPairs,
                false => Mapping::Bernoulli,
            },
            other => return Err(unsupported(format!("{} action spaces", describe(other)))),
        })
    }

    /// The number of output values the mapping reads, given the action space's size.
    pub fn width(&self, action_len: usize) -> usize {
        match self {
            Mapping::MultiCategorical { nvec } => nvec.iter().sum(),
            Mapping::QuantileArgmax { quantiles, actions } => quantiles * actions,
            Mapping::Categorical { n } | Mapping::Argmax { n } => *n,
            Mapping::CategoricalPairs => action_len.saturating_mul(2),
            _ => action_len,
        }
    }

    /// A zeroed action of the right variant and size.
    pub fn new_action(&self, action_len: usize) -> Action {
        match self {
            Mapping::Clip { .. } | Mapping::Unscale { .. } => Action::Box(vec![0.0; action_len]),
            Mapping::Categorical { .. } | Mapping::Argmax { .. } | Mapping::QuantileArgmax { .. } => {
                Action::Discrete(0)
            }
            Mapping::MultiCategorical { nvec } => Action::MultiDiscrete(vec![0; nvec.len()]),
            Mapping::Bernoulli | Mapping::CategoricalPairs => Action::MultiBinary(vec![0; action_len]),
        }
    }

    /// Writes the action for the output `values` (after [`Squash`]) into `action`, which
    /// must come from [`new_action`](Self::new_action).
    #[inline(always)]
    pub fn apply(&self, values: &[f32], action: &mut Action) -> Result<()> {
        match (self, action) {
            (Mapping::Clip { low, high }, Action::Box(out)) if out.len() == low.len() => {
                for (((o, &v), &lo), &hi) in out.iter_mut().zip(values).zip(low).zip(high) {
                    *o = clip(v, lo, hi);
                }
            }
            (Mapping::Unscale { low, high }, Action::Box(out)) if out.len() == low.len() => {
                for (((o, &v), &lo), &hi) in out.iter_mut().zip(values).zip(low).zip(high) {
                    *o = unscale(v, lo, hi);
                }
            }
            (Mapping::Categorical { .. }, Action::Discrete(out)) => *out = argmax_probs(values) as i64,
            (Mapping::Argmax { .. }, Action::Discrete(out)) => *out = argmax(values) as i64,
            (Mapping::QuantileArgmax { quantiles, actions }, Action::Discrete(out)) => {
                *out = quantile_argmax(values, *quantiles, *actions) as i64;
            }
            (Mapping::MultiCategorical { nvec }, Action::MultiDiscrete(out)) if out.len() == nvec.len() => {
                for (o, index) in out.iter_mut().zip(block_argmax(values, nvec.iter().copied())) {
                    *o = index as i64;
                }
            }
            (Mapping::Bernoulli, Action::MultiBinary(out)) if out.len() == values.len() => {
                for (o, &v) in out.iter_mut().zip(values) {
                    *o = bernoulli_mode(v);
                }
            }
            (Mapping::CategoricalPairs, Action::MultiBinary(out)) if out.len() * 2 == values.len() => {
                for (o, index) in out.iter_mut().zip(block_argmax(values, std::iter::repeat(2))) {
                    *o = u8::from(index == 1);
                }
            }
            _ => return Err(Error::Buffers("the action was not made by this policy".into())),
        }
        Ok(())
    }

    /// Writes the action for `values` as numbers (indices for discrete actions) into `row`.
    pub fn apply_row(&self, values: &[f32], row: &mut [f32]) {
        match self {
            Mapping::Clip { low, high } => {
                for (((o, &v), &lo), &hi) in row.iter_mut().zip(values).zip(low).zip(high) {
                    *o = clip(v, lo, hi);
                }
            }
            Mapping::Unscale { low, high } => {
                for (((o, &v), &lo), &hi) in row.iter_mut().zip(values).zip(low).zip(high) {
                    *o = unscale(v, lo, hi);
                }
            }
            Mapping::Categorical { .. } => fill(row, argmax_probs(values) as f32),
            Mapping::Argmax { .. } => fill(row, argmax(values) as f32),
            Mapping::QuantileArgmax { quantiles, actions } => {
                fill(row, quantile_argmax(values, *quantiles, *actions) as f32);
            }
            Mapping::MultiCategorical { nvec } => {
                for (o, index) in row.iter_mut().zip(block_argmax(values, nvec.iter().copied())) {
                    *o = index as f32;
                }
            }
            Mapping::Bernoulli => {
                for (o, &v) in row.iter_mut().zip(values) {
                    *o = f32::from(bernoulli_mode(v));
                }
            }
            Mapping::CategoricalPairs => {
                for (o, index) in row.iter_mut().zip(block_argmax(values, std::iter::repeat(2))) {
                    *o = index as f32;
                }
            }
        }
    }
}

/// The argmax of the probabilities of each block of `values`, blocks of the given sizes one
/// after the other (MultiDiscrete's `nvec`; MultiBinary pairs for MaskablePPO).
fn block_argmax<'a>(values: &'a [f32], sizes: impl Iterator<Item = usize> + 'a) -> impl Iterator<Item = usize> + 'a {
    let mut rest = values;
    sizes.map(move |n| {
        let (block, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        argmax_probs(block)
    })
}

fn fill(row: &mut [f32], value: f32) {
    row.iter_mut().for_each(|o| *o = value);
}

/// A space as `pth sb3 info` names it in errors.
fn describe(space: &Space) -> String {
    match space {
        Space::MultiBinary { shape, .. } => format!("MultiBinary{shape:?}"),
        other => other.type_name().to_owned(),
    }
}

/// `np.clip` of one float32 (NaN stays NaN).
#[inline(always)]
fn clip(v: f32, low: f32, high: f32) -> f32 {
    let v = if v < low { low } else { v };
    if v > high {
        high
    } else {
        v
    }
}

/// `BasePolicy.unscale_action` in float32: `low + (0.5 * (a + 1.0) * (high - low))`.
#[inline(always)]
fn unscale(a: f32, low: f32, high: f32) -> f32 {
    low + (0.5 * (a + 1.0) * (high - low))
}

/// `torch.argmax`: the first maximum, NaN counting as the maximum.
pub(crate) fn argmax(values: &[f32]) -> usize {
    first_max(values.iter().copied())
}

/// The index of the first maximum of `values`, or of the first NaN.
fn first_max(values: impl Iterator<Item = f32>) -> usize {
    let mut best = 0;
    let mut best_value = f32::NEG_INFINITY;
    for (i, v) in values.enumerate() {
        if v.is_nan() {
            return i;
        }
        if v > best_value || i == 0 {
            best = i;
            best_value = v;
        }
    }
    best
}

/// The mode of `Categorical(logits=values)`: `argmax(probs)` where torch normalises the logits
/// (`logits - logsumexp(logits)`) and takes their softmax. Logits that differ by less than
/// the probabilities resolve tie there, and the first wins, as in SB3.
pub(crate) fn argmax_probs(logits: &[f32]) -> usize {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() || logits.iter().any(|v| v.is_nan()) {
        return argmax(logits);
    }
    // Probabilities can only tie where logits are within float32 rounding of each other
    // (below 1e-6 apart, as the softmax of values near 1 resolves 6e-8): when the runner-up
    // is further than 1e-3 below the maximum, the first maximum of the logits is the answer.
    let best = argmax(logits);
    let runner_up = logits
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != best)
        .map(|(_, &v)| v)
        .fold(f32::NEG_INFINITY, f32::max);
    if max - runner_up > 1e-3 {
        return best;
    }
    let sum: f32 = logits.iter().map(|&v| (v - max).exp()).sum();
    let lse = sum.ln() + max;
    // softmax(normalized): exp(n - max(n)) / Σ
    let normalized_max = max - lse;
    let mut total = 0.0f32;
    for &v in logits {
        total += ((v - lse) - normalized_max).exp();
    }
    first_max(logits.iter().map(|&v| ((v - lse) - normalized_max).exp() / total))
}

/// `round(sigmoid(logit))` with round-half-to-even, as `torch.round`.
#[inline(always)]
fn bernoulli_mode(logit: f32) -> u8 {
    let p = 1.0 / (1.0 + (-logit).exp());
    u8::from(p > 0.5)
}

/// QR-DQN: `quantiles.view(-1, Q, A).mean(dim=1).argmax(dim=1)`.
fn quantile_argmax(values: &[f32], quantiles: usize, actions: usize) -> usize {
    first_max((0..actions).map(|a| {
        let sum: f32 = values.iter().skip(a).step_by(actions.max(1)).take(quantiles).sum();
        sum / quantiles as f32
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_maximum_and_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
        assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
        assert_eq!(argmax(&[1.0, f32::NAN, 3.0]), 1);
        assert_eq!(argmax_probs(&[0.0, 2.0, 2.0]), 1);
        assert_eq!(argmax_probs(&[-1.0, 0.5, 0.25]), 1);
    }

    #[test]
    fn probabilities_tie_where_logits_barely_differ() {
        // torch 2.15: Categorical(logits=[1e-3, nextafter(1e-3, 1), -0.5]).probs ties the first
        // two (argmax 0) where argmax(logits) is 1; at 20 and its successor they do not tie.
        let a = 1e-3f32;
        let b = f32::from_bits(a.to_bits() + 1);
        assert_eq!(argmax(&[a, b, -0.5]), 1);
        assert_eq!(argmax_probs(&[a, b, -0.5]), 0);
        let c = 20.0f32;
        assert_eq!(argmax_probs(&[c, f32::from_bits(c.to_bits() + 1), -5.0]), 1);
    }

    #[test]
    fn clip_unscale_and_bernoulli() {
        let m = Mapping::Clip {
            low: vec![-1.0, 0.0],
            high: vec![1.0, 2.0],
        };
        let mut action = m.new_action(2);
        m.apply(&[3.0, -1.0], &mut action).unwrap();
        assert_eq!(action, Action::Box(vec![1.0, 0.0]));
        let u = Mapping::Unscale {
            low: vec![-2.0],
            high: vec![2.0],
        };
        let mut action = u.new_action(1);
        u.apply(&[0.5], &mut action).unwrap();
        assert_eq!(action, Action::Box(vec![1.0]));
        assert!(u.apply(&[0.5], &mut Action::Discrete(0)).is_err());
        assert_eq!(bernoulli_mode(0.0), 0);
        assert_eq!(bernoulli_mode(1e-9), 0);
        assert_eq!(bernoulli_mode(1e-3), 1);
    }

    #[test]
    fn quantiles_are_averaged_per_action() {
        // 2 quantiles × 3 actions, [quantile][action]: means 2, 2.5, 3
        let values = [1.0, 5.0, 0.0, 3.0, 0.0, 6.0];
        assert_eq!(quantile_argmax(&values, 2, 3), 2);
        // action 1 has the largest single value but not the largest mean
        let values = [1.0, 9.0, 4.0, 3.0, -8.0, 3.0];
        assert_eq!(quantile_argmax(&values, 2, 3), 2);
    }
}

//! Batch prediction: observations in chunks that stay in cache, each layer run on four
//! observations at a time so that every weight loaded serves four of them.

use ndarray::{Array2, ArrayView2, Axis};
use sb3_format::Space;

use crate::dense::{padded, Dense, ROWS};
use crate::error::{unsupported, Error, Result};
use crate::head::Mapping;
use crate::input::Input;
use crate::network::Network;
use crate::policy::Policy;

/// Observations per chunk: the activations of a chunk stay in the L1/L2 cache.
const CHUNK: usize = 64;

/// The number of columns an observation row has.
fn columns(policy: &Policy) -> usize {
    match (policy.observation_space(), policy.network().extractor.parts().first()) {
        (Space::Discrete { .. }, _) => 1,
        (_, Some(part)) => match &part.input {
            Input::MultiDiscrete { nvec } => nvec.len(),
            input => input.width(),
        },
        (_, None) => 0,
    }
}

/// The number of numbers an action row has.
fn action_columns(net: &Network) -> usize {
    match &net.mapping {
        Mapping::Clip { .. } | Mapping::Unscale { .. } | Mapping::Bernoulli | Mapping::CategoricalPairs => {
            net.action_len
        }
        Mapping::MultiCategorical { nvec } => nvec.len(),
        _ => 1,
    }
}

/// `layer` on `rows` observations of `x` (stride `xs`), into `y` (stride `ys`, at least the
/// layer's padded width).
#[inline(always)]
fn layer_rows(layer: &Dense, x: &[f32], xs: usize, y: &mut [f32], ys: usize, rows: usize) {
    let full = rows / ROWS * ROWS;
    for r in (0..full).step_by(ROWS) {
        if let (Some(x), Some(y)) = (x.get(r * xs..), y.get_mut(r * ys..)) {
            layer.forward_rows(x, xs, y, ys);
        }
    }
    for r in full..rows {
        if let (Some(x), Some(y)) = (
            x.get(r * xs..r * xs + layer.inputs()),
            y.get_mut(r * ys..r * ys + layer.outputs()),
        ) {
            layer.forward(x, y);
        }
    }
}

impl Policy {
    /// Actions for a batch of observations, one per row of `observations` (each row the
    /// observation flat in C order; for Discrete spaces, one column holding the value).
    ///
    /// The result has one row per observation: the action's values for Box and MultiBinary
    /// spaces, the indices for MultiDiscrete, and one column with the index for Discrete.
    /// Dict observation spaces and recurrent policies are refused (use
    /// [`predict_into`](Self::predict_into) per observation).
    ///
    /// ```
    /// # fn main() -> Result<(), sb3_policy::Error> {
    /// let policy = sb3_policy::Policy::open(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sb3/ppo_cartpole.zip"))?;
    /// let observations = ndarray::Array2::<f32>::zeros((1000, 4));
    /// let actions = policy.predict_batch(observations.view())?;
    /// assert_eq!(actions.dim(), (1000, 1));
    /// # Ok(()) }
    /// ```
    pub fn predict_batch(&self, observations: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        predict_batch(self, observations)
    }
}

/// Refuses what [`Policy::predict_batch`] does not predict: recurrent policies, Dict
/// observations, rows of the wrong width.
fn check_batch(policy: &Policy, observations: ArrayView2<'_, f32>) -> Result<()> {
    if policy.is_recurrent() {
        return Err(unsupported("batch prediction with a recurrent policy"));
    }
    if matches!(policy.observation_space(), Space::Dict(_)) {
        return Err(unsupported("batch prediction of Dict observations"));
    }
    let columns = columns(policy);
    if observations.ncols() != columns {
        return Err(Error::Observation(format!(
            "{} columns for observations of {columns} values",
            observations.ncols()
        )));
    }
    Ok(())
}

/// See [`Policy::predict_batch`].
fn predict_batch(policy: &Policy, observations: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
    check_batch(policy, observations)?;
    let net = policy.network();
    let rows = observations.nrows();
    let features = net.extractor.features();
    let layers: Vec<&Dense> = net.hidden.layers().iter().chain([&net.output]).collect();
    let stride = layers
        .iter()
        .map(|l| padded(l.outputs()))
        .chain([features])
        .max()
        .unwrap_or(features);
    let mut a = vec![0.0f32; CHUNK * stride];
    let mut b = vec![0.0f32; CHUNK * stride];
    let mut actions = Array2::<f32>::zeros((rows, action_columns(net)));
    let mut scratch = policy.scratch();
    let mut copy = Vec::new();
    let plain = net.extractor.is_plain_copy();
    let last = layers.len().saturating_sub(1);
    for (chunk, (obs, mut out)) in observations
        .axis_chunks_iter(Axis(0), CHUNK)
        .zip(actions.axis_chunks_iter_mut(Axis(0), CHUNK))
        .enumerate()
    {
        let n = obs.nrows();
        for (r, row) in obs.axis_iter(Axis(0)).enumerate() {
            let values = match row.as_slice() {
                Some(values) => values,
                None => {
                    copy.clear();
                    copy.extend(row.iter().copied());
                    &copy
                }
            };
            let dst = a.get_mut(r * stride..r * stride + features).unwrap_or_default();
            if plain && values.len() == dst.len() {
                dst.copy_from_slice(values);
                continue;
            }
            policy.extract_row(values, &mut scratch, dst).map_err(|e| match e {
                Error::Observation(m) => Error::Observation(format!("row {}: {m}", chunk * CHUNK + r)),
                other => other,
            })?;
        }
        policy.simd().run(
            #[inline(always)]
            || {
                let (mut x, mut y) = (&mut a, &mut b);
                for (index, layer) in layers.iter().enumerate() {
                    layer_rows(layer, x, stride, y, stride, n);
                    if index < last {
                        for row in y.chunks_exact_mut(stride).take(n) {
                            net.hidden
                                .activate(index, row.get_mut(..layer.outputs()).unwrap_or_default());
                        }
                    }
                    std::mem::swap(&mut x, &mut y);
                }
                for (values, mut action) in x.chunks_exact_mut(stride).zip(out.axis_iter_mut(Axis(0))) {
                    let values = values.get_mut(..net.output.outputs()).unwrap_or_default();
                    net.squash.apply(values);
                    if let Some(action) = action.as_slice_mut() {
                        net.mapping.apply_row(values, action);
                    }
                }
            },
        );
    }
    Ok(actions)
}

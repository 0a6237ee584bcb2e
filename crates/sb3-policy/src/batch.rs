//! Batch prediction: every layer as one matrix product over the batch.

use ndarray::{Array2, ArrayView2, Axis};
use sb3_format::Space;

use crate::error::{unsupported, Error, Result};
use crate::head::Mapping;
use crate::policy::Policy;

/// See [`Policy::predict_batch`].
pub(crate) fn predict_batch(policy: &Policy, observations: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
    let net = policy.network();
    if policy.is_recurrent() {
        return Err(unsupported("batch prediction with a recurrent policy"));
    }
    if matches!(policy.observation_space(), Space::Dict(_)) {
        return Err(unsupported("batch prediction of Dict observations"));
    }
    let rows = observations.nrows();
    let columns = match policy.observation_space() {
        Space::Discrete { .. } => 1,
        _ => net.extractor.parts().first().map_or(0, |p| p.input.width()),
    };
    let columns = match (policy.observation_space(), net.extractor.parts().first()) {
        (Space::MultiDiscrete { .. }, Some(p)) => match &p.input {
            crate::input::Input::MultiDiscrete { nvec } => nvec.len(),
            _ => columns,
        },
        _ => columns,
    };
    if observations.ncols() != columns {
        return Err(Error::Observation(format!(
            "{} columns for observations of {columns} values",
            observations.ncols()
        )));
    }
    let features = net.extractor.features();
    let mut x = Array2::<f32>::zeros((rows, features));
    let mut scratch = policy.scratch();
    let mut copy = Vec::new();
    for (index, (row, mut out)) in observations
        .axis_iter(Axis(0))
        .zip(x.axis_iter_mut(Axis(0)))
        .enumerate()
    {
        let values = match row.as_slice() {
            Some(values) => values,
            None => {
                copy.clear();
                copy.extend(row.iter().copied());
                &copy
            }
        };
        let out = out.as_slice_mut().unwrap_or_default();
        policy.extract_row(values, &mut scratch, out).map_err(|e| match e {
            Error::Observation(m) => Error::Observation(format!("row {index}: {m}")),
            other => other,
        })?;
    }
    let simd = policy.simd();
    let latent = net.hidden.forward_batch(simd, x);
    let mut output = Array2::<f32>::zeros((rows, net.output.outputs()));
    net.output.forward_batch(latent.view(), output.view_mut());
    let action_columns = match &net.mapping {
        Mapping::Clip { .. } | Mapping::Unscale { .. } | Mapping::Bernoulli => net.action_len,
        Mapping::MultiCategorical { nvec } => nvec.len(),
        _ => 1,
    };
    let mut actions = Array2::<f32>::zeros((rows, action_columns));
    simd.run(
        #[inline(always)]
        || {
            for (mut values, mut action) in output.axis_iter_mut(Axis(0)).zip(actions.axis_iter_mut(Axis(0))) {
                if let (Some(values), Some(action)) = (values.as_slice_mut(), action.as_slice_mut()) {
                    net.squash.apply(values);
                    net.mapping.apply_row(values, action);
                }
            }
        },
    );
    Ok(actions)
}

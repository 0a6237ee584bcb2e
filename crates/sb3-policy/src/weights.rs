//! The policy's state dict as float32 tensors, and the layout of `nn.Sequential` blocks in it.

use std::collections::BTreeSet;

use pth_reader::Checkpoint;

use crate::error::{invalid, unsupported, Result};

/// A float32 copy of one tensor: its shape and values in C order.
#[derive(Debug, Clone)]
pub(crate) struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Read access to `policy.pth` by tensor name.
///
/// Names are state-dict keys (`mlp_extractor.policy_net.0.weight`). Every tensor is converted
/// to float32 as `load_state_dict` copies it into SB3's float32 parameters.
pub(crate) struct StateDict<'a, 'data> {
    checkpoint: &'a Checkpoint<'data>,
    names: BTreeSet<&'a str>,
}

impl<'a, 'data> StateDict<'a, 'data> {
    pub fn new(checkpoint: &'a Checkpoint<'data>) -> StateDict<'a, 'data> {
        let names = checkpoint.tensors().map(|(name, _)| name).collect();
        StateDict { checkpoint, names }
    }

    /// Whether a tensor named `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// Whether any tensor name starts with `prefix`.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.names_under(prefix).next().is_some()
    }

    /// Every tensor name starting with `prefix`, in sorted order.
    pub fn names_under<'s>(&'s self, prefix: &'s str) -> impl Iterator<Item = &'s str> + 's {
        let names: &'s BTreeSet<&'s str> = &self.names;
        names
            .range(prefix..)
            .take_while(move |n| n.starts_with(prefix))
            .copied()
    }

    /// The tensor `name` as float32, checked to have `dims` dimensions.
    pub fn tensor(&self, name: &str, dims: usize) -> Result<Tensor> {
        let view = self
            .checkpoint
            .tensor(name)
            .map_err(|_| invalid(format!("policy.pth has no tensor {name:?}")))?;
        if !view.dtype().is_floating_point() || view.dtype().is_complex() {
            return Err(unsupported(format!("tensor {name:?} has dtype {}", view.dtype())));
        }
        if view.shape().len() != dims {
            return Err(invalid(format!(
                "tensor {name:?} has shape {:?}, expected {dims} dimensions",
                view.shape()
            )));
        }
        let data = view
            .to_f32_vec()
            .map_err(|e| invalid(format!("tensor {name:?}: {e}")))?;
        Ok(Tensor {
            shape: view.shape().to_vec(),
            data,
        })
    }

    /// The one learned value of the module at `prefix` (`"mlp_extractor.policy_net.1."`): a
    /// `weight` of one element and no bias, as `nn.PReLU()` holds its slope.
    pub fn scalar_parameter(&self, prefix: &str) -> Result<f32> {
        let name = format!("{prefix}weight");
        if self.has(&format!("{prefix}bias")) {
            return Err(unsupported(format!("layer {prefix}* has a bias: not a PReLU")));
        }
        match self.tensor(&name, 1)?.data.as_slice() {
            [value] => Ok(*value),
            values => Err(unsupported(format!(
                "tensor {name:?} has {} elements: a PReLU with one slope per channel",
                values.len()
            ))),
        }
    }

    /// The layer indices of the `nn.Sequential` at `prefix` (`"q_net.q_net."`) that hold a
    /// `weight`, in order. Every tensor under the prefix must be `<index>.weight` or
    /// `<index>.bias` (of a layer with a weight); anything else is a module this crate does
    /// not run, and is named in the error.
    pub fn sequential_indices(&self, prefix: &str) -> Result<Vec<usize>> {
        let mut indices = BTreeSet::new();
        let mut biases = BTreeSet::new();
        for name in self.names_under(prefix) {
            let rest = name.get(prefix.len()..).unwrap_or_default();
            let parsed = rest
                .split_once('.')
                .and_then(|(index, param)| Some((index.parse::<usize>().ok()?, param)));
            match parsed {
                Some((index, "weight")) => {
                    indices.insert(index);
                }
                Some((index, "bias")) => {
                    biases.insert(index);
                }
                _ => {
                    return Err(unsupported(format!(
                        "layer {name:?} is not a Linear layer of a Sequential"
                    )))
                }
            }
        }
        if let Some(orphan) = biases.difference(&indices).next() {
            return Err(invalid(format!("{prefix}{orphan}.bias without a weight")));
        }
        Ok(indices.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_sequential_layout() {
        let path = test_support::fixture("sb3/ppo_cartpole.zip");
        let model = sb3_format::Model::open(path, &pth_reader::Options::default().lenient(true)).unwrap();
        let policy = model.policy().unwrap();
        let sd = StateDict::new(policy);
        assert!(sd.has_prefix("mlp_extractor.policy_net."));
        assert!(!sd.has_prefix("mlp_extractor.shared_net."));
        assert_eq!(sd.sequential_indices("mlp_extractor.policy_net.").unwrap(), vec![0, 2]);
        assert!(sd.sequential_indices("mlp_extractor.").is_err());
        let w = sd.tensor("action_net.weight", 2).unwrap();
        assert_eq!(w.shape, vec![2, 32]);
        assert!(sd.tensor("action_net.weight", 1).is_err());
        assert!(sd.tensor("nope", 1).is_err());
    }
}

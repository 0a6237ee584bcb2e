//! `nn.Linear` layers and stacks of them with an activation after each (`MlpExtractor` nets,
//! `create_mlp` hidden layers).

use ndarray::{linalg::general_mat_mul, ArrayView2, ArrayViewMut2};

use crate::activation::Activation;
use crate::error::{invalid, Result};
use crate::simd::{madd, Simd};
use crate::weights::StateDict;

/// Outputs computed together in registers by the single-observation kernel.
const BLOCK: usize = 32;

/// A fully connected layer `y = x·Wᵀ + b`.
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    inputs: usize,
    outputs: usize,
    /// The weight transposed, `[inputs][outputs]`: one input's contributions are contiguous.
    wt: Vec<f32>,
    /// The bias (zeros for `bias=False` layers).
    bias: Vec<f32>,
    has_bias: bool,
}

impl Dense {
    /// The layer at `prefix` (`"action_net."`): `weight` `[out, in]` and, when present, `bias`
    /// `[out]`.
    pub fn load(state: &StateDict<'_, '_>, prefix: &str) -> Result<Dense> {
        let weight = state.tensor(&format!("{prefix}weight"), 2)?;
        let bias_name = format!("{prefix}bias");
        let bias = if state.has(&bias_name) {
            Some(state.tensor(&bias_name, 1)?.data)
        } else {
            None
        };
        let (outputs, inputs) = match weight.shape.as_slice() {
            [o, i] => (*o, *i),
            _ => return Err(invalid(format!("{prefix}weight is not a matrix"))),
        };
        Dense::new(inputs, outputs, &weight.data, bias).map_err(|e| invalid(format!("{prefix}: {e}")))
    }

    /// A layer from a row-major `[outputs][inputs]` weight (torch's layout) and a bias.
    pub fn new(inputs: usize, outputs: usize, weight: &[f32], bias: Option<Vec<f32>>) -> Result<Dense, String> {
        if weight.len() != inputs * outputs {
            return Err(format!("weight has {} values for {outputs}x{inputs}", weight.len()));
        }
        let has_bias = bias.is_some();
        let bias = bias.unwrap_or_else(|| vec![0.0; outputs]);
        if bias.len() != outputs {
            return Err(format!("bias has {} values for {outputs} outputs", bias.len()));
        }
        let mut wt = vec![0.0; inputs * outputs];
        for (o, row) in weight.chunks_exact(inputs.max(1)).enumerate().take(outputs) {
            for (i, &w) in row.iter().enumerate() {
                if let Some(slot) = wt.get_mut(i * outputs + o) {
                    *slot = w;
                }
            }
        }
        Ok(Dense {
            inputs,
            outputs,
            wt,
            bias,
            has_bias,
        })
    }

    pub fn inputs(&self) -> usize {
        self.inputs
    }

    pub fn outputs(&self) -> usize {
        self.outputs
    }

    pub fn has_bias(&self) -> bool {
        self.has_bias
    }

    /// `y = x·Wᵀ + b` for one observation (`x.len() == inputs`, `y.len() == outputs`).
    #[inline(always)]
    pub fn forward(&self, x: &[f32], y: &mut [f32]) {
        let n = self.outputs;
        let rows = self.wt.chunks_exact(n.max(1));
        let mut start = 0;
        let mut blocks = y.chunks_exact_mut(BLOCK);
        for out in &mut blocks {
            let mut acc = [0.0f32; BLOCK];
            if let Some(b) = self.bias.get(start..start + BLOCK) {
                acc.copy_from_slice(b);
            }
            for (&xi, row) in x.iter().zip(rows.clone()) {
                if let Some(w) = row.get(start..start + BLOCK) {
                    for (a, &w) in acc.iter_mut().zip(w) {
                        *a = madd(w, xi, *a);
                    }
                }
            }
            out.copy_from_slice(&acc);
            start += BLOCK;
        }
        let tail = blocks.into_remainder();
        if let Some(b) = self.bias.get(start..) {
            tail.copy_from_slice(b);
        }
        for (&xi, row) in x.iter().zip(rows) {
            if let Some(w) = row.get(start..) {
                for (a, &w) in tail.iter_mut().zip(w) {
                    *a = madd(w, xi, *a);
                }
            }
        }
    }

    /// `Y = X·Wᵀ + b` for a batch (`x`: `[n, inputs]`, `y`: `[n, outputs]`).
    pub fn forward_batch(&self, x: ArrayView2<'_, f32>, mut y: ArrayViewMut2<'_, f32>) {
        let bias = ArrayView2::from_shape((1, self.outputs), &self.bias);
        if let Ok(bias) = bias {
            let dim = y.dim();
            y.assign(&bias.broadcast(dim).unwrap_or(bias));
        }
        if let Ok(wt) = ArrayView2::from_shape((self.inputs, self.outputs), &self.wt) {
            general_mat_mul(1.0, &x, &wt, 1.0, &mut y);
        }
    }
}

/// Linear layers each followed by the same activation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mlp {
    layers: Vec<Dense>,
    activation: Option<Activation>,
}

impl Mlp {
    pub fn new(layers: Vec<Dense>, activation: Activation) -> Result<Mlp> {
        for pair in layers.windows(2) {
            if let [a, b] = pair {
                if a.outputs() != b.inputs() {
                    return Err(invalid(format!(
                        "a layer of {} outputs feeds a layer of {} inputs",
                        a.outputs(),
                        b.inputs()
                    )));
                }
            }
        }
        Ok(Mlp {
            layers,
            activation: Some(activation),
        })
    }

    /// Appends `other`'s layers (a shared net followed by the policy net).
    pub fn then(mut self, other: Mlp) -> Result<Mlp> {
        let activation = self.activation.or(other.activation);
        self.layers.extend(other.layers);
        let mut out = Mlp::new(self.layers, activation.unwrap_or(Activation::Identity))?;
        out.activation = activation;
        Ok(out)
    }

    pub fn layers(&self) -> &[Dense] {
        &self.layers
    }

    pub fn activation(&self) -> Option<Activation> {
        self.activation
    }

    /// The width of the output (`inputs` when there are no layers).
    pub fn outputs(&self, inputs: usize) -> usize {
        self.layers.last().map_or(inputs, Dense::outputs)
    }

    /// The widest layer output (for scratch sizes).
    pub fn widest(&self) -> usize {
        self.layers.iter().map(Dense::outputs).max().unwrap_or(0)
    }

    /// Runs the layers on `input` (of `len` values at the start of `a`), ping-ponging between
    /// `a` and `b`; returns whether the result is in `b` and its length.
    #[inline(always)]
    pub fn forward(&self, a: &mut [f32], b: &mut [f32], len: usize) -> (bool, usize) {
        let mut in_b = false;
        let mut len = len;
        for layer in &self.layers {
            let (src, dst) = if in_b { (&*b, &mut *a) } else { (&*a, &mut *b) };
            let (Some(x), Some(y)) = (src.get(..len), dst.get_mut(..layer.outputs())) else {
                break;
            };
            layer.forward(x, y);
            if let Some(activation) = self.activation {
                activation.apply(y);
            }
            len = layer.outputs();
            in_b = !in_b;
        }
        (in_b, len)
    }

    /// Runs the layers on a batch; returns the output (`x` itself when there are no layers).
    pub fn forward_batch(&self, simd: Simd, x: ndarray::Array2<f32>) -> ndarray::Array2<f32> {
        let mut current = x;
        for layer in &self.layers {
            let mut y = ndarray::Array2::zeros((current.nrows(), layer.outputs()));
            layer.forward_batch(current.view(), y.view_mut());
            if let (Some(activation), Some(values)) = (self.activation, y.as_slice_mut()) {
                simd.run(
                    #[inline(always)]
                    || activation.apply(values),
                );
            }
            current = y;
        }
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_matches_a_hand_computation() {
        // W = [[1, 2, 3], [4, 5, 6]] (2 outputs, 3 inputs), b = [0.5, -1]
        let layer = Dense::new(3, 2, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], Some(vec![0.5, -1.0])).unwrap();
        let mut y = [0.0; 2];
        Simd::detect().run(|| layer.forward(&[1.0, -1.0, 2.0], &mut y));
        assert_eq!(y, [0.5 + 1.0 - 2.0 + 6.0, -1.0 + 4.0 - 5.0 + 12.0]);
        let x = ndarray::arr2(&[[1.0f32, -1.0, 2.0], [0.0, 0.0, 1.0]]);
        let mut yb = ndarray::Array2::zeros((2, 2));
        layer.forward_batch(x.view(), yb.view_mut());
        assert_eq!(yb, ndarray::arr2(&[[5.5, 10.0], [3.5, 5.0]]));
        assert!(Dense::new(3, 2, &[1.0], None).is_err());
    }

    #[test]
    fn wide_layers_use_blocks_and_tail() {
        // 70 outputs: two full blocks of 32 and a tail of 6; W[o][i] = o + i, b = 0.
        let (inputs, outputs) = (5, 70);
        let weight: Vec<f32> = (0..outputs)
            .flat_map(|o| (0..inputs).map(move |i| (o + i) as f32))
            .collect();
        let layer = Dense::new(inputs, outputs, &weight, None).unwrap();
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let mut y = vec![0.0; outputs];
        Simd::detect().run(|| layer.forward(&x, &mut y));
        for (o, v) in y.iter().enumerate() {
            let want: f32 = (0..inputs).map(|i| (o + i) as f32 * x[i]).sum();
            assert_eq!(*v, want, "output {o}");
        }
    }
}

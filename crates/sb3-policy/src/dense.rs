//! `nn.Linear` layers and stacks of them with an activation after each (`MlpExtractor` nets,
//! `create_mlp` hidden layers).

use crate::activation::Activation;
use crate::error::{invalid, Result};
use crate::simd::madd;
use crate::weights::StateDict;

/// Panel widths, widest first: outputs are computed together in registers, one panel at a
/// time. 64 sums are four AVX-512 registers, enough independent additions to hide their
/// latency; the outputs left over go in panels of 32, then of 16 (the last one padded with
/// zero weights; narrower panels are not vectorised by the compiler in the four-row kernel).
const WIDTHS: [usize; 3] = [64, 32, 16];
/// Observations computed together by the batch kernel (each weight load serves all of them).
pub(crate) const ROWS: usize = 4;

/// A fully connected layer `y = x·Wᵀ + b`.
///
/// The weight is packed in panels: the outputs in groups of 64, 32 or 16 (the last one padded
/// with zeros), each group stored input after input (`[inputs][64]`), so that one
/// observation's pass reads the weight once, sequentially, and keeps its sums in registers.
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    inputs: usize,
    outputs: usize,
    /// The packed weight (see above).
    packed: Vec<f32>,
    /// The bias, padded with zeros like the panels (zeros for `bias=False` layers).
    bias: Vec<f32>,
    has_bias: bool,
}

/// `out[j] = bias[j] + Σ_i x[i]·panel[i][j]` for one panel of width `W`.
#[inline(always)]
fn panel<const W: usize>(x: &[f32], panel: &[f32], bias: &[f32], out: &mut [f32]) {
    let mut acc = [0.0f32; W];
    if let Some(b) = bias.get(..W) {
        acc.copy_from_slice(b);
    }
    for (&xi, w) in x.iter().zip(panel.chunks_exact(W)) {
        if let Ok(w) = <&[f32; W]>::try_from(w) {
            for (a, &w) in acc.iter_mut().zip(w) {
                *a = madd(w, xi, *a);
            }
        }
    }
    for (o, a) in out.iter_mut().zip(acc) {
        *o = a;
    }
}

/// [`panel`] for [`ROWS`] observations at once (`xs` holds them `stride` apart; outputs are
/// written `out_stride` apart). Written out for four rows: the compiler then keeps every sum
/// in a register.
#[inline(always)]
fn panel_rows<const W: usize>(
    xs: &[f32],
    stride: usize,
    inputs: usize,
    panel: &[f32],
    bias: &[f32],
    out: &mut [f32],
    out_stride: usize,
) {
    let mut acc = [[0.0f32; W]; ROWS];
    if let Some(b) = bias.get(..W) {
        for row in &mut acc {
            row.copy_from_slice(b);
        }
    }
    let (Some(x0), Some(x1), Some(x2), Some(x3)) = (
        xs.get(..inputs),
        xs.get(stride..stride + inputs),
        xs.get(2 * stride..2 * stride + inputs),
        xs.get(3 * stride..3 * stride + inputs),
    ) else {
        return;
    };
    for (i, w) in panel.chunks_exact(W).enumerate().take(inputs) {
        let (Ok(w), Some(&a), Some(&b), Some(&c), Some(&d)) =
            (<&[f32; W]>::try_from(w), x0.get(i), x1.get(i), x2.get(i), x3.get(i))
        else {
            continue;
        };
        let [r0, r1, r2, r3] = &mut acc;
        for ((((&w, s0), s1), s2), s3) in w
            .iter()
            .zip(r0.iter_mut())
            .zip(r1.iter_mut())
            .zip(r2.iter_mut())
            .zip(r3.iter_mut())
        {
            *s0 = madd(w, a, *s0);
            *s1 = madd(w, b, *s1);
            *s2 = madd(w, c, *s2);
            *s3 = madd(w, d, *s3);
        }
    }
    for (r, row) in acc.iter().enumerate() {
        if let Some(o) = out.get_mut(r * out_stride..) {
            for (o, &a) in o.iter_mut().zip(row) {
                *o = a;
            }
        }
    }
}

/// Why a weight or a bias does not fit a layer's sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Misfit {
    Weight {
        values: usize,
        inputs: usize,
        outputs: usize,
    },
    Bias {
        values: usize,
        outputs: usize,
    },
}

impl std::fmt::Display for Misfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Misfit::Weight {
                values,
                inputs,
                outputs,
            } => {
                write!(f, "weight has {values} values for {outputs}x{inputs}")
            }
            Misfit::Bias { values, outputs } => write!(f, "bias has {values} values for {outputs} outputs"),
        }
    }
}

impl Dense {
    /// The layer at `prefix` (`"action_net."`): `weight` `[out, in]` and, when present, `bias`
    /// `[out]`.
    pub fn load(state: &StateDict<'_, '_>, prefix: &str) -> Result<Dense> {
        Dense::load_named(state, &format!("{prefix}weight"), &format!("{prefix}bias"))
    }

    /// The layer whose weight `[out, in]` is `weight` and whose bias `[out]`, when present,
    /// is `bias` (LSTM matrices are named `weight_ih_l0`, `bias_ih_l0`).
    pub fn load_named(state: &StateDict<'_, '_>, weight: &str, bias: &str) -> Result<Dense> {
        let matrix = state.tensor(weight, 2)?;
        let bias = if state.has(bias) {
            Some(state.tensor(bias, 1)?.data)
        } else {
            None
        };
        let (outputs, inputs) = match matrix.shape.as_slice() {
            [o, i] => (*o, *i),
            _ => return Err(invalid(format!("{weight} is not a matrix"))),
        };
        Dense::new(inputs, outputs, &matrix.data, bias).map_err(|e| invalid(format!("{weight}: {e}")))
    }

    /// A layer from a row-major `[outputs][inputs]` weight (torch's layout) and a bias.
    pub fn new(inputs: usize, outputs: usize, weight: &[f32], bias: Option<Vec<f32>>) -> Result<Dense, Misfit> {
        if weight.len() != inputs * outputs {
            return Err(Misfit::Weight {
                values: weight.len(),
                inputs,
                outputs,
            });
        }
        let has_bias = bias.is_some();
        let bias = bias.unwrap_or_else(|| vec![0.0; outputs]);
        if bias.len() != outputs {
            return Err(Misfit::Bias {
                values: bias.len(),
                outputs,
            });
        }
        let padded = padded(outputs);
        let mut packed = vec![0.0; inputs * padded];
        let mut padded_bias = vec![0.0; padded];
        for (o, row) in weight.chunks_exact(inputs.max(1)).enumerate().take(outputs) {
            let (start, width) = panel_of(o, outputs);
            for (i, &w) in row.iter().enumerate() {
                if let Some(slot) = packed.get_mut(start * inputs + i * width + (o - start)) {
                    *slot = w;
                }
            }
        }
        padded_bias.iter_mut().zip(&bias).for_each(|(p, &b)| *p = b);
        Ok(Dense {
            inputs,
            outputs,
            packed,
            bias: padded_bias,
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

    /// The panels: (first output, width) each, in order.
    #[inline(always)]
    fn panels(&self) -> impl Iterator<Item = (usize, usize)> {
        panels(self.outputs)
    }

    /// `y = x·Wᵀ + b` for one observation (`x.len() == inputs`, `y.len() == outputs`).
    #[inline(always)]
    pub fn forward(&self, x: &[f32], y: &mut [f32]) {
        let inputs = self.inputs;
        for (start, width) in self.panels() {
            let (Some(weights), Some(bias), Some(out)) = (
                self.packed.get(start * inputs..(start + width) * inputs),
                self.bias.get(start..start + width),
                y.get_mut(start..self.outputs.min(start + width)),
            ) else {
                continue;
            };
            match width {
                64 => panel::<64>(x, weights, bias, out),
                32 => panel::<32>(x, weights, bias, out),
                _ => panel::<16>(x, weights, bias, out),
            }
        }
    }

    /// `Y = X·Wᵀ + b` for [`ROWS`] observations held `x_stride` apart in `x`, written
    /// `y_stride` apart in `y`.
    #[inline(always)]
    pub fn forward_rows(&self, x: &[f32], x_stride: usize, y: &mut [f32], y_stride: usize) {
        let inputs = self.inputs;
        for (start, width) in self.panels() {
            let (Some(weights), Some(bias), Some(out)) = (
                self.packed.get(start * inputs..(start + width) * inputs),
                self.bias.get(start..start + width),
                y.get_mut(start..),
            ) else {
                continue;
            };
            // The padded outputs of a narrow panel land in the next output's columns (or in
            // the row's slack) and are overwritten by the panels that follow or ignored.
            match width {
                64 => panel_rows::<64>(x, x_stride, inputs, weights, bias, out, y_stride),
                32 => panel_rows::<32>(x, x_stride, inputs, weights, bias, out, y_stride),
                _ => panel_rows::<16>(x, x_stride, inputs, weights, bias, out, y_stride),
            }
        }
    }
}

/// The panels of a layer of `outputs` outputs: (first output, width), greedily widest first.
fn panels(outputs: usize) -> impl Iterator<Item = (usize, usize)> {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= outputs {
            return None;
        }
        let left = outputs - start;
        let width = WIDTHS.iter().copied().find(|&w| w <= left).unwrap_or(16);
        let panel = (start, width);
        start += width;
        Some(panel)
    })
}

/// The outputs rounded up to whole panels.
pub(crate) fn padded(outputs: usize) -> usize {
    panels(outputs).last().map_or(0, |(start, width)| start + width)
}

/// The panel holding output `o`: (its first output, its width).
fn panel_of(o: usize, outputs: usize) -> (usize, usize) {
    panels(outputs)
        .find(|&(start, width)| o < start + width)
        .unwrap_or((0, 16))
}

/// Linear layers each followed by the same activation (for PReLU, each with the slope its
/// layer learned).
#[derive(Debug, Clone, Default)]
pub(crate) struct Mlp {
    layers: Vec<Dense>,
    activation: Option<Activation>,
    /// The learned parameter of the activation after each layer (PReLU's slope), 0 for
    /// activations without one: one per layer.
    learned: Vec<f32>,
}

impl Mlp {
    /// `learned`: the learned parameter of each layer's activation (PReLU's slope, one per
    /// layer), or empty for activations without one.
    pub fn new(layers: Vec<Dense>, activation: Activation, learned: Vec<f32>) -> Result<Mlp> {
        check_chain(&layers)?;
        let learned = match (activation.is_learned(), learned.len() == layers.len()) {
            (false, _) if learned.is_empty() => vec![0.0; layers.len()],
            (true, true) => learned,
            _ => {
                return Err(invalid(format!(
                    "{} learned {activation} parameters for {} layers",
                    learned.len(),
                    layers.len()
                )))
            }
        };
        Ok(Mlp {
            layers,
            activation: Some(activation),
            learned,
        })
    }

    /// Appends `other`'s layers (a shared net followed by the policy net).
    pub fn then(mut self, other: Mlp) -> Result<Mlp> {
        let activation = self.activation.or(other.activation);
        self.layers.extend(other.layers);
        check_chain(&self.layers)?;
        self.learned.extend(other.learned);
        self.activation = activation;
        Ok(self)
    }

    /// Applies the activation after layer `index` to its outputs.
    #[inline(always)]
    pub fn activate(&self, index: usize, values: &mut [f32]) {
        if let Some(activation) = self.activation {
            activation.apply(values, self.learned.get(index).copied().unwrap_or_default());
        }
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
        for (index, layer) in self.layers.iter().enumerate() {
            let (src, dst) = if in_b { (&*b, &mut *a) } else { (&*a, &mut *b) };
            let (Some(x), Some(y)) = (src.get(..len), dst.get_mut(..layer.outputs())) else {
                break;
            };
            layer.forward(x, y);
            self.activate(index, y);
            len = layer.outputs();
            in_b = !in_b;
        }
        (in_b, len)
    }
}

/// Each layer's outputs are the next one's inputs.
fn check_chain(layers: &[Dense]) -> Result<()> {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Simd;

    #[test]
    fn dense_matches_a_hand_computation() {
        // W = [[1, 2, 3], [4, 5, 6]] (2 outputs, 3 inputs), b = [0.5, -1]
        let layer = Dense::new(3, 2, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], Some(vec![0.5, -1.0])).unwrap();
        let mut y = [0.0; 2];
        Simd::detect().run(|| layer.forward(&[1.0, -1.0, 2.0], &mut y));
        assert_eq!(y, [0.5 + 1.0 - 2.0 + 6.0, -1.0 + 4.0 - 5.0 + 12.0]);
        // ROWS observations at once, outputs padded to a whole panel.
        let x: Vec<f32> = [1.0f32, -1.0, 2.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0].repeat(ROWS);
        let stride = padded(2);
        assert_eq!(stride, 16);
        let mut yb = vec![0.0; ROWS * stride];
        layer.forward_rows(&x, 3, &mut yb, stride);
        let rows: Vec<&[f32]> = yb.chunks(stride).map(|r| &r[..2]).take(4).collect();
        assert_eq!(rows, vec![&[5.5, 10.0][..], &[3.5, 5.0], &[6.5, 14.0], &[0.5, -1.0]]);
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

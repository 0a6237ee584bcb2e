//! `nn.LSTM` (unidirectional, any number of layers, with or without biases), one time step at
//! a time, as RecurrentPPO runs it in `predict`.

use crate::dense::Dense;
use crate::error::{invalid, unsupported, Result};
use crate::math;
use crate::weights::StateDict;

/// One LSTM layer: `gates = (x·W_ihᵀ + b_ih) + (h·W_hhᵀ + b_hh)`, split into the input,
/// forget, cell and output gates in torch's order.
#[derive(Debug, Clone)]
struct Layer {
    input: Dense,
    recurrent: Dense,
}

/// A stacked LSTM (`lstm_actor`).
#[derive(Debug, Clone)]
pub(crate) struct Lstm {
    layers: Vec<Layer>,
    hidden: usize,
}

impl Lstm {
    /// Loads `<prefix>weight_ih_l{k}`, `weight_hh_l{k}` and the biases for every layer `k`.
    /// Options this crate does not run (`proj_size`, `bidirectional`) are refused by name.
    pub fn load(state: &StateDict<'_, '_>, prefix: &'static str) -> Result<Lstm> {
        for name in state.names_under(prefix) {
            let param = name.get(prefix.len()..).unwrap_or_default();
            if param.contains("reverse") || param.starts_with("weight_hr") {
                return Err(unsupported(format!(
                    "LSTM option behind {name:?} (bidirectional or proj_size)"
                )));
            }
        }
        let mut layers = Vec::new();
        let mut hidden = 0;
        while state.has(&format!("{prefix}weight_ih_l{}", layers.len())) {
            let k = layers.len();
            let matrix = |kind: &str| {
                Dense::load_named(
                    state,
                    &format!("{prefix}weight_{kind}_l{k}"),
                    &format!("{prefix}bias_{kind}_l{k}"),
                )
            };
            let input = matrix("ih")?;
            let recurrent = matrix("hh")?;
            let gates = input.outputs();
            hidden = gates / 4;
            if gates % 4 != 0 || recurrent.outputs() != gates || recurrent.inputs() != hidden {
                return Err(invalid(format!(
                    "{prefix}l{k}: weight_ih has {gates} rows, weight_hh is {}x{}",
                    recurrent.outputs(),
                    recurrent.inputs()
                )));
            }
            if let Some(previous) = layers.last().map(|l: &Layer| l.recurrent.inputs()) {
                if input.inputs() != previous {
                    return Err(invalid(format!(
                        "{prefix}l{k} takes {} inputs, the layer below gives {previous}",
                        input.inputs()
                    )));
                }
            }
            layers.push(Layer { input, recurrent });
        }
        if layers.is_empty() {
            return Err(invalid(format!("no {prefix}weight_ih_l0")));
        }
        Ok(Lstm { layers, hidden })
    }

    /// `hidden_size`.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// `num_layers`.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// The number of inputs (the features).
    pub fn inputs(&self) -> usize {
        self.layers.first().map_or(0, |l| l.input.inputs())
    }

    /// One time step: `h` and `c` (`num_layers · hidden` each) are updated in place; the last
    /// layer's new `h` is the output. `gates` holds `8 · hidden` values.
    #[inline(always)]
    pub fn step(&self, x: &[f32], h: &mut [f32], c: &mut [f32], gates: &mut [f32]) {
        let hidden = self.hidden;
        let (from_input, from_state) = gates.split_at_mut((4 * hidden).min(gates.len()));
        let h_layers = h.chunks_exact_mut(hidden.max(1));
        let c_layers = c.chunks_exact_mut(hidden.max(1));
        let mut below: Option<&[f32]> = None;
        for ((layer, h), c) in self.layers.iter().zip(h_layers).zip(c_layers) {
            let input = below.unwrap_or(x);
            layer.input.forward(input, from_input);
            layer.recurrent.forward(h, from_state);
            for (a, b) in from_input.iter_mut().zip(from_state.iter()) {
                *a += *b;
            }
            let mut chunks = from_input.chunks_exact(hidden.max(1));
            let (Some(i), Some(f), Some(g), Some(o)) = (chunks.next(), chunks.next(), chunks.next(), chunks.next())
            else {
                return;
            };
            for ((((h, c), i), f), (g, o)) in h.iter_mut().zip(c.iter_mut()).zip(i).zip(f).zip(g.iter().zip(o)) {
                let cy = math::sigmoid(*f) * *c + math::sigmoid(*i) * math::tanh(*g);
                *c = cy;
                *h = math::sigmoid(*o) * math::tanh(cy);
            }
            below = Some(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_steps_match_torch() {
        // torch 2.15: nn.LSTM(2, 2) with weight_ih = arange(16).reshape(8, 2) / 10 - 0.7,
        // weight_hh = arange(16).reshape(8, 2) / 20 - 0.4, bias_ih = arange(8) / 10,
        // bias_hh = -arange(8) / 20; inputs [0.5, -1] then [2, 0.25] from a zero state.
        let ramp = |n: usize, scale: f32, shift: f32| (0..n).map(|i| i as f32 / scale - shift).collect::<Vec<_>>();
        let input = Dense::new(2, 8, &ramp(16, 10.0, 0.7), Some(ramp(8, 10.0, 0.0))).unwrap();
        let recurrent = Dense::new(
            2,
            8,
            &ramp(16, 20.0, 0.4),
            Some(ramp(8, 20.0, 0.0).iter().map(|v| -v).collect()),
        )
        .unwrap();
        let lstm = Lstm {
            layers: vec![Layer { input, recurrent }],
            hidden: 2,
        };
        let (mut h, mut c, mut gates) = (vec![0.0; 2], vec![0.0; 2], vec![0.0; 16]);
        let close = |got: &[f32], want: [f64; 2]| {
            got.iter()
                .zip(want)
                .all(|(&g, w)| (f64::from(g) - w).abs() < 1e-7 * w.abs().max(1.0))
        };
        lstm.step(&[0.5, -1.0], &mut h, &mut c, &mut gates);
        assert!(close(&h, [0.013688124716281891, -7.783847344455808e-09]), "{h:?}");
        assert!(close(&c, [0.028085436671972275, -1.638633051470606e-08]), "{c:?}");
        lstm.step(&[2.0, 0.25], &mut h, &mut c, &mut gates);
        assert!(close(&h, [0.06774923950433731, 0.16558411717414856]), "{h:?}");
        assert!(close(&c, [0.08379331231117249, 0.19134752452373505]), "{c:?}");
    }
}

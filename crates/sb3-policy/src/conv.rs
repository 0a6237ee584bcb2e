//! `NatureCNN`: three `Conv2d`+ReLU layers (8×8 stride 4, 4×4 stride 2, 3×3 stride 1, no
//! padding), flatten, `Linear`+ReLU — the extractor of SB3's `CnnPolicy` and of image keys in
//! `CombinedExtractor`.
//!
//! Activations are kept channel-last (`[y][x][c]`): each output position is then one dense
//! product of the weights with the input patch, whose rows are contiguous runs of channels.
//! Weights are reordered once at load time to match (and the linear layer's columns from
//! torch's channel-first flatten order).

use crate::dense::{Dense, ROWS};
use crate::error::{invalid, Result};
use crate::weights::StateDict;

/// The kernel sizes and strides NatureCNN is defined with.
const LAYERS: [(usize, usize); 3] = [(8, 4), (4, 2), (3, 1)];

/// One convolution (no padding, no dilation, no groups) as a dense map from a patch in
/// `[ky][kx][c]` order to the output channels.
#[derive(Debug, Clone)]
struct Conv2d {
    kernel: usize,
    stride: usize,
    in_channels: usize,
    dense: Dense,
}

impl Conv2d {
    fn load(state: &StateDict<'_, '_>, prefix: &str, kernel: usize, stride: usize) -> Result<Conv2d> {
        let weight = state.tensor(&format!("{prefix}weight"), 4)?;
        let bias = state.tensor(&format!("{prefix}bias"), 1)?;
        let [out_channels, in_channels, kh, kw] = <[usize; 4]>::try_from(weight.shape.as_slice())
            .map_err(|_| invalid(format!("{prefix}weight is not 4-D")))?;
        if kh != kernel || kw != kernel {
            return Err(invalid(format!(
                "{prefix}weight has a {kh}x{kw} kernel; NatureCNN's is {kernel}x{kernel}"
            )));
        }
        // torch: [oc][c][ky][kx] → here: [oc][ky][kx][c].
        let patch = kernel * kernel * in_channels;
        let mut reordered = vec![0.0; out_channels * patch];
        for (index, &w) in weight.data.iter().enumerate() {
            let kx = index % kernel;
            let ky = (index / kernel) % kernel;
            let c = (index / (kernel * kernel)) % in_channels;
            let oc = index / patch;
            if let Some(slot) = reordered.get_mut(oc * patch + (ky * kernel + kx) * in_channels + c) {
                *slot = w;
            }
        }
        let dense = Dense::new(patch, out_channels, &reordered, Some(bias.data))
            .map_err(|e| invalid(format!("{prefix}: {e}")))?;
        Ok(Conv2d {
            kernel,
            stride,
            in_channels,
            dense,
        })
    }

    fn out_channels(&self) -> usize {
        self.dense.outputs()
    }

    /// The output size along one axis, `None` when the input is smaller than the kernel.
    fn out_size(&self, size: usize) -> Option<usize> {
        size.checked_sub(self.kernel).map(|d| d / self.stride + 1)
    }

    /// Copies the input patch of output position `position` into `patch` (`[ky][kx][c]`).
    #[inline(always)]
    fn gather(&self, input: &[f32], w: usize, ow: usize, position: usize, patch: &mut [f32]) {
        let (oy, ox) = (position / ow, position % ow);
        let run = self.kernel * self.in_channels;
        for (ky, row) in patch.chunks_exact_mut(run).enumerate().take(self.kernel) {
            let start = ((oy * self.stride + ky) * w + ox * self.stride) * self.in_channels;
            if let Some(src) = input.get(start..start + run) {
                row.copy_from_slice(src);
            }
        }
    }

    /// Convolves a channel-last `[h][w][in_channels]` input into a channel-last output, then
    /// applies ReLU. `patch` holds at least [`ROWS`] patches (`ROWS · kernel² · in_channels`
    /// values): output positions are computed [`ROWS`] at a time, each weight load serving all.
    #[inline(always)]
    fn forward(&self, input: &[f32], (h, w): (usize, usize), patch: &mut [f32], out: &mut [f32]) {
        let (Some(oh), Some(ow)) = (self.out_size(h), self.out_size(w)) else {
            return;
        };
        let (len, oc) = (self.dense.inputs(), self.out_channels());
        let positions = oh * ow;
        // The multi-row kernel writes whole panels: only when they end on a channel count.
        let grouped = if oc % 16 == 0 { positions / ROWS * ROWS } else { 0 };
        for first in (0..grouped).step_by(ROWS) {
            for (r, p) in patch.chunks_exact_mut(len).take(ROWS).enumerate() {
                self.gather(input, w, ow, first + r, p);
            }
            if let Some(y) = out.get_mut(first * oc..) {
                self.dense.forward_rows(patch, len, y, oc);
            }
        }
        for position in grouped..positions {
            let Some(p) = patch.get_mut(..len) else { return };
            self.gather(input, w, ow, position, p);
            if let Some(y) = out.get_mut(position * oc..(position + 1) * oc) {
                self.dense.forward(p, y);
            }
        }
        if let Some(y) = out.get_mut(..positions * oc) {
            y.iter_mut().for_each(|v| *v = if *v < 0.0 { 0.0 } else { *v });
        }
    }
}

/// SB3's `NatureCNN` on one `[c][h][w]` image space, with its weights.
#[derive(Debug, Clone)]
pub(crate) struct NatureCnn {
    convs: [Conv2d; 3],
    linear: Dense,
    /// Input height and width.
    size: (usize, usize),
}

impl NatureCnn {
    /// Loads `<prefix>cnn.{0,2,4}` and `<prefix>linear.0` for images of shape `[c, h, w]`.
    pub fn load(state: &StateDict<'_, '_>, prefix: &str, shape: [usize; 3]) -> Result<NatureCnn> {
        let [c, h, w] = shape;
        let load = |i: usize| {
            let (kernel, stride) = LAYERS.get(i).copied().unwrap_or((1, 1));
            Conv2d::load(state, &format!("{prefix}cnn.{}.", 2 * i), kernel, stride)
        };
        let convs = [load(0)?, load(1)?, load(2)?];
        let mut channels = c;
        let mut size = (h, w);
        for (i, conv) in convs.iter().enumerate() {
            if conv.in_channels != channels {
                return Err(invalid(format!(
                    "{prefix}cnn.{}.weight takes {} channels, the input has {channels}",
                    2 * i,
                    conv.in_channels
                )));
            }
            size = match (conv.out_size(size.0), conv.out_size(size.1)) {
                (Some(oh), Some(ow)) => (oh, ow),
                _ => {
                    return Err(invalid(format!(
                        "a {}x{} image is too small for NatureCNN",
                        shape[1], shape[2]
                    )))
                }
            };
            channels = conv.out_channels();
        }
        let weight = state.tensor(&format!("{prefix}linear.0.weight"), 2)?;
        let bias = state.tensor(&format!("{prefix}linear.0.bias"), 1)?;
        let flat = channels * size.0 * size.1;
        let features = weight.shape.first().copied().unwrap_or(0);
        if weight.shape.get(1) != Some(&flat) {
            return Err(invalid(format!(
                "{prefix}linear.0.weight has shape {:?}; the CNN flattens to {flat}",
                weight.shape
            )));
        }
        // torch flattens [c][y][x]; activations here are [y][x][c].
        let spatial = size.0 * size.1;
        let mut reordered = vec![0.0; weight.data.len()];
        for (row_in, row_out) in weight.data.chunks_exact(flat).zip(reordered.chunks_exact_mut(flat)) {
            for (index, &v) in row_in.iter().enumerate() {
                let (ch, pos) = (index / spatial, index % spatial);
                if let Some(slot) = row_out.get_mut(pos * channels + ch) {
                    *slot = v;
                }
            }
        }
        let linear = Dense::new(flat, features, &reordered, Some(bias.data))
            .map_err(|e| invalid(format!("{prefix}linear.0: {e}")))?;
        Ok(NatureCnn {
            convs,
            linear,
            size: (h, w),
        })
    }

    /// The number of features (`features_dim` / `cnn_output_dim`).
    pub fn features(&self) -> usize {
        self.linear.outputs()
    }

    /// The scratch this extractor needs: (largest activation, largest patch).
    pub fn scratch_sizes(&self) -> (usize, usize) {
        let mut size = self.size;
        let mut largest = 0;
        let mut patch = 0;
        for conv in &self.convs {
            size = (conv.out_size(size.0).unwrap_or(0), conv.out_size(size.1).unwrap_or(0));
            largest = largest.max(size.0 * size.1 * conv.out_channels());
            patch = patch.max(ROWS * conv.dense.inputs());
        }
        (largest, patch)
    }

    /// Runs the CNN on a channel-last image (`[h][w][c]`, already scaled), writing
    /// [`features`](Self::features) values to `out`. `a` and `b` hold the largest activation,
    /// `patch` the largest patch (see [`scratch_sizes`](Self::scratch_sizes)).
    #[inline(always)]
    pub fn forward(&self, image: &[f32], a: &mut [f32], b: &mut [f32], patch: &mut [f32], out: &mut [f32]) {
        let [c0, c1, c2] = &self.convs;
        let s0 = self.size;
        let s1 = (c0.out_size(s0.0).unwrap_or(0), c0.out_size(s0.1).unwrap_or(0));
        let s2 = (c1.out_size(s1.0).unwrap_or(0), c1.out_size(s1.1).unwrap_or(0));
        let s3 = (c2.out_size(s2.0).unwrap_or(0), c2.out_size(s2.1).unwrap_or(0));
        c0.forward(image, s0, patch, a);
        c1.forward(a, s1, patch, b);
        c2.forward(b, s2, patch, a);
        let flat = s3.0 * s3.1 * c2.out_channels();
        if let (Some(x), Some(y)) = (a.get(..flat), out.get_mut(..self.features())) {
            self.linear.forward(x, y);
            y.iter_mut().for_each(|v| *v = if *v < 0.0 { 0.0 } else { *v });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A convolution with every weight `w` and bias 0, for shape checks.
    fn conv(in_channels: usize, out_channels: usize, kernel: usize, stride: usize, w: f32) -> Conv2d {
        let patch = kernel * kernel * in_channels;
        Conv2d {
            kernel,
            stride,
            in_channels,
            dense: Dense::new(patch, out_channels, &vec![w; patch * out_channels], None).unwrap(),
        }
    }

    #[test]
    fn nature_cnn_output_sizes() {
        // 84x84 -> 20x20 -> 9x9 -> 7x7 (64 channels: 3136 features, as SB3's n_flatten).
        let sizes: Vec<usize> = LAYERS
            .iter()
            .scan(84, |size, &(k, s)| {
                *size = conv(1, 1, k, s, 0.0).out_size(*size)?;
                Some(*size)
            })
            .collect();
        assert_eq!(sizes, vec![20, 9, 7]);
        // The smallest image NatureCNN takes is 36x36 (-> 8 -> 3 -> 1).
        assert_eq!(
            conv(1, 1, 8, 4, 0.0)
                .out_size(35)
                .and_then(|s| conv(1, 1, 4, 2, 0.0).out_size(s)),
            Some(2)
        );
        assert_eq!(conv(1, 1, 8, 4, 0.0).out_size(7), None);
    }

    #[test]
    fn convolution_sums_each_patch() {
        // 2 input channels, 5x5, kernel 3, stride 2 -> 2x2; all weights 1: each output is the
        // sum of its 3x3x2 patch, then ReLU.
        let c = conv(2, 1, 3, 2, 1.0);
        let input: Vec<f32> = (0..50).map(|i| i as f32 - 20.0).collect(); // [y][x][c]
        let mut out = vec![0.0; 4];
        let mut patch = vec![0.0; ROWS * 18];
        c.forward(&input, (5, 5), &mut patch, &mut out);
        let want: Vec<f32> = [(0, 0), (0, 2), (2, 0), (2, 2)]
            .iter()
            .map(|&(y0, x0)| {
                let mut sum = 0.0;
                for y in y0..y0 + 3 {
                    for x in x0..x0 + 3 {
                        for ch in 0..2 {
                            sum += input[(y * 5 + x) * 2 + ch];
                        }
                    }
                }
                f32::max(sum, 0.0)
            })
            .collect();
        assert_eq!(out, want);
    }
}

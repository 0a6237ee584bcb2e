//! From one observation (sub)space to the float32 values SB3's `preprocess_obs` feeds the
//! features extractor: VecNormalize (float64, clip, then float32), `maybe_transpose` of
//! channel-last images, `/ 255` of images when `normalize_images`, one-hot encodings.

use sb3_format::{BoxSpace, NpDType, RunningMeanStd, Space};

use crate::error::{unsupported, Error, Result};
use crate::observation::{Observation, Values};

/// VecNormalize statistics for one array observation, ready to apply.
#[derive(Debug, Clone)]
pub(crate) struct Normalization {
    mean: Vec<f64>,
    /// `sqrt(var + epsilon)`, computed as numpy does.
    scale: Vec<f64>,
    clip: f64,
}

impl Normalization {
    pub fn new(rms: &RunningMeanStd, epsilon: f64, clip: f64) -> Normalization {
        Normalization {
            mean: rms.mean().to_vec(),
            scale: rms.var().iter().map(|v| (v + epsilon).sqrt()).collect(),
            clip,
        }
    }

    pub fn len(&self) -> usize {
        self.mean.len()
    }

    /// `clip((x - mean) / sqrt(var + eps), -clip, clip)` in float64, then float32.
    #[inline(always)]
    fn apply(&self, i: usize, x: f64) -> f32 {
        let (mean, scale) = (
            self.mean.get(i).copied().unwrap_or(0.0),
            self.scale.get(i).copied().unwrap_or(1.0),
        );
        let v = (x - mean) / scale;
        // np.clip: min(max(v, lo), hi), NaN kept.
        let v = if v < -self.clip { -self.clip } else { v };
        let v = if v > self.clip { self.clip } else { v };
        v as f32
    }
}

/// How a 3-D `Box` is an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Image {
    /// The space's shape, `[c, h, w]`.
    pub chw: [usize; 3],
    /// Whether SB3's `is_image_space` holds (uint8, bounds 0 and 255): then channel-last
    /// observations are transposed, and scaled when `normalize_images`.
    pub strict: bool,
}

/// The layout the extractor wants an image in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// C order of the space's shape (what `nn.Flatten` sees).
    Space,
    /// `[h][w][c]` (what this crate's NatureCNN reads).
    ChannelLast,
}

/// One observation (sub)space and how to turn its observations into float32 values.
#[derive(Debug, Clone)]
pub(crate) enum Input {
    Box {
        shape: Vec<usize>,
        len: usize,
        image: Option<Image>,
        /// Divide by 255 (`normalize_images` and a strict image space).
        scale: bool,
        normalization: Option<Normalization>,
    },
    Discrete {
        n: usize,
    },
    MultiDiscrete {
        nvec: Vec<usize>,
    },
    MultiBinary {
        len: usize,
    },
}

/// SB3's `is_image_space(space)` with `normalized_image=False`.
pub(crate) fn is_strict_image(b: &BoxSpace) -> bool {
    b.shape().len() == 3
        && b.dtype() == NpDType::UInt8
        && b.low_f64().iter().all(|&v| v == 0.0)
        && b.high_f64().iter().all(|&v| v == 255.0)
}

fn count(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= 1 << 30)
        .ok_or_else(|| unsupported(format!("observation shape {shape:?} is too large")))
}

impl Input {
    /// The input for `space` (not a `Dict`).
    pub fn new(space: &Space, normalize_images: bool, normalization: Option<Normalization>) -> Result<Input> {
        if normalization.is_some() && !matches!(space, Space::Box(_)) {
            return Err(Error::VecNormalize(
                "VecNormalize only normalises Box observations".into(),
            ));
        }
        let input = match space {
            Space::Box(b) => {
                let shape = b.shape().to_vec();
                let len = count(&shape)?;
                let strict = is_strict_image(b);
                let image = match shape.as_slice() {
                    &[c, h, w] => Some(Image { chw: [c, h, w], strict }),
                    _ => None,
                };
                if let Some(n) = &normalization {
                    if n.len() != len {
                        return Err(Error::VecNormalize(format!(
                            "statistics of {} values for an observation of shape {shape:?}",
                            n.len()
                        )));
                    }
                }
                Input::Box {
                    shape,
                    len,
                    image,
                    scale: normalize_images && strict,
                    normalization,
                }
            }
            Space::Discrete { n, .. } => Input::Discrete {
                n: usize::try_from(*n)
                    .ok()
                    .filter(|&n| n > 0 && n <= 1 << 24)
                    .ok_or_else(|| unsupported(format!("Discrete({n}) observations")))?,
            },
            Space::MultiDiscrete { nvec, .. } => {
                let nvec = nvec
                    .to_i64_vec()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|n| usize::try_from(n).ok().filter(|&n| n > 0 && n <= 1 << 24))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| unsupported("MultiDiscrete observations with a non-positive size"))?;
                Input::MultiDiscrete { nvec }
            }
            Space::MultiBinary { shape, .. } => Input::MultiBinary { len: count(shape)? },
            other => return Err(unsupported(format!("{} observation spaces", other.type_name()))),
        };
        Ok(input)
    }

    /// The number of float32 values the input becomes (`get_flattened_obs_dim`).
    pub fn width(&self) -> usize {
        match self {
            Input::Box { len, .. } => *len,
            Input::Discrete { n } => *n,
            Input::MultiDiscrete { nvec } => nvec.iter().sum(),
            Input::MultiBinary { len } => *len,
        }
    }

    /// The image this input is, if it is a 3-D `Box`.
    pub fn image(&self) -> Option<Image> {
        match self {
            Input::Box { image, .. } => *image,
            _ => None,
        }
    }

    /// Whether float32 observations in the space's layout pass through unchanged.
    pub fn is_plain(&self) -> bool {
        matches!(
            self,
            Input::Box {
                scale: false,
                normalization: None,
                ..
            }
        )
    }

    /// Whether observations are normalised.
    pub fn normalized(&self) -> bool {
        matches!(
            self,
            Input::Box {
                normalization: Some(_),
                ..
            }
        )
    }

    /// Writes the preprocessed observation to `out` (exactly [`width`](Self::width) values),
    /// images in `layout`.
    pub fn write(&self, obs: &Observation<'_>, out: &mut [f32], layout: Layout) -> Result<()> {
        match (self, obs) {
            (Input::Box { .. }, Observation::Box(values)) => self.write_box(values, None, out, layout),
            (Input::Box { .. }, Observation::Shaped(values, shape)) => self.write_box(values, Some(shape), out, layout),
            (Input::Discrete { n }, Observation::Discrete(value)) => one_hot(*value, *n, out),
            (Input::MultiDiscrete { nvec }, Observation::MultiDiscrete(values)) => {
                if values.len() != nvec.len() {
                    return Err(Error::Observation(format!(
                        "{} values for MultiDiscrete of {} elements",
                        values.len(),
                        nvec.len()
                    )));
                }
                let mut rest = out;
                for (&value, &n) in values.iter().zip(nvec) {
                    let (head, tail) = rest.split_at_mut(n.min(rest.len()));
                    one_hot(value, n, head)?;
                    rest = tail;
                }
                Ok(())
            }
            (Input::MultiBinary { len }, Observation::MultiBinary(values) | Observation::Box(values)) => {
                if values.len() != *len {
                    return Err(Error::Observation(format!(
                        "{} values for MultiBinary({len})",
                        values.len()
                    )));
                }
                for (i, slot) in out.iter_mut().enumerate().take(*len) {
                    *slot = values.f32_at(i);
                }
                Ok(())
            }
            (input, obs) => Err(Error::Observation(format!(
                "a {} observation for a {} space",
                obs_kind(obs),
                input_kind(input)
            ))),
        }
    }

    fn write_box(&self, values: &Values<'_>, shape: Option<&[usize]>, out: &mut [f32], layout: Layout) -> Result<()> {
        let Input::Box {
            shape: space_shape,
            len,
            image,
            scale,
            normalization,
        } = self
        else {
            return Ok(());
        };
        if values.len() != *len {
            return Err(Error::Observation(format!(
                "{} values for a Box of shape {space_shape:?}",
                values.len()
            )));
        }
        // maybe_transpose: only strict image spaces, only when the shape given is the
        // space's with channels last.
        let channel_last_obs = match (image, shape) {
            (Some(img), Some(s)) if img.strict && s != space_shape.as_slice() && s == channel_last(img.chw) => true,
            // Any other shape is reshaped (`reshape((-1, *space.shape))`), so only its size counts.
            (_, Some(s)) if count(s).ok() != Some(*len) => {
                return Err(Error::Observation(format!(
                    "shape {s:?} for a Box of shape {space_shape:?}"
                )));
            }
            _ => false,
        };
        let Some(out) = out.get_mut(..*len) else {
            return Ok(());
        };
        let transpose = match (image, channel_last_obs, layout) {
            (Some(img), true, Layout::Space) | (Some(img), false, Layout::ChannelLast) => {
                Some((img.chw, channel_last_obs))
            }
            _ => None,
        };
        // One loop per element type, so that each compiles to a tight conversion.
        let scale = *scale;
        match (normalization, values) {
            (Some(n), v) => fill(out, transpose, scale, |i| n.apply(i, v.f64_at(i))),
            (None, Values::U8(v)) => fill(out, transpose, scale, |i| v.get(i).map_or(0.0, |&x| f32::from(x))),
            (None, Values::F32(v)) => fill(out, transpose, scale, |i| v.get(i).copied().unwrap_or(0.0)),
            (None, v) => fill(out, transpose, scale, |i| v.f32_at(i)),
        }
        Ok(())
    }
}

/// Writes `value(i)` (divided by 255 when `scale`) for every element, moving element `i`
/// between the `[c][h][w]` and `[h][w][c]` layouts when `transpose` is `(chw, from_last)`.
#[inline(always)]
fn fill(out: &mut [f32], transpose: Option<([usize; 3], bool)>, scale: bool, value: impl Fn(usize) -> f32) {
    let scaled = |i: usize| if scale { value(i) / 255.0 } else { value(i) };
    match transpose {
        None => out.iter_mut().enumerate().for_each(|(i, slot)| *slot = scaled(i)),
        Some(([c, h, w], from_last)) => {
            for ch in 0..c {
                for pos in 0..h * w {
                    let (chw, hwc) = (ch * h * w + pos, pos * c + ch);
                    let (src, dst) = if from_last { (hwc, chw) } else { (chw, hwc) };
                    if let Some(slot) = out.get_mut(dst) {
                        *slot = scaled(src);
                    }
                }
            }
        }
    }
}

/// `[h, w, c]` for `[c, h, w]`.
fn channel_last([c, h, w]: [usize; 3]) -> [usize; 3] {
    [h, w, c]
}

/// `F.one_hot(value, n)`: torch refuses values outside `0..n`, and so does this.
fn one_hot(value: i64, n: usize, out: &mut [f32]) -> Result<()> {
    let index = usize::try_from(value)
        .ok()
        .filter(|&i| i < n)
        .ok_or_else(|| Error::Observation(format!("value {value} outside 0..{n} (one-hot encoding)")))?;
    out.iter_mut().take(n).for_each(|v| *v = 0.0);
    if let Some(slot) = out.get_mut(index) {
        *slot = 1.0;
    }
    Ok(())
}

fn obs_kind(obs: &Observation<'_>) -> &'static str {
    match obs {
        Observation::Box(_) | Observation::Shaped(..) => "Box",
        Observation::Discrete(_) => "Discrete",
        Observation::MultiDiscrete(_) => "MultiDiscrete",
        Observation::MultiBinary(_) => "MultiBinary",
        Observation::Dict(_) => "Dict",
    }
}

fn input_kind(input: &Input) -> &'static str {
    match input {
        Input::Box { .. } => "Box",
        Input::Discrete { .. } => "Discrete",
        Input::MultiDiscrete { .. } => "MultiDiscrete",
        Input::MultiBinary { .. } => "MultiBinary",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_input(strict: bool, scale: bool) -> Input {
        Input::Box {
            shape: vec![2, 1, 3],
            len: 6,
            image: Some(Image { chw: [2, 1, 3], strict }),
            scale,
            normalization: None,
        }
    }

    #[test]
    fn channel_last_images_are_transposed_and_scaled() {
        let input = image_input(true, true);
        // [h=1][w=3][c=2] values: pixel p channel c = 10p + c
        let hwc = [0u8, 1, 10, 11, 20, 21];
        let mut out = [0.0f32; 6];
        input
            .write(
                &Observation::Shaped(Values::U8(&hwc), &[1, 3, 2]),
                &mut out,
                Layout::Space,
            )
            .unwrap();
        let want: Vec<f32> = [0.0f32, 10.0, 20.0, 1.0, 11.0, 21.0]
            .iter()
            .map(|v| v / 255.0)
            .collect();
        assert_eq!(out.to_vec(), want);
        // Channel-last obs into a channel-last layout: copied.
        input
            .write(
                &Observation::Shaped(Values::U8(&hwc), &[1, 3, 2]),
                &mut out,
                Layout::ChannelLast,
            )
            .unwrap();
        assert_eq!(out[1], 1.0 / 255.0);
        // Non-strict images are never transposed.
        let loose = image_input(false, false);
        assert!(loose
            .write(
                &Observation::Shaped(Values::U8(&hwc), &[1, 3, 2]),
                &mut out,
                Layout::Space
            )
            .is_ok());
        assert_eq!(out.to_vec(), vec![0.0, 1.0, 10.0, 11.0, 20.0, 21.0]);
        assert!(input
            .write(
                &Observation::Shaped(Values::U8(&hwc), &[3, 2, 2]),
                &mut out,
                Layout::Space
            )
            .is_err());
    }

    #[test]
    fn one_hot_encodings_and_errors() {
        let md = Input::MultiDiscrete { nvec: vec![2, 3] };
        let mut out = [9.0f32; 5];
        md.write(&Observation::MultiDiscrete(&[1, 2]), &mut out, Layout::Space)
            .unwrap();
        assert_eq!(out, [0.0, 1.0, 0.0, 0.0, 1.0]);
        assert!(md
            .write(&Observation::MultiDiscrete(&[2, 0]), &mut out, Layout::Space)
            .is_err());
        assert!(md.write(&Observation::Discrete(1), &mut out, Layout::Space).is_err());
        let d = Input::Discrete { n: 3 };
        let mut out = [9.0f32; 3];
        d.write(&Observation::Discrete(2), &mut out, Layout::Space).unwrap();
        assert_eq!(out, [0.0, 0.0, 1.0]);
        assert!(d.write(&Observation::Discrete(-1), &mut out, Layout::Space).is_err());
    }
}

//! Observations and actions, typed after the spaces.

/// Numbers of one array observation, borrowed in the caller's element type.
///
/// The type is the observation's own, as numpy would hold it: SB3 converts it to float32
/// (after VecNormalize, which works in float64), so `F64` values are normalised exactly as
/// SB3 normalises a float64 observation.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Values<'a> {
    /// float32 values.
    F32(&'a [f32]),
    /// float64 values.
    F64(&'a [f64]),
    /// uint8 values (images).
    U8(&'a [u8]),
    /// Integer values.
    I64(&'a [i64]),
}

impl Values<'_> {
    /// The number of values.
    pub fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::U8(v) => v.len(),
            Values::I64(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` in float64 (exact for every element type but huge integers).
    #[inline(always)]
    pub(crate) fn f64_at(&self, i: usize) -> f64 {
        match self {
            Values::F32(v) => v.get(i).map_or(0.0, |&x| f64::from(x)),
            Values::F64(v) => v.get(i).copied().unwrap_or(0.0),
            Values::U8(v) => v.get(i).map_or(0.0, |&x| f64::from(x)),
            Values::I64(v) => v.get(i).map_or(0.0, |&x| x as f64),
        }
    }

    /// Value `i` converted to float32 as torch's `.float()` converts it.
    #[inline(always)]
    pub(crate) fn f32_at(&self, i: usize) -> f32 {
        match self {
            Values::F32(v) => v.get(i).copied().unwrap_or(0.0),
            Values::F64(v) => v.get(i).map_or(0.0, |&x| x as f32),
            Values::U8(v) => v.get(i).map_or(0.0, |&x| f32::from(x)),
            Values::I64(v) => v.get(i).map_or(0.0, |&x| x as f32),
        }
    }
}

/// One observation, shaped like the observation space.
///
/// ```
/// use sb3_policy::{Observation, Values};
/// let cartpole = Observation::Box(Values::F32(&[0.01, -0.02, 0.03, 0.04]));
/// let frozen_lake = Observation::Discrete(7);
/// let goal_env = [Observation::Box(Values::F32(&[0.1, 0.2, 0.3])), Observation::Box(Values::F32(&[0.0, 0.0, 0.0]))];
/// let dict = Observation::Dict(&goal_env); // one entry per key, in the space's key order
/// # let _ = (cartpole, frozen_lake, dict);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Observation<'a> {
    /// A `Box` observation, flat in C order, in the space's shape.
    Box(Values<'a>),
    /// A `Box` observation with its own shape: a channel-last `[h, w, c]` image for a
    /// channel-first `[c, h, w]` image space is transposed as SB3's `maybe_transpose` does;
    /// any other shape must have the space's number of values.
    Shaped(Values<'a>, &'a [usize]),
    /// A `Discrete` observation (one-hot encoded, as SB3 does, from 0: `start` is not
    /// subtracted).
    Discrete(i64),
    /// A `MultiDiscrete` observation (each element one-hot encoded).
    MultiDiscrete(&'a [i64]),
    /// A `MultiBinary` observation.
    MultiBinary(Values<'a>),
    /// A `Dict` observation: one entry per key, in the order of the space's keys (see
    /// [`Policy::observation_keys`](crate::Policy::observation_keys)).
    Dict(&'a [Observation<'a>]),
}

/// One action, shaped like the action space.
///
/// Make one with [`Policy::new_action`](crate::Policy::new_action) and let
/// [`Policy::predict_into`](crate::Policy::predict_into) overwrite it: it is never
/// reallocated.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// A `Box` action, flat in C order (see [`Policy::action_shape`](crate::Policy::action_shape)).
    Box(Vec<f32>),
    /// A `Discrete` action (SB3 returns the index, without `start`).
    Discrete(i64),
    /// A `MultiDiscrete` action.
    MultiDiscrete(Vec<i64>),
    /// A `MultiBinary` action (0 or 1 each).
    MultiBinary(Vec<u8>),
}

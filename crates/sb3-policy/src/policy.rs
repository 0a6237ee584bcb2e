//! [`Policy`]: a model's actor, ready to act; [`Scratch`] and [`RecurrentState`], the
//! caller-owned memory of allocation-free prediction.

use std::path::Path;

use pth_reader::Options;
use sb3_format::{Model, Space, VecNormalize};

use crate::activation::Activation;
use crate::error::{unsupported, Error, Result};
use crate::extractor::{ExtractorKind, ExtractorScratch};
use crate::family::Family;
use crate::network::{build, Network};
use crate::observation::{Action, Observation, Values};
use crate::simd::Simd;

/// A Stable-Baselines3 policy, built from a model zip, that maps observations to the actions
/// `model.predict(obs, deterministic=True)` returns.
///
/// Build once ([`open`](Self::open) or [`from_model`](Self::from_model)), then call
/// [`predict_into`](Self::predict_into) as often as needed: it reads only the policy and
/// writes only the caller's [`Scratch`] and [`Action`], so it never allocates, and one
/// policy can serve many threads (it is `Send + Sync`; give each thread its own scratch).
///
/// ```
/// # fn main() -> Result<(), sb3_policy::Error> {
/// use sb3_policy::{Action, Observation, Policy, Values};
///
/// let policy = Policy::open(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sb3/ppo_cartpole.zip"))?;
/// let mut scratch = policy.scratch();
/// let mut action = policy.new_action();
/// let obs = [0.01f32, -0.02, 0.03, 0.04];
/// policy.predict_into(&Observation::Box(Values::F32(&obs)), &mut scratch, &mut action)?;
/// assert!(matches!(action, Action::Discrete(0 | 1)));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Policy {
    net: Network,
    simd: Simd,
    observation_space: Space,
    action_space: Space,
    sizes: Sizes,
}

/// Scratch buffer sizes, fixed when the policy is built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sizes {
    /// Features, LSTM output and hidden activations (two such buffers).
    width: usize,
    /// The output layer's values.
    output: usize,
    /// An image, preprocessed for a CNN.
    input: usize,
    /// A CNN activation (two such buffers).
    activation: usize,
    /// A CNN patch.
    patch: usize,
    /// LSTM gates.
    gates: usize,
}

/// Working memory for [`Policy::predict_into`], made by [`Policy::scratch`]. Keep one per
/// thread and reuse it: prediction then allocates nothing. A scratch made by another policy
/// is refused ([`Error::Buffers`]).
#[derive(Debug, Clone)]
pub struct Scratch {
    sizes: Sizes,
    a: Vec<f32>,
    b: Vec<f32>,
    output: Vec<f32>,
    input: Vec<f32>,
    cnn_a: Vec<f32>,
    cnn_b: Vec<f32>,
    patch: Vec<f32>,
    gates: Vec<f32>,
}

/// The hidden and cell states of a recurrent policy's LSTM, carried from one step to the
/// next (SB3's `state`), made by [`Policy::initial_state`] (zeros). See
/// [`Policy::predict_recurrent_into`] for an episode.
#[derive(Debug, Clone, PartialEq)]
pub struct RecurrentState {
    /// `h`, `[num_layers][hidden]`.
    hidden: Vec<f32>,
    /// `c`, `[num_layers][hidden]`.
    cell: Vec<f32>,
}

impl RecurrentState {
    /// The hidden state `h`, layer after layer.
    pub fn hidden(&self) -> &[f32] {
        &self.hidden
    }

    /// The cell state `c`, layer after layer.
    pub fn cell(&self) -> &[f32] {
        &self.cell
    }

    /// Zeroes the state, as SB3 does at an episode start.
    pub fn reset(&mut self) {
        self.hidden.iter_mut().for_each(|v| *v = 0.0);
        self.cell.iter_mut().for_each(|v| *v = 0.0);
    }
}

impl Policy {
    /// Opens the model zip at `path` and builds its policy (without VecNormalize statistics:
    /// see [`from_model`](Self::from_model)).
    pub fn open(path: impl AsRef<Path>) -> Result<Policy> {
        let model = Model::open(path, &Options::default().lenient(true))?;
        Policy::from_model(&model, None)
    }

    /// Builds the policy of an opened model. `vecnormalize`, when given, normalises
    /// observations before they reach the network, as the `VecNormalize` wrapper SB3 trained
    /// with did.
    ///
    /// ```
    /// # fn main() -> Result<(), sb3_policy::Error> {
    /// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sb3/");
    /// let options = pth_reader::Options::default();
    /// let model = sb3_format::Model::open(format!("{dir}a2c_mountaincar_vecnorm.zip"), &options)?;
    /// let stats = sb3_format::VecNormalize::open(format!("{dir}a2c_mountaincar_vecnorm.vecnormalize.pkl"), &options)?;
    /// let policy = sb3_policy::Policy::from_model(&model, Some(&stats))?;
    /// assert!(policy.uses_vecnormalize());
    /// # Ok(()) }
    /// ```
    pub fn from_model(model: &Model<'_>, vecnormalize: Option<&VecNormalize>) -> Result<Policy> {
        let net = build(model, vecnormalize)?;
        let observation_space = model.observation_space().cloned().unwrap_or(Space::Dict(Vec::new()));
        let action_space = model.action_space().cloned().unwrap_or(Space::Dict(Vec::new()));
        let extractor = net.extractor.sizes();
        let features = net.extractor.features();
        let hidden = net.lstm.as_ref().map_or(0, |l| l.hidden());
        let sizes = Sizes {
            width: features.max(hidden).max(net.hidden.widest()),
            output: net.output.outputs(),
            input: extractor.input,
            activation: extractor.activation,
            patch: extractor.patch,
            gates: 8 * hidden,
        };
        Ok(Policy {
            net,
            simd: Simd::detect(),
            observation_space,
            action_space,
            sizes,
        })
    }

    /// The policy family, from the pickled policy class.
    ///
    /// ```
    /// # fn main() -> Result<(), sb3_policy::Error> {
    /// use sb3_policy::{ExtractorKind, Family, Policy};
    /// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/policies/");
    /// let policy = Policy::open(format!("{dir}qrdqn_cnn.zip"))?;
    /// assert_eq!(policy.family(), Family::QrDqn);
    /// assert_eq!(policy.extractor(), ExtractorKind::NatureCnn);
    /// println!("{}", policy.architecture());
    /// # Ok(()) }
    /// ```
    pub fn family(&self) -> Family {
        self.net.family
    }

    /// The features extractor.
    pub fn extractor(&self) -> ExtractorKind {
        self.net.extractor.kind()
    }

    /// The activation between hidden layers (`None` when there are none).
    pub fn activation(&self) -> Option<Activation> {
        if self.net.hidden.layers().is_empty() {
            None
        } else {
            self.net.hidden.activation()
        }
    }

    /// Whether observations are normalised with VecNormalize statistics.
    pub fn uses_vecnormalize(&self) -> bool {
        self.net.extractor.normalized()
    }

    /// Whether the policy is recurrent (use [`predict_recurrent_into`](Self::predict_recurrent_into)).
    pub fn is_recurrent(&self) -> bool {
        self.net.lstm.is_some()
    }

    /// The observation space.
    pub fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    /// The action space.
    pub fn action_space(&self) -> &Space {
        &self.action_space
    }

    /// The keys of a Dict observation space, in the order [`Observation::Dict`] takes them.
    pub fn observation_keys(&self) -> Vec<&str> {
        self.net
            .extractor
            .parts()
            .iter()
            .filter_map(|p| p.key.as_deref())
            .collect()
    }

    /// The shape of an action (`[]` for Discrete).
    pub fn action_shape(&self) -> &[usize] {
        &self.net.action_shape
    }

    /// The architecture in one line: extractor, LSTM, hidden layers, output and mapping.
    pub fn architecture(&self) -> String {
        crate::describe::architecture(&self.net)
    }

    /// Fresh working memory for [`predict_into`](Self::predict_into).
    pub fn scratch(&self) -> Scratch {
        let s = self.sizes;
        Scratch {
            sizes: s,
            a: vec![0.0; s.width],
            b: vec![0.0; s.width],
            output: vec![0.0; s.output],
            input: vec![0.0; s.input],
            cnn_a: vec![0.0; s.activation],
            cnn_b: vec![0.0; s.activation],
            patch: vec![0.0; s.patch],
            gates: vec![0.0; s.gates],
        }
    }

    /// A zeroed action of the right kind and size, for [`predict_into`](Self::predict_into).
    pub fn new_action(&self) -> Action {
        self.net.mapping.new_action(self.net.action_len)
    }

    /// The zero state SB3 starts an episode with (empty for a policy that is not recurrent).
    pub fn initial_state(&self) -> RecurrentState {
        let n = self.net.lstm.as_ref().map_or(0, |l| l.hidden() * l.num_layers());
        RecurrentState {
            hidden: vec![0.0; n],
            cell: vec![0.0; n],
        }
    }

    /// The action for `obs`, written into `action` (from [`new_action`](Self::new_action))
    /// using `scratch` (from [`scratch`](Self::scratch)). Allocates nothing.
    pub fn predict_into(&self, obs: &Observation<'_>, scratch: &mut Scratch, action: &mut Action) -> Result<()> {
        if self.is_recurrent() {
            return Err(unsupported(
                "a recurrent policy needs its state: use predict_recurrent_into",
            ));
        }
        self.check(scratch)?;
        self.simd.run(
            #[inline(always)]
            || self.forward(obs, scratch, None, action),
        )
    }

    /// The action for `obs`, allocating its own scratch (see [`predict_into`](Self::predict_into)).
    pub fn predict(&self, obs: &Observation<'_>) -> Result<Action> {
        let mut action = self.new_action();
        self.predict_into(obs, &mut self.scratch(), &mut action)?;
        Ok(action)
    }

    /// One step of a recurrent policy, as SB3's `predict(obs, state, episode_start)`: the
    /// state is zeroed first when `episode_start`, then advanced in place. Allocates nothing.
    ///
    /// ```
    /// # fn main() -> Result<(), sb3_policy::Error> {
    /// use sb3_policy::{Observation, Policy, Values};
    /// let policy = Policy::open(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/policies/recurrent_ppo_mlp.zip"))?;
    /// let episode = [[0.1f32, 0.2, 0.3, 0.4, 0.5], [0.5, 0.4, 0.3, 0.2, 0.1]];
    /// let (mut state, mut scratch, mut action) = (policy.initial_state(), policy.scratch(), policy.new_action());
    /// for (step, obs) in episode.iter().enumerate() {
    ///     let obs = Observation::Box(Values::F32(obs));
    ///     policy.predict_recurrent_into(&obs, &mut state, step == 0, &mut scratch, &mut action)?;
    /// }
    /// assert!(state.hidden().iter().any(|&h| h != 0.0));
    /// # Ok(()) }
    /// ```
    pub fn predict_recurrent_into(
        &self,
        obs: &Observation<'_>,
        state: &mut RecurrentState,
        episode_start: bool,
        scratch: &mut Scratch,
        action: &mut Action,
    ) -> Result<()> {
        let Some(lstm) = &self.net.lstm else {
            return Err(unsupported("predict_recurrent_into on a policy that is not recurrent"));
        };
        self.check(scratch)?;
        let n = lstm.hidden() * lstm.num_layers();
        if state.hidden.len() != n || state.cell.len() != n {
            return Err(Error::Buffers("the recurrent state was not made by this policy".into()));
        }
        if episode_start {
            // SB3 multiplies by (1 - episode_start).
            state.hidden.iter_mut().for_each(|v| *v *= 0.0);
            state.cell.iter_mut().for_each(|v| *v *= 0.0);
        }
        self.simd.run(
            #[inline(always)]
            || self.forward(obs, scratch, Some(state), action),
        )
    }

    /// [`predict_recurrent_into`](Self::predict_recurrent_into), allocating its scratch.
    pub fn predict_recurrent(
        &self,
        obs: &Observation<'_>,
        state: &mut RecurrentState,
        episode_start: bool,
    ) -> Result<Action> {
        let mut action = self.new_action();
        self.predict_recurrent_into(obs, state, episode_start, &mut self.scratch(), &mut action)?;
        Ok(action)
    }

    fn check(&self, scratch: &Scratch) -> Result<()> {
        if scratch.sizes == self.sizes {
            Ok(())
        } else {
            Err(Error::Buffers("the scratch was made by another policy".into()))
        }
    }

    /// The whole actor path for one observation.
    #[inline(always)]
    fn forward(
        &self,
        obs: &Observation<'_>,
        scratch: &mut Scratch,
        state: Option<&mut RecurrentState>,
        action: &mut Action,
    ) -> Result<()> {
        let net = &self.net;
        let Scratch {
            a,
            b,
            output,
            input,
            cnn_a,
            cnn_b,
            patch,
            gates,
            ..
        } = scratch;
        let features = net.extractor.features();
        let mut extractor_scratch = ExtractorScratch {
            input,
            a: cnn_a,
            b: cnn_b,
            patch,
        };
        let out = a.get_mut(..features).unwrap_or_default();
        net.extractor.forward(obs, &mut extractor_scratch, out)?;
        let mut len = features;
        if let (Some(lstm), Some(state)) = (&net.lstm, state) {
            let hidden = lstm.hidden();
            let (x, y) = (a.get(..features).unwrap_or_default(), &mut state.hidden);
            lstm.step(x, y, &mut state.cell, gates);
            let last = state.hidden.len() - hidden;
            if let (Some(dst), Some(src)) = (a.get_mut(..hidden), state.hidden.get(last..)) {
                dst.copy_from_slice(src);
            }
            len = hidden;
        }
        let (in_b, len) = net.hidden.forward(a, b, len);
        let latent = if in_b { &b[..] } else { &a[..] };
        net.output.forward(latent.get(..len).unwrap_or_default(), output);
        net.squash.apply(output);
        net.mapping.apply(output, action)
    }

    pub(crate) fn network(&self) -> &Network {
        &self.net
    }

    pub(crate) fn simd(&self) -> Simd {
        self.simd
    }

    /// Preprocesses and extracts the features of one row observation (batch path).
    pub(crate) fn extract_row(&self, row: &[f32], scratch: &mut Scratch, out: &mut [f32]) -> Result<()> {
        let net = &self.net;
        let ints: Vec<i64>;
        let obs = match &self.observation_space {
            Space::Discrete { .. } => Observation::Discrete(row.first().map_or(0, |&v| v as i64)),
            Space::MultiDiscrete { .. } => {
                ints = row.iter().map(|&v| v as i64).collect();
                Observation::MultiDiscrete(&ints)
            }
            Space::MultiBinary { .. } => Observation::MultiBinary(Values::F32(row)),
            _ => Observation::Box(Values::F32(row)),
        };
        let Scratch {
            input,
            cnn_a,
            cnn_b,
            patch,
            ..
        } = scratch;
        let mut s = ExtractorScratch {
            input,
            a: cnn_a,
            b: cnn_b,
            patch,
        };
        self.simd.run(
            #[inline(always)]
            || net.extractor.forward(&obs, &mut s, out),
        )
    }
}

/// Policies are shared between threads; each thread brings its own [`Scratch`].
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Policy>();
    assert_send_sync::<Scratch>();
    assert_send_sync::<RecurrentState>();
};

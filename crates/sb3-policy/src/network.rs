//! Building the actor path of a policy — extractor, optional LSTM, hidden layers, output
//! layer, squashing and action mapping — from a model's class, `policy_kwargs`, spaces and
//! state dict. Layer sizes come from the weight shapes; the layout of each family is SB3's.

use pth_reader::json::{write_json, JsonBudget};
use sb3_format::{Model, PolicyKwargs, Space, VecNormalize};

use crate::activation::Activation;
use crate::dense::{Dense, Mlp};
use crate::error::{invalid, unsupported, Result};
use crate::extractor::{Extractor, ExtractorKind};
use crate::family::{identify, ClassInfo, Family};
use crate::head::{Mapping, Squash};
use crate::lstm::Lstm;
use crate::weights::StateDict;

/// The actor path of a policy.
#[derive(Debug, Clone)]
pub(crate) struct Network {
    pub family: Family,
    pub extractor: Extractor,
    pub lstm: Option<Lstm>,
    pub hidden: Mlp,
    pub output: Dense,
    pub squash: Squash,
    pub mapping: Mapping,
    /// The action space's shape (`[]` for Discrete).
    pub action_shape: Vec<usize>,
    /// Values in one action (1 for Discrete).
    pub action_len: usize,
}

/// What every family's builder needs.
struct Context<'m, 's, 'a, 'd> {
    state: &'s StateDict<'a, 'd>,
    kwargs: &'m PolicyKwargs,
    info: ClassInfo,
    activation: Activation,
    observation_space: &'m Space,
    action_space: &'m Space,
    vn: Option<&'m VecNormalize>,
}

impl Context<'_, '_, '_, '_> {
    /// The extractor, its weights under `prefix`.
    fn extractor(&self, prefix: &str) -> Result<Extractor> {
        let kind = match &self.kwargs.features_extractor_class {
            Some(class) => ExtractorKind::from_class(class)?,
            None => self.info.extractor,
        };
        let normalize_images = self.kwargs.normalize_images.unwrap_or(true);
        Extractor::build(
            kind,
            self.observation_space,
            self.state,
            prefix,
            normalize_images,
            self.vn,
        )
    }

    /// The Linear layers of the `nn.Sequential` at `prefix`, which must sit at indices
    /// 0, 2, 4, … (each followed by an activation, or the last by nothing or a Tanh), and the
    /// slope each PReLU after one learned (at 1, 3, 5, …; none for other activations).
    fn sequential(&self, prefix: &str) -> Result<(Vec<Dense>, Vec<f32>)> {
        let learned = self.activation.is_learned();
        let (linear, activations): (Vec<usize>, Vec<usize>) = self
            .state
            .sequential_indices(prefix)?
            .into_iter()
            .partition(|&i| i % 2 == 0 || !learned);
        if linear.iter().enumerate().any(|(k, &i)| i != 2 * k) {
            return Err(unsupported(format!(
                "{prefix}* has Linear layers at indices {linear:?}, not SB3's 0, 2, 4, …"
            )));
        }
        if activations.iter().enumerate().any(|(k, &i)| i != 2 * k + 1) {
            return Err(unsupported(format!(
                "{prefix}* has PReLU layers at indices {activations:?}, not after each Linear layer (1, 3, 5, …)"
            )));
        }
        let layers = linear
            .iter()
            .map(|i| Dense::load(self.state, &format!("{prefix}{i}.")))
            .collect::<Result<Vec<Dense>>>()?;
        let slopes = activations
            .iter()
            .map(|i| self.state.scalar_parameter(&format!("{prefix}{i}.")))
            .collect::<Result<Vec<f32>>>()?;
        Ok((layers, slopes))
    }

    /// The `nn.Sequential` at `prefix` as hidden layers, each followed by the activation.
    fn hidden(&self, prefix: &str) -> Result<Mlp> {
        let (layers, slopes) = self.sequential(prefix)?;
        Mlp::new(layers, self.activation, slopes)
    }

    /// A `create_mlp(..., output_dim > 0)` block: hidden layers, then the output layer.
    fn mlp_with_output(&self, prefix: &str) -> Result<(Mlp, Dense)> {
        let (mut layers, slopes) = self.sequential(prefix)?;
        let output = layers
            .pop()
            .ok_or_else(|| invalid(format!("{prefix}* has no Linear layer")))?;
        Ok((Mlp::new(layers, self.activation, slopes)?, output))
    }

    fn action_len(&self) -> Result<(Vec<usize>, usize)> {
        let shape = match self.action_space {
            Space::Box(b) => b.shape().to_vec(),
            Space::Discrete { .. } => Vec::new(),
            Space::MultiDiscrete { nvec, .. } => vec![nvec.len()],
            Space::MultiBinary { shape, .. } => shape.clone(),
            other => return Err(unsupported(format!("{} action spaces", other.type_name()))),
        };
        let len = shape.iter().product();
        Ok((shape, len))
    }

    fn discrete_actions(&self) -> Result<usize> {
        match self.action_space {
            Space::Discrete { n, .. } => usize::try_from(*n)
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| invalid(format!("Discrete({n}) actions"))),
            other => Err(unsupported(format!(
                "{} with {} actions",
                self.info.family,
                other.type_name()
            ))),
        }
    }

    fn require_box(&self) -> Result<()> {
        match self.action_space {
            Space::Box(_) => Ok(()),
            other => Err(unsupported(format!(
                "{} with {} actions",
                self.info.family,
                other.type_name()
            ))),
        }
    }
}

/// The prefix of the actor's features extractor in an actor-critic state dict: SB3 ≥ 1.7
/// saves it as `pi_features_extractor` (also under `features_extractor` when shared).
fn actor_critic_prefix(state: &StateDict<'_, '_>) -> &'static str {
    if state.has_prefix("pi_features_extractor.") {
        "pi_features_extractor."
    } else {
        "features_extractor."
    }
}

/// `value`, or an [`Error::Invalid`](crate::Error::Invalid) saying `missing`.
fn required<T>(value: Option<T>, missing: &str) -> Result<T> {
    value.ok_or_else(|| invalid(missing))
}

/// `activation_fn` and `features_extractor_class` must be classes pickled by name: one pickled
/// by value (cloudpickle rebuilds it from its code) or anything else is refused, showing what
/// the pickle holds (its class name is in it).
fn refuse_unnamed_classes(model: &Model<'_>, kwargs: &PolicyKwargs) -> Result<()> {
    for (key, what, named) in [
        ("activation_fn", "activation function", kwargs.activation_fn.is_some()),
        (
            "features_extractor_class",
            "features extractor class",
            kwargs.features_extractor_class.is_some(),
        ),
    ] {
        if named || !kwargs.keys.iter().any(|k| k == key) {
            continue;
        }
        let shown = model
            .data()
            .and_then(|d| d.payload("policy_kwargs"))
            .and_then(|p| p.root().get(key))
            .map(|v| {
                // A short rendering is enough to show the class's name; the output is cut anyway.
                let budget = JsonBudget::default().with_max_values(256).with_max_bytes(4096);
                let mut out = Vec::new();
                let _ = write_json(&mut out, v, &budget);
                String::from_utf8_lossy(&out).into_owned()
            })
            .unwrap_or_default();
        let cut = shown.char_indices().nth(300).map_or(shown.len(), |(i, _)| i);
        return Err(unsupported(format!(
            "{what} pickled by value, not by name: {}",
            shown.get(..cut).unwrap_or_default()
        )));
    }
    Ok(())
}

/// Builds the network of `model`, with `vn`'s observation statistics.
pub(crate) fn build(model: &Model<'_>, vn: Option<&VecNormalize>) -> Result<Network> {
    let class = required(model.policy_class(), "the data member names no policy_class")?;
    let checkpoint = required(model.policy(), "no policy.pth in the model zip")?;
    let state = StateDict::new(checkpoint);
    let info = identify(class, &state)?;
    let default_kwargs = PolicyKwargs::default();
    let kwargs = model.policy_kwargs().unwrap_or(&default_kwargs);
    refuse_unnamed_classes(model, kwargs)?;
    let activation = match &kwargs.activation_fn {
        Some(class) => Activation::from_class(class)?,
        None => info.family.default_activation(),
    };
    let observation_space = required(model.observation_space(), "the data member has no observation_space")?;
    let action_space = required(model.action_space(), "the data member has no action_space")?;
    let cx = Context {
        state: &state,
        kwargs,
        info,
        activation,
        observation_space,
        action_space,
        vn,
    };
    let network = match info.family {
        Family::ActorCritic | Family::RecurrentActorCritic => actor_critic(&cx)?,
        Family::Dqn | Family::QrDqn => q_network(&cx)?,
        Family::Sac | Family::Tqc => squashed_gaussian(&cx)?,
        Family::Td3 => deterministic(&cx)?,
        Family::Ars => ars(&cx)?,
    };
    check_sizes(&network)?;
    Ok(network)
}

/// Assembles the network, reading the action shape.
fn network(cx: &Context<'_, '_, '_, '_>, parts: Parts) -> Result<Network> {
    let (action_shape, action_len) = cx.action_len()?;
    Ok(Network {
        family: cx.info.family,
        extractor: parts.extractor,
        lstm: parts.lstm,
        hidden: parts.hidden,
        output: parts.output,
        squash: parts.squash,
        mapping: parts.mapping,
        action_shape,
        action_len,
    })
}

struct Parts {
    extractor: Extractor,
    lstm: Option<Lstm>,
    hidden: Mlp,
    output: Dense,
    squash: Squash,
    mapping: Mapping,
}

impl Parts {
    /// A network without an LSTM.
    fn feedforward(extractor: Extractor, (hidden, output): (Mlp, Dense), squash: Squash, mapping: Mapping) -> Parts {
        Parts {
            extractor,
            lstm: None,
            hidden,
            output,
            squash,
            mapping,
        }
    }
}

/// `ActorCriticPolicy` (and the recurrent one): extractor → [LSTM] → `mlp_extractor`
/// (`shared_net` of SB3 < 1.8, then `policy_net`) → `action_net` → distribution mode.
fn actor_critic(cx: &Context<'_, '_, '_, '_>) -> Result<Network> {
    let extractor = cx.extractor(actor_critic_prefix(cx.state))?;
    let lstm = match cx.info.family {
        Family::RecurrentActorCritic => Some(Lstm::load(cx.state, "lstm_actor.")?),
        _ => None,
    };
    let shared = cx.hidden("mlp_extractor.shared_net.")?;
    let policy = cx.hidden("mlp_extractor.policy_net.")?;
    let hidden = shared.then(policy)?;
    let output = Dense::load(cx.state, "action_net.")?;
    // squash_output is only allowed with gSDE, where the mode is tanh of the mean.
    let squash = matches!(cx.action_space, Space::Box(_)) && cx.kwargs.squash_output == Some(true);
    let parts = Parts {
        extractor,
        lstm,
        hidden,
        output,
        squash: if squash { Squash::Tanh } else { Squash::None },
        mapping: Mapping::for_distribution(cx.action_space, squash, cx.info.maskable)?,
    };
    network(cx, parts)
}

/// DQN (`q_net.q_net`) and QR-DQN (`quantile_net.quantile_net`).
fn q_network(cx: &Context<'_, '_, '_, '_>) -> Result<Network> {
    let n = cx.discrete_actions()?;
    let (prefix, net) = match cx.info.family {
        Family::QrDqn => ("quantile_net.", "quantile_net.quantile_net."),
        _ => ("q_net.", "q_net.q_net."),
    };
    let extractor = cx.extractor(&format!("{prefix}features_extractor."))?;
    let (hidden, output) = cx.mlp_with_output(net)?;
    let mapping = match cx.info.family {
        Family::QrDqn => {
            let width = output.outputs();
            if width % n != 0 || width == 0 {
                return Err(invalid(format!("{net}* has {width} outputs for {n} actions")));
            }
            let quantiles = width / n;
            if let Some(k) = cx.kwargs.n_quantiles.filter(|&k| k != quantiles as i64) {
                return Err(invalid(format!(
                    "n_quantiles is {k} but {net}* gives {quantiles} per action"
                )));
            }
            Mapping::QuantileArgmax { quantiles, actions: n }
        }
        _ => Mapping::Argmax { n },
    };
    network(
        cx,
        Parts::feedforward(extractor, (hidden, output), Squash::None, mapping),
    )
}

/// SAC and TQC: `actor.latent_pi` → `actor.mu` (with gSDE, `Sequential(Linear, Hardtanh)`)
/// → tanh → unscale.
fn squashed_gaussian(cx: &Context<'_, '_, '_, '_>) -> Result<Network> {
    cx.require_box()?;
    let extractor = cx.extractor("actor.features_extractor.")?;
    let hidden = cx.hidden("actor.latent_pi.")?;
    let (output, squash) = if cx.state.has("actor.mu.0.weight") {
        let clip_mean = cx.kwargs.clip_mean.unwrap_or(2.0);
        if clip_mean <= 0.0 {
            return Err(invalid(format!(
                "actor.mu is a Sequential (gSDE with clip_mean) but clip_mean is {clip_mean}"
            )));
        }
        (
            Dense::load(cx.state, "actor.mu.0.")?,
            Squash::ClampTanh(clip_mean as f32),
        )
    } else {
        (Dense::load(cx.state, "actor.mu.")?, Squash::Tanh)
    };
    let (low, high) = crate::head::box_bounds(cx.action_space).unwrap_or_default();
    let mapping = Mapping::Unscale { low, high };
    network(cx, Parts::feedforward(extractor, (hidden, output), squash, mapping))
}

/// TD3 and DDPG: `actor.mu` = `create_mlp(..., squash_output=True)` → unscale.
fn deterministic(cx: &Context<'_, '_, '_, '_>) -> Result<Network> {
    cx.require_box()?;
    let extractor = cx.extractor("actor.features_extractor.")?;
    let (hidden, output) = cx.mlp_with_output("actor.mu.")?;
    let (low, high) = crate::head::box_bounds(cx.action_space).unwrap_or_default();
    let mapping = Mapping::Unscale { low, high };
    network(
        cx,
        Parts::feedforward(extractor, (hidden, output), Squash::Tanh, mapping),
    )
}

/// ARS: `action_net` = `create_mlp(..., with_bias, squash_output)`; Box actions are squashed
/// and unscaled, or clipped; Discrete actions are the argmax of the logits. Linear policies of
/// sb3-contrib < 1.7 hold a bare `action_net.weight`.
fn ars(cx: &Context<'_, '_, '_, '_>) -> Result<Network> {
    let extractor = cx.extractor("features_extractor.")?;
    let (hidden, output) = if cx.state.has("action_net.weight") {
        (
            Mlp::new(Vec::new(), cx.activation, Vec::new())?,
            Dense::load(cx.state, "action_net.")?,
        )
    } else {
        cx.mlp_with_output("action_net.")?
    };
    let (squash, mapping) = match cx.action_space {
        Space::Box(_) => {
            let (low, high) = crate::head::box_bounds(cx.action_space).unwrap_or_default();
            if cx.kwargs.squash_output.unwrap_or(cx.info.squash_by_default) {
                (Squash::Tanh, Mapping::Unscale { low, high })
            } else {
                (Squash::None, Mapping::Clip { low, high })
            }
        }
        Space::Discrete { n, .. } => (
            Squash::None,
            Mapping::Argmax {
                n: usize::try_from(*n).unwrap_or(0),
            },
        ),
        other => return Err(unsupported(format!("ARS with {} actions", other.type_name()))),
    };
    network(cx, Parts::feedforward(extractor, (hidden, output), squash, mapping))
}

/// Each stage must take what the one before gives, and the output must fit the action space.
fn check_sizes(net: &Network) -> Result<()> {
    let mut width = net.extractor.features();
    if let Some(lstm) = &net.lstm {
        if lstm.inputs() != width {
            return Err(invalid(format!(
                "the LSTM takes {} inputs, the extractor gives {width} features",
                lstm.inputs()
            )));
        }
        width = lstm.hidden();
    }
    if let Some(first) = net.hidden.layers().first() {
        if first.inputs() != width {
            return Err(invalid(format!(
                "the first hidden layer takes {} inputs, it is given {width}",
                first.inputs()
            )));
        }
    }
    width = net.hidden.outputs(width);
    if net.output.inputs() != width {
        return Err(invalid(format!(
            "the output layer takes {} inputs, it is given {width}",
            net.output.inputs()
        )));
    }
    let want = net.mapping.width(net.action_len);
    if net.output.outputs() != want {
        return Err(invalid(format!(
            "the output layer gives {} values, the action space needs {want}",
            net.output.outputs()
        )));
    }
    Ok(())
}

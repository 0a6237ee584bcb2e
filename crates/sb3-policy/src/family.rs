//! Which kind of policy a model holds, from its pickled policy class, checked against the
//! state dict's keys.

use std::fmt;

use sb3_format::GlobalName;

use crate::activation::Activation;
use crate::error::{invalid, unsupported, Result};
use crate::extractor::ExtractorKind;
use crate::weights::StateDict;

/// The policy families this crate runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Family {
    /// `ActorCriticPolicy` and its CNN / multi-input variants: PPO, A2C, TRPO, MaskablePPO
    /// (without masks).
    ActorCritic,
    /// `RecurrentActorCriticPolicy` and its variants: RecurrentPPO.
    RecurrentActorCritic,
    /// `DQNPolicy`: the greedy action of the Q-network.
    Dqn,
    /// `QRDQNPolicy`: the greedy action of the mean over quantiles.
    QrDqn,
    /// `SACPolicy`: the squashed mean of the actor, with or without gSDE.
    Sac,
    /// `TQCPolicy`: as SAC.
    Tqc,
    /// `TD3Policy` (TD3 and DDPG): the deterministic actor.
    Td3,
    /// `ARSPolicy` / `ARSLinearPolicy`.
    Ars,
}

impl Family {
    /// A short name with the algorithms that use the family.
    pub fn name(self) -> &'static str {
        match self {
            Family::ActorCritic => "actor-critic (PPO/A2C/TRPO)",
            Family::RecurrentActorCritic => "recurrent actor-critic (RecurrentPPO)",
            Family::Dqn => "DQN",
            Family::QrDqn => "QR-DQN",
            Family::Sac => "SAC",
            Family::Tqc => "TQC",
            Family::Td3 => "TD3/DDPG",
            Family::Ars => "ARS",
        }
    }

    /// The activation SB3 uses when `policy_kwargs` names none.
    pub(crate) fn default_activation(self) -> Activation {
        match self {
            Family::ActorCritic | Family::RecurrentActorCritic => Activation::Tanh,
            _ => Activation::ReLU,
        }
    }

    /// The tensor that every policy of the family has, checked to tell a file whose class
    /// and weights disagree.
    fn marker(self) -> &'static [&'static str] {
        match self {
            Family::ActorCritic => &["action_net.weight"],
            Family::RecurrentActorCritic => &["lstm_actor.weight_ih_l0"],
            Family::Dqn => &["q_net.q_net."],
            Family::QrDqn => &["quantile_net.quantile_net."],
            // `actor.latent_pi` is an empty Sequential when `net_arch` gives the actor no layer.
            Family::Sac | Family::Tqc | Family::Td3 => &["actor.mu."],
            Family::Ars => &["action_net."],
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the policy class says: the family, the default extractor, (ARS) whether Box actions
/// are squashed by default, and (MaskablePPO) whether its distributions are sb3-contrib's
/// maskable ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClassInfo {
    pub family: Family,
    pub extractor: ExtractorKind,
    pub squash_by_default: bool,
    pub maskable: bool,
}

/// `(module, class, family, default extractor)` for every policy class SB3 and sb3-contrib
/// pickle (aliases such as `MlpPolicy` pickle as the class they name).
const CLASSES: &[(&str, &str, Family, ExtractorKind)] = {
    use ExtractorKind::{Combined, Flatten, NatureCnn};
    use Family::*;
    &[
        (
            "stable_baselines3.common.policies",
            "ActorCriticPolicy",
            ActorCritic,
            Flatten,
        ),
        (
            "stable_baselines3.common.policies",
            "ActorCriticCnnPolicy",
            ActorCritic,
            NatureCnn,
        ),
        (
            "stable_baselines3.common.policies",
            "MultiInputActorCriticPolicy",
            ActorCritic,
            Combined,
        ),
        (
            "sb3_contrib.common.maskable.policies",
            "MaskableActorCriticPolicy",
            ActorCritic,
            Flatten,
        ),
        (
            "sb3_contrib.common.maskable.policies",
            "MaskableActorCriticCnnPolicy",
            ActorCritic,
            NatureCnn,
        ),
        (
            "sb3_contrib.common.maskable.policies",
            "MaskableMultiInputActorCriticPolicy",
            ActorCritic,
            Combined,
        ),
        (
            "sb3_contrib.common.recurrent.policies",
            "RecurrentActorCriticPolicy",
            RecurrentActorCritic,
            Flatten,
        ),
        (
            "sb3_contrib.common.recurrent.policies",
            "RecurrentActorCriticCnnPolicy",
            RecurrentActorCritic,
            NatureCnn,
        ),
        (
            "sb3_contrib.common.recurrent.policies",
            "RecurrentMultiInputActorCriticPolicy",
            RecurrentActorCritic,
            Combined,
        ),
        ("stable_baselines3.dqn.policies", "DQNPolicy", Dqn, Flatten),
        ("stable_baselines3.dqn.policies", "CnnPolicy", Dqn, NatureCnn),
        ("stable_baselines3.dqn.policies", "MultiInputPolicy", Dqn, Combined),
        ("sb3_contrib.qrdqn.policies", "QRDQNPolicy", QrDqn, Flatten),
        ("sb3_contrib.qrdqn.policies", "CnnPolicy", QrDqn, NatureCnn),
        ("sb3_contrib.qrdqn.policies", "MultiInputPolicy", QrDqn, Combined),
        ("stable_baselines3.sac.policies", "SACPolicy", Sac, Flatten),
        ("stable_baselines3.sac.policies", "CnnPolicy", Sac, NatureCnn),
        ("stable_baselines3.sac.policies", "MultiInputPolicy", Sac, Combined),
        ("sb3_contrib.tqc.policies", "TQCPolicy", Tqc, Flatten),
        ("sb3_contrib.tqc.policies", "CnnPolicy", Tqc, NatureCnn),
        ("sb3_contrib.tqc.policies", "MultiInputPolicy", Tqc, Combined),
        ("stable_baselines3.td3.policies", "TD3Policy", Td3, Flatten),
        ("stable_baselines3.td3.policies", "CnnPolicy", Td3, NatureCnn),
        ("stable_baselines3.td3.policies", "MultiInputPolicy", Td3, Combined),
        ("sb3_contrib.ars.policies", "ARSPolicy", Ars, Flatten),
        ("sb3_contrib.ars.policies", "ARSLinearPolicy", Ars, Flatten),
    ]
};

/// Identifies the policy from its class, and checks that the state dict has the family's
/// networks.
pub(crate) fn identify(class: &GlobalName, state: &StateDict<'_, '_>) -> Result<ClassInfo> {
    let (_, _, family, extractor) = CLASSES
        .iter()
        .find(|(module, name, ..)| *module == class.module && *name == class.name)
        .ok_or_else(|| unsupported(format!("policy class {class}")))?;
    for marker in family.marker() {
        let present = if marker.ends_with('.') {
            state.has_prefix(marker) || state.has(&format!("{marker}weight"))
        } else {
            state.has(marker)
        };
        if !present {
            return Err(invalid(format!(
                "policy class {class} but policy.pth has no {marker}* tensor"
            )));
        }
    }
    Ok(ClassInfo {
        family: *family,
        extractor: *extractor,
        squash_by_default: class.name == "ARSPolicy",
        maskable: class.module == "sb3_contrib.common.maskable.policies",
    })
}

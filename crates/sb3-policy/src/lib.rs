//! Run Stable-Baselines3 policies from their model zips, without Python or libtorch.
//!
//! [`Policy`] reads a model with [`sb3_format`] and gives the action SB3's
//! `model.predict(obs, deterministic=True)` gives: discrete actions exactly, continuous ones
//! to float32 rounding. Every family of SB3 and sb3-contrib — actor-critic (PPO, A2C, TRPO),
//! DQN, QR-DQN, SAC, TQC, TD3/DDPG, ARS and RecurrentPPO — with flatten, NatureCNN and
//! combined (Dict) extractors, VecNormalize statistics, and every action space SB3 maps.
//!
//! The policy is identified from the pickled policy class and checked against the state
//! dict's keys; layer sizes come from the weight shapes and the activation from
//! `policy_kwargs` (or the class's default). Anything else — a custom extractor, an unknown
//! activation, a space SB3 cannot act in — is an [`Error`] naming it.
//!
//! ```
//! # fn main() -> Result<(), sb3_policy::Error> {
//! use sb3_policy::{Action, Observation, Policy, Values};
//!
//! let policy = Policy::open(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sb3/sac_pendulum.zip"))?;
//! println!("{}: {}", policy.family(), policy.architecture());
//! // Load once; then predict without allocating.
//! let (mut scratch, mut action) = (policy.scratch(), policy.new_action());
//! policy.predict_into(&Observation::Box(Values::F32(&[1.0, 0.0, 0.5])), &mut scratch, &mut action)?;
//! if let Action::Box(torque) = &action {
//!     assert!(torque[0].abs() <= 2.0);
//! }
//! # Ok(()) }
//! ```
//!
//! Modules, from the bottom up: element math and SIMD dispatch; layers (dense, conv, LSTM);
//! observation preprocessing and extractors; the policy families and output mappings; and
//! [`Policy`], which ties them together.

#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

mod activation;
mod batch;
mod conv;
mod dense;
mod describe;
mod error;
mod extractor;
mod family;
mod head;
mod input;
mod json;
mod lstm;
mod math;
mod network;
mod observation;
mod policy;
mod simd;
mod weights;

pub use activation::Activation;
pub use error::{Error, Result};
pub use extractor::ExtractorKind;
pub use family::Family;
pub use json::{action_to_json, JsonObservation};
pub use observation::{Action, Observation, Values};
pub use policy::{Policy, RecurrentState, Scratch};

/// The crate README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The workspace README's examples (pth-reader's and this crate's), compiled and run here: this
/// crate depends on all three libraries.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct WorkspaceReadmeDoctests;

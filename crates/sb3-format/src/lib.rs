//! Read Stable-Baselines3 model zips and VecNormalize files without Python.
//!
//! `sb3-format` composes [`pth_reader`] with the rest of what SB3 saves: the `data` JSON
//! (with its `:serialized:` cloudpickles decoded inert), `_stable_baselines3_version`,
//! `system_info.txt`, every nested `.pth` (policy, optimizers, `pytorch_variables`) as a
//! zero-copy [`pth_reader::Checkpoint`], and the `vecnormalize.pkl` many trained agents need.
//!
//! Nothing in a model is ever executed: pickled globals are names and pickled calls are
//! records. Observation and action spaces (gym and gymnasium; `Box`, `Discrete`,
//! `MultiDiscrete`, `MultiBinary`, `Dict`, `Tuple`) are rebuilt from the pickled numpy arrays,
//! so their bounds are exact. Bad input gives an [`Error`] naming the member at fault; no input
//! makes the crate panic.
//!
//! ```
//! # fn main() -> Result<(), sb3_format::Error> {
//! use sb3_format::{Model, Space};
//!
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/sb3/ppo_cartpole.zip");
//! let model = Model::open(path, &pth_reader::Options::default())?;
//! println!("saved by SB3 {:?}", model.sb3_version());
//! if let Some(Space::Box(obs)) = model.observation_space() {
//!     println!("observations: {} {:?}, low {:?}", obs.dtype(), obs.shape(), obs.low_f64());
//! }
//! for (name, state_dict) in model.state_dicts() {
//!     println!("{name}: {} tensors", state_dict.len());
//! }
//! # Ok(()) }
//! ```
//!
//! Modules, from the bottom up: [`Error`], [`GlobalName`], the decoding budget; [`NdArray`]
//! (numpy arrays and scalars); [`Space`]; [`Payload`] (one `:serialized:` value);
//! [`PolicyKwargs`]; [`SystemInfo`]; [`Data`] (the JSON and its typed view); [`VecNormalize`];
//! [`Model`] (the zip). With the `serde` feature, spaces, arrays and system info implement
//! `serde::Serialize` in the schema of the corpus manifests (what `pth sb3 info --json` prints).

#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

mod data;
mod decode;
mod error;
mod model;
mod names;
mod numpy;
mod payload;
mod policy_kwargs;
#[cfg(feature = "serde")]
mod serialize;
mod space;
mod system_info;
mod vecnormalize;

pub use data::{Data, DataValue};
pub use error::{Error, ErrorKind, Result};
pub use model::Model;
pub use names::GlobalName;
pub use numpy::{NdArray, NpDType};
pub use payload::Payload;
pub use policy_kwargs::{NetArch, PolicyKwargs};
pub use space::{BoxSpace, Space};
pub use system_info::{InfoDifference, SystemInfo};
pub use vecnormalize::{ObsStats, RunningMeanStd, VecNormalize};

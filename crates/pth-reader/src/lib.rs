//! Read PyTorch `torch.save` files without Python or libtorch.
//!
//! `pth-reader` decodes every format `torch.save` has written — the zip archive (torch ≥ 1.6,
//! any pickle protocol, deflated or stored, little- or big-endian) and the legacy pickle
//! stream — into an object tree with tensors, exactly as `torch.load` sees them:
//! strided views, shared storages, conjugate and negative views, every dtype from `bool` to
//! `float8_e8m0fnu`.
//!
//! It is built to open files from strangers. The pickle machine executes nothing: globals are
//! names, calls are inert records. Strict mode (the default) accepts exactly the globals torch's
//! `weights_only=True` loader accepts; lenient mode keeps the rest as data. Every length is
//! checked before use, every tensor is validated against its storage when the file is opened,
//! and all work is bounded by [`Limits`]. No input makes it panic.
//!
//! Opening is cheap: files are memory-mapped and tensor bytes are not touched until asked for;
//! contiguous tensors are then borrowed without copying.
//!
//! ```
//! # fn main() -> Result<(), pth_reader::Error> {
//! use pth_reader::Checkpoint;
//!
//! let ckpt = Checkpoint::open(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint.pth"))?;
//! for (name, tensor) in ckpt.tensors() {
//!     println!("{name}: {} {:?}", tensor.dtype(), tensor.shape());
//! }
//! let weight = ckpt.tensor("model.0.weight")?;
//! let values: Vec<f32> = weight.to_vec()?;
//! assert_eq!(values.len(), weight.numel());
//! # Ok(()) }
//! ```
//!
//! Modules, from the bottom up: the byte [`cursor`](crate) and [`SharedBytes`]; the pickle
//! machine ([`Pickle`], [`Value`]); containers ([`zip::ZipArchive`], the legacy stream); the torch
//! layer (allowlist, storages, rebuild functions); tensors ([`TensorView`]); and
//! [`Checkpoint`], which ties them together.

// `unsafe` is denied everywhere and forbidden in every module but `mmap`, the one that maps files.
#![deny(unsafe_code)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

mod bytes;
mod checkpoint;
mod container;
mod cursor;
mod error;
mod limits;
#[cfg(feature = "mmap")]
mod mmap;
mod options;
mod paths;
pub mod pickle;
mod tensor;
mod torch;
mod value;

pub use bytes::SharedBytes;
pub use checkpoint::Checkpoint;
pub use container::Format;
pub use error::{Error, Result};
pub use limits::Limits;
#[cfg(feature = "mmap")]
pub use mmap::MappedFile;
pub use options::Options;
pub use pickle::Pickle;
pub use tensor::{ByteOrder, Element, Quantization, TensorView};
pub use torch::allowlist::is_allowed_global;
pub use torch::dtype::DType;
pub use torch::storage::Storage;
pub use value::{BigInt, Dict, Kind, Object, Seq, Value};

/// Zip archives as torch (or Python's `zipfile`) reads them: the container of `torch.save`
/// files and of SB3 model zips.
pub mod zip {
    pub use crate::container::zip::{Compression, Dialect, InflateBudget, ZipAnomaly, ZipArchive, ZipEntry};
}

/// The README's example, compiled as a doctest so it cannot rot.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

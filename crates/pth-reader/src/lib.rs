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
//! let ckpt = Checkpoint::open(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint.pth"), &Default::default())?;
//! for (name, tensor) in ckpt.tensors() {
//!     println!("{name}: {} {:?}", tensor.dtype(), tensor.shape());
//! }
//! let weight = ckpt.tensor("model.0.weight")?;
//! let values: Vec<f32> = weight.to_vec()?;
//! assert_eq!(values.len(), weight.numel());
//! # Ok(()) }
//! ```
//!
//! Modules, from the bottom up: bytes ([`SharedBytes`], a bounds-checked cursor) and leaf
//! helpers (dtypes, errors, limits); the pickle machine (an arena tree with Python's value
//! semantics, calling a handler for globals, calls and `BUILD`); tensors ([`TensorView`]);
//! containers, which only locate bytes ([`zip::ZipArchive`], the legacy stream); the torch layer
//! (the one table of allowed globals, the handler that evaluates torch's calls when the
//! pickle makes them, the load pipeline); the public view of values ([`Value`]); tensor
//! naming; and [`Checkpoint`] and [`Pickle`], which tie them together.

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
mod dtype;
mod error;
mod file;
mod hashing;
#[cfg(feature = "json")]
pub mod json;
mod limits;
#[cfg(feature = "mmap")]
mod mmap;
mod options;
mod paths;
mod pickle;
pub mod pyrepr;
mod standalone;
mod tensor;
mod torch;
mod value;
pub mod write;
mod zip_anomaly;

pub use bytes::SharedBytes;
pub use checkpoint::Checkpoint;
pub use container::Format;
pub use dtype::DType;
pub use error::{Error, ErrorKind, Location, Result};
pub use limits::{Limit, Limits};
pub use options::Options;
pub use pickle::{Construction, ValueId};
pub use standalone::Pickle;
pub use tensor::{ByteOrder, Element, Quantization, Storage, TensorView};
pub use torch::globals::is_allowed_global;
pub use value::{BigInt, Dict, Kind, Object, Seq, Value};

/// Zip archives as torch (or Python's `zipfile`) reads them: the container of `torch.save`
/// files and of SB3 model zips.
pub mod zip {
    pub use crate::container::zip::{Compression, Dialect, InflateBudget, ZipArchive, ZipEntry};
    pub use crate::zip_anomaly::ZipAnomaly;
}

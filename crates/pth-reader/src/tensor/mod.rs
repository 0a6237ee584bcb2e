//! Tensors: layout validation, views over storages, typed and converted access.

#![forbid(unsafe_code)]

#[cfg(feature = "ndarray")]
mod array;
mod element;
mod layout;
mod storage;
mod view;

pub use element::Element;
pub(crate) use layout::{Layout, LayoutError};
pub use storage::Storage;
pub use view::{ByteOrder, Quantization, TensorView};

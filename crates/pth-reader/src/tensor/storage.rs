//! [`Storage`]: the bytes that tensors view.

use std::sync::Arc;

use crate::{DType, SharedBytes};

/// A storage of a checkpoint: a flat run of bytes that tensors view.
///
/// Several tensors may share one storage (views of one another); they then hold the same
/// bytes, never copies.
#[derive(Debug, Clone)]
pub struct Storage<'data> {
    pub(crate) key: Arc<str>,
    pub(crate) dtype: Option<DType>,
    pub(crate) location: Arc<str>,
    pub(crate) bytes: SharedBytes<'data>,
}

impl<'data> Storage<'data> {
    /// The key: record `data/<key>` of a zip archive, or a legacy file's storage id.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The element type of a typed storage (`FloatStorage`); `None` for an `UntypedStorage`,
    /// whose tensors carry their own dtype.
    pub fn dtype(&self) -> Option<DType> {
        self.dtype
    }

    /// Where it lived when saved (`cpu`, `cuda:0`, `mps`, ...). It is read on the CPU anyway.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The bytes, as stored (in the archive's byte order).
    pub fn bytes(&self) -> &SharedBytes<'data> {
        &self.bytes
    }
}

//! The storages a pickle refers to: one key each, their bytes streamed little-endian.

#![forbid(unsafe_code)]

use std::sync::Arc;

use crate::{DType, Error, ErrorKind, Result, SharedBytes};

/// Bytes swapped per step when a big-endian storage is written little-endian.
const SWAP_CHUNK: usize = 1 << 20;

/// What tells two storages apart: where their bytes are, and their key in the file they came
/// from (two empty storages may share an address).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct StorageIdentity {
    address: usize,
    len: usize,
    key: Option<Arc<str>>,
}

impl StorageIdentity {
    pub(crate) fn of(bytes: &SharedBytes<'_>, key: Option<&Arc<str>>) -> Self {
        StorageIdentity {
            address: bytes.as_slice().as_ptr() as usize,
            len: bytes.len(),
            key: key.cloned(),
        }
    }
}

/// How a storage is pickled: a typed storage of a dtype that has a legacy storage class
/// (`torch FloatStorage`, counted in elements), or an `UntypedStorage` (counted in bytes), which
/// torch uses for the dtypes of `torch.storage._new_dtypes()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StorageKind {
    Typed(DType),
    Untyped,
}

impl StorageKind {
    /// The kind a tensor of `dtype` gives its storage.
    pub(crate) fn for_dtype(dtype: DType) -> Self {
        match dtype.storage_name() {
            Some(_) => StorageKind::Typed(dtype),
            None => StorageKind::Untyped,
        }
    }

    /// `(module, name)` of the storage class.
    pub(crate) fn class(self) -> (&'static str, &'static str) {
        match self {
            StorageKind::Typed(d) => ("torch", d.storage_name().unwrap_or("UntypedStorage")),
            StorageKind::Untyped => ("torch.storage", "UntypedStorage"),
        }
    }

    /// Bytes per counted unit (the legacy stream counts a storage in these).
    pub(crate) fn unit(self) -> usize {
        match self {
            StorageKind::Typed(d) => d.size(),
            StorageKind::Untyped => 1,
        }
    }
}

/// One storage of the file being written.
#[derive(Debug, Clone)]
pub(crate) struct StorageOut<'a, 'data> {
    /// `"0"`, `"1"`, ... in the order the pickle first refers to them.
    pub(crate) key: String,
    pub(crate) bytes: &'a SharedBytes<'data>,
    pub(crate) kind: StorageKind,
    pub(crate) location: &'a str,
    /// Groups of bytes reversed to make the stored bytes little-endian (1: none).
    pub(crate) swap_unit: usize,
}

impl StorageOut<'_, '_> {
    /// The size the persistent id declares: elements of a typed storage, bytes of an untyped
    /// one.
    pub(crate) fn numel(&self) -> Result<u64> {
        let unit = self.kind.unit();
        if self.bytes.len() % unit != 0 {
            return Err(Error::from(ErrorKind::InvalidStorage {
                key: self.key.clone(),
                reason: format!(
                    "{} bytes are not a whole number of {}-byte elements",
                    self.bytes.len(),
                    unit
                ),
            }));
        }
        Ok((self.bytes.len() / unit) as u64)
    }

    /// Bytes in the file.
    pub(crate) fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Streams the bytes, little-endian, a chunk at a time, to `put`.
    pub(crate) fn write(&self, mut put: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let bytes = self.bytes.as_slice();
        if self.swap_unit <= 1 {
            return put(bytes);
        }
        let unit = self.swap_unit;
        let chunk = (SWAP_CHUNK / unit).max(1) * unit;
        let mut scratch = Vec::new();
        scratch
            .try_reserve_exact(chunk.min(bytes.len()))
            .map_err(|_| Error::from(ErrorKind::OutOfMemory { bytes: chunk as u64 }))?;
        for part in bytes.chunks(chunk) {
            scratch.clear();
            scratch.extend_from_slice(part);
            for group in scratch.chunks_exact_mut(unit) {
                group.reverse();
            }
            put(&scratch)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_endian_storages_are_written_little_endian() {
        let bytes = SharedBytes::from(vec![0u8, 0, 0, 1, 0, 0, 0, 2]);
        let s = StorageOut {
            key: "0".into(),
            bytes: &bytes,
            kind: StorageKind::Typed(DType::Int32),
            location: "cpu",
            swap_unit: 4,
        };
        let mut out = Vec::new();
        s.write(|b| {
            out.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(out, [1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(s.numel().unwrap(), 2);
        let odd = SharedBytes::from(vec![0u8; 3]);
        assert!(StorageOut { bytes: &odd, ..s }.numel().is_err());
    }
}

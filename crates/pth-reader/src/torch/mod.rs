//! The torch layer: dtypes, the strict allowlist, storages and rebuild functions.

#![forbid(unsafe_code)]

pub(crate) mod allowlist;
pub(crate) mod dtype;
pub(crate) mod rebuild;
pub(crate) mod storage;

//! The one error type of this crate.

#![forbid(unsafe_code)]

use std::path::PathBuf;

use crate::container::zip::ZipAnomaly;
use crate::DType;

/// Everything that can go wrong while opening an archive or reading a tensor.
///
/// Every variant carries enough context to find the problem: the record (zip member or legacy
/// section) it was found in, the byte offset inside a pickle, the path of a tensor in the
/// object tree. Messages are one line, suitable for a command-line tool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read or mapped.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file that was being opened.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// The bytes are neither a zip archive nor a legacy torch pickle stream.
    #[error("not a torch archive: {reason}")]
    UnrecognizedFormat {
        /// What was seen instead.
        reason: String,
    },

    /// The zip container is malformed, ambiguous (two readers could read different bytes) or
    /// uses something torch refuses.
    #[error("invalid zip archive: {anomaly}")]
    Zip {
        /// What is wrong with it.
        anomaly: ZipAnomaly,
    },

    /// The legacy (pre-1.6) stream is malformed.
    #[error("invalid legacy torch file: {reason}")]
    Legacy {
        /// What is wrong with it.
        reason: String,
    },

    /// A record the format requires is absent.
    #[error("missing record {name}")]
    MissingRecord {
        /// The record's name, as it would appear in the archive.
        name: String,
    },

    /// The pickle stream is malformed (bad opcode, truncated, stack underflow, ...).
    #[error("malformed pickle in {record} at byte {offset}: {reason}")]
    Pickle {
        /// The record holding the pickle.
        record: String,
        /// Byte offset of the failing opcode inside that pickle.
        offset: u64,
        /// What went wrong.
        reason: String,
    },

    /// Strict mode met a global outside the allowlist (nothing was ever imported or called).
    #[error(
        "refused global {module}.{name} in {record} at byte {offset}: not in the allowlist \
         (torch's weights_only set); open in lenient mode to keep it as an inert object"
    )]
    GlobalRefused {
        /// The record holding the pickle.
        record: String,
        /// Byte offset of the GLOBAL/STACK_GLOBAL/INST opcode.
        offset: u64,
        /// The global's module.
        module: String,
        /// The global's qualified name.
        name: String,
    },

    /// The input needs more resources than [`Limits`](crate::Limits) allow.
    #[error("limit exceeded in {context}: {limit} (at most {max})")]
    LimitExceeded {
        /// Where: a record name, possibly with a pickle offset or tensor path.
        context: String,
        /// Which limit (the field name of [`Limits`](crate::Limits)).
        limit: &'static str,
        /// The configured maximum.
        max: u64,
    },

    /// A storage is inconsistent with its record (size, type, missing bytes).
    #[error("invalid storage {key}: {reason}")]
    InvalidStorage {
        /// The storage key (record `data/<key>` in zip archives).
        key: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A tensor's metadata is inconsistent (bad shape, stride, offset, out of its storage).
    #[error("invalid tensor at {context}: {reason}")]
    InvalidTensor {
        /// Where: the tensor's path in the object tree (when it is reachable), the record and
        /// the pickle offset of the call that rebuilds it.
        context: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The archive uses a feature this reader does not support.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What is unsupported.
        what: String,
    },

    /// No tensor has that name.
    #[error("no tensor named {name:?}")]
    NoSuchTensor {
        /// The name that was asked for.
        name: String,
    },

    /// A typed access asked for an element type the tensor does not have.
    #[error("tensor has dtype {actual}, not {requested}")]
    DTypeMismatch {
        /// What the caller asked for (a Rust type or a conversion).
        requested: &'static str,
        /// The tensor's dtype.
        actual: DType,
    },

    /// A zero-copy view was asked for but the bytes cannot be borrowed as that type
    /// (misaligned, foreign byte order, or a conjugate/negative view that needs resolving).
    #[error("cannot borrow the tensor as {requested}: {reason}")]
    NotBorrowable {
        /// The element type asked for.
        requested: &'static str,
        /// Why a copy is needed instead.
        reason: &'static str,
    },

    /// The tensor has no data (a meta tensor).
    #[error("tensor has no data: {reason}")]
    NoData {
        /// Why (e.g. a meta-device tensor).
        reason: &'static str,
    },

    /// The system refused an allocation the input asked for (within the limits).
    #[error("cannot allocate {bytes} bytes")]
    OutOfMemory {
        /// How many bytes were asked for.
        bytes: u64,
    },

    /// Streaming tensor bytes to a writer failed.
    #[error("cannot write: {source}")]
    Write {
        /// What the writer said.
        #[source]
        source: std::io::Error,
    },
}

impl From<ZipAnomaly> for Error {
    fn from(anomaly: ZipAnomaly) -> Self {
        Error::Zip { anomaly }
    }
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

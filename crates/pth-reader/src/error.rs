//! The one error type of this crate: what went wrong ([`ErrorKind`]) and where ([`Location`]).

#![forbid(unsafe_code)]

use std::fmt;
use std::path::PathBuf;

use crate::limits::Limit;
use crate::zip_anomaly::ZipAnomaly;
use crate::DType;

/// Everything that can go wrong while opening an archive or reading a tensor.
///
/// An error is what went wrong ([`kind`](Self::kind)) and where ([`location`](Self::location):
/// the record — zip member or legacy section — the byte offset of the opcode inside its
/// pickle, the path of the tensor in the object tree). Both are boxed, so a `Result` costs one
/// pointer. Messages are one line, suitable for a command-line tool.
///
/// A message is complete: where an I/O error caused it, the I/O error's message is part of
/// it, so [`source`](std::error::Error::source) returns `None` (a report that walks the chain,
/// such as anyhow's `{:#}`, would say the cause twice otherwise). The I/O error itself is in
/// [`ErrorKind::Io`] and [`ErrorKind::Write`].
///
/// ```
/// use pth_reader::{Checkpoint, ErrorKind, Options};
/// // A legacy stream whose first pickle names os.system.
/// let err = Checkpoint::from_bytes(&b"\x80\x02cos\nsystem\n."[..], &Options::default()).unwrap_err();
/// assert!(matches!(err.kind(), ErrorKind::GlobalRefused { module, .. } if module == "os"));
/// assert_eq!(err.location().record.as_deref(), Some("magic number"));
/// assert_eq!(err.location().offset, Some(2));
/// assert!(err.to_string().starts_with("refused global os.system in magic number at byte 2"));
/// ```
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    location: Location,
}

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read or mapped.
    Io {
        /// The file that was being opened.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The bytes are neither a zip archive nor a legacy torch pickle stream.
    UnrecognizedFormat {
        /// What was seen instead.
        reason: String,
    },
    /// The zip container is malformed, ambiguous (two readers could read different bytes) or
    /// uses something torch refuses.
    Zip {
        /// What is wrong with it.
        anomaly: ZipAnomaly,
    },
    /// The legacy (pre-1.6) stream is malformed.
    Legacy {
        /// What is wrong with it.
        reason: String,
    },
    /// A record the format requires is absent.
    MissingRecord {
        /// The record's name, as it would appear in the archive.
        name: String,
    },
    /// The pickle stream is malformed (bad opcode, truncated, stack underflow, ...); the
    /// location names the record and the opcode's offset.
    Pickle {
        /// What went wrong.
        reason: String,
    },
    /// Strict mode met a global outside the allowlist (nothing was ever imported or called);
    /// the location names the record and the opcode's offset.
    GlobalRefused {
        /// The global's module.
        module: String,
        /// The global's qualified name.
        name: String,
    },
    /// The input needs more resources than [`Limits`](crate::Limits) allow.
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// The configured maximum.
        max: u64,
        /// What was being made, when the location does not say (`the names of the tensors`,
        /// `a float32 tensor of shape [..]`).
        what: Option<String>,
    },
    /// A storage is inconsistent with its record (size, type, missing bytes).
    InvalidStorage {
        /// The storage key (record `data/<key>` in zip archives).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor's metadata is inconsistent (bad shape, stride, offset, out of its storage); the
    /// location names the tensor's path (when it is reachable), the record and the offset of
    /// the call that made it.
    InvalidTensor {
        /// What is wrong with it.
        reason: String,
    },
    /// The archive uses a feature this reader does not support.
    Unsupported {
        /// What is unsupported.
        what: String,
    },
    /// No tensor has that name.
    NoSuchTensor {
        /// The name that was asked for.
        name: String,
    },
    /// A typed access asked for an element type the tensor does not have.
    DTypeMismatch {
        /// What the caller asked for (a Rust type or a conversion).
        requested: &'static str,
        /// The tensor's dtype.
        actual: DType,
    },
    /// A zero-copy view was asked for but the bytes cannot be borrowed as that type
    /// (misaligned, foreign byte order, or a conjugate/negative view that needs resolving).
    NotBorrowable {
        /// The element type asked for.
        requested: &'static str,
        /// Why a copy is needed instead.
        reason: &'static str,
    },
    /// The tensor has no data (a meta tensor).
    NoData {
        /// Why (e.g. a meta-device tensor).
        reason: &'static str,
    },
    /// The system refused an allocation the input asked for (within the limits).
    OutOfMemory {
        /// How many bytes were asked for.
        bytes: u64,
    },
    /// Streaming tensor bytes to a writer failed.
    Write {
        /// What the writer said.
        source: std::io::Error,
    },
}

/// Where an error was found. Each part is known only where it applies: a malformed zip has
/// none, an opcode a record and an offset, an invalid tensor usually all three.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Location {
    /// The record: a zip member (`archive/data.pkl`), a legacy section (`object`), or the name
    /// given to a standalone pickle.
    pub record: Option<String>,
    /// The byte offset of the opcode inside the record's pickle.
    pub offset: Option<u64>,
    /// The tensor's path in the object tree (`model.0.weight`).
    pub tensor: Option<String>,
}

impl Location {
    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        self.record.is_none() && self.offset.is_none() && self.tensor.is_none()
    }
}

/// `"model.0.weight" (archive/data.pkl at byte 52)`, `archive/data.pkl at byte 52`, ...
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = match (&self.record, self.offset) {
            (Some(record), Some(offset)) => Some(format!("{record} at byte {offset}")),
            (Some(record), None) => Some(record.clone()),
            (None, Some(offset)) => Some(format!("byte {offset}")),
            (None, None) => None,
        };
        match (&self.tensor, place) {
            (Some(tensor), Some(place)) => write!(f, "{tensor:?} ({place})"),
            (Some(tensor), None) => write!(f, "{tensor:?}"),
            (None, Some(place)) => f.write_str(&place),
            (None, None) => Ok(()),
        }
    }
}

impl Error {
    /// An error of `kind`, location unknown.
    #[cold]
    pub(crate) fn new(kind: ErrorKind) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                location: Location::default(),
            }),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// Where it went wrong.
    pub fn location(&self) -> &Location {
        &self.inner.location
    }

    /// Names the record and the opcode's offset, unless a record is named already (an error
    /// raised while a pickle runs is located at the opcode that raised it).
    #[cold]
    pub(crate) fn at(mut self, record: &str, offset: u64) -> Error {
        let location = &mut self.inner.location;
        if location.record.is_none() {
            location.record = Some(record.to_owned());
            location.offset = Some(offset);
        }
        self
    }

    /// Names the record, unless one is named already.
    #[cold]
    pub(crate) fn in_record(mut self, record: &str) -> Error {
        let location = &mut self.inner.location;
        if location.record.is_none() {
            location.record = Some(record.to_owned());
        }
        self
    }

    /// Names the tensor the error is about.
    #[cold]
    pub(crate) fn for_tensor(mut self, path: &str) -> Error {
        self.inner.location.tensor = Some(path.to_owned());
        self
    }

    /// A [`ErrorKind::LimitExceeded`] of `limit`, whose maximum was `max`.
    #[cold]
    pub(crate) fn limit(limit: Limit, max: u64) -> Error {
        Error::new(ErrorKind::LimitExceeded { limit, max, what: None })
    }

    /// A [`ErrorKind::LimitExceeded`] while making `what`.
    #[cold]
    pub(crate) fn limit_in(limit: Limit, max: u64, what: impl Into<String>) -> Error {
        Error::new(ErrorKind::LimitExceeded {
            limit,
            max,
            what: Some(what.into()),
        })
    }
}

impl From<ErrorKind> for Error {
    #[cold]
    fn from(kind: ErrorKind) -> Self {
        Error::new(kind)
    }
}

impl From<ZipAnomaly> for Error {
    #[cold]
    fn from(anomaly: ZipAnomaly) -> Self {
        Error::new(ErrorKind::Zip { anomaly })
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("location", &self.inner.location)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind as K;
        let at = &self.inner.location;
        match &self.inner.kind {
            K::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            K::UnrecognizedFormat { reason } => write!(f, "not a torch archive: {reason}"),
            K::Zip { anomaly } => write!(f, "invalid zip archive: {anomaly}"),
            K::Legacy { reason } => write!(f, "invalid legacy torch file: {reason}"),
            K::MissingRecord { name } => write!(f, "missing record {name}"),
            K::Pickle { reason } => write!(f, "malformed pickle in {at}: {reason}"),
            K::GlobalRefused { module, name } => write!(
                f,
                "refused global {module}.{name} in {at}: not in the allowlist (torch's weights_only set); open in \
                 lenient mode to keep it as an inert object"
            ),
            K::LimitExceeded { limit, max, what } => {
                let limit = limit.name();
                match (what, at.is_empty()) {
                    (Some(what), true) => write!(f, "limit exceeded in {what}: {limit} (at most {max})"),
                    (Some(what), false) => write!(f, "limit exceeded in {at} ({what}): {limit} (at most {max})"),
                    (None, _) => write!(f, "limit exceeded in {at}: {limit} (at most {max})"),
                }
            }
            K::InvalidStorage { key, reason } => write!(f, "invalid storage {key}: {reason}"),
            K::InvalidTensor { reason } if at.is_empty() => write!(f, "invalid tensor: {reason}"),
            K::InvalidTensor { reason } => write!(f, "invalid tensor at {at}: {reason}"),
            K::Unsupported { what } if at.is_empty() => write!(f, "unsupported: {what}"),
            K::Unsupported { what } => write!(f, "unsupported: {at}: {what}"),
            K::NoSuchTensor { name } => write!(f, "no tensor named {name:?}"),
            K::DTypeMismatch { requested, actual } => write!(f, "tensor has dtype {actual}, not {requested}"),
            K::NotBorrowable { requested, reason } => write!(f, "cannot borrow the tensor as {requested}: {reason}"),
            K::NoData { reason } => write!(f, "tensor has no data: {reason}"),
            K::OutOfMemory { bytes } => write!(f, "cannot allocate {bytes} bytes"),
            K::Write { source } => write!(f, "cannot write: {source}"),
        }
    }
}

/// No `source()`: the message already includes the cause's (see [`Error`]).
impl std::error::Error for Error {}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_costs_one_pointer() {
        // The error is boxed, so `Ok(())` is the null pointer and `Err` the box.
        assert_eq!(size_of::<std::result::Result<(), Error>>(), size_of::<usize>());
    }

    #[test]
    fn messages_say_where_in_one_line() {
        let pickle = Error::new(ErrorKind::Pickle {
            reason: "stack underflow".into(),
        })
        .at("archive/data.pkl", 7);
        assert_eq!(
            pickle.to_string(),
            "malformed pickle in archive/data.pkl at byte 7: stack underflow"
        );
        // The first location given wins: the opcode that raised the error.
        let again = pickle.at("other", 9);
        assert_eq!(again.location().offset, Some(7));
        let tensor = Error::new(ErrorKind::InvalidTensor { reason: "bad".into() })
            .at("a/data.pkl", 3)
            .for_tensor("model.w");
        assert_eq!(
            tensor.to_string(),
            "invalid tensor at \"model.w\" (a/data.pkl at byte 3): bad"
        );
        let names = Error::limit_in(Limit::MaxNameBytes, 4, "the names of the tensors");
        assert_eq!(
            names.to_string(),
            "limit exceeded in the names of the tensors: max_name_bytes (at most 4)"
        );
        let dims = Error::limit_in(Limit::MaxDims, 2, "size").in_record("a/data.pkl");
        assert_eq!(
            dims.to_string(),
            "limit exceeded in a/data.pkl (size): max_dims (at most 2)"
        );
    }
}

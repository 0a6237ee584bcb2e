//! The one error type of this crate.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong while opening an SB3 model zip or a VecNormalize file: an
/// [`ErrorKind`], boxed so that a `Result` costs one pointer.
///
/// Every kind names where the problem is: the file, or the member of the model zip (`data`,
/// `policy.pth`, `system_info.txt`, ...), and for `data` the key whose value is bad. Messages
/// are one line, suitable for a command-line tool.
///
/// A message is complete: it includes the message of the error that caused it (the reader's,
/// the JSON parser's, the file system's), so [`source`](std::error::Error::source) returns
/// `None` and a report that walks the chain says each cause once. The cause itself is a field
/// of the [`ErrorKind`].
///
/// ```
/// use pth_reader::Options;
/// let err = sb3_format::Model::from_bytes(&b"not a zip"[..], &Options::default()).unwrap_err();
/// assert!(matches!(err.kind(), sb3_format::ErrorKind::Archive { .. }));
/// assert!(err.to_string().contains("not an SB3 model zip"));
/// ```
pub struct Error {
    kind: Box<ErrorKind>,
}

impl Error {
    /// What went wrong, and where.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The member (or VecNormalize file) at fault, when there is one.
    pub fn member(&self) -> Option<&str> {
        match self.kind() {
            ErrorKind::Member { member, .. }
            | ErrorKind::Json { member, .. }
            | ErrorKind::Base64 { member, .. }
            | ErrorKind::Payload { member, .. }
            | ErrorKind::Invalid { member, .. }
            | ErrorKind::MissingMember { member } => Some(member),
            _ => None,
        }
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error { kind: Box::new(kind) }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.kind, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

/// No `source()`: the message already includes the cause's (see [`Error`]).
impl std::error::Error for Error {}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read or memory-mapped.
    #[error("{}", io_message(path, source))]
    Io {
        /// The file that was being opened.
        path: PathBuf,
        /// What the reader said.
        #[source]
        source: pth_reader::Error,
    },

    /// The bytes are not a zip archive, or the zip structure is unusable.
    #[error("not an SB3 model zip: {source}")]
    Archive {
        /// What the zip reader said.
        #[source]
        source: pth_reader::Error,
    },

    /// A member could not be read or decoded (a corrupt nested `.pth`, a bad deflate stream, a
    /// malformed pickle, a limit exceeded).
    #[error("{member}: {source}")]
    Member {
        /// The zip member (or the VecNormalize file).
        member: String,
        /// What the reader said.
        #[source]
        source: pth_reader::Error,
    },

    /// The `data` member is not valid JSON, or not a JSON object.
    #[error("{member}: invalid JSON: {reason}")]
    Json {
        /// The zip member (`data`).
        member: String,
        /// What the JSON parser said.
        reason: String,
    },

    /// A `:serialized:` value of `data` is not valid base64.
    #[error("{member}: key {key:?}: invalid base64 in :serialized:: {reason}")]
    Base64 {
        /// The zip member (`data`).
        member: String,
        /// The top-level key of `data` whose payload is bad.
        key: String,
        /// What the decoder said.
        reason: String,
    },

    /// A `:serialized:` payload of `data` is not a readable pickle.
    #[error("{member}: key {key:?}: {source}")]
    Payload {
        /// The zip member (`data`).
        member: String,
        /// The top-level key of `data` whose payload is bad.
        key: String,
        /// What the pickle machine said.
        #[source]
        source: pth_reader::Error,
    },

    /// A member decodes but does not hold what SB3 writes there (a space without bounds, an
    /// array whose bytes do not match its shape, a VecNormalize without statistics, ...).
    #[error("{member}: {reason}")]
    Invalid {
        /// The zip member (or the VecNormalize file), with the key when it is in `data`.
        member: String,
        /// What is wrong.
        reason: String,
    },

    /// A member that was asked for is not in the archive.
    #[error("no member {member:?} in the model zip")]
    MissingMember {
        /// The name that was asked for.
        member: String,
    },
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// "cannot read PATH: why", unless the reader's message names the file already.
fn io_message(path: &std::path::Path, source: &pth_reader::Error) -> String {
    let why = source.to_string();
    let path = path.display().to_string();
    if why.contains(&path) {
        why
    } else {
        format!("cannot read {path}: {why}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_costs_one_pointer() {
        // The error is boxed, so `Ok(())` is the null pointer and `Err` the box.
        assert_eq!(size_of::<std::result::Result<(), Error>>(), size_of::<usize>());
    }
}

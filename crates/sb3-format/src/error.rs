//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while opening an SB3 model zip or a VecNormalize file.
///
/// Every variant names where the problem is: the file, or the member of the model zip
/// (`data`, `policy.pth`, `system_info.txt`, ...), and for `data` the key whose value is bad.
/// Messages are one line, suitable for a command-line tool.
///
/// ```
/// let err = sb3_format::Model::from_bytes(b"not a zip").unwrap_err();
/// assert!(matches!(err, sb3_format::Error::Archive { .. }));
/// assert!(err.to_string().contains("not an SB3 model zip"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read or memory-mapped.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file that was being opened.
        path: PathBuf,
        /// What the reader said.
        #[source]
        source: Box<pth_reader::Error>,
    },

    /// The bytes are not a zip archive, or the zip structure is unusable.
    #[error("not an SB3 model zip: {source}")]
    Archive {
        /// What the zip reader said.
        #[source]
        source: Box<pth_reader::Error>,
    },

    /// A member could not be read or decoded (a corrupt nested `.pth`, a bad deflate stream, a
    /// malformed pickle, a limit exceeded).
    #[error("{member}: {source}")]
    Member {
        /// The zip member (or the VecNormalize file).
        member: String,
        /// What the reader said.
        #[source]
        source: Box<pth_reader::Error>,
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
        source: Box<pth_reader::Error>,
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

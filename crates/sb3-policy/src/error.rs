//! The one error type of this crate.

/// Everything that can go wrong while building or running a policy.
///
/// Building refuses anything it cannot run exactly as SB3 would — a custom features
/// extractor, an unknown activation, a space without a mapping, a state dict whose layout
/// does not match the policy class — with a message naming it, rather than ever returning a
/// silently different action. Messages are one line.
///
/// ```
/// let err = sb3_policy::Policy::open("no/such/model.zip").unwrap_err();
/// assert!(matches!(err, sb3_policy::Error::Format(_)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The model zip or the VecNormalize file could not be read.
    #[error(transparent)]
    Format(#[from] sb3_format::Error),

    /// The model uses something this crate does not run (named in the message): a policy
    /// class, a features extractor, an activation, a space, an LSTM option.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// The state dict does not hold the network the policy class implies (a missing or
    /// misshapen tensor, an unexpected layer), or a member the policy needs is missing.
    #[error("invalid model: {0}")]
    Invalid(String),

    /// The VecNormalize statistics do not fit the observation space.
    #[error("vecnormalize: {0}")]
    VecNormalize(String),

    /// An observation does not fit the observation space.
    #[error("observation: {0}")]
    Observation(String),

    /// Caller-provided scratch space, recurrent state or action buffer was made for another
    /// policy (see [`Policy::scratch`](crate::Policy::scratch)).
    #[error("buffers: {0}")]
    Buffers(String),
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An [`Error::Invalid`] from anything printable.
pub(crate) fn invalid(reason: impl Into<String>) -> Error {
    Error::Invalid(reason.into())
}

/// An [`Error::Unsupported`] from anything printable.
pub(crate) fn unsupported(reason: impl Into<String>) -> Error {
    Error::Unsupported(reason.into())
}

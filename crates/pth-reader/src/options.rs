//! [`Options`]: strict or lenient, and the resource limits.

#![forbid(unsafe_code)]

use crate::Limits;

/// How to open an archive or a pickle.
///
/// **Strict** (the default) accepts exactly the globals torch's own `weights_only=True` loader
/// accepts and refuses a file that names anything else, with an error naming the global.
/// **Lenient** keeps unknown globals as inert objects (nothing is ever imported or called, in
/// either mode) and still yields every tensor: use it for `torch.save(model)` pickles, SB3
/// payloads and other files you want to inspect.
///
/// ```
/// use pth_reader::{Limits, Options};
/// let strict = Options::default();
/// assert!(!strict.is_lenient());
/// let lenient = Options::default().lenient(true).limits(Limits { max_depth: 100, ..Limits::default() });
/// assert!(lenient.is_lenient());
/// assert_eq!(lenient.get_limits().max_depth, 100);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    lenient: bool,
    limits: Limits,
}

impl Options {
    /// Keep globals outside the allowlist as inert objects instead of refusing the file.
    pub fn lenient(mut self, lenient: bool) -> Self {
        self.lenient = lenient;
        self
    }

    /// Use these resource limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether unknown globals are kept rather than refused.
    pub fn is_lenient(&self) -> bool {
        self.lenient
    }

    /// The resource limits in force.
    pub fn get_limits(&self) -> &Limits {
        &self.limits
    }
}

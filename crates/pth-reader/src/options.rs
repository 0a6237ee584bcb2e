//! [`Options`]: strict or lenient, mapped or read, and the resource limits.

#![forbid(unsafe_code)]

use crate::Limits;

/// How to open an archive or a pickle. `Options::default()` is strict, memory-maps files (with
/// the `mmap` feature) and has the default [`Limits`].
///
/// **Strict** (the default) accepts exactly the globals torch's own `weights_only=True` loader
/// accepts and refuses a file that names anything else, with an error naming the global.
/// **Lenient** keeps unknown globals as inert objects (nothing is ever imported or called, in
/// either mode) and still yields every tensor: use it for `torch.save(model)` pickles, SB3
/// payloads and other files you want to inspect.
///
/// **Mapped** (the default with the `mmap` feature): a file is memory-mapped, so opening a
/// multi-gigabyte checkpoint costs what its headers cost; the file must then stay unchanged
/// while anything read from it is alive (see [`Checkpoint::open`](crate::Checkpoint::open)).
/// **Read** (`mmap(false)`, and always without the feature): the file is copied into memory,
/// which costs its size but leaves the checkpoint independent of the file.
///
/// ```
/// use pth_reader::{Limits, Options};
/// let strict = Options::default();
/// assert!(!strict.is_lenient());
/// let lenient = Options::default().lenient(true).mmap(false).with_limits(Limits::default().with_max_depth(100));
/// assert!(lenient.is_lenient() && !lenient.uses_mmap());
/// assert_eq!(lenient.limits().max_depth, 100);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    lenient: bool,
    mmap: bool,
    limits: Limits,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lenient: false,
            mmap: true,
            limits: Limits::default(),
        }
    }
}

impl Options {
    /// Keep globals outside the allowlist as inert objects instead of refusing the file.
    pub fn lenient(mut self, lenient: bool) -> Self {
        self.lenient = lenient;
        self
    }

    /// Memory-map files (`true`, the default) or read them into memory (`false`). Without the
    /// `mmap` feature files are always read.
    pub fn mmap(mut self, mmap: bool) -> Self {
        self.mmap = mmap;
        self
    }

    /// Use these resource limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether unknown globals are kept rather than refused.
    pub fn is_lenient(&self) -> bool {
        self.lenient
    }

    /// Whether files are memory-mapped (asked for, and the `mmap` feature is on).
    pub fn uses_mmap(&self) -> bool {
        self.mmap && cfg!(feature = "mmap")
    }

    /// The resource limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

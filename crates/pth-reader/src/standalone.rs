//! [`Pickle`]: a standalone pickle (an SB3 `:serialized:` payload, a `vecnormalize.pkl`).

#![forbid(unsafe_code)]

use crate::pickle::Tree;
use crate::torch::{load, Tables};
use crate::value::Value;
use crate::{ErrorKind, Options, Result, SharedBytes};

/// A decoded standalone pickle.
///
/// Python's builtins (`set`, `bytes`, `OrderedDict`, ...) are evaluated as Python would; other
/// calls are kept as inert objects (nothing is ever imported or called), and persistent ids
/// stay unresolved. Strict mode refuses globals outside torch's `weights_only` allowlist.
///
/// ```
/// use pth_reader::{Options, Pickle};
/// // pickle.dumps({"a": [1, 2.5, None]}, protocol=2)
/// let bytes = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01]q\x02(K\x01G@\x04\x00\x00\x00\x00\x00\x00Nes.";
/// let pickle = Pickle::parse(bytes, &Options::default())?;
/// let list = pickle.root().get("a").unwrap();
/// assert_eq!(list.index(1).and_then(|v| v.as_f64()), Some(2.5));
/// # Ok::<(), pth_reader::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Pickle {
    tree: Tree<'static>,
    protocol: u8,
}

impl Pickle {
    /// Decodes the pickle at the start of `bytes` (trailing bytes are ignored, as Python does).
    ///
    /// In strict mode only the torch allowlist's globals may appear; lenient mode accepts any.
    pub fn parse(bytes: &[u8], options: &Options) -> Result<Pickle> {
        Pickle::parse_named(bytes, "pickle", options)
    }

    /// Like [`parse`](Self::parse), naming the source in error messages (a file or member name).
    pub fn parse_named(bytes: &[u8], name: &str, options: &Options) -> Result<Pickle> {
        // The pickle is copied once (within `max_pickle_bytes`) so that the value keeps its
        // text and bytes without borrowing the caller's buffer.
        let max = usize::try_from(options.limits().max_pickle_bytes).unwrap_or(usize::MAX);
        let mut owned = Vec::new();
        let take = bytes.len().min(max.saturating_add(1));
        owned
            .try_reserve_exact(take)
            .map_err(|_| ErrorKind::OutOfMemory { bytes: take as u64 })?;
        owned.extend_from_slice(bytes.get(..take).unwrap_or(bytes));
        let (tree, protocol) = load::standalone(SharedBytes::from(owned), name, options)?;
        Ok(Pickle { tree, protocol })
    }

    /// The decoded value.
    pub fn root(&self) -> Value<'_> {
        Value::new(&self.tree, Tables::empty(), self.tree.root_id())
    }

    /// The protocol named by the `PROTO` opcode (0 when absent).
    pub fn protocol(&self) -> u8 {
        self.protocol
    }
}

//! The pickle machine: protocols 0 to 5 decoded symbolically, never executed.
//!
//! [`Pickle::parse`] decodes a standalone pickle (an SB3 `:serialized:` payload, a
//! `vecnormalize.pkl`) into a [`Value`] tree. Torch archives go through
//! [`Checkpoint`](crate::Checkpoint), which uses the same machine and adds tensors.

#![forbid(unsafe_code)]

mod builtins;
pub(crate) mod machine;
pub(crate) mod names;
pub(crate) mod opcode;
pub(crate) mod text;
pub(crate) mod tree;

pub use tree::{Construction, Tree, ValueId};

use crate::torch::allowlist::is_allowed_global;
use crate::value::{Tables, Value};
use crate::{Options, Result};

/// A decoded standalone pickle.
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
    tree: Tree,
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
        let (tree, protocol, _) = decode(bytes, name, options)?;
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

    /// The underlying arena.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }
}

/// Runs the machine and the builtin rewrites; returns the tree, protocol and bytes consumed.
pub(crate) fn decode(bytes: &[u8], record: &str, options: &Options) -> Result<(Tree, u8, usize)> {
    let filter: &dyn Fn(&str, &str) -> bool = &is_allowed_global;
    let config = machine::Config {
        record,
        limits: options.get_limits(),
        filter: if options.is_lenient() { None } else { Some(filter) },
    };
    let mut out = machine::unpickle(bytes, &config)?;
    builtins::normalize(&mut out.tree);
    Ok((out.tree, out.protocol, out.consumed))
}

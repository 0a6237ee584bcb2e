//! The pickle machine: protocols 0 to 5 decoded as Python would, never executed.
//!
//! The machine builds an arena [`Tree`] of plain values (numbers, text, containers with
//! Python's key equality) and asks a handler (`call.rs`) what globals, calls, `BUILD` and
//! persistent ids mean, at the moment each opcode runs. It knows nothing about torch: the torch
//! layer is a handler. [`Pickle`](crate::Pickle) is the public way to decode a standalone pickle.

#![forbid(unsafe_code)]

pub(crate) mod builtins;
pub(crate) mod call;
pub(crate) mod keys;
pub(crate) mod machine;
mod memo;
pub(crate) mod names;
pub(crate) mod opcode;
pub(crate) mod text;
pub(crate) mod tree;

pub(crate) use tree::Tree;
pub use tree::{Construction, ValueId};

//! The interface between the machine and the layer that gives calls a meaning.
//!
//! The machine knows Python's data model (lists, dicts, sets, the memo) and nothing about
//! torch. When a pickle names a global, calls something (`REDUCE`, `NEWOBJ`, `NEWOBJ_EX`,
//! `INST`, `OBJ`), sets an object's state (`BUILD`) or refers to out-of-band data (a persistent
//! id), the machine asks its [`Handler`] at that moment — with the arguments as they are then,
//! as Python would — and pushes whatever the handler made. The torch layer is such a handler.

use super::tree::{Construction, Tree, ValueId};
use crate::Error;

/// A call the pickle makes: `callable(*args, **kwargs)` or `callable.__new__(callable, *args)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call {
    pub(crate) callable: ValueId,
    pub(crate) args: ValueId,
    pub(crate) kwargs: Option<ValueId>,
    pub(crate) construction: Construction,
    /// Byte offset of the opcode in the pickle.
    pub(crate) offset: u64,
}

/// What a handler made of a call or a `BUILD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The call's result (for `BUILD`: the state was applied to the target).
    Value(ValueId),
    /// Not the handler's: the machine keeps the call (or the state) as inert data.
    Inert,
}

/// Why a call failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// What Python (or torch) would raise, in its words; the machine adds where.
    Python(String),
    /// An error that says where by itself (a limit, an invalid tensor, an unsupported feature).
    Error(Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Error(error)
    }
}

/// A Python-level failure.
pub(crate) fn raise<T>(reason: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Python(reason.into()))
}

/// Gives globals, calls, `BUILD` and persistent ids their meaning.
pub(crate) trait Handler<'data> {
    /// Whether the pickle may name `module.name` (after Python 2 → 3 renames).
    fn allows_global(&self, module: &str, name: &str) -> bool;

    /// The value a persistent id stands for.
    fn persistent_load(&mut self, tree: &mut Tree<'data>, pid: ValueId, offset: u64) -> Result<ValueId, Failure>;

    /// Evaluates a call now, with its arguments as they are now.
    fn call(&mut self, tree: &mut Tree<'data>, call: &Call) -> Result<Outcome, Failure>;

    /// Applies `state` to `target` (`BUILD`).
    fn build(
        &mut self,
        tree: &mut Tree<'data>,
        target: ValueId,
        state: ValueId,
        offset: u64,
    ) -> Result<Outcome, Failure>;
}

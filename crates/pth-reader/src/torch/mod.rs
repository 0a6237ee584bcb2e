//! The torch layer: torch's `weights_only` loader as a handler of the pickle machine, and the
//! one load pipeline.
//!
//! [`globals`] is the one table of allowed globals and what each is; [`handler`] evaluates
//! calls and `BUILD` when the pickle makes them ([`rebuild`], [`construct`], [`state`]);
//! [`storage`] resolves persistent ids as `torch.load` does; [`tables`] turns the result into
//! views once the container has found the storage bytes; [`load`] runs it all.

#![forbid(unsafe_code)]

mod construct;
mod convert;
pub(crate) mod globals;
mod handler;
pub(crate) mod load;
mod rebuild;
mod sparse;
mod spec;
mod state;
mod storage;
pub(crate) mod tables;

pub(crate) use tables::Tables;

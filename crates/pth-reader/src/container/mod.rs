//! Containers: telling the formats apart, and decoding each into a tree plus tables.

#![forbid(unsafe_code)]

pub(crate) mod legacy;
pub(crate) mod torch_zip;
pub(crate) mod zip;

use crate::pickle::Tree;
use crate::tensor::ByteOrder;
use crate::value::Tables;
use crate::{Error, Options, Result, SharedBytes};

/// The container format of a torch file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// `torch.save` since 1.6: a zip archive with `data.pkl` and `data/<key>` records.
    Zip,
    /// `torch.save(..., _use_new_zipfile_serialization=False)` and torch < 1.6: a pickle stream.
    Legacy,
    /// `torch.jit.save`: a zip archive with `constants.pkl` and `code/`.
    TorchScript,
    /// The tar format of torch < 0.4.
    Tar,
}

impl Format {
    /// `"zip"`, `"legacy"`, `"torchscript"` or `"tar"`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::Legacy => "legacy",
            Format::TorchScript => "torchscript",
            Format::Tar => "tar",
        }
    }
}

/// A decoded container: what a [`Checkpoint`](crate::Checkpoint) is built from.
pub(crate) struct Decoded<'data> {
    pub(crate) format: Format,
    pub(crate) byte_order: ByteOrder,
    pub(crate) tree: Tree,
    pub(crate) tables: Tables<'data>,
    pub(crate) protocol: u8,
    /// Record names (zip formats), without the root folder.
    pub(crate) records: Vec<String>,
    pub(crate) warnings: Vec<String>,
}

/// Sniffs the format as `torch.load` does and decodes it.
pub(crate) fn decode<'data>(bytes: SharedBytes<'data>, options: &Options) -> Result<Decoded<'data>> {
    let head = bytes.as_slice();
    if head.starts_with(b"PYTORCH1") {
        return Err(Error::UnrecognizedFormat {
            reason: "the PYTORCH1 preview format is not readable".into(),
        });
    }
    if head.starts_with(b"PK\x03\x04") {
        return torch_zip::decode(bytes, options);
    }
    if head.get(257..262) == Some(b"ustar") {
        return Err(Error::Unsupported {
            what: "the legacy tar format of torch < 0.4".into(),
        });
    }
    match head.first() {
        // A legacy stream opens with its magic number: PROTO (protocol 2+) or LONG (protocol 1).
        Some(0x80) | Some(b'L') => legacy::decode(bytes, options),
        Some(b) => Err(Error::UnrecognizedFormat {
            reason: format!("neither a zip archive nor a pickle stream (first byte 0x{b:02x})"),
        }),
        None => Err(Error::UnrecognizedFormat {
            reason: "the file is empty".into(),
        }),
    }
}

//! Containers: telling the formats apart, and locating the bytes in each.
//!
//! A container knows where the object pickle is, which byte order the storages use, what
//! records the archive holds, and how to find a storage's bytes by its key. It runs no torch
//! code: the torch layer's load pipeline runs the pickle and asks the container for storage bytes
//! afterwards, through [`StorageSource`]. The other pickles of a file (a legacy stream's header
//! and key list) are run with the handler the pipeline passes in, as the machine is.

#![forbid(unsafe_code)]

pub(crate) mod legacy;
pub(crate) mod torch_zip;
pub(crate) mod zip;

use std::fmt;
use std::sync::Arc;

use crate::pickle::call::Handler;
use crate::tensor::ByteOrder;
use crate::{Error, ErrorKind, Options, Result, SharedBytes};

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

/// A storage key as the pickle wrote it: Python compares `'5'` and `5` as different keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum StorageKey {
    /// Shared with the storage it names ([`StorageKey::shown`]): one allocation per key.
    Str(Arc<str>),
    Int(i64),
}

impl StorageKey {
    /// The key as text, as storages show it.
    pub(crate) fn shown(&self) -> Arc<str> {
        match self {
            StorageKey::Str(s) => Arc::clone(s),
            StorageKey::Int(i) => Arc::from(i.to_string()),
        }
    }
}

impl fmt::Display for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageKey::Str(s) => f.write_str(s),
            StorageKey::Int(i) => write!(f, "{i}"),
        }
    }
}

/// A storage the pickle created, whose bytes the container holds.
#[derive(Debug, Clone)]
pub(crate) struct RootRequest<'k> {
    pub(crate) key: &'k StorageKey,
    /// Bytes the pickle says it has.
    pub(crate) nbytes: u64,
    /// Bytes per element of its dtype (legacy files count elements).
    pub(crate) element_size: usize,
}

/// Finds storage bytes by key, once the object pickle has run.
pub(crate) trait StorageSource<'data> {
    /// The bytes of each root storage in `roots`, in order, each exactly `nbytes` long.
    /// `pickle_len` is how many bytes the object pickle took (legacy data follows it); `plain`
    /// runs any pickle the data section holds (a legacy key list).
    fn resolve(
        &mut self,
        pickle_len: usize,
        roots: &[RootRequest<'_>],
        plain: &mut dyn Handler<'data>,
    ) -> Result<Vec<SharedBytes<'data>>>;

    /// Anomalies met while finding them (a record found only by ignoring case).
    fn warnings(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// The records of a zip archive, in the archive's order: its entries inside the root folder
/// that are not directories, named relative to that folder. Kept as entry positions (the
/// archive has the names: a copy of each would be an allocation per storage).
#[derive(Debug, Default)]
pub(crate) struct RecordNames {
    /// The length of `<root>/`.
    prefix: usize,
    positions: Vec<usize>,
}

impl RecordNames {
    /// The records of `archive` among its `positions`, under a root folder of `root_len` bytes.
    pub(crate) fn new(root_len: usize, positions: Vec<usize>) -> RecordNames {
        RecordNames {
            prefix: root_len.saturating_add(1),
            positions,
        }
    }

    /// How many records there are.
    pub(crate) fn len(&self) -> usize {
        self.positions.len()
    }

    /// The record names, read from the archive they came from.
    pub(crate) fn iter<'a>(&'a self, archive: &'a zip::ZipArchive<'_>) -> impl Iterator<Item = &'a str> + 'a {
        self.positions
            .iter()
            .filter_map(move |&at| archive.entries().get(at)?.name().get(self.prefix..))
    }
}

/// What a container found.
pub(crate) struct Located<'data> {
    pub(crate) format: Format,
    pub(crate) byte_order: ByteOrder,
    /// The object pickle (and, in a legacy stream, everything after it).
    pub(crate) pickle: SharedBytes<'data>,
    /// Its name, for error messages (`archive/data.pkl`, `object`).
    pub(crate) pickle_name: String,
    /// The records (zip formats).
    pub(crate) records: RecordNames,
    pub(crate) warnings: Vec<String>,
    pub(crate) storages: Box<dyn StorageSource<'data> + 'data>,
    /// The zip archive (zip formats), whose CRCs can be checked on demand.
    pub(crate) archive: Option<std::sync::Arc<zip::ZipArchive<'data>>>,
}

/// Sniffs the format as `torch.load` does and locates its parts; `plain` runs the pickles
/// before the object pickle (a legacy stream's header).
pub(crate) fn locate<'data>(
    bytes: SharedBytes<'data>,
    options: &Options,
    plain: &mut dyn Handler<'data>,
) -> Result<Located<'data>> {
    let head = bytes.as_slice();
    if head.starts_with(b"PYTORCH1") {
        return Err(Error::from(ErrorKind::UnrecognizedFormat {
            reason: "the PYTORCH1 preview format is not readable".into(),
        }));
    }
    if head.starts_with(b"PK\x03\x04") {
        return torch_zip::locate(bytes, options);
    }
    if head.get(257..262) == Some(b"ustar") {
        return Err(Error::from(ErrorKind::Unsupported {
            what: "the legacy tar format of torch < 0.4".into(),
        }));
    }
    match head.first() {
        // A legacy stream opens with its magic number: PROTO (protocol 2+) or LONG (protocol 1).
        Some(0x80) | Some(b'L') => legacy::locate(bytes, options, plain),
        Some(b) => Err(Error::from(ErrorKind::UnrecognizedFormat {
            reason: format!("neither a zip archive nor a pickle stream (first byte 0x{b:02x})"),
        })),
        None => Err(Error::from(ErrorKind::UnrecognizedFormat {
            reason: "the file is empty".into(),
        })),
    }
}

//! Writing `torch.save` files: what torch 2.x writes, record for record, from a [`Builder`]'s
//! tree or a whole [`Checkpoint`](crate::Checkpoint).
//!
//! The reading side's definitions are the writing side's: each zip record is written by the
//! `write` beside its `read` (`container/zip/records.rs`), each pickle opcode through the
//! opcode table (`pickle/opcode.rs`), and the values written are the reader's own tree and
//! tensor views, so a file written here reads back as the tree it was written from.
//!
//! - **The zip archive** (the default): `<root>/data.pkl` (pickle protocol 2, as Python's
//!   pickler writes it: memo, batches, `collections.OrderedDict`, `_rebuild_tensor_v2`, and
//!   `_rebuild_tensor_v3` with an `UntypedStorage` for the dtypes torch stores that way),
//!   `.format_version`, `.storage_alignment`, `byteorder`, `data/<key>` per storage (shared by
//!   all the views of it), `version`, `.data/serialization_id`; every record's data aligned to
//!   64 bytes through torch's `FB` extra field, data descriptors after the data, zip64 fields
//!   where sizes or offsets need them and zip64 end records always, as miniz writes them for
//!   torch.
//! - **The legacy stream** ([`SaveOptions::legacy`]), for consumers older than torch 1.6.
//!
//! Storages are written little-endian (a big-endian checkpoint's are swapped while they are
//! written; [`SaveOptions::byte_order`] writes big-endian archives, as torch on s390x does)
//! straight from their bytes: a 5 GB archive never sits in memory, only its pickle
//! and its central directory do. Writing needs only [`Write`]: torch's layout puts sizes and
//! CRCs after the data, so nothing is sought back to.
//!
//! ```
//! # fn main() -> Result<(), pth_reader::Error> {
//! use pth_reader::{write::SaveOptions, Checkpoint, Options};
//! let ckpt = Checkpoint::open(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint_legacy.pth"), &Options::default())?;
//! let mut resaved = Vec::new();
//! ckpt.save_to(&mut resaved, &SaveOptions::default())?;      // legacy → a current archive
//! let again = Checkpoint::from_bytes(&resaved[..], &Options::default())?;
//! assert_eq!(again.format(), pth_reader::Format::Zip);
//! for (name, tensor) in ckpt.tensors() {
//!     assert_eq!(again.tensor(name)?.to_le_bytes()?, tensor.to_le_bytes()?);
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod archive;
#[cfg(feature = "ndarray")]
mod array;
mod builder;
mod legacy;
mod options;
mod pickler;
mod resave;
mod storages;

use std::io::{BufWriter, Write};
use std::path::Path;

pub use builder::{Builder, StorageId};
pub use options::{SaveOptions, Zip64};

use crate::pickle::tree::{Tree, ValueId};
use crate::tensor::ByteOrder;
use crate::torch::Tables;
use crate::{Error, ErrorKind, Result};

/// Output buffer for files: headers and small records are gathered, storages pass through.
const FILE_BUFFER: usize = 1 << 20;

/// What to write: a tree's root and the tables its tensor nodes index.
struct Source<'a, 'data> {
    tree: &'a Tree<'data>,
    tables: &'a Tables<'data>,
    root: ValueId,
    /// The byte order of bare storages' bytes (tensors know their own).
    byte_order: ByteOrder,
}

impl<'a, 'data> Source<'a, 'data> {
    /// The object pickle, in the form `options` asks for: the tree is walked before anything is
    /// written, so a value that cannot be saved is refused before the output is touched.
    fn pickle(&self, options: &SaveOptions) -> Result<pickler::Pickled<'a, 'data>> {
        let (form, target) = if options.is_legacy() {
            (pickler::PidForm::Legacy, ByteOrder::Little)
        } else {
            (pickler::PidForm::Zip, options.storage_byte_order())
        };
        let orders = pickler::Orders {
            bare: self.byte_order,
            target,
        };
        pickler::pickle(self.tree, self.tables, self.root, form, orders)
    }

    /// Writes the file to `out`, its zip records in folder `root_name`.
    fn write_to<W: Write>(&self, out: W, root_name: &str, options: &SaveOptions) -> Result<W> {
        let pickled = self.pickle(options)?;
        write_pickled(out, root_name, &pickled, options)
    }

    /// Creates the file at `path` and writes it; a file left incomplete by an error is removed.
    fn write_file(&self, path: &Path, options: &SaveOptions) -> Result<()> {
        let root_name = options.root_for(Some(path))?;
        let pickled = self.pickle(options)?;
        let io = |source| {
            Error::from(ErrorKind::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        let file = std::fs::File::create(path).map_err(io)?;
        let written = write_pickled(
            BufWriter::with_capacity(FILE_BUFFER, file),
            &root_name,
            &pickled,
            options,
        )
        .and_then(|out| {
            out.into_inner()
                .map(drop)
                .map_err(|e| Error::from(ErrorKind::Write { source: e.into_error() }))
        });
        if written.is_err() {
            let _ = std::fs::remove_file(path);
        }
        written
    }
}

fn write_pickled<W: Write>(
    out: W,
    root_name: &str,
    pickled: &pickler::Pickled<'_, '_>,
    options: &SaveOptions,
) -> Result<W> {
    if options.is_legacy() {
        legacy::write_legacy(out, pickled, options.storage_byte_order())
    } else {
        archive::write_zip(
            out,
            root_name,
            pickled,
            options.storage_byte_order(),
            options.force_zip64(),
        )
    }
}

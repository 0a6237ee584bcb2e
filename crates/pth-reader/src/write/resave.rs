//! Re-saving a whole [`Checkpoint`]: any file this crate reads, written as torch 2.x writes.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::Path;

use super::{SaveOptions, Source};
use crate::{Checkpoint, Result};

impl<'data> Checkpoint<'data> {
    /// Writes the whole object tree to `path` as `torch.save(obj, path)` would (see
    /// [`SaveOptions`]): a legacy, big-endian or deflated file becomes a current little-endian
    /// archive (or a legacy stream, with [`SaveOptions::legacy`]) whose tree, tensors and
    /// shared storages read back as this one's. Storages stream from this checkpoint's bytes.
    ///
    /// Refused with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported): wrapper tensor
    /// subclasses, unresolved persistent ids, and in the legacy format the dtypes torch keeps in
    /// untyped storages (float8, uint16/32/64, complex32, bits: torch writes those legacy files
    /// but cannot read them back); with
    /// [`ErrorKind::InvalidStorage`](crate::ErrorKind::InvalidStorage), one storage viewed as two
    /// types (torch refuses to save those too).
    ///
    /// ```
    /// # fn main() -> Result<(), pth_reader::Error> {
    /// use pth_reader::{write::SaveOptions, Checkpoint, Options};
    /// let legacy = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint_legacy.pth");
    /// let out = std::env::temp_dir().join(format!("resaved-{}.pt", std::process::id()));
    /// let old = Checkpoint::open(legacy, &Options::default())?;
    /// old.save(&out, &SaveOptions::default())?;
    /// let new = Checkpoint::open(&out, &Options::default())?;
    /// assert_eq!(new.format(), pth_reader::Format::Zip);
    /// assert_eq!(new.tensor("model.0.weight")?.to_f64_vec()?, old.tensor("model.0.weight")?.to_f64_vec()?);
    /// # std::fs::remove_file(&out).ok();
    /// # Ok(()) }
    /// ```
    pub fn save(&self, path: impl AsRef<Path>, options: &SaveOptions) -> Result<()> {
        self.source().write_file(path.as_ref(), options)
    }

    /// Writes the whole object tree to `out` as `torch.save(obj, buffer)` would; returns `out`.
    /// See [`save`](Self::save).
    pub fn save_to<W: Write>(&self, out: W, options: &SaveOptions) -> Result<W> {
        self.source().write_to(out, &options.root_for(None)?, options)
    }

    fn source(&self) -> Source<'_, 'data> {
        let (tree, tables) = self.parts();
        Source {
            tree,
            tables,
            root: tree.root_id(),
            byte_order: self.byte_order(),
        }
    }
}

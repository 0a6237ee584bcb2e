//! [`SaveOptions`]: the format to write and how its archive is named.

#![forbid(unsafe_code)]

use std::path::Path;

use crate::container::zip::write::ForceZip64;
use crate::tensor::ByteOrder;
use crate::{Error, ErrorKind, Result};

/// How to write a `torch.save` file.
///
/// The default is what `torch.save(obj, path)` writes in torch 2.x: a zip archive whose records
/// lie in one folder named after the file (`model.pt` → `model/`; `archive/` when writing to a
/// stream or when the name is not ASCII, as torch does), storages aligned to 64 bytes, zip64
/// fields only where a size or an offset needs them.
///
/// ```
/// use pth_reader::write::{SaveOptions, Zip64};
/// let legacy = SaveOptions::default().legacy(true);
/// assert!(legacy.is_legacy());
/// let named = SaveOptions::default().root("weights").zip64(Zip64::Always);
/// assert_eq!(named.root_name(), Some("weights"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaveOptions {
    legacy: bool,
    root: Option<String>,
    zip64: Zip64,
    byte_order: Option<ByteOrder>,
}

/// Which records get zip64 fields.
///
/// torch writes them only where needed: the sizes of a record of 4 GiB − 1 bytes or more, the
/// offset of a record whose header starts that far into the file (with 24-byte data
/// descriptors for both). The other settings write those exact fields for every record of a
/// small file, to check that readers follow them without writing 4 GiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Zip64 {
    /// Where a size or an offset needs them, as torch writes them.
    #[default]
    AsNeeded,
    /// Every record as torch writes a record of 4 GiB or more.
    Sizes,
    /// Every record as torch writes a record that starts past 4 GiB.
    Offsets,
    /// Both.
    Always,
}

impl SaveOptions {
    /// Write the legacy (pre-1.6) pickle stream of `torch.save(…,
    /// _use_new_zipfile_serialization=False)` instead of a zip archive.
    pub fn legacy(mut self, legacy: bool) -> Self {
        self.legacy = legacy;
        self
    }

    /// Name the archive's folder `name` instead of after the file.
    pub fn root(mut self, name: impl Into<String>) -> Self {
        self.root = Some(name.into());
        self
    }

    /// Which records get zip64 fields.
    pub fn zip64(mut self, zip64: Zip64) -> Self {
        self.zip64 = zip64;
        self
    }

    /// Write the storages in `order` (default little-endian): `Big` writes what torch writes on
    /// a big-endian machine (s390x): a zip archive whose `byteorder` record says `big`, or a
    /// legacy stream whose `sys_info` says so (its storages are little-endian in any case). A
    /// big-endian archive refuses the dtypes torch keeps in untyped storages (float8,
    /// uint16/32/64, complex32, bits): torch does not swap those as it loads, so it would read
    /// other values than were written.
    pub fn byte_order(mut self, order: ByteOrder) -> Self {
        self.byte_order = Some(order);
        self
    }

    /// The byte order storages are written in.
    pub fn storage_byte_order(&self) -> ByteOrder {
        self.byte_order.unwrap_or(ByteOrder::Little)
    }

    /// Whether the legacy stream is written.
    pub fn is_legacy(&self) -> bool {
        self.legacy
    }

    /// The folder name set with [`root`](Self::root), if any.
    pub fn root_name(&self) -> Option<&str> {
        self.root.as_deref()
    }

    /// Which records get zip64 fields.
    pub fn zip64_fields(&self) -> Zip64 {
        self.zip64
    }

    pub(crate) fn force_zip64(&self) -> ForceZip64 {
        ForceZip64 {
            sizes: matches!(self.zip64, Zip64::Sizes | Zip64::Always),
            offsets: matches!(self.zip64, Zip64::Offsets | Zip64::Always),
        }
    }

    /// The folder name for a file written to `path` (`None`: a stream): the one set, else
    /// torch's (`basename` without its extension, when ASCII), else `archive`.
    pub(crate) fn root_for(&self, path: Option<&Path>) -> Result<String> {
        let name = match (&self.root, path) {
            (Some(root), _) => root.clone(),
            (None, Some(path)) => torch_basename(path).unwrap_or_else(|| "archive".to_owned()),
            (None, None) => "archive".to_owned(),
        };
        let bad = name.is_empty()
            || name.len() > 4096
            || name.contains(['/', '\\', '\0', '\n'])
            || name == "."
            || name == "..";
        if bad {
            return Err(Error::from(ErrorKind::Unsupported {
                what: format!("{name:?} as an archive folder name"),
            }));
        }
        Ok(name)
    }
}

/// `PyTorchStreamWriter`'s `basename`: after the last `/` or `\`, before the last `.`; `None`
/// when that is empty or the path is not ASCII (torch then writes through a stream, `archive`).
fn torch_basename(path: &Path) -> Option<String> {
    let text = path.to_str().filter(|t| t.is_ascii())?;
    let file = text.rsplit(['/', '\\']).next().unwrap_or(text);
    let stem = match file.rfind('.') {
        Some(dot) => file.get(..dot).unwrap_or(file),
        None => file,
    };
    (!stem.is_empty()).then(|| stem.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_named_as_torch_names_them() {
        let o = SaveOptions::default();
        assert_eq!(o.root_for(Some(Path::new("ckpt/model.pt"))).unwrap(), "model");
        assert_eq!(o.root_for(Some(Path::new("a.b.pth"))).unwrap(), "a.b");
        assert_eq!(o.root_for(Some(Path::new("noext"))).unwrap(), "noext");
        assert_eq!(o.root_for(Some(Path::new("modèle.pt"))).unwrap(), "archive");
        assert_eq!(o.root_for(Some(Path::new(".pt"))).unwrap(), "archive");
        assert_eq!(o.root_for(None).unwrap(), "archive");
        assert!(o.clone().root("a/b").root_for(None).is_err());
        assert_eq!(o.root("w").root_for(Some(Path::new("x.pt"))).unwrap(), "w");
    }
}

//! JSON shared by the commands: tensor entries in the schema of `../shared/corpus/README.md`
//! (object trees are pth-reader's one rendering, `pth_reader::json`).

use std::io::{self, Write};

pub use pth_reader::json::float;
use pth_reader::TensorView;
use sha2::{Digest, Sha256};

/// sha256 of a tensor's logical elements in C order as little-endian bytes, streamed (an
/// expanded tensor is hashed without being materialised).
pub fn sha256(t: &TensorView<'_>) -> anyhow::Result<String> {
    let mut hasher = Sha256::new();
    t.write_le_bytes(&mut HashWriter(&mut hasher))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Feeds written bytes to a digest.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One tensor entry: `name`, `dtype`, `shape`, `stride`, `storage_offset`, `storage`, and the
/// `sha256` when asked for (tensors without data, meta tensors, have none). Serialised straight
/// from the view's fields (no intermediate JSON tree: `pth ls --json` of 20,000 tensors).
#[derive(serde::Serialize)]
pub struct TensorEntry<'a> {
    name: &'a str,
    dtype: &'static str,
    shape: &'a [usize],
    stride: &'a [usize],
    storage_offset: usize,
    storage: Option<&'a str>,
    nbytes: usize,
    contiguous: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

/// The entry of tensor `t` named `name`, hashed when `with_sha256` says so.
pub fn tensor_entry<'a>(name: &'a str, t: &'a TensorView<'_>, with_sha256: bool) -> anyhow::Result<TensorEntry<'a>> {
    Ok(TensorEntry {
        name,
        dtype: t.dtype().name(),
        shape: t.shape(),
        stride: t.stride(),
        storage_offset: t.storage_offset(),
        storage: t.storage_key(),
        nbytes: t.nbytes(),
        contiguous: t.is_contiguous(),
        sha256: if with_sha256 && t.has_data() {
            Some(sha256(t)?)
        } else {
            None
        },
    })
}

/// Writes a JSON value.
pub fn put<T: serde::Serialize + ?Sized>(w: &mut dyn Write, value: &T) -> io::Result<()> {
    serde_json::to_writer(w, value).map_err(io::Error::other)
}

//! Memory-mapping files: the only module of this crate that uses `unsafe`.

#![allow(unsafe_code)]

use std::fs::File;
use std::path::Path;

use crate::{Error, Result, SharedBytes};

/// A read-only memory map of a whole file.
///
/// Mapping lets a checkpoint of many gigabytes be opened in microseconds: the operating system
/// pages in only the tensor bytes that are actually read.
///
/// ```no_run
/// let map = pth_reader::MappedFile::open("model.pt")?;
/// let ckpt = pth_reader::Checkpoint::from_bytes(map.bytes())?;
/// # Ok::<(), pth_reader::Error>(())
/// ```
#[derive(Debug)]
pub struct MappedFile {
    map: memmap2::Mmap,
}

impl MappedFile {
    /// Maps the file at `path` read-only.
    pub fn open(path: impl AsRef<Path>) -> Result<MappedFile> {
        let path = path.as_ref();
        let io_err = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        // SAFETY: a mapping is only sound while no one modifies or truncates the file for as long
        // as the map lives; the operating system cannot enforce that for shared files. We map
        // read-only and privately, never hand out `&mut`, and document on `Checkpoint::open`
        // that the file must not be modified while it is open: the same contract as every
        // mmap-based reader (torch's `mmap=True`, safetensors). Truncation by another process
        // would raise SIGBUS on access rather than let us read out of bounds.
        let map = unsafe { memmap2::MmapOptions::new().map(&file) }.map_err(io_err)?;
        Ok(MappedFile { map })
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Turns the map into shareable bytes that keep it alive.
    pub fn into_shared(self) -> SharedBytes<'static> {
        SharedBytes::from_owner(self.map)
    }
}

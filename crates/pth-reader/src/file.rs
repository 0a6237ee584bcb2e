//! Opening files: memory-mapped or read into memory, as [`Options`] say.

#![forbid(unsafe_code)]

use std::io::Read;
use std::path::Path;

use crate::{Error, ErrorKind, Options, Result, SharedBytes};

/// The bytes of an opened file, and the map to advise once the file is indexed.
pub(crate) struct OpenedFile {
    pub(crate) bytes: SharedBytes<'static>,
    #[cfg(feature = "mmap")]
    map: Option<crate::mmap::MappedFile>,
}

impl OpenedFile {
    /// Opens `path` as `options` say: mapped with the kernel's read-ahead off (only headers
    /// are touched while indexing), or read into memory.
    pub(crate) fn open(path: &Path, options: &Options) -> Result<OpenedFile> {
        #[cfg(feature = "mmap")]
        if options.uses_mmap() {
            let map = crate::mmap::MappedFile::open(path)?;
            return Ok(OpenedFile {
                bytes: map.shared(),
                map: Some(map),
            });
        }
        let _ = options;
        Ok(OpenedFile {
            bytes: SharedBytes::from(read_file(path)?),
            #[cfg(feature = "mmap")]
            map: None,
        })
    }

    /// A handle to release the pages of the map (nothing for a file read into memory).
    pub(crate) fn pages(&self) -> Pages {
        Pages {
            #[cfg(feature = "mmap")]
            map: self.map.clone(),
        }
    }

    /// Indexing is over: tensor bytes are read in bulk from now on.
    pub(crate) fn indexed(&self) {
        #[cfg(feature = "mmap")]
        if let Some(map) = &self.map {
            map.restore_readahead();
        }
    }
}

/// The pages of a mapped file, to drop from resident memory once read
/// ([`Checkpoint::release_pages`](crate::Checkpoint::release_pages)); empty for bytes in memory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pages {
    #[cfg(feature = "mmap")]
    map: Option<crate::mmap::MappedFile>,
}

impl Pages {
    /// Drops the mapped pages read so far from this process's resident memory.
    pub(crate) fn release(&self) {
        #[cfg(feature = "mmap")]
        if let Some(map) = &self.map {
            map.release_pages();
        }
    }
}

impl SharedBytes<'static> {
    /// The bytes of the file at `path`, memory-mapped or read into memory as `options` say
    /// (see [`Options::mmap`]). A mapped file must not be modified or truncated while the
    /// bytes, or anything made from them, are alive (the contract of
    /// [`Checkpoint::open`](crate::Checkpoint::open)).
    ///
    /// ```
    /// # fn main() -> Result<(), pth_reader::Error> {
    /// use pth_reader::{Options, SharedBytes};
    /// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint.pth");
    /// let mapped = SharedBytes::open(path, &Options::default())?;
    /// let read = SharedBytes::open(path, &Options::default().mmap(false))?;
    /// assert_eq!(mapped.as_slice(), read.as_slice());
    /// # Ok(()) }
    /// ```
    pub fn open(path: impl AsRef<Path>, options: &Options) -> Result<SharedBytes<'static>> {
        let file = OpenedFile::open(path.as_ref(), options)?;
        file.indexed();
        Ok(file.bytes)
    }
}

/// The whole file at `path`, read into memory with an allocation that may fail.
fn read_file(path: &Path) -> Result<Vec<u8>> {
    let io = |source| {
        Error::from(ErrorKind::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let out_of_memory = || Error::from(ErrorKind::OutOfMemory { bytes: len });
    let reserve = usize::try_from(len).map_err(|_| out_of_memory())?;
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(reserve).map_err(|_| out_of_memory())?;
    // The file may have grown since: read only what was reserved for.
    file.take(len).read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

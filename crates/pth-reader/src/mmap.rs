//! Memory-mapping files: the only module of this crate that uses `unsafe`.

#![allow(unsafe_code)]

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use crate::{Error, ErrorKind, Result, SharedBytes};

/// A read-only memory map of a whole file.
///
/// The mapping is shared with the file: the file must not be written to or truncated while
/// the map (or anything made from it) is alive — a truncation kills the process with `SIGBUS`
/// when the lost pages are read. See [`Checkpoint::open`](crate::Checkpoint::open), and
/// [`Options::mmap`](crate::Options::mmap) for a copy in memory instead.
///
/// Mapping lets a checkpoint of many gigabytes be opened in milliseconds: the operating system
/// reads only the pages that are touched. While an archive is being indexed only its headers
/// are touched, scattered through the file, so the map starts with read-ahead turned off
/// (otherwise the kernel would read hundreds of kilobytes of tensor data around every header);
/// [`restore_readahead`](Self::restore_readahead) turns it back on for reading tensors.
#[derive(Debug, Clone)]
pub(crate) struct MappedFile {
    map: Arc<memmap2::Mmap>,
}

/// Lets [`SharedBytes`] keep a map alive.
struct Owner(Arc<memmap2::Mmap>);

impl AsRef<[u8]> for Owner {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl MappedFile {
    /// Maps the file at `path` read-only, with read-ahead off (see the type's documentation).
    pub(crate) fn open(path: impl AsRef<Path>) -> Result<MappedFile> {
        let path = path.as_ref();
        let io_err = |source| {
            Error::from(ErrorKind::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        let file = File::open(path).map_err(io_err)?;
        // SAFETY: `Mmap::map` makes a read-only *shared* mapping (`MAP_SHARED`): the bytes we
        // hand out as `&[u8]` are the file's pages, so they are only what Rust assumes (memory
        // that does not change while borrowed) as long as no one writes to or truncates the file
        // while the map lives. The operating system cannot enforce that. A write by another
        // process changes the bytes under live references (tensor values change; no memory
        // outside the map is ever read, as every offset was checked against the map's length
        // at open); a truncation makes reads of the lost pages raise SIGBUS, which kills the
        // process. We never write through the map. The contract is documented on
        // `Checkpoint::open` and `Options::mmap`, as every mmap-based reader documents it
        // (safetensors, `torch.load(mmap=True)`); `Options::mmap(false)` copies the file instead.
        let map = unsafe { memmap2::MmapOptions::new().map(&file) }.map_err(io_err)?;
        advise(&map, Readahead::Off);
        Ok(MappedFile { map: Arc::new(map) })
    }

    /// Shareable bytes that keep the map alive (the map itself stays usable).
    pub(crate) fn shared(&self) -> SharedBytes<'static> {
        SharedBytes::from_owner(Owner(Arc::clone(&self.map)))
    }

    /// Drops the map's pages from this process's resident memory (`MADV_DONTNEED`): they stay
    /// in the page cache and are mapped again, with the same bytes, when next read. Advisory:
    /// errors are ignored.
    pub(crate) fn release_pages(&self) {
        // SAFETY: `MADV_DONTNEED` is unsafe in general because on private or anonymous mappings
        // it discards their contents (later reads see zeros or the file's original bytes). This
        // map is a read-only *shared* file mapping that is never written through: dropping its
        // pages only removes page-table entries, and the next read faults the same file pages
        // back in. References into the map stay valid and see the same bytes (under the mapping
        // contract of `open`: the file is not modified while mapped).
        #[cfg(unix)]
        let _ = unsafe { self.map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
    }

    /// Turns the kernel's read-ahead back on, for reading tensors in bulk. Advisory: errors
    /// are ignored.
    pub(crate) fn restore_readahead(&self) {
        advise(&self.map, Readahead::Normal);
    }
}

enum Readahead {
    Off,
    Normal,
}

#[cfg(unix)]
fn advise(map: &memmap2::Mmap, readahead: Readahead) {
    let advice = match readahead {
        Readahead::Off => memmap2::Advice::Random,
        Readahead::Normal => memmap2::Advice::Normal,
    };
    // Advice only changes performance; a kernel that refuses it reads as it would anyway.
    let _ = map.advise(advice);
}

#[cfg(not(unix))]
fn advise(_: &memmap2::Mmap, _: Readahead) {}

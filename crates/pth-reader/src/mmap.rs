//! Memory-mapping files: the only module of this crate that uses `unsafe`.

#![allow(unsafe_code)]

use std::fs::File;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use crate::bytes::Backing;
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
    /// The file mapped, for positioned reads of a few bytes (see [`Backing::read_at`]).
    file: Arc<File>,
}

/// Lets [`SharedBytes`] keep a map alive, release its pages, and read bytes without faulting
/// them in.
struct Owner {
    map: Arc<memmap2::Mmap>,
    file: Arc<File>,
}

impl Backing for Owner {
    fn bytes(&self) -> &[u8] {
        &self.map
    }

    fn release(&self, range: Range<usize>) {
        dont_need(&self.map, range);
    }

    fn read_at(&self, offset: usize, out: &mut [u8]) -> Option<()> {
        // Only what the map covers: the bytes are the map's, read another way.
        let end = offset.checked_add(out.len()).filter(|&end| end <= self.map.len())?;
        #[cfg(unix)]
        {
            let _ = end;
            std::os::unix::fs::FileExt::read_exact_at(&*self.file, out, offset as u64).ok()
        }
        #[cfg(not(unix))]
        {
            out.copy_from_slice(self.map.get(offset..end)?);
            Some(())
        }
    }

    fn is_mapped(&self) -> bool {
        true
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
        Ok(MappedFile {
            map: Arc::new(map),
            file: Arc::new(file),
        })
    }

    /// Shareable bytes that keep the map alive (the map itself stays usable).
    pub(crate) fn shared(&self) -> SharedBytes<'static> {
        SharedBytes::from_backing(Owner {
            map: Arc::clone(&self.map),
            file: Arc::clone(&self.file),
        })
    }

    /// Drops the map's pages from this process's resident memory (`MADV_DONTNEED`): they stay
    /// in the page cache and are mapped again, with the same bytes, when next read. Advisory:
    /// errors are ignored.
    pub(crate) fn release_pages(&self) {
        dont_need(&self.map, 0..self.map.len());
    }

    /// Turns the kernel's read-ahead back on, for reading tensors in bulk. Advisory: errors
    /// are ignored.
    pub(crate) fn restore_readahead(&self) {
        advise(&self.map, Readahead::Normal);
    }
}

/// `MADV_DONTNEED` over the pages holding `range` of the map (its start rounded down to a page).
/// Advisory: errors are ignored.
fn dont_need(map: &memmap2::Mmap, range: Range<usize>) {
    let Some(len) = range.end.checked_sub(range.start).filter(|_| range.end <= map.len()) else {
        return;
    };
    // SAFETY: `MADV_DONTNEED` is unsafe in general because on private or anonymous mappings
    // it discards their contents (later reads see zeros or the file's original bytes). This
    // map is a read-only *shared* file mapping that is never written through: dropping its
    // pages only removes page-table entries, and the next read faults the same file pages
    // back in. References into the map stay valid and see the same bytes (under the mapping
    // contract of `open`: the file is not modified while mapped). The range is inside the map
    // (checked above); memmap2 rounds its start down to the page, which is still the map's.
    #[cfg(unix)]
    let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, range.start, len) };
    #[cfg(not(unix))]
    let _ = (map, len);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Released pages are read again with the same bytes, through every view of the map.
    #[test]
    fn released_ranges_stay_readable() {
        let path = std::env::temp_dir().join(format!("pth-reader-mmap-{}.bin", std::process::id()));
        let content: Vec<u8> = (0..3 * 4096 + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let map = MappedFile::open(&path).unwrap();
        let bytes = map.shared();
        let view = bytes.slice(5000..9000).unwrap();
        assert_eq!(view.as_slice(), &content[5000..9000]);
        view.release_pages(0..4000);
        bytes.release_pages(100..usize::MAX); // clamped to the bytes
        #[allow(clippy::reversed_empty_ranges)]
        bytes.release_pages(9..3); // a reversed range: nothing
        assert_eq!(view.as_slice(), &content[5000..9000]);
        map.release_pages();
        assert_eq!(bytes.as_slice(), &content[..]);
        let _ = std::fs::remove_file(&path);
    }
}

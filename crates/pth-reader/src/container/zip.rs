//! Zip archives, read one way only: the central directory is the authority.
//!
//! The `zip` crate parses the central directory and the local headers; on top of it this module
//! refuses everything that would let two readers see different archives (duplicate names,
//! overlapping entries, data outside the file, path tricks) and hands out stored entries as
//! sub-slices of the input, without copying. Deflated entries are inflated within a byte cap.

use std::io::Read;

use zip::CompressionMethod;

use crate::{Error, Result, SharedBytes};

/// How an entry's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Uncompressed: read in place, zero-copy.
    Stored,
    /// Deflate: inflated on read.
    Deflated,
}

/// One member of a [`ZipArchive`].
#[derive(Debug, Clone)]
pub struct ZipEntry {
    name: String,
    compression: Compression,
    data_start: u64,
    compressed_size: u64,
    size: u64,
}

impl ZipEntry {
    /// The member's name as written in the central directory.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How its bytes are stored.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Its uncompressed size, as the central directory declares it.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Where its data starts in the archive.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }
}

/// A validated zip archive over bytes it borrows or shares.
///
/// ```
/// # fn main() -> Result<(), pth_reader::Error> {
/// let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint.pth")).unwrap();
/// let zip = pth_reader::ZipArchive::parse(bytes.as_slice().into())?;
/// let pickle = zip.entries().iter().find(|e| e.name().ends_with("/data.pkl")).unwrap();
/// assert!(zip.read(pickle, 1 << 20)?.len() > 0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ZipArchive<'data> {
    bytes: SharedBytes<'data>,
    entries: Vec<ZipEntry>,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::Zip { reason: reason.into() }
}

impl<'data> ZipArchive<'data> {
    /// Parses and validates the archive's structure. No entry's data is read.
    pub fn parse(bytes: SharedBytes<'data>) -> Result<ZipArchive<'data>> {
        let mut zip =
            zip::ZipArchive::new(std::io::Cursor::new(bytes.as_slice())).map_err(|e| invalid(e.to_string()))?;
        if zip.has_duplicate_names() {
            return Err(invalid(
                "duplicate entry names (readers could disagree on which is meant)",
            ));
        }
        let mut entries = Vec::with_capacity(zip.len());
        let mut spans = Vec::with_capacity(zip.len());
        for index in 0..zip.len() {
            let file = zip
                .by_index_raw(index)
                .map_err(|e| invalid(format!("entry {index}: {e}")))?;
            let name = std::str::from_utf8(file.name_raw())
                .map_err(|_| invalid(format!("entry {index}: name is not UTF-8")))?
                .to_owned();
            check_name(&name)?;
            if file.encrypted() {
                return Err(invalid(format!("{name}: encrypted entries are not supported")));
            }
            let compression = match file.compression() {
                CompressionMethod::Stored => Compression::Stored,
                CompressionMethod::Deflated => Compression::Deflated,
                other => {
                    return Err(Error::Unsupported {
                        what: format!("{name}: compression method {other}"),
                    })
                }
            };
            let data_start = file
                .data_start()
                .ok_or_else(|| invalid(format!("{name}: no data offset")))?;
            let (compressed_size, size) = (file.compressed_size(), file.size());
            if compression == Compression::Stored && compressed_size != size {
                return Err(invalid(format!("{name}: stored entry with different sizes")));
            }
            let end = data_start
                .checked_add(compressed_size)
                .filter(|&end| end <= bytes.len() as u64)
                .ok_or_else(|| invalid(format!("{name}: data extends past the end of the archive")))?;
            spans.push((file.header_start(), end, index));
            entries.push(ZipEntry {
                name,
                compression,
                data_start,
                compressed_size,
                size,
            });
        }
        spans.sort_unstable();
        for pair in spans.windows(2) {
            if let [(_, end, a), (start, _, b)] = pair {
                if start < end {
                    let name = |i: &usize| entries.get(*i).map_or("?", |e| e.name.as_str()).to_owned();
                    return Err(invalid(format!("entries {} and {} overlap", name(a), name(b))));
                }
            }
        }
        Ok(ZipArchive { bytes, entries })
    }

    /// The entries, in central directory order.
    pub fn entries(&self) -> &[ZipEntry] {
        &self.entries
    }

    /// The entry named exactly `name`.
    pub fn find(&self, name: &str) -> Option<&ZipEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The bytes of an entry: a sub-slice for stored entries (no copy), inflated bytes for
    /// deflated ones, refused when they would exceed `max_inflated` bytes.
    pub fn read(&self, entry: &ZipEntry, max_inflated: u64) -> Result<SharedBytes<'data>> {
        let data = self
            .bytes
            .slice_u64(entry.data_start, entry.compressed_size)
            .ok_or_else(|| invalid(format!("{}: data out of range", entry.name)))?;
        match entry.compression {
            Compression::Stored => Ok(data),
            Compression::Deflated => {
                if entry.size > max_inflated {
                    return Err(Error::LimitExceeded {
                        context: entry.name.clone(),
                        limit: "max_inflated_bytes",
                        max: max_inflated,
                    });
                }
                // The declared size is only a claim: reserve a bounded amount, grow with the data.
                let reserve = entry.size.min(64 << 20);
                let mut out = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
                flate2::read::DeflateDecoder::new(data.as_slice())
                    .take(entry.size.saturating_add(1))
                    .read_to_end(&mut out)
                    .map_err(|e| invalid(format!("{}: cannot inflate: {e}", entry.name)))?;
                if out.len() as u64 != entry.size {
                    return Err(invalid(format!(
                        "{}: inflates to {} bytes, the directory says {}",
                        entry.name,
                        out.len(),
                        entry.size
                    )));
                }
                Ok(SharedBytes::from(out))
            }
        }
    }
}

/// Refuses names that mean different files to different tools.
fn check_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains('\\')
        || name.contains('\0')
        || name.split('/').any(|part| part == "..");
    if bad {
        return Err(invalid(format!(
            "entry name {name:?} is empty, absolute or escapes the archive"
        )));
    }
    Ok(())
}

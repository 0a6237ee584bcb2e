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
        check_end_records(bytes.as_slice())?;
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

/// Where the central directory is, according to the end records.
#[derive(Debug, PartialEq, Eq)]
struct Directory {
    entries: u64,
    size: u64,
    offset: u64,
}

const EOCD_LEN: usize = 22;
const ZIP64_LOCATOR_LEN: usize = 20;
/// The smallest central directory header.
const MIN_HEADER_LEN: u64 = 46;

/// Checks the end records before anything else reads them, so that every reader of this file
/// would find the same central directory: one end-of-central-directory record ending exactly at
/// the end of the file (after its comment), single-disk fields, zip64 fields that agree with the
/// classic ones, and a directory that ends exactly where the end records begin, with room for
/// the entries it claims. Readers differ on archives that break these rules (Python's zipfile
/// and torch's miniz list different entries), so they are refused.
fn check_end_records(bytes: &[u8]) -> Result<()> {
    let eocd_at = find_eocd(bytes).ok_or_else(|| invalid("no end-of-central-directory record"))?;
    let mut eocd = crate::cursor::Cursor::new(bytes.get(eocd_at + 4..).unwrap_or_default());
    let fields = (|| {
        Some((
            eocd.u16_le()?,
            eocd.u16_le()?,
            eocd.u16_le()?,
            eocd.u16_le()?,
            eocd.u32_le()?,
            eocd.u32_le()?,
        ))
    })();
    let Some((disk, cd_disk, on_disk, total, size, offset)) = fields else {
        return Err(invalid("truncated end-of-central-directory record"));
    };
    // Zip64 writers may saturate every classic field, the disk numbers included.
    let single_disk = |v: u16| v == 0 || v == 0xFFFF;
    if !single_disk(disk) || !single_disk(cd_disk) || on_disk != total {
        return Err(invalid("multi-disk archives are not supported"));
    }
    let classic = Directory {
        entries: u64::from(total),
        size: u64::from(size),
        offset: u64::from(offset),
    };
    let locator_at = eocd_at.checked_sub(ZIP64_LOCATOR_LEN);
    let locator = locator_at
        .and_then(|at| bytes.get(at..eocd_at))
        .filter(|l| l.starts_with(b"PK\x06\x07"));
    let (directory, directory_end) = match locator {
        None if disk != 0 || cd_disk != 0 => return Err(invalid("multi-disk archives are not supported")),
        None => (classic, eocd_at as u64),
        Some(locator) => {
            let record_at = locator
                .get(8..16)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes);
            let record_at = record_at.ok_or_else(|| invalid("truncated zip64 locator"))?;
            let zip64 = zip64_record(bytes, record_at)?;
            // A classic field either agrees with its zip64 twin or is saturated (0xFFFF...).
            let agrees = |classic: u64, wide: u64, saturated: u64| classic == wide || classic == saturated;
            if !agrees(classic.entries, zip64.entries, 0xFFFF)
                || !agrees(classic.size, zip64.size, 0xFFFF_FFFF)
                || !agrees(classic.offset, zip64.offset, 0xFFFF_FFFF)
            {
                return Err(invalid(
                    "the zip64 end record disagrees with the end-of-central-directory record",
                ));
            }
            (zip64, record_at)
        }
    };
    let end = directory.offset.checked_add(directory.size);
    if end != Some(directory_end) {
        return Err(invalid(format!(
            "the central directory ({} bytes at {}) does not end where the end records begin ({directory_end})",
            directory.size, directory.offset
        )));
    }
    if directory.entries.saturating_mul(MIN_HEADER_LEN) > directory.size {
        return Err(invalid(format!(
            "{} entries cannot fit in a {}-byte directory",
            directory.entries, directory.size
        )));
    }
    Ok(())
}

/// The position of the end-of-central-directory record whose comment ends exactly at the end.
fn find_eocd(bytes: &[u8]) -> Option<usize> {
    let last = bytes.len().checked_sub(EOCD_LEN)?;
    let earliest = last.saturating_sub(usize::from(u16::MAX));
    (earliest..=last).rev().find(|&at| {
        let record = bytes.get(at..at + EOCD_LEN).unwrap_or_default();
        let comment = record
            .get(20..22)
            .and_then(|c| c.try_into().ok())
            .map_or(usize::MAX, |c| usize::from(u16::from_le_bytes(c)));
        record.starts_with(b"PK\x05\x06") && at + EOCD_LEN + comment == bytes.len()
    })
}

/// The zip64 end-of-central-directory record at `at`.
fn zip64_record(bytes: &[u8], at: u64) -> Result<Directory> {
    let record = usize::try_from(at)
        .ok()
        .and_then(|at| bytes.get(at..))
        .unwrap_or_default();
    let mut c = crate::cursor::Cursor::new(record);
    let fields = (|| {
        let signature = c.take(4)?;
        let _record_size = c.u64_le()?;
        let _versions = c.u32_le()?;
        let (disk, cd_disk) = (c.u32_le()?, c.u32_le()?);
        let (on_disk, total, size, offset) = (c.u64_le()?, c.u64_le()?, c.u64_le()?, c.u64_le()?);
        Some((signature == b"PK\x06\x06", disk, cd_disk, on_disk, total, size, offset))
    })();
    match fields {
        Some((true, 0, 0, on_disk, entries, size, offset)) if on_disk == entries => {
            Ok(Directory { entries, size, offset })
        }
        Some((true, ..)) => Err(invalid("multi-disk archives are not supported")),
        _ => Err(invalid("the zip64 locator does not point at a zip64 end record")),
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

//! Finding the central directory from the end of the file, as miniz does, refusing what other
//! readers would find elsewhere.
//!
//! miniz (`mz_zip_reader_locate_header_sig`) scans backwards for the last end-of-central-directory
//! signature with at least 22 bytes after it, and ignores the comment length. If a zip64 locator
//! sits right before it, miniz follows the locator's offset to the zip64 end record and takes
//! every count, size and offset from there. Python's `zipfile` takes the last signature even
//! when fewer than 22 bytes follow, and assumes the zip64 end record sits right before its
//! locator; it also shifts every offset by the distance between where the directory is said to
//! end and where the end records begin. Archives on which these choices differ are refused.

#![forbid(unsafe_code)]

use super::records::{EndOfCentralDirectory, Zip64EndOfCentralDirectory, Zip64Locator};
use crate::cursor::Cursor;
use crate::zip_anomaly::ZipAnomaly;

/// Where the central directory is, according to the end records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Directory {
    /// Its offset in the file.
    pub(super) offset: u64,
    /// Its size in bytes.
    pub(super) size: u64,
    /// How many entries it holds.
    pub(super) entries: u64,
}

/// The largest archive comment, plus the end record: how far from the end miniz looks.
const SEARCH_WINDOW: usize = EndOfCentralDirectory::SIZE + u16::MAX as usize;

/// The central directory of `data`; trailing bytes are reported in `warnings`.
pub(super) fn locate(data: &[u8], warnings: &mut Vec<ZipAnomaly>) -> Result<Directory, ZipAnomaly> {
    let eocd_at = find_end_record(data).ok_or(ZipAnomaly::NoEndRecord)?;
    let (eocd, directory, end_records) = end_records_at(data, eocd_at)?;
    let comment_end = eocd_at + EndOfCentralDirectory::SIZE + usize::from(eocd.comment_len);
    if comment_end != data.len() {
        warnings.push(ZipAnomaly::TrailingBytes {
            len: data.len().saturating_sub(comment_end) as u64,
        });
    }
    if directory.offset.checked_add(directory.size) != Some(end_records as u64) {
        return Err(ZipAnomaly::DirectoryMisplaced {
            offset: directory.offset,
            size: directory.size,
            end_records: end_records as u64,
        });
    }
    check_single_end_record(data, end_records, eocd_at)?;
    Ok(directory)
}

/// The record `read` finds at byte `at` of `data`, or [`ZipAnomaly::Truncated`] naming it.
fn record_at<T>(
    data: &[u8],
    at: usize,
    record: &'static str,
    read: impl FnOnce(&mut Cursor<'_>) -> Option<T>,
) -> Result<T, ZipAnomaly> {
    data.get(at..)
        .and_then(|rest| read(&mut Cursor::new(rest)))
        .ok_or(ZipAnomaly::Truncated {
            record,
            offset: at as u64,
        })
}

/// The end record at `eocd_at`, the directory it describes (through the zip64 end record when a
/// locator precedes it) and where the end records begin.
fn end_records_at(data: &[u8], eocd_at: usize) -> Result<(EndOfCentralDirectory, Directory, usize), ZipAnomaly> {
    let eocd = record_at(
        data,
        eocd_at,
        "end-of-central-directory record",
        EndOfCentralDirectory::read,
    )?;
    let (directory, end_records) = match zip64_locator(data, eocd_at)? {
        None => (classic_directory(&eocd)?, eocd_at),
        Some(locator) => zip64_directory(data, eocd_at, &eocd, &locator)?,
    };
    Ok((eocd, directory, end_records))
}

/// Whether the signature at `at` starts a second complete set of end records: its comment ends
/// the file and its directory ends where its end records begin. A reader that validates
/// candidates (rather than taking the last, as miniz does) could settle on it.
fn is_complete_end_record(data: &[u8], at: usize) -> bool {
    let Ok((eocd, directory, end_records)) = end_records_at(data, at) else {
        return false;
    };
    let comment_end = at + EndOfCentralDirectory::SIZE + usize::from(eocd.comment_len);
    comment_end == data.len() && directory.offset.checked_add(directory.size) == Some(end_records as u64)
}

/// The end record miniz picks: the last signature with at least a whole record after it,
/// within the search window.
fn find_end_record(data: &[u8]) -> Option<usize> {
    let last = data.len().checked_sub(EndOfCentralDirectory::SIZE)?;
    let first = data.len().saturating_sub(SEARCH_WINDOW);
    // Signatures starting at `first..=last`.
    signatures_before(data, first..last + EndOfCentralDirectory::SIGNATURE.len()).next()
}

/// The positions of end-record signatures wholly inside `data[range]`, last first: a SIMD
/// search backwards for their first byte (the window is 64 KiB, read at every open).
fn signatures_before(data: &[u8], range: std::ops::Range<usize>) -> impl Iterator<Item = usize> + '_ {
    let start = range.start;
    let window = data.get(range).unwrap_or_default();
    let signature = EndOfCentralDirectory::SIGNATURE;
    memchr::memrchr_iter(signature[0], window)
        .filter(move |&at| window.get(at..at + signature.len()) == Some(&signature[..]))
        .map(move |at| start + at)
}

/// No other end record: no signature at all after the directory (in the zip64 records, the
/// comment, or the last 21 bytes, where Python's `zipfile` would find one that miniz skips),
/// and no complete set of end records earlier in the search window (an archive whose comment
/// holds another directory and end record, which miniz takes, is also a valid archive without).
fn check_single_end_record(data: &[u8], from: usize, eocd_at: usize) -> Result<(), ZipAnomaly> {
    let after = data
        .get(from..)
        .and_then(|rest| {
            memchr::memmem::find_iter(rest, &EndOfCentralDirectory::SIGNATURE).find(|&at| from + at != eocd_at)
        })
        .map(|at| from + at);
    // Signatures starting before the end record (they may run into it).
    let window_start = data.len().saturating_sub(SEARCH_WINDOW);
    let window_end = (eocd_at + EndOfCentralDirectory::SIGNATURE.len() - 1).min(data.len());
    let earlier = || {
        signatures_before(data, window_start..window_end)
            .filter(|&at| at < eocd_at)
            .find(|&at| is_complete_end_record(data, at))
    };
    match after.or_else(earlier) {
        Some(at) => Err(ZipAnomaly::SeveralEndRecords { offset: at as u64 }),
        None => Ok(()),
    }
}

/// The directory of an archive without zip64 end records. Disk numbers must be 0: miniz also
/// accepts 1 and Python ignores them, but no single-file writer sets them.
fn classic_directory(eocd: &EndOfCentralDirectory) -> Result<Directory, ZipAnomaly> {
    if eocd.disk != 0 || eocd.directory_disk != 0 || eocd.entries_on_disk != eocd.entries {
        return Err(ZipAnomaly::MultiDisk);
    }
    Ok(Directory {
        offset: u64::from(eocd.directory_offset),
        size: u64::from(eocd.directory_size),
        entries: u64::from(eocd.entries),
    })
}

/// The zip64 locator right before the end record, if its signature is there.
fn zip64_locator(data: &[u8], eocd_at: usize) -> Result<Option<Zip64Locator>, ZipAnomaly> {
    let Some(at) = eocd_at.checked_sub(Zip64Locator::SIZE) else {
        return Ok(None);
    };
    let bytes = data.get(at..eocd_at).unwrap_or_default();
    if !bytes.starts_with(&Zip64Locator::SIGNATURE) {
        return Ok(None);
    }
    let locator = Zip64Locator::read(&mut Cursor::new(bytes)).ok_or(ZipAnomaly::Truncated {
        record: "zip64 end-of-central-directory locator",
        offset: at as u64,
    })?;
    Ok(Some(locator))
}

/// The directory according to the zip64 end record, and where that record starts.
///
/// The record must sit right before its locator (where Python looks) and the locator must
/// point at it (where miniz looks), without extensible data; every classic field must agree
/// with its zip64 twin or be saturated (0xFFFF…), so that readers that use either agree.
fn zip64_directory(
    data: &[u8],
    eocd_at: usize,
    eocd: &EndOfCentralDirectory,
    locator: &Zip64Locator,
) -> Result<(Directory, usize), ZipAnomaly> {
    let problem = |problem| ZipAnomaly::Zip64End { problem };
    let record_at = eocd_at
        .checked_sub(Zip64Locator::SIZE + Zip64EndOfCentralDirectory::SIZE)
        .ok_or(problem("no room for the zip64 end record"))?;
    if locator.end_record_offset != record_at as u64 {
        return Err(problem("the locator does not point at the record right before it"));
    }
    if locator.directory_disk != 0 || locator.disks != 1 {
        return Err(ZipAnomaly::MultiDisk);
    }
    let record = self::record_at(
        data,
        record_at,
        "zip64 end-of-central-directory record",
        Zip64EndOfCentralDirectory::read,
    )?;
    if record.record_size != (Zip64EndOfCentralDirectory::SIZE - 12) as u64 {
        return Err(problem("the record has extensible data or a wrong size"));
    }
    if record.disk != 0 || record.directory_disk != 0 || record.entries_on_disk != record.entries {
        return Err(ZipAnomaly::MultiDisk);
    }
    let saturated16 = |v: u16, wide: u64| u64::from(v) == wide || v == u16::MAX;
    let saturated32 = |v: u32, wide: u64| u64::from(v) == wide || v == u32::MAX;
    let agrees = saturated16(eocd.disk, 0)
        && saturated16(eocd.directory_disk, 0)
        && saturated16(eocd.entries_on_disk, record.entries)
        && saturated16(eocd.entries, record.entries)
        && saturated32(eocd.directory_size, record.directory_size)
        && saturated32(eocd.directory_offset, record.directory_offset);
    if !agrees {
        return Err(problem("they disagree with the end-of-central-directory record"));
    }
    // miniz's practical limits (mz_zip_reader_read_central_dir): beyond them torch refuses.
    if record.entries > u64::from(u32::MAX) || record.directory_size > u64::from(u32::MAX) {
        return Err(problem("more entries or directory bytes than torch reads"));
    }
    let directory = Directory {
        offset: record.directory_offset,
        size: record.directory_size,
        entries: record.entries,
    };
    Ok((directory, record_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eocd(entries: u16, size: u32, offset: u32, comment: &[u8]) -> Vec<u8> {
        let mut out = b"PK\x05\x06\0\0\0\0".to_vec();
        out.extend_from_slice(&entries.to_le_bytes());
        out.extend_from_slice(&entries.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&(comment.len() as u16).to_le_bytes());
        out.extend_from_slice(comment);
        out
    }

    #[test]
    fn an_empty_archive_has_an_empty_directory() {
        let mut warnings = Vec::new();
        let directory = locate(&eocd(0, 0, 0, b"hi"), &mut warnings).unwrap();
        assert_eq!(
            directory,
            Directory {
                offset: 0,
                size: 0,
                entries: 0
            }
        );
        assert!(warnings.is_empty());
    }

    #[test]
    fn a_signature_in_the_comment_is_refused() {
        let inner = eocd(0, 0, 0, b"");
        let mut bytes = eocd(0, 0, 0, &[inner.as_slice(), b"x"].concat());
        // miniz picks the inner record, which is 23 bytes from the end.
        assert!(locate(&bytes, &mut Vec::new()).is_err());
        // Within the last 21 bytes only Python's zipfile would pick it.
        bytes = eocd(0, 0, 0, b"PK\x05\x06");
        let err = locate(&bytes, &mut Vec::new()).unwrap_err();
        assert_eq!(err, ZipAnomaly::SeveralEndRecords { offset: 22 });
    }

    #[test]
    fn trailing_bytes_are_a_warning() {
        let mut bytes = eocd(0, 0, 0, b"");
        bytes.extend_from_slice(b"junk");
        let mut warnings = Vec::new();
        assert!(locate(&bytes, &mut warnings).is_ok());
        assert_eq!(warnings, [ZipAnomaly::TrailingBytes { len: 4 }]);
        assert_eq!(locate(b"PK\x05\x06", &mut warnings), Err(ZipAnomaly::NoEndRecord));
    }
}

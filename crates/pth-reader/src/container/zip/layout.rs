//! The archive's layout: entries laid end to end from byte 0 up to the central directory.
//!
//! miniz and Python's `zipfile` go from the central directory to each local header and never
//! look between entries; streaming readers (which read local headers one after another) see
//! whatever is there. So every byte before the directory must belong to exactly one entry: its
//! local header, its data, and its data descriptor when flag bit 3 announces one. Bytes before
//! the first entry, between entries or shared by two are refused.

#![forbid(unsafe_code)]

use super::entry::ZipEntry;
use super::records::{DataDescriptor, DescriptorShape};
use super::HeaderReads;
use crate::cursor::Cursor;
use crate::zip_anomaly::ZipAnomaly;

/// Checks that `entries` tile `data` from byte 0 to `directory_offset`.
pub(super) fn check_layout(
    entries: &[ZipEntry],
    directory_offset: u64,
    warnings: &mut Vec<ZipAnomaly>,
    headers: &mut HeaderReads<'_>,
) -> Result<(), ZipAnomaly> {
    // Writers list the entries in the order of their records: then no sorted copy is made.
    if entries.is_sorted_by_key(ZipEntry::header_offset) {
        return check_tiling(entries.iter(), directory_offset, warnings, headers);
    }
    let mut order: Vec<&ZipEntry> = entries.iter().collect();
    order.sort_by_key(|e| e.header_offset());
    check_tiling(order.into_iter(), directory_offset, warnings, headers)
}

/// [`check_layout`] of entries in the order of their offsets.
fn check_tiling<'e>(
    order: impl Iterator<Item = &'e ZipEntry>,
    directory_offset: u64,
    warnings: &mut Vec<ZipAnomaly>,
    headers: &mut HeaderReads<'_>,
) -> Result<(), ZipAnomaly> {
    let mut order = order.peekable();
    let first = order.peek().map_or(directory_offset, |e| e.header_offset());
    if first != 0 {
        return Err(ZipAnomaly::DataBeforeFirstEntry { len: first });
    }
    while let Some(entry) = order.next() {
        let next = order.peek();
        let next_start = next.map_or(directory_offset, |e| e.header_offset());
        let data_end = entry.data_range().end;
        let Some(gap) = next_start.checked_sub(data_end) else {
            return Err(ZipAnomaly::Overlap {
                first: entry.name().to_owned(),
                second: next.map_or("the central directory".to_owned(), |e| e.name().to_owned()),
            });
        };
        check_gap(headers, entry, data_end, gap, warnings)?;
    }
    Ok(())
}

/// The `gap` bytes after an entry's data: nothing, or its data descriptor.
fn check_gap(
    headers: &mut HeaderReads<'_>,
    entry: &ZipEntry,
    at: u64,
    gap: u64,
    warnings: &mut Vec<ZipAnomaly>,
) -> Result<(), ZipAnomaly> {
    let name = || entry.name().to_owned();
    if gap == 0 {
        // torch writes no descriptor after an empty record, and flags it accordingly.
        if entry.has_descriptor() && entry.compressed_size() > 0 {
            warnings.push(ZipAnomaly::DescriptorMissing { name: name() });
        }
        return Ok(());
    }
    let unclaimed = || ZipAnomaly::Gap {
        after: name(),
        len: gap,
    };
    let shape = DescriptorShape::of_len(gap).filter(|_| entry.has_descriptor());
    // A descriptor is at most 24 bytes (a longer gap has no shape): the gap is read whole.
    let descriptor = shape
        .and_then(|shape| Some((shape, headers.descriptor(at, usize::try_from(gap).ok()?)?)))
        .and_then(|(shape, bytes)| DataDescriptor::read(&mut Cursor::new(bytes), shape))
        .ok_or_else(unclaimed)?;
    if (descriptor.compressed_size, descriptor.size) != (entry.compressed_size(), entry.size()) {
        return Err(ZipAnomaly::DescriptorMismatch { name: name() });
    }
    if descriptor.crc32 != entry.crc32() {
        warnings.push(ZipAnomaly::DescriptorCrcMismatch { name: name() });
    }
    Ok(())
}

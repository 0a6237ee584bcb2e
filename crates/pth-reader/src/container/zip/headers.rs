//! Reading the small headers scattered through an archive: every local header and data
//! descriptor is checked at open.
//!
//! Two costs decide how. In an archive of many small records (20,000 tensors of 1.4 KB) the
//! headers lie on every page of the file: read through a memory map, they would make the whole
//! file resident for a check of a few bytes each, so the pages read are released a window at a
//! time. In an archive of a few large records (64 tensors of 16 MiB) each header is a page
//! fault, which costs several times a positioned read (`pread`) of the same bytes: there the
//! headers are read from the file into a buffer, and the map's pages are never touched. A
//! record's data descriptor lies just before the next record's local header, so the read of
//! a local header takes the 24 bytes before it too, and the descriptor check that follows
//! needs no read of its own: one system call per record instead of two.

#![forbid(unsafe_code)]

use std::ops::Range;

use crate::hashing::FastMap;
use crate::SharedBytes;

/// The most bytes a data descriptor takes (signature, CRC-32 and two 64-bit sizes).
const DESCRIPTOR_MAX: usize = 24;

/// How the headers of one archive are read (see the module documentation).
pub(super) struct HeaderReads<'b> {
    bytes: &'b SharedBytes<'b>,
    /// `bytes` as a slice, taken once: reads through the map index it for every header.
    data: &'b [u8],
    /// Read with positioned reads into `buffer`, not through the map.
    positioned: bool,
    buffer: Vec<u8>,
    /// Positioned reads: the bytes before each local header read, by the header's offset
    /// (where the data descriptor of the record before it ends). One entry per record of a
    /// sparse archive: at most one per 256 KiB of the file.
    before: FastMap<u64, [u8; DESCRIPTOR_MAX]>,
    /// Through the map: the span of the bytes read since its pages were last released.
    span: Option<Range<usize>>,
    /// How many bytes of the span the reads may have made resident.
    resident: usize,
}

impl<'b> HeaderReads<'b> {
    /// How much the reads of a span may make resident before its pages are released.
    const WINDOW: usize = 4 << 20;
    /// What one small read of a mapped file can make resident: Linux maps the 16 pages around
    /// a faulting one that are in the page cache.
    const FAULT_AROUND: usize = 64 << 10;
    /// Records this far apart on average (and more) are read with positioned reads.
    const SPARSE: u64 = 256 << 10;
    /// Bytes read at first for a local header: its fixed part and a name and extra field of
    /// usual length (longer ones take a second read).
    const LOCAL_GUESS: usize = 30 + 482;

    /// The reader of the headers of an archive of `entries` entries before `directory_offset`.
    pub(super) fn new(bytes: &'b SharedBytes<'b>, entries: u64, directory_offset: u64) -> HeaderReads<'b> {
        let sparse = entries > 0 && directory_offset / entries >= Self::SPARSE;
        HeaderReads {
            bytes,
            data: bytes.as_slice(),
            positioned: sparse && bytes.is_mapped(),
            buffer: Vec::new(),
            before: FastMap::default(),
            span: None,
            resident: 0,
        }
    }

    /// The length of the archive.
    pub(super) fn archive_len(&self) -> u64 {
        self.data.len() as u64
    }

    /// The bytes of the local header at `offset`, as many as the header takes (its fixed part
    /// says how many) or as the archive has; `None` past the end.
    // Called for every entry: inlined, like `at` and `checked` (for a mapped archive, a few
    // comparisons each).
    #[inline]
    pub(super) fn local_header(&mut self, offset: u64) -> Option<&[u8]> {
        if !self.positioned {
            return self.at(offset, usize::MAX);
        }
        let start = usize::try_from(offset).ok()?;
        let available = self.data.len().checked_sub(start)?;
        let first = Self::LOCAL_GUESS.min(available);
        if let Some(before) = start.checked_sub(DESCRIPTOR_MAX) {
            self.fill(before, DESCRIPTOR_MAX + first)?;
            let mut descriptor = [0; DESCRIPTOR_MAX];
            descriptor.copy_from_slice(self.buffer.get(..DESCRIPTOR_MAX)?);
            self.before.insert(offset, descriptor);
            self.buffer.drain(..DESCRIPTOR_MAX);
        } else {
            self.fill(start, first)?;
        }
        let needed = match self.buffer.get(26..30) {
            Some(&[n0, n1, e0, e1]) => {
                30 + usize::from(u16::from_le_bytes([n0, n1])) + usize::from(u16::from_le_bytes([e0, e1]))
            }
            _ => first,
        };
        if needed > first {
            self.fill(start, needed.min(available))?;
        }
        Some(&self.buffer)
    }

    /// Up to `len` bytes at `offset` (fewer at the end of the archive); `None` past the end.
    #[inline]
    pub(super) fn at(&mut self, offset: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(offset).ok()?;
        if !self.positioned {
            let rest = self.data.get(start..)?;
            return Some(rest.get(..len).unwrap_or(rest));
        }
        let len = len.min(self.data.len().checked_sub(start)?);
        // Bytes that end where a local header read earlier starts came with that read.
        let cached = (len <= DESCRIPTOR_MAX)
            .then(|| self.before.get(&(start.checked_add(len)? as u64)))
            .flatten()
            .and_then(|before| before.get(DESCRIPTOR_MAX - len..));
        if let Some(bytes) = cached {
            self.buffer.clear();
            self.buffer.extend_from_slice(bytes);
            return Some(&self.buffer);
        }
        self.fill(start, len)?;
        Some(&self.buffer)
    }

    /// Reads `len` bytes at `start` into the buffer (`len` is within the archive: bounded by
    /// its size, and by 128 KiB for a local header).
    fn fill(&mut self, start: usize, len: usize) -> Option<()> {
        self.buffer.clear();
        self.buffer.try_reserve(len).ok()?;
        self.buffer.resize(len, 0);
        self.bytes.read_at(start, &mut self.buffer)
    }

    /// Records that `range` of the archive was checked; through the map, releases the pages
    /// read once their span holds a window's worth of them and is densely read (see
    /// [`dense`](Self::dense)).
    #[inline]
    pub(super) fn checked(&mut self, range: Range<usize>) {
        if self.positioned {
            return;
        }
        let span = match self.span.take() {
            None => range.clone(),
            Some(span) => span.start.min(range.start)..span.end.max(range.end),
        };
        let reach = range.len().saturating_add(Self::FAULT_AROUND);
        self.resident = self.resident.saturating_add(reach).min(span.len());
        if self.dense(&span, Self::WINDOW) {
            self.bytes.release_pages(span);
            self.resident = 0;
        } else {
            self.span = Some(span);
        }
    }

    /// Whether the reads may have made `at_least` bytes of `span` resident, and a quarter of
    /// it. Sparse headers read through the map (bytes in memory: nothing to release) are left
    /// alone: releasing them would make the layout check fault them in again.
    fn dense(&self, span: &Range<usize>, at_least: usize) -> bool {
        self.resident >= at_least && self.resident >= span.len() / 4
    }

    /// Releases what is left of a densely read span.
    pub(super) fn finish(self) {
        if let Some(span) = self.span.as_ref().filter(|span| self.dense(span, Self::WINDOW / 8)) {
            self.bytes.release_pages(span.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_the_end_of_the_archive() {
        let data: Vec<u8> = (0..100).collect();
        let bytes = SharedBytes::from(data.as_slice());
        let mut reads = HeaderReads::new(&bytes, 1, 90);
        assert_eq!(reads.at(95, 10), Some(&data[95..]));
        assert_eq!(reads.at(100, 1), Some(&[][..]));
        assert_eq!(reads.at(101, 1), None);
        assert_eq!(reads.local_header(98), Some(&data[98..]));
        assert_eq!(reads.archive_len(), 100);
    }
}

//! Reading the small headers scattered through an archive: every local header and data
//! descriptor is checked at open.
//!
//! Two costs decide how. In an archive of many small records (20,000 tensors of 1.4 KB) the
//! headers lie on every page of the file: read through a memory map, they would make the whole
//! file resident for a check of a few bytes each, so the pages read are released a window at a
//! time. In an archive of a few large records (64 tensors of 16 MiB) each header is a page
//! fault, which costs several times a positioned read (`pread`) of the same bytes: there the
//! headers are read from the file into a buffer, and the map's pages are never touched.
//!
//! Either way, a record's data descriptor lies just before the next record's local header: the
//! read of a local header keeps the 24 bytes before it too, and the descriptor check that
//! follows (in the order of the records) finds them there. A positioned read takes them with
//! the header (one system call per record instead of two); through the map, they are copied
//! while their page is resident, instead of being faulted in again after the release of their
//! window (a third of the faults of an open of 20,000 small records).

#![forbid(unsafe_code)]

use std::ops::Range;

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
    /// A mapped file (positioned or not): the bytes before local headers are kept.
    mapped: bool,
    buffer: Vec<u8>,
    /// The bytes before each local header read, with the header's offset (where the data
    /// descriptor of the record before it ends), in the order the headers were read: one entry
    /// of 32 bytes per entry of the archive.
    before: Vec<(u64, [u8; DESCRIPTOR_MAX])>,
    /// Whether `before` is in increasing offset order (it can then be searched).
    before_sorted: bool,
    /// Where the next descriptor lookup looks first: lookups come in offset order.
    next_before: usize,
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
            mapped: bytes.is_mapped(),
            buffer: Vec::new(),
            before: Vec::new(),
            before_sorted: true,
            next_before: 0,
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
        let start = usize::try_from(offset).ok()?;
        if !self.positioned {
            if self.mapped {
                if let Some(before) = start.checked_sub(DESCRIPTOR_MAX).and_then(|b| self.data.get(b..start)) {
                    let mut descriptor = [0; DESCRIPTOR_MAX];
                    descriptor.copy_from_slice(before);
                    self.keep_before(offset, descriptor);
                }
            }
            return self.at(offset, usize::MAX);
        }
        let available = self.data.len().checked_sub(start)?;
        let first = Self::LOCAL_GUESS.min(available);
        if let Some(before) = start.checked_sub(DESCRIPTOR_MAX) {
            self.fill(before, DESCRIPTOR_MAX + first)?;
            let mut descriptor = [0; DESCRIPTOR_MAX];
            descriptor.copy_from_slice(self.buffer.get(..DESCRIPTOR_MAX)?);
            self.keep_before(offset, descriptor);
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

    /// Keeps the bytes before the local header at `offset`.
    fn keep_before(&mut self, offset: u64, bytes: [u8; DESCRIPTOR_MAX]) {
        if self.before.last().is_some_and(|&(last, _)| last >= offset) {
            self.before_sorted = false;
        }
        // The entries exist already: at most one kept per entry (a refusal only costs reads).
        if self.before.try_reserve(1).is_ok() {
            self.before.push((offset, bytes));
        }
    }

    /// The `len` bytes (a data descriptor: at most 24) that end at `end`, if a local header
    /// read kept them.
    fn kept_before(&mut self, end: u64, len: usize) -> Option<[u8; DESCRIPTOR_MAX]> {
        if len > DESCRIPTOR_MAX {
            return None;
        }
        let at = match self.before.get(self.next_before) {
            Some(&(offset, _)) if offset == end => self.next_before,
            _ if self.before_sorted => self.before.binary_search_by_key(&end, |&(offset, _)| offset).ok()?,
            _ => return None,
        };
        self.next_before = at + 1;
        self.before.get(at).map(|&(_, bytes)| bytes)
    }

    /// The `len` bytes of the data descriptor at `offset` (fewer at the end of the archive);
    /// `None` past the end. Read from what a local header read kept when it can be; else
    /// through the map (and counted towards the release of its pages) or with a positioned
    /// read.
    pub(super) fn descriptor(&mut self, offset: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(offset).ok()?;
        let len = len.min(self.data.len().checked_sub(start)?);
        let end = (start as u64).checked_add(len as u64)?;
        if let Some(kept) = self.kept_before(end, len) {
            let bytes = kept.get(DESCRIPTOR_MAX - len..)?;
            self.buffer.clear();
            self.buffer.extend_from_slice(bytes);
            return Some(&self.buffer);
        }
        if !self.positioned {
            self.checked(start..start.saturating_add(len));
        }
        self.at(offset, len)
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

    #[test]
    fn descriptors_are_read_from_the_bytes_kept_before_local_headers() {
        let data: Vec<u8> = (0..=255).collect();
        let bytes = SharedBytes::from(data.as_slice());
        for order in [[100u64, 150, 200], [200, 100, 150]] {
            let mut reads = HeaderReads::new(&bytes, 3, 250);
            // Keep them as for a mapped archive.
            reads.mapped = true;
            for offset in order {
                assert!(reads.local_header(offset).is_some());
            }
            assert_eq!(reads.before.len(), 3);
            assert_eq!(reads.before_sorted, order.is_sorted());
            for (at, len) in [(84, 16), (126, 24), (188, 12), (10, 12), (240, 24)] {
                let want = data.get(at..(at + len).min(data.len()));
                assert_eq!(reads.descriptor(at as u64, len), want, "{order:?} {at} {len}");
            }
            assert_eq!(reads.descriptor(300, 12), None);
        }
    }
}

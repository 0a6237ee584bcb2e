//! Reading entries: [`ZipArchive::read`] within an [`InflateBudget`], and checking their
//! CRC-32s ([`ZipArchive::crc_matches`], a chunk at a time).

#![forbid(unsafe_code)]

use flate2::{Decompress, FlushDecompress, Status};

use super::entry::{Compression, ZipEntry};
use super::{Dialect, ZipArchive};
use crate::zip_anomaly::ZipAnomaly;
use crate::{Error, Limit, Result, SharedBytes};

/// What deflated entries may still inflate to, across the reads of one loading of an archive
/// (a torch checkpoint's records, an SB3 model's members): made by [`ZipArchive::budget`] with
/// `Limits::max_inflated_bytes`, charged by every [`ZipArchive::read`] of a deflated entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InflateBudget {
    remaining: u64,
    max: u64,
}

impl InflateBudget {
    /// How many bytes deflated entries may still inflate to.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Charges the declared size of a deflated `entry`, or refuses it with the limit exceeded.
    pub(crate) fn charge(&mut self, entry: &ZipEntry) -> Result<()> {
        if entry.size() > self.remaining {
            return Err(Error::limit(Limit::MaxInflatedBytes, self.max).in_record(entry.name()));
        }
        self.remaining -= entry.size();
        Ok(())
    }
}

impl<'data> ZipArchive<'data> {
    /// A fresh budget of `Limits::max_inflated_bytes` for reading this archive's entries.
    pub fn budget(&self) -> InflateBudget {
        InflateBudget {
            remaining: self.max_inflated(),
            max: self.max_inflated(),
        }
    }

    /// The bytes of `entry` (one of this archive's entries).
    ///
    /// Stored entries are sub-slices of the archive (no copy, no charge). Deflated entries are
    /// inflated into memory: their declared size is charged to `budget` before anything is
    /// allocated, and they must inflate to exactly that size, as miniz requires. An archive read
    /// as Python's `zipfile` reads it ([`Dialect::Python`]) also has the entry's CRC-32 checked;
    /// torch checks none (PyTorch builds miniz with `MINIZ_DISABLE_ZIP_READER_CRC32_CHECKS`).
    ///
    /// ```
    /// # fn main() -> Result<(), pth_reader::Error> {
    /// use pth_reader::zip::ZipArchive;
    /// let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint.pth")).unwrap();
    /// let zip = ZipArchive::parse(bytes.as_slice().into(), &Default::default())?;
    /// let mut budget = zip.budget();
    /// let pickle = zip.find("checkpoint/data.pkl").unwrap();
    /// assert_eq!(zip.read(pickle, &mut budget)?.len() as u64, pickle.size());
    /// # Ok(()) }
    /// ```
    pub fn read(&self, entry: &ZipEntry, budget: &mut InflateBudget) -> Result<SharedBytes<'data>> {
        let data = self
            .bytes()
            .slice_u64(entry.data_start(), entry.compressed_size())
            .ok_or_else(|| ZipAnomaly::Truncated {
                record: "entry data",
                offset: entry.data_start(),
            })?;
        let bytes = match entry.compression() {
            Compression::Stored => data,
            Compression::Deflated => {
                budget.charge(entry)?;
                let out = inflate(data.as_slice(), entry.size()).map_err(|problem| ZipAnomaly::Inflate {
                    name: entry.name().to_owned(),
                    problem: problem.to_owned(),
                })?;
                SharedBytes::from(out)
            }
        };
        if self.dialect() == Dialect::Python && crc32fast::hash(bytes.as_slice()) != entry.crc32() {
            return Err(ZipAnomaly::CrcMismatch {
                name: entry.name().to_owned(),
            }
            .into());
        }
        Ok(bytes)
    }

    /// Whether the bytes of `entry` match the CRC-32 its central directory header declares
    /// (which torch never checks). Computed a chunk at a time: a stored entry is hashed in
    /// place, a deflated one inflated through a fixed buffer (nothing the size of the entry is
    /// allocated); it must inflate to exactly its declared size.
    ///
    /// ```
    /// # fn main() -> Result<(), pth_reader::Error> {
    /// use pth_reader::zip::ZipArchive;
    /// let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/zip_crc_wrong.pt")).unwrap();
    /// let zip = ZipArchive::parse(bytes.as_slice().into(), &Default::default())?;
    /// let wrong = zip.entries().iter().filter(|e| !zip.crc_matches(e).unwrap_or(false)).count();
    /// assert!(wrong > 0);
    /// # Ok(()) }
    /// ```
    pub fn crc_matches(&self, entry: &ZipEntry) -> Result<bool> {
        let data = self
            .bytes()
            .slice_u64(entry.data_start(), entry.compressed_size())
            .ok_or(ZipAnomaly::Truncated {
                record: "entry data",
                offset: entry.data_start(),
            })?;
        let mut crc = crc32fast::Hasher::new();
        match entry.compression() {
            Compression::Stored => crc.update(data.as_slice()),
            Compression::Deflated => {
                let update = |chunk: &[u8]| {
                    crc.update(chunk);
                    Ok(())
                };
                inflate_each(data.as_slice(), entry.size(), update).map_err(|problem| ZipAnomaly::Inflate {
                    name: entry.name().to_owned(),
                    problem: problem.to_owned(),
                })?
            }
        }
        Ok(crc.finalize() == entry.crc32())
    }
}

/// Bytes inflated per step by [`inflate_each`].
const CHUNK: usize = 64 * 1024;

/// Inflates a raw deflate stream a chunk at a time, calling `f` with each chunk: it must
/// produce exactly `size` bytes and end within `input` (bytes after its end are ignored, as
/// miniz ignores them); `f` never sees more than `size` bytes in all.
fn inflate_each(
    input: &[u8],
    size: u64,
    mut f: impl FnMut(&[u8]) -> Result<(), &'static str>,
) -> Result<(), &'static str> {
    if input.is_empty() && size == 0 {
        // miniz returns an entry without compressed bytes as empty, without inflating.
        return Ok(());
    }
    let mut inflater = Decompress::new(false);
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let consumed = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
        let rest = input.get(consumed..).unwrap_or_default();
        let before = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress(rest, &mut buffer, FlushDecompress::None)
            .map_err(|_| "not a valid deflate stream")?;
        let made = (inflater.total_out() - before.1) as usize;
        if inflater.total_out() > size {
            return Err("it inflates to more bytes than declared");
        }
        f(buffer.get(..made).unwrap_or_default())?;
        if status == Status::StreamEnd {
            break;
        }
        if before == (inflater.total_in(), inflater.total_out()) {
            return Err("the deflate stream ends early");
        }
    }
    if inflater.total_out() < size {
        return Err("it inflates to fewer bytes than declared");
    }
    Ok(())
}

/// The first growth step of the output buffer: the declared size is only a claim.
const FIRST_RESERVE: u64 = 1 << 20;

/// Inflates a raw deflate stream that must end within `input` and produce exactly `size` bytes
/// (miniz's `mz_zip_reader_extract_to_mem`: bytes after the end of the stream are ignored). The
/// output grows by doubling from 1 MiB, with allocations that may fail, never past `size`.
fn inflate(input: &[u8], size: u64) -> Result<Vec<u8>, &'static str> {
    let mut out: Vec<u8> = Vec::new();
    inflate_each(input, size, |chunk| {
        if out.capacity() - out.len() < chunk.len() {
            let len = out.len() as u64;
            let want = (len + chunk.len() as u64)
                .max(len.saturating_mul(2))
                .max(FIRST_RESERVE)
                .min(size);
            let more = usize::try_from(want - len).map_err(|_| "too large for this platform")?;
            out.try_reserve_exact(more).map_err(|_| "out of memory")?;
        }
        out.extend_from_slice(chunk);
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn deflate(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn inflation_must_give_exactly_the_declared_size() {
        let data = vec![7u8; 3_000_000];
        let stream = deflate(&data);
        assert_eq!(inflate(&stream, 3_000_000).unwrap(), data);
        assert!(inflate(&stream, 2_999_999).is_err());
        assert!(inflate(&stream, 3_000_001).is_err());
        assert!(inflate(&stream[..stream.len() - 2], 3_000_000).is_err());
        assert!(inflate(b"\xff\xff\xff", 3).is_err());
        // Bytes after the end of the stream are ignored, as miniz ignores them.
        let padded = [stream.as_slice(), b"junk"].concat();
        assert_eq!(inflate(&padded, 3_000_000).unwrap().len(), 3_000_000);
        assert_eq!(inflate(&deflate(b""), 0).unwrap(), b"");
    }

    #[test]
    fn chunked_inflation_agrees_with_whole_inflation() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let stream = deflate(&data);
        let mut seen = Vec::new();
        let collect = |c: &[u8]| {
            seen.extend_from_slice(c);
            Ok(())
        };
        inflate_each(&stream, data.len() as u64, collect).unwrap();
        assert_eq!(seen, data);
        let ignore = |_: &[u8]| Ok(());
        assert!(inflate_each(&stream, data.len() as u64 - 1, ignore).is_err());
        assert!(inflate_each(&stream, data.len() as u64 + 1, ignore).is_err());
        assert!(inflate_each(&stream[..stream.len() / 2], data.len() as u64, ignore).is_err());
    }
}

//! Reading entries: [`ZipArchive::read`] within an [`InflateBudget`].

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
                if entry.size() > budget.remaining {
                    return Err(Error::limit(Limit::MaxInflatedBytes, budget.max).in_record(entry.name()));
                }
                let out = inflate(data.as_slice(), entry.size()).map_err(|problem| ZipAnomaly::Inflate {
                    name: entry.name().to_owned(),
                    problem: problem.to_owned(),
                })?;
                budget.remaining -= entry.size();
                SharedBytes::from(out)
            }
        };
        if self.dialect() == Dialect::Python && crc32(bytes.as_slice()) != entry.crc32() {
            return Err(ZipAnomaly::CrcMismatch {
                name: entry.name().to_owned(),
            }
            .into());
        }
        Ok(bytes)
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

/// The first growth step of the output buffer: the declared size is only a claim.
const FIRST_RESERVE: u64 = 1 << 20;

/// Inflates a raw deflate stream that must end within `input` and produce exactly `size` bytes
/// (miniz's `mz_zip_reader_extract_to_mem`: bytes after the end of the stream are ignored).
fn inflate(input: &[u8], size: u64) -> Result<Vec<u8>, &'static str> {
    if input.is_empty() && size == 0 {
        // miniz returns an entry without compressed bytes as empty, without inflating.
        return Ok(Vec::new());
    }
    // One byte more than declared, to tell "exactly" from "at least".
    let cap = size.saturating_add(1);
    let mut out: Vec<u8> = Vec::new();
    let mut inflater = Decompress::new(false);
    loop {
        if out.len() == out.capacity() {
            let len = out.len() as u64;
            if len >= cap {
                return Err("it inflates to more bytes than declared");
            }
            let more = len.max(FIRST_RESERVE).min(cap - len);
            let more = usize::try_from(more).map_err(|_| "too large for this platform")?;
            out.try_reserve_exact(more).map_err(|_| "out of memory")?;
        }
        let consumed = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
        let rest = input.get(consumed..).unwrap_or_default();
        let before = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress_vec(rest, &mut out, FlushDecompress::None)
            .map_err(|_| "not a valid deflate stream")?;
        if status == Status::StreamEnd {
            break;
        }
        let stuck = before == (inflater.total_in(), inflater.total_out());
        if stuck && out.len() < out.capacity() {
            return Err("the deflate stream ends early");
        }
    }
    if out.len() as u64 != size {
        return Err(if (out.len() as u64) < size {
            "it inflates to fewer bytes than declared"
        } else {
            "it inflates to more bytes than declared"
        });
    }
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
}

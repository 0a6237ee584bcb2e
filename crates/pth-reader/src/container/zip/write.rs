//! Writing zip archives as torch's `PyTorchStreamWriter` writes them, record by record.
//!
//! torch drives miniz 3.0.2 in zip64 mode (`mz_zip_writer_init_v2(…, MZ_ZIP_FLAG_WRITE_ZIP64)`)
//! and adds one record at a time with `mz_zip_writer_add_mem_ex_v2` (`inline_container.cc`,
//! `writeRecord`). For each record that gives:
//!
//! - a local header with version needed 0, flags `0x0808` (sizes in a data descriptor, UTF-8
//!   name), method 0 (stored), time and date 0, and CRC and both sizes 0;
//! - its extra field: a zip64 field when the size or the header's offset is 4 GiB − 1 or more
//!   (the size and a compressed size of 0, then the offset, each only when it is that large),
//!   then torch's `FB` field, whose `Z` padding puts the data at a multiple of 64 bytes
//!   (`detail::getPadding`);
//! - the data, stored;
//! - a signed data descriptor when the record is not empty: CRC and sizes, 8 bytes each when the
//!   record has a zip64 field, else 4;
//! - a central header (version made by and needed 0, the same flags) with the CRC, the sizes and
//!   the offset, each saturated at `0xFFFFFFFF` with its value in a zip64 field when that large.
//!
//! After the last record: the central directory, a zip64 end record and its locator (always, as
//! miniz writes them in zip64 mode), and the end record with its counts saturated.
//!
//! Nothing is ever sought back to: sizes and CRCs follow the data. So any [`Write`] will do, and
//! a record's bytes go straight from their source to the output.

#![forbid(unsafe_code)]

use std::io::Write;

use super::records::{
    CentralHeader, DataDescriptor, DescriptorShape, EndOfCentralDirectory, ExtraField, FileFields, LocalHeader,
    Zip64EndOfCentralDirectory, Zip64Locator,
};
use crate::{Error, ErrorKind, Result};

/// Values from this size on are written as zip64 fields (miniz's `MZ_UINT32_MAX` comparisons).
const ZIP64_FROM: u64 = 0xFFFF_FFFF;
/// torch's record alignment (`kFieldAlignment`).
pub(crate) const ALIGNMENT: u64 = 64;
/// `'F' 'B'`: the id of torch's padding field.
const PADDING_ID: u16 = u16::from_le_bytes(*b"FB");
/// Flag bits 3 (sizes in a data descriptor) and 11 (UTF-8 name).
const FLAGS: u16 = 0x0808;

/// Which zip64 fields to write for records that do not need them, as torch writes them for
/// records of 4 GiB or more and for records past 4 GiB: to exercise readers on small files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct ForceZip64 {
    /// Every record as if it held 4 GiB or more.
    pub(crate) sizes: bool,
    /// Every record as if its header lay past 4 GiB.
    pub(crate) offsets: bool,
}

/// A record's entry in the central directory, kept until the end.
struct Central {
    name: Box<[u8]>,
    crc32: u32,
    size: u64,
    offset: u64,
    zip64_size: bool,
    zip64_offset: bool,
}

/// A zip archive being written, one stored record after another.
pub(crate) struct ZipWriter<W: Write> {
    out: W,
    /// Bytes written so far (the next record's header offset).
    position: u64,
    entries: Vec<Central>,
    force: ForceZip64,
    /// torch's `combined_uncomp_crc32_`: the descriptors' CRCs, combined in order.
    combined_crc: u64,
    header: Vec<u8>,
}

/// `c10::hash_combine`, as torch combines the hashes of a serialization id.
pub(crate) fn hash_combine(seed: u64, value: u64) -> u64 {
    seed ^ (value
        .wrapping_add(0x9e37_79b9)
        .wrapping_add(seed << 6)
        .wrapping_add(seed >> 2))
}

fn io(source: std::io::Error) -> Error {
    Error::from(ErrorKind::Write { source })
}

fn too_long(what: &str) -> Error {
    Error::from(ErrorKind::Unsupported {
        what: format!("a zip record whose {what} is longer than 65535 bytes"),
    })
}

/// The 8-byte little-endian values of a zip64 field.
fn zip64_field(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The extra fields of a header: a zip64 field with the (uncompressed, compressed) sizes
/// and the offset that are given, in that order, or nothing when neither is.
fn zip64_extra(sizes: Option<[u64; 2]>, offset: Option<u64>) -> Result<Vec<u8>> {
    let values: Vec<u64> = sizes.into_iter().flatten().chain(offset).collect();
    let mut extra = Vec::new();
    if !values.is_empty() {
        ExtraField {
            id: ExtraField::ZIP64,
            data: &zip64_field(&values),
        }
        .write(&mut extra)
        .ok_or_else(|| too_long("extra field"))?;
    }
    Ok(extra)
}

impl<W: Write> ZipWriter<W> {
    /// An archive written to `out`, from its first byte.
    pub(crate) fn new(out: W, force: ForceZip64) -> Self {
        ZipWriter {
            out,
            position: 0,
            entries: Vec::new(),
            force,
            combined_crc: 0,
            header: Vec::with_capacity(256),
        }
    }

    /// The combined CRC of the records written so far (the second half of torch's
    /// serialization id).
    pub(crate) fn combined_crc(&self) -> u64 {
        self.combined_crc
    }

    /// Writes a stored record of `size` bytes named `name`; `data` writes exactly those bytes
    /// into the sink it is given.
    pub(crate) fn record(
        &mut self,
        name: &str,
        size: u64,
        data: impl FnOnce(&mut RecordSink<'_>) -> Result<()>,
    ) -> Result<()> {
        let offset = self.position;
        let zip64_size = size >= ZIP64_FROM || self.force.sizes;
        let zip64_offset = offset >= ZIP64_FROM || self.force.offsets;
        self.write_local_header(name, size, offset, zip64_size, zip64_offset)?;
        let mut sink = RecordSink {
            out: &mut self.out,
            crc: crc32fast::Hasher::new(),
            written: 0,
        };
        data(&mut sink)?;
        let (crc32, written) = (sink.crc.finalize(), sink.written);
        if written != size {
            return Err(Error::from(ErrorKind::Unsupported {
                what: format!("record {name}: {written} bytes were written for a declared {size}"),
            }));
        }
        self.position += size;
        if size > 0 {
            self.header.clear();
            let shape = DescriptorShape {
                signed: true,
                wide: zip64_size || zip64_offset,
            };
            let descriptor = DataDescriptor {
                crc32,
                compressed_size: size,
                size,
            };
            descriptor
                .write(shape, &mut self.header)
                .ok_or_else(|| too_long("size"))?;
            self.flush_header()?;
            self.combined_crc = hash_combine(self.combined_crc, u64::from(crc32));
        }
        self.entries.push(Central {
            name: name.as_bytes().into(),
            crc32,
            size,
            offset,
            zip64_size,
            zip64_offset,
        });
        Ok(())
    }

    /// The local header with its zip64 field (when needed) and torch's padding field.
    fn write_local_header(
        &mut self,
        name: &str,
        size: u64,
        offset: u64,
        zip64_size: bool,
        zip64_offset: bool,
    ) -> Result<()> {
        // miniz writes the compressed size before it is known: 0.
        let mut extra = zip64_extra(zip64_size.then_some([size, 0]), zip64_offset.then_some(offset))?;
        // `getPadding`: the data starts after the header, the name, the zip64 field and the
        // padding field's own 4 bytes, rounded up to the alignment.
        let start = offset + LocalHeader::SIZE + name.len() as u64 + extra.len() as u64 + 4;
        let pad = (ALIGNMENT - start % ALIGNMENT) % ALIGNMENT;
        let padding = vec![b'Z'; pad as usize];
        ExtraField {
            id: PADDING_ID,
            data: &padding,
        }
        .write(&mut extra)
        .ok_or_else(|| too_long("extra field"))?;
        self.header.clear();
        LocalHeader {
            fields: FileFields {
                version_needed: 0,
                flags: FLAGS,
                method: 0,
                crc32: 0,
                compressed_size: 0,
                size: 0,
            },
            name: name.as_bytes(),
            extra: &extra,
        }
        .write(&mut self.header)
        .ok_or_else(|| too_long("name"))?;
        self.flush_header()
    }

    fn flush_header(&mut self) -> Result<()> {
        self.out.write_all(&self.header).map_err(io)?;
        self.position += self.header.len() as u64;
        Ok(())
    }

    /// Writes the central directory and the end records; returns the output.
    pub(crate) fn finish(mut self) -> Result<W> {
        let directory_offset = self.position;
        let entries = std::mem::take(&mut self.entries);
        let count = entries.len() as u64;
        for entry in &entries {
            self.header.clear();
            central_header(entry, &mut self.header)?;
            self.flush_header()?;
        }
        let directory_size = self.position - directory_offset;
        if count >= ZIP64_FROM || directory_size >= ZIP64_FROM {
            return Err(Error::from(ErrorKind::Unsupported {
                what: format!(
                    "{count} records in {directory_size} bytes of central directory (miniz's limit is 2^32 - 1)"
                ),
            }));
        }
        let zip64_end = self.position;
        self.header.clear();
        Zip64EndOfCentralDirectory {
            record_size: Zip64EndOfCentralDirectory::SIZE as u64 - 12,
            disk: 0,
            directory_disk: 0,
            entries_on_disk: count,
            entries: count,
            directory_size,
            directory_offset,
        }
        .write(&mut self.header);
        Zip64Locator {
            directory_disk: 0,
            end_record_offset: zip64_end,
            disks: 1,
        }
        .write(&mut self.header);
        let count16 = u16::try_from(count).unwrap_or(u16::MAX);
        EndOfCentralDirectory {
            disk: 0,
            directory_disk: 0,
            entries_on_disk: count16,
            entries: count16,
            directory_size: saturate(directory_size),
            directory_offset: saturate(directory_offset),
            comment_len: 0,
        }
        .write(&mut self.header);
        self.flush_header()?;
        self.out.flush().map_err(io)?;
        Ok(self.out)
    }
}

fn saturate(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// A central header: values of 4 GiB − 1 or more saturated, with a zip64 field holding them.
fn central_header(entry: &Central, out: &mut Vec<u8>) -> Result<()> {
    let extra = zip64_extra(
        entry.zip64_size.then_some([entry.size, entry.size]),
        entry.zip64_offset.then_some(entry.offset),
    )?;
    let size = if entry.zip64_size {
        u32::MAX
    } else {
        saturate(entry.size)
    };
    CentralHeader {
        fields: FileFields {
            version_needed: 0,
            flags: FLAGS,
            method: 0,
            crc32: entry.crc32,
            compressed_size: size,
            size,
        },
        disk_start: 0,
        external_attributes: 0,
        local_header_offset: if entry.zip64_offset {
            u32::MAX
        } else {
            saturate(entry.offset)
        },
        name: &entry.name,
        extra: &extra,
    }
    .write(out)
    .ok_or_else(|| too_long("name"))
}

/// Where a record's bytes go: the archive's output, through the record's CRC.
pub(crate) struct RecordSink<'w> {
    out: &'w mut dyn Write,
    crc: crc32fast::Hasher,
    written: u64,
}

impl RecordSink<'_> {
    /// Writes `bytes` as the next bytes of the record.
    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.crc.update(bytes);
        self.out.write_all(bytes).map_err(io)?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

impl Write for RecordSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.crc.update(bytes);
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

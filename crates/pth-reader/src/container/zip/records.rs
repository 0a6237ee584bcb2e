//! The zip records, as named structs, each with one `read` over a [`Cursor`] and one `write`.
//!
//! Layouts are APPNOTE 6.3.10's (section numbers in each doc comment). A `read` consumes exactly
//! the record's bytes and returns `None` when the input ends first or the signature is not the
//! record's: callers turn that into an anomaly naming the record and where it should be. Nothing
//! here judges values; that is the archive's job. A `write` appends the same layout, with the
//! fields the structs do not keep (times, versions made by, comments) as torch's writer (miniz)
//! sets them: zero, except the zip64 end record's versions.

#![forbid(unsafe_code)]

use crate::cursor::Cursor;

/// Reads a record's signature, or fails.
fn signature(c: &mut Cursor<'_>, expected: u32) -> Option<()> {
    (c.u32_le()? == expected).then_some(())
}

/// The next `N` bytes (a record's fixed part) as a cursor of their own: one bounds check
/// against the input for the whole part, and none left for its fields once the compiler sees
/// the part's length (headers are read for every entry, fields one by one would check each).
fn fixed<'a, const N: usize>(c: &mut Cursor<'a>) -> Option<Cursor<'a>> {
    let part: &'a [u8; N] = c.take(N)?.try_into().ok()?;
    Some(Cursor::new(part))
}

/// End of central directory record (4.3.16), without its comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EndOfCentralDirectory {
    pub(super) disk: u16,
    pub(super) directory_disk: u16,
    pub(super) entries_on_disk: u16,
    pub(super) entries: u16,
    pub(super) directory_size: u32,
    pub(super) directory_offset: u32,
    pub(super) comment_len: u16,
}

impl EndOfCentralDirectory {
    pub(super) const SIGNATURE: [u8; 4] = *b"PK\x05\x06";
    pub(super) const SIZE: usize = 22;

    pub(super) fn read(c: &mut Cursor<'_>) -> Option<Self> {
        signature(c, u32::from_le_bytes(Self::SIGNATURE))?;
        Some(EndOfCentralDirectory {
            disk: c.u16_le()?,
            directory_disk: c.u16_le()?,
            entries_on_disk: c.u16_le()?,
            entries: c.u16_le()?,
            directory_size: c.u32_le()?,
            directory_offset: c.u32_le()?,
            comment_len: c.u16_le()?,
        })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&Self::SIGNATURE);
        for v in [self.disk, self.directory_disk, self.entries_on_disk, self.entries] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.directory_size.to_le_bytes());
        out.extend_from_slice(&self.directory_offset.to_le_bytes());
        out.extend_from_slice(&self.comment_len.to_le_bytes());
    }
}

/// Zip64 end of central directory locator (4.3.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Zip64Locator {
    pub(super) directory_disk: u32,
    pub(super) end_record_offset: u64,
    pub(super) disks: u32,
}

impl Zip64Locator {
    pub(super) const SIGNATURE: [u8; 4] = *b"PK\x06\x07";
    pub(super) const SIZE: usize = 20;

    pub(super) fn read(c: &mut Cursor<'_>) -> Option<Self> {
        signature(c, u32::from_le_bytes(Self::SIGNATURE))?;
        Some(Zip64Locator {
            directory_disk: c.u32_le()?,
            end_record_offset: c.u64_le()?,
            disks: c.u32_le()?,
        })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&Self::SIGNATURE);
        out.extend_from_slice(&self.directory_disk.to_le_bytes());
        out.extend_from_slice(&self.end_record_offset.to_le_bytes());
        out.extend_from_slice(&self.disks.to_le_bytes());
    }
}

/// Zip64 end of central directory record (4.3.14), without its extensible data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Zip64EndOfCentralDirectory {
    /// Size of the rest of the record (44 without extensible data).
    pub(super) record_size: u64,
    pub(super) disk: u32,
    pub(super) directory_disk: u32,
    pub(super) entries_on_disk: u64,
    pub(super) entries: u64,
    pub(super) directory_size: u64,
    pub(super) directory_offset: u64,
}

impl Zip64EndOfCentralDirectory {
    pub(super) const SIZE: usize = 56;
    const SIGNATURE: u32 = 0x0606_4b50;
    /// Versions made by (3.0, Unix) and needed (4.5) as miniz writes them.
    const VERSIONS: [u16; 2] = [0x031e, 0x002d];

    pub(super) fn read(c: &mut Cursor<'_>) -> Option<Self> {
        signature(c, Self::SIGNATURE)?;
        let record_size = c.u64_le()?;
        let _versions = (c.u16_le()?, c.u16_le()?);
        Some(Zip64EndOfCentralDirectory {
            record_size,
            disk: c.u32_le()?,
            directory_disk: c.u32_le()?,
            entries_on_disk: c.u64_le()?,
            entries: c.u64_le()?,
            directory_size: c.u64_le()?,
            directory_offset: c.u64_le()?,
        })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&Self::SIGNATURE.to_le_bytes());
        out.extend_from_slice(&self.record_size.to_le_bytes());
        for v in Self::VERSIONS {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.disk.to_le_bytes());
        out.extend_from_slice(&self.directory_disk.to_le_bytes());
        for v in [
            self.entries_on_disk,
            self.entries,
            self.directory_size,
            self.directory_offset,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// The fields a local header (4.3.7) and a central directory header (4.3.12) share, in the
/// order both write them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileFields {
    pub(super) version_needed: u16,
    pub(super) flags: u16,
    pub(super) method: u16,
    pub(super) crc32: u32,
    pub(super) compressed_size: u32,
    pub(super) size: u32,
}

impl FileFields {
    /// Their size.
    const SIZE: usize = 22;

    /// Reads the fields from their bytes, whose length is known here: no bounds check is left
    /// once compiled, whether or not this is inlined into the header's `read`.
    fn read(bytes: &[u8; Self::SIZE]) -> Option<Self> {
        let c = &mut Cursor::new(bytes);
        let (version_needed, flags, method) = (c.u16_le()?, c.u16_le()?, c.u16_le()?);
        let _time_and_date = c.u32_le()?;
        Some(FileFields {
            version_needed,
            flags,
            method,
            crc32: c.u32_le()?,
            compressed_size: c.u32_le()?,
            size: c.u32_le()?,
        })
    }

    /// The shared fields, time and date 0 (torch's writer sets no times).
    fn write(&self, out: &mut Vec<u8>) {
        for v in [self.version_needed, self.flags, self.method, 0, 0] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [self.crc32, self.compressed_size, self.size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// Central directory file header (4.3.12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CentralHeader<'a> {
    pub(super) fields: FileFields,
    pub(super) disk_start: u16,
    pub(super) external_attributes: u32,
    pub(super) local_header_offset: u32,
    pub(super) name: &'a [u8],
    pub(super) extra: &'a [u8],
}

impl<'a> CentralHeader<'a> {
    /// The fixed part, before the name.
    pub(super) const SIZE: u64 = 46;
    const SIGNATURE: u32 = 0x0201_4b50;

    // Read for every entry: inlined into the loop over the directory, which saves a copy of
    // the header through memory (whether it is otherwise varies with how the crate is split
    // into codegen units).
    #[inline]
    pub(super) fn read(c: &mut Cursor<'a>) -> Option<Self> {
        let mut f = fixed::<{ CentralHeader::SIZE as usize }>(c)?;
        signature(&mut f, Self::SIGNATURE)?;
        let _version_made_by = f.u16_le()?;
        let fields = FileFields::read(&f.array()?)?;
        let (name_len, extra_len, comment_len) = (f.u16_le()?, f.u16_le()?, f.u16_le()?);
        let disk_start = f.u16_le()?;
        let _internal_attributes = f.u16_le()?;
        let external_attributes = f.u32_le()?;
        let local_header_offset = f.u32_le()?;
        let name = c.take(usize::from(name_len))?;
        let extra = c.take(usize::from(extra_len))?;
        let _comment = c.take(usize::from(comment_len))?;
        Some(CentralHeader {
            fields,
            disk_start,
            external_attributes,
            local_header_offset,
            name,
            extra,
        })
    }

    /// Writes the header, version made by 0 and no comment (as miniz writes them); `None` when
    /// the name or the extra field is longer than 65535 bytes.
    pub(super) fn write(&self, out: &mut Vec<u8>) -> Option<()> {
        let (name_len, extra_len) = (
            u16::try_from(self.name.len()).ok()?,
            u16::try_from(self.extra.len()).ok()?,
        );
        out.extend_from_slice(&Self::SIGNATURE.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        self.fields.write(out);
        for v in [name_len, extra_len, 0, self.disk_start, 0] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.external_attributes.to_le_bytes());
        out.extend_from_slice(&self.local_header_offset.to_le_bytes());
        out.extend_from_slice(self.name);
        out.extend_from_slice(self.extra);
        Some(())
    }
}

/// Local file header (4.3.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LocalHeader<'a> {
    pub(super) fields: FileFields,
    pub(super) name: &'a [u8],
    pub(super) extra: &'a [u8],
}

impl<'a> LocalHeader<'a> {
    /// The fixed part, before the name.
    pub(super) const SIZE: u64 = 30;
    const SIGNATURE: u32 = 0x0403_4b50;

    // Read for every entry, as `CentralHeader::read`.
    #[inline]
    pub(super) fn read(c: &mut Cursor<'a>) -> Option<Self> {
        let mut f = fixed::<{ LocalHeader::SIZE as usize }>(c)?;
        signature(&mut f, Self::SIGNATURE)?;
        let fields = FileFields::read(&f.array()?)?;
        let (name_len, extra_len) = (f.u16_le()?, f.u16_le()?);
        Some(LocalHeader {
            fields,
            name: c.take(usize::from(name_len))?,
            extra: c.take(usize::from(extra_len))?,
        })
    }

    /// The header's length, name and extra field included.
    pub(super) fn len(&self) -> u64 {
        Self::SIZE + self.name.len() as u64 + self.extra.len() as u64
    }

    /// Writes the header; `None` when the name or the extra field is longer than 65535 bytes.
    pub(super) fn write(&self, out: &mut Vec<u8>) -> Option<()> {
        let (name_len, extra_len) = (
            u16::try_from(self.name.len()).ok()?,
            u16::try_from(self.extra.len()).ok()?,
        );
        out.extend_from_slice(&Self::SIGNATURE.to_le_bytes());
        self.fields.write(out);
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&extra_len.to_le_bytes());
        out.extend_from_slice(self.name);
        out.extend_from_slice(self.extra);
        Some(())
    }
}

/// Data descriptor (4.3.9): its signature is optional, its sizes 4 or 8 bytes wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DataDescriptor {
    pub(super) crc32: u32,
    pub(super) compressed_size: u64,
    pub(super) size: u64,
}

/// The shapes a data descriptor can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DescriptorShape {
    pub(super) signed: bool,
    pub(super) wide: bool,
}

impl DescriptorShape {
    /// The shape of a descriptor `len` bytes long (each length has exactly one), if any.
    pub(super) fn of_len(len: u64) -> Option<Self> {
        let (signed, wide) = match len {
            12 => (false, false),
            16 => (true, false),
            20 => (false, true),
            24 => (true, true),
            _ => return None,
        };
        Some(DescriptorShape { signed, wide })
    }
}

impl DataDescriptor {
    const SIGNATURE: u32 = 0x0807_4b50;

    pub(super) fn read(c: &mut Cursor<'_>, shape: DescriptorShape) -> Option<Self> {
        if shape.signed {
            signature(c, Self::SIGNATURE)?;
        }
        let crc32 = c.u32_le()?;
        let mut size = || {
            if shape.wide {
                c.u64_le()
            } else {
                c.u32_le().map(u64::from)
            }
        };
        let compressed_size = size()?;
        Some(DataDescriptor {
            crc32,
            compressed_size,
            size: size()?,
        })
    }

    /// Writes the descriptor in `shape`; `None` when a size does not fit 4 bytes.
    pub(super) fn write(&self, shape: DescriptorShape, out: &mut Vec<u8>) -> Option<()> {
        if shape.signed {
            out.extend_from_slice(&Self::SIGNATURE.to_le_bytes());
        }
        out.extend_from_slice(&self.crc32.to_le_bytes());
        for size in [self.compressed_size, self.size] {
            if shape.wide {
                out.extend_from_slice(&size.to_le_bytes());
            } else {
                out.extend_from_slice(&u32::try_from(size).ok()?.to_le_bytes());
            }
        }
        Some(())
    }
}

/// One extra field (4.5.1): a header id and its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ExtraField<'a> {
    pub(super) id: u16,
    pub(super) data: &'a [u8],
}

impl<'a> ExtraField<'a> {
    /// Zip64 extended information (4.5.3).
    pub(super) const ZIP64: u16 = 0x0001;
    /// Info-ZIP Unicode Path (4.6.9).
    pub(super) const UNICODE_PATH: u16 = 0x7075;

    pub(super) fn read(c: &mut Cursor<'a>) -> Option<Self> {
        let id = c.u16_le()?;
        let len = c.u16_le()?;
        Some(ExtraField {
            id,
            data: c.take(usize::from(len))?,
        })
    }

    /// Writes the field; `None` when its data is longer than 65535 bytes.
    pub(super) fn write(&self, out: &mut Vec<u8>) -> Option<()> {
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&u16::try_from(self.data.len()).ok()?.to_le_bytes());
        out.extend_from_slice(self.data);
        Some(())
    }

    /// Every field of an extra block, or `None` if the block does not split into fields exactly.
    /// Nothing is allocated: the fields are read again from the checked block when iterated.
    /// Inlined: called twice for every entry.
    #[inline]
    pub(super) fn all(block: &'a [u8]) -> Option<ExtraFields<'a>> {
        let mut fields = ExtraFields {
            block,
            zip64: false,
            unicode_path: false,
        };
        let mut c = Cursor::new(block);
        while c.remaining() > 0 {
            let field = ExtraField::read(&mut c)?;
            fields.zip64 |= field.id == ExtraField::ZIP64;
            fields.unicode_path |= field.id == ExtraField::UNICODE_PATH;
        }
        Some(fields)
    }
}

/// An extra block that splits into fields exactly ([`ExtraField::all`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ExtraFields<'a> {
    block: &'a [u8],
    /// Whether a zip64 field is among them.
    zip64: bool,
    /// Whether a Unicode Path field is among them.
    unicode_path: bool,
}

impl<'a> ExtraFields<'a> {
    /// The fields, in order.
    pub(super) fn iter(self) -> impl Iterator<Item = ExtraField<'a>> + Clone {
        let mut c = Cursor::new(self.block);
        std::iter::from_fn(move || ExtraField::read(&mut c))
    }

    /// Whether a zip64 field is among them.
    pub(super) fn has_zip64(self) -> bool {
        self.zip64
    }

    /// Whether a Unicode Path field is among them.
    pub(super) fn has_unicode_path(self) -> bool {
        self.unicode_path
    }

    /// The fields with header id `id`, in order. For the ids the entries' checks look for,
    /// the block is not read again when [`all`](ExtraField::all) saw none (every local header
    /// of a torch archive has a padding field, which those checks would read twice).
    pub(super) fn with_id(self, id: u16) -> impl Iterator<Item = ExtraField<'a>> + Clone {
        let present = match id {
            ExtraField::ZIP64 => self.zip64,
            ExtraField::UNICODE_PATH => self.unicode_path,
            _ => true,
        };
        let block = if present { self.block } else { &[] };
        ExtraFields { block, ..self }.iter().filter(move |f| f.id == id)
    }
}

/// The data of an Info-ZIP Unicode Path extra field (4.6.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UnicodePath<'a> {
    pub(super) version: u8,
    /// CRC-32 of the header's name, which the path replaces when it matches.
    pub(super) name_crc32: u32,
    pub(super) path: &'a [u8],
}

impl<'a> UnicodePath<'a> {
    pub(super) fn read(c: &mut Cursor<'a>) -> Option<Self> {
        Some(UnicodePath {
            version: c.u8()?,
            name_crc32: c.u32_le()?,
            path: c.rest(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_their_fields_and_refuse_other_signatures() {
        let mut eocd = b"PK\x05\x06".to_vec();
        for v in [0u16, 0, 2, 2] {
            eocd.extend_from_slice(&v.to_le_bytes());
        }
        eocd.extend_from_slice(&100u32.to_le_bytes());
        eocd.extend_from_slice(&7u32.to_le_bytes());
        eocd.extend_from_slice(&3u16.to_le_bytes());
        let mut c = Cursor::new(&eocd);
        let record = EndOfCentralDirectory::read(&mut c).unwrap();
        assert_eq!(
            (record.entries, record.directory_size, record.directory_offset),
            (2, 100, 7)
        );
        assert_eq!(c.position(), EndOfCentralDirectory::SIZE);
        assert_eq!(Zip64Locator::read(&mut Cursor::new(&eocd)), None);
        assert_eq!(EndOfCentralDirectory::read(&mut Cursor::new(&eocd[..21])), None);
    }

    #[test]
    fn descriptors_have_one_shape_per_length() {
        let shapes: Vec<_> = (0..30).filter_map(DescriptorShape::of_len).collect();
        assert_eq!(shapes.len(), 4);
        let mut bytes = b"PK\x07\x08".to_vec();
        bytes.extend_from_slice(&9u32.to_le_bytes());
        bytes.extend_from_slice(&5u64.to_le_bytes());
        bytes.extend_from_slice(&6u64.to_le_bytes());
        let shape = DescriptorShape::of_len(24).unwrap();
        let d = DataDescriptor::read(&mut Cursor::new(&bytes), shape).unwrap();
        assert_eq!((d.crc32, d.compressed_size, d.size), (9, 5, 6));
        let unsigned = DescriptorShape::of_len(20).unwrap();
        assert_eq!(DataDescriptor::read(&mut Cursor::new(&bytes[4..]), unsigned), Some(d));
    }

    #[test]
    fn extra_blocks_split_exactly_or_not_at_all() {
        let block = [1, 0, 2, 0, 9, 9, 0x75, 0x70, 0, 0];
        let fields: Vec<_> = ExtraField::all(&block).unwrap().iter().collect();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].id, ExtraField::UNICODE_PATH);
        assert_eq!(ExtraField::all(&block).unwrap().with_id(ExtraField::ZIP64).count(), 1);
        assert_eq!(
            ExtraField::all(&block[..6])
                .unwrap()
                .with_id(ExtraField::UNICODE_PATH)
                .count(),
            0
        );
        assert!(ExtraField::all(&block[..9]).is_none());
        assert!(ExtraField::all(&[1, 0, 5]).is_none());
        let path = UnicodePath::read(&mut Cursor::new(&[1, 1, 2, 3, 4, b'a'])).unwrap();
        assert_eq!((path.version, path.path), (1, &b"a"[..]));
    }
}

//! [`ZipEntry`]: one central directory header and its local header, checked against each other.

#![forbid(unsafe_code)]

use std::ops::Range;
use std::sync::Arc;

use super::end::Directory;
use super::names::check_name;
use super::records::{CentralHeader, ExtraField, ExtraFields, LocalHeader, UnicodePath};
use super::{Dialect, HeaderReads};
use crate::cursor::Cursor;
use crate::zip_anomaly::ZipAnomaly;

/// How an entry's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Uncompressed: read in place, zero-copy.
    Stored,
    /// Deflate: inflated on read.
    Deflated,
}

/// One member of a [`ZipArchive`](super::ZipArchive), as the central directory describes it
/// (which is what torch reads) after checking that the local header agrees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    name: EntryName,
    compression: Compression,
    header_offset: u64,
    data_start: u64,
    compressed_size: u64,
    size: u64,
    crc32: u32,
    flags: u16,
}

/// An entry's name: a range of one buffer that holds the names of all the archive's entries.
///
/// One allocation for the archive instead of one per entry: an archive of 20,000 tensors has
/// 20,000 names, whose allocation (and freeing) cost more than all the checks of their entries.
#[derive(Clone)]
struct EntryName {
    /// The names of every entry of the archive, one after another.
    names: Arc<str>,
    /// This entry's name in `names`.
    range: Range<usize>,
}

impl EntryName {
    fn as_str(&self) -> &str {
        // The range is one this module cut at name boundaries: `get` does not fail.
        self.names.get(self.range.clone()).unwrap_or_default()
    }
}

impl PartialEq for EntryName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for EntryName {}

impl std::fmt::Debug for EntryName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Flag bits (APPNOTE 4.4.4).
const ENCRYPTED: u16 = 1 << 0;
pub(super) const DESCRIPTOR: u16 = 1 << 3;
const PATCH: u16 = 1 << 5;
const STRONG_ENCRYPTION: u16 = 1 << 6;
const UTF8: u16 = 1 << 11;
const MASKED_HEADER: u16 = 1 << 13;
/// The bits that change how an entry is read or named: local and central headers must agree.
const MEANINGFUL_FLAGS: u16 = ENCRYPTED | DESCRIPTOR | PATCH | STRONG_ENCRYPTION | UTF8 | MASKED_HEADER;
/// The DOS directory attribute, which miniz honours (`mz_zip_reader_is_file_a_directory`).
const DOS_DIRECTORY: u32 = 0x10;
/// The highest "version needed to extract" Python's `zipfile` accepts (6.3).
const PYTHON_MAX_VERSION: u16 = 63;

impl ZipEntry {
    /// The member's name as written in the central directory.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// How its bytes are stored.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Its uncompressed size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Its size as stored in the archive.
    pub fn compressed_size(&self) -> u64 {
        self.compressed_size
    }

    /// Where its data starts in the archive.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// The archive bytes holding its (possibly compressed) data.
    pub fn data_range(&self) -> Range<u64> {
        self.data_start..self.data_start + self.compressed_size
    }

    /// Whether it is a directory (its name ends with `/`).
    pub fn is_dir(&self) -> bool {
        self.name().ends_with('/')
    }

    /// The CRC-32 the central directory declares (torch never checks it; see
    /// [`ZipArchive::crc_matches`](super::ZipArchive::crc_matches)).
    pub fn crc32(&self) -> u32 {
        self.crc32
    }

    /// Where its local header starts.
    pub(super) fn header_offset(&self) -> u64 {
        self.header_offset
    }

    /// The bytes of its local header.
    pub(super) fn header_range(&self) -> std::ops::Range<usize> {
        let start = usize::try_from(self.header_offset).unwrap_or(usize::MAX);
        let end = usize::try_from(self.data_start).unwrap_or(usize::MAX);
        start..end.max(start)
    }

    /// Whether flag bit 3 announces a data descriptor after the data.
    pub(super) fn has_descriptor(&self) -> bool {
        self.flags & DESCRIPTOR != 0
    }
}

/// Every entry of the directory, in directory order.
pub(super) fn read_entries(
    data: &[u8],
    directory: &Directory,
    dialect: Dialect,
    warnings: &mut Vec<ZipAnomaly>,
    headers: &mut HeaderReads<'_>,
) -> Result<Vec<ZipEntry>, ZipAnomaly> {
    let truncated = |offset: u64| ZipAnomaly::Truncated {
        record: "central directory header",
        offset,
    };
    let bytes = usize::try_from(directory.offset)
        .ok()
        .and_then(|start| data.get(start..)?.get(..usize::try_from(directory.size).ok()?))
        .ok_or(truncated(directory.offset))?;
    // Each header takes at least 46 bytes of the directory, which is inside the file.
    if directory.entries.saturating_mul(CentralHeader::SIZE) > directory.size {
        return Err(truncated(directory.offset));
    }
    let mut entries = Vec::new();
    entries
        .try_reserve_exact(usize::try_from(directory.entries).unwrap_or(usize::MAX))
        .map_err(|_| truncated(directory.offset))?;
    // The names lie in the directory, after the fixed part of each header: room for all of
    // them at once (bounded by the directory, which is inside the file).
    let mut names = Vec::new();
    let names_len = directory.size.saturating_sub(directory.entries * CentralHeader::SIZE);
    names
        .try_reserve_exact(usize::try_from(names_len).unwrap_or(usize::MAX))
        .map_err(|_| truncated(directory.offset))?;
    // Each entry shares this empty buffer until every name is read.
    let no_names: Arc<str> = Arc::from("");
    let mut c = Cursor::new(bytes);
    for _ in 0..directory.entries {
        let at = directory.offset + c.position() as u64;
        let header = CentralHeader::read(&mut c).ok_or(truncated(at))?;
        check_name(header.name, header.fields.flags, dialect)?;
        let start = names.len();
        names.extend_from_slice(header.name);
        let stored = EntryName {
            names: Arc::clone(&no_names),
            range: start..names.len(),
        };
        let entry = entry(headers, &header, stored, dialect, warnings)?;
        headers.checked(entry.header_range());
        entries.push(entry);
    }
    if c.remaining() > 0 {
        return Err(ZipAnomaly::DirectoryCount {
            declared: directory.entries,
            leftover: c.remaining() as u64,
        });
    }
    // Every name is UTF-8 (`check_name`), so all of them together are: decoded once here
    // rather than name by name (most are ASCII, which `check_name` sees without decoding).
    let names: Arc<str> = String::from_utf8(names)
        .map_err(|e| ZipAnomaly::BadName {
            name: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            reason: "is not UTF-8",
        })?
        .into();
    for entry in &mut entries {
        entry.name.names = Arc::clone(&names);
    }
    Ok(entries)
}

/// One entry: the central header's fields checked, resolved through zip64, and matched
/// against the local header.
///
/// `stored`: where the header's name (checked) is in the archive's names, which are attached
/// once all are read.
fn entry(
    headers: &mut HeaderReads<'_>,
    header: &CentralHeader<'_>,
    stored: EntryName,
    dialect: Dialect,
    warnings: &mut Vec<ZipAnomaly>,
) -> Result<ZipEntry, ZipAnomaly> {
    let name = header.name;
    let compression = check_central(name, header, dialect, warnings)?;
    let fields = ExtraField::all(header.extra).ok_or_else(|| ZipAnomaly::MalformedExtra { name: shown(name) })?;
    check_extra_paths(name, header.name, fields)?;
    let narrow = [
        header.fields.size,
        header.fields.compressed_size,
        header.local_header_offset,
    ];
    let [size, compressed_size, header_offset] = resolve(name, fields, narrow, Header::Central)?;
    let mut entry = ZipEntry {
        name: stored,
        compression,
        header_offset,
        data_start: 0,
        compressed_size,
        size,
        crc32: header.fields.crc32,
        flags: header.fields.flags,
    };
    check_sizes(&entry, name, header.external_attributes, warnings)?;
    entry.data_start = check_local(headers, &entry, name, header.fields.method, warnings)?;
    Ok(entry)
}

/// Flags, method, disk and version of a central header; the compression it names.
fn check_central(
    name: &[u8],
    header: &CentralHeader<'_>,
    dialect: Dialect,
    warnings: &mut Vec<ZipAnomaly>,
) -> Result<Compression, ZipAnomaly> {
    let name = || shown(name);
    // mz_zip_reader_is_file_supported and mz_zip_reader_read_central_dir refuse these.
    let fields = &header.fields;
    if fields.flags & (ENCRYPTED | STRONG_ENCRYPTION | MASKED_HEADER) != 0 {
        return Err(ZipAnomaly::Encrypted { name: name() });
    }
    if fields.flags & PATCH != 0 {
        return Err(ZipAnomaly::PatchData { name: name() });
    }
    let compression = match fields.method {
        0 => Compression::Stored,
        8 => Compression::Deflated,
        method => return Err(ZipAnomaly::UnsupportedMethod { name: name(), method }),
    };
    if header.disk_start != 0 {
        return Err(ZipAnomaly::MultiDisk);
    }
    if fields.version_needed > PYTHON_MAX_VERSION {
        let anomaly = ZipAnomaly::VersionNeeded {
            name: name(),
            version: fields.version_needed,
        };
        match dialect {
            Dialect::Python => return Err(anomaly),
            Dialect::Torch => warnings.push(anomaly),
        }
    }
    Ok(compression)
}

/// Sizes that some reader would read differently: miniz reads a stored entry's uncompressed
/// size, Python its compressed size; miniz returns an uninitialised buffer for an entry without
/// data or flagged as a directory.
fn check_sizes(
    entry: &ZipEntry,
    name: &[u8],
    external_attributes: u32,
    warnings: &mut Vec<ZipAnomaly>,
) -> Result<(), ZipAnomaly> {
    let is_dir = name.ends_with(b"/");
    let name = || shown(name);
    if entry.compressed_size == 0 && entry.size > 0 {
        return Err(ZipAnomaly::SizeWithoutData { name: name() });
    }
    if entry.compression == Compression::Stored && entry.compressed_size != entry.size {
        return Err(ZipAnomaly::StoredSizeMismatch { name: name() });
    }
    let has_data = entry.size > 0 || entry.compressed_size > 0;
    if is_dir && has_data {
        warnings.push(ZipAnomaly::DirectoryData { name: name() });
    } else if external_attributes & DOS_DIRECTORY != 0 && has_data {
        return Err(ZipAnomaly::DirectoryWithData { name: name() });
    }
    Ok(())
}

/// The local header agrees with the central one on name, method, meaningful flags and sizes;
/// returns where the data starts (after the local name and extra field, as miniz computes it).
fn check_local(
    headers: &mut HeaderReads<'_>,
    entry: &ZipEntry,
    name: &[u8],
    method: u16,
    warnings: &mut Vec<ZipAnomaly>,
) -> Result<u64, ZipAnomaly> {
    let at = entry.header_offset;
    let archive_len = headers.archive_len();
    let local = headers
        .local_header(at)
        .and_then(|rest| LocalHeader::read(&mut Cursor::new(rest)))
        .ok_or(ZipAnomaly::Truncated {
            record: "local header",
            offset: at,
        })?;
    let mismatch = |field| ZipAnomaly::LocalHeaderMismatch {
        name: shown(name),
        field,
    };
    if local.name != name {
        return Err(mismatch("name"));
    }
    if local.fields.method != method {
        return Err(mismatch("compression method"));
    }
    if local.fields.flags & MEANINGFUL_FLAGS != entry.flags & MEANINGFUL_FLAGS {
        return Err(mismatch("flags"));
    }
    let fields = ExtraField::all(local.extra).ok_or_else(|| ZipAnomaly::MalformedExtra { name: shown(name) })?;
    check_extra_paths(name, local.name, fields)?;
    let narrow = [local.fields.size, local.fields.compressed_size];
    let [size, compressed_size] = resolve(name, fields, narrow, Header::Local)?;
    let sizes_agree = (size, compressed_size) == (entry.size, entry.compressed_size);
    let deferred = entry.has_descriptor() && (size, compressed_size) == (0, 0);
    if !(sizes_agree || deferred) {
        return Err(mismatch("sizes"));
    }
    let crc32 = local.fields.crc32;
    if crc32 != entry.crc32 && !(entry.has_descriptor() && crc32 == 0) {
        warnings.push(ZipAnomaly::LocalCrcMismatch { name: shown(name) });
    }
    let data_start = at + local.len();
    let end = data_start.checked_add(entry.compressed_size);
    if end.is_none_or(|end| end > archive_len) {
        return Err(ZipAnomaly::Truncated {
            record: "entry data",
            offset: data_start,
        });
    }
    Ok(data_start)
}

/// [`check_unicode_paths`] of the Unicode Path fields of `fields`, if there are any (most
/// extra blocks have none: they are not read again). Inlined: called twice for every entry.
#[inline]
fn check_extra_paths(name: &[u8], raw_name: &[u8], fields: ExtraFields<'_>) -> Result<(), ZipAnomaly> {
    if !fields.has_unicode_path() {
        return Ok(());
    }
    check_unicode_paths(name, raw_name, fields.with_id(ExtraField::UNICODE_PATH))
}

/// Refuses Info-ZIP Unicode Path fields that name the entry otherwise: miniz ignores them, the
/// `zip` crate (when the CRC matches) and Python ≥ 3.12 (when the version is 1 as well) rename
/// the entry. A field repeating the name changes nothing for anyone.
// Rare (few archives have such fields): kept out of the loop over the entries.
#[inline(never)]
fn check_unicode_paths<'a>(
    name: &[u8],
    raw_name: &[u8],
    fields: impl Iterator<Item = ExtraField<'a>>,
) -> Result<(), ZipAnomaly> {
    for field in fields.filter(|f| f.id == ExtraField::UNICODE_PATH) {
        let path = UnicodePath::read(&mut Cursor::new(field.data))
            .ok_or_else(|| ZipAnomaly::MalformedExtra { name: shown(name) })?;
        if path.path != raw_name {
            return Err(ZipAnomaly::UnicodePath {
                name: shown(name),
                path: String::from_utf8_lossy(path.path).into_owned(),
            });
        }
    }
    Ok(())
}

/// A checked name (UTF-8), as anomalies show it.
fn shown(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// Which header a zip64 extra field is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    Central,
    Local,
}

/// [`resolve_zip64`] of `narrow` through the zip64 fields of `fields`. Most headers have
/// neither a zip64 field nor a saturated field: then their values are the 32-bit ones, and
/// the extra block is not read again. Inlined: called twice for every entry.
#[inline]
fn resolve<const N: usize>(
    name: &[u8],
    fields: ExtraFields<'_>,
    narrow: [u32; N],
    header: Header,
) -> Result<[u64; N], ZipAnomaly> {
    if !fields.has_zip64() && !narrow.contains(&u32::MAX) {
        return Ok(narrow.map(u64::from));
    }
    resolve_zip64(name, fields.with_id(ExtraField::ZIP64), narrow, header)
}

/// The 32-bit fields `narrow`, with each saturated one (0xFFFFFFFF) replaced by the next
/// 8-byte value of the zip64 extra field, as miniz (`mz_zip_file_stat_internal`) and Python
/// (`ZipInfo._decodeExtra`) both do; values past those are read by neither.
///
/// Refused, because readers part ways on them: a repeated zip64 field (miniz uses the first,
/// Python applies each in turn), a missing or short one (both keep 0xFFFFFFFF as a size, or
/// fail), and, in the central directory, values that contradict 32-bit fields none of which is
/// saturated (a reader that trusts zip64 values first would take them; no writer emits that).
/// A local header may carry zip64 values beside unsaturated sizes: miniz, torch's writer, puts
/// the sizes and offset of a record past 4 GiB there while the local sizes stay 0 (deferred to
/// the data descriptor), and no reader consults them.
// Rare (archives under 4 GiB have no zip64 fields): kept out of the loop over the entries.
#[inline(never)]
fn resolve_zip64<'a, const N: usize>(
    name: &[u8],
    fields: impl Iterator<Item = ExtraField<'a>>,
    narrow: [u32; N],
    header: Header,
) -> Result<[u64; N], ZipAnomaly> {
    let problem = |problem| ZipAnomaly::Zip64Extra {
        name: shown(name),
        problem,
    };
    let mut zip64 = fields.filter(|f| f.id == ExtraField::ZIP64);
    let field = zip64.next();
    if zip64.next().is_some() {
        return Err(problem("is repeated"));
    }
    let saturated = narrow.iter().filter(|&&v| v == u32::MAX).count();
    let mut wide = narrow.map(u64::from);
    let Some(field) = field else {
        return match saturated {
            0 => Ok(wide),
            _ => Err(problem("is missing for a saturated field")),
        };
    };
    let mut values = Cursor::new(field.data);
    if saturated == 0 && header == Header::Central {
        // Nothing to resolve: any values present must repeat the 32-bit fields, in order.
        for v in &wide {
            if values.remaining() >= 8 && values.u64_le() != Some(*v) {
                return Err(problem("contradicts the 32-bit fields"));
            }
        }
    }
    for v in wide.iter_mut().filter(|v| **v == u64::from(u32::MAX)) {
        *v = values.u64_le().ok_or(problem("is too short"))?;
    }
    Ok(wide)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip64(values: &[u64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn resolve(data: &[&[u8]], narrow: [u32; 3]) -> Result<[u64; 3], ZipAnomaly> {
        let fields: Vec<_> = data.iter().map(|d| ExtraField { id: 1, data: d }).collect();
        resolve_zip64(b"e", fields.into_iter(), narrow, Header::Central)
    }

    #[test]
    fn saturated_fields_take_zip64_values_in_order() {
        let m = u32::MAX;
        assert_eq!(resolve(&[&zip64(&[5, 6])], [m, 3, m]), Ok([5, 3, 6]));
        assert_eq!(resolve(&[&zip64(&[5, 6, 7])], [m, m, m]), Ok([5, 6, 7]));
        let with_disk = [zip64(&[5]), vec![0; 4]].concat();
        assert_eq!(resolve(&[&with_disk], [m, 1, 2]), Ok([5, 1, 2]));
        assert_eq!(resolve(&[], [1, 2, 3]), Ok([1, 2, 3]));
        assert_eq!(resolve(&[&zip64(&[1, 2])], [1, 2, 3]), Ok([1, 2, 3]));
    }

    #[test]
    fn ambiguous_zip64_fields_are_refused() {
        let m = u32::MAX;
        let refused = |data: &[&[u8]], narrow| resolve(data, narrow).is_err();
        assert!(refused(&[&zip64(&[5]), &zip64(&[5])], [m, 1, 2]), "repeated");
        assert!(refused(&[], [m, 1, 2]), "missing");
        assert!(refused(&[&zip64(&[5])], [m, m, 2]), "too short");
        assert!(refused(&[&zip64(&[9])], [1, 2, 3]), "lying");
    }

    #[test]
    fn local_headers_may_carry_zip64_values_beside_unsaturated_sizes() {
        // What miniz writes for a small record past 4 GiB: local sizes 0, the offset in zip64.
        let offset = zip64(&[5 << 32]);
        let fields = [ExtraField { id: 1, data: &offset }];
        assert_eq!(
            resolve_zip64(b"e", fields.into_iter(), [0, 0], Header::Local),
            Ok([0, 0])
        );
        assert!(resolve_zip64(b"e", fields.into_iter(), [0, 0], Header::Central).is_err());
        // A deflated record past 4 GiB: size saturated, compressed size kept, both in zip64.
        let sizes = zip64(&[5 << 32, 7]);
        let fields = [ExtraField { id: 1, data: &sizes }];
        let resolved = resolve_zip64(b"e", fields.into_iter(), [u32::MAX, 7, 9], Header::Central);
        assert_eq!(resolved, Ok([5 << 32, 7, 9]));
    }
}

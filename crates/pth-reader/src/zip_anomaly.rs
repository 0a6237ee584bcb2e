//! [`ZipAnomaly`]: every way an archive can depart from what torch writes, named (a leaf: the
//! error type and the zip reader both use it).
//!
//! One vocabulary for both outcomes of the anomaly policy: an anomaly that lets two readers see
//! different bytes is a refusal (`ErrorKind::Zip`); one that torch reads unambiguously is read as
//! torch reads it and reported as a warning. `docs/design.md` ("Zip: one reading, or a
//! refusal") says which is which, and why, from torch's and miniz's source.

#![forbid(unsafe_code)]

use std::fmt;

/// Something unusual about a zip archive: the reason for a refusal, or a warning.
///
/// Each variant names the anomaly and carries what is needed to find it (entry names, byte
/// offsets). Messages are one line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZipAnomaly {
    /// No end-of-central-directory record in the last 64 KiB of the file.
    NoEndRecord,
    /// An end-of-central-directory signature besides the one miniz picks (in the archive
    /// comment, the central directory or after the record): readers that search differently
    /// would pick another directory.
    SeveralEndRecords {
        /// Where the other signature is.
        offset: u64,
    },
    /// A record is cut short by the end of the file, or lacks its signature.
    Truncated {
        /// Which record.
        record: &'static str,
        /// Where it should be.
        offset: u64,
    },
    /// The end records describe a multi-disk archive.
    MultiDisk,
    /// The zip64 end records are misplaced, or disagree with the classic end record.
    Zip64End {
        /// What is wrong.
        problem: &'static str,
    },
    /// The central directory does not end where the end records begin, so readers that
    /// correct offsets for prepended data (Python's `zipfile`) and readers that do not (miniz)
    /// would read different directories.
    DirectoryMisplaced {
        /// Where the end records say the directory starts.
        offset: u64,
        /// Its declared size.
        size: u64,
        /// Where the end records begin.
        end_records: u64,
    },
    /// The directory's headers do not fill its declared size exactly (miniz stops after the
    /// declared count, Python's `zipfile` after the declared size).
    DirectoryCount {
        /// Entries the end record declares.
        declared: u64,
        /// Bytes of the directory left after them (a directory too short for them is
        /// `Truncated`).
        leftover: u64,
    },
    /// Bytes follow the end record's comment, or the comment length reaches past the end of the
    /// file. Ignored by torch and by Python's `zipfile`.
    TrailingBytes {
        /// How many bytes follow the comment (0 when the comment is cut short).
        len: u64,
    },
    /// An entry name that is empty, absolute, escapes its folder, contains a backslash or NUL,
    /// or is not UTF-8.
    BadName {
        /// The name (lossily decoded).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two entries have the same name.
    DuplicateName {
        /// The name.
        name: String,
    },
    /// Two entries' names differ only in ASCII case: miniz, which torch uses, looks names up
    /// ignoring case, and would pick either.
    CaseCollision {
        /// The first name.
        first: String,
        /// The second name.
        second: String,
    },
    /// An entry is encrypted (flag bit 0), strongly encrypted (bit 6) or masks its local
    /// header (bit 13).
    Encrypted {
        /// The entry.
        name: String,
    },
    /// An entry holds patch data (flag bit 5).
    PatchData {
        /// The entry.
        name: String,
    },
    /// A compression method other than stored (0) and deflate (8).
    UnsupportedMethod {
        /// The entry.
        name: String,
        /// The method number.
        method: u16,
    },
    /// A stored entry whose compressed and uncompressed sizes differ: miniz reads the
    /// uncompressed size, Python's `zipfile` the compressed one.
    StoredSizeMismatch {
        /// The entry.
        name: String,
    },
    /// An entry declares a size but has no data: miniz hands torch an uninitialised buffer.
    SizeWithoutData {
        /// The entry.
        name: String,
    },
    /// An entry flagged as a directory (DOS attribute) that has data: miniz hands torch an
    /// uninitialised buffer instead of it.
    DirectoryWithData {
        /// The entry.
        name: String,
    },
    /// A directory entry (name ending in `/`) with data, which no reader reads.
    DirectoryData {
        /// The entry.
        name: String,
    },
    /// An extra field block that does not parse as (id, length, data) fields.
    MalformedExtra {
        /// The entry.
        name: String,
    },
    /// A zip64 extra field that is repeated, missing, of the wrong length, or that disagrees
    /// with the 32-bit fields.
    Zip64Extra {
        /// The entry.
        name: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// An Info-ZIP Unicode Path extra field (0x7075) naming the entry differently: miniz
    /// ignores it, the `zip` crate and Python ≥ 3.12 rename the entry.
    UnicodePath {
        /// The entry's name.
        name: String,
        /// The name in the extra field (lossily decoded).
        path: String,
    },
    /// The local header disagrees with the central directory (miniz reads the central
    /// directory; streaming readers read the local header).
    LocalHeaderMismatch {
        /// The entry.
        name: String,
        /// Which field.
        field: &'static str,
    },
    /// The local header's CRC differs from the central directory's (nobody compares them;
    /// torch checks no CRC).
    LocalCrcMismatch {
        /// The entry.
        name: String,
    },
    /// A data descriptor whose sizes disagree with the central directory.
    DescriptorMismatch {
        /// The entry.
        name: String,
    },
    /// A data descriptor whose CRC differs from the central directory's (torch checks no CRC).
    DescriptorCrcMismatch {
        /// The entry.
        name: String,
    },
    /// Flag bit 3 announces a data descriptor that is not there (central-directory readers do
    /// not need it).
    DescriptorMissing {
        /// The entry.
        name: String,
    },
    /// Bytes before the first entry's local header, which streaming readers would read.
    DataBeforeFirstEntry {
        /// How many.
        len: u64,
    },
    /// Bytes between an entry (and its data descriptor) and the next local header, or the
    /// central directory, that belong to no entry.
    Gap {
        /// The entry they follow.
        after: String,
        /// How many.
        len: u64,
    },
    /// Two entries' local headers or data overlap (or an entry runs into the directory).
    Overlap {
        /// The first entry.
        first: String,
        /// What it runs into: another entry, or the central directory.
        second: String,
    },
    /// The version needed to extract is above 6.3, which Python's `zipfile` refuses.
    VersionNeeded {
        /// The entry.
        name: String,
        /// The version, times ten.
        version: u16,
    },
    /// A non-ASCII name without the UTF-8 flag (bit 11): Python's `zipfile` decodes it as
    /// cp437, torch compares bytes.
    NameEncoding {
        /// The entry.
        name: String,
    },
    /// A deflated entry that is not a deflate stream, ends early, or inflates to another size
    /// than declared.
    Inflate {
        /// The entry.
        name: String,
        /// What went wrong.
        problem: String,
    },
    /// An entry's bytes do not match its CRC (Python's `zipfile` refuses; torch does not check).
    CrcMismatch {
        /// The entry.
        name: String,
    },
    /// The archive has no entries.
    Empty,
    /// The first entry is not inside a folder: torch takes its first path component as the
    /// root folder of every record.
    NoRootFolder {
        /// The first entry's name.
        name: String,
    },
    /// An entry outside the root folder (torch's `getAllRecords` refuses it).
    OutsideRoot {
        /// The entry.
        name: String,
        /// The root folder.
        root: String,
    },
    /// A record torch asks for exists only in another case, which torch finds (miniz ignores
    /// ASCII case).
    CaseInsensitiveMatch {
        /// The name torch asks for.
        wanted: String,
        /// The entry it finds.
        found: String,
    },
}

impl fmt::Display for ZipAnomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ZipAnomaly as A;
        match self {
            A::NoEndRecord => write!(f, "no end-of-central-directory record"),
            A::SeveralEndRecords { offset } => write!(
                f,
                "another end-of-central-directory signature at byte {offset} (readers could pick different directories)"
            ),
            A::Truncated { record, offset } => write!(f, "truncated or missing {record} at byte {offset}"),
            A::MultiDisk => write!(f, "multi-disk archives are not supported"),
            A::Zip64End { problem } => write!(f, "zip64 end records: {problem}"),
            A::DirectoryMisplaced { offset, size, end_records } => write!(
                f,
                "the central directory ({size} bytes at {offset}) does not end where the end records begin ({end_records})"
            ),
            A::DirectoryCount { declared, leftover } => write!(
                f,
                "{declared} central directory entries leave {leftover} bytes of the directory unread (readers would list different entries)"
            ),
            A::TrailingBytes { len } => {
                write!(f, "{len} bytes after the end record's comment, or a comment cut short (ignored)")
            }
            A::BadName { name, reason } => write!(f, "entry name {name:?} {reason}"),
            A::DuplicateName { name } => write!(f, "duplicate entry name {name:?}"),
            A::CaseCollision { first, second } => write!(
                f,
                "entries {first:?} and {second:?} differ only in case (torch looks names up ignoring case)"
            ),
            A::Encrypted { name } => write!(f, "{name}: encrypted entries are not supported"),
            A::PatchData { name } => write!(f, "{name}: patch data is not supported"),
            A::UnsupportedMethod { name, method } => {
                write!(f, "{name}: compression method {method} is not supported (torch reads stored and deflate)")
            }
            A::StoredSizeMismatch { name } => {
                write!(f, "{name}: stored entry with different compressed and uncompressed sizes")
            }
            A::SizeWithoutData { name } => {
                write!(f, "{name}: declares a size but has no data (torch would read uninitialised memory)")
            }
            A::DirectoryWithData { name } => write!(
                f,
                "{name}: has data but is flagged as a directory (torch would read uninitialised memory)"
            ),
            A::DirectoryData { name } => write!(f, "{name}: directory entry with data (ignored)"),
            A::MalformedExtra { name } => write!(f, "{name}: malformed extra fields"),
            A::Zip64Extra { name, problem } => write!(f, "{name}: zip64 extra field {problem}"),
            A::UnicodePath { name, path } => write!(
                f,
                "{name}: Info-ZIP Unicode Path extra field names it {path:?} (readers disagree on its name)"
            ),
            A::LocalHeaderMismatch { name, field } => {
                write!(f, "{name}: the local header's {field} differs from the central directory's")
            }
            A::LocalCrcMismatch { name } => {
                write!(f, "{name}: the local header's CRC differs from the central directory's (not checked)")
            }
            A::DescriptorMismatch { name } => {
                write!(f, "{name}: the data descriptor's sizes differ from the central directory's")
            }
            A::DescriptorCrcMismatch { name } => {
                write!(f, "{name}: the data descriptor's CRC differs from the central directory's (not checked)")
            }
            A::DescriptorMissing { name } => write!(f, "{name}: the announced data descriptor is missing"),
            A::DataBeforeFirstEntry { len } => write!(f, "{len} bytes before the first entry"),
            A::Gap { after, len } => write!(f, "{len} bytes after {after} belong to no entry"),
            A::Overlap { first, second } => write!(f, "entries {first} and {second} overlap"),
            A::VersionNeeded { name, version } => write!(
                f,
                "{name}: needs zip version {}.{} to extract (Python's zipfile refuses above 6.3)",
                version / 10,
                version % 10
            ),
            A::NameEncoding { name } => write!(
                f,
                "{name}: non-ASCII name without the UTF-8 flag (Python's zipfile reads it as cp437)"
            ),
            A::Inflate { name, problem } => write!(f, "{name}: cannot inflate: {problem}"),
            A::CrcMismatch { name } => write!(f, "{name}: CRC mismatch"),
            A::Empty => write!(f, "the archive is empty"),
            A::NoRootFolder { name } => write!(f, "{name} is not inside a root folder"),
            A::OutsideRoot { name, root } => write!(f, "{name} is outside the root folder {root}/"),
            A::CaseInsensitiveMatch { wanted, found } => write!(
                f,
                "record {wanted} is stored as {found} (torch matches names ignoring ASCII case)"
            ),
        }
    }
}

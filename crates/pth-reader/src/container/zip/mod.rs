//! Zip archives, read exactly as torch reads them, or refused with the anomaly named.
//!
//! The records are parsed here (`records.rs`, one struct and one `read` each), not by a zip
//! library: torch reads archives with miniz, whose choices (which end record, which name,
//! which size) other readers do not all share, and this module must reproduce miniz's reading
//! wherever it is unambiguous and refuse wherever another common reader (Python's `zipfile`,
//! the `zip` crate, a streaming reader) could read different bytes. `docs/design.md` has the
//! decision for every anomaly and the source line behind it.
//!
//! Parsing goes: end records (`end.rs`) → central directory headers, each checked against its
//! local header (`entry.rs`) → names (`names.rs`) → layout (`layout.rs`). Entry bytes are read
//! by [`ZipArchive::read`] (`member.rs`) within an [`InflateBudget`].

#![forbid(unsafe_code)]

mod end;
mod entry;
mod headers;
mod layout;
mod member;
mod names;
mod records;
pub(crate) mod write;

pub use crate::zip_anomaly::ZipAnomaly;
pub use entry::{Compression, ZipEntry};
pub use member::InflateBudget;

use headers::HeaderReads;

use crate::{Limits, Result, SharedBytes};

/// Whose reading of an archive to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// torch's `PyTorchStreamReader` (miniz 3.0.2): names are looked up ignoring ASCII case,
    /// CRCs are not checked.
    Torch,
    /// Python's `zipfile`, which SB3 reads its model zips with: names are looked up exactly,
    /// CRCs are checked, and what `zipfile` refuses is refused (a "version needed" above 6.3, a
    /// non-ASCII name without the UTF-8 flag).
    Python,
}

/// A validated zip archive over bytes it borrows or shares.
///
/// Parsing reads the end records, the central directory and every local header, and refuses
/// the archive (`Error::Zip`, naming the [`ZipAnomaly`]) wherever two readers could disagree on
/// its entries or their bytes; anomalies that change nothing for torch are kept as
/// [`warnings`](ZipArchive::warnings). No entry's data is read until asked for.
///
/// ```
/// # fn main() -> Result<(), pth_reader::Error> {
/// use pth_reader::zip::ZipArchive;
/// let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint.pth")).unwrap();
/// let zip = ZipArchive::parse(bytes.as_slice().into(), &Default::default())?;
/// let pickle = zip.find("checkpoint/DATA.PKL").unwrap(); // torch ignores ASCII case
/// assert_eq!(pickle.name(), "checkpoint/data.pkl");
/// assert!(zip.read(pickle, &mut zip.budget())?.len() > 0);
/// assert!(zip.warnings().is_empty());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ZipArchive<'data> {
    bytes: SharedBytes<'data>,
    entries: Vec<ZipEntry>,
    /// Entry positions by ASCII-lowercased name.
    by_name: names::NameIndex,
    warnings: Vec<ZipAnomaly>,
    dialect: Dialect,
    max_inflated: u64,
}

impl<'data> ZipArchive<'data> {
    /// Parses and validates an archive as torch reads it ([`Dialect::Torch`]).
    pub fn parse(bytes: SharedBytes<'data>, limits: &Limits) -> Result<ZipArchive<'data>> {
        ZipArchive::parse_as(bytes, limits, Dialect::Torch)
    }

    /// Parses and validates an archive as `dialect` reads it. `limits.max_inflated_bytes` is
    /// the size of each [`budget`](ZipArchive::budget).
    pub fn parse_as(bytes: SharedBytes<'data>, limits: &Limits, dialect: Dialect) -> Result<ZipArchive<'data>> {
        let data = bytes.as_slice();
        let mut warnings = Vec::new();
        let directory = end::locate(data, &mut warnings)?;
        let mut headers = HeaderReads::new(&bytes, directory.entries, directory.offset);
        let entries = entry::read_entries(data, &directory, dialect, &mut warnings, &mut headers)?;
        let by_name = names::NameIndex::build(entries.len(), |at| entries.get(at).map(ZipEntry::name))?;
        layout::check_layout(&entries, directory.offset, &mut warnings, &mut headers)?;
        headers.finish();
        Ok(ZipArchive {
            bytes,
            entries,
            by_name,
            warnings,
            dialect,
            max_inflated: limits.max_inflated_bytes,
        })
    }

    /// The entries, in central directory order.
    pub fn entries(&self) -> &[ZipEntry] {
        &self.entries
    }

    /// The entry `name` designates for this archive's [`Dialect`]: for torch, the one whose
    /// name equals it ignoring ASCII case (as miniz's lookup does; there is at most one, since
    /// names that differ only in case are refused); for Python, the one named exactly `name`.
    pub fn find(&self, name: &str) -> Option<&ZipEntry> {
        self.entries.get(self.position(name)?)
    }

    /// The position in [`entries`](Self::entries) of the entry [`find`](Self::find) returns.
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.position_of(name, &name.to_ascii_lowercase())
    }

    /// [`position`](Self::position) of `name`, whose ASCII-lowercased form the caller made
    /// (`lowered`): for lookups in a loop, into one reused buffer.
    pub(crate) fn position_of(&self, name: &str, lowered: &str) -> Option<usize> {
        let at = self
            .by_name
            .get(lowered, |at| self.entries.get(at).map(ZipEntry::name))?;
        let entry = self.entries.get(at)?;
        match self.dialect {
            Dialect::Torch => Some(at),
            Dialect::Python => (entry.name() == name).then_some(at),
        }
    }

    /// Anomalies that torch reads through unambiguously (trailing bytes, a CRC in a local header
    /// that disagrees, ...), in the order they were found.
    pub fn warnings(&self) -> &[ZipAnomaly] {
        &self.warnings
    }

    /// Whose reading this archive reproduces.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub(crate) fn bytes(&self) -> &SharedBytes<'data> {
        &self.bytes
    }

    pub(crate) fn max_inflated(&self) -> u64 {
        self.max_inflated
    }
}

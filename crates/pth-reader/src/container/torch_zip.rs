//! torch's zip layout: `<root>/data.pkl`, `<root>/data/<key>`, `<root>/byteorder`, ...
//!
//! All records share one root folder, whatever its name (torch names it after the file, or
//! `archive`). TorchScript archives (`constants.pkl` present) use the same records; their
//! `data.pkl` holds the module, whose tensors are listed.

use std::fmt::Write as _;
use std::sync::Arc;

use super::zip::{Compression, InflateBudget, ZipAnomaly, ZipArchive};
use super::{Format, Located, RecordNames, RootRequest, StorageKey, StorageSource};
use crate::hashing::FastMap;
use crate::pickle::call::Handler;
use crate::tensor::ByteOrder;
use crate::{Error, ErrorKind, Options, Result, SharedBytes};

/// Locates the parts of a torch zip archive.
pub(crate) fn locate<'data>(bytes: SharedBytes<'data>, options: &Options) -> Result<Located<'data>> {
    let archive = Arc::new(ZipArchive::parse(bytes, options.limits())?);
    let mut records = Records::new(Arc::clone(&archive))?;
    let byte_order = match records.read("byteorder")? {
        None => ByteOrder::Little,
        Some(data) => match data.as_slice() {
            b"little" => ByteOrder::Little,
            b"big" => ByteOrder::Big,
            other => {
                return Err(Error::from(ErrorKind::Unsupported {
                    what: format!("byteorder record {:?}", String::from_utf8_lossy(other)),
                }))
            }
        },
    };
    // torch reads the version (`PyTorchStreamReader::init`) and `.format_version` (`_load`) in
    // full: read here too, their CRC checked like every record read in full.
    let version = match records.read(".data/version")? {
        Some(v) => Some(v),
        None => records.read("version")?,
    };
    records.read(".format_version")?;
    if version.is_none() {
        let warning = format!("{}/version is missing (torch would refuse the archive)", records.root);
        records.warnings.push(warning);
    }
    // torch.load tells TorchScript archives apart with `"constants.pkl" in getAllRecords()`:
    // an exact comparison, unlike record lookups.
    let format = if records.names.iter(&archive).any(|n| n == "constants.pkl") {
        Format::TorchScript
    } else {
        Format::Zip
    };
    let pickle_name = format!("{}/data.pkl", records.root);
    let pickle = records.read("data.pkl")?.ok_or_else(|| {
        Error::from(ErrorKind::MissingRecord {
            name: pickle_name.clone(),
        })
    })?;
    // Records needs the names no more: they move to the checkpoint, in the archive's order.
    let names = std::mem::take(&mut records.names);
    Ok(Located {
        format,
        byte_order,
        pickle,
        pickle_name,
        records: names,
        warnings: std::mem::take(&mut records.warnings),
        storages: Box::new(records),
        archive: Some(archive),
    })
}

/// The archive as torch's `PyTorchStreamReader` sees it: records under one root folder, named
/// by the first entry's first path component (`init`), every entry inside it (`getAllRecords`),
/// looked up by `<root>/<name>` ignoring ASCII case (`getRecordID` → miniz's
/// `mz_zip_reader_locate_file`). Each record is read once, deflated ones within the archive's
/// inflation budget.
struct Records<'data> {
    /// Shared with the checkpoint, which reads entries after the open (CRCs, file offsets).
    archive: Arc<ZipArchive<'data>>,
    root: String,
    /// The records (directories and the root itself left out).
    names: RecordNames,
    /// What deflated records may still inflate to.
    budget: InflateBudget,
    /// Records read so far that were copied or inflated, by entry position.
    loaded: FastMap<usize, SharedBytes<'data>>,
    warnings: Vec<String>,
    /// The entry name of the record being looked up, and its ASCII-lowercased form: buffers
    /// reused for every lookup (one per storage), so that a lookup allocates nothing.
    wanted: String,
    lowered: String,
}

impl<'data> Records<'data> {
    fn new(archive: Arc<ZipArchive<'data>>) -> Result<Self> {
        let first = archive.entries().first().ok_or(ZipAnomaly::Empty)?;
        let (root, _) = first.name().split_once('/').ok_or_else(|| ZipAnomaly::NoRootFolder {
            name: first.name().to_owned(),
        })?;
        let mut positions = Vec::new();
        for (at, entry) in archive.entries().iter().enumerate() {
            let relative = entry
                .name()
                .strip_prefix(root)
                .and_then(|rest| rest.strip_prefix('/'))
                .ok_or_else(|| ZipAnomaly::OutsideRoot {
                    name: entry.name().to_owned(),
                    root: root.to_owned(),
                })?;
            if !relative.is_empty() && !entry.is_dir() {
                positions.push(at);
            }
        }
        let warnings = archive.warnings().iter().map(ToString::to_string).collect();
        let budget = archive.budget();
        Ok(Records {
            root: root.to_owned(),
            names: RecordNames::new(root.len(), positions),
            budget,
            loaded: FastMap::default(),
            warnings,
            archive,
            wanted: String::new(),
            lowered: String::new(),
        })
    }

    /// The entry torch reads for record `name` (followed by `key`, for a storage's record); a
    /// match that differs in case is a warning.
    fn find(&mut self, name: &str, key: Option<&StorageKey>) -> Option<usize> {
        self.wanted.clear();
        self.wanted.push_str(&self.root);
        self.wanted.push('/');
        self.wanted.push_str(name);
        match key {
            None => {}
            Some(StorageKey::Str(key)) => self.wanted.push_str(key),
            // Writing into a String cannot fail.
            Some(StorageKey::Int(key)) => {
                let _ = write!(self.wanted, "{key}");
            }
        }
        self.lowered.clear();
        self.lowered.push_str(&self.wanted);
        self.lowered.make_ascii_lowercase();
        let at = self.archive.position_of(&self.wanted, &self.lowered)?;
        let entry = self.archive.entries().get(at)?;
        if entry.name() != self.wanted {
            let anomaly = ZipAnomaly::CaseInsensitiveMatch {
                wanted: self.wanted.clone(),
                found: entry.name().to_owned(),
            };
            let warning = anomaly.to_string();
            if !self.warnings.contains(&warning) {
                self.warnings.push(warning);
            }
        }
        Some(at)
    }

    /// The bytes of record `name`, if it exists. A record read in full — every one but the
    /// storages kept in place (stored `data/<key>` records, which [`ZipArchive::crc_matches`]
    /// checks on demand) — has its CRC-32 checked: torch checks none, so a mismatch is a warning.
    /// A CRC of 0 is not one: torch's writer records 0 when told not to compute CRCs
    /// (`torch.serialization.set_crc32_options(False)`).
    fn read(&mut self, name: &str) -> Result<Option<SharedBytes<'data>>> {
        self.read_record(name, None)
    }

    /// The bytes of the record of storage `key` (`data/<key>`), if it exists.
    fn read_storage(&mut self, key: &StorageKey) -> Result<Option<SharedBytes<'data>>> {
        self.read_record("data/", Some(key))
    }

    /// [`read`](Self::read) of record `name` followed by `key`.
    fn read_record(&mut self, name: &str, key: Option<&StorageKey>) -> Result<Option<SharedBytes<'data>>> {
        let Some(at) = self.find(name, key) else {
            return Ok(None);
        };
        if let Some(data) = self.loaded.get(&at) {
            return Ok(Some(data.clone()));
        }
        let Some(entry) = self.archive.entries().get(at) else {
            return Ok(None);
        };
        let data = self.archive.read(entry, &mut self.budget)?;
        let in_place = entry.compression() == Compression::Stored
            && self
                .wanted
                .get(self.root.len()..)
                .is_some_and(|rest| rest.starts_with("/data/"));
        if !in_place && entry.crc32() != 0 && crc32fast::hash(data.as_slice()) != entry.crc32() {
            self.warnings.push(
                ZipAnomaly::CrcMismatch {
                    name: entry.name().to_owned(),
                }
                .to_string(),
            );
        }
        // Storages kept in place cost nothing to read again: only what was copied or inflated
        // is kept (a map entry per storage of a 20,000-tensor archive would be 1.6 MB).
        if !in_place {
            self.loaded.insert(at, data.clone());
        }
        Ok(Some(data))
    }
}

impl<'data> StorageSource<'data> for Records<'data> {
    fn resolve(
        &mut self,
        _: usize,
        roots: &[RootRequest<'_>],
        _: &mut dyn Handler<'data>,
    ) -> Result<Vec<SharedBytes<'data>>> {
        let mut out = Vec::with_capacity(roots.len());
        for root in roots {
            let data = self.read_storage(root.key)?.ok_or_else(|| {
                Error::from(ErrorKind::MissingRecord {
                    name: format!("{}/data/{}", self.root, root.key),
                })
            })?;
            if data.len() as u64 != root.nbytes {
                return Err(Error::from(ErrorKind::InvalidStorage {
                    key: root.key.to_string(),
                    reason: format!("its record has {} bytes, the pickle says {}", data.len(), root.nbytes),
                }));
            }
            out.push(data);
        }
        Ok(out)
    }

    fn warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

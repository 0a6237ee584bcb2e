//! torch's zip layout: `<root>/data.pkl`, `<root>/data/<key>`, `<root>/byteorder`, ...
//!
//! All records share one root folder, whatever its name (torch names it after the file, or
//! `archive`). TorchScript archives (`constants.pkl` present) use the same records; their
//! `data.pkl` holds the module, whose tensors are listed.

use std::collections::HashMap;

use super::zip::{InflateBudget, ZipAnomaly, ZipArchive, ZipEntry};
use super::{Format, Located, RootRequest, StorageSource};
use crate::tensor::ByteOrder;
use crate::{Error, ErrorKind, Options, Result, SharedBytes};

/// Locates the parts of a torch zip archive.
pub(crate) fn locate<'data>(bytes: SharedBytes<'data>, options: &Options) -> Result<Located<'data>> {
    let archive = ZipArchive::parse(bytes, options.limits())?;
    let mut records = Records::new(archive)?;
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
    let has_version = records.find(".data/version").is_some() || records.find("version").is_some();
    if !has_version {
        let warning = format!("{}/version is missing (torch would refuse the archive)", records.root);
        records.warnings.push(warning);
    }
    // torch.load tells TorchScript archives apart with `"constants.pkl" in getAllRecords()`:
    // an exact comparison, unlike record lookups.
    let format = if records.names.iter().any(|n| n == "constants.pkl") {
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
    let mut names = records.names.clone();
    names.sort_unstable();
    Ok(Located {
        format,
        byte_order,
        pickle,
        pickle_name,
        records: names,
        warnings: std::mem::take(&mut records.warnings),
        storages: Box::new(records),
    })
}

/// The archive as torch's `PyTorchStreamReader` sees it: records under one root folder, named
/// by the first entry's first path component (`init`), every entry inside it (`getAllRecords`),
/// looked up by `<root>/<name>` ignoring ASCII case (`getRecordID` → miniz's
/// `mz_zip_reader_locate_file`). Each record is read once, deflated ones within the archive's
/// inflation budget.
struct Records<'data> {
    archive: ZipArchive<'data>,
    root: String,
    /// The record names relative to the root (directories and the root itself left out).
    names: Vec<String>,
    /// What deflated records may still inflate to.
    budget: InflateBudget,
    loaded: HashMap<String, SharedBytes<'data>>,
    warnings: Vec<String>,
}

impl<'data> Records<'data> {
    fn new(archive: ZipArchive<'data>) -> Result<Self> {
        let first = archive.entries().first().ok_or(ZipAnomaly::Empty)?;
        let (root, _) = first.name().split_once('/').ok_or_else(|| ZipAnomaly::NoRootFolder {
            name: first.name().to_owned(),
        })?;
        let mut names = Vec::new();
        for entry in archive.entries() {
            let relative = entry
                .name()
                .strip_prefix(root)
                .and_then(|rest| rest.strip_prefix('/'))
                .ok_or_else(|| ZipAnomaly::OutsideRoot {
                    name: entry.name().to_owned(),
                    root: root.to_owned(),
                })?;
            if !relative.is_empty() && !entry.is_dir() {
                names.push(relative.to_owned());
            }
        }
        let warnings = archive.warnings().iter().map(ToString::to_string).collect();
        let budget = archive.budget();
        Ok(Records {
            root: root.to_owned(),
            names,
            budget,
            loaded: HashMap::new(),
            warnings,
            archive,
        })
    }

    /// The entry torch reads for record `name`; a match that differs in case is a warning.
    fn find(&mut self, name: &str) -> Option<ZipEntry> {
        let wanted = format!("{}/{name}", self.root);
        let entry = self.archive.find(&wanted)?.clone();
        if entry.name() != wanted {
            let anomaly = ZipAnomaly::CaseInsensitiveMatch {
                wanted,
                found: entry.name().to_owned(),
            };
            let warning = anomaly.to_string();
            if !self.warnings.contains(&warning) {
                self.warnings.push(warning);
            }
        }
        Some(entry)
    }

    /// The bytes of record `name`, if it exists.
    fn read(&mut self, name: &str) -> Result<Option<SharedBytes<'data>>> {
        let Some(entry) = self.find(name) else {
            return Ok(None);
        };
        if let Some(data) = self.loaded.get(entry.name()) {
            return Ok(Some(data.clone()));
        }
        let data = self.archive.read(&entry, &mut self.budget)?;
        self.loaded.insert(entry.name().to_owned(), data.clone());
        Ok(Some(data))
    }
}

impl<'data> StorageSource<'data> for Records<'data> {
    fn resolve(&mut self, _: usize, roots: &[RootRequest<'_>]) -> Result<Vec<SharedBytes<'data>>> {
        let mut out = Vec::with_capacity(roots.len());
        for root in roots {
            let name = format!("data/{}", root.key);
            let data = self.read(&name)?.ok_or_else(|| {
                Error::from(ErrorKind::MissingRecord {
                    name: format!("{}/{name}", self.root),
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

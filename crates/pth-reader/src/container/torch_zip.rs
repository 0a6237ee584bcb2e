//! torch's zip layout: `<root>/data.pkl`, `<root>/data/<key>`, `<root>/byteorder`, ...
//!
//! All records share one root folder, whatever its name (torch names it after the file, or
//! `archive`). TorchScript archives (`constants.pkl` present) use the same records; their
//! `data.pkl` holds the module, whose tensors are listed.

use std::collections::HashMap;

use super::zip::{Compression, ZipArchive, ZipEntry};
use super::{Format, Located, RootRequest, StorageSource};
use crate::tensor::ByteOrder;
use crate::{Error, Options, Result, SharedBytes};

/// Locates the parts of a torch zip archive.
pub(crate) fn locate<'data>(bytes: SharedBytes<'data>, options: &Options) -> Result<Located<'data>> {
    let archive = ZipArchive::parse(bytes)?;
    let (root, records) = records(&archive)?;
    let mut reader = RecordReader {
        archive,
        records,
        root,
        budget: options.get_limits().max_inflated_bytes,
        loaded: HashMap::new(),
    };
    let mut warnings = Vec::new();

    let byte_order = match reader.get("byteorder")? {
        None => ByteOrder::Little,
        Some(data) => match data.as_slice() {
            b"little" => ByteOrder::Little,
            b"big" => ByteOrder::Big,
            other => {
                return Err(Error::Unsupported {
                    what: format!("byteorder record {:?}", String::from_utf8_lossy(other)),
                })
            }
        },
    };
    if !reader.records.contains_key("version") && !reader.records.contains_key(".data/version") {
        warnings.push(format!(
            "{}/version is missing (torch would refuse the archive)",
            reader.root
        ));
    }
    let format = if reader.records.contains_key("constants.pkl") {
        Format::TorchScript
    } else {
        Format::Zip
    };
    let pickle_name = format!("{}/data.pkl", reader.root);
    let pickle = reader.get("data.pkl")?.ok_or_else(|| Error::MissingRecord {
        name: pickle_name.clone(),
    })?;
    let mut names: Vec<String> = reader.records.keys().cloned().collect();
    names.sort_unstable();
    Ok(Located {
        format,
        byte_order,
        pickle,
        pickle_name,
        records: names,
        warnings,
        storages: Box::new(reader),
    })
}

/// The records by name relative to the one root folder every entry must share.
fn records(archive: &ZipArchive<'_>) -> Result<(String, HashMap<String, ZipEntry>)> {
    let first = archive.entries().first().ok_or_else(|| Error::Zip {
        reason: "the archive is empty".into(),
    })?;
    let (root, _) = first.name().split_once('/').ok_or_else(|| Error::Zip {
        reason: format!("{} is not inside a root folder", first.name()),
    })?;
    let mut records = HashMap::new();
    for entry in archive.entries() {
        let relative = entry
            .name()
            .strip_prefix(root)
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(|| Error::Zip {
                reason: format!("{} is outside the root folder {root}/", entry.name()),
            })?;
        if !relative.is_empty() && !relative.ends_with('/') {
            records.insert(relative.to_owned(), entry.clone());
        }
    }
    Ok((root.to_owned(), records))
}

/// Reads records, charging deflated ones to the archive's inflation budget, and each record
/// once however many storages name it.
struct RecordReader<'data> {
    archive: ZipArchive<'data>,
    records: HashMap<String, ZipEntry>,
    root: String,
    budget: u64,
    loaded: HashMap<String, SharedBytes<'data>>,
}

impl<'data> RecordReader<'data> {
    /// The bytes of record `name` (relative to the root folder), if it exists.
    fn get(&mut self, name: &str) -> Result<Option<SharedBytes<'data>>> {
        if let Some(data) = self.loaded.get(name) {
            return Ok(Some(data.clone()));
        }
        let Some(entry) = self.records.get(name) else {
            return Ok(None);
        };
        let data = self.archive.read(entry, self.budget)?;
        if entry.compression() != Compression::Stored {
            self.budget = self.budget.saturating_sub(data.len() as u64);
        }
        self.loaded.insert(name.to_owned(), data.clone());
        Ok(Some(data))
    }
}

impl<'data> StorageSource<'data> for RecordReader<'data> {
    fn resolve(&mut self, _: usize, roots: &[RootRequest<'_>]) -> Result<Vec<SharedBytes<'data>>> {
        let mut out = Vec::with_capacity(roots.len());
        for root in roots {
            let name = format!("data/{}", root.key);
            let data = self.get(&name)?.ok_or_else(|| Error::MissingRecord {
                name: format!("{}/{name}", self.root),
            })?;
            if data.len() as u64 != root.nbytes {
                return Err(Error::InvalidStorage {
                    key: root.key.to_string(),
                    reason: format!("its record has {} bytes, the pickle says {}", data.len(), root.nbytes),
                });
            }
            out.push(data);
        }
        Ok(out)
    }
}

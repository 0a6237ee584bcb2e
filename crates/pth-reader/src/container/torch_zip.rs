//! torch's zip layout: `<root>/data.pkl`, `<root>/data/<key>`, `<root>/byteorder`, ...
//!
//! All records share one root folder, whatever its name (torch names it after the file, or
//! `archive`). TorchScript archives (`constants.pkl` present) use the same records; their
//! `data.pkl` holds the module, whose tensors are listed.

use std::collections::HashMap;

use super::zip::{ZipArchive, ZipEntry};
use super::{Decoded, Format};
use crate::pickle;
use crate::tensor::ByteOrder;
use crate::torch::rebuild::{self, Context};
use crate::torch::storage::storage_refs;
use crate::{Error, Options, Result, SharedBytes};

/// Decodes a torch zip archive.
pub(crate) fn decode<'data>(bytes: SharedBytes<'data>, options: &Options) -> Result<Decoded<'data>> {
    let archive = ZipArchive::parse(bytes)?;
    let (root, records) = records(&archive)?;
    let mut reader = RecordReader {
        archive: &archive,
        budget: options.get_limits().max_inflated_bytes,
    };
    let mut warnings = Vec::new();

    let byte_order = match records.get("byteorder") {
        None => ByteOrder::Little,
        Some(entry) => match reader.read(entry)?.as_slice() {
            b"little" => ByteOrder::Little,
            b"big" => ByteOrder::Big,
            other => {
                return Err(Error::Unsupported {
                    what: format!("byteorder record {:?}", String::from_utf8_lossy(other)),
                })
            }
        },
    };
    if !records.contains_key("version") && !records.contains_key(".data/version") {
        warnings.push(format!("{root}/version is missing (torch would refuse the archive)"));
    }
    let format = if records.contains_key("constants.pkl") {
        Format::TorchScript
    } else {
        Format::Zip
    };

    let pickle_name = format!("{root}/data.pkl");
    let entry = records.get("data.pkl").ok_or_else(|| Error::MissingRecord {
        name: pickle_name.clone(),
    })?;
    let pickle_bytes = reader.read(entry)?;
    let (mut tree, protocol, _) = pickle::decode(pickle_bytes.as_slice(), &pickle_name, options)?;

    let refs = storage_refs(&tree, &pickle_name)?;
    let mut loaded: HashMap<String, SharedBytes<'data>> = HashMap::new();
    let context = Context {
        record: &pickle_name,
        byte_order,
        limits: options.get_limits(),
    };
    let tables = rebuild::resolve(
        &mut tree,
        refs,
        |r| {
            let name = format!("data/{}", r.key);
            let data = match loaded.get(&name) {
                Some(data) => data.clone(),
                None => {
                    let entry = records.get(name.as_str()).ok_or_else(|| Error::MissingRecord {
                        name: format!("{root}/{name}"),
                    })?;
                    let data = reader.read(entry)?;
                    loaded.insert(name, data.clone());
                    data
                }
            };
            let expected = r.nbytes()?;
            if data.len() as u64 != expected {
                return Err(r.invalid(format!(
                    "its record has {} bytes, the pickle says {expected}",
                    data.len()
                )));
            }
            Ok(data)
        },
        &context,
    )?;
    let mut names: Vec<String> = records.keys().map(|k| k.to_string()).collect();
    names.sort_unstable();
    Ok(Decoded {
        format,
        byte_order,
        tree,
        tables,
        protocol,
        records: names,
        warnings,
    })
}

/// The records by name relative to the one root folder every entry must share.
fn records<'a>(archive: &'a ZipArchive<'_>) -> Result<(&'a str, HashMap<&'a str, &'a ZipEntry>)> {
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
            records.insert(relative, entry);
        }
    }
    Ok((root, records))
}

/// Reads records, charging deflated ones to the archive's inflation budget.
struct RecordReader<'a, 'data> {
    archive: &'a ZipArchive<'data>,
    budget: u64,
}

impl<'data> RecordReader<'_, 'data> {
    fn read(&mut self, entry: &ZipEntry) -> Result<SharedBytes<'data>> {
        let data = self.archive.read(entry, self.budget)?;
        if entry.compression() != super::zip::Compression::Stored {
            self.budget = self.budget.saturating_sub(data.len() as u64);
        }
        Ok(data)
    }
}

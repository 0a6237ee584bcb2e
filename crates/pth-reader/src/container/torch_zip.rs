//! torch's zip layout: `<root>/data.pkl`, `<root>/data/<key>`, `<root>/byteorder`, ...
//!
//! All records share one root folder, whatever its name (torch names it after the file, or
//! `archive`). TorchScript archives (`constants.pkl` present) use the same records; their
//! `data.pkl` holds the module, whose tensors are listed.

use std::collections::HashMap;

use super::zip::{ZipAnomaly, ZipArchive, ZipEntry};
use super::{Decoded, Format};
use crate::pickle;
use crate::tensor::ByteOrder;
use crate::torch::rebuild::{self, Context};
use crate::torch::storage::storage_refs;
use crate::{Error, Options, Result, SharedBytes};

/// Decodes a torch zip archive.
pub(crate) fn decode<'data>(bytes: SharedBytes<'data>, options: &Options) -> Result<Decoded<'data>> {
    let archive = ZipArchive::parse(bytes, options.get_limits())?;
    let mut warnings: Vec<String> = archive.warnings().iter().map(ToString::to_string).collect();
    let records = Records::new(&archive)?;
    let root = records.root;
    let mut budget = archive.budget();

    let byte_order = match records.find("byteorder", &mut warnings) {
        None => ByteOrder::Little,
        Some(entry) => match archive.read(entry, &mut budget)?.as_slice() {
            b"little" => ByteOrder::Little,
            b"big" => ByteOrder::Big,
            other => {
                return Err(Error::Unsupported {
                    what: format!("byteorder record {:?}", String::from_utf8_lossy(other)),
                })
            }
        },
    };
    let has_version =
        records.find(".data/version", &mut warnings).is_some() || records.find("version", &mut warnings).is_some();
    if !has_version {
        warnings.push(format!("{root}/version is missing (torch would refuse the archive)"));
    }
    // torch.load tells TorchScript archives apart with `"constants.pkl" in getAllRecords()`:
    // an exact comparison, unlike record lookups.
    let format = if records.names.contains(&"constants.pkl") {
        Format::TorchScript
    } else {
        Format::Zip
    };

    let pickle_name = format!("{root}/data.pkl");
    let entry = records
        .find("data.pkl", &mut warnings)
        .ok_or_else(|| Error::MissingRecord {
            name: pickle_name.clone(),
        })?;
    let pickle_bytes = archive.read(entry, &mut budget)?;
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
                    let entry = records.find(&name, &mut warnings).ok_or_else(|| Error::MissingRecord {
                        name: format!("{root}/{name}"),
                    })?;
                    let data = archive.read(entry, &mut budget)?;
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
    let mut names: Vec<String> = records.names.iter().map(|k| k.to_string()).collect();
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

/// The archive as torch's `PyTorchStreamReader` sees it: records under one root folder, named
/// by the first entry's first path component (`init`), every entry inside it (`getAllRecords`),
/// looked up by `<root>/<name>` ignoring ASCII case (`getRecordID` → miniz's
/// `mz_zip_reader_locate_file`).
struct Records<'a, 'data> {
    archive: &'a ZipArchive<'data>,
    root: &'a str,
    /// The record names relative to the root (directories and the root itself left out).
    names: Vec<&'a str>,
}

impl<'a, 'data> Records<'a, 'data> {
    fn new(archive: &'a ZipArchive<'data>) -> Result<Self> {
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
                names.push(relative);
            }
        }
        Ok(Records { archive, root, names })
    }

    /// The entry torch reads for record `name`; a match that differs in case is a warning.
    fn find(&self, name: &str, warnings: &mut Vec<String>) -> Option<&'a ZipEntry> {
        let wanted = format!("{}/{name}", self.root);
        let entry = self.archive.find(&wanted)?;
        if entry.name() != wanted {
            let anomaly = ZipAnomaly::CaseInsensitiveMatch {
                wanted,
                found: entry.name().to_owned(),
            };
            let warning = anomaly.to_string();
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
        Some(entry)
    }
}

//! The records of a torch zip archive, in the order `torch.serialization._save` and
//! `PyTorchStreamWriter::writeEndOfFile` write them.
//!
//! `<root>/data.pkl`, `.format_version` (`1`: storages in numeric key order), `.storage_alignment`
//! (`64`), `byteorder` (`little`, or `big` as torch writes on big-endian machines), `data/<key>` for
//! each storage in key order, `version` (`3\n`), `.data/serialization_id` (20 digits hashing the
//! record names and 20 digits combining the records' CRCs; torch only logs it).

#![forbid(unsafe_code)]

use std::io::Write;

use super::pickler::Pickled;
use crate::container::zip::write::{hash_combine, ForceZip64, ZipWriter, ALIGNMENT};
use crate::tensor::ByteOrder;
use crate::Result;

/// torch's `kProducedFileFormatVersion`.
const VERSION: &[u8] = b"3\n";

/// Writes `pickled` as a torch zip archive whose records lie in folder `root`, its storages in
/// `byte_order` (which the `byteorder` record names).
pub(crate) fn write_zip<W: Write>(
    out: W,
    root: &str,
    pickled: &Pickled<'_, '_>,
    byte_order: ByteOrder,
    force: ForceZip64,
) -> Result<W> {
    let mut archive = Archive {
        zip: ZipWriter::new(out, force),
        root,
        names_hash: 0,
    };
    archive.small("data.pkl", &pickled.bytes)?;
    archive.small(".format_version", b"1")?;
    archive.small(".storage_alignment", ALIGNMENT.to_string().as_bytes())?;
    archive.small("byteorder", byte_order.name().as_bytes())?;
    for storage in &pickled.storages {
        let name = format!("data/{}", storage.key);
        archive.record(&name, storage.len(), |sink| storage.write(|bytes| sink.put(bytes)))?;
    }
    archive.small("version", VERSION)?;
    let id = format!("{:020}{:020}", archive.names_hash, archive.zip.combined_crc());
    archive.small(".data/serialization_id", id.as_bytes())?;
    archive.zip.finish()
}

struct Archive<'r, W: Write> {
    zip: ZipWriter<W>,
    root: &'r str,
    /// The names written so far, combined as torch combines them (FNV-1a stands in for
    /// `std::hash`, whose value torch does not fix either).
    names_hash: u64,
}

impl<W: Write> Archive<'_, W> {
    fn record(
        &mut self,
        name: &str,
        size: u64,
        data: impl FnOnce(&mut crate::container::zip::write::RecordSink<'_>) -> Result<()>,
    ) -> Result<()> {
        self.names_hash = hash_combine(self.names_hash, fnv1a(name.as_bytes()));
        self.zip.record(&format!("{}/{name}", self.root), size, data)
    }

    fn small(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.record(name, bytes.len() as u64, |sink| sink.put(bytes))
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

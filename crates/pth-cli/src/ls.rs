//! `pth ls`: the tensors of a file, as a table or as JSON.

use std::collections::HashMap;
use std::io::Write;

use pth_reader::zip::ZipAnomaly;
use pth_reader::{Checkpoint, TensorView};

use crate::json::{put, tensor_entry};
use crate::output::{io_error, with_stdout};

/// Prints the listing. Without `sha256`, no tensor bytes are read; with it, every record's
/// CRC-32 is checked too (torch checks none: a mismatch is a warning).
pub fn run(ckpt: &Checkpoint<'_>, as_json: bool, sha256: bool) -> anyhow::Result<()> {
    let warnings = warnings(ckpt, sha256)?;
    if as_json {
        // Written an entry at a time: names can be long and hashing takes time.
        return with_stdout(|w| {
            write!(w, "{{\"format\":")?;
            put(w, ckpt.format().name())?;
            write!(w, ",\"byteorder\":")?;
            put(w, ckpt.byte_order().name())?;
            write!(w, ",\"tensors\":[")?;
            let mut line = Vec::new();
            for (i, (name, t)) in ckpt.tensors().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                tensor_entry(name, t, sha256)
                    .map_err(io_error)?
                    .write_json(&mut line, w)?;
            }
            write!(w, "],\"warnings\":")?;
            put(w, &warnings)?;
            writeln!(w, "}}")
        });
    }
    let rows = table_rows(ckpt, sha256)?;
    with_stdout(|w| print_table(w, ckpt, &rows, &warnings))
}

/// The checkpoint's warnings, and with `crc` those of the records whose CRC-32 does not match.
fn warnings(ckpt: &Checkpoint<'_>, crc: bool) -> anyhow::Result<Vec<String>> {
    let mut warnings = ckpt.warnings().to_vec();
    if crc {
        for name in ckpt.verify_checksums()? {
            let warning = ZipAnomaly::CrcMismatch { name }.to_string();
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
    }
    Ok(warnings)
}

struct Row {
    name: String,
    dtype: &'static str,
    shape: String,
    bytes: usize,
    notes: String,
}

fn table_rows(ckpt: &Checkpoint<'_>, sha256: bool) -> anyhow::Result<Vec<Row>> {
    // How many listed tensors view each storage, to flag sharing.
    let mut users: HashMap<&str, usize> = HashMap::new();
    for (_, t) in ckpt.tensors() {
        if let Some(key) = t.storage_key() {
            *users.entry(key).or_default() += 1;
        }
    }
    let mut rows = Vec::new();
    for (name, t) in ckpt.tensors() {
        let mut notes = notes(t);
        if t.storage_key().and_then(|k| users.get(k)).is_some_and(|&n| n > 1) {
            notes.push(format!("shares storage {}", t.storage_key().unwrap_or_default()));
        }
        if sha256 && t.has_data() {
            notes.push(format!("sha256 {}", crate::json::sha256(t)?));
        }
        rows.push(Row {
            name: if name.is_empty() {
                "(root)".to_owned()
            } else {
                name.to_owned()
            },
            dtype: t.dtype().name(),
            shape: format!("{:?}", t.shape()),
            bytes: t.nbytes(),
            notes: notes.join(", "),
        });
    }
    Ok(rows)
}

/// Layout and provenance notes for one tensor.
fn notes(t: &TensorView<'_>) -> Vec<String> {
    let mut notes = Vec::new();
    if !t.has_data() {
        notes.push("no data (meta)".to_owned());
    } else if !t.is_contiguous() {
        notes.push(format!("strided {:?}", t.stride()));
    }
    if t.storage_offset() > 0 {
        notes.push(format!("offset {}", t.storage_offset()));
    }
    if t.is_parameter() {
        notes.push("parameter".to_owned());
    }
    if t.requires_grad() {
        notes.push("requires_grad".to_owned());
    }
    if t.is_conj() {
        notes.push("conj".to_owned());
    }
    if t.is_neg() {
        notes.push("neg".to_owned());
    }
    if let Some(class) = t.subclass() {
        notes.push(class.to_owned());
    }
    if t.quantization().is_some() {
        notes.push("quantized".to_owned());
    }
    if let Some(location) = t.location().filter(|l| *l != "cpu") {
        notes.push(format!("saved on {location}"));
    }
    notes
}

fn print_table(w: &mut dyn Write, ckpt: &Checkpoint<'_>, rows: &[Row], warnings: &[String]) -> std::io::Result<()> {
    let width = |f: &dyn Fn(&Row) -> usize, title: &str| rows.iter().map(f).max().unwrap_or(0).max(title.len());
    let (wn, wd, ws) = (
        width(&|r| r.name.len(), "NAME"),
        width(&|r| r.dtype.len(), "DTYPE"),
        width(&|r| r.shape.len(), "SHAPE"),
    );
    writeln!(
        w,
        "{:<wn$}  {:<wd$}  {:<ws$}  {:>10}  NOTES",
        "NAME", "DTYPE", "SHAPE", "BYTES"
    )?;
    for r in rows {
        writeln!(
            w,
            "{:<wn$}  {:<wd$}  {:<ws$}  {:>10}  {}",
            r.name,
            r.dtype,
            r.shape,
            human(r.bytes),
            r.notes
        )?;
    }
    let tensor_bytes: usize = rows.iter().map(|r| r.bytes).sum();
    let storage_bytes: usize = ckpt.storages().iter().map(|s| s.bytes().len()).sum();
    writeln!(
        w,
        "{} tensors, {} in tensors, {} in {} storages ({} format, {}-endian, pickle protocol {})",
        rows.len(),
        human(tensor_bytes),
        human(storage_bytes),
        ckpt.storages().len(),
        ckpt.format().name(),
        ckpt.byte_order().name(),
        ckpt.protocol()
    )?;
    for warning in warnings {
        writeln!(w, "warning: {warning}")?;
    }
    Ok(())
}

/// Bytes in binary units (`512 B`, `1.5 KiB`).
pub fn human(bytes: usize) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match (unit, UNITS.get(unit)) {
        (0, _) => format!("{bytes} B"),
        (_, Some(u)) => format!("{value:.1} {u}"),
        _ => format!("{bytes} B"),
    }
}

//! JSON shared by the commands: tensor entries in the schema of `../shared/corpus/README.md`
//! (object trees are pth-reader's one rendering, `pth_reader::json`).

use std::io::{self, Write};

pub use pth_reader::json::float;
use pth_reader::TensorView;
use sha2::{Digest, Sha256};

/// sha256 of a tensor's logical elements in C order as little-endian bytes, streamed (an
/// expanded tensor is hashed without being materialised).
pub fn sha256(t: &TensorView<'_>) -> anyhow::Result<String> {
    let mut hasher = Sha256::new();
    t.write_le_bytes(&mut HashWriter(&mut hasher))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Feeds written bytes to a digest.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One tensor entry: `name`, `dtype`, `shape`, `stride`, `storage_offset`, `storage`, and the
/// `sha256` when asked for (tensors without data, meta tensors, have none). Serialised straight
/// from the view's fields (no intermediate JSON tree: `pth ls --json` of 20,000 tensors).
#[derive(serde::Serialize)]
pub struct TensorEntry<'a> {
    name: &'a str,
    dtype: &'static str,
    shape: &'a [usize],
    stride: &'a [usize],
    storage_offset: usize,
    storage: Option<&'a str>,
    nbytes: usize,
    contiguous: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

impl TensorEntry<'_> {
    /// Writes the entry as `serde_json` serialises it (a test holds the two equal), an order of
    /// magnitude faster: serde_json escapes every field name and writes a value a few bytes at a
    /// time, two thirds of `pth ls --json`'s time after the open on 20,000 tensors. The entry
    /// goes to `w` in one write, built in `line` (a buffer reused across entries).
    pub fn write_json(&self, line: &mut Vec<u8>, w: &mut (impl Write + ?Sized)) -> io::Result<()> {
        line.clear();
        line.extend_from_slice(b"{\"name\":");
        json_str(line, self.name);
        line.extend_from_slice(b",\"dtype\":");
        json_str(line, self.dtype);
        line.extend_from_slice(b",\"shape\":");
        json_uints(line, self.shape);
        line.extend_from_slice(b",\"stride\":");
        json_uints(line, self.stride);
        line.extend_from_slice(b",\"storage_offset\":");
        json_uint(line, self.storage_offset);
        line.extend_from_slice(b",\"storage\":");
        match self.storage {
            Some(key) => json_str(line, key),
            None => line.extend_from_slice(b"null"),
        }
        line.extend_from_slice(b",\"nbytes\":");
        json_uint(line, self.nbytes);
        line.extend_from_slice(if self.contiguous {
            b",\"contiguous\":true"
        } else {
            b",\"contiguous\":false"
        });
        if let Some(sha256) = &self.sha256 {
            line.extend_from_slice(b",\"sha256\":");
            json_str(line, sha256);
        }
        line.push(b'}');
        w.write_all(line)
    }
}

/// A JSON string: as it is between quotes when nothing in it needs escaping (serde_json
/// escapes only `"`, `\\` and control characters), else as serde_json writes it.
fn json_str(line: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        line.push(b'"');
        line.extend_from_slice(s.as_bytes());
        line.push(b'"');
    } else {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *line, s);
    }
}

fn json_uint(line: &mut Vec<u8>, n: usize) {
    line.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn json_uints(line: &mut Vec<u8>, values: &[usize]) {
    line.push(b'[');
    for (i, &n) in values.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        json_uint(line, n);
    }
    line.push(b']');
}

/// The entry of tensor `t` named `name`, hashed when `with_sha256` says so.
pub fn tensor_entry<'a>(name: &'a str, t: &'a TensorView<'_>, with_sha256: bool) -> anyhow::Result<TensorEntry<'a>> {
    Ok(TensorEntry {
        name,
        dtype: t.dtype().name(),
        shape: t.shape(),
        stride: t.stride(),
        storage_offset: t.storage_offset(),
        storage: t.storage_key(),
        nbytes: t.nbytes(),
        contiguous: t.is_contiguous(),
        sha256: if with_sha256 && t.has_data() {
            Some(sha256(t)?)
        } else {
            None
        },
    })
}

/// Writes a JSON value (generic over the writer, so that serde_json's many small writes into
/// [`Stdout`](crate::output::Stdout) are inlined).
pub fn put<W: Write + ?Sized, T: serde::Serialize + ?Sized>(w: &mut W, value: &T) -> io::Result<()> {
    serde_json::to_writer(w, value).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_written_as_serde_json_serialises_them() {
        let names = [
            "w",
            "layer.0.weight",
            "",
            "quote\"d",
            "back\\slash",
            "tab\tnew\nline\u{1}",
            "é ü 日本 \u{7f}",
        ];
        for (i, name) in names.into_iter().enumerate() {
            let entry = TensorEntry {
                name,
                dtype: "float32",
                shape: &[2, 3, usize::MAX][..i % 4],
                stride: &[0, 1, 123_456_789][..i % 3],
                storage_offset: i * 1000,
                storage: (i % 2 == 0).then_some(name),
                nbytes: usize::MAX - i,
                contiguous: i % 3 == 0,
                sha256: (i % 2 == 1).then(|| "ab01".repeat(16)),
            };
            let mut line = Vec::new();
            let mut written = Vec::new();
            entry.write_json(&mut line, &mut written).unwrap();
            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(&entry).unwrap(),
                "{name:?}"
            );
        }
    }
}

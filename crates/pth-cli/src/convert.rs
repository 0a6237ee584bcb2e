//! `pth convert`: to `.safetensors` or `.npz`, written to a temporary file and renamed.
//!
//! Tensors are streamed into the output a chunk at a time (an expanded tensor is written
//! without being materialised, within the reader's `max_expanded_bytes`), and two tensors that
//! would get the same name in the output are refused before anything is written.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use pth_reader::{Checkpoint, DType, Options, TensorView};

use crate::progress::progress_bar;
use crate::to_torch;

/// Bytes written between two releases of the input's mapped pages.
const RELEASE_BYTES: u64 = 64 << 20;
/// Elements converted at a time by `--dtype f32`.
const CAST_CHUNK: usize = 1 << 16;

/// One tensor to write: its name, dtype and little-endian C-order bytes (cast if asked).
struct Output<'a> {
    name: &'a str,
    dtype: DType,
    shape: Vec<usize>,
    tensor: &'a TensorView<'a>,
    cast: bool,
    /// Where the output bytes already are in the input file, as they are to be written (a
    /// contiguous little-endian tensor of a stored record, not cast): copied file to file.
    file_offset: Option<u64>,
}

/// The input file, opened before the checkpoint, to copy tensors' bytes from within the kernel
/// (`copy_file_range` through `std::io::copy`, as `cp` copies) rather than through memory.
struct SourceFile {
    file: std::fs::File,
    identity: Option<(u64, u64)>,
}

impl SourceFile {
    /// The file at `path`, if it opens (if not, the checkpoint's open says why).
    fn open(path: &Path) -> Option<SourceFile> {
        let file = std::fs::File::open(path).ok()?;
        let identity = Self::identity(&file.metadata().ok()?);
        Some(SourceFile { file, identity })
    }

    /// Device and inode: a path replaced between the two opens is another file.
    #[cfg(unix)]
    fn identity(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    }

    /// Elsewhere the file cannot be told apart from a replacement: no copies from it.
    #[cfg(not(unix))]
    fn identity(_: &std::fs::Metadata) -> Option<(u64, u64)> {
        None
    }

    /// This file, if `path` still names it after the checkpoint opened it (else the bytes
    /// are copied from the checkpoint's).
    fn still_at(self, path: &Path) -> Option<SourceFile> {
        let now = std::fs::metadata(path).ok()?;
        (self.identity.is_some() && Self::identity(&now) == self.identity).then_some(self)
    }

    /// Copies `len` bytes at `offset` to the end of what `out` has written.
    fn copy_to(&self, offset: u64, len: u64, out: &mut std::fs::File) -> anyhow::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let mut from = &self.file;
        from.seek(SeekFrom::Start(offset))?;
        let copied = std::io::copy(&mut from.take(len), out)?;
        if copied != len {
            bail!("the input file ended {} bytes early", len - copied);
        }
        Ok(())
    }
}

impl Output<'_> {
    /// Streams the output bytes into `w`.
    fn write(&self, w: &mut dyn Write) -> anyhow::Result<()> {
        if !self.cast {
            self.tensor.write_le_bytes(w)?;
            return Ok(());
        }
        let mut start = 0;
        while start < self.tensor.numel() {
            let chunk = self.tensor.flat_range(start, CAST_CHUNK)?;
            let values = chunk.to_f32_vec()?;
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            w.write_all(&bytes)?;
            start += CAST_CHUNK;
        }
        Ok(())
    }

    fn nbytes(&self) -> u64 {
        self.shape
            .iter()
            .fold(self.dtype.size() as u64, |n, &d| n.saturating_mul(d as u64))
    }
}

/// What `pth convert` was asked to do.
pub struct Request<'a> {
    pub input: &'a Path,
    pub out: &'a Path,
    /// `--dtype f32`: cast real tensors (safetensors and npz outputs).
    pub to_f32: bool,
    pub force: bool,
    /// `--legacy`: the pre-1.6 torch format (torch outputs).
    pub legacy: bool,
}

/// The formats `pth convert` writes, by the output's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Safetensors,
    Npz,
    Torch,
}

/// Runs a conversion: a torch file to `.safetensors`/`.npz`, or any readable file (torch,
/// `.safetensors`, `.npz`) to a torch archive.
pub fn run(request: &Request<'_>, options: &Options) -> anyhow::Result<()> {
    let out = request.out;
    if out.exists() && !request.force {
        bail!("{} exists (use --force to replace it)", out.display());
    }
    let target = match out.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => Target::Safetensors,
        Some("npz") => Target::Npz,
        Some("pt" | "pth" | "bin" | "ckpt") => Target::Torch,
        _ => bail!(
            "{}: the output must end in .safetensors, .npz, .pt or .pth",
            out.display()
        ),
    };
    let input = to_torch::Input::of(request.input);
    if request.legacy && target != Target::Torch {
        bail!("--legacy writes torch files: the output must end in .pt or .pth");
    }
    if target == Target::Torch {
        if request.to_f32 {
            bail!("--dtype applies to .safetensors and .npz outputs");
        }
        return write_atomically(out, request.force, |file| {
            to_torch::run(request.input, input, options, file, out, request.legacy)
        });
    }
    if input != to_torch::Input::Torch {
        bail!(
            "{}: only torch files convert to .safetensors or .npz",
            request.input.display()
        );
    }
    // Opened before the checkpoint, and kept only if the path still names it after.
    let source = SourceFile::open(request.input).filter(|_| target == Target::Safetensors);
    let ckpt = crate::open(request.input, options)?;
    let source = source.and_then(|s| s.still_at(request.input));
    let mut outputs = outputs(&ckpt, request.to_f32)?;
    if source.is_some() {
        for o in &mut outputs {
            let raw = o
                .tensor
                .raw_bytes()
                .filter(|raw| !o.cast && raw.len() as u64 == o.nbytes());
            o.file_offset = raw.and_then(|raw| ckpt.file_offset(raw));
        }
    }
    let total: u64 = outputs.iter().map(Output::nbytes).sum();
    let progress = progress_bar(total);
    // The input's pages leave our resident memory every RELEASE_BYTES written (they stay in
    // the page cache): converting a file larger than memory does not make it all resident.
    let since_release = std::cell::Cell::new(0u64);
    let written = |n: u64| {
        progress.inc(n);
        since_release.set(since_release.get().saturating_add(n));
        if since_release.get() >= RELEASE_BYTES {
            since_release.set(0);
            ckpt.release_pages();
        }
    };
    write_atomically(out, request.force, |file| match target {
        Target::Safetensors => write_safetensors(&outputs, source.as_ref(), file, &written),
        _ => write_npz(&outputs, file, &written),
    })?;
    progress.finish_and_clear();
    Ok(())
}

/// The tensors of `ckpt` to write, each name once.
fn outputs<'a>(ckpt: &'a Checkpoint<'a>, to_f32: bool) -> anyhow::Result<Vec<Output<'a>>> {
    let mut outputs = Vec::new();
    let mut seen = HashSet::new();
    for (name, t) in ckpt.tensors() {
        if !t.has_data() {
            bail!("tensor {name:?} has no data (a meta tensor) and cannot be converted");
        }
        if !seen.insert(name) {
            bail!(
                "two tensors are both named {name:?} (their paths differ only in how dots and keys combine, \
                 or a value is reachable twice): the output would be ambiguous"
            );
        }
        let cast = to_f32 && t.dtype().is_floating_point() && t.dtype() != DType::Float32;
        let dtype = if cast { DType::Float32 } else { t.dtype() };
        outputs.push(Output {
            name,
            dtype,
            shape: t.shape().to_vec(),
            tensor: t,
            cast,
            file_offset: None,
        });
    }
    Ok(outputs)
}

/// Writes `out` through a temporary file in its folder, renamed into place once complete (over
/// an existing file only with `force`).
fn write_atomically(
    out: &Path,
    force: bool,
    write: impl FnOnce(&mut std::fs::File) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    write(tmp.as_file_mut())?;
    let persisted = if force {
        // The file being replaced is removed first, and the complete new one then takes its
        // name: no partial file ever has that name. Renaming over an existing file instead
        // makes ext4 (`auto_da_alloc`) allocate every block of the new one at once, before the
        // rename returns: 0.75 s for a 1 GiB output here, against 0.3 s for removal and rename.
        // If removal fails (a directory, no permission), the rename says why.
        let _ = std::fs::remove_file(out);
        tmp.persist(out).map(|_| ())
    } else {
        tmp.persist_noclobber(out).map(|_| ())
    };
    persisted.map_err(|e| anyhow::anyhow!("cannot create {}: {}", out.display(), e.error))
}

/// The safetensors format: an 8-byte little-endian header length, the JSON header (tensor
/// names, dtypes, shapes and byte ranges; padded with spaces to 8 bytes), then the bytes.
fn write_safetensors(
    outputs: &[Output<'_>],
    source: Option<&SourceFile>,
    file: &mut std::fs::File,
    written: &dyn Fn(u64),
) -> anyhow::Result<()> {
    let mut header = BTreeMap::new();
    header.insert("__metadata__".to_owned(), serde_json::json!({"format": "pt"}));
    let mut offset = 0u64;
    for o in outputs {
        if o.name == "__metadata__" {
            bail!("a tensor is named __metadata__, the name safetensors keeps for its metadata");
        }
        let dtype = safetensors_dtype(o.dtype).with_context(|| {
            format!(
                "tensor {:?}: safetensors has no {} dtype (try --dtype f32)",
                o.name, o.dtype
            )
        })?;
        let end = offset + o.nbytes();
        header.insert(
            o.name.to_owned(),
            serde_json::json!({"dtype": dtype, "shape": o.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut text = serde_json::to_string(&header)?;
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    let mut w = std::io::BufWriter::new(file);
    w.write_all(&(text.len() as u64).to_le_bytes())?;
    w.write_all(text.as_bytes())?;
    for o in outputs {
        match (source, o.file_offset) {
            (Some(source), Some(offset)) => {
                w.flush()?;
                source
                    .copy_to(offset, o.nbytes(), w.get_mut())
                    .with_context(|| format!("tensor {:?}", o.name))?;
            }
            _ => o.write(&mut w).with_context(|| format!("tensor {:?}", o.name))?,
        }
        written(o.nbytes());
    }
    w.flush()?;
    Ok(())
}

/// The safetensors name of a dtype it has (the format's `Dtype` names).
fn safetensors_dtype(d: DType) -> Option<&'static str> {
    Some(match d {
        DType::Bool => "BOOL",
        DType::UInt8 => "U8",
        DType::Int8 => "I8",
        DType::Int16 => "I16",
        DType::UInt16 => "U16",
        DType::Int32 => "I32",
        DType::UInt32 => "U32",
        DType::Int64 => "I64",
        DType::UInt64 => "U64",
        DType::Float16 => "F16",
        DType::BFloat16 => "BF16",
        DType::Float32 => "F32",
        DType::Float64 => "F64",
        DType::Complex64 => "C64",
        DType::Float8E5M2 => "F8_E5M2",
        DType::Float8E4M3Fn => "F8_E4M3",
        DType::Float8E8M0Fnu => "F8_E8M0",
        DType::Float8E4M3Fnuz => "F8_E4M3FNUZ",
        DType::Float8E5M2Fnuz => "F8_E5M2FNUZ",
        _ => return None,
    })
}

/// numpy's type string for a dtype it has.
fn npy_descr(d: DType) -> Option<&'static str> {
    Some(match d {
        DType::Bool => "|b1",
        DType::UInt8 => "|u1",
        DType::Int8 => "|i1",
        DType::Int16 => "<i2",
        DType::UInt16 => "<u2",
        DType::Int32 => "<i4",
        DType::UInt32 => "<u4",
        DType::Int64 => "<i8",
        DType::UInt64 => "<u8",
        DType::Float16 => "<f2",
        DType::Float32 => "<f4",
        DType::Float64 => "<f8",
        DType::Complex64 => "<c8",
        DType::Complex128 => "<c16",
        _ => return None,
    })
}

/// The `.npy` header (format 1.0, or 2.0 when the header is long), padded to 64 bytes.
fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims.join("")),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let version2 = dict.len() + 11 > usize::from(u16::MAX);
    let prefix = if version2 { 12 } else { 10 };
    let pad = (64 - (prefix + dict.len() + 1) % 64) % 64;
    dict.push_str(&" ".repeat(pad));
    dict.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    if version2 {
        out.extend([2, 0]);
        out.extend((dict.len() as u32).to_le_bytes());
    } else {
        out.extend([1, 0]);
        out.extend((dict.len() as u16).to_le_bytes());
    }
    out.extend(dict.as_bytes());
    out
}

fn write_npz(outputs: &[Output<'_>], file: &mut std::fs::File, written: &dyn Fn(u64)) -> anyhow::Result<()> {
    let mut zip = zip::ZipWriter::new(file);
    for o in outputs {
        let descr = npy_descr(o.dtype)
            .with_context(|| format!("tensor {:?}: numpy has no {} dtype (try --dtype f32)", o.name, o.dtype))?;
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(o.nbytes() >= u64::from(u32::MAX) - 4096);
        zip.start_file(format!("{}.npy", o.name), options)?;
        zip.write_all(&npy_header(descr, &o.shape))?;
        o.write(&mut zip).with_context(|| format!("tensor {:?}", o.name))?;
        written(o.nbytes());
    }
    zip.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::npy_header;

    #[test]
    fn npy_headers_are_padded_to_64_bytes() {
        for shape in [&[][..], &[3], &[2, 3, 4]] {
            let h = npy_header("<f4", shape);
            assert_eq!(h.len() % 64, 0);
            assert_eq!(h.last(), Some(&b'\n'));
        }
        assert!(String::from_utf8_lossy(&npy_header("<f4", &[3])).contains("'shape': (3,)"));
    }
}

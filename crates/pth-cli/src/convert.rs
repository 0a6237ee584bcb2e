//! `pth convert`: to `.safetensors` or `.npz`, written to a temporary file and renamed.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use pth_reader::{Checkpoint, DType, TensorView};

/// Files larger than this get a progress bar (when stderr is a terminal).
const PROGRESS_BYTES: u64 = 64 << 20;

/// One tensor to write: its name, dtype and little-endian C-order bytes (cast if asked).
struct Output<'a> {
    name: &'a str,
    dtype: DType,
    shape: Vec<usize>,
    tensor: &'a TensorView<'a>,
    cast: bool,
}

impl Output<'_> {
    fn bytes(&self) -> anyhow::Result<Cow<'_, [u8]>> {
        if self.cast {
            let values = self.tensor.to_f32_vec()?;
            return Ok(Cow::Owned(values.iter().flat_map(|v| v.to_le_bytes()).collect()));
        }
        Ok(self.tensor.to_le_bytes()?)
    }

    fn nbytes(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size()
    }
}

/// Converts every tensor of `ckpt` into `out`.
pub fn run(ckpt: &Checkpoint<'_>, out: &Path, to_f32: bool, force: bool) -> anyhow::Result<()> {
    if out.exists() && !force {
        bail!("{} exists (use --force to replace it)", out.display());
    }
    let mut outputs = Vec::new();
    for (name, t) in ckpt.tensors() {
        if !t.has_data() {
            bail!("tensor {name:?} has no data (a meta tensor) and cannot be converted");
        }
        let cast = to_f32 && t.dtype().is_floating_point() && t.dtype() != DType::Float32;
        let dtype = if cast { DType::Float32 } else { t.dtype() };
        outputs.push(Output {
            name,
            dtype,
            shape: t.shape().to_vec(),
            tensor: t,
            cast,
        });
    }
    let total: u64 = outputs.iter().map(|o| o.nbytes() as u64).sum();
    let progress = progress_bar(total);
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    match out.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => write_safetensors(&outputs, tmp.path(), &progress)?,
        Some("npz") => write_npz(&outputs, tmp.as_file_mut(), &progress)?,
        _ => bail!("{}: the output must end in .safetensors or .npz", out.display()),
    }
    progress.finish_and_clear();
    let persisted = if force {
        tmp.persist(out).map(|_| ())
    } else {
        tmp.persist_noclobber(out).map(|_| ())
    };
    persisted.map_err(|e| anyhow::anyhow!("cannot create {}: {}", out.display(), e.error))?;
    Ok(())
}

fn progress_bar(total: u64) -> ProgressBar {
    if total < PROGRESS_BYTES || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {eta}") {
        bar.set_style(style);
    }
    bar
}

/// A tensor as safetensors sees it; its bytes are produced when the writer asks for them.
struct SafetensorsView<'a, 'b> {
    output: &'b Output<'a>,
    dtype: safetensors::Dtype,
    progress: &'b ProgressBar,
}

impl safetensors::View for SafetensorsView<'_, '_> {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.output.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        self.progress.inc(self.output.nbytes() as u64);
        // Conversion errors were ruled out before writing started (see write_safetensors).
        self.output.bytes().unwrap_or_default()
    }
    fn data_len(&self) -> usize {
        self.output.nbytes()
    }
}

fn write_safetensors(outputs: &[Output<'_>], path: &Path, progress: &ProgressBar) -> anyhow::Result<()> {
    let mut views = Vec::new();
    for o in outputs {
        let dtype = safetensors_dtype(o.dtype).with_context(|| {
            format!(
                "tensor {:?}: safetensors has no {} dtype (try --dtype f32)",
                o.name, o.dtype
            )
        })?;
        // Check now that the bytes can be produced, so View::data cannot fail later.
        if o.cast {
            o.tensor.to_f32_vec()?;
        }
        views.push((
            o.name.to_owned(),
            SafetensorsView {
                output: o,
                dtype,
                progress,
            },
        ));
    }
    let metadata = std::collections::HashMap::from([("format".to_owned(), "pt".to_owned())]);
    safetensors::serialize_to_file(views, Some(metadata), path)?;
    Ok(())
}

fn safetensors_dtype(d: DType) -> Option<safetensors::Dtype> {
    use safetensors::Dtype as S;
    Some(match d {
        DType::Bool => S::BOOL,
        DType::UInt8 => S::U8,
        DType::Int8 => S::I8,
        DType::Int16 => S::I16,
        DType::UInt16 => S::U16,
        DType::Int32 => S::I32,
        DType::UInt32 => S::U32,
        DType::Int64 => S::I64,
        DType::UInt64 => S::U64,
        DType::Float16 => S::F16,
        DType::BFloat16 => S::BF16,
        DType::Float32 => S::F32,
        DType::Float64 => S::F64,
        DType::Complex64 => S::C64,
        DType::Float8E5M2 => S::F8_E5M2,
        DType::Float8E4M3Fn => S::F8_E4M3,
        DType::Float8E8M0Fnu => S::F8_E8M0,
        DType::Float8E4M3Fnuz => S::F8_E4M3FNUZ,
        DType::Float8E5M2Fnuz => S::F8_E5M2FNUZ,
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

fn write_npz(outputs: &[Output<'_>], file: &mut std::fs::File, progress: &ProgressBar) -> anyhow::Result<()> {
    let mut zip = zip::ZipWriter::new(file);
    for o in outputs {
        let descr = npy_descr(o.dtype)
            .with_context(|| format!("tensor {:?}: numpy has no {} dtype (try --dtype f32)", o.name, o.dtype))?;
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(o.nbytes() as u64 >= u64::from(u32::MAX) - 4096);
        zip.start_file(format!("{}.npy", o.name), options)?;
        zip.write_all(&npy_header(descr, &o.shape))?;
        zip.write_all(&o.bytes()?)?;
        progress.inc(o.nbytes() as u64);
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

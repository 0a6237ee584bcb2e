//! `pth convert … OUT.pt`: a torch file (re-saved whole: legacy, big-endian or deflated files
//! become current archives), a `.safetensors` file or an `.npz` archive (each a state dict of its
//! tensors, by name, in file order) written as torch 2.x writes, or as the legacy stream.
//!
//! Tensor bytes go from the input's memory map to the output without being copied in between,
//! except deflated `.npz` members (inflated once) and big-endian `.npy` arrays (swapped).

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use anyhow::{bail, Context};
use indicatif::ProgressBar;
use pth_reader::write::{Builder, SaveOptions};
use pth_reader::{DType, Options, SharedBytes};

use crate::npy;
use crate::progress::progress_bar;

/// Output buffer: headers gathered, storages passed through.
const BUFFER: usize = 1 << 20;

/// What the input file is, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Torch,
    Safetensors,
    Npz,
}

impl Input {
    pub fn of(path: &Path) -> Input {
        match path.extension().and_then(|e| e.to_str()) {
            Some("safetensors") => Input::Safetensors,
            Some("npz") => Input::Npz,
            _ => Input::Torch,
        }
    }
}

/// Writes `input` as a torch file into `file` (which will be renamed to `out`).
pub fn run(
    input: &Path,
    kind: Input,
    options: &Options,
    file: &mut std::fs::File,
    out: &Path,
    legacy: bool,
) -> anyhow::Result<()> {
    let save = SaveOptions::default().legacy(legacy).root(folder_name(out));
    match kind {
        Input::Torch => {
            let ckpt = crate::open(input, options)?;
            let total = ckpt.storages().iter().map(|s| s.bytes().len() as u64).sum();
            save_with_progress(file, total, |w| ckpt.save_to(w, &save).map(drop))
        }
        Input::Safetensors | Input::Npz => {
            let bytes = SharedBytes::open(input, options).map_err(|e| anyhow::anyhow!("{}: {e}", input.display()))?;
            let mut builder = Builder::new();
            let tensors = match kind {
                Input::Safetensors => safetensors_tensors(&bytes, &mut builder),
                _ => npz_tensors(&bytes, &mut builder),
            }
            .with_context(|| format!("{}", input.display()))?;
            let items: Vec<(&str, pth_reader::ValueId)> = tensors.iter().map(|(n, id, _)| (n.as_str(), *id)).collect();
            let root = builder.state_dict(&items)?;
            let total = tensors.iter().map(|(_, _, n)| *n as u64).sum();
            save_with_progress(file, total, |w| builder.save_to(root, w, &save).map(drop))
        }
    }
}

/// torch's folder name for a file: its name without the extension, when ASCII.
fn folder_name(out: &Path) -> String {
    out.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| s.is_ascii() && !s.is_empty())
        .unwrap_or("archive")
        .to_owned()
}

/// Runs `save` into `file`, with a progress bar over `total` bytes on large files.
fn save_with_progress(
    file: &mut std::fs::File,
    total: u64,
    save: impl FnOnce(&mut dyn Write) -> pth_reader::Result<()>,
) -> anyhow::Result<()> {
    let bar = progress_bar(total);
    let mut out = BufWriter::with_capacity(BUFFER, Counted { inner: file, bar: &bar });
    save(&mut out)?;
    out.flush()?;
    bar.finish_and_clear();
    Ok(())
}

/// A writer that advances a progress bar by the bytes it writes.
struct Counted<'a, W: Write> {
    inner: W,
    bar: &'a ProgressBar,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(bytes)?;
        self.bar.inc(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A tensor added to the builder: its name, its value, its bytes.
type Named = (String, pth_reader::ValueId, usize);

/// The tensors of a `.safetensors` file, in the order of their data, over the mapping.
fn safetensors_tensors(all: &SharedBytes<'static>, b: &mut Builder<'static>) -> anyhow::Result<Vec<Named>> {
    let st = safetensors::SafeTensors::deserialize(all.as_slice()).context("not a safetensors file")?;
    let mut tensors = st.tensors();
    tensors.sort_by_key(|(name, t)| (t.data().as_ptr() as usize, name.clone()));
    let base = all.as_slice().as_ptr() as usize;
    let mut out = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let dtype = safetensors_dtype(t.dtype()).with_context(|| format!("tensor {name:?}: {:?}", t.dtype()))?;
        let start = t.data().as_ptr() as usize - base;
        let bytes = all
            .slice(start..start + t.data().len())
            .context("a tensor outside the file")?;
        let storage = b.storage(dtype, bytes)?;
        let id = b.tensor(storage, t.shape())?;
        out.push((name, id, t.data().len()));
    }
    Ok(out)
}

/// The torch dtype of a safetensors dtype.
fn safetensors_dtype(d: safetensors::Dtype) -> anyhow::Result<DType> {
    use safetensors::Dtype as S;
    Ok(match d {
        S::BOOL => DType::Bool,
        S::U8 => DType::UInt8,
        S::I8 => DType::Int8,
        S::I16 => DType::Int16,
        S::U16 => DType::UInt16,
        S::I32 => DType::Int32,
        S::U32 => DType::UInt32,
        S::I64 => DType::Int64,
        S::U64 => DType::UInt64,
        S::F16 => DType::Float16,
        S::BF16 => DType::BFloat16,
        S::F32 => DType::Float32,
        S::F64 => DType::Float64,
        S::C64 => DType::Complex64,
        S::F8_E5M2 => DType::Float8E5M2,
        S::F8_E4M3 => DType::Float8E4M3Fn,
        S::F8_E8M0 => DType::Float8E8M0Fnu,
        S::F8_E4M3FNUZ => DType::Float8E4M3Fnuz,
        S::F8_E5M2FNUZ => DType::Float8E5M2Fnuz,
        other => bail!("safetensors dtype {other:?} has no torch dtype"),
    })
}

/// The arrays of an `.npz` archive (`numpy.savez`, stored, or `savez_compressed`, deflated),
/// named by their member names without `.npy`.
fn npz_tensors(all: &SharedBytes<'static>, b: &mut Builder<'static>) -> anyhow::Result<Vec<Named>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(all.as_slice())).context("not an .npz (zip) archive")?;
    let mut out = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let mut member = zip.by_index(i)?;
        let member_name = member.name()?.into_owned();
        let Some(name) = member_name.strip_suffix(".npy").map(str::to_owned) else {
            bail!("member {member_name:?} is not a .npy array");
        };
        let stored = member.compression() == zip::CompressionMethod::Stored;
        let bytes: SharedBytes<'static> = if stored {
            let start = usize::try_from(member.data_start().context("a member without data")?)?;
            let len = usize::try_from(member.size())?;
            all.slice(start..start.saturating_add(len))
                .context("a member outside the file")?
        } else {
            let mut data = Vec::new();
            data.try_reserve_exact(usize::try_from(member.size()).unwrap_or(usize::MAX))
                .map_err(|_| anyhow::anyhow!("member {name:?}: cannot allocate {} bytes", member.size()))?;
            member.read_to_end(&mut data)?;
            SharedBytes::from(data)
        };
        let (id, nbytes) = npy_tensor(b, bytes).with_context(|| format!("array {name:?}"))?;
        out.push((name, id, nbytes));
    }
    Ok(out)
}

/// One `.npy` array as a tensor over its data.
fn npy_tensor(b: &mut Builder<'static>, npy: SharedBytes<'static>) -> anyhow::Result<(pth_reader::ValueId, usize)> {
    let header = npy::parse(npy.as_slice())?;
    let nbytes = header.nbytes()?;
    let data = npy
        .slice(header.data_start..header.data_start.saturating_add(nbytes))
        .with_context(|| format!("the array's {nbytes} bytes extend past its member"))?;
    let data = if header.big_endian {
        let unit = if header.dtype.is_complex() {
            header.dtype.size() / 2
        } else {
            header.dtype.size()
        };
        let mut swapped = data.as_slice().to_vec();
        swapped.chunks_exact_mut(unit).for_each(<[u8]>::reverse);
        SharedBytes::from(swapped)
    } else {
        data
    };
    let storage = b.storage(header.dtype, data)?;
    let id = b.strided(storage, &header.shape, &header.strides(), 0)?;
    Ok((id, nbytes))
}

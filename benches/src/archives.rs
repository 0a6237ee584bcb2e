//! Bench inputs written at bench time by `pth_reader::write` (no Python, nothing committed):
//! archives of N tensors of one dtype and shape, with deterministic values.
//!
//! The shapes of issue 10 are presets ([`ArchiveSpec::tensors`] with 1, 100, 10,000 or 20,000
//! small tensors; [`ArchiveSpec::one_gib_f32`]; [`ArchiveSpec::bf16_256_mib`]), and any of them
//! can be written big-endian or as a legacy stream. [`ArchiveSpec::ensure`] writes a spec once
//! under `target/bench-inputs/` (named by the spec) and reuses it afterwards.
//!
//! ```
//! use pth_benches::archives::ArchiveSpec;
//! let small = ArchiveSpec::tensors(100).ensure()?; // 100 × [350] float32, 140 kB
//! let ckpt = pth_reader::Checkpoint::open(&small, &pth_reader::Options::default())?;
//! assert_eq!(ckpt.len(), 100);
//! // The same for the presets: `ArchiveSpec::one_gib_f32().big_endian().ensure()?` writes
//! // 64 × 16 MiB with byteorder "big" (once; later calls reuse the file).
//! # Ok::<(), pth_reader::Error>(())
//! ```

use std::path::PathBuf;

use half::{bf16, f16};
use pth_reader::write::{Builder, SaveOptions};
use pth_reader::{ByteOrder, DType, Result, ValueId};

/// An archive of `count` tensors `layers.<i>.weight`, each of `dtype` and `shape`, as a state
/// dict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSpec {
    /// How many tensors.
    pub count: usize,
    /// Their dtype.
    pub dtype: DType,
    /// The shape of each.
    pub shape: Vec<usize>,
    /// The byte order of the storages (a zip archive's `byteorder` record).
    pub byte_order: ByteOrder,
    /// The legacy (pre-1.6) stream instead of a zip archive.
    pub legacy: bool,
}

impl ArchiveSpec {
    /// `count` tensors of `dtype` and `shape`, little-endian, in a zip archive.
    pub fn new(count: usize, dtype: DType, shape: &[usize]) -> Self {
        ArchiveSpec {
            count,
            dtype,
            shape: shape.to_vec(),
            byte_order: ByteOrder::Little,
            legacy: false,
        }
    }

    /// `count` small float32 tensors of 350 elements (1.4 KB each: 20,000 of them make the
    /// 28 MB archive with a 1.9 MB pickle of issue 10).
    pub fn tensors(count: usize) -> Self {
        ArchiveSpec::new(count, DType::Float32, &[350])
    }

    /// 1 GiB in 64 float32 tensors of 2048 × 2048.
    pub fn one_gib_f32() -> Self {
        ArchiveSpec::new(64, DType::Float32, &[2048, 2048])
    }

    /// 256 MiB of bfloat16 in 16 tensors of 4096 × 2048.
    pub fn bf16_256_mib() -> Self {
        ArchiveSpec::new(16, DType::BFloat16, &[4096, 2048])
    }

    /// The same, big-endian (what torch writes on s390x).
    pub fn big_endian(mut self) -> Self {
        self.byte_order = ByteOrder::Big;
        self
    }

    /// The same, as a legacy stream.
    pub fn legacy(mut self) -> Self {
        self.legacy = true;
        self
    }

    /// Bytes of one tensor.
    pub fn tensor_bytes(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size()
    }

    /// Bytes of all tensors.
    pub fn nbytes(&self) -> u64 {
        self.tensor_bytes() as u64 * self.count as u64
    }

    /// A file name that says what the archive holds.
    pub fn file_name(&self) -> String {
        let shape: Vec<String> = self.shape.iter().map(usize::to_string).collect();
        let order = if self.byte_order == ByteOrder::Big { "_be" } else { "" };
        let format = if self.legacy { "_legacy" } else { "" };
        format!("{}x{}_{}{order}{format}.pt", self.count, shape.join("x"), self.dtype)
    }

    /// The element bytes the tensors are cut from: one deterministic run of values, each
    /// tensor starting 64 bytes after the previous one (so that no two are equal).
    pub fn pool(&self) -> Vec<u8> {
        let size = self.dtype.size();
        let elements = (self.tensor_bytes() + 64 * self.count).div_ceil(size);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut out = Vec::with_capacity(elements * size);
        for _ in 0..elements {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            encode(self.dtype, state, &mut out);
        }
        out
    }

    /// A builder holding the archive's tree over `pool` (from [`pool`](Self::pool)), and its
    /// root.
    pub fn builder<'p>(&self, pool: &'p [u8]) -> Result<(Builder<'p>, ValueId)> {
        let mut b = Builder::new();
        let len = self.tensor_bytes();
        let mut items = Vec::with_capacity(self.count);
        for i in 0..self.count {
            let bytes = pool.get(i * 64..i * 64 + len).unwrap_or_default();
            let storage = b.storage(self.dtype, bytes)?;
            items.push((format!("layers.{i}.weight"), b.tensor(storage, &self.shape)?));
        }
        let named: Vec<(&str, ValueId)> = items.iter().map(|(n, id)| (n.as_str(), *id)).collect();
        let root = b.state_dict(&named)?;
        Ok((b, root))
    }

    /// How to save it.
    pub fn save_options(&self) -> SaveOptions {
        SaveOptions::default().legacy(self.legacy).byte_order(self.byte_order)
    }

    /// Writes the archive to `path`.
    pub fn write(&self, path: &std::path::Path) -> Result<()> {
        let pool = self.pool();
        let (builder, root) = self.builder(&pool)?;
        builder.save(root, path, &self.save_options())
    }

    /// `target/bench-inputs/<file_name>`, written first if absent.
    pub fn ensure(&self) -> Result<PathBuf> {
        let dir = test_support::root().join("target/bench-inputs");
        let path = dir.join(self.file_name());
        if !path.exists() {
            let io = |source| {
                pth_reader::Error::from(pth_reader::ErrorKind::Io {
                    path: dir.clone(),
                    source,
                })
            };
            std::fs::create_dir_all(&dir).map_err(io)?;
            let partial = dir.join(format!("{}.partial", self.file_name()));
            self.write(&partial)?;
            std::fs::rename(&partial, &path).map_err(io)?;
        }
        Ok(path)
    }
}

/// One element of `dtype` from a 64-bit random state, little-endian: floats in [-1, 1), integers
/// and bits from the state's high bits.
fn encode(dtype: DType, state: u64, out: &mut Vec<u8>) {
    let unit = (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
    let bits = state >> 32;
    match dtype {
        DType::Float64 => out.extend(unit.to_le_bytes()),
        DType::Float32 => out.extend((unit as f32).to_le_bytes()),
        DType::Float16 => out.extend(f16::from_f64(unit).to_le_bytes()),
        DType::BFloat16 => out.extend(bf16::from_f64(unit).to_le_bytes()),
        DType::Bool => out.push((bits & 1) as u8),
        other => out.extend(bits.to_le_bytes().iter().cycle().take(other.size())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn archives_read_back_with_the_pool_values() {
        for spec in [
            ArchiveSpec::new(3, DType::BFloat16, &[2, 5]),
            ArchiveSpec::new(2, DType::Int64, &[4]).big_endian(),
            ArchiveSpec::new(2, DType::Float32, &[3]).legacy(),
        ] {
            let pool = spec.pool();
            let (b, root) = spec.builder(&pool).unwrap();
            let bytes = b.save_to(root, Vec::new(), &spec.save_options()).unwrap();
            let ckpt = pth_reader::Checkpoint::from_bytes(&bytes[..], &pth_reader::Options::default()).unwrap();
            assert_eq!(ckpt.len(), spec.count);
            let second = ckpt.tensor("layers.1.weight").unwrap();
            assert_eq!(
                second.to_le_bytes().unwrap().as_ref(),
                &pool[64..64 + spec.tensor_bytes()]
            );
            assert_eq!(pool, spec.pool(), "deterministic");
        }
    }
}

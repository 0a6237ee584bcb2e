//! The reader's speed (issue 10): open + index, zero-copy access, owned decode, strided →
//! contiguous, f16/bf16/float8 → f32, big-endian swap, the legacy stream, the pickle machine
//! alone and SB3 open, each beside its baselines measured in the same run: `memcpy` of the same
//! bytes (a fresh `Vec` filled from the source, as an owned decode allocates one), the
//! `safetensors` crate on the same tensors (written as `.safetensors` at bench time), and with
//! `--features candle` candle-core's `.pth` reader.
//!
//! ```sh
//! cargo bench -p pth-benches --bench read -- --warm-up-time 1 --measurement-time 3
//! cargo bench -p pth-benches --bench read --features candle -- open/   # + candle
//! ```
//!
//! Inputs are written at bench time into `target/bench-inputs/` (`pth_benches::archives`) and
//! read from the page cache (every file is read once before timing). Timings are wall clock.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use pth_benches::archives::ArchiveSpec;
use pth_reader::write::{Builder, SaveOptions};
use pth_reader::{Checkpoint, DType, Options, Pickle};

/// A `.safetensors` file beside `pth` with the same tensors (names, dtypes, shapes, bytes).
fn safetensors_twin(pth: &Path) -> PathBuf {
    let path = pth.with_extension("safetensors");
    if !path.exists() {
        let ckpt = Checkpoint::open(pth, &Options::default()).unwrap();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = ckpt
            .tensors()
            .map(|(name, t)| {
                let view = safetensors::tensor::TensorView::new(
                    safetensors_dtype(t.dtype()),
                    t.shape().to_vec(),
                    t.raw_bytes().unwrap(),
                )
                .unwrap();
                (name.to_string(), view)
            })
            .collect();
        safetensors::serialize_to_file(views, None, &path).unwrap();
    }
    path
}

fn safetensors_dtype(dtype: DType) -> safetensors::Dtype {
    match dtype {
        DType::Float32 => safetensors::Dtype::F32,
        DType::Float16 => safetensors::Dtype::F16,
        DType::BFloat16 => safetensors::Dtype::BF16,
        DType::Float8E4M3Fn => safetensors::Dtype::F8_E4M3,
        other => unimplemented!("no safetensors twin for {other}"),
    }
}

/// An archive of one strided view over a `rows × columns` float32 storage (written once).
fn strided_archive(name: &str, rows: usize, columns: usize, shape: &[usize], stride: &[usize]) -> PathBuf {
    let path = test_support::root().join("target/bench-inputs").join(name);
    if !path.exists() {
        let pool = ArchiveSpec::new(1, DType::Float32, &[rows, columns]).pool();
        let mut b = Builder::new();
        let storage = b.storage(DType::Float32, &pool[..rows * columns * 4]).unwrap();
        let view = b.strided(storage, shape, stride, 0).unwrap();
        let root = b.state_dict(&[("view", view)]).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        b.save(root, &path, &SaveOptions::default()).unwrap();
    }
    path
}

/// Reads the file once so that the timed runs read it from the page cache.
fn warm(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn short(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

/// Open + index: N small tensors and 1 GiB of large ones; mapped, read, from memory; the
/// safetensors crate's header parse on the same tensors from memory.
fn open(c: &mut Criterion) {
    let cases = [
        ("1_tensor", ArchiveSpec::tensors(1)),
        ("100_tensors", ArchiveSpec::tensors(100)),
        ("10k_tensors", ArchiveSpec::tensors(10_000)),
        ("20k_tensors", ArchiveSpec::tensors(20_000)),
        ("1GiB_64_tensors", ArchiveSpec::one_gib_f32()),
    ];
    for (label, spec) in cases {
        let path = spec.ensure().unwrap();
        let st_path = safetensors_twin(&path);
        let bytes = warm(&path);
        let st_bytes = warm(&st_path);
        let mut group = c.benchmark_group(format!("open/{label}"));
        if spec.count >= 10_000 || spec.nbytes() > 1 << 28 {
            short(&mut group);
        }
        group.bench_function("pth_mmap", |b| {
            b.iter(|| Checkpoint::open(&path, &Options::default()).unwrap().len())
        });
        group.bench_function("pth_read", |b| {
            b.iter(|| Checkpoint::open(&path, &Options::default().mmap(false)).unwrap().len())
        });
        group.bench_function("pth_from_bytes", |b| {
            b.iter(|| Checkpoint::from_bytes(&bytes[..], &Options::default()).unwrap().len())
        });
        group.bench_function("safetensors_from_bytes", |b| {
            b.iter(|| safetensors::SafeTensors::deserialize(&st_bytes).unwrap().len())
        });
        #[cfg(feature = "candle")]
        group.bench_function("candle_pth", |b| {
            b.iter(|| {
                candle_core::pickle::PthTensors::new(&path, None)
                    .unwrap()
                    .tensor_infos()
                    .len()
            })
        });
        group.finish();
    }
}

/// Zero-copy access: the bytes and an ndarray view of every tensor of an open checkpoint.
fn access(c: &mut Criterion) {
    let path = ArchiveSpec::one_gib_f32().ensure().unwrap();
    let ckpt = Checkpoint::open(&path, &Options::default()).unwrap();
    let names: Vec<String> = ckpt.tensors().map(|(n, _)| n.to_string()).collect();
    let st_bytes = warm(&safetensors_twin(&path));
    let st = safetensors::SafeTensors::deserialize(&st_bytes).unwrap();
    let mut group = c.benchmark_group("access/1GiB_64_tensors");
    group.bench_function("pth_raw_bytes", |b| {
        b.iter(|| {
            names
                .iter()
                .map(|n| ckpt.tensor(n).unwrap().raw_bytes().unwrap().len())
                .sum::<usize>()
        })
    });
    group.bench_function("pth_as_array", |b| {
        b.iter(|| {
            names
                .iter()
                .map(|n| ckpt.tensor(n).unwrap().as_array::<f32>().unwrap().len())
                .sum::<usize>()
        })
    });
    group.bench_function("safetensors_data", |b| {
        b.iter(|| names.iter().map(|n| st.tensor(n).unwrap().data().len()).sum::<usize>())
    });
    group.finish();
}

/// The baseline of an owned result: a fresh vector filled from `bytes` (allocation, page
/// faults and copy, as the decode pays them).
fn memcpy(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, chunks: &[&[u8]]) {
    group.bench_function(name, |b| {
        b.iter(|| {
            for chunk in chunks {
                black_box(chunk.to_vec());
            }
        })
    });
}

/// Owned decode of contiguous float32 tensors (`to_vec::<f32>`), 1 MiB to 1 GiB.
fn decode(c: &mut Criterion) {
    let cases = [
        ("1MiB", ArchiveSpec::new(1, DType::Float32, &[512, 512])),
        ("64MiB", ArchiveSpec::new(1, DType::Float32, &[4096, 4096])),
        ("1GiB", ArchiveSpec::one_gib_f32()),
    ];
    for (label, spec) in cases {
        let path = spec.ensure().unwrap();
        warm(&path);
        let ckpt = Checkpoint::open(&path, &Options::default()).unwrap();
        let tensors: Vec<_> = ckpt.tensors().map(|(_, t)| t.clone()).collect();
        let mut group = c.benchmark_group(format!("decode/{label}"));
        if spec.nbytes() >= 1 << 26 {
            short(&mut group);
        }
        group.throughput(Throughput::Bytes(spec.nbytes()));
        group.bench_function("pth_to_vec_f32", |b| {
            b.iter(|| {
                for t in &tensors {
                    black_box(t.to_vec::<f32>().unwrap());
                }
            })
        });
        let raw: Vec<&[u8]> = tensors.iter().map(|t| t.raw_bytes().unwrap()).collect();
        memcpy(&mut group, "memcpy", &raw);
        group.finish();
    }
}

/// Strided → contiguous: a transposed 4096 × 4096 float32 view (runs of one element), the
/// left half of one (runs of 8 KiB), and an NHWC 16 × 64 × 64 × 256 float32 tensor permuted to
/// NCHW (`x.permute(0, 3, 1, 2)`: a batch of transposes), 64, 32 and 64 MiB out.
fn strided(c: &mut Criterion) {
    let n = 4096;
    let cases = [
        (
            "64MiB_transposed",
            strided_archive("strided_t_4096.pt", n, n, &[n, n], &[1, n]),
        ),
        (
            "32MiB_narrowed",
            strided_archive("strided_half_4096.pt", n, n, &[n, n / 2], &[n, 1]),
        ),
        (
            "64MiB_permuted_nchw",
            strided_archive(
                "strided_nhwc_to_nchw.pt",
                n,
                n,
                &[16, 256, 64, 64],
                &[64 * 64 * 256, 1, 64 * 256, 256],
            ),
        ),
    ];
    for (label, path) in cases {
        warm(&path);
        let ckpt = Checkpoint::open(&path, &Options::default()).unwrap();
        let t = ckpt.tensor("view").unwrap().clone();
        let storage = t.storage_bytes().unwrap().as_slice();
        let mut group = c.benchmark_group(format!("strided/{label}"));
        short(&mut group);
        group.throughput(Throughput::Bytes(t.nbytes() as u64));
        group.bench_function("pth_to_vec_f32", |b| b.iter(|| t.to_vec::<f32>().unwrap()));
        memcpy(&mut group, "memcpy", &[&storage[..t.nbytes()]]);
        group.finish();
    }
}

/// Half and 8-bit floats → f32 (`to_f32_vec`); the baseline is `memcpy` of the output bytes.
fn to_f32(c: &mut Criterion) {
    let shape = [4096, 2048];
    let cases = [
        ("bf16_256MiB", ArchiveSpec::bf16_256_mib()),
        ("f16_256MiB", ArchiveSpec::new(16, DType::Float16, &shape)),
        (
            "float8_e4m3fn_128MiB",
            ArchiveSpec::new(16, DType::Float8E4M3Fn, &shape),
        ),
    ];
    let output = vec![0u8; 16 * 4096 * 2048 * 4];
    for (label, spec) in cases {
        let path = spec.ensure().unwrap();
        warm(&path);
        let ckpt = Checkpoint::open(&path, &Options::default()).unwrap();
        let tensors: Vec<_> = ckpt.tensors().map(|(_, t)| t.clone()).collect();
        let mut group = c.benchmark_group(format!("to_f32/{label}"));
        short(&mut group);
        group.throughput(Throughput::Bytes(output.len() as u64));
        group.bench_function("pth_to_f32_vec", |b| {
            b.iter(|| {
                for t in &tensors {
                    black_box(t.to_f32_vec().unwrap());
                }
            })
        });
        let chunks: Vec<&[u8]> = output.chunks(output.len() / 16).collect();
        memcpy(&mut group, "memcpy_output", &chunks);
        group.finish();
    }
}

/// A big-endian archive (torch on s390x): 64 MiB of float32 swapped into a vector.
fn big_endian(c: &mut Criterion) {
    let spec = ArchiveSpec::new(1, DType::Float32, &[4096, 4096]).big_endian();
    let path = spec.ensure().unwrap();
    warm(&path);
    let ckpt = Checkpoint::open(&path, &Options::default()).unwrap();
    let t = ckpt.tensor("layers.0.weight").unwrap().clone();
    let stored = t.storage_bytes().unwrap().as_slice();
    let mut group = c.benchmark_group("big_endian/64MiB");
    short(&mut group);
    group.throughput(Throughput::Bytes(spec.nbytes()));
    group.bench_function("pth_to_vec_f32", |b| b.iter(|| t.to_vec::<f32>().unwrap()));
    memcpy(&mut group, "memcpy", &[stored]);
    group.finish();
}

/// The legacy (pre-1.6) stream: open + index of 20k small tensors, and of 64 MiB with its
/// decode.
fn legacy(c: &mut Criterion) {
    let small = ArchiveSpec::tensors(20_000).legacy().ensure().unwrap();
    warm(&small);
    let mut group = c.benchmark_group("legacy/20k_tensors");
    short(&mut group);
    group.bench_function("pth_open", |b| {
        b.iter(|| Checkpoint::open(&small, &Options::default()).unwrap().len())
    });
    group.finish();

    let spec = ArchiveSpec::new(1, DType::Float32, &[4096, 4096]).legacy();
    let big = spec.ensure().unwrap();
    warm(&big);
    let mut group = c.benchmark_group("legacy/64MiB");
    short(&mut group);
    group.throughput(Throughput::Bytes(spec.nbytes()));
    group.bench_function("pth_open", |b| {
        b.iter(|| Checkpoint::open(&big, &Options::default()).unwrap().len())
    });
    group.bench_function("pth_open_to_vec_f32", |b| {
        b.iter(|| {
            let ckpt = Checkpoint::open(&big, &Options::default()).unwrap();
            ckpt.tensor("layers.0.weight").unwrap().to_vec::<f32>().unwrap()
        })
    });
    group.finish();
}

/// The pickle machine alone: the `data.pkl` of the 20k archive through `Pickle::parse`, and the
/// whole in-memory archive of 20k one-element tensors (storages too small to matter).
fn pickle(c: &mut Criterion) {
    let path = ArchiveSpec::tensors(20_000).ensure().unwrap();
    let bytes = warm(&path);
    let shared = pth_reader::SharedBytes::from(&bytes[..]);
    let zip = pth_reader::zip::ZipArchive::parse(shared, &Default::default()).unwrap();
    let entry = zip.entries().iter().find(|e| e.name().ends_with("/data.pkl")).unwrap();
    let range = entry.data_range();
    let pkl = &bytes[range.start as usize..range.end as usize];
    let tiny = warm(&ArchiveSpec::new(20_000, DType::Float32, &[1]).ensure().unwrap());
    let mut group = c.benchmark_group("pickle/20k_tensors");
    short(&mut group);
    group.throughput(Throughput::Bytes(pkl.len() as u64));
    group.bench_function("pickle_parse_data_pkl", |b| {
        b.iter(|| Pickle::parse(pkl, &Options::default()).unwrap().protocol())
    });
    group.bench_function("from_bytes_tiny_storages", |b| {
        b.iter(|| Checkpoint::from_bytes(&tiny[..], &Options::default()).unwrap().len())
    });
    group.finish();
}

/// SB3 open: fixtures written by SB3 (a CNN PPO and an MLP PPO).
fn sb3(c: &mut Criterion) {
    let mut group = c.benchmark_group("sb3/open");
    for name in ["ppo_cnn.zip", "ppo_box_discrete.zip"] {
        let path = test_support::root().join("fixtures/policies").join(name);
        warm(&path);
        group.bench_function(name, |b| {
            b.iter(|| sb3_format::Model::open(&path, &Options::default()).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, open, access, decode, strided, to_f32, big_endian, legacy, pickle, sb3);
criterion_main!(benches);

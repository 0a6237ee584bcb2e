//! The writer's speed (issue 11): writing a 1 GiB archive (64 float32 tensors of 16 MiB) from a
//! `Builder` over tensors in memory, and re-saving the same archive opened from disk, beside
//! `cp` of that archive, `std::fs::copy`, `write_all` of 1 GiB from memory and `memcpy` of
//! 1 GiB, measured in the same run; and writing 20,000 small tensors (28 MB, a 1.9 MB pickle).
//!
//! ```sh
//! cargo bench -p pth-benches --bench write
//! ```
//!
//! Inputs are written at bench time into `target/bench-inputs/` (`pth_benches::archives`), the
//! outputs into `target/bench-out/`, on the same file system. Timings are wall-clock (the work
//! is I/O); files are not synced, as neither `cp` nor `torch.save` syncs them.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pth_benches::archives::ArchiveSpec;
use pth_reader::write::SaveOptions;
use pth_reader::{Checkpoint, Options};

fn out_dir() -> PathBuf {
    let dir = test_support::root().join("target/bench-out");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writing 1 GiB, and the copies it is compared with.
fn one_gib(c: &mut Criterion) {
    let spec = ArchiveSpec::one_gib_f32();
    let source = spec.ensure().unwrap();
    let out = out_dir();
    let size = std::fs::metadata(&source).unwrap().len();
    let mut group = c.benchmark_group("write/1GiB_64_tensors");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(3));
    group.throughput(Throughput::Bytes(size));

    let pool = spec.pool();
    let (builder, root) = spec.builder(&pool).unwrap();
    let target = out.join("builder.pt");
    group.bench_function("builder_to_file", |b| {
        b.iter(|| builder.save(root, &target, &SaveOptions::default()).unwrap())
    });
    drop(builder);
    drop(pool);

    let ckpt = Checkpoint::open(&source, &Options::default()).unwrap();
    let target = out.join("resaved.pt");
    group.bench_function("checkpoint_resave", |b| {
        b.iter(|| ckpt.save(&target, &SaveOptions::default()).unwrap())
    });
    drop(ckpt);

    copies(&mut group, &source, &out, size);
    group.finish();
    for name in ["builder.pt", "resaved.pt", "cp.pt", "fs_copy.pt", "write_all.bin"] {
        let _ = std::fs::remove_file(out.join(name));
    }
}

/// The baselines: `cp`, `std::fs::copy` (`copy_file_range`), `write_all` of the same number of
/// bytes from memory, and `memcpy`.
fn copies(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    source: &Path,
    out: &Path,
    size: u64,
) {
    let target = out.join("cp.pt");
    group.bench_function("cp", |b| {
        b.iter(|| assert!(Command::new("cp").arg(source).arg(&target).status().unwrap().success()))
    });
    let target = out.join("fs_copy.pt");
    group.bench_function("fs_copy", |b| b.iter(|| std::fs::copy(source, &target).unwrap()));
    let bytes = std::fs::read(source).unwrap();
    let target = out.join("write_all.bin");
    group.bench_function("write_all", |b| {
        b.iter(|| {
            let mut file = std::fs::File::create(&target).unwrap();
            file.write_all(&bytes).unwrap();
        })
    });
    let mut destination = vec![0u8; size as usize];
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            destination.copy_from_slice(&bytes);
            black_box(&destination);
        })
    });
}

/// 20,000 tensors of 1.4 KB: the pickle and the records, not the bytes, take the time.
fn many_tensors(c: &mut Criterion) {
    let spec = ArchiveSpec::tensors(20_000);
    let source = spec.ensure().unwrap();
    let size = std::fs::metadata(&source).unwrap().len();
    let mut group = c.benchmark_group("write/20k_tensors");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(size));
    let pool = spec.pool();
    let (builder, root) = spec.builder(&pool).unwrap();
    group.bench_function("builder_to_vec", |b| {
        b.iter(|| {
            builder
                .save_to(root, Vec::with_capacity(size as usize), &SaveOptions::default())
                .unwrap()
        })
    });
    let ckpt = Checkpoint::open(&source, &Options::default()).unwrap();
    group.bench_function("checkpoint_resave_to_vec", |b| {
        b.iter(|| {
            ckpt.save_to(Vec::with_capacity(size as usize), &SaveOptions::default())
                .unwrap()
        })
    });
    let bytes = std::fs::read(&source).unwrap();
    group.bench_function("memcpy", |b| b.iter(|| black_box(bytes.clone())));
    group.finish();
}

criterion_group!(benches, one_gib, many_tensors);
criterion_main!(benches);

//! Writes the archives of issues 10 and 11 into `target/bench-inputs/` (if absent) with the
//! project's own writer, and prints their paths: the inputs of `benches/process.sh` and of
//! `benches/torch_baseline.py --reader`. The criterion benches write the same files themselves.
//!
//! ```sh
//! cargo run --release -p pth-benches --example bench_inputs
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pth_benches::archives::ArchiveSpec;

fn main() {
    for spec in [
        ArchiveSpec::tensors(20_000),
        ArchiveSpec::one_gib_f32(),
        ArchiveSpec::bf16_256_mib(),
    ] {
        println!("{}", spec.ensure().unwrap().display());
    }
}

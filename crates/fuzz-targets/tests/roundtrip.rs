//! The round-trip target's body over every torch file of the project (`fixtures/torch`,
//! `fixtures/differential`, `fixtures/hostile`, `fixtures/zip`) and of the shared corpus: each
//! one that reads is written back three ways, read again and compared (a difference panics).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

fn torch_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            torch_files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("pt" | "pth" | "pkl" | "bin")
        ) {
            out.push(path);
        }
    }
}

fn run_all(dirs: &[PathBuf]) -> usize {
    let mut files = Vec::new();
    for dir in dirs {
        torch_files(dir, &mut files);
    }
    files.sort();
    let mut failures = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        if let Err(panic) = std::panic::catch_unwind(|| fuzz_targets::roundtrip::run(&bytes)) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    files.len()
}

#[test]
fn fixtures_read_back_as_written() {
    let root = test_support::root().join("fixtures");
    let dirs = ["torch", "differential", "hostile", "zip"].map(|d| root.join(d));
    let n = run_all(&dirs);
    assert!(n > 400, "only {n} fixture files");
}

#[test]
fn corpus_files_read_back_as_written() {
    let Some(corpus) = test_support::corpus() else {
        return;
    };
    let n = run_all(&[corpus.join("gopickle"), corpus.join("burn")]);
    assert!(n > 0);
}

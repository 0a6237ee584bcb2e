//! Every hostile file (`fixtures/hostile/` and `fixtures/differential/`) through every `pth` command that reads
//! tensors — `ls --json`, `ls --json --sha256`, `tree --json`, `get FILE <first tensor>`, `convert` to
//! `.safetensors` and `.npz` — under a 2 GiB address-space cap and a time limit: exit 0 or 1 (with a message on
//! stderr), never a panic, a signal (abort, out-of-memory kill) or a timeout (issue 8, acceptance).
//!
//! The limit is 10 s for an optimised `pth` (`cargo test --release -p pth-cli --test hostile_cli`) and 60 s for the
//! unoptimised one `cargo test` builds. Output is drained and counted, never kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use test_support::{fixture, run_capped, Capped};

const ADDRESS_SPACE_KIB: u64 = 2 * 1024 * 1024;

fn time_limit() -> Duration {
    Duration::from_secs(if cfg!(debug_assertions) { 60 } else { 10 })
}

/// Runs `pth args...` under the address-space cap and the time limit.
fn pth(args: &[&OsStr]) -> Capped {
    run_capped(
        Path::new(env!("CARGO_BIN_EXE_pth")),
        args,
        ADDRESS_SPACE_KIB,
        time_limit(),
    )
}

/// The hostile files: `fixtures/hostile/*` and `fixtures/differential/*` (`.gz` ones inflated into `scratch`).
fn hostile_files(scratch: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["hostile", "differential"] {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(fixture(dir))
            .unwrap_or_else(|e| panic!("fixtures/{dir}: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                [".pt", ".pkl", ".zip", ".pth", ".pt.gz"]
                    .iter()
                    .any(|s| name.ends_with(s))
            })
            .collect();
        entries.sort();
        for p in entries {
            if p.to_string_lossy().ends_with(".gz") {
                let mut data = Vec::new();
                let raw = std::fs::read(&p).unwrap();
                flate2::read::GzDecoder::new(raw.as_slice())
                    .read_to_end(&mut data)
                    .unwrap();
                let out = scratch.join(p.file_stem().unwrap());
                std::fs::write(&out, data).unwrap();
                files.push(out);
            } else {
                files.push(p);
            }
        }
    }
    files
}

/// The first tensor `pth ls --json` lists whose name can be passed as an argument (Linux caps one argument at
/// 128 KiB; hostile names run to gigabytes), if it listed any.
fn first_tensor(ls: &Capped) -> Option<String> {
    if ls.code != Some(0) || ls.stdout.len() as u64 != ls.stdout_bytes {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&ls.stdout).ok()?;
    let names = json["tensors"].as_array()?.iter().filter_map(|t| t["name"].as_str());
    names
        .map(str::to_owned)
        .find(|n| n.len() <= 64 << 10 && !n.contains('\0'))
}

/// Every command on one file; the failures, one line each.
fn check_file(file: &Path, out_dir: &Path) -> Vec<String> {
    let f = file.as_os_str();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let mut failures = Vec::new();
    let mut note = |what: &str, run: &Capped| {
        if let Some(why) = run.failure() {
            failures.push(format!("{name}: pth {what}: {why}"));
        }
    };
    let ls = pth(&["ls".as_ref(), "--json".as_ref(), f]);
    note("ls --json", &ls);
    note(
        "ls --json --sha256",
        &pth(&["ls".as_ref(), "--json".as_ref(), "--sha256".as_ref(), f]),
    );
    note("tree --json", &pth(&["tree".as_ref(), "--json".as_ref(), f]));
    if let Some(tensor) = first_tensor(&ls) {
        note("get", &pth(&["get".as_ref(), f, tensor.as_ref()]));
    }
    for ext in ["safetensors", "npz"] {
        let out = out_dir.join(format!("{name}.{ext}"));
        note(
            &format!("convert .{ext}"),
            &pth(&["convert".as_ref(), "--force".as_ref(), f, out.as_os_str()]),
        );
        let _ = std::fs::remove_file(&out);
    }
    failures
}

#[test]
fn every_hostile_file_through_every_command_exits_0_or_1_within_bounds() {
    let scratch = tempfile::tempdir().unwrap();
    let files = hostile_files(scratch.path());
    assert!(files.len() >= 400, "{} hostile files", files.len());
    let queue = Mutex::new(files.iter());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let out_dir = tempfile::tempdir().unwrap();
                loop {
                    let Some(file) = queue.lock().unwrap().next() else {
                        break;
                    };
                    let found = check_file(file, out_dir.path());
                    failures.lock().unwrap().extend(found);
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} failing runs over {} files:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

//! Replays every crash the fuzzers found (`fuzz/regressions/<target>/<file>`) through the same target body the
//! fuzzer ran, each in its own process under the fuzzers' bounds (2 GiB address space, 10 s; 60 s unoptimised),
//! so that an abort or a hang fails that file and the others still run. Ends with `N passed, M failed`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::PathBuf;
use std::time::Duration;

use fuzz_targets::TARGETS;

const ADDRESS_SPACE_KIB: u64 = 2 * 1024 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--replay") {
        let (target, file) = (&args[i + 1], &args[i + 2]);
        let run = TARGETS
            .iter()
            .find(|(name, _)| name == target)
            .map(|(_, run)| run)
            .expect("a target");
        run(&std::fs::read(file).unwrap());
        return;
    }
    let dir = test_support::root().join("fuzz/regressions");
    let exe = std::env::current_exe().unwrap();
    let timeout = Duration::from_secs(if cfg!(debug_assertions) { 60 } else { 10 });
    let (mut passed, mut failed) = (0, Vec::new());
    for (target, _) in TARGETS {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir.join(target)) {
            Ok(entries) => entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect(),
            Err(_) => continue,
        };
        files.sort();
        for file in files {
            let run = test_support::run_capped(
                &exe,
                &["--replay".as_ref(), target.as_ref(), file.as_os_str()],
                ADDRESS_SPACE_KIB,
                timeout,
            );
            match (run.code, run.failure()) {
                (Some(0), None) => passed += 1,
                (_, why) => failed.push(format!(
                    "FAIL {target}/{}: {}",
                    file.file_name().unwrap().to_string_lossy(),
                    why.unwrap_or_else(|| format!("exit {:?}", run.code))
                )),
            }
        }
    }
    for f in &failed {
        println!("{f}");
    }
    println!("{passed} passed, {} failed", failed.len());
    std::process::exit(i32::from(!failed.is_empty()));
}

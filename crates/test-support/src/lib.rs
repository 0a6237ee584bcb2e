//! Test helpers shared by the workspace's crates (a dev-dependency only): where the project,
//! its fixtures and the shared corpus are, reading manifests, hashing tensor bytes, running a
//! process under caps, and comparing checkpoints ([`torch`]) and SB3 models ([`sb3`]) with
//! their manifests. Every helper a test file needs is here, once.
#![forbid(unsafe_code)]
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

pub mod sb3;
pub mod torch;

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// The project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file under `fixtures/`.
pub fn fixture(relative: &str) -> PathBuf {
    root().join("fixtures").join(relative)
}

/// The shared corpus (`$PTH_CORPUS`, default `../shared/corpus` beside the project), or `None`
/// when it is absent. With `PTH_REQUIRE_CORPUS=1` (as `.ci/run` sets) a missing corpus panics,
/// failing the test instead of skipping it.
pub fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("PTH_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/corpus"));
    if dir.join("README.md").exists() {
        return Some(dir);
    }
    if std::env::var("PTH_REQUIRE_CORPUS").is_ok_and(|v| v == "1") {
        panic!("PTH_REQUIRE_CORPUS=1 but the corpus is missing at {}", dir.display());
    }
    eprintln!(
        "skipping: no corpus at {} (set PTH_REQUIRE_CORPUS=1 to make this fail)",
        dir.display()
    );
    None
}

/// A JSON file (a manifest), or a panic naming it.
pub fn load_json(path: &Path) -> Json {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Hex sha256, as the manifests write it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The name of an enum value's variant (`Overlap` for `Overlap { .. }`), from its `Debug` form:
/// how manifests name an expected error or warning.
pub fn variant_name(value: &impl std::fmt::Debug) -> String {
    format!("{value:?}")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

/// A manifest's array of sizes (`shape`, `stride`) as `usize`s.
pub fn usizes(v: &Json) -> Vec<usize> {
    let items = v.as_array().unwrap_or_else(|| panic!("not an array: {v}"));
    items
        .iter()
        .map(|x| x.as_u64().unwrap_or_else(|| panic!("not a size: {x}")) as usize)
        .collect()
}

/// How a process run by [`run_capped`] ended.
#[derive(Debug)]
pub struct Capped {
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that killed it (an abort, an out-of-memory kill, a segfault).
    pub signal: Option<i32>,
    /// Killed for running past the time limit.
    pub timed_out: bool,
    /// The first MiB of its standard output.
    pub stdout: Vec<u8>,
    /// How many bytes it wrote to standard output in all.
    pub stdout_bytes: u64,
    /// The first 64 KiB of its standard error.
    pub stderr: String,
}

impl Capped {
    /// What is wrong with the run if it should have ended with exit 0, or 1 and a message: a timeout, a signal,
    /// a panic, another exit code, or exit 1 in silence.
    pub fn failure(&self) -> Option<String> {
        let first = self.stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let first: String = first.chars().take(160).collect();
        if self.timed_out {
            return Some(format!("timeout ({} bytes out)", self.stdout_bytes));
        }
        if let Some(sig) = self.signal {
            return Some(format!("killed by signal {sig}: {first}"));
        }
        if self.stderr.contains("panicked at") {
            return Some(format!("panic: {}", self.panic_message()));
        }
        match self.code {
            Some(0) => None,
            Some(1) if self.stderr.trim().is_empty() => Some("exit 1 without a message".to_owned()),
            Some(1) => None,
            other => Some(format!("exit {other:?}: {first}")),
        }
    }

    /// The panic message and location from standard error.
    pub fn panic_message(&self) -> String {
        let mut lines = self.stderr.lines().skip_while(|l| !l.contains("panicked at"));
        let at = lines.next().unwrap_or("").trim().to_owned();
        let msg = lines.next().unwrap_or("").trim().to_owned();
        format!("{msg} ({at})").chars().take(240).collect()
    }
}

/// Runs `program args...` with its address space capped at `address_space_kib` (`ulimit -v`, so an allocation
/// past it fails inside the child) and killed after `timeout`; output is drained on threads (kept up to a bound).
pub fn run_capped<S: AsRef<std::ffi::OsStr>>(
    program: &Path,
    args: &[S],
    address_space_kib: u64,
    timeout: std::time::Duration,
) -> Capped {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let script = format!("ulimit -v {address_space_kib} && exec \"$@\"");
    let mut child = std::process::Command::new("sh")
        .args(["-c", &script, "sh"])
        .arg(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sh runs");
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let (mut kept, mut total, mut buf) = (Vec::new(), 0u64, vec![0u8; 1 << 16]);
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
            if kept.len() < 1 << 20 {
                kept.extend_from_slice(buf.get(..n).unwrap_or_default());
            }
        }
        (kept, total)
    });
    let err_reader = std::thread::spawn(move || {
        let mut kept = Vec::new();
        let _ = err.by_ref().take(1 << 16).read_to_end(&mut kept);
        let _ = std::io::copy(&mut err, &mut std::io::sink());
        String::from_utf8_lossy(&kept).into_owned()
    });
    let start = std::time::Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > timeout {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let (stdout, stdout_bytes) = out_reader.join().unwrap_or_default();
    Capped {
        code: status.code(),
        signal: status.signal(),
        timed_out,
        stdout,
        stdout_bytes,
        stderr: err_reader.join().unwrap_or_default(),
    }
}

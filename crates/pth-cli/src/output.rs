//! Writing to stdout: buffered, bounded, and without panicking when the reader goes away
//! (`pth ls | head`).
//!
//! Every byte a command prints counts toward `--max-output` (default [`DEFAULT_MAX_OUTPUT`]):
//! a small file can describe enormous output (a tree sharing one long string thousands of
//! times, the values of an expanded tensor), and printing it would take unbounded time.

use std::io::{self, Write};
use std::sync::OnceLock;

use pth_reader::json::BoundedWriter;

/// The default of `--max-output`: 256 MiB.
pub const DEFAULT_MAX_OUTPUT: u64 = 256 << 20;

static MAX_OUTPUT: OnceLock<u64> = OnceLock::new();

/// Sets the output limit of this run (once, at startup).
pub fn set_max_output(bytes: u64) {
    let _ = MAX_OUTPUT.set(bytes);
}

/// Standard output as commands write it: locked, buffered and bounded by `--max-output`.
/// A concrete type, not `dyn Write`: serde_json writes a value a few bytes at a time, and
/// through this type each of those writes is a copy into the buffer rather than a dynamic call
/// (a fifth of `pth ls --json`'s instructions on an archive of 20,000 tensors).
pub type Stdout = BoundedWriter<io::BufWriter<io::StdoutLock<'static>>>;

/// Runs `f` with a buffered, locked, bounded stdout and flushes it.
pub fn with_stdout(f: impl FnOnce(&mut Stdout) -> io::Result<()>) -> anyhow::Result<()> {
    let max = MAX_OUTPUT.get().copied().unwrap_or(DEFAULT_MAX_OUTPUT);
    let mut out = BoundedWriter::new(
        io::BufWriter::new(io::stdout().lock()),
        max,
        "raise --max-output to allow more",
    );
    f(&mut out)?;
    out.flush()?;
    Ok(())
}

/// A library error as an I/O error, to leave a writing closure with it.
pub fn io_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Whether an error is a closed pipe on stdout: not a failure of ours.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

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

/// Runs `f` with a buffered, locked, bounded stdout and flushes it.
pub fn with_stdout(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let max = MAX_OUTPUT.get().copied().unwrap_or(DEFAULT_MAX_OUTPUT);
    let mut out = BoundedWriter::new(
        io::BufWriter::new(stdout.lock()),
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

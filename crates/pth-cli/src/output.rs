//! Writing to stdout without panicking when the reader goes away (`pth ls | head`).

use std::io::{self, Write};

/// Runs `f` with a buffered, locked stdout and flushes it.
pub fn with_stdout(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    f(&mut out)?;
    out.flush()?;
    Ok(())
}

/// Whether an error is a closed pipe on stdout: not a failure of ours.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

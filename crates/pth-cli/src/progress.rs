//! The progress bar both `pth convert` paths (to safetensors/npz and to torch) draw on stderr.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Files larger than this get a progress bar (when stderr is a terminal).
const PROGRESS_BYTES: u64 = 64 << 20;

/// A progress bar for `total` bytes, hidden below 64 MiB or when stderr is not a terminal.
pub fn progress_bar(total: u64) -> ProgressBar {
    if total < PROGRESS_BYTES || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {eta}") {
        bar.set_style(style);
    }
    bar
}

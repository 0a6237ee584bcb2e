//! Opens a `.pt` archive and indexes it without reading any tensor, `N` times (default 1), then
//! prints the number of tensors: the process `benches/process.sh` measures for peak resident
//! memory, and a loop to profile (`perf record`).
//!
//! ```sh
//! cargo run --release -p pth-benches --example open -- target/bench-inputs/20000x350_float32.pt 50
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pth_reader::{Checkpoint, Options};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: open PATH [N]");
    let times: usize = args.next().map_or(1, |n| n.parse().unwrap());
    let mut tensors = 0;
    for _ in 0..times {
        tensors = Checkpoint::open(&path, &Options::default()).unwrap().len();
    }
    println!("{tensors} tensors");
}

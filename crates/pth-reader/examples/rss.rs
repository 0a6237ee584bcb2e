//! Prints resident memory around opening a file: `cargo run --release --example rss -- FILE`.
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
        >> 20
}
fn main() -> Result<(), pth_reader::Error> {
    let path = std::env::args().nth(1).unwrap_or_default();
    println!("before {} MiB", resident());
    let t = std::time::Instant::now();
    let ckpt = pth_reader::Checkpoint::open(&path)?;
    println!("opened {} MiB {:?} ({} tensors)", resident(), t.elapsed(), ckpt.len());
    Ok(())
}

//! Prints the tensors of a file: `cargo run --example dump -- FILE`.
fn main() -> Result<(), pth_reader::Error> {
    let path = std::env::args().nth(1).unwrap_or_default();
    let ckpt = pth_reader::Checkpoint::open_with(&path, &pth_reader::Options::default().lenient(true))?;
    for (name, t) in ckpt.tensors() {
        println!(
            "{name:?} {} {:?} {:?} attrs={:?}",
            t.dtype(),
            t.shape(),
            t.stride(),
            ckpt.root().get(name).map(|v| v.attributes().map(|a| a.len()))
        );
    }
    Ok(())
}

//! Lists the tensors of a torch file and sums its floating-point parameters:
//! `cargo run --example list_tensors -- FILE [--lenient]`.
use pth_reader::{Checkpoint, Options};

fn main() -> Result<(), pth_reader::Error> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "fixtures/torch/checkpoint.pth".into());
    let lenient = args.any(|a| a == "--lenient");
    let ckpt = Checkpoint::open(&path, &Options::default().lenient(lenient))?;
    let mut parameters = 0;
    for (name, tensor) in ckpt.tensors() {
        println!("{name:40} {:10} {:?}", tensor.dtype().name(), tensor.shape());
        if tensor.dtype().is_floating_point() {
            parameters += tensor.numel();
        }
    }
    println!(
        "{} tensors, {parameters} floating-point elements ({} format)",
        ckpt.len(),
        ckpt.format().name()
    );
    Ok(())
}

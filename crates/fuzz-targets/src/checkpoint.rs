//! Any bytes opened as a checkpoint in both modes, then every tensor read every way.

use pth_reader::{Checkpoint, Limits, Options};

/// Limits tight enough to keep one run fast; the code paths are the same as with the defaults.
pub fn limits() -> Limits {
    Limits::default()
        .with_max_walk(1 << 14)
        .with_max_values(1 << 18)
        .with_max_inflated_bytes(1 << 22)
}

/// Opens `data` strictly and leniently; reads every tensor of what opens.
pub fn run(data: &[u8]) {
    for lenient in [false, true] {
        let options = Options::default().lenient(lenient).with_limits(limits());
        if let Ok(ckpt) = Checkpoint::from_bytes(data, &options) {
            touch(&ckpt);
        }
    }
}

/// Every accessor of every tensor, the tree's debug form and the warnings.
pub fn touch(ckpt: &Checkpoint<'_>) {
    for (_, t) in ckpt.tensors() {
        let _ = t.to_le_bytes();
        let _ = t.to_f64_vec();
        let _ = t.raw_bytes();
        let _ = t.as_array::<f32>();
    }
    let _ = format!("{:?}", ckpt.root());
    let _ = ckpt.warnings().len();
}

//! Any bytes, opened as a checkpoint in both modes, then every tensor read every way.
//! Must never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pth_reader::{Checkpoint, Limits, Options};

fuzz_target!(|data: &[u8]| {
    // Tighter limits keep each run fast; the code paths are the same.
    let limits = Limits { max_walk: 1 << 14, max_values: 1 << 18, max_inflated_bytes: 1 << 24, ..Limits::default() };
    for lenient in [false, true] {
        let options = Options::default().lenient(lenient).limits(limits.clone());
        if let Ok(ckpt) = Checkpoint::from_bytes_with(data, &options) {
            for (_, t) in ckpt.tensors() {
                let _ = t.to_le_bytes();
                let _ = t.to_f64_vec();
                let _ = t.raw_bytes();
                let _ = t.as_array::<f32>();
            }
            let _ = format!("{:?}", ckpt.root());
        }
    }
});

//! Inputs shared by the workspace's criterion benches (`benches/*.rs`, one file per topic).
//!
//! The policy benches read two models of the shared corpus and, when present, the NatureCNN
//! model and ONNX graphs that `fixtures/generate.py --onnx` writes into
//! `target/bench-inputs/` (not committed: 6.9 MB). The reader and writer benches read archives
//! that [`archives`] writes there at bench time with `pth_reader::write`.
#![forbid(unsafe_code)]

pub mod archives;

use std::path::PathBuf;

use ndarray::Array2;

/// PPO CartPole-v1 (64×64 tanh) from the corpus' rl-trained-agents.
pub const PPO_CARTPOLE: &str = "rl-trained-agents/ppo/CartPole-v1_1/CartPole-v1.zip";
/// SAC HalfCheetah-v3 (256×256 relu) from the corpus' rl-trained-agents.
pub const SAC_HALFCHEETAH: &str = "rl-trained-agents/sac/HalfCheetah-v3_1/HalfCheetah-v3.zip";

/// A model of the shared corpus, `None` (with a message) when the corpus is absent.
pub fn corpus_model(relative: &str) -> Option<PathBuf> {
    let path = test_support::corpus()?.join(relative);
    path.exists().then_some(path)
}

/// `target/bench-inputs/<name>` when `fixtures/generate.py --onnx` has written it.
pub fn bench_input(name: &str) -> Option<PathBuf> {
    let path = test_support::root().join("target/bench-inputs").join(name);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("skipping {name}: run `.venv/bin/python fixtures/generate.py --onnx` to write target/bench-inputs/");
        None
    }
}

/// `rows` deterministic observations of `columns` values in [-1, 1) (a fixed linear
/// congruential sequence: the same inputs in every run).
pub fn observations(rows: usize, columns: usize) -> Array2<f32> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let values = (0..rows * columns)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Array2::from_shape_vec((rows, columns), values).unwrap_or_else(|_| Array2::zeros((rows, columns)))
}

/// One channel-last 84×84×4 uint8 frame: smooth gradients with a fixed pattern, so the CNN
/// sees an image rather than constant input.
pub fn frame() -> Vec<u8> {
    (0..84 * 84 * 4)
        .map(|i| {
            let (y, x, c) = (i / (84 * 4), (i / 4) % 84, i % 4);
            ((x * 3 + y * 2 + c * 50 + (x * y) % 17) % 256) as u8
        })
        .collect()
}

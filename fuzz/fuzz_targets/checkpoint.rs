//! Any bytes opened as a checkpoint in both modes, then every tensor read every way.
//! The body lives in `crates/fuzz-targets` so that `cargo test` replays `fuzz/regressions/checkpoint/` through it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::checkpoint::run(data));

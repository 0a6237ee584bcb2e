//! Any bytes opened as an SB3 model zip, and as a VecNormalize pickle.
//! The body lives in `crates/fuzz-targets` so that `cargo test` replays `fuzz/regressions/sb3_model/` through it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::sb3_model::run(data));

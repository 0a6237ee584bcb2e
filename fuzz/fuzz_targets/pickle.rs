//! Any bytes through the pickle machine alone (the part every format shares).
//! The body lives in `crates/fuzz-targets` so that `cargo test` replays `fuzz/regressions/pickle/` through it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::pickle::run(data));

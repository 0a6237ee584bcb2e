//! Differential: plain-data pickles through this crate's machine and serde-pickle (they must agree).
//! The body lives in `crates/fuzz-targets` so that `cargo test` replays `fuzz/regressions/differential/` through it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::differential::run(data));

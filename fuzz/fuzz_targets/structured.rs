//! Structure-aware: arbitrary pickle operations and zip records assembled into an archive.
//! The body lives in `crates/fuzz-targets` so that `cargo test` replays `fuzz/regressions/structured/` through it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::structured::run(data));

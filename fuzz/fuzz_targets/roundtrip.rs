//! Any bytes read as a checkpoint; what reads is written (zip, legacy, zip64), read back and compared.
//! The body lives in `crates/fuzz-targets` so that `cargo test` replays `fuzz/regressions/roundtrip/` through it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::roundtrip::run(data));

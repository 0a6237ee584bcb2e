//! The bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs` are one-line wrappers around these), so that every
//! crash the fuzzer finds can be replayed by `cargo test` through exactly the same code
//! (`tests/regressions.rs` runs every file of `fuzz/regressions/<target>/`).
//!
//! Each `run` takes the fuzzer's bytes, must never panic (other than on a real bug: the differential target panics
//! when the two pickle machines disagree), and bounds its own work with tight [`pth_reader::Limits`].
//!
//! ```
//! // Any bytes are a valid input; most are refused quickly.
//! fuzz_targets::checkpoint::run(b"PK\x03\x04 not really a zip");
//! fuzz_targets::differential::run(&[0u8; 64]);
//! ```
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod differential;
pub mod pickle;
pub mod roundtrip;
pub mod sb3_model;
pub mod structured;

/// A target's body: the fuzzer's bytes in, nothing out (a bug is a panic or an abort).
pub type Target = fn(&[u8]);

/// The targets by name, as `fuzz/regressions/<name>/` and `cargo fuzz run <name>` spell them.
pub const TARGETS: [(&str, Target); 6] = [
    ("checkpoint", checkpoint::run),
    ("pickle", pickle::run),
    ("sb3_model", sb3_model::run),
    ("structured", structured::run),
    ("differential", differential::run),
    ("roundtrip", roundtrip::run),
];

//! The zip reader against the `zip` crate as an oracle, on archives the `zip` crate writes
//! (stored, deflated, zip64, aligned, with directories and comments): the same entries, the
//! same bytes. And the inflation budget, shared by the reads it is passed to.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{Read, Write};

use pth_reader::zip::{Compression, Dialect, ZipArchive};
use pth_reader::{ErrorKind, Limit, Limits};
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

/// Pseudo-random bytes (xorshift), compressible enough to deflate but not trivially.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 16) as u8
        })
        .collect()
}

fn written(options: SimpleFileOptions, comment: &str) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.add_directory("model/", options).unwrap();
    for (i, len) in [0usize, 1, 1000, 70_000].into_iter().enumerate() {
        w.start_file(format!("model/data/{i}"), options).unwrap();
        w.write_all(&payload(len, i as u64)).unwrap();
    }
    w.set_comment(comment).unwrap();
    w.finish().unwrap().into_inner()
}

#[test]
fn archives_the_zip_crate_writes_read_the_same() {
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let variants = [
        ("stored", stored, ""),
        ("deflated", deflated, ""),
        ("zip64", stored.large_file(true), ""),
        ("zip64 deflated", deflated.large_file(true), ""),
        ("aligned", stored.with_alignment(64), ""),
        ("comment", stored, "a comment"),
    ];
    for (what, options, comment) in variants {
        let bytes = written(options, comment);
        let ours =
            ZipArchive::parse(bytes.as_slice().into(), &Limits::default()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(ours.warnings().is_empty(), "{what}: {:?}", ours.warnings());
        let mut oracle = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
        assert_eq!(ours.entries().len(), oracle.len(), "{what}");
        let mut budget = ours.budget();
        for (i, entry) in ours.entries().iter().enumerate() {
            let mut file = oracle.by_index(i).unwrap();
            assert_eq!(entry.name(), file.name().unwrap(), "{what}");
            let mut want = Vec::new();
            file.read_to_end(&mut want).unwrap();
            let got = ours.read(entry, &mut budget).unwrap();
            assert_eq!(got.as_slice(), want.as_slice(), "{what} {}", entry.name());
        }
        // Python's reading checks every CRC: the zip crate writes them right.
        let python = ZipArchive::parse_as(bytes.as_slice().into(), &Limits::default(), Dialect::Python).unwrap();
        let mut budget = python.budget();
        for entry in python.entries() {
            python.read(entry, &mut budget).unwrap();
        }
    }
}

#[test]
fn one_budget_is_charged_every_inflated_byte() {
    let bytes = written(
        SimpleFileOptions::default().compression_method(CompressionMethod::Deflated),
        "",
    );
    let limits = Limits::default().with_max_inflated_bytes(70_500);
    let archive = ZipArchive::parse(bytes.as_slice().into(), &limits).unwrap();
    let big = archive.find("model/data/3").unwrap();
    let small = archive.find("model/data/2").unwrap();
    assert_eq!(big.compression(), Compression::Deflated);
    let mut budget = archive.budget();
    assert_eq!(archive.read(big, &mut budget).unwrap().len(), 70_000);
    assert_eq!(budget.remaining(), 500);
    let err = archive.read(small, &mut budget).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::LimitExceeded {
                limit: Limit::MaxInflatedBytes,
                ..
            }
        ),
        "{err}"
    );
    // A new budget is whole again.
    assert_eq!(archive.read(small, &mut archive.budget()).unwrap().len(), 1000);
}

#[test]
fn python_lookups_are_exact_and_torch_lookups_ignore_ascii_case() {
    let bytes = written(SimpleFileOptions::default(), "");
    let torch = ZipArchive::parse(bytes.as_slice().into(), &Limits::default()).unwrap();
    assert_eq!(torch.find("MODEL/Data/1").map(|e| e.name()), Some("model/data/1"));
    let python = ZipArchive::parse_as(bytes.as_slice().into(), &Limits::default(), Dialect::Python).unwrap();
    assert!(python.find("MODEL/Data/1").is_none());
    assert!(python.find("model/data/1").is_some());
    assert!(torch.find("model/data/9").is_none());
}

//! Every field of `Limits` is enforced, and tightening one turns a readable file into a clear
//! `LimitExceeded` error naming it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::Write;

use pth_reader::{Checkpoint, Error, ErrorKind, Limits, Options, Pickle};

fn limited(limits: Limits) -> Options {
    Options::default().lenient(true).with_limits(limits)
}

fn expect_limit<T: std::fmt::Debug>(result: Result<T, Error>, which: &str) {
    match result {
        Err(e) if matches!(e.kind(), ErrorKind::LimitExceeded { limit, .. } if limit.name() == which) => {}
        other => panic!("expected {which} to be exceeded, got {other:?}"),
    }
}

/// A torch zip archive (stored entries under `archive/`) holding `pickle` and `records`.
fn torch_zip(pickle: &[u8], records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", options).unwrap();
    zip.write_all(pickle).unwrap();
    for (name, data) in records {
        zip.start_file(format!("archive/{name}"), options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.start_file("archive/version", options).unwrap();
    zip.write_all(b"3\n").unwrap();
    zip.finish().unwrap();
    out.into_inner()
}

/// `_rebuild_tensor_v2` of a 1-element float storage "0", memoized as 0.
const TENSOR: &[u8] = b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQK\x00K\x01\x85K\x01\x85\x89ccollections\nOrderedDict\n)Rtq\x00R";

#[test]
fn the_tensor_template_opens() {
    let mut pickle = b"\x80\x02".to_vec();
    pickle.extend(TENSOR);
    pickle.push(b'.');
    let bytes = torch_zip(&pickle, &[("data/0", &1.5f32.to_le_bytes())]);
    let ckpt = Checkpoint::from_bytes(&bytes, &Options::default()).unwrap();
    assert_eq!(ckpt.tensor("").unwrap().to_vec::<f32>().unwrap(), vec![1.5]);
}

#[test]
fn pickle_machine_limits() {
    let nones = [b"\x80\x02".as_slice(), &b"N0".repeat(100), b"N."].concat();
    expect_limit(
        Pickle::parse(&nones, &limited(Limits::default().with_max_opcodes(50))),
        "max_opcodes",
    );
    let lists = [b"\x80\x02".as_slice(), &b"]0".repeat(100), b"N."].concat();
    expect_limit(
        Pickle::parse(&lists, &limited(Limits::default().with_max_values(50))),
        "max_values",
    );
    let appends = [b"\x80\x02](".as_slice(), &b"N".repeat(100), b"e."].concat();
    expect_limit(
        Pickle::parse(
            &appends,
            &limited(Limits::default().with_max_values(60).with_max_stack(1000)),
        ),
        "max_values",
    );
    let marks = [b"\x80\x02".as_slice(), &b"(".repeat(100), b"N."].concat();
    expect_limit(
        Pickle::parse(&marks, &limited(Limits::default().with_max_stack(50))),
        "max_stack",
    );
    let puts: Vec<u8> = [
        b"\x80\x02N".as_slice(),
        &(0..100u8).flat_map(|i| [b'q', i]).collect::<Vec<u8>>(),
        b".",
    ]
    .concat();
    expect_limit(
        Pickle::parse(&puts, &limited(Limits::default().with_max_memo(50))),
        "max_memo",
    );
    let long = [b"\x80\x02X\x00\x01\x00\x00".as_slice(), &[b'a'; 256], b"."].concat();
    expect_limit(
        Pickle::parse(&long, &limited(Limits::default().with_max_pickle_bytes(100))),
        "max_pickle_bytes",
    );
    // The same inputs decode with the defaults.
    for ok in [&nones, &lists, &appends, &marks, &puts, &long] {
        Pickle::parse(ok, &limited(Limits::default())).unwrap();
    }
}

#[test]
fn tree_walk_limits_depth_and_shared_expansion() {
    // [[[...[tensor]...]]] 50 deep.
    let mut deep = b"\x80\x02".to_vec();
    deep.extend(b"(".repeat(50));
    deep.extend(TENSOR);
    deep.extend(b"l".repeat(50));
    deep.push(b'.');
    let bytes = torch_zip(&deep, &[("data/0", &[0; 4])]);
    expect_limit(
        Checkpoint::from_bytes(&bytes, &limited(Limits::default().with_max_depth(20))),
        "max_depth",
    );
    assert_eq!(Checkpoint::from_bytes(&bytes, &Options::default()).unwrap().len(), 1);

    // Billion laughs: x0 = [tensor, tensor]; x(n+1) = [xn, xn]; 40 levels = 2^41 paths.
    let mut laughs = b"\x80\x02".to_vec();
    laughs.extend(TENSOR);
    laughs.extend(b"q\x01h\x01h\x01\x86q\x02");
    for _ in 0..40 {
        laughs.extend(b"h\x02h\x02\x86q\x02");
    }
    laughs.push(b'.');
    let bytes = torch_zip(&laughs, &[("data/0", &[0; 4])]);
    let started = std::time::Instant::now();
    expect_limit(Checkpoint::from_bytes(&bytes, &Options::default()), "max_walk");
    assert!(started.elapsed().as_secs() < 30, "the walk must stop at the limit");
}

#[test]
fn tensor_dimension_limit() {
    let dims = 70;
    let ones = b"K\x01".repeat(dims);
    let mut pickle = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQK\x00(".to_vec();
    pickle.extend(&ones);
    pickle.extend(b"t(");
    pickle.extend(&ones);
    pickle.extend(b"t\x89ccollections\nOrderedDict\n)RtR.");
    let bytes = torch_zip(&pickle, &[("data/0", &[0; 4])]);
    expect_limit(Checkpoint::from_bytes(&bytes, &Options::default()), "max_dims");
    let relaxed = Checkpoint::from_bytes(&bytes, &limited(Limits::default().with_max_dims(100))).unwrap();
    assert_eq!(relaxed.tensor("").unwrap().shape().len(), dims);
}

#[test]
fn inflation_limit() {
    let path = test_support::root().join("fixtures/torch/zip_deflated.pt");
    expect_limit(
        Checkpoint::open(&path, &limited(Limits::default().with_max_inflated_bytes(64))),
        "max_inflated_bytes",
    );
    assert!(!Checkpoint::open(&path, &Options::default()).unwrap().is_empty());
}

/// `_rebuild_tensor_v2` of `n` elements with stride 0 over a 1-element float storage "0".
fn expanded(n: u64) -> Vec<u8> {
    let mut pickle = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQK\x00\x8a\x08".to_vec();
    pickle.extend(n.to_le_bytes());
    pickle.extend(b"\x85K\x00\x85\x89ccollections\nOrderedDict\n)RtR.");
    torch_zip(&pickle, &[("data/0", &1.5f32.to_le_bytes())])
}

#[test]
fn expanded_tensors_are_bounded_by_the_bytes_they_produce() {
    // 2^34 elements of a 4-byte storage: 64 GiB if materialised.
    let bytes = expanded(1 << 34);
    let ckpt = Checkpoint::from_bytes(&bytes, &Options::default()).unwrap();
    let t = ckpt.tensor("").unwrap();
    assert_eq!(t.numel(), 1 << 34);
    expect_limit(t.to_le_bytes(), "max_expanded_bytes");
    expect_limit(t.to_vec::<f32>(), "max_expanded_bytes");
    expect_limit(t.to_f64_vec(), "max_expanded_bytes");
    expect_limit(t.write_le_bytes(&mut std::io::sink()), "max_expanded_bytes");
    // A few elements can still be read.
    let tail = t.flat_range((1 << 34) - 2, 5).unwrap();
    assert_eq!(tail.to_vec::<f32>().unwrap(), vec![1.5, 1.5]);
    // Within the limit, the elements stream.
    let small = expanded(1000);
    let ckpt = Checkpoint::from_bytes(&small, &Options::default()).unwrap();
    let mut out = Vec::new();
    ckpt.tensor("").unwrap().write_le_bytes(&mut out).unwrap();
    assert_eq!(out, 1.5f32.to_le_bytes().repeat(1000));
    let tight = Options::default().with_limits(Limits::default().with_max_expanded_bytes(100));
    let ckpt = Checkpoint::from_bytes(&small, &tight).unwrap();
    expect_limit(ckpt.tensor("").unwrap().to_le_bytes(), "max_expanded_bytes");
}

#[test]
fn names_and_values_made_by_the_reader_are_bounded_in_bytes() {
    // 100 nested dicts under one 100 KB key: every level names the tensor again.
    let key = [
        b"X".as_slice(),
        &100_000u32.to_le_bytes(),
        &b"k".repeat(100_000),
        b"q\x01",
    ]
    .concat();
    let mut pickle = b"\x80\x02".to_vec();
    pickle.extend(&key);
    pickle.push(b'0');
    for _ in 0..100 {
        pickle.extend(b"}h\x01");
    }
    pickle.extend(TENSOR);
    pickle.extend(b"s".repeat(100));
    pickle.push(b'.');
    let bytes = torch_zip(&pickle, &[("data/0", &1.5f32.to_le_bytes())]);
    let ckpt = Checkpoint::from_bytes(&bytes, &Options::default()).unwrap();
    assert_eq!(ckpt.tensors().next().map(|(n, _)| n.len()), Some(100 * 100_000 + 99));
    expect_limit(
        Checkpoint::from_bytes(
            &bytes,
            &Options::default().with_limits(Limits::default().with_max_name_bytes(5_000_000)),
        ),
        "max_name_bytes",
    );
    // bytearray(n) makes n bytes: within max_value_bytes only.
    let big = b"\x80\x02cbuiltins\nbytearray\nJ\x00\x00\x00\x10\x85R.";
    assert!(Pickle::parse(big, &Options::default()).is_ok());
    expect_limit(
        Pickle::parse(
            big,
            &Options::default().with_limits(Limits::default().with_max_value_bytes(1 << 20)),
        ),
        "max_value_bytes",
    );
}

#[test]
fn a_key_set_a_million_times_is_hashed_once_and_merged() {
    // {k: t} with SETITEMS of the same 1 MiB key a million times.
    let mut pickle = b"\x80\x02}X\x00\x00\x10\x00".to_vec();
    pickle.extend(b"k".repeat(1 << 20));
    pickle.extend(b"q\x010");
    pickle.extend(TENSOR);
    pickle.extend(b"q\x020(");
    pickle.extend(b"h\x01h\x02".repeat(1_000_000));
    pickle.extend(b"u.");
    let bytes = torch_zip(&pickle, &[("data/0", &1.5f32.to_le_bytes())]);
    let ckpt = Checkpoint::from_bytes(&bytes, &Options::default()).unwrap();
    assert_eq!(ckpt.len(), 1);
    assert_eq!(ckpt.root().as_dict().map(|d| d.len()), Some(1));
}

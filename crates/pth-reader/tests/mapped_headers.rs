//! A mapped archive of large records has its headers read with positioned reads instead of
//! through the map (`container/zip/headers.rs`); an archive of small records through the map,
//! its pages released as it goes. Either way it must read exactly as the same bytes in memory
//! do: the same tensors, the same warnings, the same refusals — checked here on archives of
//! both kinds, intact and with their headers damaged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use pth_reader::write::{Builder, SaveOptions};
use pth_reader::{Checkpoint, DType, Options};

/// An archive of `count` float32 tensors of `elements` elements each.
fn archive(count: usize, elements: usize) -> Vec<u8> {
    let mut b = Builder::new();
    let mut items = Vec::new();
    let names: Vec<String> = (0..count).map(|i| format!("layer{i}.weight")).collect();
    for (i, name) in names.iter().enumerate() {
        let bytes: Vec<u8> = (0..elements * 4).map(|j| (i * 31 + j) as u8).collect();
        let storage = b.storage(DType::Float32, bytes).unwrap();
        let t = b.tensor(storage, &[elements]).unwrap();
        items.push((name.as_str(), t));
    }
    let root = b.state_dict(&items).unwrap();
    b.save_to(root, Vec::new(), &SaveOptions::default()).unwrap()
}

/// Each tensor's name and bytes, and the warnings.
type Reading = (Vec<(String, Vec<u8>)>, Vec<String>);

/// What opening gives: the reading, or the error.
fn reading(ckpt: pth_reader::Result<Checkpoint<'_>>) -> Result<Reading, String> {
    let ckpt = ckpt.map_err(|e| e.to_string())?;
    let tensors = ckpt
        .tensors()
        .map(|(name, t)| (name.to_owned(), t.to_le_bytes().unwrap().into_owned()))
        .collect();
    Ok((tensors, ckpt.warnings().to_vec()))
}

/// Opens `bytes` mapped from a file and from memory: both readings must agree.
fn same_reading(bytes: &[u8], what: &str) -> bool {
    let dir = std::env::temp_dir().join(format!("pth-mapped-headers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("archive.pt");
    std::fs::write(&path, bytes).unwrap();
    let mapped = reading(Checkpoint::open(&path, &Options::default()));
    let in_memory = reading(Checkpoint::from_bytes(bytes, &Options::default()));
    let _ = std::fs::remove_file(&path);
    assert_eq!(mapped, in_memory, "{what}");
    mapped.is_ok()
}

/// Offsets of every local header signature in an archive.
fn local_headers(bytes: &[u8]) -> Vec<usize> {
    bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"PK\x03\x04")
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn sparse_and_dense_archives_read_alike_mapped_or_in_memory() {
    // 4 tensors of 1 MiB: records far apart (positioned reads); 3,000 of 64 bytes: close.
    for (count, elements) in [(4, 256 << 10), (3000, 16)] {
        let bytes = archive(count, elements);
        assert!(same_reading(&bytes, "intact"), "an intact archive opens");
        let mut refused = 0;
        for at in local_headers(&bytes).into_iter().take(12) {
            for (offset, what) in [
                (26usize, "name length"),
                (30, "name"),
                (18, "compressed size"),
                (8, "method"),
            ] {
                let mut damaged = bytes.clone();
                damaged[at + offset] ^= 0x5a;
                let what = format!("{count} tensors, local header at {at}: {what} damaged");
                refused += usize::from(!same_reading(&damaged, &what));
            }
        }
        assert!(refused >= 12, "damaged local headers are refused ({refused})");
        // A data descriptor damaged (the 16 bytes before each local header but the first: its
        // signature, CRC and sizes), which a sparse archive reads with the next local header.
        let mut refused = 0;
        for at in local_headers(&bytes).into_iter().skip(1).take(6) {
            for back in [16, 12, 6, 2] {
                let mut damaged = bytes.clone();
                damaged[at - back] ^= 0x5a;
                let what = format!("{count} tensors, descriptor byte {back} before {at} damaged");
                refused += usize::from(!same_reading(&damaged, &what));
            }
        }
        assert!(refused >= 12, "damaged descriptors are refused ({refused})");
        let cut = &bytes[..bytes.len() - 100];
        same_reading(cut, "truncated");
    }
}

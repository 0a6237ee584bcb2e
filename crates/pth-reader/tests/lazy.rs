//! Opening is cheap: a 1 GiB archive opens without its tensor bytes being read. Linux only
//! (the proof reads the process's resident set size from /proc).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{Seek, SeekFrom, Write};

use pth_reader::{Checkpoint, Options};

/// Resident memory of this process, in bytes.
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Writes a stored zip entry's local header (CRC left 0: torch does not check it) and returns
/// its central directory record.
fn entry(file: &mut std::fs::File, name: &str, data: Option<&[u8]>, size: u32) -> Vec<u8> {
    let offset = file.stream_position().unwrap() as u32;
    let mut local = Vec::new();
    local.extend(b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    local.extend(size.to_le_bytes());
    local.extend(size.to_le_bytes());
    local.extend((name.len() as u16).to_le_bytes());
    local.extend(0u16.to_le_bytes());
    local.extend(name.as_bytes());
    file.write_all(&local).unwrap();
    match data {
        Some(d) => file.write_all(d).unwrap(),
        // A hole: the file is sparse, nothing is written or stored on disk.
        None => drop(file.seek(SeekFrom::Current(i64::from(size))).unwrap()),
    }
    let mut central = Vec::new();
    central.extend(b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    central.extend(size.to_le_bytes());
    central.extend(size.to_le_bytes());
    central.extend((name.len() as u16).to_le_bytes());
    central.extend([0u8; 12]);
    central.extend(offset.to_le_bytes());
    central.extend(name.as_bytes());
    central
}

#[test]
fn a_gibibyte_archive_opens_without_reading_its_tensor_bytes() {
    const BYTES: u32 = 1 << 30;
    let numel = BYTES / 4;
    let dir = std::env::temp_dir().join(format!("pth-lazy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.pt");
    let mut file = std::fs::File::create(&path).unwrap();
    // _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', numel), 0, (numel,), (1,), False, OrderedDict())
    let mut pickle = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ".to_vec();
    pickle.extend(numel.to_le_bytes());
    pickle.extend(b"tQK\x00J");
    pickle.extend(numel.to_le_bytes());
    pickle.extend(b"\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR.");
    let mut directory = Vec::new();
    directory.extend(entry(&mut file, "big/data.pkl", Some(&pickle), pickle.len() as u32));
    directory.extend(entry(&mut file, "big/data/0", None, BYTES));
    directory.extend(entry(&mut file, "big/version", Some(b"3\n"), 2));
    let directory_at = file.stream_position().unwrap() as u32;
    file.write_all(&directory).unwrap();
    let mut end = b"PK\x05\x06\x00\x00\x00\x00\x03\x00\x03\x00".to_vec();
    end.extend((directory.len() as u32).to_le_bytes());
    end.extend(directory_at.to_le_bytes());
    end.extend(0u16.to_le_bytes());
    file.write_all(&end).unwrap();
    drop(file);

    let before = resident();
    let ckpt = Checkpoint::open(&path, &Options::default()).unwrap();
    let t = ckpt.tensor("").unwrap();
    assert_eq!(t.numel(), numel as usize);
    let after_open = resident();
    assert!(
        after_open < before + (32 << 20),
        "opening made {} MiB resident",
        (after_open - before) >> 20
    );

    // The measurement can see reads: touching every page of the tensor makes them resident.
    let raw = t.raw_bytes().unwrap();
    let touched: u64 = raw.iter().step_by(4096).map(|&b| u64::from(b)).sum();
    assert_eq!(touched, 0);
    assert!(
        resident() > after_open + (512 << 20),
        "reading the tensor should make it resident"
    );
    drop(ckpt);
    std::fs::remove_dir_all(&dir).unwrap();
}

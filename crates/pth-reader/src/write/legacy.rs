//! The legacy stream of `torch.serialization._legacy_save` (torch < 1.6, or
//! `_use_new_zipfile_serialization=False`).
//!
//! Five protocol-2 pickles — the magic number `0x1950a86a20f9469cfc6c`, the protocol version
//! 1001, `sys_info`, the object (storages as `('storage', cls, key, location, numel, None)`),
//! the storage keys sorted as strings — then each storage in that order: its size in elements
//! of its class (bytes for an untyped storage) as an int64, and its bytes, little-endian.

#![forbid(unsafe_code)]

use std::io::Write;

use super::builder::Builder;
use super::pickler::{self, Pickled, PidForm};
use crate::tensor::ByteOrder;
use crate::{Error, ErrorKind, Result};

/// `0x1950a86a20f9469cfc6c`, little-endian.
const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const PROTOCOL_VERSION: i64 = 1001;

fn io(source: std::io::Error) -> Error {
    Error::from(ErrorKind::Write { source })
}

/// Writes the stream around `object`, a pickle made with [`PidForm::Legacy`] (its storages
/// little-endian, as torch always writes them in this format); `machine` is the byte order
/// `sys_info` says the writing machine had.
pub(crate) fn write_legacy<W: Write>(mut out: W, object: &Pickled<'_, '_>, machine: ByteOrder) -> Result<W> {
    let mut header = Builder::new();
    let magic = header.big_int_le(&MAGIC);
    let version = header.int(PROTOCOL_VERSION);
    let sys_info = sys_info(&mut header, machine)?;
    let mut keys: Vec<&str> = object.storages.iter().map(|s| s.key.as_str()).collect();
    keys.sort_unstable();
    let key_ids: Vec<_> = keys.iter().map(|k| header.str(k)).collect();
    let key_list = header.list(&key_ids)?;
    for root in [magic, version, sys_info] {
        out.write_all(&pickle_plain(&header, root)?).map_err(io)?;
    }
    out.write_all(&object.bytes).map_err(io)?;
    out.write_all(&pickle_plain(&header, key_list)?).map_err(io)?;
    for key in keys {
        let Some(storage) = object.storages.iter().find(|s| s.key == key) else {
            continue;
        };
        let count = i64::try_from(storage.numel()?).map_err(|_| {
            Error::from(ErrorKind::Unsupported {
                what: "a storage of more than 2^63 elements".into(),
            })
        })?;
        out.write_all(&count.to_le_bytes()).map_err(io)?;
        storage.write(|bytes| out.write_all(bytes).map_err(io))?;
    }
    out.flush().map_err(io)?;
    Ok(out)
}

/// `{'protocol_version': 1001, 'little_endian': True, 'type_sizes': {'short': 2, 'int': 4,
/// 'long': 4}}` (`little_endian` as `machine`).
fn sys_info(b: &mut Builder<'_>, machine: ByteOrder) -> Result<crate::ValueId> {
    let sizes = [("short", 2), ("int", 4), ("long", 4)].map(|(name, size)| (b.str(name), b.int(size)));
    let type_sizes = b.dict(&sizes)?;
    let items = [
        (b.str("protocol_version"), b.int(PROTOCOL_VERSION)),
        (b.str("little_endian"), b.bool(machine == ByteOrder::Little)),
        (b.str("type_sizes"), type_sizes),
    ];
    b.dict(&items)
}

fn pickle_plain(b: &Builder<'_>, root: crate::ValueId) -> Result<Vec<u8>> {
    let (tree, tables) = b.parts();
    let orders = pickler::Orders {
        bare: ByteOrder::Little,
        target: ByteOrder::Little,
    };
    Ok(pickler::pickle(tree, tables, root, PidForm::Legacy, orders)?.bytes)
}

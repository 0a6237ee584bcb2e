//! The legacy (pre-1.6, `_use_new_zipfile_serialization=False`) stream.
//!
//! Five pickles back to back, in the writer's protocol: the magic number, the protocol version
//! 1001, a `sys_info` dict, the object (its persistent ids carry storage keys), and the list of
//! storage keys; then, for each key in that order, an int64 element count and the raw bytes.
//! Storage bytes are always little-endian (torch's writer swaps on big-endian hosts), so the
//! `little_endian` flag of `sys_info` does not change how they are read.

use std::collections::HashMap;

use super::Decoded;
use crate::cursor::Cursor;
use crate::pickle::tree::{Node, Tree};
use crate::pickle::{self, text};
use crate::tensor::ByteOrder;
use crate::torch::rebuild::{self, Context};
use crate::torch::storage::{storage_refs, StorageRef};
use crate::{Error, Format, Options, Result, SharedBytes};

/// `0x1950a86a20f9469cfc6c`, the legacy magic number.
const MAGIC: &str = "119547037146038801333356";
const PROTOCOL_VERSION: i64 = 1001;

fn invalid(reason: impl Into<String>) -> Error {
    Error::Legacy { reason: reason.into() }
}

/// Decodes a legacy stream.
pub(crate) fn decode<'data>(bytes: SharedBytes<'data>, options: &Options) -> Result<Decoded<'data>> {
    let all = bytes.as_slice();
    let mut pos = 0usize;
    let mut next = |name: &str, options: &Options| -> Result<(Tree, u8)> {
        let rest = all.get(pos..).unwrap_or_default();
        let (tree, protocol, used) = pickle::decode(rest, name, options)?;
        pos += used;
        Ok((tree, protocol))
    };
    // The header pickles hold no globals, so strict decoding is right whatever the mode.
    let strict = Options::default().limits(options.get_limits().clone());
    let (magic, _) = next("magic number", &strict)?;
    let magic_ok = match magic.node(magic.root_id()) {
        Node::BigInt(b) => text::big_to_decimal(b) == MAGIC,
        _ => false,
    };
    if !magic_ok {
        return Err(invalid("wrong magic number"));
    }
    let (version, _) = next("protocol version", &strict)?;
    if version.as_int(version.root_id()) != Some(PROTOCOL_VERSION) {
        return Err(invalid("protocol version is not 1001"));
    }
    let (_sys_info, _) = next("sys_info", &strict)?;
    let (mut tree, protocol) = next("object", options)?;
    let (keys, _) = next("storage keys", &strict)?;
    let keys = storage_keys(&keys)?;

    let refs = storage_refs(&tree, "object")?;
    let storages = storage_data(&bytes, pos, &keys, &refs)?;
    let context = Context {
        record: "object",
        byte_order: ByteOrder::Little,
        limits: options.get_limits(),
    };
    let tables = rebuild::resolve(
        &mut tree,
        refs,
        |r| {
            storages
                .get(&r.key)
                .cloned()
                .ok_or_else(|| r.invalid("no data follows the pickles for this key"))
        },
        &context,
    )?;
    Ok(Decoded {
        format: Format::Legacy,
        byte_order: ByteOrder::Little,
        tree,
        tables,
        protocol,
        records: Vec::new(),
        warnings: Vec::new(),
    })
}

/// The key list pickle: a list of strings (ints in very old files).
fn storage_keys(tree: &Tree) -> Result<Vec<String>> {
    let items = tree
        .seq(tree.root_id())
        .ok_or_else(|| invalid("the storage key list is not a list"))?;
    items
        .iter()
        .map(|&k| match tree.node(k) {
            Node::Str(s) => Ok(s.to_string()),
            Node::Int(i) => Ok(i.to_string()),
            _ => Err(invalid("a storage key is not a string")),
        })
        .collect()
}

/// Reads `[int64 count][count × element size bytes]` for each key, as sub-slices.
fn storage_data<'data>(
    bytes: &SharedBytes<'data>,
    start: usize,
    keys: &[String],
    refs: &[(crate::pickle::ValueId, StorageRef)],
) -> Result<HashMap<String, SharedBytes<'data>>> {
    // The first reference to a root key creates the storage and fixes its type and size.
    let mut roots: HashMap<&str, &StorageRef> = HashMap::new();
    for (_, r) in refs {
        roots.entry(r.key.as_str()).or_insert(r);
    }
    let mut cursor = Cursor::new(bytes.as_slice().get(start..).unwrap_or_default());
    let mut out = HashMap::new();
    for key in keys {
        let r = roots
            .get(key.as_str())
            .ok_or_else(|| invalid(format!("storage key {key} is not used by the object")))?;
        let at = start + cursor.position();
        let count = cursor
            .i64_le()
            .ok_or_else(|| invalid(format!("storage {key}: truncated before its size")))?;
        let count = u64::try_from(count).map_err(|_| invalid(format!("storage {key}: negative size {count}")))?;
        let size = r.dtype.map_or(1, |d| d.size()) as u64;
        let nbytes = count.checked_mul(size).ok_or_else(|| r.invalid("size overflows"))?;
        if nbytes != r.nbytes()? {
            return Err(r.invalid(format!("{nbytes} bytes follow, the pickle says {}", r.nbytes()?)));
        }
        let data_at = at + 8;
        let data = bytes
            .slice_u64(data_at as u64, nbytes)
            .ok_or_else(|| r.invalid(format!("{nbytes} bytes at {data_at} extend past the end of the file")))?;
        cursor.skip(data.len()).ok_or_else(|| r.invalid("truncated"))?;
        if out.insert(key.clone(), data).is_some() {
            return Err(invalid(format!("storage key {key} is listed twice")));
        }
    }
    Ok(out)
}

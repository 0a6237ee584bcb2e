//! The legacy (pre-1.6, `_use_new_zipfile_serialization=False`) stream.
//!
//! Five pickles back to back, in the writer's protocol: the magic number, the protocol version
//! 1001, a `sys_info` dict, the object (its persistent ids carry storage keys), and the list of
//! storage keys; then, for each key in that order, an int64 element count and the raw bytes,
//! which torch reads into the storage the object pickle created for that key
//! (`_set_from_file`: the count must match the storage's size; a key listed twice is read
//! twice, the last read wins). Storage bytes are always little-endian (torch's writer swaps on
//! big-endian hosts), so the `little_endian` flag of `sys_info` does not change how they are
//! read.

use super::{Format, Located, RecordNames, RootRequest, StorageKey, StorageSource};
use crate::cursor::Cursor;
use crate::hashing::FastMap;
use crate::pickle::call::Handler;
use crate::pickle::machine::{self, Config};
use crate::pickle::text;
use crate::pickle::tree::{Node, Tree};
use crate::tensor::ByteOrder;
use crate::{Error, ErrorKind, Options, Result, SharedBytes};

/// `0x1950a86a20f9469cfc6c`, the legacy magic number.
const MAGIC: &str = "119547037146038801333356";
const PROTOCOL_VERSION: i64 = 1001;

#[cold]
fn invalid(reason: impl Into<String>) -> Error {
    Error::from(ErrorKind::Legacy { reason: reason.into() })
}

/// The stream's pickles other than the object: run with `handler`, which torch's loader runs
/// without a `persistent_load` (an allowlisted global is allowed there, as in the object).
struct Plain<'h, 'data> {
    bytes: SharedBytes<'data>,
    options: Options,
    handler: &'h mut dyn Handler<'data>,
}

impl<'data> Plain<'_, 'data> {
    /// Decodes the pickle starting at `*pos`, named `name`, and moves past it.
    fn next(&mut self, pos: &mut usize, name: &str) -> Result<Tree<'data>> {
        let rest = self
            .bytes
            .slice(*pos..self.bytes.len())
            .unwrap_or_else(|| SharedBytes::from(&[][..]));
        let config = Config {
            record: name,
            limits: self.options.limits(),
            lenient: self.options.is_lenient(),
            lossy_text: false,
        };
        let out = machine::unpickle(rest, &config, self.handler)?;
        *pos += out.consumed;
        Ok(out.tree)
    }
}

/// Locates the parts of a legacy stream: checks the header pickles (run with `handler`); the
/// object pickle follows.
pub(crate) fn locate<'data>(
    bytes: SharedBytes<'data>,
    options: &Options,
    handler: &mut dyn Handler<'data>,
) -> Result<Located<'data>> {
    let mut plain = Plain {
        bytes: bytes.clone(),
        options: options.clone(),
        handler,
    };
    let mut pos = 0usize;
    let magic = plain.next(&mut pos, "magic number")?;
    let magic_ok = match magic.node(magic.root_id()) {
        Node::BigInt(span) => text::big_to_decimal(magic.bytes_of(*span)).as_deref() == Some(MAGIC),
        _ => false,
    };
    if !magic_ok {
        return Err(invalid("wrong magic number"));
    }
    let version = plain.next(&mut pos, "protocol version")?;
    if version.as_int(version.root_id()) != Some(PROTOCOL_VERSION) {
        return Err(invalid("protocol version is not 1001"));
    }
    plain.next(&mut pos, "sys_info")?;
    let pickle = bytes
        .slice(pos..bytes.len())
        .ok_or_else(|| invalid("the stream ends after sys_info"))?;
    Ok(Located {
        format: Format::Legacy,
        byte_order: ByteOrder::Little,
        pickle,
        pickle_name: "object".into(),
        records: RecordNames::default(),
        warnings: Vec::new(),
        storages: Box::new(DataSection {
            bytes,
            object_start: pos,
            options: options.clone(),
        }),
        archive: None,
    })
}

/// The key list and the storage data after the object pickle.
struct DataSection<'data> {
    bytes: SharedBytes<'data>,
    object_start: usize,
    options: Options,
}

impl<'data> StorageSource<'data> for DataSection<'data> {
    fn resolve(
        &mut self,
        pickle_len: usize,
        roots: &[RootRequest<'_>],
        handler: &mut dyn Handler<'data>,
    ) -> Result<Vec<SharedBytes<'data>>> {
        let mut pos = self.object_start + pickle_len;
        let mut plain = Plain {
            bytes: self.bytes.clone(),
            options: self.options.clone(),
            handler,
        };
        let keys = plain.next(&mut pos, "storage keys")?;
        let keys = storage_keys(&keys)?;
        let by_key: FastMap<&StorageKey, usize> = roots.iter().enumerate().map(|(i, r)| (r.key, i)).collect();
        let mut filled: Vec<Option<SharedBytes<'data>>> = vec![None; roots.len()];
        let mut cursor = Cursor::new(self.bytes.as_slice().get(pos..).unwrap_or_default());
        for key in &keys {
            let (Some(&i), Some(root)) = (by_key.get(key), by_key.get(key).and_then(|&i| roots.get(i))) else {
                return Err(invalid(format!(
                    "storage key {key} is not a storage the object created (a view, or unknown)"
                )));
            };
            let at = pos + cursor.position();
            let count = cursor
                .i64_le()
                .ok_or_else(|| invalid(format!("storage {key}: truncated before its size")))?;
            let count = u64::try_from(count).map_err(|_| invalid(format!("storage {key}: negative size {count}")))?;
            let nbytes = count
                .checked_mul(root.element_size as u64)
                .ok_or_else(|| storage_error(key, "size overflows"))?;
            if nbytes != root.nbytes {
                return Err(storage_error(
                    key,
                    format!("storage has wrong byte size: expected {} got {nbytes}", root.nbytes),
                ));
            }
            let data = self.bytes.slice_u64(at as u64 + 8, nbytes).ok_or_else(|| {
                storage_error(
                    key,
                    format!("{nbytes} bytes at {} extend past the end of the file", at + 8),
                )
            })?;
            cursor.skip(data.len()).ok_or_else(|| storage_error(key, "truncated"))?;
            if let Some(slot) = filled.get_mut(i) {
                *slot = Some(data);
            }
        }
        roots
            .iter()
            .zip(filled)
            .map(|(root, data)| {
                data.ok_or_else(|| {
                    storage_error(
                        root.key,
                        "no data follows the pickles for it (torch would read uninitialised memory)",
                    )
                })
            })
            .collect()
    }
}

fn storage_error(key: &StorageKey, reason: impl Into<String>) -> Error {
    Error::from(ErrorKind::InvalidStorage {
        key: key.to_string(),
        reason: reason.into(),
    })
}

/// The key list pickle: a list of strings (ints in very old files).
fn storage_keys(tree: &Tree<'_>) -> Result<Vec<StorageKey>> {
    let items = tree
        .seq(tree.root_id())
        .ok_or_else(|| invalid("the storage key list is not a list"))?;
    items
        .iter()
        .map(|&k| match tree.node(k) {
            Node::Str(_) => Ok(StorageKey::Str(std::sync::Arc::from(tree.text(k).unwrap_or_default()))),
            Node::Int(i) => Ok(StorageKey::Int(*i)),
            _ => Err(invalid("a storage key is not a string")),
        })
        .collect()
}

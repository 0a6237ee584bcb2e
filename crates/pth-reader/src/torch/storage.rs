//! Storages: the persistent ids that name them, and the bytes that back them.

use std::sync::Arc;

use crate::pickle::tree::{Node, Tree, ValueId};
use crate::{DType, Error, Result, SharedBytes};

/// A storage of a checkpoint: a flat run of bytes that tensors view.
///
/// Several tensors may share one storage (views of one another); they then hold the same
/// bytes, never copies.
#[derive(Debug, Clone)]
pub struct Storage<'data> {
    pub(crate) key: Arc<str>,
    pub(crate) dtype: Option<DType>,
    pub(crate) location: Arc<str>,
    pub(crate) bytes: SharedBytes<'data>,
}

impl<'data> Storage<'data> {
    /// The key: record `data/<key>` of a zip archive, or a legacy file's storage id.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The element type of a typed storage (`FloatStorage`); `None` for an `UntypedStorage`,
    /// whose tensors carry their own dtype.
    pub fn dtype(&self) -> Option<DType> {
        self.dtype
    }

    /// Where it lived when saved (`cpu`, `cuda:0`, `mps`, ...). It is read on the CPU anyway.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The bytes, as stored (in the archive's byte order).
    pub fn bytes(&self) -> &SharedBytes<'data> {
        &self.bytes
    }
}

/// What a `('storage', type, key, location, numel[, view])` persistent id says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StorageRef {
    pub(crate) key: String,
    /// `None` for `torch.storage.UntypedStorage` (numel then counts bytes).
    pub(crate) dtype: Option<DType>,
    pub(crate) location: String,
    pub(crate) numel: u64,
    /// Legacy files: `(view_key, offset, size)` in elements of a view into the root storage.
    pub(crate) view: Option<(String, u64, u64)>,
}

impl StorageRef {
    /// Bytes the root storage must have: `numel × element size` (bytes for untyped storages).
    pub(crate) fn nbytes(&self) -> Result<u64> {
        let size = self.dtype.map_or(1, DType::size) as u64;
        self.numel
            .checked_mul(size)
            .ok_or_else(|| self.invalid("numel × element size overflows"))
    }

    pub(crate) fn invalid(&self, reason: impl Into<String>) -> Error {
        Error::InvalidStorage {
            key: self.key.clone(),
            reason: reason.into(),
        }
    }
}

/// Every persistent id in `tree`, decoded, with the node it stands at.
pub(crate) fn storage_refs(tree: &Tree, record: &str) -> Result<Vec<(ValueId, StorageRef)>> {
    let mut refs = Vec::new();
    for (index, node) in tree.nodes.iter().enumerate() {
        if let Node::PersistentId(pid) = node {
            refs.push((ValueId(index as u32), parse_pid(tree, *pid, record)?));
        }
    }
    Ok(refs)
}

fn parse_pid(tree: &Tree, pid: ValueId, record: &str) -> Result<StorageRef> {
    let bad = |reason: &str| Error::Unsupported {
        what: format!("persistent id in {record}: {reason}"),
    };
    let fields = match tree.node(pid) {
        Node::Tuple(items) => &items[..],
        _ => return Err(bad("not a tuple (only torch's ('storage', ...) ids are understood)")),
    };
    let text = |id: Option<&ValueId>| -> Option<String> {
        match id.map(|&i| tree.node(i)) {
            Some(Node::Str(s)) => Some(s.to_string()),
            // Python 2 writers, read with encoding="bytes", give ASCII bytes.
            Some(Node::Bytes(b)) => String::from_utf8(b.to_vec()).ok(),
            Some(Node::Int(i)) => Some(i.to_string()),
            _ => None,
        }
    };
    match text(fields.first()).as_deref() {
        Some("storage") => {}
        Some("module") => return Err(bad("a ('module', ...) id refers to Python source code")),
        _ => return Err(bad("the first element is not 'storage'")),
    }
    if !(5..=6).contains(&fields.len()) {
        return Err(bad("a storage id has 5 or 6 elements"));
    }
    let type_id = fields.get(1).copied().unwrap_or(pid);
    let dtype = match tree.global(type_id) {
        Some((_, "UntypedStorage")) => None,
        Some((module, name)) => Some(DType::from_storage_name(name).ok_or_else(|| Error::Unsupported {
            what: format!("storage type {module}.{name} in {record}"),
        })?),
        None => return Err(bad("the storage type is not a class reference")),
    };
    let key = text(fields.get(2)).ok_or_else(|| bad("the storage key is not a string"))?;
    let location = text(fields.get(3)).ok_or_else(|| bad("the location is not a string"))?;
    let numel = fields
        .get(4)
        .and_then(|&n| tree.as_int(n))
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| bad("numel is not a non-negative integer"))?;
    let view = match fields.get(5).map(|&v| (v, tree.node(v))) {
        None | Some((_, Node::None)) => None,
        Some((v, _)) => {
            let parts = tree.seq(v).unwrap_or(&[]);
            let (Some(view_key), Some(offset), Some(size)) = (
                text(parts.first()),
                parts
                    .get(1)
                    .and_then(|&i| tree.as_int(i))
                    .and_then(|i| u64::try_from(i).ok()),
                parts
                    .get(2)
                    .and_then(|&i| tree.as_int(i))
                    .and_then(|i| u64::try_from(i).ok()),
            ) else {
                return Err(bad("view metadata is not (key, offset, size)"));
            };
            Some((view_key, offset, size))
        }
    };
    Ok(StorageRef {
        key,
        dtype,
        location,
        numel,
        view,
    })
}

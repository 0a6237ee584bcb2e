//! Storages: the persistent ids that name them, as `torch.load` resolves them.
//!
//! A zip archive's loader (`torch.serialization._load`) keeps one storage object per key
//! (`loaded_storages`): the same key with the same dtype is the same object; with another
//! dtype and the same size, a new object over the same bytes; with another size, a second
//! read of the record (which then fails, the record having one size). The legacy loader
//! (`_legacy_load`) keeps `deserialized_objects`, one namespace for root keys and view keys: a
//! view key met before returns what it named then (even a root), a view is a slice of its root
//! clamped as Python slices are. A legacy root met again with another dtype or size is refused
//! here: torch would reinterpret or replace it, and its bytes are only filled after the pickle.

use std::sync::Arc;

use super::globals::{self, Global};
use super::spec::Work;
pub(crate) use crate::container::StorageKey;
use crate::pickle::call::{raise, Failure};
use crate::pickle::tree::{Node, Tree, ValueId};
use crate::{DType, Error, ErrorKind};

/// How a container's persistent ids resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rules {
    /// `torch.serialization._load`: `('storage', type, key, location, numel)`.
    Zip,
    /// `torch.serialization._legacy_load`: `('storage', type, key, location, numel, view)`.
    Legacy,
}

/// Where a storage's bytes come from.
#[derive(Debug, Clone)]
pub(crate) enum Backing {
    /// The bytes the container holds for this key (zip record `data/<key>`, or the legacy data
    /// section's entry).
    Root(StorageKey),
    /// Another storage's bytes, seen with another dtype.
    Same(u32),
    /// `nbytes` bytes at byte `offset` of another storage (a legacy view).
    Slice { of: u32, offset: u64 },
}

/// A storage object of the pickle.
#[derive(Debug, Clone)]
pub(crate) struct StorageSpec {
    /// The key shown for it (a view's own key).
    pub(crate) key: Arc<str>,
    /// The dtype of its `TypedStorage` (uint8 for an `UntypedStorage` id).
    pub(crate) dtype: DType,
    pub(crate) untyped: bool,
    pub(crate) location: Arc<str>,
    pub(crate) nbytes: u64,
    pub(crate) backing: Backing,
    /// Whether `set_` may grow it (the legacy loader's own allocations).
    pub(crate) resizable: bool,
    /// Whether a legacy view slices it.
    pub(crate) viewed: bool,
}

/// What a storage persistent id says.
struct StorageId<'t> {
    dtype: DType,
    untyped: bool,
    key: StorageKey,
    location: &'t [u8],
    nbytes: u64,
    /// Legacy views: `(view key, offset, size)` in elements.
    view: Option<(StorageKey, u64, u64)>,
    resizable: bool,
}

/// Resolves a persistent id to a storage node (the same node for the same storage object).
pub(crate) fn persistent_load(
    tree: &mut Tree<'_>,
    work: &mut Work,
    rules: Rules,
    lenient: bool,
    pid: ValueId,
) -> Result<ValueId, Failure> {
    let Node::Tuple(fields) = *tree.node(pid) else {
        return raise(format!(
            "persistent_load id must be tuple or int, but got {}",
            tree.type_name(pid)
        ));
    };
    let fields = tree.items(fields);
    match fields.first().and_then(|&f| ascii(tree, f)) {
        Some(b"storage") => {}
        // `('module', class, source_file, source)`: the class itself (legacy, weights_only=False).
        Some(b"module") if rules == Rules::Legacy && lenient => {
            return fields
                .get(1)
                .copied()
                .ok_or_else(|| Failure::Python("('module',) id without a class".into()))
        }
        _ => return raise("Only persistent_load of storage is allowed"),
    }
    let id = parse(tree, fields, rules, lenient)?;
    let index = match rules {
        Rules::Zip => zip_storage(work, id),
        Rules::Legacy => legacy_storage(work, id)?,
    };
    node_of(tree, work, index)
}

/// The node standing for storage `index`, made once.
fn node_of(tree: &mut Tree<'_>, work: &mut Work, index: u32) -> Result<ValueId, Failure> {
    if let Some(&Some(node)) = work.storage_nodes.get(index as usize) {
        return Ok(node);
    }
    let node = tree.push(Node::Storage(index))?;
    // Storages are made one at a time: `index` is at most one past the nodes so far.
    if work.storage_nodes.len() <= index as usize {
        work.storage_nodes
            .resize(work.storages.len().max(index as usize + 1), None);
    }
    if let Some(slot) = work.storage_nodes.get_mut(index as usize) {
        *slot = Some(node);
    }
    Ok(node)
}

/// The text of a str, or ASCII bytes (`torch.serialization._maybe_decode_ascii`), as bytes:
/// UTF-8, compared as they are (equal bytes are equal text) and decoded only when kept.
fn ascii<'t>(tree: &'t Tree<'_>, id: ValueId) -> Option<&'t [u8]> {
    match tree.node(id) {
        Node::Str(_) => tree.text_bytes(id),
        Node::Bytes(_) => tree.blob(id).filter(|b| b.is_ascii()),
        _ => None,
    }
}

fn storage_key(tree: &Tree<'_>, id: ValueId) -> Result<StorageKey, Failure> {
    match tree.node(id) {
        Node::Int(i) => Ok(StorageKey::Int(*i)),
        Node::Str(_) => Ok(StorageKey::Str(Arc::from(tree.text(id).unwrap_or_default()))),
        _ => raise(format!("a storage key of type {} is not supported", tree.type_name(id))),
    }
}

fn count(tree: &Tree<'_>, id: Option<ValueId>, what: &str) -> Result<u64, Failure> {
    id.and_then(|n| tree.as_int(n))
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| Failure::Python(format!("the storage {what} is not a non-negative integer")))
}

fn parse<'t>(tree: &'t Tree<'_>, fields: &[ValueId], rules: Rules, lenient: bool) -> Result<StorageId<'t>, Failure> {
    let want = match rules {
        Rules::Zip => 5,
        Rules::Legacy => 6,
    };
    if fields.len() != want {
        return raise(format!(
            "a storage persistent id has {want} items here, not {}",
            fields.len()
        ));
    }
    let field = |i: usize| fields.get(i).copied();
    let (dtype, untyped) = storage_type(tree, field(1), rules, lenient)?;
    let key = field(2)
        .map(|k| storage_key(tree, k))
        .unwrap_or_else(|| raise("no storage key"))?;
    let location = field(3)
        .and_then(|l| ascii(tree, l))
        .ok_or_else(|| Failure::Python("the storage location is not a string".into()))?;
    let numel = count(tree, field(4), "size")?;
    let nbytes = numel
        .checked_mul(dtype.size() as u64)
        .ok_or_else(|| Failure::Python("the storage size overflows".into()))?;
    let view = match field(5) {
        None => None,
        Some(v) if matches!(tree.node(v), Node::None) => None,
        Some(v) => match tree.seq(v) {
            Some(&[view_key, offset, size]) => Some((
                storage_key(tree, view_key)?,
                count(tree, Some(offset), "view offset")?,
                count(tree, Some(size), "view size")?,
            )),
            _ => return raise("view metadata is not (key, offset, size)"),
        },
    };
    Ok(StorageId {
        dtype,
        untyped,
        key,
        location,
        nbytes,
        view,
        resizable: rules == Rules::Legacy,
    })
}

/// The dtype a storage type names: `torch.FloatStorage` → float32; `UntypedStorage` → uint8
/// (zip archives only: the legacy loader asks it for a dtype it does not have).
fn storage_type(tree: &Tree<'_>, id: Option<ValueId>, rules: Rules, lenient: bool) -> Result<(DType, bool), Failure> {
    let Some((module, name)) = id.and_then(|t| tree.global(t)) else {
        return raise("the storage type is not a class");
    };
    match globals::lookup(module, name) {
        Some((Global::StorageType(dtype), _)) => Ok((dtype, false)),
        Some((Global::UntypedStorage, _)) if rules == Rules::Zip => Ok((DType::UInt8, true)),
        Some((Global::UntypedStorage, _)) => raise("type object 'UntypedStorage' has no attribute 'dtype'"),
        // The unpickler turns any `*Storage` name it knows into a storage type.
        _ if lenient && name.contains("Storage") => match DType::from_storage_name(name) {
            Some(dtype) => Ok((dtype, false)),
            None => raise(format!("unknown storage type {module}.{name}")),
        },
        _ => raise(format!("{module}.{name} is not a storage type")),
    }
}

/// `_load.persistent_load`: one storage object per key and dtype.
fn zip_storage(work: &mut Work, id: StorageId<'_>) -> u32 {
    let known = work.by_key.get(&id.key).copied();
    let backing = match known.and_then(|i| work.storage(i).map(|s| (i, s))) {
        Some((i, cached)) if cached.dtype == id.dtype => return i,
        Some((i, cached)) if cached.nbytes == id.nbytes => Backing::Same(i),
        _ => Backing::Root(id.key.clone()),
    };
    let index = add(work, &id, id.key.shown(), id.nbytes, backing);
    if known.is_none() {
        work.by_key.insert(id.key, index);
    }
    index
}

/// `_legacy_load.persistent_load`: `deserialized_objects` shared by root and view keys.
fn legacy_storage(work: &mut Work, id: StorageId<'_>) -> Result<u32, Failure> {
    let object = match work.by_key.get(&id.key).copied() {
        None => {
            let index = add(work, &id, id.key.shown(), id.nbytes, Backing::Root(id.key.clone()));
            work.by_key.insert(id.key.clone(), index);
            index
        }
        Some(i) => {
            let Some(cached) = work.storage(i) else {
                return raise("dangling storage");
            };
            match (cached.dtype == id.dtype, cached.nbytes == id.nbytes) {
                // The cached object, whatever size this id claims.
                (true, _) => i,
                // The same bytes as another dtype: a new object over them.
                (false, true) => {
                    let nbytes = cached.nbytes;
                    add(work, &id, id.key.shown(), nbytes, Backing::Same(i))
                }
                // torch swaps in an empty, resizable storage that a tensor would grow into
                // uninitialised memory: refused.
                (false, false) => {
                    return Err(Failure::Error(Error::from(ErrorKind::InvalidStorage {
                        key: id.key.to_string(),
                        reason: format!(
                            "used again as {} of {} bytes after {} of {} bytes (torch would replace it \
                             with an empty storage, whose bytes are never read from the file)",
                            id.dtype, id.nbytes, cached.dtype, cached.nbytes
                        ),
                    })))
                }
            }
        }
    };
    let Some((view_key, offset, size)) = id.view.clone() else {
        return Ok(object);
    };
    if let Some(&seen) = work.by_key.get(&view_key) {
        return Ok(seen);
    }
    // `typed_storage._untyped_storage[start:end]`, clamped as Python slices clamp.
    let unit = id.dtype.size() as u64;
    let object_bytes = work.storage(object).map_or(0, |s| s.nbytes);
    let start = offset.saturating_mul(unit).min(object_bytes);
    let end = offset
        .saturating_mul(unit)
        .saturating_add(size.saturating_mul(unit))
        .min(object_bytes)
        .max(start);
    let index = add(
        work,
        &id,
        view_key.shown(),
        end - start,
        Backing::Slice {
            of: object,
            offset: start,
        },
    );
    if let Some(root) = work.storages.get_mut(object as usize) {
        root.viewed = true;
    }
    work.by_key.insert(view_key, index);
    Ok(index)
}

/// Whether [`grow`] may resize storage `index` (a legacy root the loader allocated, or a
/// reinterpretation of one, that no view slices): for any other storage, `grow` changes
/// nothing, and callers need not work out the bytes a tensor needs.
pub(crate) fn growable(work: &Work, index: u32) -> bool {
    let root = match work.storage(index).map(|s| &s.backing) {
        Some(Backing::Root(_)) => index,
        Some(Backing::Same(of)) => *of,
        _ => return false,
    };
    work.storage(root).is_some_and(|spec| spec.resizable && !spec.viewed)
}

/// Grows a legacy storage that a tensor needs `needed` bytes of, as torch's `set_` resizes a
/// resizable storage: the roots of a legacy stream are allocated by the loader
/// (`UntypedStorage(nbytes)`), filled from the file only after the pickle, with the size they
/// then have. Returns whether `index` has `needed` bytes now. A storage that views or is viewed
/// (a slice of another) is not grown: the views would point into freed memory.
pub(crate) fn grow(work: &mut Work, index: u32, needed: u64) -> bool {
    let root = match work.storage(index).map(|s| &s.backing) {
        Some(Backing::Root(_)) => index,
        Some(Backing::Same(of)) => *of,
        _ => return false,
    };
    let Some(spec) = work.storage(root) else { return false };
    if needed <= spec.nbytes {
        return true;
    }
    if !spec.resizable || spec.viewed {
        return false;
    }
    // The root and every reinterpretation of it share the bytes, and so the size.
    for s in work.storages.iter_mut() {
        let shares = match &s.backing {
            Backing::Same(of) => *of == root,
            _ => false,
        };
        if shares {
            s.nbytes = needed;
        }
    }
    if let Some(spec) = work.storages.get_mut(root as usize) {
        spec.nbytes = needed;
    }
    true
}

fn add(work: &mut Work, id: &StorageId<'_>, key: Arc<str>, nbytes: u64, backing: Backing) -> u32 {
    let location = work.location(id.location);
    work.storages.push(StorageSpec {
        key,
        dtype: id.dtype,
        untyped: id.untyped,
        location,
        nbytes,
        resizable: id.resizable && !matches!(backing, Backing::Slice { .. }),
        viewed: false,
        backing,
    });
    (work.storages.len() - 1) as u32
}

//! [`Checkpoint`]: an opened torch file.

#![forbid(unsafe_code)]

use std::collections::HashMap;
#[cfg(feature = "mmap")]
use std::path::Path;

use crate::container::Format;
use crate::paths::tensor_paths;
use crate::pickle::Tree;
use crate::tensor::{ByteOrder, Storage, TensorView};
use crate::torch::{load, Tables};
use crate::value::Value;
use crate::{Error, Options, Result, SharedBytes};

/// An opened `torch.save` file: the object tree, its tensors by name, and their storages.
///
/// Opening parses the pickle, resolves storages and validates every tensor's layout against
/// its storage; tensor bytes are not read until asked for (memory-mapped files are paged in
/// on demand). After opening, the only errors are "no such tensor" and typed-access requests.
///
/// ```
/// # fn main() -> Result<(), pth_reader::Error> {
/// use pth_reader::Checkpoint;
/// let ckpt = Checkpoint::open(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint.pth"))?;
/// for (name, tensor) in ckpt.tensors() {
///     println!("{name}: {} {:?}", tensor.dtype(), tensor.shape());
/// }
/// let epoch = ckpt.root().get("epoch").and_then(|v| v.as_i64());
/// assert_eq!(epoch, Some(3));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Checkpoint<'data> {
    format: Format,
    byte_order: ByteOrder,
    protocol: u8,
    tree: Tree<'data>,
    tables: Tables<'data>,
    names: Vec<(String, u32)>,
    by_name: HashMap<String, usize>,
    records: Vec<String>,
    warnings: Vec<String>,
}

impl Checkpoint<'static> {
    /// Memory-maps the file at `path` and opens it in strict mode.
    ///
    /// **The mapping contract.** The file is mapped, not read: its pages are read by the
    /// operating system when tensors are first touched, and the checkpoint (and every tensor
    /// view of it) keeps the mapping alive. The mapping is shared with the file, so the file
    /// must not be modified or truncated by anyone while the checkpoint is alive: bytes
    /// written to it would change the tensors under your feet, and reading pages past a
    /// truncation kills the process with `SIGBUS` (no Rust code can catch it). That is the
    /// contract of every memory-mapped reader (safetensors, `torch.load(mmap=True)`). When the
    /// file cannot be trusted to stay put — a directory other processes write to, a network
    /// file system, an upload being replaced — use [`read`](Self::read), which copies the file
    /// into memory first.
    #[cfg(feature = "mmap")]
    pub fn open(path: impl AsRef<Path>) -> Result<Checkpoint<'static>> {
        Checkpoint::open_with(path, &Options::default())
    }

    /// Memory-maps the file at `path` and opens it with `options` (see [`open`](Self::open)
    /// for the mapping contract).
    #[cfg(feature = "mmap")]
    pub fn open_with(path: impl AsRef<Path>, options: &Options) -> Result<Checkpoint<'static>> {
        let map = crate::MappedFile::open(path)?;
        let ckpt = Checkpoint::from_shared(map.shared(), options)?;
        map.restore_readahead();
        Ok(ckpt)
    }

    /// Reads the whole file at `path` into memory and opens it with `options`: no mapping,
    /// so nothing another process does to the file afterwards can affect the checkpoint. Costs
    /// the file's size in memory (refused with [`Error::OutOfMemory`] when the system cannot
    /// provide it).
    ///
    /// ```
    /// # fn main() -> Result<(), pth_reader::Error> {
    /// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint.pth");
    /// let ckpt = pth_reader::Checkpoint::read(path, &pth_reader::Options::default())?;
    /// assert_eq!(ckpt.root().get("epoch").and_then(|v| v.as_i64()), Some(3));
    /// # Ok(()) }
    /// ```
    pub fn read(path: impl AsRef<std::path::Path>, options: &Options) -> Result<Checkpoint<'static>> {
        let bytes = crate::bytes::read_file(path.as_ref())?;
        Checkpoint::from_vec(bytes, options)
    }

    /// Opens bytes it takes ownership of.
    pub fn from_vec(bytes: Vec<u8>, options: &Options) -> Result<Checkpoint<'static>> {
        Checkpoint::from_shared(SharedBytes::from(bytes), options)
    }
}

impl<'data> Checkpoint<'data> {
    /// Opens bytes in memory, in strict mode, borrowing them: tensors are views into `bytes`.
    pub fn from_bytes(bytes: &'data [u8]) -> Result<Checkpoint<'data>> {
        Checkpoint::from_shared(SharedBytes::from(bytes), &Options::default())
    }

    /// Opens bytes in memory with `options`, borrowing them.
    pub fn from_bytes_with(bytes: &'data [u8], options: &Options) -> Result<Checkpoint<'data>> {
        Checkpoint::from_shared(SharedBytes::from(bytes), options)
    }

    /// Opens shared bytes (a sub-range of a larger mapping, such as a member of an SB3 zip).
    pub fn from_shared(bytes: SharedBytes<'data>, options: &Options) -> Result<Checkpoint<'data>> {
        let mut decoded = load::load(bytes, options)?;
        let names = tensor_paths(&decoded.tree, &decoded.tables, options.get_limits())?;
        if let Some((index, error)) = decoded.tables.invalid.drain(..).next() {
            return Err(match (error, names.iter().find(|(_, i)| *i == index)) {
                (Error::InvalidTensor { context, reason }, Some((path, _))) => Error::InvalidTensor {
                    context: format!("{path:?} ({context})"),
                    reason,
                },
                (error, _) => error,
            });
        }
        let mut by_name = HashMap::with_capacity(names.len());
        for (position, (name, _)) in names.iter().enumerate() {
            by_name.entry(name.clone()).or_insert(position);
        }
        Ok(Checkpoint {
            format: decoded.format,
            byte_order: decoded.byte_order,
            protocol: decoded.protocol,
            tree: decoded.tree,
            tables: decoded.tables,
            names,
            by_name,
            records: decoded.records,
            warnings: decoded.warnings,
        })
    }

    /// The container format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The byte order of the storages (`little` unless the archive's `byteorder` says `big`).
    pub fn byte_order(&self) -> ByteOrder {
        self.byte_order
    }

    /// The pickle protocol of the object pickle.
    pub fn protocol(&self) -> u8 {
        self.protocol
    }

    /// The root of the object tree (a state dict, a training checkpoint dict, a tensor, ...).
    pub fn root(&self) -> Value<'_> {
        Value::new(&self.tree, &self.tables, self.tree.root_id())
    }

    /// The underlying object tree.
    pub fn tree(&self) -> &Tree<'data> {
        &self.tree
    }

    /// The tree and the tables its tensor and storage nodes index (the writer's input).
    pub(crate) fn parts(&self) -> (&Tree<'data>, &Tables<'data>) {
        (&self.tree, &self.tables)
    }

    /// Every tensor reachable from the root, with its path, in depth-first order. A tensor
    /// reachable along two paths appears under both.
    pub fn tensors(&self) -> impl Iterator<Item = (&str, &TensorView<'data>)> + '_ {
        self.names
            .iter()
            .filter_map(move |(name, index)| Some((name.as_str(), self.tables.tensors.get(*index as usize)?)))
    }

    /// Number of tensor paths (see [`tensors`](Self::tensors)).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no tensor is reachable.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The tensor at `name` (a path such as `model.fc.weight`; `""` for a root tensor).
    pub fn tensor(&self, name: &str) -> Result<&TensorView<'data>> {
        self.by_name
            .get(name)
            .and_then(|&position| self.names.get(position))
            .and_then(|&(_, index)| self.tables.tensors.get(index as usize))
            .ok_or_else(|| Error::NoSuchTensor { name: name.to_owned() })
    }

    /// The storages, in the order the pickle first referenced them.
    pub fn storages(&self) -> &[Storage<'data>] {
        &self.tables.storages
    }

    /// Record names of a zip archive, relative to its root folder (empty for legacy files).
    pub fn records(&self) -> &[String] {
        &self.records
    }

    /// Things worth knowing that did not stop the file from opening.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

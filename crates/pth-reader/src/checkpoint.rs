//! [`Checkpoint`]: an opened torch file.

#![forbid(unsafe_code)]

use std::path::Path;

use crate::container::zip::{Compression, ZipArchive};
use crate::container::{Format, RecordNames};
use crate::file::{OpenedFile, Pages};
use crate::hashing::PositionIndex;
use crate::paths::{tensor_paths, TensorNames};
use crate::pickle::Tree;
use crate::tensor::{ByteOrder, Storage, TensorView};
use crate::torch::{load, Tables};
use crate::value::Value;
use crate::{ErrorKind, Options, Result, SharedBytes};

/// An opened `torch.save` file: the object tree, its tensors by name, and their storages.
///
/// Opening parses the pickle, resolves storages and validates every tensor's layout against
/// its storage; tensor bytes are not read until asked for (memory-mapped files are paged in
/// on demand). After opening, the only errors are "no such tensor" and typed-access requests.
///
/// ```
/// # fn main() -> Result<(), pth_reader::Error> {
/// use pth_reader::Checkpoint;
/// let ckpt = Checkpoint::open(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint.pth"), &Default::default())?;
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
    names: TensorNames,
    /// Positions in `names` by name (the first of equal names).
    by_name: PositionIndex,
    records: RecordNames,
    warnings: Vec<String>,
    archive: Option<std::sync::Arc<ZipArchive<'data>>>,
    /// The mapped file's pages (files opened mapped), for [`release_pages`](Self::release_pages).
    pages: Pages,
}

impl Checkpoint<'static> {
    /// Opens the file at `path`: memory-mapped (the default) or read into memory, as
    /// `options` say ([`Options::mmap`]).
    ///
    /// **The mapping contract.** A mapped file is not read: its pages are read by the
    /// operating system when tensors are first touched, and the checkpoint (and every tensor
    /// view of it) keeps the mapping alive. The mapping is shared with the file, so the file
    /// must not be modified or truncated by anyone while the checkpoint is alive: bytes
    /// written to it would change the tensors under your feet, and reading pages past a
    /// truncation kills the process with `SIGBUS` (no Rust code can catch it). That is the
    /// contract of every memory-mapped reader (safetensors, `torch.load(mmap=True)`). When the
    /// file cannot be trusted to stay put — a directory other processes write to, a network
    /// file system, an upload being replaced — open it with `Options::default().mmap(false)`,
    /// which copies the file into memory first (refused with
    /// [`ErrorKind::OutOfMemory`](crate::ErrorKind::OutOfMemory) when the system cannot
    /// provide it).
    ///
    /// ```
    /// # fn main() -> Result<(), pth_reader::Error> {
    /// use pth_reader::{Checkpoint, Options};
    /// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint.pth");
    /// let mapped = Checkpoint::open(path, &Options::default())?;
    /// let copied = Checkpoint::open(path, &Options::default().mmap(false))?;
    /// assert_eq!(copied.root().get("epoch").and_then(|v| v.as_i64()), Some(3));
    /// assert_eq!(mapped.len(), copied.len());
    /// # Ok(()) }
    /// ```
    pub fn open(path: impl AsRef<Path>, options: &Options) -> Result<Checkpoint<'static>> {
        let file = OpenedFile::open(path.as_ref(), options)?;
        let mut ckpt = Checkpoint::from_bytes(file.bytes.clone(), options)?;
        file.indexed();
        ckpt.pages = file.pages();
        Ok(ckpt)
    }
}

impl<'data> Checkpoint<'data> {
    /// Opens bytes in memory: borrowed (`&'data [u8]`: tensors are views into them), owned
    /// (`Vec<u8>`), or shared ([`SharedBytes`]: a sub-range of a larger mapping, such as a
    /// member of an SB3 zip). Nothing is copied.
    ///
    /// ```
    /// # fn main() -> Result<(), pth_reader::Error> {
    /// use pth_reader::{Checkpoint, Options};
    /// let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint.pth")).unwrap();
    /// let borrowed = Checkpoint::from_bytes(bytes.as_slice(), &Options::default())?;
    /// let owned = Checkpoint::from_bytes(bytes.clone(), &Options::default())?;
    /// assert_eq!(borrowed.len(), owned.len());
    /// # Ok(()) }
    /// ```
    pub fn from_bytes(bytes: impl Into<SharedBytes<'data>>, options: &Options) -> Result<Checkpoint<'data>> {
        let mut decoded = load::load(bytes.into(), options)?;
        let names = tensor_paths(&decoded.tree, &decoded.tables, options.limits())?;
        if let Some((index, error)) = decoded.tables.invalid.drain(..).next() {
            return Err(match names.iter().find(|&(_, i)| i == index) {
                Some((path, _)) => error.for_tensor(path),
                None => error,
            });
        }
        let mut by_name = PositionIndex::with_capacity(names.len());
        for (position, (name, _)) in names.iter().enumerate() {
            let hash = by_name.hash(name.as_bytes());
            let name_at = |at: usize| names.get(at).map_or("", |(n, _)| n);
            if by_name.find(hash, |at| name_at(at) == name).is_none() {
                by_name.insert(hash, position, name_at);
            }
        }
        if let Some(warning) = unswapped_warning(&decoded.tables.unswapped, &names) {
            decoded.warnings.push(warning);
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
            archive: decoded.archive,
            pages: Pages::default(),
        })
    }

    /// Lets the pages of a memory-mapped file that reading tensors brought in leave this
    /// process's resident memory: they stay in the operating system's page cache and are mapped
    /// again, with the same bytes, if read again; views stay valid. For streaming every tensor
    /// of a large file through once (`pth convert`) without the whole file becoming resident.
    /// Does nothing for files read into memory and for [`from_bytes`](Self::from_bytes).
    ///
    /// ```
    /// # fn main() -> Result<(), pth_reader::Error> {
    /// use pth_reader::{Checkpoint, Options};
    /// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint.pth");
    /// let ckpt = Checkpoint::open(path, &Options::default())?;
    /// let w = ckpt.tensor("model.0.weight")?;
    /// let before = w.to_le_bytes()?.into_owned();
    /// ckpt.release_pages();
    /// assert_eq!(w.to_le_bytes()?.as_ref(), &before[..]);
    /// # Ok(()) }
    /// ```
    pub fn release_pages(&self) {
        self.pages.release();
    }

    /// Where `bytes` start in the file this checkpoint was read from, when they are the file's
    /// own bytes: a tensor's [`raw_bytes`](TensorView::raw_bytes) in a stored (not deflated)
    /// zip record. A caller can then copy them file to file (`copy_file_range`, as `pth
    /// convert` does) instead of through memory. `None` for bytes that are not a part of the
    /// archive's bytes (inflated records, the legacy stream, bytes of another checkpoint).
    ///
    /// ```
    /// # fn main() -> Result<(), pth_reader::Error> {
    /// use pth_reader::{Checkpoint, Options};
    /// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint.pth");
    /// let ckpt = Checkpoint::open(path, &Options::default())?;
    /// let raw = ckpt.tensor("model.0.weight")?.raw_bytes().expect("contiguous, little-endian");
    /// let at = ckpt.file_offset(raw).expect("a stored record") as usize;
    /// assert_eq!(&std::fs::read(path).unwrap()[at..at + raw.len()], raw);
    /// assert_eq!(ckpt.file_offset(&raw.to_vec()), None);
    /// # Ok(()) }
    /// ```
    pub fn file_offset(&self, bytes: &[u8]) -> Option<u64> {
        let file = self.archive.as_ref()?.bytes().as_slice();
        // Addresses compared as integers: no pointer is made from them.
        let (base, start) = (file.as_ptr() as usize, bytes.as_ptr() as usize);
        let offset = start.checked_sub(base)?;
        (offset.checked_add(bytes.len())? <= file.len()).then_some(offset as u64)
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

    /// The tree and the tables its tensor and storage nodes index (the writer's input).
    pub(crate) fn parts(&self) -> (&Tree<'data>, &Tables<'data>) {
        (&self.tree, &self.tables)
    }

    /// Every tensor reachable from the root, with its path, in depth-first order. A tensor
    /// reachable along two paths appears under both.
    pub fn tensors(&self) -> impl Iterator<Item = (&str, &TensorView<'data>)> + '_ {
        self.names
            .iter()
            .filter_map(move |(name, index)| Some((name, self.tables.tensors.get(index as usize)?)))
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
        let hash = self.by_name.hash(name.as_bytes());
        self.by_name
            .find(hash, |at| self.names.get(at).is_some_and(|(n, _)| n == name))
            .and_then(|position| self.names.get(position))
            .and_then(|(_, index)| self.tables.tensors.get(index as usize))
            .ok_or_else(|| ErrorKind::NoSuchTensor { name: name.to_owned() }.into())
    }

    /// The storages, in the order the pickle first referenced them.
    pub fn storages(&self) -> &[Storage<'data>] {
        &self.tables.storages
    }

    /// Record names of a zip archive, relative to its root folder, in the archive's order (as
    /// torch's `PyTorchStreamReader.get_all_records()` lists them); empty for legacy files.
    ///
    /// ```
    /// # fn main() -> Result<(), pth_reader::Error> {
    /// use pth_reader::Checkpoint;
    /// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint.pth");
    /// let ckpt = Checkpoint::open(path, &Default::default())?;
    /// assert!(ckpt.records().any(|name| name == "data.pkl"));
    /// # Ok(()) }
    /// ```
    pub fn records(&self) -> impl Iterator<Item = &str> + '_ {
        self.archive
            .as_deref()
            .into_iter()
            .flat_map(|archive| self.records.iter(archive))
    }

    /// Things worth knowing that did not stop the file from opening.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The entries of a zip archive whose bytes do not match their CRC-32, by name (empty for
    /// legacy files, which have no CRCs). A CRC of 0 is no CRC: torch's writer records 0 when
    /// told not to compute them (`torch.serialization.set_crc32_options(False)`).
    ///
    /// torch never checks CRCs, so a mismatch changes nothing in what is read: the records
    /// read in full at open (the pickle, `byteorder`, the versions, deflated records) are
    /// checked then and named in [`warnings`](Self::warnings); the storages, which are not read
    /// at open, are checked here, on demand. Entries are hashed a chunk at a time (a stored one
    /// in place; a deflated one inflated through a fixed buffer, within `max_inflated_bytes`
    /// for all of them), so nothing the size of a record is allocated.
    ///
    /// ```
    /// # fn main() -> Result<(), pth_reader::Error> {
    /// use pth_reader::{Checkpoint, Options};
    /// let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/");
    /// let good = Checkpoint::open(format!("{fixtures}checkpoint.pth"), &Options::default())?;
    /// assert!(good.verify_checksums()?.is_empty());
    /// let bad = Checkpoint::open(format!("{fixtures}zip_crc_wrong.pt"), &Options::default())?;
    /// assert!(!bad.verify_checksums()?.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn verify_checksums(&self) -> Result<Vec<String>> {
        let Some(archive) = &self.archive else {
            return Ok(Vec::new());
        };
        let mut budget = archive.budget();
        let mut mismatches = Vec::new();
        for entry in archive.entries().iter().filter(|e| e.crc32() != 0) {
            if entry.compression() == Compression::Deflated {
                budget.charge(entry)?;
            }
            if !archive.crc_matches(entry)? {
                mismatches.push(entry.name().to_owned());
            }
        }
        Ok(mismatches)
    }
}

/// The warning naming the tensors of a big-endian archive that torch reads without swapping
/// their bytes (see `torch::tables::swap_units`), if any is reachable.
fn unswapped_warning(unswapped: &[u32], names: &TensorNames) -> Option<String> {
    const SHOWN: usize = 8;
    if unswapped.is_empty() {
        return None;
    }
    let unswapped: crate::hashing::FastSet<u32> = unswapped.iter().copied().collect();
    let named: Vec<&str> = names
        .iter()
        .filter(|(_, index)| unswapped.contains(index))
        .map(|(name, _)| name)
        .collect();
    if named.is_empty() {
        return None;
    }
    let mut list = named
        .iter()
        .take(SHOWN)
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if named.len() > SHOWN {
        list.push_str(&format!(" and {} more", named.len() - SHOWN));
    }
    Some(format!(
        "big-endian archive: torch does not swap the bytes of {list} (an untyped storage, as torch writes \
         uint16/32/64, complex32 and float8 tensors), so torch.load gives their values byte-swapped relative \
         to the values saved; they are read here as torch reads them"
    ))
}

//! [`TensorView`]: one tensor of a checkpoint, its metadata and its bytes.

use std::borrow::Cow;
use std::io::Write;
use std::sync::Arc;

use super::element::{real_to_f64, Element, F32Decoder};
use super::layout::Layout;
use super::storage::Storage;
use crate::{DType, Error, ErrorKind, Limit, Result, SharedBytes};

/// Bytes produced per step when elements are streamed or gathered.
const CHUNK_BYTES: usize = 64 * 1024;
/// Runs at least this long that need no fixing up are handed on as they are (see
/// `for_each_chunk`).
const DIRECT_RUN_BYTES: usize = 4 * 1024;
/// The most bytes of rows a view read as [`Planes`] is produced in at a time (fits in L2).
const TILE_BYTES: usize = 1 << 20;

/// The byte order of an archive's storages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Least significant byte first (every x86 and ARM machine).
    Little,
    /// Most significant byte first (archives written on s390x or POWER big-endian machines).
    Big,
}

impl ByteOrder {
    /// `"little"` or `"big"`, as torch's `byteorder` record spells it.
    pub fn name(self) -> &'static str {
        match self {
            ByteOrder::Little => "little",
            ByteOrder::Big => "big",
        }
    }
}

/// How a quantized tensor maps integers to real values.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Quantization<'data> {
    /// One scale and zero point for the whole tensor.
    PerTensor {
        /// The qscheme's name (`per_tensor_affine`).
        scheme: String,
        /// Scale.
        scale: f64,
        /// Zero point.
        zero_point: i64,
    },
    /// A scale and zero point per slice along `axis`.
    PerChannel {
        /// The qscheme's name (`per_channel_affine`).
        scheme: String,
        /// Scales (a float64 tensor).
        scales: Box<TensorView<'data>>,
        /// Zero points (an int64 tensor).
        zero_points: Box<TensorView<'data>>,
        /// The channel axis.
        axis: i64,
    },
}

/// A tensor: dtype, shape, strides and offset into a storage whose bytes it shares.
///
/// Everything was validated when the checkpoint was opened, so accessors never fail on
/// bounds: they fail only when asked for a type the tensor does not have. A view holds its
/// storage by [`SharedBytes`], so it may outlive the [`Checkpoint`](crate::Checkpoint) that
/// produced it.
///
/// ```
/// # fn main() -> Result<(), pth_reader::Error> {
/// let ckpt = pth_reader::Checkpoint::open(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint.pth"), &Default::default())?;
/// let weight = ckpt.tensor("model.0.weight")?;
/// println!("{} {:?} contiguous={}", weight.dtype(), weight.shape(), weight.is_contiguous());
/// let values: Vec<f32> = weight.to_vec()?;        // exact dtype
/// let as_f64 = weight.to_f64_vec()?;               // any real dtype, converted
/// assert_eq!(values.len(), as_f64.len());
/// if let Some(raw) = weight.raw_bytes() {          // zero-copy, contiguous tensors only
///     assert_eq!(raw.len(), weight.numel() * 4);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TensorView<'data> {
    pub(crate) layout: Layout,
    pub(crate) dtype: DType,
    /// The whole storage (`None` for meta tensors, which have no data).
    pub(crate) data: Option<SharedBytes<'data>>,
    pub(crate) storage_key: Option<Arc<str>>,
    pub(crate) location: Option<Arc<str>>,
    pub(crate) byte_order: ByteOrder,
    pub(crate) conj: bool,
    pub(crate) neg: bool,
    pub(crate) requires_grad: bool,
    pub(crate) is_parameter: bool,
    pub(crate) subclass: Option<Arc<str>>,
    pub(crate) quantization: Option<Box<Quantization<'data>>>,
    /// Bytes beyond its storage's size that reading the elements may produce
    /// ([`Limits::max_expanded_bytes`](crate::Limits::max_expanded_bytes)).
    pub(crate) expansion_limit: u64,
    /// In a big-endian archive, the groups of bytes reversed to make the stored bytes
    /// little-endian: torch's (its storage's element size), not always this dtype's.
    pub(crate) swap_unit: usize,
}

impl<'data> TensorView<'data> {
    /// A tensor over `storage` (validated by the caller through [`Layout::validate`]).
    pub(crate) fn over(layout: Layout, storage: &Storage<'data>, byte_order: ByteOrder) -> Self {
        let mut t = TensorView::without_data(layout, byte_order);
        t.data = Some(storage.bytes.clone());
        t.storage_key = Some(storage.key.clone());
        t.location = Some(storage.location.clone());
        t
    }

    /// A tensor that has metadata only (a meta-device tensor).
    pub(crate) fn without_data(layout: Layout, byte_order: ByteOrder) -> Self {
        let swap_unit = layout.dtype.swap_unit();
        TensorView {
            dtype: layout.dtype,
            layout,
            data: None,
            storage_key: None,
            location: None,
            byte_order,
            conj: false,
            neg: false,
            requires_grad: false,
            is_parameter: false,
            subclass: None,
            quantization: None,
            expansion_limit: crate::Limits::default().max_expanded_bytes,
            swap_unit,
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Size of each dimension.
    pub fn shape(&self) -> &[usize] {
        &self.layout.shape
    }

    /// Stride of each dimension, in elements, as stored in the archive.
    pub fn stride(&self) -> &[usize] {
        &self.layout.stride
    }

    /// Offset of the first element in the storage, in elements, as stored in the archive.
    pub fn storage_offset(&self) -> usize {
        self.layout.offset
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.layout.numel
    }

    /// Size in bytes of the elements (not of the storage).
    pub fn nbytes(&self) -> usize {
        self.layout.numel.saturating_mul(self.dtype.size())
    }

    /// Whether the elements are in C order without gaps (torch's `is_contiguous()`).
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// The key of the storage it views (shared with other views of that storage).
    pub fn storage_key(&self) -> Option<&str> {
        self.storage_key.as_deref()
    }

    /// Where the storage lived when saved (`cpu`, `cuda:0`, ...).
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }

    /// The archive's byte order: the order of [`raw_bytes`](Self::raw_bytes).
    pub fn byte_order(&self) -> ByteOrder {
        self.byte_order
    }

    /// Whether it was saved with `requires_grad=True`.
    pub fn requires_grad(&self) -> bool {
        self.requires_grad
    }

    /// Whether it was saved as an `nn.Parameter`.
    pub fn is_parameter(&self) -> bool {
        self.is_parameter
    }

    /// Whether torch marked it a conjugate view (values are conjugated on read).
    pub fn is_conj(&self) -> bool {
        self.conj
    }

    /// Whether torch marked it a negative view (values are negated on read).
    pub fn is_neg(&self) -> bool {
        self.neg
    }

    /// The tensor subclass it was saved as (`_rebuild_from_type_v2`), if not a plain tensor.
    pub fn subclass(&self) -> Option<&str> {
        self.subclass.as_deref()
    }

    /// Quantization parameters of a quantized tensor.
    pub fn quantization(&self) -> Option<&Quantization<'data>> {
        self.quantization.as_deref()
    }

    /// Whether it has data (meta tensors do not).
    pub fn has_data(&self) -> bool {
        self.data.is_some()
    }

    /// The whole storage it views, as stored (may be larger than the tensor).
    pub fn storage_bytes(&self) -> Option<&SharedBytes<'data>> {
        self.data.as_ref()
    }

    /// The bytes of the elements without copying, when the tensor is contiguous: in the
    /// archive's [`byte_order`](Self::byte_order), conjugate/negative bits not applied.
    /// `None` for strided tensors and tensors without data.
    pub fn raw_bytes(&self) -> Option<&[u8]> {
        if !self.is_contiguous() {
            return None;
        }
        let start = self.layout.offset.checked_mul(self.dtype.size())?;
        let bytes = self.data.as_ref()?.as_slice();
        if self.layout.numel == 0 {
            return Some(&[]);
        }
        bytes.get(start..start.checked_add(self.nbytes())?)
    }

    /// The logical elements in C order as contiguous little-endian bytes, with conjugate and
    /// negative views resolved: the bytes `torch.save` would write for `t.contiguous()` on a
    /// little-endian machine. Borrowed without copying when the tensor is contiguous, stored
    /// little-endian and not a conjugate/negative view.
    ///
    /// A view that repeats elements (an expanded tensor with stride 0) may stand for far more
    /// bytes than its storage holds: producing more than the storage's size plus
    /// [`Limits::max_expanded_bytes`](crate::Limits::max_expanded_bytes) is refused with
    /// [`ErrorKind::LimitExceeded`](crate::ErrorKind::LimitExceeded), and an allocation the system refuses with
    /// [`ErrorKind::OutOfMemory`](crate::ErrorKind::OutOfMemory). [`write_le_bytes`](Self::write_le_bytes) streams instead.
    pub fn to_le_bytes(&self) -> Result<Cow<'_, [u8]>> {
        let data = self.data()?;
        if !self.transforms() {
            if let Some(raw) = self.raw_bytes() {
                return Ok(Cow::Borrowed(raw));
            }
        }
        let mut out = alloc::<u8>(self.produced_bytes(data)?)?;
        self.for_each_chunk(data, |chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(Cow::Owned(out))
    }

    /// Streams the bytes of [`to_le_bytes`](Self::to_le_bytes) into `out`, a chunk at a time,
    /// without holding them all (to hash or write an expanded tensor). The same
    /// `max_expanded_bytes` bound applies: it bounds the time spent as well.
    pub fn write_le_bytes(&self, out: &mut dyn Write) -> Result<()> {
        let data = self.data()?;
        self.produced_bytes(data)?;
        let mut write = |chunk: &[u8]| {
            out.write_all(chunk)
                .map_err(|source| Error::from(ErrorKind::Write { source }))
        };
        match self.raw_bytes() {
            // Contiguous little-endian elements: written as they are stored.
            Some(raw) if !self.transforms() => write(raw),
            _ => self.for_each_chunk(data, write),
        }
    }

    /// `count` elements from flat (C-order) position `start`, as a new one-dimensional,
    /// contiguous, little-endian tensor of the same dtype (conjugate and negative views
    /// resolved): a few elements of a large or expanded tensor without reading the rest.
    /// Positions past the end are left out.
    ///
    /// ```
    /// # fn main() -> Result<(), pth_reader::Error> {
    /// let ckpt = pth_reader::Checkpoint::open(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint.pth"), &Default::default())?;
    /// let w = ckpt.tensor("model.0.weight")?;
    /// let last_two = w.flat_range(w.numel() - 2, 2)?;
    /// assert_eq!(last_two.to_vec::<f32>()?, w.to_vec::<f32>()?[w.numel() - 2..]);
    /// # Ok(()) }
    /// ```
    pub fn flat_range(&self, start: usize, count: usize) -> Result<TensorView<'static>> {
        let data = self.data()?;
        let size = self.dtype.size();
        let count = count.min(self.numel().saturating_sub(start));
        let mut out = alloc::<u8>(count.saturating_mul(size))?;
        // Walk the innermost dimension from each row's first element instead of locating
        // every element from scratch.
        let (inner, inner_stride) = match (self.layout.shape.last(), self.layout.stride.last()) {
            (Some(&n), Some(&s)) => (n.max(1), s),
            _ => (1, 0),
        };
        let mut flat = start;
        while flat < start + count {
            let Some(first) = self.layout.storage_index(flat) else {
                break;
            };
            let run = (inner - flat % inner).min(start + count - flat);
            for k in 0..run {
                let index = first + k * inner_stride;
                out.extend_from_slice(data.get(index * size..index * size + size).unwrap_or_default());
            }
            flat += run;
        }
        self.fix_up(&mut out);
        let layout = Layout {
            dtype: self.dtype,
            shape: smallvec::smallvec![count],
            stride: smallvec::smallvec![1],
            offset: 0,
            numel: count,
        };
        let mut t = TensorView::without_data(layout, ByteOrder::Little);
        t.data = Some(SharedBytes::from(out));
        t.expansion_limit = self.expansion_limit;
        Ok(t)
    }

    /// The storage bytes, or the error for a tensor without data.
    fn data(&self) -> Result<&[u8]> {
        self.data
            .as_ref()
            .map(SharedBytes::as_slice)
            .ok_or(Error::from(ErrorKind::NoData {
                reason: "a meta tensor has no storage",
            }))
    }

    /// Whether the stored bytes need swapping or negating before they are the logical ones.
    fn transforms(&self) -> bool {
        (self.byte_order == ByteOrder::Big && self.swap_unit > 1) || (self.conj && self.dtype.is_complex()) || self.neg
    }

    /// Turns stored elements into logical little-endian ones, in place.
    fn fix_up(&self, bytes: &mut [u8]) {
        if self.byte_order == ByteOrder::Big && self.swap_unit > 1 {
            swap_bytes(bytes, self.swap_unit);
        }
        if self.conj && self.dtype.is_complex() {
            negate_parts(bytes, self.dtype, Part::Imaginary);
        }
        if self.neg {
            negate_parts(bytes, self.dtype, Part::All);
        }
    }

    /// The bytes the logical elements take, refused beyond the storage plus the expansion limit.
    fn produced_bytes(&self, storage: &[u8]) -> Result<usize> {
        let n = self.layout.numel.saturating_mul(self.dtype.size());
        let allowed = (storage.len() as u64).saturating_add(self.expansion_limit);
        if n as u64 > allowed {
            let what = format!(
                "a {} tensor of shape {:?} ({n} bytes from a {}-byte storage)",
                self.dtype,
                self.shape(),
                storage.len()
            );
            return Err(Error::limit_in(Limit::MaxExpandedBytes, self.expansion_limit, what));
        }
        Ok(n)
    }

    /// Calls `f` with the logical little-endian bytes in C order, at most [`CHUNK_BYTES`]
    /// (rounded to whole elements) at a time — or a whole run of the storage, when it is
    /// [`DIRECT_RUN_BYTES`] or longer and needs no fixing up.
    fn for_each_chunk(&self, storage: &[u8], mut f: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        if let Some(planes) = self.planes() {
            // The storage as whole elements (arrays of bytes: no alignment needed).
            macro_rules! tiles {
                ($n:literal) => {{
                    let whole = storage.get(..storage.len() / $n * $n).unwrap_or_default();
                    let elements: &[[u8; $n]] = bytemuck::try_cast_slice(whole).unwrap_or_default();
                    self.for_each_tile(elements, planes, f)
                }};
            }
            return match self.dtype.size() {
                1 => tiles!(1),
                2 => tiles!(2),
                4 => tiles!(4),
                8 => tiles!(8),
                _ => tiles!(16),
            };
        }
        let size = self.dtype.size();
        let per_chunk = (CHUNK_BYTES / size).max(1) * size;
        let mut buffer: Vec<u8> = alloc(per_chunk)?;
        // Long runs of bytes that need no fixing up go to `f` as they are, not through the
        // buffer: a second copy costs nothing beside page faults, but half the bandwidth
        // without them.
        let direct = !self.transforms();
        let flush = |buffer: &mut Vec<u8>, f: &mut dyn FnMut(&[u8]) -> Result<()>| -> Result<()> {
            self.fix_up(buffer);
            f(buffer)?;
            buffer.clear();
            Ok(())
        };
        self.layout.try_for_each_run(|first, count| {
            let mut bytes = storage.get(first * size..(first + count) * size).unwrap_or_default();
            if direct && bytes.len() >= DIRECT_RUN_BYTES {
                if !buffer.is_empty() {
                    flush(&mut buffer, &mut f)?;
                }
                return f(bytes);
            }
            while !bytes.is_empty() {
                let room = per_chunk - buffer.len();
                let (now, later) = bytes.split_at(room.min(bytes.len()));
                buffer.extend_from_slice(now);
                bytes = later;
                if buffer.len() == per_chunk {
                    flush(&mut buffer, &mut f)?;
                }
            }
            Ok::<(), Error>(())
        })?;
        if !buffer.is_empty() {
            flush(&mut buffer, &mut f)?;
        }
        Ok(())
    }

    /// How to read this view as a batch of 2-D transposes, when its innermost dimension is not
    /// dense but another one is (a transposed matrix `m.t()`, a permuted `x.permute(0, 2, 1)` or
    /// `x.permute(0, 3, 1, 2)`): C order would read one element per cache line, so
    /// [`for_each_tile`](Self::for_each_tile) reads whole lines of that dense dimension instead.
    fn planes(&self) -> Option<Planes> {
        let (shape, stride) = (&self.layout.shape[..], &self.layout.stride[..]);
        let size = self.dtype.size();
        if self.layout.numel == 0 || !matches!(size, 1 | 2 | 4 | 8 | 16) {
            return None;
        }
        match (shape.last(), stride.last()) {
            (Some(&n), Some(&s)) if n > 1 && s != 1 => {}
            _ => return None,
        }
        // The innermost dense dimension: the last one cannot be it (its stride is not 1).
        let dim = shape.iter().zip(stride).rposition(|(&n, &s)| n > 1 && s == 1)?;
        let rows = *shape.get(dim)?;
        let inner = shape.get(dim + 1..)?.iter().product::<usize>();
        let row_bytes = inner.checked_mul(size)?;
        // Rows a multiple of 4 KiB long are a cache line apart more than a row in the tile:
        // with such a pitch every row of a column would fall in the same cache set.
        let pad = if row_bytes >= 4096 { 64 / size } else { 0 };
        let pitch = inner.checked_add(pad)?;
        // A row longer than a tile is streamed element by element as before.
        if row_bytes > TILE_BYTES {
            return None;
        }
        let block = (TILE_BYTES / pitch.saturating_mul(size)).clamp(1, rows);
        Some(Planes {
            dim,
            inner,
            pitch,
            block,
        })
    }

    /// [`for_each_chunk`](Self::for_each_chunk) for a view read as [`Planes`], for `N`-byte
    /// elements: for each index of the dimensions before the dense one, its rows are produced
    /// `block` at a time into a tile, reading for every position of the dimensions after it the
    /// `block` adjacent storage elements of those rows — whole cache lines instead of one
    /// element of each — and transposing them 8 × 8 at a time.
    fn for_each_tile<const N: usize>(
        &self,
        elements: &[[u8; N]],
        planes: Planes,
        mut f: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let Planes {
            dim,
            inner,
            pitch,
            block,
        } = planes;
        let (shape, stride) = (&self.layout.shape[..], &self.layout.stride[..]);
        let (Some((outer_shape, rest_shape)), Some((outer_stride, rest_stride))) =
            (split_at_checked(shape, dim), split_at_checked(stride, dim))
        else {
            return Ok(());
        };
        // `rest` is the dense dimension, the middle ones, and the last one.
        let (Some((&rows, middle_last_shape)), Some((_, middle_last_stride))) =
            (rest_shape.split_first(), rest_stride.split_first())
        else {
            return Ok(());
        };
        let (Some((&columns, middle_shape)), Some((&column_stride, middle_stride))) =
            (middle_last_shape.split_last(), middle_last_stride.split_last())
        else {
            return Ok(());
        };
        let mut tile: Vec<[u8; N]> = alloc(block.saturating_mul(pitch))?;
        tile.resize(block.saturating_mul(pitch), [0; N]);
        try_for_each_offset(outer_shape, outer_stride, |outer| {
            let mut first_row = 0;
            while first_row < rows {
                let count = block.min(rows - first_row);
                let used = tile.get_mut(..count * pitch).unwrap_or_default();
                // Validation proved every element index of the view inside the storage.
                let base = self.layout.offset + outer + first_row;
                let mut column = 0;
                try_for_each_offset(middle_shape, middle_stride, |middle| {
                    let run = Run {
                        first: base + middle,
                        columns,
                        column_stride,
                        rows: count,
                    };
                    gather_run(elements, run, used, column, pitch);
                    column += columns;
                    Ok(())
                })?;
                if pitch == inner {
                    let bytes = used.as_flattened_mut();
                    self.fix_up(bytes);
                    f(bytes)?;
                } else {
                    for row in used.chunks_exact_mut(pitch) {
                        let bytes = row.get_mut(..inner).unwrap_or_default().as_flattened_mut();
                        self.fix_up(bytes);
                        f(bytes)?;
                    }
                }
                first_row += count;
            }
            Ok(())
        })
    }

    /// Decodes every element into a vector of `numel`: `decode` appends the elements of whole
    /// logical little-endian elements. Contiguous little-endian tensors are decoded straight
    /// from the storage; others a chunk at a time.
    fn decode_all<T>(&self, decode: impl Fn(&mut Vec<T>, &[u8])) -> Result<Vec<T>> {
        let data = self.data()?;
        self.produced_bytes(data)?;
        let mut out = alloc::<T>(self.numel())?;
        match self.raw_bytes() {
            Some(raw) if !self.transforms() => decode(&mut out, raw),
            _ => self.for_each_chunk(data, |chunk| {
                decode(&mut out, chunk);
                Ok(())
            })?,
        }
        Ok(out)
    }

    /// The elements as `T`, which must be this tensor's dtype (see [`Element`]).
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if !T::accepts(self.dtype) {
            return Err(Error::from(ErrorKind::DTypeMismatch {
                requested: T::NAME,
                actual: self.dtype,
            }));
        }
        self.decode_all(T::extend_from_le)
    }

    /// The elements converted to `f64`: any real dtype (floats including float8, integers,
    /// bool as 0/1, quantized tensors as their integer representation).
    pub fn to_f64_vec(&self) -> Result<Vec<f64>> {
        let dtype = self.real_dtype()?;
        let size = dtype.size();
        self.decode_all(|out, bytes| {
            out.extend(
                bytes
                    .chunks_exact(size)
                    .map(|e| real_to_f64(dtype, e).unwrap_or(f64::NAN)),
            );
        })
    }

    /// The elements converted to `f32` (as [`to_f64_vec`](Self::to_f64_vec), then rounded;
    /// exact for float32, float16, bfloat16 and float8 tensors).
    pub fn to_f32_vec(&self) -> Result<Vec<f32>> {
        if self.dtype == DType::Float32 {
            return self.to_vec::<f32>();
        }
        let dtype = self.real_dtype()?;
        let decode = F32Decoder::new(dtype);
        self.decode_all(|out, bytes| decode.extend(out, bytes))
    }

    fn real_dtype(&self) -> Result<DType> {
        let dtype = self.dtype;
        if real_to_f64(dtype, &[0; 16]).is_none() {
            return Err(Error::from(ErrorKind::DTypeMismatch {
                requested: "a real number",
                actual: dtype,
            }));
        }
        Ok(dtype)
    }
}

/// A view read as a batch of 2-D transposes ([`TensorView::planes`]): for every index of the
/// dimensions before `dim`, a plane whose rows are the indices of `dim` (stride 1) and whose
/// columns are the positions of the dimensions after it, in C order.
#[derive(Debug, Clone, Copy)]
struct Planes {
    /// The dense dimension (stride 1, size above 1) that is not the last.
    dim: usize,
    /// Elements in a row: the product of the sizes after `dim`.
    inner: usize,
    /// Elements from one row of the tile to the next (`inner`, padded).
    pitch: usize,
    /// Rows produced at a time.
    block: usize,
}

/// The columns of a plane that are one run of its last dimension: `columns` columns
/// `column_stride` storage elements apart, each a run of `rows` adjacent storage elements from
/// `first` (the first column's).
#[derive(Debug, Clone, Copy)]
struct Run {
    first: usize,
    columns: usize,
    column_stride: usize,
    rows: usize,
}

/// Columns (and rows) transposed at a time: each row of the tile gets 8 adjacent elements per
/// step instead of one, and the 8 columns' cache lines stay in the L1 cache though all of them
/// fall in the same cache set when the column stride is a multiple of 4 KiB (16 measured
/// slower).
const BLOCK: usize = 8;

/// Writes the columns of `run` (elements of `from`) into `tile` (rows `pitch` elements apart)
/// from column `column` on.
fn gather_run<const N: usize>(from: &[[u8; N]], run: Run, tile: &mut [[u8; N]], column: usize, pitch: usize) {
    let source = |c: usize| {
        let start = run.first + c * run.column_stride;
        from.get(start..start + run.rows).unwrap_or_default()
    };
    let mut c = 0;
    while c + BLOCK <= run.columns {
        let sources: [&[[u8; N]]; BLOCK] = std::array::from_fn(|k| source(c + k));
        transpose_columns(sources, tile, column + c, pitch);
        c += BLOCK;
    }
    while c < run.columns {
        for (element, row) in source(c).iter().zip(tile.chunks_exact_mut(pitch)) {
            if let Some(to) = row.get_mut(column + c) {
                *to = *element;
            }
        }
        c += 1;
    }
}

/// Writes `sources` (of one length, at most the rows of `tile`) into [`BLOCK`] adjacent columns of
/// `tile` from `column` on, [`BLOCK`] rows at a time through an array the compiler transposes in
/// registers: each row of the tile gets [`BLOCK`] adjacent elements per step.
fn transpose_columns<const N: usize>(sources: [&[[u8; N]]; BLOCK], tile: &mut [[u8; N]], column: usize, pitch: usize) {
    let count = sources.first().map_or(0, |s| s.len());
    let mut rows = tile.chunks_exact_mut(pitch);
    let mut r = 0;
    while r + BLOCK <= count {
        // References, not copies: each element is one load and one store.
        let block: [Option<&[[u8; N]; BLOCK]>; BLOCK] =
            std::array::from_fn(|k| sources.get(k)?.get(r..r + BLOCK)?.try_into().ok());
        for (i, row) in rows.by_ref().take(BLOCK).enumerate() {
            if let Some(to) = row.get_mut(column..column + BLOCK) {
                for (element, source) in to.iter_mut().zip(&block) {
                    if let Some(&value) = source.and_then(|s| s.get(i)) {
                        *element = value;
                    }
                }
            }
        }
        r += BLOCK;
    }
    for row in rows.take(count - r) {
        if let Some(to) = row.get_mut(column..column + BLOCK) {
            for (element, source) in to.iter_mut().zip(&sources) {
                *element = source.get(r).copied().unwrap_or([0; N]);
            }
        }
        r += 1;
    }
}

/// `(&slice[..at], &slice[at..])`, or `None` past the end.
fn split_at_checked(slice: &[usize], at: usize) -> Option<(&[usize], &[usize])> {
    Some((slice.get(..at)?, slice.get(at..)?))
}

/// Calls `f` with the storage offset `Σ index · stride` of every index of `shape`, in C order
/// (once, with 0, for no dimensions). Stops at the first error `f` returns.
fn try_for_each_offset(shape: &[usize], stride: &[usize], mut f: impl FnMut(usize) -> Result<()>) -> Result<()> {
    if shape.contains(&0) {
        return Ok(());
    }
    let mut counter: Vec<usize> = alloc(shape.len())?;
    counter.resize(shape.len(), 0);
    let mut offset = 0usize;
    loop {
        f(offset)?;
        let mut dim = shape.len();
        loop {
            if dim == 0 {
                return Ok(());
            }
            dim -= 1;
            let (Some(c), Some(&size), Some(&step)) = (counter.get_mut(dim), shape.get(dim), stride.get(dim)) else {
                return Ok(());
            };
            // Validation proved every offset reached in range, so neither step overflows.
            if *c + 1 < size {
                *c += 1;
                offset += step;
                break;
            }
            offset -= *c * step;
            *c = 0;
        }
    }
}

/// An empty vector with room for `n` elements, or [`ErrorKind::OutOfMemory`](crate::ErrorKind::OutOfMemory).
fn alloc<T>(n: usize) -> Result<Vec<T>> {
    let mut out = Vec::new();
    out.try_reserve_exact(n).map_err(|_| {
        Error::from(ErrorKind::OutOfMemory {
            bytes: (n as u64).saturating_mul(std::mem::size_of::<T>() as u64),
        })
    })?;
    Ok(out)
}

/// Reverses the bytes of every `unit`-byte group (as whole words for 2, 4 and 8 bytes, which
/// compiles to vector shuffles).
fn swap_bytes(bytes: &mut [u8], unit: usize) {
    macro_rules! words {
        ($t:ty) => {
            for chunk in bytes.chunks_exact_mut(std::mem::size_of::<$t>()) {
                if let Ok(word) = <[u8; std::mem::size_of::<$t>()]>::try_from(&*chunk) {
                    chunk.copy_from_slice(&<$t>::from_ne_bytes(word).swap_bytes().to_ne_bytes());
                }
            }
        };
    }
    match unit {
        2 => words!(u16),
        4 => words!(u32),
        8 => words!(u64),
        _ => {
            for chunk in bytes.chunks_exact_mut(unit) {
                chunk.reverse();
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Part {
    Imaginary,
    All,
}

/// Negates little-endian elements in place: the imaginary halves (a conjugate view) or every
/// part (a negative view). Floats flip their sign bit, as IEEE negation does; integers negate
/// with wraparound, as torch does.
fn negate_parts(bytes: &mut [u8], dtype: DType, part: Part) {
    let unit = dtype.swap_unit();
    let is_float = dtype.is_complex() || dtype.is_floating_point();
    for (i, chunk) in bytes.chunks_exact_mut(unit).enumerate() {
        if part == Part::Imaginary && i % 2 == 0 {
            continue;
        }
        if is_float {
            if let Some(top) = chunk.last_mut() {
                *top ^= 0x80;
            }
        } else {
            // Two's complement negation: invert and add one.
            let mut carry = true;
            for b in chunk.iter_mut() {
                let (v, c) = (!*b).overflowing_add(u8::from(carry));
                *b = v;
                carry = c;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negation_flips_float_signs_and_negates_integers() {
        let mut c = [1.5f32, 2.0, -3.0, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>();
        negate_parts(&mut c, DType::Complex64, Part::Imaginary);
        let back: Vec<f32> = c.chunks_exact(4).map(<f32 as Element>::from_le).collect();
        assert_eq!(back, vec![1.5, -2.0, -3.0, -4.0]);
        let mut ints = [5i32, -7].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
        negate_parts(&mut ints, DType::Int32, Part::All);
        assert_eq!(
            ints.chunks_exact(4).map(<i32 as Element>::from_le).collect::<Vec<_>>(),
            vec![-5, 7]
        );
    }

    /// `values` stored as 4-byte integers in `order`.
    fn int32_bytes(values: &[u32], order: ByteOrder) -> Vec<u8> {
        values
            .iter()
            .flat_map(|v| match order {
                ByteOrder::Little => v.to_le_bytes(),
                ByteOrder::Big => v.to_be_bytes(),
            })
            .collect()
    }

    #[test]
    fn transposed_views_read_in_tiles_match_element_by_element() {
        // 600 × 1000 float32 over a column-major storage: three tiles of rows, and the last
        // one partial; big-endian too (swapped after tiling); an offset.
        let (rows, columns, offset) = (600usize, 1000usize, 3usize);
        let values: Vec<u32> = (0..(rows * columns + offset) as u32).collect();
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let bytes = int32_bytes(&values, order);
            let layout = Layout {
                dtype: DType::Int32,
                shape: smallvec::smallvec![rows, columns],
                stride: smallvec::smallvec![1, rows],
                offset,
                numel: rows * columns,
            };
            let mut t = TensorView::without_data(layout, order);
            t.data = Some(SharedBytes::from(bytes));
            assert!(t.planes().is_some());
            let got = t.to_vec::<i32>().unwrap();
            let expected: Vec<i32> = (0..rows * columns)
                .map(|flat| (offset + flat / columns + (flat % columns) * rows) as i32)
                .collect();
            assert_eq!(got, expected, "{order:?}");
            let mut streamed = Vec::new();
            t.write_le_bytes(&mut streamed).unwrap();
            assert_eq!(streamed, t.to_le_bytes().unwrap().as_ref());
        }
    }

    #[test]
    fn narrowed_views_read_long_runs_in_place_and_short_ones_buffered() {
        // Rows of 3 × 2,000 int32 narrowed to columns 1..1,801 (runs of 7,200 bytes, handed on
        // as they are) and to 1..11 (runs of 40 bytes, gathered); big-endian ones are fixed up.
        let (rows, columns) = (3usize, 2000usize);
        let values: Vec<u32> = (0..(rows * columns) as u32).collect();
        for (width, order) in [
            (1800, ByteOrder::Little),
            (10, ByteOrder::Little),
            (1800, ByteOrder::Big),
        ] {
            let bytes = int32_bytes(&values, order);
            let layout = Layout {
                dtype: DType::Int32,
                shape: smallvec::smallvec![rows, width],
                stride: smallvec::smallvec![columns, 1],
                offset: 1,
                numel: rows * width,
            };
            let mut t = TensorView::without_data(layout, order);
            t.data = Some(SharedBytes::from(bytes));
            let expected: Vec<i32> = (0..rows * width)
                .map(|flat| (1 + (flat / width) * columns + flat % width) as i32)
                .collect();
            assert_eq!(t.to_vec::<i32>().unwrap(), expected, "{width} {order:?}");
            let mut streamed = Vec::new();
            t.write_le_bytes(&mut streamed).unwrap();
            assert_eq!(streamed, t.to_le_bytes().unwrap().as_ref());
        }
    }

    /// A view of `shape`, `stride` and `offset` over a storage of distinct-looking bytes.
    fn view_over(
        dtype: DType,
        shape: &[usize],
        stride: &[usize],
        offset: usize,
        order: ByteOrder,
    ) -> TensorView<'static> {
        let numel = shape.iter().product();
        let layout = Layout {
            dtype,
            shape: shape.into(),
            stride: stride.into(),
            offset,
            numel,
        };
        let needed = layout.bytes_needed().unwrap();
        let bytes: Vec<u8> = (0..needed).map(|i| (i.wrapping_mul(131) % 251) as u8).collect();
        let mut t = TensorView::without_data(layout, order);
        t.data = Some(SharedBytes::from(bytes));
        t
    }

    /// The logical little-endian bytes of `t` located one element at a time, then fixed up.
    fn element_by_element(t: &TensorView<'_>) -> Vec<u8> {
        let size = t.dtype.size();
        let storage = t.data.as_ref().unwrap().as_slice();
        let mut out = Vec::new();
        for flat in 0..t.numel() {
            let index = t.layout.storage_index(flat).unwrap();
            let mut element = storage[index * size..(index + 1) * size].to_vec();
            if t.byte_order == ByteOrder::Big {
                for unit in element.chunks_exact_mut(t.swap_unit) {
                    unit.reverse();
                }
            }
            out.extend_from_slice(&element);
        }
        if t.conj && t.dtype.is_complex() {
            negate_parts(&mut out, t.dtype, Part::Imaginary);
        }
        if t.neg {
            negate_parts(&mut out, t.dtype, Part::All);
        }
        out
    }

    /// `t` read every way (owned, streamed) against [`element_by_element`].
    fn assert_reads_match(t: &TensorView<'_>, what: &str) {
        let expected = element_by_element(t);
        assert_eq!(t.to_le_bytes().unwrap().as_ref(), &expected[..], "{what}");
        let mut streamed = Vec::new();
        t.write_le_bytes(&mut streamed).unwrap();
        assert_eq!(streamed, expected, "{what} streamed");
    }

    /// C-order strides of a contiguous tensor of `shape`.
    fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
        let mut stride = vec![1; shape.len()];
        for d in (0..shape.len().saturating_sub(1)).rev() {
            stride[d] = stride[d + 1] * shape[d + 1];
        }
        stride
    }

    #[test]
    fn transposes_of_every_element_size_and_shape_match_element_by_element() {
        let dtypes = [
            DType::UInt8,
            DType::Int16,
            DType::Float32,
            DType::Float64,
            DType::Complex128,
        ];
        // Odd sizes (whole 8 × 8 blocks and remainders), one row or column, rows of 4 KiB or
        // more (padded tile), several tiles of rows (300 rows of 4,096 bytes).
        let shapes = [
            (7, 13),
            (13, 7),
            (1, 9),
            (9, 1),
            (8, 8),
            (17, 33),
            (64, 70),
            (3, 600),
            (300, 4096),
        ];
        for dtype in dtypes {
            for (rows, columns) in shapes {
                if rows * columns * dtype.size() > 1 << 21 {
                    continue;
                }
                for (offset, order) in [(0, ByteOrder::Little), (5, ByteOrder::Little), (3, ByteOrder::Big)] {
                    // `m.t()` of a `columns × rows` matrix, and one narrowed to every other column.
                    for column_stride in [rows, rows + 2] {
                        let t = view_over(dtype, &[rows, columns], &[1, column_stride], offset, order);
                        assert_eq!(
                            t.planes().is_some(),
                            rows > 1 && columns > 1,
                            "{dtype} {rows}x{columns}"
                        );
                        assert_reads_match(
                            &t,
                            &format!("{dtype} {rows}x{columns} /{column_stride} +{offset} {order:?}"),
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn permuted_views_are_read_as_batches_of_transposes() {
        // (base shape, permutation): x.permute(0, 2, 1), x.permute(0, 3, 1, 2) (NHWC → NCHW),
        // x.permute(0, 2, 3, 1), x.permute(2, 0, 1), x.permute(1, 0, 2)[..] with a dense last
        // dimension (not a batch of transposes).
        let cases: [(&[usize], &[usize]); 6] = [
            (&[3, 5, 7], &[0, 2, 1]),
            (&[2, 9, 17], &[0, 2, 1]),
            (&[2, 3, 4, 5], &[0, 3, 1, 2]),
            (&[2, 3, 4, 11], &[0, 2, 3, 1]),
            (&[3, 4, 5], &[2, 0, 1]),
            (&[3, 4, 5], &[1, 0, 2]),
        ];
        for dtype in [
            DType::UInt8,
            DType::Float16,
            DType::Float32,
            DType::Int64,
            DType::Complex128,
        ] {
            for (base, permutation) in cases {
                let base_stride = contiguous_strides(base);
                let shape: Vec<usize> = permutation.iter().map(|&d| base[d]).collect();
                let stride: Vec<usize> = permutation.iter().map(|&d| base_stride[d]).collect();
                for (offset, order) in [(0, ByteOrder::Little), (2, ByteOrder::Big)] {
                    let t = view_over(dtype, &shape, &stride, offset, order);
                    assert_eq!(t.planes().is_some(), stride.last() != Some(&1), "{shape:?} {stride:?}");
                    assert_reads_match(&t, &format!("{dtype} {shape:?} {stride:?} +{offset} {order:?}"));
                }
            }
        }
        // A view that repeats its elements (stride 0 innermost) and size-1 dimensions of any
        // stride around the dense one.
        for (shape, stride) in [
            (&[6usize, 4][..], &[1usize, 0][..]),
            (&[1, 5, 1, 7], &[99, 1, 1000, 5]),
            (&[5, 1, 7], &[1, 1, 5]),
        ] {
            let t = view_over(DType::Float32, shape, stride, 1, ByteOrder::Little);
            assert!(t.planes().is_some(), "{shape:?} {stride:?}");
            assert_reads_match(&t, &format!("{shape:?} {stride:?}"));
        }
    }

    #[test]
    fn transposed_views_fix_up_negative_and_conjugate_views() {
        for (dtype, conj, neg) in [
            (DType::Float32, false, true),
            (DType::Int32, false, true),
            (DType::Complex64, true, false),
            (DType::Complex128, true, true),
        ] {
            for order in [ByteOrder::Little, ByteOrder::Big] {
                let mut t = view_over(dtype, &[2, 9, 11], &[99, 1, 9], 4, order);
                t.conj = conj;
                t.neg = neg;
                assert_reads_match(&t, &format!("{dtype} conj={conj} neg={neg} {order:?}"));
            }
        }
        let t = view_over(DType::Float32, &[7, 13], &[1, 7], 0, ByteOrder::Little);
        let expected: Vec<f32> = element_by_element(&t)
            .chunks_exact(4)
            .map(<f32 as Element>::from_le)
            .collect();
        let got = t.to_vec::<f32>().unwrap();
        assert_eq!(
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
}

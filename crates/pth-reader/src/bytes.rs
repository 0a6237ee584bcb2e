//! [`SharedBytes`]: a cheaply clonable byte range, borrowed or reference-counted.

#![forbid(unsafe_code)]

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// What keeps shared bytes alive: an owner of bytes (a `Vec<u8>`, a memory map), shareable
/// between threads.
pub(crate) trait Backing: Send + Sync {
    /// All the bytes.
    fn bytes(&self) -> &[u8];

    /// Lets the pages holding `range` of [`bytes`](Backing::bytes) leave this process's
    /// resident memory, when they are a file's mapped pages (they are read again from the page
    /// cache, the same bytes, if touched again). Advisory: nothing for bytes in memory.
    fn release(&self, _range: Range<usize>) {}

    /// Copies the bytes at `offset` into `out`, all of them or `None`. A mapped file reads
    /// them from the file (a positioned read) without touching its pages.
    fn read_at(&self, offset: usize, out: &mut [u8]) -> Option<()> {
        let end = offset.checked_add(out.len())?;
        out.copy_from_slice(self.bytes().get(offset..end)?);
        Some(())
    }

    /// Whether the bytes are a mapped file's: touching a page the first time costs a page
    /// fault, and a few scattered bytes are cheaper to [`read`](Backing::read_at).
    fn is_mapped(&self) -> bool {
        false
    }
}

/// Bytes in memory, owned by any `AsRef<[u8]>`.
struct InMemory<T>(T);

impl<T: AsRef<[u8]> + Send + Sync> Backing for InMemory<T> {
    fn bytes(&self) -> &[u8] {
        self.0.as_ref()
    }
}

type Owner = Arc<dyn Backing>;

/// A range of bytes that is either borrowed for `'data` or kept alive by reference counting.
///
/// Checkpoints and tensor views hold their bytes as `SharedBytes`, so that a checkpoint opened
/// over a borrowed slice costs nothing, one opened over a memory map or a `Vec` is
/// `'static`, and a view of a tensor can outlive the checkpoint it came from. Cloning and
/// slicing never copy the bytes.
///
/// ```
/// use pth_reader::SharedBytes;
/// let owned = SharedBytes::from(vec![1u8, 2, 3, 4]);
/// let tail = owned.slice(2..4).unwrap();
/// assert_eq!(tail.as_slice(), &[3, 4]);
/// let borrowed = SharedBytes::from(&b"abc"[..]);
/// assert_eq!(borrowed.len(), 3);
/// ```
#[derive(Clone)]
pub struct SharedBytes<'data> {
    source: Source<'data>,
    range: Range<usize>,
}

#[derive(Clone)]
enum Source<'data> {
    Borrowed(&'data [u8]),
    Shared(Owner),
}

impl<'data> SharedBytes<'data> {
    /// Shares bytes owned by `owner` (a memory map, a `Vec<u8>`, ...).
    pub fn from_owner(owner: impl AsRef<[u8]> + Send + Sync + 'static) -> SharedBytes<'static> {
        SharedBytes::from_backing(InMemory(owner))
    }

    /// Shares the bytes of `backing` (a memory map that can release its pages).
    pub(crate) fn from_backing(backing: impl Backing + 'static) -> SharedBytes<'static> {
        let len = backing.bytes().len();
        SharedBytes {
            source: Source::Shared(Arc::new(backing)),
            range: 0..len,
        }
    }

    /// Copies the bytes at `offset` of these bytes into `out`: all of them, or `None` when
    /// they run past the end. For a mapped file, a positioned read that leaves the map's pages
    /// untouched (see [`Backing::read_at`]).
    pub(crate) fn read_at(&self, offset: usize, out: &mut [u8]) -> Option<()> {
        let end = offset.checked_add(out.len())?;
        if end > self.len() {
            return None;
        }
        match &self.source {
            Source::Borrowed(b) => {
                out.copy_from_slice(b.get(self.range.start + offset..self.range.start + end)?);
                Some(())
            }
            Source::Shared(owner) => owner.read_at(self.range.start + offset, out),
        }
    }

    /// Whether these bytes are a mapped file's (see [`Backing::is_mapped`]).
    pub(crate) fn is_mapped(&self) -> bool {
        matches!(&self.source, Source::Shared(owner) if owner.is_mapped())
    }

    /// Lets the pages holding `range` of these bytes leave resident memory when they are a
    /// mapped file's (see [`Backing::release`]); the bytes stay readable. Nothing otherwise.
    pub(crate) fn release_pages(&self, range: Range<usize>) {
        if let Source::Shared(owner) = &self.source {
            let start = self.range.start.saturating_add(range.start).min(self.range.end);
            let end = self.range.start.saturating_add(range.end).clamp(start, self.range.end);
            owner.release(start..end);
        }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        let all: &[u8] = match &self.source {
            Source::Borrowed(b) => b,
            Source::Shared(owner) => owner.bytes(),
        };
        all.get(self.range.clone()).unwrap_or_default()
    }

    /// The bytes, borrowed for `'data` when they are borrowed; `None` when reference-counted.
    pub fn as_borrowed(&self) -> Option<&'data [u8]> {
        match self.source {
            Source::Borrowed(b) => b.get(self.range.clone()),
            Source::Shared(_) => None,
        }
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// A sub-range sharing the same bytes, or `None` if `range` is out of bounds.
    pub fn slice(&self, range: Range<usize>) -> Option<SharedBytes<'data>> {
        if range.start > range.end || range.end > self.len() {
            return None;
        }
        let start = self.range.start + range.start;
        Some(SharedBytes {
            source: self.source.clone(),
            range: start..start + range.len(),
        })
    }

    /// Zero bytes that no other `SharedBytes` shares: a new storage without elements is its own
    /// storage (its address tells it apart), as torch's are.
    pub(crate) fn fresh_empty() -> SharedBytes<'static> {
        let one = SharedBytes::from(vec![0u8]);
        one.slice(0..0).unwrap_or(one)
    }

    /// A sub-range given as 64-bit offset and length (as archives declare them).
    pub(crate) fn slice_u64(&self, offset: u64, len: u64) -> Option<SharedBytes<'data>> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.slice(start..end)
    }
}

impl<'data> From<&'data [u8]> for SharedBytes<'data> {
    fn from(bytes: &'data [u8]) -> Self {
        SharedBytes {
            source: Source::Borrowed(bytes),
            range: 0..bytes.len(),
        }
    }
}

impl<'data> From<&'data Vec<u8>> for SharedBytes<'data> {
    fn from(bytes: &'data Vec<u8>) -> Self {
        SharedBytes::from(bytes.as_slice())
    }
}

impl From<Vec<u8>> for SharedBytes<'static> {
    fn from(bytes: Vec<u8>) -> Self {
        SharedBytes::from_owner(bytes)
    }
}

impl AsRef<[u8]> for SharedBytes<'_> {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl fmt::Debug for SharedBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.source {
            Source::Borrowed(_) => "borrowed",
            Source::Shared(_) => "shared",
        };
        write!(f, "SharedBytes({kind}, {} bytes)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_nest_and_refuse_out_of_range() {
        let b = SharedBytes::from(vec![0u8, 1, 2, 3, 4, 5]);
        let s = b.slice(1..5).and_then(|s| s.slice(1..3));
        assert_eq!(s.map(|s| s.as_slice().to_vec()), Some(vec![2, 3]));
        assert!(b.slice(4..7).is_none());
        assert!(b.slice_u64(u64::MAX, 2).is_none());
        let data = [9u8, 8, 7];
        let borrowed = SharedBytes::from(&data[..]).slice(1..3);
        assert_eq!(borrowed.and_then(|b| b.as_borrowed()), Some(&data[1..3]));
    }
}

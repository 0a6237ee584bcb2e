//! A bounds-checked byte cursor: the only way parsing code reads input bytes.
//!
//! Every read either returns the requested bytes or `None` when the input ends first, so a
//! declared length can never make the parser index past the end or allocate for bytes that are
//! not there.

#![forbid(unsafe_code)]

/// A read position over a borrowed byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The unconsumed bytes, without consuming them.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    /// The next `n` bytes, or `None` if fewer remain.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, _) = self.rest().split_at_checked(n)?;
        self.pos += n;
        Some(head)
    }

    /// Like [`Cursor::take`] with a length from the input (any integer width).
    pub(crate) fn take_u64(&mut self, n: u64) -> Option<&'a [u8]> {
        self.take(usize::try_from(n).ok()?)
    }

    /// The next `N` bytes as an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    pub(crate) fn u16_le(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    pub(crate) fn u32_le(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    pub(crate) fn i32_le(&mut self) -> Option<i32> {
        self.array().map(i32::from_le_bytes)
    }

    pub(crate) fn u64_le(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    pub(crate) fn i64_le(&mut self) -> Option<i64> {
        self.array().map(i64::from_le_bytes)
    }

    pub(crate) fn f64_be(&mut self) -> Option<f64> {
        self.array().map(f64::from_be_bytes)
    }

    /// The bytes up to the next `\n` (excluded); the newline is consumed.
    pub(crate) fn line(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest();
        let end = rest.iter().position(|&b| b == b'\n')?;
        let line = rest.get(..end)?;
        self.pos += end + 1;
        Some(line)
    }

    /// Moves the position forward by `n` bytes.
    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_the_end_instead_of_panicking() {
        let mut c = Cursor::new(b"ab\ncd");
        assert_eq!(c.line(), Some(&b"ab"[..]));
        assert_eq!(c.u16_le(), Some(u16::from_le_bytes(*b"cd")));
        assert_eq!(c.u8(), None);
        assert_eq!(c.take(0), Some(&[][..]));
        assert_eq!(Cursor::new(b"x").take_u64(u64::MAX), None);
        assert_eq!(Cursor::new(b"no newline").line(), None);
    }
}

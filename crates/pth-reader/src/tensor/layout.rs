//! Shape, stride and storage offset: validated once, then trusted.

use std::fmt;

use crate::{DType, Limits};

/// Why torch's `set_` would refuse a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LayoutError {
    /// Sizes and strides of different lengths.
    RankMismatch { sizes: usize, strides: usize },
    /// More dimensions than `max_dims`.
    TooManyDimensions { dims: usize, max: u64 },
    /// A negative size, stride or offset.
    Negative { what: &'static str, value: i64 },
    /// The number of elements overflows.
    TooManyElements,
    /// The last byte reached overflows.
    ExtentOverflows,
    /// An element lies outside the storage.
    OutsideStorage {
        end: usize,
        available: usize,
        offset: usize,
        shape: Box<[usize]>,
        stride: Box<[usize]>,
    },
    /// The storage's size does not fit this machine's addresses.
    StorageTooLarge,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::RankMismatch { sizes, strides } => write!(f, "{sizes} sizes but {strides} strides"),
            LayoutError::TooManyDimensions { dims, max } => write!(f, "{dims} dimensions (at most {max})"),
            LayoutError::Negative { what, value } => write!(f, "negative {what} {value}"),
            LayoutError::TooManyElements => f.write_str("the number of elements overflows"),
            LayoutError::ExtentOverflows => f.write_str("the extent of the tensor overflows"),
            LayoutError::OutsideStorage {
                end,
                available,
                offset,
                shape,
                stride,
            } => write!(
                f,
                "elements reach byte {end} of a {available}-byte storage (offset {offset}, shape {shape:?}, stride {stride:?})"
            ),
            LayoutError::StorageTooLarge => f.write_str("the storage is larger than memory"),
        }
    }
}

/// Sizes or strides of a tensor: inline up to four dimensions (nearly every tensor of a
/// checkpoint), so that a layout costs no allocation of its own.
pub(crate) type Extents = smallvec::SmallVec<[usize; 4]>;

/// A tensor's dtype and its position in a storage, checked against that storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) dtype: DType,
    pub(crate) shape: Extents,
    pub(crate) stride: Extents,
    /// In elements of `dtype`.
    pub(crate) offset: usize,
    pub(crate) numel: usize,
}

impl Layout {
    /// Checks a layout as torch's `set_` does, with checked arithmetic: sizes, strides and offset
    /// non-negative, as many strides as sizes, and — unless the tensor is empty — every element
    /// reached inside a storage of `storage_bytes` bytes (`None`: a tensor without storage).
    pub(crate) fn validate(
        dtype: DType,
        shape: &[i64],
        stride: &[i64],
        offset: i64,
        storage_bytes: Option<usize>,
        limits: &Limits,
    ) -> Result<Layout, LayoutError> {
        if shape.len() != stride.len() {
            return Err(LayoutError::RankMismatch {
                sizes: shape.len(),
                strides: stride.len(),
            });
        }
        if shape.len() as u64 > limits.max_dims {
            return Err(LayoutError::TooManyDimensions {
                dims: shape.len(),
                max: limits.max_dims,
            });
        }
        let to_usize = |value: i64, what| usize::try_from(value).map_err(|_| LayoutError::Negative { what, value });
        let extents = |values: &[i64], what| {
            values
                .iter()
                .map(|&v| to_usize(v, what))
                .collect::<Result<Extents, _>>()
        };
        let shape = extents(shape, "size")?;
        let stride = extents(stride, "stride")?;
        let offset = to_usize(offset, "storage offset")?;
        let numel = shape
            .iter()
            .try_fold(1usize, |n, &s| n.checked_mul(s))
            .ok_or(LayoutError::TooManyElements)?;
        let layout = Layout {
            dtype,
            shape,
            stride,
            offset,
            numel,
        };
        if let (Some(available), true) = (storage_bytes, numel > 0) {
            let end = layout.byte_end().ok_or(LayoutError::ExtentOverflows)?;
            if end > available {
                return Err(LayoutError::OutsideStorage {
                    end,
                    available,
                    offset,
                    shape: layout.shape.to_vec().into_boxed_slice(),
                    stride: layout.stride.to_vec().into_boxed_slice(),
                });
            }
        }
        Ok(layout)
    }

    /// The bytes of storage the tensor needs: none when it is empty, else one past the last
    /// byte reached.
    pub(crate) fn bytes_needed(&self) -> Option<usize> {
        if self.numel == 0 {
            return Some(0);
        }
        self.byte_end()
    }

    /// One past the last byte reached: `(offset + Σ (size−1)·stride + 1) × element size`.
    fn byte_end(&self) -> Option<usize> {
        let mut last = self.offset;
        for (&size, &stride) in self.shape.iter().zip(self.stride.iter()) {
            last = last.checked_add(size.checked_sub(1)?.checked_mul(stride)?)?;
        }
        last.checked_add(1)?.checked_mul(self.dtype.size())
    }

    /// Whether the elements are laid out in C order without gaps, as torch's
    /// `is_contiguous()` defines it (strides of size-1 dimensions do not matter).
    pub(crate) fn is_contiguous(&self) -> bool {
        let mut expected = 1usize;
        for (&size, &stride) in self.shape.iter().zip(self.stride.iter()).rev() {
            if size != 1 && stride != expected {
                return self.numel == 0;
            }
            expected = expected.saturating_mul(size);
        }
        true
    }

    /// Calls `f(first, count)` for every run of elements that are adjacent in the storage, in C
    /// order: `count` elements starting at storage element `first`. The innermost dimension
    /// forms one run when its stride is 1; otherwise every element is a run of one. Stops at
    /// the first error `f` returns.
    pub(crate) fn try_for_each_run<E>(&self, mut f: impl FnMut(usize, usize) -> Result<(), E>) -> Result<(), E> {
        if self.numel == 0 {
            return Ok(());
        }
        // The innermost dimension is walked as runs when it is dense.
        let (outer_shape, outer_stride, run) = match (self.shape.split_last(), self.stride.split_last()) {
            (Some((&last, shape)), Some((&1, stride))) => (shape, stride, last),
            _ => (&self.shape[..], &self.stride[..], 1),
        };
        // Odometer over the outer dimensions; validation proved every index fits.
        let rank = outer_shape.len();
        let mut counter = vec![0usize; rank];
        let mut index = self.offset;
        loop {
            f(index, run)?;
            let mut dim = rank;
            loop {
                if dim == 0 {
                    return Ok(());
                }
                dim -= 1;
                let (Some(c), Some(&size), Some(&stride)) =
                    (counter.get_mut(dim), outer_shape.get(dim), outer_stride.get(dim))
                else {
                    return Ok(());
                };
                *c += 1;
                // Wrapping: a size-1 dimension may carry any stride; the result is exact anyway.
                index = index.wrapping_add(stride);
                if *c < size {
                    break;
                }
                index = index.wrapping_sub(stride.wrapping_mul(size));
                *c = 0;
            }
        }
    }

    /// The storage element of the element at flat (C-order) position `flat`, if in range.
    pub(crate) fn storage_index(&self, flat: usize) -> Option<usize> {
        if flat >= self.numel {
            return None;
        }
        let mut rest = flat;
        let mut index = self.offset;
        for (&size, &stride) in self.shape.iter().zip(self.stride.iter()).rev() {
            let i = rest % size;
            rest /= size;
            index = index.checked_add(i.checked_mul(stride)?)?;
        }
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(shape: &[i64], stride: &[i64], offset: i64, bytes: usize) -> Result<Layout, LayoutError> {
        Layout::validate(DType::Float32, shape, stride, offset, Some(bytes), &Limits::default())
    }

    #[test]
    fn views_inside_the_storage_are_accepted() {
        let t = layout(&[2, 3], &[1, 2], 0, 24).unwrap_or_else(|e| panic!("{e}"));
        assert!(!t.is_contiguous());
        let mut seen = Vec::new();
        t.try_for_each_run(|i, n| {
            seen.push((i, n));
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(seen, vec![(0, 1), (2, 1), (4, 1), (1, 1), (3, 1), (5, 1)]);
        assert_eq!(t.storage_index(4), Some(3));
        let rows = layout(&[2, 2], &[3, 1], 1, 24).unwrap();
        let mut runs = Vec::new();
        rows.try_for_each_run(|i, n| {
            runs.push((i, n));
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(runs, vec![(1, 2), (4, 2)]);
        assert_eq!(rows.storage_index(2), Some(4));
        assert!(layout(&[4], &[0], 3, 16).is_ok(), "expanded");
        assert!(
            layout(&[0, 5], &[5, 1], 1000, 0).is_ok(),
            "empty tensors may point anywhere"
        );
        assert!(layout(&[], &[], 2, 12).is_ok_and(|l| l.numel == 1));
    }

    #[test]
    fn out_of_bounds_negative_and_overflowing_layouts_are_refused() {
        assert!(layout(&[2, 3], &[3, 1], 1, 24).is_err(), "one element past the end");
        assert!(layout(&[2], &[-1], 0, 8).is_err());
        assert!(layout(&[2], &[1], -1, 8).is_err());
        assert!(layout(&[2], &[1, 1], 0, 8).is_err());
        assert!(layout(&[1 << 40, 1 << 40], &[1, 1], 0, 8).is_err());
        assert!(layout(&[2, 2], &[i64::MAX, 1], 0, 8).is_err());
    }

    #[test]
    fn contiguity_ignores_size_one_strides() {
        assert!(layout(&[1, 3], &[7, 1], 0, 12).is_ok_and(|l| l.is_contiguous()));
        assert!(layout(&[2, 1, 3], &[3, 99, 1], 0, 24).is_ok_and(|l| l.is_contiguous()));
    }
}

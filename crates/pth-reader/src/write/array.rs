//! `ndarray` arrays as tensors of a [`Builder`] (feature `ndarray`), without copying.

#![forbid(unsafe_code)]

use ndarray::{ArrayView, Dimension};

use super::builder::Builder;
use crate::tensor::{ByteOrder, Element};
use crate::{DType, Error, ErrorKind, Result, SharedBytes};

const NATIVE: ByteOrder = if cfg!(target_endian = "big") {
    ByteOrder::Big
} else {
    ByteOrder::Little
};

impl<'data> Builder<'data> {
    /// A tensor over an array's memory, borrowed, with the array's shape and strides: C or
    /// Fortran order, or any other layout whose elements fill one block of memory; the dtype is
    /// `T`'s (`f32` → float32, `[f32; 2]` → complex64, …). Arrays with gaps or negative strides
    /// are refused (copy them with `as_standard_layout()` first).
    ///
    /// ```
    /// # fn main() -> Result<(), pth_reader::Error> {
    /// use ndarray::array;
    /// use pth_reader::{write::{Builder, SaveOptions}, Checkpoint, Options};
    /// let a = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
    /// let mut b = Builder::new();
    /// let t = b.array(a.t())?;                            // a transposed view, no copy
    /// let root = b.state_dict(&[("t", t)])?;
    /// let file = b.save_to(root, Vec::new(), &SaveOptions::default())?;
    /// let ckpt = Checkpoint::from_bytes(&file[..], &Options::default())?;
    /// assert_eq!(ckpt.tensor("t")?.stride(), [1, 3]);
    /// assert_eq!(ckpt.tensor("t")?.to_vec::<f32>()?, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    /// # Ok(()) }
    /// ```
    pub fn array<T, D>(&mut self, array: ArrayView<'data, T, D>) -> Result<crate::ValueId>
    where
        T: Element + bytemuck::Pod,
        D: Dimension,
    {
        let dtype = DType::ALL
            .iter()
            .copied()
            .find(|&d| T::accepts(d))
            .ok_or(Error::from(ErrorKind::Unsupported {
                what: format!("arrays of {}", T::NAME),
            }))?;
        let shape = array.shape().to_vec();
        let strides = array
            .strides()
            .iter()
            .map(|&s| usize::try_from(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                Error::from(ErrorKind::Unsupported {
                    what: "an array with negative strides".into(),
                })
            })?;
        let slice = array
            .to_slice_memory_order()
            .ok_or(Error::from(ErrorKind::Unsupported {
                what: "an array whose elements do not fill one block of memory".into(),
            }))?;
        let bytes: &'data [u8] = bytemuck::cast_slice(slice);
        let storage = self.storage_in(dtype, SharedBytes::from(bytes), NATIVE)?;
        self.strided(storage, &shape, &strides, 0)
    }
}

//! `ndarray` access to tensors (feature `ndarray`).

use ndarray::{ArrayD, ArrayViewD, IxDyn, ShapeBuilder};

use super::element::Element;
use super::view::{ByteOrder, TensorView};
use crate::{Error, ErrorKind, Result};

const NATIVE: ByteOrder = if cfg!(target_endian = "big") {
    ByteOrder::Big
} else {
    ByteOrder::Little
};

impl TensorView<'_> {
    /// A zero-copy `ndarray` view with the tensor's own strides (any strides, including 0 for
    /// expanded tensors).
    ///
    /// Fails with [`Error::NotBorrowable`] when the bytes cannot be borrowed as `T`: storage
    /// not aligned for `T` (nested archives, such as the `.pth` members of an SB3 zip, place
    /// storages at arbitrary offsets), a foreign byte order, or a conjugate/negative view.
    /// [`to_array`](Self::to_array) always works.
    ///
    /// ```
    /// # fn main() -> Result<(), pth_reader::Error> {
    /// let ckpt = pth_reader::Checkpoint::open(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/torch/checkpoint.pth"), &Default::default())?;
    /// let w = ckpt.tensor("model.0.weight")?;
    /// let view = w.as_array::<f32>()?;
    /// assert_eq!(view.shape(), w.shape());
    /// # Ok(()) }
    /// ```
    pub fn as_array<T: Element + bytemuck::Pod>(&self) -> Result<ArrayViewD<'_, T>> {
        if !T::accepts(self.dtype) {
            return Err(Error::from(ErrorKind::DTypeMismatch {
                requested: T::NAME,
                actual: self.dtype,
            }));
        }
        let refuse = |reason| {
            Error::from(ErrorKind::NotBorrowable {
                requested: T::NAME,
                reason,
            })
        };
        let storage = self.data.as_ref().ok_or(Error::from(ErrorKind::NoData {
            reason: "a meta tensor has no storage",
        }))?;
        if self.byte_order != NATIVE && self.swap_unit > 1 {
            return Err(refuse("the archive's byte order is not this machine's"));
        }
        if self.conj || self.neg {
            return Err(refuse("a conjugate or negative view must be resolved by copying"));
        }
        let size = std::mem::size_of::<T>();
        let bytes = storage.as_slice();
        let usable = bytes.get(..bytes.len() - bytes.len() % size).unwrap_or_default();
        let elements: &[T] =
            bytemuck::try_cast_slice(usable).map_err(|_| refuse("the storage is not aligned for this type"))?;
        let elements = if self.numel() == 0 {
            &[]
        } else {
            elements.get(self.storage_offset()..).unwrap_or_default()
        };
        let shape = IxDyn(self.shape()).strides(IxDyn(self.stride()));
        ArrayViewD::from_shape(shape, elements).map_err(|_| refuse("ndarray refused the layout"))
    }

    /// An owned, C-ordered `ndarray` of the elements as `T` (this tensor's dtype).
    pub fn to_array<T: Element>(&self) -> Result<ArrayD<T>> {
        let values = self.to_vec::<T>()?;
        ArrayD::from_shape_vec(IxDyn(self.shape()), values).map_err(|_| {
            Error::from(ErrorKind::Unsupported {
                what: "a shape ndarray cannot represent".to_owned(),
            })
        })
    }

    /// An owned `f32` array, converting any real dtype (see [`to_f32_vec`](Self::to_f32_vec)).
    pub fn to_f32_array(&self) -> Result<ArrayD<f32>> {
        let values = self.to_f32_vec()?;
        ArrayD::from_shape_vec(IxDyn(self.shape()), values).map_err(|_| {
            Error::from(ErrorKind::Unsupported {
                what: "a shape ndarray cannot represent".to_owned(),
            })
        })
    }
}

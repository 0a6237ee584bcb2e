//! The pickle memo (`PUT`/`GET`/`MEMOIZE`): Python's dict from memo keys to values.
//!
//! Picklers number memo entries 0, 1, 2, ... in order, so the keys met are nearly always dense:
//! they are kept in a vector indexed by key, which costs no hashing per entry (a torch state
//! dict puts eight entries per tensor). A key far beyond the vector (a hostile or hand-made
//! pickle: `LONG_BINPUT 4000000000`) goes to a hash map instead, so the vector never grows
//! past twice the number of entries plus [`DENSE_SLACK`] — bounded by `max_memo` as the map is.

use super::tree::ValueId;
use crate::hashing::FastMap;

/// How far past twice its entries the dense part may grow to take a key.
const DENSE_SLACK: u64 = 1024;

/// Memo keys to values, as Python's dict holds them (a key put again takes the new value).
#[derive(Debug, Default)]
pub(crate) struct Memo {
    /// Values of keys `0..dense.len()` (`None`: not put, or put in `sparse` before the vector
    /// reached it).
    dense: Vec<Option<ValueId>>,
    /// Values of the other keys.
    sparse: FastMap<u64, ValueId>,
    /// Distinct keys put: Python's `len(memo)` (`MEMOIZE` puts under that key).
    len: u64,
}

impl Memo {
    /// A memo with room for the entries a pickle of `pickle_len` bytes typically puts (one per
    /// 12 bytes in a torch state dict; at most 2^20: 8 MiB of address space, whose pages
    /// nothing touches until entries are put), so that it does not grow by copying itself
    /// many times. A refusal only means growing as needed.
    pub(crate) fn for_pickle(pickle_len: usize) -> Memo {
        let mut memo = Memo::default();
        let _ = memo.dense.try_reserve_exact((pickle_len / 12).min(1 << 20));
        memo
    }

    /// Number of distinct keys put.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The value put under `key` last.
    pub(crate) fn get(&self, key: u64) -> Option<ValueId> {
        let dense = usize::try_from(key)
            .ok()
            .and_then(|k| self.dense.get(k))
            .copied()
            .flatten();
        dense.or_else(|| self.sparse.get(&key).copied())
    }

    /// Puts `value` under `key`; `false` (and nothing put) when the dense part could not grow
    /// to take a key it should take (memory refused by the allocator).
    pub(crate) fn put(&mut self, key: u64, value: ValueId) -> bool {
        let reach = self.len.saturating_mul(2).saturating_add(DENSE_SLACK);
        let dense_slot = match usize::try_from(key) {
            Ok(k) if k < self.dense.len() => Some(k),
            Ok(k) if key < reach => {
                let grown = k
                    .saturating_add(1)
                    .max(self.dense.len().saturating_mul(2))
                    .min(reach as usize);
                if self.dense.try_reserve_exact(grown - self.dense.len()).is_err() {
                    return false;
                }
                self.dense.resize(grown, None);
                Some(k)
            }
            _ => None,
        };
        let new = match dense_slot.and_then(|k| self.dense.get_mut(k)) {
            Some(slot) => {
                // A key put in the map before the vector reached it is moved out of the map.
                let before =
                    slot.replace(value).is_some() || (!self.sparse.is_empty() && self.sparse.remove(&key).is_some());
                !before
            }
            None => self.sparse.insert(key, value).is_none(),
        };
        if new {
            self.len += 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_dense_or_not_behave_as_a_dict() {
        let mut memo = Memo::default();
        assert!(memo.put(0, ValueId(10)));
        assert!(memo.put(5000, ValueId(11))); // beyond the dense reach: the map
        assert!(memo.put(1, ValueId(12)));
        assert_eq!(memo.len(), 3);
        assert_eq!(memo.get(5000), Some(ValueId(11)));
        assert_eq!(memo.get(2), None);
        assert_eq!(memo.get(u64::MAX), None);
        assert!(memo.put(0, ValueId(13))); // put again: replaced, not counted
        assert_eq!((memo.get(0), memo.len()), (Some(ValueId(13)), 3));
        // Fill until the dense part reaches 5000: the key moves over, still one entry.
        for k in 2..3000 {
            assert!(memo.put(k, ValueId(k as u32)));
        }
        assert_eq!(memo.get(5000), Some(ValueId(11)));
        let len = memo.len();
        assert!(memo.put(5000, ValueId(14)));
        assert_eq!((memo.get(5000), memo.len()), (Some(ValueId(14)), len));
        assert!(memo.put(u64::MAX, ValueId(15)));
        assert_eq!(memo.get(u64::MAX), Some(ValueId(15)));
    }

    #[test]
    fn a_far_key_does_not_grow_the_vector() {
        let mut memo = Memo::default();
        assert!(memo.put(u64::from(u32::MAX), ValueId(1)));
        assert!(memo.dense.len() <= DENSE_SLACK as usize);
    }
}

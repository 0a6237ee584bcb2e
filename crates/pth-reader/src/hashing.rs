//! The hash maps and sets of this crate: `std`'s, with foldhash's seeded hasher in place of
//! SipHash.
//!
//! Opening an archive of 20,000 tensors inserts hundreds of thousands of short keys (memo
//! indices, value ids, dict keys, record names); SipHash made those inserts a large part of the
//! time. foldhash is several times faster on such keys and still seeded at random per process
//! and per map, so a file cannot be crafted to make its keys collide (no hash flooding, which an
//! unseeded hasher such as FxHash would allow: a reader of files from strangers needs that).

#![forbid(unsafe_code)]

/// A `HashMap` with foldhash's seeded hasher.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A `HashSet` with foldhash's seeded hasher.
pub(crate) type FastSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// Positions in a list the caller keeps (of names, say), found by a key of each element: a
/// hash table of positions alone, so that indexing 20,000 names copies none of them. The
/// caller hashes keys with [`hash`](Self::hash) and says which position holds an equal key.
#[derive(Debug, Clone)]
pub(crate) struct PositionIndex {
    positions: hashbrown::HashTable<usize>,
    hasher: foldhash::fast::RandomState,
}

impl PositionIndex {
    /// An empty index with room for `n` positions (`n`: the length of a list that exists).
    pub(crate) fn with_capacity(n: usize) -> PositionIndex {
        PositionIndex {
            positions: hashbrown::HashTable::with_capacity(n),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// The hash of a key (seeded per index).
    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    /// The position with key hash `hash` for which `is_key` holds.
    pub(crate) fn find(&self, hash: u64, mut is_key: impl FnMut(usize) -> bool) -> Option<usize> {
        self.positions.find(hash, |&at| is_key(at)).copied()
    }

    /// The seeded state [`hash`](Self::hash) hashes with (its `hash_one` of a key's bytes is
    /// `hash` of them), for a hash computed where the index is borrowed (`hash_at` of
    /// [`find_or_insert`](Self::find_or_insert)).
    pub(crate) fn seed(&self) -> foldhash::fast::RandomState {
        self.hasher.clone()
    }

    /// The position with key hash `hash` for which `is_key` holds, if there is one; otherwise
    /// adds `position` and returns `None` (`hash_at` gives the key hash of a position already
    /// in: the table rehashes them when it grows). One probe of the table where
    /// [`find`](Self::find) then [`insert`](Self::insert) take two.
    pub(crate) fn find_or_insert(
        &mut self,
        hash: u64,
        position: usize,
        mut is_key: impl FnMut(usize) -> bool,
        hash_at: impl Fn(usize) -> u64,
    ) -> Option<usize> {
        match self.positions.entry(hash, |&at| is_key(at), |&at| hash_at(at)) {
            hashbrown::hash_table::Entry::Occupied(found) => Some(*found.get()),
            hashbrown::hash_table::Entry::Vacant(room) => {
                room.insert(position);
                None
            }
        }
    }

    /// Adds `position`, whose key hashes to `hash` and is not in the index yet; `key_at` gives
    /// the key of a position already in (the table rehashes them when it grows).
    pub(crate) fn insert<K: AsRef<[u8]>>(&mut self, hash: u64, position: usize, key_at: impl Fn(usize) -> K) {
        use std::hash::BuildHasher;
        let hasher = &self.hasher;
        self.positions
            .insert_unique(hash, position, |&at| hasher.hash_one(key_at(at).as_ref()));
    }
}

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

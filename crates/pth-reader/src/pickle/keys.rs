//! Dict keys and set elements as Python compares them.
//!
//! Python merges `d[1] = a; d[1.0] = b; d[True] = c` into one item (`1 == 1.0 == True ==
//! complex(1, 0)` and their hashes agree), keeps two NaN objects apart (NaN is not equal to
//! itself) but treats one NaN object met twice as one key (dict lookups try identity first),
//! compares tuples element by element and never lets `'a'` equal `b'a'`. Each hashable node is
//! given a [`KeyId`] once — equal values share one — so that inserting into a dict costs one
//! hash of the key however often it is inserted: a million `SETITEM`s of one 1 MiB string
//! hash it once, as CPython's cached string hash does.

use std::hash::{BuildHasher, Hash, Hasher};

use smallvec::SmallVec;

use super::tree::{Node, Tree, ValueId};
use crate::hashing::FastMap;

/// Keys of at most this many bytes are classified each time they are met rather than
/// remembered by node (see [`key_of`]).
const CHEAP_KEY_BYTES: usize = 64;

/// The equality class of a hashable value: equal keys have equal ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct KeyId(u32);

/// The classes found so far, by node and by content hash.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyTable {
    of_node: FastMap<ValueId, KeyId>,
    /// Content hash → classes with that hash and the node that first had each (nearly
    /// always one: kept inline).
    classes: FastMap<u64, SmallVec<[(KeyId, ValueId); 1]>>,
    next: u32,
    /// Seeded per table, as every map of this crate is (see `crate::hashing`): a file cannot
    /// choose keys whose hashes collide.
    hasher: foldhash::fast::RandomState,
}

/// A value that Python refuses as a dict key (`unhashable type: 'list'`).
#[derive(Debug)]
pub(crate) struct Unhashable(pub(crate) String);

/// What decides a hashable value's equality.
#[derive(PartialEq)]
enum Shape<'a> {
    None,
    Int(i64),
    Big(Vec<u8>),
    Float(u64),
    Complex(u64, u64),
    Str(&'a [u8]),
    Bytes(&'a [u8]),
    Tuple(Vec<KeyId>),
    FrozenSet(Vec<KeyId>),
    Global(&'a str, &'a str),
    /// Equal only to itself: NaN, tensors, storages, inert objects.
    Identity,
}

/// The key id of `id`, computing (and caching) those of the tuples and frozensets it holds.
pub(crate) fn key_of(tree: &mut Tree<'_>, id: ValueId) -> Result<KeyId, Unhashable> {
    let mut keys = std::mem::take(&mut tree.keys);
    let result = classify_all(tree, &mut keys, id);
    tree.keys = keys;
    result
}

fn classify_all(tree: &Tree<'_>, keys: &mut KeyTable, id: ValueId) -> Result<KeyId, Unhashable> {
    if let Some(&key) = keys.of_node.get(&id) {
        return Ok(key);
    }
    if !matches!(tree.node(id), Node::Tuple(_) | Node::FrozenSet(_)) {
        // A key without elements (a str, nearly always): no walk. A short str or bytes, or an
        // int, is classified again each time it is met (by its content, so with the same id):
        // cheaper than remembering it, and bounded. Anything else is remembered: long text is
        // hashed once however often it is inserted, and an object equal only to itself (a
        // NaN) keeps its one id.
        let key = keys.classify(tree, id)?;
        let cheap = match tree.node(id) {
            Node::Str(span) | Node::Bytes(span) => span.len() <= CHEAP_KEY_BYTES,
            Node::Int(_) => true,
            _ => false,
        };
        if !cheap {
            keys.of_node.insert(id, key);
        }
        return Ok(key);
    }
    // Post-order without recursion: a tuple's elements get their ids before the tuple.
    let mut stack = vec![(id, false)];
    while let Some((at, expanded)) = stack.pop() {
        if keys.of_node.contains_key(&at) {
            continue;
        }
        match tree.node(at) {
            Node::Tuple(items) | Node::FrozenSet(items) if !expanded => {
                stack.push((at, true));
                stack.extend(
                    tree.items(*items)
                        .iter()
                        .filter(|c| !keys.of_node.contains_key(c))
                        .map(|&c| (c, false)),
                );
            }
            _ => {
                let key = keys.classify(tree, at)?;
                keys.of_node.insert(at, key);
            }
        }
    }
    keys.of_node
        .get(&id)
        .copied()
        .ok_or_else(|| Unhashable(tree.type_name(id)))
}

impl KeyTable {
    /// Makes room for about `n` more distinct keys (a hint: a refusal leaves the map to grow).
    /// Not in `of_node`: the short keys of a state dict are not remembered by node.
    pub(crate) fn reserve(&mut self, n: usize) {
        let _ = self.classes.try_reserve(n);
    }

    fn fresh(&mut self) -> KeyId {
        let id = KeyId(self.next);
        self.next = self.next.wrapping_add(1);
        id
    }

    /// The class of a node whose elements (if any) are classified already.
    fn classify(&mut self, tree: &Tree<'_>, id: ValueId) -> Result<KeyId, Unhashable> {
        let shape = self.shape(tree, id)?;
        if shape == Shape::Identity {
            return Ok(self.fresh());
        }
        let hash = self.hash(&shape);
        if let Some(candidates) = self.classes.get(&hash) {
            for &(key, first) in candidates {
                if self.shape(tree, first).is_ok_and(|s| s == shape) {
                    return Ok(key);
                }
            }
        }
        let key = self.fresh();
        self.classes.entry(hash).or_default().push((key, id));
        Ok(key)
    }

    fn shape<'t>(&self, tree: &'t Tree<'_>, id: ValueId) -> Result<Shape<'t>, Unhashable> {
        let elements = |items: &[ValueId]| -> Result<Vec<KeyId>, Unhashable> {
            items
                .iter()
                .map(|c| {
                    self.of_node
                        .get(c)
                        .copied()
                        .ok_or_else(|| Unhashable(tree.type_name(*c)))
                })
                .collect()
        };
        Ok(match tree.node(id) {
            Node::None => Shape::None,
            Node::Bool(b) => Shape::Int(i64::from(*b)),
            Node::Int(i) => Shape::Int(*i),
            Node::BigInt(span) => Shape::Big(tree.bytes_of(*span).to_vec()),
            Node::Float(f) => float_shape(*f),
            Node::Complex(re, im) if *im == 0.0 => float_shape(*re),
            Node::Complex(re, im) if re.is_nan() || im.is_nan() => Shape::Identity,
            Node::Complex(re, im) => Shape::Complex((re + 0.0).to_bits(), im.to_bits()),
            Node::Str(span) => Shape::Str(tree.bytes_of(*span)),
            Node::Bytes(span) => Shape::Bytes(tree.bytes_of(*span)),
            Node::Tuple(items) => Shape::Tuple(elements(tree.items(*items))?),
            Node::FrozenSet(items) => {
                let mut ids = elements(tree.items(*items))?;
                ids.sort_unstable();
                ids.dedup();
                Shape::FrozenSet(ids)
            }
            Node::Global(g) => Shape::Global(&g.module, &g.name),
            Node::Object(_) | Node::Tensor(_) | Node::Storage(_) | Node::PersistentId(_) => Shape::Identity,
            Node::Dict(d) if !d.class.takes_items() => Shape::Identity,
            Node::List(_) | Node::Set(_) | Node::Dict(_) | Node::ByteArray(_) => {
                return Err(Unhashable(tree.type_name(id)))
            }
        })
    }

    fn hash(&self, shape: &Shape<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        match shape {
            Shape::None => 0u8.hash(&mut h),
            Shape::Int(i) => (1u8, i).hash(&mut h),
            Shape::Big(b) => (2u8, b).hash(&mut h),
            Shape::Float(f) => (3u8, f).hash(&mut h),
            Shape::Complex(re, im) => (4u8, re, im).hash(&mut h),
            Shape::Str(s) => (5u8, s).hash(&mut h),
            Shape::Bytes(b) => (6u8, b).hash(&mut h),
            Shape::Tuple(ids) => (7u8, ids).hash(&mut h),
            Shape::FrozenSet(ids) => (8u8, ids).hash(&mut h),
            Shape::Global(m, n) => (9u8, m, n).hash(&mut h),
            Shape::Identity => 10u8.hash(&mut h),
        }
        h.finish()
    }
}

/// A float as Python compares it: integral values equal the integer (`1e16 == 10**16`, `-0.0
/// == 0`), NaN only itself.
fn float_shape(f: f64) -> Shape<'static> {
    if f.is_nan() {
        return Shape::Identity;
    }
    if f.is_finite() && f.fract() == 0.0 {
        if f.abs() < 9.2e18 {
            return Shape::Int(f as i64);
        }
        return Shape::Big(integral_float_bytes(f));
    }
    Shape::Float(f.to_bits())
}

/// The little-endian two's complement bytes of an integral float beyond `i64`, trimmed as
/// `LONG1` payloads are, so that it equals the big integer of the same value.
fn integral_float_bytes(f: f64) -> Vec<u8> {
    let bits = f.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i64 - 1075;
    let mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
    // Magnitude = mantissa << exponent (exponent > 0 for |f| >= 2^63).
    let shift = exponent.max(0) as usize;
    let mut magnitude = vec![0u8; shift / 8 + 9];
    let wide = u128::from(mantissa) << (shift % 8);
    for (i, byte) in wide.to_le_bytes().iter().enumerate() {
        if let Some(slot) = magnitude.get_mut(shift / 8 + i) {
            *slot = *byte;
        }
    }
    if f < 0.0 {
        let mut carry = true;
        for b in magnitude.iter_mut() {
            let (v, c) = (!*b).overflowing_add(u8::from(carry));
            *b = v;
            carry = c;
        }
    }
    super::text::trim_twos_complement(&mut magnitude);
    magnitude
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_floats_match_big_integers() {
        // 2**70 as LONG1 bytes.
        let mut want = vec![0u8; 9];
        want[8] = 0x40;
        assert_eq!(integral_float_bytes(2f64.powi(70)), want);
        let neg = integral_float_bytes(-(2f64.powi(70)));
        assert_eq!(neg.last(), Some(&0xc0));
        assert!(matches!(float_shape(1e16), Shape::Int(10_000_000_000_000_000)));
        assert!(matches!(float_shape(-0.0), Shape::Int(0)));
        assert!(matches!(float_shape(f64::NAN), Shape::Identity));
        assert!(matches!(float_shape(0.5), Shape::Float(_)));
    }
}

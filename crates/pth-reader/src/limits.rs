//! Resource limits: how much work and memory a single input may claim.

#![forbid(unsafe_code)]

/// Upper bounds on what one input may make the reader do.
///
/// Every length read from an input is checked against the bytes that are actually present
/// before anything is allocated; these limits bound what remains: work that is not
/// proportional to the input size (inflation, shared-reference expansion) and memory that is
/// (the decoded object tree of a very large pickle). The defaults accept every real checkpoint
/// we know of, including multi-gigabyte ones (stored records are never copied), and keep a
/// hostile file under roughly 1.5 GiB of memory and a few seconds of CPU. Deflated records
/// (torch never writes them; re-zipped archives have them) are inflated when the archive is
/// opened, within `max_inflated_bytes`. Embedders that open untrusted uploads can tighten them.
///
/// ```
/// let limits = pth_reader::Limits { max_pickle_bytes: 1 << 20, ..Default::default() };
/// let options = pth_reader::Options::default().limits(limits);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest pickle stream (`data.pkl`, or one pickle of a legacy file), in bytes.
    pub max_pickle_bytes: u64,
    /// Most opcodes one pickle may execute.
    pub max_opcodes: u64,
    /// Most values the pickle machine may create (each costs a few dozen bytes).
    pub max_values: u64,
    /// Deepest the pickle stack may grow (values plus marks).
    pub max_stack: u64,
    /// Most memo entries (PUT/MEMOIZE) one pickle may create.
    pub max_memo: u64,
    /// Deepest nesting of containers followed when walking the object tree.
    pub max_depth: u64,
    /// Most (path, value) visits when listing tensors: bounds the expansion of values that
    /// are shared through the memo (a "billion laughs" pickle).
    pub max_walk: u64,
    /// Most bytes that deflated zip records may inflate to, in total (each record is
    /// inflated once, however many storages name it; the pickle machine then borrows from it).
    pub max_inflated_bytes: u64,
    /// Most dimensions a tensor may have.
    pub max_dims: u64,
    /// Most bytes the pickle machine may make beyond the pickle's own (text and bytes read
    /// from the pickle are borrowed, not copied): results of calls such as `bytearray(n)`,
    /// `_codecs.encode(...)` or `torch.FloatTensor([...])`, decimal text of integers.
    pub max_value_bytes: u64,
    /// Most bytes of text made to name tensors: each dict key's text (made once) and every
    /// tensor name (a deep path of long keys costs its full length per tensor).
    pub max_name_bytes: u64,
    /// Most bytes reading a tensor's elements may produce beyond the size of its storage
    /// (`to_vec`, `to_le_bytes`, `write_le_bytes`, ...): an expanded tensor (stride 0) of
    /// 2^34 elements over a 4-byte storage would otherwise ask for 64 GiB.
    pub max_expanded_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pickle_bytes: 1 << 30,
            max_opcodes: 1 << 28,
            max_values: 1 << 24,
            max_stack: 1 << 22,
            max_memo: 1 << 22,
            max_depth: 1_000,
            max_walk: 1 << 20,
            max_inflated_bytes: 1 << 30,
            max_dims: 64,
            max_value_bytes: 256 << 20,
            max_name_bytes: 64 << 20,
            max_expanded_bytes: 256 << 20,
        }
    }
}

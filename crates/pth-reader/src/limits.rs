//! Resource limits: how much work and memory a single input may claim.
//!
//! One table declares every limit: the field of [`Limits`], its default, its setter and the
//! [`Limit`] that names it in [`ErrorKind::LimitExceeded`](crate::ErrorKind::LimitExceeded), so
//! that the struct, its defaults and the errors cannot disagree.

#![forbid(unsafe_code)]

macro_rules! limits {
    ($( $(#[doc = $doc:literal])* $field:ident, $setter:ident, $variant:ident = $default:expr; )*) => {
        /// Upper bounds on what one input may make the reader do.
        ///
        /// Every length read from an input is checked against the bytes that are actually
        /// present before anything is allocated; these limits bound what remains: work that is
        /// not proportional to the input size (inflation, shared-reference expansion) and memory
        /// that is (the decoded object tree of a very large pickle). The defaults accept every
        /// real checkpoint we know of, including multi-gigabyte ones (stored records are never
        /// copied), and keep a hostile file under roughly 1.5 GiB of memory and a few seconds of
        /// CPU. Deflated records (torch never writes them; re-zipped archives have them) are
        /// inflated when the archive is opened, within `max_inflated_bytes`. Embedders that open
        /// untrusted uploads can tighten them with the `with_*` setters.
        ///
        /// ```
        /// use pth_reader::{Limits, Options};
        /// let limits = Limits::default().with_max_pickle_bytes(1 << 20).with_max_depth(100);
        /// assert_eq!(limits.max_depth, 100);
        /// let options = Options::default().with_limits(limits);
        /// assert_eq!(options.limits().max_pickle_bytes, 1 << 20);
        /// ```
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Limits {
            $( $(#[doc = $doc])* pub $field: u64, )*
        }

        impl Default for Limits {
            fn default() -> Self {
                Limits { $( $field: $default, )* }
            }
        }

        impl Limits {
            $(
                #[doc = concat!("Sets [`", stringify!($field), "`](Self::", stringify!($field), ").")]
                pub fn $setter(mut self, value: u64) -> Self {
                    self.$field = value;
                    self
                }
            )*

            /// The value of one limit.
            pub fn get(&self, limit: Limit) -> u64 {
                match limit { $( Limit::$variant => self.$field, )* }
            }
        }

        /// One of the [`Limits`], as an error names it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Limit {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Limit {
            /// Every limit, in table order.
            pub const ALL: &'static [Limit] = &[$( Limit::$variant, )*];

            /// The name of its field in [`Limits`] (`max_pickle_bytes`, ...).
            pub fn name(self) -> &'static str {
                match self { $( Limit::$variant => stringify!($field), )* }
            }
        }
    };
}

limits! {
    /// Largest pickle stream (`data.pkl`, or one pickle of a legacy file), in bytes.
    max_pickle_bytes, with_max_pickle_bytes, MaxPickleBytes = 1 << 30;
    /// Most opcodes one pickle may execute.
    max_opcodes, with_max_opcodes, MaxOpcodes = 1 << 28;
    /// Most values the pickle machine may create (each costs a few dozen bytes).
    max_values, with_max_values, MaxValues = 1 << 24;
    /// Deepest the pickle stack may grow (values plus marks).
    max_stack, with_max_stack, MaxStack = 1 << 22;
    /// Most memo entries (PUT/MEMOIZE) one pickle may create.
    max_memo, with_max_memo, MaxMemo = 1 << 22;
    /// Deepest nesting of containers followed when walking the object tree.
    max_depth, with_max_depth, MaxDepth = 1_000;
    /// Most (path, value) visits when listing tensors: bounds the expansion of values that
    /// are shared through the memo (a "billion laughs" pickle).
    max_walk, with_max_walk, MaxWalk = 1 << 20;
    /// Most bytes that deflated zip records may inflate to, in total (each record is
    /// inflated once, however many storages name it; the pickle machine then borrows from it).
    max_inflated_bytes, with_max_inflated_bytes, MaxInflatedBytes = 1 << 30;
    /// Most dimensions a tensor may have.
    max_dims, with_max_dims, MaxDims = 64;
    /// Most bytes the pickle machine may make beyond the pickle's own (text and bytes read
    /// from the pickle are borrowed, not copied): results of calls such as `bytearray(n)`,
    /// `_codecs.encode(...)` or `torch.FloatTensor([...])`, decimal text of integers.
    max_value_bytes, with_max_value_bytes, MaxValueBytes = 256 << 20;
    /// Most bytes of text made to name tensors: each dict key's text (made once) and every
    /// tensor name (a deep path of long keys costs its full length per tensor).
    max_name_bytes, with_max_name_bytes, MaxNameBytes = 64 << 20;
    /// Most bytes reading a tensor's elements may produce beyond the size of its storage
    /// (`to_vec`, `to_le_bytes`, `write_le_bytes`, ...): an expanded tensor (stride 0) of
    /// 2^34 elements over a 4-byte storage would otherwise ask for 64 GiB.
    max_expanded_bytes, with_max_expanded_bytes, MaxExpandedBytes = 256 << 20;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_setters_and_defaults_come_from_one_table() {
        let limits = Limits::default().with_max_walk(7);
        assert_eq!(limits.get(Limit::MaxWalk), 7);
        assert_eq!(Limit::MaxWalk.name(), "max_walk");
        assert_eq!(Limit::ALL.len(), 12);
        let defaults = Limits::default();
        assert_eq!(defaults.get(Limit::MaxDims), 64);
        assert_eq!(defaults.max_expanded_bytes, 256 << 20);
    }
}

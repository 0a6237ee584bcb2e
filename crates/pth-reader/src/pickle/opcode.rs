//! The pickle opcode table (Python's `pickletools.opcodes`), the single source of decoding.

/// Declares the opcode enum, its byte mapping and names from one table, so that the decoder
/// cannot disagree with the table.
macro_rules! opcodes {
    ($( $(#[doc = $doc:literal])* $name:ident = $byte:literal, $proto:literal; )*) => {
        /// A pickle opcode, protocols 0 to 5, named as `pickletools` names it.
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Opcode {
            $( $(#[doc = $doc])* $name, )*
        }

        impl Opcode {
            /// Every opcode, in table order.
            #[cfg(test)]
            pub(crate) const ALL: &'static [Opcode] = &[$(Opcode::$name,)*];

            /// The opcode a byte stands for, if any.
            pub(crate) fn from_byte(byte: u8) -> Option<Opcode> {
                match byte {
                    $( $byte => Some(Opcode::$name), )*
                    _ => None,
                }
            }

            /// The byte that encodes this opcode.
            #[cfg(test)]
            pub(crate) fn byte(self) -> u8 {
                match self { $( Opcode::$name => $byte, )* }
            }

            /// The pickle protocol that introduced it.
            #[cfg(test)]
            pub(crate) fn protocol(self) -> u8 {
                match self { $( Opcode::$name => $proto, )* }
            }

            /// The name `pickletools` gives it.
            pub(crate) fn name(self) -> &'static str {
                match self { $( Opcode::$name => stringify!($name), )* }
            }
        }
    };
}

opcodes! {
    /// Push a mark on the metastack.
    MARK = b'(', 0;
    /// End of pickle: the top of the stack is the result.
    STOP = b'.', 0;
    POP = b'0', 0;
    POP_MARK = b'1', 1;
    DUP = b'2', 0;
    /// Decimal float, newline-terminated.
    FLOAT = b'F', 0;
    /// Decimal int, newline-terminated (`01`/`00` are True/False).
    INT = b'I', 0;
    BININT = b'J', 1;
    BININT1 = b'K', 1;
    /// Decimal long with a trailing `L`, newline-terminated.
    LONG = b'L', 0;
    BININT2 = b'M', 1;
    NONE = b'N', 0;
    PERSID = b'P', 0;
    BINPERSID = b'Q', 1;
    REDUCE = b'R', 0;
    /// A Python string literal (quoted, with escapes), newline-terminated.
    STRING = b'S', 0;
    BINSTRING = b'T', 1;
    SHORT_BINSTRING = b'U', 1;
    /// raw-unicode-escape text, newline-terminated.
    UNICODE = b'V', 0;
    BINUNICODE = b'X', 1;
    APPEND = b'a', 0;
    BUILD = b'b', 0;
    GLOBAL = b'c', 0;
    DICT = b'd', 0;
    EMPTY_DICT = b'}', 1;
    APPENDS = b'e', 1;
    GET = b'g', 0;
    BINGET = b'h', 1;
    INST = b'i', 0;
    LONG_BINGET = b'j', 1;
    LIST = b'l', 0;
    EMPTY_LIST = b']', 1;
    OBJ = b'o', 1;
    PUT = b'p', 0;
    BINPUT = b'q', 1;
    LONG_BINPUT = b'r', 1;
    SETITEM = b's', 0;
    TUPLE = b't', 0;
    EMPTY_TUPLE = b')', 1;
    SETITEMS = b'u', 1;
    BINFLOAT = b'G', 1;
    PROTO = 0x80, 2;
    NEWOBJ = 0x81, 2;
    EXT1 = 0x82, 2;
    EXT2 = 0x83, 2;
    EXT4 = 0x84, 2;
    TUPLE1 = 0x85, 2;
    TUPLE2 = 0x86, 2;
    TUPLE3 = 0x87, 2;
    NEWTRUE = 0x88, 2;
    NEWFALSE = 0x89, 2;
    LONG1 = 0x8a, 2;
    LONG4 = 0x8b, 2;
    BINBYTES = b'B', 3;
    SHORT_BINBYTES = b'C', 3;
    SHORT_BINUNICODE = 0x8c, 4;
    BINUNICODE8 = 0x8d, 4;
    BINBYTES8 = 0x8e, 4;
    EMPTY_SET = 0x8f, 4;
    ADDITEMS = 0x90, 4;
    FROZENSET = 0x91, 4;
    NEWOBJ_EX = 0x92, 4;
    STACK_GLOBAL = 0x93, 4;
    MEMOIZE = 0x94, 4;
    FRAME = 0x95, 4;
    BYTEARRAY8 = 0x96, 5;
    NEXT_BUFFER = 0x97, 5;
    READONLY_BUFFER = 0x98, 5;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_decodes_to_its_own_opcode_or_to_none() {
        let mut count = 0;
        for byte in 0..=255u8 {
            if let Some(op) = Opcode::from_byte(byte) {
                assert_eq!(op.byte(), byte, "{}", op.name());
                count += 1;
            }
        }
        // pickletools.opcodes has 68 entries for protocols 0-5.
        assert_eq!(count, 68);
        assert_eq!(Opcode::ALL.len(), 68);
        assert!(Opcode::ALL.iter().all(|op| op.protocol() <= 5));
    }

    #[test]
    fn protocol_counts_match_pickletools() {
        // len([o for o in pickletools.opcodes if o.proto == p]) for p in 0..=5
        let per_proto: Vec<usize> = (0..=5)
            .map(|p| Opcode::ALL.iter().filter(|o| o.protocol() == p).count())
            .collect();
        assert_eq!(per_proto, vec![22, 19, 12, 2, 10, 3]);
    }
}

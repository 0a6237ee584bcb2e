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

            /// The opcode a byte stands for, if any: one load from a table made at compile
            /// time (the machine looks up every opcode of the pickle).
            #[inline]
            pub(crate) fn from_byte(byte: u8) -> Option<Opcode> {
                // Indexed by a byte, at compile time: no index can be out of range, and one
                // that were would fail the build, not a run.
                #[allow(clippy::indexing_slicing)]
                const TABLE: [Option<Opcode>; 256] = {
                    let mut table = [None; 256];
                    $( table[$byte as usize] = Some(Opcode::$name); )*
                    table
                };
                TABLE.get(usize::from(byte)).copied().flatten()
            }

            /// The byte that encodes this opcode.
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

/// An opcode with its argument, as the writer emits it: each form encoded the one way the
/// machine decodes it (`machine.rs`), its byte taken from the table above. Protocol 2 forms,
/// plus `LONG4` for integers of more than 255 bytes and `FROZENSET`/`NEWOBJ_EX` for values
/// that have no protocol-2 form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op<'a> {
    Proto(u8),
    Stop,
    Mark,
    None,
    NewTrue,
    NewFalse,
    BinInt1(u8),
    BinInt2(u16),
    BinInt(i32),
    /// A little-endian two's complement integer (`LONG1` up to 255 bytes, `LONG4` beyond).
    Long(&'a [u8]),
    /// Big-endian, as `BINFLOAT` carries it.
    BinFloat(f64),
    /// UTF-8 bytes (`surrogatepass`, as Python writes lone surrogates).
    BinUnicode(&'a [u8]),
    /// `module`, `name`: newline-terminated.
    Global(&'a str, &'a str),
    EmptyTuple,
    Tuple,
    /// `TUPLE1`, `TUPLE2` or `TUPLE3`.
    TupleN(u8),
    EmptyList,
    Append,
    Appends,
    EmptyDict,
    SetItem,
    SetItems,
    Reduce,
    NewObj,
    NewObjEx,
    Build,
    BinPersId,
    /// Protocol 4's `FROZENSET` (Python 3 has no protocol-2 form that torch's loader reads).
    FrozenSet,
    Pop,
    PopMark,
    /// `BINPUT` below 256, `LONG_BINPUT` above.
    Put(u32),
    /// `BINGET` below 256, `LONG_BINGET` above.
    Get(u32),
}

impl Op<'_> {
    /// The table's opcode for this form.
    pub(crate) fn opcode(&self) -> Opcode {
        use Opcode::*;
        match *self {
            Op::Proto(_) => PROTO,
            Op::Stop => STOP,
            Op::Mark => MARK,
            Op::None => NONE,
            Op::NewTrue => NEWTRUE,
            Op::NewFalse => NEWFALSE,
            Op::BinInt1(_) => BININT1,
            Op::BinInt2(_) => BININT2,
            Op::BinInt(_) => BININT,
            Op::Long(b) if b.len() <= 255 => LONG1,
            Op::Long(_) => LONG4,
            Op::BinFloat(_) => BINFLOAT,
            Op::BinUnicode(_) => BINUNICODE,
            Op::Global(..) => GLOBAL,
            Op::EmptyTuple => EMPTY_TUPLE,
            Op::Tuple => TUPLE,
            Op::TupleN(1) => TUPLE1,
            Op::TupleN(2) => TUPLE2,
            Op::TupleN(_) => TUPLE3,
            Op::EmptyList => EMPTY_LIST,
            Op::Append => APPEND,
            Op::Appends => APPENDS,
            Op::EmptyDict => EMPTY_DICT,
            Op::SetItem => SETITEM,
            Op::SetItems => SETITEMS,
            Op::Reduce => REDUCE,
            Op::NewObj => NEWOBJ,
            Op::NewObjEx => NEWOBJ_EX,
            Op::Build => BUILD,
            Op::BinPersId => BINPERSID,
            Op::FrozenSet => FROZENSET,
            Op::Pop => POP,
            Op::PopMark => POP_MARK,
            Op::Put(i) if i < 256 => BINPUT,
            Op::Put(_) => LONG_BINPUT,
            Op::Get(i) if i < 256 => BINGET,
            Op::Get(_) => LONG_BINGET,
        }
    }

    /// Appends the opcode's byte and its argument to `out`. Lengths that do not fit the form
    /// (text or integers of 4 GiB and more) are refused, never truncated.
    pub(crate) fn write(&self, out: &mut Vec<u8>) -> Result<(), &'static str> {
        out.push(self.opcode().byte());
        let len32 = |b: &[u8]| u32::try_from(b.len()).map_err(|_| "an argument of 4 GiB or more");
        match *self {
            Op::Proto(v) | Op::BinInt1(v) => out.push(v),
            Op::BinInt2(v) => out.extend_from_slice(&v.to_le_bytes()),
            Op::BinInt(v) => out.extend_from_slice(&v.to_le_bytes()),
            Op::Long(b) => {
                match u8::try_from(b.len()) {
                    Ok(n) => out.push(n),
                    Err(_) => out.extend_from_slice(&len32(b)?.to_le_bytes()),
                }
                out.extend_from_slice(b);
            }
            Op::BinFloat(v) => out.extend_from_slice(&v.to_be_bytes()),
            Op::BinUnicode(b) => {
                out.extend_from_slice(&len32(b)?.to_le_bytes());
                out.extend_from_slice(b);
            }
            Op::Global(module, name) => {
                if module.contains('\n') || name.contains('\n') {
                    return Err("a global name holds a newline");
                }
                for part in [module, name] {
                    out.extend_from_slice(part.as_bytes());
                    out.push(b'\n');
                }
            }
            Op::TupleN(n) if !(1..=3).contains(&n) => return Err("TUPLEn takes 1 to 3 items"),
            Op::Put(i) | Op::Get(i) => match u8::try_from(i) {
                Ok(short) => out.push(short),
                Err(_) => out.extend_from_slice(&i.to_le_bytes()),
            },
            _ => {}
        }
        Ok(())
    }
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
    fn written_forms_use_the_table_bytes_and_refuse_what_does_not_fit() {
        let mut out = Vec::new();
        Op::Long(&[0; 300]).write(&mut out).unwrap();
        assert_eq!(out[..5], [0x8b, 44, 1, 0, 0]);
        out.clear();
        Op::Put(256).write(&mut out).unwrap();
        Op::Get(3).write(&mut out).unwrap();
        assert_eq!(out, [b'r', 0, 1, 0, 0, b'h', 3]);
        assert!(Op::Global("a\nb", "c").write(&mut Vec::new()).is_err());
        assert!(Op::TupleN(4).write(&mut Vec::new()).is_err());
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

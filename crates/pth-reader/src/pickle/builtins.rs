//! Python's standard-library callables that pickles use for plain values, evaluated when the
//! pickle calls them, as Python would.
//!
//! Python pickles some builtins as calls: `set` as `builtins.set([...])`, `bytes` at protocol
//! 2 as `_codecs.encode('\xff', 'latin1')`, `OrderedDict` as `OrderedDict()` plus `SETITEMS`.
//! `cls(*args)` (`REDUCE`) and `cls.__new__(cls, *args)` (`NEWOBJ`) differ: `OrderedDict`,
//! `Counter`, `set` and `bytearray` ignore the arguments of `__new__` (their `__init__` reads
//! them), `frozenset`, `bytes` and `complex` do not. Anything these calls would not accept is a
//! [`Failure`], as Python would raise.

use super::call::{raise, Failure};
use super::keys;
use super::machine::{new_dict, set_insert};
use super::text;
use super::tree::{Construction, DictClass, Node, SetNode, Tree, ValueId};

/// A standard-library callable whose result is a plain value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    /// `collections.OrderedDict`
    OrderedDict,
    /// `collections.Counter`
    Counter,
    /// `builtins.set`
    Set,
    /// `builtins.frozenset`
    FrozenSet,
    /// `builtins.bytearray`
    ByteArray,
    /// `builtins.bytes`
    Bytes,
    /// `builtins.complex`
    Complex,
    /// `_codecs.encode`
    Encode,
}

type Outcome = Result<ValueId, Failure>;

/// Evaluates `builtin(*args)` or `builtin.__new__(builtin, *args)`.
pub(crate) fn call(tree: &mut Tree<'_>, builtin: Builtin, args: &[ValueId], construction: Construction) -> Outcome {
    let ignores_new_args = matches!(
        builtin,
        Builtin::OrderedDict | Builtin::Counter | Builtin::Set | Builtin::ByteArray
    );
    if construction == Construction::NewObj {
        if builtin == Builtin::Encode {
            return raise("function.__new__(X): X is not a type object (builtin_function_or_method)");
        }
        if ignores_new_args {
            return call(tree, builtin, &[], Construction::Reduce);
        }
    }
    match builtin {
        Builtin::OrderedDict => mapping(tree, DictClass::OrderedDict, args),
        Builtin::Counter => counter(tree, args),
        Builtin::Set | Builtin::FrozenSet => set(tree, builtin, args),
        Builtin::ByteArray | Builtin::Bytes => bytes(tree, builtin, args),
        Builtin::Complex => {
            let (re, im) = complex(tree, args)?;
            Ok(tree.push(Node::Complex(re, im))?)
        }
        Builtin::Encode => encode(tree, args),
    }
}

fn at_most(args: &[ValueId], n: usize, what: &str) -> Result<(), Failure> {
    if args.len() > n {
        return raise(format!("{what} expected at most {n} arguments, got {}", args.len()));
    }
    Ok(())
}

/// The elements Python's `iter(value)` yields: a container's items, a dict's keys, a string's
/// characters (as new strings), a bytes object's integers.
pub(crate) fn iterate(tree: &mut Tree<'_>, value: ValueId) -> Result<Vec<ValueId>, Failure> {
    let items = match tree.node(value) {
        Node::List(v) => v.clone(),
        Node::Tuple(v) | Node::FrozenSet(v) => tree.items(*v).to_vec(),
        Node::Set(s) => s.items.clone(),
        Node::Dict(d) => d.items.iter().map(|&(k, _)| k).collect(),
        Node::Str(_) => {
            let text = tree.text(value).unwrap_or_default().to_owned();
            let mut out = Vec::new();
            for c in text.chars() {
                let mut buf = [0u8; 4];
                out.push(tree.push_owned_str(c.encode_utf8(&mut buf))?);
            }
            out
        }
        Node::Bytes(_) | Node::ByteArray(_) => {
            let bytes = tree.blob(value).unwrap_or_default().to_vec();
            let mut out = Vec::new();
            for b in bytes {
                out.push(tree.push(Node::Int(i64::from(b)))?);
            }
            out
        }
        _ => return raise(format!("'{}' object is not iterable", tree.type_name(value))),
    };
    tree.charge(items.len() as u64)?;
    Ok(items)
}

/// `OrderedDict(mapping_or_pairs)` (and the copy `Counter(mapping)` makes).
fn mapping(tree: &mut Tree<'_>, class: DictClass, args: &[ValueId]) -> Outcome {
    at_most(args, 1, "OrderedDict")?;
    let pairs = match args.first() {
        None => Vec::new(),
        Some(&arg) => pairs_of(tree, arg)?,
    };
    new_dict(tree, class, &pairs)
}

/// The items of a mapping, or of an iterable of 2-element sequences.
fn pairs_of(tree: &mut Tree<'_>, arg: ValueId) -> Result<Vec<(ValueId, ValueId)>, Failure> {
    if let Node::Dict(d) = tree.node(arg) {
        let items = d.items.clone();
        tree.charge(items.len() as u64)?;
        return Ok(items);
    }
    let elements = iterate(tree, arg)?;
    let mut pairs = Vec::with_capacity(elements.len());
    for (i, element) in elements.into_iter().enumerate() {
        match tree.seq(element) {
            Some(&[k, v]) => pairs.push((k, v)),
            Some(other) => {
                return raise(format!(
                    "dictionary update sequence element #{i} has length {}; 2 is required",
                    other.len()
                ))
            }
            None => {
                return raise(format!(
                    "cannot convert dictionary update sequence element #{i} to a sequence"
                ))
            }
        }
    }
    Ok(pairs)
}

/// `Counter(mapping)` copies; `Counter(iterable)` counts.
fn counter(tree: &mut Tree<'_>, args: &[ValueId]) -> Outcome {
    at_most(args, 1, "Counter")?;
    let Some(&arg) = args.first() else {
        return new_dict(tree, DictClass::Counter, &[]);
    };
    if matches!(tree.node(arg), Node::Dict(_)) {
        return mapping(tree, DictClass::Counter, args);
    }
    let mut counted = SetNode::default();
    let mut counts: Vec<i64> = Vec::new();
    for element in iterate(tree, arg)? {
        let key = keys::key_of(tree, element).map_err(|u| Failure::Python(format!("unhashable type: '{}'", u.0)))?;
        match counted.index.get(&key) {
            Some(&at) => {
                if let Some(c) = counts.get_mut(at) {
                    *c += 1;
                }
            }
            None => {
                set_insert(&mut counted, key, element);
                counts.push(1);
            }
        }
    }
    let mut pairs = Vec::with_capacity(counts.len());
    for (element, count) in counted.items.into_iter().zip(counts) {
        pairs.push((element, tree.push(Node::Int(count))?));
    }
    new_dict(tree, DictClass::Counter, &pairs)
}

fn set(tree: &mut Tree<'_>, builtin: Builtin, args: &[ValueId]) -> Outcome {
    at_most(args, 1, if builtin == Builtin::Set { "set" } else { "frozenset" })?;
    let elements = match args.first() {
        None => Vec::new(),
        Some(&arg) => iterate(tree, arg)?,
    };
    let mut set = SetNode::default();
    for element in elements {
        let key = keys::key_of(tree, element).map_err(|u| Failure::Python(format!("unhashable type: '{}'", u.0)))?;
        set_insert(&mut set, key, element);
    }
    Ok(match builtin {
        Builtin::Set => tree.push(Node::Set(Box::new(set)))?,
        _ => tree.push_frozenset(&set.items)?,
    })
}

/// `bytes(...)` / `bytearray(...)`: empty, `n` zero bytes, an encoded string, a copy of bytes, or
/// an iterable of integers in 0..=255.
fn bytes(tree: &mut Tree<'_>, builtin: Builtin, args: &[ValueId]) -> Outcome {
    at_most(
        args,
        3,
        if builtin == Builtin::Bytes {
            "bytes"
        } else {
            "bytearray"
        },
    )?;
    let out: Vec<u8> = match args {
        [] => Vec::new(),
        [text, encoding, rest @ ..] => {
            if tree.text(*text).is_none() {
                return raise("encoding without a string argument");
            }
            encoded(tree, *text, Some(*encoding), rest.first().copied())?
        }
        [arg] => match tree.node(*arg) {
            Node::Str(_) => return raise("string argument without an encoding"),
            Node::Int(_) | Node::Bool(_) => {
                let n = tree.as_int(*arg).unwrap_or(0);
                let n = usize::try_from(n).map_err(|_| Failure::Python("negative count".into()))?;
                let mut out = tree.buffer(n)?;
                out.resize(n, 0);
                out
            }
            Node::BigInt(_) => return raise("cannot fit 'int' into an index-sized integer"),
            Node::Bytes(_) | Node::ByteArray(_) => tree.blob(*arg).unwrap_or_default().to_vec(),
            _ => {
                let mut out = Vec::new();
                for element in iterate(tree, *arg)? {
                    let byte = tree.as_int(element).and_then(|v| u8::try_from(v).ok());
                    out.push(byte.ok_or_else(|| Failure::Python("bytes must be in range(0, 256)".into()))?);
                }
                out
            }
        },
    };
    let span = tree.own(out)?;
    Ok(match builtin {
        Builtin::Bytes => tree.push(Node::Bytes(span))?,
        _ => tree.push(Node::ByteArray(span))?,
    })
}

/// `_codecs.encode(text, encoding='utf-8', errors='strict')`: bytes, or text for `rot13`.
fn encode(tree: &mut Tree<'_>, args: &[ValueId]) -> Outcome {
    at_most(args, 3, "encode")?;
    let Some(&text) = args.first() else {
        return raise("encode() missing required argument 'obj' (pos 1)");
    };
    if tree.text(text).is_none() {
        return raise(format!(
            "encode() of a '{}' (only text encodings are supported)",
            tree.type_name(text)
        ));
    }
    let name = match args.get(1) {
        None => "utf-8".to_owned(),
        Some(&e) => tree
            .text(e)
            .ok_or_else(|| Failure::Python("encoding must be str".into()))?
            .to_owned(),
    };
    if codec(&name) == Some(Codec::Rot13) {
        let rotated: String = tree.text(text).unwrap_or_default().chars().map(rot13).collect();
        return Ok(tree.push_owned_str(&rotated)?);
    }
    let out = encoded(tree, text, args.get(1).copied(), args.get(2).copied())?;
    let span = tree.own(out)?;
    Ok(tree.push(Node::Bytes(span))?)
}

fn rot13(c: char) -> char {
    match c {
        'a'..='z' => char::from(b'a' + (c as u8 - b'a' + 13) % 26),
        'A'..='Z' => char::from(b'A' + (c as u8 - b'A' + 13) % 26),
        other => other,
    }
}

/// The codecs this reader implements, by their Python names and aliases.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Codec {
    Utf8,
    Latin1,
    Ascii,
    /// UTF-16 and UTF-32: big- or little-endian, with a byte-order mark unless the order is named.
    Utf16 {
        big: bool,
        bom: bool,
    },
    Utf32 {
        big: bool,
        bom: bool,
    },
    Rot13,
}

fn codec(name: &str) -> Option<Codec> {
    let normalized: String = name
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c == '-' || c == ' ' { '_' } else { c })
        .collect();
    Some(match normalized.as_str() {
        "utf_8" | "utf8" | "u8" | "utf" | "utf8_ucs2" | "utf8_ucs4" | "cp65001" => Codec::Utf8,
        "latin_1" | "latin1" | "latin" | "l1" | "iso_8859_1" | "iso8859_1" | "8859" | "cp819" | "iso_ir_100"
        | "csisolatin1" | "ibm819" | "iso_8859_1_1987" => Codec::Latin1,
        "ascii" | "646" | "us_ascii" | "us" | "cp367" | "csascii" | "ibm367" | "iso646_us" | "iso_ir_6"
        | "ansi_x3.4_1968" | "ansi_x3_4_1968" | "ansi_x3.4_1986" | "iso_646.irv_1991" => Codec::Ascii,
        // The byte-order mark of `utf-16`/`utf-32` is written in the machine's order; the
        // recorded readings come from little-endian machines, as do all torch users we know.
        "utf_16" | "utf16" | "u16" => Codec::Utf16 { big: false, bom: true },
        "utf_16_le" | "utf_16le" | "unicodelittleunmarked" => Codec::Utf16 { big: false, bom: false },
        "utf_16_be" | "utf_16be" | "unicodebigunmarked" => Codec::Utf16 { big: true, bom: false },
        "utf_32" | "utf32" | "u32" => Codec::Utf32 { big: false, bom: true },
        "utf_32_le" | "utf_32le" => Codec::Utf32 { big: false, bom: false },
        "utf_32_be" | "utf_32be" => Codec::Utf32 { big: true, bom: false },
        "rot13" | "rot_13" => Codec::Rot13,
        _ => return None,
    })
}

/// `text.encode(encoding, errors)`, charged to `max_value_bytes`.
fn encoded(
    tree: &mut Tree<'_>,
    text: ValueId,
    encoding: Option<ValueId>,
    errors: Option<ValueId>,
) -> Result<Vec<u8>, Failure> {
    let name = match encoding {
        None => "utf-8",
        Some(e) => tree
            .text(e)
            .ok_or_else(|| Failure::Python("encoding must be str".into()))?,
    };
    let codec = codec(name).ok_or_else(|| Failure::Python(format!("unsupported encoding {name:?}")))?;
    if let Some(errors) = errors {
        if tree.text(errors) != Some("strict") {
            return raise("only the 'strict' error handler is supported");
        }
    }
    let raw = match tree.node(text) {
        Node::Str(span) => tree.bytes_of(*span),
        _ => &[],
    };
    let Ok(chars) = std::str::from_utf8(raw) else {
        return raise(format!(
            "{name:?} codec can't encode characters: surrogates not allowed"
        ));
    };
    let mut out = tree.buffer(raw.len().saturating_mul(4).saturating_add(4))?;
    match codec {
        Codec::Utf8 => out.extend_from_slice(raw),
        Codec::Latin1 | Codec::Ascii => {
            let max = if codec == Codec::Latin1 { 0xff } else { 0x7f };
            for c in chars.chars() {
                match u8::try_from(u32::from(c)) {
                    Ok(b) if u32::from(b) <= max => out.push(b),
                    _ => return raise(format!("{name:?} codec can't encode character {c:?}")),
                }
            }
        }
        Codec::Utf16 { big, bom } => {
            let units = bom.then_some(0xfeff).into_iter().chain(chars.encode_utf16());
            for unit in units {
                out.extend_from_slice(&if big { unit.to_be_bytes() } else { unit.to_le_bytes() });
            }
        }
        Codec::Utf32 { big, bom } => {
            let points = bom.then_some(0xfeff).into_iter().chain(chars.chars().map(u32::from));
            for point in points {
                out.extend_from_slice(&if big { point.to_be_bytes() } else { point.to_le_bytes() });
            }
        }
        Codec::Rot13 => return raise("rot13 makes text, not bytes"),
    }
    Ok(out)
}

/// A number as `(real, imag)`, as `complex()` reads its arguments.
fn number(tree: &Tree<'_>, id: ValueId) -> Result<(f64, f64, bool), Failure> {
    Ok(match tree.node(id) {
        Node::Bool(b) => (f64::from(u8::from(*b)), 0.0, false),
        Node::Int(i) => (*i as f64, 0.0, false),
        Node::BigInt(span) => match text::big_to_f64(tree.bytes_of(*span)) {
            Some(f) => (f, 0.0, false),
            None => return raise("int too large to convert to float"),
        },
        Node::Float(f) => (*f, 0.0, false),
        Node::Complex(re, im) => (*re, *im, true),
        _ => {
            return raise(format!(
                "complex() argument must be a string or a number, not '{}'",
                tree.type_name(id)
            ))
        }
    })
}

/// `complex(real=0, imag=0)`, with CPython's rules for complex arguments.
fn complex(tree: &Tree<'_>, args: &[ValueId]) -> Result<(f64, f64), Failure> {
    at_most(args, 2, "complex")?;
    match args {
        [] => Ok((0.0, 0.0)),
        [one] => match tree.text(*one) {
            Some(s) => {
                text::parse_complex(s).ok_or_else(|| Failure::Python("complex() arg is a malformed string".into()))
            }
            None => number(tree, *one).map(|(re, im, _)| (re, im)),
        },
        [real, imag, ..] => {
            if tree.text(*real).is_some() {
                return raise("complex() can't take second arg if first is a string");
            }
            if tree.text(*imag).is_some() {
                return raise("complex() second arg can't be a string");
            }
            let (r_re, r_im, r_complex) = number(tree, *real)?;
            let (i_re, i_im, i_complex) = number(tree, *imag)?;
            // CPython's complex_new: real - imag.imag when imag is complex, and imag.real +
            // real.imag when real is.
            let re = if i_complex { r_re - i_im } else { r_re };
            let im = if r_complex { i_re + r_im } else { i_re };
            Ok((re, im))
        }
    }
}

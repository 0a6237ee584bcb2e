//! Differential: this crate's pickle machine against serde-pickle, on plain-data pickles.
//!
//! **Which inputs both must agree on.** The fuzzer's bytes are read (with `arbitrary`) as a plain-data value — None,
//! bool, int (any size), float (NaN and infinities too), str, bytes, list, tuple, dict with str/int keys, set and
//! frozenset of str/int — nested at most 24 deep, with dict keys and set members made unique, plus a protocol (0–5)
//! and a stream of choices. `encode` writes that value as CPython could: per value it picks one of the opcode forms
//! the protocol has (INT/BININT1/BININT2/BININT/LONG/LONG1/LONG4; FLOAT/BINFLOAT; UNICODE/BINUNICODE/
//! SHORT_BINUNICODE/BINUNICODE8; BINBYTES/SHORT_BINBYTES/BINBYTES8; MARK-built or incrementally filled containers;
//! EMPTY_SET+ADDITEMS, FROZENSET; PUT/BINPUT/LONG_BINPUT/MEMOIZE of leaves and GET/BINGET/LONG_BINGET of a repeated
//! leaf; FRAME). No memo index is written twice, no memoised container is ever mutated after it is fetched
//! (serde-pickle resolves GETs lazily and copies, Python shares), and no GLOBAL/REDUCE/BUILD/PERSID appears. On every such pickle **both machines must succeed and return
//! the same value, equal to the one encoded**: ints by value, floats bit for bit (any NaN equals any NaN), strings
//! and bytes exactly, dicts as key → value maps, sets as sets. Any disagreement panics (a crash for the fuzzer).

// Panicking on a disagreement is this target's purpose: it is how libFuzzer learns of one.
#![allow(clippy::panic)]

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use num_bigint::BigInt;
use pth_reader::{Kind, Options, Pickle, Value};

/// A dict key or set member.
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Int(i64),
    Str(String),
}

/// A plain-data value, as `arbitrary` makes it.
#[derive(Arbitrary, Debug, Clone)]
enum Plain {
    None,
    Bool(bool),
    Int(i64),
    Big(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Plain>),
    Tuple(Vec<Plain>),
    Dict(Vec<(Key, Plain)>),
    Set(Vec<Key>),
    FrozenSet(Vec<Key>),
}

/// A value in a form both machines' results convert to and compare by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Canon {
    None,
    Bool(bool),
    Int(BigInt),
    /// IEEE bits, every NaN as one pattern.
    Float(u64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Canon>),
    Tuple(Vec<Canon>),
    Dict(Vec<(Canon, Canon)>),
    Set(Vec<Canon>),
    FrozenSet(Vec<Canon>),
}

const MAX_DEPTH: usize = 24;

/// Encodes a value from `data`, decodes it with both machines, and panics if they disagree.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(value), Ok(protocol)) = (Plain::arbitrary(&mut u), u8::arbitrary(&mut u)) else {
        return;
    };
    let protocol = protocol % 6;
    let value = normalize(value, protocol, 0);
    let choices = u.take_rest();
    let bytes = encode(&value, protocol, choices);
    let want = canon_of_plain(&value);
    let ours = match Pickle::parse(&bytes, &Options::default().lenient(true)) {
        Ok(p) => canon_of_ours(p.root()),
        Err(e) => panic!("pth-reader refuses a plain pickle: {e}\n{value:?}\n{bytes:?}"),
    };
    let theirs = match serde_pickle::value_from_slice(&bytes, serde_pickle::DeOptions::new()) {
        Ok(v) => canon_of_serde(&v),
        Err(e) => panic!("serde-pickle refuses a plain pickle: {e}\n{value:?}\n{bytes:?}"),
    };
    assert_eq!(ours, want, "pth-reader decodes a different value\n{bytes:?}");
    assert_eq!(theirs, want, "serde-pickle decodes a different value\n{bytes:?}");
}

/// Depth capped, keys and members unique (first kept), and only what the protocol can say without globals.
fn normalize(v: Plain, protocol: u8, depth: usize) -> Plain {
    let below = |items: Vec<Plain>| -> Vec<Plain> {
        items
            .into_iter()
            .take(64)
            .map(|x| normalize(x, protocol, depth + 1))
            .collect()
    };
    let unique = |keys: Vec<Key>| -> Vec<Key> {
        let mut seen = Vec::new();
        for k in keys.into_iter().take(64) {
            if !seen.contains(&k) {
                seen.push(k);
            }
        }
        seen
    };
    if depth >= MAX_DEPTH {
        return Plain::None;
    }
    match v {
        Plain::Big(b) => Plain::Big(b.into_iter().take(300).collect()),
        Plain::Bytes(_) if protocol < 3 => Plain::None,
        Plain::Set(_) | Plain::FrozenSet(_) if protocol < 4 => Plain::None,
        Plain::List(items) => Plain::List(below(items)),
        Plain::Tuple(items) => Plain::Tuple(below(items)),
        Plain::Dict(items) => {
            let mut seen = Vec::new();
            let mut out = Vec::new();
            for (k, x) in items.into_iter().take(64) {
                if !seen.contains(&k) {
                    seen.push(k.clone());
                    out.push((k, normalize(x, protocol, depth + 1)));
                }
            }
            Plain::Dict(out)
        }
        Plain::Set(keys) => Plain::Set(unique(keys)),
        Plain::FrozenSet(keys) => Plain::FrozenSet(unique(keys)),
        other => other,
    }
}

// ------------------------------------------------------------------------------------------------ encoding

struct Encoder<'c> {
    out: Vec<u8>,
    protocol: u8,
    choices: &'c [u8],
    /// Memoised leaves: their encoding -> memo index.
    memo: BTreeMap<Vec<u8>, u32>,
    next_memo: u32,
}

impl Encoder<'_> {
    /// The next choice in `0..n` (0 once the choices run out).
    fn choose(&mut self, n: u8) -> u8 {
        match self.choices.split_first() {
            Some((c, rest)) => {
                self.choices = rest;
                c % n.max(1)
            }
            None => 0,
        }
    }

    fn text(&self) -> bool {
        self.protocol == 0
    }

    fn leaf(&mut self, encoded: Vec<u8>) {
        if let Some(&i) = self.memo.get(&encoded) {
            if self.choose(2) == 0 {
                return self.get(i);
            }
        }
        self.out.extend_from_slice(&encoded);
        // Each PUT gets a fresh index: serde-pickle resolves GETs lazily, so an index written twice would read the
        // second value everywhere (legal pickle, outside the contract).
        if self.choose(3) == 0 {
            let i = self.next_memo;
            self.next_memo += 1;
            self.put(i);
            self.memo.entry(encoded).or_insert(i);
        }
    }

    fn put(&mut self, i: u32) {
        match (
            self.text(),
            self.protocol >= 4 && self.choose(2) == 0,
            i < 256 && self.choose(2) == 0,
        ) {
            (true, _, _) => self.out.extend_from_slice(format!("p{i}\n").as_bytes()),
            (false, true, _) => self.out.push(0x94),
            (false, false, true) => self.out.extend_from_slice(&[b'q', i as u8]),
            (false, false, false) => {
                self.out.push(b'r');
                self.out.extend_from_slice(&i.to_le_bytes());
            }
        }
    }

    fn get(&mut self, i: u32) {
        if self.text() {
            self.out.extend_from_slice(format!("g{i}\n").as_bytes());
        } else if i < 256 && self.choose(2) == 0 {
            self.out.extend_from_slice(&[b'h', i as u8]);
        } else {
            self.out.push(b'j');
            self.out.extend_from_slice(&i.to_le_bytes());
        }
    }

    fn int(&mut self, i: &BigInt) -> Vec<u8> {
        let small = i64::try_from(i).ok();
        let mut out = Vec::new();
        match (self.text(), small, self.choose(3)) {
            (true, Some(v), 0) if i32::try_from(v).is_ok() => out.extend_from_slice(format!("I{v}\n").as_bytes()),
            (true, _, _) => out.extend_from_slice(format!("L{i}L\n").as_bytes()),
            (false, Some(v), 0) if (0..256).contains(&v) => out.extend_from_slice(&[b'K', v as u8]),
            (false, Some(v), 1) if (0..65536).contains(&v) => {
                out.push(b'M');
                out.extend_from_slice(&(v as u16).to_le_bytes());
            }
            (false, Some(v), _) if i32::try_from(v).is_ok() && self.choose(2) == 0 => {
                out.push(b'J');
                out.extend_from_slice(&(v as i32).to_le_bytes());
            }
            (false, _, _) if self.protocol >= 2 => {
                let bytes = if *i == BigInt::from(0) {
                    Vec::new()
                } else {
                    i.to_signed_bytes_le()
                };
                if bytes.len() < 256 && self.choose(2) == 0 {
                    out.extend_from_slice(&[0x8a, bytes.len() as u8]);
                } else {
                    out.push(0x8b);
                    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                }
                out.extend_from_slice(&bytes);
            }
            (false, Some(v), _) if i32::try_from(v).is_ok() => {
                out.push(b'J');
                out.extend_from_slice(&(v as i32).to_le_bytes());
            }
            (false, _, _) => out.extend_from_slice(format!("L{i}L\n").as_bytes()),
        }
        out
    }

    fn float(&mut self, f: f64) -> Vec<u8> {
        if self.text() || self.choose(4) == 0 {
            let text = if f.is_nan() {
                "nan".to_owned()
            } else if f.is_infinite() {
                if f > 0.0 { "inf" } else { "-inf" }.to_owned()
            } else {
                format!("{f:?}")
            };
            return format!("F{text}\n").into_bytes();
        }
        let mut out = vec![b'G'];
        out.extend_from_slice(&f.to_be_bytes());
        out
    }

    fn str(&mut self, s: &str) -> Vec<u8> {
        let n = s.len();
        let mut out = Vec::new();
        let form = if self.text() {
            0
        } else {
            1 + self.choose(if self.protocol >= 4 { 3 } else { 1 })
        };
        match form {
            0 => {
                out.push(b'V');
                out.extend_from_slice(&raw_unicode_escape(s));
                out.push(b'\n');
            }
            2 if n < 256 => {
                out.extend_from_slice(&[0x8c, n as u8]);
                out.extend_from_slice(s.as_bytes());
            }
            3 => {
                out.push(0x8d);
                out.extend_from_slice(&(n as u64).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            _ => {
                out.push(b'X');
                out.extend_from_slice(&(n as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
        out
    }

    fn bytes(&mut self, b: &[u8]) -> Vec<u8> {
        let n = b.len();
        let mut out = Vec::new();
        match self.choose(if self.protocol >= 4 { 3 } else { 2 }) {
            0 if n < 256 => out.extend_from_slice(&[b'C', n as u8]),
            2 => {
                out.push(0x8e);
                out.extend_from_slice(&(n as u64).to_le_bytes());
            }
            _ => {
                out.push(b'B');
                out.extend_from_slice(&(n as u32).to_le_bytes());
            }
        }
        out.extend_from_slice(b);
        out
    }

    fn key(&mut self, k: &Key) {
        match k {
            Key::Int(i) => {
                let e = self.int(&BigInt::from(*i));
                self.leaf(e);
            }
            Key::Str(s) => {
                let e = self.str(s);
                self.leaf(e);
            }
        }
    }

    fn value(&mut self, v: &Plain) {
        match v {
            Plain::None => self.out.push(b'N'),
            Plain::Bool(b) if self.protocol < 2 => self.out.extend_from_slice(if *b { b"I01\n" } else { b"I00\n" }),
            Plain::Bool(b) => self.out.push(if *b { 0x88 } else { 0x89 }),
            Plain::Int(i) => {
                let e = self.int(&BigInt::from(*i));
                self.leaf(e);
            }
            Plain::Big(b) => {
                let e = self.int(&BigInt::from_signed_bytes_le(b));
                self.leaf(e);
            }
            Plain::Float(f) => {
                let e = self.float(*f);
                self.leaf(e);
            }
            Plain::Str(s) => {
                let e = self.str(s);
                self.leaf(e);
            }
            Plain::Bytes(b) => {
                let e = self.bytes(b);
                self.leaf(e);
            }
            Plain::List(items) => self.list(items),
            Plain::Tuple(items) => self.tuple(items),
            Plain::Dict(items) => self.dict(items),
            Plain::Set(keys) => {
                self.out.push(0x8f);
                if !keys.is_empty() {
                    self.out.push(b'(');
                    keys.iter().for_each(|k| self.key(k));
                    self.out.push(0x90);
                }
            }
            Plain::FrozenSet(keys) => {
                self.out.push(b'(');
                keys.iter().for_each(|k| self.key(k));
                self.out.push(0x91);
            }
        }
    }

    fn list(&mut self, items: &[Plain]) {
        if self.text() || self.choose(3) == 0 {
            self.out.push(b'(');
            items.iter().for_each(|x| self.value(x));
            self.out.push(b'l');
        } else if self.choose(2) == 0 {
            self.out.push(b']');
            for x in items {
                self.value(x);
                self.out.push(b'a');
            }
        } else {
            self.out.push(b']');
            if !items.is_empty() {
                self.out.push(b'(');
                items.iter().for_each(|x| self.value(x));
                self.out.push(b'e');
            }
        }
    }

    fn tuple(&mut self, items: &[Plain]) {
        let short = self.protocol >= 2 && items.len() <= 3 && self.choose(2) == 0;
        if short {
            items.iter().for_each(|x| self.value(x));
            self.out.push(match items.len() {
                0 => b')',
                1 => 0x85,
                2 => 0x86,
                _ => 0x87,
            });
        } else {
            self.out.push(b'(');
            items.iter().for_each(|x| self.value(x));
            self.out.push(b't');
        }
    }

    fn dict(&mut self, items: &[(Key, Plain)]) {
        if self.text() || self.choose(3) == 0 {
            self.out.push(b'(');
            for (k, x) in items {
                self.key(k);
                self.value(x);
            }
            self.out.push(b'd');
        } else if self.choose(2) == 0 {
            self.out.push(b'}');
            for (k, x) in items {
                self.key(k);
                self.value(x);
                self.out.push(b's');
            }
        } else {
            self.out.push(b'}');
            if !items.is_empty() {
                self.out.push(b'(');
                for (k, x) in items {
                    self.key(k);
                    self.value(x);
                }
                self.out.push(b'u');
            }
        }
    }
}

/// Python's protocol-0 `UNICODE` argument: `\`, NUL, `\n`, `\r` and `\x1a` as `\uXXXX`, code points under 256 as
/// Latin-1 bytes, the rest as `\uXXXX` / `\UXXXXXXXX` (raw-unicode-escape).
fn raw_unicode_escape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for c in s.chars() {
        let cp = c as u32;
        match c {
            '\\' | '\0' | '\n' | '\r' | '\x1a' => out.extend_from_slice(format!("\\u{cp:04x}").as_bytes()),
            _ if cp < 256 => out.push(cp as u8),
            _ if cp < 0x10000 => out.extend_from_slice(format!("\\u{cp:04x}").as_bytes()),
            _ => out.extend_from_slice(format!("\\U{cp:08x}").as_bytes()),
        }
    }
    out
}

fn encode(value: &Plain, protocol: u8, choices: &[u8]) -> Vec<u8> {
    let mut e = Encoder {
        out: Vec::new(),
        protocol,
        choices,
        memo: BTreeMap::new(),
        next_memo: 0,
    };
    if protocol >= 2 {
        e.out.extend_from_slice(&[0x80, protocol]);
    }
    let framed = protocol >= 4 && e.choose(2) == 0;
    e.value(value);
    e.out.push(b'.');
    if !framed {
        return e.out;
    }
    // One frame around everything after PROTO.
    let body = e.out.split_off(2);
    e.out.push(0x95);
    e.out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    e.out.extend_from_slice(&body);
    e.out
}

// ------------------------------------------------------------------------------------------------ comparing

fn float_canon(f: f64) -> Canon {
    Canon::Float(if f.is_nan() { f64::NAN.to_bits() } else { f.to_bits() })
}

fn sorted(mut items: Vec<Canon>) -> Vec<Canon> {
    items.sort();
    items
}

fn sorted_pairs(mut items: Vec<(Canon, Canon)>) -> Vec<(Canon, Canon)> {
    items.sort();
    items
}

fn key_canon(k: &Key) -> Canon {
    match k {
        Key::Int(i) => Canon::Int(BigInt::from(*i)),
        Key::Str(s) => Canon::Str(s.clone()),
    }
}

fn canon_of_plain(v: &Plain) -> Canon {
    match v {
        Plain::None => Canon::None,
        Plain::Bool(b) => Canon::Bool(*b),
        Plain::Int(i) => Canon::Int(BigInt::from(*i)),
        Plain::Big(b) => Canon::Int(BigInt::from_signed_bytes_le(b)),
        Plain::Float(f) => float_canon(*f),
        Plain::Str(s) => Canon::Str(s.clone()),
        Plain::Bytes(b) => Canon::Bytes(b.clone()),
        Plain::List(items) => Canon::List(items.iter().map(canon_of_plain).collect()),
        Plain::Tuple(items) => Canon::Tuple(items.iter().map(canon_of_plain).collect()),
        Plain::Dict(items) => Canon::Dict(sorted_pairs(
            items.iter().map(|(k, x)| (key_canon(k), canon_of_plain(x))).collect(),
        )),
        Plain::Set(keys) => Canon::Set(sorted(keys.iter().map(key_canon).collect())),
        Plain::FrozenSet(keys) => Canon::FrozenSet(sorted(keys.iter().map(key_canon).collect())),
    }
}

fn canon_of_ours(v: Value<'_>) -> Canon {
    let all = |s: pth_reader::Seq<'_>| s.iter().map(canon_of_ours).collect::<Vec<_>>();
    match v.kind() {
        Kind::None => Canon::None,
        Kind::Bool(b) => Canon::Bool(b),
        Kind::Int(i) => Canon::Int(BigInt::from(i)),
        Kind::BigInt(b) => Canon::Int(BigInt::from_signed_bytes_le(b.to_le_bytes())),
        Kind::Float(f) => float_canon(f),
        Kind::Str(s) => Canon::Str(s.to_owned()),
        Kind::Bytes(b) => Canon::Bytes(b.to_vec()),
        Kind::List(s) => Canon::List(all(s)),
        Kind::Tuple(s) => Canon::Tuple(all(s)),
        Kind::Set(s) => Canon::Set(sorted(all(s))),
        Kind::FrozenSet(s) => Canon::FrozenSet(sorted(all(s))),
        Kind::Dict(d) => Canon::Dict(sorted_pairs(
            d.iter().map(|(k, x)| (canon_of_ours(k), canon_of_ours(x))).collect(),
        )),
        other => panic!("pth-reader decodes a plain pickle to {other:?}"),
    }
}

/// A dict key or set element: as the value it is (serde-pickle's own conversion).
fn canon_of_hashable(h: &serde_pickle::HashableValue) -> Canon {
    canon_of_serde(&h.clone().into_value())
}

fn canon_of_serde(v: &serde_pickle::Value) -> Canon {
    use serde_pickle::Value as V;
    match v {
        V::None => Canon::None,
        V::Bool(b) => Canon::Bool(*b),
        V::I64(i) => Canon::Int(BigInt::from(*i)),
        V::Int(i) => Canon::Int(BigInt::from_signed_bytes_le(&i.to_signed_bytes_le())),
        V::F64(f) => float_canon(*f),
        V::String(s) => Canon::Str(s.clone()),
        V::Bytes(b) => Canon::Bytes(b.clone()),
        V::List(items) => Canon::List(items.iter().map(canon_of_serde).collect()),
        V::Tuple(items) => Canon::Tuple(items.iter().map(canon_of_serde).collect()),
        V::Dict(map) => Canon::Dict(sorted_pairs(
            map.iter()
                .map(|(k, x)| (canon_of_hashable(k), canon_of_serde(x)))
                .collect(),
        )),
        V::Set(set) => Canon::Set(sorted(set.iter().map(canon_of_hashable).collect())),
        V::FrozenSet(set) => Canon::FrozenSet(sorted(set.iter().map(canon_of_hashable).collect())),
    }
}

//! The pickle machine against CPython's own pickler (fixtures/pickles, protocols 0-5), against
//! serde-pickle as an independent encoder, and against hand-written opcode sequences for the
//! opcodes CPython 3 no longer emits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use pth_reader::{Error, ErrorKind, Kind, Options, Pickle, Value};
use serde_json::{json, Value as Json};

fn lenient() -> Options {
    Options::default().lenient(true)
}

/// The tagged JSON of fixtures/pickles/generate.py `describe`.
fn describe(v: Value<'_>) -> Json {
    let float = |f: f64| {
        if f.is_nan() {
            json!({"float": "nan"})
        } else if f.is_infinite() {
            json!({"float": if f > 0.0 { "inf" } else { "-inf" }})
        } else if f == 0.0 && f.is_sign_negative() {
            json!({"float": "-0.0"})
        } else {
            json!(f)
        }
    };
    let sorted = |items: Vec<Json>| {
        let mut items = items;
        items.sort_by_key(|j| j.to_string());
        items
    };
    match v.kind() {
        Kind::None => Json::Null,
        Kind::Bool(b) => json!(b),
        Kind::Int(i) => json!(i),
        Kind::BigInt(b) => json!({"int": b.to_decimal()}),
        Kind::Float(f) => float(f),
        Kind::Complex { re, im } => json!({"complex": [float(re), float(im)]}),
        Kind::Str(s) => json!(s),
        Kind::Bytes(b) => json!({"bytes": hex::encode(b)}),
        Kind::ByteArray(b) => json!({"bytearray": hex::encode(b)}),
        Kind::List(s) => json!({"list": s.iter().map(describe).collect::<Vec<_>>()}),
        Kind::Tuple(s) => json!({"tuple": s.iter().map(describe).collect::<Vec<_>>()}),
        Kind::Set(s) => json!({"set": sorted(s.iter().map(describe).collect())}),
        Kind::FrozenSet(s) => json!({"frozenset": sorted(s.iter().map(describe).collect())}),
        Kind::Dict(d) => json!({"dict": d.iter().map(|(k, x)| json!([describe(k), describe(x)])).collect::<Vec<_>>()}),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn cpython_pickles_of_every_protocol_decode_to_the_same_value() {
    let dir = test_support::root().join("fixtures/pickles");
    let expected = test_support::load_json(&dir.join("expected.json"));
    for f in expected["files"].as_array().unwrap() {
        let bytes = std::fs::read(dir.join(f["file"].as_str().unwrap())).unwrap();
        let pickle = Pickle::parse(&bytes, &lenient()).unwrap_or_else(|e| panic!("{}: {e}", f["file"]));
        // Protocols 0 and 1 have no PROTO opcode.
        let protocol = f["protocol"].as_u64().unwrap();
        assert_eq!(u64::from(pickle.protocol()), if protocol >= 2 { protocol } else { 0 });
        assert_eq!(describe(pickle.root()), expected["value"], "{}", f["file"]);
        // Shared values keep their identity: `shared` is [x, x].
        let shared = pickle.root().get("shared").unwrap().as_seq().unwrap();
        assert_eq!(
            shared.get(0).unwrap().id(),
            shared.get(1).unwrap().id(),
            "{}",
            f["file"]
        );
    }
}

#[test]
fn strict_mode_refuses_builtins_torch_refuses_but_reads_allowlisted_ones() {
    // Protocol 2 pickles b"" as builtins.bytes() and frozensets as builtins.frozenset(...),
    // neither of which weights_only allows.
    let bytes = std::fs::read(test_support::root().join("fixtures/pickles/proto2.pkl")).unwrap();
    match Pickle::parse(&bytes, &Options::default()) {
        Err(e) => {
            let ErrorKind::GlobalRefused { module, name } = e.kind() else {
                panic!("{e}");
            };
            assert_eq!(module, "builtins");
            assert!(name == "bytes" || name == "frozenset", "{name}");
        }
        other => panic!("{other:?}"),
    }
    // set, bytearray, complex, OrderedDict and _codecs.encode are allowlisted.
    let ok = b"\x80\x02c__builtin__\nset\n]K\x01a\x85Rc_codecs\nencode\nX\x02\x00\x00\x00\xc3\xbfX\x06\x00\x00\x00latin1\x86R\x86.";
    let p = Pickle::parse(ok, &Options::default()).unwrap();
    assert_eq!(describe(p.root()), json!({"tuple": [{"set": [1]}, {"bytes": "ff"}]}));
}

/// Values serde-pickle can write, made by a small deterministic generator.
fn random_value(seed: &mut u64, depth: u32) -> serde_pickle::Value {
    use serde_pickle::{HashableValue as H, Value as V};
    let mut next = || {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    };
    let pick = next() % if depth > 3 { 6 } else { 10 };
    match pick {
        0 => V::None,
        1 => V::Bool(next() % 2 == 0),
        2 => V::I64(next() as i64 >> (next() % 64)),
        3 => V::F64(f64::from_bits(next() & 0x7fef_ffff_ffff_ffff) * if next() % 2 == 0 { 1.0 } else { -1.0 }),
        4 => V::String(
            (0..next() % 20)
                .map(|i| char::from_u32(0x41 + ((next() + i) % 0x2000) as u32).unwrap_or('x'))
                .collect(),
        ),
        5 => V::Bytes((0..next() % 300).map(|_| next() as u8).collect()),
        6 => V::List((0..next() % 5).map(|_| random_value(seed, depth + 1)).collect()),
        7 => V::Tuple((0..next() % 5).map(|_| random_value(seed, depth + 1)).collect()),
        8 => V::Dict(
            (0..next() % 5)
                .map(|i| (H::I64(i as i64), random_value(seed, depth + 1)))
                .collect(),
        ),
        _ => V::Set((0..next() % 5).map(|i| H::String(format!("k{i}"))).collect()),
    }
}

/// serde-pickle's values in the same tagged JSON.
fn describe_oracle(v: &serde_pickle::Value) -> Json {
    use serde_pickle::{HashableValue as H, Value as V};
    fn hashable(h: &H) -> Json {
        match h {
            H::I64(i) => json!(i),
            H::String(s) => json!(s),
            other => panic!("{other:?}"),
        }
    }
    match v {
        V::None => Json::Null,
        V::Bool(b) => json!(b),
        V::I64(i) => json!(i),
        V::F64(f) => json!(f),
        V::String(s) => json!(s),
        V::Bytes(b) => json!({"bytes": hex::encode(b)}),
        V::List(items) => json!({"list": items.iter().map(describe_oracle).collect::<Vec<_>>()}),
        V::Tuple(items) => json!({"tuple": items.iter().map(describe_oracle).collect::<Vec<_>>()}),
        V::Dict(map) => {
            json!({"dict": map.iter().map(|(k, x)| json!([hashable(k), describe_oracle(x)])).collect::<Vec<_>>()})
        }
        V::Set(set) => {
            let mut items: Vec<Json> = set.iter().map(hashable).collect();
            items.sort_by_key(|j| j.to_string());
            json!({"set": items})
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn serde_pickle_encodings_decode_to_the_values_it_encoded() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..500 {
        let value = random_value(&mut seed, 0);
        for proto3 in [true, false] {
            let options = serde_pickle::SerOptions::new();
            let options = if proto3 { options } else { options.proto_v2() };
            let bytes = serde_pickle::value_to_vec(&value, options).unwrap();
            let decoded = Pickle::parse(&bytes, &lenient()).unwrap_or_else(|e| panic!("round {round}: {e}"));
            let mut got = describe(decoded.root());
            // serde-pickle's dicts are BTreeMaps: compare items in its order.
            sort_dicts(&mut got);
            assert_eq!(got, describe_oracle(&value), "round {round}");
        }
    }
}

fn sort_dicts(j: &mut Json) {
    match j {
        Json::Object(map) => {
            for v in map.values_mut() {
                sort_dicts(v);
            }
            if let Some(Json::Array(items)) = map.get_mut("dict") {
                items.sort_by_key(|pair| pair[0].as_i64());
            }
        }
        Json::Array(items) => items.iter_mut().for_each(sort_dicts),
        _ => {}
    }
}

/// Decodes a hand-written pickle leniently and describes it.
fn run(bytes: &[u8]) -> Result<Json, Error> {
    let p = Pickle::parse(bytes, &lenient())?;
    Ok(match p.root().kind() {
        Kind::Object(o) => json!({
            "object": o.class_name().map(|(m, n)| format!("{m}.{n}")),
            "args": describe(o.args()),
            "kwargs": o.kwargs().map(describe),
            "state": o.state().map(describe),
        }),
        Kind::PersistentId(pid) => json!({"pid": describe(pid)}),
        _ => describe(p.root()),
    })
}

#[test]
fn opcodes_cpython_3_does_not_emit() {
    // Protocol 0/1 strings: STRING (escapes), BINSTRING, SHORT_BINSTRING; POP, POP_MARK, DUP.
    assert_eq!(
        run(b"(S'a\\'b\\x41\\n'\np0\nT\x02\x00\x00\x00xyU\x01z0(I1\n1Ng0\n2t.").unwrap(),
        json!({"tuple": ["a'bA\n", "xy", null, "a'bA\n", "a'bA\n"]})
    );
    // INT/LONG/FLOAT text forms, True/False spelt I01/I00.
    assert_eq!(
        run(b"(I01\nI00\nI-5\nL123456789012345678901234567890L\nF-1.5e-3\nt.").unwrap(),
        json!({"tuple": [true, false, -5, {"int": "123456789012345678901234567890"}, -0.0015]})
    );
    // UNICODE raw-unicode-escape.
    assert_eq!(run(b"Vcaf\xe9 \\u20ac\n.").unwrap(), json!("café €"));
    // LONG4, BINUNICODE8, BINBYTES8, LONG_BINPUT/LONG_BINGET.
    assert_eq!(run(b"\x80\x04(\x8b\x02\x00\x00\x00\x00\x01\x8d\x01\x00\x00\x00\x00\x00\x00\x00a\x8e\x01\x00\x00\x00\x00\x00\x00\x00br\x07\x00\x00\x00j\x07\x00\x00\x00t.").unwrap(), json!({"tuple": [256, "a", {"bytes": "62"}, {"bytes": "62"}]}));
    // INST and OBJ create inert objects; BUILD sets their state.
    assert_eq!(
        run(b"(I1\nimod\nCls\n}S'k'\nI2\nsb.").unwrap(),
        json!({"object": "mod.Cls", "args": {"tuple": [1]}, "kwargs": null, "state": {"dict": [["k", 2]]}})
    );
    assert_eq!(
        run(b"(cmod\nCls\nK\x05o.").unwrap(),
        json!({"object": "mod.Cls", "args": {"tuple": [5]}, "kwargs": null, "state": null})
    );
    // NEWOBJ and NEWOBJ_EX.
    assert_eq!(
        run(b"\x80\x04\x8c\x03mod\x8c\x03Cls\x93K\x01\x85}\x8c\x01k\x8c\x01vs\x92.").unwrap(),
        json!({"object": "mod.Cls", "args": {"tuple": [1]}, "kwargs": {"dict": [["k", "v"]]}, "state": null})
    );
    // PERSID (text) and BINPERSID stay unresolved in a standalone pickle.
    assert_eq!(run(b"Pabc\n.").unwrap(), json!({"pid": "abc"}));
    assert_eq!(run(b"\x80\x02K\x07Q.").unwrap(), json!({"pid": 7}));
    // A list containing itself: decodes (the arena makes the cycle harmless).
    let p = Pickle::parse(b"\x80\x02]q\x00h\x00a.", &lenient()).unwrap();
    let list = p.root().as_seq().unwrap();
    assert_eq!(list.get(0).unwrap().id(), p.root().id());
}

#[test]
fn malformed_pickles_are_errors_with_offsets() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "without STOP"),
        (b"\x80\x02", "without STOP"),
        (b"\x80\x09N.", "protocol 9"),
        (b"\xffN.", "unknown opcode 0xff"),
        (b"R.", "underflow"),
        (b"(t0.", "underflow"),
        (b"1.", "no MARK"),
        (b"h\x05.", "never stored"),
        (b"\x82\x01.", "extension registry"),
        (b"\x80\x05\x97.", "out-of-band"),
        (b"\x80\x05N\x98.", "out-of-band"),
        (b"\x8e\xff\xff\xff\xff\xff\xff\xff\x7f.", "exceeds"),
        (b"\x95\x00\x00\x00\x00\x00\x00\x00\x80N.", "FRAME"),
        (b"\x8b\xff\xff\xff\xff.", "negative"),
        (b"X\x02\x00\x00\x00\xff\xfe.", "UTF-8"),
        (b"(K\x01d.", "odd"),
        (b"K\x01K\x02a.", "Can only append to lists, but got int"),
        (b"K\x01K\x02K\x03s.", "Can only SETITEM for dict"),
        (b"K\x01}b.", "Can only build"),
        (b"}]K\x01s.", "unhashable type: 'list'"),
        (b"]K\x01K\x02s.", "but got list"),
        (b"S'unterminated\n.", "STRING"),
    ];
    for (bytes, needle) in cases {
        match Pickle::parse(bytes, &lenient()) {
            Err(e) if matches!(e.kind(), ErrorKind::Pickle { .. } | ErrorKind::LimitExceeded { .. }) => {
                assert!(e.to_string().contains(needle), "{bytes:?}: {e}")
            }
            other => panic!("{bytes:?}: {other:?}"),
        }
    }
}

#[test]
fn deep_nesting_decodes_and_drops_without_recursion() {
    // 10^6 nested lists: EMPTY_LIST then (EMPTY_LIST APPEND)... would need a stack; instead
    // MARK ... LIST nests a million deep with two bytes per level.
    let depth = 1_000_000;
    let mut bytes = b"(".repeat(depth);
    bytes.extend(b"l".repeat(depth));
    bytes.push(b'.');
    let p = Pickle::parse(&bytes, &lenient()).unwrap();
    let mut v = p.root();
    let mut levels = 0;
    while let Some(inner) = v.index(0) {
        v = inner;
        levels += 1;
    }
    assert_eq!(levels, depth - 1);
    drop(p); // must not overflow the stack
}

#[test]
fn repeated_dict_keys_merge_as_in_python() {
    // {'a': 1, 'b': 2, 'a': 3, 1: 'x', True: 'y'} → {'a': 3, 'b': 2, 1: 'y'}
    let p = Pickle::parse(b"\x80\x02}(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00bK\x02X\x01\x00\x00\x00aK\x03K\x01X\x01\x00\x00\x00x\x88X\x01\x00\x00\x00yu.", &lenient()).unwrap();
    assert_eq!(describe(p.root()), json!({"dict": [["a", 3], ["b", 2], [1, "y"]]}));
}

#[test]
fn protocol_1_objects_name_their_real_class() {
    // copyreg._reconstructor(mod.Cls, builtins.object, None) with a state dict.
    let p = Pickle::parse(
        b"ccopy_reg\n_reconstructor\n(cmod\nCls\nc__builtin__\nobject\nNtR}S'k'\nK\x01sb.",
        &lenient(),
    )
    .unwrap();
    let o = p.root().as_object().unwrap();
    assert_eq!(o.class_name(), Some(("copyreg", "_reconstructor")));
    assert_eq!(o.instance_class(), Some(("mod", "Cls")));
    assert_eq!(p.root().get("k").and_then(|v| v.as_i64()), Some(1));
    // Errors name the source given.
    let e = Pickle::parse_named(b"R.", "data[policy_kwargs]", &lenient())
        .err()
        .unwrap();
    assert!(e.to_string().contains("data[policy_kwargs]"), "{e}");
}

/// Dict keys merge as Python merges them: equal keys keep the first key's place and take the
/// last value (`1 == 1.0 == True == complex(1, 0)`, `10**16 == 1e16`); NaN objects differ
/// unless they are one object; `'a'` and `b'a'` differ.
#[test]
fn dict_keys_merge_as_python_compares_them() {
    let len = |bytes: &[u8]| {
        Pickle::parse(bytes, &lenient())
            .unwrap()
            .root()
            .as_dict()
            .unwrap()
            .len()
    };
    let one = b"K\x01";
    let one_float = b"G?\xf0\x00\x00\x00\x00\x00\x00";
    let complex_one = b"c__builtin__\ncomplex\n(K\x01K\x00tR";
    let true_ = b"\x88";
    let keys: Vec<&[u8]> = vec![one, one_float, complex_one, true_];
    let mut pickle = b"\x80\x02}(".to_vec();
    for (i, k) in keys.iter().enumerate() {
        pickle.extend(*k);
        pickle.extend([b'K', i as u8]);
    }
    pickle.extend(b"u.");
    let p = Pickle::parse(&pickle, &lenient()).unwrap();
    let d = p.root().as_dict().unwrap();
    assert_eq!(d.len(), 1);
    let (k, v) = d.iter().next().unwrap();
    assert_eq!((k.as_i64(), v.as_i64()), (Some(1), Some(3)), "first key, last value");
    // 10**16 as a LONG1 and 1e16 as a float.
    let mut big = b"\x80\x02}(\x8a\x07".to_vec();
    big.extend(&10u64.pow(16).to_le_bytes()[..7]);
    big.extend(b"K\x00GCA\xc3y7\xe0\x80\x00K\x01u.");
    assert_eq!(len(&big), 1);
    let nan = b"G\x7f\xf8\x00\x00\x00\x00\x00\x00";
    assert_eq!(
        len(&[b"\x80\x02}(".as_slice(), nan, b"K\x00", nan, b"K\x01u."].concat()),
        2
    );
    assert_eq!(
        len(&[b"\x80\x02}(".as_slice(), nan, b"q\x00K\x00h\x00K\x01u."].concat()),
        1
    );
    assert_eq!(len(b"\x80\x03}(X\x01\x00\x00\x00aK\x00C\x01aK\x01u."), 2);
    // Equal tuples are one key; a list is not a key.
    assert_eq!(
        len(b"\x80\x02}((K\x01X\x01\x00\x00\x00atK\x00(G?\xf0\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00atK\x01u."),
        1
    );
    assert!(Pickle::parse(b"\x80\x02}(]K\x01u.", &lenient()).is_err());
}

//! Writes the files `fixtures/verify_written.py` loads with torch, and what each holds:
//! `cargo run -p pth-reader --example write_fixtures -- OUT_DIR`.
//!
//! Each case is a model of a tree (plain values, nested containers, tensors over shared
//! storages with any strides and offsets) built with `write::Builder` and saved one way (zip as
//! torch writes it, zip64 fields forced, big-endian, legacy). `OUT_DIR/written.json` lists every
//! file with the tensors and leaves torch must read from it, in the manifest schema of
//! `fixtures/generate.py` (`describe`): name, dtype, shape, stride, storage_offset, sha256 of the
//! logical little-endian bytes (computed here from the model's bytes, not by the writer),
//! storage_group, requires_grad; leaves as `objects`.

use std::error::Error;
use std::path::Path;

use pth_reader::write::{Builder, SaveOptions, StorageId, Zip64};
use pth_reader::{ByteOrder, DType, ValueId};
use serde_json::{json, Map, Value as Json};
use sha2::{Digest, Sha256};

type Res<T> = Result<T, Box<dyn Error>>;

/// A value to write.
enum M {
    None,
    Bool(bool),
    Int(i64),
    /// Little-endian two's complement bytes (more than 8), and the decimal text.
    Big(Vec<u8>, String),
    Float(f64),
    Str(&'static str),
    Bytes(Vec<u8>),
    List(Vec<M>),
    Tuple(Vec<M>),
    Dict(Vec<(&'static str, M)>),
    Ordered(Vec<(&'static str, M)>),
    Tensor(T),
}

/// A tensor over storage `storage` of its case.
struct T {
    storage: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
    offset: usize,
    requires_grad: bool,
}

fn t(storage: usize, shape: &[usize], stride: &[usize], offset: usize) -> M {
    M::Tensor(T {
        storage,
        shape: shape.to_vec(),
        stride: stride.to_vec(),
        offset,
        requires_grad: false,
    })
}

/// A contiguous tensor.
fn c(storage: usize, shape: &[usize]) -> M {
    let mut stride = vec![0; shape.len()];
    let mut step = 1;
    for (s, &n) in stride.iter_mut().zip(shape).rev() {
        *s = step;
        step *= n.max(1);
    }
    t(storage, shape, &stride, 0)
}

struct Case {
    file: &'static str,
    storages: Vec<(DType, Vec<u8>)>,
    root: M,
    options: SaveOptions,
}

/// `n` deterministic bytes (a fixed linear congruential sequence).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

/// `n` elements of `dtype` with values torch reads as ordinary numbers (bools 0/1, floats
/// finite and small; every other dtype any bits).
fn elements(dtype: DType, n: usize, seed: u64) -> Vec<u8> {
    let raw = noise(n * dtype.size(), seed);
    match dtype {
        DType::Bool => raw.iter().map(|b| b & 1).collect(),
        DType::Float32 => raw
            .chunks_exact(4)
            .flat_map(|c| (f32::from(c.first().copied().unwrap_or(0)) / 8.0 - 16.0).to_le_bytes())
            .collect(),
        _ => raw,
    }
}

/// 2^2100 and its negation: 263 bytes, written with LONG4 as torch.save writes them. torch's
/// weights_only unpickler refuses LONG4 (for torch.save's own files too), so this case is
/// loaded with `weights_only=False` and listed as such.
fn huge_ints() -> M {
    let mut huge = vec![0u8; 263];
    if let Some(b) = huge.get_mut(262) {
        *b = 0x10;
    }
    let huge_decimal = power_of_two_decimal(2100);
    M::Dict(vec![("huge", M::Big(huge, huge_decimal))])
}

fn plain_values() -> M {
    let big = 170_141_183_460_469_231_731_687_303_715_884_105_727i128; // 2^127 - 1
    M::Dict(vec![
        ("none", M::None),
        ("yes", M::Bool(true)),
        ("no", M::Bool(false)),
        (
            "ints",
            M::List(
                [
                    0,
                    1,
                    255,
                    256,
                    65535,
                    65536,
                    -1,
                    -129,
                    2_147_483_647,
                    -2_147_483_648,
                    1 << 40,
                    i64::MIN,
                    i64::MAX,
                ]
                .map(M::Int)
                .into(),
            ),
        ),
        ("big", M::Big(big.to_le_bytes().to_vec(), big.to_string())),
        (
            "negative_big",
            M::Big((-big).to_le_bytes().to_vec(), (-big).to_string()),
        ),
        (
            "floats",
            M::Tuple(
                [
                    0.0,
                    -0.0,
                    1.5,
                    -2.25e-300,
                    f64::MAX,
                    f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                ]
                .map(M::Float)
                .into(),
            ),
        ),
        (
            "text",
            M::List(vec![
                M::Str(""),
                M::Str("ascii"),
                M::Str("ünïcödé ✓ 𝄞"),
                M::Str("line\nbreak"),
            ]),
        ),
        (
            "bytes",
            M::List(vec![
                M::Bytes(vec![]),
                M::Bytes((0..=255).collect()),
                M::Bytes(b"latin1".to_vec()),
            ]),
        ),
        (
            "empty",
            M::Tuple(vec![
                M::List(vec![]),
                M::Tuple(vec![]),
                M::Dict(vec![]),
                M::Ordered(vec![]),
            ]),
        ),
        (
            "nested",
            M::Ordered(vec![(
                "a",
                M::List(vec![M::Tuple(vec![M::Dict(vec![(
                    "deep",
                    M::List(vec![M::Int(7), M::Ordered(vec![("x", M::Float(0.5))])]),
                )])])]),
            )]),
        ),
    ])
}

/// Every dtype a builder stores (quantized ones need a quantizer: `quantized.pt` re-saved covers
/// them), each in its own storage.
fn all_dtypes() -> Case {
    let dtypes: Vec<DType> = DType::ALL.iter().copied().filter(|d| !d.is_quantized()).collect();
    let storages = dtypes
        .iter()
        .enumerate()
        .map(|(i, &d)| (d, elements(d, 6, i as u64)))
        .collect();
    let items = dtypes
        .iter()
        .enumerate()
        .map(|(i, d)| (d.name(), c(i, &[2, 3])))
        .collect();
    Case {
        file: "all_dtypes.pt",
        storages,
        root: M::Ordered(items),
        options: SaveOptions::default(),
    }
}

/// Views of shared storages: slices, transposes, strided, expanded, empty, requires_grad.
fn views(file: &'static str, options: SaveOptions) -> Case {
    let storages = vec![
        (DType::Float32, elements(DType::Float32, 24, 1)),
        (DType::Int64, elements(DType::Int64, 10, 2)),
        (DType::Float16, elements(DType::Float16, 12, 3)),
        (DType::Float64, vec![]),
    ];
    let mut grad = t(0, &[4, 6], &[6, 1], 0);
    if let M::Tensor(x) = &mut grad {
        x.requires_grad = true;
    }
    let root = M::Dict(vec![
        ("base", grad),
        ("row", t(0, &[6], &[1], 6)),
        ("column", t(0, &[4], &[6], 2)),
        ("transposed", t(0, &[6, 4], &[1, 6], 0)),
        ("every_other", t(0, &[2, 3], &[12, 2], 1)),
        ("expanded", t(1, &[3, 4], &[0, 1], 2)),
        ("scalar", t(1, &[], &[], 9)),
        ("longs", c(1, &[10])),
        ("half_window", t(2, &[2, 2], &[6, 1], 3)),
        ("empty", t(3, &[0, 3], &[3, 1], 0)),
        ("empty_view", t(0, &[0], &[1], 5)),
    ]);
    Case {
        file,
        storages,
        root,
        options,
    }
}

/// Sixty named tensors of a few dtypes, as a state dict.
fn state_dict() -> Case {
    let dtypes = [DType::Float32, DType::BFloat16, DType::Int8, DType::Complex64];
    let storages: Vec<(DType, Vec<u8>)> = (0..60)
        .zip(dtypes.iter().cycle())
        .map(|(i, &d)| (d, elements(d, 5 + i, 100 + i as u64)))
        .collect();
    let names: Vec<&'static str> = (0..60)
        .map(|i| &*Box::leak(format!("layers.{i}.weight").into_boxed_str()))
        .collect();
    let items = names.iter().enumerate().map(|(i, &n)| (n, c(i, &[5 + i]))).collect();
    Case {
        file: "state_dict.pt",
        storages,
        root: M::Ordered(items),
        options: SaveOptions::default(),
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            file: "plain_values.pt",
            storages: vec![],
            root: plain_values(),
            options: SaveOptions::default(),
        },
        Case {
            file: "plain_values_legacy.pt",
            storages: vec![],
            root: plain_values(),
            options: SaveOptions::default().legacy(true),
        },
        Case {
            file: "huge_ints.pt",
            storages: vec![],
            root: huge_ints(),
            options: SaveOptions::default(),
        },
        Case {
            file: "huge_ints_legacy.pt",
            storages: vec![],
            root: huge_ints(),
            options: SaveOptions::default().legacy(true),
        },
        all_dtypes(),
        views("views.pt", SaveOptions::default()),
        views("views_zip64_sizes.pt", SaveOptions::default().zip64(Zip64::Sizes)),
        views("views_zip64_offsets.pt", SaveOptions::default().zip64(Zip64::Offsets)),
        views("views_zip64_always.pt", SaveOptions::default().zip64(Zip64::Always)),
        views("views_big_endian.pt", SaveOptions::default().byte_order(ByteOrder::Big)),
        views("views_legacy.pt", SaveOptions::default().legacy(true)),
        views(
            "views_legacy_big_endian.pt",
            SaveOptions::default().legacy(true).byte_order(ByteOrder::Big),
        ),
        state_dict(),
        Case {
            file: "root_tensor.pt",
            storages: vec![(DType::Float64, elements(DType::Float64, 3, 9))],
            root: t(0, &[2], &[1], 1),
            options: SaveOptions::default(),
        },
    ]
}

fn build(b: &mut Builder<'_>, ids: &[StorageId], m: &M) -> Res<ValueId> {
    Ok(match m {
        M::None => b.none(),
        M::Bool(v) => b.bool(*v),
        M::Int(v) => b.int(*v),
        M::Big(v, _) => b.big_int_le(v),
        M::Float(v) => b.float(*v),
        M::Str(v) => b.str(v),
        M::Bytes(v) => b.bytes(v),
        M::List(items) | M::Tuple(items) => {
            let ids = items.iter().map(|i| build(b, ids, i)).collect::<Res<Vec<_>>>()?;
            if matches!(m, M::List(_)) {
                b.list(&ids)?
            } else {
                b.tuple(&ids)?
            }
        }
        M::Dict(items) | M::Ordered(items) => {
            let mut pairs = Vec::new();
            for (k, v) in items {
                let key = b.str(k);
                pairs.push((key, build(b, ids, v)?));
            }
            if matches!(m, M::Dict(_)) {
                b.dict(&pairs)?
            } else {
                b.ordered_dict(&pairs)?
            }
        }
        M::Tensor(x) => {
            let storage = *ids.get(x.storage).ok_or("no such storage")?;
            let id = b.strided(storage, &x.shape, &x.stride, x.offset)?;
            b.set_requires_grad(id, x.requires_grad)?;
            id
        }
    })
}

/// What `describe` in `fixtures/generate.py` gives for the model: tensors in walk order, leaves
/// by path.
struct Expected<'c> {
    case: &'c Case,
    tensors: Vec<Json>,
    objects: Map<String, Json>,
    groups: Vec<usize>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl Expected<'_> {
    fn walk(&mut self, m: &M, path: &str) -> Res<()> {
        let leaf = match m {
            M::None => Json::Null,
            M::Bool(v) => json!(v),
            M::Int(v) => json!(v),
            M::Big(_, text) => json!({ "int": text }),
            M::Float(v) if v.is_finite() => json!(v),
            M::Float(v) => json!({ "float": if v.is_nan() { "nan" } else if *v > 0.0 { "inf" } else { "-inf" } }),
            M::Str(v) => json!(v),
            M::Bytes(v) => json!({ "bytes_hex": v.iter().map(|b| format!("{b:02x}")).collect::<String>() }),
            M::List(items) | M::Tuple(items) => {
                if items.is_empty() {
                    let empty = if matches!(m, M::List(_)) {
                        json!([])
                    } else {
                        json!({ "tuple": [] })
                    };
                    self.objects.insert(path.to_owned(), empty);
                }
                for (i, item) in items.iter().enumerate() {
                    self.walk(item, &join(path, &i.to_string()))?;
                }
                return Ok(());
            }
            M::Dict(items) | M::Ordered(items) => {
                if items.is_empty() {
                    self.objects.insert(path.to_owned(), json!({}));
                }
                for (k, v) in items {
                    self.walk(v, &join(path, k))?;
                }
                return Ok(());
            }
            M::Tensor(x) => return self.tensor(x, path),
        };
        self.objects.insert(path.to_owned(), leaf);
        Ok(())
    }

    fn tensor(&mut self, x: &T, path: &str) -> Res<()> {
        let (dtype, bytes) = self.case.storages.get(x.storage).ok_or("no such storage")?;
        let size = dtype.size();
        let numel: usize = x.shape.iter().product();
        let mut logical = Vec::with_capacity(numel * size);
        for flat in 0..numel {
            let (mut rest, mut index) = (flat, x.offset);
            for (&n, &s) in x.shape.iter().zip(&x.stride).rev() {
                index += (rest % n) * s;
                rest /= n;
            }
            logical.extend_from_slice(
                bytes
                    .get(index * size..(index + 1) * size)
                    .ok_or("outside the storage")?,
            );
        }
        let group = match self.groups.iter().position(|&g| g == x.storage) {
            Some(g) => g,
            None => {
                self.groups.push(x.storage);
                self.groups.len() - 1
            }
        };
        let mut entry = json!({
            "name": path,
            "dtype": dtype.name(),
            "shape": x.shape,
            "stride": x.stride,
            "storage_offset": x.offset,
            "sha256": Sha256::digest(&logical).iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "storage_group": group,
        });
        if let (true, Some(fields)) = (x.requires_grad, entry.as_object_mut()) {
            fields.insert("requires_grad".into(), json!(true));
        }
        self.tensors.push(entry);
        Ok(())
    }
}

/// Decimal text of 2^`exp`, by doubling decimal digits: worked out apart from the reader's
/// own conversion, so the manifest does not take its expected value from the code under test.
fn power_of_two_decimal(exp: u32) -> String {
    let mut digits = vec![1u8]; // least significant first
    for _ in 0..exp {
        let mut carry = 0;
        for d in digits.iter_mut() {
            let v = *d * 2 + carry;
            *d = v % 10;
            carry = v / 10;
        }
        if carry > 0 {
            digits.push(carry);
        }
    }
    digits.iter().rev().map(|&d| char::from(b'0' + d)).collect()
}

fn main() -> Res<()> {
    let dir = std::env::args().nth(1).ok_or("usage: write_fixtures OUT_DIR")?;
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    for case in cases() {
        let mut b = Builder::new();
        let ids = case
            .storages
            .iter()
            .map(|(d, bytes)| b.storage(*d, bytes.as_slice()))
            .collect::<Result<Vec<_>, _>>()?;
        let root = build(&mut b, &ids, &case.root)?;
        b.save(root, dir.join(case.file), &case.options)?;
        let mut expected = Expected {
            case: &case,
            tensors: Vec::new(),
            objects: Map::new(),
            groups: Vec::new(),
        };
        expected.walk(&case.root, "")?;
        files.push(json!({
            "file": case.file,
            "format": if case.options.is_legacy() { "legacy" } else { "zip" },
            "byteorder": case.options.storage_byte_order().name(),
            "zip64": format!("{:?}", case.options.zip64_fields()),
            // LONG4 (ints over 255 bytes) is outside torch's weights_only unpickler.
            "weights_only": !case.file.starts_with("huge_ints"),
            "tensors": expected.tensors,
            "objects": expected.objects,
        }));
    }
    let manifest = json!({ "writer": "pth-reader write::Builder", "files": files });
    std::fs::write(dir.join("written.json"), serde_json::to_string_pretty(&manifest)?)?;
    println!("{} files in {}", files_len(&manifest), dir.display());
    Ok(())
}

fn files_len(manifest: &Json) -> usize {
    manifest["files"].as_array().map_or(0, Vec::len)
}

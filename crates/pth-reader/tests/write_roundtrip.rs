//! Write → read round trips, with proptest (and its shrinking) over dtypes, shapes, strides,
//! storage offsets, shared storages, nesting and plain values: a [`Model`] of a tree is built
//! with `write::Builder`, saved (a zip archive as torch writes it, one with every zip64 field,
//! a big-endian one, and the legacy stream), read back, and the tree read must be the model — every tensor's
//! dtype, layout and elements (gathered from the model's storage bytes by this test's own
//! stride walk), tensors sharing a storage exactly when the model's share one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashMap;

use proptest::prelude::*;
use pth_reader::write::{Builder, SaveOptions, StorageId, Zip64};
use pth_reader::{ByteOrder, Checkpoint, DType, Error, ErrorKind, Kind, Options, Value, ValueId};

/// A value to write.
#[derive(Debug, Clone)]
enum Model {
    None,
    Bool(bool),
    Int(i64),
    /// Little-endian two's complement, more than 8 bytes.
    Big(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Model>),
    Tuple(Vec<Model>),
    Dict(Vec<(String, Model)>),
    Ordered(Vec<(String, Model)>),
    Tensor(TensorModel),
}

/// A tensor over storage `storage` (modulo the number of storages).
#[derive(Debug, Clone)]
struct TensorModel {
    storage: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
    offset: usize,
    requires_grad: bool,
}

#[derive(Debug, Clone)]
struct Case {
    storages: Vec<(DType, Vec<u8>)>,
    root: Model,
}

/// Dtypes a builder storage may have (quantized tensors need a quantizer).
fn dtypes() -> Vec<DType> {
    DType::ALL.iter().copied().filter(|d| !d.is_quantized()).collect()
}

fn storage() -> impl Strategy<Value = (DType, Vec<u8>)> {
    (0..dtypes().len(), 0usize..24).prop_flat_map(|(d, n)| {
        let dtype = dtypes()[d];
        prop::collection::vec(any::<u8>(), n * dtype.size()).prop_map(move |bytes| (dtype, bytes))
    })
}

fn tensor() -> impl Strategy<Value = TensorModel> {
    (0usize..4, 0usize..4).prop_flat_map(|(storage, rank)| {
        (
            prop::collection::vec(0usize..4, rank),
            prop::collection::vec(0usize..6, rank),
            0usize..8,
            any::<bool>(),
        )
            .prop_map(move |(shape, stride, offset, requires_grad)| TensorModel {
                storage,
                shape,
                stride,
                offset,
                requires_grad,
            })
    })
}

/// Keys unique, first occurrence kept (a Python dict would merge the others).
fn unique(items: Vec<(String, Model)>) -> Vec<(String, Model)> {
    let mut seen = std::collections::HashSet::new();
    items.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect()
}

fn model() -> impl Strategy<Value = Model> {
    let leaf = prop_oneof![
        Just(Model::None),
        any::<bool>().prop_map(Model::Bool),
        any::<i64>().prop_map(Model::Int),
        prop::collection::vec(any::<u8>(), 9..20).prop_map(Model::Big),
        any::<f64>().prop_map(Model::Float),
        "\\PC{0,12}".prop_map(Model::Str),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(Model::Bytes),
        tensor().prop_map(Model::Tensor),
        tensor().prop_map(Model::Tensor),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let items = prop::collection::vec(("[a-z.]{0,6}", inner.clone()), 0..6);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Model::List),
            prop::collection::vec(inner, 0..6).prop_map(Model::Tuple),
            items.clone().prop_map(|i| Model::Dict(unique(i))),
            items.prop_map(|i| Model::Ordered(unique(i))),
        ]
    })
}

fn case() -> impl Strategy<Value = Case> {
    (prop::collection::vec(storage(), 1..4), model()).prop_map(|(storages, root)| Case { storages, root })
}

/// What a tensor of the model is once built: its layout made valid (an invalid one becomes the
/// whole storage, flat) and `requires_grad` dropped where torch forbids it.
fn resolved(case: &Case, t: &TensorModel) -> (usize, Vec<usize>, Vec<usize>, usize, bool) {
    let s = t.storage % case.storages.len();
    let (dtype, bytes) = &case.storages[s];
    let numel = bytes.len() / dtype.size();
    let empty = t.shape.contains(&0);
    let last = t
        .shape
        .iter()
        .zip(&t.stride)
        .fold(t.offset, |acc, (&n, &st)| acc + n.saturating_sub(1) * st);
    let (shape, stride, offset) = if empty || last < numel {
        (t.shape.clone(), t.stride.clone(), t.offset)
    } else {
        (vec![numel], vec![1], 0)
    };
    let grad = t.requires_grad && (dtype.is_floating_point() || dtype.is_complex());
    (s, shape, stride, offset, grad)
}

fn build<'a>(b: &mut Builder<'a>, case: &Case, ids: &[StorageId], m: &Model) -> ValueId {
    match m {
        Model::None => b.none(),
        Model::Bool(v) => b.bool(*v),
        Model::Int(v) => b.int(*v),
        Model::Big(v) => b.big_int_le(v),
        Model::Float(v) => b.float(*v),
        Model::Str(v) => b.str(v),
        Model::Bytes(v) => b.bytes(v),
        Model::List(items) | Model::Tuple(items) => {
            let ids: Vec<ValueId> = items.iter().map(|i| build(b, case, ids, i)).collect();
            match m {
                Model::List(_) => b.list(&ids).unwrap(),
                _ => b.tuple(&ids).unwrap(),
            }
        }
        Model::Dict(items) | Model::Ordered(items) => {
            let pairs: Vec<(ValueId, ValueId)> = items
                .iter()
                .map(|(k, v)| {
                    let key = b.str(k);
                    (key, build(b, case, ids, v))
                })
                .collect();
            match m {
                Model::Dict(_) => b.dict(&pairs).unwrap(),
                _ => b.ordered_dict(&pairs).unwrap(),
            }
        }
        Model::Tensor(t) => {
            let (s, shape, stride, offset, grad) = resolved(case, t);
            let id = b.strided(ids[s], &shape, &stride, offset).unwrap();
            b.set_requires_grad(id, grad).unwrap();
            id
        }
    }
}

/// The tensor's elements in C order, gathered from the model's storage.
fn elements(case: &Case, t: &TensorModel) -> Vec<u8> {
    let (s, shape, stride, offset, _) = resolved(case, t);
    let (dtype, bytes) = &case.storages[s];
    let size = dtype.size();
    let numel: usize = shape.iter().product();
    let mut out = Vec::new();
    for flat in 0..numel {
        let (mut rest, mut index) = (flat, offset);
        for (&n, &st) in shape.iter().zip(&stride).rev() {
            index += (rest % n) * st;
            rest /= n;
        }
        out.extend_from_slice(&bytes[index * size..(index + 1) * size]);
    }
    out
}

/// Checks a value read back against the model; records each tensor's storage key by model
/// storage.
fn check(case: &Case, m: &Model, v: Value<'_>, keys: &mut HashMap<usize, String>) {
    match (m, v.kind()) {
        (Model::None, Kind::None) => {}
        (Model::Bool(a), Kind::Bool(b)) => assert_eq!(*a, b),
        (Model::Int(a), Kind::Int(b)) => assert_eq!(*a, b),
        (Model::Big(a), Kind::Int(b)) => assert_eq!(i128::from(b), le_i128(a)),
        (Model::Big(a), Kind::BigInt(b)) => assert_eq!(trim(a), b.to_le_bytes()),
        (Model::Float(a), Kind::Float(b)) => assert_eq!(a.to_bits(), b.to_bits()),
        (Model::Str(a), Kind::Str(b)) => assert_eq!(a, b),
        (Model::Bytes(a), Kind::Bytes(b)) => assert_eq!(&a[..], b),
        (Model::List(a), Kind::List(b)) | (Model::Tuple(a), Kind::Tuple(b)) => {
            assert_eq!(a.len(), b.len());
            a.iter().zip(b.iter()).for_each(|(x, y)| check(case, x, y, keys));
        }
        (Model::Dict(a), Kind::Dict(b)) | (Model::Ordered(a), Kind::Dict(b)) => {
            let ordered = matches!(m, Model::Ordered(_));
            assert_eq!(b.class().is_some(), ordered);
            assert_eq!(a.len(), b.len());
            for ((k, x), (key, y)) in a.iter().zip(b.iter()) {
                assert_eq!(Some(k.as_str()), key.as_str());
                check(case, x, y, keys);
            }
        }
        (Model::Tensor(t), Kind::Tensor(view)) => {
            let (s, shape, stride, offset, grad) = resolved(case, t);
            assert_eq!(view.dtype(), case.storages[s].0);
            assert_eq!(
                (view.shape(), view.stride(), view.storage_offset()),
                (&shape[..], &stride[..], offset)
            );
            assert_eq!(view.requires_grad(), grad);
            assert_eq!(view.to_le_bytes().unwrap().as_ref(), elements(case, t));
            if view.byte_order() == ByteOrder::Little {
                assert_eq!(view.storage_bytes().unwrap().as_slice(), case.storages[s].1);
            }
            let key = view.storage_key().unwrap().to_owned();
            assert_eq!(
                keys.entry(s).or_insert_with(|| key.clone()),
                &key,
                "one model storage, two keys"
            );
        }
        (m, k) => panic!("{m:?} read back as {k:?}"),
    }
}

fn trim(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    while v.len() > 1 {
        let (last, next) = (v[v.len() - 1], v[v.len() - 2]);
        if (last == 0 && next < 0x80) || (last == 0xff && next >= 0x80) {
            v.pop();
        } else {
            break;
        }
    }
    v
}

fn le_i128(bytes: &[u8]) -> i128 {
    let t = trim(bytes);
    let fill = if t.last().is_some_and(|&b| b >= 0x80) { 0xff } else { 0 };
    let mut le = [fill; 16];
    le[..t.len()].copy_from_slice(&t);
    i128::from_le_bytes(le)
}

fn uses_untyped(case: &Case, m: &Model) -> bool {
    match m {
        Model::Tensor(t) => case.storages[resolved(case, t).0].0.storage_name().is_none(),
        Model::List(i) | Model::Tuple(i) => i.iter().any(|x| uses_untyped(case, x)),
        Model::Dict(i) | Model::Ordered(i) => i.iter().any(|(_, x)| uses_untyped(case, x)),
        _ => false,
    }
}

fn round_trip(case: &Case) {
    let mut b = Builder::new();
    let ids: Vec<StorageId> = case
        .storages
        .iter()
        .map(|(d, bytes)| b.storage(*d, bytes.as_slice()).unwrap())
        .collect();
    let root = build(&mut b, case, &ids, &case.root);
    for options in [
        SaveOptions::default(),
        SaveOptions::default().zip64(Zip64::Always),
        SaveOptions::default().byte_order(ByteOrder::Big),
        SaveOptions::default().legacy(true),
    ] {
        let written = b.save_to(root, Vec::new(), &options);
        let big_endian_zip = !options.is_legacy() && options.storage_byte_order() == ByteOrder::Big;
        if (options.is_legacy() || big_endian_zip) && uses_untyped(case, &case.root) {
            assert!(
                matches!(
                    written.as_ref().map_err(Error::kind),
                    Err(ErrorKind::Unsupported { .. })
                ),
                "{written:?}"
            );
            continue;
        }
        let written = written.unwrap();
        let ckpt =
            Checkpoint::from_bytes(&written[..], &Options::default()).unwrap_or_else(|e| panic!("{options:?}: {e}"));
        let mut keys = HashMap::new();
        check(case, &case.root, ckpt.root(), &mut keys);
        let distinct: std::collections::HashSet<&String> = keys.values().collect();
        assert_eq!(distinct.len(), keys.len(), "two model storages, one key");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn written_trees_read_back_as_built(case in case()) {
        round_trip(&case);
    }
}

/// Views of one storage stay one storage, whatever the order they are met in.
#[test]
fn views_share_their_storage() {
    let case = Case {
        storages: vec![(DType::Float32, (0..48).collect()), (DType::Int64, (0..16).collect())],
        root: Model::List(vec![
            Model::Tensor(TensorModel {
                storage: 0,
                shape: vec![2, 3],
                stride: vec![1, 2],
                offset: 1,
                requires_grad: true,
            }),
            Model::Tensor(TensorModel {
                storage: 1,
                shape: vec![2],
                stride: vec![0],
                offset: 1,
                requires_grad: false,
            }),
            Model::Tensor(TensorModel {
                storage: 0,
                shape: vec![4],
                stride: vec![2],
                offset: 0,
                requires_grad: false,
            }),
        ]),
    };
    round_trip(&case);
}

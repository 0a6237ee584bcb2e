//! Any bytes read as a checkpoint (strict, then lenient); where they read, written back (a zip
//! archive, a legacy stream, a zip with every zip64 field and a big-endian zip), read again and compared with
//! [`same_tree`]: **a difference, or a written file that does not read, panics**. Writing may
//! refuse only what the writer documents (`Error::Unsupported`, and `Error::InvalidStorage`
//! for one storage viewed as two types, which torch refuses to save too).

// A difference is the crash the fuzzer looks for.
#![allow(clippy::panic)]

use std::collections::{HashMap, HashSet};

use pth_reader::write::{SaveOptions, Zip64};
use pth_reader::{
    ByteOrder, Checkpoint, Construction, ErrorKind, Kind, Options, Quantization, TensorView, Value, ValueId,
};

/// Reads `data`; writes and re-reads what reads; panics on any difference.
pub fn run(data: &[u8]) {
    for lenient in [false, true] {
        let options = Options::default()
            .lenient(lenient)
            .with_limits(crate::checkpoint::limits());
        let Ok(ckpt) = Checkpoint::from_bytes(data, &options) else {
            continue;
        };
        let reread = Options::default().lenient(lenient);
        for save in [
            SaveOptions::default(),
            SaveOptions::default().legacy(true),
            SaveOptions::default().zip64(Zip64::Always),
            SaveOptions::default().byte_order(ByteOrder::Big),
        ] {
            let written = match ckpt.save_to(Vec::new(), &save) {
                Ok(bytes) => bytes,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Unsupported { .. } | ErrorKind::InvalidStorage { .. }
                    ) =>
                {
                    continue
                }
                Err(e) => panic!("writing failed with an undocumented error: {e}"),
            };
            let again = Checkpoint::from_bytes(&written[..], &reread)
                .unwrap_or_else(|e| panic!("the written file ({save:?}) does not read: {e}"));
            if let Err(diff) = same_tree(&ckpt, &again) {
                panic!("the written file ({save:?}) reads differently: {diff}");
            }
        }
        return;
    }
}

/// Whether two checkpoints hold the same tree: the same values (floats bit for bit), the same
/// containers shared the same way, tensors with the same dtype, layout, flags and logical bytes,
/// and storages shared by the same tensors. Strings, numbers and empty tuples may be shared
/// differently (Python's pickler shares them as it likes); an `INST`/`OBJ` call reads back as
/// the `REDUCE` protocol 2 writes for it.
pub fn same_tree(a: &Checkpoint<'_>, b: &Checkpoint<'_>) -> Result<(), String> {
    let mut cmp = Compare::default();
    cmp.work.push((a.root(), b.root()));
    while let Some((x, y)) = cmp.work.pop() {
        if cmp.seen.insert((x.id(), y.id())) {
            cmp.pair(x, y)?;
        }
    }
    if a.len() != b.len() {
        return Err(format!("{} tensor paths, then {}", a.len(), b.len()));
    }
    Ok(())
}

#[derive(Default)]
struct Compare<'x, 'y> {
    work: Vec<(Value<'x>, Value<'y>)>,
    seen: HashSet<(ValueId, ValueId)>,
    ids: HashMap<ValueId, ValueId>,
    ids_back: HashMap<ValueId, ValueId>,
    storages: HashMap<Option<String>, Option<String>>,
    storages_back: HashMap<Option<String>, Option<String>>,
}

/// Fails with `what` unless `same`.
fn check(same: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if same {
        Ok(())
    } else {
        Err(what())
    }
}

impl<'x, 'y> Compare<'x, 'y> {
    /// Records that `x` and `y` are the same object; fails if either was already another's.
    fn identity(&mut self, x: ValueId, y: ValueId) -> Result<(), String> {
        let forth = *self.ids.entry(x).or_insert(y);
        let back = *self.ids_back.entry(y).or_insert(x);
        check(forth == y && back == x, || {
            format!("{x:?} and {y:?} are shared differently")
        })
    }

    fn pair(&mut self, x: Value<'x>, y: Value<'y>) -> Result<(), String> {
        let mismatch = || format!("{x:?} became {y:?}");
        match (x.kind(), y.kind()) {
            (Kind::None, Kind::None) => Ok(()),
            (Kind::Bool(p), Kind::Bool(q)) => check(p == q, mismatch),
            (Kind::Int(p), Kind::Int(q)) => check(p == q, mismatch),
            (Kind::BigInt(p), Kind::BigInt(q)) => check(p.to_le_bytes() == q.to_le_bytes(), mismatch),
            (Kind::Float(p), Kind::Float(q)) => check(p.to_bits() == q.to_bits(), mismatch),
            (Kind::Complex { re, im }, Kind::Complex { re: r, im: i }) => {
                check((re.to_bits(), im.to_bits()) == (r.to_bits(), i.to_bits()), mismatch)
            }
            (Kind::Str(p), Kind::Str(q)) => check(p == q, mismatch),
            (Kind::Bytes(p), Kind::Bytes(q)) | (Kind::ByteArray(p), Kind::ByteArray(q)) => check(p == q, mismatch),
            (Kind::Tuple(p), Kind::Tuple(q)) | (Kind::FrozenSet(p), Kind::FrozenSet(q)) => {
                check(p.len() == q.len(), mismatch)?;
                self.work.extend(p.iter().zip(q.iter()));
                Ok(())
            }
            (Kind::List(p), Kind::List(q)) | (Kind::Set(p), Kind::Set(q)) => {
                check(p.len() == q.len(), mismatch)?;
                self.identity(x.id(), y.id())?;
                self.work.extend(p.iter().zip(q.iter()));
                Ok(())
            }
            (Kind::Dict(p), Kind::Dict(q)) => {
                check(p.class() == q.class() && p.len() == q.len(), mismatch)?;
                self.identity(x.id(), y.id())?;
                self.both(p.state(), q.state(), mismatch)?;
                for ((k1, v1), (k2, v2)) in p.iter().zip(q.iter()) {
                    self.work.extend([(k1, k2), (v1, v2)]);
                }
                Ok(())
            }
            (Kind::Global { module, name }, Kind::Global { module: m, name: n }) => {
                check((module, name) == (m, n), mismatch)
            }
            (Kind::Object(p), Kind::Object(q)) => {
                self.identity(x.id(), y.id())?;
                // INST/OBJ (protocols 0-1) have no protocol-2 form: they are written as REDUCE.
                let reduce = |c| c == Construction::Reduce;
                let same_call =
                    p.construction() == q.construction() || reduce(p.construction()) || reduce(q.construction());
                check(same_call && p.items().len() == q.items().len(), mismatch)?;
                check(p.dict_items().len() == q.dict_items().len(), mismatch)?;
                self.work.extend([(p.callable(), q.callable()), (p.args(), q.args())]);
                self.both(p.kwargs(), q.kwargs(), mismatch)?;
                self.both(p.state(), q.state(), mismatch)?;
                self.work.extend(p.items().iter().zip(q.items().iter()));
                for ((k1, v1), (k2, v2)) in p.dict_items().zip(q.dict_items()) {
                    self.work.extend([(k1, k2), (v1, v2)]);
                }
                Ok(())
            }
            (Kind::Tensor(p), Kind::Tensor(q)) => {
                self.identity(x.id(), y.id())?;
                self.tensor(p, q).map_err(|e| format!("{x:?}: {e}"))?;
                match (x.attributes(), y.attributes()) {
                    (None, None) => Ok(()),
                    (Some(d), Some(e)) if d.len() == e.len() => {
                        for ((k1, v1), (k2, v2)) in d.iter().zip(e.iter()) {
                            self.work.extend([(k1, k2), (v1, v2)]);
                        }
                        Ok(())
                    }
                    _ => Err(format!("{x:?}: its attributes differ")),
                }
            }
            (Kind::Storage(p), Kind::Storage(q)) => {
                let same = p.dtype() == q.dtype() && p.location() == q.location();
                check(same && p.bytes().len() == q.bytes().len(), mismatch)?;
                self.storage(Some(p.key()), Some(q.key()))
            }
            _ => Err(mismatch()),
        }
    }

    /// Both absent, or both present and then compared.
    fn both(
        &mut self,
        p: Option<Value<'x>>,
        q: Option<Value<'y>>,
        mismatch: impl FnOnce() -> String,
    ) -> Result<(), String> {
        match (p, q) {
            (None, None) => Ok(()),
            (Some(p), Some(q)) => {
                self.work.push((p, q));
                Ok(())
            }
            _ => Err(mismatch()),
        }
    }

    fn storage(&mut self, p: Option<&str>, q: Option<&str>) -> Result<(), String> {
        let (p, q) = (p.map(str::to_owned), q.map(str::to_owned));
        let forth = self.storages.entry(p.clone()).or_insert_with(|| q.clone()).clone();
        let back = self.storages_back.entry(q.clone()).or_insert_with(|| p.clone()).clone();
        check(forth == q && back == p, || {
            format!("storage {p:?} became {q:?}, shared differently")
        })
    }

    fn tensor(&mut self, p: &TensorView<'_>, q: &TensorView<'_>) -> Result<(), String> {
        let meta = |t: &TensorView<'_>| {
            (
                t.dtype(),
                t.shape().to_vec(),
                t.stride().to_vec(),
                t.storage_offset(),
                (t.requires_grad(), t.is_parameter(), t.is_conj(), t.is_neg()),
                (
                    t.subclass().map(str::to_owned),
                    t.has_data(),
                    t.location().unwrap_or("cpu").to_owned(),
                ),
            )
        };
        check(meta(p) == meta(q), || format!("{:?} became {:?}", meta(p), meta(q)))?;
        check(quantization(p) == quantization(q), || "its quantization differs".into())?;
        if let (
            Some(Quantization::PerChannel {
                scales, zero_points, ..
            }),
            Some(Quantization::PerChannel {
                scales: s,
                zero_points: z,
                ..
            }),
        ) = (p.quantization(), q.quantization())
        {
            self.tensor(scales, s)?;
            self.tensor(zero_points, z)?;
        }
        if !p.has_data() {
            return Ok(());
        }
        if p.storage_key().is_some() {
            // A tensor made by a constructor (no storage in the file) gets one when written.
            self.storage(p.storage_key(), q.storage_key())?;
        }
        let (ps, qs) = (p.storage_bytes().map(|b| b.len()), q.storage_bytes().map(|b| b.len()));
        check(ps == qs, || format!("storage of {ps:?} bytes became {qs:?}"))?;
        if p.byte_order() == q.byte_order() {
            let same = p.storage_bytes().map(|b| b.as_slice()) == q.storage_bytes().map(|b| b.as_slice());
            return check(same, || "its storage's bytes differ".into());
        }
        let (pb, qb) = (
            p.to_le_bytes().map_err(|e| e.to_string()),
            q.to_le_bytes().map_err(|e| e.to_string()),
        );
        check(pb == qb, || "its elements differ".into())
    }
}

/// A quantizer's scheme, the bits of its scale and its zero point (per tensor), its axis (per
/// channel).
type QuantizerKey = (String, Option<(u64, i64)>, Option<i64>);

fn quantization(t: &TensorView<'_>) -> Option<QuantizerKey> {
    Some(match t.quantization()? {
        Quantization::PerTensor {
            scheme,
            scale,
            zero_point,
        } => (scheme.clone(), Some((scale.to_bits(), *zero_point)), None),
        Quantization::PerChannel { scheme, axis, .. } => (scheme.clone(), None, Some(*axis)),
        _ => (String::from("?"), None, None),
    })
}

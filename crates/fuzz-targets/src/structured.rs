//! Structure-aware inputs: an `arbitrary` sequence of pickle operations (opcodes, and whole tensor rebuilds so the
//! fuzzer reaches the torch layer at once) and of zip records, assembled into a torch zip archive or a legacy
//! stream, optionally with a few bytes flipped afterwards; then opened like the `checkpoint` target.

use std::io::Write;

use arbitrary::{Arbitrary, Unstructured};

/// Allowlisted (and a few refused) globals, the ones whose calls the torch layer evaluates.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Global {
    OrderedDict,
    Counter,
    Set,
    FrozenSet,
    Complex,
    ByteArray,
    Encode,
    Size,
    Device,
    Tensor,
    FloatTensor,
    LongTensor,
    Parameter,
    RebuildV2,
    RebuildV3,
    RebuildTensor,
    RebuildParameter,
    RebuildParameterWithState,
    RebuildFromTypeV2,
    RebuildFromCpuTensor,
    RebuildFromNumpy,
    RebuildQTensor,
    RebuildSparse,
    RebuildMeta,
    RebuildWrapperSubclass,
    GetLayout,
    Float32,
    Int64,
    Float16,
    UInt16,
    FloatStorage,
    LongStorage,
    HalfStorage,
    UntypedStorage,
    PerTensorAffine,
    OsSystem,
}

impl Global {
    fn name(self) -> (&'static str, &'static str) {
        use Global::*;
        match self {
            OrderedDict => ("collections", "OrderedDict"),
            Counter => ("collections", "Counter"),
            Set => ("builtins", "set"),
            FrozenSet => ("builtins", "frozenset"),
            Complex => ("builtins", "complex"),
            ByteArray => ("builtins", "bytearray"),
            Encode => ("_codecs", "encode"),
            Size => ("torch", "Size"),
            Device => ("torch", "device"),
            Tensor => ("torch", "Tensor"),
            FloatTensor => ("torch", "FloatTensor"),
            LongTensor => ("torch", "LongTensor"),
            Parameter => ("torch.nn.parameter", "Parameter"),
            RebuildV2 => ("torch._utils", "_rebuild_tensor_v2"),
            RebuildV3 => ("torch._utils", "_rebuild_tensor_v3"),
            RebuildTensor => ("torch._utils", "_rebuild_tensor"),
            RebuildParameter => ("torch._utils", "_rebuild_parameter"),
            RebuildParameterWithState => ("torch._utils", "_rebuild_parameter_with_state"),
            RebuildFromTypeV2 => ("torch._tensor", "_rebuild_from_type_v2"),
            RebuildFromCpuTensor => ("torch._utils", "_rebuild_device_tensor_from_cpu_tensor"),
            RebuildFromNumpy => ("torch._utils", "_rebuild_device_tensor_from_numpy"),
            RebuildQTensor => ("torch._utils", "_rebuild_qtensor"),
            RebuildSparse => ("torch._utils", "_rebuild_sparse_tensor"),
            RebuildMeta => ("torch._utils", "_rebuild_meta_tensor_no_storage"),
            RebuildWrapperSubclass => ("torch._utils", "_rebuild_wrapper_subclass"),
            GetLayout => ("torch.serialization", "_get_layout"),
            Float32 => ("torch", "float32"),
            Int64 => ("torch", "int64"),
            Float16 => ("torch", "float16"),
            UInt16 => ("torch", "uint16"),
            FloatStorage => ("torch", "FloatStorage"),
            LongStorage => ("torch", "LongStorage"),
            HalfStorage => ("torch", "HalfStorage"),
            UntypedStorage => ("torch.storage", "UntypedStorage"),
            PerTensorAffine => ("torch", "per_tensor_affine"),
            OsSystem => ("os", "system"),
        }
    }
}

/// One step of the pickle.
#[derive(Arbitrary, Debug)]
enum Op {
    None,
    Bool(bool),
    Int(i32),
    Long(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    EmptyList,
    EmptyDict,
    EmptyTuple,
    EmptySet,
    Mark,
    Tuple,
    Tuple1,
    Tuple2,
    Tuple3,
    List,
    Dict,
    Append,
    Appends,
    SetItem,
    SetItems,
    AddItems,
    FrozenSet,
    Put(u8),
    Get(u8),
    Memoize,
    Pop,
    Dup,
    PopMark,
    Global(Global),
    Reduce,
    NewObj,
    Build,
    BinPersId,
    /// `('storage', <type>, key, 'cpu', numel[, view])` BINPERSID: a storage reference.
    Storage {
        stype: Global,
        key: u8,
        numel: u16,
        view: Option<(u8, u8, u8)>,
    },
    /// A complete `_rebuild_tensor_v2(<storage>, offset, size, stride, requires_grad, OrderedDict())` call.
    Tensor {
        key: u8,
        stype: Global,
        numel: u16,
        offset: u8,
        size: Vec<u8>,
        stride: Vec<u8>,
        grad: bool,
    },
}

/// One `data/<key>` record (or legacy storage blob).
#[derive(Arbitrary, Debug)]
struct Record {
    key: u8,
    data: Vec<u8>,
    deflate: bool,
    upper_case_name: bool,
}

/// The whole input.
#[derive(Arbitrary, Debug)]
struct Archive {
    protocol: u8,
    ops: Vec<Op>,
    records: Vec<Record>,
    legacy: bool,
    big_endian: bool,
    deflate_pickle: bool,
    flips: Vec<(u16, u8)>,
}

/// Builds an archive from `data` and opens it like the `checkpoint` target.
pub fn run(data: &[u8]) {
    let Ok(archive) = Archive::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let mut bytes = assemble(&archive);
    for &(at, xor) in archive.flips.iter().take(4) {
        if let Some(b) = bytes.get_mut(usize::from(at)) {
            *b ^= xor;
        }
    }
    crate::checkpoint::run(&bytes);
}

fn assemble(a: &Archive) -> Vec<u8> {
    let pickle = pickle_of(a.protocol, &a.ops, a.legacy);
    if a.legacy {
        legacy_stream(&pickle, &a.records)
    } else {
        zip_archive(&pickle, a)
    }
}

fn global(out: &mut Vec<u8>, g: Global) {
    let (module, name) = g.name();
    out.push(b'c');
    out.extend_from_slice(module.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn int(out: &mut Vec<u8>, i: i64) {
    match i {
        0..=255 => out.extend_from_slice(&[b'K', i as u8]),
        _ if i32::try_from(i).is_ok() => {
            out.push(b'J');
            out.extend_from_slice(&(i as i32).to_le_bytes());
        }
        _ => {
            out.extend_from_slice(&[0x8a, 8]);
            out.extend_from_slice(&i.to_le_bytes());
        }
    }
}

fn ints(out: &mut Vec<u8>, items: &[u8]) {
    out.push(b'(');
    for &i in items.iter().take(6) {
        int(out, i64::from(i));
    }
    out.push(b't');
}

fn storage(out: &mut Vec<u8>, stype: Global, key: u8, numel: u16, view: Option<(u8, u8, u8)>, legacy: bool) {
    out.push(b'(');
    string(out, "storage");
    global(out, stype);
    string(out, &key.to_string());
    string(out, "cpu");
    int(out, i64::from(numel));
    if legacy {
        match view {
            Some((vkey, offset, size)) => {
                out.push(b'(');
                string(out, &vkey.to_string());
                int(out, i64::from(offset));
                int(out, i64::from(size));
                out.push(b't');
            }
            None => out.push(b'N'),
        }
    }
    out.extend_from_slice(b"tQ");
}

fn pickle_of(protocol: u8, ops: &[Op], legacy: bool) -> Vec<u8> {
    let mut out = vec![0x80, protocol % 6];
    for op in ops.iter().take(4096) {
        match op {
            Op::None => out.push(b'N'),
            Op::Bool(b) => out.push(if *b { 0x88 } else { 0x89 }),
            Op::Int(i) => int(&mut out, i64::from(*i)),
            Op::Long(bytes) => {
                let bytes: Vec<u8> = bytes.iter().copied().take(255).collect();
                out.extend_from_slice(&[0x8a, bytes.len() as u8]);
                out.extend_from_slice(&bytes);
            }
            Op::Float(f) => {
                out.push(b'G');
                out.extend_from_slice(&f.to_be_bytes());
            }
            Op::Str(s) => string(&mut out, s),
            Op::Bytes(b) => {
                out.push(b'B');
                out.extend_from_slice(&(b.len() as u32).to_le_bytes());
                out.extend_from_slice(b);
            }
            Op::EmptyList => out.push(b']'),
            Op::EmptyDict => out.push(b'}'),
            Op::EmptyTuple => out.push(b')'),
            Op::EmptySet => out.push(0x8f),
            Op::Mark => out.push(b'('),
            Op::Tuple => out.push(b't'),
            Op::Tuple1 => out.push(0x85),
            Op::Tuple2 => out.push(0x86),
            Op::Tuple3 => out.push(0x87),
            Op::List => out.push(b'l'),
            Op::Dict => out.push(b'd'),
            Op::Append => out.push(b'a'),
            Op::Appends => out.push(b'e'),
            Op::SetItem => out.push(b's'),
            Op::SetItems => out.push(b'u'),
            Op::AddItems => out.push(0x90),
            Op::FrozenSet => out.push(0x91),
            Op::Put(i) => out.extend_from_slice(&[b'q', *i]),
            Op::Get(i) => out.extend_from_slice(&[b'h', *i]),
            Op::Memoize => out.push(0x94),
            Op::Pop => out.push(b'0'),
            Op::Dup => out.push(b'2'),
            Op::PopMark => out.push(b'1'),
            Op::Global(g) => global(&mut out, *g),
            Op::Reduce => out.push(b'R'),
            Op::NewObj => out.push(0x81),
            Op::Build => out.push(b'b'),
            Op::BinPersId => out.push(b'Q'),
            Op::Storage {
                stype,
                key,
                numel,
                view,
            } => storage(&mut out, *stype, *key, *numel, *view, legacy),
            Op::Tensor { .. } => tensor(&mut out, op, legacy),
        }
    }
    out.push(b'.');
    out
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict())`.
fn tensor(out: &mut Vec<u8>, op: &Op, legacy: bool) {
    let Op::Tensor {
        key,
        stype,
        numel,
        offset,
        size,
        stride,
        grad,
    } = op
    else {
        return;
    };
    global(out, Global::RebuildV2);
    out.push(b'(');
    storage(out, *stype, *key, *numel, None, legacy);
    int(out, i64::from(*offset));
    ints(out, size);
    ints(out, stride);
    out.push(if *grad { 0x88 } else { 0x89 });
    global(out, Global::OrderedDict);
    out.extend_from_slice(b")RtR");
}

/// A torch-style zip written by the `zip` crate (the zip layer's own anomalies are the `checkpoint` target's job).
fn zip_archive(pickle: &[u8], a: &Archive) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated = stored.compression_method(zip::CompressionMethod::Deflated);
    let mut add = |name: &str, data: &[u8], deflate: bool| {
        // A duplicate name is an error from the writer: the record is simply left out.
        if w.start_file(name, if deflate { deflated } else { stored }).is_ok() {
            let _ = w.write_all(data);
        }
    };
    add("archive/data.pkl", pickle, a.deflate_pickle);
    add(
        "archive/byteorder",
        if a.big_endian { b"big" } else { b"little" },
        false,
    );
    for r in a.records.iter().take(16) {
        let folder = if r.upper_case_name { "DATA" } else { "data" };
        add(&format!("archive/{folder}/{}", r.key), &r.data, r.deflate);
    }
    add("archive/version", b"3\n", false);
    w.finish().map(|c| c.into_inner()).unwrap_or_default()
}

/// Magic number, protocol 1001, sys_info, the object pickle, the storage keys, then each record's count and bytes.
fn legacy_stream(pickle: &[u8], records: &[Record]) -> Vec<u8> {
    let mut out = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02M\xe9\x03.".to_vec();
    out.extend_from_slice(b"\x80\x02}(X\x10\x00\x00\x00protocol_versionM\xe9\x03X\x0d\x00\x00\x00little_endian\x88u.");
    out.extend_from_slice(pickle);
    let records: Vec<&Record> = records.iter().take(16).collect();
    out.extend_from_slice(b"\x80\x02](");
    for r in &records {
        string(&mut out, &r.key.to_string());
    }
    out.extend_from_slice(b"e.");
    for r in records {
        out.extend_from_slice(&(r.data.len() as i64).to_le_bytes());
        out.extend_from_slice(&r.data);
    }
    out
}

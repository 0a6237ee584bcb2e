//! The one table of globals: which names strict mode allows (exactly torch 2.15's
//! `weights_only` unpickler, `torch._weights_only_unpickler._get_allowed_globals()`, 144 names)
//! and what each one is when a pickle calls it — as `opcode.rs` is the one table of opcodes.
//!
//! The names are matched after Python 2 → 3 renames (`__builtin__.set` is `builtins.set`), as
//! torch does. Being on the list only means the name may appear: nothing is ever imported or
//! called, whatever the mode. A few names are known but not allowed (`builtins.frozenset`,
//! `builtins.bytes`): lenient mode evaluates them as Python would.

use crate::pickle::builtins::Builtin;
use crate::DType;

/// What a global is, for the calls the torch layer evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Global {
    /// A standard-library callable with a plain-value result.
    Builtin(Builtin),
    /// A `torch._utils` rebuild function, or `torch._tensor._rebuild_from_type_v2`.
    Rebuild(Rebuild),
    /// `torch.nn.parameter.Parameter`
    Parameter,
    /// `torch.Tensor` (the default dtype, float32).
    Tensor,
    /// A legacy typed tensor class: `torch.FloatTensor`, `torch.cuda.LongTensor`, ...
    TensorClass(DType, Place),
    /// `torch.Size`
    Size,
    /// `torch.device`
    Device,
    /// `torch.serialization._get_layout`
    GetLayout,
    /// A dtype (`torch.float32`), a value rather than a callable.
    DType,
    /// A legacy storage class (`torch.FloatStorage`): names a persistent id's storage type.
    StorageType(DType),
    /// `torch.storage.UntypedStorage` (a persistent id's untyped storage type).
    UntypedStorage,
    /// `torch.storage.TypedStorage`
    TypedStorage,
    /// A quantization scheme (`torch.per_tensor_affine`), a value.
    QScheme,
}

/// Where a legacy tensor class puts its tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Cpu,
    Cuda,
    Sparse,
    CudaSparse,
}

/// The rebuild functions torch's loader allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rebuild {
    Tensor,
    TensorV2,
    TensorV3,
    Parameter,
    ParameterWithState,
    QTensor,
    Sparse,
    MetaNoStorage,
    WrapperSubclass,
    DeviceFromNumpy,
    DeviceFromCpu,
    FromTypeV2,
}

/// Element-type prefixes of the `torch.*Tensor` classes (`torch._tensor_classes`).
const TENSOR_CLASSES: [(&str, DType); 10] = [
    ("Double", DType::Float64),
    ("Float", DType::Float32),
    ("Half", DType::Float16),
    ("BFloat16", DType::BFloat16),
    ("Long", DType::Int64),
    ("Int", DType::Int32),
    ("Short", DType::Int16),
    ("Char", DType::Int8),
    ("Byte", DType::UInt8),
    ("Bool", DType::Bool),
];

/// `torch.cuda.*Storage` classes (the CPU list minus quantized ones).
const CUDA_STORAGES: [&str; 12] = [
    "BFloat16",
    "Bool",
    "Byte",
    "Char",
    "ComplexDouble",
    "ComplexFloat",
    "Double",
    "Float",
    "Half",
    "Int",
    "Long",
    "Short",
];

/// The `torch._utils` rebuild functions torch allows.
const REBUILD_FUNCTIONS: [(&str, Rebuild); 11] = [
    ("_rebuild_parameter", Rebuild::Parameter),
    ("_rebuild_parameter_with_state", Rebuild::ParameterWithState),
    ("_rebuild_qtensor", Rebuild::QTensor),
    ("_rebuild_tensor", Rebuild::Tensor),
    ("_rebuild_tensor_v2", Rebuild::TensorV2),
    ("_rebuild_tensor_v3", Rebuild::TensorV3),
    ("_rebuild_sparse_tensor", Rebuild::Sparse),
    ("_rebuild_meta_tensor_no_storage", Rebuild::MetaNoStorage),
    ("_rebuild_wrapper_subclass", Rebuild::WrapperSubclass),
    ("_rebuild_device_tensor_from_numpy", Rebuild::DeviceFromNumpy),
    ("_rebuild_device_tensor_from_cpu_tensor", Rebuild::DeviceFromCpu),
];

const QSCHEMES: [&str; 5] = [
    "per_tensor_affine",
    "per_tensor_symmetric",
    "per_channel_affine",
    "per_channel_symmetric",
    "per_channel_affine_float_qparams",
];

/// Whether strict mode lets a pickle name `module.name`.
///
/// ```
/// use pth_reader::is_allowed_global;
/// assert!(is_allowed_global("torch._utils", "_rebuild_tensor_v2"));
/// assert!(!is_allowed_global("os", "system"));
/// ```
pub fn is_allowed_global(module: &str, name: &str) -> bool {
    matches!(lookup(module, name), Some((_, true)))
}

/// What `module.name` is, and whether strict mode allows it; `None` for names this reader
/// gives no meaning (lenient mode keeps them as inert names).
pub(crate) fn lookup(module: &str, name: &str) -> Option<(Global, bool)> {
    let allowed = |g| Some((g, true));
    match (module, name) {
        ("collections", "OrderedDict") => allowed(Global::Builtin(Builtin::OrderedDict)),
        ("collections", "Counter") => allowed(Global::Builtin(Builtin::Counter)),
        ("builtins", "set") => allowed(Global::Builtin(Builtin::Set)),
        ("builtins", "bytearray") => allowed(Global::Builtin(Builtin::ByteArray)),
        ("builtins", "complex") => allowed(Global::Builtin(Builtin::Complex)),
        ("_codecs", "encode") => allowed(Global::Builtin(Builtin::Encode)),
        ("builtins", "frozenset") => Some((Global::Builtin(Builtin::FrozenSet), false)),
        ("builtins", "bytes") => Some((Global::Builtin(Builtin::Bytes), false)),
        ("torch.nn.parameter", "Parameter") => allowed(Global::Parameter),
        ("torch.serialization", "_get_layout") => allowed(Global::GetLayout),
        ("torch.storage", "TypedStorage") => allowed(Global::TypedStorage),
        ("torch.storage", "UntypedStorage") => allowed(Global::UntypedStorage),
        ("torch._tensor", "_rebuild_from_type_v2") => allowed(Global::Rebuild(Rebuild::FromTypeV2)),
        ("torch._utils", _) => REBUILD_FUNCTIONS
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|&(_, r)| allowed(Global::Rebuild(r))),
        ("torch", _) => in_torch(name),
        ("torch.cuda", _) => {
            if let Some(dtype) = tensor_class(name) {
                return allowed(Global::TensorClass(dtype, Place::Cuda));
            }
            let storage = name.strip_suffix("Storage").filter(|p| CUDA_STORAGES.contains(p));
            storage
                .and_then(|_| DType::from_storage_name(name))
                .and_then(|d| allowed(Global::StorageType(d)))
        }
        ("torch.sparse" | "torch.cuda.sparse", _) => {
            let place = if module == "torch.sparse" {
                Place::Sparse
            } else {
                Place::CudaSparse
            };
            tensor_class(name)
                .filter(|&d| d != DType::Bool)
                .and_then(|d| allowed(Global::TensorClass(d, place)))
        }
        _ => None,
    }
}

/// The dtype of a `<Prefix>Tensor` class name.
fn tensor_class(name: &str) -> Option<DType> {
    let prefix = name.strip_suffix("Tensor")?;
    TENSOR_CLASSES.iter().find(|(p, _)| *p == prefix).map(|&(_, d)| d)
}

fn in_torch(name: &str) -> Option<(Global, bool)> {
    let global = match name {
        "Size" => Global::Size,
        "Tensor" => Global::Tensor,
        "device" => Global::Device,
        _ if QSCHEMES.contains(&name) => Global::QScheme,
        _ => {
            if let Some(dtype) = tensor_class(name) {
                Global::TensorClass(dtype, Place::Cpu)
            } else if let Some(d) = DType::ALL.iter().find(|d| d.storage_name() == Some(name)) {
                Global::StorageType(*d)
            } else if DType::ALL.iter().any(|d| d.name() == name) || is_shell_dtype(name) {
                Global::DType
            } else {
                return None;
            }
        }
    };
    Some((global, true))
}

/// torch.int1 ... torch.int7 and torch.uint1 ... torch.uint7 (bit-width shell dtypes).
fn is_shell_dtype(name: &str) -> bool {
    let bits = name.strip_prefix("uint").or_else(|| name.strip_prefix("int"));
    bits.is_some_and(|b| matches!(b, "1" | "2" | "3" | "4" | "5" | "6" | "7"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// torch's own list, dumped from torch 2.15.0 into the fixtures.
    fn torch_list() -> BTreeSet<String> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/weights_only_allowlist.txt");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn split(full: &str) -> (&str, &str) {
        full.rsplit_once('.').unwrap_or(("", full))
    }

    #[test]
    fn accepts_every_name_torch_allows() {
        let list = torch_list();
        assert_eq!(list.len(), 144);
        for full in &list {
            let (m, n) = split(full);
            assert!(is_allowed_global(m, n), "{full} should be allowed");
        }
    }

    #[test]
    fn refuses_every_near_miss_torch_refuses() {
        let list = torch_list();
        let mut candidates: Vec<String> = Vec::new();
        let modules = [
            "torch",
            "torch.cuda",
            "torch.sparse",
            "torch.cuda.sparse",
            "torch.storage",
        ];
        let mut names: Vec<String> = Vec::new();
        for d in DType::ALL {
            names.push(d.name().to_owned());
            names.extend(d.storage_name().map(str::to_owned));
        }
        let prefixes: Vec<&str> = TENSOR_CLASSES.iter().map(|(p, _)| *p).collect();
        for p in prefixes
            .iter()
            .chain(CUDA_STORAGES.iter())
            .chain(["QInt8", "ComplexHalf"].iter())
        {
            names.push(format!("{p}Tensor"));
            names.push(format!("{p}Storage"));
        }
        names.extend(
            [
                "Size", "Tensor", "device", "load", "save", "int8", "int0", "uint8", "uint9",
            ]
            .map(str::to_owned),
        );
        names.extend(QSCHEMES.map(str::to_owned));
        for m in modules {
            for n in &names {
                candidates.push(format!("{m}.{n}"));
            }
        }
        candidates.extend(
            [
                "os.system",
                "posix.system",
                "builtins.eval",
                "builtins.getattr",
                "builtins.bytes",
                "collections.deque",
                "collections.defaultdict",
                "torch._utils._rebuild_nested_tensor",
                "torch._utils._rebuild_xla_tensor",
                "torch.tensor._rebuild_from_type_v2",
                "numpy.core.multiarray._reconstruct",
                "_codecs.decode",
                "torch.nn.Parameter",
            ]
            .map(str::to_owned),
        );
        for full in candidates {
            let (m, n) = split(&full);
            assert_eq!(is_allowed_global(m, n), list.contains(&full), "{full}");
        }
    }
}

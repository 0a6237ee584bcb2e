//! Strict mode's allowlist: exactly the globals torch 2.15's `weights_only` unpickler allows
//! (`torch._weights_only_unpickler._get_allowed_globals()`, 144 names).
//!
//! The names are matched after Python 2 → 3 renames (`__builtin__.set` is `builtins.set`), as
//! torch does. Being on the list only means the name may appear: nothing is ever imported or
//! called, whatever the mode.

use super::dtype::DType;

/// Element-type prefixes of the `torch.*Tensor` classes (`torch._tensor_classes`).
const TENSOR_CLASSES: [&str; 10] = [
    "Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
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
const REBUILD_FUNCTIONS: [&str; 11] = [
    "_rebuild_parameter",
    "_rebuild_parameter_with_state",
    "_rebuild_qtensor",
    "_rebuild_tensor",
    "_rebuild_tensor_v2",
    "_rebuild_tensor_v3",
    "_rebuild_sparse_tensor",
    "_rebuild_meta_tensor_no_storage",
    "_rebuild_wrapper_subclass",
    "_rebuild_device_tensor_from_numpy",
    "_rebuild_device_tensor_from_cpu_tensor",
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
    match module {
        "collections" => matches!(name, "OrderedDict" | "Counter"),
        "torch.nn.parameter" => name == "Parameter",
        "torch.serialization" => name == "_get_layout",
        "_codecs" => name == "encode",
        "builtins" => matches!(name, "bytearray" | "set" | "complex"),
        "torch.storage" => matches!(name, "TypedStorage" | "UntypedStorage"),
        "torch._utils" => REBUILD_FUNCTIONS.contains(&name),
        "torch._tensor" => name == "_rebuild_from_type_v2",
        "torch" => is_allowed_in_torch(name),
        "torch.cuda" => {
            tensor_class(name).is_some_and(|p| TENSOR_CLASSES.contains(&p))
                || name.strip_suffix("Storage").is_some_and(|p| CUDA_STORAGES.contains(&p))
        }
        "torch.sparse" | "torch.cuda.sparse" => {
            tensor_class(name).is_some_and(|p| p != "Bool" && TENSOR_CLASSES.contains(&p))
        }
        _ => false,
    }
}

fn tensor_class(name: &str) -> Option<&str> {
    name.strip_suffix("Tensor")
}

fn is_allowed_in_torch(name: &str) -> bool {
    if matches!(name, "Size" | "Tensor" | "device") || QSCHEMES.contains(&name) {
        return true;
    }
    if tensor_class(name).is_some_and(|p| TENSOR_CLASSES.contains(&p)) {
        return true;
    }
    if DType::ALL
        .iter()
        .any(|d| d.name() == name || d.storage_name() == Some(name))
    {
        return true;
    }
    // torch.int1 ... torch.int7 and torch.uint1 ... torch.uint7 (bit-width shell dtypes).
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
        for p in TENSOR_CLASSES
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

//! Renames applied to global references before anything looks at them.
//!
//! Pickles written by Python 2, or by Python 3 at protocol 2 and below, name builtins the
//! Python 2 way (`__builtin__ set`, `copy_reg _reconstructor`). Python's own unpickler undoes
//! this with `_compat_pickle`'s `IMPORT_MAPPING`/`NAME_MAPPING`, torch's `weights_only` loader
//! does the same, and torch renamed `torch.tensor` to `torch._tensor`. We apply the renames that
//! matter for checkpoints so the allowlist and the torch layer see one spelling.

/// The Python 3 `(module, name)` for a pickled global reference.
pub(crate) fn python3_name<'a>(module: &'a str, name: &'a str) -> (&'a str, &'a str) {
    let renamed = match (module, name) {
        ("__builtin__", "xrange") => Some(("builtins", "range")),
        ("__builtin__", "unicode") | ("__builtin__", "basestring") => Some(("builtins", "str")),
        ("__builtin__", "long") => Some(("builtins", "int")),
        ("__builtin__", "reduce") => Some(("functools", "reduce")),
        ("__builtin__", "intern") => Some(("sys", "intern")),
        ("__builtin__", "unichr") => Some(("builtins", "chr")),
        ("UserDict", "UserDict") | ("UserDict", "IterableUserDict") => Some(("collections", "UserDict")),
        ("UserList", "UserList") => Some(("collections", "UserList")),
        ("UserString", "UserString") => Some(("collections", "UserString")),
        ("itertools", "izip") => Some(("builtins", "zip")),
        ("itertools", "imap") => Some(("builtins", "map")),
        ("itertools", "ifilter") => Some(("builtins", "filter")),
        _ => None,
    };
    if let Some(pair) = renamed {
        return pair;
    }
    let module = match module {
        "__builtin__" | "exceptions" => "builtins",
        "copy_reg" => "copyreg",
        "Queue" => "queue",
        "cPickle" => "pickle",
        "_abcoll" => "collections.abc",
        "cStringIO" | "StringIO" => "io",
        "torch.tensor" => "torch._tensor",
        other => other,
    };
    (module, name)
}

/// The module name Python 3's pickler writes at protocols 0 to 2 (`fix_imports`: the reverse
/// of the module renames above that Python 3 still makes, `_compat_pickle.REVERSE_IMPORT_MAPPING`).
pub(crate) fn python2_module(module: &str) -> &str {
    match module {
        "builtins" => "__builtin__",
        "copyreg" => "copy_reg",
        "queue" => "Queue",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::{python2_module, python3_name};

    #[test]
    fn python2_modules_read_back_as_themselves() {
        for module in ["builtins", "copyreg", "queue", "collections", "torch._utils"] {
            assert_eq!(python3_name(python2_module(module), "x").0, module);
        }
        assert_eq!(python2_module("builtins"), "__builtin__");
    }

    #[test]
    fn python2_and_torch_renames() {
        assert_eq!(python3_name("__builtin__", "set"), ("builtins", "set"));
        assert_eq!(python3_name("__builtin__", "long"), ("builtins", "int"));
        assert_eq!(
            python3_name("copy_reg", "_reconstructor"),
            ("copyreg", "_reconstructor")
        );
        assert_eq!(
            python3_name("torch.tensor", "_rebuild_from_type_v2"),
            ("torch._tensor", "_rebuild_from_type_v2")
        );
        assert_eq!(
            python3_name("torch._utils", "_rebuild_tensor_v2"),
            ("torch._utils", "_rebuild_tensor_v2")
        );
    }
}

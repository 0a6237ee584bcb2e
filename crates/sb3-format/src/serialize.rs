//! `serde::Serialize` for the types the corpus schema renders (feature `serde`): spaces, numpy
//! arrays and system info, in the schema of `../shared/corpus/README.md` that `pth sb3 info
//! --json` prints. Non-finite floats are the strings `"nan"`, `"inf"`, `"-inf"`, as
//! [`pth_reader::json::float`] writes them.
//!
//! ```
//! use sb3_format::Space;
//! let space = Space::Discrete { n: 3, start: 0 };
//! assert_eq!(serde_json::to_value(&space).unwrap(), serde_json::json!({"type": "Discrete", "n": 3, "start": 0}));
//! ```

use pth_reader::json::float;
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value as Json};

use crate::numpy::{NdArray, NpDType};
use crate::space::Space;
use crate::system_info::SystemInfo;

/// `{"type": "Box", "shape": [..], "dtype": "float32", "low": [..], "high": [..]}` (bounds flat
/// in C order as `f64`), `{"type": "Discrete", "n", "start"}`, `{"type": "MultiDiscrete",
/// "nvec"}` (nested lists), `{"type": "MultiBinary", "n"}` (an int, or a list), `{"type":
/// "Dict", "spaces": {key: space}}`, `{"type": "Tuple", "spaces": [..]}`, and for other classes
/// `{"type": name, "class": "module.name"}`.
impl Serialize for Space {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        space_json(self).serialize(serializer)
    }
}

/// `{"dtype": "float32", "shape": [2], "values": [1.5, -2.0]}`: values flat in C order,
/// complex values as `[re, im]` pairs.
impl Serialize for NdArray {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        array_json(self).serialize(serializer)
    }
}

/// An object of the `Key: value` pairs, in file order.
impl Serialize for SystemInfo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

fn space_json(space: &Space) -> Json {
    match space {
        Space::Box(b) => json!({
            "type": "Box",
            "shape": b.shape(),
            "dtype": b.dtype().name(),
            "low": b.low_f64().into_iter().map(float).collect::<Vec<_>>(),
            "high": b.high_f64().into_iter().map(float).collect::<Vec<_>>(),
        }),
        Space::Discrete { n, start } => json!({"type": "Discrete", "n": n, "start": start}),
        Space::MultiDiscrete { nvec, .. } => json!({
            "type": "MultiDiscrete",
            "nvec": nested_ints(nvec),
        }),
        Space::MultiBinary { shape, n_is_int } => {
            let n = match (n_is_int, shape.as_slice()) {
                (true, [n]) => json!(n),
                _ => json!(shape),
            };
            json!({"type": "MultiBinary", "n": n})
        }
        Space::Dict(items) => {
            let spaces: Map<String, Json> = items.iter().map(|(k, s)| (k.clone(), space_json(s))).collect();
            json!({"type": "Dict", "spaces": spaces})
        }
        Space::Tuple(items) => json!({
            "type": "Tuple",
            "spaces": items.iter().map(space_json).collect::<Vec<_>>(),
        }),
        Space::Other { class } => json!({"type": class.name, "class": class.to_string()}),
    }
}

fn array_json(array: &NdArray) -> Json {
    let values: Vec<Json> = match (array.to_i64_vec(), array.to_f64_vec()) {
        _ if array.dtype() == NpDType::Bool => array.as_le_bytes().iter().map(|&b| Json::Bool(b != 0)).collect(),
        (Some(ints), _) => ints.into_iter().map(Json::from).collect(),
        (None, Some(floats)) if array.dtype().is_float() => floats.into_iter().map(float).collect(),
        (None, Some(floats)) => floats.into_iter().map(Json::from).collect(),
        (None, None) => array
            .to_complex_vec()
            .unwrap_or_default()
            .into_iter()
            .map(|(re, im)| json!([float(re), float(im)]))
            .collect(),
    };
    json!({
        "dtype": array.dtype().name(),
        "shape": array.shape(),
        "values": values,
    })
}

/// An integer array as nested JSON lists (numpy's `tolist()`).
fn nested_ints(array: &NdArray) -> Json {
    let values = array.to_i64_vec().unwrap_or_default();
    // An empty array may have a huge shape such as (2**40, 0): the lists nesting it would be
    // empty yet countless. Such arrays are rendered flat.
    let mut lists = 0usize;
    let mut prefix = 1usize;
    for &d in array.shape() {
        lists = lists.saturating_add(prefix);
        prefix = prefix.saturating_mul(d);
    }
    if lists > values.len().saturating_add(1 << 16) {
        return Json::Array(values.into_iter().map(Json::from).collect());
    }
    fn build(values: &[i64], shape: &[usize]) -> Json {
        match shape.split_first() {
            None => values.first().map_or(Json::Null, |v| json!(v)),
            Some((&n, rest)) => {
                let step = rest.iter().product::<usize>().max(1);
                let items = (0..n)
                    .map(|i| {
                        let start = i.saturating_mul(step);
                        let end = start.saturating_add(step);
                        build(values.get(start..end).unwrap_or_default(), rest)
                    })
                    .collect();
                Json::Array(items)
            }
        }
    }
    build(&values, array.shape())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_int_lists_follow_the_shape() {
        let bytes = (0i64..6).flat_map(|i| i.to_le_bytes()).collect();
        let a = NdArray::from_le_bytes(NpDType::Int64, vec![2, 3], bytes).unwrap();
        assert_eq!(nested_ints(&a), json!([[0, 1, 2], [3, 4, 5]]));
    }

    #[test]
    fn empty_arrays_with_huge_shapes_render_flat() {
        let a = NdArray::from_le_bytes(NpDType::Int64, vec![1 << 40, 0], Vec::new()).unwrap();
        assert_eq!(nested_ints(&a), json!([]));
        let b = NdArray::from_le_bytes(NpDType::Int64, vec![2, 0], Vec::new()).unwrap();
        assert_eq!(nested_ints(&b), json!([[], []]));
    }

    #[test]
    fn multibinary_json_keeps_int_or_list() {
        let int = Space::MultiBinary {
            shape: vec![5],
            n_is_int: true,
        };
        assert_eq!(space_json(&int), json!({"type": "MultiBinary", "n": 5}));
        let list = Space::MultiBinary {
            shape: vec![2, 3],
            n_is_int: false,
        };
        assert_eq!(space_json(&list), json!({"type": "MultiBinary", "n": [2, 3]}));
    }

    #[test]
    fn arrays_render_bounds_and_complex_values() {
        let high = NdArray::from_le_bytes(NpDType::Float32, vec![1], f32::INFINITY.to_le_bytes().to_vec()).unwrap();
        assert_eq!(array_json(&high)["values"], json!(["inf"]));
        let pair = [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let complex = NdArray::from_le_bytes(NpDType::Complex64, vec![1], pair).unwrap();
        assert_eq!(array_json(&complex)["values"], json!([[1.5, -2.0]]));
        let info = SystemInfo::parse("- Python: 3.11.7\n");
        assert_eq!(serde_json::to_value(&info).unwrap(), json!({"Python": "3.11.7"}));
    }
}

//! `pth get`: one tensor's values.

use pth_reader::Checkpoint;
use serde_json::{json, Value as Json};

use crate::output::with_stdout;
use crate::values::Elements;

/// Elements shown per dimension edge when a tensor is summarised (numpy's `edgeitems`).
const EDGE: usize = 3;
/// Tensors with more elements than this are summarised (numpy's `threshold`).
const THRESHOLD: usize = 1000;

/// Prints the tensor `name`.
pub fn run(ckpt: &Checkpoint<'_>, name: &str, as_json: bool) -> anyhow::Result<()> {
    let t = ckpt.tensor(name)?;
    let elements = Elements::of(t)?;
    if as_json {
        let values = nested(&elements, t.shape(), &mut 0);
        let out = json!({"name": name, "dtype": t.dtype().name(), "shape": t.shape(), "values": values});
        return with_stdout(|w| writeln!(w, "{out}"));
    }
    let summarise = t.numel() > THRESHOLD;
    let mut text = String::new();
    format_dims(&elements, t.shape(), 0, summarise, &mut text, 0);
    with_stdout(|w| {
        writeln!(w, "{} {:?}", t.dtype(), t.shape())?;
        writeln!(w, "{text}")
    })
}

/// Values as nested JSON arrays, C order.
fn nested(e: &Elements, shape: &[usize], next: &mut usize) -> Json {
    match shape.split_first() {
        None => {
            let v = e.json(*next);
            *next += 1;
            v
        }
        Some((&n, rest)) => Json::Array((0..n).map(|_| nested(e, rest, next)).collect()),
    }
}

/// numpy-style text: nested brackets, edges only when summarising.
fn format_dims(e: &Elements, shape: &[usize], start: usize, summarise: bool, out: &mut String, depth: usize) {
    let Some((&n, rest)) = shape.split_first() else {
        out.push_str(&e.text(start));
        return;
    };
    let inner: usize = rest.iter().product();
    out.push('[');
    let indices: Vec<Option<usize>> = if summarise && n > 2 * EDGE {
        (0..EDGE)
            .map(Some)
            .chain([None])
            .chain((n - EDGE..n).map(Some))
            .collect()
    } else {
        (0..n).map(Some).collect()
    };
    for (k, i) in indices.iter().enumerate() {
        if k > 0 {
            out.push(',');
            if rest.is_empty() {
                out.push(' ');
            } else {
                out.push('\n');
                out.push_str(&" ".repeat(depth + 1));
            }
        }
        match i {
            Some(i) => format_dims(e, rest, start + i * inner, summarise, out, depth + 1),
            None => out.push_str("..."),
        }
    }
    out.push(']');
}

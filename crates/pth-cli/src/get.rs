//! `pth get`: one tensor's values.
//!
//! Elements are fetched as they are printed (`TensorView::flat_range`): a summary of an
//! expanded tensor of billions of elements reads a few dozen, and `--json` streams every value
//! within the output limit.

use std::io::{self, Write};

use pth_reader::{Checkpoint, TensorView};

use crate::json::put;
use crate::output::{io_error, with_stdout};
use crate::values::Elements;

/// Elements shown per dimension edge when a tensor is summarised (numpy's `edgeitems`).
const EDGE: usize = 3;
/// Tensors with more elements than this are summarised (numpy's `threshold`).
const THRESHOLD: usize = 1000;
/// Elements decoded at a time when every value is printed.
const CHUNK: usize = 1 << 16;

/// Prints the tensor `name`.
pub fn run(ckpt: &Checkpoint<'_>, name: &str, as_json: bool) -> anyhow::Result<()> {
    let t = ckpt.tensor(name)?;
    // Fails early, with the library's error, for tensors without data.
    t.flat_range(0, 0)?;
    if as_json {
        return with_stdout(|w| {
            write!(w, "{{\"name\":")?;
            put(w, name)?;
            write!(w, ",\"dtype\":")?;
            put(w, t.dtype().name())?;
            write!(w, ",\"shape\":")?;
            put(w, t.shape())?;
            write!(w, ",\"values\":")?;
            nested(w, t, t.shape(), 0)?;
            writeln!(w, "}}")
        });
    }
    let summarise = t.numel() > THRESHOLD;
    with_stdout(|w| {
        writeln!(w, "{} {:?}", t.dtype(), t.shape())?;
        format_dims(w, t, t.shape(), 0, summarise, 0)?;
        writeln!(w)
    })
}

/// `count` elements from flat position `start`, decoded for display.
fn fetch(t: &TensorView<'_>, start: usize, count: usize) -> io::Result<Elements> {
    let range = t.flat_range(start, count).map_err(io_error)?;
    Elements::of(&range).map_err(io_error)
}

/// Values as nested JSON arrays, C order; the innermost rows a chunk at a time.
fn nested(w: &mut dyn Write, t: &TensorView<'_>, shape: &[usize], start: usize) -> io::Result<()> {
    match shape.split_first() {
        None => fetch(t, start, 1)?.write_json(w, 0),
        Some((&n, [])) => {
            w.write_all(b"[")?;
            let mut done = 0;
            while done < n {
                let count = CHUNK.min(n - done);
                let elements = fetch(t, start + done, count)?;
                for i in 0..count {
                    if done + i > 0 {
                        w.write_all(b",")?;
                    }
                    elements.write_json(w, i)?;
                }
                done += count;
            }
            w.write_all(b"]")
        }
        Some((&n, rest)) => {
            let inner = rest.iter().fold(1usize, |n, &d| n.saturating_mul(d));
            w.write_all(b"[")?;
            for i in 0..n {
                if i > 0 {
                    w.write_all(b",")?;
                }
                nested(w, t, rest, start + i * inner)?;
            }
            w.write_all(b"]")
        }
    }
}

/// numpy-style text: nested brackets, edges only when summarising.
fn format_dims(
    w: &mut dyn Write,
    t: &TensorView<'_>,
    shape: &[usize],
    start: usize,
    summarise: bool,
    depth: usize,
) -> io::Result<()> {
    let Some((&n, rest)) = shape.split_first() else {
        return w.write_all(fetch(t, start, 1)?.text(0).as_bytes());
    };
    let elided = summarise && n > 2 * EDGE;
    let (head, tail) = if elided { (EDGE, EDGE) } else { (n, 0) };
    w.write_all(b"[")?;
    if rest.is_empty() {
        let first = fetch(t, start, head)?;
        let texts = (0..head).map(|i| first.text(i));
        let last = fetch(t, start + n - tail, tail)?;
        let tail_texts = (0..tail).map(|i| last.text(i));
        let all: Vec<String> = if elided {
            texts.chain(["...".to_owned()]).chain(tail_texts).collect()
        } else {
            texts.collect()
        };
        w.write_all(all.join(", ").as_bytes())?;
        return w.write_all(b"]");
    }
    let inner = rest.iter().fold(1usize, |n, &d| n.saturating_mul(d));
    // Rows shown: all, or the edges around an ellipsis (`None`); never collected, since a
    // dimension of an empty tensor may be huge (the output limit stops that).
    let shown = if elided { head + 1 + tail } else { n };
    let row = |k: usize| match (elided, k.cmp(&head)) {
        (false, _) | (true, std::cmp::Ordering::Less) => Some(k),
        (true, std::cmp::Ordering::Equal) => None,
        (true, std::cmp::Ordering::Greater) => Some(n - tail + (k - head - 1)),
    };
    for (k, i) in (0..shown).map(|k| (k, row(k))) {
        if k > 0 {
            write!(w, ",\n{}", " ".repeat(depth + 1))?;
        }
        match i {
            Some(i) => format_dims(w, t, rest, start + i * inner, summarise, depth + 1)?,
            None => w.write_all(b"...")?,
        }
    }
    w.write_all(b"]")
}

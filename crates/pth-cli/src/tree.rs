//! `pth tree`: the whole object tree, as indented text or JSON.

use std::collections::HashSet;
use std::io::Write;

use pth_reader::{Checkpoint, Kind, Value, ValueId};

use pth_reader::json::{write_json, JsonBudget};

use crate::output::with_stdout;
use crate::values::float_text;

/// Most lines printed, and the deepest nesting shown (shared values may expand enormously).
const MAX_LINES: u64 = 1_000_000;
const MAX_DEPTH: usize = 1_000;

/// Prints the tree.
pub fn run(ckpt: &Checkpoint<'_>, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return with_stdout(|w| {
            // The output limit (`--max-output`) bounds the bytes; the rendering's own budget
            // bounds the values and the depth.
            let budget = JsonBudget::default().with_max_bytes(u64::MAX);
            write_json(w, ckpt.root(), &budget)?;
            w.write_all(b"\n")
        });
    }
    with_stdout(|w| {
        let mut printer = Printer {
            w,
            on_path: HashSet::new(),
            lines: 0,
        };
        printer.value("", ckpt.root(), 0)
    })
}

struct Printer<'w> {
    w: &'w mut dyn Write,
    on_path: HashSet<ValueId>,
    lines: u64,
}

impl Printer<'_> {
    /// One line for `label: value`, then the children of containers, indented.
    fn value(&mut self, label: &str, v: Value<'_>, depth: usize) -> std::io::Result<()> {
        self.lines += 1;
        let indent = "  ".repeat(depth.min(64));
        if self.lines > MAX_LINES || depth > MAX_DEPTH {
            if self.lines == MAX_LINES + 1 || depth == MAX_DEPTH + 1 {
                writeln!(self.w, "{indent}... (truncated)")?;
            }
            return Ok(());
        }
        if !self.on_path.insert(v.id()) {
            return writeln!(self.w, "{indent}{label}<the value containing it: a cycle>");
        }
        let children: Vec<(String, Value<'_>)> = match v.kind() {
            Kind::List(s) | Kind::Tuple(s) | Kind::Set(s) | Kind::FrozenSet(s) => {
                let (open, close) = brackets(&v.kind());
                writeln!(self.w, "{indent}{label}{open}{} items{close}", s.len())?;
                s.iter().enumerate().map(|(i, x)| (format!("{i}: "), x)).collect()
            }
            Kind::Dict(d) => {
                let class = d.class().map(|(m, n)| format!("{m}.{n} ")).unwrap_or_default();
                writeln!(self.w, "{indent}{label}{class}{{{} items}}", d.len())?;
                let mut c: Vec<_> = d.iter().map(|(k, x)| (format!("{}: ", key_text(k)), x)).collect();
                c.extend(d.state().map(|s| ("(attributes) ".to_owned(), s)));
                c
            }
            Kind::Object(o) => {
                let class = o
                    .class_name()
                    .map(|(m, n)| format!("{m}.{n}"))
                    .unwrap_or_else(|| "<call>".into());
                writeln!(self.w, "{indent}{label}{class}(...)")?;
                let mut c = vec![("args: ".to_owned(), o.args())];
                c.extend(o.kwargs().map(|k| ("kwargs: ".to_owned(), k)));
                c.extend(o.state().map(|s| ("state: ".to_owned(), s)));
                c.extend(o.items().iter().enumerate().map(|(i, x)| (format!("item {i}: "), x)));
                c.extend(o.dict_items().map(|(k, x)| (format!("[{}]: ", key_text(k)), x)));
                c
            }
            Kind::Tensor(t) => {
                let mut line = format!("tensor {} {:?}", t.dtype(), t.shape());
                if !t.is_contiguous() {
                    line.push_str(&format!(" stride {:?}", t.stride()));
                }
                if t.is_parameter() {
                    line.push_str(" parameter");
                }
                writeln!(self.w, "{indent}{label}{line}")?;
                v.attributes()
                    .map(|a| a.iter().map(|(k, x)| (format!(".{}: ", key_text(k)), x)).collect())
                    .unwrap_or_default()
            }
            Kind::PersistentId(pid) => {
                writeln!(self.w, "{indent}{label}persistent id")?;
                vec![("".to_owned(), pid)]
            }
            _ => {
                writeln!(self.w, "{indent}{label}{}", scalar(&v))?;
                Vec::new()
            }
        };
        for (child_label, child) in children {
            self.value(&child_label, child, depth + 1)?;
        }
        self.on_path.remove(&v.id());
        Ok(())
    }
}

fn brackets(kind: &Kind<'_>) -> (&'static str, &'static str) {
    match kind {
        Kind::Tuple(_) => ("(", ")"),
        Kind::Set(_) => ("set{", "}"),
        Kind::FrozenSet(_) => ("frozenset{", "}"),
        _ => ("[", "]"),
    }
}

/// A dict key: strings as they are, anything else as Python would show it.
fn key_text(k: Value<'_>) -> String {
    match k.kind() {
        Kind::Str(s) => format!("{s:?}"),
        _ => scalar(&k),
    }
}

/// A leaf on one line.
fn scalar(v: &Value<'_>) -> String {
    match v.kind() {
        Kind::None => "None".into(),
        Kind::Bool(b) => if b { "True" } else { "False" }.into(),
        Kind::Int(i) => i.to_string(),
        Kind::BigInt(b) => b.to_decimal(),
        Kind::Float(f) => float_text(f),
        Kind::Complex { re, im } => format!("({}{:+}j)", float_text(re), im),
        Kind::Str(s) => format!("{s:?}"),
        Kind::Bytes(b) => format!("b\"{}\"", b.escape_ascii()),
        Kind::ByteArray(b) => format!("bytearray(b\"{}\")", b.escape_ascii()),
        Kind::Global { module, name } => format!("{module}.{name}"),
        Kind::Storage(s) => format!("storage {} ({} bytes, {})", s.key(), s.bytes().len(), s.location()),
        Kind::Tuple(s) | Kind::List(s) => format!("{} items", s.len()),
        _ => "<value>".into(),
    }
}

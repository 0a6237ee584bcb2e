//! Differential hostile inputs (`fixtures/differential/`): every file through the reader in strict mode, compared
//! with what torch 2.15's `torch.load(f, weights_only=True)` read from it (`expected.json`, recorded by
//! `fixtures/gen_hostile_torch.py`; the schema and the rules are in that folder's README.md).
//!
//! Each case runs in its own process (this binary again, with `--case NAME`) under a 2 GiB address-space cap and a
//! time limit, so that an abort, an out-of-memory kill or a hang fails that case and the others still run. The run
//! ends with one line per failing case and `N passed, M failed`.
//!
//! `cargo test -p pth-reader --test differential -- <substring>` runs only the cases whose name contains it;
//! `-- --verbose` also lists the cases that pass by refusing the file, with the error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::time::Duration;

use pth_reader::{Checkpoint, Kind, Options, TensorView, Value};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// Address space of one case's process: what the issue allows the reader on any input.
const ADDRESS_SPACE_KIB: u64 = 2 * 1024 * 1024;
/// Logical tensors above this are hashed only in the tensor list (the tree compares their metadata).
const TREE_HASH_LIMIT: usize = 64 << 20;
/// Problems reported per case.
const MAX_PROBLEMS: usize = 6;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--case") {
        let name = args.get(i + 1).expect("--case NAME");
        let problems = run_case(&case_named(name));
        for p in &problems {
            println!("{p}");
        }
        std::process::exit(i32::from(!problems.is_empty()));
    }
    // libtest-style arguments: flags are ignored, a free argument filters case names.
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-')).cloned();
    let verbose = args.iter().any(|a| a == "--verbose");
    std::process::exit(i32::from(!run_all(filter.as_deref(), verbose)));
}

fn manifest() -> Json {
    test_support::load_json(&test_support::root().join("fixtures/differential/expected.json"))
}

fn case_named(name: &str) -> Json {
    let m = manifest();
    m["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| {
            panic!("no case {name}");
        })
}

/// The file's bytes (`.pt.gz` inflated).
fn case_bytes(c: &Json) -> Vec<u8> {
    let path = test_support::root()
        .join("fixtures/differential")
        .join(c["file"].as_str().unwrap());
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if !path.to_string_lossy().ends_with(".gz") {
        return raw;
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .unwrap();
    out
}

// ------------------------------------------------------------------------------------------------ the parent

/// Runs every case in a child process; prints the failures compactly; true when all pass.
fn run_all(filter: Option<&str>, verbose: bool) -> bool {
    let m = manifest();
    let exe = std::env::current_exe().unwrap();
    let timeout = Duration::from_secs(if cfg!(debug_assertions) { 120 } else { 20 });
    let mut by_class: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut refusals = Vec::new();
    let cases: Vec<&Json> = m["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| filter.is_none_or(|f| c["name"].as_str().unwrap().contains(f)))
        .collect();
    assert!(
        filter.is_some() || cases.len() >= 150,
        "the manifest lists {} cases",
        cases.len()
    );
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let verdict = run_child(&exe, name, timeout);
        let slot = by_class.entry(c["class"].as_str().unwrap().to_owned()).or_default();
        slot.1 += 1;
        match verdict {
            Ok(None) => slot.0 += 1,
            Ok(Some(refusal)) => {
                slot.0 += 1;
                refusals.push(format!("ok {name} [{}]: {refusal}", c["class"].as_str().unwrap()));
            }
            Err(why) => failures.push(format!("FAIL {name} [{}]: {why}", c["class"].as_str().unwrap())),
        }
    }
    if verbose {
        for r in &refusals {
            println!("{r}");
        }
    }
    for f in &failures {
        println!("{f}");
    }
    println!("\nby class (passed/total):");
    for (class, (passed, total)) in &by_class {
        println!("  {class}: {passed}/{total}");
    }
    println!(
        "  ({} of the passes are refusals; --verbose lists them)",
        refusals.len()
    );
    println!("\n{} passed, {} failed", cases.len() - failures.len(), failures.len());
    failures.is_empty()
}

/// One case in a child process under the address-space cap and the time limit.
/// `Ok(Some(error))` when it passed by refusing the file.
fn run_child(exe: &std::path::Path, name: &str, timeout: Duration) -> Result<Option<String>, String> {
    let run = test_support::run_capped(exe, &["--case", name], ADDRESS_SPACE_KIB, timeout);
    match run.code {
        Some(0) if !run.timed_out => {
            let out = String::from_utf8_lossy(&run.stdout);
            Ok(out.lines().find_map(|l| l.strip_prefix("refused: ")).map(str::to_owned))
        }
        Some(1) if !run.timed_out && !run.stdout.is_empty() => Err(String::from_utf8_lossy(&run.stdout)
            .lines()
            .collect::<Vec<_>>()
            .join("; ")),
        _ => Err(run.failure().unwrap_or_else(|| format!("exit {:?}", run.code))),
    }
}

// ------------------------------------------------------------------------------------------------ one case

/// What differs between the reader and torch on one case (empty: it passes).
fn run_case(c: &Json) -> Vec<String> {
    let bytes = case_bytes(c);
    let got_sha = test_support::sha256_hex(&bytes);
    if got_sha != c["sha256"].as_str().unwrap() {
        return vec![format!("the file's sha256 {got_sha} is not the manifest's: regenerate")];
    }
    let expect = c["expect"].as_str().unwrap();
    let may_refuse = c["may_refuse"].as_bool().unwrap_or(false);
    let opened = Checkpoint::from_bytes(&bytes, &Options::default());
    let torch_refusal = || {
        let r = &c["torch"]["refuses"];
        format!(
            "{}: {}",
            r["error"].as_str().unwrap_or(""),
            r["message"].as_str().unwrap_or("")
        )
    };
    match (expect, opened) {
        ("refusal", Ok(ckpt)) if c["nondeterministic"].as_bool() == Some(true) => vec![format!(
            "reads {} tensor(s) where torch reads uninitialised memory (two loads differ): refuse",
            ckpt.len()
        )],
        ("refusal", Ok(ckpt)) => vec![format!(
            "reads {} tensor(s) where torch refuses ({})",
            ckpt.len(),
            short(&torch_refusal(), 100)
        )],
        ("refusal", Err(e)) | ("refusal_or_unsafe_reading", Err(e)) => passed_by_refusal(&e),
        ("refusal_or_unsafe_reading", Ok(ckpt)) => compare_reading(&ckpt, &c["weights_only_false"], c, may_refuse),
        ("reading", Err(e)) if may_refuse => passed_by_refusal(&e),
        ("reading", Err(e)) => vec![format!("refuses where torch reads: {}", short(&e.to_string(), 160))],
        ("reading", Ok(ckpt)) => compare_reading(&ckpt, &c["torch"], c, may_refuse),
        (other, _) => vec![format!("unknown expectation {other}")],
    }
}

/// A pass by refusal: noted on standard output (the parent counts these and lists them with `--verbose`).
fn passed_by_refusal(e: &pth_reader::Error) -> Vec<String> {
    println!("refused: {}", short(&e.to_string(), 160));
    vec![]
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

fn compare_reading(ckpt: &Checkpoint<'_>, want: &Json, c: &Json, may_refuse: bool) -> Vec<String> {
    let mut cmp = Comparison {
        nodes: want["tree"]["nodes"].as_array().map(Vec::as_slice).unwrap_or(&[]),
        verified: HashSet::new(),
        problems: Vec::new(),
        refused: None,
        skip_values: c["values_nondeterministic"].as_bool().unwrap_or(false)
            || c["nondeterministic"].as_bool().unwrap_or(false),
        groups: HashMap::new(),
        storages: HashMap::new(),
        listed: HashSet::new(),
    };
    if let Some(list) = want["tensors"].as_array() {
        cmp.tensor_list(ckpt, list);
    } else {
        cmp.tensor_digest(ckpt, want);
    }
    cmp.child(ckpt.root(), &want["tree"]["root"], "<root>");
    match cmp.refused {
        // A conversion refused above a documented limit: accepted where the case allows a refusal.
        Some(_) if may_refuse && cmp.problems.is_empty() => vec![],
        Some(e) => {
            cmp.problems.push(format!("refuses a conversion: {e}"));
            cmp.problems
        }
        None => cmp.problems,
    }
}

/// The kinds of node of the expected tree (fixtures/differential/README.md).
const NODE_KINDS: [&str; 14] = [
    "text",
    "bytes",
    "bytearray",
    "bytes_sha256",
    "bytearray_sha256",
    "list",
    "tuple",
    "set",
    "frozenset",
    "dict",
    "tensor",
    "sparse",
    "storage",
    "object",
];

struct Comparison<'m> {
    nodes: &'m [Json],
    /// (value, node) pairs already compared: shared values are compared once, cycles end.
    verified: HashSet<(pth_reader::ValueId, usize)>,
    problems: Vec<String>,
    /// The first error a tensor conversion returned.
    refused: Option<String>,
    skip_values: bool,
    /// Expected storage group -> the storage bytes' address, and back.
    groups: HashMap<u64, usize>,
    storages: HashMap<usize, u64>,
    /// Tensors (by address) already compared in the tensor list.
    listed: HashSet<usize>,
}

impl Comparison<'_> {
    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }

    fn tensor_list(&mut self, ckpt: &Checkpoint<'_>, want: &[Json]) {
        let got: Vec<(&str, &TensorView<'_>)> = ckpt.tensors().collect();
        if got.len() != want.len() {
            let names: Vec<String> = got.iter().take(8).map(|(n, _)| short(n, 40)).collect();
            let wanted: Vec<String> = want.iter().take(8).map(expected_name).collect();
            self.problem(format!(
                "{} tensors {names:?}, torch {} {wanted:?}",
                got.len(),
                want.len()
            ));
            return;
        }
        for ((name, t), w) in got.iter().zip(want) {
            if !name_matches(name, w) {
                self.problem(format!(
                    "tensor {:?} where torch has {:?}",
                    short(name, 60),
                    expected_name(w)
                ));
                continue;
            }
            let label = short(name, 60);
            self.tensor_meta(t, w, &label, true);
            self.listed.insert(std::ptr::from_ref(*t) as usize);
        }
    }

    /// Lists too long to record: the digest of one line per tensor (README.md).
    fn tensor_digest(&mut self, ckpt: &Checkpoint<'_>, want: &Json) {
        let mut h = Sha256::new();
        let mut n = 0u64;
        for (name, t) in ckpt.tensors() {
            n += 1;
            let sha = match t.to_le_bytes() {
                Ok(b) => test_support::sha256_hex(&b),
                Err(e) => {
                    self.refused.get_or_insert(e.to_string());
                    return;
                }
            };
            let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
            h.update(format!(
                "{} {} {} {} {} {sha}\n",
                test_support::sha256_hex(name.as_bytes()),
                t.dtype().name(),
                join(t.shape()),
                join(t.stride()),
                t.storage_offset()
            ));
        }
        if Some(n) != want["tensor_count"].as_u64() {
            self.problem(format!("{n} tensors, torch {}", want["tensor_count"]));
        } else if hex::encode(h.finalize()) != want["tensor_list_sha256"].as_str().unwrap() {
            self.problem("the tensor list's digest differs from torch's".to_owned());
        }
    }

    /// Dtype, shape, stride, offset, flags, storage sharing and (when `hash`) the logical bytes' sha256.
    fn tensor_meta(&mut self, t: &TensorView<'_>, w: &Json, label: &str, hash: bool) {
        let fields = [
            ("dtype", Json::from(t.dtype().name())),
            ("shape", Json::from(t.shape().to_vec())),
            ("stride", Json::from(t.stride().to_vec())),
            ("storage_offset", Json::from(t.storage_offset())),
            ("requires_grad", Json::from(t.requires_grad())),
            ("is_parameter", Json::from(t.is_parameter())),
            ("conj", Json::from(t.is_conj())),
            ("neg", Json::from(t.is_neg())),
        ];
        for (key, got) in fields {
            if w.get(key).is_some_and(|x| *x != got) {
                self.problem(format!("{label}: {key} {got} where torch has {}", w[key]));
                return;
            }
        }
        if w.get("device").is_some() == t.has_data() {
            self.problem(format!(
                "{label}: has_data {} where torch's device is {}",
                t.has_data(),
                w["device"]
            ));
            return;
        }
        if let (Some(group), Some(bytes)) = (w.get("storage_group").and_then(Json::as_u64), t.storage_bytes()) {
            let at = bytes.as_slice().as_ptr() as usize;
            let a = *self.groups.entry(group).or_insert(at);
            let b = *self.storages.entry(at).or_insert(group);
            if a != at || b != group {
                self.problem(format!("{label}: storage sharing differs from torch's (group {group})"));
            }
        }
        let Some(sha) = w.get("sha256").and_then(Json::as_str) else {
            return;
        };
        let logical = t.numel().saturating_mul(t.dtype().size());
        if self.skip_values || !hash && logical > TREE_HASH_LIMIT {
            return;
        }
        match t.to_le_bytes() {
            Ok(b) if test_support::sha256_hex(&b) == sha => {}
            Ok(_) => {
                let values = t.to_f64_vec().ok().filter(|v| v.len() <= 8);
                self.problem(format!(
                    "{label}: values {values:?} where torch has {}",
                    w.get("values").unwrap_or(&Json::Null)
                ));
            }
            Err(e) => drop(self.refused.get_or_insert(e.to_string())),
        }
    }

    /// A child of the expected tree: an inline scalar, or `{"n": index}` of a node.
    fn child(&mut self, v: Value<'_>, want: &Json, path: &str) {
        if let Some(n) = want.get("n").and_then(Json::as_u64) {
            let n = n as usize;
            if !self.verified.insert((v.id(), n)) {
                return;
            }
            let node = &self.nodes[n];
            self.node(v, node, path);
            return;
        }
        if !scalar_matches(v, want) {
            self.problem(format!(
                "{}: {} where torch has {}",
                short(path, 80),
                describe(v),
                short(&want.to_string(), 80)
            ));
        }
    }

    fn node(&mut self, v: Value<'_>, want: &Json, path: &str) {
        // The node's kind is its one key among these (its other keys, such as `attrs`, qualify it).
        let (kind, body) = NODE_KINDS
            .iter()
            .find_map(|k| want.get(*k).map(|b| (*k, b)))
            .unwrap_or_else(|| panic!("a node of no known kind: {want}"));
        let mismatch = |this: &mut Self| {
            this.problem(format!(
                "{}: {} where torch has {kind} {}",
                short(path, 80),
                describe(v),
                short(&body.to_string(), 60)
            ))
        };
        match (kind, v.kind()) {
            ("text", Kind::Str(s)) if text_matches(s, body) => {}
            ("bytes", Kind::Bytes(b)) | ("bytearray", Kind::ByteArray(b))
                if hex::encode(b) == body.as_str().unwrap_or("") => {}
            ("bytes_sha256", Kind::Bytes(b)) | ("bytearray_sha256", Kind::ByteArray(b))
                if test_support::sha256_hex(b) == body.as_str().unwrap_or("") => {}
            ("list", Kind::List(s)) | ("tuple", Kind::Tuple(s)) => {
                let items = body.as_array().unwrap();
                if s.len() != items.len() {
                    return mismatch(self);
                }
                for (i, (x, w)) in s.iter().zip(items).enumerate() {
                    self.child(x, w, &format!("{path}.{i}"));
                }
            }
            ("set", Kind::Set(s)) | ("frozenset", Kind::FrozenSet(s)) => {
                let items = body.as_array().unwrap();
                let got: Vec<Value<'_>> = s.iter().collect();
                if got.len() != items.len() || !self.same_members(&got, items) {
                    mismatch(self);
                }
            }
            ("dict", Kind::Dict(d)) => self.dict(v, d, want, path),
            ("tensor", Kind::Tensor(t)) => {
                // A tensor already compared in the list is not reported twice.
                if !self.listed.contains(&(std::ptr::from_ref(t) as usize)) {
                    self.tensor_meta(t, body, path, false);
                }
                self.attrs(v.attributes(), want.get("attrs"), path);
            }
            ("sparse", Kind::Dict(d))
                if d.class()
                    .is_some_and(|(m, n)| format!("{m}.{n}") == body.as_str().unwrap_or("")) =>
            {
                for part in want["parts"].as_array().unwrap() {
                    let name = part[0].as_str().unwrap();
                    match d.get(name) {
                        Some(x) => self.child(x, &part[1], &format!("{path}.{name}")),
                        None => self.problem(format!("{path}: sparse part {name} missing")),
                    }
                }
            }
            ("storage", Kind::Storage(s)) if body["nbytes"].as_u64() == Some(s.bytes().len() as u64) => {}
            _ => mismatch(self),
        }
    }

    fn dict(&mut self, v: Value<'_>, d: pth_reader::Dict<'_>, want: &Json, path: &str) {
        let class = want["class"].as_str().unwrap();
        let got_class = d
            .class()
            .map(|(m, n)| format!("{m}.{n}"))
            .unwrap_or_else(|| "dict".to_owned());
        if got_class != class && !(class == "dict" && got_class == "builtins.dict") {
            self.problem(format!("{}: a {got_class} where torch has a {class}", short(path, 80)));
            return;
        }
        let items = want["dict"].as_array().unwrap();
        if d.len() != items.len() {
            let keys: Vec<String> = d.iter().take(6).map(|(k, _)| describe(k)).collect();
            self.problem(format!(
                "{}: {} keys {keys:?} where torch has {}",
                short(path, 80),
                d.len(),
                items.len()
            ));
            return;
        }
        for (i, ((k, x), w)) in d.iter().zip(items).enumerate() {
            self.child(k, &w[0], &format!("{path}.<key {i}>"));
            let label = match k.kind() {
                Kind::Str(s) => s.to_owned(),
                _ => format!("<key {i}>"),
            };
            self.child(x, &w[1], &format!("{path}.{}", short(&label, 40)));
        }
        let _ = v;
        self.attrs(d.state().and_then(|s| s.as_dict()), want.get("attrs"), path);
    }

    /// Python attributes (`__dict__`) of a dict or tensor against the expected `attrs`.
    fn attrs(&mut self, got: Option<pth_reader::Dict<'_>>, want: Option<&Json>, path: &str) {
        let want = want.and_then(Json::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let got: Vec<(Value<'_>, Value<'_>)> = got.map(|d| d.iter().collect()).unwrap_or_default();
        if got.len() != want.len() {
            let names: Vec<String> = got.iter().map(|(k, _)| describe(*k)).collect();
            self.problem(format!(
                "{}: attributes {names:?} where torch has {} attribute(s)",
                short(path, 80),
                want.len()
            ));
            return;
        }
        for ((k, x), w) in got.iter().zip(want) {
            let name = w[0].as_str().unwrap();
            if k.as_str() != Some(name) {
                self.problem(format!("{path}: attribute {} where torch has {name}", describe(*k)));
                continue;
            }
            self.child(*x, &w[1], &format!("{path}.{name}"));
        }
    }

    /// Every expected member matches a distinct actual member (sets have no order).
    fn same_members(&mut self, got: &[Value<'_>], want: &[Json]) -> bool {
        let mut used = vec![false; got.len()];
        'outer: for w in want {
            for (i, g) in got.iter().enumerate() {
                if used[i] {
                    continue;
                }
                let mut quiet = Comparison {
                    nodes: self.nodes,
                    verified: HashSet::new(),
                    problems: Vec::new(),
                    refused: None,
                    skip_values: self.skip_values,
                    groups: HashMap::new(),
                    storages: HashMap::new(),
                    listed: HashSet::new(),
                };
                quiet.child(*g, w, "");
                if quiet.problems.is_empty() {
                    used[i] = true;
                    continue 'outer;
                }
            }
            return false;
        }
        true
    }
}

fn expected_name(w: &Json) -> String {
    match w.get("name").and_then(Json::as_str) {
        Some(n) => short(n, 40),
        None => format!("<{}-byte name>", w["name_len"]),
    }
}

fn name_matches(name: &str, w: &Json) -> bool {
    match w.get("name").and_then(Json::as_str) {
        Some(n) => n == name,
        None => {
            w["name_len"].as_u64() == Some(name.len() as u64)
                && w["name_sha256"].as_str() == Some(test_support::sha256_hex(name.as_bytes()).as_str())
        }
    }
}

fn text_matches(s: &str, want: &Json) -> bool {
    match want {
        Json::String(w) => w == s,
        _ => {
            want["len"].as_u64() == Some(s.len() as u64)
                && want["str_sha256"].as_str() == Some(test_support::sha256_hex(s.as_bytes()).as_str())
        }
    }
}

fn float_matches(got: f64, want: &Json) -> bool {
    match want {
        Json::String(s) => match s.as_str() {
            "nan" => got.is_nan(),
            "inf" => got == f64::INFINITY,
            "-inf" => got == f64::NEG_INFINITY,
            _ => false,
        },
        _ => want.as_f64().is_some_and(|w| w.to_bits() == got.to_bits()),
    }
}

/// Python's `hex()` of a little-endian two's-complement integer.
fn python_hex(le: &[u8]) -> String {
    let negative = le.last().is_some_and(|b| b & 0x80 != 0);
    let mut magnitude: Vec<u8> = le.to_vec();
    if negative {
        // two's complement: invert and add one
        let mut carry = true;
        for b in &mut magnitude {
            *b = !*b;
            if carry {
                let (s, c) = b.overflowing_add(1);
                *b = s;
                carry = c;
            }
        }
    }
    let digits: String = magnitude.iter().rev().map(|b| format!("{b:02x}")).collect();
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    format!("{}0x{digits}", if negative { "-" } else { "" })
}

fn int_matches(hex: &str, want: &Json) -> bool {
    match want.get("int").and_then(Json::as_str) {
        Some(w) => w == hex,
        None => {
            want["hex_len"].as_u64() == Some(hex.len() as u64)
                && want["int_hex_sha256"].as_str() == Some(test_support::sha256_hex(hex.as_bytes()).as_str())
        }
    }
}

fn scalar_matches(v: Value<'_>, want: &Json) -> bool {
    let tagged = |key: &str| want.get(key);
    match (v.kind(), want) {
        (Kind::None, Json::Null) => true,
        (Kind::Bool(b), Json::Bool(w)) => b == *w,
        (Kind::Int(i), Json::Number(n)) => n.as_i64() == Some(i),
        (Kind::Str(s), Json::String(w)) => s == w,
        (Kind::BigInt(b), Json::Object(_)) => int_matches(&python_hex(b.to_le_bytes()), want),
        (Kind::Int(i), Json::Object(_)) => int_matches(&python_hex(&i.to_le_bytes()), want),
        (Kind::Float(f), Json::Object(_)) => tagged("float").is_some_and(|w| float_matches(f, w)),
        (Kind::Complex { re, im }, Json::Object(_)) => tagged("complex")
            .and_then(Json::as_array)
            .is_some_and(|c| c.len() == 2 && float_matches(re, &c[0]) && float_matches(im, &c[1])),
        (Kind::Global { module, name }, Json::Object(_)) => {
            tagged("dtype")
                .and_then(Json::as_str)
                .is_some_and(|d| module == "torch" && name == d)
                || tagged("global").and_then(Json::as_str) == Some(format!("{module}.{name}").as_str())
                || tagged("layout").and_then(Json::as_str) == Some(format!("{module}.{name}").as_str())
        }
        (Kind::Object(o), Json::Object(_)) => {
            let args: Vec<String> = o
                .args()
                .as_seq()
                .map(|s| {
                    s.iter()
                        .map(|a| {
                            a.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| format!("{}", a.as_i64().unwrap_or(-1)))
                        })
                        .collect()
                })
                .unwrap_or_default();
            match o.class_name() {
                Some(("torch", "device")) => tagged("device").and_then(Json::as_str) == Some(args.join(":").as_str()),
                Some(("torch.serialization", "_get_layout")) => {
                    tagged("layout").and_then(Json::as_str) == args.first().map(String::as_str)
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// A short description of a value for failure messages.
fn describe(v: Value<'_>) -> String {
    let d = match v.kind() {
        Kind::Str(s) => format!("str {:?}", short(s, 40)),
        Kind::Tensor(t) => format!("tensor {} {:?}", t.dtype(), t.shape()),
        Kind::Dict(d) => format!(
            "dict({}) of {}",
            d.class().map(|(m, n)| format!("{m}.{n}")).unwrap_or_default(),
            d.len()
        ),
        Kind::List(s) => format!("list of {}", s.len()),
        Kind::Tuple(s) => format!("tuple of {}", s.len()),
        Kind::Set(s) => format!("set of {}", s.len()),
        Kind::Object(o) => format!("object {:?}", o.class_name()),
        other => format!("{other:?}"),
    };
    short(&d, 80)
}

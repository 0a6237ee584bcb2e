//! Any bytes through the pickle machine alone (the part every format shares).

use pth_reader::{Kind, Limits, Options, Pickle, Value};

/// Parses `data` leniently and visits what it decodes.
pub fn run(data: &[u8]) {
    let limits = Limits::default().with_max_values(1 << 18);
    if let Ok(p) = Pickle::parse(data, &Options::default().lenient(true).with_limits(limits)) {
        visit(p.root());
    }
}

/// Touches every reachable value, iteratively (inputs may nest a million deep), within a budget.
fn visit(root: Value<'_>) {
    let mut stack = vec![root];
    let mut budget = 100_000;
    while let Some(v) = stack.pop() {
        budget -= 1;
        if budget == 0 {
            return;
        }
        match v.kind() {
            Kind::List(s) | Kind::Tuple(s) | Kind::Set(s) | Kind::FrozenSet(s) => stack.extend(s.iter()),
            Kind::Dict(d) => d.iter().for_each(|(k, x)| stack.extend([k, x])),
            Kind::Object(o) => stack.extend([o.callable(), o.args()]),
            Kind::BigInt(b) => drop(b.to_decimal()),
            _ => {}
        }
    }
}

//! `pth sb3 predict`: JSON observations in, JSON actions out, one per line, as SB3's
//! `model.predict(obs, deterministic=True)`; `--bench` times the policy.

use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use sb3_format::Space;
use sb3_policy::{Action, Observation, Policy, Values};
use serde_json::Value as Json;

use crate::json::float;
use crate::output::with_stdout;

/// An observation parsed from JSON, owning its values.
#[derive(Debug, Clone)]
pub enum Parsed {
    Array { values: Vec<f64>, shape: Vec<usize> },
    Discrete(i64),
    Ints(Vec<i64>),
    Dict(Vec<Parsed>),
}

/// Flattens nested JSON arrays of numbers (C order), returning the shape.
fn flatten(json: &Json, values: &mut Vec<f64>) -> anyhow::Result<Vec<usize>> {
    match json {
        Json::Array(items) => {
            let mut inner: Option<Vec<usize>> = None;
            for item in items {
                let shape = flatten(item, values)?;
                match &inner {
                    Some(s) if *s != shape => bail!("a ragged array"),
                    Some(_) => {}
                    None => inner = Some(shape),
                }
            }
            let mut shape = vec![items.len()];
            shape.extend(inner.unwrap_or_default());
            Ok(shape)
        }
        Json::Number(n) => {
            values.push(n.as_f64().ok_or_else(|| anyhow!("number {n} out of range"))?);
            Ok(Vec::new())
        }
        Json::String(s) => {
            values.push(match s.as_str() {
                "nan" => f64::NAN,
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                _ => bail!("{s:?} is not a number"),
            });
            Ok(Vec::new())
        }
        Json::Bool(b) => {
            values.push(f64::from(u8::from(*b)));
            Ok(Vec::new())
        }
        other => bail!("{other} is not a number or an array"),
    }
}

fn integers(values: &[f64]) -> anyhow::Result<Vec<i64>> {
    values
        .iter()
        .map(|&v| {
            if v.fract() == 0.0 && v.abs() < 9.0e15 {
                Ok(v as i64)
            } else {
                Err(anyhow!("{v} is not an integer"))
            }
        })
        .collect()
}

/// Parses one JSON observation for `space`.
pub fn parse(json: &Json, space: &Space) -> anyhow::Result<Parsed> {
    if let Space::Dict(items) = space {
        let object = json
            .as_object()
            .ok_or_else(|| anyhow!("the observation space is a Dict: expected a JSON object"))?;
        if let Some(extra) = object.keys().find(|k| !items.iter().any(|(key, _)| key == *k)) {
            bail!("key {extra:?} is not in the observation space");
        }
        let parts = items
            .iter()
            .map(|(key, sub)| {
                let value = object.get(key).ok_or_else(|| anyhow!("missing key {key:?}"))?;
                parse(value, sub).with_context(|| format!("key {key:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        return Ok(Parsed::Dict(parts));
    }
    let mut values = Vec::new();
    let shape = flatten(json, &mut values)?;
    Ok(match space {
        Space::Discrete { .. } => match integers(&values)?.as_slice() {
            [v] => Parsed::Discrete(*v),
            _ => bail!("a Discrete observation is one integer"),
        },
        Space::MultiDiscrete { .. } => Parsed::Ints(integers(&values)?),
        _ => Parsed::Array { values, shape },
    })
}

impl Parsed {
    /// The borrowed observation for `space`; `dict` holds the entries of a Dict observation.
    pub fn observation<'a>(&'a self, space: &Space, dict: &'a mut Vec<Observation<'a>>) -> Observation<'a> {
        match (self, space) {
            (Parsed::Dict(parts), Space::Dict(items)) => {
                for (part, (_, sub)) in parts.iter().zip(items) {
                    dict.push(leaf(part, sub));
                }
                Observation::Dict(dict)
            }
            _ => leaf(self, space),
        }
    }
}

fn leaf<'a>(parsed: &'a Parsed, space: &Space) -> Observation<'a> {
    match (parsed, space) {
        (Parsed::Discrete(v), _) => Observation::Discrete(*v),
        (Parsed::Ints(v), _) => Observation::MultiDiscrete(v),
        (Parsed::Array { values, .. }, Space::MultiBinary { .. }) => Observation::MultiBinary(Values::F64(values)),
        (Parsed::Array { values, shape }, Space::Box(b)) => {
            // A leading batch dimension of one is the same observation.
            let own = shape
                .strip_prefix(&[1][..])
                .filter(|s| *s == b.shape())
                .unwrap_or(shape);
            if own == b.shape() {
                Observation::Box(Values::F64(values))
            } else {
                Observation::Shaped(Values::F64(values), own)
            }
        }
        (Parsed::Array { values, .. }, _) => Observation::Box(Values::F64(values)),
        (Parsed::Dict(_), _) => Observation::Dict(&[]),
    }
}

/// An action as JSON: nested per the action shape for Box, `[n]` for Discrete.
pub fn action_json(action: &Action, shape: &[usize]) -> Json {
    match action {
        Action::Box(values) => {
            let flat: Vec<Json> = values.iter().map(|&v| float(f64::from(v))).collect();
            nest(flat, shape)
        }
        Action::Discrete(n) => Json::Array(vec![Json::from(*n)]),
        Action::MultiDiscrete(values) => Json::Array(values.iter().map(|&v| Json::from(v)).collect()),
        Action::MultiBinary(values) => Json::Array(values.iter().map(|&v| Json::from(v)).collect()),
        _ => Json::Null,
    }
}

fn nest(flat: Vec<Json>, shape: &[usize]) -> Json {
    match shape {
        [] | [_] => Json::Array(flat),
        [_, rest @ ..] => {
            let step = rest.iter().product::<usize>().max(1);
            let chunks: Vec<Json> = flat.chunks(step).map(|c| nest(c.to_vec(), rest)).collect();
            Json::Array(chunks)
        }
    }
}

/// Runs the policy on each observation line; recurrent policies treat the lines as one
/// episode, starting from a fresh state.
pub fn run(policy: &Policy, lines: &[String]) -> anyhow::Result<()> {
    let space = policy.observation_space();
    let mut scratch = policy.scratch();
    let mut action = policy.new_action();
    let mut state = policy.initial_state();
    with_stdout(|out| {
        for (index, line) in lines.iter().enumerate() {
            let mut step = || -> anyhow::Result<Json> {
                let json: Json = serde_json::from_str(line).context("invalid JSON")?;
                let parsed = parse(&json, space)?;
                let mut dict = Vec::new();
                let obs = parsed.observation(space, &mut dict);
                if policy.is_recurrent() {
                    policy.predict_recurrent_into(&obs, &mut state, index == 0, &mut scratch, &mut action)?;
                } else {
                    policy.predict_into(&obs, &mut scratch, &mut action)?;
                }
                Ok(action_json(&action, policy.action_shape()))
            };
            let json = step()
                .with_context(|| format!("observation {} (line {})", index, index + 1))
                .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
            writeln!(out, "{json}")?;
        }
        Ok(())
    })
}

/// The non-empty lines of `--obs` or `--obs-file`.
pub fn read_lines(obs: Option<&str>, file: Option<&Path>) -> anyhow::Result<Vec<String>> {
    let text = match (obs, file) {
        (Some(text), _) => text.to_owned(),
        (None, Some(path)) if path == Path::new("-") => {
            let mut lines = Vec::new();
            for line in std::io::stdin().lock().lines() {
                lines.push(line?);
            }
            lines.join("\n")
        }
        (None, Some(path)) => std::fs::read_to_string(path).with_context(|| path.display().to_string())?,
        (None, None) => String::new(),
    };
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect())
}

/// An observation to time with when none is given: zeros, or the middle of finite bounds.
fn synthetic(space: &Space) -> Parsed {
    match space {
        Space::Box(b) => {
            let values = b
                .low_f64()
                .iter()
                .zip(b.high_f64())
                .map(|(&lo, hi)| {
                    if lo.is_finite() && hi.is_finite() {
                        (lo + hi) / 2.0
                    } else {
                        0.0_f64.clamp(lo, hi)
                    }
                })
                .collect();
            Parsed::Array {
                values,
                shape: b.shape().to_vec(),
            }
        }
        Space::Discrete { .. } => Parsed::Discrete(0),
        Space::MultiDiscrete { nvec, .. } => Parsed::Ints(vec![0; nvec.len()]),
        Space::MultiBinary { shape, .. } => Parsed::Array {
            values: vec![0.0; shape.iter().product()],
            shape: shape.clone(),
        },
        Space::Dict(items) => Parsed::Dict(items.iter().map(|(_, s)| synthetic(s)).collect()),
        _ => Parsed::Discrete(0),
    }
}

/// Median of `rounds` timings of `iterations` calls each, per call.
fn median_per_call(
    rounds: usize,
    iterations: u32,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Duration> {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..iterations {
            f()?;
        }
        times.push(start.elapsed() / iterations);
    }
    times.sort();
    Ok(times.get(rounds / 2).copied().unwrap_or_default())
}

/// `--bench`: single-observation latency and batch throughput on the first observation given
/// (or a synthetic one), plus the time to open the model and build the policy.
pub fn bench(
    model_path: &Path,
    policy: &Policy,
    lines: &[String],
    open: &dyn Fn() -> anyhow::Result<Policy>,
) -> anyhow::Result<()> {
    let space = policy.observation_space();
    let parsed = match lines.first() {
        Some(line) => parse(&serde_json::from_str(line).context("invalid JSON")?, space)?,
        None => synthetic(space),
    };
    let mut dict = Vec::new();
    let obs = parsed.observation(space, &mut dict);
    let mut scratch = policy.scratch();
    let mut action = policy.new_action();
    let mut state = policy.initial_state();
    let mut once = || -> anyhow::Result<()> {
        if policy.is_recurrent() {
            policy.predict_recurrent_into(&obs, &mut state, false, &mut scratch, &mut action)?;
        } else {
            policy.predict_into(&obs, &mut scratch, &mut action)?;
        }
        Ok(())
    };
    // Calibrate to about 10 ms per round.
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < Duration::from_millis(10) && calls < 1_000_000 {
        once()?;
        calls += 1;
    }
    let single = median_per_call(51, calls.max(1), &mut once)?;
    let mut report = vec![
        format!("model            {}", model_path.display()),
        format!("policy           {} / {}", policy.family(), policy.extractor()),
        format!(
            "single obs       {:.3} us (median of 51 rounds of {calls})",
            single.as_secs_f64() * 1e6
        ),
    ];
    let batch = 10_000usize;
    let flat = match &parsed {
        Parsed::Array { values, .. } => Some(values.iter().map(|&v| v as f32).collect::<Vec<f32>>()),
        Parsed::Discrete(v) => Some(vec![*v as f32]),
        Parsed::Ints(v) => Some(v.iter().map(|&x| x as f32).collect()),
        Parsed::Dict(_) => None,
    };
    match flat {
        Some(row) if !policy.is_recurrent() && !matches!(space, Space::Dict(_)) => {
            let columns = row.len();
            let data: Vec<f32> = row.iter().copied().cycle().take(columns * batch).collect();
            let observations = ndarray::Array2::from_shape_vec((batch, columns), data)?;
            let per_batch = median_per_call(11, 1, || {
                policy.predict_batch(observations.view())?;
                Ok(())
            })?;
            report.push(format!(
                "batch of {batch}   {:.3} ms, {:.0} obs/s (median of 11)",
                per_batch.as_secs_f64() * 1e3,
                batch as f64 / per_batch.as_secs_f64()
            ));
        }
        _ => report.push(format!(
            "batch            {:.0} obs/s (one at a time: recurrent or Dict)",
            1.0 / single.as_secs_f64()
        )),
    }
    let build = median_per_call(11, 1, || open().map(|_| ()))?;
    report.push(format!(
        "open + build     {:.3} ms (median of 11)",
        build.as_secs_f64() * 1e3
    ));
    with_stdout(|out| {
        for line in &report {
            writeln!(out, "{line}")?;
        }
        Ok(())
    })
}

//! `pth sb3 predict`: JSON observations in, JSON actions out, one per line, as SB3's
//! `model.predict(obs, deterministic=True)`; `--bench` times the policy.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use sb3_format::Space;
use sb3_policy::{action_to_json, JsonObservation, Policy};
use serde_json::{json, Value as Json};

use crate::output::with_stdout;

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
                let parsed = JsonObservation::parse(&json, space)?;
                parsed.with(|obs| {
                    if policy.is_recurrent() {
                        policy.predict_recurrent_into(obs, &mut state, index == 0, &mut scratch, &mut action)
                    } else {
                        policy.predict_into(obs, &mut scratch, &mut action)
                    }
                })?;
                Ok(action_to_json(&action, policy.action_shape()))
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
fn synthetic(space: &Space) -> Json {
    match space {
        Space::Box(b) => {
            let values: Vec<f64> = b
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
            json!(values)
        }
        Space::Discrete { .. } => json!(0),
        Space::MultiDiscrete { nvec, .. } => json!(vec![0; nvec.len()]),
        Space::MultiBinary { shape, .. } => json!(vec![0; shape.iter().product()]),
        Space::Dict(items) => Json::Object(items.iter().map(|(k, s)| (k.clone(), synthetic(s))).collect()),
        _ => json!(0),
    }
}

/// The observation as one flat float32 row for batch prediction, when the space allows it.
fn flat_row(json: &Json) -> Option<Vec<f32>> {
    match json {
        Json::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                out.extend(flat_row(item)?);
            }
            Some(out)
        }
        Json::Number(n) => n.as_f64().map(|v| vec![v as f32]),
        _ => None,
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
    let json = match lines.first() {
        Some(line) => serde_json::from_str(line).context("invalid JSON")?,
        None => synthetic(space),
    };
    let parsed = JsonObservation::parse(&json, space)?;
    let mut scratch = policy.scratch();
    let mut action = policy.new_action();
    let mut state = policy.initial_state();
    let mut once = || -> anyhow::Result<()> {
        parsed.with(|obs| {
            if policy.is_recurrent() {
                policy.predict_recurrent_into(obs, &mut state, false, &mut scratch, &mut action)
            } else {
                policy.predict_into(obs, &mut scratch, &mut action)
            }
        })?;
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
    match flat_row(&json) {
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

//! Every model of the shared corpus and of `fixtures/policies/`, every observation of its
//! manifest: the action must be SB3's `predict(obs, deterministic=True)` — discrete actions
//! exactly, continuous within 1e-4 × max(1, |value|).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;

use sb3_format::{Model, VecNormalize};
use sb3_policy::{action_to_json, JsonObservation, Policy};
use serde_json::Value as Json;

fn flat(v: &Json, out: &mut Vec<Json>) {
    match v {
        Json::Array(items) => items.iter().for_each(|i| flat(i, out)),
        other => out.push(other.clone()),
    }
}

/// The comparison of `../shared/tools/sb3_predict.py`.
fn close(got: &Json, want: &Json) -> bool {
    let (mut g, mut w) = (Vec::new(), Vec::new());
    flat(got, &mut g);
    flat(want, &mut w);
    g.len() == w.len()
        && g.iter().zip(&w).all(|(g, w)| {
            if w.is_i64() || w.is_u64() {
                g.as_i64().is_some() && g.as_i64() == w.as_i64()
            } else {
                match (g.as_f64(), w.as_f64()) {
                    (Some(g), Some(w)) => (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                    _ => g == w,
                }
            }
        })
}

/// Runs every model of `manifest` (files relative to `root`); returns (models, observations)
/// checked, panicking with every mismatch.
fn check_manifest(root: &Path, manifest: &Path) -> (usize, usize) {
    let manifest = test_support::load_json(manifest);
    let models = manifest["models"].as_array().expect("models");
    let mut failures = Vec::new();
    let mut observations = 0;
    for entry in models {
        let file = entry["file"].as_str().expect("file");
        let model = Model::open(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let stats = entry["vecnormalize"]
            .as_str()
            .map(|v| VecNormalize::open(root.join(v)).unwrap_or_else(|e| panic!("{v}: {e}")));
        let policy = match Policy::from_model(&model, stats.as_ref()) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{file}: {e}"));
                continue;
            }
        };
        let (mut scratch, mut action, mut state) = (policy.scratch(), policy.new_action(), policy.initial_state());
        for (step, case) in entry["predict"].as_array().expect("predict").iter().enumerate() {
            observations += 1;
            let result = JsonObservation::parse(&case["obs"], policy.observation_space()).and_then(|obs| {
                obs.with(|obs| {
                    if policy.is_recurrent() {
                        // The manifest's observations are the consecutive steps of one episode.
                        policy.predict_recurrent_into(obs, &mut state, step == 0, &mut scratch, &mut action)
                    } else {
                        policy.predict_into(obs, &mut scratch, &mut action)
                    }
                })
            });
            match result {
                Ok(()) => {
                    let got = action_to_json(&action, policy.action_shape());
                    if !close(&got, &case["action"]) {
                        failures.push(format!("{file} #{step}: got {got} want {}", case["action"]));
                    }
                }
                Err(e) => failures.push(format!("{file} #{step}: {e}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    (models.len(), observations)
}

#[test]
fn every_corpus_model_acts_as_sb3() {
    let Some(corpus) = test_support::corpus() else { return };
    let (a, a_obs) = check_manifest(&corpus, &corpus.join("rl-trained-agents/expected.json"));
    let (b, b_obs) = check_manifest(&corpus, &corpus.join("sb3-generated/expected.json"));
    assert_eq!((a, b), (86, 10));
    assert_eq!(a_obs + b_obs, 480);
}

#[test]
fn every_fixture_policy_acts_as_sb3() {
    let root = test_support::fixture("");
    let (models, observations) = check_manifest(&root, &test_support::fixture("policies/expected.json"));
    assert!(models >= 47, "{models} models");
    assert_eq!(observations, 8 * models);
}

#[test]
fn the_sb3_fixtures_act_as_sb3() {
    // fixtures/sb3: PPO CartPole, SAC Pendulum and A2C with VecNormalize (8 predictions each).
    let root = test_support::fixture("");
    let (models, _) = check_manifest(&root, &test_support::fixture("sb3/expected.json"));
    assert_eq!(models, 3);
}

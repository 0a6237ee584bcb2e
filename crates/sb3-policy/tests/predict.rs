//! Every model of the shared corpus and of `fixtures/policies/`, every observation of its
//! manifest: the action must be SB3's `predict(obs, deterministic=True)` — discrete actions
//! exactly, continuous within 1e-4 × max(1, |value|).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;

use pth_reader::Options;
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
        let model =
            Model::open(root.join(file), &Options::default().lenient(true)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let stats = entry["vecnormalize"]
            .as_str()
            .map(|v| VecNormalize::open(root.join(v), &Options::default()).unwrap_or_else(|e| panic!("{v}: {e}")));
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

#[test]
fn batches_give_the_actions_of_single_predictions() {
    let manifest = test_support::load_json(&test_support::fixture("policies/expected.json"));
    let mut checked = 0;
    for entry in manifest["models"].as_array().unwrap() {
        let file = entry["file"].as_str().unwrap();
        let model = Model::open(test_support::fixture(file), &Options::default().lenient(true)).unwrap();
        let stats = entry["vecnormalize"]
            .as_str()
            .map(|v| VecNormalize::open(test_support::fixture(v), &Options::default()).unwrap());
        let policy = Policy::from_model(&model, stats.as_ref()).unwrap();
        if policy.is_recurrent() || matches!(policy.observation_space(), sb3_format::Space::Dict(_)) {
            assert!(policy.predict_batch(ndarray::Array2::zeros((1, 1)).view()).is_err());
            continue;
        }
        // The manifest's observations repeated to 37 rows (not a multiple of the kernel's 4
        // rows nor of a chunk), channel-first images only (rows are flat in the space's order).
        let mut rows = Vec::new();
        let mut singles = Vec::new();
        for case in entry["predict"].as_array().unwrap() {
            let obs = JsonObservation::parse(&case["obs"], policy.observation_space()).unwrap();
            let mut flat = Vec::new();
            flat_numbers(&case["obs"], &mut flat);
            let shape_ok = obs.with(|o| !matches!(o, sb3_policy::Observation::Shaped(..)));
            if shape_ok {
                singles.push(action_to_json(
                    &obs.with(|o| policy.predict(o)).unwrap(),
                    policy.action_shape(),
                ));
                rows.push(flat);
            }
        }
        if rows.is_empty() {
            continue;
        }
        let columns = rows[0].len();
        let data: Vec<f32> = (0..37).flat_map(|i| rows[i % rows.len()].clone()).collect();
        let batch = ndarray::Array2::from_shape_vec((37, columns), data).unwrap();
        let actions = policy.predict_batch(batch.view()).unwrap();
        for (i, row) in actions.rows().into_iter().enumerate() {
            let want = &singles[i % singles.len()];
            let got: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            let mut want_flat = Vec::new();
            flat_numbers(want, &mut want_flat);
            let want_flat: Vec<f64> = want_flat.iter().map(|&v| f64::from(v)).collect();
            assert_eq!(got, want_flat, "{file} row {i}");
        }
        checked += 1;
    }
    assert!(checked >= 30, "{checked} models checked in batches");
}

fn flat_numbers(v: &Json, out: &mut Vec<f32>) {
    let mut items = Vec::new();
    flat(v, &mut items);
    out.extend(items.iter().map(|x| x.as_f64().unwrap() as f32));
}

#[test]
fn custom_classes_and_tuple_spaces_are_refused_by_name() {
    let manifest = test_support::load_json(&test_support::fixture("policies-refused/expected.json"));
    let models = manifest["models"].as_array().unwrap();
    assert!(models.len() >= 4);
    for entry in models {
        let file = entry["file"].as_str().unwrap();
        let name = entry["refuse"]["name"].as_str().unwrap();
        let model = Model::open(test_support::fixture(file), &Options::default().lenient(true)).unwrap();
        let err = Policy::from_model(&model, None).expect_err(file).to_string();
        assert!(err.contains(name), "{file}: {err:?} does not name {name}");
    }
}

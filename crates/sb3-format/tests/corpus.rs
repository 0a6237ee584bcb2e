//! The public corpus: SB3 model zips and VecNormalize files written by other people's SB3
//! (1.0rc0 … 2.4) and by SB3 2.9.2, compared with what SB3 2.9.2 / torch 2.15 read from them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;

use pth_reader::Options;
use sb3_format::{Model, ObsStats, RunningMeanStd, Space, VecNormalize};
use serde_json::{json, Value as Json};

fn check(set: &str, expected_models: usize) {
    let Some(corpus) = test_support::corpus() else {
        return;
    };
    let (models, failures) = test_support::sb3::check_manifest(&corpus.join(set).join("expected.json"), &corpus);
    assert_eq!(models, expected_models, "{set}: manifest size");
    assert!(
        failures.is_empty(),
        "{set}: {} of {models} models differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn rl_trained_agents_match_sb3() {
    check("rl-trained-agents", 86);
}

#[test]
fn sb3_generated_models_match_sb3() {
    check("sb3-generated", 10);
}

#[test]
fn project_fixtures_match_sb3() {
    let dir = test_support::root().join("fixtures");
    let (models, failures) = test_support::sb3::check_manifest(&dir.join("sb3/expected.json"), &dir);
    assert_eq!(models, 3);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The VecNormalize files the manifests reference, relative to the corpus.
fn vecnormalize_files(corpus: &Path) -> Vec<(String, Option<Space>)> {
    let mut out = Vec::new();
    for set in ["rl-trained-agents", "sb3-generated"] {
        let m = test_support::load_json(&corpus.join(set).join("expected.json"));
        for e in m["models"].as_array().unwrap() {
            if let Some(vn) = e["vecnormalize"].as_str() {
                let model = Model::open(
                    corpus.join(e["file"].as_str().unwrap()),
                    &Options::default().lenient(true),
                )
                .unwrap();
                out.push((vn.to_owned(), model.observation_space().cloned()));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

fn check_rms(file: &str, what: &str, rms: &RunningMeanStd, space: Option<&Space>) {
    assert_eq!(rms.mean().len(), rms.var().len(), "{file} {what}");
    if let Some(len) = space.and_then(test_support::sb3::box_len) {
        assert_eq!(rms.mean().len(), len, "{file} {what}: mean length vs space");
    }
    assert!(
        rms.mean().iter().chain(rms.var()).all(|x| x.is_finite()),
        "{file} {what}: non-finite statistics"
    );
    assert!(rms.var().iter().all(|&v| v >= 0.0), "{file} {what}: negative variance");
    assert!(rms.count() > 0.0, "{file} {what}: count {}", rms.count());
}

#[test]
fn every_vecnormalize_file_decodes_and_fits_its_model() {
    let Some(corpus) = test_support::corpus() else {
        return;
    };
    let files = vecnormalize_files(&corpus);
    assert_eq!(files.len(), 45);
    for (file, space) in &files {
        let vn = VecNormalize::open(corpus.join(file), &Options::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(vn.clip_obs() > 0.0 && vn.epsilon() > 0.0, "{file}");
        match (vn.obs_rms().expect("obs_rms"), space) {
            (ObsStats::Single(rms), space) => check_rms(file, "obs_rms", rms, space.as_ref()),
            (ObsStats::Dict(items), Some(space @ Space::Dict(_))) => {
                for (key, rms) in items {
                    check_rms(file, key, rms, space.get(key));
                }
                assert_eq!(items.len(), json!(space)["spaces"].as_object().unwrap().len());
            }
            (ObsStats::Dict(_), other) => panic!("{file}: dict statistics for {other:?}"),
            _ => panic!("{file}: unknown statistics"),
        }
        // The wrapper's own copy of the observation space agrees with the model's.
        if let (Some(own), Some(model)) = (vn.observation_space(), space) {
            assert!(
                test_support::sb3::same_space(&json!(own), &json!(model)),
                "{file}: space"
            );
        }
        if let Some(rms) = vn.ret_rms() {
            assert!(rms.shape().is_empty(), "{file}: ret_rms shape {:?}", rms.shape());
        }
    }
}

fn compare_rms(file: &str, rms: &RunningMeanStd, want: &Json) {
    let shape = test_support::usizes(&want["shape"]);
    assert_eq!(rms.shape(), shape.as_slice(), "{file}: shape");
    let le = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    assert_eq!(
        test_support::sha256_hex(&le(rms.mean())),
        want["mean_sha256"],
        "{file}: mean"
    );
    assert_eq!(
        test_support::sha256_hex(&le(rms.var())),
        want["var_sha256"],
        "{file}: var"
    );
    assert_eq!(rms.count(), want["count"].as_f64().unwrap(), "{file}: count");
    if let Some(mean) = want.get("mean") {
        let mean: Vec<f64> = mean.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        assert_eq!(rms.mean(), mean.as_slice(), "{file}: mean values");
    }
    if let Some(var) = want.get("var") {
        let var: Vec<f64> = var.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        assert_eq!(rms.var(), var.as_slice(), "{file}: var values");
    }
}

/// tests/data/vecnormalize_stats.json was written by tests/data/vecnormalize_stats.py with the
/// project's venv (numpy 2.4.6, SB3 2.9.2): Python's own reading of every file.
#[test]
fn vecnormalize_statistics_match_python() {
    let Some(corpus) = test_support::corpus() else {
        return;
    };
    let want =
        test_support::load_json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vecnormalize_stats.json"));
    let want = want["files"].as_object().unwrap();
    assert_eq!(want.len(), 45);
    for (file, w) in want {
        let vn = VecNormalize::open(corpus.join(file), &Options::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(vn.clip_obs(), w["clip_obs"].as_f64().unwrap(), "{file}");
        assert_eq!(vn.epsilon(), w["epsilon"].as_f64().unwrap(), "{file}");
        assert_eq!(vn.norm_obs(), w["norm_obs"].as_bool().unwrap(), "{file}");
        let mut keys = vn.norm_obs_keys().map(<[String]>::to_vec);
        if let (Some(k), Some(wk)) = (keys.as_mut(), w["obs_keys"].as_array()) {
            // A pickled set has no order; Python sorted it.
            if wk.len() == k.len() {
                let mut sorted = k.clone();
                sorted.sort();
                if w["obs_keys"] == serde_json::json!(sorted) {
                    *k = sorted;
                }
            }
        }
        assert_eq!(serde_json::json!(keys), w["obs_keys"], "{file}: keys");
        match vn.obs_rms().expect("obs_rms") {
            ObsStats::Single(rms) => compare_rms(file, rms, &w["obs_rms"]),
            ObsStats::Dict(items) => {
                assert_eq!(items.len(), w["obs_rms"].as_object().unwrap().len(), "{file}");
                for (key, rms) in items {
                    compare_rms(&format!("{file}[{key}]"), rms, &w["obs_rms"][key]);
                }
            }
            _ => panic!("{file}: unknown statistics"),
        }
    }
}

#[test]
fn vecnormalize_normalizes_like_sb3() {
    let Some(corpus) = test_support::corpus() else {
        return;
    };
    let vn = VecNormalize::open(
        corpus.join("sb3-generated/ppo/acrobot_vecnorm.vecnormalize.pkl"),
        &Options::default(),
    )
    .unwrap();
    let Some(ObsStats::Single(rms)) = vn.obs_rms() else {
        panic!("single statistics expected");
    };
    // The mean normalises to zero, and a far-away value is clipped to clip_obs.
    let zero = vn.normalize_obs(rms.mean()).unwrap();
    assert!(zero.iter().all(|&x| x == 0.0), "{zero:?}");
    let far: Vec<f64> = rms.mean().iter().map(|m| m + 1e6).collect();
    let clipped = vn.normalize_obs(&far).unwrap();
    assert!(clipped.iter().all(|&x| f64::from(x) == vn.clip_obs()), "{clipped:?}");
    assert!(vn.normalize_obs(&[0.0]).is_none());
}

//! The `pth` binary driven over the fixtures, the hostile inputs and the public corpus.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value as Json;

use test_support::{corpus, fixture, load_json as json};

fn pth() -> Command {
    let mut cmd = Command::cargo_bin("pth").unwrap();
    cmd.timeout(Duration::from_secs(60));
    cmd
}

/// Runs `pth` with `args` then `file`; its JSON output, or its stderr as the failure.
fn run_json(args: &[&str], file: &Path) -> Result<Json, String> {
    let out = pth().args(args).arg(file).output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

/// `pth ls --json --sha256` against a torch manifest; returns the failures.
fn ls_matches_manifest(manifest: &Path, base: &Path, lenient: bool) -> Vec<String> {
    let m = json(manifest);
    let mut failures = Vec::new();
    for f in m["files"].as_array().unwrap() {
        let file = f["file"].as_str().unwrap();
        let lenient = lenient && f["lenient"].as_bool().unwrap_or(false);
        let args: &[&str] = if lenient {
            &["--lenient", "ls", "--json", "--sha256"]
        } else {
            &["ls", "--json", "--sha256"]
        };
        let got = match run_json(args, &base.join(file)) {
            Ok(got) => got,
            Err(stderr) => {
                failures.push(format!("{file}: {stderr}"));
                continue;
            }
        };
        assert_eq!(got["format"], f["format"], "{file}");
        let tensors = got["tensors"].as_array().unwrap();
        let want = f["tensors"].as_array().unwrap();
        if tensors.len() != want.len() {
            failures.push(format!("{file}: {} tensors, want {}", tensors.len(), want.len()));
            continue;
        }
        for w in want {
            let g = tensors.iter().find(|t| t["name"] == w["name"]);
            let Some(g) = g else {
                failures.push(format!("{file}: missing {}", w["name"]));
                continue;
            };
            for key in ["dtype", "shape", "stride", "storage_offset", "sha256"] {
                // torch's reading where the manifest records it apart from the saved values.
                let want = match key {
                    "sha256" => w.get("torch_load_sha256").or_else(|| w.get(key)),
                    _ => w.get(key),
                };
                if want.is_some() && g.get(key) != want {
                    failures.push(format!("{file} {}: {key} {:?} want {:?}", w["name"], g.get(key), want));
                }
            }
        }
    }
    failures
}

#[test]
fn ls_json_matches_every_fixture() {
    let failures = ls_matches_manifest(&fixture("torch/expected.json"), &fixture(""), true);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ls_json_matches_the_gopickle_corpus() {
    let Some(corpus) = corpus() else { return };
    let failures = ls_matches_manifest(&corpus.join("gopickle/expected.json"), &corpus, false);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn hostile_inputs_give_the_expected_exit_codes_and_one_line_errors() {
    let dir = fixture("hostile");
    let expect = json(&dir.join("expect.json"));
    let mut failures = Vec::new();
    for (name, want) in expect.as_object().unwrap() {
        let out = pth()
            .timeout(Duration::from_secs(20))
            .args(["ls", "--json"])
            .arg(dir.join(name))
            .output()
            .unwrap();
        let code = out.status.code();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ok = match want.as_str().unwrap() {
            "error" => code == Some(1) && stderr.starts_with("error: ") && stderr.trim_end().lines().count() == 1,
            "ok" => code == Some(0),
            _ => code == Some(0) || code == Some(1),
        };
        if !ok {
            failures.push(format!("{name} (want {want}): exit {code:?} {stderr}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn strict_mode_names_the_refused_global_and_lenient_reads_it() {
    let file = fixture("torch/model_full.pt");
    let out = pth().args(["ls"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("torch.nn.modules.container.Sequential"));
    pth().args(["--lenient", "ls"]).arg(&file).assert().success();
    pth().args(["ls", "--lenient"]).arg(&file).assert().success();
}

#[test]
fn usage_errors_exit_2_and_unreadable_files_exit_1() {
    pth().arg("frobnicate").assert().code(2);
    pth().args(["ls"]).assert().code(2);
    let out = pth().args(["ls", "/nonexistent/file.pt"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.trim_end().lines().count() == 1,
        "{stderr}"
    );
}

#[test]
fn ls_table_lists_layout_notes_and_totals() {
    let out = pth().args(["ls"]).arg(fixture("torch/layouts.pt")).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("strided"), "{text}");
    assert!(text.contains("shares storage"), "{text}");
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.contains("tensors,") && l.contains("storages")),
        "{text}"
    );
}

#[test]
fn ls_shows_the_zip_anomalies_torch_reads_through() {
    let file = fixture("zip/trailing_bytes.pt");
    let got = run_json(&["ls", "--json"], &file).unwrap();
    let warnings = got["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{got}");
    assert!(warnings[0].as_str().unwrap().contains("100 bytes after the end record"));
    let table = pth().args(["ls"]).arg(&file).output().unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("warning: 100 bytes after the end record"));
    let clean = run_json(&["ls", "--json"], &fixture("zip/baseline.pt")).unwrap();
    assert_eq!(clean["warnings"], serde_json::json!([]));
}

#[test]
fn ls_sha256_reports_the_storages_whose_crc_does_not_match() {
    let file = fixture("torch/zip_crc_wrong.pt");
    let crc = |got: &Json| -> Vec<String> {
        let warnings = got["warnings"].as_array().unwrap().iter();
        warnings
            .filter_map(|w| w.as_str())
            .filter(|w| w.contains("CRC mismatch"))
            .map(str::to_owned)
            .collect()
    };
    let listed = crc(&run_json(&["ls", "--json"], &file).unwrap());
    let hashed = crc(&run_json(&["ls", "--json", "--sha256"], &file).unwrap());
    assert!(listed.iter().any(|w| w.contains("/data.pkl")), "{listed:?}");
    assert!(
        !listed.iter().any(|w| w.contains("/data/")),
        "storages are not read without --sha256"
    );
    assert!(hashed.iter().any(|w| w.contains("/data/")), "{hashed:?}");
    assert_eq!(
        hashed.iter().filter(|w| w.contains("/data.pkl")).count(),
        1,
        "each record once"
    );
    let clean = run_json(&["ls", "--json", "--sha256"], &fixture("torch/checkpoint.pth")).unwrap();
    assert_eq!(clean["warnings"], serde_json::json!([]));
}

#[test]
fn tree_shows_every_value() {
    let file = fixture("torch/checkpoint.pth");
    let out = pth().args(["tree", "--json"]).arg(&file).output().unwrap();
    assert!(out.status.success());
    let tree: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tree["epoch"], 3);
    assert_eq!(
        tree["config"]["$dict"].as_array().map(|a| a.len()),
        Some(12),
        "{}",
        tree["config"]
    );
    assert_eq!(tree["model"]["0.weight"]["$tensor"]["dtype"], "float32");
    assert_eq!(
        tree["optimizer"]["param_groups"][0]["betas"],
        serde_json::json!([0.9, 0.999])
    );
    let out = pth().args(["tree"]).arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"epoch\": 3") && text.contains("7: \"int key\"") && text.contains("tensor float32"),
        "{text}"
    );
}

#[test]
fn get_prints_values_and_json() {
    let file = fixture("torch/checkpoint.pth");
    let m = json(&fixture("torch/expected.json"));
    let entry = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == "torch/checkpoint.pth")
        .unwrap();
    let bias = entry["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "model.0.bias")
        .unwrap();
    let out = pth()
        .args(["get", "--json"])
        .arg(&file)
        .arg("model.0.bias")
        .output()
        .unwrap();
    let got: Json = serde_json::from_slice(&out.stdout).unwrap();
    let values: Vec<f64> = got["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let want: Vec<f64> = bias["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(values, want);
    let out = pth().args(["get"]).arg(&file).arg("model.0.weight").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("float32 ["));
    pth().args(["get"]).arg(&file).arg("no.such.tensor").assert().code(1);
}

/// Reads every tensor of a safetensors file and checks its bytes against the manifest.
#[test]
fn convert_to_safetensors_and_npz_keeps_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let m = json(&fixture("torch/expected.json"));
    for name in [
        "layouts.pt",
        "checkpoint.pth",
        "dtypes_int.pt",
        "conj_neg.pt",
        "big_endian_legacy_dtypes.pt",
    ] {
        let entry = m["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["file"] == format!("torch/{name}"))
            .unwrap();
        let out = dir.path().join(format!("{name}.safetensors"));
        let result = pth()
            .args(["convert"])
            .arg(fixture(&format!("torch/{name}")))
            .arg(&out)
            .output()
            .unwrap();
        if name == "conj_neg.pt" || name == "big_endian_legacy_dtypes.pt" {
            // complex128 and bfloat16 need care: complex128 has no safetensors dtype.
            if !result.status.success() {
                assert!(String::from_utf8_lossy(&result.stderr).contains("safetensors has no"));
                continue;
            }
        }
        assert!(
            result.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&result.stderr)
        );
        let bytes = std::fs::read(&out).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        for t in entry["tensors"].as_array().unwrap() {
            let view = st.tensor(t["name"].as_str().unwrap()).unwrap();
            assert_eq!(
                test_support::sha256_hex(view.data()),
                t["sha256"].as_str().unwrap(),
                "{name} {}",
                t["name"]
            );
        }
        // Refuses to overwrite, unless forced.
        pth()
            .args(["convert"])
            .arg(fixture(&format!("torch/{name}")))
            .arg(&out)
            .assert()
            .code(1);
        pth()
            .args(["convert", "--force"])
            .arg(fixture(&format!("torch/{name}")))
            .arg(&out)
            .assert()
            .success();
    }
    let npz = dir.path().join("layouts.npz");
    pth()
        .args(["convert"])
        .arg(fixture("torch/layouts.pt"))
        .arg(&npz)
        .assert()
        .success();
    let file = std::fs::File::open(&npz).unwrap();
    let mut zip = zip::ZipArchive::new(file).unwrap();
    let entry = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == "torch/layouts.pt")
        .unwrap();
    for t in entry["tensors"].as_array().unwrap() {
        let mut member = zip.by_name(&format!("{}.npy", t["name"].as_str().unwrap())).unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut member, &mut data).unwrap();
        assert!(data.starts_with(b"\x93NUMPY\x01\x00"));
        let header_len = usize::from(u16::from_le_bytes([data[8], data[9]]));
        let body = &data[10 + header_len..];
        assert_eq!(
            test_support::sha256_hex(body),
            t["sha256"].as_str().unwrap(),
            "{}",
            t["name"]
        );
    }
    // bfloat16 has no numpy dtype: refused, unless cast.
    let bf = dir.path().join("floats.npz");
    pth()
        .args(["convert"])
        .arg(fixture("torch/dtypes_float.pt"))
        .arg(&bf)
        .assert()
        .code(1);
    pth()
        .args(["convert", "--dtype", "f32"])
        .arg(fixture("torch/dtypes_float.pt"))
        .arg(&bf)
        .assert()
        .success();
}

/// `pth sb3 info --json` against an SB3 manifest (the rules of ../shared/tools/sb3_info.py).
fn sb3_info_matches(manifest: &Path, base: &Path) -> Vec<String> {
    let m = json(manifest);
    let mut failures = Vec::new();
    for e in m["models"].as_array().unwrap() {
        let file = e["file"].as_str().unwrap();
        let got = match run_json(&["sb3", "info", "--json"], &base.join(file)) {
            Ok(got) => got,
            Err(stderr) => {
                failures.push(format!("{file}: {stderr}"));
                continue;
            }
        };
        for key in [
            "sb3_version",
            "system_info",
            "entries",
            "policy_class",
            "observation_space",
            "action_space",
        ] {
            if !same(&got[key], &e[key]) {
                failures.push(format!("{file}: {key} {} want {}", got[key], e[key]));
            }
        }
        for (sd, tensors) in e["state_dicts"].as_object().unwrap() {
            let got_sd = got["state_dicts"][sd].as_array().cloned().unwrap_or_default();
            for t in tensors.as_array().unwrap() {
                let g = got_sd.iter().find(|g| g["name"] == t["name"]);
                if g.is_none_or(|g| ["dtype", "shape", "sha256"].iter().any(|k| g[*k] != t[*k])) {
                    failures.push(format!("{file}: {sd} {} differs", t["name"]));
                }
            }
        }
    }
    failures
}

/// JSON equality where bounds may be "inf"/"nan" strings and NaN equals NaN.
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::String(x), Json::String(y)) => x == y,
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn sb3_info_json_matches_the_fixture_models() {
    let failures = sb3_info_matches(&fixture("sb3/expected.json"), &fixture(""));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn sb3_info_json_matches_every_corpus_model() {
    let Some(corpus) = corpus() else { return };
    let mut failures = sb3_info_matches(&corpus.join("rl-trained-agents/expected.json"), &corpus);
    failures.extend(sb3_info_matches(&corpus.join("sb3-generated/expected.json"), &corpus));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn sb3_text_summary_and_vecnormalize_statistics() {
    let out = pth()
        .args(["sb3", "info"])
        .arg(fixture("sb3/ppo_cartpole.zip"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("PPO/A2C") && text.contains("Discrete") && text.contains("mlp_extractor.policy_net.0.weight"),
        "{text}"
    );
    let out = pth()
        .args(["sb3", "vecnormalize", "--json"])
        .arg(fixture("sb3/a2c_mountaincar_vecnorm.vecnormalize.pkl"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stats: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["obs_rms"]["mean"].as_array().map(Vec::len), Some(2));
    assert_eq!(stats["norm_obs"], true);
    pth()
        .args(["sb3", "info"])
        .arg(fixture("torch/checkpoint.pth"))
        .assert()
        .code(1);
}

/// `pth sb3 predict` over a manifest: one JSON observation per line in, one action per line
/// out, compared as `../shared/tools/sb3_predict.py` compares them. Returns the failures.
fn predict_matches(manifest: &Path, base: &Path) -> Vec<String> {
    let m = json(manifest);
    let mut failures = Vec::new();
    for entry in m["models"].as_array().unwrap() {
        let file = entry["file"].as_str().unwrap();
        let lines: Vec<String> = entry["predict"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["obs"].to_string())
            .collect();
        let mut cmd = pth();
        cmd.args(["sb3", "predict"]).arg(base.join(file));
        if let Some(vn) = entry["vecnormalize"].as_str() {
            cmd.arg("--vecnormalize").arg(base.join(vn));
        }
        let out = cmd
            .arg("--obs-file")
            .arg("-")
            .write_stdin(lines.join("\n"))
            .output()
            .unwrap();
        if !out.status.success() {
            failures.push(format!("{file}: {}", String::from_utf8_lossy(&out.stderr)));
            continue;
        }
        let got: Vec<Json> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let want: Vec<&Json> = entry["predict"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["action"])
            .collect();
        if got.len() != want.len() {
            failures.push(format!("{file}: {} actions for {} observations", got.len(), want.len()));
            continue;
        }
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let close = match (g.as_array(), w.as_array()) {
                (Some(g), Some(w)) => {
                    g.len() == w.len()
                        && g.iter().zip(w).all(|(g, w)| match (g.as_f64(), w.as_f64()) {
                            (Some(g), Some(w)) if w.fract() == 0.0 && w.abs() < 1e15 && !w.is_nan() => {
                                (g - w).abs() <= 1e-4 * w.abs().max(1.0)
                            }
                            (Some(g), Some(w)) => (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                            _ => g == w,
                        })
                }
                _ => false,
            };
            if !close {
                failures.push(format!("{file} #{i}: got {g} want {w}"));
            }
        }
    }
    failures
}

#[test]
fn sb3_predict_matches_the_fixture_policies() {
    let failures = predict_matches(&fixture("policies/expected.json"), &fixture(""));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn sb3_predict_matches_the_public_corpus() {
    let Some(corpus) = corpus() else { return };
    for set in ["rl-trained-agents", "sb3-generated"] {
        let failures = predict_matches(&corpus.join(set).join("expected.json"), &corpus);
        assert!(failures.is_empty(), "{set}: {}", failures.join("\n"));
    }
}

#[test]
fn sb3_predict_forms_errors_and_bench() {
    let model = fixture("sb3/ppo_cartpole.zip");
    // --obs with two lines: two actions, `[n]` for Discrete.
    let out = pth()
        .args(["sb3", "predict"])
        .arg(&model)
        .args(["--obs", "[0.01, 0.02, 0.03, 0.04]\n[0.1, -0.5, 0.2, 1.0]"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 2);
    assert!(text.lines().all(|l| l == "[0]" || l == "[1]"), "{text}");
    // A wrong observation: exit 1 and one line naming the line.
    let out = pth()
        .args(["sb3", "predict"])
        .arg(&model)
        .args(["--obs", "[1, 2]"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 1") && err.contains("2 values"), "{err}");
    // Neither --obs nor --obs-file: usage error.
    pth().args(["sb3", "predict"]).arg(&model).assert().code(2);
    // --bench prints the three figures.
    let out = pth().args(["sb3", "predict", "--bench"]).arg(&model).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("single obs") && text.contains("obs/s") && text.contains("open + build"),
        "{text}"
    );
}

#[test]
fn sb3_info_prints_gymnasium_spaces_and_the_policy() {
    let out = pth()
        .args(["sb3", "info"])
        .arg(fixture("policies/ppo_dict_image.zip"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Box(0, 255, (3, 37, 36), uint8)"), "{text}");
    assert!(text.contains("Dict('"), "{text}");
    assert!(
        text.contains("CombinedExtractor") && text.contains("NatureCNN(3x37x36 -> 8)"),
        "{text}"
    );
    let out = pth()
        .args(["sb3", "info"])
        .arg(fixture("policies/recurrent_ppo_mlp.zip"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("recurrent actor-critic") && text.contains("LSTM"),
        "{text}"
    );
}

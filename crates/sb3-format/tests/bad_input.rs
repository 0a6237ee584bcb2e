//! Models built here, good and bad: optional members missing, deflated members, and every kind
//! of corruption, each giving an error that names the member (or, for a hostile payload, inert
//! data). Nothing may panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::Write;

use base64::Engine as _;
use pth_reader::json::{write_json, JsonBudget};
use pth_reader::{Kind, Options, Value};
use sb3_format::{DataValue, Error, ErrorKind, Model, Space, VecNormalize};
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

/// A zip of `(name, bytes, deflated)` members, written by the `zip` crate.
fn zip(members: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes, deflated) in members {
        let method = if *deflated {
            CompressionMethod::Deflated
        } else {
            CompressionMethod::Stored
        };
        let options = SimpleFileOptions::default().compression_method(method);
        writer.start_file(*name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// `{"w": tensor([1.0, 2.0])}` as torch's zip format writes it (protocol 2 pickle, one storage).
fn nested_pth() -> Vec<u8> {
    let mut pickle = Vec::new();
    pickle.extend_from_slice(b"\x80\x02}X\x01\x00\x00\x00w");
    pickle.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n(");
    pickle.extend_from_slice(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\n");
    pickle.extend_from_slice(b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x02tQ");
    pickle.extend_from_slice(b"K\x00K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)Rt");
    pickle.extend_from_slice(b"Rs.");
    let data: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
    zip(&[
        ("archive/data.pkl", &pickle, false),
        ("archive/byteorder", b"little", false),
        ("archive/data/0", &data, false),
        ("archive/version", b"3\n", false),
    ])
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn serialized(bytes: &[u8]) -> String {
    format!(
        r#"{{":type:": "<class 'function'>", ":serialized:": "{}"}}"#,
        b64(bytes)
    )
}

fn model_with_data(data: &str) -> Vec<u8> {
    let pth = nested_pth();
    zip(&[
        ("data", data.as_bytes(), false),
        ("pytorch_variables.pth", &pth, false),
        ("policy.pth", &pth, false),
        ("_stable_baselines3_version", b"2.9.2\n", false),
    ])
}

fn member_of(err: &Error) -> Option<&str> {
    err.member()
}

/// The one JSON rendering of an inert value, within `budget`: the text written, and whether
/// it ended within the budget.
fn rendered(value: Value<'_>, budget: &JsonBudget) -> (String, bool) {
    let mut out = Vec::new();
    let within = write_json(&mut out, value, budget).is_ok();
    (String::from_utf8(out).unwrap(), within)
}

#[test]
fn the_nested_pth_built_here_is_valid() {
    let bytes = model_with_data("{}");
    let model = Model::from_bytes(&bytes, &Options::default().lenient(true)).unwrap();
    let policy = model.policy().unwrap();
    let w = policy.tensor("w").unwrap();
    assert_eq!(w.to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
    // Stored members are read in place: the tensor's bytes lie inside the outer buffer.
    let outer = bytes.as_ptr_range();
    let raw = w.raw_bytes().unwrap().as_ptr_range();
    assert!(outer.start <= raw.start && raw.end <= outer.end);
    let member = model.member("policy.pth").unwrap();
    assert!(member.as_borrowed().is_some());
    assert_eq!(model.sb3_version(), Some("2.9.2"));
    assert!(model.system_info().is_none());
    assert_eq!(serde_json::json!(model.system_info()), serde_json::Value::Null);
}

#[test]
fn not_a_zip_is_an_archive_error() {
    for bytes in [&b""[..], b"not a zip", b"PK\x03\x04truncated", &[0xff; 64]] {
        let err = Model::from_bytes(bytes, &Options::default().lenient(true)).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Archive { .. }), "{err}");
        assert!(err.to_string().contains("not an SB3 model zip"), "{err}");
    }
    let err = Model::open("/nonexistent/model.zip", &Options::default().lenient(true)).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Io { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/model.zip"), "{err}");
}

#[test]
fn corrupt_data_json_names_the_member() {
    let bytes = model_with_data("{\"n_envs\": 1,");
    let err = Model::from_bytes(&bytes, &Options::default().lenient(true)).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Json { .. }), "{err}");
    assert_eq!(member_of(&err), Some("data"));
    assert!(err.to_string().starts_with("data: invalid JSON"), "{err}");
}

#[test]
fn bad_base64_names_the_member_and_key() {
    let bytes = model_with_data(r#"{"lr_schedule": {":type:": "<class 'function'>", ":serialized:": "gAWV%%%"}}"#);
    let err = Model::from_bytes(&bytes, &Options::default().lenient(true)).unwrap_err();
    match err.kind() {
        ErrorKind::Base64 { member, key, .. } => {
            assert_eq!((member.as_str(), key.as_str()), ("data", "lr_schedule"));
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("lr_schedule"), "{err}");
}

#[test]
fn malformed_payload_names_the_member_and_key() {
    // A pickle cut off in the middle of an opcode.
    let data = format!(r#"{{"action_space": {}}}"#, serialized(b"\x80\x04\x95\x10\x00"));
    let err = Model::from_bytes(model_with_data(&data), &Options::default().lenient(true)).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Payload { member, key, .. } if member == "data" && key == "action_space"),
        "{err}"
    );
}

#[test]
fn a_payload_naming_os_system_stays_inert() {
    // pickle.dumps of a reduce to os.system("echo pwned"), protocol 2.
    let hostile = b"\x80\x02cposix\nsystem\nq\x00X\n\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.";
    let data = format!(
        r#"{{"lr_schedule": {}, "observation_space": {}}}"#,
        serialized(hostile),
        serialized(hostile)
    );
    let bytes = model_with_data(&data);
    let model = Model::from_bytes(&bytes, &Options::default().lenient(true)).unwrap();
    let data = model.data().unwrap();
    let Some(DataValue::Serialized(payload)) = data.get("lr_schedule") else {
        panic!("lr_schedule should be a payload");
    };
    let Kind::Object(call) = payload.root().kind() else {
        panic!("expected an inert object");
    };
    assert_eq!(call.class_name(), Some(("posix", "system")));
    assert_eq!(call.args().index(0).and_then(|a| a.as_str()), Some("echo pwned"));
    let (text, _) = rendered(payload.root(), &JsonBudget::default());
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["$object"], "posix.system");
    // Not a space class: reported as what it names, never called.
    match model.observation_space() {
        Some(Space::Other { class }) => assert_eq!(class.to_string(), "posix.system"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_space_that_contains_itself_is_refused_without_hanging() {
    // d = Dict.__new__(Dict); d.__dict__ = {"spaces": {"a": d}}
    let cyclic =
        b"\x80\x02cgymnasium.spaces.dict\nDict\n)\x81q\x00}X\x06\x00\x00\x00spaces}X\x01\x00\x00\x00ah\x00ssb.";
    let data = format!(r#"{{"observation_space": {}}}"#, serialized(cyclic));
    let err = Model::from_bytes(model_with_data(&data), &Options::default().lenient(true)).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Invalid { member, reason } if member == "data" && reason.contains("observation_space")),
        "{err}"
    );
    // Rendering it as JSON terminates too.
    let data = format!(r#"{{"other": {}}}"#, serialized(cyclic));
    let bytes = model_with_data(&data);
    let model = Model::from_bytes(&bytes, &Options::default().lenient(true)).unwrap();
    let (text, within) = rendered(
        model.data().unwrap().payload("other").unwrap().root(),
        &JsonBudget::default(),
    );
    assert!(within && text.contains("$cycle"), "{text}");
}

#[test]
fn a_truncated_nested_pth_names_the_member() {
    let pth = nested_pth();
    for cut in [0, 10, pth.len() / 2, pth.len() - 1] {
        let truncated = &pth[..cut];
        let bytes = zip(&[("data", b"{}", false), ("policy.pth", truncated, false)]);
        let err = Model::from_bytes(&bytes, &Options::default().lenient(true)).unwrap_err();
        assert_eq!(member_of(&err), Some("policy.pth"), "cut at {cut}: {err}");
        assert!(err.to_string().starts_with("policy.pth: "), "{err}");
    }
}

#[test]
fn optional_members_may_all_be_absent() {
    let pth = nested_pth();
    let bytes = zip(&[("tensors.pth", &pth, false)]);
    let model = Model::from_bytes(&bytes, &Options::default().lenient(true)).unwrap();
    assert!(model.data().is_none() && model.sb3_version().is_none());
    assert!(model.system_info().is_none() && model.policy().is_none());
    assert!(model.pytorch_variables().is_some(), "tensors.pth stands in");
    assert_eq!(model.entry_names().collect::<Vec<_>>(), ["tensors.pth"]);
    assert!(model.policy_class().is_none() && model.observation_space().is_none());
    let missing = model.member("data").map(|_| ()).unwrap_err();
    assert!(matches!(missing.kind(), ErrorKind::MissingMember { .. }), "{missing}");
    // An empty zip is a model with nothing in it.
    let model = Model::from_bytes(zip(&[]), &Options::default().lenient(true)).unwrap();
    assert_eq!(model.entries().len(), 0);
}

#[test]
fn deflated_members_are_read_too() {
    let pth = nested_pth();
    let bytes = zip(&[
        ("data", br#"{"n_envs": 2, "gamma": 0.98}"#, true),
        ("policy.pth", &pth, true),
        ("system_info.txt", b"- OS: Linux\n- Python: 3.11.7\n", true),
        ("_stable_baselines3_version", b"2.9.2", true),
    ]);
    let model = Model::from_bytes(&bytes, &Options::default().lenient(true)).unwrap();
    assert_eq!(model.data().unwrap().n_envs(), Some(2));
    assert_eq!(model.data().unwrap().gamma(), Some(0.98));
    let w = model.policy().unwrap().tensor("w").unwrap();
    assert_eq!(w.to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
    assert_eq!(model.system_info().unwrap().python_version(), Some("3.11.7"));
    assert!(
        model.member("data").unwrap().as_borrowed().is_none(),
        "inflated, so owned"
    );
    // The inflation budget applies.
    let options = Options::default()
        .lenient(true)
        .with_limits(pth_reader::Limits::default().with_max_inflated_bytes(16));
    let err = Model::from_bytes(bytes.as_slice(), &options).unwrap_err();
    assert_eq!(member_of(&err), Some("data"), "{err}");
}

#[test]
fn corrupted_fixture_models_never_panic() {
    let path = test_support::root().join("fixtures/sb3/ppo_cartpole.zip");
    let good = std::fs::read(path).unwrap();
    assert!(Model::from_bytes(&good, &Options::default().lenient(true)).is_ok());
    // Truncations.
    for cut in (0..good.len()).step_by(997) {
        let _ = Model::from_bytes(&good[..cut], &Options::default().lenient(true));
    }
    // Single-byte corruptions spread over the file (a cheap, deterministic fuzz).
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut opened = 0;
    for _ in 0..400 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut bad = good.clone();
        let at = (state % bad.len() as u64) as usize;
        bad[at] ^= (state >> 32) as u8 | 1;
        if let Ok(model) = Model::from_bytes(&bad, &Options::default().lenient(true)) {
            opened += 1;
            let _ = serde_json::json!([model.observation_space(), model.action_space(), model.system_info()]);
            for (_, sd) in model.state_dicts() {
                for (_, t) in sd.tensors() {
                    let _ = t.to_le_bytes();
                }
            }
            if let Some(data) = model.data() {
                for (_, p) in data.payloads() {
                    let _ = rendered(p.root(), &JsonBudget::default());
                }
            }
        }
    }
    // Most flips land in member bytes, whose CRC then fails: SB3 (Python's zipfile) refuses
    // those, and so does this reader.
    assert!(opened < 400);
    // `data` is the first member: its bytes start after a 30-byte local header and its name.
    let data_at = 30 + "data".len() + 8;
    let mut bad = good.clone();
    bad[data_at] ^= 1;
    let err = Model::from_bytes(&bad, &Options::default().lenient(true)).unwrap_err();
    assert_eq!(member_of(&err), Some("data"), "{err}");
    assert!(err.to_string().contains("CRC"), "{err}");
    // A flip in a field no reader uses (the first local header's modification time) opens.
    let mut bad = good.clone();
    bad[10] ^= 1;
    assert!(Model::from_bytes(&bad, &Options::default().lenient(true)).is_ok());
}

#[test]
fn bad_vecnormalize_files_name_the_file() {
    let err = VecNormalize::from_bytes(b"", &Options::default()).unwrap_err();
    assert_eq!(member_of(&err), Some("vecnormalize.pkl"), "{err}");
    // A pickle of os.system: decodes inert, but is no VecNormalize.
    let hostile = b"\x80\x02cposix\nsystem\nq\x00X\n\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.";
    let dir = std::env::temp_dir().join(format!("sb3-format-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let evil = dir.join("evil.pkl");
    std::fs::write(&evil, hostile).unwrap();
    let err = VecNormalize::open(&evil, &Options::default()).unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        matches!(err.kind(), ErrorKind::Invalid { member, .. } if member.ends_with("evil.pkl")),
        "{err}"
    );
    let err = VecNormalize::open("/nonexistent/vecnormalize.pkl", &Options::default()).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Io { .. }), "{err}");
}

/// A gymnasium `Dict` space whose `keys` sub-spaces are all one shared `Box` of `n` float32
/// elements (the memo makes the pickle small; a naive decoder copies the bounds per key).
fn shared_box_dict(n: u32, keys: usize) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(b"\x80\x04cgymnasium.spaces.dict\nDict\n)\x81}X\x06\x00\x00\x00spaces}(");
    p.extend_from_slice(b"X\x02\x00\x00\x00k0cgymnasium.spaces.box\nBox\n)\x81}(");
    p.extend_from_slice(b"X\x05\x00\x00\x00dtypecnumpy\ndtype\nX\x02\x00\x00\x00f4\x89\x88\x87R");
    p.extend_from_slice(b"(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbq\x03");
    p.extend_from_slice(b"X\x06\x00\x00\x00_shapeJ");
    p.extend_from_slice(&n.to_le_bytes());
    p.extend_from_slice(b"\x85X\x03\x00\x00\x00lowcnumpy._core.numeric\n_frombuffer\n(B");
    p.extend_from_slice(&(n * 4).to_le_bytes());
    p.extend(std::iter::repeat_n(0u8, n as usize * 4));
    p.extend_from_slice(b"h\x03J");
    p.extend_from_slice(&n.to_le_bytes());
    p.extend_from_slice(b"\x85X\x01\x00\x00\x00CtRq\x02X\x04\x00\x00\x00highh\x02ubq\x01");
    for i in 1..keys {
        let key = format!("k{i}");
        p.push(b'X');
        p.extend_from_slice(&(key.len() as u32).to_le_bytes());
        p.extend_from_slice(key.as_bytes());
        p.extend_from_slice(b"h\x01");
    }
    p.extend_from_slice(b"usb.");
    p
}

#[test]
fn shared_values_cannot_make_decoding_explode() {
    // Small enough to decode: two keys sharing one Box.
    let data = format!(r#"{{"observation_space": {}}}"#, serialized(&shared_box_dict(4, 2)));
    let model = Model::from_bytes(model_with_data(&data), &Options::default().lenient(true)).unwrap();
    assert_eq!(
        serde_json::json!(model.observation_space())["spaces"]["k1"]["shape"],
        serde_json::json!([4])
    );
    // 2,000 keys × 200,000 bounds would be 400 million copied values: refused by max_values.
    let big = serialized(&shared_box_dict(100_000, 2_000));
    let start = std::time::Instant::now();
    let err = Model::from_bytes(
        model_with_data(&format!(r#"{{"observation_space": {big}}}"#)),
        &Options::default().lenient(true),
    )
    .unwrap_err();
    assert!(err.to_string().contains("max_values"), "{err}");
    assert_eq!(member_of(&err), Some("data"));
    // The same payload elsewhere opens, and renders within its node budget.
    let bytes = model_with_data(&format!(r#"{{"other": {big}}}"#));
    let model = Model::from_bytes(&bytes, &Options::default().lenient(true)).unwrap();
    let budget = JsonBudget::default().with_max_bytes(10_000_000);
    let (json, within) = rendered(model.data().unwrap().payload("other").unwrap().root(), &budget);
    assert!(json.len() <= 10_000_000 && !within, "{} bytes", json.len());
    assert!(start.elapsed().as_secs() < 30, "took {:?}", start.elapsed());
}

#[test]
fn a_key_set_twice_keeps_its_first_place_and_last_value() {
    // {"net_arch": [1], "net_arch": [2, 3]} as a pickle (SETITEMS with the key twice).
    let kwargs = b"\x80\x02}(X\x08\x00\x00\x00net_arch]K\x01aX\x08\x00\x00\x00net_arch](K\x02K\x03eu.";
    let data = format!(r#"{{"policy_kwargs": {}}}"#, serialized(kwargs));
    let bytes = model_with_data(&data);
    let model = Model::from_bytes(&bytes, &Options::default().lenient(true)).unwrap();
    let kwargs = model.policy_kwargs().unwrap();
    assert_eq!(kwargs.net_arch, Some(sb3_format::NetArch::Layers(vec![2, 3])));
    assert_eq!(kwargs.keys, ["net_arch"]);
}

#[test]
fn python_json_constants_in_data_are_read_as_strings() {
    let data = sb3_format::Data::parse(
        br#"{"gamma": 0.99, "max_grad_norm": Infinity, "x": [NaN, -Infinity], "s": "NaN \"Infinity\""}"#,
        &Options::default(),
    )
    .unwrap();
    assert_eq!(data.raw()["max_grad_norm"], "inf");
    assert_eq!(data.raw()["x"], serde_json::json!(["nan", "-inf"]));
    assert_eq!(data.raw()["s"], "NaN \"Infinity\"");
    assert_eq!(data.gamma(), Some(0.99));
}

#[test]
fn vecnormalize_without_obs_rms_only_when_observations_are_not_normalised() {
    // SB3 makes `obs_rms` only with `norm_obs=True`: a reward-only VecNormalize has none.
    let reward_only = b"\x80\x02}q\x00(X\x08\x00\x00\x00norm_obsq\x01\x89X\x08\x00\x00\x00clip_obsq\x02G@$\x00\x00\x00\x00\x00\x00X\x07\x00\x00\x00epsilonq\x03G>Ey\x8e\xe20\x8c:u.";
    let vn = VecNormalize::from_bytes(reward_only, &Options::default()).unwrap();
    assert!(vn.obs_rms().is_none() && !vn.norm_obs());
    assert_eq!(vn.normalize_obs(&[0.5, -2.0]), Some(vec![0.5, -2.0]));
    assert_eq!(vn.normalize_obs_key("k", &[3.0]), Some(vec![3.0]));
    // The same pickle saying it normalises observations lacks their statistics.
    let mut normalising = reward_only.to_vec();
    let at = normalising.iter().position(|&b| b == 0x89).unwrap();
    normalising[at] = 0x88;
    let err = VecNormalize::from_bytes(&normalising, &Options::default()).unwrap_err();
    assert!(err.to_string().contains("obs_rms"), "{err}");
    // The fixture SB3 wrote with `VecNormalize(env, norm_obs=False)`.
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/policies/ppo_vecnorm_reward_only.vecnormalize.pkl"
    );
    let vn = VecNormalize::open(fixture, &Options::default()).unwrap();
    assert!(vn.obs_rms().is_none() && !vn.norm_obs() && vn.ret_rms().is_some());
}

//! PReLU state dicts that SB3 never writes: a slope where no activation follows a Linear layer,
//! or one slope per channel. Each must be refused by name, never run with a misplaced slope.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{Read, Write};

use pth_reader::write::{Builder, SaveOptions};
use pth_reader::{Checkpoint, DType, Options};
use sb3_format::Model;
use sb3_policy::Policy;

/// `fixtures/policies/dqn_prelu.zip` (q_net: Linear 0, PReLU 1, Linear 2, PReLU 3, Linear 4)
/// with its policy's tensors renamed by `rename` (`None` keeps a name) and, with `extra`, a
/// 2-element float32 tensor added under that name.
fn edited(rename: &dyn Fn(&str) -> Option<String>, extra: Option<&str>) -> Vec<u8> {
    let bytes = std::fs::read(test_support::fixture("policies/dqn_prelu.zip")).unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..zip.len() {
        let mut member = zip.by_index(i).unwrap();
        let name = member.name().unwrap().into_owned();
        let mut data = Vec::new();
        member.read_to_end(&mut data).unwrap();
        if name == "policy.pth" {
            let policy = Checkpoint::from_bytes(data, &Options::default()).unwrap();
            let mut b = Builder::new();
            let mut items = Vec::new();
            for (tensor, view) in policy.tensors() {
                let renamed = rename(tensor).unwrap_or_else(|| tensor.to_owned());
                items.push((renamed, b.tensor_view(view).unwrap()));
            }
            if let Some(extra) = extra {
                let slopes: Vec<u8> = [0.1f32, 0.2].iter().flat_map(|v| v.to_le_bytes()).collect();
                let storage = b.storage(DType::Float32, slopes).unwrap();
                items.push((extra.to_owned(), b.tensor(storage, &[2]).unwrap()));
            }
            let named: Vec<(&str, _)> = items.iter().map(|(n, v)| (n.as_str(), *v)).collect();
            let root = b.state_dict(&named).unwrap();
            data = b.save_to(root, Vec::new(), &SaveOptions::default()).unwrap();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        out.write_all(&data).unwrap();
    }
    out.finish().unwrap().into_inner()
}

fn refusal(bytes: Vec<u8>) -> String {
    let model = Model::from_bytes(bytes, &Options::default().lenient(true)).unwrap();
    Policy::from_model(&model, None)
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn the_fixture_runs_as_written() {
    let model = Model::from_bytes(edited(&|_| None, None), &Options::default().lenient(true)).unwrap();
    assert!(Policy::from_model(&model, None).is_ok());
}

#[test]
fn a_slope_after_the_output_layer_is_refused() {
    // The second PReLU moved after the output layer: q_net.q_net.3 -> q_net.q_net.5.
    let moved = edited(
        &|n| (n == "q_net.q_net.3.weight").then(|| "q_net.q_net.5.weight".into()),
        None,
    );
    let err = refusal(moved);
    assert!(err.contains("PReLU layers at indices [1, 5]"), "{err}");
}

#[test]
fn a_missing_slope_is_refused() {
    let dropped = edited(
        &|n| (n == "q_net.q_net.1.weight").then(|| "q_net.q_net.7.weight".into()),
        None,
    );
    let err = refusal(dropped);
    assert!(err.contains("PReLU layers at indices [3, 7]"), "{err}");
}

#[test]
fn one_slope_per_channel_is_refused_by_name() {
    // A second weight for the first PReLU: a per-channel slope, which SB3's activation_fn() never makes.
    let per_channel = edited(
        &|n| (n == "q_net.q_net.1.weight").then(|| "spare.weight".into()),
        Some("q_net.q_net.1.weight"),
    );
    let err = refusal(per_channel);
    assert!(err.contains("\"q_net.q_net.1.weight\""), "{err}");
}

//! Any bytes opened as an SB3 model zip, and as a VecNormalize pickle.

use pth_reader::json::{write_json, JsonBudget};
use pth_reader::Options;

/// Opens `data` both ways and touches what opens: the tensors, the spaces and system info as
/// `pth sb3 info --json` renders them, and every payload as `pth_reader::json` renders it.
pub fn run(data: &[u8]) {
    let options = Options::default().lenient(true);
    if let Ok(model) = sb3_format::Model::from_bytes(data, &options) {
        let _ = serde_json::to_vec(&(model.observation_space(), model.action_space(), model.system_info()));
        for (_, ckpt) in model.state_dicts() {
            for (_, t) in ckpt.tensors() {
                let _ = t.to_le_bytes();
            }
        }
        let budget = JsonBudget::default().with_max_values(10_000).with_max_bytes(1 << 20);
        for (_, payload) in model.data().into_iter().flat_map(|d| d.payloads()) {
            let _ = write_json(&mut std::io::sink(), payload.root(), &budget);
        }
    }
    if let Ok(v) = sb3_format::VecNormalize::from_bytes(data, &options) {
        let _ = v.normalize_obs(&[0.0; 4]);
    }
}

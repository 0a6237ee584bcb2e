//! Any bytes opened as an SB3 model zip, and as a VecNormalize pickle.

/// Opens `data` both ways and touches what opens.
pub fn run(data: &[u8]) {
    if let Ok(model) = sb3_format::Model::from_bytes(data) {
        let _ = model.info_json();
        for (_, ckpt) in model.state_dicts() {
            for (_, t) in ckpt.tensors() {
                let _ = t.to_le_bytes();
            }
        }
    }
    if let Ok(v) = sb3_format::VecNormalize::from_bytes(data) {
        let _ = v.normalize_obs(&[0.0; 4]);
    }
}

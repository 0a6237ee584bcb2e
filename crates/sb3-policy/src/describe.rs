//! A one-line account of the network a policy runs, for `pth sb3 info`.

use crate::extractor::{ExtractorKind, Part};
use crate::head::{Mapping, Squash};
use crate::network::Network;

fn part(p: &Part) -> String {
    match (&p.cnn, p.input.image()) {
        (Some(cnn), Some(image)) => {
            let [c, h, w] = image.chw;
            format!("NatureCNN({c}x{h}x{w} -> {})", cnn.features())
        }
        _ => format!("Flatten({})", p.input.width()),
    }
}

/// `Flatten(4) -> Linear 4->64 Tanh -> Linear 64->64 Tanh -> Linear 64->2 -> argmax of probabilities`.
pub(crate) fn architecture(net: &Network) -> String {
    let mut stages = Vec::new();
    match net.extractor.kind() {
        ExtractorKind::Combined => {
            let keys: Vec<String> = net
                .extractor
                .parts()
                .iter()
                .map(|p| format!("{}: {}", p.key.as_deref().unwrap_or("?"), part(p)))
                .collect();
            stages.push(format!("Combined({})", keys.join(", ")));
        }
        _ => stages.extend(net.extractor.parts().first().map(part)),
    }
    if let Some(lstm) = &net.lstm {
        stages.push(format!(
            "LSTM {}->{} x{} layer{}",
            lstm.inputs(),
            lstm.hidden(),
            lstm.num_layers(),
            if lstm.num_layers() == 1 { "" } else { "s" }
        ));
    }
    let activation = net.hidden.activation().map(|a| a.name()).unwrap_or_default();
    for layer in net.hidden.layers() {
        stages.push(format!("Linear {}->{} {activation}", layer.inputs(), layer.outputs()));
    }
    let bias = if net.output.has_bias() { "" } else { " (no bias)" };
    stages.push(format!(
        "Linear {}->{}{bias}",
        net.output.inputs(),
        net.output.outputs()
    ));
    match net.squash {
        Squash::None => {}
        Squash::Tanh => stages.push("tanh".into()),
        Squash::ClampTanh(limit) => stages.push(format!("clamp +-{limit}, tanh")),
    }
    stages.push(match &net.mapping {
        Mapping::Clip { .. } => "clip to the action bounds".into(),
        Mapping::Unscale { .. } => "rescale to the action bounds".into(),
        Mapping::Categorical { .. } => "argmax of probabilities".into(),
        Mapping::MultiCategorical { nvec } => format!("argmax of probabilities per element of {nvec:?}"),
        Mapping::Bernoulli => "round(sigmoid)".into(),
        Mapping::CategoricalPairs => "argmax of probabilities per pair of logits".into(),
        Mapping::Argmax { .. } => "argmax".into(),
        Mapping::QuantileArgmax { quantiles, .. } => format!("mean of {quantiles} quantiles, argmax"),
    });
    stages.join(" -> ")
}

//! Features extractors: `FlattenExtractor`, `NatureCNN` and `CombinedExtractor` (Dict
//! observations: image keys through a NatureCNN each, the rest flattened, concatenated in the
//! space's key order), with the observation preprocessing of each part.

use std::fmt;

use sb3_format::{GlobalName, ObsStats, Space, VecNormalize};

use crate::conv::NatureCnn;
use crate::error::{invalid, unsupported, Error, Result};
use crate::input::{Input, Layout, Normalization};
use crate::observation::Observation;
use crate::weights::StateDict;

/// The features extractor classes SB3 ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtractorKind {
    /// `FlattenExtractor`.
    Flatten,
    /// `NatureCNN`.
    NatureCnn,
    /// `CombinedExtractor`.
    Combined,
}

impl ExtractorKind {
    /// The kind a pickled `features_extractor_class` names; an error naming any other class.
    pub fn from_class(class: &GlobalName) -> Result<ExtractorKind> {
        match (class.module.as_str(), class.name.as_str()) {
            ("stable_baselines3.common.torch_layers", "FlattenExtractor") => Ok(ExtractorKind::Flatten),
            ("stable_baselines3.common.torch_layers", "NatureCNN") => Ok(ExtractorKind::NatureCnn),
            ("stable_baselines3.common.torch_layers", "CombinedExtractor") => Ok(ExtractorKind::Combined),
            _ => Err(unsupported(format!("features extractor class {class}"))),
        }
    }

    /// SB3's class name.
    pub fn name(self) -> &'static str {
        match self {
            ExtractorKind::Flatten => "FlattenExtractor",
            ExtractorKind::NatureCnn => "NatureCNN",
            ExtractorKind::Combined => "CombinedExtractor",
        }
    }
}

impl fmt::Display for ExtractorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One observation (or one key of a Dict observation) and its path to features.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub key: Option<String>,
    pub input: Input,
    pub cnn: Option<NatureCnn>,
}

impl Part {
    /// The number of features this part contributes.
    pub fn features(&self) -> usize {
        self.cnn.as_ref().map_or(self.input.width(), NatureCnn::features)
    }
}

/// Scratch sizes an extractor needs: (preprocessed input, CNN activation, CNN patch).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ExtractorSizes {
    pub input: usize,
    pub activation: usize,
    pub patch: usize,
}

/// Buffers for [`Extractor::forward`].
pub(crate) struct ExtractorScratch<'s> {
    pub input: &'s mut [f32],
    pub a: &'s mut [f32],
    pub b: &'s mut [f32],
    pub patch: &'s mut [f32],
}

/// A features extractor with its preprocessing.
#[derive(Debug, Clone)]
pub(crate) struct Extractor {
    kind: ExtractorKind,
    parts: Vec<Part>,
    dict: bool,
}

/// The VecNormalize statistics of one part, if it is normalised.
fn normalization_for(vn: Option<&VecNormalize>, key: Option<&str>) -> Result<Option<Normalization>> {
    let Some(vn) = vn.filter(|v| v.norm_obs()) else {
        return Ok(None);
    };
    let Some(stats) = vn.obs_rms() else {
        return Err(Error::VecNormalize(
            "norm_obs is set but the file has no obs_rms".into(),
        ));
    };
    let rms = match (stats, key) {
        (ObsStats::Single(rms), None) => Some(rms),
        (ObsStats::Dict(_), Some(key)) => {
            let selected = match vn.norm_obs_keys() {
                Some(keys) => keys.iter().any(|k| k == key),
                None => true,
            };
            match (selected, stats.get(key)) {
                (true, Some(rms)) => Some(rms),
                (true, None) => return Err(Error::VecNormalize(format!("no statistics for key {key:?}"))),
                (false, _) => None,
            }
        }
        (ObsStats::Single(_), Some(_)) => {
            return Err(Error::VecNormalize(
                "statistics of one array for a Dict observation space".into(),
            ))
        }
        (ObsStats::Dict(_), None) => {
            return Err(Error::VecNormalize(
                "statistics per key for an observation space that is not a Dict".into(),
            ))
        }
        _ => return Err(Error::VecNormalize("unknown statistics layout".into())),
    };
    Ok(rms.map(|r| Normalization::new(r, vn.epsilon(), vn.clip_obs())))
}

/// A `[c, h, w]` shape for NatureCNN (SB3 reads channels first from the space).
fn chw(input: &Input, what: &str) -> Result<[usize; 3]> {
    input
        .image()
        .map(|i| i.chw)
        .ok_or_else(|| unsupported(format!("NatureCNN on {what}, which is not a 3-D Box")))
}

impl Extractor {
    /// Builds the extractor of `kind` for `space`, its weights under `prefix`.
    pub fn build(
        kind: ExtractorKind,
        space: &Space,
        state: &StateDict<'_, '_>,
        prefix: &str,
        normalize_images: bool,
        vn: Option<&VecNormalize>,
    ) -> Result<Extractor> {
        let parts = match (kind, space) {
            (ExtractorKind::Combined, Space::Dict(items)) => {
                let mut parts = Vec::with_capacity(items.len());
                for (key, sub) in items {
                    let input = Input::new(sub, normalize_images, normalization_for(vn, Some(key))?)
                        .map_err(|e| key_error(key, e))?;
                    let cnn_prefix = format!("{prefix}extractors.{key}.");
                    let cnn = if state.has_prefix(&cnn_prefix) {
                        Some(NatureCnn::load(
                            state,
                            &cnn_prefix,
                            chw(&input, &format!("key {key:?}"))?,
                        )?)
                    } else {
                        None
                    };
                    parts.push(Part {
                        key: Some(key.clone()),
                        input,
                        cnn,
                    });
                }
                check_keys(state, prefix, items)?;
                parts
            }
            (ExtractorKind::Combined, _) | (_, Space::Dict(_)) => {
                return Err(unsupported(format!(
                    "{kind} on a {} observation space",
                    space.type_name()
                )))
            }
            (ExtractorKind::Flatten, _) => vec![Part {
                key: None,
                input: Input::new(space, normalize_images, normalization_for(vn, None)?)?,
                cnn: None,
            }],
            (ExtractorKind::NatureCnn, _) => {
                let input = Input::new(space, normalize_images, normalization_for(vn, None)?)?;
                let cnn = NatureCnn::load(state, prefix, chw(&input, "the observation space")?)?;
                vec![Part {
                    key: None,
                    input,
                    cnn: Some(cnn),
                }]
            }
        };
        Ok(Extractor {
            kind,
            dict: matches!(space, Space::Dict(_)),
            parts,
        })
    }

    pub fn kind(&self) -> ExtractorKind {
        self.kind
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The number of features (`features_dim`).
    pub fn features(&self) -> usize {
        self.parts.iter().map(Part::features).sum()
    }

    /// Whether features are the observation's values as they are: one flattened `Box`
    /// part, not normalised, not scaled, not transposed (then a batch row is copied as is).
    pub fn is_plain_copy(&self) -> bool {
        match self.parts.as_slice() {
            [Part {
                cnn: None,
                input: input @ Input::Box { .. },
                ..
            }] => input.is_plain(),
            _ => false,
        }
    }

    /// Whether any part is normalised by VecNormalize.
    pub fn normalized(&self) -> bool {
        self.parts.iter().any(|p| p.input.normalized())
    }

    pub fn sizes(&self) -> ExtractorSizes {
        let mut sizes = ExtractorSizes::default();
        for part in &self.parts {
            if let Some(cnn) = &part.cnn {
                let (activation, patch) = cnn.scratch_sizes();
                sizes.input = sizes.input.max(part.input.width());
                sizes.activation = sizes.activation.max(activation);
                sizes.patch = sizes.patch.max(patch);
            }
        }
        sizes
    }

    /// Preprocesses `obs` and extracts its [`features`](Self::features) into `out`.
    #[inline(always)]
    pub fn forward(&self, obs: &Observation<'_>, s: &mut ExtractorScratch<'_>, out: &mut [f32]) -> Result<()> {
        let observations: &[Observation<'_>] = match (self.dict, obs) {
            (true, Observation::Dict(items)) => items,
            (false, Observation::Dict(_)) => {
                return Err(Error::Observation(
                    "a Dict observation for a space that is not a Dict".into(),
                ))
            }
            (true, _) => return Err(Error::Observation("the observation space is a Dict".into())),
            (false, single) => std::slice::from_ref(single),
        };
        if observations.len() != self.parts.len() {
            return Err(Error::Observation(format!(
                "{} entries for a Dict of {} keys",
                observations.len(),
                self.parts.len()
            )));
        }
        let mut rest = out;
        for (part, obs) in self.parts.iter().zip(observations) {
            let (head, tail) = rest.split_at_mut(part.features().min(rest.len()));
            match &part.cnn {
                None => part.input.write(obs, head, Layout::Space),
                Some(cnn) => {
                    let image = s.input.get_mut(..part.input.width()).unwrap_or_default();
                    part.input.write(obs, image, Layout::ChannelLast)?;
                    cnn.forward(image, s.a, s.b, s.patch, head);
                    Ok(())
                }
            }
            .map_err(|e| match &part.key {
                Some(key) => key_error(key, e),
                None => e,
            })?;
            rest = tail;
        }
        Ok(())
    }
}

/// `e` with the Dict key it concerns.
fn key_error(key: &str, e: Error) -> Error {
    match e {
        Error::Observation(m) => Error::Observation(format!("key {key:?}: {m}")),
        Error::VecNormalize(m) => Error::VecNormalize(format!("key {key:?}: {m}")),
        Error::Unsupported(m) => Error::Unsupported(format!("key {key:?}: {m}")),
        other => other,
    }
}

/// Every tensor under `<prefix>extractors.` must belong to a key of the space.
fn check_keys(state: &StateDict<'_, '_>, prefix: &str, items: &[(String, Space)]) -> Result<()> {
    let under = format!("{prefix}extractors.");
    for name in state.names_under(&under) {
        let rest = name.get(under.len()..).unwrap_or_default();
        if !items.iter().any(|(key, _)| rest.starts_with(&format!("{key}."))) {
            return Err(invalid(format!(
                "tensor {name:?} belongs to no key of the observation space"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sb3_extractor_classes_are_accepted() {
        let sb3 = |name: &str| GlobalName::new("stable_baselines3.common.torch_layers", name);
        assert_eq!(
            ExtractorKind::from_class(&sb3("NatureCNN")).unwrap(),
            ExtractorKind::NatureCnn
        );
        assert_eq!(
            ExtractorKind::from_class(&sb3("CombinedExtractor")).unwrap(),
            ExtractorKind::Combined
        );
        assert_eq!(
            ExtractorKind::from_class(&sb3("FlattenExtractor")).unwrap(),
            ExtractorKind::Flatten
        );
        let custom = GlobalName::new("__main__", "CustomCNN");
        let err = ExtractorKind::from_class(&custom).unwrap_err().to_string();
        assert!(err.contains("features extractor class __main__.CustomCNN"), "{err}");
    }
}

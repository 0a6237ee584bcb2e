//! `pth sb3 ...`: Stable-Baselines3 models and VecNormalize files.
//!
//! A model's `data` payloads are cloudpickles whose globals are code by design: they are always
//! decoded inert (lenient). `--lenient` applies to the nested `.pth` state dicts, which hold
//! only torch's allowlisted globals in every model we know of.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use pth_reader::Options;
use sb3_format::{Model, ObsStats, RunningMeanStd, VecNormalize};
use sb3_policy::Policy;
use serde_json::{json, Map, Value as Json};

use crate::json::{float, tensor_entry};
use crate::output::with_stdout;
use crate::{gym, predict};

/// The `sb3` subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Summarise a model: algorithm, spaces, networks, versions, hyperparameters.
    Info {
        /// Print one JSON object (the schema of the corpus manifests) instead of text.
        #[arg(long)]
        json: bool,
        /// The model zip.
        model: PathBuf,
    },
    /// Run a model's policy: one JSON observation per line in, one JSON action per line out
    /// (SB3's `predict(obs, deterministic=True)`). Recurrent policies read the lines as the
    /// steps of one episode.
    Predict {
        /// The model zip.
        model: PathBuf,
        /// VecNormalize statistics to normalise observations with.
        #[arg(long, value_name = "FILE.pkl")]
        vecnormalize: Option<PathBuf>,
        /// Observations as JSON, one per line (an array, nested for images; an object for
        /// Dict spaces).
        #[arg(long, conflicts_with = "obs_file", required_unless_present_any = ["obs_file", "bench"])]
        obs: Option<String>,
        /// A file of JSON observations, one per line (`-` for stdin).
        #[arg(long, value_name = "PATH")]
        obs_file: Option<PathBuf>,
        /// Time the policy instead: single-observation latency, batch throughput, open + build.
        #[arg(long)]
        bench: bool,
    },
    /// Print the statistics of a VecNormalize pickle.
    Vecnormalize {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The vecnormalize.pkl file.
        file: PathBuf,
    },
}

/// Runs an `sb3` subcommand.
pub fn run(command: Command, options: &Options) -> anyhow::Result<()> {
    match command {
        Command::Info { json, model } => {
            let m = open_model(&model, options)?;
            if json {
                let out = info_json(&m)?;
                with_stdout(|w| writeln!(w, "{out}"))
            } else {
                let text = info_text(&m);
                with_stdout(|w| w.write_all(text.as_bytes()))
            }
        }
        Command::Predict {
            model,
            vecnormalize,
            obs,
            obs_file,
            bench,
        } => {
            let stats = match &vecnormalize {
                // Its errors name the file already.
                Some(path) => Some(VecNormalize::open(path, options)?),
                None => None,
            };
            let open = || -> anyhow::Result<Policy> {
                let m = open_model(&model, options)?;
                Policy::from_model(&m, stats.as_ref()).with_context(|| model.display().to_string())
            };
            let policy = open()?;
            let lines = predict::read_lines(obs.as_deref(), obs_file.as_deref())?;
            if bench {
                predict::bench(&model, &policy, &lines, &open)
            } else {
                predict::run(&policy, &lines)
            }
        }
        Command::Vecnormalize { json, file } => {
            let v = VecNormalize::open(&file, options)?;
            if json {
                let out = vecnormalize_json(&v);
                with_stdout(|w| writeln!(w, "{out}"))
            } else {
                let text = vecnormalize_text(&v);
                with_stdout(|w| w.write_all(text.as_bytes()))
            }
        }
    }
}

fn open_model(path: &Path, options: &Options) -> anyhow::Result<Model<'static>> {
    let model = Model::open(path, options).with_context(|| path.display().to_string())?;
    // Every member is optional for the library, but a zip with neither `data` nor a state
    // dict is not an SB3 model (a torch archive is a zip too).
    if model.data().is_none() && model.state_dicts().len() == 0 {
        anyhow::bail!(
            "{}: not a Stable-Baselines3 model (no data member and no .pth state dicts)",
            path.display()
        );
    }
    Ok(model)
}

/// The corpus model-entry schema: `sb3_version`, `system_info`, `entries`, `policy_class` (the
/// class name), `observation_space`, `action_space` (absent values `null`), `state_dicts` (name
/// → tensor entries with sha256), then `algorithm` and `hyperparameters`.
fn info_json(model: &Model<'_>) -> anyhow::Result<Json> {
    let mut out = json!({
        "sb3_version": model.sb3_version(),
        "system_info": model.system_info(),
        "entries": model.entry_names().collect::<Vec<_>>(),
        "policy_class": model.policy_class().map(|c| c.name.as_str()),
        "observation_space": model.observation_space(),
        "action_space": model.action_space(),
    });
    let mut state_dicts = Map::new();
    for (name, ckpt) in model.state_dicts() {
        let tensors = ckpt
            .tensors()
            .map(|(n, t)| Ok(serde_json::to_value(tensor_entry(n, t, true)?)?))
            .collect::<anyhow::Result<Vec<_>>>()?;
        state_dicts.insert(name.to_owned(), Json::Array(tensors));
    }
    if let Some(map) = out.as_object_mut() {
        map.insert("state_dicts".into(), Json::Object(state_dicts));
        map.insert("algorithm".into(), json!(algorithm(model)));
        map.insert("hyperparameters".into(), hyperparameters(model));
    }
    Ok(out)
}

/// The algorithm family, from the policy class and the state dicts' names.
fn algorithm(model: &Model<'_>) -> &'static str {
    let class = model.policy_class().map(|c| c.name.as_str()).unwrap_or_default();
    let module = model.policy_class().map(|c| c.module.as_str()).unwrap_or_default();
    let has = |name: &str| model.state_dict(name).is_some();
    let has_tensor = |prefix: &str| {
        model
            .policy()
            .is_some_and(|p| p.tensors().any(|(n, _)| n.starts_with(prefix)))
    };
    // The policy class's module names the algorithm family (aliases such as MultiInputPolicy
    // pickle as the class of their own module).
    for (prefix, name) in [
        ("sb3_contrib.tqc.", "TQC"),
        ("sb3_contrib.qrdqn.", "QR-DQN"),
        ("sb3_contrib.ars.", "ARS"),
        ("sb3_contrib.common.recurrent.", "RecurrentPPO"),
        ("sb3_contrib.common.maskable.", "MaskablePPO"),
        ("stable_baselines3.dqn.", "DQN"),
        ("stable_baselines3.sac.", "SAC"),
        ("stable_baselines3.td3.", "TD3/DDPG"),
    ] {
        if module.starts_with(prefix) {
            return name;
        }
    }
    match class {
        "DQNPolicy" | "CnnPolicy" if has_tensor("q_net.") => "DQN",
        "QRDQNPolicy" => "QR-DQN",
        "ARSPolicy" | "ARSLinearPolicy" => "ARS",
        "SACPolicy" => "SAC",
        "TQCPolicy" => "TQC",
        "TD3Policy" => "TD3",
        _ if has_tensor("quantile_net.") => "QR-DQN",
        _ if has_tensor("q_net.") => "DQN",
        _ if has_tensor("actor.latent_pi.") && has_tensor("critic.quantile") => "TQC",
        _ if has_tensor("actor.latent_pi.") => "SAC",
        _ if has_tensor("actor.mu.") => "TD3/DDPG",
        _ if module.contains("sb3_contrib") && has_tensor("action_net") && !has_tensor("value_net") => "ARS",
        _ if has_tensor("action_net.") && has("policy.optimizer") => "PPO/A2C",
        _ => "unknown",
    }
}

/// The common hyperparameters that `data` holds as plain JSON.
fn hyperparameters(model: &Model<'_>) -> Json {
    let Some(data) = model.data() else { return Json::Null };
    let mut out = Map::new();
    for key in [
        "n_envs",
        "num_timesteps",
        "seed",
        "gamma",
        "gae_lambda",
        "ent_coef",
        "vf_coef",
        "max_grad_norm",
        "n_steps",
        "batch_size",
        "n_epochs",
        "buffer_size",
        "learning_starts",
        "tau",
        "train_freq",
        "gradient_steps",
        "target_update_interval",
        "exploration_fraction",
        "use_sde",
        "sde_sample_freq",
        "normalize_advantage",
    ] {
        if let Some(value) = data.raw().get(key).filter(|v| !v.is_object()) {
            out.insert(key.to_owned(), value.clone());
        }
    }
    if let Some(lr) = data.learning_rate() {
        out.insert("learning_rate".into(), float(lr));
    }
    Json::Object(out)
}

fn info_text(model: &Model<'_>) -> String {
    let mut s = String::new();
    let line = |s: &mut String, k: &str, v: String| s.push_str(&format!("{k:<20} {v}\n"));
    let class = model.policy_class().map_or("?".to_owned(), |c| c.to_string());
    line(&mut s, "algorithm", format!("{} ({class})", algorithm(model)));
    line(
        &mut s,
        "observation space",
        model.observation_space().map_or("?".into(), gym::space),
    );
    line(
        &mut s,
        "action space",
        model.action_space().map_or("?".into(), gym::space),
    );
    match Policy::from_model(model, None) {
        Ok(policy) => {
            line(&mut s, "policy", policy.family().to_string());
            line(&mut s, "extractor", policy.extractor().to_string());
            line(&mut s, "architecture", policy.architecture());
        }
        Err(e) => line(&mut s, "policy", format!("cannot run: {e}")),
    }
    if let Some(kwargs) = model.policy_kwargs() {
        if let Some(act) = &kwargs.activation_fn {
            line(&mut s, "activation", act.to_string());
        }
    }
    if let Some(policy) = model.policy() {
        line(
            &mut s,
            "network",
            format!("{} tensors, {} parameters", policy.len(), parameters(policy)),
        );
        for (name, t) in policy.tensors().filter(|(n, _)| n.ends_with("weight")) {
            s.push_str(&format!("  {name:<40} {:?}\n", t.shape()));
        }
    }
    line(
        &mut s,
        "SB3 version",
        model.sb3_version().unwrap_or("(not recorded)").to_owned(),
    );
    if let Some(info) = model.system_info() {
        for (k, v) in info.iter() {
            line(&mut s, &format!("  {k}"), v.to_owned());
        }
    }
    if let Json::Object(h) = hyperparameters(model) {
        for (k, v) in h {
            line(&mut s, &k, v.to_string());
        }
    }
    let members: Vec<&str> = model.entry_names().collect();
    line(&mut s, "members", members.join(", "));
    s
}

fn parameters(ckpt: &pth_reader::Checkpoint<'_>) -> usize {
    ckpt.tensors().map(|(_, t)| t.numel()).sum()
}

fn rms_json(r: &RunningMeanStd) -> Json {
    json!({
        "shape": r.shape(),
        "mean": r.mean().iter().map(|&x| float(x)).collect::<Vec<_>>(),
        "var": r.var().iter().map(|&x| float(x)).collect::<Vec<_>>(),
        "count": float(r.count()),
    })
}

fn vecnormalize_json(v: &VecNormalize) -> Json {
    let obs_rms = match v.obs_rms() {
        Some(ObsStats::Single(r)) => rms_json(r),
        Some(ObsStats::Dict(items)) => Json::Object(items.iter().map(|(k, r)| (k.clone(), rms_json(r))).collect()),
        _ => Json::Null,
    };
    json!({
        "obs_rms": obs_rms,
        "ret_rms": v.ret_rms().map(rms_json),
        "clip_obs": float(v.clip_obs()),
        "clip_reward": v.clip_reward().map(float),
        "epsilon": float(v.epsilon()),
        "gamma": v.gamma().map(float),
        "norm_obs": v.norm_obs(),
        "norm_reward": v.norm_reward(),
        "norm_obs_keys": v.norm_obs_keys(),
        "training": v.training(),
    })
}

fn vecnormalize_text(v: &VecNormalize) -> String {
    let mut s = String::new();
    let rms = |s: &mut String, label: &str, r: &RunningMeanStd| {
        s.push_str(&format!("{label}: shape {:?}, count {}\n", r.shape(), r.count()));
        s.push_str(&format!("  mean {:?}\n  var  {:?}\n", r.mean(), r.var()));
    };
    match v.obs_rms() {
        Some(ObsStats::Single(r)) => rms(&mut s, "obs_rms", r),
        Some(ObsStats::Dict(items)) => items.iter().for_each(|(k, r)| rms(&mut s, &format!("obs_rms[{k}]"), r)),
        _ => {}
    }
    if let Some(r) = v.ret_rms() {
        rms(&mut s, "ret_rms", r);
    }
    s.push_str(&format!(
        "clip_obs {}, epsilon {}, norm_obs {}\n",
        v.clip_obs(),
        v.epsilon(),
        v.norm_obs()
    ));
    s
}

//! `pth`: inspect, check and convert PyTorch checkpoints and Stable-Baselines3 models without
//! Python or libtorch.
//!
//! Exit codes: 0 success; 1 the input is unreadable, invalid, unsupported or refused (one line
//! `error: ...` on stderr); 2 usage errors.

#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

mod convert;
mod get;
mod gym;
mod json;
mod ls;
mod npy;
mod output;
mod predict;
mod progress;
mod sb3;
mod to_torch;
mod tree;
mod values;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use pth_reader::{Checkpoint, Options};

/// Inspect, check and convert PyTorch checkpoints (torch.save files) and Stable-Baselines3
/// models, without Python. Nothing in a file is ever executed.
#[derive(Parser)]
#[command(name = "pth", version, about, max_term_width = 100)]
struct Cli {
    /// Allow globals outside torch's weights_only allowlist (kept as inert data, never executed).
    #[arg(long, global = true)]
    lenient: bool,
    /// Most bytes a command may print (a small file can describe enormous output).
    #[arg(long, global = true, value_name = "BYTES", default_value_t = output::DEFAULT_MAX_OUTPUT)]
    max_output: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the tensors of a file: name, dtype, shape, bytes and layout notes.
    Ls(LsArgs),
    /// Print the whole object tree (numbers, strings, containers, tensors, inert objects).
    Tree(TreeArgs),
    /// Print one tensor's values.
    Get(GetArgs),
    /// Convert a torch file to .safetensors or .npz (strided tensors made contiguous), or any
    /// torch, .safetensors or .npz file to a torch archive (.pt/.pth) as torch 2.x writes it.
    Convert(ConvertArgs),
    /// Stable-Baselines3 models and VecNormalize statistics.
    #[command(subcommand)]
    Sb3(sb3::Command),
}

#[derive(Args)]
struct LsArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Add the sha256 of each tensor's logical elements (reads every tensor).
    #[arg(long)]
    sha256: bool,
    /// The torch file.
    file: PathBuf,
}

#[derive(Args)]
struct TreeArgs {
    /// Print JSON instead of indented text.
    #[arg(long)]
    json: bool,
    /// The torch file.
    file: PathBuf,
}

#[derive(Args)]
struct GetArgs {
    /// Print every value as JSON instead of a numpy-style summary.
    #[arg(long)]
    json: bool,
    /// The torch file.
    file: PathBuf,
    /// The tensor's name as `pth ls` shows it (`""` for a root tensor).
    name: String,
}

#[derive(Args)]
struct ConvertArgs {
    /// The input: a torch file, a `.safetensors` file or an `.npz` archive.
    file: PathBuf,
    /// The output: `.safetensors` or `.npz` (from a torch file), or `.pt`/`.pth` (from any input).
    out: PathBuf,
    /// Cast every real tensor to this dtype (only `f32`; `.safetensors` and `.npz` outputs).
    #[arg(long, value_parser = ["f32"])]
    dtype: Option<String>,
    /// Write the legacy (pre-1.6) torch format instead of a zip archive (`.pt`/`.pth` outputs).
    #[arg(long)]
    legacy: bool,
    /// Replace OUT if it exists. The output is written beside OUT and takes its name only when
    /// complete: OUT is never a partial file.
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    output::set_max_output(cli.max_output);
    let options = Options::default().lenient(cli.lenient);
    let result = match cli.command {
        Command::Ls(a) => open(&a.file, &options).and_then(|c| ls::run(&c, a.json, a.sha256)),
        Command::Tree(a) => open(&a.file, &options).and_then(|c| tree::run(&c, a.json)),
        Command::Get(a) => open(&a.file, &options).and_then(|c| get::run(&c, &a.name, a.json)),
        Command::Convert(a) => convert::run(
            &convert::Request {
                input: &a.file,
                out: &a.out,
                to_f32: a.dtype.is_some(),
                force: a.force,
                legacy: a.legacy,
            },
            &options,
        ),
        Command::Sb3(command) => sb3::run(command, &options),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

fn open(path: &std::path::Path, options: &Options) -> anyhow::Result<Checkpoint<'static>> {
    Checkpoint::open(path, options).map_err(|e| {
        let hint = if looks_like_sb3(path) {
            " (a Stable-Baselines3 model: try `pth sb3 info`)"
        } else {
            ""
        };
        anyhow::anyhow!("{}: {e}{hint}", path.display())
    })
}

/// Whether a file that failed to open as a torch archive is an SB3 model zip (top-level `data`
/// and `.pth` members), to point the user at `pth sb3`.
fn looks_like_sb3(path: &std::path::Path) -> bool {
    let options = Options::default();
    let Ok(bytes) = pth_reader::SharedBytes::open(path, &options) else {
        return false;
    };
    let Ok(zip) = pth_reader::zip::ZipArchive::parse_as(bytes, options.limits(), pth_reader::zip::Dialect::Python)
    else {
        return false;
    };
    let names: Vec<&str> = zip.entries().iter().map(|e| e.name()).collect();
    names.contains(&"data") && names.iter().any(|n| !n.contains('/') && n.ends_with(".pth"))
}

/// The error and its causes on one line (`{:#}` joins them with ": "; the library errors'
/// messages are complete, so no cause is said twice).
fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

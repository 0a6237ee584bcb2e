//! `pth sb3 ...`: Stable-Baselines3 models and VecNormalize files.

use std::path::PathBuf;

use clap::Subcommand;
use pth_reader::Options;

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
pub fn run(command: Command, _options: &Options) -> anyhow::Result<()> {
    match command {
        Command::Info { .. } | Command::Vecnormalize { .. } => anyhow::bail!("not implemented yet"),
    }
}

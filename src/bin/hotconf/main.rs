//! The `hotconf` command: validate, run, and operate the snapshot store.

mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Documented exit codes (README.md, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command did what was asked; the config is valid.
    Ok = 0,
    /// The config is invalid, or the request was refused (nothing was changed).
    Invalid = 1,
    /// The command line was wrong (clap exits with 2 itself).
    #[allow(dead_code)]
    Usage = 2,
    /// An operational failure: a directory or store could not be read or written.
    Failure = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "hotconf",
    version,
    about = "Hot-reload a directory of YAML config files, by polling, with numbered snapshots"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Output format of commands that report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a config directory (all files together) and exit: 0 valid, 1 invalid.
    Validate {
        /// The config directory.
        #[arg(long, default_value = "config")]
        config: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let exit = match cli.command {
        Command::Validate { config, format } => validate::run(&config, format),
    };
    exit.into()
}

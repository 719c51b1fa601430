//! The `hotconf` command: validate, run, and operate the snapshot store.

mod admin;
mod diff;
mod history;
mod jsonlog;
mod logfmt;
mod rollback;
mod run;
mod store;
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

/// Log output of `hotconf run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, each with a top-level `event` field.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Watch the config directory and keep the gateway's live components on the newest valid
    /// config, storing every applied version; stops on SIGINT/SIGTERM, reloads on SIGHUP.
    Run {
        #[command(flatten)]
        args: run::RunArgs,
        /// Log format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Validate a config directory (all files together) and exit: 0 valid, 1 invalid.
    Validate {
        /// The config directory.
        #[arg(long, default_value = "config")]
        config: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// List the stored versions: number (`*` = running), time, origin, files changed, short hash.
    History {
        /// The snapshot store.
        #[arg(long, default_value = "snapshots")]
        snapshots: PathBuf,
        /// Output format (json: one manifest per line).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print a version's manifest, or one of its files byte for byte (hashes verified first).
    Show {
        /// The version.
        version: u64,
        /// A file of the version, e.g. rate_limits.yaml.
        file: Option<String>,
        /// The snapshot store.
        #[arg(long, default_value = "snapshots")]
        snapshots: PathBuf,
    },
    /// The semantic diff from version A to version B, or to a candidate directory (validated first).
    Diff {
        /// The version to compare from.
        a: u64,
        /// The version to compare to.
        #[arg(required_unless_present = "against", conflicts_with = "against")]
        b: Option<u64>,
        /// A candidate config directory to compare to, validated first (a CI plan).
        #[arg(long, value_name = "DIR")]
        against: Option<PathBuf>,
        /// The snapshot store.
        #[arg(long, default_value = "snapshots")]
        snapshots: PathBuf,
        /// Output format (json: one object per change).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Validate version N against today's environment, then write its files back into the config
    /// directory, each atomically; the running service records the change as a rollback of N.
    Rollback {
        /// The version to roll back to.
        version: u64,
        /// The config directory to write into.
        #[arg(long, default_value = "config")]
        config: PathBuf,
        /// The snapshot store.
        #[arg(long, default_value = "snapshots")]
        snapshots: PathBuf,
        /// Print the diff only; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let exit = match cli.command {
        Command::Run { args, log_format } => {
            init_logging(log_format);
            match run::run(args, log_format) {
                Ok(exit) => exit,
                Err(e) => {
                    // Once: as a JSON event for a log pipeline, or as a line for a person.
                    match log_format {
                        LogFormat::Json => tracing::error!(event = "fatal", error = format!("{e:#}")),
                        LogFormat::Text => eprintln!("error: {e:#}"),
                    }
                    Exit::Failure
                }
            }
        }
        Command::Validate { config, format } => validate::run(&config, format),
        Command::History { snapshots, format } => history::history(&snapshots, format),
        Command::Show { version, file, snapshots } => history::show(&snapshots, version, file.as_deref()),
        Command::Diff { a, b, against, snapshots, format } => {
            let to = match (b, &against) {
                (Some(b), _) => diff::Against::Version(b),
                (None, Some(dir)) => diff::Against::Dir(dir),
                (None, None) => {
                    eprintln!("error: give version B or --against DIR");
                    return Exit::Usage.into();
                }
            };
            diff::run(&snapshots, a, to, format)
        }
        Command::Rollback { version, config, snapshots, dry_run } => {
            let mode = if dry_run { rollback::Mode::DryRun } else { rollback::Mode::Apply };
            rollback::run(version, &config, &snapshots, mode)
        }
    };
    exit.into()
}

/// Sends tracing events to stdout, as logfmt text or JSON lines; `RUST_LOG` overrides the `info`
/// default. Only hotconf's own events are ever written, whatever `RUST_LOG` says: third-party
/// crates (the HTTP client and TLS stack, whose trace events carry the Slack webhook URL, and
/// anything bridged from the `log` crate) are dropped before formatting.
fn init_logging(format: LogFormat) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{fmt, EnvFilter};
    // The library's and the binary's targets (both `hotconf…`) and nothing else.
    let own = Targets::new().with_target("hotconf", LevelFilter::TRACE);
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let layer = match format {
        LogFormat::Text => fmt::layer().with_writer(std::io::stdout).event_format(logfmt::Logfmt).boxed(),
        LogFormat::Json => fmt::layer().with_writer(std::io::stdout).event_format(jsonlog::JsonLines).boxed(),
    };
    tracing_subscriber::registry().with(layer.with_filter(own).with_filter(filter)).init();
}

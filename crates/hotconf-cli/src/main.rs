//! The `hotconf` command: validate, run, and operate the snapshot store.

mod admin;
mod args;
mod diff;
mod envcheck;
mod escape;
mod github;
mod history;
mod jsonlog;
mod logfmt;
mod observe;
mod render;
mod restore;
mod run;
mod schema;
mod slack;
mod store;
mod validate;
mod wait;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// Documented exit codes (docs/cli.md, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command did what was asked; the config is valid.
    Ok = 0,
    /// The config is invalid, or the request was refused (nothing was changed).
    Invalid = 1,
    /// The command line was wrong (clap exits with 2 itself).
    Usage = 2,
    /// An operational failure: a directory or store could not be read or written; the service
    /// did not confirm a `restore --wait` in time.
    Failure = 3,
    /// `diff --exit-code` only, where 1 means "changes": the request was refused (an invalid
    /// candidate, a missing or damaged version).
    Refused = 4,
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

/// Output format of the commands that check a config (`validate`, `diff --against`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// For people.
    Text,
    /// One JSON object per line.
    Json,
    /// GitHub Actions workflow commands (`::error file=…,line=…,col=…::message`), one per
    /// diagnostic, on stdout.
    Github,
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
        #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
        format: CheckFormat,
        #[command(flatten)]
        env: envcheck::EnvArgs,
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
        /// The version (`3` or `v3`).
        #[arg(value_parser = args::version)]
        version: u64,
        /// A file of the version, e.g. rate_limits.yaml.
        file: Option<String>,
        /// The snapshot store.
        #[arg(long, default_value = "snapshots")]
        snapshots: PathBuf,
    },
    /// The semantic diff from version A to version B, or to a candidate directory (validated first).
    Diff {
        /// The version to compare from (`3` or `v3`).
        #[arg(value_parser = args::version)]
        a: u64,
        /// The version to compare to.
        #[arg(required_unless_present = "against", conflicts_with = "against", value_parser = args::version)]
        b: Option<u64>,
        /// A candidate config directory to compare to, validated first (a CI plan).
        #[arg(long, value_name = "DIR")]
        against: Option<PathBuf>,
        /// The snapshot store.
        #[arg(long, default_value = "snapshots")]
        snapshots: PathBuf,
        /// Output format (json: one object per change; github: the candidate's diagnostics as
        /// workflow commands, the diff as text).
        #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
        format: CheckFormat,
        /// Exit 0 when nothing changed and 1 when something did, as `git diff --exit-code`; a
        /// refusal (invalid candidate, missing version) then exits 4.
        #[arg(long)]
        exit_code: bool,
        #[command(flatten)]
        env: DiffEnvArgs,
    },
    /// Validate version N against today's environment, then write its files back into the config
    /// directory, each atomically; the running service records the change as a restore of N.
    /// (`rollback` is the old name, still accepted; to change what runs without writing the
    /// files, pin the version: `POST /pin/N`.)
    #[command(alias = "rollback")]
    Restore {
        /// The version to restore (`3` or `v3`).
        #[arg(value_parser = args::version)]
        version: u64,
        /// The config directory to write into.
        #[arg(long, default_value = "config")]
        config: PathBuf,
        /// The snapshot store.
        #[arg(long, default_value = "snapshots")]
        snapshots: PathBuf,
        /// Print the diff only; write nothing.
        #[arg(long, conflicts_with = "wait")]
        dry_run: bool,
        /// Then wait until the running service runs version N's content (asked through its admin
        /// endpoint), at most TIMEOUT (default 30s; e.g. 500ms, 2m).
        #[arg(long, value_name = "TIMEOUT", num_args = 0..=1, require_equals = true,
              default_missing_value = "30s", value_parser = args::duration)]
        wait: Option<Duration>,
        /// The running service's admin endpoint, for --wait.
        #[arg(long, default_value = admin::DEFAULT_ADDR, value_parser = args::socket_addr)]
        admin_addr: SocketAddr,
        /// The environment variable holding the admin bearer token, for --wait.
        #[arg(long, default_value = "HOTCONF_ADMIN_TOKEN")]
        admin_token_env: String,
    },
    /// Print the JSON Schema (draft 2020-12) of a config file, for editors: FILE is
    /// `rate_limits`, `agent_chains` or `providers` (`.yaml` optional); without FILE, all three in
    /// one object keyed by file name.
    Schema {
        /// The config file.
        file: Option<String>,
        /// Write each file's schema as `DIR/<stem>.schema.json` instead of printing (how the
        /// repository's schemas/ is regenerated), each through a temporary file renamed over the
        /// name: a symlink or FIFO there is replaced, never followed or waited on.
        #[arg(long, value_name = "DIR")]
        write: Option<PathBuf>,
    },
}

/// `--no-env` and `--env-file` of `diff`, which only a candidate directory uses.
#[derive(Debug, Clone, clap::Args)]
struct DiffEnvArgs {
    /// With --against: skip the checks of the candidate that need the environment, naming them
    /// on stderr.
    #[arg(long, conflicts_with = "env_file")]
    no_env: bool,
    /// With --against: check the candidate's variables against the names in this dotenv-style
    /// file.
    #[arg(long, value_name = "FILE", value_parser = envcheck::parse_env_file)]
    env_file: Option<envcheck::EnvFile>,
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
                        LogFormat::Json => {
                            tracing::error!(event = "fatal", error = format!("{e:#}"), "hotconf stopped on an error")
                        }
                        LogFormat::Text => eprintln!("error: {}", escape::visible(&format!("{e:#}"))),
                    }
                    Exit::Failure
                }
            }
        }
        Command::Validate { config, format, env } => validate::run(&config, format, &envcheck::Env::from_args(env)),
        Command::History { snapshots, format } => history::history(&snapshots, format),
        Command::Show { version, file, snapshots } => history::show(&snapshots, version, file.as_deref()),
        Command::Diff { a, b, against, snapshots, format, exit_code, env } => {
            let to = match (b, &against) {
                (Some(b), _) => diff::Against::Version(b),
                (None, Some(dir)) => diff::Against::Dir(dir),
                (None, None) => {
                    eprintln!("error: give version B or --against DIR");
                    return Exit::Usage.into();
                }
            };
            if against.is_none() && (env.no_env || env.env_file.is_some()) {
                use clap::CommandFactory;
                Cli::command()
                    .error(
                        clap::error::ErrorKind::MissingRequiredArgument,
                        "--no-env and --env-file need --against DIR",
                    )
                    .exit();
            }
            let env = envcheck::Env::from_args(envcheck::EnvArgs { no_env: env.no_env, env_file: env.env_file });
            let gate = if exit_code { diff::Gate::ExitCode } else { diff::Gate::Plain };
            diff::run(&snapshots, a, to, diff::Output { format, gate }, &env)
        }
        Command::Restore { version, config, snapshots, dry_run, wait, admin_addr, admin_token_env } => {
            let mode = match (dry_run, wait) {
                (true, _) => restore::Mode::DryRun,
                (false, None) => restore::Mode::Apply,
                (false, Some(timeout)) => restore::Mode::ApplyAndWait(restore::WaitFor {
                    timeout,
                    admin: admin_addr,
                    token: std::env::var(&admin_token_env).ok().filter(|t| !t.trim().is_empty()),
                }),
            };
            restore::run(version, &config, &snapshots, mode)
        }
        Command::Schema { file, write } => schema::run(file.as_deref(), write.as_deref()),
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

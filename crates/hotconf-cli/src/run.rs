//! `hotconf run`: the main job. Watches the config directory, stores each applied version, and
//! keeps the gateway's live components on the newest valid config until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hotconf::{EnvLookup, Live, ProcessEnv, StartError};
use hotconf_gateway::GatewayConfig;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::observe::{AlertConfig, AlertObserver, AlerterHandle, Metrics, MetricsObserver};
use crate::slack::SlackWebhook;
use crate::{admin, Exit, LogFormat};

/// The options of `hotconf run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The config directory to watch.
    #[arg(long, default_value = "config")]
    pub config: PathBuf,
    /// Where numbered versions are stored.
    #[arg(long, default_value = "snapshots")]
    pub snapshots: PathBuf,
    /// How often the files are polled, in milliseconds.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub interval_ms: u64,
    /// How many identical consecutive polls make a change stable enough to apply (2 to 20). Raise
    /// it for writers that pause mid-write for longer than one interval.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(2..=20))]
    pub stable_ticks: u32,
    /// The admin HTTP endpoint's address (loopback by default); `off` disables it.
    #[arg(long, default_value = admin::DEFAULT_ADDR, value_parser = crate::args::admin_addr)]
    pub admin_addr: crate::args::AdminAddr,
    /// The environment variable holding the admin bearer token; when it is set, every admin
    /// endpoint but /healthz and /metrics requires `Authorization: Bearer <token>`.
    #[arg(long, default_value = "HOTCONF_ADMIN_TOKEN")]
    pub admin_token_env: String,
    /// How long an admin client has to send a whole request head, in milliseconds; a slower
    /// (dripping or idle) connection is closed.
    #[arg(long, default_value_t = admin::HEAD_TIMEOUT.as_millis() as u64, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub admin_head_timeout_ms: u64,
    /// Open admin connections at most; a new one past it closes the oldest idle one.
    #[arg(long, default_value_t = admin::MAX_CONNECTIONS as u64, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub admin_max_connections: u64,
    /// Bound on reading plus validating one attempt, in milliseconds (10 to 600000).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub reload_timeout_ms: u64,
    /// How many versions the store keeps (at least 1), plus the running one.
    #[arg(long, default_value_t = 50, value_parser = retention)]
    pub retention: usize,
    /// The wait before retrying an attempt that failed for a transient reason (store, timeout,
    /// component, unreadable directory), in milliseconds; doubled after each failure.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..))]
    pub retry_backoff_ms: u64,
    /// The longest wait between two retries, in milliseconds. Retries go on while the content is
    /// pending: this bounds how long after an outage ends the pending edit is applied.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(10..))]
    pub retry_backoff_max_ms: u64,
    /// What to do when the config directory is invalid at start: `last-good` runs the newest
    /// stored version that still validates, degraded (in /status, metrics, the log) until the
    /// directory is fixed, and refuses only when there is none; `refuse` always exits 1.
    #[arg(long, value_enum, default_value_t = OnInvalidStart::LastGood)]
    pub on_invalid_start: OnInvalidStart,
}

/// `--on-invalid-start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnInvalidStart {
    /// Exit 1 (code `invalid`), as Prometheus does on a bad config at start.
    Refuse,
    /// Run the newest stored version that validates, degraded, until the directory is fixed.
    LastGood,
}

/// `--retention`: at least 1 (the store would read 0 as 1; a usage error says so instead).
fn retention(arg: &str) -> Result<usize, String> {
    match arg.parse::<usize>() {
        Ok(0) => Err("keep at least 1 version".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a number of versions".to_owned()),
    }
}

/// How long shutdown waits for the service's threads before the process exits anyway.
const SHUTDOWN_BOUND: Duration = Duration::from_millis(1500);

pub fn run(args: RunArgs, log_format: LogFormat) -> anyhow::Result<Exit> {
    raise_fd_limit();
    let env: Arc<dyn EnvLookup> = Arc::new(ProcessEnv);
    let admin_addr: Option<SocketAddr> = match args.admin_addr {
        crate::args::AdminAddr::Off => None,
        crate::args::AdminAddr::At(a) => Some(a),
    };
    // Everything that can refuse to start without touching the store comes first: the admin
    // token, then the admin address (a taken port must not leave a new version behind).
    let token = match (admin_addr, env.var(&args.admin_token_env)) {
        (Some(_), Some(t)) if t.trim().is_empty() => anyhow::bail!(
            "{} is set but empty, which would leave the admin endpoint without authentication; \
             set it to a token, unset it to run without one, or pass --admin-addr off",
            args.admin_token_env
        ),
        (_, token) => token,
    };
    let bound = match admin_addr {
        Some(addr) => Some(admin::bind(addr).with_context(|| format!("binding the admin endpoint {addr}"))?),
        None => None,
    };
    let metrics = Arc::new(Metrics::default());
    let alerts = match env.var("SLACK_WEBHOOK_URL").filter(|u| !u.is_empty()) {
        Some(url) => Some(
            AlerterHandle::spawn(
                SlackWebhook::new(url, Duration::from_secs(5)),
                AlertConfig::default(),
                Arc::clone(&metrics),
            )
            .context("starting the alerter")?,
        ),
        None => None,
    };
    // The library's one assembly: the gateway's schema and components, plus this binary's observers.
    let mut pipeline = hotconf_gateway::components::pipeline(&args.config, Arc::clone(&env))
        .with_snapshots(&args.snapshots)
        .with_retention(args.retention)
        .with_interval(Duration::from_millis(args.interval_ms))
        .with_stable_ticks(args.stable_ticks)
        .with_reload_timeout(Duration::from_millis(args.reload_timeout_ms))
        .with_retry_backoff(
            Duration::from_millis(args.retry_backoff_ms),
            Duration::from_millis(args.retry_backoff_max_ms),
        )
        .with_shutdown_timeout(Duration::from_secs(1))
        .with_observer(MetricsObserver(Arc::clone(&metrics)));
    if args.on_invalid_start == OnInvalidStart::LastGood {
        pipeline = pipeline.with_start_on_last_good();
    }
    if let Some(alerts) = alerts {
        pipeline = pipeline.with_observer(AlertObserver::new(alerts, Arc::clone(&metrics)));
    }
    let live = match pipeline.start() {
        Ok(live) => Arc::new(live),
        Err(StartError::Invalid(diagnostics)) => {
            let summary = crate::validate::invalid_summary(&args.config.display().to_string(), diagnostics.problems());
            match log_format {
                LogFormat::Text => {
                    let texts = crate::render::texts_from_dir(&args.config, &diagnostics);
                    crate::render::eprint(&diagnostics, Some(&args.config), &texts);
                    eprintln!("error: refusing to start: {summary}");
                }
                LogFormat::Json => {
                    for d in diagnostics.as_slice() {
                        tracing::error!(
                            event = "start.invalid",
                            file = %d.file,
                            path = d.path.as_deref(),
                            line = d.line,
                            column = d.column,
                            code = d.kind.code(),
                            message = %d.kind,
                            help = d.kind.help(),
                        );
                    }
                    tracing::error!(event = "start.refused", problems = diagnostics.problems(), error = %summary, "refusing to start on an invalid config");
                }
            }
            return Ok(Exit::Invalid);
        }
        Err(e @ StartError::Store(_)) => {
            return Err(e).with_context(|| format!("opening the snapshot store {}", args.snapshots.display()))
        }
        Err(e) => return Err(e).context("starting"),
    };
    let server = match bound {
        Some(bound) => {
            let admin = admin::Admin { live: Arc::clone(&live), metrics, token };
            let limits = admin::Limits {
                head_timeout: Duration::from_millis(args.admin_head_timeout_ms),
                max_connections: args.admin_max_connections as usize,
            }
            .within_fd_limit(soft_fd_limit());
            Some(admin::start(bound, limits, admin).context("starting the admin endpoint")?)
        }
        None => None,
    };
    tracing::info!(
        event = "watcher.started",
        config = %args.config.display(),
        snapshots = %args.snapshots.display(),
        interval_ms = args.interval_ms,
        stable_ticks = args.stable_ticks,
        admin_addr = %server.as_ref().map(|s| s.addr().to_string()).unwrap_or_else(|| "off".into()),
        admin_max_connections = server.as_ref().map(|s| s.max_connections() as u64),
        running_version = live.status().running_version,
        "watching the config directory"
    );

    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).context("installing signal handlers")?;
    for signal in signals.forever() {
        if signal == SIGHUP {
            // Queued, not awaited: the loop stays free to see SIGTERM while the reload runs.
            let queued = live.request_reload();
            let status = live.status();
            tracing::info!(
                event = "reload.requested",
                version = status.running_version,
                bundle_hash = status.bundle_hash.as_str(),
                trigger = "SIGHUP",
                queued,
                "a reload of the config directory was asked for"
            );
            continue;
        }
        tracing::info!(event = "shutdown", signal, "stopping");
        break;
    }
    shutdown(server, live);
    Ok(Exit::Ok)
}

/// Stops the service in the order data flows backwards (no new requests, then the pipeline:
/// its poller, then its reloader, which owns the components), on a helper thread, waiting at most
/// [`SHUTDOWN_BOUND`]: whatever is still running then (an admin request waiting on a reload, a
/// store write hung in the kernel) is named in `shutdown.forced` and ends with the process.
fn shutdown(server: Option<admin::Server>, live: Arc<Live<GatewayConfig>>) {
    let deadline = Instant::now() + SHUTDOWN_BOUND;
    let workers_stuck = live.status().workers_stuck;
    let (stage_tx, stage) = crossbeam_channel::unbounded::<&'static str>();
    let stop = move || {
        let _ = stage_tx.send("admin");
        drop(server);
        let _ = stage_tx.send("pipeline");
        drop(live);
    };
    let helper = match std::thread::Builder::new().name("hotconf-shutdown".into()).spawn(stop) {
        Ok(helper) => helper,
        Err(e) => {
            // The failed spawn dropped the closure, and with it everything it held, inline.
            tracing::warn!(event = "shutdown.unbounded", error = %e, "no thread for a bounded shutdown");
            return;
        }
    };
    let mut running = "admin";
    loop {
        match stage.recv_deadline(deadline) {
            Ok(next) => running = next,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                let _ = helper.join();
                tracing::info!(event = "stopped", "stopped");
                return;
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                tracing::warn!(
                    event = "shutdown.forced",
                    still_running = running,
                    workers_stuck,
                    bound_ms = SHUTDOWN_BOUND.as_millis() as u64,
                    "exiting without waiting for threads that did not stop in time"
                );
                return;
            }
        }
    }
}

/// The soft limit on open file descriptors, if known.
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every unix
fn soft_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes the struct given, nothing else.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 && limit.rlim_cur != libc::RLIM_INFINITY {
            return Some(limit.rlim_cur as u64);
        }
    }
    None
}

/// Raises the soft limit on open file descriptors to the hard one, as Go's runtime does at start:
/// systemd's default soft limit (1,024) is easily reached by admin connections, and the store and
/// the poller need descriptors of their own. Logged once; a refusal is logged and ignored.
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every unix
fn raise_fd_limit() {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit and setrlimit read and write the struct given, nothing else.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 || limit.rlim_cur >= limit.rlim_max {
            return;
        }
        let from = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } == 0 {
            tracing::info!(
                event = "fd_limit.raised",
                from = from as u64,
                to = limit.rlim_cur as u64,
                "the soft limit on open files was raised to the hard limit"
            );
        } else {
            let error = std::io::Error::last_os_error();
            tracing::warn!(event = "fd_limit.kept", limit = from as u64, error = %error, "cannot raise the soft limit on open files");
        }
    }
}

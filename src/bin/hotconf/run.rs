//! `hotconf run`: the main job. Watches the config directory, stores each applied version, and
//! keeps the gateway's live components on the newest valid config until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hotconf::alert::{AlertConfig, AlerterHandle, SlackWebhook};
use hotconf::components::gateway::GatewayRuntime;
use hotconf::gateway::GatewaySchema;
use hotconf::reload::metrics::Metrics;
use hotconf::reload::{ReloaderConfig, ReloaderHandle, Reporting, StartError};
use hotconf::snapshot::{SnapshotStore, StoreConfig};
use hotconf::watch::{Poller, PollerConfig};
use hotconf::{EnvLookup, ProcessEnv};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::{admin, Exit};

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
    /// The admin HTTP endpoint's address (loopback by default); `off` disables it.
    #[arg(long, default_value = admin::DEFAULT_ADDR)]
    pub admin_addr: String,
    /// The environment variable holding the admin bearer token; when it is set, every admin
    /// endpoint but /healthz requires `Authorization: Bearer <token>`.
    #[arg(long, default_value = "HOTCONF_ADMIN_TOKEN")]
    pub admin_token_env: String,
    /// Bound on reading plus validating one attempt, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub reload_timeout_ms: u64,
    /// How many versions the store keeps.
    #[arg(long, default_value_t = 50)]
    pub retention: usize,
}

pub fn run(args: RunArgs) -> anyhow::Result<Exit> {
    let env: Arc<dyn EnvLookup> = Arc::new(ProcessEnv);
    let admin_addr: Option<SocketAddr> = match args.admin_addr.as_str() {
        "off" => None,
        a => Some(a.parse().with_context(|| format!("--admin-addr {a}: expected IP:PORT or `off`"))?),
    };
    let store = SnapshotStore::open(&args.snapshots, StoreConfig::default().with_retention(args.retention))
        .with_context(|| format!("opening the snapshot store {}", args.snapshots.display()))?;
    let runtime = GatewayRuntime::spawn(Arc::clone(&env)).context("starting the components")?;
    let gateway = runtime.gateway();
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
    let reporting = Reporting { metrics: Arc::clone(&metrics), alerts };
    let config = ReloaderConfig::new(&args.config).with_reload_timeout(Duration::from_millis(args.reload_timeout_ms));
    let (watch_tx, watch_rx) = crossbeam_channel::bounded(64);
    let (reloader, baseline) = match ReloaderHandle::start(
        GatewaySchema::default(),
        runtime,
        store,
        Arc::clone(&env),
        config,
        reporting,
        watch_rx,
    ) {
        Ok(started) => started,
        Err(StartError::Invalid(diagnostics)) => {
            eprintln!("{diagnostics}");
            eprintln!(
                "error: refusing to start: {}",
                crate::validate::invalid_summary(&args.config.display().to_string(), diagnostics.problems())
            );
            return Ok(Exit::Invalid);
        }
        Err(e) => return Err(e).context("starting"),
    };
    let reloader = Arc::new(reloader);
    let interval = Duration::from_millis(args.interval_ms);
    let poller =
        Poller::spawn(PollerConfig::new(&args.config).with_interval(interval).with_baseline(baseline), watch_tx)
            .context("starting the poller")?;
    let token = env.var(&args.admin_token_env).filter(|t| !t.is_empty());
    let server = match admin_addr {
        Some(addr) => {
            let admin = admin::Admin { gateway, metrics, reloader: Arc::clone(&reloader), token };
            let server = admin::start(addr, admin).with_context(|| format!("binding the admin endpoint {addr}"))?;
            Some(server)
        }
        None => None,
    };
    tracing::info!(
        event = "watcher.started",
        config = %args.config.display(),
        snapshots = %args.snapshots.display(),
        interval_ms = args.interval_ms,
        admin_addr = %server.as_ref().map(|s| s.addr().to_string()).unwrap_or_else(|| "off".into()),
        running_version = reloader.status().running_version,
    );

    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).context("installing signal handlers")?;
    for signal in signals.forever() {
        if signal == SIGHUP {
            tracing::info!(event = "reload.requested", trigger = "SIGHUP");
            reloader.reload(Duration::from_secs(30));
            continue;
        }
        tracing::info!(event = "shutdown", signal);
        break;
    }
    // Stop in the order data flows backwards: no new requests, no new changes, then the reloader.
    drop(server);
    drop(poller);
    drop(reloader);
    tracing::info!(event = "stopped");
    Ok(Exit::Ok)
}

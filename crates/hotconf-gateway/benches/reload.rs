//! Reload benchmark, through the public API as `hotconf run` assembles it: a whole attempt
//! (read, validate, store, apply to the three components), permit throughput with and without a
//! reload storm, and the idle memory of `hotconf run`. Prints its figures.
//!
//! Run with `cargo bench --bench reload`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotconf::{AttemptOutcome, Live, MapEnv, SourceFile, Sources};
use hotconf_gateway::components::{pipeline, GatewayView};
use hotconf_gateway::GatewayConfig;

fn sources(n: u64) -> Sources {
    Sources::from_files([
        SourceFile::new(
            "providers.yaml",
            format!(
                "a:\n  model: m{n}\n  base_url: http://127.0.0.1:1\nb:\n  model: m\n  base_url: http://127.0.0.1:2\n"
            ),
        ),
        SourceFile::new(
            "rate_limits.yaml",
            format!("a:\n  rpm: {}\n  burst: 1000000\n  tokens_per_minute: 1000000000\n", 1_000_000 + n),
        ),
        SourceFile::new("agent_chains.yaml", "mary:\n  primary: a\n  fallbacks: [b]\n"),
    ])
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// A config directory holding version `k` of the files.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        let dir = Self(tempfile::tempdir().unwrap());
        dir.write(0);
        dir
    }

    fn write(&self, k: u64) {
        for file in sources(k).files() {
            std::fs::write(self.0.path().join(file.name()), file.bytes().unwrap_or_default()).unwrap();
        }
    }
}

/// The gateway's pipeline on `dir`, polled hourly (only `reload` applies), with or without a
/// snapshot store on disk.
fn start(dir: &Dir, store: Option<&std::path::Path>) -> Live<GatewayConfig> {
    let mut builder = pipeline(dir.0.path(), Arc::new(MapEnv::new())).with_interval(Duration::from_secs(3600));
    if let Some(store) = store {
        builder = builder.with_snapshots(store);
    }
    builder.start().unwrap()
}

/// `n` attempts, each after writing a new version: the time `reload` takes to answer.
fn attempts(live: &Live<GatewayConfig>, dir: &Dir, versions: std::ops::Range<u64>) -> Vec<Duration> {
    let mut times = Vec::new();
    for k in versions {
        dir.write(k);
        let t = Instant::now();
        match live.reload() {
            AttemptOutcome::Applied { .. } => times.push(t.elapsed()),
            other => panic!("attempt {k}: {other:?}"),
        }
    }
    times.sort();
    times
}

fn main() {
    println!("hotconf reload benchmark ({} cores)", std::thread::available_parallelism().map_or(0, |n| n.get()));

    // 1. A whole attempt without a store on disk: read the directory, validate all files, keep
    // the version in memory, apply to the three components (each acknowledges), status updated.
    let dir = Dir::new();
    let live = start(&dir, None);
    let times = attempts(&live, &dir, 1..2001);
    println!(
        "reload, memory history (read + validate + apply + 3 acks), 2000 versions: p50 {:?}  p99 {:?}  max {:?}",
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        times.last().unwrap()
    );

    // 1b. The same with the snapshot store on disk (every version written and fsynced).
    let store = tempfile::tempdir().unwrap();
    let stored_dir = Dir::new();
    let stored = start(&stored_dir, Some(store.path()));
    let times = attempts(&stored, &stored_dir, 1..301);
    println!(
        "whole reload (read + validate + snapshot with fsync + apply + ack), 300 versions: p50 {:?}  p99 {:?}  max {:?}",
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        times.last().unwrap()
    );
    drop(stored);

    // 2. Permit throughput, quiet and during 100 reloads/s.
    let quiet = throughput(&live, &dir, false);
    let storm = throughput(&live, &dir, true);
    println!(
        "acquire throughput, 1 thread: quiet {:.0}/s  during 100 reloads/s {:.0}/s  ({:+.1} %)",
        quiet.0,
        storm.0,
        (storm.0 / quiet.0 - 1.0) * 100.0
    );
    println!("reloads applied during the storm window: {}", storm.1);

    // 3. Idle RSS of the real binary.
    match idle_rss() {
        Ok(kib) => println!("idle RSS of `hotconf run` on the shipped config: {:.1} MiB", kib as f64 / 1024.0),
        Err(e) => println!("idle RSS: not measured ({e})"),
    }
}

/// Acquisitions per second on one thread for 2 s, each through a fresh view of the live
/// version; with a storm, this thread applies a new version every 10 ms meanwhile. Returns
/// (rate, reloads applied).
fn throughput(live: &Live<GatewayConfig>, dir: &Dir, storm: bool) -> (f64, u64) {
    let stop = AtomicBool::new(false);
    let count = AtomicU64::new(0);
    let window = Duration::from_secs(2);
    let start = Instant::now();
    let mut reloads = 0;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..256 {
                    let view = GatewayView::of(live).unwrap();
                    std::hint::black_box(view.acquire("a", 1));
                    n += 1;
                }
            }
            count.store(n, Ordering::Relaxed);
        });
        if storm {
            let mut next = start;
            let mut k = 3000;
            while start.elapsed() < window {
                next += Duration::from_millis(10);
                k += 1;
                dir.write(k);
                if live.reload().is_applied() {
                    reloads += 1;
                }
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        }
        std::thread::sleep(window.saturating_sub(start.elapsed()));
        stop.store(true, Ordering::Relaxed);
    });
    (count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64(), reloads)
}

fn idle_rss() -> Result<u64, String> {
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/hotconf");
    if !bin.exists() {
        return Err(format!("{} not built; run `cargo build --release` first", bin.display()));
    }
    let store = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let mut child = std::process::Command::new(bin)
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--snapshots",
            store.path().to_str().unwrap(),
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .env_clear()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    // Idle: let it start and poll for a few seconds.
    std::thread::sleep(Duration::from_secs(3));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).map_err(|e| e.to_string());
    let _ = child.kill();
    let _ = child.wait();
    let status = status?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or("no VmRSS")?;
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).ok_or_else(|| "bad VmRSS".into())
}

//! Reload benchmark: time from a change to all components acknowledging, permit throughput with
//! and without a reload storm, and the idle memory of `hotconf run`. Prints its figures.
//!
//! Run with `cargo bench --bench reload`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotconf::publish::{Publication, Sink};
use hotconf::{MapEnv, SourceFile, Sources};
use hotconf_gateway::components::GatewayRuntime;
use hotconf_gateway::validate_config;
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

fn publication(n: u64) -> Arc<Publication<GatewayConfig>> {
    let valid = validate_config(sources(n), &MapEnv::new()).unwrap();
    let hash = valid.hash();
    Arc::new(Publication::new(n, hash, Arc::new(valid.into_parts().0)))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    println!("hotconf reload benchmark ({} cores)", std::thread::available_parallelism().map_or(0, |n| n.get()));

    // 1. A publication to all three components acknowledging and the view swapped.
    let mut rt = GatewayRuntime::spawn(Arc::new(MapEnv::new())).unwrap();
    let pubs: Vec<_> = (1..=2000).map(publication).collect();
    let mut times = Vec::with_capacity(pubs.len());
    for p in pubs {
        let t = Instant::now();
        rt.apply(p).unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "apply (publication -> 3 components acked -> view live), 2000 versions: p50 {:?}  p99 {:?}  max {:?}",
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        times.last().unwrap()
    );

    // 1b. A whole attempt through the reloader: read the directory, validate all files, store the
    // version (fsync), apply to the three components, status updated.
    match whole_attempts(300) {
        Ok(mut times) => {
            times.sort();
            println!(
                "whole reload (read + validate + snapshot with fsync + apply + ack), 300 versions: p50 {:?}  p99 {:?}  max {:?}",
                percentile(&times, 0.50),
                percentile(&times, 0.99),
                times.last().unwrap()
            );
        }
        Err(e) => println!("whole reload: not measured ({e})"),
    }

    // 2. Permit throughput, quiet and during 100 reloads/s.
    let gateway = rt.gateway();
    let quiet = throughput(&gateway, None);
    let storm_pubs: Vec<_> = (3000..3400).map(publication).collect();
    let storm = throughput(&gateway, Some((&mut rt, storm_pubs)));
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

/// Acquisitions per second on one thread for 2 s; with a storm, another thread applies a version
/// every 10 ms meanwhile. Returns (rate, reloads applied).
fn throughput(
    gateway: &hotconf_gateway::components::Gateway,
    storm: Option<(&mut GatewayRuntime, Vec<Arc<Publication<GatewayConfig>>>)>,
) -> (f64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let g = gateway.clone();
    let (stop2, count2) = (Arc::clone(&stop), Arc::clone(&count));
    let worker = std::thread::spawn(move || {
        let mut n = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            for _ in 0..256 {
                let view = g.view().unwrap();
                std::hint::black_box(view.acquire("a", 1));
                n += 1;
            }
        }
        count2.store(n, Ordering::Relaxed);
    });
    let window = Duration::from_secs(2);
    let start = Instant::now();
    let mut reloads = 0;
    if let Some((rt, pubs)) = storm {
        let mut next = start;
        for p in pubs {
            if start.elapsed() >= window {
                break;
            }
            next += Duration::from_millis(10);
            rt.apply(p).unwrap();
            reloads += 1;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }
    std::thread::sleep(window.saturating_sub(start.elapsed()));
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();
    (count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64(), reloads)
}

fn whole_attempts(n: u64) -> Result<Vec<Duration>, String> {
    use hotconf::reload::{AttemptOutcome, ReloaderConfig, ReloaderHandle, Reporting};
    use hotconf::snapshot::{SnapshotStore, StoreConfig};
    let config = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let write = |k: u64| -> std::io::Result<()> {
        for file in sources(k).files() {
            std::fs::write(config.path().join(file.name()), file.bytes().unwrap_or_default())?;
        }
        Ok(())
    };
    write(0).map_err(|e| e.to_string())?;
    let store = SnapshotStore::open(store_dir.path(), StoreConfig::default()).map_err(|e| e.to_string())?;
    let runtime = GatewayRuntime::spawn(Arc::new(MapEnv::new())).map_err(|e| e.to_string())?;
    let (_tx, rx) = hotconf::channel::bounded(1);
    let (reloader, _) = ReloaderHandle::start(
        hotconf_gateway::GatewaySchema::default(),
        runtime,
        store,
        Arc::new(MapEnv::new()),
        ReloaderConfig::new(config.path()),
        Reporting::default(),
        rx,
    )
    .map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    for k in 1..=n {
        write(k).map_err(|e| e.to_string())?;
        let t = Instant::now();
        match reloader.reload(Duration::from_secs(10)) {
            Some(AttemptOutcome::Applied { .. }) => times.push(t.elapsed()),
            other => return Err(format!("attempt {k}: {other:?}")),
        }
    }
    Ok(times)
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

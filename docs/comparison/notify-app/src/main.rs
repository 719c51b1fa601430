// notify-app: hand-written hot reload: notify watcher + yaml_serde + arc-swap.
// `notify-app` loads service.yaml once and prints ok; `notify-app --watch SECONDS` keeps running
// for SECONDS while the watcher thread reloads on every change and prints each outcome.
// --- glue starts at the first `use` ---
use arc_swap::ArcSwap;
use notify::{EventKind, RecursiveMode, Watcher};
use serde::Deserialize;
use std::{
    error::Error,
    path::Path,
    sync::{Arc, mpsc},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

const FILE: &str = "service.yaml";

fn load() -> Result<Service, Box<dyn Error>> {
    Ok(yaml_serde::from_str(&std::fs::read_to_string(FILE)?)?)
}

fn main() -> Result<(), Box<dyn Error>> {
    // Harness, not counted: print the error's Display too (returning it prints its Debug).
    run().inspect_err(|e| eprintln!("display: {e}"))
}

fn run() -> Result<(), Box<dyn Error>> {
    let current = Arc::new(ArcSwap::from_pointee(load()?));
    let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>();
    let mut watcher = notify::recommended_watcher(tx)?;
    // Watch the directory, not the file: an editor's save-by-rename replaces the inode.
    watcher.watch(Path::new("."), RecursiveMode::NonRecursive)?;
    let shared = current.clone();
    std::thread::spawn(move || {
        for event in rx.into_iter().flatten() {
            if matches!(event.kind, EventKind::Access(_))
                || !event.paths.iter().any(|p| p.ends_with(FILE))
            {
                continue;
            }
            let outcome = match load() {
                Ok(new) => {
                    shared.store(Arc::new(new));
                    "applied".to_string()
                }
                Err(e) => format!("rejected, kept the last good config: {e}"),
            };
            // Stamped after the store, for the change->visible latency measurement.
            let t = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            println!(
                "t={t} port={} {outcome} ({:?})",
                shared.load().server.port,
                event.kind
            );
        }
    });
    println!("ok"); // --- glue ends at the first read of the value (next line) ---
    let cfg = current.load();
    println!("{cfg:?}");

    // --watch SECONDS: keep the process (and the watcher) alive; outcomes print from the thread.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--watch") {
        std::thread::sleep(Duration::from_secs(
            args.get(2).and_then(|s| s.parse().ok()).unwrap_or(30),
        ));
    }
    Ok(())
}

// --- serde types (identical in all three programs, not counted) ---
#[derive(Debug, Deserialize)]
struct Service {
    server: Server,
    features: Features,
    db: Db,
    shutdown_timeout: std::time::Duration,
    log_level: Level,
}
#[derive(Debug, Deserialize)]
struct Server {
    host: String,
    port: u16,
    workers: u32,
}
#[derive(Debug, Deserialize)]
struct Features {
    dark_mode: bool,
    beta: bool,
}
#[derive(Debug, Deserialize)]
struct Db {
    url: String,
    pool: Pool,
}
#[derive(Debug, Deserialize)]
struct Pool {
    min: u32,
    max: u32,
}
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    Debug,
    Info,
    Warn,
}

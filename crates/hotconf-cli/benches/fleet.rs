//! A fleet of replicas on one shared config directory and one shared snapshot store, as a
//! Deployment whose pods mount one ConfigMap and one `ReadWriteMany` store would run: per edit,
//! how long until every replica runs it (convergence: the max over replicas of edit → applied),
//! how many version numbers the fleet gave it (one is right), how often and how long the store's
//! exclusive lock was taken, and the CPU of one reload per replica, by thread.
//!
//! A replica is `hotconf run`'s own pipeline (`hotconf_gateway::components::pipeline`: the
//! gateway's schema and its three components, each with its own poller, reloader and component
//! threads) committing to the shared store through its own `SnapshotStore` handle. By default
//! each replica is its own process, as in a real fleet: this bench runs itself once per replica
//! (`FLEET_PROCESSES` packs several replicas into one process; with 1, the whole fleet shares one
//! process, whose process-wide structures, the allocator's arenas and arc-swap's list of reader
//! threads, then grow with the fleet, which no real replica sees). An edit is one atomic rename
//! over `rate_limits.yaml`.
//!
//! Each worker process reports on its stdout when a replica applied a version (read on the
//! monotonic clock, which all processes share) and each release of the store's lock (from the
//! store's own `trace` event: waited and held, in microseconds). The CPU of a reload is each
//! thread's time on the scheduler's clock (`/proc/PID/task/TID/schedstat`) during the edit's
//! convergence, less the idle polling rate measured beforehand over the same number of seconds,
//! divided by N: it includes the poll that saw the change, its confirmation tick, validation, the
//! store and the components.
//!
//! `FLEET_REPLICAS` (default `200,1000`), `FLEET_PROCESSES` (default: one per replica),
//! `FLEET_EDITS` (default 5), `FLEET_INTERVAL_MS` (default 250, the shipped default),
//! `FLEET_STABLE_TICKS` (default 2). Prints the load average before each fleet. Bounded: a
//! fleet not started within 120 s or an edit not converged within 30 s fails the run.
//! Run with `cargo bench -p hotconf-cli --bench fleet`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotconf::{AttemptOutcome, Observer, ProcessEnv, Report};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

const CONVERGENCE_BOUND: Duration = Duration::from_secs(30);
const START_BOUND: Duration = Duration::from_secs(120);
const STORE_TARGET: &str = "hotconf::snapshot::store";
const WORKER: &str = "FLEET_WORKER";

/// Nanoseconds on the monotonic clock, which every process on the machine shares.
fn monotonic_nanos() -> u64 {
    // SAFETY: clock_gettime only writes into the struct it is given.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        ts
    };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    if std::env::var_os(WORKER).is_some() {
        worker();
        return;
    }
    let replicas: Vec<usize> = std::env::var("FLEET_REPLICAS")
        .unwrap_or_else(|_| "200,1000".into())
        .split(',')
        .map(|n| n.trim().parse().expect("FLEET_REPLICAS: numbers separated by commas"))
        .collect();
    let edits: u32 = env_or("FLEET_EDITS", 5);
    let interval = Duration::from_millis(env_or("FLEET_INTERVAL_MS", 250));
    let stable_ticks: u32 = env_or("FLEET_STABLE_TICKS", 2);
    println!(
        "fleet: replicas of `hotconf run`'s pipeline, one shared config directory and one shared store; \
         poll every {} ms, {stable_ticks} identical ticks; {} cores",
        interval.as_millis(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for n in replicas {
        let processes = env_or("FLEET_PROCESSES", n).clamp(1, n);
        fleet(n, processes, edits, interval, stable_ticks);
    }
}

// ---------------------------------------------------------------------------------------------
// A worker process: some replicas, reporting on stdout until its stdin closes.

/// Writes one report line; a replica's observer and the lock events share the process's stdout.
fn report_line(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(line);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

struct Recorder {
    replica: usize,
}

impl Observer for Recorder {
    fn observe(&mut self, report: &Report<'_>) {
        let (Report::Started(a) | Report::Attempt(a)) = report else { return };
        if let AttemptOutcome::Applied { version, .. } = a.outcome {
            report_line(format_args!("applied {} {version} {}", self.replica, monotonic_nanos()));
        }
    }
}

/// The store's lock releases, as `lock WAITED_US HELD_US` lines.
struct LockEvents;

impl<S: tracing::Subscriber> Layer<S> for LockEvents {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        #[derive(Default)]
        struct Fields {
            waited: Option<u64>,
            held: Option<u64>,
        }
        impl tracing::field::Visit for Fields {
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                match field.name() {
                    "waited_us" => self.waited = Some(value),
                    "held_us" => self.held = Some(value),
                    _ => {}
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let (Some(w), Some(h)) = (fields.waited, fields.held) {
            report_line(format_args!("lock {w} {h}"));
        }
    }
}

fn worker() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by the bench"));
    let config = PathBuf::from(var("FLEET_WORKER_CONFIG"));
    let store = PathBuf::from(var("FLEET_WORKER_STORE"));
    let first: usize = var("FLEET_WORKER_FIRST").parse().unwrap();
    let count: usize = var("FLEET_WORKER_COUNT").parse().unwrap();
    let interval = Duration::from_millis(var("FLEET_WORKER_INTERVAL_MS").parse().unwrap());
    let stable_ticks: u32 = var("FLEET_WORKER_STABLE_TICKS").parse().unwrap();
    let filter = tracing_subscriber::filter::Targets::new().with_target(STORE_TARGET, tracing::Level::TRACE);
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(LockEvents.with_filter(filter)))
        .unwrap();
    let env: Arc<dyn hotconf::EnvLookup> = Arc::new(ProcessEnv);
    let fleet: Vec<_> = (first..first + count)
        .map(|replica| {
            hotconf_gateway::components::pipeline(&config, Arc::clone(&env))
                .with_snapshots(&store)
                .with_interval(interval)
                .with_stable_ticks(stable_ticks)
                .with_shutdown_timeout(Duration::from_secs(1))
                .with_observer(Recorder { replica })
                .start()
                .expect("a replica starts")
        })
        .collect();
    report_line(format_args!("ready"));
    // Runs until the bench closes our stdin.
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    drop(fleet);
}

// ---------------------------------------------------------------------------------------------
// The bench: starts the workers, edits, reads their reports.

/// Per replica: the version it last applied and when (monotonic nanoseconds).
#[derive(Default)]
struct Slot {
    version: AtomicU64,
    at_nanos: AtomicU64,
}

/// What the workers reported.
struct Reports {
    slots: Vec<Slot>,
    /// Versions applied by the whole fleet: the bench waits on this one word.
    applied: AtomicU64,
    ready: AtomicU64,
    locks: Mutex<Vec<(u64, u64)>>,
}

impl Reports {
    fn read(&self, line: &str) {
        let fields: Vec<u64> = line.split(' ').skip(1).filter_map(|f| f.parse().ok()).collect();
        match (line.split(' ').next(), fields.as_slice()) {
            (Some("applied"), [replica, version, at]) => {
                let slot = &self.slots[*replica as usize];
                slot.at_nanos.store(*at, Ordering::Relaxed);
                slot.version.store(*version, Ordering::Release);
                self.applied.fetch_add(1, Ordering::Release);
            }
            (Some("lock"), [waited, held]) => self.locks.lock().unwrap().push((*waited, *held)),
            (Some("ready"), []) => {
                self.ready.fetch_add(1, Ordering::Release);
            }
            _ => eprintln!("fleet worker: {line}"),
        }
    }

    fn take_locks(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut *self.locks.lock().unwrap())
    }
}

struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// Every worker's CPU time on the scheduler's clock, per thread name (`poller`, `reloader`, …).
fn cpu_by_thread(workers: &[Worker]) -> BTreeMap<String, Duration> {
    let mut sums = BTreeMap::new();
    for worker in workers {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", worker.child.id())) else { continue };
        for task in tasks.flatten() {
            let path = task.path();
            let (Ok(comm), Ok(stat)) =
                (std::fs::read_to_string(path.join("comm")), std::fs::read_to_string(path.join("schedstat")))
            else {
                continue;
            };
            let nanos: u64 = stat.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let name = comm.trim().trim_start_matches("hotconf-");
            // The worker's main thread only waits for its stdin to close.
            let name = if name.starts_with("fleet") { "main" } else { name };
            *sums.entry(name.to_owned()).or_insert(Duration::ZERO) += Duration::from_nanos(nanos);
        }
    }
    sums
}

fn total(by_thread: &BTreeMap<String, Duration>) -> Duration {
    by_thread.values().sum()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Writes `rate_limits.yaml` with `rpm` for the first provider, by one rename (as the kubelet
/// swaps a ConfigMap's files).
fn edit(config: &Path, template: &str, rpm: u32) {
    let content = template.replacen("rpm: 600", &format!("rpm: {rpm}"), 1);
    assert_ne!(content, template, "the shipped rate_limits.yaml has no `rpm: 600`");
    let staged = config.join(".rate_limits.yaml.next");
    std::fs::write(&staged, content).unwrap();
    std::fs::rename(&staged, config.join("rate_limits.yaml")).unwrap();
}

fn fleet(n: usize, processes: usize, edits: u32, interval: Duration, stable_ticks: u32) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let config = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), config.path().join(entry.file_name())).unwrap();
    }
    let template = std::fs::read_to_string(config.path().join("rate_limits.yaml")).unwrap();
    let store = tempfile::tempdir().unwrap();
    println!("\n{n} replicas in {processes} processes (load average before start: {})", loadavg());

    let reports = Arc::new(Reports {
        slots: (0..n).map(|_| Slot::default()).collect(),
        applied: AtomicU64::new(0),
        ready: AtomicU64::new(0),
        locks: Mutex::new(Vec::new()),
    });
    let started = Instant::now();
    let exe = std::env::current_exe().unwrap();
    let mut workers = Vec::with_capacity(processes);
    let mut readers = Vec::with_capacity(processes);
    for p in 0..processes {
        let (first, end) = (p * n / processes, (p + 1) * n / processes);
        let mut child = Command::new(&exe)
            .env(WORKER, "1")
            .env("FLEET_WORKER_CONFIG", config.path())
            .env("FLEET_WORKER_STORE", store.path())
            .env("FLEET_WORKER_FIRST", first.to_string())
            .env("FLEET_WORKER_COUNT", (end - first).to_string())
            .env("FLEET_WORKER_INTERVAL_MS", interval.as_millis().to_string())
            .env("FLEET_WORKER_STABLE_TICKS", stable_ticks.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("a worker process starts");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let reports = Arc::clone(&reports);
        readers.push(
            std::thread::Builder::new()
                .name("fleet-reader".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        match line {
                            Ok(line) => reports.read(&line),
                            Err(_) => break,
                        }
                    }
                })
                .unwrap(),
        );
        workers.push(Worker { child, stdin });
    }
    while reports.ready.load(Ordering::Acquire) < processes as u64 {
        assert!(started.elapsed() < START_BOUND, "the fleet did not start within {START_BOUND:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let start_locks = reports.take_locks();
    println!(
        "  started in {:.1} s; the store lock was taken {} times at start (opening a store takes it once \
         to clear leftovers)",
        started.elapsed().as_secs_f64(),
        start_locks.len()
    );

    // Idle: what polling alone costs, to take out of each edit's CPU.
    std::thread::sleep(Duration::from_secs(2));
    let idle_window = Duration::from_secs(5);
    let (threads0, t0) = (cpu_by_thread(&workers), Instant::now());
    std::thread::sleep(idle_window);
    let idle_secs = t0.elapsed().as_secs_f64();
    let idle: BTreeMap<String, f64> = cpu_by_thread(&workers)
        .into_iter()
        .map(|(name, t)| {
            let before = threads0.get(&name).copied().unwrap_or(Duration::ZERO);
            (name, t.saturating_sub(before).as_secs_f64() / idle_secs)
        })
        .collect();
    let idle_rate: f64 = idle.values().sum();
    let idle_by_thread: Vec<String> = idle
        .iter()
        .filter(|(_, rate)| **rate * 100.0 >= 0.1)
        .map(|(name, rate)| format!("{name} {:.1}", rate * 100.0))
        .collect();
    println!(
        "  idle polling: {:.1} % of a core ({:.4} % per replica; by thread, %: {}); load average {}",
        idle_rate * 100.0,
        idle_rate * 100.0 / n as f64,
        idle_by_thread.join(", "),
        loadavg()
    );
    println!(
        "  {:>4} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6} {:>7} {:>8} {:>8} {:>9}",
        "edit",
        "first ms",
        "p50 ms",
        "p99 ms",
        "max ms",
        "versions",
        "locks",
        "held ms",
        "max held",
        "max wait",
        "cpu/rld µs"
    );

    let mut maxima = Vec::new();
    for k in 1..=edits {
        let before: Vec<u64> = reports.slots.iter().map(|s| s.version.load(Ordering::Acquire)).collect();
        let applied_before = reports.applied.load(Ordering::Acquire);
        reports.take_locks();
        let threads0 = cpu_by_thread(&workers);
        let edited_nanos = monotonic_nanos();
        let edited = Instant::now();
        edit(config.path(), &template, 600 + k);
        if std::env::var_os("FLEET_PRINT_EDIT_TIMES").is_some() {
            // For lining a profile (`perf record -k CLOCK_MONOTONIC`) up with the edits.
            println!("  edit {k} at monotonic {:.6} s", edited_nanos as f64 / 1e9);
        }
        loop {
            let done = reports.applied.load(Ordering::Acquire) >= applied_before + n as u64
                && reports.slots.iter().zip(&before).all(|(s, b)| s.version.load(Ordering::Acquire) > *b);
            if done {
                break;
            }
            assert!(edited.elapsed() < CONVERGENCE_BOUND, "edit {k} did not converge within {CONVERGENCE_BOUND:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
        let converged = edited.elapsed();
        let threads1 = cpu_by_thread(&workers);
        let per_reload = |name: &str| -> f64 {
            let used = threads1[name].saturating_sub(*threads0.get(name).unwrap_or(&Duration::ZERO)).as_secs_f64()
                - idle.get(name).copied().unwrap_or(0.0) * converged.as_secs_f64();
            used.max(0.0) * 1e6 / n as f64
        };
        let all_reload = {
            let used =
                total(&threads1).saturating_sub(total(&threads0)).as_secs_f64() - idle_rate * converged.as_secs_f64();
            used.max(0.0) * 1e6 / n as f64
        };
        let by_thread: Vec<String> = threads1
            .keys()
            .map(|name| (name, per_reload(name)))
            .filter(|(_, us)| *us >= 1.0)
            .map(|(name, us)| format!("{name} {us:.0}"))
            .collect();
        let mut latencies: Vec<Duration> = reports
            .slots
            .iter()
            .map(|s| Duration::from_nanos(s.at_nanos.load(Ordering::Relaxed).saturating_sub(edited_nanos)))
            .collect();
        latencies.sort_unstable();
        let mut versions: Vec<u64> = reports.slots.iter().map(|s| s.version.load(Ordering::Acquire)).collect();
        versions.sort_unstable();
        versions.dedup();
        let lock_events = reports.take_locks();
        let held: u64 = lock_events.iter().map(|(_, h)| h).sum();
        let max_held = lock_events.iter().map(|(_, h)| *h).max().unwrap_or(0);
        let max_wait = lock_events.iter().map(|(w, _)| *w).max().unwrap_or(0);
        let max = *latencies.last().unwrap();
        maxima.push(max);
        println!(
            "  {:>4} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9} {:>6} {:>7.1} {:>8.1} {:>8.1} {:>9.0}",
            k,
            ms(latencies[0]),
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
            ms(max),
            versions.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
            lock_events.len(),
            held as f64 / 1000.0,
            max_held as f64 / 1000.0,
            max_wait as f64 / 1000.0,
            all_reload,
        );
        println!("         by thread, µs: {}", by_thread.join(", "));
        // Let the fleet go idle again before the next edit.
        std::thread::sleep(Duration::from_millis(1000));
    }
    maxima.sort_unstable();
    println!(
        "  convergence (max over replicas) per edit: median {:.0} ms, worst {:.0} ms; load average {}",
        ms(percentile(&maxima, 0.5)),
        ms(*maxima.last().unwrap()),
        loadavg()
    );
    let stopping = Instant::now();
    for worker in &mut workers {
        drop(worker.stdin.take());
    }
    for mut worker in workers {
        let _ = worker.child.wait();
    }
    for reader in readers {
        let _ = reader.join();
    }
    println!("  stopped in {:.1} s", stopping.elapsed().as_secs_f64());
}

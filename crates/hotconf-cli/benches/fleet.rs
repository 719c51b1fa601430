//! A fleet of replicas on one shared config directory and one shared snapshot store, as a
//! Deployment whose pods mount one ConfigMap and one `ReadWriteMany` store would run: per edit,
//! how long until every replica runs it (convergence: the max over replicas of edit → applied),
//! how many version numbers the fleet gave it (one is right), how often and how long the store's
//! exclusive lock was taken, and the CPU of one reload per replica.
//!
//! The replicas are in-process: N of `hotconf run`'s own pipeline
//! (`hotconf_gateway::components::pipeline`: the gateway's schema and its three components),
//! each with its own poller, reloader and component threads, polling the same directory and
//! committing to the same store through their own `SnapshotStore` handles (their own lock-file
//! descriptors, as processes have). An edit is one atomic rename over `rate_limits.yaml`.
//!
//! The lock figures come from the store's own `trace` event on releasing its lock (waited and
//! held, in microseconds), collected by a subscriber that listens to that target only. The CPU
//! of a reload is the process's CPU during the edit's convergence, less the idle polling rate
//! measured beforehand over the same number of seconds, divided by N: it includes the poll that
//! saw the change, its confirmation tick, validation, the store and the components.
//!
//! `FLEET_REPLICAS` (default `200,1000`), `FLEET_EDITS` (default 5), `FLEET_INTERVAL_MS`
//! (default 250, the shipped default), `FLEET_STABLE_TICKS` (default 2). Prints the load average
//! before each fleet. Bounded: an edit not converged within 30 s fails the run.
//! Run with `cargo bench -p hotconf-cli --bench fleet`.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotconf::{AttemptOutcome, Observer, ProcessEnv, Report};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

const CONVERGENCE_BOUND: Duration = Duration::from_secs(30);
const STORE_TARGET: &str = "hotconf::snapshot::store";

/// Per replica: the version it last applied and when (nanoseconds since the bench's epoch).
struct Slot {
    version: AtomicU64,
    at_nanos: AtomicU64,
}

struct Recorder {
    slot: Arc<Slot>,
    epoch: Instant,
}

impl Observer for Recorder {
    fn observe(&mut self, report: &Report<'_>) {
        let (Report::Started(a) | Report::Attempt(a)) = report else { return };
        if let AttemptOutcome::Applied { version, .. } = a.outcome {
            // Time first: whoever sees the version sees its time.
            self.slot.at_nanos.store(self.epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
            self.slot.version.store(version, Ordering::Release);
        }
    }
}

/// The store's lock releases: (waited µs, held µs).
#[derive(Clone, Default)]
struct LockEvents(Arc<Mutex<Vec<(u64, u64)>>>);

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
            self.0.lock().unwrap().push((w, h));
        }
    }
}

impl LockEvents {
    fn take(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// The process's user + system CPU time.
fn cpu() -> Duration {
    // SAFETY: getrusage only writes into the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
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

fn main() {
    let replicas: Vec<usize> = std::env::var("FLEET_REPLICAS")
        .unwrap_or_else(|_| "200,1000".into())
        .split(',')
        .map(|n| n.trim().parse().expect("FLEET_REPLICAS: numbers separated by commas"))
        .collect();
    let edits: u32 = env_or("FLEET_EDITS", 5);
    let interval = Duration::from_millis(env_or("FLEET_INTERVAL_MS", 250));
    let stable_ticks: u32 = env_or("FLEET_STABLE_TICKS", 2);

    let locks = LockEvents::default();
    let filter = tracing_subscriber::filter::Targets::new().with_target(STORE_TARGET, tracing::Level::TRACE);
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(locks.clone().with_filter(filter)))
        .unwrap();

    println!(
        "fleet: replicas of `hotconf run`'s pipeline in one process, one shared config directory and \
         one shared store; poll every {} ms, {stable_ticks} identical ticks; {} cores",
        interval.as_millis(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for n in replicas {
        fleet(n, edits, interval, stable_ticks, &locks);
    }
}

fn fleet(n: usize, edits: u32, interval: Duration, stable_ticks: u32, locks: &LockEvents) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let config = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), config.path().join(entry.file_name())).unwrap();
    }
    let template = std::fs::read_to_string(config.path().join("rate_limits.yaml")).unwrap();
    let store = tempfile::tempdir().unwrap();
    let epoch = Instant::now();
    println!("\n{n} replicas (load average before start: {})", loadavg());

    let started = Instant::now();
    let env: Arc<dyn hotconf::EnvLookup> = Arc::new(ProcessEnv);
    let mut slots = Vec::with_capacity(n);
    let mut fleet = Vec::with_capacity(n);
    for _ in 0..n {
        let slot = Arc::new(Slot { version: AtomicU64::new(0), at_nanos: AtomicU64::new(0) });
        let live = hotconf_gateway::components::pipeline(config.path(), Arc::clone(&env))
            .with_snapshots(store.path())
            .with_interval(interval)
            .with_stable_ticks(stable_ticks)
            .with_shutdown_timeout(Duration::from_secs(1))
            .with_observer(Recorder { slot: Arc::clone(&slot), epoch })
            .start()
            .expect("a replica starts");
        slots.push(slot);
        fleet.push(live);
    }
    let start_locks = locks.take();
    println!(
        "  started in {:.1} s; the store lock was taken {} times at start (opening a store takes it once \
         to clear leftovers)",
        started.elapsed().as_secs_f64(),
        start_locks.len()
    );

    // Idle: what polling alone costs, to take out of each edit's CPU.
    std::thread::sleep(Duration::from_secs(2));
    let idle_window = Duration::from_secs(5);
    let (c0, t0) = (cpu(), Instant::now());
    std::thread::sleep(idle_window);
    let idle_rate = (cpu() - c0).as_secs_f64() / t0.elapsed().as_secs_f64();
    println!(
        "  idle polling: {:.1} % of a core ({:.4} % per replica); load average {}",
        idle_rate * 100.0,
        idle_rate * 100.0 / n as f64,
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
        "cpu/rld ms"
    );

    let mut maxima = Vec::new();
    for k in 1..=edits {
        let before: Vec<u64> = slots.iter().map(|s| s.version.load(Ordering::Acquire)).collect();
        locks.take();
        let (cpu0, edited) = (cpu(), Instant::now());
        let edited_nanos = edited.duration_since(epoch).as_nanos() as u64;
        edit(config.path(), &template, 600 + k);
        loop {
            let done = slots.iter().zip(&before).all(|(s, b)| s.version.load(Ordering::Acquire) > *b);
            if done {
                break;
            }
            assert!(edited.elapsed() < CONVERGENCE_BOUND, "edit {k} did not converge within {CONVERGENCE_BOUND:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
        let converged = edited.elapsed();
        let cpu_used = (cpu() - cpu0).as_secs_f64() - idle_rate * converged.as_secs_f64();
        let mut latencies: Vec<Duration> = slots
            .iter()
            .map(|s| Duration::from_nanos(s.at_nanos.load(Ordering::Relaxed).saturating_sub(edited_nanos)))
            .collect();
        latencies.sort_unstable();
        let mut versions: Vec<u64> = slots.iter().map(|s| s.version.load(Ordering::Acquire)).collect();
        versions.sort_unstable();
        versions.dedup();
        let lock_events = locks.take();
        let held: u64 = lock_events.iter().map(|(_, h)| h).sum();
        let max_held = lock_events.iter().map(|(_, h)| *h).max().unwrap_or(0);
        let max_wait = lock_events.iter().map(|(w, _)| *w).max().unwrap_or(0);
        let max = *latencies.last().unwrap();
        maxima.push(max);
        println!(
            "  {:>4} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9} {:>6} {:>7.1} {:>8.1} {:>8.1} {:>9.2}",
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
            cpu_used.max(0.0) * 1000.0 / n as f64,
        );
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
    drop(fleet);
    println!("  stopped in {:.1} s", stopping.elapsed().as_secs_f64());
}

//! Change-detection benchmark (prints figures; not a timed test). Run with `cargo bench --bench watch`.
//!
//! 1. Latency from a write completing to the change set being received, over `WATCH_BENCH_EDITS`
//!    (default 50) edits of each kind (atomic rename, in-place rewrite, ConfigMap `..data` swap) at
//!    the default 250 ms interval, each edit at a random phase of the tick: p50, p99, max, missed.
//! 2. Idle CPU of the poll loop (the `hotconf-poller` and `hotconf-watchdog` threads, from
//!    `/proc/self/task/*/schedstat`) with the 3 shipped files and with 1,000 small YAML files, over
//!    `WATCH_BENCH_IDLE_SECS` (default 20) each, beside a bare loop that only lists the directory and
//!    opens, reads and blake3-hashes each file (`std::fs::read`) at the same interval, run side by
//!    side in the same window; then one tick of each timed back to back.
//! 3. System calls per file per tick, counted by `strace -f -c` (when installed) over forced ticks.
//! 4. File descriptors and resident memory before and after 100,000 hand-driven ticks.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use hotconf::testing::{PollCore, Poller, PollerConfig, PollerHandle, RealFs, WatchEvent, DEFAULT_INTERVAL};
use hotconf::Sources;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A tiny deterministic generator for the edit phases (no `rand` dependency).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

fn copy_shipped(dir: &Path) {
    for entry in fs::read_dir(shipped()).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
}

#[derive(Clone, Copy, Debug)]
enum EditKind {
    AtomicRename,
    InPlace,
    DataSwap,
}

/// A ConfigMap-style mount of the shipped files: `name -> ..data/name`, `..data -> ..gen-0`.
fn configmap(dir: &Path) {
    use std::os::unix::fs::symlink;
    fs::create_dir(dir.join("..gen-0")).unwrap();
    copy_shipped(&dir.join("..gen-0"));
    symlink("..gen-0", dir.join("..data")).unwrap();
    for entry in fs::read_dir(shipped()).unwrap() {
        let name = entry.unwrap().file_name();
        symlink(Path::new("..data").join(&name), dir.join(&name)).unwrap();
    }
}

/// Applies edit `i`; the edited file ends with `marker`.
fn edit(dir: &Path, kind: EditKind, i: u64, marker: &str) {
    let base = fs::read_to_string(shipped().join("rate_limits.yaml")).unwrap();
    let content = format!("{base}{marker}\n");
    match kind {
        EditKind::AtomicRename => {
            fs::write(dir.join("rate_limits.yaml.tmp"), &content).unwrap();
            fs::rename(dir.join("rate_limits.yaml.tmp"), dir.join("rate_limits.yaml")).unwrap();
        }
        EditKind::InPlace => fs::write(dir.join("rate_limits.yaml"), &content).unwrap(),
        EditKind::DataSwap => {
            use std::os::unix::fs::symlink;
            let new = format!("..gen-{}", i + 1);
            fs::create_dir(dir.join(&new)).unwrap();
            copy_shipped(&dir.join(&new));
            fs::write(dir.join(&new).join("rate_limits.yaml"), &content).unwrap();
            symlink(&new, dir.join("..data_tmp")).unwrap();
            fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
            fs::remove_dir_all(dir.join(format!("..gen-{i}"))).unwrap();
        }
    }
}

fn spawn(dir: &Path, interval: Duration) -> (PollerHandle, Receiver<WatchEvent>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let baseline = Sources::read_dir(dir, Sources::DEFAULT_MAX_FILE_BYTES).unwrap();
    let config = PollerConfig::new(dir).with_interval(interval).with_baseline(baseline);
    (Poller::spawn(config, tx).unwrap(), rx)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn latency(kind: EditKind, edits: u64, rng: &mut Lcg) {
    let dir = tempfile::tempdir().unwrap();
    match kind {
        EditKind::DataSwap => configmap(dir.path()),
        _ => copy_shipped(dir.path()),
    }
    let (_handle, rx) = spawn(dir.path(), DEFAULT_INTERVAL);
    let mut latencies = Vec::new();
    let mut missed = 0;
    for i in 0..edits {
        std::thread::sleep(Duration::from_millis(rng.below(250)));
        let marker = format!("# bench edit {i}");
        edit(dir.path(), kind, i, &marker);
        let done = Instant::now();
        let deadline = done + Duration::from_secs(2);
        loop {
            match rx.recv_deadline(deadline) {
                Ok(WatchEvent::Changed(set)) => {
                    let seen = set
                        .sources
                        .get("rate_limits.yaml")
                        .and_then(|f| f.bytes())
                        .is_some_and(|b| std::str::from_utf8(b).is_ok_and(|t| t.trim_end().ends_with(&marker)));
                    if seen {
                        latencies.push(Instant::now() - done);
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => {
                    missed += 1;
                    break;
                }
            }
        }
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "latency {:<13} edits={edits:<4} p50={:6.1} ms  p99={:6.1} ms  max={:6.1} ms  missed={missed}",
        format!("{kind:?}"),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
}

/// Total on-CPU time (ns) of this process's threads whose name starts with one of `prefixes`.
fn threads_cpu_ns(prefixes: &[&str]) -> u64 {
    let mut total = 0;
    for task in fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if prefixes.iter().any(|p| comm.trim_end().starts_with(p)) {
            let stat = fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            total += stat.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    total
}

/// CPU % of one core used by each group of threads over the same `secs`-second window.
fn measure_cpu<const N: usize>(groups: [&[&str]; N], secs: u64) -> [f64; N] {
    std::thread::sleep(Duration::from_secs(1)); // warm up
    let (cpu0, t0) = (groups.map(threads_cpu_ns), Instant::now());
    std::thread::sleep(Duration::from_secs(secs));
    let (cpu1, t1) = (groups.map(threads_cpu_ns), Instant::now());
    let wall = (t1 - t0).as_nanos() as f64;
    std::array::from_fn(|i| (cpu1[i] - cpu0[i]) as f64 / wall * 100.0)
}

/// The comparison: list the directory, then open, read and blake3-hash each file, every interval.
fn bare_loop(dir: PathBuf, interval: Duration, ticks: Option<u64>, stop: Receiver<()>) {
    let mut next = Instant::now();
    let mut n = 0;
    loop {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            if let Ok(bytes) = fs::read(entry.path()) {
                std::hint::black_box(blake3::hash(&bytes));
            }
        }
        n += 1;
        if ticks.is_some_and(|t| n >= t) {
            return;
        }
        next += interval;
        match stop.recv_deadline(next) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

fn many_files(dir: &Path, n: usize) {
    for i in 0..n {
        fs::write(dir.join(format!("file_{i:04}.yaml")), format!("key_{i}:\n  rpm: {i}\n  burst: 5\n")).unwrap();
    }
}

/// Runs the poller and the bare loop side by side on the same files, half a tick apart, so both
/// see the same machine load (the machine is shared), then times one tick of each in a tight loop.
fn idle_cpu(secs: u64) {
    for files in [3usize, 1000] {
        let dir = tempfile::tempdir().unwrap();
        if files == 3 {
            copy_shipped(dir.path());
        } else {
            many_files(dir.path(), files);
        }
        let (handle, _rx) = spawn(dir.path(), DEFAULT_INTERVAL);
        std::thread::sleep(DEFAULT_INTERVAL / 2);
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let path = dir.path().to_owned();
        let bare = std::thread::Builder::new()
            .name("bare-loop".into())
            .spawn(move || bare_loop(path, DEFAULT_INTERVAL, None, stop_rx))
            .unwrap();
        let [ours, baseline] = measure_cpu([&["hotconf-poller", "hotconf-watchdog"], &["bare-loop"]], secs);
        stop_tx.send(()).unwrap();
        bare.join().unwrap();
        drop(handle);
        println!(
            "idle cpu {files:>4} files @250ms: poller {ours:.3} % of a core, bare loop {baseline:.3} %, ratio {:.2}x",
            ours / baseline
        );

        // The same work timed back to back on this thread: scan + debounce vs list + read + hash.
        let rounds = if files == 3 { 20_000 } else { 200 };
        let mut core = PollCore::new(&PollerConfig::new(dir.path()));
        let now = Instant::now();
        let mut tick_core = || {
            let t = Instant::now();
            std::hint::black_box(core.tick(&RealFs, now));
            t.elapsed()
        };
        let (_never, stop) = crossbeam_channel::bounded(1);
        let tick_bare = || {
            let t = Instant::now();
            bare_loop(dir.path().to_owned(), Duration::ZERO, Some(1), stop.clone());
            t.elapsed()
        };
        let (mut a, mut b) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..rounds {
            a += tick_core();
            b += tick_bare();
        }
        println!(
            "tick cost {files:>4} files: PollCore::tick {:.1} us, bare loop {:.1} us, ratio {:.2}x",
            a.as_secs_f64() * 1e6 / rounds as f64,
            b.as_secs_f64() * 1e6 / rounds as f64,
            a.as_secs_f64() / b.as_secs_f64()
        );
    }
}

/// Under strace: `ticks` forced ticks of the poller, or the bare loop, on `dir`.
fn syscalls_child(what: &str, dir: &Path, ticks: u64) {
    match what {
        "poller" => {
            let (tx, _rx) = crossbeam_channel::unbounded();
            let config = PollerConfig::new(dir).with_interval(Duration::from_secs(3600));
            let handle = Poller::spawn(config, tx).unwrap();
            for _ in 1..ticks {
                assert!(handle.poll_now_and_wait(Duration::from_secs(30)));
            }
        }
        _ => {
            let (_tx, rx) = crossbeam_channel::bounded(1);
            bare_loop(dir.to_owned(), Duration::ZERO, Some(ticks), rx);
        }
    }
}

fn syscalls() {
    if Command::new("strace").arg("-V").output().is_err() {
        println!("syscalls: strace is not installed; skipped");
        return;
    }
    let (files, ticks) = (100u64, 200u64);
    let dir = tempfile::tempdir().unwrap();
    many_files(dir.path(), files as usize);
    let exe = std::env::current_exe().unwrap();
    for what in ["poller", "bare"] {
        let out = dir.path().with_extension(format!("{what}.strace"));
        let status = Command::new("strace")
            .args(["-f", "-c", "-o"])
            .arg(&out)
            .arg(&exe)
            .args(["--syscalls-child", what])
            .arg(dir.path())
            .arg(ticks.to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let report = fs::read_to_string(&out).unwrap();
        let _ = fs::remove_file(&out);
        let mut counts: Vec<(String, u64)> = Vec::new();
        for line in report.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // % time, seconds, usecs/call, calls, [errors], syscall
            if cols.len() >= 5 && cols[0].parse::<f64>().is_ok() {
                let name = cols[cols.len() - 1].to_owned();
                if name != "total" {
                    counts.push((name, cols[3].parse().unwrap_or(0)));
                }
            }
        }
        let total: u64 = counts.iter().map(|(_, c)| c).sum();
        let per = |n: u64| n as f64 / (files * ticks) as f64;
        let file_calls: u64 = counts
            .iter()
            .filter(|(n, _)| {
                ["openat", "open", "statx", "fstat", "newfstatat", "read", "close", "lseek"].contains(&n.as_str())
            })
            .map(|(_, c)| c)
            .sum();
        counts.sort_by_key(|c| std::cmp::Reverse(c.1));
        let top: Vec<String> = counts.iter().take(8).map(|(n, c)| format!("{n}={:.2}", per(*c))).collect();
        println!(
            "syscalls {what:<6} {files} files x {ticks} ticks: {:.2} per file per tick on files (open/stat/read/close), {:.2} in all; {}",
            per(file_calls),
            per(total),
            top.join(" ")
        );
    }
}

/// Current open fds and resident memory (kB) of this process.
fn fds_and_rss() -> (usize, u64) {
    let fds = fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (fds, rss)
}

fn soak(ticks: u64) {
    let dir = tempfile::tempdir().unwrap();
    copy_shipped(dir.path());
    let clock = hotconf::testing::FakeClock::new();
    let mut core = PollCore::new(&PollerConfig::new(dir.path()));
    use hotconf::testing::Clock;
    let run = |core: &mut PollCore, from: u64, to: u64| {
        for i in from..to {
            if i % 5000 == 0 {
                edit(dir.path(), EditKind::InPlace, i, &format!("# soak {i}"));
            }
            core.tick(&RealFs, clock.now());
            clock.advance(DEFAULT_INTERVAL);
        }
    };
    run(&mut core, 0, 1000);
    let before = fds_and_rss();
    let started = Instant::now();
    run(&mut core, 1000, ticks);
    let after = fds_and_rss();
    println!(
        "soak {ticks} ticks (3 files, {:.1} us/tick): fds {} -> {}, rss {} kB -> {} kB",
        started.elapsed().as_secs_f64() * 1e6 / (ticks - 1000) as f64,
        before.0,
        after.0,
        before.1,
        after.1
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--syscalls-child") {
        syscalls_child(&args[i + 1], Path::new(&args[i + 2]), args[i + 3].parse().unwrap());
        return;
    }
    let only = std::env::var("WATCH_BENCH_ONLY").unwrap_or_default();
    let wants = |part: &str| only.is_empty() || only.split(',').any(|p| p == part);
    if wants("latency") {
        let edits = env_u64("WATCH_BENCH_EDITS", 50);
        let mut rng = Lcg(0x5eed);
        for kind in [EditKind::AtomicRename, EditKind::InPlace, EditKind::DataSwap] {
            latency(kind, edits, &mut rng);
        }
    }
    if wants("cpu") {
        idle_cpu(env_u64("WATCH_BENCH_IDLE_SECS", 20));
    }
    if wants("syscalls") {
        syscalls();
    }
    if wants("soak") {
        soak(env_u64("WATCH_BENCH_SOAK_TICKS", 100_000));
    }
}

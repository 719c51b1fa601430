//! Library benchmark: what `Live::get` and `Live::read` cost at 1, 2 and 8 reader threads, with
//! and without a reload storm, how long a change takes to be visible (edits at random times),
//! and how many crates a library user compiles. Prints its figures.
//!
//! Run with `cargo bench --bench library`.

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../examples/one_file.rs"]
#[allow(dead_code)]
mod one_file;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn write(path: &Path, workers: u32) {
    // Written beside and renamed into place, as editors and ConfigMaps do.
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, format!("greeting: hello\nworkers: {workers}\n")).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// This thread's CPU time (not wall time: with 8 reader threads on 2 cores a thread is off the
/// CPU most of the time, and a read costs what it costs while on it).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid pointer to a timespec; the clock id is a constant Linux defines.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[derive(Clone, Copy)]
enum Read {
    /// `Live::get`: an `Arc` clone (a reference count every reader thread writes).
    Get,
    /// `Live::read`: a guard that writes nothing another thread reads.
    Guard,
}

/// The slowest reader thread's mean CPU time per read, `threads` threads reading `n` times each.
fn read_cost(live: &hotconf::Live<one_file::App>, how: Read, threads: usize, n: u32) -> f64 {
    let start = Arc::new(std::sync::Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (live, start) = (live.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let t = thread_cpu();
                match how {
                    Read::Get => (0..n).for_each(|_| {
                        black_box(black_box(live.get()).workers);
                    }),
                    Read::Guard => (0..n).for_each(|_| {
                        black_box(black_box(live.read()).workers);
                    }),
                }
                (thread_cpu() - t).as_nanos() as f64 / f64::from(n)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).fold(0.0, f64::max)
}

/// A small deterministic generator for edit times (xorshift).
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn main() {
    println!("hotconf library benchmark ({} cores)", std::thread::available_parallelism().map_or(0, |n| n.get()));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.yaml");
    write(&path, 1);

    // 1. get() and read() at 1, 2 and 8 reader threads, quiet, then during a storm of reloads.
    {
        let live =
            hotconf::Hotconf::<one_file::App>::file(&path).with_interval(Duration::from_millis(5)).start().unwrap();
        const N: u32 = 2_000_000;
        read_cost(&live, Read::Guard, 1, N / 10);
        for storm in [false, true] {
            let stop = Arc::new(AtomicBool::new(false));
            let writer = storm.then(|| {
                let (stop, path) = (Arc::clone(&stop), path.clone());
                std::thread::spawn(move || {
                    let mut n = 2;
                    while !stop.load(Ordering::Relaxed) {
                        write(&path, n);
                        n += 1;
                        std::thread::sleep(Duration::from_millis(30));
                    }
                })
            });
            let v0 = live.version();
            for threads in [1, 2, 8] {
                let get = read_cost(&live, Read::Get, threads, N);
                let read = read_cost(&live, Read::Guard, threads, N);
                println!(
                    "{:<13} {threads} reader thread{}: get() {get:5.1} ns   read() {read:5.1} ns   (CPU time per read, slowest thread)",
                    if storm { "reload storm:" } else { "quiet:" },
                    if threads == 1 { " " } else { "s" },
                );
            }
            stop.store(true, Ordering::Relaxed);
            if let Some(writer) = writer {
                writer.join().unwrap();
                println!("  ({} versions applied during the storm's measurements)", live.version() - v0);
            }
        }
    }

    // 2. Change -> new value visible through the one-file example's builder (default 250 ms
    //    polling, two identical ticks), edits at random times (not in phase with the poll).
    {
        let live = hotconf::Hotconf::<one_file::App>::file(&path).start().unwrap();
        let mut times = Vec::new();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..40u32 {
            std::thread::sleep(Duration::from_millis(next_random(&mut seed) % 500));
            let want = 1_000 + i;
            let t = Instant::now();
            write(&path, want);
            let deadline = t + Duration::from_secs(10);
            while live.read().workers.get() != want {
                assert!(Instant::now() < deadline, "change not visible within 10 s");
                std::thread::sleep(Duration::from_millis(1));
            }
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "change -> new value visible (one_file example, 250 ms interval), 40 edits at random times: p50 {:?}  p99 {:?}  max {:?}",
            percentile(&times, 0.50),
            percentile(&times, 0.99),
            times.last().unwrap()
        );
    }

    // 3. Crates a library user compiles: `cargo tree -e normal --no-default-features`, distinct
    //    packages (the crate itself included).
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["tree", "-p", "hotconf", "-e", "normal", "--prefix", "none", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let lines: std::collections::BTreeSet<&str> = text.lines().collect();
            let crates: std::collections::BTreeSet<&str> =
                text.lines().map(|l| l.trim_end_matches(" (*)").trim_end_matches(" (proc-macro)")).collect();
            println!(
                "crates compiled with default-features = false: {} distinct ({} distinct lines of `cargo tree -e normal --no-default-features --prefix none`)",
                crates.len(),
                lines.len()
            );
        }
        _ => println!("crates compiled with default-features = false: cargo tree unavailable"),
    }
}

//! Library benchmark: what `Live::get` costs with and without a reload storm, how long a change
//! takes to be visible through the one-file example's code, and how many crates a library user
//! compiles. Prints its figures.
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

/// Mean cost of one `get()` (and reading a field), over `n` calls.
fn get_cost(live: &hotconf::Live<one_file::App>, n: u32) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        black_box(black_box(live.get()).workers);
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() {
    println!("hotconf library benchmark ({} cores)", std::thread::available_parallelism().map_or(0, |n| n.get()));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.yaml");
    write(&path, 1);

    // 1. get() with no reloads, then during a storm of them.
    {
        let live =
            hotconf::Hotconf::<one_file::App>::file(&path).with_interval(Duration::from_millis(5)).start().unwrap();
        const N: u32 = 5_000_000;
        get_cost(&live, N / 10);
        let quiet = get_cost(&live, N);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (stop, path) = (Arc::clone(&stop), path.clone());
            std::thread::spawn(move || {
                let mut n = 2;
                while !stop.load(Ordering::Relaxed) {
                    write(&path, n);
                    n += 1;
                    std::thread::sleep(Duration::from_millis(12));
                }
            })
        };
        let v0 = live.version();
        let storm = get_cost(&live, N);
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        let applied = live.version() - v0;
        println!("get(): {quiet:.1} ns quiet; {storm:.1} ns during a reload storm ({applied} versions applied while measuring)");
    }

    // 2. Change -> new value visible through the one-file example's code (default 250 ms polling,
    //    two identical ticks), as a user of `Hotconf::file(..).start()` sees it.
    {
        let live = one_file::start(path.to_str().unwrap()).unwrap();
        let mut times = Vec::new();
        for i in 0..40u32 {
            let want = 1_000 + i;
            let t = Instant::now();
            write(&path, want);
            let deadline = t + Duration::from_secs(10);
            while live.get().workers.get() != want {
                assert!(Instant::now() < deadline, "change not visible within 10 s");
                std::thread::sleep(Duration::from_millis(1));
            }
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "change -> new value visible (one_file example, 250 ms interval), 40 edits: p50 {:?}  p99 {:?}  max {:?}",
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

//! The admin endpoint under a slow-connection attack: `/healthz` and `/metrics` latency with
//! 1,000 connections held open (500 idle, 500 dripping a request head a byte at a time, each
//! reconnecting when the server cuts it), against the real `hotconf run` on loopback.
//! Target: `/healthz` p99 < 50 ms under attack.
//!
//! Bounded: `PROBES` requests per phase, and the whole run stops after `TIME_BOUND`.
//! Run with `cargo bench --bench admin`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROBES: usize = 1000;
const IDLE: usize = 500;
const DRIPPING: usize = 500;
const TIME_BOUND: Duration = Duration::from_secs(120);

fn main() {
    let started = Instant::now();
    let config = tempfile::tempdir().unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    for entry in std::fs::read_dir(shipped).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), config.path().join(entry.file_name())).unwrap();
    }
    let store = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotconf"))
        .args(["run", "--config", config.path().to_str().unwrap(), "--snapshots", store.path().to_str().unwrap()])
        .args(["--admin-addr", "127.0.0.1:0", "--log-format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hotconf");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let admin: SocketAddr = loop {
        let line = lines.next().expect("hotconf exited").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["event"] == "watcher.started" {
            break v["admin_addr"].as_str().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));

    println!("admin endpoint, loopback, at least {PROBES} sequential requests per row");
    println!("{:<44} {:>9} {:>9} {:>9}", "", "p50 ms", "p99 ms", "max ms");
    report("/healthz, quiet", &probe(admin, "/healthz", started));
    report("/metrics, quiet", &probe(admin, "/metrics", started));

    let stop = Arc::new(AtomicBool::new(false));
    let reconnects = Arc::new(AtomicU64::new(0));
    let attacker = {
        let (stop, reconnects) = (Arc::clone(&stop), Arc::clone(&reconnects));
        std::thread::spawn(move || attack(admin, &stop, &reconnects))
    };
    // Let the attacker open its connections first.
    while reconnects.load(Ordering::Relaxed) < (IDLE + DRIPPING) as u64 {
        assert!(started.elapsed() < TIME_BOUND, "the attack never got its connections open");
        std::thread::sleep(Duration::from_millis(10));
    }
    let label = format!("/healthz, {IDLE} idle + {DRIPPING} dripping");
    // Past the 5 s head deadline, so the server's cuts and the attacker's reconnect bursts are in it.
    let healthz = probe_for(admin, "/healthz", started, Duration::from_secs(7));
    report(&label, &healthz);
    report(&format!("/metrics, {IDLE} idle + {DRIPPING} dripping"), &probe(admin, "/metrics", started));
    stop.store(true, Ordering::Relaxed);
    let held = attacker.join().unwrap();
    println!(
        "attack: {held} connections held at the end; {} opened in all (the server cut the dripping ones at the head deadline)",
        reconnects.load(Ordering::Relaxed)
    );
    let p99 = percentile(&healthz, 99.0);
    println!("target /healthz p99 under attack < 50 ms: {}", if p99 < 50.0 { "met" } else { "MISSED" });
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}

/// Holds `IDLE` silent connections and `DRIPPING` connections sending one byte of a request head
/// every 100 ms each, reopening any the server closes; returns how many are open at the end.
fn attack(admin: SocketAddr, stop: &AtomicBool, opened: &AtomicU64) -> usize {
    let connect = || {
        let c = TcpStream::connect(admin).unwrap();
        opened.fetch_add(1, Ordering::Relaxed);
        c
    };
    let mut idle: Vec<TcpStream> = (0..IDLE)
        .map(|_| {
            let c = connect();
            c.set_nonblocking(true).unwrap();
            c
        })
        .collect();
    let mut drips: Vec<TcpStream> = (0..DRIPPING)
        .map(|_| {
            let mut c = connect();
            let _ = c.write_all(b"GET /status HTTP/1.1\r\nx-drip: ");
            c.set_nonblocking(true).unwrap();
            c
        })
        .collect();
    while !stop.load(Ordering::Relaxed) {
        let mut buf = [0u8; 256];
        for c in &mut idle {
            if matches!(c.read(&mut buf), Ok(0) | Err(_)) && !would_block(c) {
                *c = connect();
                c.set_nonblocking(true).unwrap();
            }
        }
        for c in &mut drips {
            let gone = matches!(c.read(&mut buf), Ok(0)) || c.write_all(b"a").is_err();
            if gone {
                *c = connect();
                let _ = c.write_all(b"GET /status HTTP/1.1\r\nx-drip: ");
                c.set_nonblocking(true).unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    idle.len() + drips.len()
}

/// Whether a non-blocking read on `c` has nothing to read yet (the connection is still open).
fn would_block(c: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1];
    matches!(c.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// `PROBES` sequential GETs of `path`; each latency in milliseconds.
fn probe(admin: SocketAddr, path: &str, started: Instant) -> Vec<f64> {
    probe_for(admin, path, started, Duration::ZERO)
}

/// At least `PROBES` sequential GETs of `path`, one a millisecond, for at least `at_least`.
fn probe_for(admin: SocketAddr, path: &str, started: Instant, at_least: Duration) -> Vec<f64> {
    let mut times = Vec::with_capacity(PROBES);
    let from = Instant::now();
    while times.len() < PROBES || from.elapsed() < at_least {
        if !at_least.is_zero() {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(started.elapsed() < TIME_BOUND, "the benchmark ran past its bound");
        let t = Instant::now();
        let mut s = TcpStream::connect(admin).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nhost: bench\r\n\r\n").unwrap();
        let mut response = Vec::new();
        s.read_to_end(&mut response).unwrap();
        assert!(response.starts_with(b"HTTP/1.1 200"), "{path}: {}", String::from_utf8_lossy(&response));
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times
}

fn percentile(times: &[f64], p: f64) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() as f64 * p / 100.0).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn report(label: &str, times: &[f64]) {
    let max = times.iter().copied().fold(0.0, f64::max);
    println!("{label:<44} {:>9.3} {:>9.3} {:>9.3}", percentile(times, 50.0), percentile(times, 99.0), max);
}

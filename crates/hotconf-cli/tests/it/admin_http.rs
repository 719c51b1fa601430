//! The admin endpoint as an operator and an attacker see it, through the real binary: slow and
//! idle connections never delay `/healthz`, the connection cap never starves a new client, and
//! HTTP conventions (HEAD, 405 + Allow, 404/409/422 for rollbacks, percent-decoding, 429).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::service::{edit, Service, DEADLINE};
use crate::support::config_copy;

/// A response as the wire carries it.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    /// The value of header `name` (lower-case), if present.
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Sends `method path` and reads the whole response (the server closes after one).
fn send(addr: SocketAddr, method: &str, path: &str) -> Reply {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect admin");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(stream, "{method} {path} HTTP/1.1\r\nhost: test\r\ncontent-length: 0\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Reply { status, head: head.to_owned(), body: body.to_owned() }
}

/// Whether the server closed `stream` (EOF or reset), without blocking.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

#[test]
fn a_thousand_idle_and_dripping_connections_never_delay_healthz_or_metrics() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let head_timeout = Duration::from_millis(1000);
    let s = Service::start_with_args(config.path(), store.path(), &[], &["--admin-head-timeout-ms", "1000"]);
    // 500 connections that send nothing, 500 that drip a request head a byte at a time.
    let idle: Vec<TcpStream> = (0..500).map(|_| TcpStream::connect(s.admin).unwrap()).collect();
    let mut drips: Vec<(TcpStream, Instant)> = (0..500)
        .map(|_| {
            let mut c = TcpStream::connect(s.admin).unwrap();
            c.write_all(b"GET /status HTTP/1.1\r\nx-drip: ").unwrap();
            (c, Instant::now())
        })
        .collect();
    // Probe while dripping, past the head deadline, with a generous per-request bound.
    let attack_until = Instant::now() + head_timeout * 2;
    let mut probes = 0;
    let mut slowest = Duration::ZERO;
    let mut closed_after: Vec<Duration> = Vec::new();
    while Instant::now() < attack_until {
        for (c, opened) in drips.iter_mut() {
            if c.write_all(b"a").is_err() || closed_by_server(c) {
                closed_after.push(opened.elapsed());
                *c = TcpStream::connect(s.admin).unwrap();
                *opened = Instant::now();
            }
        }
        for path in ["/healthz", "/metrics"] {
            let t = Instant::now();
            let reply = send(s.admin, "GET", path);
            slowest = slowest.max(t.elapsed());
            assert_eq!(reply.status, 200, "{path} under attack: {reply:?}");
            probes += 1;
        }
    }
    assert!(probes >= 10, "only {probes} probes answered in {:?}", head_timeout * 2);
    assert!(slowest < Duration::from_secs(1), "a probe took {slowest:?} under attack");
    // The dripping heads were cut at the whole-head deadline, not kept alive by each byte.
    assert!(!closed_after.is_empty(), "no dripping connection was closed");
    for after in &closed_after {
        assert!(*after >= head_timeout - Duration::from_millis(100), "closed early: {after:?}");
        assert!(*after < head_timeout + Duration::from_secs(2), "closed late: {after:?}");
    }
    // The idle ones too.
    let mut idle = idle;
    assert!(idle.iter_mut().all(closed_by_server), "idle connections outlived the head deadline");
    drop(drips);
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn past_the_connection_cap_the_oldest_idle_connection_makes_room() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start_with_args(config.path(), store.path(), &[], &["--admin-max-connections", "50"]);
    let mut held: Vec<TcpStream> = (0..60).map(|_| TcpStream::connect(s.admin).unwrap()).collect();
    // New clients are served, however many connections are held.
    for _ in 0..5 {
        assert_eq!(send(s.admin, "GET", "/healthz").status, 200);
    }
    // The oldest held connections were closed for them; the newest are still open.
    let deadline = Instant::now() + DEADLINE;
    while !closed_by_server(&mut held[0]) {
        assert!(Instant::now() < deadline, "the oldest connection was never evicted");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!closed_by_server(&mut held[59]), "the newest connection was evicted");
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
}

/// Under a limit of 1,024 open files (soft and hard: `prlimit --nofile=1024:1024`, systemd's
/// default soft limit with nothing higher to raise it to) and 1,100 idle connections held open:
/// the connection cap leaves the pipeline its descriptors, so an edit is applied at once (polling
/// every 250 ms, as by default), `/healthz` answers promptly, and there are no floods of
/// `admin.accept_error` lines.
#[test]
fn under_a_1024_file_limit_with_1100_held_connections_edits_apply_and_healthz_answers() {
    raise_own_file_limit(4096);
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    // Connections are held for the whole test, not cut at the head deadline.
    let args = ["--admin-head-timeout-ms", "60000"];
    let s = Service::try_start_limited(config.path(), store.path(), &[], 250, &args, Some(1024)).unwrap();
    let started = s.raw.lock().unwrap().lines().find(|l| l.contains("watcher.started")).unwrap().to_owned();
    let started: Value = serde_json::from_str(&started).unwrap();
    assert_eq!(started["admin_max_connections"], 1024 - 64, "{started}");

    let mut held: Vec<TcpStream> = (0..1100).map(|_| TcpStream::connect(s.admin).unwrap()).collect();
    // A probe queued behind all of them: once it is answered, every held one was accepted.
    assert_eq!(send(s.admin, "GET", "/healthz").status, 200);

    for (version, (from, to)) in [(2, ("rpm: 600", "rpm: 700")), (3, ("rpm: 700", "rpm: 800"))] {
        let edited = Instant::now();
        edit(config.path(), "rate_limits.yaml", from, to);
        s.wait_until(|v| v["event"] == "reload.applied" && v["version"] == version);
        let took = edited.elapsed();
        eprintln!("fd limit 1024, 1,100 held connections: edit applied as v{version} in {took:?}");
        assert!(took < Duration::from_millis(1500), "the edit took {took:?} to apply");
    }
    let mut latencies: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(send(s.admin, "GET", "/healthz").status, 200);
            t.elapsed()
        })
        .collect();
    latencies.sort_unstable();
    let (p50, p99) = (latencies[100], latencies[197]);
    eprintln!("fd limit 1024, 1,100 held connections: /healthz p50 {p50:?}, p99 {p99:?}");
    assert!(p99 < Duration::from_millis(500), "/healthz p99 {p99:?}");
    // The cap evicted the oldest held connections for the newer ones; the newest is still open.
    assert!(!closed_by_server(&mut held[1099]), "the newest connection was evicted");
    drop(held);
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
    let accept_errors = log.lines().filter(|l| l.contains("\"admin.accept_error\"")).count();
    eprintln!("fd limit 1024, 1,100 held connections: {accept_errors} admin.accept_error lines");
    assert!(accept_errors <= 2, "{accept_errors} admin.accept_error lines:\n{log}");
    assert!(!log.contains("Too many open files"), "{log}");
}

/// Raises this test process's soft limit on open files to at least `n` (within the hard limit),
/// so it can hold the connections it opens.
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every unix
fn raise_own_file_limit(n: u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write the struct given, nothing else.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if (limit.rlim_cur as u64) < n {
            limit.rlim_cur = (n as libc::rlim_t).min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
}

#[test]
fn http_conventions_head_405_allow_percent_decoding_and_pin_codes() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[]);
    // HEAD wherever GET is served: same status and length, no body.
    for path in ["/healthz", "/status", "/metrics", "/config", "/route/mary"] {
        let get = send(s.admin, "GET", path);
        let head = send(s.admin, "HEAD", path);
        assert_eq!((head.status, get.status), (200, 200), "{path}");
        assert_eq!(head.body, "", "HEAD {path}");
        assert_eq!(head.header("content-type"), get.header("content-type"), "{path}");
        if path == "/healthz" {
            assert_eq!(head.header("content-length"), Some("3"));
        }
    }
    // 405 names what is allowed.
    let cases = [
        ("POST", "/status", "GET, HEAD"),
        ("DELETE", "/healthz", "GET, HEAD"),
        ("GET", "/reload", "POST"),
        ("PUT", "/pin/1", "POST"),
        ("GET", "/acquire/local", "POST"),
    ];
    for (method, path, allow) in cases {
        let r = send(s.admin, method, path);
        assert_eq!((r.status, r.header("allow")), (405, Some(allow)), "{method} {path}: {r:?}");
    }
    // Paths are percent-decoded, per segment.
    assert_eq!(send(s.admin, "GET", "/route/m%61ry").json()["agent"], "mary");
    assert_eq!(send(s.admin, "GET", "/%68ealthz").status, 200);
    assert_eq!(send(s.admin, "GET", "/route/ma%2Fry").status, 404, "an encoded / stays in its segment");
    assert_eq!(send(s.admin, "GET", "/route/%zz").status, 400);
    // A version that does not exist: 404, nothing changes (also under the old name, `/rollback/N`).
    let r = send(s.admin, "POST", "/pin/99");
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(send(s.admin, "POST", "/rollback/99").status, 404);
    assert_eq!(send(s.admin, "GET", "/rollback/1").header("allow"), Some("POST"));
    assert_eq!(r.json()["result"], "not_found");
    assert!(r.json()["error"].as_str().unwrap().contains("version 99 does not exist"), "{r:?}");
    // A damaged version: 409.
    edit(config.path(), "rate_limits.yaml", "rpm: 600", "rpm: 650");
    assert_eq!(s.wait_for("reload.applied")["version"], 2);
    let stored = store.path().join("v000001/files/rate_limits.yaml");
    std::fs::write(&stored, "local:\n  rpm: 1\n").unwrap();
    let r = send(s.admin, "POST", "/pin/1");
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.json()["result"], "failed");
    assert_eq!(s.get_json("/status")["running_version"], 2);
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_rollback_to_a_version_that_no_longer_validates_is_422() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    edit(
        config.path(),
        "providers.yaml",
        "enabled: false\n  api_key_env: GROQ_API_KEY",
        "enabled: true\n  api_key_env: GROQ_API_KEY",
    );
    let s = Service::start(config.path(), store.path(), &[("GROQ_API_KEY", "k")]);
    edit(
        config.path(),
        "providers.yaml",
        "enabled: true\n  api_key_env: GROQ_API_KEY",
        "enabled: false\n  api_key_env: GROQ_API_KEY",
    );
    assert_eq!(s.wait_for("reload.applied")["version"], 2);
    s.stop();
    // Restarted without the key: version 1 (groq enabled) no longer validates.
    let s = Service::start(config.path(), store.path(), &[]);
    let r = send(s.admin, "POST", "/pin/1");
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.json()["result"], "rejected");
    assert!(r.body.contains("GROQ_API_KEY"), "{r:?}");
    s.stop();
}

#[test]
fn config_uses_the_files_key_names_and_status_durations_are_rounded_to_microseconds() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[]);
    let local = &s.get_json("/config")["config"]["providers"]["local"];
    assert_eq!(local["timeout_seconds"], 60.0, "{local}");
    assert_eq!(local["connect_timeout_seconds"], 2.0, "{local}");
    assert!(local.get("timeout").is_none(), "{local}");
    edit(config.path(), "rate_limits.yaml", "rpm: 600", "rpm: 650");
    s.wait_for("reload.applied");
    let (_, body) = s.http("GET", "/status");
    let duration = body.split("\"duration_ms\":").nth(1).unwrap().split([',', '}']).next().unwrap();
    let decimals = duration.split_once('.').map_or(0, |(_, d)| d.len());
    assert!(decimals <= 3, "duration_ms {duration} is not rounded to µs: {body}");
    let at = body.split("\"at_unix\":").nth(1).unwrap().split([',', '}']).next().unwrap();
    assert!(at.split_once('.').map_or(0, |(_, d)| d.len()) <= 6, "at_unix {at}");
    s.stop();
}

#[test]
fn acquire_denials_are_429_and_say_when_to_retry_or_that_it_never_can() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[]);
    // Larger than the per-minute budget: can never succeed, no Retry-After.
    let r = send(s.admin, "POST", "/acquire/local?tokens=999999999");
    assert_eq!(r.status, 429, "{r:?}");
    let v = r.json();
    assert_eq!(v["can_never_succeed"], true, "{v}");
    assert!(v.get("retry_after").is_none(), "{v}");
    assert!(v["error"].as_str().unwrap().contains("can never succeed"), "{v}");
    assert_eq!(r.header("retry-after"), None);
    // The burst (20) spent: a denial with when to retry, in the body and the header.
    let denied = (0..40)
        .map(|_| send(s.admin, "POST", "/acquire/local?tokens=1"))
        .find(|r| r.status != 200)
        .expect("the burst of 20 ran out within 40 requests");
    assert_eq!(denied.status, 429, "{denied:?}");
    let v = denied.json();
    assert_eq!(v["decision"], "denied");
    assert_eq!(v["can_never_succeed"], false);
    let after = v["retry_after"].as_f64().expect("retry_after seconds");
    assert!(after > 0.0 && after <= 60.0, "{v}");
    let header: u64 = denied.header("retry-after").expect("Retry-After header").parse().unwrap();
    assert_eq!(header, after.ceil().max(1.0) as u64, "{denied:?}");
    s.stop();
}

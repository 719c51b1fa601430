//! `hotconf run` end to end under faults that used to wedge it or lose an edit: a store outage
//! longer than the old retry schedule, and SIGTERM while a thread is stuck in the kernel.
//!
//! Tests run as root, which ignores file modes, so the faults are made another way: the store's
//! lock file replaced by a directory (every write fails: an outage), or an exclusive `flock` held
//! on it by the test (the service's next store write blocks in the kernel, as on a hung NFS mount).
//! A read of the config directory hung in the kernel cannot be made portably as root once reads are
//! non-blocking (a FIFO no longer blocks; FUSE is not available everywhere): the validator's stuck
//! workers are tested in-process, in `reload.rs`.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::service::{diff_text, edit, http, wait_for_thread_blocked, Service};
use crate::support::config_copy;

/// SIGTERM must end the process within this, whatever is stuck.
const STOP_BOUND: Duration = Duration::from_secs(2);

fn rpm(service: &Service) -> Value {
    let (status, body) = service.http("POST", "/acquire/local?tokens=1");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["limits"]["rpm"].clone()
}

/// Holds an exclusive lock on the store's lock file, as a writer stuck in the kernel would.
fn hold_store_lock(store: &Path) -> File {
    let file = File::options().read(true).write(true).open(store.join(".lock")).unwrap();
    file.lock().unwrap();
    file
}

/// Sends SIGTERM and returns the exit code, the log, and how long the process took to end.
fn stop_timed(service: Service) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let (code, log) = service.stop();
    (code, log, started.elapsed())
}

fn events(log: &str, event: &str) -> Vec<Value> {
    log.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|v| v["event"] == event).collect()
}

#[test]
fn an_edit_made_during_a_store_outage_longer_than_the_old_retry_schedule_is_applied_by_itself() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    // Backoff 100 ms doubling to 400 ms: the schedule of the defaults (1 s doubling to 30 s) in
    // small, so the outage can outlast the old five attempts in a couple of seconds.
    let retry = ["--retry-backoff-ms", "100", "--retry-backoff-max-ms", "400"];
    let s = Service::try_start_with(config.path(), store.path(), &[], 50, &retry).expect("service started");
    assert_eq!(rpm(&s), 600);

    // The outage: no store write can take the lock while the lock file is a directory.
    let lock = store.path().join(".lock");
    std::fs::remove_file(&lock).unwrap();
    std::fs::create_dir(&lock).unwrap();
    edit(config.path(), "rate_limits.yaml", "rpm: 600", "rpm: 900");
    let failed = s.wait_for("reload.failed");
    assert!(failed["error"].as_str().unwrap().starts_with("snapshot store: "), "{failed}");

    // Retried well past the old schedule (which gave up after the fifth attempt), with capped backoff.
    let mut schedule = Vec::new();
    while schedule.len() < 7 {
        let retry = s.wait_for("reload.retry");
        assert_eq!(retry["trigger"], "change");
        assert_eq!(retry["files"], serde_json::json!(["rate_limits.yaml"]));
        schedule.push((retry["attempt"].as_u64().unwrap(), retry["delay_ms"].as_u64().unwrap()));
    }
    assert_eq!(schedule, [(2, 100), (3, 200), (4, 400), (5, 400), (6, 400), (7, 400), (8, 400)]);
    let status = s.get_json("/status");
    assert_eq!((status["running_version"].as_u64(), status["failing"].as_bool()), (Some(1), Some(true)));
    assert_eq!(rpm(&s), 600, "the old config keeps running");

    // The outage ends; nobody edits or reloads: the pending edit is applied at the next retry.
    std::fs::remove_dir(&lock).unwrap();
    let applied = s.wait_for("reload.applied");
    assert_eq!(applied["version"], 2);
    assert_eq!(applied["files"], serde_json::json!(["rate_limits.yaml"]));
    assert!(diff_text(&applied).contains("rate_limits.local.rpm: 600 → 900"), "{applied}");
    let recovered = s.wait_for("reload.recovered");
    assert!(recovered["attempt"].as_u64().unwrap() >= 8, "{recovered}");
    let status = s.get_json("/status");
    assert_eq!((status["running_version"].as_u64(), status["failing"].as_bool()), (Some(2), Some(false)));
    assert_eq!(rpm(&s), 900);
    assert_eq!(s.get_json("/config")["version"], 2);
    assert_eq!(status["workers_stuck"], 0);
    let (_, metrics) = s.http("GET", "/metrics");
    assert!(metrics.lines().any(|l| l == "hotconf_reload_workers_stuck 0"), "{metrics}");

    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn sigterm_ends_the_service_within_2_s_while_a_store_write_and_an_admin_request_are_stuck() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[]);
    let _held = hold_store_lock(store.path());
    edit(config.path(), "rate_limits.yaml", "rpm: 600", "rpm: 900");
    // The change is validated, then its commit blocks in the kernel waiting for the store's lock.
    wait_for_thread_blocked(&s, "hotconf-reload", "lock");
    // A client that sent half a request, and a `POST /reload` waiting on the stuck reloader
    // (on the admin server's blocking pool, comm `hotconf-admin-b…`).
    let mut slow = std::net::TcpStream::connect(s.admin).unwrap();
    std::io::Write::write_all(&mut slow, b"GET /status HTTP/1.1\r\n").unwrap();
    let admin = s.admin;
    std::thread::spawn(move || http(admin, "POST", "/reload", None));
    wait_for_thread_blocked(&s, "hotconf-admin-b", "futex");

    let (code, log, took) = stop_timed(s);
    assert_eq!(code, Some(0), "{log}");
    assert!(took < STOP_BOUND, "SIGTERM took {took:?} to end the service:\n{log}");
    // The admin server abandons the waiting request and stops: it is never what holds shutdown.
    let forced = events(&log, "shutdown.forced");
    assert!(forced.iter().all(|f| f["still_running"] != "admin"), "{log}");
    let applied = events(&log, "reload.applied");
    assert!(applied.iter().all(|v| v["origin"] == "startup"), "nothing was applied after startup: {log}");
}

#[test]
fn sigterm_during_a_sighup_reload_stuck_in_the_kernel_exits_promptly_with_code_0() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    // Polling once a minute: only the SIGHUP reload sees the new content.
    let s = Service::try_start(config.path(), store.path(), &[], 60_000).expect("service started");
    let held = hold_store_lock(store.path());
    edit(config.path(), "rate_limits.yaml", "rpm: 600", "rpm: 900");
    s.signal("HUP");
    let requested = s.wait_for("reload.requested");
    assert_eq!(requested["queued"], true);
    wait_for_thread_blocked(&s, "hotconf-reload", "lock");
    // The signal loop is free: the service still answers, and SIGTERM is seen at once.
    assert_eq!(http(s.admin, "GET", "/healthz", None).0, 200);

    let (code, log, took) = stop_timed(s);
    assert_eq!(code, Some(0), "{log}");
    assert!(took < STOP_BOUND, "SIGTERM took {took:?} to end the service:\n{log}");
    assert_eq!(events(&log, "reloader.detached").len(), 1, "{log}");
    assert_eq!(events(&log, "stopped").len(), 1, "{log}");
    drop(held);
    // The store holds no half-written version: version 1 only, intact.
    let history = crate::support::hotconf(&["history", "--snapshots", store.path().to_str().unwrap()], &[]);
    assert_eq!(history.status.code(), Some(0), "{history:?}");
}

#[test]
fn a_sighup_reload_while_the_config_directory_is_gone_is_retried_until_it_is_back() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    // Polling once a minute: only the retried manual reload can see the new content in time.
    let retry = ["--retry-backoff-ms", "100", "--retry-backoff-max-ms", "400"];
    let s = Service::try_start_with(config.path(), store.path(), &[], 60_000, &retry).expect("service started");
    let away = config.path().with_extension("away");
    std::fs::rename(config.path(), &away).unwrap();

    s.signal("HUP");
    let failed = s.wait_for("reload.failed");
    let expected = format!("cannot read config directory {}", config.path().display());
    assert!(failed["error"].as_str().unwrap().starts_with(&expected), "{failed}");
    let retry = s.wait_for("reload.retry");
    assert_eq!((retry["trigger"].as_str(), retry["attempt"].as_u64()), (Some("manual"), Some(2)));

    // Back, with an edit made meanwhile: applied with no further signal or edit.
    edit(&away, "rate_limits.yaml", "rpm: 600", "rpm: 900");
    std::fs::rename(&away, config.path()).unwrap();
    let applied = s.wait_for("reload.applied");
    assert_eq!((applied["version"].as_u64(), applied["origin"].as_str()), (Some(2), Some("manual")));
    assert_eq!(rpm(&s), 900);
    let status = s.get_json("/status");
    assert_eq!((status["running_version"].as_u64(), status["failing"].as_bool()), (Some(2), Some(false)));
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
}

//! Liveness, readiness and lasting faults of `hotconf run`: a missing directory is a fault for as
//! long as it lasts (gauge, `/status`, `/healthz`), a reloader stalled in the store fails
//! `/healthz` until it moves again, `/readyz` says whether a config is applied, and a start on an
//! invalid directory runs the last good stored version, degraded, until the directory is fixed.

use std::fs::File;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::service::{edit, wait_for_thread_blocked, Service, DEADLINE};
use crate::support::config_copy;

/// The value of the sample `series` (name and labels exactly as exported) in `/metrics`.
fn sample(s: &Service, series: &str) -> f64 {
    let (status, body) = s.http("GET", "/metrics");
    assert_eq!(status, 200);
    let prefix = format!("{series} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {series} in\n{body}"))
        .parse()
        .unwrap()
}

/// Asks `path` until `wanted` holds for its answer, within the deadline.
fn wait_http(s: &Service, path: &str, wanted: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, body) = s.http("GET", path);
        if wanted(status, &body) {
            return (status, body);
        }
        assert!(Instant::now() < deadline, "GET {path} still {status} {body:?} after {DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_missing_directory_is_a_fault_for_as_long_as_it_lasts_and_clears_when_it_returns() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config");
    let aside = root.path().join("aside");
    let copy = config_copy();
    std::fs::rename(copy.path(), &config).unwrap();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(&config, store.path(), &[]);
    wait_http(&s, "/status", |_, body| body.contains("\"last_successful_scan\":1"));
    assert_eq!(sample(&s, r#"hotconf_faults{kind="dir_missing"}"#), 0.0);
    assert_eq!(s.http("GET", "/readyz"), (200, "ready: version 1\n".to_owned()));

    std::fs::rename(&config, &aside).unwrap();
    s.wait_until(|v| v["event"] == "poll.error" && v["kind"] == "dir_missing");
    // The poller logs the fault; the reloader's observers see it a moment later.
    wait_http(&s, "/metrics", |_, body| body.contains("hotconf_faults{kind=\"dir_missing\"} 1"));
    // Still a fault at every later look, not only when it began.
    for _ in 0..3 {
        assert_eq!(sample(&s, r#"hotconf_faults{kind="dir_missing"}"#), 1.0);
        let status = s.get_json("/status");
        assert_eq!(status["faults"]["dir_missing"], serde_json::json!([config.display().to_string()]), "{status}");
        let (code, body) = s.http("GET", "/healthz");
        assert_eq!(code, 200, "a fault alone is not a failed liveness probe: {body}");
        assert!(body.contains("fault: dir_missing "), "{body}");
    }
    let last_scan = sample(&s, "hotconf_last_successful_scan_timestamp_seconds");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!(last_scan > 1e9 && last_scan <= now, "{last_scan}");

    std::fs::rename(&aside, &config).unwrap();
    s.wait_until(|v| v["event"] == "poll.recovered");
    wait_http(&s, "/status", |_, body| body.contains("\"faults\":{}"));
    assert_eq!(sample(&s, r#"hotconf_faults{kind="dir_missing"}"#), 0.0);
    let deadline = Instant::now() + DEADLINE;
    while sample(&s, "hotconf_last_successful_scan_timestamp_seconds") <= last_scan {
        assert!(Instant::now() < deadline, "the last successful scan did not move on");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(s.http("GET", "/healthz"), (200, "ok\n".to_owned()));
}

#[test]
fn a_reloader_stalled_in_the_store_fails_healthz_until_it_moves_again() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    // A short reload timeout: the reloader's allowance is one attempt's bound (2 × 100 ms, the
    // 2 s acknowledgement timeout, 1 s) plus its 1 s beat.
    let s = Service::start_with_args(config.path(), store.path(), &[], &["--reload-timeout-ms", "100"]);
    assert_eq!(s.http("GET", "/healthz"), (200, "ok\n".to_owned()));
    // The store's lock held by the test: the reloader blocks in `flock` on the next commit.
    let held = File::options().read(true).write(true).open(store.path().join(".lock")).unwrap();
    held.lock().unwrap();
    edit(config.path(), "rate_limits.yaml", "rpm: 600", "rpm: 900");
    wait_for_thread_blocked(&s, "hotconf-reload", "lock");
    let (_, body) = wait_http(&s, "/healthz", |status, _| status == 503);
    assert!(body.starts_with("stalled: reloader (no progress for "), "{body}");
    let status = s.get_json("/status");
    assert_eq!(status["stalled"], serde_json::json!(["reloader"]), "{status}");
    // The series HotconfStalled alerts on (deploy/prometheus), exactly as its rule test feeds it.
    assert_eq!(sample(&s, r#"hotconf_thread_stalled{thread="reloader"}"#), 1.0);
    assert_eq!(sample(&s, r#"hotconf_thread_stalled{thread="poller"}"#), 0.0);

    drop(held);
    s.wait_until(|v| v["event"] == "reload.applied" && v["origin"] == "change");
    wait_http(&s, "/healthz", |status, _| status == 200);
    assert_eq!(s.get_json("/status")["stalled"], serde_json::json!([]));
    assert_eq!(sample(&s, r#"hotconf_thread_stalled{thread="reloader"}"#), 0.0);
}

/// A store holding version 1 of the shipped config, and the config directory made invalid since.
fn store_with_a_good_version_and_a_bad_directory() -> (tempfile::TempDir, tempfile::TempDir) {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[]);
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
    edit(config.path(), "rate_limits.yaml", "rpm: 600", "rpm: lots");
    (config, store)
}

#[test]
fn an_invalid_directory_at_start_runs_the_last_good_version_degraded_until_it_is_fixed() {
    let (config, store) = store_with_a_good_version_and_a_bad_directory();
    let s = Service::start(config.path(), store.path(), &[]);
    // Logged before `watcher.started`, which `start` waited for.
    let log = s.raw.lock().unwrap().clone();
    let degraded =
        log.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find(|v| v["event"] == "start.degraded");
    assert_eq!(degraded.map(|v| v["version"].clone()), Some(1.into()), "{log}");
    let status = s.get_json("/status");
    assert_eq!((status["running_version"].clone(), status["degraded"].clone()), (1.into(), true.into()), "{status}");
    assert!(status["degraded_reason"].as_str().unwrap().contains("running stored version 1"), "{status}");
    assert_eq!(status["failing"], true, "{status}");
    assert_eq!(sample(&s, "hotconf_degraded"), 1.0);
    assert_eq!(sample(&s, "hotconf_config_last_reload_successful"), 0.0);
    assert_eq!(s.http("GET", "/readyz"), (200, "ready: version 1\n".to_owned()));

    // Fixed (to content other than version 1's): applied as any change, and degraded is over.
    edit(config.path(), "rate_limits.yaml", "rpm: lots", "rpm: 700");
    let applied = s.wait_until(|v| v["event"] == "reload.applied" && v["origin"] == "change");
    assert_eq!(applied["version"], 2, "{applied}");
    let status = s.get_json("/status");
    assert_eq!((status["degraded"].clone(), status["degraded_reason"].clone()), (false.into(), Value::Null));
    assert_eq!(sample(&s, "hotconf_degraded"), 0.0);
    assert_eq!(sample(&s, "hotconf_config_last_reload_successful"), 1.0);
}

#[test]
fn refuse_exits_on_an_invalid_directory_and_last_good_refuses_with_no_good_version() {
    let (config, store) = store_with_a_good_version_and_a_bad_directory();
    let refused = Service::try_start_with(config.path(), store.path(), &[], 50, &["--on-invalid-start", "refuse"]);
    assert_eq!(refused.err().map(|(code, _)| code), Some(1));
    // An empty store has no good version: refused whatever the option.
    let empty = tempfile::tempdir().unwrap();
    let refused = Service::try_start(config.path(), empty.path(), &[], 50);
    assert_eq!(refused.err().map(|(code, _)| code), Some(1));
}

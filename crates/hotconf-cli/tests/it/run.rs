//! `hotconf run` end to end, through the real binary: the seed's acceptance cases, seen through
//! the admin endpoint and the JSON log.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{json, Value};

use crate::service::{diff_text, edit, fake_slack, http, write_atomic, Service, DEADLINE};
use crate::support::{assert_no_canary, config_copy, CANARY};

fn route(service: &Service, agent: &str) -> Vec<String> {
    let v = service.get_json(&format!("/route/{agent}"));
    v["providers"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_owned()).collect()
}

fn acquire(service: &Service, provider: &str) -> Value {
    let (status, body) = service.http("POST", &format!("/acquire/{provider}?tokens=10"));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn each_file_change_is_applied_to_the_live_components() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[]);
    assert_eq!(s.get_json("/status")["running_version"], 1);
    assert_eq!(acquire(&s, "local")["limits"]["rpm"], 600);

    // rate_limits.yaml → the existing limiter reflects the new values.
    edit(config.path(), "rate_limits.yaml", "rpm: 600", "rpm: 900");
    let applied = s.wait_for("reload.applied");
    assert_eq!(applied["version"], 2);
    assert_eq!(applied["files"], serde_json::json!(["rate_limits.yaml"]));
    assert!(diff_text(&applied).contains("rate_limits.local.rpm: 600 → 900"), "{applied}");
    assert_eq!(acquire(&s, "local")["limits"]["rpm"], 900);

    // agent_chains.yaml → the next request uses the new chain.
    assert_eq!(route(&s, "mary"), ["local", "local-small"]);
    edit(
        config.path(),
        "agent_chains.yaml",
        "primary: local\n  fallbacks:\n    - local-small",
        "primary: local-small\n  fallbacks:\n    - local",
    );
    assert_eq!(s.wait_for("reload.applied")["version"], 3);
    assert_eq!(route(&s, "mary"), ["local-small", "local"]);

    // providers.yaml → new requests use the updated settings.
    edit(config.path(), "providers.yaml", "model: llama3.1:8b", "model: llama3.2:3b");
    assert_eq!(s.wait_for("reload.applied")["version"], 4);
    let effective = s.get_json("/config");
    assert_eq!(effective["version"], 4);
    assert_eq!(effective["config"]["providers"]["local"]["model"], "llama3.2:3b");

    let status = s.get_json("/status");
    for c in status["components"].as_array().unwrap() {
        assert_eq!(c["applied_version"], 4, "{status}");
    }
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
    // Every applied version is in the store.
    let history =
        crate::support::hotconf(&["history", "--snapshots", store.path().to_str().unwrap(), "--format", "json"], &[]);
    assert_eq!(history.status.code(), Some(0));
}

#[test]
fn invalid_changes_are_rejected_and_the_old_config_kept() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[]);
    let original = std::fs::read_to_string(config.path().join("rate_limits.yaml")).unwrap();
    let cases: &[(&str, &str, &str, &str)] = &[
        ("rate_limits.yaml", "rpm: 600", "rpm: 0", "not-positive"),
        ("agent_chains.yaml", "- local-small\n\nwinston", "- mistral\n\nwinston", "unknown-provider"),
        (
            "providers.yaml",
            "enabled: false\n  api_key_env: GROQ_API_KEY",
            "enabled: true\n  api_key_env: GROQ_API_KEY",
            "missing-env-var",
        ),
        ("rate_limits.yaml", "local:\n  rpm: 600", "local:\n  rpm: [600", "unclosed-flow"),
    ];
    for (file, from, to, code) in cases {
        let before = std::fs::read_to_string(config.path().join(file)).unwrap();
        edit(config.path(), file, from, to);
        let rejected = s.wait_until(|v| v["event"] == "reload.diagnostic" && v.get("code").is_some());
        assert_eq!(rejected["file"], *file, "{rejected}");
        assert_eq!(rejected["code"], *code, "{rejected}");
        assert!(rejected["line"].as_u64().unwrap() > 0, "{rejected}");
        let status = s.get_json("/status");
        assert_eq!(status["running_version"], 1);
        assert_eq!(status["failing"], true);
        assert_eq!(status["last_attempt"]["result"], "rejected");
        assert_eq!(acquire(&s, "local")["limits"]["rpm"], 600);
        assert_eq!(route(&s, "mary"), ["local", "local-small"]);
        // Reverting to the running content clears the failure.
        write_atomic(&config.path().join(file), &before);
        s.wait_until(|v| v["event"] == "reload.recovered");
        assert_eq!(s.get_json("/status")["failing"], false);
    }
    assert_eq!(std::fs::read_to_string(config.path().join("rate_limits.yaml")).unwrap(), original);
    let metrics = s.http("GET", "/metrics").1;
    assert!(metrics.contains("hotconf_config_reloads_total{result=\"rejected\"} 4"), "{metrics}");
    assert!(metrics.contains("hotconf_config_last_reload_successful 1"), "{metrics}");
}

#[test]
fn env_and_temp_files_are_ignored_and_a_burst_is_one_reload() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    // The production interval, so the burst (five edits 20 ms apart) is well inside two ticks even
    // on a loaded machine.
    let s = Service::try_start(config.path(), store.path(), &[], 250).expect("service started");
    std::fs::write(config.path().join(".env"), format!("GROQ_API_KEY={CANARY}\n")).unwrap();
    std::fs::write(config.path().join("rate_limits.yaml.swp"), "garbage").unwrap();
    std::fs::write(config.path().join("rate_limits.yaml~"), "garbage").unwrap();
    std::fs::write(config.path().join("notes.tmp"), "garbage").unwrap();
    // A burst of five edits 20 ms apart.
    for rpm in [601, 602, 603, 604, 605] {
        edit(config.path(), "rate_limits.yaml", &format!("rpm: {}", rpm - 1), &format!("rpm: {rpm}"));
        std::thread::sleep(Duration::from_millis(20));
    }
    let applied = s.wait_for("reload.applied");
    assert_eq!(applied["version"], 2, "{applied}");
    assert_eq!(applied["files"], serde_json::json!(["rate_limits.yaml"]));
    assert_eq!(acquire(&s, "local")["limits"]["rpm"], 605);
    // The next change is version 3: nothing else was applied in between.
    edit(config.path(), "agent_chains.yaml", "fallbacks: []", "fallbacks: [local-small]");
    assert_eq!(s.wait_for("reload.applied")["version"], 3);
    let (_, log) = s.stop();
    assert_no_canary(&log);
    assert!(!log.contains(".env"), "{log}");
}

#[test]
fn slack_alert_on_failure_and_resolve_on_recovery_without_leaking_the_webhook() {
    let (port, posts) = fake_slack();
    let webhook = format!("http://127.0.0.1:{port}/services/T000/B000/{CANARY}");
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[("SLACK_WEBHOOK_URL", &webhook)]);
    edit(config.path(), "rate_limits.yaml", "rpm: 600", "rpm: 0");
    let alert = posts.recv_timeout(DEADLINE).expect("an alert was posted");
    let alert: Value = serde_json::from_str(&alert).unwrap();
    let text = alert["text"].as_str().unwrap();
    assert!(text.contains("rate_limits.yaml"), "{text}");
    assert!(text.contains("local.rpm: must be a positive integer, got 0"), "{text}");
    s.wait_for("alert.sent");
    // The same failing content again (a touch) is not alerted twice; a fix is resolved once.
    edit(config.path(), "rate_limits.yaml", "rpm: 0", "rpm: 700");
    let resolve: Value = serde_json::from_str(&posts.recv_timeout(DEADLINE).unwrap()).unwrap();
    assert!(resolve["text"].as_str().unwrap().contains("resolved, config version 2 applied"), "{resolve}");
    let (_, log) = s.stop();
    assert!(posts.try_recv().is_err(), "no alert storm");
    assert_no_canary(&log);
    assert!(!log.contains(&format!("127.0.0.1:{port}")), "webhook URL logged:\n{log}");
}

#[test]
fn concurrent_requests_during_reloads_see_whole_versions() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    // Two files change per version: the production interval keeps each pair in one change set.
    let s = Service::try_start(config.path(), store.path(), &[], 250).expect("service started");
    let admin = s.admin;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..3)
        .map(|i| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (status, body) = if i % 2 == 0 {
                        http(admin, "GET", "/route/james", None)
                    } else {
                        http(admin, "POST", "/acquire/local?tokens=1", None)
                    };
                    // A denial (429) names the version it was judged by, too.
                    assert!(status == 200 || (i % 2 == 1 && status == 429), "{status} {body}");
                    let v: Value = serde_json::from_str(&body).unwrap();
                    let version = v["version"].as_u64().unwrap();
                    if i % 2 == 0 {
                        // Odd versions route james to local-small, even ones to local.
                        let expected = if version.is_multiple_of(2) { "local-small" } else { "local" };
                        assert_eq!(v["providers"][0], expected, "v{version}: {v}");
                    } else {
                        assert_eq!(v["limits"]["rpm"], 599 + version, "v{version}: {v}");
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    for version in 2..=6u64 {
        let primary = if version.is_multiple_of(2) { "local-small" } else { "local" };
        let chains = std::fs::read_to_string(config.path().join("agent_chains.yaml")).unwrap();
        let james = chains.find("james:").unwrap();
        let chains = format!("{}james:\n  primary: {primary}\n  fallbacks: []\n", &chains[..james]);
        let limits = std::fs::read_to_string(config.path().join("rate_limits.yaml")).unwrap();
        let limits = limits.replacen(&format!("rpm: {}", 598 + version), &format!("rpm: {}", 599 + version), 1);
        std::fs::write(config.path().join("agent_chains.yaml"), chains).unwrap();
        std::fs::write(config.path().join("rate_limits.yaml"), limits).unwrap();
        assert_eq!(s.wait_for("reload.applied")["version"], version);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        assert!(c.join().expect("a client saw an error or a torn version") > 0);
    }
}

#[test]
fn refuses_to_start_on_an_invalid_config() {
    let config = config_copy();
    edit(config.path(), "rate_limits.yaml", "rpm: 600", "rpm: 0");
    let store = tempfile::tempdir().unwrap();
    let Err((code, output)) = Service::try_start(config.path(), store.path(), &[], 50) else {
        panic!("started on an invalid config")
    };
    assert_eq!(code, 1);
    // Under --log-format json, as JSON events only: one per diagnostic, then the refusal.
    let events: Vec<Value> = output.lines().map(|l| serde_json::from_str(l).expect("only JSON lines")).collect();
    assert_eq!(events.len(), 2, "{output}");
    let d = &events[0];
    assert_eq!(d["event"], "start.invalid");
    assert_eq!(
        (&d["file"], &d["path"], &d["line"], &d["column"], &d["message"]),
        (
            &json!("rate_limits.yaml"),
            &json!("local.rpm"),
            &json!(6),
            &json!(8),
            &json!("must be a positive integer, got 0")
        ),
        "{d}"
    );
    assert_eq!((&events[1]["event"], &events[1]["problems"]), (&json!("start.refused"), &json!(1)));
    // As text, for a person, on stderr.
    let (c, st) = (config.path().to_str().unwrap(), store.path().to_str().unwrap());
    let out = crate::support::hotconf(&["run", "--config", c, "--snapshots", st, "--admin-addr", "off"], &[]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("error[not-positive]: must be a positive integer, got 0\n --> ")
            && stderr.contains("/rate_limits.yaml:6:8\n"),
        "{stderr}"
    );
    assert!(stderr.contains("refusing to start"), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn sighup_reloads_and_a_pin_makes_a_version_live() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[]);
    edit(config.path(), "rate_limits.yaml", "rpm: 600", "rpm: 650");
    assert_eq!(s.wait_for("reload.applied")["version"], 2);
    // Pin version 1 live without touching the files (a read-only ConfigMap).
    let (code, body) = s.http("POST", "/pin/1");
    assert_eq!(code, 200, "{body}");
    let pinned: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(pinned["result"], "applied");
    assert_eq!(pinned["version"], 3);
    assert_eq!(acquire(&s, "local")["limits"]["rpm"], 600);
    let status = s.get_json("/status");
    assert_eq!(status["pinned"], 1, "{status}\n{}", s.raw.lock().unwrap());
    s.wait_for("pin.applied");
    // An unknown version is refused (404) and changes nothing.
    let (code, _) = s.http("POST", "/pin/99");
    assert_eq!(code, 404);
    assert_eq!(acquire(&s, "local")["limits"]["rpm"], 600);
    // SIGHUP re-reads the files: the disk content (650) replaces the pin.
    s.signal("HUP");
    assert_eq!(s.wait_for("reload.applied")["version"], 4);
    assert_eq!(acquire(&s, "local")["limits"]["rpm"], 650);
    assert_eq!(s.get_json("/status")["pinned"], Value::Null);
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn admin_endpoint_rejects_bad_requests_and_checks_the_token() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[("HOTCONF_ADMIN_TOKEN", CANARY)]);
    assert_eq!(s.http("GET", "/healthz").0, 200);
    // A scraper needs no token; reading the status or changing anything does.
    let (code, metrics) = s.http("GET", "/metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("hotconf_config_running_version 1"), "{metrics}");
    for family in [
        "process_start_time_seconds",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "hotconf_build_info{version=",
        "hotconf_config_pinned 0",
    ] {
        assert!(metrics.lines().any(|l| l.starts_with(family)), "no {family} in\n{metrics}");
    }
    assert!(!metrics.contains(CANARY));
    assert_eq!(s.http("GET", "/status").0, 401);
    assert_eq!(s.http("POST", "/reload").0, 401);
    assert_eq!(s.http("POST", "/pin/1").0, 401);
    assert_eq!(http(s.admin, "GET", "/status", Some("wrong")).0, 401);
    assert_eq!(http(s.admin, "GET", "/status", Some(CANARY)).0, 200);
    assert_eq!(http(s.admin, "GET", "/nope", Some(CANARY)).0, 404);
    assert_eq!(http(s.admin, "DELETE", "/status", Some(CANARY)).0, 405);
    assert_eq!(http(s.admin, "GET", "/route/ghost", Some(CANARY)).0, 404);
    assert_eq!(http(s.admin, "POST", "/acquire/local?tokens=x", Some(CANARY)).0, 400);
    // Garbage, an oversized head, and a client that sends nothing: errors, and the server lives on.
    let mut raw = std::net::TcpStream::connect(s.admin).unwrap();
    raw.write_all(b"\x00\x01garbage\r\n\r\n").unwrap();
    let mut out = String::new();
    raw.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    let mut raw = std::net::TcpStream::connect(s.admin).unwrap();
    let _ = raw.write_all(format!("GET /status HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(20_000)).as_bytes());
    let mut out = String::new();
    let _ = raw.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 431"), "{out}");
    let _silent = std::net::TcpStream::connect(s.admin).unwrap();
    assert_eq!(http(s.admin, "GET", "/healthz", None).0, 200);
    let (_, log) = s.stop();
    assert_no_canary(&log);
}

#[test]
fn cli_restore_while_running_is_applied_and_recorded_as_a_restore() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[]);
    edit(config.path(), "rate_limits.yaml", "rpm: 600", "rpm: 650");
    assert_eq!(s.wait_for("reload.applied")["version"], 2);
    let (dir, snaps) = (config.path().to_str().unwrap(), store.path().to_str().unwrap());
    let out = crate::support::hotconf(&["restore", "1", "--config", dir, "--snapshots", snaps], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let applied = s.wait_for("reload.applied");
    assert_eq!(applied["version"], 3);
    assert_eq!(applied["origin"], "restore of v1");
    assert!(diff_text(&applied).contains("rate_limits.local.rpm: 650 → 600"), "{applied}");
    assert_eq!(acquire(&s, "local")["limits"]["rpm"], 600);
    let history = crate::support::hotconf(&["history", "--snapshots", snaps, "--format", "json"], &[]);
    let last: Value = serde_json::from_str(String::from_utf8(history.stdout).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!(last["version"], 3);
    assert_eq!(last["origin"], serde_json::json!({"kind": "restore", "of": 1}));
    assert_eq!(last["same_as"], 1);
}

#[test]
fn an_api_key_from_the_environment_never_leaves_the_process() {
    let config = config_copy();
    edit(
        config.path(),
        "providers.yaml",
        "enabled: false\n  api_key_env: GROQ_API_KEY",
        "enabled: true\n  api_key_env: GROQ_API_KEY",
    );
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[("GROQ_API_KEY", CANARY)]);
    edit(config.path(), "agent_chains.yaml", "fallbacks: []", "fallbacks: [groq]");
    assert_eq!(s.wait_for("reload.applied")["version"], 2);
    let mut seen = String::new();
    for (method, path) in [
        ("GET", "/config"),
        ("GET", "/status"),
        ("GET", "/metrics"),
        ("GET", "/route/james"),
        ("POST", "/acquire/groq?tokens=5"),
    ] {
        let (code, body) = s.http(method, path);
        assert_eq!(code, 200, "{method} {path}: {body}");
        seen.push_str(&body);
    }
    assert!(seen.contains("GROQ_API_KEY"), "the variable's name is shown: {seen}");
    assert_eq!(route(&s, "james"), ["local", "groq"]);
    // A rejected change mentioning the key's variable, and its diagnostics.
    edit(config.path(), "providers.yaml", "api_key_env: GROQ_API_KEY", "api_key_env: GROQ_API_KEY\n  api_key: inline");
    s.wait_for("reload.rejected");
    let (_, log) = s.stop();
    assert_no_canary(&seen);
    assert_no_canary(&log);
    for entry in crate::support::files_under(store.path(), None) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(CANARY), "{} holds the key", entry.display());
    }
}

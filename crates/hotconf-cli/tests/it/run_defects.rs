//! Field defects of `hotconf run`, end to end through the real binary (issue 8, part 6): a pin
//! that survives a restart, a taken admin port that stores nothing, text logs a file name cannot
//! forge, and `--stable-ticks` for writers that pause mid-write.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use hotconf::store::{SnapshotStore, StoreConfig};
use hotconf::testing::{Clock, FakeClock, PollCore, PollerConfig, RealFs, WatchEvent};
use hotconf::Sources;
use serde_json::Value;

use crate::service::{edit, Service, TextService};
use crate::support::{config_copy, hotconf};

fn rpm(service: &Service, provider: &str) -> Value {
    let (status, body) = service.http("POST", &format!("/acquire/{provider}"));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["limits"]["rpm"].clone()
}

fn versions(store: &Path) -> Vec<u64> {
    SnapshotStore::open(store, StoreConfig::default()).unwrap().list().unwrap().iter().map(|m| m.version).collect()
}

/// A pin made with `POST /rollback/N` on a read-only-style deployment survives a restart while
/// the directory holds what it held at pin time, and is dropped once the files changed.
#[test]
fn a_pin_survives_a_restart_until_the_files_change() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[]);
    edit(config.path(), "rate_limits.yaml", "rpm: 600", "rpm: 650");
    assert_eq!(s.wait_for("reload.applied")["version"], 2);
    let (code, body) = s.http("POST", "/pin/1");
    assert_eq!(code, 200, "{body}");
    assert_eq!(rpm(&s, "local"), 600);
    assert_eq!(s.stop().0, Some(0));

    // Restarted on the unchanged directory (650): the pin holds, nothing new is stored.
    let s = Service::start(config.path(), store.path(), &[]);
    let status = s.get_json("/status");
    assert_eq!((status["running_version"].as_u64(), status["pinned"].as_u64()), (Some(3), Some(1)), "{status}");
    assert_eq!(rpm(&s, "local"), 600);
    assert_eq!(s.get_json("/config")["version"], 3);
    assert!(s.raw.lock().unwrap().contains(r#""event":"pin.kept""#));
    assert_eq!(versions(store.path()), [1, 2, 3]);
    // A later edit still applies, and ends the pin.
    edit(config.path(), "rate_limits.yaml", "rpm: 650", "rpm: 700");
    assert_eq!(s.wait_for("reload.applied")["version"], 4);
    assert_eq!(s.get_json("/status")["pinned"], Value::Null);
    assert_eq!(s.stop().0, Some(0));

    // Pinned again, then the files change while the service is down: the pin is dropped.
    let s = Service::start(config.path(), store.path(), &[]);
    assert_eq!(s.http("POST", "/pin/1").0, 200);
    assert_eq!(s.get_json("/status")["pinned"], 1);
    assert_eq!(s.stop().0, Some(0));
    edit(config.path(), "rate_limits.yaml", "rpm: 700", "rpm: 750");
    let s = Service::start(config.path(), store.path(), &[]);
    let status = s.get_json("/status");
    assert_eq!(status["pinned"], Value::Null, "{status}");
    assert_eq!(rpm(&s, "local"), 750);
    assert!(s.raw.lock().unwrap().contains("the config directory changed since the pin"));
    assert_eq!(s.stop().0, Some(0));
    assert!(!store.path().join("pin.json").exists());
}

/// The admin port is bound before anything is stored: a taken port exits 3 and leaves the store
/// as it was.
#[test]
fn a_taken_admin_port_exits_3_and_stores_nothing() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let (c, st) = (config.path().to_str().unwrap(), store.path().to_str().unwrap());
    let out = hotconf(&["run", "--config", c, "--snapshots", st, "--admin-addr", &addr], &[]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(&format!("error: binding the admin endpoint {addr}: ")), "{stderr}");
    assert_eq!(std::fs::read_dir(store.path()).unwrap().count(), 0, "the store was touched");
    drop(taken);
}

/// A config file whose name holds a newline cannot forge a text log line: every value with a
/// control character is quoted and escaped (logfmt).
#[test]
fn a_newline_in_a_file_name_is_escaped_in_text_logs() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let mut service = TextService::start(config.path(), store.path(), "off");
    service.wait_line("event=watcher.started", |l| l.contains("event=watcher.started"));
    let forged = "ts=FORGED level=INFO event=reload.applied version=99";
    std::fs::write(config.path().join(format!("evil\n{forged}\r.yaml")), "a: 1\n").unwrap();
    service.wait_line("event=reload.rejected", |l| l.contains(" event=reload.rejected "));
    let seen = std::mem::take(&mut service.seen);
    drop(service);

    for line in &seen {
        assert!(!line.starts_with("ts=FORGED"), "a forged line:\n{}", seen.join("\n"));
    }
    let detected: Vec<&String> = seen.iter().filter(|l| l.contains("event=change.detected")).collect();
    assert_eq!(detected.len(), 1, "{seen:#?}");
    assert!(
        detected[0].ends_with(&format!(
            r#" event=change.detected message="a config file changed" file="evil\n{forged}\r.yaml" change=created"#
        )),
        "{}",
        detected[0]
    );
    assert!(
        seen.iter().any(|l| l.contains(" event=reload.diagnostic ") && l.contains(r#" file="evil\nts=FORGED"#)),
        "{seen:#?}"
    );
}

/// A writer that truncates a file, writes a valid prefix, pauses, then finishes: by hand, on real
/// files, with an injected clock. With the default two stable ticks a pause of two ticks lets the
/// prefix through; `stable_ticks` longer than the pause holds it back and emits only the whole file.
#[test]
fn stable_ticks_hold_a_slow_writers_prefix_back() {
    const PREFIX: &str = "local:\n  rpm: 600\n";
    const WHOLE: &str = "local:\n  rpm: 600\n  burst: 20\n  tokens_per_minute: 100000\n";
    // (stable ticks, ticks the writer pauses after the prefix, contents emitted in order)
    let cases: &[(u32, usize, &[&str])] = &[
        (2, 1, &[WHOLE]),
        (2, 2, &[PREFIX, WHOLE]),
        (4, 3, &[WHOLE]),
        (4, 4, &[PREFIX, WHOLE]),
        (20, 19, &[WHOLE]),
        // Out of range is clamped: 1 acts as 2, 100 as 20.
        (1, 2, &[PREFIX, WHOLE]),
        (100, 19, &[WHOLE]),
    ];
    for &(stable_ticks, pause, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rate_limits.yaml");
        std::fs::write(&file, "local:\n  rpm: 1\n  burst: 1\n  tokens_per_minute: 1\n").unwrap();
        let baseline = Sources::read_dir(dir.path(), Sources::DEFAULT_MAX_FILE_BYTES).unwrap();
        let config = PollerConfig::new(dir.path()).with_baseline(baseline).with_stable_ticks(stable_ticks);
        let mut core = PollCore::new(&config);
        let clock = FakeClock::new();
        let mut emitted = Vec::new();
        let mut tick = |n: usize| {
            for _ in 0..n {
                for event in core.tick(&RealFs, clock.now()) {
                    // A change's first sighting is offered to be judged ahead; only a stable one is applied.
                    let set = match event {
                        WatchEvent::Changed(set) => set,
                        WatchEvent::Settling(_) => continue,
                        event => panic!("unexpected {event:?}"),
                    };
                    let bytes = set.sources.get("rate_limits.yaml").unwrap().bytes().unwrap().to_vec();
                    emitted.push(String::from_utf8(bytes).unwrap());
                }
                clock.advance(Duration::from_millis(250));
            }
        };
        std::fs::write(&file, PREFIX).unwrap(); // truncate + write the prefix
        tick(pause);
        std::fs::write(&file, WHOLE).unwrap(); // finish
        tick(25);
        assert_eq!(emitted, expected, "stable_ticks {stable_ticks}, pause {pause} ticks");
    }
}

/// `--stable-ticks` through the real binary: a writer pausing for about three polls mid-write is
/// applied once, whole, with `--stable-ticks 16` (a wide margin over the pause on a busy machine); values outside 2..=20 are a usage error.
#[test]
fn stable_ticks_flag_applies_a_slow_write_once() {
    for bad in ["1", "21", "x"] {
        let out = hotconf(&["run", "--stable-ticks", bad, "--admin-addr", "off"], &[]);
        assert_eq!(out.status.code(), Some(2), "--stable-ticks {bad}");
    }
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start_with_args(config.path(), store.path(), &[], &["--stable-ticks", "16"]);
    let path = config.path().join("rate_limits.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let cut = text.find("  burst").unwrap();
    // Truncate and write a prefix that is valid YAML but drops `local`'s other limits …
    std::fs::write(&path, format!("{}\n", &text[..cut])).unwrap();
    std::thread::sleep(Duration::from_millis(150)); // the writer's pause: 3 polls of 50 ms
    std::fs::write(&path, text.replacen("rpm: 600", "rpm: 640", 1)).unwrap();
    let applied = s.wait_for("reload.applied");
    assert_eq!(applied["version"], 2);
    assert_eq!(rpm(&s, "local"), 640);
    let (code, log) = s.stop();
    assert_eq!(code, Some(0));
    assert!(!log.contains("reload.rejected"), "the prefix was seen as a change:\n{log}");
    assert_eq!(versions(store.path()), [1, 2]);
}

//! The snapshot store through the library: scripted sequences of config changes and the audit
//! records they leave, snapshotted as a team would in CI (timestamps redacted), and the canary
//! secret that must never reach a diff or the audit log.
//!
//! Copy `check_audit` into your own CI: script the change your pull request makes, and review the
//! audit records it produces as an insta snapshot.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hotconf::store::{semantic_diff, AuditEvent, Commit, SnapshotStore, StoreConfig};
use hotconf::Origin;
use hotconf::{MapEnv, SourceFile, Sources};
use hotconf_gateway::validate_config;

use crate::support::{assert_no_canary, shipped_config, CANARY};

fn fixed_clock() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_776_000_000)
}

/// The shipped config with `edits` applied (`(file, from, to)` text replacements).
fn shipped_with(edits: &[(&str, &str, &str)]) -> Sources {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(shipped_config()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_str().unwrap().to_owned();
        let mut text = std::fs::read_to_string(entry.path()).unwrap();
        for (file, from, to) in edits {
            if *file == name {
                assert!(text.contains(from), "{from:?} not in {name}");
                text = text.replacen(from, to, 1);
            }
        }
        files.push(SourceFile::new(name, text));
    }
    Sources::from_files(files)
}

/// One attempt, as the service makes it: validate, then store and audit, or audit the rejection.
fn attempt(store: &SnapshotStore, sources: Sources, origin: Origin) {
    let env = MapEnv::new().with("GROQ_API_KEY", CANARY);
    match validate_config(sources.clone(), &env) {
        Ok(valid) => {
            store.commit(valid.sources(), origin).unwrap();
        }
        Err(diagnostics) => store.record(AuditEvent::rejected(&sources, &diagnostics)).unwrap(),
    }
}

/// The audit log as the snapshot shows it: one record a line, timestamps redacted.
fn audit_text(store: &SnapshotStore) -> String {
    let text = std::fs::read_to_string(store.audit().path()).unwrap();
    assert_no_canary(&text);
    text
}

fn check_audit(name: &str, store: &SnapshotStore) {
    // Timestamps change every run; bundle hashes change with any byte of the files (comments too).
    let filters = vec![
        (r#""ts":"[0-9T:Z-]+""#, r#""ts":"[ts]""#),
        (r#""bundle_hash":"[0-9a-f]{64}""#, r#""bundle_hash":"[hash]""#),
    ];
    insta::with_settings!({filters => filters}, {
        insta::assert_snapshot!(name, audit_text(store));
    });
}

fn open(dir: &Path) -> SnapshotStore {
    SnapshotStore::open(dir, StoreConfig::default().with_clock(fixed_clock)).unwrap()
}

#[test]
fn audit_of_a_day_of_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    attempt(&store, shipped_with(&[]), Origin::Startup);
    // A restart on the same files stores nothing and audits nothing.
    attempt(&store, shipped_with(&[]), Origin::Startup);
    attempt(&store, shipped_with(&[("rate_limits.yaml", "rpm: 30", "rpm: 60")]), Origin::Change);
    attempt(&store, shipped_with(&[("rate_limits.yaml", "rpm: 600", "rpm: 0")]), Origin::Change);
    attempt(
        &store,
        shipped_with(&[
            ("rate_limits.yaml", "rpm: 30", "rpm: 60"),
            ("agent_chains.yaml", "fallbacks:\n    - local-small", "fallbacks: []"),
            ("providers.yaml", "groq:\n  enabled: false", "groq:\n  enabled: true"),
        ]),
        Origin::Change,
    );
    // `hotconf restore 1` wrote version 1 back; the service stores it as a restore of version 1.
    let v1 = store.read(1).unwrap();
    attempt(&store, v1.sources().clone(), Origin::Restore { of: 1 });

    let versions: Vec<(u64, Origin, Option<u64>)> =
        store.list().unwrap().iter().map(|m| (m.version, m.origin, m.same_as)).collect();
    assert_eq!(
        versions,
        [
            (1, Origin::Startup, None),
            (2, Origin::Change, None),
            (3, Origin::Change, None),
            (4, Origin::Restore { of: 1 }, Some(1))
        ]
    );
    check_audit("audit_of_a_day_of_changes", &store);
    insta::assert_snapshot!(
        "diff_v1_v3",
        semantic_diff(store.read(1).unwrap().sources(), store.read(3).unwrap().sources()).to_string()
    );
}

#[test]
fn audit_records_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    attempt(&store, shipped_with(&[]), Origin::Startup);
    attempt(&store, shipped_with(&[("rate_limits.yaml", "burst: 5", "burst: 0")]), Origin::Change);
    let records = store.audit().read_all().unwrap();
    assert_eq!(records.len(), 2);
    assert!(matches!(records[0].event, AuditEvent::Accepted { version: 1, origin: Origin::Startup, .. }));
    let AuditEvent::Rejected { diagnostics, .. } = &records[1].event else { panic!("{records:?}") };
    assert_eq!(diagnostics[0].code, "not-positive");
    // A line cut short by a crash during an append is skipped.
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(store.audit().path()).unwrap().write_all(b"{\"ts\":\"20").unwrap();
    assert_eq!(store.audit().read_all().unwrap().len(), 2);
}

/// Files holding the canary in every place a secret hides: inline under a secret key, in a URL's
/// credentials and query, in a Slack webhook URL.
fn secret_bundle(round: u32) -> Sources {
    Sources::from_files([
        SourceFile::new(
            "providers.yaml",
            format!(
                "groq:\n  api_key: {CANARY}-{round}\n  api_key_env: GROQ_API_KEY\n  base_url: https://user:{CANARY}{round}@api.example.com/v1?key={CANARY}\n  timeout_seconds: {}\n",
                30 + round
            ),
        ),
        SourceFile::new(
            "alerts.yaml",
            format!("oncall:\n  notify: https://hooks.slack.com/services/T000/B000/{CANARY}{round}\n  token: {CANARY}\n  headers: {{Authorization: Bearer {CANARY}{round}}}\n"),
        ),
        SourceFile::new("rate_limits.yaml", format!("groq:\n  rpm: {}\n", 10 + round)),
    ])
}

#[test]
fn canary_secret_never_reaches_diff_manifest_or_audit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for round in 0..3 {
        assert!(matches!(store.commit(&secret_bundle(round), Origin::Change).unwrap(), Commit::Created(_)));
    }
    let bad = Sources::from_files([SourceFile::new("providers.yaml", format!("groq:\n  api_key: {CANARY}\n"))]);
    let diagnostics = validate_config(bad.clone(), &MapEnv::new()).unwrap_err();
    store.record(AuditEvent::rejected(&bad, &diagnostics)).unwrap();

    let diff = semantic_diff(&secret_bundle(0), &secret_bundle(1));
    let text = diff.to_string();
    assert_no_canary(&text);
    assert_no_canary(&serde_json::to_string(&diff).unwrap());
    // The changes are still listed, with the values redacted and the env var name shown.
    assert!(text.contains("providers.groq.api_key: <redacted> → <redacted>"), "{text}");
    assert!(text.contains("https://<redacted>@api.example.com/v1?key=<redacted> → "), "{text}");
    assert!(text.contains("alerts.oncall.notify: <redacted> → <redacted>"), "{text}");
    let env_change = semantic_diff(
        &secret_bundle(0),
        &Sources::from_files([SourceFile::new("providers.yaml", "groq:\n  api_key_env: GROQ_KEY\n")]),
    );
    assert!(env_change.to_string().contains("providers.groq.api_key_env: GROQ_API_KEY → GROQ_KEY"));

    // The stored config files under `files/` are the operator's own bytes; everything else is ours.
    let files = crate::support::files_under(dir.path(), Some("files"));
    assert!(files.iter().any(|p| p.ends_with("audit.jsonl")));
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        assert_no_canary(&String::from_utf8_lossy(&bytes));
    }
    // The stored files keep the operator's exact bytes.
    assert_eq!(store.read(3).unwrap().sources(), &secret_bundle(2));
}

const CHILD_STORE: &str = "HOTCONF_TEST_CHILD_STORE";

/// The writer `kill_dash_nine_leaves_a_clean_store` kills: commits new versions in a loop when
/// started by that test with the store's path in its environment; does nothing otherwise.
#[test]
fn child_writer_for_kill_test() {
    let Some(dir) = std::env::var_os(CHILD_STORE) else { return };
    let store = SnapshotStore::open(Path::new(&dir), StoreConfig::default().with_retention(5)).unwrap();
    for i in 0u64.. {
        let sources = Sources::from_files([
            SourceFile::new("a.yaml", format!("n: {i}\n{}", "# padding to make the write take a while\n".repeat(200))),
            SourceFile::new("b.yaml", format!("pid: {}\n", std::process::id())),
        ]);
        store.commit(&sources, Origin::Change).unwrap();
    }
}

#[test]
fn kill_dash_nine_leaves_a_clean_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut max_seen = 0;
    for round in 0..3 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "snapshot_store::child_writer_for_kill_test", "--test-threads=1"])
            .env(CHILD_STORE, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until it has written a few versions, with a generous deadline, then SIGKILL it.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let store = SnapshotStore::open(dir.path(), StoreConfig::default()).unwrap();
        while store.list().unwrap().last().map_or(0, |m| m.version) < max_seen + 3 {
            assert!(std::time::Instant::now() < deadline, "round {round}: the child wrote nothing");
            std::thread::yield_now();
        }
        child.kill().unwrap();
        child.wait().unwrap();

        let store = SnapshotStore::open(dir.path(), StoreConfig::default()).unwrap();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(!name.starts_with(".tmp-") && !name.starts_with(".trash-"), "{name} left after open");
        }
        let versions: Vec<u64> = store.list().unwrap().iter().map(|m| m.version).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]));
        for &v in &versions {
            store.read(v).unwrap_or_else(|e| panic!("round {round}: version {v} half written: {e}"));
        }
        assert!(*versions.last().unwrap() > max_seen);
        max_seen = *versions.last().unwrap();
        store.audit().read_all().unwrap();
    }
}

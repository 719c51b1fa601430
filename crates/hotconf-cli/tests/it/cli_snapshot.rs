//! `hotconf history`, `show`, `diff` and `rollback` through the real binary, on stores written by
//! the library as a running service writes them: output, exit codes, refusals that write nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hotconf::store::{AuditEvent, Commit, SnapshotStore, StoreConfig};
use hotconf::Origin;
use hotconf::{SourceFile, Sources};

use crate::support::{assert_no_canary, config_copy, hotconf, CANARY};

fn fixed_clock() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_776_000_000)
}

struct Fixture {
    config: tempfile::TempDir,
    snapshots: tempfile::TempDir,
}

impl Fixture {
    fn config(&self) -> &str {
        self.config.path().to_str().unwrap()
    }

    fn snapshots(&self) -> &str {
        self.snapshots.path().to_str().unwrap()
    }

    fn store(&self) -> SnapshotStore {
        SnapshotStore::open(self.snapshots.path(), StoreConfig::default().with_clock(fixed_clock)).unwrap()
    }

    fn read_config(&self) -> Sources {
        Sources::read_dir(self.config.path(), Sources::DEFAULT_MAX_FILE_BYTES).unwrap()
    }

    /// Edits a config file (text replacement) and stores the result, as the service would.
    fn change(&self, file: &str, from: &str, to: &str) {
        let path = self.config.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from));
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        assert!(matches!(self.store().commit(&self.read_config(), Origin::Change).unwrap(), Commit::Created(_)));
    }

    fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--snapshots", self.snapshots()]);
        let out = hotconf(&all, &[("GEMINI_API_KEY", CANARY)]);
        let (stdout, stderr) =
            (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8(out.stderr).unwrap());
        assert_no_canary(&stdout);
        assert_no_canary(&stderr);
        (out.status.code(), stdout, stderr)
    }
}

/// A store with three versions of the shipped config: startup, a rate limit, a chain change.
fn fixture() -> Fixture {
    let f = Fixture { config: config_copy(), snapshots: tempfile::tempdir().unwrap() };
    f.store().commit(&f.read_config(), Origin::Startup).unwrap();
    f.change("rate_limits.yaml", "rpm: 600", "rpm: 300");
    f.change("agent_chains.yaml", "fallbacks:\n    - local-small", "fallbacks: []");
    f.store().set_running(3).unwrap();
    f
}

#[test]
fn history_text_and_json() {
    let f = fixture();
    let (code, stdout, _) = f.run(&["history"]);
    assert_eq!(code, Some(0));
    let filters = vec![(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[time]              "), (r"[0-9a-f]{12}\n", "[hash]\n")];
    insta::with_settings!({filters => filters}, {
        insta::assert_snapshot!("history_text", stdout);
    });
    let (code, stdout, _) = f.run(&["history", "--format", "json"]);
    assert_eq!(code, Some(0));
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["version"], 3);
    assert_eq!(lines[2]["running"], true);
    assert_eq!(lines[1]["changed_files"], serde_json::json!(["rate_limits.yaml"]));
    assert_eq!(lines[0]["format"], 1);
}

#[test]
fn show_manifest_and_exact_file() {
    let f = fixture();
    let (code, stdout, _) = f.run(&["show", "2"]);
    assert_eq!(code, Some(0));
    let manifest: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(manifest["origin"], serde_json::json!({"kind": "change"}));
    assert_eq!(manifest["parent"], 1);
    let out = hotconf(&["show", "2", "rate_limits.yaml", "--snapshots", f.snapshots()], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, f.store().read(2).unwrap().sources().get("rate_limits.yaml").unwrap().bytes().unwrap());
    let (code, _, stderr) = f.run(&["show", "2", "nope.yaml"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("version 2 has no file nope.yaml"), "{stderr}");
}

#[test]
fn diff_between_versions_and_against_a_directory() {
    let f = fixture();
    let (code, stdout, _) = f.run(&["diff", "1", "3"]);
    assert_eq!(code, Some(0));
    assert_eq!(stdout, "agent_chains.mary.fallbacks: [local-small] → []\nrate_limits.local.rpm: 600 → 300\n");
    let (_, stdout, _) = f.run(&["diff", "3", "3"]);
    assert_eq!(stdout, "no changes\n");
    let (_, stdout, _) = f.run(&["diff", "1", "2", "--format", "json"]);
    assert_eq!(
        stdout,
        "{\"file\":\"rate_limits.yaml\",\"path\":\"local.rpm\",\"change\":\"modified\",\"old\":600,\"new\":300}\n"
    );

    // A candidate directory, as a CI job plans a pull request.
    let candidate = config_copy();
    let path = candidate.path().join("rate_limits.yaml");
    std::fs::write(&path, std::fs::read_to_string(&path).unwrap().replace("burst: 20", "burst: 25")).unwrap();
    let (code, stdout, _) = f.run(&["diff", "3", "--against", candidate.path().to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert_eq!(
        stdout,
        "agent_chains.mary.fallbacks: [] → [local-small]\nrate_limits.local.rpm: 300 → 600\nrate_limits.local.burst: 20 → 25\n"
    );
    // An invalid candidate: every diagnostic, exit 1, no diff.
    std::fs::write(&path, "local:\n  rpm: 0\n").unwrap();
    let (code, stdout, stderr) = f.run(&["diff", "3", "--against", candidate.path().to_str().unwrap()]);
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert!(
        stderr.contains("error[not-positive]: must be a positive integer, got 0\n --> ")
            && stderr.contains("/rate_limits.yaml:2:8\n"),
        "{stderr}"
    );

    let (code, _, stderr) = f.run(&["diff", "1", "9"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("version 9 does not exist"), "{stderr}");
    let out = hotconf(&["diff", "1"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn restore_dry_run_then_apply_announces_the_version_to_the_service() {
    let f = fixture();
    let before = f.read_config();
    let (code, stdout, _) = f.run(&["restore", "1", "--config", f.config(), "--dry-run"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        stdout,
        format!(
            "dry run: restoring version 1 into {} would change:\nagent_chains.mary.fallbacks: [] → [local-small]\nrate_limits.local.rpm: 300 → 600\nnothing written\n",
            f.config()
        )
    );
    assert_eq!(f.read_config(), before, "a dry run wrote");
    assert_eq!(f.store().restore_intent().unwrap(), None);

    let (code, stdout, _) = f.run(&["restore", "1", "--config", f.config()]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.starts_with(&format!(
        "restored version 1 into {}: agent_chains.yaml, rate_limits.yaml written\n",
        f.config()
    )));
    let store = f.store();
    assert_eq!(f.read_config().bundle_hash(), store.read(1).unwrap().sources().bundle_hash());
    // The intent announces version 1's content, so the running service stores the change as a
    // restore of 1 (through `hotconf run`: run.rs, `cli_restore_while_running_…`).
    let intent = store.restore_intent().unwrap().expect("an intent");
    assert_eq!((intent.version, intent.bundle_hash), (1, store.read(1).unwrap().manifest().bundle_hash.clone()));
    let records = store.audit().read_all().unwrap();
    let events: Vec<&str> = records
        .iter()
        .map(|r| match &r.event {
            AuditEvent::Accepted { .. } => "accepted",
            AuditEvent::Restored { .. } => "restored",
            _ => "other",
        })
        .collect();
    assert_eq!(events, ["accepted", "accepted", "accepted", "restored"]);
    // Restoring what the directory holds writes nothing.
    let (code, stdout, _) = f.run(&["restore", "1", "--config", f.config()]);
    assert_eq!((code, stdout), (Some(0), format!("{} already holds version 1; nothing written\n", f.config())));
}

fn assert_refused(f: &Fixture, args: &[&str], message: &str) {
    let before = f.read_config();
    let audit_before = std::fs::read(f.snapshots.path().join("audit.jsonl")).unwrap();
    let (code, stdout, stderr) = f.run(args);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains(message), "{stderr}");
    assert!(stderr.contains("nothing written"), "{stderr}");
    assert_eq!(f.read_config(), before, "a refused restore wrote");
    assert_eq!(std::fs::read(f.snapshots.path().join("audit.jsonl")).unwrap(), audit_before);
    assert_eq!(f.store().restore_intent().unwrap(), None);
}

#[test]
fn restore_refusals_write_nothing() {
    let f = fixture();
    assert_refused(&f, &["restore", "7", "--config", f.config()], "version 7 does not exist");

    // Version 2's file damaged on disk (truncated): reported, never restored.
    let file = f.snapshots.path().join("v000002/files/rate_limits.yaml");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(&f, &["restore", "2", "--config", f.config()], "version 2 is damaged: file rate_limits.yaml is");
    let (code, _, stderr) = f.run(&["show", "2"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("damaged"), "{stderr}");
    let (code, stdout, _) = f.run(&["history"]);
    assert_eq!(code, Some(0), "history lists damaged versions and exits 0");
    let row = stdout.lines().find(|l| l.trim_start().starts_with("2 ")).unwrap();
    assert!(row.contains("damaged  version 2 is damaged: file rate_limits.yaml is"), "{stdout}");

    // A version that needs GROQ_API_KEY, which today's environment lacks.
    f.change("providers.yaml", "groq:\n  enabled: false", "groq:\n  enabled: true");
    let store = f.store();
    assert!(
        hotconf_gateway::validate_config(store.read(4).unwrap().sources().clone(), &hotconf::MapEnv::new()).is_err()
    );
    f.change("providers.yaml", "groq:\n  enabled: true", "groq:\n  enabled: false");
    assert_refused(
        &f,
        &["restore", "4", "--config", f.config()],
        "error[missing-env-var]: environment variable GROQ_API_KEY is not set or empty\n  --> providers.yaml:22:16",
    );
}

/// A version whose manifest is intact but whose file bytes were altered (same size, one byte
/// flipped) is listed as damaged, as `show`, `diff` and `rollback` would refuse it.
#[test]
fn history_marks_a_version_with_corrupt_files_damaged() {
    let f = fixture();
    let file = f.snapshots.path().join("v000002/files/rate_limits.yaml");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    let (code, stdout, _) = f.run(&["history"]);
    assert_eq!(code, Some(0));
    let filters = vec![(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[time]              "), (r"[0-9a-f]{12}\n", "[hash]\n")];
    insta::with_settings!({filters => filters}, {
        insta::assert_snapshot!("history_text_damaged", stdout);
    });
    let (code, stdout, _) = f.run(&["history", "--format", "json"]);
    assert_eq!(code, Some(0));
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[1]["version"], 2);
    assert_eq!(lines[1]["damaged"], "version 2 is damaged: file rate_limits.yaml does not match its blake3 hash");
    assert_eq!((lines[0]["running"].as_bool(), lines[2]["running"].as_bool()), (Some(false), Some(true)));
}

#[test]
fn missing_store_is_an_operational_failure() {
    let out = hotconf(&["history", "--snapshots", "/nonexistent/hotconf-store"], &[]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: no snapshot store at /nonexistent/hotconf-store\n  help: pass the service's store with --snapshots DIR\n"
    );
}

/// A store written by an older run: a format-1 manifest written by hand, without the fields
/// added later in format 1, and a version from a newer hotconf.
#[test]
fn reads_a_store_written_by_an_older_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_copy();
    let sources = Sources::read_dir(config.path(), Sources::DEFAULT_MAX_FILE_BYTES).unwrap();
    let vdir = dir.path().join("v000001");
    std::fs::create_dir_all(vdir.join("files")).unwrap();
    let mut files = Vec::new();
    for file in sources.files() {
        let bytes = file.bytes().unwrap();
        std::fs::write(vdir.join("files").join(file.name()), bytes).unwrap();
        files.push(serde_json::json!({"name": file.name(), "blake3": blake3::hash(bytes).to_hex().as_str(), "size": bytes.len()}));
    }
    let manifest = serde_json::json!({
        "format": 1, "version": 1, "created_at": "2026-01-02T03:04:05Z", "origin": {"kind": "startup"},
        "bundle_hash": sources.bundle_hash().to_hex().as_str(), "files": files,
    });
    std::fs::write(vdir.join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::create_dir_all(dir.path().join("v000002")).unwrap();
    std::fs::write(dir.path().join("v000002/manifest.json"), r#"{"format":2,"version":2}"#).unwrap();

    let snapshots = dir.path().to_str().unwrap();
    let out = hotconf(&["history", "--snapshots", snapshots], &[]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("  1  2026-01-02T03:04:05Z  startup"), "{stdout}");
    assert!(stdout.contains("version 2 uses store format 2; this hotconf reads format 1"), "{stdout}");
    let out = hotconf(&["show", "1", "providers.yaml", "--snapshots", snapshots], &[]);
    assert_eq!(out.stdout, sources.get("providers.yaml").unwrap().bytes().unwrap());
    let out = hotconf(&["diff", "1", "--against", config.path().to_str().unwrap(), "--snapshots", snapshots], &[]);
    assert_eq!((out.status.code(), String::from_utf8(out.stdout).unwrap().as_str()), (Some(0), "no changes\n"));
    let out = hotconf(&["show", "2", "--snapshots", snapshots], &[]);
    assert_eq!(out.status.code(), Some(1));
    // A new version continues the numbering after the newer-format one.
    let store = SnapshotStore::open(dir.path(), StoreConfig::default()).unwrap();
    let changed = Sources::from_files([SourceFile::new("x.yaml", "a: 1\n")]);
    assert_eq!(store.commit(&changed, Origin::Manual).unwrap().version(), 3);
}

//! The commands as a CI job uses them, through the real binary: which stream carries what,
//! `diff --exit-code` and typed JSON values, `--no-env` / `--env-file`, `--format github`,
//! read-only store commands, `v`-prefixed versions, `rollback --wait`, usage errors.

use std::path::Path;
use std::time::{Duration, Instant};

use hotconf::store::{Commit, SnapshotStore, StoreConfig};
use hotconf::Origin;
use hotconf::Sources;

use crate::service::Service;
use crate::support::{assert_no_canary, config_copy, hotconf, CANARY};

/// (exit code, stdout, stderr), after checking neither stream holds the canary.
fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = hotconf(args, env);
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert_no_canary(&stdout);
    assert_no_canary(&stderr);
    (out.status.code(), stdout, stderr)
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// Enables the two hosted providers whose keys are in `GROQ_API_KEY` and `GEMINI_API_KEY`.
fn enable_hosted(dir: &Path) {
    edit(
        dir,
        "providers.yaml",
        "enabled: false\n  api_key_env: GROQ_API_KEY",
        "enabled: true\n  api_key_env: GROQ_API_KEY",
    );
    edit(
        dir,
        "providers.yaml",
        "enabled: false\n  api_key_env: GEMINI_API_KEY",
        "enabled: true\n  api_key_env: GEMINI_API_KEY",
    );
}

/// A config copy and a store holding it as v1, then `rpm: 600 → 300` as v2.
struct Fixture {
    config: tempfile::TempDir,
    snapshots: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let f = Fixture { config: config_copy(), snapshots: tempfile::tempdir().unwrap() };
        let store = SnapshotStore::open(f.snapshots.path(), StoreConfig::default()).unwrap();
        store.commit(&f.sources(), Origin::Startup).unwrap();
        edit(f.config.path(), "rate_limits.yaml", "rpm: 600", "rpm: 300");
        assert!(matches!(store.commit(&f.sources(), Origin::Change).unwrap(), Commit::Created(_)));
        f
    }

    fn sources(&self) -> Sources {
        Sources::read_dir(self.config.path(), Sources::DEFAULT_MAX_FILE_BYTES).unwrap()
    }

    fn config(&self) -> &str {
        self.config.path().to_str().unwrap()
    }

    fn snapshots(&self) -> &str {
        self.snapshots.path().to_str().unwrap()
    }
}

/// An invalid candidate: `rpm: 0` on `local` (rate_limits.yaml line 2, column 8).
fn invalid_candidate() -> tempfile::TempDir {
    let dir = config_copy();
    edit(dir.path(), "rate_limits.yaml", "rpm: 600", "rpm: 0");
    dir
}

#[test]
fn results_go_to_stdout_diagnostics_and_errors_to_stderr() {
    let f = Fixture::new();
    let bad = invalid_candidate();
    let (cfg, snaps, bad) = (f.config(), f.snapshots(), bad.path().to_str().unwrap());
    // (args, exit code, stdout starts with, stderr contains); "" = must be empty.
    let cases: &[(&[&str], i32, &str, &str)] = &[
        (&["validate", "--config", cfg], 0, "ok: ", ""),
        (&["validate", "--config", bad], 1, "", "rate_limits.yaml"),
        (&["validate", "--config", bad, "--format", "json"], 1, "{\"file\":\"rate_limits.yaml\"", ""),
        (&["validate", "--config", bad, "--format", "github"], 1, "::error file=", "is invalid: 1 problem"),
        (&["validate", "--config", "/nonexistent/hotconf"], 1, "", "error: cannot read config directory"),
        (&["history", "--snapshots", snaps], 0, "VERSION", ""),
        (&["show", "v9", "--snapshots", snaps], 1, "", "version 9 does not exist"),
        (&["diff", "1", "2", "--snapshots", snaps], 0, "rate_limits.local.rpm: 600 → 300", ""),
        (&["diff", "2", "--against", bad, "--snapshots", snaps], 1, "", "rate_limits.yaml"),
        (&["diff", "2", "--against", bad, "--snapshots", snaps, "--format", "json"], 1, "", "rate_limits.yaml"),
        (&["restore", "1", "--config", cfg, "--snapshots", snaps, "--dry-run"], 0, "dry run: ", ""),
        (&["restore", "9", "--config", cfg, "--snapshots", snaps], 1, "", "nothing written"),
        // `rollback`, the command's old name, is still accepted.
        (&["rollback", "1", "--config", cfg, "--snapshots", snaps, "--dry-run"], 0, "dry run: ", ""),
    ];
    for (args, code, stdout_start, stderr_has) in cases {
        let (got, stdout, stderr) = run(args, &[]);
        assert_eq!(got, Some(*code), "{args:?}\nstdout: {stdout}\nstderr: {stderr}");
        if stdout_start.is_empty() {
            assert_eq!(stdout, "", "{args:?}: nothing is a result");
        } else {
            assert!(stdout.starts_with(stdout_start), "{args:?}: stdout {stdout}");
        }
        if stderr_has.is_empty() {
            assert_eq!(stderr, "", "{args:?}: nothing to report");
        } else {
            assert!(stderr.contains(stderr_has), "{args:?}: stderr {stderr}");
        }
    }
}

#[test]
fn diff_exit_code_gates_on_changes_and_refusals_exit_4() {
    let f = Fixture::new();
    let bad = invalid_candidate();
    let same = config_copy();
    edit(same.path(), "rate_limits.yaml", "rpm: 600", "rpm: 300 # comment only");
    let (snaps, bad, same) = (f.snapshots(), bad.path().to_str().unwrap(), same.path().to_str().unwrap());
    let cases: &[(&[&str], i32)] = &[
        (&["diff", "2", "2", "--exit-code"], 0),
        (&["diff", "1", "2", "--exit-code"], 1),
        (&["diff", "1", "2"], 0),
        (&["diff", "2", "--against", same, "--exit-code"], 0),
        (&["diff", "1", "--against", same, "--exit-code"], 1),
        (&["diff", "1", "--against", same, "--exit-code", "--format", "json"], 1),
        (&["diff", "1", "--against", bad, "--exit-code"], 4),
        (&["diff", "1", "--against", bad], 1),
        (&["diff", "1", "9", "--exit-code"], 4),
        (&["diff", "1", "--against", "/nonexistent/hotconf", "--exit-code"], 4),
        (&["diff", "1", "2", "--exit-code", "--snapshots", "/nonexistent/store"], 3),
    ];
    for (args, code) in cases {
        let mut all = args.to_vec();
        if !all.contains(&"--snapshots") {
            all.extend(["--snapshots", snaps]);
        }
        let (got, stdout, stderr) = run(&all, &[]);
        assert_eq!(got, Some(*code), "{all:?}\nstdout: {stdout}\nstderr: {stderr}");
    }
}

#[test]
fn json_diff_values_keep_types_and_an_added_provider_shows_its_values() {
    let f = Fixture::new();
    let candidate = config_copy();
    let providers = candidate.path().join("providers.yaml");
    let mut text = std::fs::read_to_string(&providers).unwrap();
    text.push_str("\nmistral:\n  enabled: false\n  api_key_env: MISTRAL_API_KEY\n  model: m\n  base_url: https://api.mistral.ai/v1\n  timeout_seconds: 30\n");
    std::fs::write(&providers, text).unwrap();
    edit(candidate.path(), "rate_limits.yaml", "rpm: 600", "rpm: 650");
    let (code, stdout, stderr) = run(
        &[
            "diff",
            "v2",
            "--against",
            candidate.path().to_str().unwrap(),
            "--snapshots",
            f.snapshots(),
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let changes: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        changes,
        [
            serde_json::json!({"file": "providers.yaml", "path": "mistral", "change": "added", "value":
                {"enabled": false, "api_key_env": "MISTRAL_API_KEY", "model": "m",
                 "base_url": "https://api.mistral.ai/v1", "timeout_seconds": 30}}),
            serde_json::json!({"file": "rate_limits.yaml", "path": "local.rpm", "change": "modified", "old": 300, "new": 650}),
        ]
    );
    // The added section's keys keep their document order.
    assert!(stdout.contains(r#"{"enabled":false,"api_key_env":"MISTRAL_API_KEY","model":"m","base_url":"https://api.mistral.ai/v1","timeout_seconds":30}"#));
}

#[test]
fn no_env_skips_and_names_the_environment_checks() {
    let dir = config_copy();
    enable_hosted(dir.path());
    let f = Fixture::new();
    let cfg = dir.path().to_str().unwrap();
    let (code, _, stderr) = run(&["validate", "--config", cfg], &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("GROQ_API_KEY"), "{stderr}");
    let note = "note: skipped 2 environment checks (--no-env): GEMINI_API_KEY, GROQ_API_KEY\n";
    let (code, stdout, stderr) = run(&["validate", "--config", cfg, "--no-env"], &[]);
    assert_eq!((code, stderr.as_str()), (Some(0), note));
    assert!(stdout.starts_with("ok: "), "{stdout}");
    let (code, stdout, stderr) = run(&["diff", "2", "--against", cfg, "--no-env", "--snapshots", f.snapshots()], &[]);
    assert_eq!((code, stderr.as_str()), (Some(0), note));
    assert!(stdout.contains("providers.groq.enabled: false → true"), "{stdout}");
    // Other problems are still found.
    edit(dir.path(), "rate_limits.yaml", "rpm: 600", "rpm: 0");
    let (code, _, stderr) = run(&["validate", "--config", cfg, "--no-env"], &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("rate_limits.yaml") && stderr.contains(note), "{stderr}");
    // The shipped config asks for no variable.
    let shipped = crate::support::shipped_config();
    let (code, _, stderr) = run(&["validate", "--config", shipped.to_str().unwrap(), "--no-env"], &[]);
    assert_eq!((code, stderr.as_str()), (Some(0), "note: no environment checks to skip (--no-env)\n"));
}

#[test]
fn env_file_supplies_names_and_its_values_never_appear() {
    let dir = config_copy();
    enable_hosted(dir.path());
    let f = Fixture::new();
    let cfg = dir.path().to_str().unwrap();
    let env_dir = tempfile::tempdir().unwrap();
    let file = env_dir.path().join("ci.env");
    let path = file.to_str().unwrap();
    // Only GROQ's key in the file; GEMINI's is set in the process, which the file replaces.
    std::fs::write(&file, format!("# CI names\nexport GROQ_API_KEY={CANARY}\nOTHER='{CANARY}'\n")).unwrap();
    let env = [("GEMINI_API_KEY", CANARY)];
    let (code, _, stderr) = run(&["validate", "--config", cfg, "--env-file", path], &env);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("GEMINI_API_KEY"), "{stderr}");
    assert!(!stderr.contains("GROQ_API_KEY"), "{stderr}");
    std::fs::write(&file, format!("GROQ_API_KEY={CANARY}\nGEMINI_API_KEY=\"{CANARY}\"\n")).unwrap();
    for args in [
        vec!["validate", "--config", cfg, "--env-file", path],
        vec!["validate", "--config", cfg, "--env-file", path, "--format", "json"],
        vec!["diff", "1", "--against", cfg, "--snapshots", f.snapshots(), "--env-file", path, "--format", "json"],
    ] {
        let (code, stdout, stderr) = run(&args, &[]);
        assert_eq!(code, Some(0), "{args:?}: {stdout}{stderr}");
    }
    // An empty value is not set.
    std::fs::write(&file, format!("GROQ_API_KEY={CANARY}\nGEMINI_API_KEY=\n")).unwrap();
    let (code, _, stderr) = run(&["validate", "--config", cfg, "--env-file", path], &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("GEMINI_API_KEY") && !stderr.contains("GROQ_API_KEY"), "{stderr}");

    // A bad file is a usage error naming the line, never its text (it may hold a value).
    std::fs::write(&file, format!("GROQ_API_KEY={CANARY}\n{CANARY} oops\n")).unwrap();
    let (code, _, stderr) = run(&["validate", "--config", cfg, "--env-file", path], &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains(&format!("{path} line 2: expected `NAME=VALUE`")), "{stderr}");
    std::fs::write(&file, "A=".to_owned() + &"x".repeat(1024 * 1024 + 1)).unwrap();
    let (code, _, stderr) = run(&["validate", "--config", cfg, "--env-file", path], &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("an env file may have 1048576 at most"), "{stderr}");
    let (code, _, stderr) = run(&["validate", "--config", cfg, "--env-file", "/nonexistent/ci.env"], &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot read /nonexistent/ci.env"), "{stderr}");
    #[cfg(unix)]
    {
        // A FIFO is refused at once, never waited on.
        let fifo = env_dir.path().join("fifo.env");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let started = Instant::now();
        let (code, _, stderr) = run(&["validate", "--config", cfg, "--env-file", fifo.to_str().unwrap()], &[]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("not a regular file"), "{stderr}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    let (code, _, _) = run(&["validate", "--config", cfg, "--env-file", path, "--no-env"], &[]);
    assert_eq!(code, Some(2), "--env-file and --no-env exclude each other");
    let (code, _, _) = run(&["diff", "1", "2", "--no-env", "--snapshots", f.snapshots()], &[]);
    assert_eq!(code, Some(2), "--no-env needs --against");
}

#[test]
fn format_github_prints_workflow_commands() {
    // A directory name with the characters GitHub's properties must escape.
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("conf,ig:1");
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(crate::support::shipped_config()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    edit(&dir, "rate_limits.yaml", "rpm: 600", "rpm: 0");
    let escaped = dir.display().to_string().replace(',', "%2C").replace(':', "%3A");
    let cfg = dir.to_str().unwrap();
    // The same diagnostic as `--format json` gives it, as one workflow command.
    let (_, json, _) = run(&["validate", "--config", cfg, "--format", "json"], &[]);
    let d: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    let escape = |s: &str| s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    let mut message = format!("{}: {}", d["path"].as_str().unwrap(), d["message"].as_str().unwrap());
    if let Some(help) = d["help"].as_str() {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let expected = format!(
        "::error file={escaped}/rate_limits.yaml,line={},col={},title=hotconf%3A {}::{}\n",
        d["line"],
        d["column"],
        d["code"].as_str().unwrap(),
        escape(&message)
    );
    assert!(d["line"].is_u64() && d["column"].is_u64(), "{d}");
    let (code, stdout, stderr) = run(&["validate", "--config", cfg, "--format", "github"], &[]);
    assert_eq!(code, Some(1));
    assert_eq!(stdout, expected);
    assert!(stderr.contains("is invalid: 1 problem"), "{stderr}");
    let expected_start = expected.trim_end();

    let f = Fixture::new();
    let (code, stdout, _) =
        run(&["diff", "v1", "--against", cfg, "--snapshots", f.snapshots(), "--format", "github"], &[]);
    assert_eq!(code, Some(1));
    assert!(stdout.starts_with(expected_start), "{stdout}");
    // A valid candidate: the plan as text.
    let (code, stdout, _) =
        run(&["diff", "v1", "--against", f.config(), "--snapshots", f.snapshots(), "--format", "github"], &[]);
    assert_eq!((code, stdout.as_str()), (Some(0), "rate_limits.local.rpm: 600 → 300\n"));
    // history has no github format.
    let (code, _, _) = run(&["history", "--snapshots", f.snapshots(), "--format", "github"], &[]);
    assert_eq!(code, Some(2));
}

/// Every path under `dir` with its size and mtime: what "wrote nothing" compares.
fn tree(dir: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut all = Vec::new();
    for entry in walk(dir) {
        let meta = std::fs::symlink_metadata(&entry).unwrap();
        all.push((entry.display().to_string(), meta.len(), meta.modified().unwrap()));
    }
    all.sort();
    all
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_owned()];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn read_only_commands_write_nothing_and_refuse_a_directory_that_is_not_a_store() {
    let f = Fixture::new();
    let snaps = f.snapshots.path();
    // A store copied from a backup has no lock file; a writer's leftover is not cleaned by readers.
    std::fs::remove_file(snaps.join(".lock")).unwrap();
    std::fs::create_dir(snaps.join(".tmp-v000003-leftover")).unwrap();
    let before = tree(snaps);
    for args in [
        vec!["history"],
        vec!["history", "--format", "json"],
        vec!["show", "v1"],
        vec!["show", "2", "rate_limits.yaml"],
        vec!["diff", "v1", "v2"],
        vec!["diff", "1", "--against", f.config()],
        vec!["show", "7"],
    ] {
        let mut all = args.clone();
        all.extend(["--snapshots", f.snapshots()]);
        run(&all, &[]);
        assert_eq!(tree(snaps), before, "{args:?} changed the store");
    }

    // Not a store: said so, exit 1, nothing created.
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("notes.txt"), "hello").unwrap();
    let before = tree(empty.path());
    for args in [vec!["history"], vec!["show", "1"], vec!["diff", "1", "2"], vec!["diff", "1", "--against", f.config()]]
    {
        let mut all = args.clone();
        all.extend(["--snapshots", empty.path().to_str().unwrap()]);
        let (code, stdout, stderr) = run(&all, &[]);
        assert_eq!(code, Some(1), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(&format!("{} is not a hotconf snapshot store", empty.path().display())), "{stderr}");
        assert_eq!(stdout, "");
        assert_eq!(tree(empty.path()), before, "{args:?} wrote into a directory that is not a store");
    }
    // rollback refuses it too, before writing anything.
    let (code, _, stderr) =
        run(&["restore", "1", "--config", f.config(), "--snapshots", empty.path().to_str().unwrap()], &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("is not a hotconf snapshot store"), "{stderr}");
    assert_eq!(tree(empty.path()), before);

    // A store `run` opened before its first version (its lock file, nothing else): no versions.
    let fresh = tempfile::tempdir().unwrap();
    SnapshotStore::open(fresh.path(), StoreConfig::default()).unwrap();
    let (code, stdout, _) = run(&["history", "--snapshots", fresh.path().to_str().unwrap()], &[]);
    assert_eq!((code, stdout), (Some(0), format!("no versions in {}\n", fresh.path().display())));
}

#[test]
fn versions_take_the_v_that_history_prints_and_bad_values_are_usage_errors() {
    let f = Fixture::new();
    let snaps = f.snapshots();
    let (code, stdout, _) = run(&["show", "v2", "rate_limits.yaml", "--snapshots", snaps], &[]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("rpm: 300"));
    let (code, stdout, _) = run(&["diff", "v1", "v2", "--snapshots", snaps], &[]);
    assert_eq!((code, stdout.as_str()), (Some(0), "rate_limits.local.rpm: 600 → 300\n"));
    let (code, stdout, _) = run(&["restore", "v1", "--config", f.config(), "--snapshots", snaps, "--dry-run"], &[]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("restoring version 1 into"), "{stdout}");

    for args in [
        &["show", "vx", "--snapshots", snaps][..],
        &["show", "v0", "--snapshots", snaps],
        &["diff", "1", "-2", "--snapshots", snaps],
        &["restore", "V1", "--snapshots", snaps],
        &["run", "--admin-addr", "localhost:9999"],
        &["run", "--admin-addr", "127.0.0.1"],
        &["run", "--retention", "0"],
        &["run", "--reload-timeout-ms", "0"],
        &["restore", "1", "--wait=0s"],
        &["restore", "1", "--wait=soon"],
        &["restore", "1", "--wait", "--dry-run"],
        &["restore", "1", "--wait", "--admin-addr", "localhost:9477"],
    ] {
        let (code, stdout, stderr) = run(args, &[]);
        assert_eq!(code, Some(2), "{args:?}: {stdout}{stderr}");
        assert_eq!(stdout, "", "{args:?}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
}

#[test]
fn rollback_wait_until_the_service_runs_the_content() {
    let config = config_copy();
    let store = tempfile::tempdir().unwrap();
    let s = Service::start(config.path(), store.path(), &[("HOTCONF_ADMIN_TOKEN", "t0ken")]);
    edit(config.path(), "rate_limits.yaml", "rpm: 600", "rpm: 650");
    assert_eq!(s.wait_for("reload.applied")["version"], 2);
    let admin = s.admin.to_string();
    let (cfg, snaps) = (config.path().to_str().unwrap(), store.path().to_str().unwrap());
    let args = ["restore", "v1", "--wait=20s", "--config", cfg, "--snapshots", snaps, "--admin-addr", &admin];

    // Without the token: the files are written, the wait cannot ask: exit 3 at once.
    let (code, _, stderr) = run(&args, &[]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("answered 401 to GET /status"), "{stderr}");
    let (code, stdout, stderr) = run(&args, &[("HOTCONF_ADMIN_TOKEN", "t0ken")]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.ends_with(&format!("the service at {admin} runs version 1's content (as version 3)\n")), "{stdout}");
    assert!(!stderr.contains("waiting"), "no progress when stderr is not a terminal: {stderr}");
    let (status, body) = crate::service::http(s.admin, "GET", "/status", Some("t0ken"));
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["running_version"], 3);

    // A version this machine validates (its own GROQ_API_KEY) but the service rejects (it has
    // none), stored as another writer would, from a directory the service does not watch.
    let other = config_copy();
    enable_hosted(other.path());
    edit(other.path(), "agent_chains.yaml", "fallbacks: []", "fallbacks: [groq]");
    let sources = Sources::read_dir(other.path(), Sources::DEFAULT_MAX_FILE_BYTES).unwrap();
    let Commit::Created(m) =
        SnapshotStore::open(store.path(), StoreConfig::default()).unwrap().commit(&sources, Origin::Manual).unwrap()
    else {
        panic!("stored")
    };
    let version = format!("v{}", m.version);
    let env = [("HOTCONF_ADMIN_TOKEN", "t0ken"), ("GROQ_API_KEY", CANARY), ("GEMINI_API_KEY", CANARY)];
    let (code, stdout, stderr) =
        run(&["restore", &version, "--wait", "--config", cfg, "--snapshots", snaps, "--admin-addr", &admin], &env);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("GROQ_API_KEY"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: the service rejected version {}'s content; it keeps running version 3",
            m.version
        )),
        "{stderr}"
    );
    // `/status` names the content it rejected: what `--wait` compares, not the time of the attempt.
    let (_, body) = crate::service::http(s.admin, "GET", "/status", Some("t0ken"));
    let attempt = &serde_json::from_str::<serde_json::Value>(&body).unwrap()["last_attempt"];
    assert_eq!(
        (attempt["result"].as_str(), attempt["bundle_hash"].as_str()),
        (Some("rejected"), Some(m.bundle_hash.as_str()))
    );
    assert_no_canary(&s.raw.lock().unwrap());
}

#[test]
fn rollback_wait_is_bounded_by_its_timeout() {
    let f = Fixture::new();
    // An admin endpoint whose connections complete (the kernel's backlog) but never answer:
    // every read must be bounded.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let started = Instant::now();
    let (code, stdout, stderr) = run(
        &["restore", "1", "--wait=700ms", "--config", f.config(), "--snapshots", f.snapshots(), "--admin-addr", &addr],
        &[],
    );
    let took = started.elapsed();
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert!(stdout.starts_with(&format!("restored version 1 into {}", f.config())), "{stdout}");
    assert!(stderr.contains("error: timed out after 700ms waiting for the service"), "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // Nothing listening at all: the same bound.
    drop(silent);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let (code, _, stderr) = run(
        &[
            "restore",
            "1",
            "--wait=300ms",
            "--config",
            f.config(),
            "--snapshots",
            f.snapshots(),
            "--admin-addr",
            &closed,
        ],
        &[],
    );
    assert_eq!(code, Some(3));
    assert!(stderr.contains("is unreachable"), "{stderr}");
}

#[test]
fn rollback_wait_shows_progress_on_a_terminal() {
    // `script` runs the command on a pseudo-terminal; skip where it is not installed.
    if std::process::Command::new("script").arg("--version").output().is_err() {
        return;
    }
    let f = Fixture::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let command = format!(
        "{} restore v1 --wait=400ms --config {} --snapshots {} --admin-addr {closed}",
        env!("CARGO_BIN_EXE_hotconf"),
        f.config(),
        f.snapshots()
    );
    let out = std::process::Command::new("script").args(["-qec", &command, "/dev/null"]).output().unwrap();
    let terminal = String::from_utf8_lossy(&out.stdout);
    assert!(
        terminal.contains(&format!("waiting for version 1: the admin endpoint {closed} is unreachable")),
        "{terminal}"
    );
    assert!(terminal.contains("error: timed out after 400ms"), "{terminal}");
}

//! Hostile names through the real binary: a config file whose name holds ESC sequences (set the
//! window title, clear the screen), CR, LF and a forged `error:` line, and a key and a value
//! holding the same, reach no terminal, log or CI annotation raw, in any command or format. Each
//! output holds no control character but the line breaks the command writes itself, no line a
//! name forged, and the escaped form of what the name holds, so the user still sees it.

use std::path::Path;

use hotconf::store::{SnapshotStore, StoreConfig};
use hotconf::{Origin, Sources};

use crate::support::{config_copy, hotconf};

/// A valid file name on Linux (no `/`, no NUL) that would retitle the window, clear the screen
/// and print a forged error line if written raw.
const EVIL_FILE: &str = "evil\u{1b}]0;pwned\u{7}\u{1b}[2J\r\nerror: forged.yaml";
/// A YAML key (double-quoted, so `\e` and `\n` are ESC and LF) under the `local` provider: an
/// unknown key.
const EVIL_KEY_LINE: &str = "  \"ke\\ey\\e[31m\\nerror: forged\": 1\n";
/// A value with the same, for the diff.
const EVIL_MODEL: &str = "model: \"llama\\e]0;pwned\\a\\nerror: forged\"";

/// How the name, the key and the value read once escaped: for a person (`\x1b`), in JSON
/// (`\u001b`), and in a GitHub property (`:` as `%3A`).
const TEXT_FILE: &str = r"evil\x1b]0;pwned\x07\x1b[2J\r\nerror: forged.yaml";
const TEXT_KEY: &str = r"ke\x1by\x1b[31m\nerror: forged";
const TEXT_VALUE: &str = r"llama\x1b]0;pwned\x07\nerror: forged";
const JSON_FILE: &str = r"evil\u001b]0;pwned\u0007\u001b[2J\r\nerror: forged.yaml";
const JSON_KEY: &str = r"ke\u001by\u001b[31m\nerror: forged";
const JSON_VALUE: &str = r"llama\u001b]0;pwned\u0007\nerror: forged";
const GITHUB_FILE: &str = r"evil\x1b]0;pwned\x07\x1b[2J\r\nerror%3A forged.yaml";

/// The shipped config plus the hostile file (a raw ESC in its text too, so a snippet of it would
/// carry one) and the hostile key and value in providers.yaml.
fn hostile_config() -> tempfile::TempDir {
    let dir = config_copy();
    std::fs::write(dir.path().join(EVIL_FILE), "a: \u{1b}]0;pwned\u{7}\u{1b}[2J\n").unwrap();
    let path = dir.path().join("providers.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let from = "local:\n  enabled: true\n  model: llama3.1:8b\n";
    assert!(text.contains(from), "providers.yaml has no {from:?}");
    let to = format!("local:\n  enabled: true\n{EVIL_KEY_LINE}  {EVIL_MODEL}\n");
    std::fs::write(&path, text.replacen(from, &to, 1)).unwrap();
    dir
}

/// A store holding the shipped config as v1 and the hostile one as v2 (the store keeps any
/// content; only the commands that show it are under test).
fn store_with(hostile: &Path) -> tempfile::TempDir {
    let snapshots = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(snapshots.path(), StoreConfig::default()).unwrap();
    let read = |dir: &Path| Sources::read_dir(dir, Sources::DEFAULT_MAX_FILE_BYTES).unwrap();
    store.commit(&read(config_copy().path()), Origin::Startup).unwrap();
    store.commit(&read(hostile), Origin::Change).unwrap();
    snapshots
}

/// Asserts that `stream` of `args` is safe to print: no control character but LF (no ESC, BEL,
/// CR, C1), and no line a name forged.
fn assert_safe(args: &[&str], name: &str, stream: &[u8]) {
    let text = String::from_utf8(stream.to_vec()).unwrap_or_else(|e| panic!("{args:?} {name}: not UTF-8: {e}"));
    assert!(!stream.contains(&0x1b) && !stream.contains(&0x07), "{args:?} {name}: raw ESC or BEL:\n{text:?}");
    let raw: Vec<char> = text.chars().filter(|c| c.is_control() && *c != '\n').collect();
    assert!(raw.is_empty(), "{args:?} {name}: raw control characters {raw:?}:\n{text:?}");
    for line in text.lines() {
        assert!(!line.trim_start().starts_with("error: forged"), "{args:?} {name}: a forged line:\n{text}");
    }
}

/// Runs `args`, checks both streams with [`assert_safe`], the exit code, and that together they
/// show each of `shown`.
fn check(args: &[&str], code: i32, shown: &[&str]) {
    let out = hotconf(args, &[]);
    assert_safe(args, "stdout", &out.stdout);
    assert_safe(args, "stderr", &out.stderr);
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert_eq!(out.status.code(), Some(code), "{args:?}\nstdout: {stdout}\nstderr: {stderr}");
    for s in shown {
        assert!(
            stdout.contains(s) || stderr.contains(s),
            "{args:?}: {s} not shown\nstdout: {stdout}\nstderr: {stderr}"
        );
    }
}

#[test]
fn no_command_or_format_prints_a_hostile_name_key_or_value_raw() {
    let bad = hostile_config();
    let snapshots = store_with(bad.path());
    let (bad, snaps) = (bad.path().to_str().unwrap(), snapshots.path().to_str().unwrap());
    let target = config_copy();
    let target = target.path().to_str().unwrap();
    let run_store = tempfile::tempdir().unwrap();
    let run_store = run_store.path().join("snapshots");
    let run_store = run_store.to_str().unwrap();
    let run = |format: &'static str| {
        ["run", "--config", bad, "--snapshots", run_store, "--admin-addr", "off", "--log-format", format]
    };
    // (args, exit code, escaped forms the output shows)
    let cases: &[(&[&str], i32, &[&str])] = &[
        (&["validate", "--config", bad], 1, &[TEXT_FILE, TEXT_KEY, r"a: \x1b]0;pwned\x07\x1b[2J"]),
        (&["validate", "--config", bad, "--format", "json"], 1, &[JSON_FILE, JSON_KEY]),
        (&["validate", "--config", bad, "--format", "github"], 1, &[GITHUB_FILE, TEXT_KEY]),
        (&["diff", "1", "--against", bad, "--snapshots", snaps], 1, &[TEXT_FILE, TEXT_KEY]),
        (&["diff", "1", "--against", bad, "--snapshots", snaps, "--format", "json"], 1, &[TEXT_FILE, TEXT_KEY]),
        (&["diff", "1", "--against", bad, "--snapshots", snaps, "--format", "github"], 1, &[GITHUB_FILE, TEXT_KEY]),
        (&["diff", "1", "2", "--snapshots", snaps], 0, &[TEXT_FILE, TEXT_KEY, TEXT_VALUE]),
        (&["diff", "1", "2", "--snapshots", snaps, "--format", "json"], 0, &[JSON_FILE, JSON_KEY, JSON_VALUE]),
        (&["diff", "1", "2", "--snapshots", snaps, "--format", "github"], 0, &[TEXT_FILE, TEXT_KEY, TEXT_VALUE]),
        (&["history", "--snapshots", snaps], 0, &[TEXT_FILE]),
        (&["history", "--snapshots", snaps, "--format", "json"], 0, &[JSON_FILE]),
        (&["show", "2", "--snapshots", snaps], 0, &[JSON_FILE]),
        (&["show", "2", "absent.yaml", "--snapshots", snaps], 1, &[TEXT_FILE]),
        // Version 2 is validated before a restore; its diagnostics name its files bare.
        (&["restore", "2", "--config", target, "--snapshots", snaps, "--dry-run"], 1, &[TEXT_FILE, TEXT_KEY]),
        (&run("text"), 1, &[TEXT_FILE, TEXT_KEY, "refusing to start"]),
        (&run("json"), 1, &[JSON_FILE, JSON_KEY, "start.refused"]),
    ];
    for (args, code, shown) in cases {
        check(args, *code, shown);
    }
}

#[test]
fn a_hostile_directory_name_is_escaped_in_the_summaries() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("conf\u{1b}[2J\nerror: forged");
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(crate::support::shipped_config()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    let cfg = dir.to_str().unwrap();
    let shown = r"conf\x1b[2J\nerror: forged";
    check(&["validate", "--config", cfg], 0, &[shown, "ok: "]);
    check(&["validate", "--config", cfg, "--format", "github"], 0, &[shown, "ok: "]);
    std::fs::write(dir.join("rate_limits.yaml"), "local:\n  rpm: 0\n").unwrap();
    check(&["validate", "--config", cfg], 1, &[&format!("{shown} is invalid: ")]);
    check(&["validate", "--config", cfg, "--format", "github"], 1, &[shown, "::error file="]);
    check(&["validate", "--config", cfg, "--format", "json"], 1, &["\"file\":\"rate_limits.yaml\""]);
}

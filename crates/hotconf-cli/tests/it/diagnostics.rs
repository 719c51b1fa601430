//! Diagnostics a person reads, through the real binary: rustc-style snippets with the path as given
//! on the command line, the caret under the offending value, the help beneath; coloured only when
//! asked (a terminal, or `CLICOLOR_FORCE`), plain when piped or with `NO_COLOR`; one problem per
//! mistake; no secret on screen.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{assert_no_canary, config_copy, CANARY};

/// `hotconf ARGS` run from `cwd` with only `env` (stderr is a pipe: no terminal).
fn hotconf_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotconf"));
    cmd.current_dir(cwd).args(args).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run hotconf")
}

/// A work directory holding `config/` (a copy of the shipped config) with `edits` applied:
/// (file, text to find, replacement); an empty find replaces the whole file.
fn broken(edits: &[(&str, &str, &str)]) -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    let copy = config_copy();
    let config = work.path().join("config");
    std::fs::create_dir(&config).unwrap();
    for entry in std::fs::read_dir(copy.path()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), config.join(entry.file_name())).unwrap();
    }
    for (file, find, replace) in edits {
        let path = config.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let new = if find.is_empty() { replace.to_string() } else { text.replacen(find, replace, 1) };
        assert!(find.is_empty() || new != text, "edit {find:?} found nothing in {file}");
        std::fs::write(&path, new).unwrap();
    }
    work
}

/// `hotconf validate --config config` from `work`: (exit code, stdout, stderr).
fn validate(work: &Path, extra: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut args = vec!["validate", "--config", "config"];
    args.extend_from_slice(extra);
    let out = hotconf_in(work, &args, env);
    (out.status.code(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// The typos a newcomer makes: a misspelt key, a misspelt provider in a flow list, a zero.
fn typos() -> tempfile::TempDir {
    broken(&[
        ("rate_limits.yaml", "  rpm: 600\n", "  rmp: 600\n"),
        ("rate_limits.yaml", "groq:\n  rpm: 30\n", "groq:\n  rpm: 0\n"),
        ("agent_chains.yaml", "  fallbacks: []", "  fallbacks: [local-small, gorq]"),
    ])
}

#[test]
fn one_problem_per_mistake_with_snippet_path_as_given_and_help() {
    let work = typos();
    let (code, stdout, stderr) = validate(work.path(), &[], &[]);
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert!(!stderr.contains('\x1b'), "colour in a pipe:\n{stderr}");
    // `rmp` is one problem (no "missing `rpm`"), `gorq` gets a suggestion, not the list.
    assert!(!stderr.contains("missing required key `rpm`"), "{stderr}");
    assert!(!stderr.contains("cerebras"), "{stderr}");
    insta::assert_snapshot!("typos_plain", stderr);
}

#[test]
fn colour_when_forced_never_with_no_color() {
    let work = typos();
    let (_, _, coloured) = validate(work.path(), &[], &[("CLICOLOR_FORCE", "1")]);
    assert!(coloured.contains("\x1b["), "{coloured}");
    insta::assert_snapshot!("typos_coloured", coloured);
    // NO_COLOR and a plain pipe give the same text, without escapes.
    let (_, _, plain) = validate(work.path(), &[], &[("NO_COLOR", "1")]);
    let (_, _, piped) = validate(work.path(), &[], &[]);
    assert!(!plain.contains('\x1b'), "{plain}");
    assert_eq!(plain, piped);
    // Stripped of its escapes, the coloured text is the plain one.
    let stripped = regex_free_strip(&coloured);
    assert_eq!(stripped, plain);
}

/// `text` without ANSI SGR escapes (`ESC [ … m`).
fn regex_free_strip(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn parse_refusals_point_where_the_mistake_is() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        // Both occurrences: the second (the caret) and the first (a label).
        (
            "duplicate_key",
            &[(
                "rate_limits.yaml",
                "  burst: 20\n  tokens_per_minute: 2000000\n",
                "  burst: 20\n  rpm: 5\n  tokens_per_minute: 2000000\n",
            )],
            " --> config/rate_limits.yaml:8:3",
        ),
        // Refused with its own message, not an unknown key `<<`.
        (
            "merge_key",
            &[
                ("rate_limits.yaml", "local-small:\n  rpm: 1200\n", "local-small:\n  <<: *base\n  rpm: 1200\n"),
                ("rate_limits.yaml", "local:\n", "local: &base\n"),
            ],
            " --> config/rate_limits.yaml:11:3",
        ),
        // Where the `[` opens, not at the end of the file.
        (
            "unclosed_flow",
            &[("agent_chains.yaml", "  fallbacks: []", "  fallbacks: [local, local-small")],
            " --> config/agent_chains.yaml:16:14",
        ),
    ];
    for (name, edits, location) in cases {
        let work = broken(edits);
        let (code, _, stderr) = validate(work.path(), &[], &[]);
        assert_eq!(code, Some(1), "{name}: {stderr}");
        assert!(stderr.contains(location), "{name}: {stderr}");
        insta::assert_snapshot!(*name, stderr);
    }
}

#[test]
fn json_keeps_the_bare_file_name_and_github_joins_the_directory_both_at_the_value() {
    let work = typos();
    let (code, stdout, _) = validate(work.path(), &["--format", "json"], &[]);
    assert_eq!(code, Some(1));
    let objects: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let gorq = objects.iter().find(|o| o["code"] == "unknown-provider").expect("unknown provider");
    assert_eq!(
        (&gorq["file"], &gorq["path"], &gorq["line"], &gorq["column"], &gorq["help"]),
        (
            &serde_json::json!("agent_chains.yaml"),
            &serde_json::json!("james.fallbacks[1]"),
            &serde_json::json!(16),
            &serde_json::json!(28),
            &serde_json::json!("did you mean `groq`?")
        )
    );
    let (_, stdout, _) = validate(work.path(), &["--format", "github"], &[]);
    assert!(
        stdout.contains("::error file=config/rate_limits.yaml,line=16,col=8,title=hotconf%3A not-positive::groq.rpm"),
        "{stdout}"
    );
}

#[test]
fn a_refused_start_renders_the_same_way() {
    let work = typos();
    let store = tempfile::tempdir().unwrap();
    let st = store.path().to_str().unwrap();
    // A refused start: the snippet, with the path as given.
    let out = hotconf_in(work.path(), &["run", "--config", "config", "--snapshots", st, "--admin-addr", "off"], &[]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error[unknown-key]: unknown key `rmp`\n --> config/rate_limits.yaml:6:3\n"), "{stderr}");
    assert!(stderr.contains("  = help: did you mean `rpm`?\n"), "{stderr}");
}

#[test]
fn no_secret_on_screen_even_in_colour() {
    let work = broken(&[
        ("providers.yaml", "  api_key_env: GROQ_API_KEY", &format!("  api_key: {CANARY}")),
        ("providers.yaml", "  enabled: false\n", "  enabled: maybe\n"),
    ]);
    for env in [&[][..], &[("CLICOLOR_FORCE", "1")][..]] {
        let (code, stdout, stderr) = validate(work.path(), &[], env);
        assert_eq!(code, Some(1));
        assert!(stderr.contains("inline-secret"), "{stderr}");
        assert_no_canary(&stdout);
        assert_no_canary(&stderr);
    }
    // A key pasted under `api_key_env` in a list (a wrong type, shown with its line): masked.
    let work = broken(&[("providers.yaml", "  api_key_env: GROQ_API_KEY", &format!("  api_key_env: [{CANARY}]"))]);
    let (code, _, stderr) = validate(work.path(), &[], &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("api_key_env: ***"), "{stderr}");
    assert_no_canary(&stderr);
}

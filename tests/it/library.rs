//! The library's serde path: every problem at once, with file, YAML path and line:column; a
//! directory as a mapping from file stem to document; users' own rules.

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use hotconf::{validate_with, MapEnv, Problem, SerdeSchema, SourceFile, Sources};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct App {
    greeting: String,
    workers: NonZeroU32,
    #[serde(default)]
    mode: Mode,
    timeout_ms: Option<u64>,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    weights: BTreeMap<String, f64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
enum Mode {
    #[default]
    Fast,
    Careful,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Route {
    prefix: String,
    target: String,
}

/// Validates `files` with `schema`: `Ok(())` or every diagnostic, one line each.
fn check<T>(schema: SerdeSchema<T>, files: &[(&str, &str)]) -> Result<(), Vec<String>>
where
    T: serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let sources = Sources::from_files(files.iter().map(|(n, t)| SourceFile::new(*n, *t)));
    let env = MapEnv::new().with("TOKEN", "x");
    match validate_with(&schema, sources, &env) {
        Ok(_) => Ok(()),
        Err(d) => Err(d.as_slice().iter().map(|d| d.to_string().replace("\n  help: ", " | help: ")).collect()),
    }
}

#[test]
fn one_file_reports_every_problem_at_once() {
    let cases: &[(&str, &[&str])] = &[
        ("greeting: hi\nworkers: 3\n", &[]),
        ("greeting: hi\nworkers: 3\nmode: careful\ntimeout_ms: 5\nroutes:\n  - prefix: /a\n    target: b\n", &[]),
        (
            "greeting: hi\nworkers: -1\nmode: carefull\ntimeout_ms: soon\nroutes:\n  - prefix: /a\n    targte: b\n  - prefix: 3\n    target: c\nweights:\n  a: heavy\n",
            &[
                "app.yaml:2:10: workers: invalid value number `-1`: expected a nonzero u32 | help: use a whole number of 1 or more",
                "app.yaml:3:7: mode: unknown variant `carefull`, expected one of `fast`, `careful` | help: did you mean `careful`?",
                "app.yaml:4:13: timeout_ms: expected u64, found a string | help: write a number in digits, without quotes (such as `30`)",
                "app.yaml:7:5: routes[0].targte: unknown key `targte` | help: did you mean `target`?",
                "app.yaml:11:6: weights.a: expected f64, found a string | help: write a number in digits, without quotes (such as `30`)",
            ],
        ),
        (
            "workers: 2\nextra: 1\n",
            &[
                "app.yaml: missing required key `greeting` | help: add `greeting: …` to this mapping",
                "app.yaml:2:1: extra: unknown key `extra` | help: remove it; the keys here are `greeting`, `workers`, `mode`, `timeout_ms`, `routes`, `weights`",
            ],
        ),
        // Refused before serde, as for the gateway.
        ("greeting: hi\ngreeting: ho\nworkers: 1\n", &["app.yaml:2:1: duplicate key `greeting` | help: keep one of the two: delete this entry or the one on line 1"]),
        ("greeting: hi\n---\nworkers: 1\n", &["app.yaml:2:1: file holds more than one YAML document | help: remove the `---` separator: each file holds one YAML document"]),
    ];
    for (text, expected) in cases {
        let got = check(SerdeSchema::<App>::file("app.yaml"), &[("app.yaml", text), ("other.yaml", "not: read\n")]);
        let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, if expected.is_empty() { Ok(()) } else { Err(expected) }, "{text}");
    }
    let missing = check(SerdeSchema::<App>::file("app.yaml"), &[("other.yaml", "a: 1\n")]);
    assert_eq!(missing.unwrap_err()[0].split(" | ").next(), Some("app.yaml: required file is missing"));
}

#[test]
fn a_secret_in_a_wrong_type_is_never_repeated() {
    let got = check(
        SerdeSchema::<App>::file("app.yaml"),
        &[("app.yaml", "greeting: hi\nworkers: sk-CANARY-0123456789abcdef\n")],
    );
    let text = got.unwrap_err().join("\n");
    assert!(!text.contains("CANARY"), "{text}");
    assert!(text.contains("app.yaml:2:10: workers: expected a nonzero u32, found a string"), "{text}");
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Service {
    server: Server,
    routes: BTreeMap<String, String>,
    features: Option<BTreeMap<String, bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Server {
    port: u16,
    token_env: String,
}

fn service_schema() -> SerdeSchema<Service> {
    SerdeSchema::dir().with_check(|s: &Service, cx| {
        for (name, upstream) in &s.routes {
            if upstream.is_empty() {
                cx.report(&format!("routes.{name}"), Problem::new("empty-upstream", "empty upstream"));
            }
        }
        if !cx.env().is_set(&s.server.token_env) {
            cx.report(
                "server.token_env",
                Problem::new("missing-env-var", format!("{} is not set", s.server.token_env))
                    .with_help("set it in the service's environment"),
            );
        }
    })
}

#[test]
fn a_directory_is_a_mapping_from_file_stem_to_document() {
    let server = ("server.yaml", "port: 8080\ntoken_env: TOKEN\n");
    let routes = ("routes.yaml", "a: http://a\n");
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case<'_>] = &[
        (&[server, routes], &[]),
        (&[server, routes, ("features.yaml", "x: true\n")], &[]),
        (&[server], &["routes.yaml: required file is missing | help: create the file; hotconf needs all config files to validate them together"]),
        (
            &[server, routes, ("rotues.yaml", "a: b\n")],
            &["rotues.yaml: unexpected config file | help: did you mean `routes.yaml`? The config files are server.yaml, routes.yaml, features.yaml"],
        ),
        (
            &[server, routes, ("routes.yml", "a: b\n")],
            &["routes.yml: conflicts with routes.yaml | help: keep one of the two files and delete the other"],
        ),
        (
            &[("server.yaml", "port: 99999\ntoken_env: TOKEN\n"), ("routes.yaml", "a: [1]\nb: c\n")],
            &[
                "routes.yaml:1:4: a: expected a string, found a list | help: write one value on the key's line (quote it if it holds `:`, `#`, `[` or `{`)",
                "server.yaml:1:7: port: invalid value number `99999`: expected u16 | help: use a whole number from 0 to 65535",
            ],
        ),
        // A file that does not parse is reported once, and the others are still judged.
        (
            &[("server.yaml", "port: [\n"), ("routes.yaml", "a: 1\nb: [x]\n")],
            &["routes.yaml:2:4: b: expected a string, found a list | help: write one value on the key's line (quote it if it holds `:`, `#`, `[` or `{`)"],
        ),
        // The user's rules, located in the right file.
        (
            &[("server.yaml", "port: 1\ntoken_env: NOPE\n"), ("routes.yaml", "a: http://a\nb: ''\n")],
            &[
                "routes.yaml:2:4: b: empty upstream",
                "server.yaml:2:12: token_env: NOPE is not set | help: set it in the service's environment",
            ],
        ),
    ];
    for (files, expected) in cases {
        let got = check(service_schema(), files);
        match (got, expected.is_empty()) {
            (Ok(()), true) => {}
            (Err(got), false) => {
                for e in *expected {
                    assert!(got.iter().any(|g| g == e), "missing {e:?} in {got:#?}");
                }
            }
            (got, _) => panic!("{files:?}: {got:?}"),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Small {
    workers: NonZeroU32,
}

/// The next event, within a deadline.
fn next_event(events: &hotconf::channel::Receiver<hotconf::ReloadEvent>) -> hotconf::ReloadEvent {
    events.recv_timeout(std::time::Duration::from_secs(10)).expect("an event within the deadline")
}

#[test]
fn with_snapshots_every_version_is_stored_and_numbering_survives_a_restart() {
    let config = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let path = config.path().join("small.yaml");
    std::fs::write(&path, "workers: 1\n").unwrap();
    // A file beside it is neither read nor stored.
    std::fs::write(config.path().join("other.yaml"), "unrelated: [\n").unwrap();
    let start = || {
        hotconf::Hotconf::<Small>::file(&path)
            .with_snapshots(store.path())
            .with_interval(std::time::Duration::from_millis(20))
            .start()
            .unwrap()
    };
    {
        let live = start();
        assert_eq!(live.version(), 1);
        let events = live.events();
        std::fs::write(&path, "workers: 2\n").unwrap();
        match next_event(&events) {
            hotconf::ReloadEvent::Applied { version: 2, diff, .. } => {
                // A one-file config's paths are inside the file, as its diagnostics' are.
                assert_eq!(diff.to_string(), "workers: 1 → 2")
            }
            other => panic!("{other:?}"),
        }
        // Editing the unrelated file changes nothing.
        std::fs::write(config.path().join("other.yaml"), "still: [\n").unwrap();
        assert!(matches!(live.reload(), hotconf::AttemptOutcome::Unchanged { version: 2 }));
    }
    let stored = hotconf::store::SnapshotStore::open(store.path(), Default::default()).unwrap();
    let versions: Vec<(u64, Vec<String>)> =
        stored.list().unwrap().iter().map(|m| (m.version, m.files.iter().map(|f| f.name.clone()).collect())).collect();
    assert_eq!(versions, [(1, vec!["small.yaml".to_owned()]), (2, vec!["small.yaml".to_owned()])]);
    drop(stored);
    // A restart on the same content stores nothing new; a pin reads from disk.
    let live = start();
    assert_eq!(live.version(), 2);
    assert!(matches!(live.pin(1), hotconf::AttemptOutcome::Applied { version: 3, .. }), "{:?}", live.status());
    assert_eq!(live.get().workers.get(), 1);
}

#[test]
fn an_invalid_start_lists_every_problem() {
    let config = tempfile::tempdir().unwrap();
    let path = config.path().join("small.yaml");
    std::fs::write(&path, "workers: 0\nworkrs: 1\n").unwrap();
    let error = hotconf::Hotconf::<Small>::file(&path).start().unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "the initial config is invalid:\n\
             {p}:1:10: workers: invalid value number `0`: expected a nonzero u32\n  help: use a whole number of 1 or more\n\
             {p}:2:1: workrs: unknown key `workrs`\n  help: did you mean `workers`?",
            p = path.display()
        )
    );
}

#[test]
fn a_rule_reporting_many_problems_lists_a_hundred_and_counts_the_rest() {
    let text: String = (0..250).map(|i| format!("w{i}: {i}\n")).collect();
    let schema = SerdeSchema::<BTreeMap<String, u32>>::file("many.yaml").with_check(|map, cx| {
        for key in map.keys() {
            cx.report(key, Problem::new("odd-one", "every key is wrong here"));
        }
    });
    let got = check(schema, &[("many.yaml", &text)]).unwrap_err();
    assert_eq!(got.len(), 101, "{got:#?}");
    assert_eq!(got[0], "many.yaml:1:5: w0: every key is wrong here");
    assert_eq!(
        got[100],
        "many.yaml: and 150 more problems in this file, not listed | help: fix the problems listed first; each file lists its first 100"
    );
}

#[test]
fn a_rule_that_panics_is_a_failed_attempt_and_a_fix_recovers() {
    let config = tempfile::tempdir().unwrap();
    let path = config.path().join("small.yaml");
    std::fs::write(&path, "workers: 1\n").unwrap();
    let live = hotconf::Hotconf::<Small>::file(&path)
        .with_interval(std::time::Duration::from_millis(20))
        .with_check(|s, _| assert_ne!(s.workers.get(), 13, "unlucky"))
        .start()
        .unwrap();
    let events = live.events();
    std::fs::write(&path, "workers: 13\n").unwrap();
    match next_event(&events) {
        hotconf::ReloadEvent::Failed { failure, .. } => {
            assert_eq!(failure.cause, hotconf::FailureCause::Panicked);
            assert!(failure.error.contains("validation panicked"), "{failure}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!((live.version(), live.get().workers.get()), (1, 1));
    std::fs::write(&path, "workers: 2\n").unwrap();
    assert!(matches!(next_event(&events), hotconf::ReloadEvent::Applied { version: 2, .. }));
    assert!(matches!(next_event(&events), hotconf::ReloadEvent::Recovered { version: 2 }));
}

/// Caps on the whole bundle, not only each file: more than 1,024 files, 2 MiB, or (for a serde
/// schema) 50,000 YAML nodes together is refused at the file that crosses the cap, before any of
/// it is judged, so a directory split into many files costs no more than one file at the caps.
#[test]
fn a_bundle_over_a_whole_bundle_cap_is_refused_at_the_file_that_crosses_it() {
    type Dir = BTreeMap<String, BTreeMap<String, u32>>;
    let refused = |files: Vec<SourceFile>| -> Vec<String> {
        let d = validate_with(&SerdeSchema::<Dir>::dir(), Sources::from_files(files), &MapEnv::new()).unwrap_err();
        d.as_slice().iter().map(|d| format!("{} {} {}", d.file, d.kind.code(), d.kind)).collect()
    };
    // 30,001 nodes each: either alone is under the per-file cap; together they are over the bundle's.
    let nodes = |name: &str| SourceFile::new(name, (0..15_000).map(|i| format!("k{i}: 1\n")).collect::<String>());
    let got = refused(vec![nodes("a.yaml"), nodes("b.yaml")]);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("b.yaml bundle-too-large the config files together hold more than 50000 YAML nodes"),
        "{got:?}"
    );
    assert!(validate_with(&SerdeSchema::<Dir>::dir(), Sources::from_files([nodes("a.yaml")]), &MapEnv::new()).is_ok());

    let many = (0..1_025).map(|i| SourceFile::new(format!("f{i:04}.yaml"), "a: 1\n")).collect();
    assert_eq!(
        refused(many),
        ["f1024.yaml bundle-too-large the config files together hold more than 1024 files; this file is past the limit, and nothing is judged"]
    );

    let comments = |name: String| SourceFile::new(name, "# padding\n".repeat(92_000));
    let big = (0..3).map(|i| comments(format!("f{i}.yaml"))).collect();
    assert_eq!(
        refused(big),
        ["f2.yaml bundle-too-large the config files together hold more than 2 MiB; this file is past the limit, and nothing is judged"]
    );
}

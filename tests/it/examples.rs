//! The examples' own code, run against temporary directories: the one-file example picks up an
//! edit and reports a broken one with line:column, keeping the running value.

use std::time::{Duration, Instant};

use hotconf::ReloadEvent;

#[path = "../../examples/one_file.rs"]
#[allow(dead_code)]
mod one_file;

const DEADLINE: Duration = Duration::from_secs(10);

/// The next event, waiting at most [`DEADLINE`].
fn next_event(events: &hotconf::channel::Receiver<ReloadEvent>) -> ReloadEvent {
    events.recv_timeout(DEADLINE).expect("an event within the deadline")
}

#[test]
fn one_file_example_applies_an_edit_and_rejects_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.yaml");
    std::fs::write(&path, "greeting: hello\nworkers: 4\n").unwrap();
    let live = hotconf::Hotconf::<one_file::App>::file(&path).start().unwrap();
    assert_eq!((live.version(), live.get().greeting.as_str(), live.get().workers.get()), (1, "hello", 4));
    let events = live.events();

    std::fs::write(&path, "greeting: bonjour\nworkers: 8\n").unwrap();
    let started = Instant::now();
    match next_event(&events) {
        ReloadEvent::Applied { version, diff, .. } => {
            assert_eq!(version, 2);
            let diff = diff.to_string();
            assert!(diff.contains("greeting") && diff.contains("workers"), "{diff}");
        }
        other => panic!("expected applied, got {other:?}"),
    }
    assert!(started.elapsed() < DEADLINE);
    assert_eq!((live.get().greeting.as_str(), live.get().workers.get()), ("bonjour", 8));

    std::fs::write(&path, "greeting: [oops]\nworkers: 0\nworkrs: 3\n").unwrap();
    match next_event(&events) {
        ReloadEvent::Rejected { diagnostics, .. } => assert_eq!(
            diagnostics.to_string(),
            format!(
                "{p}:1:11: greeting: expected a string, found a list\n  help: write one value on the key's line (quote it if it holds `:`, `#`, `[` or `{{`)\n\
                 {p}:2:10: workers: invalid value number `0`: expected a nonzero u32\n  help: use a whole number of 1 or more\n\
                 {p}:3:1: workrs: unknown key `workrs`\n  help: did you mean `workers`?",
                p = path.display()
            )
        ),
        other => panic!("expected rejected, got {other:?}"),
    }
    assert_eq!((live.version(), live.get().greeting.as_str()), (2, "bonjour"));
    assert!(live.status().failing);

    // A fix ends the failure: applied, then recovered.
    std::fs::write(&path, "greeting: hi\nworkers: 1\n").unwrap();
    assert!(matches!(next_event(&events), ReloadEvent::Applied { version: 3, .. }));
    assert!(matches!(next_event(&events), ReloadEvent::Recovered { version: 3 }));
    // A pin brings back a kept version (memory only).
    assert!(matches!(live.pin(1), hotconf::AttemptOutcome::Applied { version: 4, .. }), "{:?}", live.status());
    assert_eq!(live.get().greeting, "hello");
}

/// The one-file example, from its first `use` to its first read of the live value (serde types
/// and one builder chain), is at most 15 lines of code: what a new user copies.
#[test]
fn the_one_file_example_reads_the_live_value_within_15_lines() {
    let text = std::fs::read_to_string("examples/one_file.rs").unwrap();
    let code: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("//")).collect();
    let first_use = code.iter().position(|l| l.starts_with("use ")).unwrap();
    let first_read = code.iter().position(|l| l.contains("live.read()") || l.contains("live.get()")).unwrap();
    let lines = first_read - first_use + 1;
    assert!(lines <= 15, "{lines} lines: {:#?}", &code[first_use..=first_read]);
}

#[path = "../../examples/multi_file.rs"]
#[allow(dead_code)]
mod multi_file;

#[path = "../../examples/components.rs"]
#[allow(dead_code)]
mod components_example;

#[test]
fn multi_file_example_checks_routes_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    for entry in std::fs::read_dir("examples/multi").unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let live = multi_file::start(dir.path().to_str().unwrap()).unwrap();
    assert_eq!(live.get().routes["support"], ["groq"]);
    let events = live.events();
    write("routes.yaml", "support:\n  - groq\n  - local\n  - grok\n");
    match next_event(&events) {
        // Files are named under the directory as it was given, so a terminal can jump there.
        ReloadEvent::Rejected { diagnostics, .. } => assert_eq!(
            diagnostics.to_string(),
            format!(
                "{d}/routes.yaml:3:5: support[1]: provider `local` is disabled\n\
                 {d}/routes.yaml:4:5: support[2]: unknown provider `grok`\n  help: define it in providers.yaml",
                d = dir.path().display()
            )
        ),
        other => panic!("expected rejected, got {other:?}"),
    }
    write("limits.yaml", "groq: 30\n");
    write("routes.yaml", "support: [groq]\n");
    assert!(matches!(next_event(&events), ReloadEvent::Applied { version: 2, .. }));
    assert_eq!(live.get().limits.as_ref().map(|l| l["groq"].get()), Some(30));
}

#[test]
fn components_example_acknowledges_each_version() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.yaml");
    std::fs::write(&path, "greeting: hello\nworkers: 4\n").unwrap();
    let pool = components_example::Pool::default();
    let size = std::sync::Arc::clone(&pool.size);
    let live = components_example::start(path.to_str().unwrap(), pool).unwrap();
    assert_eq!(size.load(Ordering::Acquire), 4);
    std::fs::write(&path, "greeting: hello\nworkers: 6\n").unwrap();
    assert!(matches!(next_event(&live.events()), ReloadEvent::Applied { version: 2, .. }));
    assert_eq!(size.load(Ordering::Acquire), 6);
    let components: Vec<(String, Option<u64>)> =
        live.status().components.iter().map(|c| (c.name.to_string(), c.applied_version)).collect();
    assert_eq!(components, [("pool".to_owned(), Some(2))]);
}

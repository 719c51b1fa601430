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
    let live = one_file::start(path.to_str().unwrap()).unwrap();
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
            "app.yaml:1:1: greeting: expected a string, found a list\n  help: write a string here\n\
             app.yaml:2:1: workers: invalid value number `0`: expected a nonzero u32\n  help: write a nonzero u32 here\n\
             app.yaml:3:1: workrs: unknown key `workrs`\n  help: did you mean `workers`?"
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

//! What a new user meets in their first hour, as they meet it: `main`'s `?` on a bad file, a
//! rejected edit in the logs, durations, unknown keys without `deny_unknown_fields`, environment
//! overrides, a cloned handle, the versions kept. The first two run the real example program.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hotconf::{AttemptOutcome, Hotconf, MapEnv, ReloadEvent};
use serde::Deserialize;

const DEADLINE: Duration = Duration::from_secs(15);

/// The `one_file` example's binary: `cargo test` builds every example, but a filtered run
/// (`--test it`) does not, so it is brought up to date here (at once when it is).
fn example_binary() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo).args(["build", "--quiet", "--example", "one_file"]).status().unwrap();
        assert!(status.success(), "building the example");
    });
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().and_then(Path::parent).unwrap();
    debug.join("examples").join(format!("one_file{}", std::env::consts::EXE_SUFFIX))
}

fn run_example(path: &Path) -> Child {
    Command::new(example_binary())
        .arg(path)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for the child to exit within the deadline; its exit code and stderr.
fn finish(mut child: Child) -> (Option<i32>, String) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
            return (status.code(), stderr);
        }
        assert!(started.elapsed() < DEADLINE, "the example did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn main_returning_box_dyn_error_prints_the_readable_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.yaml");
    std::fs::write(&path, "greeting: hi\nworkrs: 4\ntimeout: 5 sec\n").unwrap();
    let (code, stderr) = finish(run_example(&path));
    assert_eq!(code, Some(1), "{stderr}");
    let p = path.display();
    assert_eq!(
        stderr,
        format!(
            "Error: the initial config is invalid:\n\
             {p}:2:1: workrs: unknown key `workrs`\n  help: did you mean `workers`?\n\
             {p}:3:10: timeout: expected a duration, found a string that is not a duration\n  \
             help: write a number and a unit, such as `250ms`, `5s`, `2m` or `1h30m` (units: ns, us, ms, s, m, h, d)\n"
        )
    );
    assert!(!stderr.contains("Diagnostic {") && !stderr.contains("Some("), "{stderr}");

    // A directory that is not there: the path and the OS error, in words.
    let missing = dir.path().join("nowhere").join("app.yaml");
    let (code, stderr) = finish(run_example(&missing));
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!(
            "Error: cannot read config directory {}: No such file or directory (os error 2)\n",
            dir.path().join("nowhere").display()
        )
    );
}

#[test]
fn a_rejected_edit_is_logged_through_tracing_with_every_problem_and_its_help() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.yaml");
    std::fs::write(&path, "greeting: hi\nworkers: 2\ntimeout: 250ms\n").unwrap();
    let mut child = run_example(&path);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first, "v1: hi (2 workers)\n");

    // The log is read on a thread so the deadline holds even if no line comes.
    let (lines, seen) = hotconf::channel::unbounded();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    std::fs::write(&path, "greeting: hi\nworkers: 0\nworkrs: 3\n").unwrap();
    let mut log = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while !log.iter().any(|l: &String| l.contains("config rejected")) {
        match seen.recv_deadline(deadline) {
            Ok(line) => log.push(line),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = log.join("\n");
    let p = path.display();
    assert!(log.contains("config rejected; previous config kept"), "{log}");
    let line = |needle: &str| log.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle}: {log}"));
    let workers = line("invalid value number `0`: expected a nonzero u32");
    assert!(workers.contains(&format!("location={p}:2:10")), "{workers}");
    assert!(workers.contains(r#"help="use a whole number of 1 or more""#), "{workers}");
    let typo = line("unknown key `workrs`");
    assert!(typo.contains(&format!("location={p}:3:1")), "{typo}");
    assert!(typo.contains(r#"help="did you mean `workers`?""#), "{typo}");
}

#[derive(Debug, Deserialize, PartialEq)]
struct Service {
    server: Server,
    #[serde(default)]
    shutdown: Option<Duration>,
    db: Db,
}

/// No `deny_unknown_fields` anywhere.
#[derive(Debug, Deserialize, PartialEq)]
struct Server {
    port: u16,
    workers: u32,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Db {
    url: String,
    #[serde(default)]
    timeout: Option<Duration>,
}

const SERVICE: &str = "server:\n  port: 80\n  workers: 4\nshutdown: 5s\ndb:\n  url: sqlite://local\n";

#[test]
fn an_env_override_applies_one_is_refused_by_name_and_an_unknown_key_is_caught_without_deny() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service.yaml");
    std::fs::write(&path, SERVICE).unwrap();
    let canary = "sk-live-CANARY0123456789abcdef";
    let env = MapEnv::new()
        .with("SVC__DB__URL", "postgres://db/app")
        .with("SVC__DB__TIMEOUT", "250ms")
        .with("SVC__SERVER__WORKERS", "8");
    let live = Hotconf::<Service>::file(&path).with_env(env).with_env_prefix("SVC").start().unwrap();
    let service = live.get();
    assert_eq!((service.server.port, service.server.workers), (80, 8));
    assert_eq!((service.db.url.as_str(), service.db.timeout), ("postgres://db/app", Some(Duration::from_millis(250))));
    assert_eq!(service.shutdown, Some(Duration::from_secs(5)));

    // A bad value from the environment: named by its variable, its value never shown.
    let env = MapEnv::new().with("SVC__SERVER__PORT", canary).with("SVC__SERVER__WORKRS", "2");
    let error = Hotconf::<Service>::file(&path).with_env(env).with_env_prefix("SVC").start().unwrap_err();
    let report = format!("{error:?}");
    assert_eq!(
        report,
        "the initial config is invalid:\n\
         $SVC__SERVER__PORT: server.port: expected u16, found a string\n  help: write a number in digits, without quotes (such as `30`)\n\
         $SVC__SERVER__WORKRS: server.workrs: unknown key `workrs`\n  help: did you mean `workers`?"
    );
    assert!(!report.contains(canary));

    // An unknown key in the file, with no `deny_unknown_fields` on any struct.
    let events = live.events();
    std::fs::write(&path, SERVICE.replace("workers: 4", "workers: 4\n  wokers: 5")).unwrap();
    match events.recv_timeout(DEADLINE).unwrap() {
        ReloadEvent::Rejected { diagnostics, .. } => assert_eq!(
            diagnostics.to_string(),
            format!("{}:4:3: server.wokers: unknown key `wokers`\n  help: did you mean `workers`?", path.display())
        ),
        other => panic!("expected rejected, got {other}"),
    }
    assert_eq!(live.get().server.workers, 8);
}

#[test]
fn unknown_keys_can_be_warnings_and_durations_are_human() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service.yaml");
    std::fs::write(&path, SERVICE.replace("workers: 4", "workers: 4\n  wokers: 5")).unwrap();
    let live = Hotconf::<Service>::file(&path).with_unknown_keys_as_warnings().start().unwrap();
    assert_eq!(live.get().server.workers, 4);

    for (text, expected) in [("250ms", 250), ("2m", 120_000), ("1h30m", 5_400_000), ("1.5s", 1_500), ("0", 0)] {
        std::fs::write(&path, SERVICE.replace("5s", text)).unwrap();
        assert!(live.reload().is_applied(), "{text}");
        assert_eq!(live.get().shutdown, Some(Duration::from_millis(expected)), "{text}");
    }
    std::fs::write(&path, SERVICE.replace("5s", "5")).unwrap();
    match live.reload() {
        AttemptOutcome::Rejected { diagnostics } => assert_eq!(
            diagnostics.to_string(),
            format!(
                "{}:4:11: shutdown: expected a duration, found a number without a unit\n  \
                 help: write a number and a unit, such as `250ms`, `5s`, `2m` or `1h30m` (units: ns, us, ms, s, m, h, d)",
                path.display()
            )
        ),
        other => panic!("expected rejected, got {other}"),
    }
}

#[test]
fn a_cloned_handle_reads_the_same_config_and_lists_the_versions_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service.yaml");
    std::fs::write(&path, SERVICE).unwrap();
    let live =
        Hotconf::<Service>::file(&path).with_interval(Duration::from_secs(3600)).with_retention(2).start().unwrap();
    let handler = live.clone();
    drop(live); // not the last clone: the pipeline runs on
    for workers in 5..8 {
        std::fs::write(&path, SERVICE.replace("workers: 4", &format!("workers: {workers}"))).unwrap();
        assert!(handler.reload().is_applied());
    }
    assert_eq!((handler.version(), handler.read().server.workers), (4, 7));
    assert_eq!(handler.get().server.workers, 7);
    assert_eq!(handler.versions().unwrap(), [3, 4], "retention 2");
    assert!(matches!(handler.pin(1), AttemptOutcome::NotFound { version: 1, .. }));
}

/// An async service awaits events on its runtime's thread: the wait never blocks it (a ticker
/// task on the same one-thread runtime keeps running), and the event is the one the channel gets.
#[tokio::test(flavor = "current_thread")]
async fn an_async_subscription_never_blocks_the_runtime_thread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service.yaml");
    std::fs::write(&path, SERVICE).unwrap();
    let live = Hotconf::<Service>::file(&path).with_interval(Duration::from_millis(20)).start().unwrap();
    let mut events = live.subscribe();
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let ticker = {
        let ticks = std::sync::Arc::clone(&ticks);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    // Let the ticker run a little before the edit, so the wait below spans many ticks.
    tokio::time::sleep(Duration::from_millis(50)).await;
    std::fs::write(&path, SERVICE.replace("workers: 4", "workers: 9")).unwrap();
    let before = ticks.load(std::sync::atomic::Ordering::Relaxed);
    let event = tokio::time::timeout(DEADLINE, events.next()).await.expect("an event within the deadline");
    assert!(matches!(event, Some(ReloadEvent::Applied { version: 2, .. })), "{event:?}");
    assert!(ticks.load(std::sync::atomic::Ordering::Relaxed) > before, "the runtime thread kept running while waiting");
    assert_eq!(live.get().server.workers, 9);
    ticker.abort();

    // Once the pipeline is gone, the subscription ends.
    drop(live);
    assert!(events.next().await.is_none());
}

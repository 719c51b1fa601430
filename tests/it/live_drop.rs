//! Dropping a `Live` stops and joins every thread it started, within a bound. Run in a child
//! process (this test binary, re-executed with `CHILD` set) so that the threads counted are this
//! `Live`'s own, not those of tests running beside it.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotconf::{Component, Publication};
use serde::Deserialize;

/// Set in the child: run the body instead of spawning.
const CHILD: &str = "HOTCONF_TEST_LIVE_DROP_CHILD";
/// The whole child run, start to exit.
const DEADLINE: Duration = Duration::from_secs(30);
/// The drop alone.
const DROP_BOUND: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct App {
    workers: std::num::NonZeroU32,
}

struct Pool;

impl Component<App> for Pool {
    type Part = u32;

    fn name(&self) -> &'static str {
        "pool"
    }

    fn build(&mut self, publication: &Publication<App>) -> u32 {
        publication.config().workers.get()
    }
}

/// This process's thread names, sorted (`comm`, at most 15 bytes each).
fn thread_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|comm| comm.trim_end().to_owned())
        .collect();
    names.sort();
    names
}

/// The child's body: a `Live` with snapshots and a component applies an edit, is dropped, and
/// reports the threads before and after and how long the drop took.
fn child() {
    let config = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let path = config.path().join("app.yaml");
    std::fs::write(&path, "workers: 1\n").unwrap();
    let live = hotconf::Hotconf::<App>::file(&path)
        .with_snapshots(store.path())
        .with_component(Pool)
        .with_interval(Duration::from_millis(20))
        .start()
        .unwrap();
    let events = live.events();
    std::fs::write(&path, "workers: 2\n").unwrap();
    match events.recv_timeout(Duration::from_secs(10)) {
        Ok(hotconf::ReloadEvent::Applied { version: 2, .. }) => {}
        other => panic!("{other:?}"),
    }
    let value: Arc<App> = live.get();
    println!("threads before: {}", thread_names().join(","));
    let started = Instant::now();
    drop(live);
    let took = started.elapsed();
    println!("threads after: {}", thread_names().join(","));
    println!("drop took ms: {}", took.as_millis());
    // Values read before the drop stay valid.
    assert_eq!(value.workers.get(), 2);
}

#[test]
fn dropping_live_joins_every_thread_it_started() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let mut process = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "live_drop::dropping_live_joins_every_thread_it_started", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("re-execute the test binary");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = process.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            process.kill().unwrap();
            process.wait().unwrap();
            panic!("the child did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    process.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    process.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.success(), "child failed: {status}\n{stdout}\n{stderr}");
    let line = |prefix: &str| -> String {
        stdout
            .lines()
            // libtest prints `test … ... ` before the child's first line.
            .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("no `{prefix}` in\n{stdout}\n{stderr}"))
            .to_owned()
    };
    let ours = |names: String| -> Vec<String> {
        names.split(',').filter(|n| n.starts_with("hotconf-")).map(str::to_owned).collect()
    };
    let before = ours(line("threads before: "));
    // `comm` keeps the first 15 bytes of a thread's name.
    for expected in ["hotconf-poller", "hotconf-reloader", "hotconf-validator", "hotconf-watchdog", "hotconf-pool"] {
        assert!(
            before.iter().any(|n| expected.starts_with(n.as_str())),
            "{expected} not running before the drop: {before:?}"
        );
    }
    assert_eq!(ours(line("threads after: ")), Vec::<String>::new(), "threads left after the drop (before: {before:?})");
    let took = Duration::from_millis(line("drop took ms: ").parse().unwrap());
    assert!(took < DROP_BOUND, "the drop took {took:?}");
}

//! Change detection with real files: every save style through a hand-driven `PollCore` on the real
//! filesystem (a tick after every step, the worst placement), then a few runs of the real `Poller`
//! thread that wait for events with a deadline.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::clock::{Clock, FakeClock};
use super::debounce::StableChangeSet;
use super::poller::{PollCore, Poller, PollerConfig, PollerHandle};
use super::scan::{FakeFs, RealFs};
use super::{PollErrorKind, WatchEvent};
use crate::source::{SourceFile, Sources};

const DEADLINE: Duration = Duration::from_secs(10);

/// One step of a save, applied to the config directory.
type Step = fn(&Path);

fn write(dir: &Path, name: &str, content: &str) {
    fs::write(dir.join(name), content).unwrap();
}

/// Ticks a hand-driven core on the real filesystem.
struct Hand {
    dir: tempfile::TempDir,
    core: PollCore,
    clock: FakeClock,
}

impl Hand {
    /// A directory prepared by `setup`, watched from the state it holds (its baseline).
    fn new(setup: fn(&Path)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        setup(dir.path());
        let baseline = Sources::read_dir(dir.path(), Sources::DEFAULT_MAX_FILE_BYTES).unwrap();
        let core = PollCore::new(&PollerConfig::new(dir.path()).with_baseline(baseline));
        Self { dir, core, clock: FakeClock::new() }
    }

    fn tick(&mut self) -> Vec<WatchEvent> {
        let events = self.core.tick(&RealFs, self.clock.now());
        self.clock.advance(Duration::from_millis(250));
        events
    }

    /// Every change set emitted over `n` ticks (a change's first sighting, offered to be judged
    /// ahead, is skipped); panics on any other event.
    fn changes(&mut self, n: usize) -> Vec<StableChangeSet> {
        (0..n)
            .flat_map(|_| self.tick())
            .filter_map(|event| match event {
                WatchEvent::Changed(set) => Some(set),
                WatchEvent::Settling(_) => None,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }
}

fn describe(set: &StableChangeSet) -> Vec<String> {
    set.changes.iter().map(ToString::to_string).collect()
}

/// Applies `steps` to a directory prepared by `setup`, ticking after each, then ticks until quiet:
/// expects exactly one change set with `expected` changes (none at all if `expected` is empty) whose
/// sources are the final files byte for byte.
fn check(setup: fn(&Path), steps: &[Step], expected: &[&str]) {
    let mut hand = Hand::new(setup);
    let mut sets = Vec::new();
    for step in steps {
        step(hand.dir.path());
        sets.extend(hand.changes(1));
    }
    sets.extend(hand.changes(3));
    let final_sources = Sources::read_dir(hand.dir.path(), Sources::DEFAULT_MAX_FILE_BYTES).unwrap();
    if expected.is_empty() {
        assert!(sets.is_empty(), "expected nothing, got {:?}", sets.iter().map(describe).collect::<Vec<_>>());
        return;
    }
    assert_eq!(sets.len(), 1, "{:?}", sets.iter().map(describe).collect::<Vec<_>>());
    assert_eq!(describe(&sets[0]), expected);
    assert_eq!(sets[0].sources, final_sources);
}

fn two_files(dir: &Path) {
    write(dir, "a.yaml", "a: 1\n");
    write(dir, "b.yaml", "b: 1\n");
}

#[test]
fn atomic_rename() {
    check(
        two_files,
        &[|d| write(d, "a.yaml.tmp", "a: 2\n"), |d| fs::rename(d.join("a.yaml.tmp"), d.join("a.yaml")).unwrap()],
        &["a.yaml modified"],
    );
}

#[test]
fn in_place_truncate_then_write() {
    fn append(dir: &Path, text: &str) {
        use std::io::Write;
        fs::OpenOptions::new().append(true).open(dir.join("a.yaml")).unwrap().write_all(text.as_bytes()).unwrap();
    }
    check(
        two_files,
        &[
            |d| fs::OpenOptions::new().write(true).open(d.join("a.yaml")).unwrap().set_len(0).unwrap(),
            |d| append(d, "a: "),
            |d| append(d, "22\nextra: true\n"),
        ],
        &["a.yaml modified"],
    );
}

#[test]
fn vim_rename_away_and_write_new() {
    check(
        two_files,
        &[
            |d| write(d, ".a.yaml.swp", "swap"),
            |d| write(d, "4913", ""),
            |d| fs::remove_file(d.join("4913")).unwrap(),
            |d| fs::rename(d.join("a.yaml"), d.join("a.yaml~")).unwrap(),
            |d| write(d, "a.yaml", "a: 3\n"),
            |d| fs::remove_file(d.join("a.yaml~")).unwrap(),
        ],
        &["a.yaml modified"],
    );
}

#[test]
fn jetbrains_safe_write() {
    check(
        two_files,
        &[
            |d| write(d, "a.yaml___jb_tmp___", "a: 4\n"),
            |d| fs::rename(d.join("a.yaml"), d.join("a.yaml___jb_old___")).unwrap(),
            |d| fs::rename(d.join("a.yaml___jb_tmp___"), d.join("a.yaml")).unwrap(),
            |d| fs::remove_file(d.join("a.yaml___jb_old___")).unwrap(),
        ],
        &["a.yaml modified"],
    );
}

#[test]
fn sed_in_place() {
    check(
        two_files,
        &[|d| write(d, "sedX7k2Qa", "b: 5\n"), |d| fs::rename(d.join("sedX7k2Qa"), d.join("b.yaml")).unwrap()],
        &["b.yaml modified"],
    );
}

/// A Kubernetes ConfigMap mount: `name -> ..data/name`, `..data -> ..<timestamp>`.
#[cfg(unix)]
fn configmap(dir: &Path) {
    use std::os::unix::fs::symlink;
    fs::create_dir(dir.join("..2026_11_29_12_00_00.1")).unwrap();
    write(dir, "..2026_11_29_12_00_00.1/a.yaml", "a: 1\n");
    write(dir, "..2026_11_29_12_00_00.1/b.yaml", "b: 1\n");
    symlink("..2026_11_29_12_00_00.1", dir.join("..data")).unwrap();
    symlink("..data/a.yaml", dir.join("a.yaml")).unwrap();
    symlink("..data/b.yaml", dir.join("b.yaml")).unwrap();
}

#[cfg(unix)]
fn swap_data(dir: &Path, generation: u32, a: &str, b: &str) {
    use std::os::unix::fs::symlink;
    let old = fs::read_link(dir.join("..data")).unwrap();
    let new = format!("..2026_11_29_12_00_00.{generation}");
    fs::create_dir(dir.join(&new)).unwrap();
    write(dir, &format!("{new}/a.yaml"), a);
    write(dir, &format!("{new}/b.yaml"), b);
    symlink(&new, dir.join("..data_tmp")).unwrap();
    fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    fs::remove_dir_all(dir.join(old)).unwrap();
}

#[cfg(unix)]
#[test]
fn configmap_data_swap_is_one_change_of_all_files() {
    check(configmap, &[|d| swap_data(d, 2, "a: 2\n", "b: 2\n")], &["a.yaml modified", "b.yaml modified"]);
}

#[test]
fn burst_of_edits_each_seen_by_a_tick_gives_one_set() {
    check(
        two_files,
        &[
            |d| write(d, "a.yaml", "a: 10\n"),
            |d| write(d, "a.yaml", "a: 11\n"),
            |d| write(d, "b.yaml", "b: 12\n"),
            |d| write(d, "a.yaml", "a: 13\n"),
            |d| write(d, "a.yaml", "a: 14\n"),
        ],
        &["a.yaml modified", "b.yaml modified"],
    );
}

#[test]
fn ignored_names_and_env_never_change_anything() {
    check(
        two_files,
        &[
            |d| write(d, ".env", "SECRET=1\n"),
            |d| write(d, ".env", "SECRET=2\n"),
            |d| write(d, "a.yaml.swp", "x"),
            |d| write(d, "a.yaml.swx", "x"),
            |d| write(d, "a.yaml~", "x"),
            |d| write(d, "#a.yaml#", "x"),
            |d| write(d, "a.tmp.yaml", "x"),
            |d| write(d, "new.yaml.tmp", "x"),
            |d| write(d, ".hidden.yaml", "x"),
            |d| write(d, ".a.yaml.Xy12Ab", "x"),
            |d| write(d, ".nfs0000000000a1", "x"),
            |d| write(d, ".ansible_tmp.yaml", "x"),
            |d| write(d, "notes.txt", "x"),
            |d| write(d, "4913", ""),
            |d| fs::create_dir(d.join("sub")).unwrap(),
            |d| write(d, "sub/c.yaml", "c: 1\n"),
            #[cfg(unix)]
            |d| std::os::unix::fs::symlink("user@host.1234", d.join(".#a.yaml")).unwrap(),
        ],
        &[],
    );
}

#[test]
fn same_size_rewrite_with_mtime_restored() {
    check(
        two_files,
        &[|d| {
            let path = d.join("a.yaml");
            let mtime = fs::metadata(&path).unwrap().modified().unwrap();
            fs::write(&path, "a: 9\n").unwrap();
            fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
        }],
        &["a.yaml modified"],
    );
}

#[test]
fn touched_is_never_emitted() {
    check(
        two_files,
        &[|d| {
            let later = SystemTime::now() + Duration::from_secs(3600);
            fs::File::options().write(true).open(d.join("a.yaml")).unwrap().set_modified(later).unwrap();
        }],
        &[],
    );
}

#[test]
fn deleted_and_restored_before_stable_is_nothing() {
    check(two_files, &[|d| fs::remove_file(d.join("b.yaml")).unwrap(), |d| write(d, "b.yaml", "b: 1\n")], &[]);
}

#[test]
fn deleted_then_restored() {
    let mut hand = Hand::new(two_files);
    fs::remove_file(hand.dir.path().join("b.yaml")).unwrap();
    let sets = hand.changes(3);
    assert_eq!(sets.iter().map(describe).collect::<Vec<_>>(), [vec!["b.yaml deleted"]]);
    write(hand.dir.path(), "b.yaml", "b: 1\n");
    let sets = hand.changes(3);
    assert_eq!(sets.iter().map(describe).collect::<Vec<_>>(), [vec!["b.yaml created"]]);
}

#[test]
fn renamed_and_yml() {
    check(two_files, &[|d| fs::rename(d.join("b.yaml"), d.join("b.yml")).unwrap()], &["b.yml renamed from b.yaml"]);
}

// The real poller thread.

fn spawn(dir: &Path, interval: Duration) -> (PollerHandle, crossbeam_channel::Receiver<WatchEvent>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let baseline = Sources::read_dir(dir, Sources::DEFAULT_MAX_FILE_BYTES).unwrap();
    let config = PollerConfig::new(dir).with_interval(interval).with_baseline(baseline);
    (Poller::spawn(config, tx).unwrap(), rx)
}

fn next_change(rx: &crossbeam_channel::Receiver<WatchEvent>) -> StableChangeSet {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        match rx.recv_deadline(deadline).expect("a change set within the deadline") {
            WatchEvent::Changed(set) => return set,
            WatchEvent::Settling(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn poller_sees_an_atomic_rename() {
    let dir = tempfile::tempdir().unwrap();
    two_files(dir.path());
    let (handle, rx) = spawn(dir.path(), Duration::from_millis(20));
    write(dir.path(), "a.yaml.tmp", "a: 2\n");
    fs::rename(dir.path().join("a.yaml.tmp"), dir.path().join("a.yaml")).unwrap();
    let set = next_change(&rx);
    assert_eq!(describe(&set), ["a.yaml modified"]);
    assert_eq!(set.sources.get("a.yaml").unwrap().bytes(), Some(&b"a: 2\n"[..]));
    assert!(set.emitted_at >= set.first_seen);
    drop(handle);
    assert!(rx.recv_timeout(DEADLINE).is_err(), "the poller stopped and dropped its sender");
}

#[cfg(unix)]
#[test]
fn poller_sees_a_configmap_swap_as_one_set() {
    let dir = tempfile::tempdir().unwrap();
    configmap(dir.path());
    let (_handle, rx) = spawn(dir.path(), Duration::from_millis(20));
    swap_data(dir.path(), 2, "a: 2\n", "b: 2\n");
    let set = next_change(&rx);
    assert_eq!(describe(&set), ["a.yaml modified", "b.yaml modified"]);
    assert_eq!(set.sources.get("b.yaml").unwrap().bytes(), Some(&b"b: 2\n"[..]));
}

#[test]
fn poller_burst_of_five_edits_fifty_ms_apart_gives_one_set() {
    let dir = tempfile::tempdir().unwrap();
    two_files(dir.path());
    let (handle, rx) = spawn(dir.path(), Duration::from_millis(250));
    for i in 0..5 {
        if i > 0 {
            // The writer's pacing (the scenario), not a wait for the poller.
            std::thread::sleep(Duration::from_millis(50));
        }
        write(dir.path(), "a.yaml", &format!("a: {}\n", 100 + i));
    }
    let set = next_change(&rx);
    assert_eq!(set.sources.get("a.yaml").unwrap().bytes(), Some(&b"a: 104\n"[..]));
    assert!(handle.poll_now_and_wait(DEADLINE));
    assert!(handle.poll_now_and_wait(DEADLINE));
    assert!(rx.try_recv().is_err(), "exactly one change set");
}

#[test]
fn poller_emits_nothing_for_ignored_files() {
    let dir = tempfile::tempdir().unwrap();
    two_files(dir.path());
    let (handle, rx) = spawn(dir.path(), Duration::from_secs(3600));
    write(dir.path(), ".env", "X=1\n");
    write(dir.path(), "a.yaml.swp", "x");
    for _ in 0..3 {
        assert!(handle.poll_now_and_wait(DEADLINE));
    }
    assert!(rx.try_recv().is_err());
    // poll_now (SIGHUP) picks up a real change without waiting for the hour-long interval.
    write(dir.path(), "a.yaml", "a: 7\n");
    assert!(handle.poll_now_and_wait(DEADLINE));
    handle.poll_now();
    assert_eq!(describe(&next_change(&rx)), ["a.yaml modified"]);
}

#[test]
fn poller_reports_a_hung_read_once_and_recovers() {
    let fs = FakeFs::new();
    fs.write("a.yaml", "a: 1");
    let (tx, rx) = crossbeam_channel::unbounded();
    let config = PollerConfig::new("/cfg")
        .with_interval(Duration::from_millis(10))
        .with_read_timeout(Duration::from_millis(50))
        .with_baseline(Sources::from_files([SourceFile::new("a.yaml", "a: 1")]));
    fs.set_read_delay(Duration::from_millis(600));
    let handle = Poller::spawn_with(config, fs.clone(), tx).unwrap();
    match rx.recv_timeout(DEADLINE).unwrap() {
        WatchEvent::PollError { kind: PollErrorKind::Timeout, path, .. } => {
            assert_eq!(path.as_deref(), Some(Path::new("/cfg")))
        }
        other => panic!("unexpected {other:?}"),
    }
    fs.set_read_delay(Duration::ZERO);
    match rx.recv_timeout(DEADLINE).unwrap() {
        WatchEvent::Recovered { path, .. } => assert_eq!(path.as_deref(), Some(Path::new("/cfg"))),
        other => panic!("unexpected {other:?}"),
    }
    fs.write("a.yaml", "a: 2");
    assert_eq!(describe(&next_change(&rx)), ["a.yaml modified"]);
    drop(handle);
}

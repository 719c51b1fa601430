//! The store's own tests: property tests over generated sequences of store operations, with
//! crashes injected at every write step (the directory is left exactly as a `kill -9` there would
//! leave it), and two writers sharing one store.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::SystemTime;

use proptest::prelude::*;

use super::diff::semantic_diff;
use super::*;
use crate::source::{SourceFile, Sources};

const RETENTION: usize = 3;

/// A small pool of bundles, so sequences often repeat content (unchanged, same-as, restore).
fn bundle(i: usize) -> Sources {
    let mut files = vec![SourceFile::new("a.yaml", format!("x: {i}\nname: n{}\n", i % 3))];
    if i % 2 == 1 {
        files.push(SourceFile::new("b.yaml", format!("y: [{i}, 1]\n")));
    }
    Sources::from_files(files)
}

#[derive(Debug, Clone)]
enum Op {
    Commit { content: usize },
    CrashCommit { content: usize, at: usize },
    Reopen,
    Prune { crash_at: Option<usize> },
    SetRunning { pick: usize },
    Restore { pick: usize },
    Corrupt { pick: usize, how: u8 },
    Leftover,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..5usize).prop_map(|content| Op::Commit { content }),
        3 => (0..5usize, 0..14usize).prop_map(|(content, at)| Op::CrashCommit { content, at }),
        1 => Just(Op::Reopen),
        1 => proptest::option::of(0..4usize).prop_map(|crash_at| Op::Prune { crash_at }),
        1 => any::<usize>().prop_map(|pick| Op::SetRunning { pick }),
        2 => any::<usize>().prop_map(|pick| Op::Restore { pick }),
        1 => (any::<usize>(), 0..4u8).prop_map(|(pick, how)| Op::Corrupt { pick, how }),
        1 => Just(Op::Leftover),
    ]
}

/// What the test knows: the content of every version it saw created, the damaged ones, the running one.
#[derive(Default)]
struct Model {
    content: BTreeMap<u64, usize>,
    damaged: BTreeSet<u64>,
    running: Option<u64>,
    max_seen: u64,
}

fn open(dir: &Path) -> SnapshotStore {
    SnapshotStore::open(dir, StoreConfig::default().with_retention(RETENTION)).unwrap()
}

fn versions(store: &SnapshotStore) -> Vec<u64> {
    store.entries().unwrap().iter().map(Entry::version).collect()
}

fn pick(list: &[u64], pick: usize) -> Option<u64> {
    (!list.is_empty()).then(|| list[pick % list.len()])
}

/// Checks a commit's outcome against the model and records a created version.
fn check_commit(model: &mut Model, before: &[u64], content: usize, commit: &Commit) {
    let newest_intact = before.iter().rev().find(|v| !model.damaged.contains(v)).copied();
    let newest = before.last().copied();
    match commit {
        Commit::Unchanged { version } => {
            assert_eq!(Some(*version), newest, "unchanged must name the newest version");
            assert_eq!(model.content.get(version), Some(&content), "unchanged but content differs");
            assert!(!model.damaged.contains(version), "unchanged pointed at a damaged version");
        }
        Commit::Created(m) => {
            assert!(
                m.version > model.max_seen,
                "version {} reused or not increasing (seen {})",
                m.version,
                model.max_seen
            );
            assert_eq!(m.parent, newest);
            if let Some(newest) = newest.filter(|_| newest_intact == newest) {
                assert_ne!(model.content.get(&newest), Some(&content), "identical content made a version");
            }
            if let Some(same) = m.same_as {
                assert_eq!(model.content.get(&same), Some(&content), "same_as names other content");
            }
            model.content.insert(m.version, content);
            model.max_seen = m.version;
        }
    }
}

/// The invariants that hold after every operation.
fn check_store(store: &SnapshotStore, model: &mut Model) {
    let listed = versions(store);
    assert!(listed.windows(2).all(|w| w[0] < w[1]));
    for &v in &listed {
        let known = model.content.get(&v).copied();
        match store.read(v) {
            Ok(stored) => {
                assert!(!model.damaged.contains(&v), "damaged version {v} read back as intact");
                let content = known.unwrap_or_else(|| panic!("version {v} appeared from nowhere"));
                assert_eq!(stored.sources(), &bundle(content), "version {v} reads back other content");
                model.max_seen = model.max_seen.max(v);
            }
            Err(e) => {
                assert!(model.damaged.contains(&v), "intact version {v} fails to read: {e}");
                assert!(e.is_refusal(), "damage reported as {e:?}");
            }
        }
    }
    if let Some(running) = model.running {
        assert!(listed.contains(&running), "running version {running} was pruned");
    }
}

/// After an open: every version that reads has its `accepted` record, and the log reads whole.
fn every_version_recorded(store: &SnapshotStore) {
    let records = store.audit().read_all().unwrap();
    for v in versions(store) {
        if store.read(v).is_ok() {
            let found = records.iter().any(|r| matches!(r.event, AuditEvent::Accepted { version, .. } if version == v));
            assert!(found, "v{v} has no accepted record after the store was opened");
        }
    }
}

fn no_leftovers(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with(".tmp-") && !name.starts_with(".trash-"), "leftover {name} after open");
    }
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let mut model = Model::default();
    for op in ops {
        let before = versions(&store);
        match op {
            Op::Commit { content } => {
                let commit = store.commit(&bundle(content), Origin::Change).unwrap();
                check_commit(&mut model, &before, content, &commit);
                if let Commit::Created(_) = commit {
                    let after = versions(&store);
                    assert!(after.len() <= RETENTION + usize::from(model.running.is_some()));
                }
            }
            Op::CrashCommit { content, at } => {
                store.faults.crash_after(at);
                let result = store.commit(&bundle(content), Origin::Change);
                store.faults.disarm();
                match result {
                    Ok(commit) => check_commit(&mut model, &before, content, &commit),
                    Err(StoreError::Injected { .. }) => {
                        // The process died here: a new one opens the store.
                        drop(store);
                        store = open(dir.path());
                        no_leftovers(dir.path());
                        every_version_recorded(&store);
                        let after = versions(&store);
                        let new: Vec<u64> = after.iter().filter(|v| !before.contains(v)).copied().collect();
                        assert!(new.len() <= 1, "one crashed commit made {new:?}");
                        if let Some(&v) = new.first() {
                            assert!(v > model.max_seen);
                            model.content.insert(v, content);
                            model.max_seen = v;
                        }
                    }
                    Err(e) => panic!("{e:?}"),
                }
            }
            Op::Reopen => {
                drop(store);
                store = open(dir.path());
                no_leftovers(dir.path());
                every_version_recorded(&store);
                assert_eq!(versions(&store), before);
            }
            Op::Prune { crash_at } => {
                if let Some(at) = crash_at {
                    store.faults.crash_after(at);
                }
                let result = store.prune();
                store.faults.disarm();
                match result {
                    Ok(_) => assert!(versions(&store).len() <= RETENTION + usize::from(model.running.is_some())),
                    Err(StoreError::Injected { .. }) => {
                        drop(store);
                        store = open(dir.path());
                        no_leftovers(dir.path());
                    }
                    Err(e) => panic!("{e:?}"),
                }
                let after = versions(&store);
                assert!(after.iter().all(|v| before.contains(v)));
                let kept = before.len().saturating_sub(RETENTION);
                assert!(before[kept..].iter().all(|v| after.contains(v)), "prune deleted a newest version");
            }
            Op::SetRunning { pick: p } => {
                if let Some(v) = pick(&before, p) {
                    store.set_running(v).unwrap();
                    model.running = Some(v);
                    assert_eq!(store.running().unwrap(), Some(v));
                }
            }
            Op::Restore { pick: p } => {
                let Some(v) = pick(&before, p) else { continue };
                match store.read(v) {
                    Err(e) => assert!(model.damaged.contains(&v) && e.is_refusal(), "{e:?}"),
                    Ok(target) => {
                        // As `hotconf restore` and the service do: the intent, then the commit of
                        // that content as a restore (the reloader's decision), then the intent cleared.
                        let content = model.content[&v];
                        store.record_restore_intent(&target).unwrap();
                        let commit = store.commit(target.sources(), Origin::Restore { of: v }).unwrap();
                        check_commit(&mut model, &before, content, &commit);
                        if let Commit::Created(m) = &commit {
                            assert_eq!(m.origin, Origin::Restore { of: v });
                        }
                        store.clear_restore_intent().unwrap();
                        assert_eq!(store.restore_intent().unwrap(), None);
                    }
                }
            }
            Op::Corrupt { pick: p, how } => {
                let Some(v) = pick(&before, p) else { continue };
                let vdir = dir.path().join(format!("v{v:06}"));
                let file = vdir.join("files/a.yaml");
                match how {
                    0 => std::fs::write(&file, b"x: truncat").unwrap(),
                    1 => {
                        // Same size, other bytes: only the hash check can tell.
                        if let Ok(mut bytes) = std::fs::read(&file) {
                            bytes[0] = b'z';
                            std::fs::write(&file, bytes).unwrap();
                        }
                    }
                    2 => drop(std::fs::remove_file(&file)),
                    _ => std::fs::write(vdir.join("manifest.json"), b"{\"format\":1,\"vers").unwrap(),
                }
                model.damaged.insert(v);
            }
            Op::Leftover => {
                // What a kill -9 during staging or pruning leaves.
                std::fs::create_dir_all(dir.path().join(".tmp-v999-1-2-3/files")).unwrap();
                std::fs::write(dir.path().join(".tmp-v999-1-2-3/files/a.yaml"), b"x: half").unwrap();
                std::fs::create_dir_all(dir.path().join(".trash-v1-4-5-6/files")).unwrap();
                assert_eq!(versions(&store), before, "a leftover became visible");
            }
        }
        check_store(&store, &mut model);
    }
    // The audit log reads back, and accepted versions strictly increase in it.
    let records = store.audit().read_all().unwrap();
    let accepted: Vec<u64> = records
        .iter()
        .filter_map(|r| match &r.event {
            AuditEvent::Accepted { version, .. } => Some(*version),
            _ => None,
        })
        .collect();
    assert!(accepted.windows(2).all(|w| w[0] < w[1]), "{accepted:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn store_operation_sequences(ops in proptest::collection::vec(op(), 1..30)) {
        run(ops);
    }
}

#[test]
fn crash_at_every_step_of_a_commit() {
    for at in 0..16 {
        run(vec![Op::Commit { content: 0 }, Op::CrashCommit { content: 1, at }, Op::Commit { content: 1 }]);
    }
}

fn pinned_clock() -> SystemTime {
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_767_322_800)
}

/// A commit killed at each of its steps, then the store opened again by a new process, with the
/// append of the record torn at each byte: every stored version has exactly one `accepted`
/// record, the log reads whole, and a record the crash left out is written back marked repaired,
/// with the diff from the parent.
#[test]
fn opening_the_store_repairs_the_audit_log_after_a_crash_at_every_step() {
    let config = StoreConfig::default().with_retention(RETENTION).with_clock(pinned_clock);
    let mut repaired_seen = 0;
    for at in 0..16 {
        for torn in [None, Some(0.3), Some(0.99), Some(1.0)] {
            let dir = tempfile::tempdir().unwrap();
            let store = SnapshotStore::open(dir.path(), config).unwrap();
            store.commit(&bundle(0), Origin::Startup).unwrap();
            store.faults.crash_after(at);
            let crashed = matches!(store.commit(&bundle(1), Origin::Change), Err(StoreError::Injected { .. }));
            drop(store);
            let log = dir.path().join("audit.jsonl");
            let whole = std::fs::read(&log).unwrap();
            let has_v2 = dir.path().join("v000002").is_dir();
            let v2_recorded = store_records(dir.path()).iter().any(|r| accepted_version(r) == Some(2));
            if let (Some(fraction), true) = (torn, crashed && has_v2 && !v2_recorded) {
                // What a crash in the middle of the append's one write leaves: part of the line
                // (all of it but the newline at 1.0).
                let record = AuditRecord::new(
                    pinned_clock(),
                    AuditEvent::Failed { bundle_hash: None, files: vec![], error: "x".repeat(40) },
                );
                let line = serde_json::to_string(&record).unwrap();
                let cut = ((line.len() as f64) * fraction) as usize;
                std::fs::write(&log, [whole.as_slice(), &line.as_bytes()[..cut]].concat()).unwrap();
            }
            let context = format!("crash at step {at}, torn {torn:?}");
            let store = SnapshotStore::open(dir.path(), config).unwrap();
            let records = store.audit().read_all().unwrap_or_else(|e| panic!("{context}: {e}"));
            assert!(std::fs::read(&log).unwrap().ends_with(b"\n"), "{context}: the log ends with a whole line");
            for v in versions(&store) {
                let of_v: Vec<_> = records.iter().filter(|r| accepted_version(r) == Some(v)).collect();
                assert_eq!(of_v.len(), 1, "{context}: v{v} has {} accepted records", of_v.len());
                if let AuditEvent::Accepted { repaired: true, diff, parent, files, .. } = &of_v[0].event {
                    repaired_seen += 1;
                    assert_eq!((v, *parent), (2, Some(1)), "{context}");
                    assert_eq!(files, &["a.yaml", "b.yaml"], "{context}");
                    assert_eq!(diff, &semantic_diff(&bundle(0), &bundle(1)), "{context}");
                    assert_eq!(of_v[0].ts, store.read(2).unwrap().manifest().created_at, "{context}");
                }
            }
            // A second open finds nothing to repair.
            drop(store);
            SnapshotStore::open(dir.path(), config).unwrap();
            assert_eq!(store_records(dir.path()), records, "{context}: a second open changed the log");
        }
    }
    // The crash between the rename and the append, with each kind of tail.
    assert!(repaired_seen >= 4, "no crash point left a version without its record ({repaired_seen})");
}

fn store_records(dir: &Path) -> Vec<AuditRecord> {
    SnapshotStore::open_read_only(dir, StoreConfig::default()).unwrap().audit().read_all().unwrap()
}

fn accepted_version(record: &AuditRecord) -> Option<u64> {
    match record.event {
        AuditEvent::Accepted { version, .. } => Some(version),
        _ => None,
    }
}

#[test]
fn a_repaired_record_says_so_and_an_ordinary_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::default().with_clock(pinned_clock);
    let store = SnapshotStore::open(dir.path(), config).unwrap();
    store.commit(&bundle(0), Origin::Startup).unwrap();
    // Crash right after the rename into place and the store directory's fsync.
    store.faults.crash_after(7);
    assert!(matches!(
        store.commit(&bundle(2), Origin::Change),
        Err(StoreError::Injected { what: "append audit record", .. })
    ));
    drop(store);
    SnapshotStore::open(dir.path(), config).unwrap();
    let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(!lines[0].contains("repaired"), "{}", lines[0]);
    assert!(lines[1].starts_with(r#"{"ts":"2026-01-02T03:00:00Z","event":"accepted","version":2,"#), "{}", lines[1]);
    assert!(lines[1].ends_with(r#","repaired":true}"#), "{}", lines[1]);
}

#[test]
fn unchanged_and_same_as() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let Commit::Created(v1) = store.commit(&bundle(0), Origin::Startup).unwrap() else { panic!() };
    assert_eq!((v1.version, v1.parent, v1.same_as), (1, None, None));
    assert_eq!(v1.changed_files, ["a.yaml"]);
    assert_eq!(store.commit(&bundle(0), Origin::Change).unwrap(), Commit::Unchanged { version: 1 });
    let Commit::Created(v2) = store.commit(&bundle(1), Origin::Change).unwrap() else { panic!() };
    assert_eq!(v2.changed_files, ["a.yaml", "b.yaml"]);
    let Commit::Created(v3) = store.commit(&bundle(2), Origin::Change).unwrap() else { panic!() };
    assert_eq!(v3.origin, Origin::Change);
    let Commit::Created(v4) = store.commit(&bundle(0), Origin::Restore { of: 1 }).unwrap() else { panic!() };
    assert_eq!((v4.origin, v4.same_as, v4.parent), (Origin::Restore { of: 1 }, Some(1), Some(3)));
}

#[test]
fn retention_spares_the_running_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path(), StoreConfig::default().with_retention(2)).unwrap();
    store.commit(&bundle(0), Origin::Startup).unwrap();
    store.set_running(1).unwrap();
    for i in 1..5 {
        store.commit(&bundle(i), Origin::Change).unwrap();
    }
    assert_eq!(versions(&store), [1, 4, 5]);
    assert!(matches!(store.read(2), Err(StoreError::NotFound { version: 2, .. })));
}

#[test]
fn owner_only_modes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("snapshots");
    let store = open(&root);
    store.commit(&bundle(1), Origin::Startup).unwrap();
    store.set_running(1).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&root), 0o700);
    for p in ["v000001", "v000001/files"] {
        assert_eq!(mode(&root.join(p)), 0o700, "{p}");
    }
    for p in ["v000001/manifest.json", "v000001/files/a.yaml", "v000001/files/b.yaml", "audit.jsonl", "running.json"] {
        assert_eq!(mode(&root.join(p)), 0o600, "{p}");
    }
}

#[test]
fn two_writers_share_one_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let path = path.clone();
            std::thread::Builder::new()
                .name(format!("writer-{w}"))
                .spawn(move || {
                    // Each writer opens its own store: its own lock file handle, as a process would.
                    let store = SnapshotStore::open(&path, StoreConfig::default().with_retention(100)).unwrap();
                    (0..15)
                        .map(|i| store.commit(&bundle(100 + w * 15 + i), Origin::Change).unwrap().version())
                        .collect::<Vec<_>>()
                })
                .unwrap()
        })
        .collect();
    let mut all: Vec<u64> = writers.into_iter().flat_map(|h| h.join().unwrap()).collect();
    all.sort_unstable();
    assert_eq!(all, (1..=30).collect::<Vec<_>>(), "every commit got its own number");
    let store = open(&path);
    for v in 1..=30 {
        store.read(v).unwrap();
    }
}

#[test]
fn a_pin_is_recorded_read_back_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path(), StoreConfig::default()).unwrap();
    let pin = Pin { version: 3, of: 1, dir_hash: "ab".repeat(32) };
    store.set_pin(&pin).unwrap();
    assert_eq!(store.pin().unwrap(), Some(pin));
    store.clear_pin().unwrap();
    assert_eq!(store.pin().unwrap(), None);
}

#[test]
fn content_already_stored_and_running_needs_no_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let Commit::Created(stored) = store.commit(&bundle(1), Origin::Change).unwrap() else { panic!("not created") };
    store.set_running(stored.version).unwrap();
    // A replica's own handle (`open` takes the lock to clear leftovers, so before it is held).
    let replica_store = open(dir.path());
    // Another writer (a replica of the fleet, another process) holds the lock, as while it
    // writes a version: its own handle on the lock file.
    let held = std::fs::File::options().read(true).write(true).open(dir.path().join(".lock")).unwrap();
    held.lock().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let replica = std::thread::Builder::new()
        .name("replica".into())
        .spawn(move || {
            let store = replica_store;
            tx.send(Some(store.commit(&bundle(1), Origin::Change).unwrap())).unwrap();
            // ... and records it as running, which running.json already says.
            store.set_running(1).unwrap();
            tx.send(None).unwrap();
            // Other content needs the lock: it waits until the holder lets go.
            tx.send(Some(store.commit(&bundle(2), Origin::Change).unwrap())).unwrap();
        })
        .unwrap();
    // Generous: the answer comes from reads alone, while the lock stays held throughout.
    let wait = std::time::Duration::from_secs(30);
    let unchanged = rx.recv_timeout(wait).expect("the commit waited for the lock");
    assert_eq!(unchanged, Some(Commit::Unchanged { version: stored.version }));
    assert_eq!(rx.recv_timeout(wait).expect("set_running waited for the lock"), None);
    assert!(rx.try_recv().is_err(), "other content was committed while the lock was held");
    drop(held);
    let created = rx.recv().unwrap().unwrap();
    assert!(matches!(created, Commit::Created(ref m) if m.version == 2), "{created:?}");
    replica.join().unwrap();
}

#[test]
fn the_unlocked_path_never_answers_for_a_damaged_newest_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.commit(&bundle(1), Origin::Change).unwrap();
    // The newest version's file is damaged: equal content is stored anew, never pointed at.
    std::fs::write(dir.path().join("v000001/files/a.yaml"), b"x: tampered\n").unwrap();
    let Commit::Created(m) = store.commit(&bundle(1), Origin::Change).unwrap() else { panic!("pointed at v1") };
    assert_eq!((m.version, m.same_as), (2, None));
    assert_eq!(store.commit(&bundle(1), Origin::Change).unwrap(), Commit::Unchanged { version: 2 });
}

#[test]
fn a_replica_recording_a_version_while_the_writer_records_it_does_not_queue_for_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let writer = open(dir.path());
    writer.commit(&bundle(0), Origin::Change).unwrap();
    writer.commit(&bundle(1), Origin::Change).unwrap();
    writer.set_running(1).unwrap();
    let replica = open(dir.path());
    let (seen_tx, seen) = std::sync::mpsc::channel();
    *replica.faults.steps_seen.lock().unwrap() = Some(seen_tx);
    let locks_before = replica.faults.exclusive_locks.load(std::sync::atomic::Ordering::SeqCst);
    // The writer holds the lock while it records version 2.
    let held = std::fs::File::options().read(true).write(true).open(dir.path().join(".lock")).unwrap();
    held.lock().unwrap();
    let thread = std::thread::spawn(move || {
        replica.set_running(2).unwrap();
        replica
    });
    assert_eq!(seen.recv_timeout(std::time::Duration::from_secs(30)).unwrap(), "wait for the writer");
    std::fs::write(dir.path().join("running.json.next"), br#"{"version":2}"#).unwrap();
    std::fs::rename(dir.path().join("running.json.next"), dir.path().join("running.json")).unwrap();
    drop(held);
    let replica = thread.join().unwrap();
    assert_eq!(replica.running().unwrap(), Some(2));
    let locks = replica.faults.exclusive_locks.load(std::sync::atomic::Ordering::SeqCst) - locks_before;
    assert_eq!(locks, 0, "the replica took the exclusive lock to find its version recorded");
    assert!(seen.try_recv().is_err(), "the replica went on to write");
}

#[test]
fn a_replica_arriving_while_the_writer_stores_its_content_does_not_queue_for_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path()).commit(&bundle(0), Origin::Change).unwrap();
    // What the writer will rename into place: version 2, holding bundle 1, staged elsewhere.
    let elsewhere = tempfile::tempdir_in(dir.path().parent().unwrap()).unwrap();
    let staging = open(elsewhere.path());
    staging.commit(&bundle(0), Origin::Change).unwrap();
    staging.commit(&bundle(1), Origin::Change).unwrap();

    let replica = open(dir.path());
    let (seen_tx, seen) = std::sync::mpsc::channel();
    *replica.faults.steps_seen.lock().unwrap() = Some(seen_tx);
    let locks_before = replica.faults.exclusive_locks.load(std::sync::atomic::Ordering::SeqCst);
    // The writer holds the lock while it stores the version.
    let held = std::fs::File::options().read(true).write(true).open(dir.path().join(".lock")).unwrap();
    held.lock().unwrap();
    let thread = std::thread::Builder::new()
        .name("replica".into())
        .spawn(move || {
            let commit = replica.commit(&bundle(1), Origin::Change).unwrap();
            (commit, replica)
        })
        .unwrap();
    // The replica found its content not yet stored and the lock busy: it waits for the writer.
    let step = seen.recv_timeout(std::time::Duration::from_secs(30)).expect("the replica reached no step");
    assert_eq!(step, "wait for the writer");
    std::fs::rename(elsewhere.path().join("v000002"), dir.path().join("v000002")).unwrap();
    drop(held);
    let (commit, replica) = thread.join().unwrap();
    assert_eq!(commit, Commit::Unchanged { version: 2 });
    let locks = replica.faults.exclusive_locks.load(std::sync::atomic::Ordering::SeqCst) - locks_before;
    assert_eq!(locks, 0, "the replica took the exclusive lock to find its content stored");
    assert!(seen.try_recv().is_err(), "the replica went on to write");
}

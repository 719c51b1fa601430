//! The snapshot store on the fault filesystem: power loss after every filesystem step of a commit,
//! a failing fsync, a full disk, a quota and a read-only filesystem. Each case reopens the store
//! after a simulated crash (LazyFS semantics: only fsynced data and entries survive) and checks what
//! a user relies on: every listed version opens and verifies, no number is reused, and no version
//! reported as committed is lost.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use faultfs::{Fault, FaultFs, Op};
use hotconf::store::{AuditEvent, Commit, Entry, SnapshotStore, StoreConfig};
use hotconf::Origin;
use hotconf::{SourceFile, Sources};

use crate::support::mount;

fn bundle(n: u32) -> Sources {
    Sources::from_files([
        SourceFile::new("a.yaml", format!("a: {n}\n")),
        SourceFile::new("b.yaml", format!("b: {n}\nsecret_env: KEY_{n}\n")),
    ])
}

fn store_dir(fs_: &FaultFs) -> PathBuf {
    fs_.path().join("snapshots")
}

fn open(dir: &Path) -> SnapshotStore {
    SnapshotStore::open(dir, StoreConfig::default().with_retention(1)).expect("store opens")
}

/// What the store holds after a crash, checked: every version directory lists and verifies, the
/// running marker names a stored version, the audit log reads and has one `accepted` record per
/// version. Returns the version numbers.
fn check_consistent(store: &SnapshotStore, context: &str) -> BTreeSet<u64> {
    let mut versions = BTreeSet::new();
    for entry in store.entries().unwrap_or_else(|e| panic!("{context}: entries: {e}")) {
        match entry {
            Entry::Listed(m) => {
                let stored = store.read(m.version).unwrap_or_else(|e| panic!("{context}: v{} reads: {e}", m.version));
                assert_eq!(stored.manifest().bundle_hash, stored.sources().bundle_hash().to_hex().to_string());
                versions.insert(m.version);
            }
            other => panic!("{context}: damaged version after a crash: {other:?}"),
        }
    }
    if let Some(running) = store.running().unwrap_or_else(|e| panic!("{context}: running: {e}")) {
        assert!(versions.contains(&running), "{context}: running v{running} is not stored ({versions:?})");
    }
    let records = store.audit().read_all().unwrap_or_else(|e| panic!("{context}: audit log: {e}"));
    // Opening the store wrote back any record the crash lost: one `accepted` record per version.
    for v in &versions {
        let n =
            records.iter().filter(|r| matches!(r.event, AuditEvent::Accepted { version, .. } if version == *v)).count();
        assert_eq!(n, 1, "{context}: v{v} has {n} accepted records");
    }
    versions
}

/// The sequence a service runs for two reloads: commit, mark running, commit (which prunes to the
/// retention of 1), mark running. Returns the versions whose commit returned `Created`.
fn reload_twice(store: &SnapshotStore) -> Vec<u64> {
    let mut reported = Vec::new();
    for n in [2, 3] {
        match store.commit(&bundle(n), Origin::Change) {
            Ok(Commit::Created(m)) => reported.push(m.version),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => return reported,
        }
        if store.set_running(*reported.last().unwrap()).is_err() {
            return reported;
        }
    }
    reported
}

/// Power loss after each filesystem operation of two commits (staging directory, each file write
/// and fsync, directory fsyncs, the rename into place, the store directory fsync, the audit
/// append, pruning, the running marker): every crash point leaves a consistent store that still
/// holds every version reported as committed, and the next commit takes a fresh number.
#[test]
fn power_loss_at_every_step_of_a_commit_loses_no_reported_version() {
    let mut crash_points = 0;
    let mut steps_of_a_full_run = None;
    for k in 0.. {
        let backing = tempfile::tempdir().unwrap();
        let mut fs_ = mount(backing.path());
        let dir = store_dir(&fs_);
        let store = open(&dir);
        store.commit(&bundle(1), Origin::Startup).unwrap();
        store.set_running(1).unwrap();

        let before = fs_.mutations();
        fs_.cut_power_after(k);
        let reported = reload_twice(&store);
        let tripped = fs_.is_dead();
        if !tripped {
            steps_of_a_full_run = Some(fs_.mutations() - before);
        }
        drop(store);
        fs_.crash().unwrap();

        let context = format!("crash after step {k}");
        let store = open(&store_dir(&fs_));
        let versions = check_consistent(&store, &context);
        for v in &reported {
            assert!(versions.contains(v), "{context}: v{v} was reported committed and is lost ({versions:?})");
        }
        let highest_reported = reported.iter().copied().chain([1]).max().unwrap();
        let Commit::Created(next) = store.commit(&bundle(4), Origin::Change).unwrap() else { panic!() };
        assert!(next.version > highest_reported, "{context}: v{} reused a reported number", next.version);
        check_consistent(&store, &format!("{context}, then a commit"));
        if !tripped {
            break;
        }
        crash_points += 1;
    }
    let steps = steps_of_a_full_run.unwrap();
    eprintln!("faultfs: {crash_points} crash points in two commits with pruning and running markers");
    assert_eq!(crash_points as u64, steps, "one crash point per mutating filesystem operation");
    assert!(crash_points >= 20, "too few steps exercised: {crash_points}");
}

/// fsync fails with EIO on each kind of file or directory the commit syncs: the commit fails, and
/// the store never reports the version later as if it were durable (a failed fsync is not retried
/// on the same data and then trusted: the fsyncgate lesson). After a crash the store is consistent,
/// and every version a later commit reported survives.
#[test]
fn a_failed_fsync_fails_the_commit_and_is_never_trusted_afterwards() {
    let cases: &[(Op, &str)] = &[
        (Op::Fsync, "snapshots/.tmp-*/files/b.yaml"),
        (Op::Fsync, "snapshots/.tmp-*/manifest.json"),
        (Op::Fsyncdir, "snapshots/.tmp-*/files"),
        (Op::Fsyncdir, "snapshots/.tmp-*"),
        (Op::Fsyncdir, "snapshots"),
    ];
    for (op, pattern) in cases {
        let context = format!("EIO on {op:?} {pattern}");
        let backing = tempfile::tempdir().unwrap();
        let mut fs_ = mount(backing.path());
        let store = open(&store_dir(&fs_));
        store.commit(&bundle(1), Origin::Startup).unwrap();
        let fault = fs_.inject(Fault::on(*op, pattern).errno(libc::EIO).times(1));
        assert!(store.commit(&bundle(2), Origin::Change).is_err(), "{context}: the commit fails");
        assert_eq!(fs_.fired(fault), 1, "{context}: the fault fired");
        // The retry of the same content: whatever it reports must be durable.
        let retried = store.commit(&bundle(2), Origin::Change).unwrap_or_else(|e| panic!("{context}: retry: {e}"));
        drop(store);
        fs_.crash().unwrap();
        let store = open(&store_dir(&fs_));
        let versions = check_consistent(&store, &context);
        assert!(
            versions.contains(&retried.version()),
            "{context}: the retry reported v{} ({retried:?}), lost after a crash ({versions:?})",
            retried.version()
        );
        assert_eq!(store.read(retried.version()).unwrap().sources(), &bundle(2), "{context}");
    }
}

/// A full disk, a quota and a read-only filesystem in the middle of a commit: the commit fails with
/// the error, nothing half-written is listed, and once the fault clears the next commit stores the
/// content under the next number.
#[test]
fn enospc_edquot_and_erofs_fail_the_commit_and_leave_the_store_consistent() {
    let cases: &[(Op, &str, i32)] = &[
        (Op::Write, "snapshots/.tmp-*/files/b.yaml", libc::ENOSPC),
        (Op::Write, "snapshots/.tmp-*/manifest.json", libc::EDQUOT),
        (Op::Create, "snapshots/.tmp-*/files/a.yaml", libc::EDQUOT),
        (Op::Mkdir, "snapshots/.tmp-*", libc::EROFS),
        (Op::Rename, "snapshots/v000002", libc::EROFS),
        (Op::Open, "snapshots/.lock", libc::EROFS),
    ];
    for (op, pattern, errno) in cases {
        let context = format!("errno {errno} on {op:?} {pattern}");
        let backing = tempfile::tempdir().unwrap();
        let mut fs_ = mount(backing.path());
        let dir = store_dir(&fs_);
        fs::create_dir(&dir).unwrap();
        fs::File::open(fs_.path()).unwrap().sync_all().unwrap();
        open(&dir).commit(&bundle(1), Origin::Startup).unwrap();
        let store = open(&dir);
        let fault = fs_.inject(Fault::on(*op, pattern).errno(*errno));
        let error = store.commit(&bundle(2), Origin::Change).expect_err(&context);
        assert!(fs_.fired(fault) >= 1, "{context}: the fault fired");
        let text = format!("{error}: {}", std::error::Error::source(&error).map(|s| s.to_string()).unwrap_or_default());
        assert!(text.contains(&std::io::Error::from_raw_os_error(*errno).to_string()), "{context}: {text}");
        let before = check_consistent(&store, &context);
        assert!(!before.contains(&2), "{context}");
        fs_.remove(fault);
        let commit = store.commit(&bundle(2), Origin::Change);
        let Ok(Commit::Created(m)) = commit else { panic!("{context}: after the fault cleared: {commit:?}") };
        assert_eq!(m.version, before.last().copied().unwrap_or(0) + 1, "{context}");
        drop(store);
        fs_.crash().unwrap();
        let store = open(&store_dir(&fs_));
        let after = check_consistent(&store, &context);
        assert!(
            after.contains(&m.version),
            "{context}: v{} lost after a crash ({after:?}): {:?}",
            m.version,
            crate::support::files_under(fs_.backing(), None)
        );
    }
}

//! `hotconf run` with its config directory or its snapshot store on the fault filesystem: the real
//! binary, its JSON log and its admin endpoint, while the mount returns errnos, serves stale
//! attributes, swaps a Kubernetes `..data` link under faults, or loses power.

use std::cell::{Cell, RefCell};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use faultfs::{Fault, FaultFs, Op};
use hotconf::store::{SnapshotStore, StoreConfig};
use serde_json::Value;

use crate::faultfs_fs::mount;
use crate::service::{Service, DEADLINE};
use crate::support::shipped_config;

/// A backing directory with the shipped config under `config/`, mounted.
fn config_on_faultfs() -> (tempfile::TempDir, FaultFs) {
    let backing = tempfile::tempdir().unwrap();
    let config = backing.path().join("config");
    fs::create_dir(&config).unwrap();
    for entry in fs::read_dir(shipped_config()).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), config.join(entry.file_name())).unwrap();
    }
    let fs_ = mount(backing.path());
    (backing, fs_)
}

/// Rewrites `file` in place (same inode), as another NFS client writing the file does.
fn edit_in_place(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

fn rpm(service: &Service, provider: &str) -> Value {
    let (status, body) = service.http("POST", &format!("/acquire/{provider}?tokens=1"));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["limits"]["rpm"].clone()
}

/// Waits until `op` has been received `n` more times: the poller has looked again.
fn wait_for_ops(fs_: &FaultFs, op: Op, n: u64) {
    let target = fs_.count(op) + n;
    let deadline = Instant::now() + DEADLINE;
    while fs_.count(op) < target {
        assert!(Instant::now() < deadline, "the service stopped looking at the mount ({op:?})");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// An attribute cache serving the old size and mtime while the content changed: the content hash
/// decides, and the change is applied.
#[test]
fn stale_attributes_with_changed_content_still_apply_the_change() {
    let (backing, fs_) = config_on_faultfs();
    let config = fs_.path().join("config");
    let snapshots = tempfile::tempdir().unwrap();
    let s = Service::start(&config, snapshots.path(), &[]);
    fs_.inject(Fault::on(Op::Getattr, "config/rate_limits.yaml").stale_attrs());
    let before = fs::metadata(config.join("rate_limits.yaml")).unwrap();
    assert_eq!(rpm(&s, "local"), 600);
    // Longer and shorter content, each under the frozen size and mtime.
    for (from, to, version) in [("rpm: 600", "rpm: 1200", 2), ("rpm: 1200", "rpm: 60", 3)] {
        edit_in_place(&backing.path().join("config"), "rate_limits.yaml", from, to);
        let now = fs::metadata(config.join("rate_limits.yaml")).unwrap();
        assert_eq!((now.len(), now.modified().unwrap()), (before.len(), before.modified().unwrap()), "stale");
        let applied = s.wait_for("reload.applied");
        assert_eq!(applied["version"], version, "{applied}");
        assert_eq!(applied["files"], serde_json::json!(["rate_limits.yaml"]));
    }
    assert_eq!(rpm(&s, "local"), 60);
}

/// `ESTALE`, `EIO`, `EACCES` on open, read and readdir, while two files are edited: one
/// `poll.error` per fault, the running config untouched while it lasts, one `poll.recovered`, then
/// one change set holding both edits (never the readable file's new bytes with the other's old).
/// One test per operation, so they run side by side.
#[test]
fn open_faults_mixed_with_edits_are_reported_once_and_never_split_a_change() {
    check_read_faults(&[
        (Op::Open, "config/providers.yaml", libc::ESTALE),
        (Op::Open, "config/providers.yaml", libc::EACCES),
        (Op::Open, "config/providers.yaml", libc::EIO),
    ]);
}

#[test]
fn read_faults_mixed_with_edits_are_reported_once_and_never_split_a_change() {
    check_read_faults(&[
        (Op::Read, "config/providers.yaml", libc::EIO),
        (Op::Read, "config/providers.yaml", libc::ESTALE),
    ]);
}

#[test]
fn readdir_faults_mixed_with_edits_are_reported_once_and_never_split_a_change() {
    check_read_faults(&[(Op::Readdir, "config", libc::EACCES), (Op::Readdir, "config", libc::ESTALE)]);
}

fn check_read_faults(cases: &[(Op, &str, i32)]) {
    let (backing, fs_) = config_on_faultfs();
    let config = fs_.path().join("config");
    let backing_config = backing.path().join("config");
    let snapshots = tempfile::tempdir().unwrap();
    let s = Service::start(&config, snapshots.path(), &[]);
    let mut rpm_now = 600;
    for (i, (op, pattern, errno)) in cases.iter().enumerate() {
        let context = format!("{op:?} {pattern} errno {errno}");
        let version = s.get_json("/status")["running_version"].as_u64().unwrap();
        let fault = fs_.inject(Fault::on(*op, pattern).errno(*errno));
        let error = s.wait_for("poll.error");
        assert!(error["path"].as_str().unwrap().ends_with(pattern.trim_start_matches("config")), "{context}: {error}");
        // Both files change while one of them (or the listing) cannot be read.
        let new_rpm = 700 + i as u64;
        edit_in_place(&backing_config, "rate_limits.yaml", &format!("rpm: {rpm_now}"), &format!("rpm: {new_rpm}"));
        let (old_t, new_t) = (60 + i, 61 + i);
        edit_in_place(
            &backing_config,
            "providers.yaml",
            &format!("timeout_seconds: {old_t}"),
            &format!("timeout_seconds: {new_t}"),
        );
        wait_for_ops(&fs_, *op, 1);
        assert_eq!(s.get_json("/status")["running_version"], version, "{context}: nothing applied during the fault");
        assert_eq!(rpm(&s, "local"), rpm_now, "{context}");
        fs_.remove(fault);
        let (errors, recovered) = (Cell::new(0), Cell::new(0));
        let applied = s.wait_until(|v| match v["event"].as_str() {
            Some("poll.error") => {
                errors.set(errors.get() + 1);
                false
            }
            Some("poll.recovered") => {
                recovered.set(recovered.get() + 1);
                false
            }
            Some("reload.applied") => true,
            _ => false,
        });
        assert_eq!((errors.get(), recovered.get()), (0, 1), "{context}: one error, one recovery");
        assert_eq!(applied["version"], version + 1, "{context}: {applied}");
        assert_eq!(
            applied["files"],
            serde_json::json!(["providers.yaml", "rate_limits.yaml"]),
            "{context}: one change set with both edits"
        );
        assert_eq!(rpm(&s, "local"), new_rpm, "{context}");
        rpm_now = new_rpm;
    }
}

/// The shipped config as a Kubernetes ConfigMap volume: `name -> ..data/name`,
/// `..data -> ..<timestamp>`, in `config/` of the backing directory.
fn configmap(config: &Path, generation: u32, rpm: u32) {
    let dir = format!("..2026_11_30_00_00_00.{generation}");
    fs::create_dir(config.join(&dir)).unwrap();
    for entry in fs::read_dir(shipped_config()).unwrap() {
        let entry = entry.unwrap();
        let text = fs::read_to_string(entry.path()).unwrap().replace("rpm: 600", &format!("rpm: {rpm}"));
        fs::write(config.join(&dir).join(entry.file_name()), text).unwrap();
    }
    symlink(&dir, config.join("..data_tmp")).unwrap();
    fs::rename(config.join("..data_tmp"), config.join("..data")).unwrap();
}

/// The kubelet's atomic swap of `..data` done through the fault mount, while the new generation's
/// files fail to read and the old generation vanishes under the reader: reported, nothing mixed is
/// applied, and once readable the new generation is applied whole.
#[test]
fn a_kubernetes_data_swap_under_faults_applies_the_new_generation_whole() {
    let backing = tempfile::tempdir().unwrap();
    let config = backing.path().join("config");
    fs::create_dir(&config).unwrap();
    configmap(&config, 1, 600);
    for entry in fs::read_dir(shipped_config()).unwrap() {
        let name = entry.unwrap().file_name();
        symlink(Path::new("..data").join(&name), config.join(&name)).unwrap();
    }
    let fs_ = mount(backing.path());
    let mounted = fs_.path().join("config");
    let snapshots = tempfile::tempdir().unwrap();
    let s = Service::start(&mounted, snapshots.path(), &[]);
    assert_eq!(rpm(&s, "local"), 600);

    // Generation 2 becomes visible but its files cannot be read yet (ESTALE on open, EIO on read).
    let stale = fs_.inject(Fault::on(Op::Open, "config/..2026_11_30_00_00_00.2/providers.yaml").errno(libc::ESTALE));
    let eio = fs_.inject(Fault::on(Op::Read, "config/..2026_11_30_00_00_00.2/rate_limits.yaml").errno(libc::EIO));
    // The swap itself goes through the mount, as the kubelet writes it.
    let generation = "..2026_11_30_00_00_00.2";
    fs::create_dir(mounted.join(generation)).unwrap();
    for entry in fs::read_dir(shipped_config()).unwrap() {
        let entry = entry.unwrap();
        let text = fs::read_to_string(entry.path()).unwrap().replace("rpm: 600", "rpm: 1800");
        fs::write(mounted.join(generation).join(entry.file_name()), text).unwrap();
    }
    symlink(generation, mounted.join("..data_tmp")).unwrap();
    fs::rename(mounted.join("..data_tmp"), mounted.join("..data")).unwrap();
    fs::remove_dir_all(mounted.join("..2026_11_30_00_00_00.1")).unwrap();

    let paths = RefCell::new(Vec::new());
    s.wait_until(|v| {
        if v["event"] == "poll.error" {
            paths.borrow_mut().push(v["path"].as_str().unwrap().to_owned());
        }
        paths.borrow().len() == 2
    });
    wait_for_ops(&fs_, Op::Open, 6);
    assert_eq!(s.get_json("/status")["running_version"], 1, "nothing applied while generation 2 is unreadable");
    assert_eq!(rpm(&s, "local"), 600);
    fs_.remove(stale);
    fs_.remove(eio);
    let applied = s.wait_for("reload.applied");
    assert_eq!(applied["version"], 2, "{applied}");
    assert_eq!(rpm(&s, "local"), 1800);
    assert_eq!(s.get_json("/status")["running_version"], 2);
    let mut paths = paths.into_inner();
    paths.sort();
    assert!(paths[0].ends_with("providers.yaml") && paths[1].ends_with("rate_limits.yaml"), "{paths:?}");
}

/// The snapshot store on the fault mount: a version the service reported applied survives a power
/// loss right after (the process killed, then everything not fsynced dropped), and the restarted
/// service runs it.
#[test]
fn a_reported_version_survives_power_loss_and_the_restarted_service_runs_it() {
    let config = crate::support::config_copy();
    let backing = tempfile::tempdir().unwrap();
    let mut fs_ = mount(backing.path());
    let store = fs_.path().join("snapshots");
    let s = Service::start(config.path(), &store, &[]);
    crate::service::write_atomic(
        &config.path().join("rate_limits.yaml"),
        &fs::read_to_string(config.path().join("rate_limits.yaml")).unwrap().replace("rpm: 600", "rpm: 900"),
    );
    assert_eq!(s.wait_for("reload.applied")["version"], 2);
    drop(s); // kill -9
    fs_.crash().unwrap();
    let store = fs_.path().join("snapshots");
    let opened = SnapshotStore::open(&store, StoreConfig::default()).unwrap();
    let versions: Vec<u64> = opened.list().unwrap().iter().map(|m| m.version).collect();
    assert_eq!(versions, [1, 2]);
    opened.read(2).expect("v2 verifies");
    assert_eq!(opened.running().unwrap(), Some(2));
    let s = Service::start(config.path(), &store, &[]);
    assert_eq!(s.get_json("/status")["running_version"], 2);
    assert_eq!(rpm(&s, "local"), 900);
}

/// The snapshot store's filesystem full (`ENOSPC`), over quota (`EDQUOT`) or read-only (`EROFS`) in
/// the middle of a commit: the attempt fails with the error named, the running config stays, and
/// when the fault clears the pending content is applied by itself, with no new edit. (Here the
/// fault clears within the reloader's retry window; a fault outlasting it is
/// `pending/faultfs_store_full_for_long.rs.txt`.)
#[test]
fn a_full_or_read_only_store_fails_the_attempt_and_the_content_is_applied_when_it_clears() {
    let cases: &[(Op, &str, i32, &str)] = &[
        (Op::Write, "snapshots/.tmp-*/files/rate_limits.yaml", libc::ENOSPC, "No space left on device"),
        (Op::Create, "snapshots/.tmp-*/manifest.json", libc::EDQUOT, "Disk quota exceeded"),
        (Op::Mkdir, "snapshots/.tmp-*", libc::EROFS, "Read-only file system"),
        (Op::Open, "snapshots/.lock", libc::EROFS, "Read-only file system"),
    ];
    let config = crate::support::config_copy();
    let backing = tempfile::tempdir().unwrap();
    let fs_ = mount(backing.path());
    let s = Service::start(config.path(), &fs_.path().join("snapshots"), &[]);
    let mut rpm_now = 600;
    for (i, (op, pattern, errno, text)) in cases.iter().enumerate() {
        let context = format!("{op:?} {pattern} errno {errno}");
        let version = s.get_json("/status")["running_version"].as_u64().unwrap();
        let fault = fs_.inject(Fault::on(*op, pattern).errno(*errno));
        let new_rpm = 800 + i as u64;
        crate::service::write_atomic(
            &config.path().join("rate_limits.yaml"),
            &fs::read_to_string(config.path().join("rate_limits.yaml"))
                .unwrap()
                .replace(&format!("rpm: {rpm_now}"), &format!("rpm: {new_rpm}")),
        );
        let failed = s.wait_until(|v| v["event"] == "reload.failed" || v["event"] == "reload.applied");
        assert_eq!(failed["event"], "reload.failed", "{context}: {failed}");
        assert!(failed["error"].as_str().unwrap().contains(text), "{context}: {failed}");
        assert_eq!(failed["version"], version, "{context}");
        assert_eq!(rpm(&s, "local"), rpm_now, "{context}: the old config keeps running");
        s.wait_for("reload.retry");
        fs_.remove(fault);
        let applied = s.wait_until(|v| v["event"] == "reload.applied");
        assert_eq!(applied["version"], version + 1, "{context}: {applied}");
        assert_eq!(rpm(&s, "local"), new_rpm, "{context}");
        rpm_now = new_rpm;
    }
    drop(s);
    let store = SnapshotStore::open(&fs_.path().join("snapshots"), StoreConfig::default()).unwrap();
    let versions: Vec<u64> = store.list().unwrap().iter().map(|m| m.version).collect();
    assert_eq!(versions, (1..=cases.len() as u64 + 1).collect::<Vec<_>>(), "no number skipped or reused");
    for v in versions {
        store.read(v).unwrap_or_else(|e| panic!("v{v}: {e}"));
    }
}

/// A stale size (an attribute cache) and short reads together, on a file that grew: the scan reads
/// to the end of the file, not to the size it was told, so the grown content is seen whole.
#[test]
fn a_stale_size_with_short_reads_still_reads_the_whole_file() {
    use hotconf::testing::{FileRead, FileSystem, RealFs};
    let backing = tempfile::tempdir().unwrap();
    fs::write(backing.path().join("a.yaml"), "a: 1234\n").unwrap();
    let fs_ = mount(backing.path());
    fs_.inject(Fault::on(Op::Getattr, "a.yaml").stale_attrs());
    assert_eq!(fs::metadata(fs_.path().join("a.yaml")).unwrap().len(), 8);
    fs::write(backing.path().join("a.yaml"), "a: 1234\nb: 5678\n").unwrap();
    fs_.inject(Fault::on(Op::Read, "a.yaml").short_read(4));
    match RealFs.read(fs_.path(), "a.yaml", 1 << 20).unwrap() {
        FileRead::Bytes { bytes, .. } => assert_eq!(String::from_utf8(bytes).unwrap(), "a: 1234\nb: 5678\n"),
        other => panic!("{other:?}"),
    }
}

/// Power loss after each filesystem step of one reload under `hotconf run` (commit, audit, running
/// marker): the service is killed, the mount crashes, and the service restarts on the same store.
/// It always starts, every stored version verifies, and a version reported applied is never lost.
#[test]
fn power_loss_at_every_step_of_a_reload_then_a_restart_never_loses_an_applied_version() {
    let mut crash_points = 0;
    for k in 0.. {
        let config = crate::support::config_copy();
        let path = config.path().join("rate_limits.yaml");
        let backing = tempfile::tempdir().unwrap();
        let mut fs_ = mount(backing.path());
        let store = fs_.path().join("snapshots");
        let s = Service::start(config.path(), &store, &[]);
        fs_.cut_power_after(k);
        crate::service::write_atomic(&path, &fs::read_to_string(&path).unwrap().replace("rpm: 600", "rpm: 900"));
        let outcome = s.wait_until(|v| v["event"] == "reload.applied" || v["event"] == "reload.failed");
        let reported = outcome["event"] == "reload.applied";
        let tripped = fs_.is_dead();
        drop(s); // kill -9
        fs_.crash().unwrap();
        let context = format!("crash after step {k} of a reload ({})", outcome["event"]);
        let opened = SnapshotStore::open(&store, StoreConfig::default()).unwrap();
        let versions: Vec<u64> = opened.list().unwrap().iter().map(|m| m.version).collect();
        for v in &versions {
            opened.read(*v).unwrap_or_else(|e| panic!("{context}: v{v}: {e}"));
        }
        assert!(!reported || versions.contains(&2), "{context}: v2 was reported applied and is lost: {versions:?}");
        drop(opened);
        let s = Service::start(config.path(), &store, &[]);
        assert_eq!(s.get_json("/status")["running_version"], 2, "{context}");
        assert_eq!(rpm(&s, "local"), 900, "{context}");
        if !tripped {
            break;
        }
        crash_points += 1;
    }
    eprintln!("faultfs: {crash_points} crash points in one reload under hotconf run");
    assert!(crash_points >= 10, "{crash_points}");
}

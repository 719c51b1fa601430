//! The fault filesystem itself (tests/faultfs): each fault kind does what it says, on a real
//! FUSE mount. These tests need /dev/fuse and root (CI has both, see `.ci/run`); without them they
//! fail with a message saying so, never skip.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use faultfs::{Fault, FaultFs, Op};

use crate::service::DEADLINE;

/// Mounts a fault filesystem over `backing`, or fails the test saying why.
pub fn mount(backing: &Path) -> FaultFs {
    FaultFs::mount(backing).unwrap_or_else(|e| panic!("cannot mount the fault filesystem: {e}"))
}

fn errno_of(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

#[test]
fn passes_through_to_the_backing_directory() {
    let backing = tempfile::tempdir().unwrap();
    fs::write(backing.path().join("old.yaml"), "a: 1\n").unwrap();
    let fs_ = mount(backing.path());
    let m = fs_.path();
    assert_eq!(fs::read_to_string(m.join("old.yaml")).unwrap(), "a: 1\n");
    fs::create_dir(m.join("sub")).unwrap();
    fs::write(m.join("sub/new.yaml"), "b: 2\n").unwrap();
    fs::rename(m.join("sub/new.yaml"), m.join("moved.yaml")).unwrap();
    std::os::unix::fs::symlink("moved.yaml", m.join("link.yaml")).unwrap();
    let mut f = fs::OpenOptions::new().append(true).open(m.join("old.yaml")).unwrap();
    f.write_all(b"c: 3\n").unwrap();
    f.sync_all().unwrap();
    drop(f);
    fs::remove_dir(m.join("sub")).unwrap();
    let mut names: Vec<String> =
        fs::read_dir(m).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["link.yaml", "moved.yaml", "old.yaml"]);
    assert_eq!(fs::read_to_string(m.join("link.yaml")).unwrap(), "b: 2\n");
    assert_eq!(fs::read_to_string(backing.path().join("old.yaml")).unwrap(), "a: 1\nc: 3\n");
    fs::remove_file(m.join("link.yaml")).unwrap();
    assert!(!backing.path().join("link.yaml").exists());
}

/// One errno per operation, through the system call a program would make.
#[test]
fn an_injected_errno_fails_exactly_that_operation() {
    type Call = fn(&Path) -> std::io::Result<()>;
    let cases: &[(Op, &str, i32, Call)] = &[
        (Op::Lookup, "a.yaml", libc::ENOENT, |m| fs::metadata(m.join("a.yaml")).map(drop)),
        (Op::Getattr, "a.yaml", libc::ESTALE, |m| fs::File::open(m.join("a.yaml"))?.metadata().map(drop)),
        (Op::Open, "a.yaml", libc::ESTALE, |m| fs::File::open(m.join("a.yaml")).map(drop)),
        (Op::Open, "a.yaml", libc::EACCES, |m| fs::read(m.join("a.yaml")).map(drop)),
        (Op::Read, "a.yaml", libc::EIO, |m| fs::read(m.join("a.yaml")).map(drop)),
        (Op::Readdir, "", libc::EACCES, |m| fs::read_dir(m)?.try_for_each(|e| e.map(drop))),
        (Op::Readdir, "", libc::ESTALE, |m| fs::read_dir(m)?.try_for_each(|e| e.map(drop))),
        (Op::Write, "a.yaml", libc::ENOSPC, |m| fs::write(m.join("a.yaml"), "x")),
        (Op::Create, "new.yaml", libc::EDQUOT, |m| fs::write(m.join("new.yaml"), "x")),
        (Op::Mkdir, "d", libc::EROFS, |m| fs::create_dir(m.join("d"))),
        (Op::Rename, "b.yaml", libc::EIO, |m| fs::rename(m.join("a.yaml"), m.join("b.yaml"))),
        (Op::Unlink, "a.yaml", libc::EACCES, |m| fs::remove_file(m.join("a.yaml"))),
        (Op::Fsync, "a.yaml", libc::EIO, |m| fs::OpenOptions::new().write(true).open(m.join("a.yaml"))?.sync_all()),
        (Op::Fsyncdir, "", libc::EIO, |m| fs::File::open(m)?.sync_all()),
        (Op::Flush, "a.yaml", libc::EIO, |m| {
            let f = fs::File::open(m.join("a.yaml"))?;
            // SAFETY: closing the descriptor the File owns, once; the File is forgotten.
            let rc = unsafe { libc::close(std::os::fd::IntoRawFd::into_raw_fd(f)) };
            if rc == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        }),
    ];
    let backing = tempfile::tempdir().unwrap();
    let fs_ = mount(backing.path());
    for (op, pattern, errno, call) in cases {
        fs::write(backing.path().join("a.yaml"), "a: 1\n").unwrap();
        let id = fs_.inject(Fault::on(*op, pattern).errno(*errno));
        assert_eq!(errno_of(call(fs_.path())), Some(*errno), "{op:?} on {pattern:?}");
        assert!(fs_.fired(id) >= 1, "{op:?}");
        fs_.remove(id);
        call(fs_.path()).unwrap_or_else(|e| panic!("{op:?} after the fault was removed: {e}"));
        let _ = fs::remove_dir(backing.path().join("d"));
        let _ = fs::remove_file(backing.path().join("b.yaml"));
    }
}

#[test]
fn a_fault_can_skip_the_first_matches_and_fire_a_number_of_times() {
    let backing = tempfile::tempdir().unwrap();
    fs::write(backing.path().join("a.yaml"), "a: 1\n").unwrap();
    fs::write(backing.path().join("b.txt"), "b").unwrap();
    let fs_ = mount(backing.path());
    let id = fs_.inject(Fault::on(Op::Open, "*.yaml").errno(libc::EIO).after(1).times(2));
    let outcomes: Vec<bool> = (0..5).map(|_| fs::read(fs_.path().join("a.yaml")).is_ok()).collect();
    assert_eq!(outcomes, [true, false, false, true, true]);
    assert!(fs::read(fs_.path().join("b.txt")).is_ok(), "the pattern does not match b.txt");
    assert_eq!(fs_.fired(id), 2);
}

#[test]
fn a_delay_slows_the_operation_and_passes_it_through() {
    let backing = tempfile::tempdir().unwrap();
    fs::write(backing.path().join("a.yaml"), "a: 1\n").unwrap();
    let fs_ = mount(backing.path());
    fs_.inject(Fault::on(Op::Read, "a.yaml").delay(Duration::from_millis(300)).times(1));
    let start = Instant::now();
    assert_eq!(fs::read_to_string(fs_.path().join("a.yaml")).unwrap(), "a: 1\n");
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[test]
fn a_hung_read_blocks_only_itself_until_released() {
    let backing = tempfile::tempdir().unwrap();
    fs::write(backing.path().join("a.yaml"), "a: 1\n").unwrap();
    fs::write(backing.path().join("b.yaml"), "b: 2\n").unwrap();
    let fs_ = mount(backing.path());
    fs_.inject(Fault::on(Op::Read, "a.yaml").hang().times(1));
    let path = fs_.path().join("a.yaml");
    let reader = std::thread::spawn(move || fs::read_to_string(path));
    assert!(fs_.wait_hung(1, DEADLINE), "the read never reached the filesystem");
    // The rest of the mount keeps answering.
    assert_eq!(fs::read_to_string(fs_.path().join("b.yaml")).unwrap(), "b: 2\n");
    assert!(fs::metadata(fs_.path().join("a.yaml")).is_ok());
    assert!(!reader.is_finished());
    fs_.release();
    assert_eq!(reader.join().unwrap().unwrap(), "a: 1\n");
}

#[test]
fn dropping_the_mount_ends_hung_operations_and_leaves_no_mount_behind() {
    let backing = tempfile::tempdir().unwrap();
    fs::write(backing.path().join("a.yaml"), "a: 1\n").unwrap();
    let fs_ = mount(backing.path());
    let mountpoint = fs_.path().to_owned();
    fs_.inject(Fault::on(Op::Read, "a.yaml").hang());
    // A descriptor held open across the unmount, as a process that is still running would.
    let mut held = fs::File::open(mountpoint.join("a.yaml")).unwrap();
    let path = mountpoint.join("a.yaml");
    let reader = std::thread::spawn(move || fs::read(path));
    assert!(fs_.wait_hung(1, DEADLINE));
    let start = Instant::now();
    drop(fs_);
    assert!(start.elapsed() < Duration::from_secs(5), "unmount took {:?}", start.elapsed());
    assert!(reader.join().unwrap().is_err(), "a read hung at unmount fails");
    assert!(held.read(&mut [0; 8]).is_err());
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(mountpoint.to_str().unwrap()), "still mounted:\n{mounts}");
}

#[test]
fn dropping_the_mount_while_a_test_panics_unmounts_it() {
    let backing = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let fs_ = mount(backing.path());
        tx.send(fs_.path().to_owned()).unwrap();
        fs_.inject(Fault::on(Op::Readdir, "").hang());
        panic!("a failing test");
    }));
    assert!(result.is_err());
    let mountpoint = rx.recv().unwrap();
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(mountpoint.to_str().unwrap()));
}

#[test]
fn stale_attributes_freeze_size_and_mtime_while_content_changes() {
    let backing = tempfile::tempdir().unwrap();
    let file = backing.path().join("a.yaml");
    fs::write(&file, "a: 1\n").unwrap();
    let fs_ = mount(backing.path());
    let id = fs_.inject(Fault::on(Op::Getattr, "a.yaml").stale_attrs());
    let before = fs::metadata(fs_.path().join("a.yaml")).unwrap();
    fs::write(&file, "a: 22222\n").unwrap();
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    fs::File::options().write(true).open(&file).unwrap().set_modified(old).unwrap();
    let during = fs::File::open(fs_.path().join("a.yaml")).unwrap().metadata().unwrap();
    assert_eq!((during.len(), during.modified().unwrap()), (before.len(), before.modified().unwrap()));
    assert_eq!(fs::read_to_string(fs_.path().join("a.yaml")).unwrap(), "a: 22222\n", "content is fresh");
    fs_.remove(id);
    let after = fs::metadata(fs_.path().join("a.yaml")).unwrap();
    assert_eq!((after.len(), after.modified().unwrap()), (9, old));
}

#[test]
fn short_reads_return_a_few_bytes_per_call() {
    let backing = tempfile::tempdir().unwrap();
    fs::write(backing.path().join("a.yaml"), "abcdefghij").unwrap();
    let fs_ = mount(backing.path());
    fs_.inject(Fault::on(Op::Read, "a.yaml").short_read(3));
    let mut f = fs::File::open(fs_.path().join("a.yaml")).unwrap();
    let mut buf = [0; 64];
    assert_eq!(f.read(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"abc");
    assert_eq!(fs::read_to_string(fs_.path().join("a.yaml")).unwrap(), "abcdefghij", "a read loop gets it all");
}

/// LazyFS semantics: data is durable after the file's fsync, an entry after its directory's.
#[test]
fn a_crash_keeps_only_what_was_fsynced() {
    let backing = tempfile::tempdir().unwrap();
    fs::write(backing.path().join("old.yaml"), "old\n").unwrap();
    fs::create_dir(backing.path().join("d")).unwrap();
    let mut fs_ = mount(backing.path());
    let m = fs_.path().to_owned();
    let write_synced = |name: &str, text: &str| {
        let mut f = fs::File::create(m.join(name)).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f.sync_all().unwrap();
    };
    // Not durable: data never fsynced; an entry whose directory was never fsynced.
    fs::write(m.join("old.yaml"), "overwritten, not synced\n").unwrap();
    write_synced("d/entry-not-synced.yaml", "x\n");
    // Durable: file and directory fsynced.
    write_synced("durable.yaml", "durable\n");
    fs::write(m.join("empty-after-crash.yaml"), "never fsynced\n").unwrap();
    fs::File::open(&m).unwrap().sync_all().unwrap();
    // A rename after the last directory fsync is undone.
    fs::rename(m.join("durable.yaml"), m.join("renamed.yaml")).unwrap();
    fs_.crash().unwrap();
    let m = fs_.path();
    assert_eq!(fs::read_to_string(m.join("old.yaml")).unwrap(), "old\n");
    assert_eq!(fs::read_to_string(m.join("durable.yaml")).unwrap(), "durable\n");
    assert!(!m.join("renamed.yaml").exists());
    assert!(!m.join("d/entry-not-synced.yaml").exists());
    assert_eq!(fs::read_to_string(m.join("empty-after-crash.yaml")).unwrap(), "", "entry durable, data not");
    assert_eq!(fs::read_to_string(backing.path().join("durable.yaml")).unwrap(), "durable\n");
}

/// After a failed fsync the dirty data is gone, and a second fsync "succeeds" without saving it.
#[test]
fn a_failed_fsync_loses_the_data_and_the_retry_lies() {
    let backing = tempfile::tempdir().unwrap();
    fs::write(backing.path().join("a.yaml"), "old\n").unwrap();
    let mut fs_ = mount(backing.path());
    fs_.inject(Fault::on(Op::Fsync, "a.yaml").errno(libc::EIO).times(1));
    let mut f = fs::OpenOptions::new().write(true).truncate(true).open(fs_.path().join("a.yaml")).unwrap();
    f.write_all(b"new\n").unwrap();
    assert_eq!(errno_of(f.sync_all()), Some(libc::EIO));
    f.sync_all().expect("the retried fsync reports success");
    drop(f);
    fs_.crash().unwrap();
    assert_eq!(fs::read_to_string(fs_.path().join("a.yaml")).unwrap(), "old\n");
}

#[test]
fn cutting_the_power_fails_every_operation_after_the_nth_mutation() {
    let backing = tempfile::tempdir().unwrap();
    let mut fs_ = mount(backing.path());
    let m = fs_.path().to_owned();
    fs_.cut_power_after(2);
    fs::create_dir(m.join("a")).unwrap(); // 1
    fs::File::open(&m).unwrap().sync_all().unwrap(); // 2
    assert_eq!(errno_of(fs::create_dir(m.join("b"))), Some(libc::EIO)); // 3: power off
    assert!(fs_.is_dead());
    assert!(fs::metadata(m.join("a")).is_err(), "nothing answers once the power is off");
    fs_.crash().unwrap();
    assert!(fs_.path().join("a").is_dir());
    assert!(!fs_.path().join("b").exists());
    assert!(!backing.path().join("b").exists());
}

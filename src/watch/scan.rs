//! Scan: one tick's read of the watched set through a [`FileSystem`]: list the directory once,
//! keep the config names, and open, `fstat`, read and close each file, following symlinks as the
//! names resolve now. Never parses or judges content.

use std::io;
use std::path::{Path, PathBuf};

use crate::source::names::is_config_file_name;
pub use crate::source::read::FileRead;
use crate::source::{read, SourcesLimits};
use crate::watch::fault::PollErrorKind;
use crate::watch::fingerprint::{FileObservation, Observation};

/// `ESTALE`: a file handle whose file vanished on the NFS server.
#[cfg(unix)]
const ESTALE: i32 = libc::ESTALE;
#[cfg(not(unix))]
const ESTALE: i32 = -1;

/// The filesystem as the scan sees it: one directory listing and one read per file per tick.
pub trait FileSystem: Send + 'static {
    /// The names of the entries directly in `dir` (names that are not UTF-8 are left out).
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// Opens `dir/name` following symlinks and reads it whole, unless it is over `limit` bytes.
    fn read(&self, dir: &Path, name: &str, limit: u64) -> io::Result<FileRead>;
}

/// The real filesystem, through the one reader of config files ([`crate::source::read`]). Per
/// file and tick it makes four system calls: `openat` (non-blocking, so a FIFO cannot block it),
/// `fstat` on the open descriptor, one `read` into a buffer one byte larger than the size seen, and
/// `close`. One read that returns exactly the size seen is taken as the end of the file; a file
/// that changes size under the read, or a filesystem that returns short reads, costs more calls (it
/// is read to the end, whatever its stale size said).
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

impl FileSystem for RealFs {
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        read::list_dir(dir)
    }

    fn read(&self, dir: &Path, name: &str, limit: u64) -> io::Result<FileRead> {
        read::read_file(&dir.join(name), limit)
    }
}

/// The config directory could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("cannot list config directory {}", dir.display())]
#[non_exhaustive]
pub struct ScanError {
    /// The directory.
    pub dir: PathBuf,
    /// Why.
    #[source]
    pub source: io::Error,
}

impl ScanError {
    /// The fault class: [`PollErrorKind::DirMissing`] for a missing, non-directory or stale
    /// directory, [`PollErrorKind::Io`] otherwise.
    pub fn kind(&self) -> PollErrorKind {
        match self.source.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => PollErrorKind::DirMissing,
            _ if self.source.raw_os_error() == Some(ESTALE) => PollErrorKind::DirMissing,
            io::ErrorKind::PermissionDenied => PollErrorKind::Unreadable,
            _ => PollErrorKind::Io,
        }
    }
}

/// Reads the whole watched set of `dir` once: every name [`is_config_file_name`] accepts, each
/// read through its name as it resolves now. A name that vanished between listing and opening (or a
/// dangling symlink) is absent from this tick; a file that cannot be read is recorded as
/// [`FileObservation::Unreadable`]; one over the cap as [`FileObservation::TooLarge`]; a FIFO, a
/// socket, a device or a directory as [`FileObservation::NotRegular`].
pub fn scan(fs: &dyn FileSystem, dir: &Path, limits: SourcesLimits) -> Result<Observation, ScanError> {
    let names = fs.list(dir).map_err(|source| ScanError { dir: dir.to_owned(), source })?;
    let mut observation = Observation::new();
    for name in names {
        if !is_config_file_name(&name) {
            continue;
        }
        let file = match fs.read(dir, &name, limits.max_file_bytes) {
            Ok(FileRead::Bytes { bytes, mtime }) => FileObservation::read(bytes, mtime),
            Ok(FileRead::TooLarge { size, mtime }) => {
                FileObservation::TooLarge { size, limit: limits.max_file_bytes, mtime }
            }
            // Passed on, so validation refuses it by name, as every other read of the directory does.
            Ok(FileRead::NotRegular { kind }) => FileObservation::NotRegular { kind },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tracing::debug!(event = "poll.vanished", file = %name, "gone between listing and opening");
                continue;
            }
            Err(e) => FileObservation::unreadable(fault_kind(&e), &e),
        };
        observation.insert(name, file);
    }
    Ok(observation)
}

fn fault_kind(error: &io::Error) -> PollErrorKind {
    match error.kind() {
        io::ErrorKind::PermissionDenied => PollErrorKind::Unreadable,
        _ if error.raw_os_error() == Some(ESTALE) => PollErrorKind::Vanished,
        _ => PollErrorKind::Io,
    }
}

#[cfg(any(test, feature = "testing"))]
mod fake;
#[cfg(any(test, feature = "testing"))]
pub use fake::FakeFs;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::read::FileKind;

    #[test]
    fn scan_keeps_config_names_and_records_faults() {
        let fs = FakeFs::new();
        fs.write("a.yaml", "a: 1");
        fs.write("b.yml", "b: 1");
        fs.write(".env", "SECRET=1");
        fs.write("a.yaml.swp", "junk");
        fs.write("a.yaml~", "old");
        fs.write("sedAbC123", "x");
        fs.write("big.yaml", vec![b'x'; 20]);
        fs.mkdir("dir.yaml");
        fs.fail("locked.yaml", libc::EACCES);
        fs.fail("stale.yaml", ESTALE);
        fs.fail("broken.yaml", libc::EIO);
        let obs = scan(&fs, Path::new("/cfg"), SourcesLimits { max_file_bytes: 10 }).unwrap();
        let names: Vec<&str> = obs.files().keys().map(String::as_str).collect();
        assert_eq!(names, ["a.yaml", "b.yml", "big.yaml", "broken.yaml", "dir.yaml", "locked.yaml", "stale.yaml"]);
        assert_eq!(obs.get("dir.yaml"), Some(&FileObservation::NotRegular { kind: FileKind::Directory }));
        assert!(matches!(obs.get("big.yaml"), Some(FileObservation::TooLarge { size: 20, limit: 10, .. })));
        let kind = |n| match obs.get(n) {
            Some(FileObservation::Unreadable { kind, .. }) => *kind,
            other => panic!("{other:?}"),
        };
        assert_eq!(kind("locked.yaml"), PollErrorKind::Unreadable);
        assert_eq!(kind("stale.yaml"), PollErrorKind::Vanished);
        assert_eq!(kind("broken.yaml"), PollErrorKind::Io);
    }

    #[test]
    fn missing_dir_is_an_error() {
        let fs = FakeFs::new();
        fs.fail_dir(Some(libc::ENOENT));
        assert_eq!(
            scan(&fs, Path::new("/cfg"), SourcesLimits::default()).unwrap_err().kind(),
            PollErrorKind::DirMissing
        );
        fs.fail_dir(Some(libc::EIO));
        assert_eq!(scan(&fs, Path::new("/cfg"), SourcesLimits::default()).unwrap_err().kind(), PollErrorKind::Io);
    }

    #[test]
    fn real_fs_reads_whole_files_and_caps_large_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "a: 1\n").unwrap();
        std::fs::write(dir.path().join("empty.yaml"), "").unwrap();
        std::fs::write(dir.path().join("big.yaml"), vec![b'x'; 100]).unwrap();
        std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("nowhere.yaml", dir.path().join("dangling.yaml")).unwrap();
        let obs = scan(&RealFs, dir.path(), SourcesLimits { max_file_bytes: 50 }).unwrap();
        let names: Vec<&str> = obs.files().keys().map(String::as_str).collect();
        assert_eq!(names, ["a.yaml", "big.yaml", "empty.yaml", "sub.yaml"]);
        assert_eq!(obs.get("sub.yaml"), Some(&FileObservation::NotRegular { kind: FileKind::Directory }));
        let sources = obs.to_sources();
        assert_eq!(sources.get("a.yaml").unwrap().bytes(), Some(&b"a: 1\n"[..]));
        assert_eq!(sources.get("empty.yaml").unwrap().bytes(), Some(&b""[..]));
        assert!(matches!(obs.get("big.yaml"), Some(FileObservation::TooLarge { size: 100, limit: 50, .. })));
    }

    /// The poller and every other reader of the directory (startup, manual reload, `validate`)
    /// see the same files with the same verdicts, special files included.
    #[cfg(unix)]
    #[test]
    fn the_poller_and_sources_read_dir_agree_on_every_kind_of_entry() {
        use crate::source::{FileBody, Sources};
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.yaml"), "a: 1\n").unwrap();
        std::fs::write(d.join("big.yaml"), vec![b'x'; 100]).unwrap();
        let fifo = std::ffi::CString::new(d.join("fifo.yaml").into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        std::fs::create_dir(d.join("dir.yaml")).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(d.join("socket.yaml")).unwrap();
        std::os::unix::fs::symlink("/dev/null", d.join("null.yaml")).unwrap();
        std::os::unix::fs::symlink("nowhere.yaml", d.join("dangling.yaml")).unwrap();
        let limits = SourcesLimits { max_file_bytes: 50 };
        let polled = scan(&RealFs, d, limits).unwrap().to_sources();
        let read = Sources::read_dir(d, limits.max_file_bytes).unwrap();
        assert_eq!(polled, read);
        let bodies: Vec<(&str, &FileBody)> = read.files().iter().map(|f| (f.name(), f.body())).collect();
        assert_eq!(
            bodies,
            [
                ("a.yaml", &FileBody::Bytes(b"a: 1\n".to_vec())),
                ("big.yaml", &FileBody::TooLarge { size: 100, limit: 50 }),
                ("dir.yaml", &FileBody::NotRegular { kind: FileKind::Directory }),
                ("fifo.yaml", &FileBody::NotRegular { kind: FileKind::Fifo }),
                ("null.yaml", &FileBody::NotRegular { kind: FileKind::CharDevice }),
                ("socket.yaml", &FileBody::NotRegular { kind: FileKind::Socket }),
            ]
        );
    }
}

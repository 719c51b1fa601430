//! An in-memory filesystem for tests (feature `testing`): what the scan sees, set by hand.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{FileRead, FileSystem};
use crate::source::read::FileKind;

/// An in-memory [`FileSystem`] for tests: clones share the same files, so a test keeps one and
/// hands another to the code under test. Each write moves the file's mtime one second forward.
#[derive(Debug, Clone, Default)]
pub struct FakeFs {
    state: Arc<Mutex<FakeState>>,
}

#[derive(Debug, Default)]
struct FakeState {
    entries: BTreeMap<String, FakeEntry>,
    dir_error: Option<i32>,
    read_delay: Duration,
    clock: u64,
    reads: u64,
}

#[derive(Debug, Clone)]
enum FakeEntry {
    File { bytes: Vec<u8>, mtime: SystemTime },
    Dir,
    Failing { os_code: i32 },
}

impl FakeFs {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Writes `name` with `bytes`, moving its mtime forward.
    pub fn write(&self, name: &str, bytes: impl Into<Vec<u8>>) {
        self.with(|s| {
            s.clock += 1;
            let mtime = UNIX_EPOCH + Duration::from_secs(s.clock);
            s.entries.insert(name.to_owned(), FakeEntry::File { bytes: bytes.into(), mtime });
        });
    }

    /// Writes `name` with `bytes` and the given mtime (as `cp -p` or `rsync -t` do).
    pub fn write_with_mtime(&self, name: &str, bytes: impl Into<Vec<u8>>, mtime: SystemTime) {
        self.with(|s| s.entries.insert(name.to_owned(), FakeEntry::File { bytes: bytes.into(), mtime }));
    }

    /// Moves `name`'s mtime forward without changing its content.
    pub fn touch(&self, name: &str) {
        self.with(|s| {
            s.clock += 1;
            let now = UNIX_EPOCH + Duration::from_secs(s.clock);
            if let Some(FakeEntry::File { mtime, .. }) = s.entries.get_mut(name) {
                *mtime = now;
            }
        });
    }

    /// Removes `name`.
    pub fn remove(&self, name: &str) {
        self.with(|s| s.entries.remove(name));
    }

    /// Renames `from` to `to`, replacing `to`.
    pub fn rename(&self, from: &str, to: &str) {
        self.with(|s| {
            if let Some(entry) = s.entries.remove(from) {
                s.entries.insert(to.to_owned(), entry);
            }
        });
    }

    /// Makes `name` a directory.
    pub fn mkdir(&self, name: &str) {
        self.with(|s| s.entries.insert(name.to_owned(), FakeEntry::Dir));
    }

    /// Makes opening `name` fail with the OS error `os_code` (e.g. `libc::EACCES`, `libc::EIO`).
    pub fn fail(&self, name: &str, os_code: i32) {
        self.with(|s| s.entries.insert(name.to_owned(), FakeEntry::Failing { os_code }));
    }

    /// Makes listing the directory fail with the OS error `os_code`, or succeed again with `None`.
    pub fn fail_dir(&self, os_code: Option<i32>) {
        self.with(|s| s.dir_error = os_code);
    }

    /// Makes every read take `delay` (a slow or hung mount).
    pub fn set_read_delay(&self, delay: Duration) {
        self.with(|s| s.read_delay = delay);
    }

    /// How many file reads were made.
    pub fn reads(&self) -> u64 {
        self.with(|s| s.reads)
    }
}

impl FileSystem for FakeFs {
    fn list(&self, _dir: &Path) -> io::Result<Vec<String>> {
        self.with(|s| match s.dir_error {
            Some(code) => Err(io::Error::from_raw_os_error(code)),
            None => Ok(s.entries.keys().cloned().collect()),
        })
    }

    fn read(&self, _dir: &Path, name: &str, limit: u64) -> io::Result<FileRead> {
        let (entry, delay) = self.with(|s| {
            s.reads += 1;
            (s.entries.get(name).cloned(), s.read_delay)
        });
        if !delay.is_zero() {
            // Simulates a read blocked in the kernel; the poller must not wait on it forever.
            std::thread::sleep(delay);
        }
        match entry {
            None => Err(io::ErrorKind::NotFound.into()),
            Some(FakeEntry::Dir) => Ok(FileRead::NotRegular { kind: FileKind::Directory }),
            Some(FakeEntry::Failing { os_code }) => Err(io::Error::from_raw_os_error(os_code)),
            Some(FakeEntry::File { bytes, mtime }) if bytes.len() as u64 > limit => {
                Ok(FileRead::TooLarge { size: bytes.len() as u64, mtime: Some(mtime) })
            }
            Some(FakeEntry::File { bytes, mtime }) => Ok(FileRead::Bytes { bytes, mtime: Some(mtime) }),
        }
    }
}

//! The one reader of config files: every read of a config directory (the poller's ticks, startup,
//! a manual reload, `validate`, `diff --against`, `restore`) opens files here, so none of them can
//! block on a special file. Never parses or judges content.
//!
//! Per file it makes four system calls: `openat` with `O_NONBLOCK | O_NOCTTY` (opening a FIFO
//! with no writer returns at once instead of waiting for one, and a terminal never becomes the
//! controlling one), `fstat` on the open descriptor (so the type judged is the type of the file
//! actually opened, after symlinks resolved), one `read` into a buffer one byte larger than the
//! size seen, and `close`. Anything that is not a regular file (a FIFO, a socket, a device, a
//! directory) is refused before a single byte is read, as [`FileRead::NotRegular`].

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::path::Path;
use std::time::SystemTime;

/// What a config-directory entry is, when it is not a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileKind {
    /// A directory.
    Directory,
    /// A FIFO (named pipe): reading it would wait for a writer.
    Fifo,
    /// A Unix domain socket.
    Socket,
    /// A character device (`/dev/zero`, a terminal).
    CharDevice,
    /// A block device (a disk).
    BlockDevice,
    /// Some other kind of special file.
    Other,
}

impl FileKind {
    /// The kind of a file that is not a regular file, from its metadata; `None` for a regular file.
    pub fn of(meta: &std::fs::Metadata) -> Option<Self> {
        let file_type = meta.file_type();
        if file_type.is_file() {
            return None;
        }
        if file_type.is_dir() {
            return Some(Self::Directory);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if file_type.is_fifo() {
                return Some(Self::Fifo);
            }
            if file_type.is_socket() {
                return Some(Self::Socket);
            }
            if file_type.is_char_device() {
                return Some(Self::CharDevice);
            }
            if file_type.is_block_device() {
                return Some(Self::BlockDevice);
            }
        }
        Some(Self::Other)
    }
}

/// `a FIFO (named pipe)`, `a directory`, …: what a person reads after "is".
impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Directory => "a directory",
            Self::Fifo => "a FIFO (named pipe)",
            Self::Socket => "a socket",
            Self::CharDevice => "a character device",
            Self::BlockDevice => "a block device",
            Self::Other => "a special file",
        })
    }
}

/// What opening and reading one config file gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRead {
    /// The whole content (at most the cap) and the mtime from the open file.
    Bytes {
        /// The content.
        bytes: Vec<u8>,
        /// The mtime, when the platform has one.
        mtime: Option<SystemTime>,
    },
    /// Larger than the cap: not read (beyond the cap).
    TooLarge {
        /// Its size (at least `limit + 1`).
        size: u64,
        /// The mtime, when the platform has one.
        mtime: Option<SystemTime>,
    },
    /// Not a regular file once symlinks are resolved: refused unread.
    NotRegular {
        /// What it is.
        kind: FileKind,
    },
}

/// The names of the entries directly in `dir` (names that are not UTF-8 are left out).
pub fn list_dir(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        if let Ok(name) = entry?.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// Opens `path` following symlinks without ever blocking on it, and reads it whole unless it is
/// over `limit` bytes or is not a regular file. A file that grows under the read is read one byte
/// past the cap at most.
///
/// ```
/// # #[cfg(unix)] {
/// use hotconf::{FileBody, FileKind, SourceFile};
/// let dir = tempfile::tempdir().unwrap();
/// let fifo = dir.path().join("rate_limits.yaml");
/// assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
/// // Returns at once: a FIFO is refused unread, it never waits for a writer.
/// let file = SourceFile::read(&fifo, 1024).unwrap();
/// assert_eq!(file.body(), &FileBody::NotRegular { kind: FileKind::Fifo });
/// # }
/// ```
pub fn read_file(path: &Path, limit: u64) -> io::Result<FileRead> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) => return special_or(path, e),
    };
    let meta = file.metadata()?;
    if let Some(kind) = FileKind::of(&meta) {
        return Ok(FileRead::NotRegular { kind });
    }
    let mtime = meta.modified().ok();
    let size = meta.len();
    if size > limit {
        return Ok(FileRead::TooLarge { size, mtime });
    }
    let size = usize::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    let cap = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    let mut buf = vec![0u8; size + 1];
    let mut filled = 0;
    loop {
        let n = match file.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        filled += n;
        // One read that returned exactly the size seen is the end of the file (four system calls
        // in all). After short reads the size seen may be stale (an attribute cache, a FUSE
        // filesystem): read on until the end, or a grown file would be cut at that size.
        if n == 0 || (filled == size && n == size) {
            break;
        }
        if filled == buf.len() {
            // It grew after fstat: keep reading, up to one byte past the cap.
            if buf.len() >= cap {
                return Ok(FileRead::TooLarge { size: filled as u64, mtime });
            }
            buf.resize(buf.len().saturating_mul(2).max(8192).min(cap), 0);
        }
    }
    buf.truncate(filled);
    Ok(FileRead::Bytes { bytes: buf, mtime })
}

/// Opening failed: a Unix socket cannot be opened at all (`ENXIO`), so only then is the path
/// looked at once more to say what it is; any other error is returned as it is.
fn special_or(path: &Path, error: io::Error) -> io::Result<FileRead> {
    #[cfg(unix)]
    if error.raw_os_error() == Some(libc::ENXIO) || error.raw_os_error() == Some(libc::EOPNOTSUPP) {
        if let Some(kind) = std::fs::metadata(path).ok().as_ref().and_then(FileKind::of) {
            return Ok(FileRead::NotRegular { kind });
        }
    }
    let _ = path;
    Err(error)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
    }

    #[test]
    fn refuses_every_special_file_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.yaml"), "a: 1\n").unwrap();
        mkfifo(&d.join("fifo.yaml"));
        std::os::unix::fs::symlink("fifo.yaml", d.join("link-to-fifo.yaml")).unwrap();
        std::os::unix::fs::symlink("a.yaml", d.join("link-to-file.yaml")).unwrap();
        std::fs::create_dir(d.join("dir.yaml")).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(d.join("socket.yaml")).unwrap();
        std::os::unix::fs::symlink("/dev/null", d.join("null.yaml")).unwrap();
        let cases: &[(&str, Result<FileRead, io::ErrorKind>)] = &[
            ("a.yaml", Ok(FileRead::Bytes { bytes: b"a: 1\n".to_vec(), mtime: None })),
            ("link-to-file.yaml", Ok(FileRead::Bytes { bytes: b"a: 1\n".to_vec(), mtime: None })),
            ("fifo.yaml", Ok(FileRead::NotRegular { kind: FileKind::Fifo })),
            ("link-to-fifo.yaml", Ok(FileRead::NotRegular { kind: FileKind::Fifo })),
            ("dir.yaml", Ok(FileRead::NotRegular { kind: FileKind::Directory })),
            ("socket.yaml", Ok(FileRead::NotRegular { kind: FileKind::Socket })),
            ("null.yaml", Ok(FileRead::NotRegular { kind: FileKind::CharDevice })),
            ("absent.yaml", Err(io::ErrorKind::NotFound)),
        ];
        for (name, expected) in cases {
            let got = read_file(&d.join(name), 1024).map_err(|e| e.kind()).map(|r| match r {
                FileRead::Bytes { bytes, .. } => FileRead::Bytes { bytes, mtime: None },
                other => other,
            });
            assert_eq!(&got, expected, "{name}");
        }
    }

    #[test]
    fn caps_large_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big.yaml"), vec![b'x'; 100]).unwrap();
        assert!(matches!(read_file(&dir.path().join("big.yaml"), 50), Ok(FileRead::TooLarge { size: 100, .. })));
    }
}

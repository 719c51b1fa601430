//! Durable file primitives: owner-only creation, fsync of files and directories, atomic replace.
//! The only code of the snapshot stage that calls the filesystem's write operations.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::StoreError;
use crate::source::read::{read_file, FileRead};

/// The most bytes read from a store file that is not a version's config file (a manifest, a
/// state file): far above what hotconf writes, low enough that a planted file cannot exhaust memory.
pub(crate) const MAX_STATE_BYTES: u64 = 16 * 1024 * 1024;

/// Mode of the files the store creates: owner read/write only.
pub(crate) const PRIVATE_FILE: u32 = 0o600;

/// A name no other writer, in this process or another, picks at the same moment.
pub(crate) fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{}-{}-{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Creates `path` (and missing parents) with mode 0700.
pub(crate) fn create_private_dir(path: &Path) -> Result<(), StoreError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(StoreError::io(path))
}

/// Creates `path` (and missing parents) with mode 0700, then fsyncs the parent of every directory
/// it created, so the new entries survive a power loss (a directory entry is durable only once its
/// directory is fsynced).
pub(crate) fn create_private_dir_synced(path: &Path) -> Result<(), StoreError> {
    let created: Vec<&Path> = path.ancestors().take_while(|p| !p.as_os_str().is_empty() && !p.exists()).collect();
    create_private_dir(path)?;
    for dir in created.iter().rev() {
        match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent)?,
            _ => sync_dir(Path::new("."))?,
        }
    }
    Ok(())
}

/// Opens `path` for writing with `mode` on creation, failing if it exists.
fn create_new(path: &Path, mode: u32) -> Result<File, StoreError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path).map_err(StoreError::io(path))
}

/// Writes a new file with `bytes`, mode 0600, and fsyncs it.
pub(crate) fn write_new_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_new_synced_mode(path, bytes, PRIVATE_FILE)
}

fn write_new_synced_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    let mut file = create_new(path, mode)?;
    file.write_all(bytes).map_err(StoreError::io(path))?;
    file.sync_all().map_err(StoreError::io(path))
}

/// Reads the regular file `path` whole, at most `limit` bytes, through the one non-blocking reader
/// of config files: a FIFO, socket or device planted in the store is refused unread, never waited on.
pub(crate) fn read_regular(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind};
    match read_file(path, limit)? {
        FileRead::Bytes { bytes, .. } => Ok(bytes),
        FileRead::TooLarge { size, .. } => {
            Err(Error::new(ErrorKind::InvalidData, format!("{size} bytes, over the {limit}-byte limit")))
        }
        FileRead::NotRegular { kind } => {
            Err(Error::new(ErrorKind::InvalidInput, format!("{kind}, not a regular file")))
        }
    }
}

/// Fsyncs a directory, so the entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(path: &Path) -> Result<(), StoreError> {
    let mut options = OpenOptions::new();
    options.read(true);
    // Never blocks on a FIFO planted where a directory should be: opening anything else fails.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_DIRECTORY | libc::O_NONBLOCK);
    options.open(path).and_then(|d| d.sync_all()).map_err(StoreError::io(path))
}

/// Renames `from` to `to` (atomic within one filesystem).
pub(crate) fn rename(from: &Path, to: &Path) -> Result<(), StoreError> {
    fs::rename(from, to).map_err(StoreError::io(to))
}

/// Replaces (or creates) `dir/name` with `bytes` atomically: a temporary file in `dir`, fsync,
/// rename over the target, fsync `dir`. A reader sees the old bytes or the new, never a mix.
/// A new file gets `mode`; a replaced file keeps its permissions.
pub(crate) fn replace_atomic(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<PathBuf, StoreError> {
    let target = dir.join(name);
    #[cfg(unix)]
    let mode = match fs::metadata(&target) {
        Ok(meta) => std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
        Err(_) => mode,
    };
    let temp = dir.join(format!(".{name}.hotconf-{}.tmp", unique_suffix()));
    if let Err(e) = write_new_synced_mode(&temp, bytes, mode) {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    if let Err(e) = rename(&temp, &target) {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    sync_dir(dir)?;
    Ok(target)
}

/// Removes `dir/name` if present and fsyncs `dir`. Returns whether it existed.
pub(crate) fn remove_synced(dir: &Path, name: &str) -> Result<bool, StoreError> {
    let path = dir.join(name);
    match fs::remove_file(&path) {
        Ok(()) => {
            sync_dir(dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::Io { path, source: e }),
    }
}

//! Helpers shared by the library's integration tests.

use std::path::{Path, PathBuf};

use faultfs::FaultFs;

/// Mounts a fault filesystem over `backing`, or fails the test saying why.
pub fn mount(backing: &Path) -> FaultFs {
    FaultFs::mount(backing).unwrap_or_else(|e| panic!("cannot mount the fault filesystem: {e}"))
}

/// Every file under `dir`, recursively, leaving out directories named `skip_dir`.
pub fn files_under(dir: &Path, skip_dir: Option<&str>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if skip_dir.is_none_or(|skip| path.file_name().unwrap() != skip) {
                files.extend(files_under(&path, skip_dir));
            }
        } else {
            files.push(path);
        }
    }
    files
}

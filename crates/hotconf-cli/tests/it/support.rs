//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A secret value planted in environments and files; no output may ever contain it.
pub const CANARY: &str = "sk-canary-7f3a9c1e";

/// The workspace's top directory (the shipped `config/`, `schemas/` and `deploy/` live there).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shipped config directory.
pub fn shipped_config() -> PathBuf {
    workspace_root().join("config")
}

/// A temporary copy of the shipped config directory.
pub fn config_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(shipped_config()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

/// Runs the real `hotconf` binary with `args` and a clean environment plus `env`.
pub fn hotconf(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotconf"));
    cmd.args(args).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run hotconf")
}

/// Asserts that `text` does not contain the canary secret.
pub fn assert_no_canary(text: &str) {
    assert!(!text.contains(CANARY), "secret leaked into output:\n{text}");
    assert!(!text.contains("canary"), "part of a secret leaked into output:\n{text}");
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

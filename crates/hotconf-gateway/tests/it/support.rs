//! Helpers shared by the gateway's tests.

use std::path::{Path, PathBuf};

/// A secret value planted in environments and files; no output may ever contain it.
pub const CANARY: &str = "sk-canary-7f3a9c1e";

/// The shipped config directory (at the workspace's top).
pub fn shipped_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

/// Asserts that `text` does not contain the canary secret.
pub fn assert_no_canary(text: &str) {
    assert!(!text.contains(CANARY), "secret leaked into output:\n{text}");
    assert!(!text.contains("canary"), "part of a secret leaked into output:\n{text}");
}

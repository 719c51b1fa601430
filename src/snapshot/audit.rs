//! The audit log: an append-only JSON-lines file (`audit.jsonl`) in the store, one record per
//! attempt to change the config. Owns that file's format; never holds a secret value, since
//! records carry only redacted diffs, file names, hashes and diagnostics.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::diff::SemanticDiff;
use super::error::StoreError;
use super::manifest::Origin;
use crate::source::Sources;
use crate::validate::Diagnostics;

/// The most bytes [`AuditLog::read_all`] reads: a bound on memory, far above years of records.
const MAX_LOG_BYTES: u64 = 256 * 1024 * 1024;

/// One line of the audit log. Serialized with a fixed field order: `ts`, `event`, then the
/// event's fields in the order documented on [`AuditEvent`]; one compact JSON object a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When, RFC 3339 UTC.
    pub ts: String,
    /// What happened.
    #[serde(flatten)]
    pub event: AuditEvent,
}

impl AuditRecord {
    /// A record of `event` at `time`.
    pub fn new(time: SystemTime, event: AuditEvent) -> Self {
        Self { ts: super::time::rfc3339(time), event }
    }
}

/// What happened, tagged `"event": "accepted" | "rejected" | "failed" | "restored"` (a log written
/// before restore had its own name says `"rolled_back"`, read as `restored`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditEvent {
    /// A bundle was stored as a new version (written by [`super::SnapshotStore::commit`]).
    Accepted {
        /// The new version.
        version: u64,
        /// Why it was stored.
        origin: Origin,
        /// The version before it.
        parent: Option<u64>,
        /// The older version with the same content, if any.
        same_as: Option<u64>,
        /// Its bundle hash.
        bundle_hash: String,
        /// The files changed since the parent.
        files: Vec<String>,
        /// The semantic diff from the parent, redacted.
        diff: SemanticDiff,
        /// Written when the store was opened after a crash between the version's rename into
        /// place and its record (`"repaired": true`, omitted otherwise): `ts` is then the
        /// manifest's `created_at`, and the diff is from the parent if it still reads, else from
        /// nothing.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        repaired: bool,
    },
    /// A candidate bundle failed validation; nothing was stored.
    Rejected {
        /// The candidate's bundle hash.
        bundle_hash: String,
        /// The candidate's files.
        files: Vec<String>,
        /// Every diagnostic, as `hotconf validate --format json` prints them.
        diagnostics: Vec<AuditDiagnostic>,
    },
    /// A candidate could not be applied for another reason (reload timeout, a panic, the store or a
    /// component failed); nothing changed.
    Failed {
        /// The candidate's bundle hash, when the candidate was read.
        bundle_hash: Option<String>,
        /// The candidate's files.
        files: Vec<String>,
        /// What failed (never a secret value).
        error: String,
    },
    /// `hotconf restore` wrote a version's files back into the config directory.
    #[serde(alias = "rolled_back")]
    Restored {
        /// The version restored.
        version: u64,
        /// Its bundle hash.
        bundle_hash: String,
        /// The config directory.
        config_dir: String,
        /// The files written or removed.
        files: Vec<String>,
        /// The semantic diff from the directory's previous content, redacted.
        diff: SemanticDiff,
    },
}

impl AuditEvent {
    /// A `rejected` event for `sources` and the `diagnostics` validation gave.
    pub fn rejected(sources: &Sources, diagnostics: &Diagnostics) -> Self {
        AuditEvent::Rejected {
            bundle_hash: sources.bundle_hash().to_hex().to_string(),
            files: sources.names().map(str::to_owned).collect(),
            diagnostics: diagnostics.as_slice().iter().map(AuditDiagnostic::from).collect(),
        }
    }
}

/// A diagnostic as the audit log stores it (the fields of `hotconf validate --format json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDiagnostic {
    /// The file.
    pub file: String,
    /// The YAML path.
    pub path: Option<String>,
    /// 1-based line.
    pub line: Option<u32>,
    /// 1-based column.
    pub column: Option<u32>,
    /// The stable code, e.g. `unknown-key`.
    pub code: String,
    /// The message (never a secret value).
    pub message: String,
}

impl From<&crate::validate::Diagnostic> for AuditDiagnostic {
    fn from(d: &crate::validate::Diagnostic) -> Self {
        Self {
            file: d.file.clone(),
            path: d.path.clone(),
            line: d.line,
            column: d.column,
            code: d.kind.code().to_owned(),
            message: d.kind.to_string(),
        }
    }
}

/// The append-only audit log file.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    /// The log at `path` (created, mode 0600, on the first append).
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` as one line with one `write` and fsyncs it. Concurrent appenders should
    /// go through [`super::SnapshotStore::record`], which holds the store's lock.
    pub fn append(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let mut line = serde_json::to_string(record).expect("an audit record serializes");
        line.push('\n');
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(super::fsio::PRIVATE_FILE);
            // A FIFO planted as the log fails at once (`ENXIO`) instead of waiting for a reader.
            options.custom_flags(libc::O_NONBLOCK);
        }
        let created = !self.path.exists();
        let mut file = options.open(&self.path).map_err(StoreError::io(&self.path))?;
        file.write_all(line.as_bytes()).map_err(StoreError::io(&self.path))?;
        file.sync_data().map_err(StoreError::io(&self.path))?;
        match self.path.parent() {
            // A new log's entry is durable only once its directory is fsynced.
            Some(dir) if created => super::fsio::sync_dir(dir),
            _ => Ok(()),
        }
    }

    /// Makes the log end with a whole line after a crash cut its last append short: a last line
    /// that is a whole record gets its newline, anything else after the last newline is cut off.
    /// Returns whether it changed the file. Call under the store's lock.
    pub(crate) fn repair_torn_tail(&self) -> Result<bool, StoreError> {
        let bytes = match super::fsio::read_regular(&self.path, MAX_LOG_BYTES) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StoreError::Io { path: self.path.clone(), source: e }),
        };
        if bytes.is_empty() || bytes.ends_with(b"\n") {
            return Ok(false);
        }
        let start = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut options = OpenOptions::new();
        options.write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
        let mut file = options.open(&self.path).map_err(StoreError::io(&self.path))?;
        if serde_json::from_slice::<AuditRecord>(&bytes[start..]).is_ok() {
            use std::io::{Seek, SeekFrom};
            file.seek(SeekFrom::End(0)).map_err(StoreError::io(&self.path))?;
            file.write_all(b"\n").map_err(StoreError::io(&self.path))?;
        } else {
            file.set_len(start as u64).map_err(StoreError::io(&self.path))?;
        }
        file.sync_data().map_err(StoreError::io(&self.path))?;
        Ok(true)
    }

    /// The versions that have an `accepted` record. Lines that do not read are passed over
    /// ([`AuditLog::read_all`] reports them); only the event and version of each are parsed.
    pub(crate) fn accepted_versions(&self) -> Result<std::collections::BTreeSet<u64>, StoreError> {
        #[derive(Deserialize)]
        struct Seen<'a> {
            #[serde(borrow)]
            event: std::borrow::Cow<'a, str>,
            version: Option<u64>,
        }
        let bytes = match super::fsio::read_regular(&self.path, MAX_LOG_BYTES) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
            Err(e) => return Err(StoreError::Io { path: self.path.clone(), source: e }),
        };
        Ok(bytes
            .split(|&b| b == b'\n')
            .filter_map(|line| serde_json::from_slice::<Seen<'_>>(line).ok())
            .filter(|seen| seen.event == "accepted")
            .filter_map(|seen| seen.version)
            .collect())
    }

    /// Every record, oldest first. A missing log is empty. A last line cut short by a crash is
    /// skipped; any other unreadable line is an error.
    pub fn read_all(&self) -> Result<Vec<AuditRecord>, StoreError> {
        let bytes = super::fsio::read_regular(&self.path, MAX_LOG_BYTES);
        let text = match bytes
            .and_then(|b| String::from_utf8(b).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
        {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::Io { path: self.path.clone(), source: e }),
        };
        let complete = text.ends_with('\n');
        let lines: Vec<&str> = text.lines().collect();
        let mut records = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            match serde_json::from_str(line) {
                Ok(r) => records.push(r),
                Err(_) if i + 1 == lines.len() && !complete => break,
                Err(source) => return Err(StoreError::BadAuditRecord { path: self.path.clone(), line: i + 1, source }),
            }
        }
        Ok(records)
    }
}

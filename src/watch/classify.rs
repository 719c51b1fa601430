//! Classification: what happened to each file between two observations (created, modified,
//! deleted, renamed, touched). Pure; never reads a file.

use std::fmt;

use crate::watch::fingerprint::{FileObservation, Observation};

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The file's bare name.
    pub name: String,
    /// What happened to it.
    pub kind: FileChangeKind,
}

/// The kinds of change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileChangeKind {
    /// The file appeared.
    Created,
    /// Its content changed.
    Modified,
    /// It disappeared.
    Deleted,
    /// It appeared with the content of a file that disappeared in the same change set.
    Renamed {
        /// The name that disappeared.
        from: String,
    },
    /// Its mtime changed but its content did not: logged, never emitted as a reload.
    Touched,
}

impl FileChangeKind {
    /// A stable lowercase label: `created`, `modified`, `deleted`, `renamed`, `touched`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Modified => "modified",
            Self::Deleted => "deleted",
            Self::Renamed { .. } => "renamed",
            Self::Touched => "touched",
        }
    }
}

impl fmt::Display for FileChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            FileChangeKind::Renamed { from } => write!(f, "{} renamed from {from}", self.name),
            kind => write!(f, "{} {}", self.name, kind.as_str()),
        }
    }
}

/// What happened to the file `name` between `old` and `new` (`None` = absent), or `None` if nothing.
/// Content is judged by hash; an mtime change alone is [`FileChangeKind::Touched`] (only when both mtimes
/// are known).
pub fn classify(name: &str, old: Option<&FileObservation>, new: Option<&FileObservation>) -> Option<FileChange> {
    let kind = match (old, new) {
        (None, None) => return None,
        (None, Some(_)) => FileChangeKind::Created,
        (Some(_), None) => FileChangeKind::Deleted,
        (Some(old), Some(new)) if !old.same_content(new) => FileChangeKind::Modified,
        (Some(old), Some(new)) => match (old.mtime(), new.mtime()) {
            (Some(a), Some(b)) if a != b => FileChangeKind::Touched,
            _ => return None,
        },
    };
    Some(FileChange { name: name.to_owned(), kind })
}

/// Every change between two observations of the whole set, sorted by name. A file that disappears
/// while another appears with the same content is one [`FileChangeKind::Renamed`].
pub fn classify_set(old: &Observation, new: &Observation) -> Vec<FileChange> {
    let mut names: Vec<&String> = old.files().keys().chain(new.files().keys()).collect();
    names.sort();
    names.dedup();
    let mut changes: Vec<FileChange> =
        names.into_iter().filter_map(|name| classify(name, old.get(name), new.get(name))).collect();

    // Pair each created file with a deleted one of the same content.
    let mut i = 0;
    while i < changes.len() {
        if changes[i].kind == FileChangeKind::Created {
            let created = new.get(&changes[i].name).and_then(FileObservation::fingerprint).map(|f| f.hash);
            let deleted = changes.iter().position(|c| {
                c.kind == FileChangeKind::Deleted
                    && old.get(&c.name).and_then(FileObservation::fingerprint).map(|f| f.hash) == created
                    && created.is_some()
            });
            if let Some(d) = deleted {
                let from = changes.remove(d).name;
                if d < i {
                    i -= 1;
                }
                changes[i].kind = FileChangeKind::Renamed { from };
            }
        }
        i += 1;
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    fn at(secs: u64) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::from_secs(secs))
    }

    fn obs(files: &[(&str, &str, u64)]) -> Observation {
        files.iter().map(|(n, c, t)| (n.to_string(), FileObservation::read(*c, at(*t)))).collect()
    }

    fn check(old: &[(&str, &str, u64)], new: &[(&str, &str, u64)], expected: &[&str]) {
        let got: Vec<String> = classify_set(&obs(old), &obs(new)).iter().map(ToString::to_string).collect();
        assert_eq!(got, expected, "{old:?} -> {new:?}");
    }

    #[test]
    fn table() {
        check(&[], &[], &[]);
        check(&[("a.yaml", "x", 1)], &[("a.yaml", "x", 1)], &[]);
        check(&[], &[("a.yaml", "x", 1)], &["a.yaml created"]);
        check(&[("a.yaml", "x", 1)], &[], &["a.yaml deleted"]);
        check(&[("a.yaml", "x", 1)], &[("a.yaml", "y", 2)], &["a.yaml modified"]);
        // Same-size rewrite with the mtime put back: the hash catches it.
        check(&[("a.yaml", "x", 1)], &[("a.yaml", "y", 1)], &["a.yaml modified"]);
        check(&[("a.yaml", "x", 1)], &[("a.yaml", "x", 2)], &["a.yaml touched"]);
        check(&[("a.yaml", "x", 1)], &[("b.yaml", "x", 2)], &["b.yaml renamed from a.yaml"]);
        check(
            &[("a.yaml", "x", 1), ("c.yaml", "z", 1)],
            &[("b.yaml", "x", 1), ("c.yaml", "w", 2), ("d.yaml", "q", 2)],
            &["b.yaml renamed from a.yaml", "c.yaml modified", "d.yaml created"],
        );
        check(&[("b.yaml", "x", 1)], &[("a.yaml", "x", 1)], &["a.yaml renamed from b.yaml"]);
    }

    #[test]
    fn unknown_mtime_is_not_touched() {
        let old = FileObservation::read("x", None);
        let new = FileObservation::read("x", at(5));
        assert_eq!(classify("a.yaml", Some(&old), Some(&new)), None);
    }
}

#[cfg(test)]
mod example_tests {
    #[test]
    fn a_new_file_is_created_and_the_same_one_is_no_change() {
        use crate::watch::classify::{classify, FileChangeKind};
        use crate::watch::fingerprint::FileObservation;
        let new = FileObservation::read("x: 2", None);
        assert_eq!(classify("a.yaml", None, Some(&new)).unwrap().kind, FileChangeKind::Created);
        assert_eq!(classify("a.yaml", Some(&new), Some(&new)), None);
    }
}

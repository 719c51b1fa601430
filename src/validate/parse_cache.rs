//! The documents of the files a schema parsed last, kept by name and exact content: a reload
//! that changes one file of a directory parses that one file; the others' documents are copied
//! from here (a copy of a document costs a few percent of parsing it again).
//!
//! Only a file that parsed cleanly is kept, and only while it is in the newest bundle, so the
//! cache holds at most one bundle's files (bounded by the bundle caps). A hit is an exact byte
//! comparison, never a hash: the answer is the one a parse of those bytes gives.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use yaml_serde::Value;

use super::diagnostic::Diagnostic;
use super::yaml::{parse_file_within, ParsedFile};
use crate::source::{SourceFile, Sources};

/// See the module's documentation. Shared by the clones of one schema.
#[derive(Debug, Default)]
pub(crate) struct ParseCache {
    files: Mutex<HashMap<String, Kept>>,
}

#[derive(Debug)]
struct Kept {
    bytes: Vec<u8>,
    value: Value,
    /// What the file took of a bundle's node budget.
    nodes: u64,
}

impl ParseCache {
    /// [`parse_file_within`], answered from the cache when `file` holds exactly the bytes parsed
    /// last under its name and they fit what the bundle's budget has left.
    // The error is parse_file_within's (one diagnostic per refused file).
    #[allow(clippy::result_large_err)]
    pub(crate) fn parse_within<'a>(
        &self,
        file: &'a SourceFile,
        max_bytes: u64,
        budget: &mut u64,
    ) -> Result<ParsedFile<'a>, Diagnostic> {
        if let Some(bytes) = file.bytes().filter(|b| b.len() as u64 <= max_bytes) {
            let files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(kept) = files.get(file.name()).filter(|k| k.bytes == bytes && k.nodes <= *budget) {
                // Bytes that parsed are UTF-8.
                if let Ok(text) = std::str::from_utf8(bytes) {
                    *budget -= kept.nodes;
                    return Ok(ParsedFile::new(file.name(), text, kept.value.clone()));
                }
            }
        }
        let before = *budget;
        let parsed = parse_file_within(file, max_bytes, budget)?;
        let kept =
            Kept { bytes: parsed.text.as_bytes().to_vec(), value: parsed.value.clone(), nodes: before - *budget };
        self.files.lock().unwrap_or_else(PoisonError::into_inner).insert(file.name().to_owned(), kept);
        Ok(parsed)
    }

    /// Forgets every file that is not in `sources`, or holds other bytes there: what is kept is
    /// at most the newest bundle.
    pub(crate) fn retain(&self, sources: &Sources) {
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        files.retain(|name, kept| sources.get(name).and_then(SourceFile::bytes) == Some(&kept.bytes[..]));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.files.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::prescan::MAX_NODES;

    fn file(name: &str, text: &str) -> SourceFile {
        SourceFile::new(name, text)
    }

    #[test]
    fn a_file_with_the_same_bytes_is_not_parsed_again() {
        let cache = ParseCache::default();
        let a = file("a.yaml", "x: 1\ny: [1, 2]\n");
        let mut budget = MAX_NODES;
        let first = cache.parse_within(&a, 1024, &mut budget).unwrap();
        let taken = MAX_NODES - budget;
        assert!(taken > 0);
        // A hit takes the same share of the budget and gives the same document.
        let mut again = MAX_NODES;
        let second = cache.parse_within(&a, 1024, &mut again).unwrap();
        assert_eq!((second.value, MAX_NODES - again), (first.value, taken));
        // Other bytes under the name are parsed, and replace what was kept.
        let edited = file("a.yaml", "x: 2\ny: [1, 2]\n");
        let third = cache.parse_within(&edited, 1024, &mut MAX_NODES.clone()).unwrap();
        assert_eq!(third.value["x"], Value::from(2));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_refused_file_is_never_kept_and_a_hit_obeys_the_budget_left() {
        let cache = ParseCache::default();
        let bad = file("a.yaml", "x: [1,\n");
        assert!(cache.parse_within(&bad, 1024, &mut MAX_NODES.clone()).is_err());
        assert!(cache.parse_within(&bad, 1024, &mut MAX_NODES.clone()).is_err());
        assert_eq!(cache.len(), 0);
        let good = file("a.yaml", "x: [1, 2, 3]\n");
        cache.parse_within(&good, 1024, &mut MAX_NODES.clone()).unwrap();
        // Too little left for this file: the same refusal as without the cache.
        let mut budget = 1;
        let refused = cache.parse_within(&good, 1024, &mut budget).unwrap_err();
        assert_eq!(refused.kind.code(), "bundle-too-large");
    }

    #[test]
    fn what_is_kept_is_at_most_the_newest_bundle() {
        let cache = ParseCache::default();
        for (name, text) in [("a.yaml", "a: 1\n"), ("b.yaml", "b: 1\n")] {
            cache.parse_within(&file(name, text), 1024, &mut MAX_NODES.clone()).unwrap();
        }
        cache.retain(&Sources::from_files([file("a.yaml", "a: 1\n"), file("b.yaml", "b: 2\n")]));
        assert_eq!(cache.len(), 1);
        cache.retain(&Sources::from_files([file("c.yaml", "c: 1\n")]));
        assert_eq!(cache.len(), 0);
    }
}

//! "Did you mean" with a bound on its work: an index of names by length, compared by edit distance
//! nearest lengths first, at most [`Suggestions::MAX_COMPARED`] names a lookup, and at most
//! [`Suggestions::MAX_LOOKUPS`] lookups an index answers, so a rule that suggests for every unknown
//! name costs work linear in the bundle, however many names and unknown references it holds.

use std::cell::Cell;
use std::collections::BTreeMap;

use crate::distance::edit_distance;

/// Names to suggest from, indexed once (by length) for any number of lookups.
///
/// ```
/// use hotconf::Suggestions;
/// let providers = ["groq", "gemini", "openai"];
/// let index = Suggestions::new(providers);
/// assert_eq!(index.closest("grok"), Some("groq"));
/// assert_eq!(index.closest("anthropic"), None);
/// // Work is counted: two lookups, each comparing only names of a nearby length.
/// assert!(index.compared() <= 2 * Suggestions::MAX_COMPARED as u64);
/// ```
#[derive(Debug)]
pub struct Suggestions<'a> {
    /// Names by length in characters, each with its position among the names given.
    by_len: BTreeMap<usize, Vec<(usize, &'a str)>>,
    compared: Cell<u64>,
    lookups: Cell<usize>,
}

impl<'a> Suggestions<'a> {
    /// Names compared by edit distance in one lookup, nearest lengths first.
    pub const MAX_COMPARED: usize = 16;
    /// Lookups one index answers; past them, [`Suggestions::closest`] is `None` at once (a file
    /// lists at most 100 problems: a suggestion past them would not be shown).
    pub const MAX_LOOKUPS: usize = 100;
    /// The most edits a suggestion is from the word looked up.
    const MAX_EDITS: usize = 8;

    /// An index of `names` (kept in their order for ties).
    pub fn new(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut by_len: BTreeMap<usize, Vec<(usize, &'a str)>> = BTreeMap::new();
        for (i, name) in names.into_iter().enumerate() {
            by_len.entry(name.chars().count()).or_default().push((i, name));
        }
        Self { by_len, compared: Cell::new(0), lookups: Cell::new(0) }
    }

    /// The name closest to `word` by edit distance (a swap of neighbours is one edit), when it is
    /// close enough to be a typo: one edit for words of up to 3 characters, a third of the
    /// length beyond (at least 2, at most 8: further apart than 8 edits is not a typo, and a
    /// comparison then fills at most 17 cells a character). Ties go to the name given first.
    pub fn closest(&self, word: &str) -> Option<&'a str> {
        if self.lookups.get() >= Self::MAX_LOOKUPS {
            return None;
        }
        self.lookups.set(self.lookups.get() + 1);
        let len = word.chars().count();
        let limit = if len <= 3 { 1 } else { (len / 3).clamp(2, Self::MAX_EDITS) };
        let mut budget = Self::MAX_COMPARED;
        let mut best: Option<(usize, usize, &'a str)> = None;
        // Lengths len, len-1, len+1, len-2, …: a name further than `limit` in length cannot be close.
        for delta in 0..=limit {
            let lengths = [len.checked_sub(delta), (delta > 0).then_some(len + delta)];
            for candidates in lengths.into_iter().flatten().filter_map(|l| self.by_len.get(&l)) {
                for &(order, name) in candidates {
                    if budget == 0 {
                        return best.map(|(_, _, name)| name);
                    }
                    budget -= 1;
                    self.compared.set(self.compared.get() + 1);
                    let d = edit_distance(word, name, limit);
                    if d <= limit && best.is_none_or(|(bd, bo, _)| (d, order) < (bd, bo)) {
                        best = Some((d, order, name));
                    }
                }
            }
        }
        best.map(|(_, _, name)| name)
    }

    /// Names compared so far, over every lookup: the work done, for tests that bound it.
    pub fn compared(&self) -> u64 {
        self.compared.get()
    }
}

/// The candidate closest to `word` (see [`Suggestions::closest`]), for a one-off lookup.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    Suggestions::new(candidates).closest(word)
}

#[cfg(test)]
mod tests {
    use super::{did_you_mean, edit_distance, Suggestions};

    #[test]
    fn close_names_are_suggested_and_far_ones_are_not() {
        assert_eq!(did_you_mean("greting", ["greeting", "workers"]), Some("greeting"));
        assert_eq!(did_you_mean("zzz", ["greeting", "workers"]), None);
        assert_eq!(did_you_mean("rmp", ["rpm", "burst"]), Some("rpm"));
        // Ties go to the name given first.
        assert_eq!(did_you_mean("ab", ["ac", "ad"]), Some("ac"));
        // A third of the length, at most 8 edits: 9 edits apart in 30 characters is not a typo.
        let long = "abcdefghijklmnopqrstuvwxyz0123";
        assert_eq!(did_you_mean("abcdefghijklmnopqrstuvwxyzXXXX", [long]), Some(long));
        assert_eq!(did_you_mean("XXXXXXXXXjklmnopqrstuvwxyz0123", [long]), None);
        assert_eq!(edit_distance("rmp", "rpm", 1), 1);
        assert_eq!(edit_distance("kitten", "sitting", 5), 3);
        assert_eq!(edit_distance("kitten", "sitting", 2), 3, "past the limit: limit + 1");
    }

    #[test]
    fn the_work_of_a_lookup_and_of_an_index_is_bounded_whatever_the_names() {
        // 8,000 names of one length, all a typo away from what is looked up, 40,000 lookups:
        // the adversarial case of a chain file naming unknown providers.
        let names: Vec<String> = (0..8_000).map(|i| format!("prov{i:05}")).collect();
        let index = Suggestions::new(names.iter().map(String::as_str));
        for i in 0..40_000 {
            let _ = index.closest(&format!("prov{:05}x", i % 8_000));
        }
        let bound = (Suggestions::MAX_LOOKUPS * Suggestions::MAX_COMPARED) as u64;
        assert!(index.compared() <= bound, "{} comparisons, bound {bound}", index.compared());
        assert!(index.compared() > 0);
    }
}

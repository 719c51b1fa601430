//! Edit distance between short names, bounded: below every stage, shared by did-you-mean
//! (`validate/suggest.rs`) and the secret knowledge's misspelt-key check (`secret.rs`).

/// Edit distance counting a swap of two neighbours as one edit (`rmp` is one from `rpm`): the
/// optimal string alignment distance, or `limit + 1` as soon as it must exceed `limit`. Names of
/// more than 64 characters are never close.
pub(crate) fn edit_distance(a: &str, b: &str, limit: usize) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 64 || b.len() > 64 || a.len().abs_diff(b.len()) > limit {
        return limit + 1;
    }
    // Three rows: the one before the previous (for swaps), the previous and the current.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        let mut row_min = current[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1).min(current[j - 1] + 1).min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
            row_min = row_min.min(d);
        }
        if row_min > limit {
            return limit + 1;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()].min(limit + 1)
}

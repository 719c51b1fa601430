//! Edit distance between short names, bounded: below every stage, shared by did-you-mean
//! (`validate/suggest.rs`) and the secret knowledge's misspelt-key check (`secret.rs`).

/// The longest name compared; longer names are never close.
const MAX_LEN: usize = 64;

/// Edit distance counting a swap of two neighbours as one edit (`rmp` is one from `rpm`): the
/// optimal string alignment distance, or `limit + 1` as soon as it must exceed `limit`. Names of
/// more than 64 characters are never close.
///
/// Only the cells within `limit` of the diagonal are computed (a cell further off costs more
/// than `limit`), in rows on the stack: no allocation for ASCII names, and a comparison of two
/// 64-character names with a limit of 21 fills 64 × 43 cells, not 64 × 64.
pub(crate) fn edit_distance(a: &str, b: &str, limit: usize) -> usize {
    if a.is_ascii() && b.is_ascii() {
        return bounded(a.as_bytes(), b.as_bytes(), limit);
    }
    let a: Vec<char> = a.chars().take(MAX_LEN + 1).collect();
    let b: Vec<char> = b.chars().take(MAX_LEN + 1).collect();
    bounded(&a, &b, limit)
}

fn bounded<T: PartialEq>(a: &[T], b: &[T], limit: usize) -> usize {
    if a.len() > MAX_LEN || b.len() > MAX_LEN || a.len().abs_diff(b.len()) > limit {
        return limit + 1;
    }
    // Cells off the band hold `far`: more than the limit, whatever is added to them.
    let far = limit + 1;
    // Three rows: the one before the previous (for swaps), the previous and the current.
    let mut before = [far; MAX_LEN + 1];
    let mut previous = [far; MAX_LEN + 1];
    let mut current = [far; MAX_LEN + 1];
    for (j, cell) in previous.iter_mut().enumerate().take(b.len().min(limit) + 1) {
        *cell = j;
    }
    for i in 1..=a.len() {
        let low = i.saturating_sub(limit).max(1);
        let high = (i + limit).min(b.len());
        current[0] = if i <= limit { i } else { far };
        if low > 1 {
            current[low - 1] = far;
        }
        let mut row_min = current[0];
        for j in low..=high {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1).min(current[j - 1] + 1).min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d.min(far);
            row_min = row_min.min(current[j]);
        }
        if high < b.len() {
            current[high + 1] = far;
        }
        if row_min > limit {
            return far;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()].min(far)
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    /// The full table, for comparison.
    fn unbounded(a: &str, b: &str) -> usize {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
        for (i, row) in d.iter_mut().enumerate() {
            row[0] = i;
        }
        for (j, cell) in d[0].iter_mut().enumerate() {
            *cell = j;
        }
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
                }
            }
        }
        d[a.len()][b.len()]
    }

    #[test]
    fn the_band_gives_the_full_tables_answer_up_to_the_limit() {
        let words = [
            "",
            "a",
            "ab",
            "ba",
            "abc",
            "ca",
            "rpm",
            "rmp",
            "burst",
            "bursts",
            "brust",
            "kitten",
            "sitting",
            "tokens_per_minute",
            "tokens_per_minuet",
            "api_key",
            "apikey",
            "pasword",
            "password",
            "ключ",
            "ключи",
            "p0000000000000000000000000000000000000000000000000000000000000001",
            "q000000000000000000000000000000000000000000000000000000000000001",
            "q0000000000000000000000000000000000000000000000000000000000000002",
        ];
        for a in words {
            for b in words {
                for limit in 0..8 {
                    let full = unbounded(a, b);
                    let expected =
                        if a.chars().count() > 64 || b.chars().count() > 64 { limit + 1 } else { full.min(limit + 1) };
                    assert_eq!(edit_distance(a, b, limit), expected, "{a:?} {b:?} limit {limit}");
                }
            }
        }
    }
}

//! "Did you mean …?" for misspelt keys, values, upstream and variable names.
//!
//! Uses the optimal-string-alignment distance (Levenshtein plus adjacent
//! transpositions), so `jatso` is one edit from `jatos`. A candidate is offered
//! only when it is within a third of the word's length, so unrelated names are
//! never suggested.

/// The candidate closest to `word`, if any is close enough; ties go to the
/// earlier candidate.
pub(crate) fn nearest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_lower = word.to_lowercase();
    let word_chars: Vec<char> = word_lower.chars().collect();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let cand_chars: Vec<char> = candidate.to_lowercase().chars().collect();
        let distance = osa_distance(&word_chars, &cand_chars);
        let limit = (word_chars.len().max(cand_chars.len()) / 3).max(1);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

fn osa_distance(a: &[char], b: &[char]) -> usize {
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = v;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE_KEYS: &[&str] = &["path", "prefix", "regex", "proxy", "respond"];

    #[test]
    fn close_names_are_suggested() {
        assert_eq!(nearest("prefx", ROUTE_KEYS.iter().copied()), Some("prefix"));
        assert_eq!(nearest("jatso", ["jatos", "jhub"]), Some("jatos"));
        assert_eq!(nearest("proxi", ROUTE_KEYS.iter().copied()), Some("proxy"));
        assert_eq!(
            nearest("Prefix", ROUTE_KEYS.iter().copied()),
            Some("prefix")
        );
        assert_eq!(
            nearest("upstream", ["upstreams", "server"]),
            Some("upstreams")
        );
    }

    #[test]
    fn unrelated_names_are_not() {
        assert_eq!(nearest("banana", ROUTE_KEYS.iter().copied()), None);
        assert_eq!(nearest("x", ["jatos"]), None);
        assert_eq!(nearest("anything", std::iter::empty()), None);
    }

    #[test]
    fn distance() {
        let d = |a: &str, b: &str| {
            osa_distance(
                &a.chars().collect::<Vec<_>>(),
                &b.chars().collect::<Vec<_>>(),
            )
        };
        assert_eq!(d("", ""), 0);
        assert_eq!(d("abc", ""), 3);
        assert_eq!(d("kitten", "sitting"), 3);
        assert_eq!(d("jatso", "jatos"), 1);
    }
}

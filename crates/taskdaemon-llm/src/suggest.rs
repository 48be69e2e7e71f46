//! "Did you mean" suggestions for misspelt names (tool fields, loop type
//! keys), shared so every error offers them the same way.

/// The entry of `known` closest to `word`, when one is close enough to be a
/// likely misspelling.
pub fn did_you_mean<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(word, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_only_close_names() {
        let known = ["depends_on", "priority", "name"];
        assert_eq!(did_you_mean("dependson", known), Some("depends_on"));
        assert_eq!(did_you_mean("priorty", known), Some("priority"));
        assert_eq!(did_you_mean("colour", known), None);
    }
}

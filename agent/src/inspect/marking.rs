//! Marking banners: a label written into a text file's first lines (`CONFIDENTIAL`), matched as
//! a whole word, case-sensitively, within the first [`HEAD_BYTES`](super::HEAD_BYTES) bytes.

use super::looks_like_text;

/// A marking found in a text, with the 1-based line it was on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkingHit<'m> {
    /// The marking string as the policy lists it.
    pub marking: &'m str,
    /// Index of the marking in the list passed to [`find_markings`].
    pub index: usize,
    /// Line of its first whole-word occurrence.
    pub line: usize,
}

/// Finds which of `markings` occur as whole words in `head` (a file's first bytes).
///
/// Binary data yields nothing: markings are a text-file convention. At most `head.len()` bytes
/// are looked at; the caller bounds that.
pub fn find_markings<'m>(head: &[u8], markings: &'m [String]) -> Vec<MarkingHit<'m>> {
    if markings.is_empty() || !looks_like_text(head) {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(head);
    let mut hits = Vec::new();
    for (index, marking) in markings.iter().enumerate() {
        if marking.is_empty() {
            continue;
        }
        if let Some(offset) = whole_word_find(&text, marking) {
            let line = text[..offset].matches('\n').count() + 1;
            hits.push(MarkingHit {
                marking,
                index,
                line,
            });
        }
    }
    hits
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Byte offset of the first occurrence of `needle` in `text` not touching a word character on
/// either side.
fn whole_word_find(text: &str, needle: &str) -> Option<usize> {
    let mut start = 0;
    while let Some(pos) = text.get(start..)?.find(needle) {
        let at = start + pos;
        let end = at + needle.len();
        let before_ok = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !is_word_char(c));
        let after_ok = text[end..].chars().next().is_none_or(|c| !is_word_char(c));
        if before_ok && after_ok {
            return Some(at);
        }
        // Step past the first character of this occurrence and keep looking.
        start = at + text[at..].chars().next().map_or(1, char::len_utf8);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn markings_match_whole_words_only() {
        let markings = m(&["CONFIDENTIAL", "SECRET", "INTERNAL USE ONLY"]);
        let cases: &[(&str, &[&str])] = &[
            ("CONFIDENTIAL\nquarterly numbers", &["CONFIDENTIAL"]),
            ("-- CONFIDENTIAL --", &["CONFIDENTIAL"]),
            ("NONCONFIDENTIAL", &[]),
            ("CONFIDENTIALITY agreement", &[]),
            ("confidential in lower case is prose", &[]),
            ("Classification: SECRET.", &["SECRET"]),
            ("SECRET_KEY=abc", &[]),
            ("x\ny\n[INTERNAL USE ONLY]", &["INTERNAL USE ONLY"]),
            ("SECRET and CONFIDENTIAL", &["CONFIDENTIAL", "SECRET"]),
            ("", &[]),
        ];
        for (text, expected) in cases {
            let hits: Vec<&str> = find_markings(text.as_bytes(), &markings)
                .into_iter()
                .map(|h| h.marking)
                .collect();
            assert_eq!(&hits, expected, "text: {text:?}");
        }
    }

    #[test]
    fn reports_the_line_of_the_marking() {
        let markings = m(&["SECRET"]);
        let hits = find_markings(b"title\n\nSECRET\n", &markings);
        assert_eq!(hits[0].line, 3);
    }

    #[test]
    fn binary_data_has_no_markings() {
        let markings = m(&["SECRET"]);
        assert!(find_markings(b"SECRET\x00\x01", &markings).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let markings = m(&["SECRET", "É", "A B"]);
            let _ = find_markings(&bytes, &markings);
        }

        #[test]
        fn truncation_never_panics(text in "[A-Z ÉÀ\\n]{0,64}", cut in 0usize..80) {
            let markings = m(&["SECRET", "ÉTÉ"]);
            let bytes = text.as_bytes();
            let _ = find_markings(&bytes[..cut.min(bytes.len())], &markings);
        }
    }
}

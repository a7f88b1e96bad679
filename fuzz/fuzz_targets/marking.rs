//! Fuzzes marking-banner detection and text/encryption sniffing over a file's first bytes.
#![no_main]

use std::sync::OnceLock;

use infoledger_agent::inspect::marking::find_markings;
use infoledger_agent::inspect::{encryption_from_head, looks_like_text, HEAD_BYTES};
use libfuzzer_sys::fuzz_target;

/// Markings as a policy might list them: single words, multi-word banners, non-ASCII letters
/// (so word boundaries and UTF-8 stepping are exercised), a marking that is a prefix of another,
/// punctuation, and an empty entry the matcher must skip.
fn markings() -> &'static [String] {
    static MARKINGS: OnceLock<Vec<String>> = OnceLock::new();
    MARKINGS.get_or_init(|| {
        [
            "CONFIDENTIAL",
            "STRICTLY CONFIDENTIAL",
            "SECRET",
            "INTERNAL USE ONLY",
            "VERTRAULICH",
            "STRENG GEHEIM",
            "CONFIDENTIEL – DIFFUSION RESTREINTE",
            "機密",
            "ÉÀÇ",
            "NATO-SECRET",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    // The agent never passes more than HEAD_BYTES; fuzz the same bound, plus whatever
    // libFuzzer hands us when it is below that.
    let head = &data[..data.len().min(HEAD_BYTES)];
    let markings = markings();

    let text = looks_like_text(head);
    let hits = find_markings(head, markings);
    if !text {
        assert!(hits.is_empty(), "binary data must not yield markings");
    }
    for hit in &hits {
        assert_eq!(hit.marking, markings[hit.index]);
        assert!(!hit.marking.is_empty());
        assert!(hit.line >= 1);
        assert!(hit.line <= head.iter().filter(|&&b| b == b'\n').count() + 1);
    }

    let verdict = encryption_from_head(head, data.len() as u64);
    let _ = verdict;
});
